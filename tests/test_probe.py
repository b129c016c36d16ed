"""Linear probe (Zeiler §5.2): the softmax's optimum against scikit-learn, determinism, features, from scratch."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from tests._nets import bundled_net
from tests.conftest import hook_count, modes
from vizlib.core.errors import ArgumentError
from vizlib.methods.probe import LinearProbe, fit_softmax, layer_features, per_class_subset, train_from_scratch


def separable(n: int = 60, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[4.0, 0.0], [-4.0, 0.0], [0.0, 4.0]])
    y = torch.arange(n) % 3
    return centres[y] + 0.5 * torch.randn(n, 2, generator=g), y


def test_softmax_reaches_the_known_optimum():
    from sklearn.linear_model import LogisticRegression

    x, y = separable()
    lam = 1e-2
    s = fit_softmax(x, y, 3, weight_decay=lam)
    ref = LogisticRegression(C=1.0 / (lam * len(x)), tol=1e-12, max_iter=10_000).fit(x.numpy(), y.numpy())
    # the softmax is unique up to a constant added to every class's bias and weight column (its mean is
    # free); with the L2 penalty the weights' column mean is 0 at the optimum, as in scikit-learn's
    np.testing.assert_allclose(s.weight.numpy(), ref.coef_, atol=1e-4)
    np.testing.assert_allclose(s.bias.numpy() - s.bias.numpy().mean(), ref.intercept_ - ref.intercept_.mean(), atol=1e-4)
    assert (s.predict(x) == y).all()
    # the gradient vanishes at the optimum
    w = s.weight.clone().requires_grad_(True)
    b = s.bias.clone().requires_grad_(True)
    loss = nn.functional.cross_entropy(x.double() @ w.T + b, y) + 0.5 * lam * (w * w).sum()
    loss.backward()
    assert float(w.grad.abs().max()) < 1e-7 and float(b.grad.abs().max()) < 1e-7
    again = fit_softmax(x, y, 3, weight_decay=lam)
    assert torch.equal(again.weight, s.weight) and torch.equal(again.bias, s.bias)


def toy_net() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                          nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3)).train()
    model.vizlib_layers = OrderedDict([("c5", "1"), ("fc7", "5"), ("fc8", "6")])
    return model


def test_probe_on_frozen_features():
    model = toy_net()
    before = modes(model)
    weights = [p.detach().clone() for p in model.parameters()]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, 1, 8, 8, generator=g)
    y = torch.arange(30) % 3
    x[y == 1, :, :4] += 3.0   # class 1 is bright at the top, class 2 at the bottom
    x[y == 2, :, 4:] += 3.0
    f = layer_features(model, x, "c5")
    assert f.shape == (30, 4 * 64)
    probe = LinearProbe(model, "c5").fit(x, y)
    assert probe.accuracy(x, y) == 1.0
    assert modes(model) == before and hook_count(model) == 0
    assert all(torch.equal(a, b) for a, b in zip(weights, model.parameters()))
    with pytest.raises(ArgumentError, match="not fitted"):
        LinearProbe(model, "fc7").predict(x)


def test_per_class_subset_nested_and_excluding():
    labels = np.repeat(np.arange(3), 10)
    small, big = per_class_subset(labels, 2, seed=1), per_class_subset(labels, 5, seed=1)
    assert len(small) == 6 and len(big) == 15
    assert np.bincount(labels[big]).tolist() == [5, 5, 5]
    held = per_class_subset(labels, 3, seed=1, exclude=np.arange(0, 30, 2))
    assert all(i % 2 == 1 for i in held)
    with pytest.raises(ArgumentError, match="fewer"):
        per_class_subset(labels, 11)


def test_from_scratch_is_deterministic_and_learns():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 1, 8, 8, generator=g)
    y = torch.arange(12) % 3
    x[y == 1, :, :4] += 3.0
    x[y == 2, :, 4:] += 3.0
    state = torch.random.get_rng_state()
    a = train_from_scratch(toy_net, x, y, steps=60, batch_size=6, lr=0.05)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = train_from_scratch(toy_net, x, y, steps=60, batch_size=6, lr=0.05)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not a.training
    with torch.no_grad():
        assert float((a(x).argmax(1) == y).double().mean()) >= 0.9


def test_bad_input():
    with pytest.raises(ArgumentError):
        fit_softmax(torch.zeros(3, 2), [0, 1])
    with pytest.raises(ArgumentError, match="0..1"):
        fit_softmax(torch.zeros(2, 2), [0, 2], 2)


def test_per_class_subset_up_to_with_a_reserve():
    labels = np.array([0] * 5 + [1] * 3)
    idx = per_class_subset(labels, 4, seed=0, reserve=2)
    assert (labels[idx] == 0).sum() == 3 and (labels[idx] == 1).sum() == 1  # up to 4, two of each kept back
    assert np.array_equal(per_class_subset(labels, 1, seed=3, reserve=2), per_class_subset(labels, 1, seed=3))
    with pytest.raises(ArgumentError, match="kept back"):
        per_class_subset(labels, 4, seed=0, reserve=3)


def test_stream_features_read_several_layers_in_one_pass():
    from vizlib.methods.probe import stream_features

    net = bundled_net("alexnet")
    x = torch.randn(5, 1, 64, 64)
    got = stream_features(net, (x[i:i + 2] for i in range(0, 5, 2)), ["c5", "fc7"])
    for layer in ("c5", "fc7"):
        assert torch.allclose(got[layer], layer_features(net, x, layer), atol=1e-5)
    assert not any(m._forward_hooks for m in net.model.modules())
    with pytest.raises(ArgumentError, match="no batch"):
        stream_features(net, iter(()), ["c5"])
