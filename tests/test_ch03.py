import warnings

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
    from vizlib.core.examples import example_dataset, example_images, object_boxes
    from vizlib.core.measures import box_mask, energy_inside, transform_mask

    net = vl.load("alexnet", "random")
    ex = example_images(net, 2)
    # photos now carry their object: the JSON box, carried into the net's input
    assert [e.category for e in ex] == ["tabby", "espresso"]
    want = transform_mask(net, box_mask(ex[0].image.shape, object_boxes()[ex[0].name]))
    assert torch.equal(ex[0].object_mask(net), want)
    assert example_dataset(net)[0][0].shape == (3, 224, 224)
    x = torch.zeros(1, 2, 2)
    x[0, 0, 0], x[0, 1, 1] = 3.0, 4.0
    assert energy_inside(x, torch.tensor([[True, False], [False, False]])) == pytest.approx(9 / 25)
    with pytest.raises(ValueError, match=r"the mask is \(3, 3\) but the visualisation is \(2, 2\)"):
        energy_inside(x, torch.ones(3, 3, dtype=torch.bool))


def test_garment_mask_for_bundled():
    from PIL import Image
    from torchvision.transforms.functional import to_tensor

    from vizlib.core.examples import ExampleImage
    from vizlib.core.measures import silhouette_mask, transform_mask

    class FakeNet:
        model_set = "bundled"
        model = nn.Sequential(nn.Conv2d(1, 1, 3))

        @staticmethod
        def transform(img):  # blows 28 px up to 64, as a bundled net's preprocessing does
            return to_tensor(img.resize((64, 64), Image.BILINEAR))

    img = np.zeros((28, 28), np.uint8)
    img[7:21, 7:21] = 200
    ex = ExampleImage("x", img, 0, "T-shirt/top", silhouette_mask(img))
    m = ex.object_mask(FakeNet())
    assert m.shape == (64, 64) and 0.2 < float(m.float().mean()) < 0.3
    assert torch.equal(m, transform_mask(FakeNet(), img > 25))
    # a real bundled net: the garment's silhouette through its own transform
    net = vl.load("alexnet", "bundled")
    m = ex.object_mask(net)
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
    assert evo.channels == sorted(np.random.default_rng(0).choice(48, 3, replace=False).tolist())
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
    with pytest.raises(ValueError, match=r"c2 has 48 feature maps \(0 to 47\); got \[48\]"):
        dv.feature_evolution(snaps, "c2", data, channels=[3, 48])


def test_feature_evolution_draws_only_maps_alive_at_the_last_snapshot():
    # a map that died in training would be an empty row at the end of Zeiler's Fig. 4
    import warnings

    from vizlib.core.errors import NoPositiveActivation
    from vizlib.chapters import ch03 as dv
    from vizlib.models.bundled_nets import zfnet_fmnist

    from ._memory import RandomImages

    data = RandomImages(4, 64)
    last = zfnet_fmnist(seed=1).eval()
    assert last.vizlib_layers["c2"] == "features.5"  # the ReLU after c2's convolution
    conv = last.features[4]
    assert isinstance(conv, torch.nn.Conv2d) and conv.out_channels == 48
    with torch.no_grad():
        conv.weight[7] = 0
        conv.bias[7] = -1.0
    snaps = {0: zfnet_fmnist(seed=0).eval(), 3: last}
    with warnings.catch_warnings():  # some maps alive at the end are not yet alive at epoch 0
        warnings.simplefilter("ignore", NoPositiveActivation)
        evo = dv.feature_evolution(snaps, "c2", data, n=48, seed=0)
    x = torch.stack([data[i] for i in range(len(data))])
    with torch.no_grad():
        brute = last.features[:6](x).amax(dim=(0, 2, 3))  # c2's rectified maps, brute force
    alive = [c for c in range(48) if brute[c] > 0]
    assert 7 not in alive and evo.channels == alive
    assert (evo.values[:, -1] > 0).all()
    with pytest.warns(NoPositiveActivation, match="no positive activation"):
        shown = dv.feature_evolution(snaps, "c2", data, channels=[7])  # asked for by name, it is shown
    assert shown.channels == [7] and shown.values[0, -1] == 0


def test_settled_maps_compares_each_snapshots_strongest_image_with_the_last():
    from vizlib.chapters import ch03 as dv
    from vizlib.models.bundled_nets import zfnet_fmnist

    from ._memory import RandomImages

    data = RandomImages(5, 64)
    a, b = zfnet_fmnist(seed=0).eval(), zfnet_fmnist(seed=1).eval()
    table = dv.settled_maps({0: a, 3: b, 7: b}, ["c1"], data)
    ia = vl.top_activations(a, "c1", data, k=1, progress=False).image_index[:, 0]
    ib = vl.top_activations(b, "c1", data, k=1, progress=False).image_index[:, 0]
    assert table.rows[0] == ["c1", 24, round(float((ia == ib).float().mean()), 3), 1.0, 1.0]
    with pytest.raises(ValueError, match="no snapshots"):
        dv.settled_maps({}, ["c1"], data)


# --------------------------------------------------------------------------- the chapter's tables, claims, figures


def _bundled_tops(net, layers, n_images=40, k=4, n_maps=2):
    from vizlib.core.examples import example_dataset

    data = example_dataset(net, limit=n_images)
    tops = {}
    for layer in layers:
        t = vl.top_activations(net, layer, data, k=k, progress=False)
        tops[layer] = t.collect(net, data, channels=t.strongest_maps(n_maps), progress=False)
    return data, tops


def test_extent_table_and_claim_follow_the_printed_numbers():
    from vizlib.chapters import ch03 as ch

    net = vl.load("alexnet", "bundled")
    _, tops = _bundled_tops(net, ["c2", "c3"])
    table = ch.extent_table(net, tops)
    assert table.column("layer") == ["c2", "c3"]
    assert table.column("receptive field (px)") == [vl.receptive_field(net.model, l).size for l in ("c2", "c3")]
    for layer, v in zip(("c2", "c3"), table.column(ch.EXTENT)):
        assert v == int(round(ch.top_extent(tops[layer]) * tops[layer].projections.shape[-1] ** 2))
    claim = ch.extent_claim(table)
    a, b = table.column(ch.EXTENT)
    assert claim.verdict == ("supported" if a <= b else "not supported here")
    assert f"c2 {a:,} px" in claim.measured and f"c3 {b:,} px" in claim.measured
    t = vl.Table(["layer", "receptive field (px)", ch.EXTENT], [["c2", 51, 599], ["c3", 99, 1054],
                                                              ["c4", 131, 1380], ["c5", 163, 1282]])
    assert ch.extent_claim(t).verdict == "not supported here"  # c5 < c4: not at every step
    assert ch.extent_claim(vl.Table(t.header, t.rows[:1])).verdict == "not testable here"


def test_energy_table_is_energy_inside_each_whole_layer_reconstruction():
    from vizlib.chapters import ch03 as ch
    from vizlib.core.measures import energy_inside

    net = vl.load("alexnet", "bundled")
    examples = ch.example_images(net, 2)
    table = ch.energy_table(net, examples)
    layers = ch.reconstruction_layers(net.model)
    assert table.header == ["image"] + layers + [ch.OBJECT_AREA]
    dn = vl.Deconvnet(net)
    for row, ex in zip(table.rows, examples):
        mask = ex.object_mask(net)
        assert row[0] == ex.category and row[-1] == round(float(mask.float().mean()), 3)
        for layer, v in zip(layers, row[1:-1]):
            assert v == round(energy_inside(dn.project(ex.tensor(net), layer).full(0), mask), 3)
    claim = ch.energy_claim(table)
    above = sum(r[-2] > r[-1] for r in table.rows)
    assert all(r[-1] < 1 for r in table.rows)  # the garments leave background around them
    assert claim.verdict == ("supported" if above == len(table.rows) else "not supported here")
    assert f"above for {above} of the {len(table.rows)} images" in claim.measured
    # the baseline numbers: fc8 above the area for 2 of 3 images
    t = vl.Table(table.header, [["T-shirt/top", 0.234, 0.288, 0.411, 0.372, 0.539],
                                ["Trouser", 0.298, 0.262, 0.385, 0.448, 0.343]])
    c = ch.energy_claim(t)
    assert c.verdict == "not supported here" and "T-shirt/top 0.372 vs 0.539" in c.measured
    assert ch.energy_claim(vl.Table(t.header, t.rows[1:])).verdict == "supported"
    assert ch.energy_claim(vl.Table(t.header, [])).verdict == "not testable here"
    nan = vl.Table(t.header, [["x", 0.1, 0.1, 0.1, float("nan"), 0.3]])
    assert ch.energy_claim(nan).verdict == "not testable here"
    full = vl.Table(t.header, [["tabby", 1.0, 1.0, 1.0, 1.0, 1.0]])  # the object fills the input
    assert ch.energy_claim(full).verdict == "not testable here"
    c = ch.energy_claim(vl.Table(t.header, full.rows + t.rows[1:]))
    assert c.verdict == "supported" and "tabby 1 vs 1" in c.measured and "above for 1 of the 1 images" in c.measured
    # images without an object region are left out
    from dataclasses import replace

    assert ch.energy_table(net, [replace(examples[0], mask=None)]).rows == []


def test_settled_claim_reads_the_middle_snapshot():
    from vizlib.chapters import ch03 as ch

    t = vl.Table(["layer", "maps", "epoch 0", "epoch 1", "epoch 2", "epoch 5", "epoch 10", "epoch 16"],
                 [["c1", 32, 0.156, 0.188, 0.281, 0.594, 0.812, 1.0], ["c3", 96, 0, 0.156, 0.177, 0.438, 0.75, 1.0],
                  ["c5", 64, 0, 0.188, 0.156, 0.297, 0.734, 1.0]])
    c = ch.settled_claim(t)
    assert c.measured == "at epoch 5: c1 0.594 of its maps settled, c5 0.297" and c.verdict == "supported"
    t.rows[0][5] = 0.2
    assert ch.settled_claim(t).verdict == "not supported here"
    assert ch.settled_claim(vl.Table(t.header, t.rows[:1])).verdict == "not testable here"


def test_reconstruction_rows_and_plots():
    import matplotlib.pyplot as plt

    from vizlib.chapters import ch03 as ch

    net = vl.load("alexnet", "bundled")
    rows = ch.reconstruction_rows({"AlexNet": net}, 2)
    examples = ch.example_images(net, 2)
    assert list(rows) == [f"AlexNet: {e.category}" for e in examples]
    image, projections = rows[f"AlexNet: {examples[0].category}"]
    assert list(projections) == ch.reconstruction_layers(net.model) and image.shape == (64, 64)
    ref = vl.Deconvnet(net).project(examples[0].tensor(net), "c3")
    torch.testing.assert_close(projections["c3"].pixels, ref.pixels)
    fig = ch.plot_reconstructions(rows)
    assert len(fig.axes) == 2 * 5
    plt.close(fig)
    assert hook_count(net.model) == 0


def test_top_grids_and_the_explorer(monkeypatch):
    import matplotlib.pyplot as plt

    from vizlib.chapters import ch03 as ch

    net = vl.load("alexnet", "bundled")
    _, tops = _bundled_tops(net, ["c2"])
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda fig: shown.append(fig))
    before = len(plt.get_fignums())
    ch.show_top_grids(tops, per_row=2)
    assert len(shown) == 1 and len(shown[0].axes) == 4 and len(plt.get_fignums()) == before  # shown and closed
    with pytest.raises(ValueError, match=r"maps \[99\] were not collected"):
        ch.plot_top_grid(tops["c2"], [99])
    monkeypatch.undo()
    examples = ch.example_images(net, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the explorer itself warns about nothing
        w = ch.deconvnet_explorer(net, examples, tops, layer="c2")
    pick_img, pick_layer, pick_map = w.controls
    dn = vl.Deconvnet(net)

    def peaks(i, layer):
        return dn.record(examples[i].tensor(net), [layer]).activation(layer)[0].flatten(1).amax(1)

    # only maps with something to show: those that respond to the image, and those with a top-9 grid
    p = peaks(0, "c2")
    grids = sorted(int(c) for c in tops["c2"].channels)
    offered = [v for _, v in pick_map.options]
    assert offered == sorted(set(int(c) for c in (p > 0).nonzero().flatten()) | set(grids))
    assert [lab for lab, v in pick_map.options if v in grids] == [f"{c} · top-9 grid" for c in grids]
    assert pick_layer.value == "c2" and pick_map.value == int(p.argmax())  # starts at the strongest map
    text = w.output.outputs[0]["text"]
    assert f"c2: {int((p > 0).sum())} of {len(p)} maps respond" in text and ", ".join(map(str, grids)) in text
    assert not w.last.warnings and w.last.error is None
    # a grid map: its top nine are drawn below the projection
    pick_map.value = grids[0]
    figures = w.output.outputs[0]["text"].count("Figure(")  # no IPython shell here: figures display as text
    assert figures == 1 + bool(p[grids[0]] > 0) and not w.last.warnings
    # the map is kept across a layer change when the new layer offers it, else the note says why
    pick_map.value = max(offered)
    pick_layer.value = "c3"
    assert pick_map.value == max(offered) and w.last.note == ""  # c3 has 64 maps: still offered
    pick_map.value = 63 if 63 in [v for _, v in pick_map.options] else pick_map.options[-1][1]
    kept = pick_map.value
    pick_layer.value = "c1"  # 24 maps: map 63 cannot be kept
    c1 = peaks(0, "c1")
    assert pick_map.value == int(c1.argmax())
    assert w.last.note == f"c1 has {len(c1)} maps, numbered 0–{len(c1) - 1}: showing map {pick_map.value}, the strongest on this image."
    assert kept >= len(c1)
    assert "no top-9 grids were mined for c1" in w.output.outputs[0]["text"]
    assert not w.last.warnings and w.last.error is None
    plt.close("all")
    assert hook_count(net.model) == 0 and not any(modes(net.model))


def test_static_figure_steps_through_mined_maps_layer_by_layer():
    import matplotlib.pyplot as plt

    from vizlib.chapters.ch03 import deconvnet_static

    net = vl.alexnet(seed=0)
    data = torch.randn(10, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    tops = {layer: vl.top_patches(net, layer, data, 4, [0, 1, 2], progress=False) for layer in ("c2", "c3")}
    view = deconvnet_static(tops, per_layer=2)
    assert view.labels == ["c2 map 0", "c2 map 2", "c3 map 0", "c3 map 2"]
    assert view.html.count("data:image/jpeg;base64") == 4 and not plt.get_fignums()
    with pytest.raises(ValueError, match="no layer in tops"):
        deconvnet_static({})
