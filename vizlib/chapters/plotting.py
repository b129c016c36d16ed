"""Figures for the chapters. Every function returns a matplotlib Figure."""

from __future__ import annotations

from typing import Any, Sequence

import matplotlib

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image
from torch import nn

from ..methods.architecture import Summary
from ..methods.receptive_field import receptive_field, unit_box

__all__ = ["plot_summary", "fit_image", "plot_receptive_field", "plot_receptive_field_growth"]


def plot_summary(summaries: Summary | Sequence[Summary]) -> Figure:
    """Parameters and multiply-adds per layer, one bar group per network (log scale).

    Example:
        >>> from vizlib.models import alexnet
        >>> from vizlib import summary
        >>> fig = plot_summary(summary(alexnet()))
    """
    items = [summaries] if isinstance(summaries, Summary) else list(summaries)
    fig, axes = plt.subplots(len(items), 2, figsize=(12, 2.8 * len(items)), squeeze=False)
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
            ax.set_title(f"{s.arch}: {label} per layer (total {sum(values):,})", fontsize=10)
    fig.tight_layout()
    return fig


def fit_image(image: Any, size: int) -> np.ndarray:
    """Resize the short side to ``size·256/224`` and centre-crop ``size`` (ImageNet-style), as uint8 HxWxC.

    Accepts a PIL image or an HxW / HxWxC array (uint8, or floats in [0, 1]).
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
    ax.set_title(f"{rf.name} unit ({y}, {x}): rows {top}–{bottom - 1}, cols {left}–{right - 1}", fontsize=9)
    ax.axis("off")
    return fig if fig is not None else ax.figure


def plot_receptive_field_growth(image: np.ndarray, model: nn.Module, layers: Sequence[str]) -> Figure:
    """The field of the centre unit of each layer, nested on one image."""
    h, w = image.shape[:2]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
    colours = matplotlib.colormaps["viridis"](np.linspace(0, 1, len(layers)))
    from ..methods.receptive_field import _map_size

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
