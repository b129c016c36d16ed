"""Chapter 4, Representation space: Yu et al. (2016) §4.1 and Fig. 3.

What the chapter shows and how: the number of images each net sees
(:func:`image_budget`), the two t-SNE libraries timed on the run's own patches
(:func:`compare_backends`), Yu's Fig. 3 for one layer
(:func:`plot_representation_space`), the planes as dots coloured by class
(:func:`plot_embedding`, :func:`plot_embeddings`), the neighbour class
agreement as a table (:func:`agreement_table`) and Yu's reading of the figure
judged from it (:func:`agreement_claims`), and the explorer
(:func:`representation_explorer`).

The computing is :mod:`vizlib.methods.embedding`: ``vl.patch_features``,
``vl.embed_patches`` and ``vl.fill_grid`` at the top level, and the rest of
what the chapter calls re-exported here (:func:`equivalent_layers`,
:func:`available_patches`, :func:`representation_space`,
:func:`class_agreement`, :func:`neighbour_agreement`,
:func:`default_regions`, :func:`tsne_backend`).

Example::

    import vizlib as vl
    from vizlib.chapters import ch04 as ch
    net = vl.load("vgg16")
    data = vl.PreparedImages(vl.fashion_mnist_sample(), net)
    choice = ch.equivalent_layers(net.model, net.input_size)
    feats = vl.patch_features(net, choice.layers, data, n=2000)
    spaces = {layer: ch.representation_space(p) for layer, p in feats.items()}
    fig = ch.plot_representation_space(spaces[choice.high], net=net, data=data)
    rows = [ch.class_agreement(spaces[layer], network="vgg16") for layer in choice.layers]
    ch.claims_table(ch.agreement_claims(rows))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..core.tables import Table
from ..methods.embedding import (
    Agreement,
    Embedding,
    PatchFeatures,
    Region,
    RepresentationSpace,
    available_patches,
    class_agreement,
    default_regions,
    embed_patches,
    equivalent_layers,
    filter_visualisations,
    neighbour_agreement,
    patch_features,
    representation_space,
    select_patches,
    top_filters,
    tsne_backend,
)
from .claims import Claim, claims_table, number
from .legibility import PAGE_INCHES
from .widgets import Explorer, StaticExplorer, show_figure, static_explorer

__all__ = [
    # the method's functions the chapter calls (vizlib.methods.embedding), re-exported
    "available_patches",
    "equivalent_layers",
    "tsne_backend",
    "representation_space",
    "class_agreement",
    "neighbour_agreement",
    "default_regions",
    "Region",
    # the chapter
    "YU_FIG3_READING",
    "chapter_images",
    "image_budget",
    "TsneComparison",
    "compare_backends",
    "agreement_table",
    "agreement_claims",
    "claims_table",
    "plot_representation_space",
    "plot_embedding",
    "plot_embeddings",
    "representation_explorer",
    "representation_static",
]

#: Yu et al. (2016) §4.1, their reading of Fig. 3 (quoted).
YU_FIG3_READING = ("Yu et al.: at c5_3 'semantic-level similar patches are embedded close'; at c4_1 'near patches "
                   "are with similar texture or simple shape'.")


def chapter_images(model_set: str) -> Any:
    """The images the chapter samples its patches from.

    For the Bundled set, the composed test sample (:func:`~vizlib.core.composed.bundled_sample`:
    the garments on the backgrounds the nets were trained on; 1,500 images offer 24,000 patches at
    the VGG-style net's ``c5_3``, more at every lower layer); for the ImageNet set, Fashion-MNIST's
    test set (:func:`vizlib.fashion_mnist_test`: the full one when it is at hand).

    Example:
        >>> chapter_images("bundled").images.shape[1:]
        (64, 64)
    """
    if model_set == "bundled":
        from ..core.composed import bundled_sample

        return bundled_sample()
    from ..core.data import fashion_mnist_test

    return fashion_mnist_test()


def image_budget(net: Any, available: int, *, smoke: bool = False) -> int:
    """How many images of a set to feed a network in this chapter, by what one image costs it.

    The small bundled nets (inputs of at most 64 pixels) are cheap: they see
    every available image (400 under test). The full-size nets (224 pixels)
    cost about a hundred times more per image, so they see 48 (6 under test).

    Args:
        net: a :class:`~vizlib.Net` (or anything with ``input_size``; 224 if absent).
        available: images in the set.
        smoke: the shrunken workload of the book under test (``VIZLIB_SMOKE``).

    Returns:
        The number of images, never more than ``available``.

    Example:
        >>> from types import SimpleNamespace
        >>> image_budget(SimpleNamespace(input_size=32), 10_000), image_budget(SimpleNamespace(input_size=224), 10_000)
        (10000, 48)
    """
    if available < 1:
        raise ValueError(f"no images to choose from (available={available}); load an image set first")
    small = int(getattr(net, "input_size", 0) or 224) <= 64
    wanted = (400 if smoke else available) if small else (6 if smoke else 48)
    return min(wanted, available)


# --------------------------------------------------------------------------- the two t-SNE libraries


@dataclass
class TsneComparison:
    """The same features embedded by each t-SNE library, and a second run with the same seed.

    Attributes:
        runs: ``"sklearn"`` / ``"opentsne"`` -> its :class:`~vizlib.methods.embedding.Embedding`
            (openTSNE only when installed).
        again: a second run with the default method and the same seed.
        identical: whether ``again`` equals the first run of the same method exactly.

    Example:
        >>> run = Embedding(np.zeros((4, 2)), "scikit-learn", 30.0, 0, 2, 1.0, 0.5, "(no PCA)")
        >>> print(TsneComparison({"sklearn": run}, run, True))
        scikit-learn 4 points, 2 dims: 0.5 s (no PCA)
        a second run with the same seed gives the identical embedding: True
    """

    runs: dict[str, Embedding]
    again: Embedding
    identical: bool

    def __str__(self) -> str:
        lines = []
        for e in self.runs.values():
            dims = f"{e.pca_dims} dims" if "no PCA" in e.note else f"PCA to {e.pca_dims} dims"
            note = f" ({e.note.strip('()')})" if e.note else ""
            lines.append(f"{e.method:12s} {len(e):,} points, {dims}: {e.seconds:.1f} s{note}")
        lines.append(f"a second run with the same seed gives the identical embedding: {self.identical}")
        return "\n".join(lines)

    def claims(self) -> list[Claim]:
        """The chapter's two readings of the runs, judged from the seconds and the comparison printed.

        Example:
            >>> e = lambda method, s: Embedding(np.zeros((3, 2)), method, 1.0, 0, 2, 1.0, s)
            >>> c = TsneComparison({"sklearn": e("scikit-learn", 0.7), "opentsne": e("openTSNE", 0.4)},
            ...                    e("openTSNE", 0.4), True)
            >>> [x.verdict for x in c.claims()]
            ['supported', 'supported']
        """
        source = "this chapter (benchmarks/README.md)"
        fast = "openTSNE's t-SNE takes less time than scikit-learn's on these patches"
        sk, ot = self.runs.get("sklearn"), self.runs.get("opentsne")
        if sk is None or ot is None:
            speed = Claim.judge(source, fast, "openTSNE is not installed: only scikit-learn ran", None)
        else:
            a, b = round(ot.seconds, 1), round(sk.seconds, 1)
            speed = Claim.judge(source, fast, f"openTSNE {a:.1f} s, scikit-learn {b:.1f} s ({len(ot):,} points)",
                                a < b)
        same = Claim.judge("this chapter", "t-SNE with the same seed gives the same plane",
                           f"two runs of {self.again.method}: {'identical' if self.identical else 'different'}",
                           self.identical)
        return [speed, same]


def compare_backends(features: np.ndarray, *, perplexity: float = 30.0, seed: int = 0) -> TsneComparison:
    """Embed the same features with scikit-learn and (when installed) openTSNE, then once more with the same seed.

    Args:
        features: ``(n, d)`` feature vectors (a layer's patches).
        perplexity, seed: as for :func:`vizlib.embed_patches`.

    Returns:
        A :class:`TsneComparison`; print it for the times, ``.claims()`` for the readings.

    Example:
        >>> x = np.random.default_rng(0).normal(size=(60, 5))
        >>> compare_backends(x, perplexity=5).identical
        True
    """
    methods = ["sklearn"] + (["opentsne"] if tsne_backend() == "openTSNE" else [])
    runs = {m: embed_patches(features, perplexity=perplexity, seed=seed, method=m) for m in methods}
    again = embed_patches(features, perplexity=perplexity, seed=seed)
    first = next((e for e in runs.values() if e.method == again.method), runs[methods[-1]])
    return TsneComparison(runs, again, bool(np.array_equal(again.xy, first.xy)))


# --------------------------------------------------------------------------- neighbour class agreement


def agreement_table(rows: Sequence[Agreement]) -> Table:
    """The agreements as a :class:`~vizlib.Table`, with each one's ratio to chance.

    Example:
        >>> agreement_table([Agreement("net", "c2", 100, 10, 0.3, 0.25, 0.1)]).rows[0][-2:]
        [3.0, 2.5]
    """
    return Table(
        ["network", "layer", "patches", "k", "feature space", "embedding", "chance", "feature / chance",
         "embedding / chance"],
        [[a.network, a.layer, a.n, a.k, round(a.feature, 3), round(a.embedding, 3), round(a.chance, 3),
          round(a.feature / a.chance, 2), round(a.embedding / a.chance, 2)] for a in rows],
        title="Nearest-neighbour class agreement (share of a patch's k nearest neighbours from other images "
              "whose image has the same class)",
    )


def agreement_claims(rows: Sequence[Agreement], *, trained: bool = True) -> list[Claim]:
    """Yu's reading of Fig. 3, one claim per network, judged from its first (low) and last (high) layer.

    The claim holds when the high layer's agreement exceeds the low layer's
    both in feature space and in the embedding, comparing the numbers as
    printed (3 decimals). It is not testable with untrained nets
    (``trained=False``: the random set is the control, not the claim), with
    one layer only, or when a number is missing.

    Args:
        rows: from :func:`class_agreement`, each network's low layer before its high one.
        trained: whether the nets are trained.

    Returns:
        One :class:`~vizlib.chapters.claims.Claim` per network.

    Example:
        >>> low, high = Agreement("n", "c2", 10, 5, 0.2, 0.2, 0.1), Agreement("n", "c5", 10, 5, 0.5, 0.4, 0.1)
        >>> agreement_claims([low, high])[0].verdict, agreement_claims([high, low])[0].verdict
        ('supported', 'not supported here')
    """
    nets: dict[str, list[Agreement]] = {}
    for a in rows:
        nets.setdefault(a.network, []).append(a)
    out = []
    for name, rs in nets.items():
        lo, hi = rs[0], rs[-1]
        claim = (f"{name}: the high layer ({hi.layer}) puts patches from images of one class closer together than "
                 f"the low layer ({lo.layer}), in feature space and in the plane")
        values = [lo.feature, hi.feature, lo.embedding, hi.embedding, hi.chance]
        measured = (f"feature space {hi.layer} {number(hi.feature)} vs {lo.layer} {number(lo.feature)}; "
                    f"embedding {hi.layer} {number(hi.embedding)} vs {lo.layer} {number(lo.embedding)}; "
                    f"chance {number(hi.chance)}")
        lf, hf, le, he, _ = (round(v, 3) for v in values)
        holds: bool | None = hf > lf and he > le
        if len(rs) < 2:
            measured, holds = f"only {lo.layer} was measured", None
        elif any(math.isnan(v) for v in values):
            holds = None
        elif not trained:
            measured, holds = measured + " (untrained nets: the control, not the claim)", None
        out.append(Claim.judge("Yu et al. §4.1, Fig. 3", claim, measured, holds))
    return out


# --------------------------------------------------------------------------- plotting


def _show(ax: Any, img: np.ndarray, title: str = "", smooth: bool = False) -> None:
    how = "antialiased" if smooth else "nearest"  # mosaics are drawn smaller than their pixels: smooth them
    if img.ndim == 2:
        vmax = 255 if img.dtype == np.uint8 else 1
        ax.imshow(img, cmap="gray", vmin=0, vmax=vmax, interpolation=how)
    else:
        ax.imshow(img, interpolation=how)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def _region_pixels(space: RepresentationSpace, region: Region) -> tuple[float, float, float, float]:
    """The region as (left, top, width, height) in pixels of the mosaic."""
    x0, x1, y0, y1 = space.grid.extent
    rows, cols = space.grid.shape
    t = space.patches.thumbnails.shape[1]
    bx0, bx1, by0, by1 = region.bounds(space.grid.extent)
    px = lambda x: (x - x0) / (x1 - x0) * cols * t - 0.5  # noqa: E731
    py = lambda y: (y1 - y) / (y1 - y0) * rows * t - 0.5  # noqa: E731
    return px(bx0), py(by1), px(bx1) - px(bx0), py(by0) - py(by1)


def plot_representation_space(
    space: RepresentationSpace,
    regions: Sequence[Region] | None = None,
    *,
    net: Any = None,
    data: Any = None,
    n_filters: int = 6,
    zoom_cells: int = 12,
    title: str | None = None,
    filters: dict[int, np.ndarray] | None = None,
) -> Figure:
    """Yu's Fig. 3 for one layer: (a) the filled plane, (b) zoomed regions, (c) a patch in each, (d) its top filters.

    Args:
        space: from :func:`representation_space`.
        regions: where to zoom (default: :func:`default_regions`, three of them).
        net, data: the network and data the patches came from; with them,
            column (c) shows the patch at full resolution and column (d) the
            ``n_filters`` maps most active for it, each by the deconvnet
            projection of its strongest activation over the data. Without
            them, (c) shows the thumbnail and (d) is left out.
        n_filters: filters per patch in column (d).
        zoom_cells: cells per side of each zoomed region.
        title: the figure's title (default: the layer, patch count and method).
        filters: precomputed channel -> image (from :func:`filter_visualisations`).

    Returns:
        A matplotlib Figure.

    Example:
        >>> space = representation_space(vl.patch_features(net, "c5_3", data, n=1000))   # doctest: +SKIP
        >>> fig = plot_representation_space(space, net=net, data=data, n_filters=6)      # doctest: +SKIP
    """
    regions = list(regions) if regions is not None else default_regions(space.embedding.xy, seed=space.embedding.seed)
    if not regions:
        raise ValueError("give at least one region to zoom into")
    chosen = select_patches(space, regions)
    show_d = n_filters > 0 and (filters is not None or (net is not None and data is not None))
    tops = [top_filters(space.patches, c[0], n_filters) if c and show_d else [] for c in chosen]
    if show_d and filters is None:
        filters = filter_visualisations(net, space.patches, data, [ch for t in tops for ch in t])
    R = len(regions)
    # (d)'s filters in two lines inside one column, and panels shrunk so the figure fits the page's column
    d_cols = -(-n_filters // 2) if show_d else 0
    ncols = 3 + (1 if show_d else 0)
    widths = [max(R, 2), 1, 1] + ([0.5 * d_cols] if show_d else [])
    rows = max(R, 2)
    unit = min(1.6 if R > 1 else 2.0, (PAGE_INCHES - 0.3) / (1.08 * sum(widths)))
    height = (unit + 0.5) * rows + 0.6
    fig = plt.figure(figsize=(unit * 1.08 * sum(widths) + 0.3, height))
    gs = fig.add_gridspec(rows, ncols, width_ratios=widths, wspace=0.08, hspace=0.35,
                          left=0.01, right=0.99, bottom=0.02, top=1 - 0.75 / height)
    ax = fig.add_subplot(gs[:, 0])
    _show(ax, space.mosaic(), "(a) the plane, each cell its nearest patch", smooth=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, r in enumerate(regions):
        left, top, w, h = _region_pixels(space, r)
        col = colours[i % len(colours)]
        ax.add_patch(Rectangle((left, top), w, h, fill=False, edgecolor=col, linewidth=1.8))
        ax.text(left + 3, top + 3, str(i + 1), color=col, fontsize=10, va="top", ha="left", weight="bold",
                bbox=dict(facecolor="white", edgecolor="none", pad=1, alpha=0.8))
    for i, r in enumerate(regions):
        col = colours[i % len(colours)]
        zb = fig.add_subplot(gs[i, 1])
        _show(zb, space.mosaic(space.zoom(r, zoom_cells)), "(b) zoomed" if i == 0 else "", smooth=True)
        for s in zb.spines.values():
            s.set_edgecolor(col)
            s.set_linewidth(2)
        zb.text(0.03, 0.97, str(i + 1), color=col, fontsize=9, va="top", ha="left", weight="bold",
                transform=zb.transAxes, bbox=dict(facecolor="white", edgecolor="none", pad=1, alpha=0.8))
        zc = fig.add_subplot(gs[i, 2])
        if chosen[i]:
            j = chosen[i][0]
            img = space.patches.crop(j, data) if data is not None else space.patches.thumbnails[j]
            cls = space.patches.labels[j] if space.patches.labels is not None else None
            name = space.patches.classes[cls] if cls is not None and space.patches.classes else ""
            _show(zc, img, ("(c) selected\n" if i == 0 else "") + name)
        else:
            zc.axis("off")
        if show_d and tops[i]:
            sub = gs[i, 3].subgridspec(2, d_cols, wspace=0.08, hspace=0.6)
            for f, ch in enumerate(tops[i]):
                zd = fig.add_subplot(sub[f // d_cols, f % d_cols])
                assert filters is not None
                _show(zd, filters[ch])
                zd.set_title(f"#{ch}", fontsize=8, pad=2)
                if f == 0 and i == 0:
                    zd.text(0, 1.45, "(d) top filters", transform=zd.transAxes, fontsize=9, va="bottom")
    p = space.patches
    fig.suptitle(title if title is not None else
                 f"{p.layer}: {len(p):,} patches of {p.rfield.size} px ({space.embedding.method}, perplexity "
                 f"{space.embedding.perplexity:g})", fontsize=10)
    return fig


def plot_embedding(space: RepresentationSpace, *, ax: Any = None, title: str | None = None,
                   size: float = 4.0, legend: bool = True) -> Figure:
    """The embedded patches as dots coloured by their image's class.

    Args:
        space: from :func:`representation_space`.
        ax: the axes to draw in (default: a new figure).
        title: the axes' title (default: the layer).
        size: the dots' size.
        legend: name the classes in a legend inside the axes (:func:`plot_embeddings` draws one for all).

    Returns:
        The matplotlib Figure.

    Example:
        >>> fig = plot_embedding(representation_space(patches))   # doctest: +SKIP
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 5))
    else:
        fig = ax.figure
    p, xy = space.patches, space.embedding.xy
    if p.labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=size, c="k", linewidths=0)
    else:
        cmap = plt.get_cmap("tab10")
        for c in np.unique(p.labels):
            m = p.labels == c
            name = p.classes[c] if p.classes else str(c)
            ax.scatter(xy[m, 0], xy[m, 1], s=size, color=cmap(int(c) % 10), linewidths=0, label=name)
        if legend:
            ax.legend(fontsize=8, markerscale=4, loc="best", frameon=False)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal")
    ax.set_title(title if title is not None else f"{p.layer}: patches coloured by their image's class", fontsize=9)
    return fig


def plot_embeddings(spaces: dict[str, RepresentationSpace], *, size: float = 4.0) -> Figure:
    """Several planes side by side, each as dots coloured by class (:func:`plot_embedding`), titled by their key.

    Example:
        >>> fig = plot_embeddings({"vgg16 c2_1": low_space, "vgg16 c5_3": high_space})   # doctest: +SKIP
    """
    if not spaces:
        raise ValueError("give at least one space to draw")
    # at most two planes a row, so each stays large enough to show its islands in the page's column,
    # and one legend for all of them below (the planes share their classes)
    n_cols = min(2, len(spaces))
    n_rows = -(-len(spaces) // n_cols)
    side = min(3.4, PAGE_INCHES / n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(side * n_cols, (0.8 * side + 0.3) * n_rows + 0.5), squeeze=False)
    for ax, (title, space) in zip(axes.flat, spaces.items()):
        plot_embedding(space, ax=ax, title=title, size=size, legend=False)
    for ax in list(axes.flat)[len(spaces):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=8, markerscale=4, frameon=False)
        fig.tight_layout(rect=(0, 0.5 / fig.get_figheight() + 0.02, 1, 1))
    else:
        fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- widget


def representation_explorer(
    net: Any,
    data: Any,
    layers: Sequence[str],
    *,
    spaces: dict[tuple[str, int, float], RepresentationSpace] | None = None,
    n_options: Sequence[int] = (1000, 2000, 5000, 10000),
    perplexities: Sequence[float] = (5, 15, 30, 50),
    value: tuple[str, int, float] | None = None,
    region: Region = Region(0.5, 0.5, 0.2),
    n_filters: int = 6,
    seed: int = 0,
) -> Explorer:
    """A widget over the chapter's computation: pick the layer, N, the perplexity and a region to zoom.

    Calls :func:`patch_features`, :func:`representation_space` and
    :func:`plot_representation_space` (one region), caching what it has
    computed. Pass the chapter's spaces in ``spaces`` (keyed by
    ``(layer, n, perplexity)``) so the starting state costs nothing. While a
    new space is computed the previous figure stays, and the line above it
    says what is being computed (no progress bar is left behind).

    Args:
        net, data: the network and the data (as for :func:`patch_features`).
        layers: the layers to offer.
        spaces: spaces already computed, keyed by ``(layer, n, perplexity)``.
        n_options, perplexities: the choices offered.
        value: the starting ``(layer, n, perplexity)`` (default: the first of ``spaces``).
        region: the starting region.
        n_filters: filters shown for the selected patch (column (d)).
        seed: seed of sampling and t-SNE.

    Returns:
        An :class:`~vizlib.chapters.widgets.Explorer` (controls in two rows).

    Example:
        >>> spaces = {("c5_3", 1000, 30.0): space}                                           # doctest: +SKIP
        >>> representation_explorer(net, data, ["c2_1", "c5_3"], spaces=spaces)              # doctest: +SKIP
    """
    cache: dict[tuple[str, int, float], RepresentationSpace] = dict(spaces or {})
    feats: dict[tuple[str, int], PatchFeatures] = {(k[0], k[1]): s.patches for k, s in cache.items()}
    default = (layers[-1], n_options[0], perplexities[min(2, len(perplexities) - 1)])
    start = value or (next(iter(cache)) if cache else default)
    ns = sorted(set(n_options) | {start[1]})
    ps = sorted(set(float(p) for p in perplexities) | {float(start[2])})
    w_layer = W.Dropdown(options=list(layers), value=start[0], description="layer")
    w_n = W.Dropdown(options=ns, value=start[1], description="N")
    w_p = W.Dropdown(options=ps, value=float(start[2]), description="perplexity")
    w_x = W.FloatSlider(value=region.x, min=0, max=1, step=0.02, description="region x", continuous_update=False)
    w_y = W.FloatSlider(value=region.y, min=0, max=1, step=0.02, description="region y", continuous_update=False)
    w_s = W.FloatSlider(value=region.size, min=0.05, max=0.6, step=0.05, description="size", continuous_update=False)

    def space_for(layer: str, n: int, p: float) -> RepresentationSpace:
        key = (layer, n, float(p))
        if key not in cache:
            if (layer, n) not in feats:
                feats[(layer, n)] = patch_features(net, layer, data, n, seed=seed,  # type: ignore[assignment]
                                                   progress=False)
            cache[key] = representation_space(feats[(layer, n)], perplexity=p, seed=seed)
        return cache[key]

    def body() -> None:
        try:
            space = space_for(w_layer.value, int(w_n.value), float(w_p.value))
            r = Region(w_x.value, w_y.value, w_s.value)
            show_figure(plot_representation_space(space, [r], net=net, data=data, zoom_cells=12, n_filters=n_filters))
        except ValueError as exc:
            print(exc)

    def busy() -> str:
        key = (w_layer.value, int(w_n.value), float(w_p.value))
        if key in cache:
            return f"⏳ Drawing the region of {key[0]}'s plane…"
        what = "features and t-SNE" if (key[0], key[1]) not in feats else "t-SNE"
        return (f"⏳ Computing the {what} of {key[1]} {key[0]} patches at perplexity {key[2]:g} (seconds to a "
                "minute); the figure below is the previous choice until the new one is ready.")

    # draws the first state now, redraws on change
    return Explorer([[w_layer, w_n, w_p], [w_x, w_y, w_s]], body, busy=busy)


def representation_static(spaces: dict[str, RepresentationSpace], regions: int = 3, *, seed: int = 0) -> StaticExplorer:
    """Kernel-free: the layers' planes, each zoomed into a few regions (:func:`plot_representation_space`).

    The states are, for each layer of ``spaces`` in order, its first ``regions`` default regions
    (:func:`default_regions`, as the chapter's figures pick them); every frame is the plane with
    the region, the region filled with its nearest patches and the patches it holds, as in the
    explorer, without the filter column (d) so that the frame stays legible at page width.

    Args:
        spaces: layer -> the chapter's :class:`RepresentationSpace` at that layer.
        regions: regions kept per layer (each is a PNG in the page).
        seed: seed of the default regions.

    Returns:
        A :class:`~vizlib.chapters.widgets.StaticExplorer`.

    Example:
        >>> spaces = {"c2_1": low_space, "c5_3": high_space}                     # doctest: +SKIP
        >>> len(representation_static(spaces, regions=2))                          # doctest: +SKIP
        4
    """
    if not spaces:
        raise ValueError("representation_static needs at least one layer's space: pass {layer: space}")
    states = [(layer, r) for layer, space in spaces.items()
              for r in default_regions(space.embedding.xy, n=max(3, regions), seed=seed)[:regions]]
    labels = [f"{layer}, region at ({r.x:.2f}, {r.y:.2f}), size {r.size:.2f}" for layer, r in states]
    return static_explorer(states, lambda s: plot_representation_space(spaces[s[0]], [s[1]], zoom_cells=12, n_filters=0),
                           labels=labels, name="layer and region", dpi=90, frame_format="jpeg")
