"""Chapter 1, Architectures: AlexNet, ZFNet and VGG-16 layer by layer.

What the chapter shows and how: Vashishth's size formulas worked through
(:func:`formula_table`), ZFNet's sizes against Zeiler's Fig. 3
(:func:`compare_sizes`), per-layer summaries and their figure
(:func:`plot_summary`), the bundled nets beside the full-size ones
(:func:`bundled_summaries`, :func:`bundled_table`), and the explorer.
The computing is :func:`vizlib.summary` and :func:`vizlib.output_sizes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display
from matplotlib.figure import Figure
from torch import nn
from torchvision import models as tvm

from ..core.batches import PreparedImages
from ..core.composed import bundled_sample, median_box_side
from ..core.errors import InputTooSmall
from ..core.shapes import min_input_size, output_sizes, pool_output_size
from ..core.tables import Table
from ..methods.architecture import LayerRow, Summary, summary
from ..methods.occlusion import Occlusion
from ..methods.filters import (HighFrequencyShare, InitSimilarity, high_frequency_share, image_high_frequency_share,
                               init_similarity)
from ..methods.reconstruction import StageEnergy, object_energy_by_stage
from ..methods.receptive_field import receptive_fields
from ..models import nets as models
from ..models.nets import alexnet_original
from ..models.bundled import VARIANTS, _stem, bundled_record, initial_model, load_bundled
from ..models.bundled_nets import BUNDLED_BUILDERS, FMNIST_INPUT_SIZE
from ..models.training import CHECKPOINT_DIR
from . import paper_data
from .claims import Claim, claims_table, number
from .widgets import Explorer, StaticExplorer, Words, explorer, static_explorer

__all__ = [
    "paper_data",
    "paper_nets",
    "alexnet_original",
    "layer_names_table",
    "formula_table",
    "compare_sizes",
    "pool_rounding",
    "compare_summaries",
    "parameter_check",
    "parameter_shares",
    "plot_summary",
    "bundled_summaries",
    "bundled_table",
    "bundled_fields_table",
    "SEEING_NETS",
    "SEEING_BARS",
    "Seeing",
    "SEEING_OCCLUDER",
    "OcclusionSeeing",
    "FieldSeeing",
    "occlusion_seeing",
    "field_seeing",
    "seeing_measures",
    "seeing_accuracy_table",
    "seeing_occlusion_table",
    "seeing_table",
    "seeing_claims",
    "claims_table",
    "architecture_explorer",
    "architecture_static",
    "plot_composed_examples",
]


def paper_nets(seed: int = 0) -> dict[str, nn.Module]:
    """The papers' three nets, untrained (architectures need no weights): label -> model.

    Example:
        >>> list(paper_nets())
        ['AlexNet', 'ZFNet', 'VGG-16']
    """
    return {"AlexNet": models.alexnet(seed=seed), "ZFNet": models.zfnet(seed=seed), "VGG-16": models.vgg16(seed=seed)}


def layer_names_table(nets: dict[str, nn.Module]) -> Table:
    """The papers' layer names beside the module each stands for, in AlexNet and ZFNet.

    Example:
        >>> from vizlib.models import alexnet, zfnet
        >>> layer_names_table({"AlexNet": alexnet(), "ZFNet": zfnet()}).rows[0]
        ['c1', 'features.1', 'features.1']
    """
    return Table(["paper name", "AlexNet module", "ZFNet module"],
                 [[n, nets["AlexNet"].vizlib_layers.get(n, ""), p] for n, p in nets["ZFNet"].vizlib_layers.items()],
                 "The papers' layer names and the modules they name")


def pool_rounding(sides: Sequence[int] = (110, 26), kernel: int = 3, stride: int = 2) -> Table:
    """ZFNet's pooling sides worked both ways: why ``ceil_mode`` gives Zeiler's 55 and 13.

    Example:
        >>> pool_rounding().rows[0]
        [110, 54.5, 54, 55]
    """
    rows = []
    for w in sides:
        exact = pool_output_size(w, kernel, stride)
        rows.append([w, float(exact), int(exact), -(-exact.numerator // exact.denominator)])
    return Table(["input side", f"(W − {kernel})/{stride} + 1", "floor", "ceil"], rows,
                 f"A {kernel}×{stride} pooling's output side, rounded down and up")


def formula_table(model: nn.Module, input_size: int) -> "Table":
    """Vashishth's formulas worked through every convolution and pooling layer, as a table.

    Example:
        >>> from vizlib.models import zfnet
        >>> formula_table(zfnet(), 224).rows[0][-2:]
        ['(224 − 7 + 2·1)/2 + 1 = 110.5 → 110 (floor)', 110]
    """
    rows = [[st.name, st.kind, st.w_in, st.f, st.p, st.s, st.formula, st.w_out] for st in output_sizes(model, input_size)]
    arch = getattr(model, "vizlib_arch", type(model).__name__)
    return Table(["layer", "type", "W1", "F", "P", "S", "W2 = (W1 − F + 2P)/S + 1", "W2"], rows,
                 title=f"{arch}, {input_size}×{input_size} input")


def compare_sizes(model: nn.Module, input_size: int, paper: dict[str, int]) -> "Table":
    """Map sides computed here beside a paper's, with a ``match`` column.

    Example:
        >>> from vizlib.models import zfnet
        >>> all(compare_sizes(zfnet(), 224, paper_data.ZEILER_FIG3_SIZES).column("match"))
        True
    """
    got = {st.name: st.w_out for st in output_sizes(model, input_size)}
    missing = [n for n in paper if n not in got]
    if missing:
        raise KeyError(f"layers {missing} of the paper are not in this model ({', '.join(got)})")
    return Table(["layer", "paper", "computed", "match"], [[n, v, got[n], v == got[n]] for n, v in paper.items()],
                 f"Output sides at {input_size} px: the paper's against the model's")


def compare_summaries(original: "Summary", scaled: "Summary", labels: tuple[str, str] | None = None) -> "Table":
    """Two summaries of the same design side by side, layer by layer (paper names).

    Args:
        original, scaled: the two :class:`Summary` tables.
        labels: column labels for the two networks (default: their ``arch``).

    Example:
        >>> from vizlib.models import alexnet
        >>> t = compare_summaries(summary(alexnet()), summary(alexnet_original()), ("torchvision", "Krizhevsky"))
        >>> t.rows[-1]
        ['total', '', '', 61100840, '', '', 62378344]
    """
    la, lb = labels or (original.arch, scaled.arch)
    def shape(r: LayerRow | None) -> str:
        return "×".join(map(str, r.output_shape)) if r else "—"

    names = [r.name for r in original.rows] + [r.name for r in scaled.rows if r.name not in {x.name for x in original.rows}]
    a, b = {r.name: r for r in original.rows}, {r.name: r for r in scaled.rows}
    rows = [[n, a[n].kind if n in a else "—", shape(a.get(n)), a[n].params if n in a else None,
             b[n].kind if n in b else "—", shape(b.get(n)), b[n].params if n in b else None] for n in names]
    rows.append(["total", "", "", original.total_params, "", "", scaled.total_params])
    return Table(["layer", la, "output", "parameters", lb, "output", "parameters"], rows,
                 title=f"{la} on {original.input_shape[-1]}² against {lb} on {scaled.input_shape[-1]}²")


def plot_summary(summaries: Summary | Sequence[Summary]) -> Figure:
    """Parameters and multiply-adds per layer, one bar group per network (log scale).

    Example:
        >>> from vizlib.models import alexnet
        >>> from vizlib import summary
        >>> fig = plot_summary(summary(alexnet()))
    """
    items = [summaries] if isinstance(summaries, Summary) else list(summaries)
    fig, axes = plt.subplots(len(items), 2, figsize=(7.4, 3.1 * len(items)), squeeze=False)  # the page's column
    for row, s in zip(axes, items):
        names = [r.name for r in s.rows]
        for ax, values, label, colour in (
            (row[0], [r.params for r in s.rows], "parameters", "tab:blue"),
            (row[1], [r.macs for r in s.rows], "multiply-adds", "tab:orange"),
        ):
            # layers with none (pooling, normalisation) get no bar rather than a fake 1 on the log axis
            ax.bar(range(len(names)), np.where(np.asarray(values) > 0, values, np.nan), color=colour)
            ax.set_yscale("log")
            ax.set_xticks(range(len(names)), names, rotation=90, fontsize=8)
            ax.set_title(f"{s.arch}: {label} per layer\n(total {sum(values):,})", fontsize=9)
            ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    return fig


def parameter_check(summaries: dict[str, Summary]) -> Table:
    """The parameter counts computed here beside torchvision's metadata (AlexNet, VGG-16).

    Example:
        >>> from vizlib.models import alexnet, vgg16
        >>> parameter_check({"AlexNet": summary(alexnet()), "VGG-16": summary(vgg16())}).column("equal")
        [True, True]
    """
    meta = {"AlexNet": tvm.AlexNet_Weights.IMAGENET1K_V1, "VGG-16": tvm.VGG16_Weights.IMAGENET1K_V1}
    return Table(["network", "vizlib count", "torchvision meta", "equal"],
                 [[n, summaries[n].total_params, w.meta["num_params"], summaries[n].total_params == w.meta["num_params"]]
                  for n, w in meta.items()], "Parameters counted here and in torchvision's weights metadata")


def parameter_shares(summaries: dict[str, Summary]) -> Table:
    """Where the parameters and the multiply-adds are: the share of the dense layers fc6–fc8.

    Example:
        >>> from vizlib.models import alexnet
        >>> parameter_shares({"AlexNet": summary(alexnet())}).rows[0]
        ['AlexNet', 61100840, 96.0, 714188480, 8.2]
    """
    return Table(["network", "parameters", "% in fc6–fc8", "multiply-adds", "% of MACs in fc6–fc8"],
                 [[n, s.total_params, round(100 * s.share("fc")[0], 1), s.total_macs, round(100 * s.share("fc")[1], 1)]
                  for n, s in summaries.items()], "Where the weights and the arithmetic are: the dense layers' share")


def bundled_summaries() -> dict[str, Summary]:
    """Summaries of the three small bundled designs at their own input sizes (one grey channel): arch -> Summary.

    Example:
        >>> {arch: s.input_shape for arch, s in bundled_summaries().items()}
        {'alexnet': (1, 64, 64), 'zfnet': (1, 64, 64), 'vgg16': (1, 32, 32)}
    """
    return {arch: summary(build(), FMNIST_INPUT_SIZE[arch], in_channels=1) for arch, build in BUNDLED_BUILDERS.items()}


def bundled_fields_table(small: dict[str, Summary]) -> Table:
    """The bundled nets' inputs, sizes and the field of their last pooling layer.

    Example:
        >>> bundled_fields_table(bundled_summaries()).column("field of the last pooling (size/stride)")
        ['195/32', '171/32', '212/32']
    """
    return Table(["network", "input", "parameters", "multiply-adds", "field of the last pooling (size/stride)"],
                 [[f"{_STYLE[arch]} (bundled)", FMNIST_INPUT_SIZE[arch], s.total_params, s.total_macs,
                   "{0.size}/{0.stride}".format(receptive_fields(BUNDLED_BUILDERS[arch]())[-1])]
                  for arch, s in small.items()],
                 "The bundled nets: inputs, sizes and the field of the last pooling")


#: The committed bundled nets whose seeing is measured: ``(arch, variant)``.
SEEING_NETS: tuple[tuple[str, str | None], ...] = (("alexnet", None), ("zfnet", None), ("vgg16", None),
                                                   ("alexnet", "norenorm"))

#: The bars a bundled net that sees should pass: the c1 high-frequency share (cut-off, FFT size, most), the most cosine similarity
#: to the initialisation, how many times the object's share each stage's reconstruction must reach, the least median drop of
#: p(true class) under the occluder, the least share of images whose most damaging tenth of positions lies on the object, and
#: the least accuracy on the composed test set.
SEEING_BARS = {"cutoff": 0.25, "pad": 32, "high_frequency": 0.35, "init_similarity": 0.5, "object_factor": 3.0,
               "occlusion_drop": 0.3, "occlusion_on_object": 0.8, "accuracy": 0.88}

#: The occluder of the seeing measures: a grey square of ``size`` px moved by ``stride`` px over the 64 px images.
SEEING_OCCLUDER = {"size": 9, "stride": 3}

_STYLE = {"alexnet": "AlexNet-style", "zfnet": "ZFNet-style", "vgg16": "VGG-16-style"}


@dataclass
class Seeing:
    """Whether one bundled net sees: its first-layer filters and its whole-layer reconstructions.

    Attributes:
        name: the net's label (``"AlexNet-style (bundled)"``).
        arch, variant: which checkpoint.
        high: c1's share of spectral energy above the cut-off (:func:`vizlib.methods.filters.high_frequency_share`).
        high_init: the same for the net's own initialisation (:func:`vizlib.models.bundled.initial_model`).
        init: c1's cosine similarity to that initialisation (:func:`vizlib.methods.filters.init_similarity`).
        energy: per stage, the median share of whole-layer reconstruction energy on the object
            (:func:`vizlib.methods.reconstruction.object_energy_by_stage`).
        image_high: the same share as ``high`` for the sample images as this net sees them (resized,
            each image's mean removed: :func:`vizlib.methods.filters.image_high_frequency_share`),
            the reference for ``high``: a filter matched to the images would keep about that much.

    Example:
        >>> rows = seeing_measures(2, nets=[("alexnet", None)])  # doctest: +SKIP
        >>> rows[0].name, rows[0].energy.layers[0]               # doctest: +SKIP
        ('AlexNet-style (bundled)', 'c1')
    """

    name: str
    arch: str
    variant: str | None
    high: HighFrequencyShare
    high_init: HighFrequencyShare
    init: InitSimilarity
    energy: StageEnergy
    occlusion: "OcclusionSeeing | None" = None
    field: "FieldSeeing | None" = None
    accuracy: float | None = None
    plain_accuracy: float | None = None
    image_high: HighFrequencyShare | None = None


@dataclass
class OcclusionSeeing:
    """Zeiler's Fig. 7 test as two numbers per image, over the first images of the sample.

    Attributes:
        drops: per image, p(true class) unoccluded minus its lowest value over the positions.
        on_object: per image, the share of the most damaging tenth of positions whose
            square centre lies on the garment's mask.
        size, stride: the occluder.
        object_share: per image, the share of *all* positions whose square centre lies on
            the mask (empty: not recorded, every image counts).
        positions: the positions of one sweep (0: not recorded).
    """

    drops: np.ndarray
    on_object: np.ndarray
    size: int
    stride: int
    object_share: np.ndarray = field(default_factory=lambda: np.zeros(0))
    positions: int = 0

    @property
    def reachable(self) -> np.ndarray:
        """Per image: can more than half of its worst tenth lie on the garment at all?

        A garment that holds fewer square centres than half of the worst tenth (a
        sandal's thin sole, a small sneaker) cannot reach it, whatever the net
        does: such an image cannot test the rule, so :attr:`centred` leaves it out.
        """
        if not len(self.object_share) or not self.positions:
            return np.ones(len(self.on_object), bool)
        from .ch05 import worst_count  # the tenth occlusion_readings counts

        tenth = worst_count(self.positions)
        on_mask = np.rint(self.object_share * self.positions)
        return on_mask > tenth / 2

    @property
    def images(self) -> int:
        return int(len(self.drops))

    @property
    def median_drop(self) -> float:
        return float(np.median(self.drops)) if len(self.drops) else float("nan")

    @property
    def testable(self) -> int:
        """The images that can test :attr:`centred` (:attr:`reachable`)."""
        return int(self.reachable.sum())

    @property
    def centred(self) -> float:
        """The share of images whose most damaging tenth lies mostly (more than half) on the object,
        among those whose garment holds enough positions for it (:attr:`reachable`)."""
        ok = self.reachable
        return float(np.mean(self.on_object[ok] > 0.5)) if ok.any() else float("nan")


@dataclass
class FieldSeeing:
    """The second conv stage's receptive field against the median object's bounding box.

    Attributes:
        layer: the stage's last convolution (``c2``, ``c2_2``).
        field: its receptive field's side in input pixels (:func:`vizlib.receptive_fields`).
        box: the median over the sample's garments of their box's longer side.
        box_short: the same for the shorter side.
    """

    layer: str
    field: int
    box: float
    box_short: float


def occlusion_seeing(net, n: int = 50, *, size: int | None = None, stride: int | None = None) -> OcclusionSeeing:
    """Occlude the first ``n`` sample images with a grey square: how far p(true class) drops, and where.

    Example:
        >>> o = occlusion_seeing(load_bundled("alexnet"), 2, stride=16)
        >>> o.images, 0 <= o.median_drop <= 1
        (2, True)
    """
    from .ch05 import occlusion_readings

    size = SEEING_OCCLUDER["size"] if size is None else size
    stride = SEEING_OCCLUDER["stride"] if stride is None else stride
    sample = bundled_sample()
    occ = Occlusion(net)
    drops, on, shares, positions = [], [], [], 0
    for i in range(min(n, len(sample))):
        e = sample.example(i)
        maps = occ.sweep(e.image, size, stride, int(e.label), project=False, progress=False,
                         keep_probabilities=False)
        r = occlusion_readings(maps, e.mask)
        drops.append(r.base_probability - r.lowest_probability)
        on.append(r.on_object)
        shares.append(r.object_share)
        positions = int(maps.probability.numel())
    return OcclusionSeeing(np.asarray(drops, float), np.asarray(on, float), int(size), int(stride),
                           np.asarray(shares, float), positions)


def field_seeing(net) -> FieldSeeing:
    """The second stage's field (``c2`` or VGG's ``c2_2``) beside the median garment box of the sample.

    Example:
        >>> f = field_seeing(load_bundled("vgg16"))
        >>> f.layer, f.field
        ('c2_2', 14)
    """
    fields = {r.name: r.size for r in receptive_fields(net)}
    layer = "c2" if "c2" in fields else "c2_2"
    masks = bundled_sample().masks
    return FieldSeeing(layer, int(fields[layer]), median_box_side(masks), median_box_side(masks, "shorter"))


def seeing_measures(n: int = 100, nets: Sequence[tuple[str, str | None]] = SEEING_NETS, *,
                    occlusion: int = 50) -> list[Seeing]:
    """Measure whether each committed bundled net sees.

    For each net: the median c1 high-frequency share (cut-off and FFT size
    from :data:`SEEING_BARS`) and its initialisation's, the median cosine
    similarity of c1 to that initialisation, and over the first ``n`` images
    of the composed test sample (each garment's exact mask as its object)
    the median share of whole-layer reconstruction energy on the object at
    every conv stage, beside the median object share; over the first
    ``occlusion`` images, Fig. 7's drop of p(true class) and where the most
    damaging positions lie (:func:`occlusion_seeing`); the second stage's
    receptive field against the median garment box (:func:`field_seeing`);
    and the accuracies the training record keeps.

    Args:
        n: how many sample images (the first ``n``).
        nets: ``(arch, variant)`` pairs; those whose checkpoint does not ship are left out.
        occlusion: how many images to occlude (0: leave occlusion out).

    Returns:
        One :class:`Seeing` per net.

    Example:
        >>> rows = seeing_measures(2, nets=[("zfnet", None)], occlusion=0)
        >>> rows[0].name, rows[0].energy.images
        ('ZFNet-style (bundled)', 2)
    """
    sample = bundled_sample()
    images, masks = sample.images[:n], sample.masks[:n]
    rows = []
    for arch, variant in nets:
        if not (CHECKPOINT_DIR / f"{_stem(arch, variant)}.pt").is_file():
            continue
        net = load_bundled(arch, variant=variant)
        start = initial_model(arch, variant)
        cut, pad = SEEING_BARS["cutoff"], int(SEEING_BARS["pad"])
        label = _STYLE.get(arch, arch) + (f", {variant}" if variant else "") + " (bundled)"
        record = bundled_record(arch, variant)
        rows.append(Seeing(label, arch, variant, high_frequency_share(net, cut, pad),
                           high_frequency_share(start, cut, pad), init_similarity(net, start),
                           object_energy_by_stage(net, images, iter(masks)),
                           occlusion_seeing(net, occlusion) if occlusion else None, field_seeing(net),
                           record.get("test_accuracy"), record.get("plain_test_accuracy"),
                           image_high_frequency_share(PreparedImages(sample.subset(slice(0, n)), net)
                                                      .batch(np.arange(min(n, len(sample)))), cut)))
    return rows


def seeing_table(rows: Sequence[Seeing]) -> Table:
    """The measures of :func:`seeing_measures`, one row per net, as printed beside the claims.

    Example:
        >>> t = seeing_table(seeing_measures(2, nets=[("alexnet", None)]))
        >>> t.header[:3]
        ['network', 'c1 share above 0.25 cycles/px (at initialisation; the images)', 'c1 cosine to initialisation']
    """
    cut = SEEING_BARS["cutoff"]
    # few columns, so that the table fits the page: the stages share one cell
    header = ["network", f"c1 share above {cut:g} cycles/px (at initialisation; the images)",
              "c1 cosine to initialisation",
              "object's share of the image", "on object, stage by stage", "images"]
    body = []
    for r in rows:
        stages = " · ".join(f"{layer} {number(r.energy.inside[layer])}" for layer in r.energy.layers)
        images = f"; {number(r.image_high.median)}" if r.image_high is not None else ""
        body.append([r.name, f"{number(r.high.median)} ({number(r.high_init.median)}{images})", number(r.init.median),
                     number(r.energy.area), stages, r.energy.images])
    return Table(header, body, "Do the bundled nets see? Medians over c1's filters and over the sample's images")


def seeing_claims(rows: Sequence[Seeing]) -> list[Claim]:
    """The bars for bundled nets that see, judged on the numbers of :func:`seeing_table`.

    * the AlexNet- and ZFNet-style nets (renormalised): median c1 share above
      the cut-off at most ``SEEING_BARS["high_frequency"]``;
    * every net: median c1 cosine similarity to its initialisation at most
      ``SEEING_BARS["init_similarity"]``;
    * every net: at every stage the median share on the object at least
      ``SEEING_BARS["object_factor"]`` times the median object share. Not
      supported when a stage puts no more than the object's share on it (less
      than energy spread evenly would); not testable when a share is missing,
      or when every stage is above the object's share but that product
      exceeds 1 (the object covers so much of the image that no
      reconstruction could reach the bar).

    Example:
        >>> [c.verdict for c in seeing_claims(seeing_measures(2, nets=[("vgg16", None)]))]
        ['supported', 'not supported here']
    """
    bars, out = SEEING_BARS, []
    source = "this book's bar"
    for r in rows:
        if r.arch in ("alexnet", "zfnet") and r.variant is None:
            out.append(Claim.judge(
                source, f"{r.name}: c1 filters keep little energy above {bars['cutoff']:g} cycles/px",
                f"median share {number(r.high.median)} (its initialisation {number(r.high_init.median)}"
                + (f"; the images it sees, mean removed, {number(r.image_high.median)}" if r.image_high else "")
                + f"); bar: at most {bars['high_frequency']:g}",
                r.high.median <= bars["high_frequency"] if np.isfinite(r.high.median) else None))
    for r in rows:
        out.append(Claim.judge(
            source, f"{r.name}: c1 filters have moved away from their initialisation",
            f"median cosine similarity {number(r.init.median)}; bar: at most {bars['init_similarity']:g}",
            r.init.median <= bars["init_similarity"] if np.isfinite(r.init.median) else None))
    for r in rows:
        e, k = r.energy, bars["object_factor"]
        shares = [e.inside[layer] for layer in e.layers]
        measured = (", ".join(f"{layer} {number(e.inside[layer])}" for layer in e.layers)
                    + f"; object's share {number(e.area)}, {k:g}× that is {number(k * e.area)}")
        below = [layer for layer, s in zip(e.layers, shares) if s <= e.area]
        if k * e.area > 1:
            measured += " (above 1: unreachable on these images)"
        if below:
            where = "every stage" if len(below) == len(e.layers) else ", ".join(below)
            measured += f"; at or below the object's share at {where}"
        if not np.isfinite(shares).all():
            holds = None
        elif all(s >= k * e.area for s in shares):
            holds = True
        elif k * e.area > 1 and not below:  # above the object's share everywhere: only the images keep it from 3×
            holds = None
        else:
            holds = False
        out.append(Claim.judge(
            source, f"{r.name}: whole-layer reconstructions from every conv stage concentrate on the object",
            measured, holds))
    for r in rows:
        o = r.occlusion
        if o is None or r.variant is not None:
            continue
        out.append(Claim.judge(
            source, f"{r.name}: covering the garment costs the true class (Fig. 7 (d))",
            f"median drop of p(true class) at the worst position {number(o.median_drop)} over {o.images} images "
            f"({o.size} px square, stride {o.stride}); bar: at least {bars['occlusion_drop']:g}",
            o.median_drop >= bars["occlusion_drop"] if np.isfinite(o.median_drop) else None))
        out.append(Claim.judge(
            source, f"{r.name}: the most damaging positions lie on the garment",
            f"{number(o.centred)} of {o.testable} images have more than half of their worst tenth of positions "
            f"centred on the garment's mask"
            + (f" (of {o.images}; {o.images - o.testable} left out, whose garment holds fewer square centres than "
               f"half of that tenth)" if o.testable < o.images else "")
            + f"; bar: at least {bars['occlusion_on_object']:g}",
            o.centred >= bars["occlusion_on_object"] if np.isfinite(o.centred) else None))
    for r in rows:
        f = r.field
        if f is None or r.variant is not None:
            continue
        out.append(Claim.judge(
            source, f"{r.name}: the second stage sees parts of a garment, not all of it",
            f"{f.layer}'s receptive field {f.field} px; the median garment box {number(f.box)} × "
            f"{number(f.box_short)} px (longer × shorter side); bar: the field below the longer side",
            f.field < f.box))
    for r in rows:
        if r.variant is not None:
            continue
        acc = r.accuracy
        out.append(Claim.judge(
            source, f"{r.name}: classifies the composed test set well",
            (f"accuracy {100 * acc:.2f} % on the 10,000 composed test images" if acc is not None
             else "no test-set accuracy in the training record (Fashion-MNIST's test set was not at hand)")
            + f"; bar: at least {100 * bars['accuracy']:g} %",
            acc >= bars["accuracy"] if acc is not None else None))
    return out


def seeing_accuracy_table(rows: Sequence[Seeing]) -> Table:
    """Each net's accuracy on the composed test set and on plain Fashion-MNIST (garments on black), from its record.

    Example:
        >>> seeing_accuracy_table(seeing_measures(2, nets=[("vgg16", None)], occlusion=0)).header[1]
        'composed test set (10,000)'
    """
    def pct(v: float | None) -> str:
        return "not measured" if v is None else f"{100 * v:.2f} %"

    body = [[r.name, pct(r.accuracy), pct(r.plain_accuracy),
             pct(bundled_record(r.arch, r.variant).get("sample_accuracy"))] for r in rows]
    return Table(["network", "composed test set (10,000)", "plain test set: garments centred on black (10,000)",
                  "composed sample (1,500)"], body, "Accuracy of the bundled nets, from their training records")


def seeing_occlusion_table(rows: Sequence[Seeing]) -> Table:
    """Fig. 7's test and the second stage's field, one row per net (those with an occlusion measure).

    Example:
        >>> seeing_occlusion_table(seeing_measures(1, nets=[("alexnet", None)], occlusion=1)).header[0]
        'network'
    """
    body = []
    for r in rows:
        o, f = r.occlusion, r.field
        if o is None:
            continue
        body.append([r.name, number(o.median_drop), f"{number(o.centred)} of {o.testable}", o.images,
                     f"{f.layer}: {f.field} px" if f else "", f"{number(f.box)} × {number(f.box_short)} px" if f else ""])
    return Table(["network", "median drop of p(true class)", "images with the worst tenth on the garment", "images",
                  "second stage's field", "median garment box"], body,
                 "Do the bundled nets use the garment? Occlusion (Fig. 7) and the second stage's field")


def bundled_table() -> Table:
    """How each shipped bundled net was trained, from the records beside the checkpoints.

    One row per checkpoint that ships (the three nets, then the variants):
    renormalisation on or off, epochs, the full test set's and the committed
    sample's accuracy, wall time, the machine, and the exact command.

    Example:
        >>> print(bundled_table())  # doctest: +SKIP
    """
    rows = []
    for variant in (None, *VARIANTS):
        for arch in BUNDLED_BUILDERS:
            if not (CHECKPOINT_DIR / f"{_stem(arch, variant)}.json").is_file():
                continue
            r = bundled_record(arch, variant)
            test, plain = r.get("test_accuracy"), r.get("plain_test_accuracy")
            rows.append([
                r.get("name", _stem(arch, variant)),
                "on" if r.get("renorm", True) else "off",
                r.get("epochs"),
                f"{100 * test:.2f} %" if test is not None else "not measured",
                f"{100 * plain:.2f} %" if plain is not None else "not measured",
                f"{100 * r['sample_accuracy']:.2f} %",
                f"{r['wall_time_s'] / 60:.0f} min",
                r.get("device", ""),
                r.get("command", ""),
            ])
    return Table(
        ["checkpoint", "renorm", "epochs", "composed test set (10,000)", "plain, on black (10,000)", "composed sample (1,500)",
         "training time", "trained on", "command"],
        rows,
        "the bundled nets, as recorded when they were trained",
    )


def _builders() -> dict[str, Callable[[], nn.Module]]:
    return {"AlexNet (torchvision)": models.alexnet, "ZFNet": models.zfnet, "VGG-16": models.vgg16,
            "AlexNet (Krizhevsky, 1 stream)": models.alexnet_original}


def _with_adaptive_pool(table: Summary, model: nn.Module) -> Summary:
    """``table`` with a row for the adaptive pooling between the last pool and ``fc6``.

    :func:`~vizlib.methods.architecture.summary` counts that pooling inside
    ``fc6`` (it is not a paper layer); at small inputs it changes the size
    (VGG-16: ``p5`` 2×2 → 7×7 → ``fc6`` 25088 inputs), so the explorer shows it
    as its own row, or the numbers would not follow from one row to the next.
    """
    pool = next((m for m in model.modules() if isinstance(m, nn.AdaptiveAvgPool2d)), None)
    fc = next((i for i, r in enumerate(table.rows) if r.name.startswith("fc")), None)
    if pool is None or not fc:
        return table
    before = table.rows[fc - 1].output_shape
    if len(before) != 3:
        return table
    size = pool.output_size if isinstance(pool.output_size, tuple) else (pool.output_size, pool.output_size)
    h, w = (before[1 + i] if s is None else int(s) for i, s in enumerate(size))
    row = LayerRow("(avgpool)", f"adaptive avg pool → {h}×{w} (from {before[1]}×{before[2]})",
                   (before[0], h, w), 0, 0)
    return Summary(table.rows[:fc] + [row] + table.rows[fc:], table.input_shape, table.arch)


def architecture_explorer(
    nets: dict[str, nn.Module] | None = None, sizes: tuple[int, int] = (32, 512), value: int = 224
) -> Explorer:
    """Pick a network and an input size; see its per-layer table.

    The table is :func:`~vizlib.methods.architecture.summary`'s, with the
    adaptive pooling before ``fc6`` as its own row. A size the network cannot
    take is refused in plain words with the smallest size it accepts; the
    size is kept when the network changes.

    Args:
        nets: label -> model (default: the papers' three nets and Krizhevsky's
            original AlexNet, untrained: the table needs no weights).
        sizes: range of the input-size slider.
        value: initial input size.

    Returns:
        An :class:`~vizlib.chapters.widgets.Explorer`; its first state is drawn at once.

    Example:
        >>> from vizlib.models import alexnet
        >>> box = architecture_explorer({"AlexNet": alexnet()}, value=128)
        >>> [(w.description, w.value) for w in box.controls]
        [('network', 'AlexNet'), ('input', 128)]
    """
    models = nets if nets is not None else {k: b() for k, b in _builders().items()}
    pick = W.Dropdown(options=list(models), description="network")
    size = W.IntSlider(value=value, min=sizes[0], max=sizes[1], step=1, description="input",
                       continuous_update=False)

    def content() -> None:
        model = models[pick.value]
        try:
            display(_with_adaptive_pool(summary(model, size.value), model))
        except InputTooSmall:
            display(Words(f"{pick.value} cannot take a {size.value}×{size.value} input: its maps would shrink to "
                          f"nothing. The smallest input it accepts is {min_input_size(model)}×{min_input_size(model)}."))

    return explorer([pick, size], content)


def architecture_static(nets: dict[str, nn.Module] | None = None, sizes: Sequence[int] = (224, 448)) -> StaticExplorer:
    """Kernel-free: each network at a few input sizes, from the smallest it accepts (:func:`plot_summary`).

    The explorer's table as a figure: every frame is the network's parameters and multiply-adds
    per layer at that input size, the adaptive pooling before ``fc6`` as its own (empty) layer,
    as in the explorer. The multiply-adds grow with the input; the parameters do not.

    Args:
        nets: label -> model (default: the explorer's networks).
        sizes: input sizes after the smallest each network accepts.

    Returns:
        A :class:`~vizlib.chapters.widgets.StaticExplorer`.

    Example:
        >>> from vizlib.models import alexnet
        >>> architecture_static({"AlexNet": alexnet()}, sizes=(224,)).labels
        ['AlexNet, 63×63 input (its smallest)', 'AlexNet, 224×224 input']
    """
    models = nets if nets is not None else {k: b() for k, b in _builders().items()}
    states = []
    for label, model in models.items():
        smallest = min_input_size(model)
        states += [(label, smallest)] + [(label, int(n)) for n in sizes if int(n) > smallest]
    labels = [f"{label}, {n}×{n} input" + (" (its smallest)" if n == min_input_size(models[label]) else "")
              for label, n in states]
    return static_explorer(states, lambda st: plot_summary(_with_adaptive_pool(summary(models[st[0]], st[1]),
                                                                               models[st[0]])),
                           labels=labels, name="network and input", dpi=90)


def plot_composed_examples(n: int = 8, seed: int = 0) -> Figure:
    """What the bundled nets learn from: composed images, the garment's exact mask outlined.

    The ``i``-th panel is the first image of class ``i % 10`` in the committed
    sample, composed with ``seed`` (:class:`vizlib.core.composed.ComposedImages`):
    titled with its class, its background and its object share.

    Args:
        n: how many images (four to a row).
        seed: the composition's seed.

    Returns:
        A matplotlib Figure, 8 inches (800 px at 100 dpi) wide.

    Example:
        >>> fig = plot_composed_examples(4)
        >>> len([ax for ax in fig.axes if ax.images])
        4
    """
    from ..core.args import whole_number
    from ..core.composed import ComposedImages
    from ..core.data import fashion_mnist_sample

    n = whole_number(n, "n", at_least=1, below=41)
    garments = fashion_mnist_sample()
    data = ComposedImages(garments, seed=seed)
    taken: dict[int, int] = {}
    picks = []
    for i in range(n):
        c = i % len(garments.classes)
        picks.append(int(np.flatnonzero(garments.labels == c)[taken.get(c, 0)]))
        taken[c] = taken.get(c, 0) + 1
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(8, 2.55 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, j in zip(axes.flat, picks):
        e = data.example(j)
        ax.imshow(e.image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.contour(e.mask, levels=[0.5], colors="#ff3b30", linewidths=1.2)
        ax.set_title(f"{e.category}\non {data.placement(j).background}, object {e.area:.0%}", fontsize=10)
    fig.suptitle(f"Composed bundled images (seed {data.seed}): garments at 28 px on {data.size} px crops; "
                 "red: the object mask", fontsize=10)
    fig.tight_layout()
    return fig
