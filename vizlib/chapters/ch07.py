"""Chapter 7, DeNet (Vashishth §7-8, Figs. 12-13): a class vector projected to pixels; DeNet against the deconvnet.

The chapter's presentation of :class:`vizlib.DeNet`: each image's views from
one forward pass (:func:`explain_images`), the tables the chapter prints, the
paper's claims judged from those numbers (:func:`denet_claims`), the figures
and the explorer. The images are :func:`vizlib.example_images` (Fashion-MNIST
garments for the Bundled set, the demo photos with their object boxes
otherwise); the share on the object is :func:`vizlib.energy_inside` in the
object's mask carried into the net's input (``ExampleImage.object_mask``).

Example::

    import vizlib as vl
    from vizlib.chapters import ch07 as ch
    net = vl.load("alexnet")
    results = ch.explain_images(net, vl.example_images(net, 2))
    ch.denet_vs_deconvnet_table(results)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from ..core.examples import ExampleImage
from ..core.images import first_conv, to_display
from ..core.measures import energy_inside
from ..core.tables import Table
from ..methods.deconvnet import normalize_projection
from ..methods.denet import TOPS, DeNet, class_correlation, class_correlations, grid_share
from .claims import Claim, claims_table, recipe_difference
from .legibility import PAGE_INCHES

__all__ = [
    "MAX_OBJECT_AREA",
    "OPTIONS",
    "Explained",
    "explain_images",
    "top_classes_table",
    "denet_vs_deconvnet_table",
    "true_vs_wrong_table",
    "compare_nets_table",
    "option_variants",
    "options_table",
    "denet_claims",
    "recipe_difference",
    "claims_table",
    "plot_denet_rows",
    "plot_top_classes",
    "plot_denet_vs_deconvnet",
    "plot_true_vs_wrong",
    "plot_nets_side_by_side",
    "plot_options",
    "denet_figure",
    "denet_explorer",
    "denet_static",
]

#: Images whose object covers at least this share of the input leave too little background for the
#: energy share to tell visualisations apart: comparisons leave them out.
MAX_OBJECT_AREA = 0.95

#: DeNet's four readings: (label, top, rectify); the first is the paper's.
OPTIONS: tuple[tuple[str, str, bool], ...] = (
    ("logits, not rectified (the paper)", "logits", False),
    ("logits, rectified", "logits", True),
    ("probabilities, not rectified", "probabilities", False),
    ("probabilities, rectified", "probabilities", True),
)


# --------------------------------------------------------------------------- one image, every view


def _share(visualisation: torch.Tensor, mask: torch.Tensor | None) -> float:
    """:func:`vizlib.energy_inside` of one visualisation; NaN where the image has no object region."""
    return math.nan if mask is None else float(energy_inside(visualisation, mask))


@dataclass
class Explained:
    """DeNet and deconvnet views of one image, from one forward pass (see :func:`explain_images`).

    Attributes:
        example: the image, its true class and its object (:class:`~vizlib.core.examples.ExampleImage`).
        input: ``(C, H, W)`` the image prepared for the net.
        mask: ``(H, W)`` bool, the object in the net's input (``None``: no object region).
        top: the ``k`` most probable classes, most probable first.
        probabilities: ``(K,)`` the network's softmax output.
        denet_top: ``(k, C, H, W)`` DeNet images of the ``top`` classes.
        wrong: the most probable class other than the true one.
        denet_true, denet_wrong: ``(C, H, W)`` DeNet images of the true and that wrong class.
        deconv: ``(C, H, W)`` the deconvnet projection of the strongest map of the top conv layer.
        deconv_layer, deconv_map: that layer and map.
        period: the first convolution's stride (for :func:`~vizlib.methods.denet.grid_share`).

    Example:
        >>> r = explain_images(net, vl.example_images(net, 1))[0]     # doctest: +SKIP
        >>> r.on_object(r.denet_true) > r.area                         # doctest: +SKIP
        True
    """

    example: ExampleImage
    input: torch.Tensor
    mask: torch.Tensor | None
    top: list[int]
    probabilities: np.ndarray
    denet_top: torch.Tensor
    wrong: int
    denet_true: torch.Tensor
    denet_wrong: torch.Tensor
    deconv: torch.Tensor
    deconv_layer: str
    deconv_map: int
    period: int

    @property
    def area(self) -> float:
        """The object's share of the net's input: what an evenly spread visualisation puts on it (NaN: no object)."""
        return float(self.mask.float().mean()) if self.mask is not None else math.nan

    @property
    def measurable(self) -> bool:
        """Whether the image has an object region that leaves enough background to tell visualisations apart."""
        return self.mask is not None and self.area < MAX_OBJECT_AREA

    def on_object(self, visualisation: torch.Tensor) -> float:
        """:func:`vizlib.energy_inside` of a visualisation of this image (NaN where there is no object region)."""
        return _share(visualisation, self.mask)


def _first_stride(model: nn.Module) -> int:
    """The stride of the first convolution (AlexNet 4, ZFNet 2, VGG-16 1); 1 without one."""
    conv = first_conv(model)
    s = conv[1].stride if conv is not None else 1
    return int(s[0] if isinstance(s, (tuple, list)) else s)


def explain_images(
    net: Any,
    examples: Sequence[ExampleImage],
    k: int = 3,
    *,
    top: str = "logits",
    rectify: bool = False,
    denet: DeNet | None = None,
    progress: bool | None = None,
) -> list[Explained]:
    """For each image: DeNet of its top classes, of its true class and of a wrong class, and the deconvnet view.

    One forward pass per image; the DeNet images go down as one batch.

    Args:
        net: a :class:`~vizlib.Net`.
        examples: images from :func:`vizlib.example_images`.
        k: how many of the most probable classes.
        top, rectify: DeNet's options (see :meth:`vizlib.methods.denet.DeNetRecording.project`).
        denet: a :class:`~vizlib.DeNet` of ``net`` to reuse.
        progress: a progress bar over the images (default: more than 4 images).

    Returns:
        One :class:`Explained` per image.

    Example:
        >>> results = explain_images(net, vl.example_images(net, 2), k=3)   # doctest: +SKIP
        >>> len(results), len(results[0].top)                                # doctest: +SKIP
        (2, 3)
    """
    from ..core.progress import tqdm

    dn = denet or DeNet(net)
    period = _first_stride(dn.model)
    out = []
    show = len(examples) > 4 if progress is None else progress
    for ex in tqdm(examples, desc="DeNet", unit="image", disable=not show):
        x = ex.tensor(net)
        rec = dn.record(x)
        probs = rec.probabilities[0]
        tops = rec.top_classes(k)
        order = probs.argsort(descending=True).tolist()
        wrong = next(c for c in order if c != ex.label)
        p = rec.project([*tops, ex.label, wrong], top=top, rectify=rectify)
        d = rec.strongest_map()
        out.append(Explained(ex, x, ex.object_mask(net), tops, probs.numpy(), p.pixels[:k].cpu(), wrong,
                             p.pixels[k].cpu(), p.pixels[k + 1].cpu(), d.pixels[0].cpu(), d.layer, int(d.channel[0]),
                             period))
    return out


# --------------------------------------------------------------------------- tables


def _p(p: float) -> str:
    """A probability for a title: two decimals, or two significant digits when small."""
    return f"{p:.2f}" if p >= 0.01 else f"{p:.1g}"


def _name(net: Any, c: int) -> str:
    cats = getattr(net, "categories", None)
    return str(cats[c]) if cats else str(c)


def _f2(x: float) -> str:
    """Two decimals, or a dash for a missing number."""
    return "—" if math.isnan(x) else f"{x:.2f}"


def _net_name(net: Any) -> str:
    """How a table names its network: the Net's title (``"AlexNet-style (bundled)"``), else its architecture."""
    return str(getattr(net, "title", None) or getattr(net, "arch", None) or type(net).__name__)


def top_classes_table(net: Any, results: Sequence[Explained]) -> Table:
    """Per image: the top classes and their probabilities, each DeNet image's share on the object, how alike they are.

    ``r(1,2)`` is :func:`~vizlib.methods.denet.class_correlation` between the
    DeNet images of the two most probable classes (near 1: the same picture
    whatever the class).

    Example:
        >>> top_classes_table(net, explain_images(net, vl.example_images(net, 2)))   # doctest: +SKIP
    """
    k = len(results[0].top) if results else 0
    rows = []
    for r in results:
        corr = class_correlations(r.denet_top)
        rows.append([r.example.name, _name(net, r.example.label),
                     ", ".join(f"{_name(net, c)} ({_p(r.probabilities[c])})" for c in r.top),
                     r.area, " / ".join(_f2(r.on_object(v)) for v in r.denet_top)]
                    + [float(corr[0, j]) for j in range(1, k)])
    return Table(["image", "true class", f"top {k} (probability)", "object area", "DeNet on object, each class"]
                 + [f"r(1,{j + 1})" for j in range(1, k)], rows,
                 f"{_net_name(net)}: DeNet for each image's {k} most probable classes")


def _denet_higher(r: Explained) -> bool | None:
    """Whether DeNet (most probable class) puts more on the object than the deconvnet view; None: not comparable."""
    a, b = r.on_object(r.denet_top[0]), r.on_object(r.deconv)
    if not r.measurable or math.isnan(a) or math.isnan(b):
        return None
    return a > b


def denet_vs_deconvnet_table(results: Sequence[Explained], name: str | None = None) -> Table:
    """Per image: share of the energy on the object for DeNet (most probable class) and the deconvnet view.

    "DeNet higher" is left blank where the object fills the image (see
    :data:`MAX_OBJECT_AREA`), where there is no object region, or where a
    visualisation is zero everywhere.

    Example:
        >>> denet_vs_deconvnet_table(explain_images(net, vl.example_images(net, 2)))   # doctest: +SKIP
    """
    rows = [[r.example.name, r.area, r.on_object(r.denet_top[0]), r.on_object(r.deconv),
             f"{r.deconv_layer} map {r.deconv_map}", _denet_higher(r)] for r in results]
    left = sum(not r.measurable for r in results)
    title = (f"{name}: " if name else "") + "DeNet against the deconvnet (Fig. 13): each image's energy on its object"
    if left:
        title += (f"; {left} image(s) without an object region or whose object covers {MAX_OBJECT_AREA:.0%} or more "
                  "of the input: no comparison")
    return Table(["image", "object area", "DeNet on object", "deconvnet on object", "deconvnet view",
                  "DeNet higher"], rows, title=title)


def true_vs_wrong_table(net: Any, results: Sequence[Explained]) -> Table:
    """Per image: DeNet of the true class against the most probable wrong class: correlation and share on the object.

    Example:
        >>> true_vs_wrong_table(net, explain_images(net, vl.example_images(net, 2)))   # doctest: +SKIP
    """
    rows = [[r.example.name, f"{_name(net, r.example.label)} ({_p(r.probabilities[r.example.label])})",
             f"{_name(net, r.wrong)} ({_p(r.probabilities[r.wrong])})",
             class_correlation(r.denet_true, r.denet_wrong), r.on_object(r.denet_true), r.on_object(r.denet_wrong)]
            for r in results]
    return Table(["image", "true class (p)", "wrong class (p)", "r(true, wrong)", "true on object",
                  "wrong on object"], rows, f"{_net_name(net)}: DeNet for the true class and the most probable wrong one")


def _grid(r: Explained, period: int | None = None) -> float:
    """:func:`grid_share` of the true class's DeNet image at ``period`` (default: its own first stride;
    NaN where that makes no grid)."""
    period = r.period if period is None else period
    h, w = r.denet_true.shape[-2:]
    if period < 2 or h % period or w % period:
        return math.nan
    return grid_share(r.denet_true, period)


def _median(values: Iterable[float]) -> float:
    v = [x for x in values if not math.isnan(x)]
    return float(np.median(v)) if v else math.nan


def _common_period(results: dict[str, Sequence[Explained]], period: int | None) -> int:
    """The grid period both networks are measured at: ``period``, else the first network's first stride."""
    return int(next(iter(results.values()))[0].period if period is None else period)


def compare_nets_table(results: dict[str, Sequence[Explained]], *, period: int | None = None) -> Table:
    """Per image and network: grid pattern at one stride, share on the object, class specificity.

    Each network's DeNet image of the true class is measured:
    :func:`~vizlib.methods.denet.grid_share` at ``period`` (default: the first
    network's first-layer stride, AlexNet's in the book, so that the grid its
    stride stamps is looked for in both networks' images, as
    :func:`denet_claims` compares them; 0 = no grid, 1 = nothing but a grid),
    :func:`vizlib.energy_inside`, and the correlation between the true and the
    wrong class's images.

    Example:
        >>> compare_nets_table({"AlexNet": alex_results, "ZFNet": zf_results})   # doctest: +SKIP
    """
    labels = list(results)
    period = _common_period(results, period)
    n = min(len(v) for v in results.values())
    header = ["image"]
    for lab in labels:
        header += [f"{lab}: grid (period {period})", f"{lab}: on object", f"{lab}: r(true, wrong)"]
    rows = []
    for i in range(n):
        row: list[Any] = [results[labels[0]][i].example.name]
        for lab in labels:
            r = results[lab][i]
            row += [_grid(r, period), r.on_object(r.denet_true), class_correlation(r.denet_true, r.denet_wrong)]
        rows.append(row)
    title = (f"DeNet network by network (Fig. 12): block grid at period {period} ({labels[0]}'s first stride), "
             "energy on the object, r(true, wrong)")
    return Table(header, rows, title)


def option_variants(denet: DeNet, result: Explained) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """DeNet images of an image's true and wrong class under each of the four :data:`OPTIONS`.

    Returns:
        option label -> ``(true class image, wrong class image)``, each ``(C, H, W)``.

    Example:
        >>> v = option_variants(vl.DeNet(net), results[0])        # doctest: +SKIP
        >>> list(v)[0]                                             # doctest: +SKIP
        'logits, not rectified (the paper)'
    """
    rec = denet.record(result.input)
    out = {}
    for label, top, rectify in OPTIONS:
        p = rec.project([result.example.label, result.wrong], top=top, rectify=rectify)
        out[label] = (p.pixels[0].cpu(), p.pixels[1].cpu())
    return out


def options_table(denet: DeNet, results: Sequence[Explained]) -> Table:
    """How much DeNet's open choices matter, over some images: medians per option.

    Columns: the true class's share on the object; the correlation between
    the true and the wrong class's images (class specificity); the
    correlation with the paper's reading of the same class (1: the choice
    changes nothing).

    Example:
        >>> options_table(vl.DeNet(net), results[:1])             # doctest: +SKIP
    """
    per: dict[str, list[tuple[float, float, float]]] = {label: [] for label, _, _ in OPTIONS}
    for r in results:
        v = option_variants(denet, r)
        paper = v[OPTIONS[0][0]][0]
        for label, (t, w) in v.items():
            per[label].append((r.on_object(t), class_correlation(t, w), class_correlation(t, paper)))
    rows = [[label, _median(x[0] for x in vals), _median(x[1] for x in vals), _median(x[2] for x in vals)]
            for label, vals in per.items()]
    return Table(["DeNet option", "true class on object", "r(true, wrong)", "r(with the paper's reading)"], rows,
                 title=f"medians over {len(results)} image(s)")


# --------------------------------------------------------------------------- the paper's claims


def denet_claims(results: dict[str, Sequence[Explained]], pair: tuple[str, str] | None = None,
                 differently: str = "") -> list[Claim]:
    """Vashishth's claims about DeNet beside what was measured, each verdict from the numbers it prints.

    * §7, per network: DeNet shows what makes the image belong to *a
      particular category*: the median correlation between DeNet images of
      the true and the most probable wrong class, printed to two decimals;
      supported when that printed median is below 0.50.
    * §8, per network: DeNet captures the image's features better than the
      deconvnet: the share of the energy on the object, DeNet (most probable
      class) against the strongest top-layer map's projection; supported when
      DeNet's is higher on more than half of the images that can be compared
      (an object region leaving some background, :data:`MAX_OBJECT_AREA`, and
      neither visualisation zero); not testable when none can.
    * §7, Fig. 12 (only with ``pair = (alexnet_label, zfnet_label)``):
      AlexNet's DeNet images show block artifacts, ZFNet's do not: the
      median :func:`~vizlib.methods.denet.grid_share` at each net's first
      stride, printed to three decimals; supported when AlexNet's printed
      median is above ZFNet's; not testable when either is missing.

    Args:
        results: network label -> :func:`explain_images` results.
        pair: the labels of the AlexNet- and ZFNet-style networks.
        differently: why the pair cannot be compared (from
            :func:`~vizlib.chapters.claims.recipe_difference`: the two were trained
            differently); the block-artifact verdict is then *not testable here*.

    Returns:
        A list of :class:`~vizlib.chapters.claims.Claim` (show them with :func:`claims_table`).

    Example:
        >>> claims = denet_claims({"AlexNet": alex, "ZFNet": zf}, pair=("AlexNet", "ZFNet"))   # doctest: +SKIP
        >>> claims_table(claims)                                                               # doctest: +SKIP
    """
    claims = []
    for lab, res in results.items():
        r = round(_median(class_correlation(x.denet_true, x.denet_wrong) for x in res), 2)
        claims.append(Claim.judge(
            "Vashishth §7", f"DeNet images are specific to the class ({lab})",
            f"median r(true, wrong) = {_f2(r)} over {len(res)} images (class-specific: below 0.50)",
            None if math.isnan(r) else r < 0.5))
    for lab, res in results.items():
        higher = [h for h in (_denet_higher(x) for x in res) if h is not None]
        ok = [x for x in res if _denet_higher(x) is not None]
        wins = sum(higher)
        a = _median(x.on_object(x.denet_top[0]) for x in ok)
        b = _median(x.on_object(x.deconv) for x in ok)
        left = len(res) - len(ok)
        claims.append(Claim.judge(
            "Vashishth §8, Fig. 13", f"DeNet captures the object better than the deconvnet ({lab})",
            f"on object: DeNet {_f2(a)}, deconvnet {_f2(b)} (medians); DeNet higher on {wins} of {len(ok)} "
            f"(supported: more than half)"
            + (f"; left out: {left} whose object fills the input (or has no region, or a blank view)" if left else ""),
            wins > len(ok) / 2 if ok else None))
    if pair is not None:
        alex, zf = pair
        # both at AlexNet's stride: the grid its stride would stamp, looked for in both nets' images
        # (ZFNet's first stride is half of it, and 1 in the Bundled set, where it stamps no grid at all)
        period = results[alex][0].period
        ga = round(_median(_grid(x, period) for x in results[alex]), 3)
        gz = round(_median(_grid(x, period) for x in results[zf]), 3)
        sa, sz = ("—" if math.isnan(g) else f"{g:.3f}" for g in (ga, gz))
        testable = not (math.isnan(ga) or math.isnan(gz) or differently)
        claims.append(Claim.judge(
            "Vashishth §7, Fig. 12", "block artifacts in AlexNet's DeNet images, not in ZFNet's",
            f"share of the image in a grid of period {period} (AlexNet's first stride; ZFNet's is "
            f"{results[zf][0].period}), medians: {alex} {sa}, {zf} {sz}; supported: {alex}'s above {zf}'s"
            + (f" ({differently})" if differently else ""),
            ga > gz if testable else None))
    return claims


# --------------------------------------------------------------------------- figures


def plot_denet_rows(
    inputs: Sequence[torch.Tensor],
    panels: Sequence[Sequence[tuple[torch.Tensor, str]]],
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    masks: Sequence[torch.Tensor | None] | None = None,
    row_titles: Sequence[str] | None = None,
    size: float = 2.0,
) -> Figure:
    """One row per image: the input, then visualisations (DeNet, deconvnet, ...) with titles.

    Args:
        inputs: prepared images ``(C, H, W)``.
        panels: for each image, ``(visualisation (C, H, W), title)`` pairs;
            shown with zero as mid-grey (:func:`~vizlib.methods.deconvnet.normalize_projection`).
        mean, std: the net's normalisation, undone to show the input.
        masks: object regions, outlined in yellow on every panel of the row.
        row_titles: title of each input.
        size: inches per panel.

    Returns:
        A matplotlib Figure.

    Example:
        >>> fig = plot_denet_rows([x], [[(p.pixels[0], "DeNet")]], mean=net.mean, std=net.std)   # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    import textwrap

    cols = 1 + max((len(p) for p in panels), default=0)
    size = min(size, PAGE_INCHES / max(cols, 1))  # the page's column: no wider than PAGE_INCHES
    chars = max(8, int(size * 72 / (9 * 0.55)))  # a 9 pt title's characters per line in one panel
    fig, axes = plt.subplots(len(inputs), cols, figsize=(size * cols, (size + 0.45) * len(inputs)), squeeze=False)
    for r, (x, row) in enumerate(zip(inputs, panels)):
        shown = [(to_display(x, mean, std), row_titles[r] if row_titles else "input")]
        shown += [(normalize_projection(v), t) for v, t in row]
        m = masks[r] if masks is not None else None
        for c, ax in enumerate(axes[r]):
            ax.set_axis_off()
            if c >= len(shown):
                continue
            img, title = shown[c]
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
            if m is not None:
                ax.contour(np.asarray(m, dtype=float), levels=[0.5], colors="yellow", linewidths=0.8)
            lines = [w for line in title.split("\n") for w in (textwrap.wrap(line, chars, break_on_hyphens=False) or [""])]
            ax.set_title("\n".join(lines), fontsize=9)
    fig.tight_layout()
    return fig


def plot_top_classes(net: Any, results: Sequence[Explained], title: str | None = None) -> Figure:
    """One row per image: the input, then the DeNet image of each of its most probable classes.

    Example:
        >>> fig = plot_top_classes(net, results, title="AlexNet")   # doctest: +SKIP
    """
    fig = plot_denet_rows(
        [r.input for r in results],
        [[(v, f"{_name(net, c)} (p={_p(r.probabilities[c])})\non object {_f2(r.on_object(v))}")
          for c, v in zip(r.top, r.denet_top)] for r in results],
        mean=net.mean, std=net.std, masks=[r.mask for r in results],
        row_titles=[f"{r.example.name}\n(object {_f2(r.area)})" for r in results],
    )
    if title:
        fig.suptitle(title, y=1.01)
    return fig


def plot_denet_vs_deconvnet(net: Any, results: Sequence[Explained]) -> Figure:
    """Vashishth Fig. 13: the input, DeNet of the most probable class, the deconvnet view of the strongest top map.

    Example:
        >>> fig = plot_denet_vs_deconvnet(net, results)   # doctest: +SKIP
    """
    return plot_denet_rows(
        [r.input for r in results],
        [[(r.denet_top[0], f"DeNet: {_name(net, r.top[0])}\non object {_f2(r.on_object(r.denet_top[0]))}"),
          (r.deconv, f"deconvnet: {r.deconv_layer} map {r.deconv_map}\non object {_f2(r.on_object(r.deconv))}")]
         for r in results],
        mean=net.mean, std=net.std, masks=[r.mask for r in results],
        row_titles=[f"{r.example.name}\n(object {_f2(r.area)})" for r in results], size=2.4,
    )


def plot_true_vs_wrong(net: Any, results: Sequence[Explained]) -> Figure:
    """The input, DeNet of its true class and of the most probable wrong class, with their correlation.

    Example:
        >>> fig = plot_true_vs_wrong(net, results)   # doctest: +SKIP
    """
    return plot_denet_rows(
        [r.input for r in results],
        [[(r.denet_true, f"true: {_name(net, r.example.label)} (p={_p(r.probabilities[r.example.label])})"),
          (r.denet_wrong, f"wrong: {_name(net, r.wrong)} (p={_p(r.probabilities[r.wrong])})\n"
                          f"r = {class_correlation(r.denet_true, r.denet_wrong):.2f}")] for r in results],
        mean=net.mean, std=net.std, row_titles=[r.example.name for r in results], size=2.4,
    )


def plot_nets_side_by_side(nets: dict[str, Any], results: dict[str, Sequence[Explained]], *,
                           period: int | None = None) -> Figure:
    """Vashishth Fig. 12: each image, then each network's DeNet image of its true class.

    Each title gives the image's grid share at ``period`` (as :func:`compare_nets_table`:
    default the first network's first stride) and its share on the object.

    Example:
        >>> fig = plot_nets_side_by_side(nets, {"AlexNet": alex, "ZFNet": zf})   # doctest: +SKIP
    """
    labels = list(results)
    period = _common_period(results, period)
    n = min(len(v) for v in results.values())
    first = results[labels[0]]
    return plot_denet_rows(
        [first[i].input for i in range(n)],
        [[(results[lab][i].denet_true,
           f"{lab}: grid {_f2(_grid(results[lab][i], period))}\n"
           f"on object {_f2(results[lab][i].on_object(results[lab][i].denet_true))}") for lab in labels]
         for i in range(n)],
        mean=nets[labels[0]].mean, std=nets[labels[0]].std,
        row_titles=[f"{first[i].example.name}\n(true: {_name(nets[labels[0]], first[i].example.label)})"
                    for i in range(n)], size=2.4,
    )


def plot_options(net: Any, denet: DeNet, result: Explained) -> Figure:
    """One image: its DeNet image of the true class under each of the four :data:`OPTIONS`.

    Example:
        >>> fig = plot_options(net, vl.DeNet(net), results[0])   # doctest: +SKIP
    """
    v = option_variants(denet, result)
    return plot_denet_rows(
        [result.input],
        [[(t, f"{label}\non object {_f2(result.on_object(t))}, r(true, wrong) {class_correlation(t, w):.2f}")
          for label, (t, w) in v.items()]],
        mean=net.mean, std=net.std, masks=[result.mask],
        row_titles=[f"{result.example.name}\n(true: {_name(net, result.example.label)})"], size=2.7,
    )


def denet_figure(
    net: Any,
    example: ExampleImage,
    target: int | None = None,
    *,
    top: str = "logits",
    rectify: bool = False,
    denet: DeNet | None = None,
) -> Figure:
    """Input, DeNet image of a class and the deconvnet projection of the strongest top-layer map, with measures.

    The titles give each visualisation's share on the object
    (:func:`vizlib.energy_inside`; the object's own share of the input is what
    an even spread would get).

    Example:
        >>> fig = denet_figure(net, vl.example_images(net, 1)[0])   # doctest: +SKIP
    """
    dn = denet or DeNet(net)
    x = example.tensor(net)
    mask = example.object_mask(net)
    rec = dn.record(x)
    target = rec.predicted() if target is None else target
    p = rec.project(target, top=top, rectify=rectify)
    d = rec.strongest_map()
    prob = float(rec.probabilities[0, target])
    area = float(mask.float().mean()) if mask is not None else math.nan
    return plot_denet_rows(
        [x],
        [[(p.pixels[0], f"DeNet '{_name(net, target)}' (p={_p(prob)})\non object {_f2(_share(p.pixels[0], mask))}"),
          (d.pixels[0], f"deconvnet {d.layer} map {int(d.channel[0])}\non object {_f2(_share(d.pixels[0], mask))}")]],
        mean=net.mean, std=net.std, masks=[mask],
        row_titles=[f"{example.name}\nobject = {_f2(area)} of image"], size=2.6,
    )


def denet_explorer(nets: dict[str, Any], examples: dict[str, Sequence[ExampleImage]]) -> Any:
    """Pick a network, an image, a class and DeNet's two options; see :func:`denet_figure`.

    Choices are kept where they still make sense: on a network change the
    image (by name, else by position) and a class picked by hand (by name,
    if the new network has it); a class left at the prediction follows the
    new prediction. When a choice cannot be kept, the note above the figure
    says so.

    Args:
        nets: label -> :class:`~vizlib.Net`.
        examples: the same labels -> that net's images (:func:`vizlib.example_images`).

    Returns:
        An :class:`~vizlib.chapters.widgets.Explorer` (controls in two rows).

    Example:
        >>> denet_explorer({"AlexNet": net}, {"AlexNet": vl.example_images(net, 3)})   # doctest: +SKIP
    """
    import ipywidgets as W

    from .widgets import Explorer, show_figure

    denets = {k: DeNet(v) for k, v in nets.items()}
    predicted: dict[tuple[str, int], int] = {}

    def prediction(label: str, i: int) -> int:
        if (label, i) not in predicted:
            predicted[(label, i)] = denets[label].record(examples[label][i].tensor(nets[label])).predicted()
        return predicted[(label, i)]

    def class_options(label: str, i: int) -> list[tuple[str, int]]:
        ex, pred = examples[label][i], prediction(label, i)
        return [(f"{c}{' (true)' if j == ex.label else ''}{' (predicted)' if j == pred else ''}", j)
                for j, c in enumerate(nets[label].categories)]

    first = next(iter(nets))
    pick = W.Dropdown(options=list(nets), description="network")
    img = W.Dropdown(options=[(e.name, i) for i, e in enumerate(examples[first])], value=0, description="image")
    cls = W.Dropdown(options=class_options(first, 0), value=prediction(first, 0), description="class")
    top = W.ToggleButtons(options=list(TOPS), value="logits", description="top")
    rect = W.Checkbox(value=False, description="rectify between dense layers")
    state = {"label": first, "image": 0}  # what the class list was built for

    def update(change: dict | None) -> str | None:
        if change is None or change["owner"] not in (pick, img):
            return None
        notes = []
        old_label, old_i = state["label"], state["image"]
        old_cls = cls.value
        label = pick.value
        if change["owner"] is pick:
            names = [e.name for e in examples[label]]
            old_name = examples[old_label][old_i].name
            i = names.index(old_name) if old_name in names else (old_i if old_i < len(names) else 0)
            if old_name not in names:
                notes.append(f"{label} has no image {old_name!r}: showing {names[i]!r}.")
            img.options = [(n, j) for j, n in enumerate(names)]
            img.value = i
        i = img.value
        cls.options = class_options(label, i)
        pred = prediction(label, i)
        if old_cls == prediction(old_label, old_i):  # the class followed the prediction: it follows again
            cls.value = pred
        else:
            name = nets[old_label].categories[old_cls]
            cats = list(nets[label].categories)
            if name in cats:
                cls.value = cats.index(name)
            else:
                cls.value = pred
                notes.append(f"{label} has no class {name!r}: showing its predicted class, {cats[pred]!r}.")
        state["label"], state["image"] = label, i
        return " ".join(notes) or None

    def content() -> None:
        show_figure(denet_figure(nets[pick.value], examples[pick.value][img.value], cls.value, top=top.value,
                                 rectify=rect.value, denet=denets[pick.value]))

    return Explorer([[pick, img], [cls, top, rect]], content, update=update)


def denet_static(net: Any, example: ExampleImage, classes: int = 5, *, denet: DeNet | None = None) -> Any:
    """Kernel-free: one image explained for each of its most probable classes, then its true class (:func:`denet_figure`).

    The states are the network's ``classes`` most probable classes on the image, most probable
    first, and the true class when it is not among them; every frame is the explorer's figure
    for that class (logits on top, no rectification).

    Args:
        net: a :class:`~vizlib.Net`.
        example: the image (:class:`~vizlib.core.examples.ExampleImage`).
        classes: how many of the most probable classes (each is a PNG in the page).
        denet: a :class:`~vizlib.DeNet` of ``net`` to reuse.

    Returns:
        A :class:`~vizlib.chapters.widgets.StaticExplorer`.

    Example:
        >>> denet_static(net, vl.example_images(net, 1)[0], classes=3)   # doctest: +SKIP
    """
    from .widgets import static_explorer

    dn = denet or DeNet(net)
    rec = dn.record(example.tensor(net))
    states = rec.top_classes(min(classes, rec.classes))
    if example.label is not None and int(example.label) not in states:
        states.append(int(example.label))
    labels = [f"{example.name}, class {_name(net, c)}" + (" (true)" if c == example.label else "")
              + (" (predicted)" if c == states[0] else "") for c in states]
    return static_explorer(states, lambda c: denet_figure(net, example, c, denet=dn), labels=labels,
                           name="class", dpi=90, frame_format="jpeg")
