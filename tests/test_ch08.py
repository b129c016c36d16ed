"""Chapter 8's presentation: images, readings, claims' verdicts from their numbers, figures, explorer."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests._nets import bundled_net  # noqa: E402
from vizlib.chapters import ch08 as ch  # noqa: E402


@pytest.fixture(scope="module")
def run():
    net = bundled_net("alexnet")
    examples = ch.chapter_examples(net)
    typical = ch.typical(net, 8)
    sweeps = ch.fig5_sweeps(net, examples, typical, smoke=True)
    return net, examples, typical, sweeps


def record(test_error: float, train_error: float, parameters: int) -> dict:
    return {"test_error": test_error, "train_error": train_error, "parameters": parameters, "total_seconds": 1.0,
            "curve": [{"epoch": 1, "val_accuracy": 0.5, "train_loss": 1.0}]}


def test_fig5_figure_and_readings(run):
    net, examples, typical, sweeps = run
    assert [e.category for e in examples] == ["Bag", "Trouser", "T-shirt/top", "Ankle boot", "Sandal"]
    scores = ch.symmetry_scores(net, examples)
    # of the object in its own pixels, about its own centre: the net's normalisation plays no part
    assert scores == ch.symmetry_scores(bundled_net("zfnet"), examples)
    # the bag, trousers and T-shirt are symmetric by the measure, the footwear not: the claim is testable
    assert min(scores[:3]) >= ch.SYMMETRIC > max(scores[3:])
    assert set(typical) == {"c1", "fc7"}
    fig = ch.plot_fig5(sweeps, examples)
    assert all(ax.get_ylim() == (0.0, 1.0) for ax in fig.axes[3::4][:3])  # p(true class) on [0, 1]
    plt.close(fig)
    r = ch.invariance_readings(sweeps, ch.symmetry_scores(net, examples), [e.name for e in examples])
    assert set(r.small) == set(ch.TRANSFORMS)
    claims = ch.invariance_claims(r, trained=False)
    assert [c.verdict for c in claims[2:4]] == ["not testable here"] * 2
    assert len(ch.symmetry_table(r)) == 5 and len(ch.invariance_readings_table(r)) == 3


def test_invariance_claims_follow_their_numbers(run):
    _, _, _, sweeps = run
    r = ch.invariance_readings(sweeps, [0.9, 0.1, 0.1, 0.1, 0.1], list("abcde"))
    r.small = {"translation": (0.5, 0.1), "scale": (0.5, 0.1), "rotation": (0.9, 0.9)}
    r.linear = {"translation": 0.9, "scale": 0.95, "rotation": 0.1}
    r.fall = {"translation": 0.05, "scale": 0.1, "rotation": 0.6}
    r.rotation_fall = [0.1, 0.7, 0.6, 0.8, 0.7]
    assert [c.verdict for c in ch.invariance_claims(r)] == ["supported"] * 5
    r.small["scale"] = (0.1, 0.5)
    r.fall["scale"] = 0.4
    r.symmetry = [0.1] * 5
    verdicts = [c.verdict for c in ch.invariance_claims(r)]
    assert verdicts[0] == "not supported here" and verdicts[2] == "not supported here"
    assert verdicts[4] == "not testable here"


def test_ablation_claims_follow_their_numbers():
    recs = {"base": record(0.30, 0.28, 400_000), "no_fc67": record(0.305, 0.29, 100_000),
            "no_c34": record(0.31, 0.29, 330_000), "no_c34_fc67": record(0.40, 0.39, 30_000),
            "wide_c345": record(0.29, 0.26, 650_000), "wide_both": record(0.295, 0.20, 1_500_000)}
    assert [c.verdict for c in ch.ablation_claims(recs)] == ["supported"] * 5
    recs["no_c34_fc67"] = record(0.315, 0.30, 30_000)
    recs["wide_both"] = record(0.28, 0.20, 1_500_000)
    verdicts = [c.verdict for c in ch.ablation_claims(recs)]
    assert verdicts[2] == "not supported here" and verdicts[4] == "not supported here"
    assert [c.verdict for c in ch.ablation_claims({})] == ["not testable here"] * 5
    table = ch.ablation_table(recs)
    assert len(table) == 7 and "not trained yet" in table.rows[5]
    plt.close(ch.plot_learning_curves(recs))


def test_ablation_over_seeds_uses_their_spread():
    """With several seeds a variant's errors are the means, and "help" needs a fall beyond the seeds' noise."""
    def runs(*errors):
        return [dict(record(e, e - 0.02, 400_000), seed=s) for s, e in enumerate(errors)]

    recs = {"base": runs(0.30, 0.32), "wide_c345": runs(0.285, 0.295)}
    summary = ch.ablation_summary(recs)
    assert summary["base"]["test_error"] == pytest.approx(0.31) and summary["base"]["seeds"] == [0, 1]
    assert summary["base"]["test_sd"] == pytest.approx(np.std([0.30, 0.32], ddof=1))
    help_ = ch.ablation_claims(recs)[3]
    # fall 2.0 pp; 2 standard errors from the seeds: 2 * sqrt(0.0141^2 / 2 + 0.0071^2 / 2) = 2.24 pp
    assert help_.verdict == "not supported here" and "over 2 and 2 seeds" in help_.measured
    recs["wide_c345"] = runs(0.27, 0.27)
    assert ch.ablation_claims(recs)[3].verdict == "supported"  # fall 4 pp beyond 2.0 pp
    row = ch.ablation_table(recs).rows[0]
    assert row[4] == "31.00 ± 1.41" and row[5] == "0, 1"


def test_generalisation_claims_and_digits():
    d = ch.digits()
    assert d.images.shape == (1797, 64, 64) and d.images[:, :18].max() == 0  # centred, black frame
    g = ch.Generalisation([5, 15, 30], {"c5": [0.5, 0.8, 0.9], "fc7": [0.4, 0.7, 0.8]}, [0.2, 0.3, 0.6], 300, "digits")
    assert g.best_layer() == "c5"
    assert [c.verdict for c in ch.generalisation_claims(g)] == ["supported", "supported"]
    g.scratch = [0.2, 0.65, 0.6]
    assert [c.verdict for c in ch.generalisation_claims(g)] == ["not supported here", "not supported here"]
    assert [c.verdict for c in ch.generalisation_claims(g, trained=False)] == ["not testable here"] * 2
    fig = ch.plot_generalisation(g)
    assert fig.axes[0].get_ylim() == (0.0, 1.0)
    plt.close(fig)
    assert len(ch.generalisation_table(g)) == 3


def test_generalisation_runs_small():
    net = bundled_net("alexnet")
    g = ch.generalisation(net, per_class=(1, 2), test_per_class=2, scratch_epochs=1, scratch_min_steps=2)
    assert set(g.probes) == {"c5", "fc6", "fc7"} and len(g.scratch) == 2 and g.test_images == 20
    assert g.scratch_steps == [2, 2] and g.classes == 10
    assert all(0 <= a <= 1 for acc in g.probes.values() for a in acc)
    assert "(2)" in ch.generalisation_table(g).rows[0][-1]


def test_scratch_budget_grows_with_the_images():
    assert ch.scratch_steps(300) == 750 and ch.scratch_steps(10) == ch.SCRATCH_MIN_STEPS
    assert ch.scratch_steps(1000, epochs=2, min_steps=1) == 125


def test_heldout_classes_net_and_curve():
    """The held-out-classes pretrain: a committed net that saw five classes, a curve on the other five."""
    held = ch.heldout_net()
    assert held.categories == ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat"]
    assert held.extra["record"]["config"]["classes"] == list(ch.PRETRAIN_CLASSES)
    new = ch.heldout_garments()
    assert new.classes == ("Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot") and len(new) == 750
    assert not set(new.classes) & set(held.categories)
    g = ch.generalisation(held, data=new, per_class=(1, 3), test_per_class=4, scratch_epochs=1, scratch_min_steps=2)
    assert g.classes == 5 and g.test_images == 20 and len(g.scratch) == 2
    assert "5 classes, chance 20 %" in ch.generalisation_table(g).title
    fig = ch.plot_generalisation(g, "held out")
    assert fig.axes[0].get_title() == "held out"
    plt.close(fig)


def test_generalisation_data_per_model_set(monkeypatch, tmp_path):
    from vizlib.core import data as D

    data, line = ch.generalisation_data(bundled_net("alexnet"))
    assert data is ch.digits() and "digits" in line

    class Photos:  # the ImageNet set's nets: Caltech-101 is asked for, and offline the digits stand in
        model_set = "imagenet"

    monkeypatch.setattr(D, "_host_reachable", lambda *a, **k: False, raising=False)
    monkeypatch.setattr("vizlib.core.online.host_reachable", lambda *a, **k: False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(D.CALTECH101_ENV, raising=False)
    data, line = ch.generalisation_data(Photos())
    assert data is ch.digits() and "Caltech-101 was not found" in line and "digits stand in" in line


def test_explorer_and_static(run):
    net, examples, typical, sweeps = run
    box = ch.invariance_explorer(net, examples, typical, sweeps)
    assert box.last.error is None and "p(true class)" in box.output.outputs[0]["text"]
    pick, kind, amount = box.controls
    kind.value = "scale"
    assert box.last.error is None and 1.0 in amount.options
    static = ch.invariance_static(sweeps["rotation"][0], "bag", states=2)
    assert len(static) == 2
    assert np.isfinite(ch.symmetry_scores(net, examples[:1])[0])


def test_generalisation_on_a_labelled_folder_of_photos(tmp_path):
    """The ImageNet path: photos of different sizes read from a folder, streamed through an RGB net."""
    from PIL import Image

    from tests._nets import rgb_net
    from vizlib.core.data import labelled_folder

    rng = np.random.default_rng(0)
    for c, name in enumerate(("ant", "bee", "cat")):
        (tmp_path / name).mkdir()
        for i in range(5):
            size = (80 + 7 * i, 70 + 5 * c)
            Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).save(tmp_path / name / f"{i}.png")
    g = ch.generalisation(rgb_net(), data=labelled_folder(tmp_path), per_class=(1, 2), layers=["fc7"],
                          test_per_class=5, batch_size=4)
    assert g.scratch is None and g.classes == 3 and g.test_images == 9  # up to 5 a class, 2 kept back to train
    assert len(g.probes["fc7"]) == 2 and "not run" in ch.generalisation_table(g).rows[0][-1]
