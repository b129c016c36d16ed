import pytest
import torch
from torch import nn
from torchvision import models as tvm

import vizlib as vl
from vizlib.core.layers import layer_module
from vizlib.models import alexnet_original
from vizlib.models.model_sets import load_pytorchcv_zfnet
from vizlib.chapters.paper_data import ZEILER_FIG3_FC6_INPUTS, ZEILER_FIG3_SIZES


def test_layer_names(nets):
    assert list(nets["alexnet"].vizlib_layers) == ["c1", "p1", "c2", "p2", "c3", "c4", "c5", "p5", "fc6", "fc7", "fc8"]
    assert list(nets["zfnet"].vizlib_layers) == [
        "c1", "p1", "n1", "c2", "p2", "n2", "c3", "c4", "c5", "p5", "fc6", "fc7", "fc8"]
    vgg = list(nets["vgg16"].vizlib_layers)
    assert vgg[:3] == ["c1_1", "c1_2", "p1"] and vgg[-6:] == ["c5_2", "c5_3", "p5", "fc6", "fc7", "fc8"]
    assert len([n for n in vgg if n.startswith("c")]) == 13
    # a conv's name points at its ReLU; pools at the pool; fc8 at the last linear
    m = nets["alexnet"]
    assert isinstance(layer_module(m, "c1"), nn.ReLU)
    assert isinstance(layer_module(m, "p5"), nn.MaxPool2d)
    assert isinstance(layer_module(m, "fc8"), nn.Linear)


def test_parameter_counts_equal_torchvision_metadata(nets):
    a = vl.summary(nets["alexnet"], 224)
    v = vl.summary(nets["vgg16"], 224)
    assert a.total_params == tvm.AlexNet_Weights.IMAGENET1K_V1.meta["num_params"] == 61_100_840
    assert v.total_params == tvm.VGG16_Weights.IMAGENET1K_V1.meta["num_params"] == 138_357_544
    assert a.total_params == sum(p.numel() for p in nets["alexnet"].parameters())


def test_zfnet_sizes_are_zeilers(nets):
    sizes = {s.name: s.w_out for s in vl.output_sizes(nets["zfnet"], 224)}
    assert sizes == ZEILER_FIG3_SIZES
    s = vl.summary(nets["zfnet"], 224)
    assert s["fc6"].macs == ZEILER_FIG3_FC6_INPUTS * 4096
    assert nets["zfnet"](torch.zeros(1, 3, 224, 224)).shape == (1, 1000)


def test_vashishth_alexnet_at_227():
    steps = vl.output_sizes(alexnet_original(), 227)
    assert [s.w_out for s in steps] == [55, 27, 27, 13, 13, 13, 13, 6]
    assert steps[0].formula == "(227 − 11)/4 + 1 = 55"
    # torchvision's AlexNet at 224: (224 - 11 + 4)/4 + 1 = 55.25 -> 55
    tv = vl.output_sizes(vl.alexnet(), 224)
    assert tv[0].formula == "(224 − 11 + 2·2)/4 + 1 = 55.25 → 55 (floor)"


def test_summary_exact_on_hand_built_net():
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 4 * 4, 5))
    s = vl.summary(net, 8, in_channels=1)
    rows = {r.name: r for r in s.rows}
    assert rows["0"].params == 2 * 9 + 2 and rows["0"].macs == 2 * 8 * 8 * 9
    assert rows["2"].output_shape == (2, 4, 4)
    assert rows["4"].params == 32 * 5 + 5 and rows["4"].macs == 32 * 5
    assert s.total_params == sum(p.numel() for p in net.parameters())


def test_summary_alexnet_c1_exact(nets):
    row = vl.summary(nets["alexnet"], 224)["c1"]
    assert row.output_shape == (64, 55, 55)
    assert row.params == 64 * 3 * 11 * 11 + 64
    assert row.macs == 55 * 55 * 64 * 3 * 11 * 11


def test_input_too_small(nets):
    with pytest.raises(vl.InputTooSmall, match="at least 63×63"):
        vl.summary(nets["alexnet"], 40)
    assert vl.min_input_size(nets["alexnet"]) == 63
    vl.summary(nets["alexnet"], 63)


def test_unknown_layer(nets):
    with pytest.raises(KeyError, match="unknown layer 'c9'.*Known layers: c1, p1"):
        vl.resolve_layer(nets["alexnet"], "c9")


def test_pytorchcv_zfnet_weights_load_exactly(tmp_path):
    pytest.importorskip("pytorchcv")
    from pytorchcv.models.zfnet import zfnet as cv_zfnet

    torch.manual_seed(0)
    theirs = cv_zfnet(pretrained=False).eval()
    path = tmp_path / "zfnet.pth"
    torch.save(theirs.state_dict(), path)
    ours = load_pytorchcv_zfnet(path).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


def test_seeded_builders_are_reproducible_and_leave_global_rng():
    state = torch.random.get_rng_state()
    a, b = vl.alexnet(seed=3), vl.alexnet(seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
