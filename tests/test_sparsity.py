"""vizlib.methods.sparsity: zero counts against brute force, for any batching and data form; memory flat in
the number of images; the model left as it was; layers lined up by depth."""

from __future__ import annotations

import weakref

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import vizlib as vl
from vizlib.core.errors import ImageError
from vizlib.core.layers import name_layers
from vizlib.methods.sparsity import conv_layers, conv_pool_layers, is_pool, layer_sparsity, stage_layers
from vizlib.models.bundled_nets import vgg_fmnist, zfnet_fmnist
from vizlib.models.nets import alexnet, vgg16, zfnet

from ._memory import RandomImages, peak_rss_during
from ._nets import bundled_net, small_cnn
from .conftest import hook_count, modes


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
    s = layer_sparsity(model, batches, progress=False)
    layers = conv_pool_layers(model)
    assert s.layers == layers and s.images == 7
    brute = brute_force_zeros(model, x, layers)
    for n in layers:
        assert torch.equal(s.map_zeros[n], brute[n]), n
        assert s.zeros[n] == int(brute[n].sum())
        assert s.total[n] == x.shape[0] * brute[n].numel() * (s.map_total[n] // x.shape[0])
    # the count is exact whatever the batching
    again = layer_sparsity(model, x, batch_size=2, progress=False)
    assert again.zeros == s.zeros and again.total == s.total


def test_sparsity_of_a_hand_built_net():
    conv = nn.Conv2d(1, 2, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
        conv.bias.zero_()
    model = nn.Sequential(conv, nn.ReLU(inplace=True), nn.MaxPool2d(2))
    model.vizlib_layers = name_layers(model)
    x = torch.tensor([[[[1.0, -2.0], [0.0, 3.0]]], [[[-1.0, -1.0], [-1.0, -1.0]]]])
    s = layer_sparsity(model, x, progress=False)
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
            s = layer_sparsity(model, stream(n), progress=False)
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
    run = lambda n: layer_sparsity(model, RandomImages(n, 32), batch_size=32, progress=False)  # noqa: E731
    assert run(64).images == 64
    base = psutil.Process().memory_info().rss
    small = peak_rss_during(lambda: run(64)) - base
    large = peak_rss_during(lambda: run(640)) - base
    # one batch and a few integers per map are all that is held: 10x the images, the same peak
    assert large - small < 20 * 2**20, (small, large)


def test_sparsity_of_an_image_set_uses_the_nets_preprocessing():
    net = bundled_net("alexnet")
    data = vl.fashion_mnist_sample().subset(slice(0, 24))
    by_set = layer_sparsity(net, data, batch_size=10, progress=False)
    x = net.transform.batch(torch.from_numpy(data.images))
    by_tensor = layer_sparsity(net.model, x, progress=False)
    assert by_set.zeros == by_tensor.zeros and by_set.images == 24
    loader = DataLoader(TensorDataset(x, torch.zeros(24)), batch_size=7)
    assert layer_sparsity(net.model, loader, progress=False).zeros == by_tensor.zeros
    pictures = [data.images[i] for i in range(24)]
    assert layer_sparsity(net, pictures, progress=False).zeros == by_tensor.zeros


def test_sparsity_leaves_the_model_as_it_found_it():
    model = zfnet_fmnist(seed=0).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    hooks, flags = hook_count(model), modes(model)
    layer_sparsity(model, torch.randn(6, 1, 64, 64), progress=False)
    with pytest.raises(KeyError, match="unknown layer"):
        layer_sparsity(model, torch.randn(2, 1, 64, 64), ["c9"], progress=False)
    with pytest.raises(ValueError, match="no images"):
        layer_sparsity(model, [], progress=False)
    with pytest.raises(ImageError, match="1-channel"):
        layer_sparsity(model, torch.randn(2, 3, 64, 64), progress=False)
    assert hook_count(model) == hooks and modes(model) == flags
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_stage_layers_line_up_by_depth():
    with torch.device("meta"):  # structure only: no weights to initialise
        full = {"vgg16": vgg16(), "alexnet": alexnet(), "zfnet": zfnet()}
    assert stage_layers(full["vgg16"]) == ["c1_2", "c2_2", "c3_3", "c4_3", "c5_3"]
    assert stage_layers(full["alexnet"]) == stage_layers(full["zfnet"]) == ["c1", "c2", "c3", "c4", "c5"]
    assert stage_layers(vgg_fmnist()) == ["c1_2", "c2_2", "c3_3", "c4_3", "c5_3"]
    assert stage_layers(full["vgg16"], stages=3) == ["c1_2", "c3_3", "c5_3"]
    assert conv_pool_layers(zfnet_fmnist()) == ["c1", "p1", "c2", "p2", "c3", "c4", "c5", "p5"]
    assert conv_layers(zfnet_fmnist()) == ["c1", "c2", "c3", "c4", "c5"]
    assert [is_pool(n) for n in ("p1", "c1", "c2_1", "p5")] == [True, False, False, True]


def test_the_top_level_name_is_the_method():
    assert vl.layer_sparsity is layer_sparsity


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_the_gpu_gives_the_cpu_counts():
    net = bundled_net("zfnet")
    x = torch.randn(9, 1, 64, 64)
    cpu = layer_sparsity(net, x, progress=False)
    gpu = layer_sparsity(net, x, device="cuda", progress=False)
    assert next(net.model.parameters()).device.type == "cpu"
    share_cpu, share_gpu = cpu.share, gpu.share
    assert all(abs(share_cpu[k] - share_gpu[k]) < 1e-3 for k in share_cpu)
