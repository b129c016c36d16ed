"""Chapter 6, Comparing networks: Yu Figs. 5-6 (VGG-16 beside AlexNet) and Zeiler Fig. 6 /
Vashishth §6 (ZFNet beside AlexNet).

What the chapter shows and how: its networks (:func:`load_nets`,
:func:`load_renorm_pair`), its images (:func:`comparison_images`,
:func:`sparsity_data`, :func:`background_clutter`), its tables
(:func:`sparsity_table`, :func:`predictions_table`, :func:`energy_table`,
:func:`bands_table`, :func:`accuracy_table`), the accuracy that travels with
each net's weights (:func:`net_accuracy`), the papers' claims judged on this
run's numbers (``*_claims``), the figures (``plot_*``) and the explorer
(:func:`reconstruction_explorer`).

The computing is in the methods: :func:`vizlib.layer_sparsity`
(:mod:`vizlib.methods.sparsity`), the first-layer filter analysis
(:mod:`vizlib.methods.filters`) and the whole-layer reconstructions side by
side (:mod:`vizlib.methods.reconstruction`).
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ..core.composed import bundled_sample
from ..core.errors import CheckpointError, NoObjectRegion, WeightsUnavailable
from ..core.examples import ExampleImage, fashion_examples, photo_examples
from ..core.measures import OBJECT_LEVEL
from ..core.net import ARCH_NAMES, net_title
from ..core.tables import Table
from ..methods.deconvnet import normalize_projection
from ..methods.filters import FilterRMS, FilterSpectrum, first_layer_filters
from ..methods import filters
from .claims import differing_recipes, recipe_difference, training_recipe, unless_same_recipe as _unless
from ..methods.reconstruction import SideBySide, energy_by_stage, side_by_side, whole_layer
from ..methods.sparsity import Sparsity, is_pool
from ..models.nets import ARCHITECTURES
from .claims import VERDICTS, Claim, claims_table, number
from .legibility import PAGE_INCHES
from .paper_data import VASHISHTH_CALTECH101_ACCURACY
from .widgets import StaticExplorer, explorer, show_figure, static_explorer

__all__ = [
    # the methods this chapter calls that are not in vizlib's top level
    "filters",
    "side_by_side",
    "energy_by_stage",
    "whole_layer",
    # the chapter
    "NET_LABELS",
    "labels",
    "FASHION_ORDER",
    "PHOTO_ORDER",
    "CLUTTER_SHARE",
    "VASHISHTH_CALTECH101_ACCURACY",
    "load_nets",
    "load_renorm_pair",
    "comparison_images",
    "sparsity_data",
    "background_clutter",
    "sparsity_table",
    "predictions_table",
    "energy_table",
    "bands_table",
    "Accuracy",
    "net_accuracy",
    "training_recipe",
    "recipe_difference",
    "accuracy_table",
    "sparsity_claims",
    "background_claims",
    "frequency_claim",
    "dead_filter_claim",
    "aliasing_claim",
    "accuracy_claims",
    "renorm_claim",
    "claims_table",
    "verdict_counts",
    "plot_sparsity",
    "plot_side_by_side",
    "plot_stage",
    "plot_energy",
    "plot_filters",
    "plot_spectra",
    "plot_rms",
    "plot_layer_projections",
    "reconstruction_explorer",
    "reconstruction_static",
]

#: Display names of the architectures.
NET_LABELS: dict[str, str] = dict(ARCH_NAMES)


def labels(model_set: str) -> dict[str, str]:
    """What the chapter calls each network of ``model_set`` (:func:`vizlib.core.net.net_title`).

    Example:
        >>> labels("bundled")["alexnet"]
        'AlexNet-style (bundled)'
    """
    return {arch: net_title(arch, model_set) for arch in NET_LABELS}

#: The order of Fashion-MNIST classes the chapter shows (T-shirt, trouser, sneaker, bag, boot, ...).
FASHION_ORDER: tuple[int, ...] = (0, 1, 7, 8, 9, 5, 2, 3, 4, 6)

#: The order of the demo photos the chapter shows, the clearest objects first.
PHOTO_ORDER: tuple[str, ...] = ("coffee", "stereo_motorcycle", "camera", "astronaut", "rocket", "chelsea")

#: The images hold background clutter when at least this share of the pixels outside their objects
#: is brighter than :data:`vizlib.core.measures.OBJECT_LEVEL` (Fashion-MNIST garments on black: 0).
CLUTTER_SHARE = 0.05


# --------------------------------------------------------------------------- networks and images


def load_nets(
    archs: Sequence[str] = ARCHITECTURES, model_set: str | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Load several networks from one model set, keeping going when one cannot be had.

    Args:
        archs: architecture keys (``"alexnet"``, ``"zfnet"``, ``"vgg16"``).
        model_set: the set (default: the reader's, ``VIZLIB_MODEL_SET``).

    Returns:
        ``(nets, missing)``: arch -> :class:`~vizlib.Net` for those loaded,
        arch -> the reason for each one that could not be (ZFNet's ImageNet
        weights, say, when ``pytorchcv`` is not installed).

    Example:
        >>> nets, missing = load_nets(("alexnet",), "random")
        >>> list(nets), missing
        (['alexnet'], {})
    """
    from ..models.model_sets import load

    nets: dict[str, Any] = {}
    missing: dict[str, str] = {}
    for arch in archs:
        try:
            nets[arch] = load(arch, model_set)
        except WeightsUnavailable as exc:
            missing[arch] = str(exc)
    return nets, missing


def load_renorm_pair(arch: str = "alexnet") -> tuple[dict[str, Any], str]:
    """The bundled net trained with Zeiler's filter renormalisation and the one trained without.

    Returns:
        ``({"with": Net, "without": Net}, "")`` when both checkpoints ship, else
        ``({}, reason)``. Both come from the bundled set whatever the reader's
        set is: only it holds a net trained without renormalisation.

    Example:
        >>> pair, why = load_renorm_pair()                       # doctest: +SKIP
        >>> sorted(pair), why                                    # doctest: +SKIP
        (['with', 'without'], '')
    """
    from ..models.bundled import bundled_checkpoint_available, load_bundled

    if not (bundled_checkpoint_available(arch) and bundled_checkpoint_available(arch, "norenorm")):
        return {}, (f"the bundled {arch} checkpoints with and without renormalisation do not both ship "
                    "with this copy (vizlib/checkpoints)")
    try:
        return {"with": load_bundled(arch), "without": load_bundled(arch, variant="norenorm")}, ""
    except CheckpointError as exc:
        return {}, str(exc)


def comparison_images(model_set: str, n: int = 4) -> list[ExampleImage]:
    """The chapter's pictures for a model set, each with its object region: Fashion-MNIST test
    images for the Bundled set (one of each class in :data:`FASHION_ORDER`, the garment as the
    object), the demo photos otherwise (in :data:`PHOTO_ORDER`, with the shipped object boxes).

    Example:
        >>> [e.name for e in comparison_images("random", 2)]
        ['coffee', 'stereo_motorcycle']
    """
    if model_set == "bundled":
        return fashion_examples(n, classes=FASHION_ORDER)
    return photo_examples(PHOTO_ORDER, n=n)


def sparsity_data(model_set: str, n: int) -> Any:
    """What sparsity is counted over: the composed test sample (first ``n``) for the
    Bundled set, the demo photos (first ``n`` of :data:`PHOTO_ORDER`) otherwise.

    Example:
        >>> len(sparsity_data("bundled", 10))
        10
    """
    if model_set == "bundled":
        s = bundled_sample()
        return s.subset(slice(0, min(n, len(s))))
    return [e.image for e in photo_examples(PHOTO_ORDER, n=n)]


def background_clutter(images: Sequence[ExampleImage], level: int = OBJECT_LEVEL) -> float:
    """The share of the pixels outside the images' objects that are brighter than ``level``.

    0 for plain Fashion-MNIST (its garments sit on black: everything outside
    the silhouette is at most ``level``), most of the background for a photo
    or a composed image.
    Below :data:`CLUTTER_SHARE` the images hold no background clutter, and a
    claim about removing it cannot be tested on them.

    Raises:
        NoObjectRegion: an image has no object region.

    Example:
        >>> background_clutter(comparison_images("bundled", 2)) > 0.5
        True
    """
    outside = bright = 0
    for e in images:
        if e.mask is None:
            raise NoObjectRegion(f"image {e.name!r} has no object region, so its background is unknown")
        grey = np.asarray(e.image, dtype=float)
        grey = grey.max(axis=-1) if grey.ndim == 3 else grey
        back = grey[~e.mask]
        outside += back.size
        bright += int((back > level).sum())
    return bright / outside if outside else 0.0


# --------------------------------------------------------------------------- tables


def sparsity_table(results: Sequence[Sparsity]) -> Table:
    """Every counted layer of every network: zeros, activations, share (Yu Fig. 5's numbers).

    Example:
        >>> import vizlib as vl                                                    # doctest: +SKIP
        >>> net = vl.load("alexnet", "bundled")                                   # doctest: +SKIP
        >>> sparsity_table([vl.layer_sparsity(net, sparsity_data("bundled", 50))])  # doctest: +SKIP
    """
    rows: list[list[Any]] = []
    for r in results:
        rows += r.table().rows
    return Table(["network", "layer", "kind", "zero activations", "activations", "share zero"], rows,
                 "Exactly-zero activations per layer (Yu Fig. 5)")


def energy_table(results: Sequence[SideBySide]) -> Table:
    """Share of reconstruction energy inside the object: one row per picture and network, one column per stage.

    Example:
        >>> energy_table(results)          # results: side_by_side(...) per image  # doctest: +SKIP
    """
    stages = max(r.stages for r in results)
    rows = []
    for r in results:
        for v in r.views:
            if v.mask is None:
                raise NoObjectRegion(f"image {r.image!r} has no object region; give its mask or leave it out")
            cells = [f"{v.energy[layer]:.3f} ({layer})" for layer in v.layers]
            rows.append([r.image, v.name, round(v.area or 0.0, 3), *cells, *[""] * (stages - len(cells))])
    return Table(["image", "network", "object area", *[f"stage {i + 1}" for i in range(stages)]], rows,
                 "Share of reconstruction energy inside the object, per stage")


def predictions_table(results: Sequence[SideBySide]) -> Table:
    """Each network's top predictions for each picture (Yu Fig. 6's right-hand column).

    Example:
        >>> predictions_table(results)     # results: side_by_side(...) per image  # doctest: +SKIP
    """
    rows = [[r.image, v.name, "; ".join(f"{c} {p:.1%}" for c, p in v.predictions)] for r in results for v in r.views]
    return Table(["image", "network", "top predictions (probability)"], rows, "Top predictions")


def bands_table(spectra: Mapping[str, FilterSpectrum]) -> Table:
    """The share of first-layer spectral energy in the low, mid and high bands, per filter bank.

    Example:
        >>> from vizlib import filter_spectrum
        >>> bands_table({"one pixel": filter_spectrum(torch.ones(1, 1, 1, 1))}).rows
        [['one pixel', 0.087, 0.263, 0.65]]
    """
    return Table(["filters", "low", "mid", "high"], [[k, *(round(v, 3) for v in s.bands.values())]
                                                      for k, s in spectra.items()],
                 "share of first-layer spectral energy per band")


# --------------------------------------------------------------------------- accuracy


@dataclass
class Accuracy:
    """A net's accuracy as recorded with its weights and as measured now.

    Attributes:
        recorded: the figure that travels with the weights (bundled: the full
            Fashion-MNIST test set; ImageNet: torchvision's top-1), or ``None``.
        recorded_on: what it was measured on.
        live: accuracy measured now on ``live_on``, or ``None``.
        live_on: the data of the live measurement.
        recipe: how the weights were trained, in words, from their training
            record (:func:`training_recipe`); empty when no record travels with them.

    Example:
        >>> import vizlib as vl
        >>> acc = net_accuracy(vl.load("alexnet", "bundled"))
        >>> acc.recorded, acc.recorded_on
        (0.8944, '10000 Fashion-MNIST test images (recorded at training)')
    """

    recorded: float | None
    recorded_on: str
    live: float | None
    live_on: str
    recipe: str = ""


def net_accuracy(net: Any, data: Any = None) -> Accuracy:
    """The recorded test accuracy of a net and, given labelled data of its classes, a live measurement.

    Args:
        net: a :class:`~vizlib.Net`.
        data: an :class:`~vizlib.ImageSet` whose classes are the net's (the
            composed sample for the bundled nets), or ``None``.

    Example:
        >>> import vizlib as vl
        >>> net_accuracy(vl.load("alexnet", "random")).recorded is None
        True
    """
    extra = getattr(net, "extra", {}) or {}
    record = extra.get("record") or {}
    recorded, recorded_on = None, "no accuracy travels with these weights"
    if record.get("test_accuracy") is not None:
        recorded = float(record["test_accuracy"])
        kind = "composed " if "composed" in str(record.get("test_source", "")) else ""
        recorded_on = f"{record.get('test_images', 'the')} {kind}Fashion-MNIST test images (recorded at training)"
    elif extra.get("acc@1") is not None:
        recorded = float(extra["acc@1"]) / 100
        recorded_on = "ImageNet validation, top-1 (torchvision's metadata)"
    live, live_on = None, "no labelled data of this net's classes"
    transform = getattr(net, "transform", None)
    if data is not None and hasattr(transform, "batch") and list(getattr(data, "classes", [])) == list(net.categories):
        from ..models.training import evaluate

        ev = evaluate(net.model, data, transform)
        live, live_on = ev.accuracy, f"{ev.total} images: {data.source}"
    return Accuracy(recorded, recorded_on, live, live_on, training_recipe(record))



def accuracy_table(acc: Mapping[str, Accuracy], names: Mapping[str, str] = NET_LABELS) -> Table:
    """Recorded and live accuracy per network (arch -> :class:`Accuracy`), named by ``names`` (:func:`labels`).

    Example:
        >>> len(accuracy_table({"alexnet": Accuracy(0.89, "10000 test images", None, "")}))
        1
    """
    return Table(["network", "recorded", "recorded on", "measured now", "measured on", "trained"],
                 [[names.get(a, a), x.recorded, x.recorded_on, x.live, x.live_on, x.recipe or "—"]
                  for a, x in acc.items()],
                 "Accuracy: as recorded with the weights, and measured now")


# --------------------------------------------------------------------------- claims


def _measured(values: Mapping[str, float | None], needs: Sequence[str] | None = None,
              why: str = "") -> tuple[str, dict[str, float] | None]:
    """The numbers as a claim prints them (``"a=0.6061, b=0.9232"``) and, read back from that
    text, the values its rule compares: ``None`` when a number the rule needs is missing (then
    the text says which, and ``why``)."""
    printed = {k: number(v, 4) for k, v in values.items()}
    text = ", ".join(f"{k}={t}" for k, t in printed.items())
    lacking = [k for k in (needs or list(values)) if printed[k] == "—"]
    if lacking:
        return text + f" (not measured: {', '.join(lacking)}{'; ' + why if why else ''})", None
    return text, {k: float(t) for k, t in printed.items() if t != "—"}


def sparsity_claims(sp: Mapping[str, Sparsity]) -> list[Claim]:
    """Yu's three readings of Fig. 5 (arch -> :class:`~vizlib.methods.sparsity.Sparsity`).

    Sparsity grows from the first convolution to the last; every pooling
    layer's share is below the layer feeding it; the high layers (after the
    last-but-one pooling layer) of VGG-16 are sparser than AlexNet's.

    Example:
        >>> import vizlib as vl                                                    # doctest: +SKIP
        >>> data = sparsity_data("bundled", 50)
        >>> sp = {a: vl.layer_sparsity(vl.load(a, "bundled"), data) for a in ("alexnet", "vgg16")}  # doctest: +SKIP
        >>> [c.verdict for c in sparsity_claims(sp)]                             # doctest: +SKIP
    """
    src = "Yu §5, Fig. 5"
    out = []
    for s in sp.values():
        text, v = _measured({"first_conv": s.share[s.convs[0]], "last_conv": s.share[s.convs[-1]]})
        out.append(Claim.judge(src, f"{s.name}: sparsity grows from low to high layers", text,
                               None if v is None else v["last_conv"] > v["first_conv"]))
        drops = s.pool_drops()
        text, v = _measured({"pools": len(drops), "pools_lower": sum(after < before for _, _, before, after in drops)})
        out.append(Claim.judge(src, f"{s.name}: max pooling lowers sparsity", text,
                               None if v is None else v["pools_lower"] == v["pools"]))
    high = {a: sp[a].mean_share(sp[a].high_layers) if a in sp else None for a in ("vgg16", "alexnet")}
    text, v = _measured(high)
    out.append(Claim.judge(src, "the high layers of VGG-16 are sparser than AlexNet's", text,
                           None if v is None else v["vgg16"] > v["alexnet"]))
    return out


def background_claims(energy: Mapping[str, Mapping[str, Any]], clutter: float,
                      names: Mapping[str, str] = NET_LABELS) -> list[Claim]:
    """Yu's background claims, from the energy on the object per stage
    (:func:`vizlib.methods.reconstruction.energy_by_stage`, keyed by network label) and the images'
    :func:`background_clutter`; ``names`` maps each arch to its key in ``energy`` (:func:`labels`).

    * Yu §5: VGG-16's last stage keeps more energy on the object than AlexNet's;
    * Yu §4.2, per network: unrelated information is removed from low to high
      layers: the last stage's share on the object exceeds the first stage's
      *and* the object's share of the area (what an even spread would give).

    Both are about background clutter: on images without it (``clutter`` below
    :data:`CLUTTER_SHARE`) they read *not testable here*, whatever the shares.

    Example:
        >>> e = {"VGG-16": {"inside": [0.1, 0.4], "area": 0.45}, "AlexNet": {"inside": [0.3, 0.6], "area": 0.45}}
        >>> [c.verdict for c in background_claims(e, clutter=0.7)]
        ['not supported here', 'not supported here', 'supported']
        >>> [c.verdict for c in background_claims(e, clutter=0.0)][0]
        'not testable here'
    """
    note = f"; testable from clutter={CLUTTER_SHARE}"  # clutter: background pixels brighter than OBJECT_LEVEL
    out = []
    last = {a: energy[names[a]]["inside"][-1] if names[a] in energy else None for a in ("vgg16", "alexnet")}
    text, v = _measured({**last, "clutter": clutter})
    holds = None if v is None or v["clutter"] < CLUTTER_SHARE else v["vgg16"] > v["alexnet"]
    out.append(Claim.judge("Yu §5, Fig. 6", "VGG-16's last conv layer keeps more energy on the object than AlexNet's",
                           text + note, holds))
    for label, e in energy.items():
        text, v = _measured({"first_stage": e["inside"][0], "last_stage": e["inside"][-1], "area": e["area"],
                             "clutter": clutter})
        holds = (None if v is None or v["clutter"] < CLUTTER_SHARE
                 else v["last_stage"] > v["first_stage"] and v["last_stage"] > v["area"])
        out.append(Claim.judge("Yu §4.2", f"{label}: unrelated information is removed from low to high layers",
                               text + note, holds))
    return out


def frequency_claim(spectra: Mapping[str, FilterSpectrum], differently: str = "") -> Claim:
    """Zeiler §4.1: AlexNet's first layer covers the mid frequencies less than ZFNet's (arch -> spectrum).

    Example:
        >>> frequency_claim({}).verdict
        'not testable here'
    """
    text, v = _unless(*_measured({a: spectra[a].bands["mid"] if a in spectra else None for a in ("zfnet", "alexnet")}),
                      differently)
    return Claim.judge("Zeiler §4.1", "AlexNet's first layer covers the mid frequencies less than ZFNet's", text,
                       None if v is None else v["zfnet"] > v["alexnet"])


def dead_filter_claim(dead: Mapping[str, Any], differently: str = "") -> Claim:
    """Zeiler Fig. 6 (b, c): ZFNet has a smaller share of dead first-layer filters (arch -> DeadFilters).

    Example:
        >>> dead_filter_claim({}).verdict
        'not testable here'
    """
    text, v = _unless(*_measured({a: dead[a].share if a in dead else None for a in ("zfnet", "alexnet")}), differently)
    return Claim.judge("Zeiler Fig. 6 (b, c)", "ZFNet has fewer dead first-layer features than AlexNet", text,
                       None if v is None else v["zfnet"] < v["alexnet"])


def aliasing_claim(grid: Mapping[str, float | None], differently: str = "") -> Claim:
    """Zeiler §4.1, Fig. 6 (d, e): AlexNet's c2 projections show a stronger stride grid (arch -> grid contrast).

    Example:
        >>> aliasing_claim({"alexnet": 0.32, "zfnet": 0.23}).verdict
        'supported'
        >>> aliasing_claim({"alexnet": 0.32, "zfnet": 0.23}, "trained differently: ...").verdict
        'not testable here'
    """
    text, v = _unless(*_measured({a: grid.get(a) for a in ("alexnet", "zfnet")}), differently)
    return Claim.judge("Zeiler §4.1, Fig. 6 (d, e)",
                       "AlexNet's layer-2 projections show a stride grid; ZFNet's less so", text,
                       None if v is None else v["alexnet"] > v["zfnet"])


def accuracy_claims(acc: Mapping[str, Accuracy]) -> list[Claim]:
    """Zeiler §5.1 / Vashishth §6.2 (ZFNet beats AlexNet) and Yu §6 (VGG-16 beats AlexNet), on the
    recorded accuracies (the live sample figures are printed beside them).

    Example:
        >>> acc = {"zfnet": Accuracy(0.91, "", None, ""), "alexnet": Accuracy(0.89, "", None, ""),
        ...        "vgg16": Accuracy(0.90, "", None, "")}
        >>> [c.verdict for c in accuracy_claims(acc)]
        ['supported', 'supported']
        >>> acc["zfnet"] = Accuracy(0.91, "", None, "", "10 epochs")
        >>> acc["alexnet"] = Accuracy(0.89, "", None, "", "20 epochs")
        >>> accuracy_claims(acc)[0].verdict                      # two recipes: not a test of the design
        'not testable here'
    """
    rec = {a: acc[a].recorded if a in acc else None for a in ("zfnet", "alexnet", "vgg16")}
    live = {f"{a}_sample": acc[a].live if a in acc else None for a in ("zfnet", "alexnet")}
    why = next((x.recorded_on for x in acc.values() if x.recorded is None), "")
    text, v = _measured({"zfnet": rec["zfnet"], "alexnet": rec["alexnet"], **live}, ("zfnet", "alexnet"), why)
    recipes = {a: acc[a].recipe for a in ("zfnet", "alexnet") if a in acc and acc[a].recipe}
    text, v = _unless(text, v, differing_recipes(recipes))
    zf = Claim.judge("Zeiler §5.1; Vashishth §6.2", "ZFNet is more accurate than AlexNet trained the same way", text,
                     None if v is None else v["zfnet"] > v["alexnet"])
    text, v = _measured({"vgg16": rec["vgg16"], "alexnet": rec["alexnet"]}, why=why)
    vgg = Claim.judge("Yu §6", "the deeper VGG-16 predicts better than AlexNet", text,
                      None if v is None else v["vgg16"] > v["alexnet"])
    return [zf, vgg]


def renorm_claim(rms: Mapping[str, FilterRMS], why_not: str = "") -> Claim:
    """Zeiler §3, Fig. 6(a): without renormalisation one first-layer filter dominates ("with"/"without" -> RMS).

    Example:
        >>> renorm_claim({}, "no checkpoints").measured
        'without_renorm=—, with_renorm=— (not measured: without_renorm, with_renorm; no checkpoints)'
    """
    text, v = _measured({f"{k}_renorm": rms[k].dominance if k in rms else None for k in ("without", "with")},
                        why=why_not)
    return Claim.judge("Zeiler §3, Fig. 6(a)", "without renormalisation one first-layer filter dominates", text,
                       None if v is None else v["without_renorm"] > v["with_renorm"])


def verdict_counts(claims: Sequence[Claim]) -> dict[str, int]:
    """How many claims got each verdict.

    Example:
        >>> verdict_counts([Claim.judge("s", "c", "1 > 0", True)])
        {'supported': 1, 'not supported here': 0, 'not testable here': 0}
    """
    return {v: sum(c.verdict == v for c in claims) for v in VERDICTS}


# --------------------------------------------------------------------------- figures


def plot_sparsity(results: Sequence[Sparsity]) -> Figure:
    """Yu Fig. 5: share of zero activations per layer, one panel per network, one above the other.

    Example:
        >>> from vizlib.models import alexnet_fmnist
        >>> from vizlib import layer_sparsity
        >>> fig = plot_sparsity([layer_sparsity(alexnet_fmnist(seed=0), torch.randn(2, 1, 64, 64), progress=False)])
    """
    results = list(results)
    # one network a row, the page's width each: VGG-16's eighteen layer names stay legible
    fig, axes = plt.subplots(len(results), 1, figsize=(PAGE_INCHES, 2.5 * len(results)), squeeze=False)
    axes = axes.T
    for ax, r in zip(axes[0], results):
        s = r.share
        colours = ["tab:orange" if is_pool(layer) else "tab:blue" for layer in r.layers]
        ax.bar(range(len(r.layers)), [s[layer] for layer in r.layers], color=colours)
        ax.set_xticks(range(len(r.layers)), r.layers, rotation=90, fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_title(f"{r.name} ({r.images} images)", fontsize=10)
        ax.set_ylabel("share of zeros", fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[0][-1].legend(handles=[Patch(color="tab:blue", label="convolution (rectified)"),
                                Patch(color="tab:orange", label="max pooling")], fontsize=8, ncol=2,
                                loc="upper center", bbox_to_anchor=(0.5, -0.3), frameon=False)
    fig.tight_layout()
    return fig


def _show(ax: Any, img: np.ndarray) -> None:
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])


def _outlined(ax: Any, view: Any) -> None:
    _show(ax, view.input)
    if view.mask is not None:
        ax.contour(view.mask.numpy().astype(float), levels=[0.5], colors="red", linewidths=0.8)


def plot_side_by_side(result: SideBySide) -> Figure:
    """Yu Fig. 6: per network, the input (its top three predictions under it) and its whole-layer reconstructions.

    The object region, when known, is outlined in red on the input; each
    reconstruction's title gives the share of its energy inside the object.

    Example:
        >>> from vizlib.methods.reconstruction import side_by_side
        >>> nets = {"AlexNet": vizlib.load("alexnet", "bundled")}                    # doctest: +SKIP
        >>> fig = plot_side_by_side(side_by_side(nets, comparison_images("bundled", 1)[0]))  # doctest: +SKIP
    """
    # one column per stage and the input, the top predictions under the input: the figure fits the
    # page's column with its text at 9 px or more (the full top-5 is predictions_table's)
    cols = 1 + result.stages
    fig, axes = plt.subplots(len(result.views), cols, figsize=(7.4, 2.15 * len(result.views)), squeeze=False)
    for row, v in zip(axes, result.views):
        _outlined(row[0], v)
        row[0].set_ylabel(v.name.replace(" (", "\n("), fontsize=9)
        row[0].set_title(f"input {v.input.shape[0]}×{v.input.shape[1]}", fontsize=9)
        row[0].set_xlabel("\n".join(f"{p:.1%} {c[:14]}" for c, p in v.predictions[:3]), fontsize=8, loc="left")
        for j in range(result.stages):
            ax = row[1 + j]
            if j >= len(v.layers):
                ax.axis("off")
                continue
            layer = v.layers[j]
            _show(ax, v.display(layer))
            extra = f"\n{v.energy[layer]:.0%} inside" if layer in v.energy and not math.isnan(v.energy[layer]) else ""
            ax.set_title(f"{layer}{' (empty)' if v.empty[layer] else ''}{extra}", fontsize=9)
    fig.suptitle(result.image, fontsize=10)
    fig.tight_layout()
    return fig


def plot_stage(result: SideBySide, stage: int) -> Figure:
    """One stage of a side-by-side comparison, large: each network's input (object outlined) and reconstruction.

    Example:
        >>> fig = plot_stage(side_by_side(nets, comparison_images("bundled", 1)[0]), 5)  # doctest: +SKIP
    """
    n = len(result.views)
    fig, axes = plt.subplots(2, n, figsize=(3.2 * n, 6.4), squeeze=False)
    for j, v in enumerate(result.views):
        _outlined(axes[0][j], v)
        top = v.predictions[0] if v.predictions else ("?", float("nan"))
        axes[0][j].set_title(f"{v.name}: {top[0][:24]} ({top[1]:.1%})", fontsize=9)
        k = min(stage, len(v.layers)) - 1
        layer = v.layers[k]
        _show(axes[1][j], v.display(layer))
        share = v.energy.get(layer)
        inside = (f", {share:.0%} of energy inside (object area {v.area:.0%})"
                  if share is not None and not math.isnan(share) else "")
        axes[1][j].set_title(f"stage {k + 1}: {layer}{inside}", fontsize=8)
    fig.suptitle(result.image, fontsize=10)
    fig.tight_layout()
    return fig


def plot_energy(summary: Mapping[str, Mapping[str, Any]]) -> Figure:
    """Share of reconstruction energy inside the object per stage (solid), against the object's area (dashed).

    Example:
        >>> fig = plot_energy({"AlexNet": {"layers": ["c1", "c5"], "inside": [0.3, 0.6], "area": 0.45}})
    """
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for i, (label, s) in enumerate(summary.items()):
        colour = f"C{i}"
        x = np.arange(1, len(s["inside"]) + 1)
        ax.plot(x, s["inside"], "o-", color=colour, label=f"{label} ({', '.join(s['layers'])})")
        ax.axhline(s["area"], color=colour, ls="--", lw=1)
    ax.set_xlabel("stage (depth)")
    ax.set_ylabel("energy inside the object")
    ax.set_ylim(0, 1)
    ax.set_xticks(np.arange(1, max(len(s["inside"]) for s in summary.values()) + 1))
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _montage(w: torch.Tensor, scale: str) -> np.ndarray:
    w = w.detach().double().cpu()
    f, c, kh, kw = w.shape
    if c not in (1, 3):
        w = w.mean(1, keepdim=True)
        c = 1
    if scale == "each":
        lo = w.amin(dim=(1, 2, 3), keepdim=True)
        hi = w.amax(dim=(1, 2, 3), keepdim=True)
        w = (w - lo) / (hi - lo).clamp_min(1e-12)
    elif scale == "common":
        w = w / (2 * w.abs().max().clamp_min(1e-12)) + 0.5
    else:
        raise ValueError(f"scale must be 'each' or 'common', not {scale!r}")
    cols = math.ceil(math.sqrt(f))
    rows = math.ceil(f / cols)
    out = np.ones((rows * (kh + 1) + 1, cols * (kw + 1) + 1, c))
    for i in range(f):
        r, q = divmod(i, cols)
        out[1 + r * (kh + 1): 1 + r * (kh + 1) + kh, 1 + q * (kw + 1): 1 + q * (kw + 1) + kw] = \
            w[i].permute(1, 2, 0).numpy()
    return out[..., 0] if c == 1 else out


def plot_filters(filters: Mapping[str, Any], *, scale: str = "each") -> Figure:
    """First-layer filters of several nets side by side (Zeiler Fig. 6 b, c).

    Args:
        filters: label -> a net, a model or weights ``(F, C, k, k)``.
        scale: ``"each"``: every filter stretched to its own range (shows
            structure); ``"common"``: one scale for the whole bank, zero grey
            (shows which filters dominate, Zeiler Fig. 6a).

    Example:
        >>> from vizlib.models import zfnet
        >>> fig = plot_filters({"ZFNet": zfnet(seed=0)})
    """
    fig, axes = plt.subplots(1, len(filters), figsize=(4.2 * len(filters), 4.4), squeeze=False)
    for ax, (label, f) in zip(axes[0], filters.items()):
        w = first_layer_filters(f)
        _show(ax, _montage(w, scale))
        ax.set_title(f"{label}: {w.shape[0]} filters {w.shape[-2]}×{w.shape[-1]}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_spectra(spectra: Mapping[str, FilterSpectrum]) -> Figure:
    """Radially averaged power spectra of first-layer filters, with the low / mid / high bands shaded.

    Example:
        >>> from vizlib.models import zfnet
        >>> from vizlib import filter_spectrum
        >>> fig = plot_spectra({"ZFNet": filter_spectrum(zfnet(seed=0))})
    """
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    first = next(iter(spectra.values()))
    lo, hi = first.edges
    ax.axvspan(0, lo, color="0.93")
    ax.axvspan(hi, 0.5, color="0.93")
    for i, (label, s) in enumerate(spectra.items()):
        b = s.bands
        ax.plot(s.freqs, s.profile, "-", color=f"C{i}",
                label=f"{label}: low {b['low']:.0%}, mid {b['mid']:.0%}, high {b['high']:.0%}")
    ax.set_xlim(0, 0.5)
    ax.set_xlabel("frequency (cycles per input pixel)")
    ax.set_ylabel("power relative to a flat spectrum")
    ax.set_title("first-layer filters: radially averaged power spectrum", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_rms(rms: Mapping[str, FilterRMS]) -> Figure:
    """Filter RMS per first-layer filter, sorted, one panel per net; the median dashed.

    Example:
        >>> from vizlib.models import zfnet
        >>> from vizlib.methods.filters import rms_dominance
        >>> fig = plot_rms({"ZFNet": rms_dominance(zfnet(seed=0))})
    """
    fig, axes = plt.subplots(1, len(rms), figsize=(4.6 * len(rms), 3.2), squeeze=False, sharey=True)
    for ax, (label, r) in zip(axes[0], rms.items()):
        vals = r.rms.sort(descending=True).values.numpy()
        ax.bar(range(len(vals)), vals, color="tab:blue")
        ax.axhline(r.median, color="k", ls="--", lw=1)
        ax.set_title(f"{label}: largest / median = {r.dominance:.2f}", fontsize=9)
        ax.set_xlabel("filter (sorted)")
    axes[0][0].set_ylabel("filter RMS")
    fig.tight_layout()
    return fig


def plot_layer_projections(projections: Mapping[str, torch.Tensor], titles: Sequence[str] | None = None) -> Figure:
    """Rows of projections, one row per net (e.g. layer-2 reconstructions of AlexNet and ZFNet).

    Example:
        >>> fig = plot_layer_projections({"AlexNet": torch.rand(2, 1, 16, 16)}, ["a", "b"])
    """
    n = max(len(p) for p in projections.values())
    fig, axes = plt.subplots(len(projections), n, figsize=(2.3 * n, 2.4 * len(projections)), squeeze=False)
    for i, (row, (label, p)) in enumerate(zip(axes, projections.items())):
        for j in range(n):
            if j >= len(p):
                row[j].axis("off")
                continue
            _show(row[j], normalize_projection(p[j]))
            if i == 0 and titles is not None and j < len(titles):  # the columns are the same images
                row[j].set_title(textwrap.fill(titles[j], 24), fontsize=8)
        row[0].set_ylabel(label, fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- explorer


def reconstruction_explorer(results: Sequence[SideBySide], stage: int | None = None) -> Any:
    """Pick an image and a stage; see each network's reconstruction side by side (calls :func:`plot_stage`).

    The stage is kept when the image changes.

    Args:
        results: :func:`vizlib.methods.reconstruction.side_by_side` results, one per image.
        stage: the stage shown first (default: the last).

    Returns:
        An :class:`~vizlib.chapters.widgets.Explorer`; its first state is drawn at once.

    Example:
        >>> reconstruction_explorer([side_by_side(nets, e) for e in comparison_images("bundled", 2)])  # doctest: +SKIP
    """
    import ipywidgets as W

    results = list(results)
    stages = max(r.stages for r in results)
    pick = W.Dropdown(options=[(r.image, i) for i, r in enumerate(results)], value=0, description="image")
    depth = W.Dropdown(options=[(f"stage {s}: " + " | ".join(v.layers[min(s, len(v.layers)) - 1]
                                                             for v in results[0].views), s)
                                for s in range(1, stages + 1)], value=stage or stages, description="layer")
    return explorer([pick, depth], lambda: show_figure(plot_stage(results[pick.value], depth.value)))


def reconstruction_static(results: Sequence[SideBySide]) -> StaticExplorer:
    """Kernel-free: the first image's reconstructions stage by stage, then every other image at the last stage.

    Every frame is :func:`plot_stage`, the explorer's figure: each network's input with its
    top prediction above its whole-layer reconstruction at that stage.

    Args:
        results: :func:`vizlib.methods.reconstruction.side_by_side` results, one per image.

    Returns:
        A :class:`~vizlib.chapters.widgets.StaticExplorer`.

    Example:
        >>> reconstruction_static([side_by_side(nets, e) for e in comparison_images("bundled", 2)])  # doctest: +SKIP
    """
    results = list(results)
    if not results:
        raise ValueError("reconstruction_static needs at least one side_by_side result")
    last = max(r.stages for r in results)
    states = [(0, s) for s in range(1, results[0].stages + 1)] + [(i, last) for i in range(1, len(results))]
    labels = [f"{results[i].image}, stage {s}" for i, s in states]
    return static_explorer(states, lambda st: plot_stage(results[st[0]], st[1]), labels=labels,
                           name="image and stage", dpi=90, frame_format="jpeg")
