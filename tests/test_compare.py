"""vizlib.compare: sparsity against brute force and its memory, side-by-side reconstructions with each
net's own preprocessing, energy inside the object, filter spectra, RMS, dead filters, aliasing, claims."""

from __future__ import annotations

import math
import weakref

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import vizlib as vl
from vizlib.models.bundled_nets import alexnet_fmnist, vgg_fmnist, zfnet_fmnist
from vizlib.methods.compare import Claim, ObjectImage, box_mask, claims_table, conv_pool_layers, dead_filters, energy_by_stage, energy_inside, energy_table, filter_spectrum, garment_mask, grid_contrast, net_accuracy, prepare, rms_dominance, side_by_side, sparsity, stage_layers, transform_mask
from vizlib.core.errors import NoObjectRegion
from vizlib.core.errors import ImageError
from vizlib.core.net import Net
from vizlib.models.nets import alexnet, vgg16, zfnet
from vizlib.core.layers import name_layers
from vizlib.models.training import Preprocess

from ._memory import RandomImages, peak_rss_during
from .conftest import hook_count, modes


def small_cnn() -> nn.Module:
    """Two conv + pool blocks, named c1, p1, c2, p2: enough for the streaming machinery, fast."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                          nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2)).eval()
    model.vizlib_layers = name_layers(model)
    return model


def bundled_net(arch: str, seed: int = 0) -> Net:
    builder = {"alexnet": alexnet_fmnist, "zfnet": zfnet_fmnist, "vgg16": vgg_fmnist}[arch]
    size = 32 if arch == "vgg16" else 64
    p = Preprocess(size, 0.286, 0.353)
    return Net(arch, "bundled", builder(seed=seed).eval(), list(vl.FASHION_MNIST_CLASSES), p, (p.mean,), (p.std,),
               size, "untrained, for tests")


def rgb_net(size: int = 67) -> Net:
    """A torchvision-style net: 3 channels, resize + centre crop + ImageNet normalisation."""
    from torchvision import transforms as T

    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    tf = T.Compose([T.Resize(size + 8), T.CenterCrop(size), T.ToTensor(), T.Normalize(mean, std)])
    return Net("alexnet", "random", alexnet(seed=0, num_classes=10).eval(), [f"class {i}" for i in range(10)], tf,
               mean, std, size, "untrained, for tests")


def brute_force_zeros(model: nn.Module, x: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
    """Every activation of every layer, kept whole, then zeros counted per map."""
    acts: dict[str, torch.Tensor] = {}
    handles = [model.get_submodule(model.vizlib_layers[n]).register_forward_hook(
        lambda m, i, o, n=n: acts.__setitem__(n, o.detach().clone())) for n in layers]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return {n: (a == 0).sum(dim=(0, 2, 3)) for n, a in acts.items()}


# --------------------------------------------------------------------------- sparsity


@pytest.mark.parametrize("arch", ["alexnet", "zfnet", "vgg16", "full_alexnet"])
def test_sparsity_equals_brute_force_count(arch):
    if arch == "full_alexnet":
        model, size = alexnet(seed=0, num_classes=10).double().eval(), 67
    else:
        model = bundled_net(arch).model.double()
        size = 32 if arch == "vgg16" else 64
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, model.features[0].in_channels, size, size, generator=g, dtype=torch.float64)
    x[4] = 0.0  # an image of zeros: whole maps silent
    batches = [x[0:3], x[3:4], x[4:7]]  # uneven, as a loader might give
    s = sparsity(model, batches, progress=False)
    layers = conv_pool_layers(model)
    assert s.layers == layers and s.images == 7
    brute = brute_force_zeros(model, x, layers)
    for n in layers:
        assert torch.equal(s.map_zeros[n], brute[n]), n
        assert s.zeros[n] == int(brute[n].sum())
        assert s.total[n] == x.shape[0] * brute[n].numel() * (s.map_total[n] // x.shape[0])
    # the count is exact whatever the batching
    again = sparsity(model, x, batch_size=2, progress=False)
    assert again.zeros == s.zeros and again.total == s.total


def test_sparsity_of_a_hand_built_net():
    conv = nn.Conv2d(1, 2, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
        conv.bias.zero_()
    model = nn.Sequential(conv, nn.ReLU(inplace=True), nn.MaxPool2d(2))
    model.vizlib_layers = name_layers(model)
    x = torch.tensor([[[[1.0, -2.0], [0.0, 3.0]]], [[[-1.0, -1.0], [-1.0, -1.0]]]])
    s = sparsity(model, x, progress=False)
    # c1: map 0 = relu(x): zeros at -2, 0 and four -1s -> 6 of 8; map 1 = relu(-x): zeros at 1, 0, 3 -> 3 of 8
    assert s.map_zeros["c1"].tolist() == [6, 3]
    assert s.total["c1"] == 16 and s.zeros["c1"] == 9
    # p1: map 0 = [3, 0], map 1 = [2, 1]
    assert s.map_zeros["p1"].tolist() == [1, 0]
    assert s.share["p1"] == 0.25
    assert s.dead_maps("c1") == [] and s.pool_drops() == [("c1", "p1", 9 / 16, 0.25)]


def test_sparsity_memory_is_flat_in_the_number_of_images():
    model = small_cnn()
    born: list[weakref.ref] = []
    acts: list[weakref.ref] = []
    handle = model.get_submodule(model.vizlib_layers["c2"]).register_forward_hook(
        lambda m, i, o: acts.append(weakref.ref(o)))

    def stream(n: int):
        g = torch.Generator().manual_seed(1)
        for _ in range(n):
            b = torch.randn(2, 1, 32, 32, generator=g)
            born.append(weakref.ref(b))
            # the consumer holds no earlier batch: at most the one it is on and this new one
            assert sum(r() is not None for r in born) <= 2
            yield b

    try:
        sizes = []
        for n in (3, 40):
            s = sparsity(model, stream(n), progress=False)
            assert s.images == 2 * n
            sizes.append(s.state_bytes())
    finally:
        handle.remove()
    assert sizes[0] == sizes[1]
    assert all(r() is None for r in born)  # no batch kept
    assert all(r() is None for r in acts)  # no activation kept


def test_sparsity_process_peak_memory_is_flat_for_10x_the_images():
    import psutil

    model = small_cnn()
    run = lambda n: sparsity(model, RandomImages(n, 32), batch_size=32, progress=False)  # noqa: E731
    assert run(64).images == 64
    base = psutil.Process().memory_info().rss
    small = peak_rss_during(lambda: run(64)) - base
    large = peak_rss_during(lambda: run(640)) - base
    # one batch and a few integers per map are all that is held: 10x the images, the same peak
    assert large - small < 20 * 2**20, (small, large)


def test_sparsity_of_an_image_set_uses_the_nets_preprocessing():
    net = bundled_net("alexnet")
    data = vl.fashion_mnist_sample().subset(slice(0, 24))
    by_set = sparsity(net, data, batch_size=10, progress=False)
    x = net.transform.batch(torch.from_numpy(data.images))
    by_tensor = sparsity(net.model, x, progress=False)
    assert by_set.zeros == by_tensor.zeros and by_set.images == 24
    loader = DataLoader(TensorDataset(x, torch.zeros(24)), batch_size=7)
    assert sparsity(net.model, loader, progress=False).zeros == by_tensor.zeros
    pictures = [data.images[i] for i in range(24)]
    assert sparsity(net, pictures, progress=False).zeros == by_tensor.zeros


def test_sparsity_leaves_the_model_as_it_found_it():
    model = zfnet_fmnist(seed=0).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    hooks, flags = hook_count(model), modes(model)
    sparsity(model, torch.randn(6, 1, 64, 64), progress=False)
    with pytest.raises(KeyError, match="unknown layer"):
        sparsity(model, torch.randn(2, 1, 64, 64), ["c9"], progress=False)
    with pytest.raises(ValueError, match="no images"):
        sparsity(model, [], progress=False)
    with pytest.raises(ImageError, match="1-channel"):
        sparsity(model, torch.randn(2, 3, 64, 64), progress=False)
    assert hook_count(model) == hooks and modes(model) == flags
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_dead_filters_silent_and_faint():
    net = bundled_net("alexnet")
    conv = net.model.features[0]
    with torch.no_grad():
        conv.bias[3] = -1e6  # never active
        conv.weight[5].mul_(1e-4)  # negligible weights
    s = sparsity(net, torch.randn(5, 1, 64, 64), ["c1"], progress=False)
    d = dead_filters(net, s)
    assert d.silent == [3] and d.faint == [5] and d.dead == [3, 5]
    assert d.filters == 32 and math.isclose(d.share, 2 / 32)
    assert "2 of 32 c1 filters dead" in str(d)
    with pytest.raises(KeyError, match="was not counted"):
        dead_filters(net, s, layer="c2")


# --------------------------------------------------------------------------- side by side


def test_side_by_side_with_different_input_sizes_each_net_preprocesses():
    nets = {"AlexNet": bundled_net("alexnet"), "VGG-16": bundled_net("vgg16"), "RGB": rgb_net()}
    img = vl.fashion_mnist_sample().images[0]
    mask = garment_mask(img)
    states = {k: (hook_count(n.model), {p: v.clone() for p, v in n.model.state_dict().items()}) for k, n in nets.items()}
    r = side_by_side(nets, ObjectImage("shirt", img, mask))
    sizes = {v.name: v.input.shape[:2] for v in r.views}
    assert sizes == {"AlexNet": (64, 64), "VGG-16": (32, 32), "RGB": (67, 67)}
    for v, net in zip(r.views, nets.values()):
        assert v.layers == stage_layers(net.model)
        side = net.input_size
        channels = 3 if v.name == "RGB" else 1
        assert all(tuple(p.shape) == (channels, side, side) for p in v.pixels.values())
        assert tuple(v.mask.shape) == (side, side)
        assert 0 < v.area < 1
        assert all(0 <= e <= 1 for e in v.energy.values())
        probs = [p for _, p in v.predictions]
        assert len(probs) == 5 and probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-9
    # the whole-layer reconstruction is what the deconvnet gives for the net's own input
    v, net = r.views[1], nets["VGG-16"]
    ref = vl.Deconvnet(net).project_layers(prepare(net, img), [v.layers[-1]])[v.layers[-1]]
    assert torch.allclose(ref.pixels[0], v.pixels[v.layers[-1]])
    for k, n in nets.items():
        hooks, state = states[k]
        assert hook_count(n.model) == hooks
        assert all(torch.equal(state[p], t) for p, t in n.model.state_dict().items())
    # a colour photo goes to the greyscale nets too
    photo = (np.random.default_rng(0).random((90, 120, 3)) * 255).astype(np.uint8)
    r2 = side_by_side(nets, photo, mask=box_mask(photo.shape, (20, 30, 70, 90)), name="photo")
    assert [v.input.shape[:2] for v in r2.views] == [(64, 64), (32, 32), (67, 67)]
    s = energy_by_stage([r, r2])
    assert set(s) == set(nets) and s["AlexNet"]["images"] == 2 and len(s["VGG-16"]["inside"]) == 5
    assert len(energy_table([r, r2])) == 6


def test_an_image_without_an_object_region():
    nets = {"AlexNet": bundled_net("alexnet")}
    img = vl.fashion_mnist_sample().images[1]
    r = side_by_side(nets, img, name="no box")
    assert r.views[0].mask is None and r.views[0].energy == {}
    with pytest.raises(NoObjectRegion, match="'no box' has no object region"):
        energy_by_stage([r])
    with pytest.raises(NoObjectRegion):
        energy_table([r])
    with pytest.raises(NoObjectRegion, match="give a mask"):
        energy_inside(torch.ones(1, 4, 4), None)
    with pytest.raises(NoObjectRegion, match="empty"):
        energy_inside(torch.ones(1, 4, 4), torch.zeros(4, 4, dtype=torch.bool))
    with pytest.raises(NoObjectRegion, match="no garment"):
        garment_mask(np.zeros((28, 28), np.uint8))
    with pytest.raises(NoObjectRegion, match="holds no pixel"):
        box_mask((28, 28), (30, 0, 40, 10))
    # a box in the corner that the net's centre crop cuts away
    photo = np.full((60, 200, 3), 128, np.uint8)
    with pytest.raises(NoObjectRegion, match="crop"):
        transform_mask(rgb_net(), box_mask(photo.shape, (0, 0, 60, 40)))
    assert [o.mask is not None for o in vl.demo_object_images(n=2)] == [True, True]


def test_energy_inside_exact_values_and_shapes():
    v = torch.tensor([[3.0, 0.0], [0.0, 4.0]])
    m = torch.tensor([[True, False], [False, False]])
    assert energy_inside(v, m) == pytest.approx(9 / 25, abs=0)
    two = torch.stack([v, v.flip(0)])  # channels add: energy [9+0, 0+16; 0+9, 16+0]
    assert energy_inside(two, m) == pytest.approx(9 / 50)
    assert energy_inside(two.unsqueeze(0).numpy(), m.numpy()) == pytest.approx(9 / 50)
    assert math.isnan(energy_inside(torch.zeros(2, 2), m))
    assert energy_inside(v, torch.ones(2, 2, dtype=torch.bool)) == 1.0
    with pytest.raises(ValueError, match="transform_mask"):
        energy_inside(torch.ones(1, 4, 4), torch.ones(3, 3, dtype=torch.bool))


def test_transform_mask_follows_the_resize():
    net = bundled_net("alexnet")  # 28 -> 64
    m = box_mask((28, 28), (7, 7, 21, 21))
    t = transform_mask(net, m)
    assert t.shape == (64, 64)
    rows, cols = t.any(1).nonzero().flatten(), t.any(0).nonzero().flatten()
    assert abs(int(rows[0]) - 16) <= 1 and abs(int(rows[-1]) - 47) <= 1 and abs(int(cols[0]) - 16) <= 1
    assert t.double().mean().item() == pytest.approx(0.25, abs=0.03)


def test_prepare_needs_a_transform_for_pictures():
    with pytest.raises(ImageError, match="without a transform"):
        prepare(alexnet_fmnist(seed=0), np.zeros((28, 28), np.uint8))
    x = prepare(bundled_net("vgg16"), np.zeros((28, 28), np.uint8))
    assert x.shape == (1, 1, 32, 32)


def test_stage_layers_line_up_by_depth():
    with torch.device("meta"):  # structure only: no weights to initialise
        full = {"vgg16": vgg16(), "alexnet": alexnet(), "zfnet": zfnet()}
    assert stage_layers(full["vgg16"]) == ["c1_2", "c2_2", "c3_3", "c4_3", "c5_3"]
    assert stage_layers(full["alexnet"]) == stage_layers(full["zfnet"]) == ["c1", "c2", "c3", "c4", "c5"]
    assert stage_layers(vgg_fmnist()) == ["c1_2", "c2_2", "c3_3", "c4_3", "c5_3"]
    assert stage_layers(full["vgg16"], stages=3) == ["c1_2", "c3_3", "c5_3"]
    assert conv_pool_layers(zfnet_fmnist()) == ["c1", "p1", "c2", "p2", "c3", "c4", "c5", "p5"]


# --------------------------------------------------------------------------- filters


def test_filter_spectrum_bands():
    delta = torch.zeros(1, 1, 7, 7)
    delta[0, 0, 3, 3] = 1
    flat = filter_spectrum(delta, size=32)
    assert np.allclose(flat.profile, 1.0)
    assert sum(flat.bands.values()) == pytest.approx(1)
    # the share of a flat spectrum in each band is the band's share of the frequency plane
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(32), np.fft.fftfreq(32)))
    assert flat.bands["low"] == pytest.approx((f < 1 / 6).mean())
    assert flat.bands["high"] == pytest.approx((f >= 1 / 3).mean())
    r = torch.arange(9.0) - 4
    blur = torch.exp(-(r.view(-1, 1) ** 2 + r**2) / 8).expand(2, 3, 9, 9)  # a Gaussian: low frequencies
    assert filter_spectrum(blur, size=32).bands["low"] > 0.9
    checker = ((torch.arange(7).view(-1, 1) + torch.arange(7)) % 2 * 2 - 1).float().view(1, 1, 7, 7)
    assert filter_spectrum(checker, size=32).bands["high"] > 0.9
    with pytest.raises(ValueError, match="smaller than"):
        filter_spectrum(torch.ones(1, 1, 11, 11), size=8)


def test_rms_dominance_and_renormalisation():
    model = alexnet_fmnist(seed=0)
    conv = model.features[0]
    with torch.no_grad():
        conv.weight[7].mul_(50)
    r = rms_dominance(model)
    w = conv.weight.detach().double()
    rms = w.pow(2).mean(dim=(1, 2, 3)).sqrt()
    assert torch.allclose(r.rms, rms) and r.largest == pytest.approx(float(rms.max()))
    assert r.dominance == pytest.approx(float(rms.max() / rms.median())) and r.dominance > 20
    assert r.strongest(1) == [7]
    vl.renormalize_filters(model, float(rms.median()))
    assert rms_dominance(model).dominance == pytest.approx(1.0)
    c2 = rms_dominance(model, "c2")  # a paper name pointing at the ReLU: the conv before it
    assert len(c2.rms) == model.features[3].out_channels


def test_grid_contrast():
    g = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.avg_pool2d(torch.randn(3, 1, 68, 68, generator=g), 5, 1)[..., :64, :64]
    grid = torch.zeros(1, 64, 64)
    grid[:, ::4, ::4] = 1
    assert grid_contrast(grid, 4) == pytest.approx(15**0.5)  # one phase of 16 holds all the energy
    assert grid_contrast(smooth, 4) < 0.1
    # content stamped on a stride-4 grid: phase (0, 0) carries 4x the energy of the other 15
    blocky = smooth * (1 + grid)
    assert grid_contrast(blocky, 4) == pytest.approx(((4 - 19 / 16) ** 2 + 15 * (1 - 19 / 16) ** 2) ** 0.5 / 4 / (19 / 16), abs=0.08)
    assert math.isnan(grid_contrast(torch.zeros(1, 16, 16), 2))
    with pytest.raises(ValueError, match="stride of 1"):
        grid_contrast(grid, 1)
    with pytest.raises(ValueError, match="too small"):
        grid_contrast(torch.zeros(1, 6, 6), 4)


# --------------------------------------------------------------------------- accuracy and claims


def test_net_accuracy_recorded_and_live():
    net = bundled_net("alexnet")
    net.extra = {"record": {"test_accuracy": 0.91, "test_images": 10000}}
    sample = vl.fashion_mnist_sample().subset(slice(0, 40))
    a = net_accuracy(net, sample)
    assert a.recorded == 0.91 and "10000" in a.recorded_on
    assert a.live == vl.evaluate(net.model, sample, net.transform).accuracy
    other = net_accuracy(rgb_net(), sample)  # ImageNet-style classes: no live figure on Fashion-MNIST
    assert other.recorded is None and other.live is None


def test_claims_compute_their_verdicts():
    yes = Claim("Yu §5", "VGG-16 sparser", {"vgg16": 0.8, "alexnet": 0.7}, "vgg16 > alexnet")
    no = Claim("Yu §5", "VGG-16 sparser", {"vgg16": 0.6, "alexnet": 0.7}, "vgg16 > alexnet")
    unmeasured = Claim("Zeiler §5", "ZFNet more accurate", {"zfnet": None, "alexnet": 0.9}, "zfnet > alexnet",
                       why="untrained nets")
    nan = Claim("x", "y", {"a": float("nan"), "b": 1.0}, "a > b")
    chained = Claim("x", "y", {"a": 1, "b": 2, "c": 3}, "a < b < c and not c - a < 1")
    assert (yes.verdict, no.verdict, unmeasured.verdict, nan.verdict) == (
        "supported", "not supported here", "not measured", "not measured")
    assert chained.verdict == "supported"
    assert "vgg16=0.8, alexnet=0.7" in str(yes) and str(yes).endswith("verdict: supported")
    assert "not measured (untrained nets)" in str(unmeasured) and "missing: a" in str(nan)
    assert claims_table([yes, no]).column("verdict") == ["supported", "not supported here"]
    with pytest.raises(ValueError, match="names vgg"):
        Claim("x", "y", {"alexnet": 1.0}, "vgg > alexnet")
    for bad in ("__import__('os')", "a.real > 0", "a > 'b'", "a >"):
        with pytest.raises(ValueError):
            Claim("x", "y", {"a": 1.0}, bad)


def test_figures_and_explorer():
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    nets = {"AlexNet": bundled_net("alexnet"), "VGG-16": bundled_net("vgg16")}
    objs = vl.fashion_object_images(2)
    results = [side_by_side(nets, o) for o in objs]
    s = [sparsity(n, torch.randn(3, 1, n.input_size, n.input_size), progress=False) for n in nets.values()]
    figs = [
        vl.plot_sparsity(s), vl.plot_side_by_side(results[0]), vl.plot_stage(results[1], 5),
        vl.plot_energy(energy_by_stage(results)), vl.plot_filters({"a": nets["AlexNet"], "b": rgb_net()}),
        vl.plot_filters({"a": nets["AlexNet"]}, scale="common"),
        vl.plot_spectra({"a": filter_spectrum(nets["AlexNet"])}), vl.plot_rms({"a": rms_dominance(nets["AlexNet"])}),
        vl.plot_layer_projections({"a": vl.whole_layer(nets["AlexNet"], objs, "c2")}, ["x", "y"]),
    ]
    assert all(isinstance(f, Figure) for f in figs)
    for f in figs:
        plt.close(f)
    w = vl.reconstruction_explorer(results)
    pick, depth = w.children[0].children
    assert [o[1] for o in pick.options] == [0, 1] and depth.value == 5
    first = w.children[1].outputs  # the starting state is drawn without a frontend
    assert len(first) == 1 and first[0]["data"]["image/png"]
    depth.value = 2  # each change redraws with plot_stage (outside a kernel nothing is shown)
    pick.value = 1
    plt.close("all")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_the_gpu_gives_the_cpu_counts():
    net = bundled_net("zfnet")
    x = torch.randn(9, 1, 64, 64)
    cpu = sparsity(net, x, progress=False)
    gpu = sparsity(net, x, device="cuda", progress=False)
    assert next(net.model.parameters()).device.type == "cpu"
    share_cpu, share_gpu = cpu.share, gpu.share
    assert all(abs(share_cpu[k] - share_gpu[k]) < 1e-3 for k in share_cpu)
    r = side_by_side({"z": net}, vl.fashion_object_images(1)[0], device="cuda")
    assert r.views[0].pixels["c5"].device.type == "cpu"
