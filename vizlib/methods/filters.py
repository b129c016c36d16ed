"""First-layer filter analysis: what Zeiler & Fergus (§4.1, Fig. 6) compared between AlexNet and ZFNet.

* :func:`first_layer_filters` — the first convolution's weights;
* :func:`filter_spectrum` — how the filters cover low, mid and high
  frequencies ("little coverage of the mid frequencies");
* :func:`rms_dominance` — each filter's RMS and how far the largest stands
  above the median (Fig. 6a: without renormalisation "a few of them dominate");
* :func:`dead_filters` — filters never active over a sample, or with
  negligible weights ("fewer dead features");
* :func:`first_stride` and :func:`grid_contrast` — the first layer's stride
  and how strongly a grid of that period shows in projections (the
  "aliasing artifacts" of layer 2).

Example::

    import vizlib as vl
    net = vl.load("zfnet", "bundled")
    vl.filter_spectrum(net).bands            # {'low': ..., 'mid': ..., 'high': ...}
    vl.methods.filters.rms_dominance(net).dominance
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.images import _unwrap, first_conv
from ..core.layers import resolve_layer
from .sparsity import Sparsity, conv_layers

__all__ = [
    "first_layer_filters",
    "FilterSpectrum",
    "filter_spectrum",
    "FilterRMS",
    "rms_dominance",
    "DeadFilters",
    "dead_filters",
    "first_stride",
    "grid_contrast",
]


def first_layer_filters(net: Any) -> torch.Tensor:
    """The first convolution's weights ``(F, C, k, k)`` (a copy).

    Args:
        net: a :class:`~vizlib.Net`, a model, or the weights themselves.

    Raises:
        ValueError: the network has no convolution.

    Example:
        >>> from vizlib.models import zfnet
        >>> tuple(first_layer_filters(zfnet(seed=0)).shape)
        (96, 3, 7, 7)
    """
    if isinstance(net, torch.Tensor):
        return net.detach().clone()
    model, _ = _unwrap(net)
    conv = first_conv(model) if model is not None else None
    if conv is None:
        raise ValueError("the network has no convolution")
    return conv[1].weight.detach().clone()


@dataclass
class FilterSpectrum:
    """Radially averaged power spectrum of a bank of filters.

    Attributes:
        freqs: bin centres in cycles per input pixel (0 .. 0.5).
        profile: mean power at each radius, each filter's spectrum scaled to
            unit total power and averaged over filters, relative to a flat
            spectrum (a single-pixel filter reads 1 everywhere).
        bands: band -> share of spectral energy (``low``, ``mid``, ``high``), averaged over filters.
        edges: the band edges in cycles per pixel.
        size: the FFT size the filters were zero-padded to.

    Example:
        >>> from vizlib.models import zfnet
        >>> s = filter_spectrum(first_layer_filters(zfnet(seed=0)))
        >>> sorted(s.bands), len(s.freqs) == len(s.profile)
        (['high', 'low', 'mid'], True)
    """

    freqs: np.ndarray
    profile: np.ndarray
    bands: dict[str, float]
    edges: tuple[float, float]
    size: int


def filter_spectrum(net: Any, size: int = 64, edges: tuple[float, float] = (1 / 6, 1 / 3)) -> FilterSpectrum:
    """How the first-layer filters cover the frequencies (Zeiler §4.1: "little coverage of the mid frequencies").

    Each filter is zero-padded to ``size × size`` and Fourier transformed; its
    power (summed over input channels) is scaled to a total of 1 so each
    filter counts the same. The power is then split by radial frequency
    ``f = sqrt(fx² + fy²)`` in cycles per input pixel into low (``f < edges[0]``),
    mid and high (``f >= edges[1]``, up to the corners at 0.71) bands and
    averaged over filters; the radial profile averages the power in rings of
    width ``1/size`` up to the Nyquist frequency 0.5. The mean (DC) counts as low.

    Args:
        net: a net, a model, or the weights ``(F, C, k, k)``.
        size: FFT size (at least the kernel size).
        edges: the two band edges in cycles per pixel.

    Example:
        >>> w = torch.zeros(1, 1, 3, 3); w[0, 0, 1, 1] = 1          # a delta: flat spectrum
        >>> s = filter_spectrum(w, size=30)
        >>> round(sum(s.bands.values()), 6)
        1.0
    """
    w = first_layer_filters(net).double().cpu()
    if w.ndim != 4:
        raise ValueError(f"filters must be (F, C, k, k); got {tuple(w.shape)}")
    if size < max(w.shape[-2:]):
        raise ValueError(f"size {size} is smaller than the {w.shape[-1]}×{w.shape[-2]} filters")
    power = torch.fft.fft2(w, s=(size, size)).abs().pow(2).sum(1)  # (F, size, size)
    tot = power.sum((1, 2), keepdim=True)
    live = tot.flatten() > 0
    power = power[live] / tot[live]
    fy = torch.fft.fftfreq(size, dtype=torch.float64).view(-1, 1)
    fx = torch.fft.fftfreq(size, dtype=torch.float64).view(1, -1)
    f = (fy**2 + fx**2).sqrt()
    lo, hi = edges
    bands = {
        "low": float(power[:, f < lo].sum(1).mean()),
        "mid": float(power[:, (f >= lo) & (f < hi)].sum(1).mean()),
        "high": float(power[:, f >= hi].sum(1).mean()),
    }
    mean_power = power.mean(0).flatten().numpy()
    ring = (f * size).round().long().flatten().numpy()
    nbins = size // 2 + 1
    keep = ring < nbins  # rings up to the Nyquist frequency 0.5; the corners beyond count in the bands only
    sums = np.bincount(ring[keep], weights=mean_power[keep], minlength=nbins)
    counts = np.bincount(ring[keep], minlength=nbins)
    profile = sums / np.maximum(counts, 1) * size * size  # a flat spectrum reads 1
    return FilterSpectrum(np.arange(nbins) / size, profile, bands, (lo, hi), size)


@dataclass
class FilterRMS:
    """The RMS of each filter of a layer, as Zeiler & Fergus define it (root mean square of its weights).

    Attributes:
        rms: ``(F,)`` one value per filter.
        largest, median: of ``rms``.
        dominance: ``largest / median``: far above 1 when one filter dominates (Zeiler Fig. 6a).

    Example:
        >>> from vizlib.models import zfnet
        >>> r = rms_dominance(zfnet(seed=0))
        >>> r.rms.shape, r.largest >= r.median
        (torch.Size([96]), True)
    """

    rms: torch.Tensor
    largest: float
    median: float
    dominance: float

    def strongest(self, n: int = 3) -> list[int]:
        """The ``n`` filters of largest RMS, largest first."""
        return self.rms.argsort(descending=True)[:n].tolist()


def rms_dominance(net: Any, layer: str | None = None) -> FilterRMS:
    """Filter RMS of a convolution (default: the first) and how far the largest stands above the median.

    Args:
        net: a :class:`~vizlib.Net`, a model, or the weights ``(F, ...)``.
        layer: paper name or module path of a convolution (a paper name that
            points at the ReLU after it means the convolution before).

    Example:
        >>> conv = nn.Conv2d(1, 3, 1, bias=False)
        >>> _ = conv.weight.data.copy_(torch.tensor([1.0, 1.0, 10.0]).view(3, 1, 1, 1))
        >>> rms_dominance(nn.Sequential(conv)).dominance
        10.0
    """
    if isinstance(net, torch.Tensor):
        w = net.detach()
    else:
        model, _ = _unwrap(net)
        if layer is None:
            w = first_layer_filters(model)
        else:
            _, path = resolve_layer(model, layer)
            mod = model.get_submodule(path)
            if not isinstance(mod, nn.Conv2d):  # a paper name points at the ReLU: take the conv before it
                order = [p for p, _ in model.named_modules()]
                convs = [m for p, m in model.named_modules()
                         if isinstance(m, nn.Conv2d) and order.index(p) <= order.index(path)]
                if not convs:
                    raise ValueError(f"no convolution at or before layer {layer!r}")
                mod = convs[-1]
            w = mod.weight.detach()
    rms = w.double().pow(2).mean(dim=tuple(range(1, w.ndim))).sqrt().cpu()
    largest, median = float(rms.max()), float(rms.median())
    return FilterRMS(rms, largest, median, largest / median if median > 0 else float("inf"))


@dataclass
class DeadFilters:
    """Dead first-layer filters (Zeiler Fig. 6: ZFNet has "fewer dead features").

    A filter is **dead** when its rectified response is exactly zero at every
    position of every image of the sample (``silent``), or when its weights
    have negligible RMS: below ``rms_floor`` times the layer's median filter
    RMS (``faint``).

    Attributes:
        layer: the layer examined.
        filters: how many filters it has.
        silent: filters never active over the sample.
        faint: filters with negligible weights.
        images: images in the sample.
        rms_floor: the RMS threshold, as a fraction of the median.

    Example:
        >>> from vizlib.methods.sparsity import Sparsity
        >>> from vizlib.models import alexnet_fmnist
        >>> zeros_per_map = torch.tensor([5] + [0] * 31)          # map 0 is zero at all its 5 positions
        >>> counts = Sparsity("net", ["c1"], {"c1": 5}, {"c1": 160}, {"c1": zeros_per_map}, {"c1": 5}, 1)
        >>> d = dead_filters(alexnet_fmnist(seed=0), counts)
        >>> d.layer, d.filters, d.silent
        ('c1', 32, [0])
    """

    layer: str
    filters: int
    silent: list[int]
    faint: list[int]
    images: int
    rms_floor: float

    @property
    def dead(self) -> list[int]:
        """Silent or faint filters, in order."""
        return sorted(set(self.silent) | set(self.faint))

    @property
    def share(self) -> float:
        """The share of the layer's filters that are dead."""
        return len(self.dead) / self.filters

    def __str__(self) -> str:
        return (f"{len(self.dead)} of {self.filters} {self.layer} filters dead ({self.share:.1%}): "
                f"{len(self.silent)} never active over {self.images} images, "
                f"{len(self.faint)} with RMS below {self.rms_floor:g}× the median")


def dead_filters(net: Any, counts: Sparsity, layer: str | None = None, rms_floor: float = 0.01) -> DeadFilters:
    """Dead filters of a layer (default: the first convolution), from a :class:`~vizlib.methods.sparsity.Sparsity`
    count over a sample.

    Args:
        net: the network the counts were made with.
        counts: :func:`vizlib.layer_sparsity` over the sample, including ``layer``.
        layer: paper name of a convolution (default: the first, ``c1`` / ``c1_1``).
        rms_floor: weights count as negligible below this fraction of the median filter RMS.

    Raises:
        KeyError: ``layer`` was not counted.

    Example:
        >>> from vizlib.models import alexnet_fmnist
        >>> from vizlib import layer_sparsity
        >>> net = alexnet_fmnist(seed=0)
        >>> d = dead_filters(net, layer_sparsity(net, torch.randn(4, 1, 64, 64), ["c1"], progress=False))
        >>> d.filters
        32
    """
    model, _ = _unwrap(net)
    layer = layer or conv_layers(model)[0]
    silent = counts.dead_maps(layer)
    rms = rms_dominance(model, layer)
    faint = torch.nonzero(rms.rms < rms_floor * rms.median).flatten().tolist()
    return DeadFilters(layer, len(rms.rms), silent, faint, counts.images, rms_floor)


def first_stride(net: Any) -> int:
    """The stride of the first convolution (AlexNet 4, ZFNet 2, VGG-16 1).

    Example:
        >>> from vizlib.models import alexnet, zfnet
        >>> first_stride(alexnet()), first_stride(zfnet())
        (4, 2)
    """
    model, _ = _unwrap(net)
    conv = first_conv(model)
    if conv is None:
        raise ValueError("the network has no convolution")
    s = conv[1].stride
    return int(s[0] if isinstance(s, tuple) else s)


def grid_contrast(images: torch.Tensor, stride: int) -> float:
    """How strongly a grid with the period of a stride shows in projections (Zeiler §4.1's aliasing).

    The last step of the deconvnet is the first layer's transposed
    convolution, which stamps its filters every ``s`` pixels; with a large
    stride the stamps show as a grid (Zeiler's "aliasing artifacts"). On such
    a grid the pixels' energy depends on their position modulo ``s``. So the
    pixels are sorted into the ``s × s`` phases ``(y mod s, x mod s)``, each
    phase's mean energy is taken (squared values, summed over channels and
    images), and the contrast is the standard deviation of those
    ``s²`` means over their mean: 0 when every phase carries the same energy
    (no grid), ``sqrt(s² - 1)`` when one phase carries it all.

    Args:
        images: ``(C, H, W)`` or ``(N, C, H, W)`` projections.
        stride: the period in pixels (the first layer's stride).

    Returns:
        The contrast, or NaN for projections that are zero everywhere.

    Example:
        >>> grid = torch.zeros(1, 32, 32); grid[:, ::4, ::4] = 1
        >>> round(grid_contrast(grid, 4), 4) == round(15 ** 0.5, 4)
        True
    """
    x = images.detach().double().cpu()
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4:
        raise ValueError(f"projections must be (C, H, W) or (N, C, H, W); got {tuple(images.shape)}")
    if stride < 2:
        raise ValueError(f"a stride of {stride} makes no grid; the contrast needs a stride of 2 or more")
    h, w = (x.shape[-2] // stride) * stride, (x.shape[-1] // stride) * stride
    if h < 2 * stride or w < 2 * stride:
        raise ValueError(f"projections of {x.shape[-2]}×{x.shape[-1]} are too small for a period of {stride}")
    x = x[..., :h, :w]
    e = x.pow(2).sum((0, 1))  # (h, w)
    phases = e.view(h // stride, stride, w // stride, stride).mean((0, 2))  # (s, s)
    mean = float(phases.mean())
    if mean == 0.0:
        return float("nan")
    return float(phases.std(unbiased=False)) / mean
