"""vizlib.methods.reconstruction: whole-layer reconstructions side by side, each net with its own
preprocessing; energy on the object (vizlib.core.measures, the one measure and masks) per stage;
whole layers of several pictures; top predictions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import vizlib as vl
from vizlib.chapters import ch06 as ch
from vizlib.core.data import fashion_mnist_sample
from vizlib.core.errors import InputTooSmall, NoObjectRegion
from vizlib.core.examples import ExampleImage
from vizlib.core.images import load_image
from vizlib.core.measures import box_mask, energy_inside, silhouette_mask, transform_mask
from vizlib.methods.reconstruction import energy_by_stage, side_by_side, top_predictions, whole_layer
from vizlib.methods.sparsity import stage_layers
from vizlib.models.bundled_nets import alexnet_fmnist

from ._nets import bundled_net, rgb_net
from .conftest import hook_count


def test_side_by_side_with_different_input_sizes_each_net_preprocesses():
    nets = {"AlexNet": bundled_net("alexnet"), "VGG-16": bundled_net("vgg16"), "RGB": rgb_net(67)}
    img = fashion_mnist_sample().images[0]
    mask = silhouette_mask(img)
    states = {k: (hook_count(n.model), {p: v.clone() for p, v in n.model.state_dict().items()})
              for k, n in nets.items()}
    r = side_by_side(nets, ExampleImage("shirt", img, 0, "T-shirt/top", mask))
    sizes = {v.name: v.input.shape[:2] for v in r.views}
    assert sizes == {"AlexNet": (64, 64), "VGG-16": (64, 64), "RGB": (67, 67)}
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
    ref = vl.Deconvnet(net).project_layers(load_image(img, net, convert=True), [v.layers[-1]])[v.layers[-1]]
    assert torch.allclose(ref.pixels[0], v.pixels[v.layers[-1]])
    for k, n in nets.items():
        hooks, state = states[k]
        assert hook_count(n.model) == hooks
        assert all(torch.equal(state[p], t) for p, t in n.model.state_dict().items())
    # a colour photo goes to the greyscale nets too
    photo = (np.random.default_rng(0).random((90, 120, 3)) * 255).astype(np.uint8)
    r2 = side_by_side(nets, photo, mask=box_mask(photo.shape, (20, 30, 70, 90)), name="photo")
    assert [v.input.shape[:2] for v in r2.views] == [(64, 64), (64, 64), (67, 67)]
    s = energy_by_stage([r, r2])
    assert set(s) == set(nets) and s["AlexNet"]["images"] == 2 and len(s["VGG-16"]["inside"]) == 5
    assert len(ch.energy_table([r, r2])) == 6


def test_an_image_without_an_object_region():
    nets = {"AlexNet": bundled_net("alexnet")}
    img = fashion_mnist_sample().images[1]
    r = side_by_side(nets, img, name="no box")
    assert r.views[0].mask is None and r.views[0].energy == {}
    with pytest.raises(NoObjectRegion, match="'no box' has no object region"):
        energy_by_stage([r])
    with pytest.raises(NoObjectRegion):
        ch.energy_table([r])
    with pytest.raises(NoObjectRegion, match="give a mask"):
        energy_inside(torch.ones(1, 4, 4), None)
    with pytest.raises(NoObjectRegion, match="empty"):
        energy_inside(torch.ones(1, 4, 4), torch.zeros(4, 4, dtype=torch.bool))
    with pytest.raises(NoObjectRegion, match="no garment"):
        silhouette_mask(np.zeros((28, 28), np.uint8))
    with pytest.raises(NoObjectRegion, match="holds no pixel"):
        box_mask((28, 28), (30, 0, 40, 10))
    # a box in the corner that the net's centre crop cuts away
    photo = np.full((60, 200, 3), 128, np.uint8)
    with pytest.raises(NoObjectRegion, match="crop"):
        transform_mask(rgb_net(), box_mask(photo.shape, (0, 0, 60, 40)))
    assert [o.mask is not None for o in ch.comparison_images("random", 2)] == [True, True]


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


def test_pictures_are_prepared_by_the_one_path():
    # a bare module has no transform to blow a 12-pixel picture up: the size is checked, with a fix
    with pytest.raises(InputTooSmall, match="smaller than this network accepts"):
        load_image(np.zeros((12, 12), np.uint8), alexnet_fmnist(seed=0), convert=True)
    x = load_image(np.zeros((28, 28), np.uint8), bundled_net("vgg16"), convert=True)
    assert x.shape == (1, 1, 64, 64)


def test_whole_layer_and_top_predictions_agree_with_side_by_side():
    net = bundled_net("alexnet")
    objs = ch.comparison_images("bundled", 2)
    c2 = whole_layer(net, objs, "c2")
    assert tuple(c2.shape) == (2, 1, 64, 64)
    r = side_by_side({"AlexNet": net}, objs[1], layers={"AlexNet": ["c2"]})
    assert r.image == objs[1].name and r.views[0].layers == ["c2"]
    assert torch.allclose(c2[1], r.views[0].pixels["c2"], atol=1e-6)
    assert torch.equal(whole_layer(net, [o.image for o in objs], "c2"), c2)
    top = top_predictions(net, objs[1].image, k=3)
    assert [c for c, _ in top] == [c for c, _ in r.views[0].predictions[:3]]
    assert all(p == pytest.approx(q) for (_, p), (_, q) in zip(top, r.views[0].predictions))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_side_by_side_on_the_gpu_returns_cpu_tensors():
    net = bundled_net("zfnet")
    r = side_by_side({"z": net}, ch.comparison_images("bundled", 1)[0], device="cuda")
    assert r.views[0].pixels["c5"].device.type == "cpu"
    assert next(net.model.parameters()).device.type == "cpu"
