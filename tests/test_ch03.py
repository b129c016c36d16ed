import numpy as np
import pytest
import torch
from torch import nn

import vizlib as vl
from vizlib.chapters.ch03 import deconv_steps, energy_extent, reconstruction_layers

from .conftest import hook_count, modes


@pytest.mark.parametrize("arch", ["alexnet", "zfnet"])
def test_steps_equal_the_deconvnet(nets, arch):
    model = nets[arch]
    torch.manual_seed(0)
    img = torch.randn(3, 99, 99)
    steps = deconv_steps(model, img)
    assert steps.switches.sum() > 0 and steps.pooled[steps.position] == steps.pooled.max()
    ref = vl.Deconvnet(model).project(img, "p1", steps.channel, steps.position)
    torch.testing.assert_close(steps.pixels, ref.full(0), rtol=1e-5, atol=1e-6)
    assert hook_count(model) == 0


def test_unpooling_adds_where_windows_overlap():
    # 3x3/2 pooling over a map whose maximum sits where four windows overlap
    conv = nn.Conv2d(1, 1, 1, bias=False)
    conv.weight.data.fill_(1.0)
    model = nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(3, 2))
    img = torch.zeros(1, 5, 5)
    img[0, 2, 2] = 5.0
    steps = deconv_steps(model, img, channel=0)
    # all four 3x3 windows pick (2, 2); only the kept one goes down, so the switch gets 5 once
    assert steps.switches[2, 2] and steps.switches.sum() == 1
    assert steps.unpooled[2, 2] == 5.0 and steps.unpooled.sum() == 5.0


def test_steps_errors(nets):
    with pytest.raises(ValueError, match="channel 64 is out of range: the first layer has 64 maps"):
        deconv_steps(nets["alexnet"], torch.zeros(3, 99, 99), channel=64)
    with pytest.raises(ValueError, match="no max pooling right after its first convolution"):
        deconv_steps(nn.Sequential(nn.Conv2d(1, 1, 3), nn.ReLU(), nn.Conv2d(1, 1, 3)), torch.zeros(1, 9, 9))


def test_energy_extent_exact():
    x = torch.zeros(1, 4, 4)
    assert energy_extent(x) == 0.0
    x[0, 0, 0] = 1.0
    assert energy_extent(x) == 1 / 16
    y = torch.ones(3, 2, 5)
    assert energy_extent(y, share=0.9) == 9 / 10
    assert energy_extent(y, share=1.0) == 1.0


def test_reconstruction_layers(nets):
    assert reconstruction_layers(nets["alexnet"]) == ["c1", "c3", "c5", "fc8"]
    assert reconstruction_layers(nets["vgg16"]) == ["c1_1", "c2_1", "c3_1", "c3_3", "c4_2", "c5_1", "c5_3", "fc8"]


def test_examples_for_each_set_and_energy_inside():
    from vizlib.core.examples import energy_inside, example_dataset, example_images

    net = vl.load("alexnet", "random")
    ex = example_images(net, 2)
    assert [e.category for e in ex] == ["tabby", "espresso"] and ex[0].object_mask(net) is None
    assert example_dataset(net)[0][0].shape == (3, 224, 224)
    x = torch.zeros(1, 2, 2)
    x[0, 0, 0], x[0, 1, 1] = 3.0, 4.0
    assert energy_inside(x, torch.tensor([[True, False], [False, False]])) == pytest.approx(9 / 25)
    with pytest.raises(ValueError, match=r"the mask is \(3, 3\) but the visualisation is \(2, 2\)"):
        energy_inside(x, torch.ones(3, 3, dtype=torch.bool))


def test_garment_mask_for_bundled():
    from vizlib.core.examples import Example

    class FakeNet:
        model_set = "bundled"

        @staticmethod
        def transform(img):
            return torch.zeros(1, 64, 64)

    img = np.zeros((28, 28), np.uint8)
    img[7:21, 7:21] = 200
    m = Example(img, 0, "x", "T-shirt/top").object_mask(FakeNet())
    assert m.shape == (64, 64) and 0.2 < float(m.float().mean()) < 0.3


def test_feature_evolution_strongest_activation_per_snapshot():
    import matplotlib.pyplot as plt

    from vizlib.chapters import ch03 as dv
    from vizlib.models.bundled_nets import zfnet_fmnist

    from ._memory import RandomImages

    data = RandomImages(6, 64)
    snaps = {5: zfnet_fmnist(seed=1).eval(), 0: zfnet_fmnist(seed=0).eval()}  # given out of order
    evo = dv.feature_evolution(snaps, "c2", data, n=3, seed=0)
    assert evo.epochs == [0, 5] and len(evo.channels) == 3
    assert evo.channels == sorted(np.random.default_rng(0).choice(64, 3, replace=False).tolist())
    x = torch.stack([data[i] for i in range(len(data))])
    for col, e in enumerate(evo.epochs):
        model = snaps[e]
        path = model.vizlib_layers["c2"]
        got = {}
        h = model.get_submodule(path).register_forward_hook(lambda m, i, o: got.setdefault("a", o.clone()))
        try:
            with torch.no_grad():
                model(x)
        finally:
            h.remove()
        brute = got["a"].amax(dim=(0, 2, 3))
        for row, c in enumerate(evo.channels):
            assert evo.values[row, col] == pytest.approx(float(brute[c]), rel=1e-5)
            assert evo.projections[row][col].ndim == 2 and evo.patches[row][col].ndim == 2
    for m in snaps.values():
        assert not m.training and all(not mod._forward_hooks for mod in m.modules())
    fig = dv.plot_feature_evolution(evo)
    assert len(fig.axes) == 3 * 2
    plt.close(fig)
    with pytest.raises(ValueError, match="no snapshots"):
        dv.feature_evolution({}, "c2", data)
    with pytest.raises(ValueError, match=r"c2 has 64 feature maps \(0 to 63\); got \[64\]"):
        dv.feature_evolution(snaps, "c2", data, channels=[3, 64])


def test_settled_maps_compares_each_snapshots_strongest_image_with_the_last():
    from vizlib.chapters import ch03 as dv
    from vizlib.models.bundled_nets import zfnet_fmnist

    from ._memory import RandomImages

    data = RandomImages(5, 64)
    a, b = zfnet_fmnist(seed=0).eval(), zfnet_fmnist(seed=1).eval()
    table = dv.settled_maps({0: a, 3: b, 7: b}, ["c1"], data)
    ia = vl.top_activations(a, "c1", data, k=1, progress=False).image_index[:, 0]
    ib = vl.top_activations(b, "c1", data, k=1, progress=False).image_index[:, 0]
    assert table.rows[0] == ["c1", 32, round(float((ia == ib).float().mean()), 3), 1.0, 1.0]
    with pytest.raises(ValueError, match="no snapshots"):
        dv.settled_maps({}, ["c1"], data)
