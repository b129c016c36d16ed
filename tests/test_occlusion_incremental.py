"""The incremental occlusion sweep (vizlib.methods.incremental) against the full sweep.

Exactness: every Fig. 7 map equal to the full re-inference sweep's (p(class) within 1e-5
absolute, identical labels, map activities within 1e-4 relative), on hand-built nets that use
every layer rule and on the four architectures (torchvision's AlexNet, vizlib's ZFNet, VGG-16,
the bundled nets), untrained, on small inputs. In float64 the activities agree elementwise; in
float32 they agree relative to the layer's scale (the full sweep itself, against a float64
reference, carries float32 rounding of that size in maps whose total is near zero).

Then: which way Occlusion goes by default and why, the forced paths, the fallbacks, and that the
model is left as found.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

from tests.conftest import hook_count, modes
from vizlib.methods import incremental as inc
from vizlib.methods import occlusion as occ_mod
from vizlib.methods.incremental import _axis, plan_incremental
from vizlib.methods.occlusion import Occlusion
from vizlib.models.bundled_nets import alexnet_fmnist, vgg_fmnist, zfnet_fmnist

Q = dict(project=False, progress=False)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def both(occ: Occlusion, x: torch.Tensor, size: int, stride: int, **kw):
    full = occ.sweep(x, size, stride, incremental=False, **Q, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # forced, it must not have fallen back
        fast = occ.sweep(x, size, stride, incremental=True, **Q, **kw)
    assert full.strategy == "full" and fast.strategy == "incremental", fast.strategy_note
    return full, fast


def assert_same_maps(full, fast, *, elementwise: bool) -> None:
    """The acceptance: p(class) within 1e-5, identical labels, activities within 1e-4 relative."""
    assert (fast.probabilities - full.probabilities).abs().max() <= 1e-5
    assert (fast.probability - full.probability).abs().max() <= 1e-5
    assert torch.equal(fast.label, full.label)
    assert (fast.label_probability - full.label_probability).abs().max() <= 1e-5
    diff = (fast.activities - full.activities).abs()
    if elementwise:
        assert bool((diff <= 1e-4 * full.activities.abs()).all()), float((diff / full.activities.abs()).max())
    else:
        assert float(diff.max()) <= 1e-4 * float(full.activities.abs().max())
    assert torch.equal(fast.activity, fast.activities[..., fast.channel]) and fast.channel == full.channel
    assert torch.equal(fast.base_activities, full.base_activities)


# --------------------------------------------------------------------------- every layer rule


class Everything(nn.Module):
    """A chain through every rule: strided, dilated, grouped and even-sized convolutions, max pooling
    with padding, dilation and ceil_mode, average pooling, contrast normalisation, batch norm (eval),
    in-place ReLU, dropout, an identity adaptive pooling, a resizing one, flatten and dense layers."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(2, 6, 5, stride=2, padding=2), nn.ReLU(inplace=True),  # 29 -> 15
            nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),  # 15 -> 8
            nn.LocalResponseNorm(3, alpha=1e-2, beta=0.75, k=1.0),
            nn.Conv2d(6, 8, 3, padding=2, dilation=2, groups=2), nn.BatchNorm2d(8), nn.LeakyReLU(0.1),  # 8 -> 8
            nn.Conv2d(8, 8, 2, padding=1), nn.ReLU(inplace=True), nn.Dropout(0.5),  # 8 -> 9
            nn.MaxPool2d(2, stride=1, dilation=2),  # 9 -> 7
            nn.AvgPool2d(2, stride=1, padding=1), nn.Tanh(),  # 7 -> 8
            nn.Conv2d(8, 5, 3), nn.ReLU(inplace=True),  # 8 -> 6
        )
        self.same = nn.AdaptiveAvgPool2d(6)
        self.resize = nn.AdaptiveAvgPool2d(3)
        self.flatten = nn.Flatten()
        self.fc = nn.Sequential(nn.Linear(45, 12), nn.ReLU(), nn.Dropout(), nn.Linear(12, 7))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.resize(self.same(self.features(x)))))


def everything(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = Everything().double()
    with torch.no_grad():
        bn = net.features[5]
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.2, 0.2)
    return net.train()  # the sweep puts it in eval mode (dropout, batch norm) and back


@pytest.mark.parametrize("layer,size,stride", [("features.1", 5, 3), ("features.6", 7, 4), ("features.11", 1, 7),
                                               ("features.14", 5, 3), ("fc.0", 7, 4), ("features.14", 29, 1)])
def test_every_rule_equals_the_full_sweep(layer, size, stride):
    net = everything()
    x = torch.randn(2, 29, 29, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    occ = Occlusion(net, layer, mean=(0.1, 0.2), std=(0.3, 0.4), grey=(0.7, 0.2))
    full, fast = both(occ, x, size, stride, target=3)
    assert_same_maps(full, fast, elementwise=True)
    torch.testing.assert_close(fast.activities, full.activities, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(fast.probabilities, full.probabilities, rtol=1e-9, atol=1e-12)
    assert net.training  # back in train mode


def test_integer_nets_give_identical_numbers():
    """Integer weights and pixels in float64: every sum is exact, so the maps are equal bit for bit."""
    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, 1, 1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                        nn.Conv2d(4, 5, 3, 1, 1), nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(5 * 8 * 8, 7)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randint(-3, 4, p.shape, generator=g).double())
    x = torch.randint(-4, 5, (2, 16, 16), generator=g).double()
    for layer in ("1", "4"):
        full, fast = both(Occlusion(net, layer), x, 5, 3, target=2)
        assert torch.equal(fast.activities, full.activities)
        assert torch.equal(fast.probabilities, full.probabilities) and torch.equal(fast.label, full.label)


def test_the_windows_hold_every_changed_activation():
    """Geometry: perturb the square with random values, see which outputs of each layer change; the
    window the plan computes there must hold them all."""
    net = everything().eval()
    x = torch.randn(1, 2, 29, 29, dtype=torch.float64)
    feats = [m for m in net.features]
    for y0, x0, s in [(0, 0, 5), (10, 3, 7), (24, 24, 5), (3, 17, 1), (0, 0, 29)]:
        z = x.clone()
        z[:, :, y0 : y0 + s, x0 : x0 + s] = torch.randn(1, 2, s, s, dtype=torch.float64) * 5
        plan = plan_incremental(net, x, "features.14", torch.tensor([y0]), torch.tensor([x0]), s)
        a, b = x, z
        with torch.no_grad():
            for j, m in enumerate(feats):
                a, b = m(a.clone()), m(b.clone())
                changed = (a != b).any(1)[0].nonzero()
                if not len(changed):
                    continue
                oy, ox = int(plan.rows.origin[j][0]), int(plan.cols.origin[j][0])
                h, w = plan.rows.size[j], plan.cols.size[j]
                assert changed[:, 0].min() >= oy and changed[:, 0].max() < oy + h, (j, y0, x0, s)
                assert changed[:, 1].min() >= ox and changed[:, 1].max() < ox + w, (j, y0, x0, s)


def test_axis_is_exact_for_a_strided_conv():
    """1-D: a 5-wide kernel, stride 2, padding 2, over 29 inputs; input rows 10..14 change outputs 4..7."""
    op = inc._Op("c", nn.Conv2d(1, 1, 5, 2, 2), "conv", (1, 29, 29), (1, 15, 15), k=(5, 5), s=(2, 2), p=(2, 2))
    ax = _axis([op], 1, torch.tensor([10, 0, 27]), 5, 0)
    # outputs o read inputs 2o-2 .. 2o+2: rows 10..14 reach o = 4..8; rows 0..4 reach 0..3; rows 27..28 (clipped) 13..14
    assert ax.size == [5] and ax.origin[0].tolist() == [4, 0, 10]
    assert ax.start[0].tolist() == [8, 0, 20] and ax.length == [13]


# --------------------------------------------------------------------------- the four architectures


def _float64(model: nn.Module, light: bool = False) -> nn.Module:
    """A float64 copy; ``light``: with a small classifier head (the same layers up to the first dense one,
    whose rule is the generic whole-map one), so that no 100-million-weight layer is copied."""
    if not light:
        return copy.deepcopy(model).double().eval()
    head = model.classifier
    first = next(m for m in head.modules() if isinstance(m, nn.Linear))
    try:
        model.classifier = nn.Sequential(nn.Dropout(), nn.Linear(first.in_features, 16), nn.ReLU(inplace=True),
                                         nn.Linear(16, 10))
        return copy.deepcopy(model).double().eval()
    finally:
        model.classifier = head


BUNDLED = {
    # name: (builder, input side, square, stride)
    "alexnet_fmnist": (alexnet_fmnist, 64, 16, 8),
    "zfnet_fmnist": (zfnet_fmnist, 64, 16, 8),
    "vgg_fmnist": (vgg_fmnist, 32, 8, 4),
}


@pytest.mark.parametrize("name", list(BUNDLED))
def test_the_bundled_nets_equal_the_full_sweep(name):
    build, side, size, stride = BUNDLED[name]
    model = build(seed=0).eval()
    x = torch.randn(1, side, side, generator=torch.Generator().manual_seed(2))
    # float32, as the book runs them: within float32 rounding of the full sweep
    full, fast = both(Occlusion(model), x, size, stride)
    assert_same_maps(full, fast, elementwise=False)
    # float64: elementwise, at the top conv layer and at a low one (its totals come from the windows
    # and the summed-area table)
    m64 = _float64(model)
    for layer in ("c5_3", "c2_1") if name.startswith("vgg") else ("c5", "c2"):
        full, fast = both(Occlusion(m64, layer), x.double(), size, stride)
        assert_same_maps(full, fast, elementwise=True)


@pytest.mark.parametrize("name,side,size,stride,low", [("alexnet", 64, 16, 16, "c2"), ("zfnet", 64, 16, 16, "c2"),
                                                       ("vgg16", 32, 8, 8, "c3_1")])
def test_the_full_size_nets_equal_the_full_sweep(nets, name, side, size, stride, low):
    """torchvision's AlexNet, vizlib's ZFNet, VGG-16 (untrained) on small inputs."""
    model = nets[name].eval()
    x = torch.randn(3, side, side, generator=torch.Generator().manual_seed(3))
    full, fast = both(Occlusion(model), x, size, stride)
    assert_same_maps(full, fast, elementwise=False)
    if name == "vgg16":  # the adaptive pooling resizes 1x1 -> 7x7: whole maps before it, at the latest
        plan = plan_incremental(model, x[None], "features.29", full.ys, full.xs, size)
        assert plan.stop.startswith("layer avgpool is AdaptiveAvgPool2d") and plan.ops[plan.switch - 1].path != "avgpool"
    m64 = _float64(model, light=True)
    for layer in (None, low):
        full, fast = both(Occlusion(m64, layer), x.double(), size, stride)
        assert_same_maps(full, fast, elementwise=True)


def test_several_images_and_small_cache_groups(monkeypatch):
    model = _float64(alexnet_fmnist(seed=0))
    x = torch.randn(3, 1, 64, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    occ = Occlusion(model, "c3")
    full = occ.sweep_many(x, 16, 8, targets=[1, 2, 3], incremental=False, **Q)
    fast = occ.sweep_many(x, 16, 8, targets=[1, 2, 3], incremental=True, batch_size=20, **Q)
    monkeypatch.setattr(occ_mod, "INCREMENTAL_CACHE_BUDGET", 1)  # one image's caches at a time
    grouped = occ.sweep_many(x, 16, 8, targets=[1, 2, 3], incremental=True, batch_size=7, **Q)
    for a, b, g in zip(full, fast, grouped):
        assert b.strategy == g.strategy == "incremental"
        assert_same_maps(a, b, elementwise=True)
        assert_same_maps(a, g, elementwise=True)


# --------------------------------------------------------------------------- which way, and why


def test_the_default_takes_the_incremental_sweep_where_it_pays(nets):
    vgg = nets["vgg16"].eval()
    x = torch.randn(3, 64, 64, generator=torch.Generator().manual_seed(5))
    m = Occlusion(vgg).sweep(x, 16, 8, **Q)
    assert m.strategy == "incremental" and "estimated work" in m.strategy_note
    plan = plan_incremental(vgg, x[None], "features.29", m.ys, m.xs, 16)
    assert plan.pays and 0 < plan.switch < len(plan.ops)
    # a square as large as the image changes everything: no layer pays
    whole = Occlusion(alexnet_fmnist(seed=0)).sweep(torch.randn(1, 64, 64), 64, 1, **Q)
    assert whole.strategy == "full" and "no layer pays" in whole.strategy_note
    forced = Occlusion(alexnet_fmnist(seed=0)).sweep(torch.randn(1, 64, 64), 64, 1, incremental=True, **Q)
    assert forced.strategy == "incremental"


def test_forced_full_and_hooks():
    model = vgg_fmnist(seed=0).eval()
    x = torch.randn(1, 32, 32)
    occ = Occlusion(model)
    m = occ.sweep(x, 8, 4, incremental=False, **Q)
    assert m.strategy == "full" and "incremental=False" in m.strategy_note
    seen = []
    h = model.features[0].register_forward_pre_hook(lambda mod, inp: seen.append(len(inp[0])))
    try:
        m = occ.sweep(x, 8, 4, **Q)  # the hook must see the occluded images: the full sweep
        assert m.strategy == "full" and "forward hooks (features.0)" in m.strategy_note
        assert sum(seen) == 1 + 49
        seen.clear()
        m = occ.sweep(x, 8, 4, incremental=True, **Q)
        assert m.strategy == "incremental" and "did not see the occluded images" in m.strategy_note
        assert sum(seen) == 2  # the unoccluded pass and the traced one
    finally:
        h.remove()


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(64, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc((self.relu(self.conv(x)) + x).flatten(1))


def test_networks_it_cannot_follow_fall_back_and_say_so():
    x = torch.randn(1, 8, 8)
    res = Residual()
    m = Occlusion(res, "relu").sweep(x, 3, 1, **Q)
    assert m.strategy == "full" and "not a chain" in m.strategy_note
    with pytest.warns(UserWarning, match="incremental=True, but full sweep.*not a chain"):
        forced = Occlusion(res, "relu").sweep(x, 3, 1, incremental=True, **Q)
    assert forced.strategy == "full"
    torch.testing.assert_close(forced.probabilities, m.probabilities, rtol=0, atol=0)
    # a first layer with no incremental rule
    first = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"), nn.ReLU(), nn.Flatten(),
                          nn.Linear(128, 3))
    with pytest.warns(UserWarning, match="no incremental rule for the first layer.*padding_mode='reflect'"):
        m = Occlusion(first, "1").sweep(x, 3, 1, incremental=True, **Q)
    assert m.strategy == "full"
    # one in the middle: windows up to it, whole maps from it on
    mid = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1, padding_mode="circular"),
                        nn.ReLU(), nn.Flatten(), nn.Linear(256, 3)).double()
    full, fast = both(Occlusion(mid, "3"), x.double(), 3, 1)
    assert "whole maps from 2 on" in fast.strategy_note and "padding_mode='circular'" in fast.strategy_note
    assert_same_maps(full, fast, elementwise=True)


class ScaledOutput(nn.Module):
    """A chain whose output is changed outside its modules: replaying the modules does not give it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(72, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flat(self.conv(x))).mul_(2.0)


def test_a_chain_that_does_not_replay_falls_back():
    x = torch.randn(1, 8, 8)
    net = ScaledOutput()
    with pytest.warns(UserWarning, match="does not give its output"):
        m = Occlusion(net, "conv").sweep(x, 3, 1, incremental=True, **Q)
    assert m.strategy == "full"
    ref = Occlusion(net, "conv").sweep(x, 3, 1, incremental=False, **Q)
    assert torch.equal(m.probabilities, ref.probabilities)


# --------------------------------------------------------------------------- the model as found


def test_the_model_and_the_image_are_left_as_found(monkeypatch):
    model = alexnet_fmnist(seed=0)  # in-place ReLUs; in train mode (dropout)
    model.train()
    before = [p.clone() for p in model.parameters()]
    hooks, mode = hook_count(model), modes(model)
    x = torch.randn(1, 64, 64)
    x0 = x.clone()
    occ = Occlusion(model)
    m = occ.sweep(x, 16, 8, incremental=True, **Q)
    assert m.strategy == "incremental"
    assert torch.equal(x, x0) and hook_count(model) == hooks and modes(model) == mode
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))

    def boom(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(inc.IncrementalPlan, "_batch", boom)
    with pytest.raises(RuntimeError, match="boom"):
        occ.sweep(x, 16, 8, incremental=True, **Q)
    assert hook_count(model) == hooks and modes(model) == mode and torch.equal(x, x0)
    assert all(p.requires_grad for p in model.parameters())


def test_an_inplace_first_layer_does_not_write_into_the_image():
    net = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(1, 2, 3), nn.ReLU(inplace=True), nn.Flatten(),
                        nn.Linear(2 * 14 * 14, 3)).double()
    x = torch.randn(1, 16, 16, dtype=torch.float64)
    x0 = x.clone()
    full, fast = both(Occlusion(net, "2", mean=(0.5,), std=(0.25,)), x, 4, 2)
    assert torch.equal(x, x0)
    assert_same_maps(full, fast, elementwise=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_the_gpu_equals_the_cpu():
    model = alexnet_fmnist(seed=0).eval()
    x = torch.randn(1, 64, 64, generator=torch.Generator().manual_seed(6))
    cpu = Occlusion(model).sweep(x, 16, 8, incremental=False, **Q)
    full, fast = both(Occlusion(model, device="cuda"), x, 16, 8)
    assert fast.probability.device.type == "cpu" and next(model.parameters()).device.type == "cpu"
    assert_same_maps(full, fast, elementwise=False)
    assert_same_maps(cpu, fast, elementwise=False)
