"""Chapter 9's presentation: the workload and layers, the units drawn, the readings of the three methods
(reach, layout and detail), the claims (each verdict from the numbers printed beside it), the concepts
carried into another net's input, the figures and the explorer."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

import vizlib as vl
from tests.conftest import hook_count
from vizlib.chapters import ch09 as ch
from vizlib.chapters.claims import NOT_SUPPORTED, NOT_TESTABLE, SUPPORTED
from vizlib.core.measures import transform_mask
from vizlib.methods.dissection import Concept, Dissection, LayerDissection
from vizlib.methods.inversion import Inversion, authors_schedule
from vizlib.methods.maximisation import Maximisation
from vizlib.methods.topk import TopActivations

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def bundled():
    return vl.load("alexnet", "bundled")


def _am(activation, dataset_max, reach=None, layer="c1"):
    n = len(activation)
    return Maximisation(layer, torch.arange(n), "map", ("none",), torch.zeros(n, 1, 4, 4), torch.tensor(activation),
                        torch.tensor(activation), torch.zeros(n), torch.tensor(dataset_max), 8,
                        None if reach is None else torch.tensor(reach))


# --------------------------------------------------------------------------- workload, layers, units


def test_workload_and_layers():
    smoke, full = ch.workload(True), ch.workload(False)
    assert smoke.smoke and not full.smoke
    assert smoke.steps <= full.steps and smoke.units <= full.units and smoke.inversion_images <= full.inversion_images
    assert full.inversion_steps == 400 and full.images is None and full.dissection_images is None
    assert ch.workload(True, small_net=False).steps < smoke.steps  # a full-size net gets less
    vgg = SimpleNamespace(layers=["c1_1", "c1_2", "p1", "c2_1", "c2_2", "p2", "c3_1", "c3_2", "c3_3", "fc6", "fc7"])
    assert ch.stage_layers(vgg) == ["c1_2", "c2_2", "c3_3"]
    assert ch.inversion_layers(vgg) == ["c1_2", "c2_2", "c3_3", "fc6", "fc7"]
    alex = SimpleNamespace(layers=["c1", "p1", "n1", "c2", "p2", "c3", "c4", "c5", "p5", "fc6", "fc7", "fc8"])
    assert ch.stage_layers(alex) == ["c1", "c2", "c3", "c4", "c5"]
    assert ch.inversion_layers(alex) == ["c1", "c2", "c3", "c4", "c5", "fc6", "fc7", "fc8"]


def test_chosen_units_are_drawn_among_the_maps_that_fire():
    values = torch.tensor([[2.0], [0.0], [1.0], [3.0], [0.0], [5.0]])
    t = TopActivations("c1", 1, values, torch.zeros(6, 1, dtype=torch.long), torch.zeros(6, 1, 2, dtype=torch.long), 10)
    assert ch.chosen_units(t, 10) == [0, 2, 3, 5]  # all that fire, none that never does
    two = ch.chosen_units(t, 2, seed=3)
    assert len(two) == 2 and set(two) <= {0, 2, 3, 5} and two == sorted(two)
    assert ch.chosen_units(t, 2, seed=3) == two  # seeded


def test_schedule_is_the_authors_fitted_to_the_steps():
    assert ch.schedule(400) == authors_schedule()
    s = ch.schedule(40)
    assert len(s) == 40 and s[:10] == [0.004] * 10 and s[10:30] == [0.0004] * 20 and s[30:] == [0.00004] * 10
    assert len(ch.schedule(3)) == 3 and ch.schedule(3)[0] == 0.004


# --------------------------------------------------------------------------- activation maximisation


def test_reach_table_and_claim_follow_the_numbers():
    am = _am([2.0, 0.5, 3.0, 1.0], [1.0, 1.0, 1.0, 2.0], [16, -1, 32, -1])
    t = ch.reach_table({"c1": am})
    assert t.rows == [["c1", 4, 2, 0.5, 1.25, 24]]
    c = ch.reach_claim({"c1": am})  # half is not most
    assert c.verdict == NOT_SUPPORTED and "reached by 2 of 4 units (share 0.500): c1 2/4" == c.measured
    more = ch.reach_claim({"c1": am, "c2": _am([1.0], [0.5], layer="c2")})
    assert more.verdict == SUPPORTED and "3 of 5" in more.measured and "c2 1/1" in more.measured
    assert ch.reach_claim({}).verdict == NOT_TESTABLE


def test_regulariser_figure_and_the_top9_beside_it(bundled):
    data = ch.chapter_data(bundled, 24)
    top = vl.top_activations(bundled, "c2", data, k=9, progress=False)
    units = ch.chosen_units(top, 2)
    out = vl.compare_regularisers(bundled, "c2", units, ["none", ("fourier", "transforms")], steps=3, reference=top)
    fig = ch.plot_regularisers(out)
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    assert fig.axes[0].get_title() == "none" and fig.axes[1].get_title() == "Fourier +\ntransforms"
    ratio = float(out["none"].ratio[0])
    assert fig.axes[0].get_xlabel() == f"×{ratio:.2f}" and fig.axes[0].get_ylabel() == f"c2 map {units[0]}"
    am = out["fourier+transforms"]
    with pytest.raises(ValueError, match="no patches"):
        ch.plot_beside_top9(am, top)
    with pytest.raises(ValueError, match=r"were not collected"):
        ch.plot_beside_top9(am, top.collect(bundled, data, [units[0]], progress=False))
    fig = ch.plot_beside_top9(am, top.collect(bundled, data, units, progress=False), per_row=2)
    assert len(fig.axes) == 6 and fig.axes[1].get_title() == "top-9 patches"
    assert fig.axes[0].get_title() == f"c2 map {units[0]} ×{float(am.ratio[0]):.2f}"
    assert hook_count(bundled.model) == 0
    matplotlib.pyplot.close("all")


def test_a_linear_unit_is_maximised_by_its_filter(bundled):
    """Erhan's known answer (the first exercise): under ||x|| <= rho a linear unit's maximiser is rho w / ||w||."""
    g = ch.filter_image(bundled, "c1", 3)
    conv = bundled.model.get_submodule(vl.methods.maximisation.objective_site(bundled.model, "c1")[2])
    w = conv.weight[3]
    assert torch.allclose(g.abs().sum(), w.abs().sum(), rtol=1e-5)  # the filter, placed once on the field
    # each step adds lr * w (the gradient of a linear unit) and projects back onto the sphere; at
    # lr = norm / ||w|| that step is as long as the sphere's radius, so the part of x across the
    # filter shrinks by a factor of about 0.7 or less at every step, whatever the trained filter's size
    lr = 5.0 / float(w.detach().norm())
    am = vl.maximise(bundled, "c1", [3], objective="unit", regulariser="none", optimizer="sgd", lr=lr, norm=5.0,
                     value_range=None, steps=100)
    x = am.images[0]
    assert float(x.norm()) == pytest.approx(5.0, rel=1e-5)  # on the sphere of the constraint
    assert float((x * g).sum() / (x.norm() * g.norm())) > 0.99999  # along the filter: the start's noise has decayed
    assert hook_count(bundled.model) == 0


# --------------------------------------------------------------------------- inversion


def _inv(images: torch.Tensor, original: torch.Tensor, errors, corrs, layers) -> Inversion:
    return Inversion(list(layers), images, original, torch.tensor([errors]), torch.tensor([corrs]),
                     [1.0] * len(layers), 400)


def test_layout_and_detail_separate_coarse_from_fine():
    x = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    blur = F.avg_pool2d(x, 2).repeat_interleave(2, -1).repeat_interleave(2, -2)
    inv = _inv(torch.stack([x, blur, -x], 1), x, [0.0, 0.5, 0.9], [1.0, 0.7, -1.0], ["c1", "c2", "fc6"])
    coarse, fine = ch.layout_detail(inv, cells=8)  # 2-pixel cells
    assert coarse.shape == (1, 3) and torch.allclose(coarse[0], torch.tensor([1.0, 1.0, -1.0]), atol=1e-6)
    assert fine[0, 0] == pytest.approx(1.0, abs=1e-6) and fine[0, 2] == pytest.approx(-1.0, abs=1e-6)
    assert abs(float(fine[0, 1])) < 1e-6  # the blur keeps the 2x2 averages and nothing finer
    t = ch.inversion_table(inv)
    assert t.header[2:] == ["feature error", "pixel correlation", "layout (coarse) r", "detail (fine) r"]
    assert t.rows[1][:4] == ["c2", 1.0, 0.5, 0.7] and t.rows[1][4] == 1.0


def test_inversion_claims_follow_the_numbers():
    x = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    blur = F.avg_pool2d(x, 2).repeat_interleave(2, -1).repeat_interleave(2, -2)
    good = _inv(torch.stack([x, blur, blur], 1), x, [0.05, 0.3, 0.6], [0.95, 0.8, 0.8], ["c1", "c5", "fc6"])
    claims = ch.inversion_claims(good)
    assert [c.verdict for c in claims] == [SUPPORTED] * 3
    assert "c1 0.050, c5 0.300, fc6 0.600; rank correlation with depth 1" in claims[0].measured
    assert claims[1].measured == "c1: pixel correlation 0.950"
    assert claims[2].measured.startswith("layout / detail r: c1 1 / 1; c5 1 / ")
    # error falling with depth, a blurred first layer, an empty top layer: none holds
    grey = torch.zeros_like(x)
    bad = _inv(torch.stack([blur, grey + 0.5, x], 1), x, [0.6, 0.3, 0.05], [0.85, 0.0, 1.0], ["c1", "c5", "fc6"])
    assert [c.verdict for c in ch.inversion_claims(bad)] == [NOT_SUPPORTED] * 3
    one = _inv(x[:, None], x, [0.1], [0.95], ["c1"])
    assert [c.verdict for c in ch.inversion_claims(one)] == [NOT_TESTABLE, SUPPORTED, NOT_TESTABLE]


def test_inversion_figures_and_images(bundled):
    data = ch.chapter_data(bundled, 30)
    x = ch.inversion_images(data, 2)
    labels = [int(lab) for lab in data.labels]
    second = next(i for i, v in enumerate(labels) if v != labels[0])  # one image per class: the next class's first
    assert x.shape == (2, 1, 64, 64) and torch.equal(x[0], data[0][0]) and torch.equal(x[1], data[second][0])
    inv = vl.invert(bundled, x, ["c1", "c5", "fc6"], lr=ch.schedule(4))
    assert inv.steps == 4 and hook_count(bundled.model) == 0
    fig = ch.plot_inversion(inv, image=1, per_row=2)
    assert len(fig.axes) == 4 and fig.axes[0].get_title() == "original"
    assert fig.axes[1].get_title().startswith(f"c1: err {inv.error('c1', 1):.2f}")
    fig = ch.plot_inversion_curves(inv)
    assert len(fig.axes) == 2 and fig.axes[1].get_ylim() == (-1.0, 1.0)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["c1", "c5", "fc6"]
    matplotlib.pyplot.close("all")


# --------------------------------------------------------------------------- dissection


def _layer(name, iou):
    k = len(iou)
    return LayerDissection(name, torch.ones(k), torch.zeros(k), torch.tensor(iou))


def test_dissection_table_and_claims_follow_the_numbers():
    cs = [Concept("a", "object"), Concept("b", "object"), Concept("sky", "background")]
    t = Dissection(cs, {"c1": _layer("c1", [[0.5, 0, 0], [0.3, 0, 0]]),
                        "c2": _layer("c2", [[0.5, 0, 0], [0, 0.6, 0], [0, 0, 0.05]])}, 10)
    u = Dissection(cs, {"c1": _layer("c1", [[0.5, 0, 0], [0.01, 0, 0]]),
                        "c2": _layer("c2", [[0.01, 0, 0], [0, 0.02, 0], [0, 0, 0.03]])}, 10)
    table = ch.dissection_table(t, u)
    assert table.header[-2:] == ["untrained: detectors", "untrained: unique"]
    assert table.rows == [["c1", 2, 2, 1, 2, 1, 0, 0, 1, 1], ["c2", 3, 3, 3, 2, 2, 1, 1, 0, 0]]
    more, deeper = ch.dissection_claims(t, u)
    assert more.verdict == SUPPORTED and more.measured == "detectors, trained vs untrained: 5 vs 1 (c1 2 vs 1, c2 3 vs 0)"
    assert deeper.verdict == SUPPORTED and deeper.measured.startswith("unique concepts c1 1, c2 3; detectors c1 2/2")
    # reversed: the untrained copy has more, and the first layer the more concepts
    less, shallower = ch.dissection_claims(u, t)
    assert less.verdict == NOT_SUPPORTED and shallower.verdict == NOT_SUPPORTED
    # the Random set: the net shown is itself untrained; no control: not testable
    assert ch.dissection_claims(t, u, is_trained=False)[0].verdict == NOT_TESTABLE
    assert ch.dissection_claims(t, None)[0].verdict == NOT_TESTABLE
    fig = ch.plot_dissection(t, u)
    assert len(fig.axes) == 2 and fig.axes[0].get_ylim() == (0.0, 1.0) and fig.axes[1].get_ylim() == (0.0, 3.0)
    matplotlib.pyplot.close("all")


def test_concepts_are_the_sample_or_carried_into_another_nets_input(bundled):
    cs = ch.chapter_concepts(bundled, 12)
    assert len(cs) == 12 and cs.size == (64, 64) and cs.categories == ["object", "background"]
    big = vl.load("alexnet", "random")
    carried = ch.chapter_concepts(big, 3)
    assert len(carried) == 3 and carried.size == (224, 224) and carried.concepts == cs.concepts
    m = carried.masks(0, 3)
    sample = cs.sample
    for i in range(3):
        obj = transform_mask(big, np.array(sample.masks[i], dtype=bool))
        label = int(sample.labels[i])
        assert torch.equal(m[i, label], obj)
        assert int(m[i, :10].sum()) == int(obj.sum())  # the other garments' masks are empty
        assert torch.equal(m[i, 10:].any(0), ~obj) and int(m[i, 10:].sum()) == int((~obj).sum())
    x = carried.data(big)[0][0]
    assert x.shape == (3, 224, 224)


def test_unit_masks_figure(bundled):
    cs = ch.chapter_concepts(bundled, 40)
    d = vl.dissect(bundled, ["c5"], cs)
    idx = ch.unit_examples(cs, 1, 3, 40)
    sums = [int(cs.masks(i, i + 1)[0, 1].sum()) for i in range(40)]
    assert [sums[i] for i in idx] == sorted(sums, reverse=True)[: len(idx)] and all(sums[i] > 0 for i in idx)
    fig = ch.plot_unit_masks(d, bundled, "c5", cs, cs.data(bundled), n_units=2, n_images=3)
    assert len(fig.axes) == 6
    unit, name, iou = d.top_units("c5", 1)[0]
    assert fig.axes[0].texts[0].get_text() == f"unit {unit}\n{name}\nIoU {iou:.3f}"
    assert hook_count(bundled.model) == 0
    matplotlib.pyplot.close("all")


# --------------------------------------------------------------------------- explorer


def _text(w) -> str:
    return "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in w.output.outputs)


def test_explorer_follows_the_controls_and_caches(bundled, monkeypatch):
    data = ch.chapter_data(bundled, 24)
    cs = ch.chapter_concepts(bundled, 24)
    d = vl.dissect(bundled, ["c2", "c5"], cs)
    x = ch.inversion_images(data, 1)
    inv = vl.invert(bundled, x, ["c5"], lr=ch.schedule(2))
    calls = []
    original = ch.maximise
    monkeypatch.setattr(ch, "maximise", lambda *a, **k: calls.append((a[1], tuple(a[2]), k["regulariser"]))
                        or original(*a, **k))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w = ch.family_explorer(bundled, data, inversion=inv, dissection=d, concepts=cs, layers=["c2", "c5"],
                               regularisers=["none", ("fourier", "transforms")], steps=2)
    layer, unit, reg = w.controls
    assert layer.value == "c5" and reg.value == "fourier+transforms" and len(calls) == 1
    text = _text(w)  # no IPython shell here: what is displayed arrives as printed text
    assert f"c5 map {unit.value}: the synthesized image drives it" in text
    assert "Inversion from c5" in text and "Dissection: map" in text and text.count("Figure(") == 3
    assert w.last.error is None and not w.last.warnings
    first = unit.value
    reg.value = "none"
    assert calls[-1] == ("c5", (first,), ("none",)) and len(calls) == 2
    reg.value = "fourier+transforms"  # cached: no new synthesis
    assert len(calls) == 2
    offered_c2 = [int(c) for c in torch.nonzero(vl.top_activations(bundled, "c2", data, k=9, progress=False)
                                                .values[:, 0] > 0).flatten()]
    layer.value = "c2"
    assert list(unit.options) == offered_c2
    if first in offered_c2:
        assert unit.value == first and w.last.note == ""
    else:
        assert unit.value == offered_c2[0] and w.last.note.startswith(f"map {first} of c2")
    assert "c2 was not inverted (inverted: c5)" in _text(w)
    assert w.last.error is None and not w.last.warnings and w.status.value == ""
    assert hook_count(bundled.model) == 0
    matplotlib.pyplot.close("all")


def test_the_kernel_free_inversion_slider_has_a_frame_per_layer():
    x = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    inv = _inv(torch.stack([x, x * 0.5, -x], 1), x, [0.0, 0.5, 0.9], [1.0, 1.0, -1.0], ["c1", "c5", "fc6"])
    s = ch.inversion_static(inv)
    assert len(s) == 3
    matplotlib.pyplot.close("all")


def test_projections_are_stretched_around_grey():
    p = np.full((10, 10), 0.5)
    p[0, :5] = 0.6
    p[1, :4] = 0.45
    p[9, 9] = 0.9  # one outlier: clipped, it does not set the contrast
    s = ch._stretched(p)
    d = np.percentile(np.abs(p - 0.5), 99)  # about the 0.1 of the first row, not the outlier's 0.4
    assert 0.1 <= d < 0.11
    assert np.allclose(s[0, :5], 0.5 + 0.05 / d) and np.allclose(s[1, :4], 0.5 - 0.025 / d)
    assert s[9, 9] == 1.0 and s[5, 5] == 0.5
    assert np.array_equal(ch._stretched(np.full((2, 2), 0.5)), np.full((2, 2), 0.5))
