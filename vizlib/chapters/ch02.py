"""Chapter 2, Receptive fields: Yu's Tables 1 and 2, computed and measured, drawn on a photo.

The computing is :func:`vizlib.receptive_fields` (analytic size, stride and
start per layer) and :func:`vizlib.empirical_receptive_field` (the gradient
footprint of one unit); this module sets them beside the papers' tables
(:func:`compare_with_paper`), explains the differences
(:func:`extra_pixels`), checks computed against measured for every layer
(:func:`measured_vs_computed`), and draws fields on a photo.
"""

from __future__ import annotations

from typing import Any, Sequence

import ipywidgets as W
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image
from torch import nn

from ..core.layers import layer_module
from ..core.tables import Table
from ..methods.receptive_field import _map_size, empirical_receptive_field, receptive_field, receptive_fields, unit_box
from . import paper_data
from .legibility import PAGE_INCHES
from .widgets import Explorer, StaticExplorer, explorer, show_figure, spread, static_explorer

__all__ = [
    "paper_data",
    "compare_with_paper",
    "matches",
    "extra_pixels",
    "receptive_field_table",
    "measured_vs_computed",
    "photo",
    "fit_image",
    "plot_receptive_field",
    "plot_receptive_field_growth",
    "plot_units",
    "receptive_field_explorer",
    "receptive_field_static",
]


def compare_with_paper(
    model: nn.Module,
    paper: dict[str, tuple[int, int]],
    *,
    empirical: bool = True,
    pool_kernel: int | None = None,
) -> "Table":
    """Receptive fields computed here beside a paper's table.

    Args:
        model: the network.
        paper: layer name -> (size, stride) as printed in the paper.
        empirical: add the measured footprint (:func:`empirical_receptive_field`)
            of the real network (not offered with ``pool_kernel``).
        pool_kernel: compute for a variant whose max pools have this window
            (see :func:`receptive_fields`).

    Returns:
        A :class:`~vizlib.core.tables.Table` with one row per paper layer and a
        ``match`` column (size and stride both equal).

    Example:
        >>> from vizlib.models import alexnet
        >>> t = compare_with_paper(alexnet(), paper_data.YU_TABLE2_ALEXNET, empirical=False, pool_kernel=2)
        >>> t.rows[1]                         # with 2×2 pooling windows, p1 is Yu's 15/8
        ['p1', 15, 8, 15, 8, True]
    """
    computed = {r.name: r for r in receptive_fields(model, pool_kernel=pool_kernel)}
    empirical = empirical and pool_kernel is None
    header = ["layer", "paper size", "paper stride", "computed size", "computed stride"]
    if empirical:
        header.append("measured size")
    header.append("match")
    rows = []
    for name, (size, stride) in paper.items():
        if name not in computed:
            raise KeyError(f"layer {name!r} of the paper's table is not a layer of this model ({', '.join(computed)})")
        r = computed[name]
        row: list = [name, size, stride, r.size, r.stride]
        if empirical:
            row.append(empirical_receptive_field(model, name).size[0])
        row.append(size == r.size and stride == r.stride)
        rows.append(row)
    title = getattr(model, "vizlib_title", None) or type(model).__name__
    variant = f", max pools of {pool_kernel}×{pool_kernel}" if pool_kernel else ""
    return Table(header, rows, f"Receptive fields of {title}{variant}: the paper's table against this computation")


def receptive_field_table(model: nn.Module, *, empirical: bool = True) -> "Table":
    """Size, stride and start of every named conv/pool layer, with the measured size beside.

    Example:
        >>> from vizlib.models import alexnet
        >>> receptive_field_table(alexnet()).rows[0]
        ['c1', 11, 4, -2, 11, True]
    """
    rows = []
    for r in receptive_fields(model):
        row: list = [r.name, r.size, r.stride, r.start]
        if empirical:
            fp = empirical_receptive_field(model, r.path)
            row += [fp.size[0], fp.size == (r.size, r.size)]
        rows.append(row)
    header = ["layer", "size", "stride", "start"] + (["measured size", "agree"] if empirical else [])
    return Table(header, rows, title=getattr(model, "vizlib_arch", ""))


def matches(table: Table) -> int:
    """How many rows of a :func:`compare_with_paper` table match the paper.

    Example:
        >>> matches(Table(["layer", "match"], [["c1", True], ["p1", False]]))
        1
    """
    return sum(bool(v) for v in table.column("match"))


def extra_pixels(model: nn.Module, paper: dict[str, tuple[int, int]]) -> list[str]:
    """Why Yu's Table 2 is smaller than AlexNet's real fields: one line per layer.

    A 3×3 pooling window adds one input pixel per pooling (of the layer's
    stride before it) over the 2×2 window Yu's numbers assume:
    ``(3 − 1)·j − (2 − 1)·j = j``, half the pooling's own stride.

    Example:
        >>> from vizlib.models import alexnet
        >>> extra_pixels(alexnet(), {"p1": (15, 8)})
        ['p1: computed 19 − paper 15 = 4; one extra pixel per pooling window so far (p1) adds 4']
    """
    real = {r.name: r for r in receptive_fields(model)}
    order = list(real)
    lines = []
    for name, (size, _stride) in paper.items():
        pools = [p for p in ("p1", "p2", "p5") if p in real and order.index(p) <= order.index(name)]
        extra = sum(real[p].stride // 2 for p in pools)
        lines.append(f"{name}: computed {real[name].size} − paper {size} = {real[name].size - size}; "
                     f"one extra pixel per pooling window so far ({', '.join(pools) or 'none'}) adds {extra}")
    return lines


def measured_vs_computed(nets: dict[str, nn.Module]) -> tuple[Table, int]:
    """For every convolution and max pooling of each net: computed field size, measured footprint, same box?

    Returns:
        The table, and how many rows agree (same size and same clipped box).

    Example:
        >>> from vizlib.models import alexnet
        >>> table, agree = measured_vs_computed({"AlexNet": alexnet()})
        >>> agree == len(table)
        True
    """
    rows = []
    for name, net in nets.items():
        for r in receptive_fields(net, all_layers=True):
            if isinstance(layer_module(net, r.path), (nn.Conv2d, nn.MaxPool2d)):
                fp = empirical_receptive_field(net, r.path)
                rows.append([name, r.path, r.size, fp.size[0], fp.box == unit_box(net, r.path, *fp.unit, fp.input_size)])
    agree = sum(r[2] == r[3] and r[4] for r in rows)
    return (Table(["network", "module", "computed size", "measured size", "same box"], rows,
                  "Computed fields against the measured gradient footprint, every convolution and pooling"), agree)


def photo(size: int = 224) -> np.ndarray:
    """scikit-image's cat photo (Chelsea), resized and centre-cropped to ``size`` (:func:`fit_image`).

    Example:
        >>> photo().shape, photo(64).dtype
        ((224, 224, 3), dtype('uint8'))
    """
    from skimage import data

    return fit_image(data.chelsea(), size)


def fit_image(image: Any, size: int) -> np.ndarray:
    """Resize the short side to ``size·256/224`` and centre-crop ``size`` (ImageNet-style), as uint8 HxWxC.

    Accepts a PIL image or an HxW / HxWxC array (uint8, or floats in [0, 1]).

    Example:
        >>> fit_image(np.zeros((300, 400, 3)), 224).shape
        (224, 224, 3)
        >>> int(fit_image(np.ones((50, 80)), 32).max())      # floats in [0, 1] become uint8
        255
    """
    if not isinstance(image, Image.Image):
        arr = np.asarray(image)
        if arr.dtype != np.uint8:
            arr = (np.clip(arr, 0, 1) * 255).astype(np.uint8)
        image = Image.fromarray(arr)
    short = round(size * 256 / 224)
    w, h = image.size
    scale = short / min(w, h)
    image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)))


def plot_receptive_field(
    image: np.ndarray,
    model: nn.Module,
    layer: str,
    y: int,
    x: int,
    *,
    ax: Any = None,
) -> Figure:
    """Draw the input patch one unit of ``layer`` sees on the image it is fed.

    Args:
        image: the network's input as an HxW(xC) array (see :func:`fit_image`).
        model: the network.
        layer: paper name or module path.
        y, x: the unit's position in the layer's feature map.

    Returns:
        The Figure: the image, the clipped field (solid) and, where padding
        cuts it, the unclipped field (dashed).

    Example:
        >>> from vizlib.models import alexnet
        >>> fig = plot_receptive_field(photo(), alexnet(), "c3", 6, 6)
        >>> fig.axes[0].get_title()
        'c3 unit (6, 6):\nrows 62–160, cols 62–160'
    """
    h, w = image.shape[:2]
    top, left, bottom, right = unit_box(model, layer, y, x, (h, w))
    rf = receptive_field(model, layer)
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
    t0, _ = rf.span(y)
    l0, _ = rf.span(x)
    ax.add_patch(Rectangle((l0 - 0.5, t0 - 0.5), rf.size, rf.size, fill=False, ls="--", lw=1, ec="white"))
    ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left, bottom - top, fill=False, lw=2, ec="red"))
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_title(f"{rf.name} unit ({y}, {x}):\nrows {top}–{bottom - 1}, cols {left}–{right - 1}", fontsize=9)
    ax.axis("off")
    return fig if fig is not None else ax.figure


def plot_receptive_field_growth(image: np.ndarray, model: nn.Module, layers: Sequence[str]) -> Figure:
    """The field of the centre unit of each layer, nested on one image.

    Example:
        >>> from vizlib.models import alexnet
        >>> fig = plot_receptive_field_growth(photo(), alexnet(), ["c1", "c3", "c5"])
        >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        ['c1: 11px', 'c3: 99px', 'c5: 163px']
    """
    h, w = image.shape[:2]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
    colours = matplotlib.colormaps["viridis"](np.linspace(0, 1, len(layers)))
    for name, colour in zip(layers, colours):
        rf = receptive_field(model, name)
        side = _map_size(model, rf.path, h)
        c = side // 2
        top, left, bottom, right = unit_box(model, name, c, c, (h, w))
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left, bottom - top, fill=False, lw=2, ec=colour,
                               label=f"{name}: {rf.size}px"))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    ax.set_title("receptive field of the centre unit, layer by layer", fontsize=9)
    ax.axis("off")
    fig.tight_layout()
    return fig


def plot_units(image: np.ndarray, model: nn.Module, units: Sequence[tuple[str, int, int]]) -> Figure:
    """Several units' fields side by side: ``units`` = ``[(layer, y, x), ...]``.

    Example:
        >>> from vizlib.models import alexnet
        >>> len(plot_units(photo(), alexnet(), [("c1", 0, 0), ("c5", 6, 6)]).axes)
        2
    """
    side = min(4.0, PAGE_INCHES / max(len(units), 1))  # the page's column
    fig, axes = plt.subplots(1, len(units), figsize=(side * len(units), side + 0.4), squeeze=False)
    for ax, (layer, y, x) in zip(axes[0], units):
        plot_receptive_field(image, model, layer, y, x, ax=ax)
    fig.tight_layout()
    return fig


def receptive_field_explorer(image: np.ndarray, model: nn.Module, layer: str | None = None) -> Explorer:
    """Pick a layer and a unit position; see the patch the unit sees on ``image``.

    On a layer change the unit moves to the same place in the image (its
    position scaled to the new map's side), and the note above the figure
    says where it went.

    Returns:
        An :class:`~vizlib.chapters.widgets.Explorer`; its first state is drawn at once.

    Example:
        >>> from vizlib.models import alexnet
        >>> layer, y, x = receptive_field_explorer(photo(), alexnet(), "c3").controls
        >>> layer.value, y.max, x.value                  # c3's maps are 13×13 on a 224 photo
        ('c3', 12, 6)
    """
    names = [r.name for r in receptive_fields(model)]
    pick = W.Dropdown(options=names, value=layer or names[len(names) // 2], description="layer")
    ys = W.IntSlider(description="y", continuous_update=False)
    xs = W.IntSlider(description="x", continuous_update=False)
    h = image.shape[0]

    def side(name: str) -> int:
        return _map_size(model, model.vizlib_layers.get(name, name) if hasattr(model, "vizlib_layers") else name, h)

    def update(change: dict | None) -> str | None:
        if change is None or change["owner"] is not pick:
            return None
        old, new = side(change["old"]), side(change["new"])
        before = (ys.value, xs.value)
        for s in (ys, xs):  # the same place in the image: the position scaled to the new side
            v = round(s.value * (new - 1) / max(old - 1, 1))
            if new - 1 > s.max:
                s.max = new - 1
            s.value = min(v, new - 1)
            s.max = new - 1
        if (ys.value, xs.value) == before:
            return None
        return (f"{change['new']}'s maps are {new}×{new} (those of {change['old']} {old}×{old}): the unit "
                f"(y, x) = {before} moved to {(ys.value, xs.value)}, the same place in the image.")

    def content() -> None:
        show_figure(plot_receptive_field(image, model, pick.value, ys.value, xs.value))

    for s in (ys, xs):
        s.max = side(pick.value) - 1
        s.value = s.max // 2  # set before the explorer observes: the first drawing is below
    return explorer([pick, ys, xs], content, update=update)


def receptive_field_static(image: np.ndarray, model: nn.Module, layers: Sequence[str] | None = None, *,
                           most: int = 8) -> StaticExplorer:
    """Kernel-free: layer by layer, the patch the centre unit sees (:func:`plot_receptive_field`), then a corner unit.

    The states are ``layers`` (default: every layer with a field, at most ``most`` spread over
    them), each at its map's centre unit; the last state is the top layer's unit (0, 0), whose
    field hangs over the image's border.

    Returns:
        A :class:`~vizlib.chapters.widgets.StaticExplorer`.

    Example:
        >>> from vizlib.models import alexnet
        >>> view = receptive_field_static(photo(), alexnet(), ["c1", "c5"])
        >>> view.labels
        ['c1 unit (27, 27)', 'c5 unit (6, 6)', 'c5 unit (0, 0)']
    """
    names = list(layers) if layers is not None else spread([r.name for r in receptive_fields(model)], most)
    h = image.shape[0]

    def side(name: str) -> int:
        return _map_size(model, model.vizlib_layers.get(name, name) if hasattr(model, "vizlib_layers") else name, h)

    states = [(name, (side(name) - 1) // 2, (side(name) - 1) // 2) for name in names] + [(names[-1], 0, 0)]
    return static_explorer(states, lambda s: plot_receptive_field(image, model, *s),
                           labels=[f"{n} unit ({y}, {x})" for n, y, x in states], name="layer and unit", dpi=90,
                           frame_format="jpeg")
