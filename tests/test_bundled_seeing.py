"""Issue 14's acceptance bars, on the committed bundled checkpoints: do the nets see?

Each test loads the shipped checkpoints and computes the measures the book
prints in chapter 1 (``ch01.seeing_measures``), then checks the bar. A bar the
committed nets do not reach yet is marked ``xfail(strict=True)`` with the
measured value in its reason: the test turns red the day a retrained net
reaches it (and the mark must go), and the verdicts the book prints are
checked against the same numbers either way.
"""

from __future__ import annotations

import numpy as np
import pytest

from vizlib.chapters import ch01
from vizlib.core.composed import bundled_sample, median_box_side
from vizlib.models.bundled import bundled_record

BARS = ch01.SEEING_BARS
NETS = ("alexnet", "zfnet", "vgg16")


@pytest.fixture(scope="module")
def seeing():
    rows = ch01.seeing_measures(100, occlusion=50)
    return {(r.arch, r.variant): r for r in rows}


def test_every_net_and_the_variant_is_measured(seeing):
    assert set(seeing) == {("alexnet", None), ("zfnet", None), ("vgg16", None), ("alexnet", "norenorm")}
    for r in seeing.values():
        assert r.energy.images == 100
        assert r.name.endswith("(bundled)")


NOT_YET = pytest.mark.xfail(strict=True, reason="issue 14: not reached by the committed nets (see the closing note)")


@pytest.mark.parametrize("arch", [
    "alexnet",  # measured: 0.151 at smoothness 0.08 (0.129 at 0.1, 0.772 with no penalty)
    "zfnet",  # measured: 0.228 at smoothness 0.08 (0.254 at 0.1, 0.875 with no penalty)
])
def test_first_layer_filters_keep_little_high_frequency_energy(seeing, arch):
    assert seeing[(arch, None)].high.median <= BARS["high_frequency"]


@pytest.mark.parametrize("key", [("alexnet", None), ("zfnet", None), ("vgg16", None), ("alexnet", "norenorm")])
def test_first_layer_filters_moved_away_from_their_initialisation(seeing, key):
    assert seeing[key].init.median <= BARS["init_similarity"]


@pytest.mark.parametrize("arch", NETS)
def test_whole_layer_reconstructions_concentrate_on_the_object(seeing, arch):
    e = seeing[(arch, None)].energy
    assert all(e.inside[layer] >= BARS["object_factor"] * e.area for layer in e.layers), (e.inside, e.area)


@pytest.mark.parametrize("arch", NETS)  # measured: 0.420 / 0.405 / 0.479 (AlexNet-, ZFNet-, VGG-16-style)
def test_occluding_the_garment_costs_the_true_class(seeing, arch):
    o = seeing[(arch, None)].occlusion
    assert o.images == 50
    assert o.median_drop >= BARS["occlusion_drop"]


@pytest.mark.parametrize("arch", [  # of the 44 of 50 images whose garment can hold the worst tenth
    "alexnet",  # measured: 0.841 after the 28-epoch retraining (0.773 after 20 epochs at smoothness 0.1)
    pytest.param("zfnet", marks=NOT_YET),  # measured: 0.750 after the 28-epoch retraining (0.795 before)
    pytest.param("vgg16", marks=NOT_YET),  # measured: 0.795
])
def test_the_most_damaging_positions_lie_on_the_garment(seeing, arch):
    assert seeing[(arch, None)].occlusion.centred >= BARS["occlusion_on_object"]


@pytest.mark.parametrize("arch", NETS)
def test_second_stage_field_is_smaller_than_the_median_garment(seeing, arch):
    f = seeing[(arch, None)].field
    assert f.box == median_box_side(bundled_sample().masks)
    assert f.field < f.box


@pytest.mark.parametrize("arch", NETS)
def test_accuracy_is_recorded_on_the_composed_test_set(arch):
    r = bundled_record(arch)
    assert r["test_images"] == 10_000 and "composed" in r["test_source"]
    assert r["plain_test_accuracy"] is not None and r["test_correct"] == round(r["test_accuracy"] * 10_000)


@pytest.mark.parametrize("arch", [
    pytest.param("alexnet", marks=NOT_YET),  # measured: 84.74 % after 28 epochs (83.93 % after 20); 87.83 % after 60 (benchmarks)
    pytest.param("zfnet", marks=NOT_YET),  # measured: 85.69 % after 28 epochs (84.40 % after 20), at the 45-minute budget
    "vgg16",  # measured: 89.04 % after 40 epochs (87.40 % after 20)
])
def test_accuracy_on_the_composed_test_set(arch):
    assert bundled_record(arch)["test_accuracy"] >= BARS["accuracy"]


def test_the_printed_verdicts_follow_the_numbers(seeing):
    rows = list(seeing.values())
    claims = ch01.seeing_claims(rows)
    by_text = {c.claim: c for c in claims}
    for r in rows:
        if r.variant is None:
            c = by_text[f"{r.name}: classifies the composed test set well"]
            assert c.verdict == ("supported" if r.accuracy >= BARS["accuracy"] else "not supported here")
            o = r.occlusion
            c = by_text[f"{r.name}: covering the garment costs the true class (Fig. 7 (d))"]
            assert c.verdict == ("supported" if o.median_drop >= BARS["occlusion_drop"] else "not supported here")
        c = by_text[f"{r.name}: c1 filters have moved away from their initialisation"]
        assert c.verdict == ("supported" if r.init.median <= BARS["init_similarity"] else "not supported here")
    tables = [ch01.seeing_table(rows), ch01.seeing_occlusion_table(rows), ch01.seeing_accuracy_table(rows)]
    assert all(len(t) for t in tables)
    assert np.isfinite([r.high.median for r in rows]).all()


def test_the_alexnet_and_zfnet_style_nets_share_one_recipe():
    # chapters 1, 6 and 7 say so, and credit their differences to the designs
    from vizlib.chapters.claims import differing_recipes, training_recipe

    recipes = {a: training_recipe(bundled_record(a)) for a in ("alexnet", "zfnet")}
    assert all(recipes.values()) and differing_recipes(recipes) == ""
    assert "c1 smoothness" in recipes["zfnet"]
