"""First-layer filter analysis: what Zeiler & Fergus (§4.1, Fig. 6) compared between AlexNet and ZFNet.

* :func:`first_layer_filters` — the first convolution's weights;
* :func:`filter_spectrum` — how the filters cover low, mid and high
  frequencies ("little coverage of the mid frequencies");
* :func:`high_frequency_share` and :func:`init_similarity` — whether the
  filters learnt anything: their energy above the frequencies the input
  carries, and how close they still are to their random initialisation;
  :func:`image_high_frequency_share` — the same share for the images
  themselves, the reference for the filters';
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
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from ..core.errors import ArgumentError
from ..core.images import _unwrap, first_conv
from ..core.spectra import radial_frequency
from ..core.layers import resolve_layer
from .sparsity import Sparsity, conv_layers

__all__ = [
    "first_layer_filters",
    "FilterSpectrum",
    "filter_spectrum",
    "HighFrequencyShare",
    "high_frequency_share",
    "image_high_frequency_share",
    "InitSimilarity",
    "init_similarity",
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


def _power_spectra(net: Any, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each first-layer filter's power spectrum, zero-padded to ``size × size`` and summed over input
    channels: ``(F, size, size)`` float64, and the radial frequency ``sqrt(fx² + fy²)`` (cycles per
    pixel, ``torch.fft.fftfreq`` order) of every bin: ``(size, size)``."""
    w = first_layer_filters(net).double().cpu()
    if w.ndim != 4:
        raise ValueError(f"filters must be (F, C, k, k); got {tuple(w.shape)}")
    if size < max(w.shape[-2:]):
        raise ValueError(f"size {size} is smaller than the {w.shape[-1]}×{w.shape[-2]} filters")
    power = torch.fft.fft2(w, s=(size, size)).abs().pow(2).sum(1)
    return power, radial_frequency(size)


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
    power, f = _power_spectra(net, size)
    tot = power.sum((1, 2), keepdim=True)
    live = tot.flatten() > 0
    power = power[live] / tot[live]
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
class HighFrequencyShare:
    """How much of each first-layer filter's spectral energy lies above a frequency.

    A filter that learnt from images blurred to ``f`` cycles per pixel has no
    reason to keep energy far above ``f``; a filter that is still its random
    initialisation spreads its energy over all frequencies (white noise puts
    the band's share of the spectrum's area there).

    Attributes:
        median: the median of ``shares`` (NaN filters, all-zero ones, left out).
        shares: ``(F,)`` each filter's share of its power above ``cutoff`` (NaN for an all-zero filter).
        cutoff: the frequency in cycles per pixel (radial: ``sqrt(fx² + fy²) > cutoff``).
        pad: the FFT size the filters were zero-padded to.

    Example:
        >>> w = torch.ones(2, 1, 8, 8)              # constant filters as large as the FFT: all energy at DC
        >>> high_frequency_share(w, pad=8).median
        0.0
    """

    median: float
    shares: torch.Tensor
    cutoff: float
    pad: int


def high_frequency_share(model_or_net: Any, cutoff: float = 0.25, pad: int = 32) -> HighFrequencyShare:
    """Each first-layer filter's share of spectral energy above ``cutoff`` cycles per pixel, and the median.

    Each filter is zero-padded to ``pad × pad`` and Fourier transformed
    (``torch.fft.fft2``); its power is summed over input channels. The share is
    the power at radial frequencies ``sqrt(fx² + fy²) > cutoff`` (with
    ``torch.fft.fftfreq``'s frequencies, up to the corners at 0.71) over the
    total power, the mean (DC) included in the total.

    Args:
        model_or_net: a :class:`~vizlib.Net`, a model, or the weights ``(F, C, k, k)``.
        cutoff: the frequency in cycles per input pixel (0 .. 0.71).
        pad: FFT size (at least the kernel size).

    Returns:
        A :class:`HighFrequencyShare`: per-filter shares, their median and the settings.

    Raises:
        ArgumentError: ``cutoff`` is negative or not finite.
        ValueError: the filters are not ``(F, C, k, k)``, or ``pad`` is smaller than them.

    Example:
        >>> w = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(4, 4).view(1, 1, 8, 8)   # a checkerboard
        >>> round(high_frequency_share(w, pad=8).median, 6)
        1.0
    """
    if not np.isfinite(cutoff) or cutoff < 0:
        raise ArgumentError(f"cutoff must be a frequency of 0 cycles/px or more (Nyquist is 0.5), not {cutoff}")
    power, f = _power_spectra(model_or_net, pad)
    total = power.sum((1, 2))
    high = power[:, f > cutoff].sum(1)
    shares = torch.where(total > 0, high / total.clamp_min(1e-300), torch.full_like(total, float("nan")))
    return HighFrequencyShare(_median(shares), shares, float(cutoff), int(pad))


def image_high_frequency_share(images: torch.Tensor, cutoff: float = 0.25) -> HighFrequencyShare:
    """Each image's share of spectral energy above ``cutoff`` cycles per pixel, its mean removed.

    The reference for :func:`high_frequency_share`: how much of what the
    network is shown lies above the cut-off. Each image (channels summed
    after the transform, as for the filters) has its own mean subtracted, so a
    uniform brightness counts for nothing and a normalisation ``(x - m) / s``
    leaves the share unchanged; the spectrum is the image's own size (no
    padding). An image with nothing but its mean is NaN.

    Args:
        images: ``(N, C, H, W)`` or ``(N, H, W)``, as the network sees them (after resizing).
        cutoff: the frequency in cycles per pixel (0 .. 0.71).

    Returns:
        A :class:`HighFrequencyShare` over images instead of filters (``pad`` is the image's side).

    Raises:
        ArgumentError: ``cutoff`` is negative or not finite, or ``images`` is not 3- or 4-dimensional.

    Example:
        >>> x = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(4, 4).view(1, 1, 8, 8)  # a checkerboard
        >>> image_high_frequency_share(x).median
        1.0
    """
    if not np.isfinite(cutoff) or cutoff < 0:
        raise ArgumentError(f"cutoff must be a frequency of 0 cycles/px or more (Nyquist is 0.5), not {cutoff}")
    x = torch.as_tensor(images).double().cpu()
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4:
        raise ArgumentError(f"images must be (N, C, H, W) or (N, H, W); got shape {tuple(x.shape)}")
    scale = x.flatten(1).abs().amax(1)
    x = x - x.mean((-2, -1), keepdim=True)
    flat = x.flatten(1).abs().amax(1) <= 1e-9 * scale  # nothing but the mean (to rounding)
    power = torch.fft.fft2(x).abs().pow(2).sum(1)
    fy = torch.fft.fftfreq(x.shape[-2], dtype=torch.float64).view(-1, 1)
    fx = torch.fft.fftfreq(x.shape[-1], dtype=torch.float64).view(1, -1)
    f = (fy**2 + fx**2).sqrt()
    total = power.sum((1, 2))
    high = power[:, f > cutoff].sum(1)
    shares = torch.where(flat, torch.full_like(total, float("nan")), high / total.clamp_min(1e-300))
    return HighFrequencyShare(_median(shares), shares, float(cutoff), int(x.shape[-1]))


@dataclass
class InitSimilarity:
    """How far each first-layer filter has moved from its initial value.

    Attributes:
        median: the median of ``similarities`` (NaN ones left out).
        similarities: ``(F,)`` cosine similarity between each filter and the same filter at
            initialisation (1: only rescaled, 0: unrelated, -1: negated; NaN for an all-zero filter).

    Example:
        >>> w = torch.randn(3, 1, 5, 5)
        >>> round(init_similarity(w, -w).median, 6)
        -1.0
    """

    median: float
    similarities: torch.Tensor


def init_similarity(model_or_net: Any, initial: Any) -> InitSimilarity:
    """Cosine similarity between each first-layer filter and the same filter of ``initial``, and the median.

    A filter that training left as its random initialisation keeps a
    similarity near 1 (Zeiler's renormalisation only rescales filters, which
    the cosine ignores); one that learnt something else drops towards 0.

    Args:
        model_or_net: a :class:`~vizlib.Net`, a model, or the weights ``(F, C, k, k)``.
        initial: the same network at initialisation: a :class:`~vizlib.Net`, a model, its
            ``state_dict()`` (the first convolution's ``weight`` entry is read) or the weights.
            :func:`vizlib.models.bundled.initial_model` rebuilds a bundled net's.

    Returns:
        An :class:`InitSimilarity`: per-filter similarities and their median.

    Raises:
        ValueError: the two first layers differ in shape, or a state dict lacks the first convolution's weight.

    Example:
        >>> from vizlib.models import alexnet_fmnist
        >>> net = alexnet_fmnist(seed=0)
        >>> round(init_similarity(net, net.state_dict()).median, 6)
        1.0
    """
    w = first_layer_filters(model_or_net).double().cpu()
    if isinstance(initial, Mapping) and not isinstance(initial, nn.Module):
        model, _ = _unwrap(model_or_net) if not isinstance(model_or_net, torch.Tensor) else (None, None)
        conv = first_conv(model) if model is not None else None
        key = f"{conv[0]}.weight" if conv is not None else None
        if key not in initial:
            found = [k for k, v in initial.items() if torch.is_tensor(v) and v.ndim == 4]
            if key is None and found:
                key = found[0]
            else:
                raise ValueError(f"the state dict has no {key or 'convolution weight'} entry (it holds "
                                 f"{', '.join(list(initial)[:6])}...): give the initial model or its state_dict()")
        w0 = torch.as_tensor(initial[key]).detach().double().cpu()
    else:
        w0 = first_layer_filters(initial).double().cpu()
    if w.shape != w0.shape:
        raise ValueError(f"the first layers differ: {tuple(w.shape)} against the initial {tuple(w0.shape)}; "
                         "compare a net with its own initialisation")
    a, b = w.flatten(1), w0.flatten(1)
    norms = a.norm(dim=1) * b.norm(dim=1)
    sims = torch.where(norms > 0, (a * b).sum(1) / norms.clamp_min(1e-300), torch.full_like(norms, float("nan")))
    return InitSimilarity(_median(sims.clamp(-1.0, 1.0)), sims.clamp(-1.0, 1.0))


def _median(values: torch.Tensor) -> float:
    """The median of the finite values (the mean of the middle two for an even count); NaN when none."""
    v = values.numpy()
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else float("nan")


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
