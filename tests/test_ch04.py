"""Tests for vizlib.chapters.ch04: chapter 4's image budget, t-SNE comparison, table, claims, figures, explorer."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from vizlib.chapters import ch04 as ch  # noqa: E402
from vizlib.chapters import paper_data  # noqa: E402
from vizlib.chapters.claims import VERDICTS  # noqa: E402
from vizlib.methods import embedding as E  # noqa: E402

from .conftest import hook_count  # noqa: E402
from .test_embedding import agreement_of_a_small_space, regions_of_a_small_space  # noqa: E402


def test_class_agreement_table_and_claims():
    p, space, a = agreement_of_a_small_space()
    table = ch.agreement_table([a, a])
    assert table.column("chance") == [round(a.chance, 3)] * 2
    low = E.Agreement("n", "c2", 10, 5, 0.2, 0.2, 0.1)
    high = E.Agreement("n", "c5", 10, 5, 0.5, 0.4, 0.1)
    assert ch.agreement_claims([low, high])[0].verdict == "supported"
    assert ch.agreement_claims([high, low])[0].verdict == "not supported here"


def test_agreement_claims_follow_the_printed_numbers():
    low = E.Agreement("n", "c2", 10, 5, 0.2, 0.2, 0.1)
    high = E.Agreement("n", "c5", 10, 5, 0.5, 0.4, 0.1)
    (c,) = ch.agreement_claims([low, high])
    assert c.measured == "feature space c5 0.500 vs c2 0.200; embedding c5 0.400 vs c2 0.200; chance 0.100"
    # higher in feature space only: not supported
    mixed = E.Agreement("n", "c5", 10, 5, 0.5, 0.1, 0.1)
    assert ch.agreement_claims([low, mixed])[0].verdict == "not supported here"
    # equal as printed (3 decimals) is not higher, whatever the digits beyond
    tiny_gain = E.Agreement("n", "c5", 10, 5, 0.2001, 0.2001, 0.1)
    assert ch.agreement_claims([low, tiny_gain])[0].verdict == "not supported here"
    # not testable: untrained nets, one layer, a missing number
    assert ch.agreement_claims([low, high], trained=False)[0].verdict == "not testable here"
    assert ch.agreement_claims([low])[0].verdict == "not testable here"
    nan = E.Agreement("n", "c5", 10, 5, float("nan"), 0.4, 0.1)
    assert ch.agreement_claims([low, nan])[0].verdict == "not testable here"
    two = ch.agreement_claims([low, high, E.Agreement("m", "a", 10, 5, 0.3, 0.3, 0.1),
                               E.Agreement("m", "b", 10, 5, 0.2, 0.2, 0.1)])
    assert [c.verdict for c in two] == ["supported", "not supported here"]
    assert all(c.verdict in VERDICTS for c in two)
    assert ch.claims_table(two).column("verdict") == ["supported", "not supported here"]


def test_compare_backends_and_its_claims():
    x = np.random.default_rng(0).normal(size=(60, 5))
    cmp = ch.compare_backends(x, perplexity=5, seed=0)
    assert "sklearn" in cmp.runs and cmp.identical
    assert "identical embedding: True" in str(cmp)
    speed, same = cmp.claims()
    assert same.verdict == "supported"
    if "opentsne" in cmp.runs:
        a, b = round(cmp.runs["opentsne"].seconds, 1), round(cmp.runs["sklearn"].seconds, 1)
        assert speed.verdict == ("supported" if a < b else "not supported here")
        assert f"openTSNE {a:.1f} s, scikit-learn {b:.1f} s" in speed.measured
    else:
        assert speed.verdict == "not testable here"
    e = lambda method, s: E.Embedding(np.zeros((3, 2)), method, 1.0, 0, 2, 1.0, s)  # noqa: E731
    slow = ch.TsneComparison({"sklearn": e("scikit-learn", 0.4), "opentsne": e("openTSNE", 0.44)},
                             e("openTSNE", 0.4), False)
    assert [c.verdict for c in slow.claims()] == ["not supported here", "not supported here"]  # 0.4 vs 0.4 printed
    only = ch.TsneComparison({"sklearn": e("scikit-learn", 1.0)}, e("scikit-learn", 1.0), True)
    assert only.claims()[0].verdict == "not testable here"


def test_yu_shares_are_the_papers_fields():
    assert E.YU_LOW_SHARE == paper_data.YU_TABLE1_VGG16["c4_1"][0] / 224
    assert E.YU_HIGH_SHARE == paper_data.YU_TABLE1_VGG16["c5_3"][0] / 224


def test_figure_and_widget(shell):
    m, x, p, space, regions = regions_of_a_small_space()
    fig = ch.plot_representation_space(space, regions, net=m, data=x, n_filters=2)
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(fig.axes) == 1 + 3 * (2 + 2)
    plt.close(fig)
    fig = ch.plot_embedding(space)
    assert isinstance(fig, matplotlib.figure.Figure)
    plt.close(fig)
    fig = ch.plot_embeddings({"one": space, "two": space})
    assert len(fig.axes) == 2 and fig.axes[1].get_title() == "two"
    plt.close(fig)
    w = ch.representation_explorer(m, x, ["1"], spaces={("1", 200, 10.0): space})
    assert w.output is w.children[-1] and w.output.outputs  # the first state is drawn while the cell runs
    layer, n, perplexity, rx, ry, size = w.controls
    busy = []
    w._content, draw = (lambda: busy.append(w.status.value) or draw()), w._content
    first = w.output.outputs
    perplexity.value = 5.0  # a new t-SNE: the busy line says so, no progress bar is left in the output
    assert "Computing the t-SNE of 200 1 patches at perplexity 5" in busy[-1]
    assert w.output.outputs != first and w.last.error is None and not w.last.stderr
    assert all(o["output_type"] != "display_data" or "application/vnd.jupyter.widget-view+json" not in o["data"]
               for o in w.output.outputs)
    rx.value = 0.3  # the same space: drawn again, nothing recomputed
    assert "Drawing the region" in busy[-1] and w.status.value == ""
    assert hook_count(m) == 0
    plt.close("all")
    with pytest.raises(ValueError, match="fractions"):
        E.Region(1.5, 0.5)


def test_image_budget_small_nets_see_everything_full_size_nets_48():
    from types import SimpleNamespace

    small, large = SimpleNamespace(input_size=32), SimpleNamespace(input_size=224)
    assert ch.image_budget(small, 10_000) == 10_000
    assert ch.image_budget(small, 10_000, smoke=True) == 400
    assert ch.image_budget(small, 150, smoke=True) == 150  # never more than there are
    assert ch.image_budget(large, 10_000) == 48
    assert ch.image_budget(large, 10_000, smoke=True) == 6
    assert ch.image_budget(object(), 100) == 48  # no input size: treated as a full-size net
    with pytest.raises(ValueError, match="no images"):
        ch.image_budget(small, 0)


def test_method_module_draws_nothing():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(E))
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
             for a in n.names} | {n.module.split(".")[0] for n in ast.walk(tree)
                                   if isinstance(n, ast.ImportFrom) and n.module}
    assert not names & {"matplotlib", "ipywidgets", "IPython"}
    assert not any(name.startswith(("plot_", "agreement_")) or name.endswith("_explorer") for name in E.__all__)


def test_chapter_images_are_what_each_model_set_was_trained_on():
    from vizlib.core.composed import bundled_sample

    bundled = ch.chapter_images("bundled")
    assert bundled is bundled_sample() and bundled.images.shape == (1500, 64, 64) and bundled.masks is not None
    imagenet = ch.chapter_images("imagenet")
    assert imagenet.images.shape[1:] == (28, 28) and len(imagenet.classes) == 10


def test_static_figure_zooms_each_layers_plane_into_its_default_regions():
    _, _, _, space, _ = regions_of_a_small_space()
    view = ch.representation_static({"low": space, "high": space}, regions=2, seed=0)
    first = E.default_regions(space.embedding.xy, seed=0)[0]
    assert len(view) == 4 and view.labels[0] == f"low, region at ({first.x:.2f}, {first.y:.2f}), size {first.size:.2f}"
    assert view.labels[2].startswith("high") and view.html.count("data:image/jpeg;base64") == 4
    assert view.frame_size[0] <= 660 and not plt.get_fignums()
    with pytest.raises(ValueError, match="at least one layer"):
        ch.representation_static({})
