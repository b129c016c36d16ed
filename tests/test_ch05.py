"""Chapter 5's presentation: Fig. 7, the readings table, the claims (each verdict from the numbers
printed beside it), Table 1 as marked, the annotation guide, the chapter's images and the explorer."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from tests.test_occlusion import MEAN, STD, _one_thread, images, small_net  # noqa: F401 (fixtures)
from vizlib.chapters.ch05 import (
    OcclusionReadings,
    ZEILER_TABLE1,
    annotation_format,
    chapter_parts,
    claims_table,
    correspondence_claims,
    occlusion_claims,
    occlusion_explorer,
    occlusion_readings,
    other_images,
    plot_occlusion,
    plot_parts,
    readings_table,
    table1,
)
from vizlib.chapters.claims import NOT_SUPPORTED, NOT_TESTABLE, SUPPORTED, VERDICTS
from vizlib.core.data import FASHION_MNIST_CLASSES
from vizlib.methods.correspondence import Correspondence, correspondence, untrained_like
from vizlib.methods.occlusion import Occlusion, OcclusionMaps
from vizlib.models.bundled_nets import alexnet_fmnist

matplotlib.use("Agg")


def bundled_untrained():
    import vizlib as vl
    from vizlib.models.training import Preprocess

    return vl.Net("alexnet", "bundled", alexnet_fmnist(seed=0).eval(), list(FASHION_MNIST_CLASSES),
                  Preprocess(64, 0.3, 0.35), (0.3,), (0.35,), 64, "untrained")


# --------------------------------------------------------------------------- figure, readings


def test_plot_and_readings():
    import vizlib as vl

    model = alexnet_fmnist(seed=0).eval()
    g = torch.Generator().manual_seed(0)
    data = torch.randn(6, 1, 64, 64, generator=g)
    occ = Occlusion(model)
    maps = occ.sweep_many(data[:2], 16, 16, targets=[1, 2], progress=False)
    assert all(isinstance(m, OcclusionMaps) and m.projection is not None for m in maps)
    top = vl.top_activations(model, "c5", data[2:], k=4, progress=False)
    top = top.collect(model, data[2:], [m.channel for m in maps], progress=False)
    fig = plot_occlusion(maps, others=top)
    assert isinstance(fig, Figure) and len(fig.axes) >= 12
    fig = plot_occlusion(maps[0])
    assert isinstance(fig, Figure)
    readings = [occlusion_readings(m, name=str(i)) for i, m in enumerate(maps)]
    assert readings[0].on_object is None and readings[0].localises is None
    assert len(readings_table(readings)) == 2
    matplotlib.pyplot.close("all")


def test_projection_ratio_is_the_energy_share_under_the_square(images):
    """The ratio of the readings: (c)'s energy under the square where (b) is lowest, over the square's area share."""
    net = small_net()
    m = Occlusion(net, mean=MEAN, std=STD).sweep(images[0], 8, 4, target=0, progress=False)
    r = occlusion_readings(m)
    ay, ax = m.lowest("activity")
    energy = m.projection.full(0).double().pow(2).sum(0)
    want = float(energy[ay : ay + 8, ax : ax + 8].sum() / energy.sum()) / (64 / 256)
    assert r.projection_ratio == pytest.approx(want, rel=1e-12)


# --------------------------------------------------------------------------- claims


def reading(on: float | None, share: float | None, ratio: float | None, same: bool) -> OcclusionReadings:
    return OcclusionReadings("x", 0, "c", 0.9, 0.5, (0, 0), 1, 5.0, 1.0, (8, 8), 11.3, same, 0.1, on, share, ratio)


def test_occlusion_verdicts_follow_the_printed_numbers():
    all_hold = occlusion_claims([reading(0.8, 0.3, 1.5, False), reading(0.9, 0.4, 2.0, True)])
    assert [c.verdict for c in all_hold] == [SUPPORTED] * 3
    assert "0.80 vs 0.30, 0.90 vs 0.40" in all_hold[0].measured and "2 of 2" in all_hold[0].measured
    assert "1.50, 2.00 (above 1 on 2 of 2 images)" in all_hold[1].measured
    assert "on 1 of 2 images" in all_hold[2].measured
    # one image of two: no longer "holds on some", the claim is not supported on this run
    some = occlusion_claims([reading(0.8, 0.3, 2.14, True), reading(0.2, 0.4, 0.32, True)])
    assert [c.verdict for c in some] == [NOT_SUPPORTED] * 3
    # numbers that print equal are not above one another
    tie = occlusion_claims([reading(0.801, 0.799, 1.004, False)])
    assert "0.80 vs 0.80" in tie[0].measured and "1.00" in tie[1].measured
    assert [c.verdict for c in tie] == [NOT_SUPPORTED, NOT_SUPPORTED, SUPPORTED]
    # an object that fills the image cannot tell: left out, and alone not testable
    full = occlusion_claims([reading(1.0, 1.0, 1.5, False), reading(0.9, 0.4, 2.0, True)])
    assert full[0].verdict == SUPPORTED
    assert "1.00 vs 1.00, 0.90 vs 0.40 (above chance on 1 of 1 images; 1 where" in full[0].measured
    assert occlusion_claims([reading(1.0, 1.0, 1.5, False)])[0].verdict == NOT_TESTABLE
    # nothing to test with
    none = occlusion_claims([reading(None, None, None, True)])
    assert [c.verdict for c in none] == [NOT_TESTABLE, NOT_TESTABLE, NOT_SUPPORTED]
    assert "no object regions" in none[0].measured and "no projections" in none[1].measured


def corr(scores5: dict, random5: list, scores7: dict, random7: list) -> Correspondence:
    parts = list(scores5)
    return Correspondence(["p5", "fc7"], parts, 5, len(random5), {"p5": 10, "fc7": 10}, {"p5": {}, "fc7": {}},
                          {"p5": scores5, "fc7": scores7}, {},
                          {"p5": np.array(random5), "fc7": np.array(random7)}, {p: 5 for p in parts})


def test_correspondence_verdicts_follow_the_printed_numbers():
    r = corr({"eye": 0.15, "nose": 0.19}, [0.21, 0.22, 0.23], {"eye": 0.20, "nose": 0.21}, [0.22, 0.21, 0.23])
    c = correspondence_claims(r)
    assert [x.verdict for x in c] == [SUPPORTED, SUPPORTED]
    assert "eye 0.150, nose 0.190 vs random 0.220 ± 0.010 (2 of 2 parts below)" in c[0].measured
    assert c[1].measured == "gap (random − parts) +0.0500 at p5, +0.0150 at fc7"
    # one part above random: not supported; a negative gap that grows in size at fc7: not closer
    r2 = corr({"eye": 0.15, "nose": 0.25}, [0.21, 0.22, 0.23], {"eye": 0.30, "nose": 0.31}, [0.22, 0.21, 0.23])
    c2 = correspondence_claims(r2)
    assert [x.verdict for x in c2] == [NOT_SUPPORTED, NOT_SUPPORTED]
    assert "(1 of 2 parts below)" in c2[0].measured and "+0.0200 at p5, -0.0850 at fc7" in c2[1].measured
    # a part with one image has no score: not testable
    r3 = corr({"eye": float("nan"), "nose": 0.1}, [0.21, 0.22, 0.23], {"eye": float("nan"), "nose": 0.2},
              [0.22, 0.21, 0.23])
    assert correspondence_claims(r3)[0].verdict == NOT_TESTABLE
    # with a control: its two claims, then the learned one
    ctl = corr({"eye": 0.18, "nose": 0.2}, [0.21, 0.22, 0.23], {"eye": 0.2, "nose": 0.21}, [0.22, 0.21, 0.23])
    c4 = correspondence_claims(r, ctl)
    assert len(c4) == 5 and all(x.claim.startswith("untrained copy: ") for x in c4[2:4])
    assert c4[4].measured == "gap +0.0500 against the untrained copy's +0.0300" and c4[4].verdict == SUPPORTED
    assert correspondence_claims(ctl, r)[4].verdict == NOT_SUPPORTED
    untrained = correspondence_claims(r, ctl, trained=False)[4]
    assert untrained.verdict == NOT_TESTABLE and "itself untrained" in untrained.measured


def test_claims_tables_and_controls(images):
    import vizlib as vl

    net = small_net()
    occ = Occlusion(net, mean=MEAN, std=STD)
    maps = occ.sweep_many(images, 8, 4, targets=[0, 1, 2], progress=False)
    region = torch.zeros(16, 16, dtype=torch.bool)
    region[4:12, 4:12] = True
    readings = [occlusion_readings(m, region, name=str(i)) for i, m in enumerate(maps)]
    assert all(r.projection_ratio is not None for r in readings)
    claims = occlusion_claims(readings)
    assert len(claims) == 3 and all(c.verdict in VERDICTS for c in claims)
    assert len(claims_table(claims)) == 3
    # each verdict is the rule applied to the readings' numbers as printed
    loc = [(round(r.on_object, 2), round(r.object_share, 2)) for r in readings]
    assert (claims[0].verdict == SUPPORTED) == all(a > b for a, b in loc)
    assert (claims[1].verdict == SUPPORTED) == all(round(r.projection_ratio, 2) > 1 for r in readings)
    assert (claims[2].verdict == SUPPORTED) == any(not r.same_place for r in readings)
    parts = {"a": torch.tensor([[3.0, 4.0], [5.0, 5.0], [2.0, 12.0]])}
    objects = torch.ones(3, 16, 16, dtype=torch.bool)
    res = correspondence(net, images, parts, objects, 4, layers=["1", "4"], draws=3)
    ctl_net = untrained_like(vl.Net("x", "random", net, [str(i) for i in range(7)], None, MEAN, STD, 16, "test"), 3)
    assert ctl_net.model is not net and not torch.equal(ctl_net.model[0].weight, net[0].weight)
    ctl = correspondence(ctl_net, images, parts, objects, 4, layers=["1", "4"], draws=3)
    table = correspondence_claims(res, ctl)
    assert len(table) == 5 and all(c.verdict in VERDICTS for c in table)
    assert len(claims_table(table).header) == 4
    mine, theirs = round(res.gap("1"), 4), round(ctl.gap("1"), 4)
    assert (table[-1].verdict == SUPPORTED) == (mine > 0 and mine > theirs)
    assert res.gap("1") == pytest.approx(res.random_mean("1")[0] - res.score["1"]["a"])
    assert len(table1()) == 4
    assert annotation_format().startswith("Part annotations") and "ankle_boots" in annotation_format()


def test_table1_is_marked_unverified_and_kept_as_typed():
    t = table1()
    assert "UNVERIFIED" in t.title and "do not quote" in t.title
    assert ZEILER_TABLE1["layer 5"]["random"] == (0.107, 0.017)
    assert t.rows[0] == ["right eye", "0.067 ± 0.007", "0.069 ± 0.015"]


# --------------------------------------------------------------------------- the chapter's images


def test_object_masks_and_other_images():
    import vizlib as vl
    from vizlib.core.examples import example_images

    net = bundled_untrained()
    shown = example_images(net, 2)
    mask = shown[0].object_mask(net)  # the chapter's object: the ExampleImage's own mask in the net's input
    assert mask.shape == (64, 64) and 0.1 < float(mask.float().mean()) < 0.95
    rest = other_images(net, shown, limit=50)
    assert len(rest) == 50 and not any(np.array_equal(rest.raw(i), ex.image) for i in range(50) for ex in shown)
    photo_net = vl.load("alexnet", "random")
    cat = example_images(photo_net, 1)[0]
    box = cat.object_mask(photo_net)
    assert box.shape == (224, 224) and bool(box.any())


def test_chapter_parts_and_their_figure():
    import vizlib as vl

    net = bundled_untrained()
    parts = chapter_parts(net)
    assert parts.name == "ankle_boots" and chapter_parts(vl.load("alexnet", "random")).name == "faces"
    fig = plot_parts(parts.prepare(net), net)
    assert isinstance(fig, Figure) and len(fig.axes) == 8
    matplotlib.pyplot.close("all")


# --------------------------------------------------------------------------- explorer


def test_explorer_reuses_sweeps_and_follows_the_controls(images):
    net = small_net()
    occ = Occlusion(net, mean=MEAN, std=STD)
    maps = occ.sweep_many(images[:2], 8, 4, targets=[1, 2], progress=False)
    calls = []
    original = Occlusion.sweep
    Occlusion.sweep = lambda self, *a, **k: calls.append(a) or original(self, *a, **k)  # type: ignore[method-assign]
    try:
        w = occlusion_explorer(net, {"a": (images[0], 1), "b": (images[1], 2)}, size=8, stride=4, maps=maps)
        assert calls == []  # the first drawing reuses the sweep given
        assert w.output.outputs  # and is in the output widget
        pick, cls, size, stride = w.controls
        pick.value = "b"  # the class followed the true class: it follows to the new image's
        assert calls == [] and cls.value == 2 and w.last.note == ""
        cls.value = 5  # another class: no new sweep
        assert calls == []
        pick.value = "a"  # a class picked by hand is kept, and the note says so
        assert cls.value == 5 and w.last.note.startswith("class kept: ")
        busy = []
        w._content, draw = (lambda: busy.append(w.status.value) or draw()), w._content
        stride.value = 8
        assert len(calls) == 1 and "Sweeping a 8-pixel occluder over a (stride 8)" in busy[-1]
        assert w.status.value == "" and w.last.error is None and not w.last.warnings
    finally:
        Occlusion.sweep = original  # type: ignore[method-assign]
        matplotlib.pyplot.close("all")


# --------------------------------------------------------------------------- kernel-free figure


def test_static_figure_moves_the_square_over_the_sweep_and_keeps_the_lowest_position():
    import matplotlib.pyplot as plt

    from vizlib.chapters.ch05 import occlusion_static, plot_position

    model = alexnet_fmnist(seed=0).eval()
    image = torch.randn(1, 64, 64, generator=torch.Generator().manual_seed(1))
    m = Occlusion(model).sweep(image, 16, 8, 3, progress=False)
    ny, nx = m.probability.shape
    fig = plot_position(m, ny - 1, 0)
    title = fig.axes[0].get_title()
    assert f"square at ({int(m.ys[-1])}, {int(m.xs[0])})" in title
    assert f"{float(m.probability[ny - 1, 0]):.2f}" in fig.axes[2].get_title()  # p at this position, printed
    assert fig.axes[2].images[0].get_clim() == (0, 1)  # probabilities on a fixed range across frames
    plt.close(fig)
    with pytest.raises(ValueError, match="outside the sweep"):
        plot_position(m, ny, 0)
    view = occlusion_static(m, positions=4)
    low = m.lowest()
    assert 4 <= len(view) <= 5 and view.html.count("data:image/jpeg;base64") == len(view)
    assert any(f"({low[0]}, {low[1]}), where p is lowest" == t for t in view.labels)
    assert not plt.get_fignums()
