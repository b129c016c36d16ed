"""Invariance sweep (Zeiler Fig. 5): a net invariant by construction, brute force, symmetry, bad input."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from tests.conftest import hook_count, modes
from vizlib.core.errors import ArgumentError
from vizlib.methods.invariance import (
    default_amounts,
    invariance_layers,
    invariance_sweep,
    rotational_symmetry,
    transform_batch,
    typical_distance,
)


def pooled_net() -> nn.Module:
    """Conv (zero padding) -> ReLU -> global sum -> linear: invariant to a shift that keeps the content inside."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3),
    ).eval()
    model.vizlib_layers = OrderedDict([("c1", "2"), ("fc7", "5"), ("fc8", "6")])  # c1: the pooled maps
    return model


def blob(side: int = 16) -> torch.Tensor:
    x = torch.zeros(1, 1, side, side)
    x[0, 0, 6:10, 5:11] = torch.arange(24.0).view(4, 6) / 24 + 0.5
    return x


def test_translation_invariant_net_gives_zero_distance():
    net = blob()
    model = pooled_net()
    sweep = invariance_sweep(model, net, "translation", [-5, -2, 0, 3, 5], target=1)
    for layer in ("c1", "fc7"):
        np.testing.assert_allclose(sweep.distances[layer], 0.0, atol=1e-6)
    assert np.ptp(sweep.probability) < 1e-6
    # a shift that pushes the blob out of the frame is no longer invariant
    far = invariance_sweep(model, net, "translation", [8], target=1)
    assert far.distances["c1"][0] > 1e-3


def test_distances_match_brute_force():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 64, 5), nn.ReLU(),
                          nn.Linear(5, 4)).eval()
    model.vizlib_layers = OrderedDict([("c1", "1"), ("fc7", "4"), ("fc8", "5")])
    x = torch.randn(1, 1, 8, 8)
    amounts = [-2, 0, 1, 3]
    sweep = invariance_sweep(model, x, "translation", amounts, target=2, typical={"c1": 2.0, "fc7": 4.0})
    torch.set_grad_enabled(False)
    for i, a in enumerate(amounts):
        shifted = torch.zeros_like(x)
        if a >= 0:
            shifted[..., a:, :] = x[..., : 8 - a, :]
        else:
            shifted[..., :a, :] = x[..., -a:, :]
        c1 = lambda z: model[:2](z).flatten()  # noqa: E731
        fc7 = lambda z: model[:5](z).flatten()  # noqa: E731
        assert sweep.distances["c1"][i] == pytest.approx(float((c1(shifted) - c1(x)).norm()), rel=1e-5, abs=1e-6)
        assert sweep.distances["fc7"][i] == pytest.approx(float((fc7(shifted) - fc7(x)).norm()), rel=1e-5, abs=1e-6)
        assert sweep.probability[i] == pytest.approx(float(model(shifted).softmax(1)[0, 2]), rel=1e-5)
    torch.set_grad_enabled(True)
    assert sweep.distances["c1"][1] == 0.0 and sweep.identity == 1
    np.testing.assert_allclose(sweep.relative["fc7"], sweep.distances["fc7"] / 4.0)
    assert sweep.at(1)["amount"] == 1.0


def test_transforms_geometry():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 0, 2] = 1.0
    up = transform_batch(x, "rotation", [0, 90, 180, 360])
    assert torch.equal(up[0], x[0])
    assert up[1, 0, 2, 0] == pytest.approx(1.0, abs=1e-5)  # counter-clockwise: top -> left
    assert up[2, 0, 4, 2] == pytest.approx(1.0, abs=1e-5)
    torch.testing.assert_close(up[3], x[0], atol=1e-5, rtol=0)
    grown = transform_batch(torch.ones(1, 1, 8, 8), "scale", [1.0, 0.5])
    assert torch.equal(grown[0], torch.ones(1, 8, 8))
    assert grown[1, 0, 0, 0] == 0 and grown[1, 0, 4, 4] == 1  # shrunk: grey (0) comes in at the borders
    assert default_amounts("scale", 64)[[0, -1]].tolist() == [0.6, 1.4]
    assert default_amounts("rotation", 64)[-1] == 360


def test_rotational_symmetry_measure():
    side = 32
    yy, xx = torch.meshgrid(torch.arange(side) - 15.5, torch.arange(side) - 15.5, indexing="ij")
    ring = ((yy**2 + xx**2).sqrt() < 9).float()[None]       # a disc: every rotation maps it to itself
    bar = torch.zeros(1, side, side)
    bar[0, 4:12, 12:20] = 1.0                                 # a square above the centre: no large rotation does
    cross = torch.zeros(1, side, side)
    cross[0, 13:19, 4:28] = 1.0                               # a bar: a half turn does
    assert rotational_symmetry(ring)[1] > 0.95
    assert rotational_symmetry(cross)[1] > 0.95
    assert rotational_symmetry(bar)[1] < 0.2


def test_rotational_symmetry_about_the_object_centre():
    """A cross off the frame's centre: symmetric about its own centre (with its mask), not about the frame's."""
    cross = torch.zeros(1, 1, 48, 48)
    cross[..., 4:20, 10:14] = 1.0
    cross[..., 10:14, 4:20] = 1.0
    mask = cross[0, 0] > 0
    assert rotational_symmetry(cross, mask=mask)[1] > 0.95
    assert rotational_symmetry(cross)[1] < 0.5
    with pytest.raises(ArgumentError, match="no pixel set"):
        rotational_symmetry(cross, mask=torch.zeros(48, 48, dtype=torch.bool))
    with pytest.raises(ArgumentError, match="mask is"):
        rotational_symmetry(cross, mask=torch.ones(8, 8, dtype=torch.bool))


def test_layers_typical_distance_and_model_left_alone():
    from vizlib.models.bundled_nets import vgg_fmnist, zfnet_fmnist

    model = pooled_net().train()
    before = modes(model)
    d = typical_distance(model, torch.randn(4, 1, 16, 16))
    assert set(d) == {"c1", "fc7"} and all(v > 0 for v in d.values())
    invariance_sweep(model, blob(), "scale", [0.8, 1.0])
    assert modes(model) == before and hook_count(model) == 0
    assert invariance_layers(vgg_fmnist()) == ("c1_1", "fc7")
    assert invariance_layers(zfnet_fmnist()) == ("c1", "fc7")


def test_bad_input():
    model = pooled_net()
    with pytest.raises(ArgumentError, match="unknown transform"):
        invariance_sweep(model, blob(), "shear")
    with pytest.raises(ArgumentError, match="whole number"):
        invariance_sweep(model, blob(), "translation", [1.5])
    with pytest.raises(ArgumentError, match="positive"):
        invariance_sweep(model, blob(), "scale", [0.0])
    with pytest.raises(ArgumentError, match="two images"):
        typical_distance(model, blob())
    assert hook_count(model) == 0
