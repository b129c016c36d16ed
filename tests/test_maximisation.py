"""Activation maximisation (issue 16, item 1) on hand-built nets with known maximising inputs.

A unit that is a fixed linear filter ``a(x) = <w, patch(x)> + b`` has closed-form maximisers: under
L2 decay (loss ``-a + l2 * mean(x^2)``) the input ``x* = D w / (2 l2)`` on the unit's patch and zero
elsewhere (``D`` the number of input values); under Erhan's L2 constraint ``||x|| <= rho`` the input
``rho w / ||w||``. Plain gradient ascent (``optimizer="sgd"``) reaches both to float precision.
"""

from __future__ import annotations

import gc
import math
import weakref

import numpy as np
import pytest
import torch
from torch import nn

import vizlib as vl
from vizlib.core.errors import ArgumentError
from vizlib.core.layers import name_layers
from vizlib.methods import maximisation as M
from vizlib.methods.maximisation import maximise, objective_site, transform_amounts
from vizlib.models import alexnet_fmnist

from .conftest import assert_same_state, model_state


@pytest.fixture(autouse=True)
def _threads():  # overrides conftest's: one thread, the machine is shared
    torch.set_num_threads(1)
    yield


W = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0], [2.0, 1.0, -0.5]])


def linear_unit(bias: float = 0.0, relu: bool = False) -> nn.Module:
    """One 3x3 filter ``W`` on a 1x5x5 input; with ``relu`` named c1 (the ReLU after it)."""
    conv = nn.Conv2d(1, 1, 3)
    with torch.no_grad():
        conv.weight.copy_(W.view(1, 1, 3, 3))
        conv.bias.fill_(bias)
    model = nn.Sequential(conv, nn.ReLU(inplace=True)) if relu else nn.Sequential(conv)
    model.vizlib_layers = name_layers(model)
    return model.eval()


def expected_at(position: tuple[int, int], values: torch.Tensor, side: int = 5) -> torch.Tensor:
    x = torch.zeros(1, 1, side, side, dtype=torch.float64)
    y, xx = position
    x[0, 0, y:y + 3, xx:xx + 3] = values
    return x


def test_l2_decay_gives_the_closed_form_maximiser():
    # loss -a + l2 * mean(x^2) over D = 25 values: x* = 25 W / (2 * 12.5) = W on the patch, 0 elsewhere
    am = maximise(linear_unit(), "0", 0, objective="unit", position=(1, 2), regulariser="l2", l2=12.5,
                  optimizer="sgd", lr=0.5, steps=80, size=(1, 5, 5), check_every=0)
    torch.testing.assert_close(am.images.double(), expected_at((1, 2), W.double()), atol=1e-6, rtol=0)
    assert am.activation.item() == pytest.approx(float((W * W).sum()), abs=1e-5)
    assert am.steps == 80 and am.position == (1, 2) and am.regulariser == ("l2",)


def test_the_l2_constraint_gives_rho_w_over_norm_w():
    rho = 2.0
    am = maximise(linear_unit(), "0", 0, objective="unit", position=(0, 0), regulariser="none", norm=rho,
                  optimizer="sgd", lr=1.0, steps=60, size=(1, 5, 5), check_every=0)
    want = expected_at((0, 0), rho * W.double() / W.double().norm())
    torch.testing.assert_close(am.images.double(), want, atol=1e-6, rtol=0)
    assert am.activation.item() == pytest.approx(rho * float(W.norm()), abs=1e-5)


def test_a_dead_relu_unit_is_maximised_before_its_relu():
    # bias -100: the unit is off on the start noise (activation 0, no gradient after the ReLU);
    # the pre-activation is maximised instead: with l2=1.25, x* = 25 W / 2.5 = 10 W and a = 10 ||W||^2 - 100 = 105
    model = linear_unit(bias=-100.0, relu=True)
    assert objective_site(model, "c1") == ("c1", "1", "0", True)
    am = maximise(model, "c1", 0, objective="unit", position=(1, 1), regulariser="l2", l2=1.25,
                  optimizer="sgd", lr=5.0, steps=80, size=(1, 5, 5), check_every=0)
    assert am.start_activation.item() == 0.0
    torch.testing.assert_close(am.images.double(), expected_at((1, 1), 10 * W.double()), atol=1e-5, rtol=0)
    assert am.activation.item() == pytest.approx(10 * float((W * W).sum()) - 100, abs=1e-3)


def test_a_class_logit_of_a_dense_net():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()
    model.vizlib_layers = name_layers(model)
    am = maximise(model, "fc6", [2, 0], objective="logit", regulariser="l2", l2=8.0, optimizer="sgd", lr=0.5,
                  steps=80, size=(1, 4, 4), check_every=0)
    w = model[1].weight.detach().double()
    torch.testing.assert_close(am.images.double().flatten(1), w[[2, 0]] * 16 / 16, atol=1e-6, rtol=0)


def test_many_units_in_one_batch_are_the_units_one_at_a_time():
    model = alexnet_fmnist(seed=0).eval()
    kw = dict(steps=3, regulariser=("fourier", "transforms"), size=64, seed=5, check_every=0)
    together = maximise(model, "c2", [3, 1, 7], batch_size=3, **kw)
    alone = maximise(model, "c2", [3, 1, 7], batch_size=1, **kw)
    torch.testing.assert_close(together.images, alone.images, atol=1e-5, rtol=0)
    again = maximise(model, "c2", [3, 1, 7], batch_size=2, **kw)
    torch.testing.assert_close(together.images, again.images, atol=1e-5, rtol=0)
    other = maximise(model, "c2", [3, 1, 7], batch_size=3, **{**kw, "seed": 6})
    assert not torch.allclose(together.images, other.images)


def test_the_dataset_maximum_and_the_steps_to_reach_it():
    model = linear_unit()
    data = torch.randn(7, 1, 5, 5, generator=torch.Generator().manual_seed(3))
    brute = torch.stack([model(x[None])[0, 0].max() for x in data]).max()
    am = maximise(model, "0", 0, objective="map", regulariser="none", optimizer="sgd", lr=0.5, steps=40,
                  size=(1, 5, 5), reference=data, check_every=4)
    assert am.dataset_max.item() == pytest.approx(brute.item(), abs=1e-6)
    first = next(s for s, a in zip(am.check_steps, am.history[:, 0].tolist()) if a >= am.dataset_max.item())
    assert am.steps_to_reach.item() == first
    assert am.check_steps == list(range(4, 41, 4)) and am.history.shape == (10, 1)
    assert bool(am.reached[0]) and am.share_reached == 1.0
    top = vl.top_activations(model, "0", data, k=1, progress=False)
    again = maximise(model, "0", 0, objective="map", regulariser="none", optimizer="sgd", lr=0.5, steps=40,
                     size=(1, 5, 5), reference=top, check_every=4)
    assert again.dataset_max.item() == am.dataset_max.item()


def test_pixels_stay_in_the_nets_range_and_the_fourier_start_is_mid_grey():
    net = vl.Net("alexnet", "bundled", alexnet_fmnist(seed=0).eval(), [str(i) for i in range(10)], lambda x: x,
                 (0.5,), (0.25,), 64, "test")
    lo, hi = (0 - 0.5) / 0.25, (1 - 0.5) / 0.25
    am = maximise(net, "c1", [0, 1], regulariser="none", lr=0.5, steps=5, check_every=0)
    assert am.images.min() >= lo and am.images.max() <= hi and am.images.min() == lo
    zero = M._Image(torch.zeros(1, 1, 8, 5, 2), (1, 8, 8), True, torch.tensor(lo).view(1, 1, 1, 1),
                    torch.tensor(hi).view(1, 1, 1, 1), torch.device("cpu"), torch.float32)
    assert torch.equal(zero.image(), torch.zeros(1, 1, 8, 8))  # sigmoid(0): mid-range, 0.5 grey
    scale = M._freq_scale(8, 8)
    assert scale[0, 0].item() == 8.0 and scale[0, 1].item() == pytest.approx(8.0)  # 1/f, f at least 1/8
    assert scale[4, 4].item() == pytest.approx(1 / math.sqrt(0.5))


def test_lucids_transforms_scaled_to_the_side():
    assert transform_amounts(128) == {"pad": 12, "jitter": 8, "jitter2": 4}
    assert transform_amounts(64) == {"pad": 6, "jitter": 4, "jitter2": 2}
    grey = torch.full((2, 1, 64, 64), 0.3)
    out = M._transform(grey, torch.full((1, 1, 1, 1), 0.3), transform_amounts(64), np.random.default_rng(0))
    assert out.shape == (2, 1, 64 + 12 - 4 - 2, 70)
    torch.testing.assert_close(out, torch.full_like(out, 0.3))  # the neutral grey stays grey
    assert M.LUCID_SCALES[0] == pytest.approx(0.9) and M.LUCID_SCALES[-1] == pytest.approx(1.1)
    assert M.LUCID_ANGLES == tuple(range(-10, 11))


def test_compare_regularisers_shares_the_start_and_the_reference():
    model = alexnet_fmnist(seed=0).eval()
    data = torch.randn(4, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    out = M.compare_regularisers(model, "c1", [0, 2], ["none", "l2", ("fourier", "transforms")], size=64,
                                 steps=2, reference=data, check_every=0)
    assert list(out) == ["none", "l2", "fourier+transforms"]
    assert torch.equal(out["none"].dataset_max, out["l2"].dataset_max)
    assert torch.equal(out["none"].start_activation, out["l2"].start_activation)


class Fails(nn.Module):
    """Raises on its third call: a failure in the middle of the optimisation."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("boom")
        return x


def test_the_model_comes_back_as_it_went_in_also_when_it_raises():
    model = alexnet_fmnist(seed=0).train()
    model.features[0].weight.requires_grad_(False)
    before = model_state(model)
    maximise(model, "c2", [0, 1], size=64, steps=2, regulariser=("fourier", "transforms"), check_every=0)
    assert_same_state(before, model_state(model))
    failing = nn.Sequential(nn.Conv2d(1, 2, 3), Fails(), nn.ReLU(), nn.Conv2d(2, 2, 3)).train()
    failing.vizlib_layers = name_layers(failing)
    before = model_state(failing)
    with pytest.raises(RuntimeError, match="boom"):
        maximise(failing, "3", 0, size=(1, 9, 9), steps=5, check_every=0)
    assert_same_state(before, model_state(failing))


def test_a_model_used_once_is_freed():
    model = alexnet_fmnist(seed=0).eval()
    ref = weakref.ref(model)
    result = maximise(model, "c1", [0], size=64, steps=1, check_every=0)
    del model
    gc.collect()
    assert ref() is None and result.images.shape == (1, 1, 64, 64)


BAD = [
    (dict(objective="neuron"), ArgumentError, ("objective", "'map'")),
    (dict(regulariser="sharpen"), ArgumentError, ("regulariser", "'fourier'")),
    (dict(regulariser=("none", "l2")), ArgumentError, ("'none' does not combine",)),
    (dict(regulariser=("fourier", "blur")), ArgumentError, ("choose one",)),
    (dict(steps=0), ArgumentError, ("steps", "at least 1")),
    (dict(steps=2.5), ArgumentError, ("steps", "2.5")),
    (dict(lr=-1.0), ArgumentError, ("lr", "> 0")),
    (dict(l2=float("nan")), ArgumentError, ("l2",)),
    (dict(optimizer="lbfgs"), ArgumentError, ("optimizer",)),
    (dict(position=(1, 1)), ArgumentError, ("position is for objective='unit'",)),
    (dict(objective="unit", position=(1, 1)), ArgumentError, ("moves with the transforms",)),
    (dict(channels=[0, 99]), ValueError, ("channel 99 is out of range", "48 maps")),
    (dict(channels=1.5), ArgumentError, ("1.5",)),
    (dict(objective="logit"), ArgumentError, ("output layer", "fc8")),
    (dict(size=None), ArgumentError, ("size=(C, H, W)",)),
    (dict(value_range=(1.0, 0.0)), ArgumentError, ("low < high",)),
    (dict(layer="c9"), vl.LayerError, ("unknown layer 'c9'",)),
]


@pytest.mark.parametrize("kwargs,exc,words", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_input_is_refused_before_any_forward_pass(kwargs, exc, words):
    model = alexnet_fmnist(seed=0).eval()
    before = model_state(model)
    passes = []
    handle = torch.nn.modules.module.register_module_forward_hook(
        lambda m, i, o: passes.append(1) if isinstance(o, torch.Tensor) and o.device.type != "meta" else None)
    args = {"layer": "c2", "channels": [0], "size": 64, "steps": 2, **kwargs}
    try:
        with pytest.raises(exc) as info:
            maximise(model, args.pop("layer"), args.pop("channels"), **args)
    finally:
        handle.remove()
    for w in words:
        assert w in str(info.value), str(info.value)
    assert passes == []
    assert_same_state(before, model_state(model))


def test_a_reference_of_another_layer_is_refused():
    model = alexnet_fmnist(seed=0).eval()
    top = vl.top_activations(model, "c1", torch.zeros(2, 1, 64, 64), k=1, progress=False)
    with pytest.raises(ArgumentError, match="of layer 'c1', not 'c2'"):
        maximise(model, "c2", [0], size=64, steps=1, reference=top)


def test_an_rgb_net_gets_decorrelated_colours_within_each_channels_range():
    from tests._nets import rgb_net

    net = rgb_net(67)
    am = maximise(net, "c1", [0, 5], steps=2, check_every=0)
    assert am.images.shape == (2, 3, 67, 67)
    lo = torch.tensor([(0 - m) / s for m, s in zip(net.mean, net.std)]).view(1, 3, 1, 1)
    hi = torch.tensor([(1 - m) / s for m, s in zip(net.mean, net.std)]).view(1, 3, 1, 1)
    assert bool((am.images >= lo).all() and (am.images <= hi).all())
    mix = torch.tensor(M.COLOUR_SQRT)
    assert mix.norm(dim=0).max().item() == pytest.approx(math.sqrt(0.26 ** 2 + 0.27 ** 2 + 0.27 ** 2))
    assert am.settings["pad"] == 6 and am.settings["jitter"] == 4  # 67 px: Lucid's amounts x 67/128
