"""Chapter 6's presentation: its images and data, accuracy, the claims judged on the numbers they print
(one Claim, one vocabulary), the figures and the explorer."""

from __future__ import annotations

import torch

import vizlib as vl
from vizlib.chapters import ch06 as ch
from vizlib.chapters.claims import Claim, claims_table
from vizlib.core.data import fashion_mnist_sample
from vizlib.core.examples import object_boxes
from vizlib.methods.filters import filter_spectrum, rms_dominance
from vizlib.methods.reconstruction import energy_by_stage, side_by_side, whole_layer
from vizlib.methods.sparsity import Sparsity, layer_sparsity

from ._nets import bundled_net, rgb_net


def test_net_accuracy_recorded_and_live():
    net = bundled_net("alexnet")
    net.extra = {"record": {"test_accuracy": 0.91, "test_images": 10000}}
    sample = fashion_mnist_sample().subset(slice(0, 40))
    a = ch.net_accuracy(net, sample)
    assert a.recorded == 0.91 and "10000" in a.recorded_on
    assert a.live == vl.evaluate(net.model, sample, net.transform).accuracy
    other = ch.net_accuracy(rgb_net(), sample)  # ImageNet-style classes: no live figure on Fashion-MNIST
    assert other.recorded is None and other.live is None


def test_claims_compute_their_verdicts():
    # the rules the chapter used as expressions, now plain comparisons of the printed numbers
    yes = Claim.judge("Yu §5", "VGG-16 sparser", "vgg16=0.8, alexnet=0.7", 0.8 > 0.7)
    no = Claim.judge("Yu §5", "VGG-16 sparser", "vgg16=0.6, alexnet=0.7", 0.6 > 0.7)
    text, v = ch._measured({"zfnet": None, "alexnet": 0.9}, why="untrained nets")
    unmeasured = Claim.judge("Zeiler §5", "ZFNet more accurate", text,
                             None if v is None else v["zfnet"] > v["alexnet"])
    text, v = ch._measured({"a": float("nan"), "b": 1.0})
    nan = Claim.judge("x", "y", text, None if v is None else v["a"] > v["b"])
    a, b, c = 1, 2, 3
    chained = Claim.judge("x", "y", "a=1, b=2, c=3", a < b < c and not c - a < 1)
    assert (yes.verdict, no.verdict, unmeasured.verdict, nan.verdict) == (
        "supported", "not supported here", "not testable here", "not testable here")
    assert chained.verdict == "supported"
    assert "vgg16=0.8, alexnet=0.7" in str(yes) and str(yes).endswith("verdict: supported")
    assert "not measured: zfnet; untrained nets" in unmeasured.measured and "not measured: a" in nan.measured
    assert claims_table([yes, no]).column("verdict") == ["supported", "not supported here"]


def test_a_rule_compares_the_numbers_as_printed():
    text, v = ch._measured({"vgg16": 0.387149, "alexnet": 0.38712})  # different, but printed alike: equal for a rule
    assert text == "vgg16=0.3871, alexnet=0.3871" and v == {"vgg16": 0.3871, "alexnet": 0.3871}
    text, v = ch._measured({"pools": 3, "pools_lower": 3, "x": None}, needs=("pools", "pools_lower"))
    assert text == "pools=3, pools_lower=3, x=—" and v == {"pools": 3.0, "pools_lower": 3.0}


def _sparsity(name: str, shares: dict[str, float]) -> Sparsity:
    zeros = {k: round(v * 100) for k, v in shares.items()}
    maps = {k: torch.tensor([z]) for k, z in zeros.items()}
    return Sparsity(name, list(shares), zeros, {k: 100 for k in shares}, maps, {k: 100 for k in shares}, 1)


def test_sparsity_claims_follow_their_numbers():
    sp = {"alexnet": _sparsity("AlexNet", {"c1": 0.6, "p1": 0.3, "c2": 0.9, "p2": 0.7, "c5": 0.95, "p5": 0.8}),
          "vgg16": _sparsity("VGG-16", {"c1_1": 0.5, "p1": 0.6, "c2_1": 0.4, "p2": 0.3, "c5_1": 0.45, "p5": 0.5})}
    claims = ch.sparsity_claims(sp)
    assert [c.verdict for c in claims] == ["supported", "supported", "not supported here", "not supported here",
                                           "not supported here"]
    assert claims[0].measured == "first_conv=0.6000, last_conv=0.9500"
    assert claims[3].measured == "pools=3, pools_lower=1"
    assert claims[4].measured == "vgg16=0.4750, alexnet=0.8750"  # the layers after the last-but-one pool
    only = ch.sparsity_claims({"alexnet": sp["alexnet"]})
    assert only[-1].verdict == "not testable here" and "not measured: vgg16" in only[-1].measured


def test_unrelated_information_removed_compares_the_last_stage_with_the_area():
    energy = {"VGG-16": {"layers": ["c1", "c5"], "inside": [0.10, 0.40], "area": 0.45, "images": 1},
              "AlexNet": {"layers": ["c1", "c5"], "inside": [0.30, 0.60], "area": 0.45, "images": 1}}
    vgg_alex, vgg, alex = ch.background_claims(energy, clutter=0.7)
    # VGG-16's last stage rose above its first but stays below the object's share of the area: not removed
    assert vgg.verdict == "not supported here" and "last_stage=0.4000" in vgg.measured and "area=0.4500" in vgg.measured
    assert alex.verdict == "supported"
    assert vgg_alex.verdict == "not supported here" and vgg_alex.measured.startswith("vgg16=0.4000, alexnet=0.6000")
    # garments on black: no clutter to remove, whatever the shares
    assert [c.verdict for c in ch.background_claims(energy, clutter=0.0)] == ["not testable here"] * 3


def test_background_clutter_of_the_chapters_images():
    from vizlib.core.data import fashion_mnist_sample
    from vizlib.core.examples import fashion_examples

    # garments on photos have clutter to remove; the plain garments on black have none
    assert ch.background_clutter(ch.comparison_images("bundled", 4)) > ch.CLUTTER_SHARE
    assert ch.background_clutter(fashion_examples(4, data=fashion_mnist_sample())) == 0.0
    photos = ch.comparison_images("random", 2)
    assert ch.background_clutter(photos) > ch.CLUTTER_SHARE


def test_the_chapters_images_and_data():
    garments = ch.comparison_images("bundled", 4)
    assert [e.category for e in garments] == ["T-shirt/top", "Trouser", "Sneaker", "Bag"]
    assert all(e.mask is not None and 0 < e.area < 1 for e in garments)
    photos = ch.comparison_images("imagenet", 6)
    assert [e.name for e in photos] == list(ch.PHOTO_ORDER)
    boxes = object_boxes()  # the one definition: the masks are the shipped boxes
    for e in photos:
        top, left, bottom, right = boxes[e.name]
        assert e.mask[top:bottom, left:right].all() and e.mask.sum() == (bottom - top) * (right - left)
    assert len(ch.sparsity_data("bundled", 30)) == 30 and len(ch.sparsity_data("random", 2)) == 2
    nets, missing = ch.load_nets(("alexnet",), "random")
    assert list(nets) == ["alexnet"] and missing == {}
    assert ch.VASHISHTH_CALTECH101_ACCURACY == {"alexnet": 0.7406, "zfnet": 0.7469}


def test_filter_and_accuracy_claims():
    spectra = {"zfnet": filter_spectrum(bundled_net("zfnet")), "alexnet": filter_spectrum(bundled_net("alexnet"))}
    c = ch.frequency_claim(spectra)
    z, a = spectra["zfnet"].bands["mid"], spectra["alexnet"].bands["mid"]
    assert c.verdict == ("supported" if round(z, 4) > round(a, 4) else "not supported here")
    assert ch.aliasing_claim({"alexnet": 0.3193, "zfnet": 0.2256}).verdict == "supported"
    assert ch.aliasing_claim({"alexnet": 0.3193}).verdict == "not testable here"
    apart = "trained differently: ZFNet 10 epochs; AlexNet 20 epochs"
    for claim in (ch.aliasing_claim({"alexnet": 0.3193, "zfnet": 0.2256}, apart), ch.frequency_claim(spectra, apart)):
        assert claim.verdict == "not testable here" and claim.measured.endswith(f"({apart})")
    acc = {"zfnet": ch.Accuracy(0.9071, "x", None, "y"), "alexnet": ch.Accuracy(0.8944, "x", 0.91, "y"),
           "vgg16": ch.Accuracy(0.8, "x", None, "y")}
    zf, vgg = ch.accuracy_claims(acc)
    assert (zf.verdict, vgg.verdict) == ("supported", "not supported here")
    assert zf.measured == "zfnet=0.9071, alexnet=0.8944, zfnet_sample=—, alexnet_sample=0.9100"
    same = {a: ch.Accuracy(x.recorded, x.recorded_on, x.live, x.live_on, "10 epochs") for a, x in acc.items()}
    assert ch.accuracy_claims(same)[0].verdict == "supported"
    apart = {**same, "alexnet": ch.Accuracy(0.8944, "x", 0.91, "y", "20 epochs, c1 smoothness 0.1")}
    zf = ch.accuracy_claims(apart)[0]
    assert zf.verdict == "not testable here"
    assert zf.measured.endswith("(trained differently: ZFNet 10 epochs; AlexNet 20 epochs, c1 smoothness 0.1)")
    none = {k: ch.Accuracy(None, "no accuracy travels with these weights", None, "") for k in acc}
    assert all(c.verdict == "not testable here" and "no accuracy travels" in c.measured
               for c in ch.accuracy_claims(none))
    rms = {"with": rms_dominance(bundled_net("alexnet")), "without": rms_dominance(bundled_net("alexnet", seed=1))}
    r = ch.renorm_claim(rms)
    assert r.verdict in ("supported", "not supported here") and r.measured.startswith("without_renorm=")
    assert ch.renorm_claim({}, "no checkpoints").verdict == "not testable here"
    assert ch.verdict_counts([c, r]) == {v: sum(x.verdict == v for x in (c, r))
                                         for v in ("supported", "not supported here", "not testable here")}


def test_recipe_difference_reads_the_records():
    import copy

    from vizlib.models.bundled import load_bundled

    nets = {a: load_bundled(a) for a in ("alexnet", "zfnet")}
    recipes = {a: ch.training_recipe(n.extra["record"]) for a, n in nets.items()}
    got = ch.recipe_difference(nets)
    assert (got == "") == (recipes["alexnet"] == recipes["zfnet"])
    same = copy.copy(nets["zfnet"])
    same.extra = {**nets["zfnet"].extra, "record": nets["alexnet"].extra["record"]}
    assert ch.recipe_difference({"alexnet": nets["alexnet"], "zfnet": same}) == ""
    assert ch.recipe_difference({"alexnet": nets["alexnet"]}) == ""


def test_training_recipe_reads_the_record():
    import json

    from vizlib.models.training import CHECKPOINT_DIR

    record = json.loads((CHECKPOINT_DIR / "zfnet_fmnist.json").read_text())
    words = ch.training_recipe(record)
    c = record["config"]
    assert words.startswith(f"{c['epochs']} epochs, batches of {c['batch_size']}, lr {c['lr']:g}")
    assert ("renormalised" in words) == c["renorm"]
    assert ("c1 smoothness" in words) == bool(c.get("first_layer_smooth"))
    assert ch.training_recipe({}) == "" and ch.net_accuracy(bundled_net("alexnet")).recipe == ""


def test_figures_and_explorer(shell):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    nets = {"AlexNet": bundled_net("alexnet"), "VGG-16": bundled_net("vgg16")}
    objs = ch.comparison_images("bundled", 2)
    results = [side_by_side(nets, o) for o in objs]
    s = [layer_sparsity(n, torch.randn(3, 1, n.input_size, n.input_size), progress=False) for n in nets.values()]
    figs = [
        ch.plot_sparsity(s), ch.plot_side_by_side(results[0]), ch.plot_stage(results[1], 5),
        ch.plot_energy(energy_by_stage(results)), ch.plot_filters({"a": nets["AlexNet"], "b": rgb_net()}),
        ch.plot_filters({"a": nets["AlexNet"]}, scale="common"),
        ch.plot_spectra({"a": filter_spectrum(nets["AlexNet"])}), ch.plot_rms({"a": rms_dominance(nets["AlexNet"])}),
        ch.plot_layer_projections({"a": whole_layer(nets["AlexNet"], objs, "c2")}, ["x", "y"]),
    ]
    assert all(isinstance(f, Figure) for f in figs)
    for f in figs:
        plt.close(f)
    w = ch.reconstruction_explorer(results)
    pick, depth = w.controls
    assert [o[1] for o in pick.options] == [0, 1] and depth.value == 5
    first = w.output.outputs  # the starting state is drawn without a frontend
    assert len(first) == 1 and first[0]["data"]["image/png"]
    depth.value = 2  # each change redraws with plot_stage, into the output
    second = w.output.outputs
    assert len(second) == 1 and second[0]["data"]["image/png"] != first[0]["data"]["image/png"]
    pick.value = 1
    assert depth.value == 2 and w.output.outputs != second and w.last.error is None and not w.last.warnings
    plt.close("all")
    view = ch.reconstruction_static(results)  # kernel-free: image 0 at every stage, then image 1 at the last
    assert view.labels == [f"{results[0].image}, stage {k}" for k in range(1, 6)] + [f"{results[1].image}, stage 5"]
    assert view.html.count("data:image/jpeg;base64") == 6 and not plt.get_fignums()
