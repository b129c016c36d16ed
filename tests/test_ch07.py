"""Chapter 7's presentation of DeNet: each image's views, the tables, the claims, the figures, the explorer."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest
import torch

import vizlib as vl
from vizlib.chapters import ch07 as ch
from vizlib.chapters.claims import VERDICTS
from vizlib.methods.denet import DeNet, class_correlation
from vizlib.models.bundled_nets import alexnet_fmnist, zfnet_fmnist

from .test_denet import TOL, fake_fmnist_net


@pytest.fixture(scope="module")
def fmnist_pair():
    nets = {"AlexNet": fake_fmnist_net(alexnet_fmnist(seed=0).eval(), 64),
            "ZFNet": fake_fmnist_net(zfnet_fmnist(seed=0).eval(), 64)}
    images = {k: vl.example_images(net, 2) for k, net in nets.items()}
    results = {k: ch.explain_images(net, images[k], k=3) for k, net in nets.items()}
    return nets, images, results


def test_denet_images_for_a_one_channel_net(fmnist_pair):
    nets, images, results = fmnist_pair
    net, ims = nets["AlexNet"], images["AlexNet"]
    assert [e.label for e in ims] == [0, 1]  # one of each class in turn
    for e, r in zip(ims, results["AlexNet"]):
        x, mask = e.tensor(net), e.object_mask(net)
        assert x.shape == (1, 64, 64) and mask.shape == (64, 64) and 0 < mask.float().mean() < 1
        assert torch.equal(r.input, x) and torch.equal(r.mask, mask)  # what the chapter measures in


def test_explain_images(fmnist_pair):
    nets, images, results = fmnist_pair
    net = nets["AlexNet"]
    dn = DeNet(net)
    for ex, r in zip(images["AlexNet"], results["AlexNet"]):
        rec = dn.record(ex.tensor(net))
        assert r.top == rec.top_classes(3) and r.wrong != ex.label and r.period == 2
        assert torch.allclose(r.denet_true, rec.project(ex.label).pixels[0], atol=TOL)
        assert torch.allclose(r.denet_top, rec.project(rec.top_classes(3)).pixels, atol=TOL)
        assert torch.allclose(r.deconv, rec.strongest_map().pixels[0], atol=TOL)
        assert r.on_object(r.denet_true) == pytest.approx(float(vl.energy_inside(r.denet_true, ex.object_mask(net))))
    assert results["ZFNet"][0].period == 1


def test_tables_claims_and_figures(fmnist_pair):
    from matplotlib.figure import Figure

    nets, images, results = fmnist_pair
    net, res = nets["AlexNet"], results["AlexNet"]
    assert len(ch.top_classes_table(net, res)) == 2
    t = ch.denet_vs_deconvnet_table(res)
    assert t.column("DeNet higher") == [r.on_object(r.denet_top[0]) > r.on_object(r.deconv) if r.measurable else None
                                        for r in res]
    assert t.column("object area") == [r.area for r in res]
    w = ch.true_vs_wrong_table(net, res)
    assert w.column("r(true, wrong)") == [class_correlation(r.denet_true, r.denet_wrong) for r in res]
    both = ch.compare_nets_table(results)
    assert len(both) == 2
    claims = ch.denet_claims(results, pair=("AlexNet", "ZFNet"))
    assert len(claims) == 5 and len(ch.claims_table(claims)) == 5
    # the table measures both nets at AlexNet's stride, as the block-artifact claim does: its medians are the claim's
    period = results["AlexNet"][0].period
    medians = []
    for lab in ("AlexNet", "ZFNet"):
        col = both.column(f"{lab}: grid (period {period})")
        assert col == [ch._grid(r, period) for r in results[lab]] and not any(np.isnan(col))
        medians.append(f"{lab} {round(float(np.median(col)), 3):.3f}")
    assert ", ".join(medians) in claims[4].measured
    apart = ch.denet_claims(results, pair=("AlexNet", "ZFNet"), differently="trained differently: ZFNet a; AlexNet b")
    assert apart[4].verdict == "not testable here" and apart[4].measured.endswith("(trained differently: ZFNet a; AlexNet b)")
    assert [c.verdict for c in apart[:4]] == [c.verdict for c in claims[:4]]
    assert all(c.verdict in VERDICTS for c in claims)
    filled = [dataclasses.replace(r, mask=torch.ones_like(r.mask)) for r in res]  # objects that fill the image
    assert not any(r.measurable for r in filled)
    assert ch.denet_vs_deconvnet_table(filled).column("DeNet higher") == [None, None]
    assert ch.denet_claims({"AlexNet": filled})[1].verdict == "not testable here"
    dn = DeNet(net)
    options = ch.options_table(dn, res[:1])
    assert options.column("r(with the paper's reading)")[0] == pytest.approx(1.0)
    figs = [ch.plot_top_classes(net, res, title="AlexNet"), ch.plot_denet_vs_deconvnet(net, res),
            ch.plot_true_vs_wrong(net, res), ch.plot_nets_side_by_side(nets, results), ch.plot_options(net, dn, res[0]),
            ch.denet_figure(net, images["AlexNet"][0], denet=dn)]
    assert all(isinstance(f, Figure) for f in figs)
    import matplotlib.pyplot as plt

    for f in figs:
        plt.close(f)


def _numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+\.\d+|\d+", text)]


def test_each_verdict_follows_from_the_numbers_it_prints(fmnist_pair):
    _, _, results = fmnist_pair
    claims = ch.denet_claims(results, pair=("AlexNet", "ZFNet"))
    for c in claims[:2]:  # §7: the printed median r below 0.50
        r = _numbers(c.measured.split("=")[1])[0]
        assert c.verdict == ("supported" if r < 0.5 else "not supported here")
    for c in claims[2:4]:  # §8: DeNet higher on more than half of the images compared
        wins, n = (int(v) for v in re.search(r"higher on (\d+) of (\d+)", c.measured).groups())
        assert c.verdict == ("not testable here" if n == 0 else "supported" if wins > n / 2 else "not supported here")
    ga, gz = (float(v) for v in re.findall(r"(?:AlexNet|ZFNet) (\d\.\d+)", claims[4].measured.split("medians:")[1]))
    assert claims[4].verdict == ("supported" if ga > gz else "not supported here")


def test_an_image_without_an_object_region(fmnist_pair):
    nets, images, results = fmnist_pair
    r = dataclasses.replace(results["AlexNet"][0], mask=None)
    assert math.isnan(r.area) and not r.measurable and math.isnan(r.on_object(r.denet_true))
    assert ch.denet_vs_deconvnet_table([r]).column("DeNet higher") == [None]
    assert ch.denet_claims({"AlexNet": [r]})[1].verdict == "not testable here"


def test_explorer_keeps_its_choices(fmnist_pair, shell):
    import ipywidgets as W

    nets, images, _ = fmnist_pair
    widget = ch.denet_explorer(nets, images)
    assert isinstance(widget, W.VBox) and widget.output.outputs  # drawn while the cell runs
    pick, img, cls, top, rect = widget.controls
    dn = {k: DeNet(n) for k, n in nets.items()}

    def predicted(label, i):
        return dn[label].record(images[label][i].tensor(nets[label])).predicted()

    assert cls.value == predicted("AlexNet", 0) and "(predicted)" in cls.label
    img.value = 1  # the class followed the prediction: it follows the new image's
    assert cls.value == predicted("AlexNet", 1) and widget.last.note == ""
    other = next(c for c in range(len(nets["AlexNet"].categories)) if c != cls.value)
    cls.value = other  # picked by hand: kept across a network change, by name; the image too
    pick.value = "ZFNet"
    assert img.value == 1 and img.label == images["ZFNet"][1].name
    assert nets["ZFNet"].categories[cls.value] == nets["AlexNet"].categories[other]
    assert widget.last.error is None and not widget.last.warnings
    drawn = widget.output.outputs
    top.value = [t for t in top.options if t != top.value][0]
    assert widget.output.outputs != drawn and widget.last.error is None


def test_static_figure_explains_the_most_probable_classes_then_the_true_one(fmnist_pair):
    import matplotlib.pyplot as plt

    nets, images, _ = fmnist_pair
    net, ex = nets["AlexNet"], images["AlexNet"][0]
    rec = DeNet(net).record(ex.tensor(net))
    view = ch.denet_static(net, ex, classes=2)
    top = rec.top_classes(2)
    expected = top + ([ex.label] if ex.label not in top else [])
    assert len(view) == len(expected) and "(predicted)" in view.labels[0]
    assert [lab.split("class ")[1].split(" (")[0] for lab in view.labels] == [net.categories[c] for c in expected]
    assert any("(true)" in lab for lab in view.labels)
    assert view.html.count("data:image/jpeg;base64") == len(view) and not plt.get_fignums()
