import pytest
import torch

import vizlib as vl
from vizlib.chapters import ch02
from vizlib.core.hooks import capture
from vizlib.core.layers import layer_module
from vizlib.chapters.paper_data import YU_TABLE1_VGG16, YU_TABLE2_ALEXNET


def test_vgg16_equals_yu_table1(nets):
    got = {r.name: (r.size, r.stride) for r in vl.receptive_fields(nets["vgg16"])}
    assert got == YU_TABLE1_VGG16


def test_alexnet_table2_is_2x2_pooling(nets):
    real = {r.name: (r.size, r.stride) for r in vl.receptive_fields(nets["alexnet"])}
    assert real == {"c1": (11, 4), "p1": (19, 8), "c2": (51, 8), "p2": (67, 16),
                    "c3": (99, 16), "c4": (131, 16), "c5": (163, 16), "p5": (195, 32)}
    what_if = {r.name: (r.size, r.stride) for r in vl.receptive_fields(nets["alexnet"], pool_kernel=2)}
    assert what_if == YU_TABLE2_ALEXNET


@pytest.mark.parametrize("arch", ["alexnet", "zfnet", "vgg16"])
def test_analytic_equals_empirical_every_layer(nets, arch):
    model = nets[arch]
    rows = vl.receptive_fields(model, all_layers=True)
    spatial = [r for r in rows if type(layer_module(model, r.path)).__name__ in ("Conv2d", "MaxPool2d")]
    assert len(spatial) >= 8
    for r in spatial:
        fp = vl.empirical_receptive_field(model, r.path)
        assert fp.size == (r.size, r.size), r.name
        assert fp.box == vl.unit_box(model, r.path, *fp.unit, fp.input_size), r.name


def test_empirical_at_the_border_is_clipped(nets):
    fp = vl.empirical_receptive_field(nets["alexnet"], "c2", input_size=99, unit=(0, 0))
    assert fp.box == vl.unit_box(nets["alexnet"], "c2", 0, 0, 99) == (0, 0, 33, 33)


def test_real_gradient_footprint_inside_analytic_box(nets):
    """On the real (untrained) AlexNet the gradient can only be narrower, never wider."""
    model = nets["alexnet"]
    x = torch.randn(1, 3, 127, 127, requires_grad=True)
    with capture(model, ["c3"], detach=False) as cap:
        model(x)
    out = cap["c3"]
    out[0, :, 3, 3].sum().backward()
    nz = (x.grad[0].abs().sum(0) != 0).nonzero()
    top, left = nz.min(0).values.tolist()
    bottom, right = (nz.max(0).values + 1).tolist()
    t, l, b, r = vl.unit_box(model, "c3", 3, 3, 127)
    assert t <= top and l <= left and bottom <= b and right <= r


def test_unit_box_errors(nets):
    m = nets["alexnet"]
    with pytest.raises(ValueError, match="outside layer c5's 13×13 feature map"):
        vl.unit_box(m, "c5", 13, 0, 224)
    with pytest.raises(ValueError, match="channel 256 is out of range: layer c5 has 256 feature maps"):
        vl.unit_box(m, "c5", 0, 0, 224, channel=256)
    with pytest.raises(KeyError, match="unknown layer"):
        vl.unit_box(m, "conv5", 0, 0, 224)
    with pytest.raises(KeyError, match="dense layers see the whole image"):
        vl.receptive_field(m, "fc6")


def test_unit_box_values(nets):
    # c1 unit (0, 0): rows -2..8 before clipping
    assert vl.unit_box(nets["alexnet"], "c1", 0, 0, 224) == (0, 0, 9, 9)
    assert vl.unit_box(nets["vgg16"], "c1_1", 5, 7, 224) == (4, 6, 7, 9)
    assert vl.unit_box(nets["vgg16"], "p5", 6, 6, 224) == (102, 102, 224, 224)


def test_compare_with_paper_table(nets):
    t = ch02.compare_with_paper(nets["vgg16"], YU_TABLE1_VGG16)
    assert all(t.column("match")) and t.column("measured size") == t.column("computed size")
    t2 = ch02.compare_with_paper(nets["alexnet"], YU_TABLE2_ALEXNET)
    assert [m for m in t2.column("match")] == [True] + [False] * 7
