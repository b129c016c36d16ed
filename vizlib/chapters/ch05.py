"""Chapter 5: occlusion (Zeiler & Fergus 2014, §4.2 and Fig. 7 (b)-(e)) and correspondence
analysis (§4.3, Table 1): the chapter's images, readings, tables, claims, figures and explorer.

The methods are :class:`vizlib.Occlusion` (:mod:`vizlib.methods.occlusion`) and
:func:`vizlib.correspondence` (:mod:`vizlib.methods.correspondence`); this module shows
what they compute. The chapter's images are :class:`~vizlib.core.examples.ExampleImage`
records, each with its one object region (``ex.object_mask(net)``).

Example::

    import vizlib as vl
    from vizlib.chapters import ch05 as ch
    net = vl.load("alexnet")
    examples = vl.example_images(net, 3)
    maps = vl.Occlusion(net).sweep_many([ex.tensor(net) for ex in examples], targets=[ex.label for ex in examples])
    fig = ch.plot_occlusion(maps)
    readings = [ch.occlusion_readings(m, ex.object_mask(net), name=ex.name) for ex, m in zip(examples, maps)]
    ch.claims_table(ch.occlusion_claims(readings))
"""

from __future__ import annotations

import copy
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from ..core.examples import ExampleDataset, ExampleImage, example_dataset
from ..core.hooks import preserved
from ..core.images import to_display
from ..core.measures import box_mask, energy_inside
from ..core.tables import Table
from ..methods.correspondence import (
    PARTS_PATH,
    Correspondence,
    PartSet,
    PreparedParts,
    load_annotations,
    part_set,
    square_box,
    untrained_like,
)
from ..methods.deconvnet import normalize_projection
from ..methods.occlusion import Occlusion, OcclusionMaps, _default_size
from .claims import Claim, claims_table
from .widgets import Explorer, StaticExplorer, show_figure, spread, static_explorer

__all__ = [
    "title",
    "other_images",
    "chapter_parts",
    "untrained_like",
    "OcclusionReadings",
    "occlusion_readings",
    "worst_count",
    "readings_table",
    "occlusion_claims",
    "correspondence_claims",
    "claims_table",
    "plot_occlusion",
    "plot_parts",
    "plot_position",
    "occlusion_static",
    "ZEILER_TABLE1",
    "table1",
    "annotation_format",
    "occlusion_explorer",
]

#: NOT the paper's numbers as checked: Zeiler & Fergus (2014), Table 1 (mean feature sign change,
#: mean ± std, when masking parts of 5 dog faces and random parts of the object, at layers 5 and
#: 7) typed from memory of the published paper. The plain text of the paper this book works from
#: (``papers/002_*``) does not hold the table, so these values are UNVERIFIED: check them against
#: the PDF before quoting. The chapter prints none of them; :func:`table1` marks them so.
ZEILER_TABLE1: dict[str, dict[str, tuple[float, float]]] = {
    "layer 5": {"right eye": (0.067, 0.007), "left eye": (0.069, 0.007), "nose": (0.079, 0.017),
                "random": (0.107, 0.017)},
    "layer 7": {"right eye": (0.069, 0.015), "left eye": (0.068, 0.013), "nose": (0.069, 0.011),
                "random": (0.073, 0.014)},
}

FIG7 = "Zeiler & Fergus §4.2, Fig. 7"
FIG7_CAPTION = "Zeiler & Fergus, Fig. 7 caption"
TABLE1 = "Zeiler & Fergus §4.3, Table 1"
#: The layer-7 reading is not in the paper's text this book checks (only in its Table 1, as recalled).
TABLE1_UNCHECKED = "Zeiler & Fergus Table 1 (not in the text checked here)"


# --------------------------------------------------------------------------- the chapter's images


def title(example: ExampleImage) -> str:
    """An image's title: its name and class, or its name alone when that already says the class.

    Example:
        >>> from vizlib.core.examples import ExampleImage
        >>> pic = np.zeros((2, 2), np.uint8)
        >>> title(ExampleImage("chelsea", pic, 281, "tabby"))
        'chelsea (tabby)'
        >>> title(ExampleImage("Trouser (test image 47)", pic, 1, "Trouser"))
        'Trouser (test image 47)'
    """
    return example.name if example.category in example.name else f"{example.name} ({example.category})"


def other_images(net: Any, shown: Sequence[ExampleImage], limit: int | None = None) -> ExampleDataset:
    """The chapter's dataset for ``net`` without the images ``shown``: where (c)'s other images come from.

    Args:
        net: a :class:`~vizlib.Net`.
        shown: the :class:`~vizlib.core.examples.ExampleImage` images to leave out.
        limit: at most this many images.

    Returns:
        A :class:`~vizlib.core.examples.ExampleDataset` of ``(tensor, label)`` items.

    Example:
        >>> import vizlib as vl
        >>> net = vl.load("alexnet", "bundled")                          # doctest: +SKIP
        >>> len(other_images(net, vl.example_images(net, 3), limit=50))  # doctest: +SKIP
        50
    """
    data = example_dataset(net)
    keep = [i for i in range(len(data)) if not any(np.array_equal(data.raw(i), ex.image) for ex in shown)]
    keep = keep[:limit] if limit is not None else keep
    return ExampleDataset([data.images[i] for i in keep], [int(data.labels[i]) for i in keep], net,
                          f"{data.description}, without the {len(shown)} images shown")


def chapter_parts(net: Any) -> PartSet:
    """The part set the chapter's correspondence analysis uses for ``net``: the ankle boots for a
    one-channel (Fashion-MNIST) net, the frontal faces among the demo photos otherwise.

    Example:
        >>> import vizlib as vl
        >>> chapter_parts(vl.load("alexnet", "random")).name
        'faces'
    """
    return part_set("ankle_boots" if net.in_channels == 1 else "faces")


# --------------------------------------------------------------------------- readings


@dataclass
class OcclusionReadings:
    """What one sweep says about Zeiler & Fergus's two readings of Fig. 7, as numbers.

    Attributes:
        target: the class of (d) and its name.
        base_probability: p(target) unoccluded; ``lowest_probability`` its minimum
            over positions, at the square with top-left ``lowest_at``.
        strongest_drop_at: where (b), the strongest map's total activation, is lowest.
        distance: pixels between the two squares' positions.
        same_place: the two squares overlap (distance below the occluder size on both axes).
        label_changes: share of positions where the most probable label is not the unoccluded one.
        on_object: share of the most damaging positions (lowest tenth of (d)) whose
            square centre lies on the object (``None`` without an object mask).
        object_share: share of all positions whose centre lies on the object (chance level).
        projection_ratio: the share of (c)'s energy (squared projection) under the square
            where (b) is lowest, over the share of the image that square covers: above 1 when
            the occluder that silences the map covers what its projection shows (``None``
            without a projection).

    Example:
        >>> from vizlib.models import alexnet
        >>> sweep = Occlusion(alexnet(seed=1, num_classes=10)).sweep(torch.rand(3, 64, 64), 32, 16, project=False,
        ...                                                           progress=False)
        >>> r = occlusion_readings(sweep, torch.ones(64, 64, dtype=torch.bool), name="all object")
        >>> r.on_object, r.object_share, r.localises, r.projection_ratio      # no better than chance: all is object
        (1.0, 1.0, False, None)
    """

    name: str
    target: int
    target_name: str
    base_probability: float
    lowest_probability: float
    lowest_at: tuple[int, int]
    strongest_map: int
    base_activity: float
    lowest_activity: float
    strongest_drop_at: tuple[int, int]
    distance: float
    same_place: bool
    label_changes: float
    on_object: float | None
    object_share: float | None
    projection_ratio: float | None = None

    @property
    def localises(self) -> bool | None:
        """The most damaging positions fall on the object more often than chance (``None``: no mask)."""
        if self.on_object is None or self.object_share is None:
            return None
        return self.on_object > self.object_share


def worst_count(positions: int, quantile: float = 0.1) -> int:
    """How many of a sweep's ``positions`` count as its most damaging ``quantile`` (at least one).

    Example:
        >>> worst_count(361), worst_count(4)
        (37, 1)
    """
    return max(1, int(math.ceil(quantile * positions)))


def occlusion_readings(
    maps: OcclusionMaps, object_mask: torch.Tensor | np.ndarray | None = None, *, name: str = "", quantile: float = 0.1
) -> OcclusionReadings:
    """Zeiler & Fergus's readings of Fig. 7 as numbers: where p(class) and the strongest map drop.

    Args:
        maps: a sweep.
        object_mask: ``(H, W)`` boolean, True on the object (input pixels).
        name: a label for the image.
        quantile: the share of positions counted as "most damaging".

    Example:
        >>> from vizlib import Occlusion
        >>> from vizlib.models import alexnet
        >>> m = Occlusion(alexnet(seed=0, num_classes=10)).sweep(torch.randn(3, 96, 96), 48, 24,
        ...                                                       project=False, progress=False)
        >>> occlusion_readings(m).lowest_at in [(y, x) for y in (0, 24, 48) for x in (0, 24, 48)]
        True
    """
    ly, lx = maps.lowest("probability")
    ay, ax = maps.lowest("activity")
    on_object = share = None
    if object_mask is not None:
        mask = (object_mask.detach().to("cpu", torch.bool).clone() if isinstance(object_mask, torch.Tensor)
                else torch.as_tensor(np.array(object_mask, dtype=bool)))  # a copy: masks may be read-only arrays
        if tuple(mask.shape) != tuple(maps.image.shape[-2:]):
            raise ValueError(f"the object mask is {tuple(mask.shape)}, the image {tuple(maps.image.shape[-2:])}")
        cy, cx = maps.centres
        on = mask[cy.round().long().clamp(0, mask.shape[0] - 1).view(-1, 1),
                  cx.round().long().clamp(0, mask.shape[1] - 1).view(1, -1)]
        p = maps.probability.flatten()
        k = worst_count(p.numel(), quantile)
        worst = torch.argsort(p, stable=True)[:k]
        on_object = float(on.flatten()[worst].double().mean())
        share = float(on.double().mean())
    ratio = None
    if maps.projection is not None:
        full = maps.projection.full(0)
        square = box_mask(full.shape[-2:], (ay, ax, ay + maps.size, ax + maps.size))
        under = energy_inside(full, square)  # NaN for an all-zero projection: no ratio
        if not math.isnan(under):
            ratio = under / float(square.mean())
    return OcclusionReadings(
        name=name, target=maps.target, target_name=maps.class_name(maps.target),
        base_probability=maps.base_probability, lowest_probability=float(maps.probability.min()),
        lowest_at=(ly, lx), strongest_map=maps.channel, base_activity=maps.base_activity,
        lowest_activity=float(maps.activity.min()), strongest_drop_at=(ay, ax),
        distance=float(math.hypot(ly - ay, lx - ax)),
        same_place=abs(ly - ay) < maps.size and abs(lx - ax) < maps.size,
        label_changes=float((maps.label != maps.base_label).double().mean()),
        on_object=on_object, object_share=share, projection_ratio=ratio,
    )


def readings_table(readings: Sequence[OcclusionReadings]) -> Table:
    """The readings of several sweeps as a :class:`~vizlib.Table`, one row per image.

    Example:
        >>> readings_table([]).header[:3]
        ['image', 'class', 'p unoccluded']
    """
    rows = []
    for r in readings:
        rows.append([
            r.name, r.target_name, round(r.base_probability, 4), round(r.lowest_probability, 4),
            f"{r.lowest_at}", f"{r.strongest_drop_at}", r.same_place, round(r.label_changes, 3),
            "—" if r.on_object is None else f"{r.on_object:.2f} vs {r.object_share:.2f}",
        ])
    return Table(["image", "class", "p unoccluded", "lowest p", "(d) lowest at", "(b) lowest at",
                  "same place", "labels changed", "on object (worst 10%) vs chance"], rows,
                 "Occlusion readings: where the class probability (d) and the strongest map (b) drop")


# --------------------------------------------------------------------------- claims


def occlusion_claims(readings: Sequence[OcclusionReadings]) -> list[Claim]:
    """Zeiler & Fergus's three readings of Fig. 7 beside what these sweeps measured.

    Each verdict is a comparison of the numbers printed in its ``measured``
    text (rounded as printed):

    * the model *localises the object* when, on every image with an object
      region that leaves some background (chance below 1.00), the lowest
      tenth of (d) falls on the object more often than chance (not testable
      without such images);
    * the map's projection *shows what silences it* when, on every image, the
      square where (b) is lowest covers more of (c)'s energy than its share of
      the image (ratio above 1; not testable without projections);
    * the classifier's sensitivity is *not always where the strongest feature
      is* when, on at least one image, the squares where (b) and (d) are
      lowest do not overlap.

    Example:
        >>> r = OcclusionReadings("a", 0, "0", 0.9, 0.2, (0, 0), 1, 5.0, 1.0, (8, 8), 11.3, False, 0.1,
        ...                       0.8, 0.3, 1.6)
        >>> [c.verdict for c in occlusion_claims([r])]
        ['supported', 'supported', 'supported']
    """
    drops = ", ".join(f"{r.base_probability:.3g}→{r.lowest_probability:.3g}" for r in readings)
    loc = [(round(r.on_object, 2), round(r.object_share, 2)) for r in readings
           if r.on_object is not None and r.object_share is not None]
    # an object that every square is centred on leaves no background to compare with
    fits = [(on, share) for on, share in loc if share < 1]
    above = sum(on > share for on, share in fits)
    if fits:
        seen = (f"lowest tenth of (d) on the object vs chance: {', '.join(f'{a:.2f} vs {b:.2f}' for a, b in loc)} "
                f"(above chance on {above} of {len(fits)} images"
                + (f"; {len(loc) - len(fits)} where the object fills the image cannot tell" if len(fits) < len(loc)
                   else "") + f"); p unoccluded→lowest: {drops}")
    elif loc:
        seen = f"the object fills every image (chance 1.00): no background to tell; p unoccluded→lowest: {drops}"
    else:
        seen = f"no object regions for these images; p unoccluded→lowest: {drops}"
    ratios = [round(r.projection_ratio, 2) for r in readings if r.projection_ratio is not None]
    over = sum(v > 1 for v in ratios)
    apart = [r for r in readings if not r.same_place]
    places = ", ".join(f"(d) {r.lowest_at} vs (b) {r.strongest_drop_at}" for r in readings)
    return [
        Claim.judge(FIG7, "the squares that lower p(true class) most lie on the object: the model localises it",
                    seen, above == len(fits) if fits else None),
        Claim.judge(FIG7, "covering what the strongest map's projection (c) shows silences that map (b)",
                    "energy of (c) under the square where (b) is lowest, over that square's share of the image: "
                    + (", ".join(f"{v:.2f}" for v in ratios) + f" (above 1 on {over} of {len(ratios)} images)"
                       if ratios else "no projections"),
                    over == len(ratios) if ratios else None),
        Claim.judge(FIG7_CAPTION, "the classifier's sensitivity is not always where the strongest feature is",
                    f"top-left of the squares where each is lowest: {places}; not overlapping on {len(apart)} of "
                    f"{len(readings)} images", len(apart) > 0 if readings else None),
    ]


def correspondence_claims(result: Correspondence, control: Correspondence | None = None, *,
                          trained: bool = True) -> list[Claim]:
    """Zeiler & Fergus's reading of Table 1 beside this run's, and beside an untrained control's.

    The paper: masked parts score below random object regions at layer 5
    (some correspondence); and (in its Table 1, not in the text checked here)
    the scores are closer at layer 7. Each verdict compares the numbers
    printed beside it (rounded as printed):

    * *below random* when every part's mean sign change is under the random
      baseline's mean at the first layer (not testable when a part has too
      few images for a score);
    * *closer higher up* when the gap between the random mean and the parts'
      mean is smaller in size at the last layer than at the first.

    With a ``control`` (an untrained copy of the network, :func:`untrained_like`)
    the two are judged for it too, and a last claim says whether the
    correspondence is *learned*: the network's gap at the first layer is
    positive and larger than the control's (not testable when the network
    itself is untrained, ``trained=False``: the Random model set).

    Example:
        >>> import numpy as np
        >>> r = Correspondence(["p5", "fc7"], ["eye"], 5, 3, {"p5": 10, "fc7": 10},
        ...                    {"p5": {"eye": 20}, "fc7": {"eye": 40}}, {"p5": {"eye": 0.1}, "fc7": {"eye": 0.2}},
        ...                    {}, {"p5": np.array([0.2, 0.3, 0.25]), "fc7": np.array([0.2, 0.22, 0.21])}, {"eye": 5})
        >>> [c.verdict for c in correspondence_claims(r)]
        ['supported', 'supported']
    """

    def judged(r: Correspondence, who: str) -> list[Claim]:
        first, last = r.layers[0], r.layers[-1]
        m, sd = r.random_mean(first)
        scores = {p: r.score[first][p] for p in r.parts}
        shown = {p: round(v, 3) for p, v in scores.items()}
        below = sum(v < round(m, 3) for v in shown.values())
        testable = not any(math.isnan(v) for v in scores.values())
        g1, g2 = round(r.gap(first), 4), round(r.gap(last), 4)
        return [
            Claim.judge(TABLE1, f"{who}masked parts score below random object regions at {first} (correspondence)",
                        f"mean sign change at {first}: " + ", ".join(f"{p} {v:.3f}" for p, v in shown.items())
                        + f" vs random {m:.3f} ± {sd:.3f} ({below} of {len(shown)} parts below)",
                        below == len(shown) if testable else None),
            Claim.judge(TABLE1_UNCHECKED, f"{who}the parts' scores are closer to random at {last} than at {first}",
                        f"gap (random − parts) {g1:+.4f} at {first}, {g2:+.4f} at {last}",
                        abs(g2) < abs(g1) if not (math.isnan(g1) or math.isnan(g2)) else None),
        ]

    claims = judged(result, "")
    if control is not None:
        claims += judged(control, "untrained copy: ")
        first = result.layers[0]
        mine, theirs = round(result.gap(first), 4), round(control.gap(first), 4)
        claims.append(Claim.judge(
            TABLE1, f"the correspondence is learned: the gap at {first} is positive and exceeds an untrained copy's",
            f"gap {mine:+.4f} against the untrained copy's {theirs:+.4f}"
            + ("" if trained else "; this network is itself untrained (Random set)"),
            (mine > 0 and mine > theirs) if trained else None))
    return claims


def table1() -> Table:
    """:data:`ZEILER_TABLE1` as a :class:`~vizlib.Table`, marked UNVERIFIED in its title.

    The values were typed from memory of the paper and are not in the text
    this book checks; the chapter does not print them.

    Example:
        >>> "UNVERIFIED" in table1().title
        True
    """
    parts = list(ZEILER_TABLE1["layer 5"])
    return Table(["masked (5 dog faces)", "layer 5: sign change", "layer 7: sign change"],
                 [[p] + [f"{ZEILER_TABLE1[layer][p][0]:.3f} ± {ZEILER_TABLE1[layer][p][1]:.3f}"
                         for layer in ("layer 5", "layer 7")] for p in parts],
                 "UNVERIFIED: Zeiler & Fergus (2014) Table 1 as typed from memory, not found in the paper's "
                 "text checked here; do not quote")


# --------------------------------------------------------------------------- figures


def _extent(maps: OcclusionMaps) -> tuple[float, float, float, float]:
    cy, cx = maps.centres
    sy = float(cy[1] - cy[0]) if len(cy) > 1 else float(maps.size)
    sx = float(cx[1] - cx[0]) if len(cx) > 1 else float(maps.size)
    return (float(cx[0]) - sx / 2, float(cx[-1]) + sx / 2, float(cy[-1]) + sy / 2, float(cy[0]) - sy / 2)


def _short(name: str, n: int = 18) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


def _mosaic(images: list[np.ndarray], cols: int) -> np.ndarray:
    if not images:
        return np.full((8, 8), 0.5)
    r = max(max(im.shape[0], im.shape[1]) for im in images)
    colour = images[0].ndim == 3
    rows = -(-len(images) // cols)
    gap = max(1, r // 12)
    shape = (rows * (r + gap) - gap, cols * (r + gap) - gap) + ((3,) if colour else ())
    out = np.ones(shape)
    for i, im in enumerate(images):
        y, x = (i // cols) * (r + gap), (i % cols) * (r + gap)
        out[y : y + im.shape[0], x : x + im.shape[1]] = im
    return out


def _shown(a: np.ndarray) -> np.ndarray:
    """An image array matplotlib can draw: channels other than 1 or 3 are averaged to grey."""
    return a.mean(-1) if a.ndim == 3 and a.shape[-1] not in (3, 4) else a


def plot_occlusion(
    maps: OcclusionMaps | Sequence[OcclusionMaps],
    *,
    others: Any = None,
    titles: Sequence[str] | None = None,
    max_labels: int = 6,
) -> Figure:
    """Zeiler & Fergus Fig. 7: two rows of three panels per image, (a)-(c) above, (c')-(e) below.

    (a) the image with the grey square where it lowers the class most; (b) the
    strongest map's total activity; (c) its projection on this image (the
    black square is the receptive field of the projected unit); (c') with
    ``others``, its strongest projections on other images; (d) p(class);
    (e) the most probable label, coloured by label (legend below). In (b) and
    (d) dark is low; (d) is on a fixed [0, 1] scale. Each map cell sits at the centre of its occluder position.

    Args:
        maps: one sweep or several.
        others: a :class:`~vizlib.methods.topk.TopActivations` of the same layer with
            projections collected for the maps shown (``top.collect``).
        titles: one title per row (default: the class name).
        max_labels: labels named in the legend of (e); the rest are "other".

    Returns:
        The Figure.

    Example:
        >>> import vizlib as vl
        >>> from vizlib.models import alexnet
        >>> maps = vl.Occlusion(alexnet(seed=0, num_classes=10)).sweep(torch.randn(3, 96, 96), 32, 32, progress=False)
        >>> len(plot_occlusion(maps).axes) >= 5
        True
    """
    items = [maps] if isinstance(maps, OcclusionMaps) else list(maps)
    with_others = others is not None
    # two rows of three panels per image, so that the figure fits the page's column at a legible size:
    # (a) (b) (c) above, (c') (d) (e) below
    fig, grid = plt.subplots(2 * len(items), 3, figsize=(7.4, 5.0 * len(items)), squeeze=False)
    for row, m in enumerate(items):
        ax = list(grid[2 * row]) + list(grid[2 * row + 1])
        if not with_others:
            ax = ax[:3] + ax[4:] + [ax[3]]  # (d) and (e) under (b) and (c); the first panel below stays empty
            ax[5].set_visible(False)
        H, W = m.image.shape[-2:]
        img = _shown(to_display(m.image, m.mean, m.std))
        grey = "gray" if img.ndim == 2 else None
        ly, lx = m.lowest("probability")
        ax[0].imshow(_shown(to_display(m.occluded(ly, lx), m.mean, m.std)), cmap=grey, vmin=0, vmax=1)
        ax[0].add_patch(Rectangle((lx - 0.5, ly - 0.5), m.size, m.size, fill=False, ec="red", lw=1.5))
        head = titles[row] if titles else _short(m.class_name(m.target), 22)
        ax[0].set_title(head + "\n(a) occluded where p falls most", fontsize=9, loc="left")
        ext = _extent(m)
        im_b = ax[1].imshow(m.activity.numpy(), extent=ext, cmap="viridis")
        ax[1].set_title(f"(b) total activity,\n{m.layer} map {m.channel}", fontsize=9)
        fig.colorbar(im_b, ax=ax[1], fraction=0.046, pad=0.03).ax.tick_params(labelsize=8)
        if m.projection is not None:
            full = m.projection.full(0)
            ax[2].imshow(_shown(normalize_projection(full)), cmap=grey)
            t, l, b, r = m.projection.boxes[0].tolist()
            ax[2].add_patch(Rectangle((l - 0.5, t - 0.5), r - l, b - t, fill=False, ec="black", lw=2))
        else:
            ax[2].imshow(np.full((H, W), 0.5), cmap="gray", vmin=0, vmax=1)
        ax[2].set_title(f"(c) {m.layer} map {m.channel}\nprojected (black: its field)", fontsize=9)
        if with_others:
            try:
                projs = others.projection_images(m.channel, clip=False)
                empty = others.empty[m.channel].tolist()
                projs = [np.full_like(_shown(p), 0.5) if e else _shown(p) for p, e in zip(projs, empty)]
            except ValueError:
                projs = []
            k = len(projs)
            ax[3].imshow(_mosaic(projs, int(math.ceil(math.sqrt(k))) if k else 1), cmap=grey, vmin=0, vmax=1)
            ax[3].set_title(f"(c) map {m.channel}: its top {k}\non other images", fontsize=9)
        d, e = (ax[4], ax[5]) if with_others else (ax[3], ax[4])
        # probabilities on a fixed [0, 1] scale: a 2 % dip must not look like a hole
        im_d = d.imshow(m.probability.numpy(), extent=ext, cmap="viridis", vmin=0, vmax=1)
        d.set_title(f"(d) p({_short(m.class_name(m.target))})\non [0, 1]", fontsize=9)
        fig.colorbar(im_d, ax=d, fraction=0.046, pad=0.03).ax.tick_params(labelsize=8)
        labels, counts = torch.unique(m.label, return_counts=True)
        order = labels[torch.argsort(counts, descending=True, stable=True)].tolist()
        named = order[:max_labels]
        code = torch.full_like(m.label, len(named))
        for i, lab in enumerate(named):
            code[m.label == lab] = i
        palette = plt.get_cmap("tab10").colors[: len(named)] + ((0.6, 0.6, 0.6),)
        e.imshow(code.numpy(), extent=ext, cmap=ListedColormap(palette), vmin=-0.5,
                 vmax=len(palette) - 0.5, interpolation="nearest")
        e.set_title("(e) most probable label", fontsize=9)
        handles = [Patch(color=palette[i], label=_short(m.class_name(lab))) for i, lab in enumerate(named)]
        if len(order) > len(named):
            handles.append(Patch(color=palette[-1], label=f"{len(order) - len(named)} other"))
        e.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02), fontsize=8,
                 ncol=2, frameon=False)
        for a in ax:
            a.set_xticks([])
            a.set_yticks([])
        for a in (ax[0], ax[1], ax[2], d, e):
            a.set_xlim(-0.5, W - 0.5)
            a.set_ylim(H - 0.5, -0.5)
    fig.tight_layout()
    return fig


def plot_position(m: OcclusionMaps, row: int, col: int) -> Figure:
    """The square at one position of the sweep: what the network sees, and where that position is in (b) and (d).

    (a) the image with the grey square at grid cell ``(row, col)``; (b) the strongest map's total activity
    and (d) p(class) over every position, the current one outlined, (d) on a fixed range [0, 1] so that
    positions compare across frames. The titles print the readings at this position: the map's activity
    and p(class) against the unoccluded image, and the most probable label.

    Args:
        m: a sweep (:meth:`Occlusion.sweep`).
        row, col: the position's cell in the sweep's grid (``m.ys[row]``, ``m.xs[col]``).

    Returns:
        The Figure.

    Raises:
        ValueError: the cell is outside the sweep's grid.

    Example:
        >>> import vizlib as vl
        >>> from vizlib.models import alexnet
        >>> m = vl.Occlusion(alexnet(seed=0, num_classes=10)).sweep(torch.randn(3, 96, 96), 32, 32, progress=False)
        >>> len(plot_position(m, 0, 1).axes) >= 3
        True
    """
    ny, nx = m.probability.shape
    if not (0 <= row < ny and 0 <= col < nx):
        raise ValueError(f"position ({row}, {col}) is outside the sweep's {ny}×{nx} grid; "
                         f"pick a row in 0..{ny - 1} and a column in 0..{nx - 1}")
    y, x = int(m.ys[row]), int(m.xs[col])
    H, W = m.image.shape[-2:]
    fig, ax = plt.subplots(1, 3, figsize=(7.3, 3.0))  # 657 px at 90 dpi: the page's column
    img = _shown(to_display(m.occluded(y, x), m.mean, m.std))
    ax[0].imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
    ax[0].add_patch(Rectangle((x - 0.5, y - 0.5), m.size, m.size, fill=False, ec="red", lw=1.5))
    label = int(m.label[row, col])
    ax[0].set_title(f"(a) square at ({y}, {x})\nmost probable: {_short(m.class_name(label), 16)} "
                    f"({float(m.label_probability[row, col]):.2f})", fontsize=9)
    ext = _extent(m)
    cy, cx = m.centres

    def cell() -> Rectangle:
        return Rectangle((float(cx[col]) - m.stride / 2, float(cy[row]) - m.stride / 2), m.stride, m.stride,
                         fill=False, ec="red", lw=1.5)

    im_b = ax[1].imshow(m.activity.numpy(), extent=ext, cmap="viridis")
    ax[1].add_patch(cell())
    base = float(m.base_activities[m.channel])
    ax[1].set_title(f"(b) {m.layer} map {m.channel}: {float(m.activity[row, col]):.3g}\n"
                    f"(unoccluded {base:.3g})", fontsize=9)
    cb = fig.colorbar(im_b, ax=ax[1], fraction=0.046, pad=0.03)
    cb.ax.tick_params(labelsize=8)
    im_d = ax[2].imshow(m.probability.numpy(), extent=ext, cmap="viridis", vmin=0, vmax=1)
    ax[2].add_patch(cell())
    ax[2].set_title(f"(d) p({_short(m.class_name(m.target), 14)}): {float(m.probability[row, col]):.2f}\n"
                    f"(unoccluded {float(m.base_probabilities[m.target]):.2f})", fontsize=9)
    cb = fig.colorbar(im_d, ax=ax[2], fraction=0.046, pad=0.03)
    cb.ax.tick_params(labelsize=8)
    for a in ax:
        a.set_xticks([])
        a.set_yticks([])
        a.set_xlim(-0.5, W - 0.5)
        a.set_ylim(H - 0.5, -0.5)
    fig.tight_layout()
    return fig


def occlusion_static(m: OcclusionMaps, positions: int = 16) -> StaticExplorer:
    """Kernel-free: the occluder moved over the image, one precomputed frame per position (:func:`plot_position`).

    Nothing is swept again: every frame reads the sweep ``m``. The positions are spread over the
    sweep's grid row by row, and always include the one where p(class) is lowest.

    Args:
        m: a sweep (:meth:`Occlusion.sweep`), e.g. the chapter's first image.
        positions: how many positions to keep (each is a PNG in the page).

    Returns:
        A :class:`~vizlib.chapters.widgets.StaticExplorer`.

    Example:
        >>> import vizlib as vl
        >>> from vizlib.models import alexnet
        >>> m = vl.Occlusion(alexnet(seed=0, num_classes=10)).sweep(torch.randn(3, 96, 96), 32, 32, progress=False)
        >>> len(occlusion_static(m, positions=4))
        4
    """
    ny, nx = m.probability.shape
    cells = [(r, c) for r in range(ny) for c in range(nx)]
    kept = spread(cells, positions)
    low = divmod(int(torch.argmin(m.probability)), nx)
    if low not in kept:
        kept[min(range(len(kept)), key=lambda i: abs(cells.index(kept[i]) - cells.index(low)))] = low
    kept = sorted(set(kept), key=cells.index)
    labels = [f"({int(m.ys[r])}, {int(m.xs[c])})" + (", where p is lowest" if (r, c) == low else "") for r, c in kept]
    return static_explorer(kept, lambda rc: plot_position(m, *rc), labels=labels, name="square at (row, column)",
                           dpi=90, frame_format="jpeg")


def plot_parts(prepared: PreparedParts, net: Any = None, *, per_row: int = 4) -> Figure:
    """The annotated images as the network sees them, each part's mask drawn as a square.

    The object region (where random masks are centred) is outlined in white.

    Returns:
        A matplotlib Figure.

    Example:
        >>> import vizlib as vl
        >>> net = vl.load("alexnet", "bundled")                                      # doctest: +SKIP
        >>> fig = plot_parts(chapter_parts(net).prepare(net), net)                  # doctest: +SKIP
    """
    n = len(prepared.names)
    cols = min(per_row, n)
    rows = -(-n // cols)
    side = min(2.6, 7.4 / cols)  # the page's column
    fig, axes = plt.subplots(rows, cols, figsize=(side * cols, (side + 0.3) * rows + 0.4), squeeze=False)
    colours = plt.get_cmap("tab10").colors
    h, w = prepared.images.shape[-2:]
    mean, std = getattr(net, "mean", None), getattr(net, "std", None)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = to_display(prepared.images[i], mean, std)
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
        ax.contour(prepared.objects[i].numpy(), levels=[0.5], colors="white", linewidths=0.6)
        for k, (name, pts) in enumerate(prepared.parts.items()):
            y, x = (float(v) for v in pts[i])
            if math.isnan(y):
                continue
            t, l, b, r = square_box(y, x, int(prepared.sizes[i]), h, w)
            ax.add_patch(Rectangle((l - 0.5, t - 0.5), r - l, b - t, fill=False, ec=colours[k % 10], lw=1.5))
        ax.set_title(prepared.names[i], fontsize=9)
    fig.legend(handles=[Patch(fill=False, ec=colours[k % 10], label=p) for k, p in enumerate(prepared.parts)],
               loc="lower center", ncol=len(prepared.parts), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def annotation_format(path: str | Path = PARTS_PATH) -> str:
    """How to annotate new images: the file's ``format`` entry and one annotated image, as text.

    Example:
        >>> annotation_format().startswith("Part annotations")
        True
    """
    raw = load_annotations(path)
    sets = raw.get("sets", {})
    name, first = next(iter(sets.items()))
    entry = json.dumps(first["images"][0])
    head = {k: v for k, v in first.items() if k not in ("images", "annotation", "part_notes")}
    return (f"{raw.get('format', '')}\n\nExample, set {name!r}: " + json.dumps(head) +
            f"\nwith images such as {entry}")


# --------------------------------------------------------------------------- explorer


def occlusion_explorer(
    net: Any,
    images: dict[str, tuple[torch.Tensor, int]],
    *,
    sizes: tuple[int, int] | None = None,
    size: int | None = None,
    stride: int | None = None,
    others: Any = None,
    maps: Sequence[OcclusionMaps] | None = None,
    progress: bool = False,
) -> Explorer:
    """Pick an image, the occluder's size and stride, and a class; see Fig. 7 for it.

    Calls :meth:`Occlusion.sweep` and :func:`plot_occlusion`, the functions the
    chapter calls. A new class re-reads the kept probabilities (no new sweep);
    sweeps are cached per (image, size, stride). On a new image the class
    follows to its true class, unless another class was picked: that one is
    kept, and the note above the figure says so. While a sweep runs the
    previous figure stays and the line above it says what is computing.

    Args:
        net: a :class:`~vizlib.Net` or module.
        images: name -> (prepared image ``(C, H, W)``, true class).
        sizes: range of the size slider (default: 1/28 to 1/2 of the image side).
        size, stride: starting values.
        others: a :class:`~vizlib.methods.topk.TopActivations` for (c') (maps not collected there show empty).
        maps: sweeps already made of these images, in the same order (they are reused, not redone).

    Returns:
        An :class:`~vizlib.chapters.widgets.Explorer` (controls in two rows).

    Example:
        >>> import vizlib as vl
        >>> net = vl.load("alexnet", "bundled")                                              # doctest: +SKIP
        >>> images = {ex.name: (ex.tensor(net), ex.label) for ex in vl.example_images(net, 3)}  # doctest: +SKIP
        >>> occlusion_explorer(net, images)                                                  # doctest: +SKIP
    """
    occ = Occlusion(net)
    first = next(iter(images.values()))[0]
    side = int(min(first.shape[-2:]))
    lo, hi = sizes or (max(1, side // 28), max(2, side // 2))
    size0 = size or _default_size(side)
    pick = W.Dropdown(options=list(images), description="image")
    size_w = W.IntSlider(value=size0, min=lo, max=hi, description="size", continuous_update=False)
    stride_w = W.IntSlider(value=stride or max(1, size0 // 4), min=1, max=hi, description="stride",
                           continuous_update=False)
    classes = occ.categories
    if classes is None:
        with torch.no_grad(), preserved(occ._net):
            classes = [str(i) for i in range(int(occ._net(first[None].to(occ.device)).shape[1]))]
    cls = W.Dropdown(options=[(f"{i}: {c}", i) for i, c in enumerate(classes)], value=images[pick.value][1],
                     description="class")
    cache: dict[tuple[str, int, int], OcclusionMaps] = {}
    for name, m in zip(images, maps or []):
        if m.probabilities is not None:
            cache[(name, m.size, m.stride)] = m

    def content() -> None:
        key = (pick.value, size_w.value, stride_w.value)
        try:
            if key not in cache:
                img, true = images[pick.value]
                cache[key] = occ.sweep(img, size_w.value, stride_w.value, true, progress=progress,
                                       keep_probabilities=True)
        except ValueError as exc:
            print(exc)
            return
        m = cache[key]
        view = copy.copy(m)
        view.target = int(cls.value)
        view.probability = m.for_class(int(cls.value))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fig = plot_occlusion(view, others=others, titles=[pick.value])
        show_figure(fig)

    def update(change: dict | None) -> str | None:
        if change is None or change["owner"] is not pick:
            return None
        old_true, new_true = images[change["old"]][1], images[change["new"]][1]
        if cls.value == old_true:  # the class followed the image: it follows again
            cls.value = new_true
            return None
        return (f"class kept: {classes[cls.value]} (the true class of {change['new']} is {classes[new_true]}; "
                "pick it in the list to see its map).")

    def busy() -> str:
        if (pick.value, size_w.value, stride_w.value) in cache:
            return "⏳ Drawing…"
        return (f"⏳ Sweeping a {size_w.value}-pixel occluder over {pick.value} (stride {stride_w.value}); "
                "the figure below is the previous choice until the new one is ready.")

    return Explorer([[pick, cls], [size_w, stride_w]], content, update=update, busy=busy)
