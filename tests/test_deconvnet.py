"""The deconvnet against an independent autograd formulation, and its behaviour on bad input.

The reference: Zeiler's deconvnet is autograd's backward pass of the forward
graph with every ReLU's backward replaced by a ReLU of the incoming signal,
max pooling's own backward (which adds at shared switches), convolution's
and the dense layers' own backward (no bias involved), and the response
normalisation's backward replaced by the identity. It is built here on a
copy of the model with those modules swapped, independent of vizlib's code.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vizlib.core.errors import InputTooSmall
from vizlib.methods.deconvnet import Deconvnet, normalize_projection
from vizlib.core.errors import NoPositiveActivation, UnsupportedLayer
from vizlib.core.errors import ImageError
from vizlib.core.images import load_image, to_display
from vizlib.models.nets import alexnet, vgg16, zfnet
from vizlib.methods.receptive_field import unit_box

TOL = 1e-5


# --------------------------------------------------------------------------- the reference


class _RectifyDown(torch.autograd.Function):
    """ReLU forward; on the way down a ReLU of the incoming signal (the forward mask is ignored)."""

    @staticmethod
    def forward(ctx, x):  # type: ignore[override]
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        return g.clamp_min(0)


class _PassDown(torch.autograd.Function):
    """The module forward; the identity on the way down."""

    @staticmethod
    def forward(ctx, x, module):  # type: ignore[override]
        return module(x)

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        return g, None


class DeconvReLU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _RectifyDown.apply(x)


class PassDown(nn.Module):
    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.inner = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _PassDown.apply(x, self.inner)


def _swap(model: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """Put the reference's modules in place of ReLUs and LRNs; return what to put back."""
    undo = []
    for name, module in list(model.named_modules()):
        if not name or not isinstance(module, (nn.ReLU, nn.LocalResponseNorm)):
            continue
        parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
        leaf = name.rsplit(".", 1)[-1]
        setattr(parent, leaf, DeconvReLU() if isinstance(module, nn.ReLU) else PassDown(module))
        undo.append((parent, leaf, module))
    return undo


class Reference:
    """One forward pass of the reference net, kept, and backward passes from any recorded layer.

    The model's ReLUs and LRNs are swapped for the reference modules for the
    forward pass only (and put back in ``finally``); the autograd graph it
    leaves behind is what the backward passes use.
    """

    def __init__(self, model: nn.Module, image: torch.Tensor, paths: list[str]) -> None:
        self.x = image.detach().clone().unsqueeze(0).requires_grad_(True)
        self.out: dict[str, torch.Tensor] = {}
        flags = [(p, p.requires_grad) for p in model.parameters()]
        mode = model.training
        undo = _swap(model)
        handles = []
        try:
            model.eval()
            for p, _ in flags:
                p.requires_grad_(False)
            handles = [model.get_submodule(p).register_forward_hook(self._keep(p)) for p in paths]
            model(self.x)
        finally:
            for h in handles:
                h.remove()
            for parent, leaf, module in undo:
                setattr(parent, leaf, module)
            for p, flag in flags:
                p.requires_grad_(flag)
            model.train(mode)

    def _keep(self, path: str):
        def hook(module, inputs, output):
            self.out[path] = output

        return hook

    def project(self, path: str, signal: torch.Tensor) -> torch.Tensor:
        (g,) = torch.autograd.grad(self.out[path], self.x, signal.unsqueeze(0), retain_graph=True)
        return g[0]


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def unit_signal(act: torch.Tensor, c: int, y: int | None = None, x: int | None = None) -> torch.Tensor:
    s = torch.zeros_like(act)
    if y is None:
        s[c] = act[c]
    else:
        s[c, y, x] = act[c, y, x]
    return s


# --------------------------------------------------------------------------- fixtures

BUILDERS = {"alexnet": (alexnet, (99, 99)), "zfnet": (zfnet, (99, 99)), "vgg16": (vgg16, (40, 40))}


@pytest.fixture(scope="module", params=list(BUILDERS))
def setup(request):
    build, size = BUILDERS[request.param]
    torch.manual_seed(1)
    model = build(seed=0, num_classes=10).double().eval()
    image = torch.randn(3, *size, dtype=torch.float64)
    paths = list(model.vizlib_layers.values())
    ref = Reference(model, image, paths)
    rec = Deconvnet(model).record(image, list(model.vizlib_layers))
    return request.param, model, image, ref, rec


@pytest.fixture(scope="module")
def small_alexnet():
    return alexnet(seed=0, num_classes=10)


def _positive_channels(act: torch.Tensor, n: int = 2) -> list[int]:
    strength = act.flatten(1).amax(1)
    return strength.argsort(descending=True)[:n].tolist()


# --------------------------------------------------------------------------- equality with autograd


def _layers(model: nn.Module, name: str, kinds: str) -> list[str]:
    """The layers a test goes through: for VGG-16 every conv layer but only some pools (time)."""
    out = [k for k in model.vizlib_layers if k[0] in kinds]
    if name == "vgg16":
        out = [k for k in out if not k.startswith("p") or k == "p5"]
    return out


def test_units_from_every_conv_and_pool_layer_match_autograd(setup):
    name, model, image, ref, rec = setup
    n = 1 if name == "vgg16" else 2
    layers = _layers(model, name, "cp")
    for label in layers:
        path = model.vizlib_layers[label]
        act = ref.out[path][0].detach()
        chans = _positive_channels(act, n)
        # the automatic choice everywhere; crops forced on and off at two layers of AlexNet and ZFNet
        modes = (None, True, False) if label in ("c2", "c5") else (None,)
        results = {crop: rec.project(label, chans, crop=crop) for crop in modes}
        for b, c in enumerate(chans):
            p = results[None]
            y, x = p.position[b].tolist()
            assert act[c, y, x] == act[c].max(), f"{name} {label}: not the strongest activation"
            expected = ref.project(path, unit_signal(act, c, y, x))
            for crop, p in results.items():
                assert p.kind == "unit" and not p.empty.any()
                err = rel_err(p.full(b), expected)
                assert err < TOL, f"{name} {label} map {c} crop={crop}: relative error {err:.2e}"


def test_whole_layers_and_maps_match_autograd(setup):
    name, model, image, ref, rec = setup
    layers = _layers(model, name, "cpf")
    if name == "vgg16":  # a few layers (time); every conv layer is checked unit by unit above
        layers = ["c2_2", "c4_2", "c5_3", "p5", "fc7"]
    for label in layers:
        path = model.vizlib_layers[label]
        act = ref.out[path][0].detach()
        p = rec.project(label)
        assert p.pixels.shape == (1, *image.shape)
        err = rel_err(p.pixels[0], ref.project(path, act))
        assert err < TOL, f"{name} {label} whole layer: relative error {err:.2e}"
    label = [k for k in model.vizlib_layers if k.startswith("c")][-1]
    act = ref.out[model.vizlib_layers[label]][0].detach()
    chans = _positive_channels(act)
    p = rec.project(label, chans, whole_map=True)
    for b, c in enumerate(chans):
        assert rel_err(p.pixels[b], ref.project(model.vizlib_layers[label], unit_signal(act, c))) < TOL


def test_dense_units_match_autograd(setup):
    name, model, image, ref, rec = setup
    for label in ("fc6", "fc7", "fc8"):
        path = model.vizlib_layers[label]
        act = ref.out[path][0].detach()
        units = act.argsort(descending=True)[: 1 if name == "vgg16" else 2].tolist()
        p = rec.project(label, units)
        for b, u in enumerate(units):
            s = torch.zeros_like(act)
            s[u] = act[u]
            err = rel_err(p.pixels[b], ref.project(path, s))
            assert err < TOL, f"{name} {label} unit {u}: relative error {err:.2e}"


def test_mask_and_signal(setup):
    name, model, image, ref, rec = setup
    label = "c2" if name != "vgg16" else "c3_1"
    path = model.vizlib_layers[label]
    act = ref.out[path][0].detach()
    gen = torch.Generator().manual_seed(3)
    masks = (torch.rand(2, *act.shape, generator=gen, dtype=torch.float64) > 0.5).double()
    p = rec.project(label, mask=masks)
    assert p.kind == "mask" and len(p) == 2
    for b in range(2):
        assert rel_err(p.pixels[b], ref.project(path, act * masks[b])) < TOL
    sig = torch.rand(act.shape, generator=gen, dtype=torch.float64)
    q = rec.project_signal(label, sig)
    assert rel_err(q.pixels[0], ref.project(path, sig)) < TOL


@pytest.mark.filterwarnings("ignore::vizlib.core.errors.NoPositiveActivation")
def test_windows_are_the_receptive_fields(setup):
    name, model, image, ref, rec = setup
    label = "c3" if name != "vgg16" else "c3_2"
    p = rec.project(label, range(0, 256, 32), top=2)
    for b in range(len(p)):
        y, x = p.position[b].tolist()
        box = unit_box(model, label, y, x, tuple(image.shape[1:]))
        assert tuple(p.boxes[b].tolist()) == box
        assert p.crop(b).shape[1:] == (box[2] - box[0], box[3] - box[1])


def _other_nets():
    """The bundled Fashion-MNIST nets (1 channel) and ZFNet as loaded with ImageNet weights."""
    nets = [("zfnet, norm before pool", lambda: zfnet(seed=0, num_classes=10, norm_before_pool=True), 3, 67)]
    try:
        from vizlib.models import bundled_nets as bm
    except ImportError:
        return nets
    return nets + [(f.__name__, lambda f=f: f(seed=0), 1, 32)
                   for f in (bm.alexnet_fmnist, bm.zfnet_fmnist, bm.vgg_fmnist)]


@pytest.mark.parametrize("name,build,channels,size", _other_nets(), ids=[n[0] for n in _other_nets()])
def test_the_other_model_sets_match_autograd(name, build, channels, size):
    model = build().double().eval()
    image = torch.randn(channels, size, size + 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ref = Reference(model, image, list(model.vizlib_layers.values()))
    rec = Deconvnet(model).record(image, list(model.vizlib_layers))
    names = list(model.vizlib_layers)
    convs = [k for k in names if k.startswith("c")]
    for label in (convs[1], convs[-1], [k for k in names if k.startswith("p")][-1], "fc6", "fc8"):
        path = model.vizlib_layers[label]
        act = ref.out[path][0].detach()
        assert rel_err(rec.project(label).pixels[0], ref.project(path, act)) < TOL, f"{name} {label}"
        if act.ndim == 3 and act.max() > 0:
            c = int(act.flatten(1).amax(1).argmax())
            p = rec.project(label, c)
            y, x = p.position[0].tolist()
            assert rel_err(p.full(0), ref.project(path, unit_signal(act, c, y, x))) < TOL, f"{name} {label} unit"


# --------------------------------------------------------------------------- unpooling adds


def test_unpooling_adds_where_windows_share_a_maximum():
    # One maximum in the middle of a 5x5 image: all four 3x3/2 windows pick it.
    pool = nn.Sequential(nn.MaxPool2d(3, 2))
    x = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
    x[0, 0, 2, 2] = 2.0
    out, idx = F.max_pool2d(x, 3, 2, return_indices=True)
    assert (idx == 12).all()
    p = Deconvnet(pool).project(x, "0")  # the whole layer: four values of 2 come down
    assert p.pixels[0, 0, 2, 2] == 8.0
    assert p.pixels.sum() == 8.0
    # max_unpool2d writes instead of adding, and would give 2
    assert F.max_unpool2d(out, idx, 3, 2, output_size=(5, 5))[0, 0, 2, 2] == 2.0
    # each window alone puts its own value there
    q = Deconvnet(pool).project(x, "0", 0, [(0, 0), (0, 1), (1, 0), (1, 1)])
    assert torch.allclose(q.full()[:, 0, 2, 2], torch.full((4,), 2.0, dtype=torch.float64))


def test_unpooling_adds_inside_a_single_projection_on_crops():
    # A 2x2 convolution above the pool: one unit sees all four windows, which share a switch.
    net = nn.Sequential(nn.MaxPool2d(3, 2), nn.Conv2d(1, 1, 2, bias=False)).double()
    with torch.no_grad():
        net[1].weight.fill_(1.0)
    x = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
    x[0, 0, 2, 2] = 2.0
    for crop in (True, False):
        p = Deconvnet(net).project(x, "1", 0, (0, 0), crop=crop)
        full = p.full(0)
        assert full[0, 2, 2] == 4 * 8.0  # the unit's value 8, through four unit weights, four windows
        assert full.sum() == 32.0


# --------------------------------------------------------------------------- shapes and odd sizes


@pytest.fixture(scope="module")
def alexnet64():
    return alexnet(seed=0, num_classes=10).double()


@pytest.mark.parametrize("size", [(127, 151), (131, 130)])
def test_odd_input_sizes_reconstruct_the_exact_shape(alexnet64, size):
    model = alexnet64
    image = torch.randn(3, *size, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    dn = Deconvnet(model)
    rec = dn.record(image, ["c1", "c2", "c5", "fc6"])
    ref = Reference(model, image, [model.vizlib_layers[k] for k in ("c2", "c5")])
    for label in ("c1", "c2", "c5", "fc6"):
        p = rec.project(label)
        assert p.pixels.shape == (1, 3, *size)
    for label in ("c2", "c5"):
        path = model.vizlib_layers[label]
        act = ref.out[path][0].detach()
        c = _positive_channels(act, 1)[0]
        p = rec.project(label, c)
        assert p.full().shape == (1, 3, *size)
        y, x = p.position[0].tolist()
        assert rel_err(p.full(0), ref.project(path, unit_signal(act, c, y, x))) < TOL


def test_zfnet_ceil_mode_pooling_at_an_odd_size():
    model = zfnet(seed=0, num_classes=10).double()
    image = torch.randn(3, 133, 137, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ref = Reference(model, image, [model.vizlib_layers["c2"]])
    rec = Deconvnet(model).record(image, "c2")
    act = ref.out[model.vizlib_layers["c2"]][0].detach()
    p = rec.project("c2")
    assert p.pixels.shape == (1, 3, 133, 137)
    assert rel_err(p.pixels[0], ref.project(model.vizlib_layers["c2"], act)) < TOL


# --------------------------------------------------------------------------- batching


def test_batched_equals_one_at_a_time_and_top_k(small_alexnet):
    model = small_alexnet
    image = torch.randn(3, 127, 127, generator=torch.Generator().manual_seed(0))
    rec = Deconvnet(model).record(image, "c4")
    many = rec.project("c4", [0, 5, 9], top=3)
    assert len(many) == 9
    act = rec.activation("c4")[0]
    for b in range(len(many)):
        c = int(many.channel[b])
        y, x = many.position[b].tolist()
        one = rec.project("c4", c, (y, x), batch_size=1)
        assert torch.allclose(many.pixels[b], one.pixels[0], rtol=1e-4, atol=1e-7)
        assert many.value[b] == act[c, y, x]
    # the three of each map are its three strongest, strongest first
    for i, c in enumerate([0, 5, 9]):
        vals = many.value[3 * i : 3 * i + 3]
        assert torch.equal(vals, act[c].flatten().topk(3).values)


def test_project_layers_shares_one_forward_pass(small_alexnet):
    model = small_alexnet
    image = torch.randn(3, 127, 127, generator=torch.Generator().manual_seed(0))
    dn = Deconvnet(model)
    calls = []
    handle = model.features[0].register_forward_hook(lambda *a: calls.append(1))
    try:
        out = dn.project_layers(image, ["c1", "c3", "c5", "fc7"])
    finally:
        handle.remove()
    assert len(calls) == 1
    assert list(out) == ["c1", "c3", "c5", "fc7"]
    assert torch.allclose(out["c3"].pixels, dn.project(image, "c3").pixels)


# --------------------------------------------------------------------------- leaving the model as found


@pytest.mark.filterwarnings("ignore::vizlib.core.errors.NoPositiveActivation")
def test_model_is_left_as_found(small_alexnet):
    model = copy.deepcopy(small_alexnet).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [p.requires_grad for p in model.parameters()]
    image = torch.randn(3, 127, 127)
    Deconvnet(model).project(image, "c5", [1, 2, 3])
    Deconvnet(model).project(image, "fc6", 4)
    with pytest.raises(ValueError):
        Deconvnet(model).project(image, "c5", 999)
    assert all(m.training for m in model.modules())
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    assert all(isinstance(m, nn.ReLU) and m.inplace for m in model.modules() if isinstance(m, nn.ReLU))


def test_hooks_are_removed_when_the_forward_pass_fails():
    class Broken(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.relu = nn.ReLU()
            self.never = nn.ReLU()

        def forward(self, x):
            x = self.relu(self.conv(x))
            raise RuntimeError("boom")

    net = Broken().train()
    with pytest.raises(RuntimeError, match="boom"):
        Deconvnet(net).project(torch.randn(3, 8, 8), "never", 0)
    assert not any(m._forward_hooks for m in net.modules())
    assert all(m.training for m in net.modules())


# --------------------------------------------------------------------------- bad input


def test_channel_and_position_out_of_range(small_alexnet):
    dn = Deconvnet(small_alexnet)
    x = torch.randn(3, 127, 127)
    with pytest.raises(ValueError, match=r"channel 256 is out of range: layer c5 has 256 feature maps \(0..255\)"):
        dn.project(x, "c5", 256)
    with pytest.raises(ValueError, match="channel -1 is out of range"):
        dn.project(x, "c5", [0, -1])
    with pytest.raises(ValueError, match="outside layer c5's 7×7 feature maps"):
        dn.project(x, "c5", 0, (7, 0))
    with pytest.raises(ValueError, match="fc6 has 4096 units"):
        dn.project(x, "fc6", 5000)
    with pytest.raises(KeyError, match="unknown layer 'c9'"):
        dn.project(x, "c9", 0)


def test_a_layer_with_no_positive_activation_warns_and_returns_zeros(small_alexnet):
    model = copy.deepcopy(small_alexnet)
    with torch.no_grad():
        model.features[10].bias.fill_(-1e3)  # c5 is dead
    dn = Deconvnet(model)
    x = torch.randn(3, 127, 127)
    with pytest.warns(NoPositiveActivation, match="no positive activation"):
        p = dn.project(x, "c5", [0, 1])
    assert p.empty.all() and (p.pixels == 0).all()
    with pytest.warns(NoPositiveActivation, match="no positive signal"):
        q = dn.project(x, "c5")
    assert q.empty.all() and (q.pixels == 0).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not dn.project(x, "c4", [0]).empty.any()


def test_wrong_channels_for_an_rgb_model(small_alexnet, tmp_path):
    dn = Deconvnet(small_alexnet)
    with pytest.raises(ImageError, match=r"expects 3-channel images but the image is greyscale.*Fix: repeat"):
        dn.project(torch.randn(1, 127, 127), "c1", 0)
    with pytest.raises(ImageError, match=r"RGBA.*drop the alpha channel"):
        dn.project(torch.randn(4, 127, 127), "c1", 0)
    from PIL import Image

    grey = Image.fromarray((np.random.default_rng(0).random((130, 130)) * 255).astype(np.uint8), "L")
    with pytest.raises(ImageError, match=r"greyscale \(1 channel\) but this network takes RGB.*convert=True"):
        load_image(grey, small_alexnet)
    rgba = grey.convert("RGBA")
    with pytest.raises(ImageError, match=r"RGBA \(4 channels\).*convert=True"):
        load_image(rgba, small_alexnet)
    assert load_image(rgba, small_alexnet, convert=True).shape == (1, 3, 130, 130)
    path = tmp_path / "grey.png"
    grey.save(path)
    p = Deconvnet(small_alexnet).project(load_image(path, small_alexnet, convert=True), "c1", 0)
    assert p.pixels.shape[1] == 3


def test_greyscale_model_rejects_colour(tmp_path):
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2))
    with pytest.raises(ImageError, match="trained on greyscale"):
        Deconvnet(net).project(torch.randn(3, 28, 28), "1", 0)
    assert Deconvnet(net).project(torch.randn(1, 28, 28), "1", 0).pixels.shape[1] == 1


def test_non_image_file(small_alexnet, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not a picture\n")
    with pytest.raises(ImageError, match=r"notes.jpg is not an image file.*text file"):
        load_image(bad, small_alexnet)
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "missing.png", small_alexnet)


def test_tiny_images(small_alexnet):
    from PIL import Image

    dn = Deconvnet(small_alexnet)
    with pytest.raises(InputTooSmall, match=r"16×16 pixels, smaller than this network accepts \(63×63"):
        dn.project(torch.randn(3, 16, 16), "c1", 0)
    with pytest.raises(InputTooSmall, match="smaller than this network accepts"):
        load_image(Image.new("RGB", (12, 40)), small_alexnet)
    with pytest.raises(ImageError, match="integer type"):
        dn.project(torch.zeros(3, 127, 127, dtype=torch.uint8), "c1", 0)
    with pytest.raises(ImageError, match="shape"):
        dn.project(torch.zeros(127, 127), "c1", 0)


def test_unsupported_layers_are_named():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU())
    dn = Deconvnet(net)
    x = torch.randn(3, 16, 16)
    with pytest.raises(UnsupportedLayer, match=r"layer 1 \(BatchNorm2d\).*It supports Conv2d, ReLU, MaxPool2d"):
        dn.project(x, "4", 0)
    assert dn.project(x, "0", 0).pixels.shape == (1, 3, 3, 3)  # below the batch norm all is well

    class Skip(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(3, 3, 3, padding=1)
            self.b = nn.ReLU()
            self.c = nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x):
            return self.c(self.b(self.a(x)) + x)

    with pytest.raises(UnsupportedLayer, match=r"layer c \(Conv2d\) does not take the output of b"):
        Deconvnet(Skip()).project(x, "c", 0)


def test_display_helpers(small_alexnet):
    p = Deconvnet(small_alexnet).project(torch.randn(3, 127, 127), "c3", [1, 2])
    one = p.display(0)
    assert one.ndim == 3 and one.shape[-1] == 3 and 0 <= one.min() and one.max() <= 1
    assert abs(float(np.abs(one - 0.5).max()) - 0.5) < 1e-6
    assert len(p.display()) == 2
    assert normalize_projection(torch.zeros(1, 4, 4)).tolist() == [[0.5] * 4] * 4
    assert "c3" in repr(p)
    assert to_display(torch.zeros(3, 2, 2), (0.5,) * 3, (0.25,) * 3).shape == (2, 2, 3)


def test_load_image_checks_size_after_the_nets_own_transform():
    # A 12-pixel picture is fine for a bundled net whose transform blows it up
    # to 64; the size check applies to what the network will see.
    from types import SimpleNamespace

    from PIL import Image

    from vizlib.models.bundled_nets import alexnet_fmnist
    from vizlib.models.training import Preprocess

    model = alexnet_fmnist(seed=0)
    net = SimpleNamespace(model=model, transform=Preprocess(64, 0.5, 0.25))
    x = load_image(Image.new("L", (12, 12), 128), net)
    assert x.shape == (1, 1, 64, 64)
    with pytest.raises(InputTooSmall, match="12×12 pixels, smaller than this network accepts"):
        load_image(Image.new("L", (12, 12), 128), model)  # no transform: the picture as it is
