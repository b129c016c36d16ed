"""Chapter 3, the deconvnet (Zeiler & Fergus §2.1, Fig. 2 and Fig. 4; Yu et al. Fig. 4):
everything the chapter shows.

* the method on one image, step by step (:func:`deconv_steps`, :func:`plot_deconv_steps`),
  one projection (:func:`plot_projection`);
* the top nine per feature map over a dataset (:func:`plot_top_grid`, :func:`show_top_grids`);
* whole-layer reconstructions through the layers (:func:`reconstruction_layers`,
  :func:`reconstruction_rows`, :func:`plot_reconstructions`);
* the papers' readings measured: projection extent per layer (:func:`extent_table`,
  :func:`extent_claim`), energy on the object (:func:`energy_table`, :func:`energy_claim`);
* features through training (:func:`feature_evolution`, :func:`plot_feature_evolution`,
  :func:`settled_maps`, :func:`settled_claim`);
* the explorer (:func:`deconvnet_explorer`);
* the chapter's images (:func:`example_images`, :func:`example_dataset`, re-exposed from
  :mod:`vizlib.core.examples`).

The deconvnet itself is :mod:`vizlib.methods.deconvnet` and the top-k mining
:mod:`vizlib.methods.topk`; this module draws them, tabulates and judges what
their pictures show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import nn

from ..core.examples import ExampleImage, example_dataset, example_images
from ..core.hooks import preserved
from ..core.images import to_display
from ..core.layers import _walk
from ..core.measures import energy_inside
from ..core.tables import Table
from ..methods.deconvnet import Deconvnet, Projection, normalize_projection
from ..methods.receptive_field import receptive_field
from ..methods.topk import TopActivations, top_activations
from .claims import Claim, claims_table, number
from .legibility import PAGE_INCHES

__all__ = [
    "ExampleImage",
    "example_images",
    "example_dataset",
    "claims_table",
    "deconvnet_explorer",
    "deconvnet_static",
    "DeconvSteps",
    "deconv_steps",
    "plot_deconv_steps",
    "plot_projection",
    "plot_top_grid",
    "show_top_grids",
    "reconstruction_layers",
    "reconstruction_rows",
    "plot_reconstructions",
    "energy_extent",
    "top_extent",
    "EXTENT",
    "extent_table",
    "extent_claim",
    "OBJECT_AREA",
    "energy_table",
    "energy_claim",
    "FeatureEvolution",
    "feature_evolution",
    "plot_feature_evolution",
    "settled_maps",
    "settled_claim",
]


@dataclass
class DeconvSteps:
    """The first block of a network run forward and back for one pooled activation.

    Attributes (all for the chosen channel, as 2-D arrays unless noted):
        image: the input, ready for display.
        conv: the rectified first-layer map (what the pooling sees).
        pooled: the pooled map; ``position`` marks the activation kept.
        switches: ``(h, w)`` boolean, True where some pooling window took its maximum.
        unpooled: the kept activation put back at its switch (contributions add).
        rectified: after the ReLU on the way down.
        pixels: ``(C, H, W)`` after filtering with the transposed first-layer filters.
        channel, position: which activation was projected.

    Example:
        >>> from vizlib.models import alexnet
        >>> s = deconv_steps(alexnet(seed=0), torch.randn(3, 64, 64))
        >>> s.layer, s.conv.shape, s.pooled.shape, s.switches.shape, tuple(s.pixels.shape)
        ('p1', (15, 15), (7, 7), (15, 15), (3, 64, 64))
    """

    image: np.ndarray
    conv: np.ndarray
    pooled: np.ndarray
    switches: np.ndarray
    unpooled: np.ndarray
    rectified: np.ndarray
    pixels: torch.Tensor
    channel: int
    position: tuple[int, int]
    layer: str


def _first_block(model: nn.Module) -> tuple[nn.Conv2d, nn.MaxPool2d, str]:
    conv = pool = None
    for path, m in _walk(model):
        if conv is None and isinstance(m, nn.Conv2d):
            conv = m
        elif conv is not None and isinstance(m, nn.MaxPool2d):
            names = {p: n for n, p in getattr(model, "vizlib_layers", {}).items()}
            return conv, m, names.get(path, path)
        elif conv is not None and isinstance(m, nn.Conv2d):
            break
    raise ValueError("the network has no max pooling right after its first convolution; "
                     "the step-by-step view needs a conv -> ReLU -> max-pool first block")


def deconv_steps(model: nn.Module, image: torch.Tensor, channel: int | None = None,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> DeconvSteps:
    """Run the deconvnet by hand through the first block (conv, ReLU, max pooling), keeping every step.

    Args:
        model: the network (its first convolution and the max pooling after it are used).
        image: the prepared input ``(C, H, W)``.
        channel: the feature map to project; default the one with the strongest pooled activation.
        mean, std: the network's normalisation, for displaying the image.

    Returns:
        :class:`DeconvSteps`; its ``pixels`` equal ``Deconvnet(model).project(image, <pool>, channel)``.

    Raises:
        ValueError: channel out of range, or no conv -> pool first block.

    Example:
        >>> from vizlib.models import alexnet
        >>> net, x = alexnet(seed=0), torch.randn(3, 64, 64)
        >>> steps = deconv_steps(net, x, channel=5)
        >>> torch.allclose(steps.pixels, Deconvnet(net).project(x, steps.layer, 5, progress=False).full(0))
        True
    """
    conv, pool, label = _first_block(model)
    if channel is not None and not 0 <= channel < conv.out_channels:
        raise ValueError(f"channel {channel} is out of range: the first layer has {conv.out_channels} maps")
    x = image.unsqueeze(0).to(conv.weight.dtype)
    with preserved(model), torch.no_grad():
        a = F.relu(F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups))
        p, idx = F.max_pool2d(a, pool.kernel_size, pool.stride, pool.padding, pool.dilation, pool.ceil_mode,
                              return_indices=True)
        if channel is None:
            channel = int(p[0].flatten(1).amax(1).argmax())
        flat = int(p[0, channel].argmax())
        py, px = divmod(flat, p.shape[-1])
        h, w = a.shape[-2:]
        switches = torch.zeros(h * w, dtype=torch.bool)
        switches[idx[0, channel].flatten()] = True
        # unpool: the kept value goes back to its switch; overlapping windows would add (scatter_add)
        kept = torch.zeros_like(p[0, channel])
        kept[py, px] = p[0, channel, py, px]
        up = torch.zeros(h * w, dtype=a.dtype).scatter_add_(0, idx[0, channel].flatten(), kept.flatten())
        up = up.view(h, w)
        rect = F.relu(up)
        sig = torch.zeros_like(a)
        sig[0, channel] = rect
        out_pad = [x.shape[-2 + i] - ((sig.shape[-2 + i] - 1) * conv.stride[i] - 2 * conv.padding[i]
                                      + conv.dilation[i] * (conv.kernel_size[i] - 1) + 1) for i in range(2)]
        pixels = F.conv_transpose2d(sig, conv.weight, None, conv.stride, conv.padding, tuple(out_pad),
                                    conv.groups, conv.dilation)[0]
    return DeconvSteps(
        image=to_display(image, mean, std), conv=a[0, channel].numpy(), pooled=p[0, channel].numpy(),
        switches=switches.view(h, w).numpy(), unpooled=up.numpy(), rectified=rect.numpy(), pixels=pixels,
        channel=channel, position=(py, px), layer=label,
    )


def plot_deconv_steps(steps: DeconvSteps) -> Figure:
    """The forward block and the way down, panel by panel.

    Example:
        >>> from vizlib.models import alexnet
        >>> len(plot_deconv_steps(deconv_steps(alexnet(seed=0), torch.randn(3, 64, 64))).axes)
        6
    """
    fig, grid = plt.subplots(2, 3, figsize=(PAGE_INCHES, 5.6))  # two rows of three: the page's column
    axes = grid.flatten()
    grey = "gray" if steps.image.ndim == 2 else None
    axes[0].imshow(steps.image, cmap=grey)
    axes[0].set_title("input", fontsize=9)
    axes[1].imshow(steps.conv, cmap="magma")
    ys, xs = np.nonzero(steps.switches)
    axes[1].scatter(xs, ys, s=2, c="cyan", marker="s", linewidths=0)
    axes[1].set_title(f"map {steps.channel}, rectified,\nwith the switches (cyan)", fontsize=9)
    axes[2].imshow(steps.pooled, cmap="magma")
    axes[2].add_patch(Rectangle((steps.position[1] - 0.5, steps.position[0] - 0.5), 1, 1, fill=False, ec="cyan", lw=2))
    axes[2].set_title(f"{steps.layer}: keep the strongest\nactivation {steps.position}, zero the rest", fontsize=9)
    axes[3].imshow(steps.unpooled, cmap="magma")
    axes[3].set_title("unpool: back to its switch", fontsize=9)
    axes[4].imshow(steps.rectified, cmap="magma")
    axes[4].set_title("rectify", fontsize=9)
    axes[5].imshow(normalize_projection(steps.pixels), cmap="gray")
    axes[5].set_title("filter with the transposed\nfirst-layer filters: pixels", fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_projection(image: np.ndarray, projection: Projection, i: int = 0) -> Figure:
    """One projected activation: the image with the unit's field, the image patch, the projection.

    Example:
        >>> from vizlib.models import alexnet
        >>> x = torch.randn(3, 64, 64)
        >>> fig = plot_projection(to_display(x), Deconvnet(alexnet(seed=0)).project(x, "c2", [0], progress=False))
        >>> [ax.get_title() for ax in fig.axes][1]
        'the patch it sees'
    """
    top, left = (int(v) for v in projection.origin[i])
    h, w = projection.pixels.shape[-2:]
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    grey = "gray" if image.ndim == 2 else None
    axes[0].imshow(image, cmap=grey)
    axes[0].add_patch(Rectangle((left - 0.5, top - 0.5), w, h, fill=False, ec="red", lw=2))
    ch = None if projection.channel is None else int(projection.channel[i])
    pos = None if projection.position is None else tuple(int(v) for v in projection.position[i])
    axes[0].set_title(f"{projection.layer}, map {ch}, unit {pos}", fontsize=9)
    H, W = image.shape[:2]
    t0, l0 = max(top, 0), max(left, 0)
    b0, r0 = min(top + h, H), min(left + w, W)
    axes[1].imshow(image[t0:b0, l0:r0], cmap=grey)
    whole = (t0, l0, b0, r0) == (0, 0, H, W)  # the field covers the image: the "patch" is all of it
    axes[1].set_title("the patch it sees:\nthe whole image" if whole else "the patch it sees", fontsize=9)
    axes[2].imshow(projection.display(i), cmap="gray")
    axes[2].set_title(f"deconvnet projection\n(activation {float(projection.value[i]):.3g})", fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


def _tile(images: Sequence[np.ndarray], n: int = 3) -> np.ndarray:
    """Images in an n x n grid with 1-pixel white gaps; smaller ones (a field cut by the border) centred on grey."""
    h, w = max(i.shape[0] for i in images), max(i.shape[1] for i in images)
    shape = (n * h + n - 1, n * w + n - 1) + images[0].shape[2:]
    grid = np.ones(shape, dtype=float)
    for k, img in enumerate(images[: n * n]):
        r, c = divmod(k, n)
        cell = np.full((h, w) + images[0].shape[2:], 0.5)
        y, x = (h - img.shape[0]) // 2, (w - img.shape[1]) // 2
        cell[y:y + img.shape[0], x:x + img.shape[1]] = img
        grid[r * (h + 1): r * (h + 1) + h, c * (w + 1): c * (w + 1) + w] = cell
    return grid


def plot_top_grid(top: TopActivations, channels: Sequence[int] | None = None, *, per_row: int = 2) -> Figure:
    """Zeiler Fig. 2: for each map, its top-9 projections (left) beside the patches they come from (right).

    Each projection and patch is cut to the unit's receptive field (Zeiler's
    patches; a field cut by the image's border is centred on grey), so low
    layers show parts and high layers, whose fields cover the image, whole
    images. Two maps per row keep the figure legible in the page's column.

    Example:
        >>> from vizlib import top_patches
        >>> from vizlib.models import alexnet
        >>> top = top_patches(alexnet(seed=0), "c2", torch.randn(12, 3, 64, 64), 4, [0, 1], progress=False)
        >>> len(plot_top_grid(top, per_row=2).axes)        # per map: its projections, its patches
        4
    """
    if top.channels is None or top.projections is None:
        raise ValueError("this TopActivations has no patches yet: use vl.top_patches(...) or .collect(...)")
    have = [int(c) for c in top.channels]
    chosen = have if channels is None else [int(c) for c in channels]
    missing = [c for c in chosen if c not in have]
    if missing:
        raise ValueError(f"maps {missing} were not collected; collected: {have[:20]}...")
    n = int(round(np.sqrt(top.k))) if int(round(np.sqrt(top.k))) ** 2 == top.k else 3
    rows = -(-len(chosen) // per_row)
    side = min(2.3, PAGE_INCHES / (2 * per_row))
    fig, axes = plt.subplots(rows, 2 * per_row, figsize=(side * 2 * per_row, (side + 0.3) * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for j, c in enumerate(chosen):
        r, col = divmod(j, per_row)
        proj = [p for p in top.projection_images(c, clip=True)]
        patch = [p for p in top.patch_images(c, clip=True)]
        if not proj:
            continue
        grey = "gray" if proj[0].ndim == 2 else None
        axes[r, 2 * col].imshow(_tile(proj, n), cmap=grey, vmin=0, vmax=1)
        axes[r, 2 * col].set_title(f"{top.layer} map {c}", fontsize=9)
        axes[r, 2 * col + 1].imshow(_tile(patch, n), cmap="gray" if patch[0].ndim == 2 else None, vmin=0, vmax=1)
        axes[r, 2 * col + 1].set_title("patches", fontsize=9)
    fig.tight_layout()
    return fig


def show_top_grids(tops: dict[str, TopActivations], *, per_row: int = 2) -> None:
    """Display :func:`plot_top_grid` for each mined layer in turn (each figure closed once shown).

    Example:
        >>> show_top_grids({"c2": vl.top_patches(net, "c2", data, channels=range(4))})   # doctest: +SKIP
    """
    from .widgets import show_figure

    for top in tops.values():
        show_figure(plot_top_grid(top, per_row=per_row))


def reconstruction_layers(model: nn.Module, every: int = 2) -> list[str]:
    """Yu Fig. 4's layers: every ``every``-th convolutional layer from the bottom, the last
    convolution, and the last dense layer.

    Example:
        >>> from vizlib.models import alexnet
        >>> reconstruction_layers(alexnet()), reconstruction_layers(alexnet(), every=3)
        (['c1', 'c3', 'c5', 'fc8'], ['c1', 'c4', 'c5', 'fc8'])
    """
    names = list(getattr(model, "vizlib_layers", {}))
    if not names:
        raise ValueError("the model carries no paper layer names (build it with vizlib)")
    convs = [n for n in names if n.startswith("c")]
    chosen = convs[::every]
    if convs[-1] not in chosen:
        chosen.append(convs[-1])
    dense = [n for n in names if n.startswith("fc")]
    return chosen + dense[-1:]


def reconstruction_rows(nets: dict[str, Any], n: int = 3) -> dict[str, tuple[np.ndarray, dict[str, Projection]]]:
    """Yu Fig. 4's rows: for each net, its first ``n`` example images and their whole-layer
    reconstructions from :func:`reconstruction_layers` (one forward pass per image).

    Args:
        nets: a title -> :class:`~vizlib.Net` (``{"AlexNet": ..., "VGG-16": ...}``).
        n: images per net (:func:`example_images`).

    Returns:
        ``"<title>: <category>"`` -> (the image for display, layer -> :class:`~vizlib.methods.deconvnet.Projection`),
        ready for :func:`plot_reconstructions`.

    Example:
        >>> rows = reconstruction_rows({"AlexNet": vl.load("alexnet", "bundled")}, 1)   # doctest: +SKIP
        >>> list(rows), list(next(iter(rows.values()))[1])                               # doctest: +SKIP
        (['AlexNet: T-shirt/top'], ['c1', 'c3', 'c5', 'fc8'])
    """
    rows: dict[str, tuple[np.ndarray, dict[str, Projection]]] = {}
    for title, net in nets.items():
        dn = Deconvnet(net)
        layers = reconstruction_layers(net.model)
        for ex in example_images(net, n):
            img = ex.tensor(net)
            rows[f"{title}: {ex.category}"] = (to_display(img, net.mean, net.std), dn.project_layers(img, layers))
    return rows


def plot_reconstructions(rows: dict[str, tuple[np.ndarray, dict[str, Projection]]]) -> Figure:
    """Whole-layer reconstructions, one row per image: the image, then one panel per layer (low to high).

    Example:
        >>> import vizlib as vl
        >>> fig = plot_reconstructions(reconstruction_rows({"AlexNet": vl.load("alexnet", "bundled")}, 2))
        >>> len(fig.axes)                        # two rows: the image, then c1, c3, c5 and fc8
        10
    """
    panels = [1 + len(v[1]) for v in rows.values()]
    longest = max(panels)
    # at most six panels a line, so the figure fits the page's column; a longer row wraps
    n_cols = -(-longest // -(-longest // 6))
    lines = [-(-p // n_cols) for p in panels]
    size = min(2.2, PAGE_INCHES / n_cols)
    fig, axes = plt.subplots(sum(lines), n_cols, figsize=(size * n_cols, (size + 0.45) * sum(lines)), squeeze=False)
    for r, (title, (image, projections)) in enumerate(rows.items()):
        first = sum(lines[:r])
        cells = [axes[first + k // n_cols, k % n_cols] for k in range(lines[r] * n_cols)]
        cells[0].imshow(image, cmap="gray" if image.ndim == 2 else None)
        net_name, _, category = title.rpartition(": ")
        cells[0].set_title(category, fontsize=9)
        if net_name:  # the net's name beside its row, as a row label (the figure's panels are narrow)
            cells[0].text(-0.06, 0.5, net_name, rotation=90, ha="right", va="center", fontsize=9,
                          transform=cells[0].transAxes)
        for c, (layer, p) in enumerate(projections.items(), start=1):
            cells[c].imshow(p.display(0), cmap="gray")
            cells[c].set_title(layer, fontsize=9)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    return fig


def energy_extent(pixels: torch.Tensor, share: float = 0.9) -> float:
    """The fraction of a projection's area that holds ``share`` of its energy.

    Energy is the squared projection summed over colour channels. A projection
    that concentrates on a few pixels (an edge, a corner) scores low; one
    spread over its whole window (a large structure, an object) scores high.

    Args:
        pixels: ``(C, H, W)`` one projection.
        share: the share of the energy to hold.

    Returns:
        In (0, 1]; 0.0 for an all-zero projection.

    Example:
        >>> x = torch.zeros(1, 4, 4); x[0, 0, 0] = 1.0
        >>> energy_extent(x)
        0.0625
    """
    e = pixels.detach().double().pow(2).sum(0).flatten()
    total = float(e.sum())
    if total == 0.0:
        return 0.0
    ranked = e.sort(descending=True).values.cumsum(0)
    needed = int(torch.searchsorted(ranked, torch.tensor(share * total, dtype=ranked.dtype))) + 1
    return min(needed, e.numel()) / e.numel()


def top_extent(top: TopActivations, share: float = 0.9) -> float:
    """Median :func:`energy_extent` of all collected top-k projections of a layer, relative to
    the receptive-field window (positions outside the image excluded).

    Example:
        >>> from vizlib.models import alexnet
        >>> net, data = alexnet(seed=0), torch.randn(6, 3, 64, 64)
        >>> top = top_activations(net, "c1", data, k=2, progress=False).collect(net, data, [0, 3], progress=False)
        >>> 0 < top_extent(top) <= 1
        True
    """
    if top.projections is None:
        raise ValueError("this TopActivations has no projections yet: use vl.top_patches(...)")
    values = []
    for m in range(top.projections.shape[0]):
        for j in range(top.projections.shape[1]):
            p = top.projections[m, j]
            if float(p.abs().sum()) > 0:
                values.append(energy_extent(p, share))
    return float(np.median(values)) if values else 0.0


#: The extent table's measured column.
EXTENT = "projection extent (px holding 90 % of energy)"


def extent_table(net: Any, tops: dict[str, TopActivations], share: float = 0.9) -> Table:
    """Zeiler's "larger structures higher up", measured: per mined layer, its receptive field and
    the extent of its top-k projections (:func:`top_extent` in input pixels, rounded to whole pixels).

    Args:
        net: the :class:`~vizlib.Net` the layers belong to.
        tops: layer -> :class:`~vizlib.methods.topk.TopActivations` with collected projections, low to high.
        share: the share of the energy the extent holds.

    Example:
        >>> extent_table(net, tops).header                                      # doctest: +SKIP
        ['layer', 'receptive field (px)', 'projection extent (px holding 90 % of energy)']
    """
    rows = [[layer, receptive_field(net.model, layer).size, int(round(top_extent(top, share) * top.projections.shape[-1] ** 2))]
            for layer, top in tops.items()]
    return Table(["layer", "receptive field (px)", EXTENT], rows,
                 title=f"Zeiler: larger structures higher up. The area holding {share:.0%} of a top-k projection's "
                       "energy (median over the maps shown)")


def extent_claim(table: Table) -> Claim:
    """Zeiler & Fergus §4 (Fig. 2): higher layers respond to larger structures. Supported when the extent
    printed in :func:`extent_table` grows (or stays) from each layer to the next.

    Example:
        >>> t = Table(["layer", "receptive field (px)", EXTENT], [["c2", 51, 599], ["c3", 99, 1054]])
        >>> extent_claim(t).verdict
        'supported'
    """
    layers, extent = table.column("layer"), table.column(EXTENT)
    holds = all(a <= b for a, b in zip(extent, extent[1:])) if len(extent) > 1 else None
    measured = "extent " + ", ".join(f"{layer} {v:,} px" for layer, v in zip(layers, extent))
    return Claim.judge("Zeiler & Fergus §4 (Fig. 2)", "higher layers respond to larger structures "
                       "(the extent grows with depth at every step)", measured, holds)


#: The energy table's last column.
OBJECT_AREA = "object's share of the image"


def energy_table(net: Any, examples: Sequence[ExampleImage], deconvnet: Deconvnet | None = None) -> Table:
    """Yu's "high layers keep the object", measured: the share of each whole-layer reconstruction's
    energy on the object (:func:`vizlib.energy_inside`), per image and layer of
    :func:`reconstruction_layers`, beside the object's share of the input's area.

    The object is the image's own (:meth:`ExampleImage.object_mask`: a garment's pixels, a photo's
    drawn box, carried into the net's input); images with no object region are left out.
    Shares are rounded to 3 decimals.

    Example:
        >>> net = vl.load("alexnet", "bundled")                        # doctest: +SKIP
        >>> energy_table(net, example_images(net, 1)).header           # doctest: +SKIP
        ['image', 'c1', 'c3', 'c5', 'fc8', "object's share of the image"]
    """
    dn = deconvnet or Deconvnet(net)
    layers = reconstruction_layers(net.model)
    rows = []
    for ex in examples:
        mask = ex.object_mask(net)
        if mask is None:
            continue
        projections = dn.project_layers(ex.tensor(net), layers)
        rows.append([ex.category] + [round(float(energy_inside(projections[layer].full(0), mask)), 3) for layer in layers]
                    + [round(float(mask.float().mean()), 3)])
    return Table(["image"] + layers + [OBJECT_AREA], rows,
                 title="share of each whole-layer reconstruction's energy on the object")


def energy_claim(table: Table) -> Claim:
    """Yu et al. §4.2: the last layer's reconstruction keeps the object's most discriminative parts.

    Supported when, for every image of :func:`energy_table` that can show it, the top layer's share
    exceeds the object's share of the area (what energy spread evenly would give). An image cannot
    show it when its share is missing (an all-zero reconstruction) or its object fills the whole
    input (area share 1: nothing outside to drop); not testable when no image can.

    Example:
        >>> t = Table(["image", "c1", "fc8", OBJECT_AREA], [["Trouser", 0.298, 0.448, 0.343], ["tabby", 1.0, 1.0, 1.0]])
        >>> c = energy_claim(t)
        >>> c.verdict, c.measured
        ('supported', "fc8 share vs object's area: Trouser 0.448 vs 0.343, tabby 1 vs 1; above for 1 of the 1 images whose object leaves part of the input")
    """
    top = table.header[-2] if len(table.header) > 2 else "the top layer"
    pairs = [(r[0], r[-2], r[-1]) for r in table.rows]
    valid = [(s, a) for _, s, a in pairs if not np.isnan(s) and a < 1]
    above = sum(s > a for s, a in valid)
    measured = (f"{top} share vs object's area: " + ", ".join(f"{name} {number(s)} vs {number(a)}" for name, s, a in pairs)
                + f"; above for {above} of the {len(valid)} images whose object leaves part of the input"
                if pairs else "no image with an object region")
    return Claim.judge("Yu et al. §4.2 (Fig. 4)", "the last layer's reconstruction keeps the object (its most "
                       "discriminative parts)", measured, above == len(valid) if valid else None)


# --------------------------------------------------------------------------- Zeiler Fig. 4


@dataclass
class FeatureEvolution:
    """Zeiler Fig. 4: feature maps of one layer, each shown at several points of training.

    Attributes:
        layer: the layer's label.
        channels: the feature maps shown (rows).
        epochs: the snapshots, in order (columns; 0 = before training).
        projections: ``[row][column]`` the deconvnet projection of the map's strongest
            activation over the data at that epoch, on its receptive field (grey is zero).
        patches: ``[row][column]`` the image patch that activation comes from.
        values: ``(rows, columns)`` the strongest activation itself.
        image_index: ``(rows, columns)`` the image it comes from (a change between
            columns is one of Zeiler's "sudden jumps in appearance").

    Example:
        >>> grey = np.full((7, 7), 0.5)
        >>> FeatureEvolution("c1", [0], [0, 5], [[grey, grey]], [[grey, grey]], np.ones((1, 2)), np.zeros((1, 2), int))
        FeatureEvolution('c1', maps [0], epochs [0, 5])
    """

    layer: str
    channels: list[int]
    epochs: list[int]
    projections: list[list[np.ndarray]]
    patches: list[list[np.ndarray]]
    values: np.ndarray
    image_index: np.ndarray

    def __repr__(self) -> str:
        return f"FeatureEvolution({self.layer!r}, maps {self.channels}, epochs {self.epochs})"


def feature_evolution(
    snapshots: dict[int, Any],
    layer: str,
    data: Any,
    *,
    channels: Sequence[int] | None = None,
    n: int = 6,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = False,
) -> FeatureEvolution:
    """Zeiler Fig. 4: how chosen feature maps of a layer evolve through training.

    For each snapshot of one training run, the strongest activation of each
    chosen map over ``data`` is found (one streaming pass per snapshot) and
    projected to pixels by the deconvnet, as Zeiler & Fergus do at epochs
    1, 2, 5, 10, 20, 30, 40 and 64 for "a randomly chosen subset of model
    features".

    Args:
        snapshots: epoch -> network (a :class:`~vizlib.Net` or module), all of one
            run, e.g. ``{e: vl.load_bundled("zfnet", epoch=e) for e in vl.bundled_snapshots("zfnet")}``.
        layer: the layer's paper name (``"c1"`` ... ``"c5"``).
        data: the images, prepared for these networks (they share one preprocessing).
        channels: the maps to show; default ``n`` maps drawn at random (seeded) among those
            with a positive activation on ``data`` at the last snapshot: a map that died in
            training has nothing to project at the end (chapter 6 counts such dead filters).
            Pass ``channels`` to show any map, dead ones included.
        n: how many maps to draw when ``channels`` is not given.
        seed: seed of that draw.
        batch_size: images per forward pass.
        progress: show progress bars.

    Returns:
        A :class:`FeatureEvolution` (draw it with :func:`plot_feature_evolution`).

    Raises:
        ValueError: no snapshots; a channel outside the layer's maps.

    Example:
        >>> from vizlib.models.bundled import load_bundled
        >>> snaps = {e: load_bundled("zfnet", epoch=e) for e in (0, 1, 2)}
        >>> evo = feature_evolution(snaps, "c2", example_dataset(snaps[2], limit=16), channels=[3, 7])
        >>> evo.epochs, evo.channels, evo.values.shape
        ([0, 1, 2], [3, 7], (2, 3))
    """
    if not snapshots:
        raise ValueError("no snapshots given: pass {epoch: net}, e.g. from vl.load_bundled(arch, epoch=e)")
    epochs = sorted(int(e) for e in snapshots)
    tops = {e: top_activations(snapshots[e], layer, data, k=1, batch_size=batch_size, progress=progress)
            for e in epochs}
    last = tops[epochs[-1]].values[:, 0]
    live = [int(c) for c in torch.nonzero(last > 0).flatten()] or list(range(len(last)))
    chosen = _choose_maps(int(last.shape[0]), layer, channels, n, seed, among=live)
    columns = []  # per epoch: (projection, patch, value, image) of each chosen map
    for e in epochs:
        net = snapshots[e]
        top = tops[e].collect(net, data, channels=chosen, batch_size=min(batch_size, 16), progress=False)
        columns.append([(top.projection_images(c)[0], top.patch_images(c)[0], float(top.values[c, 0]),
                         int(top.image_index[c, 0])) for c in chosen])
    rows = list(zip(*columns))  # rows[map][epoch]
    return FeatureEvolution(
        layer, chosen, epochs,
        projections=[[cell[0] for cell in row] for row in rows],
        patches=[[cell[1] for cell in row] for row in rows],
        values=np.array([[cell[2] for cell in row] for row in rows], dtype=np.float64),
        image_index=np.array([[cell[3] for cell in row] for row in rows], dtype=np.int64),
    )


def _choose_maps(n_maps: int, layer: str, channels: Sequence[int] | None, n: int, seed: int,
                 among: Sequence[int] | None = None) -> list[int]:
    """The maps given (checked against the layer), or ``n`` drawn at random with ``seed`` from ``among``
    (default: all ``n_maps``; when ``among`` is all of them the draw is the same)."""
    if channels is None:
        pool = np.arange(n_maps) if among is None else np.asarray(sorted(among), dtype=np.int64)
        return sorted(int(c) for c in np.random.default_rng(seed).choice(pool, size=min(n, len(pool)), replace=False))
    chosen = [int(c) for c in channels]
    bad = [c for c in chosen if not 0 <= c < n_maps]
    if bad:
        raise ValueError(f"{layer} has {n_maps} feature maps (0 to {n_maps - 1}); got {bad}")
    return chosen


def settled_maps(snapshots: dict[int, Any], layers: Sequence[str], data: Any, *, batch_size: int = 64,
                 progress: bool = False) -> Table:
    """Zeiler's "lower layers converge within a few epochs", measured: per layer and snapshot,
    the share of *all* the layer's feature maps whose strongest activation over ``data`` already
    comes from the same image as in the last snapshot (one streaming pass per snapshot and layer).

    Args:
        snapshots: epoch -> network, all of one run (see :func:`feature_evolution`).
        layers: paper names of the layers.
        data: the images, prepared for these networks.
        batch_size: images per forward pass.
        progress: show progress bars.

    Returns:
        A :class:`~vizlib.Table`: a row per layer, a column per epoch (the last is 1 by definition).

    Example:
        >>> import vizlib as vl
        >>> snaps = vl.load_snapshots("zfnet")
        >>> settled_maps(snaps, ["c1"], example_dataset(snaps[max(snaps)], limit=16)).column(f"epoch {max(snaps)}")
        [1.0]
    """
    if not snapshots:
        raise ValueError("no snapshots given: pass {epoch: net}, e.g. from vl.load_snapshots(arch)")
    epochs = sorted(int(e) for e in snapshots)
    rows = []
    for layer in layers:
        strongest = {e: top_activations(snapshots[e], layer, data, k=1, batch_size=batch_size,
                                        progress=progress).image_index[:, 0] for e in epochs}
        final = strongest[epochs[-1]]
        rows.append([layer, len(final)] + [round(float((strongest[e] == final).float().mean()), 3) for e in epochs])
    return Table(["layer", "maps"] + [f"epoch {e}" for e in epochs], rows,
                 "share of feature maps whose strongest image is already the final one")


def settled_claim(settled: Table) -> Claim:
    """Zeiler & Fergus §4 (Fig. 4): the lower layers converge within a few epochs, the upper ones later.
    Read from :func:`settled_maps` at the snapshot halfway through (the middle epoch column):
    supported when the lowest layer has the larger share of settled maps than the highest.

    Example:
        >>> t = Table(["layer", "maps", "epoch 0", "epoch 5", "epoch 9"], [["c1", 32, 0.1, 0.6, 1.0], ["c5", 64, 0.0, 0.3, 1.0]])
        >>> settled_claim(t).measured
        'at epoch 5: c1 0.600 of its maps settled, c5 0.300'
    """
    epochs = [c for c in settled.header if c.startswith("epoch")]
    mid = epochs[len(epochs) // 2]
    col = settled.header.index(mid)
    (low_layer, low), (high_layer, high) = (settled.rows[0][0], settled.rows[0][col]), (settled.rows[-1][0], settled.rows[-1][col])
    measured = f"at {mid}: {low_layer} {number(low)} of its maps settled, {high_layer} {number(high)}"
    return Claim.judge("Zeiler & Fergus §4 (Fig. 4)", "lower layers converge first, upper layers develop later",
                       measured, low > high if len(settled.rows) > 1 else None)


def plot_feature_evolution(evo: FeatureEvolution, *, size: float = 1.1) -> Figure:
    """Zeiler Fig. 4's block for one layer: a row per map, a column per epoch (projections).

    Example:
        >>> from vizlib.models.bundled import load_bundled
        >>> nets = {0: load_bundled("zfnet", epoch=0), 2: load_bundled("zfnet", epoch=2)}
        >>> fig = plot_feature_evolution(feature_evolution(nets, "c1", example_dataset(nets[2], limit=16), n=3))
        >>> len(fig.axes)                                  # 3 maps × 2 epochs
        6
    """
    rows, cols = len(evo.channels), len(evo.epochs)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols + 0.8, size * rows + 0.5), squeeze=False)
    for r, c in enumerate(evo.channels):
        for j, e in enumerate(evo.epochs):
            ax = axes[r, j]
            img = evo.projections[r][j]
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"epoch {e}", fontsize=8)
            if j == 0:
                ax.set_ylabel(f"map {c}", fontsize=8)
    fig.suptitle(f"{evo.layer}: strongest activation per map, projected, through training", fontsize=9)
    fig.tight_layout()
    return fig


def deconvnet_explorer(net: Any, examples: Sequence[ExampleImage], tops: dict[str, TopActivations] | None = None,
                       layer: str | None = None) -> Any:
    """Pick an image, a layer and a feature map: see the map's strongest activation projected,
    and (when ``tops`` holds the layer's mining results) the map's top-9 over the dataset.

    Only maps with something to show are offered: those that respond to the
    image (a positive activation somewhere) and those with a top-9 grid,
    marked "top-9 grid" in the list. A line above the figure says how many
    maps respond and which have a grid. The map is kept across a change of
    image or layer when it is still offered; otherwise the strongest map on
    the image is shown and the note says why.

    Args:
        net: a :class:`vizlib.Net`.
        examples: the images (:func:`example_images`).
        tops: layer -> :class:`~vizlib.methods.topk.TopActivations` with collected patches.
        layer: the starting layer (default: the last convolution); the first map is the
            strongest on the first image.

    Returns:
        An :class:`~vizlib.chapters.widgets.Explorer`; its first state is drawn at once.

    Example:
        >>> deconvnet_explorer(net, example_images(net, 3), tops, layer="c5")   # doctest: +SKIP
    """
    import ipywidgets as W

    from IPython.display import display

    from .widgets import Explorer, Words, show_figure

    dn = Deconvnet(net)
    convs = [n for n in net.layers if n.startswith(("c", "p"))]
    start = layer or [n for n in convs if n.startswith("c")][-1]
    peaks: dict[tuple[int, str], torch.Tensor] = {}

    def peak(i: int, name: str) -> torch.Tensor:
        """Each map's strongest activation on image ``i``."""
        if (i, name) not in peaks:
            rec = dn.record(examples[i].tensor(net), [name])
            peaks[(i, name)] = rec.activation(name)[0].flatten(1).amax(1)
        return peaks[(i, name)]

    def mined(name: str) -> list[int]:
        top = (tops or {}).get(name)
        return [] if top is None or top.channels is None else sorted(int(c) for c in top.channels)

    def options(i: int, name: str) -> list[tuple[str, int]]:
        live = set(int(c) for c in torch.nonzero(peak(i, name) > 0).flatten())
        grids = set(mined(name))
        return [(f"{c} · top-9 grid" if c in grids else str(c), c) for c in sorted(live | grids)]

    def strongest(i: int, name: str) -> int:
        return int(peak(i, name).argmax())

    pick_img = W.Dropdown(options=[(e.name, i) for i, e in enumerate(examples)], description="image")
    pick_layer = W.Dropdown(options=convs, value=start, description="layer")
    first = options(0, start)
    pick_map = W.Dropdown(options=first, value=strongest(0, start) if first else None, description="map")

    def update(change: dict | None) -> str | None:
        if change is None or change["owner"] is pick_map:
            return None
        wanted, i, name = pick_map.value, pick_img.value, pick_layer.value
        pick_map.options = options(i, name)
        values = [v for _, v in pick_map.options]
        if wanted in values:
            pick_map.value = wanted
            return None
        if not values:
            return f"no map of {name} responds to {examples[i].name}, and none has a top-9 grid."
        pick_map.value = strongest(i, name) if strongest(i, name) in values else values[0]
        n = len(peak(i, name))
        why = (f"{name} has {n} maps, numbered 0–{n - 1}" if wanted >= n else
               f"map {wanted} of {name} does not respond to {examples[i].name} (no positive activation) "
               f"and has no top-9 grid")
        return f"{why}: showing map {pick_map.value}, the strongest on this image."

    def content() -> None:
        i, name, c = pick_img.value, pick_layer.value, pick_map.value
        ex = examples[i]
        p = peak(i, name)
        live, grids = int((p > 0).sum()), mined(name)
        grid_words = (f"maps {', '.join(map(str, grids))} also have a top-9 grid over the dataset (marked in the list)"
                      if grids else f"no top-9 grids were mined for {name}")
        display(Words(f"{name}: {live} of {len(p)} maps respond to {ex.name} and are offered; {grid_words}."))
        if c is None:
            return
        x = ex.tensor(net)
        if float(p[c]) > 0:
            proj = dn.project(x, name, c, progress=False)
            show_figure(plot_projection(to_display(x, net.mean, net.std), proj, 0))
        else:
            display(Words(f"Map {c} does not respond to {ex.name} (no positive activation); "
                          "its top nine over the dataset:"))
        if c in grids:
            show_figure(plot_top_grid(tops[name], [c], per_row=1))  # type: ignore[index]

    return Explorer([[pick_img, pick_layer, pick_map]], content, update=update)


def deconvnet_static(tops: dict[str, TopActivations], per_layer: int = 3) -> Any:
    """Kernel-free: layer by layer, a few feature maps' top-9 over the dataset (:func:`plot_top_grid`).

    The states are the mined maps (the strongest first in each layer's mining), ``per_layer`` of
    each layer spread over its list, in layer order; every frame is the map's top-9 projections
    beside the patches they come from, as in the explorer and the chapter's grids.

    Args:
        tops: layer -> :class:`~vizlib.methods.topk.TopActivations` with collected patches.
        per_layer: maps kept per layer (each is a PNG in the page).

    Returns:
        A :class:`~vizlib.chapters.widgets.StaticExplorer`.

    Raises:
        ValueError: no layer of ``tops`` has collected maps.

    Example:
        >>> from vizlib import top_patches
        >>> from vizlib.models import alexnet
        >>> top = top_patches(alexnet(seed=0), "c2", torch.randn(12, 3, 64, 64), 4, [0, 1, 2], progress=False)
        >>> len(deconvnet_static({"c2": top}, per_layer=2))
        2
    """
    from .widgets import spread, static_explorer

    states = [(name, int(c)) for name, top in tops.items() if top.channels is not None and len(top.channels)
              for c in spread(list(top.channels), per_layer)]
    if not states:
        raise ValueError("no layer in tops has collected maps: mine them with top.collect(...) first")
    return static_explorer(states, lambda s: plot_top_grid(tops[s[0]], [s[1]], per_row=1),
                           labels=[f"{name} map {c}" for name, c in states], name="layer and map", dpi=110,
                           frame_format="jpeg")
