"""Network inversion (issue 16, item 2): an identity layer gives its input back, and the regularised
optimum of an identity layer is the solution of a linear system (TV, beta 2) or of a per-pixel
equation (the alpha-norm).

With ``x0_sigma`` left to the image's norm the feature term of an identity layer is ``||x - x0||^2``, so
the objective ``||x - x0||^2 + lambda_tv / 2 * V2(x)`` has its minimum at ``(2 I + lambda_tv G) x = 2 x0``
with ``G = D1'D1 + D2'D2`` (the authors' differences to the next column and row).
"""

from __future__ import annotations

import gc
import weakref

import pytest
import torch
from torch import nn

import vizlib as vl
from vizlib.core.errors import ArgumentError
from vizlib.core.layers import name_layers
from vizlib.methods.inversion import authors_schedule, invert, tv_weight

from .conftest import assert_same_state, model_state


@pytest.fixture(autouse=True)
def _threads():  # overrides conftest's: one thread, the machine is shared
    torch.set_num_threads(1)
    yield


X = torch.randn(1, 1, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64).float()


def identity() -> nn.Module:
    return nn.Sequential(nn.Identity())


def differences(side: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = side * side
    d1 = torch.zeros(n, n, dtype=torch.float64)
    d2 = torch.zeros(n, n, dtype=torch.float64)
    for i in range(side):
        for j in range(side):
            k = i * side + j
            if j + 1 < side:
                d1[k, k], d1[k, k + 1] = -1, 1
            if i + 1 < side:
                d2[k, k], d2[k, k + side] = -1, 1
    return d1, d2


def test_inverting_an_identity_layer_returns_the_input():
    inv = invert(identity(), X, "0", lr=0.04, steps=300, lambda_alpha=0, lambda_tv=0)
    torch.testing.assert_close(inv.images[0, 0], X[0], atol=1e-5, rtol=0)
    assert inv.feature_error[0, 0].item() < 1e-10
    assert inv.pixel_correlation[0, 0].item() == pytest.approx(1.0, abs=1e-9)


def test_the_tv_regularised_identity_inversion_solves_a_linear_system():
    lam = 0.7
    d1, d2 = differences(4)
    g = d1.T @ d1 + d2.T @ d2
    want = torch.linalg.solve(2 * torch.eye(16, dtype=torch.float64) + lam * g, 2 * X.double().flatten())
    inv = invert(identity(), X, "0", lr=0.02, steps=400, lambda_alpha=0, lambda_tv=lam)
    torch.testing.assert_close(inv.images[0, 0].double().flatten(), want, atol=1e-5, rtol=0)
    assert inv.lambda_tv == [lam]


def test_the_alpha_norm_on_an_identity_layer_solves_each_pixel():
    # per pixel: min (x - x0)^2 + lam/2 x^6  ->  2 (x - x0) + 3 lam x^5 = 0 (Newton in float64)
    lam = 0.3
    x0 = X.double().flatten()
    x = x0.clone()
    for _ in range(100):
        x = x - (2 * (x - x0) + 3 * lam * x ** 5) / (2 + 15 * lam * x ** 4)
    inv = invert(identity(), X, "0", lr=0.008, steps=800, lambda_alpha=lam, lambda_tv=0)
    torch.testing.assert_close(inv.images[0, 0].double().flatten(), x, atol=1e-5, rtol=0)


def test_the_authors_constants():
    s = authors_schedule()
    assert len(s) == 400 and s[:100] == [0.004] * 100 and s[100:300] == [0.0004] * 200
    assert s[300:] == pytest.approx([0.00004] * 100)
    alexnet = ["c1", "p1", "n1", "c2", "p2", "n2", "c3", "c4", "c5", "p5", "fc6", "fc7", "fc8"]
    assert [tv_weight(n) for n in alexnet] == [1, 1, 1, 1, 10, 10, 10, 10, 100, 100, 100, 100, 100]
    vgg = ["c1_1", "c2_2", "p2", "c3_1", "c4_3", "p4", "c5_1", "p5"]
    assert [tv_weight(n) for n in vgg] == [1, 1, 10, 10, 10, 10, 100, 100]
    assert vl.methods.inversion.ALPHA == 6 and vl.methods.inversion.BETA == 2
    assert vl.methods.inversion.LAMBDA_ALPHA == 8e-10 and vl.methods.inversion.MOMENTUM == 0.9


def small() -> nn.Module:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                      nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(6 * 4 * 4, 5))
    m.vizlib_layers = name_layers(m)
    return m.eval()


IMGS = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def test_layers_inverted_together_are_the_layers_inverted_alone_and_the_errors_are_recomputed():
    model = small()
    both = invert(model, IMGS, ["c2", "c1", "fc6"], steps=20, lr=0.002, record_every=5)
    assert both.layers == ["c1", "c2", "fc6"] and both.images.shape == (2, 3, 1, 8, 8)
    assert both.lambda_tv == [1.0, 1.0, 100.0]
    alone = invert(model, IMGS, "c2", steps=20, lr=0.002)
    assert torch.isfinite(both.images).all()
    torch.testing.assert_close(both.images[:, 1], alone.images[:, 0], atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        for j, path in enumerate(["1", "4", "6"]):
            def at(x: torch.Tensor) -> torch.Tensor:
                with vl.Capture(model, [path]) as cap:
                    model(x)
                return next(iter(cap.outputs.values())).flatten(1)

            f0, f = at(IMGS), at(both.images[:, j])
            want = (f - f0).pow(2).sum(1) / f0.pow(2).sum(1)
            torch.testing.assert_close(both.feature_error[:, j], want, atol=1e-6, rtol=1e-5)
    assert both.history_steps == [5, 10, 15, 20] and both.error_history.shape == (4, 2, 3)
    assert both.table().rows[0][0] == "c1"


class Fails(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == 4:
            raise RuntimeError("boom")
        return x


def test_the_model_comes_back_as_it_went_in_also_when_it_raises():
    model = small().train()
    model[0].weight.requires_grad_(False)
    before = model_state(model)
    invert(model, IMGS, ["c1", "fc6"], steps=3)
    assert_same_state(before, model_state(model))
    failing = nn.Sequential(nn.Conv2d(1, 2, 3), Fails(), nn.ReLU()).train()
    failing.vizlib_layers = name_layers(failing)
    before = model_state(failing)
    with pytest.raises(RuntimeError, match="boom"):
        invert(failing, IMGS, "2", steps=10)
    assert_same_state(before, model_state(failing))


def test_a_model_used_once_is_freed():
    model = small()
    ref = weakref.ref(model)
    result = invert(model, IMGS, "c1", steps=2)
    del model
    gc.collect()
    assert ref() is None and result.images.shape == (2, 1, 1, 8, 8)


BAD = [
    (dict(layers=[]), ArgumentError, ("layers is empty",)),
    (dict(layers="c9"), vl.LayerError, ("unknown layer",)),
    (dict(lr=-1.0), ArgumentError, ("lr", "> 0")),
    (dict(lr=[]), ArgumentError, ("lr is empty",)),
    (dict(lambda_tv=[1.0, 2.0]), ArgumentError, ("2 values for 1 layers",)),
    (dict(momentum=1.0), ArgumentError, ("momentum must be below 1",)),
    (dict(steps=0), ArgumentError, ("steps", "at least 1")),
    (dict(alpha=0), ArgumentError, ("alpha",)),
    (dict(image=torch.full((1, 1, 8, 8), float("nan"))), vl.ImageError, ("non-finite",)),
    (dict(image=torch.zeros(1, 3, 8, 8)), vl.ImageError, ("channel",)),
]


@pytest.mark.parametrize("kwargs,exc,words", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_input_is_refused_before_any_forward_pass(kwargs, exc, words):
    model = small()
    args = {"image": IMGS, "layers": "c1", **kwargs}
    passes = []
    handle = torch.nn.modules.module.register_module_forward_hook(
        lambda m, i, o: passes.append(1) if isinstance(o, torch.Tensor) and o.device.type != "meta" else None)
    try:
        with pytest.raises(exc) as info:
            invert(model, args.pop("image"), args.pop("layers"), **args)
    finally:
        handle.remove()
    for w in words:
        assert w in str(info.value), str(info.value)
    assert passes == []


def test_a_zero_representation_and_a_net_without_names_are_refused():
    model = small()
    with torch.no_grad():
        model[0].bias.fill_(-1e6)  # c1 is all zeros after its ReLU
    with pytest.raises(ValueError, match="all zeros"):
        invert(model, IMGS, "c1", steps=1)
    with pytest.raises(ArgumentError, match="no paper layer names"):
        invert(nn.Sequential(nn.Conv2d(1, 2, 3)), IMGS, steps=1)
