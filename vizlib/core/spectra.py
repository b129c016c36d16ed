"""Spatial frequencies of filters: one definition for the measure and the training penalty.

:func:`radial_frequency` gives the frequency of every bin of a zero-padded
FFT; :func:`high_frequency_energy` is the energy a bank of filters keeps above
a cut-off, differentiable, so that :mod:`vizlib.models.training` can penalise
it (``TrainConfig.first_layer_smooth``) with exactly the cut-off that
:func:`vizlib.methods.filters.high_frequency_share` measures.
"""

from __future__ import annotations

import torch

from .errors import ArgumentError

__all__ = ["radial_frequency", "high_frequency_energy"]


def radial_frequency(size: int, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None) -> torch.Tensor:
    """The radial frequency ``sqrt(fx² + fy²)`` in cycles per pixel of every bin of a ``size × size`` FFT.

    In ``torch.fft.fftfreq`` order (DC at ``[0, 0]``); from 0 to ``sqrt(2) / 2`` at the corners.

    Example:
        >>> f = radial_frequency(4)
        >>> float(f[0, 0]), float(f[0, 2]), round(float(f[2, 2]), 4)
        (0.0, 0.5, 0.7071)
    """
    fy = torch.fft.fftfreq(size, dtype=dtype, device=device).view(-1, 1)
    fx = torch.fft.fftfreq(size, dtype=dtype, device=device).view(1, -1)
    return (fy**2 + fx**2).sqrt()


def high_frequency_energy(weight: torch.Tensor, cutoff: float = 0.25, pad: int = 32) -> torch.Tensor:
    """The energy of filters ``(F, C, k, k)`` above ``cutoff`` cycles/px, summed over filters and channels.

    Each filter is zero-padded to ``pad × pad`` and Fourier transformed; the
    power at radial frequencies above ``cutoff`` is summed and divided by
    ``pad²`` (Parseval: with ``cutoff < 0`` the result is ``(weight ** 2).sum()``).
    Differentiable in ``weight``: its gradient is twice the filters'
    high-frequency part, cropped back to ``k × k``.

    Raises:
        ArgumentError: ``weight`` is not 4-D, or ``pad`` is smaller than the filters.

    Example:
        >>> w = torch.ones(1, 1, 3, 3)                      # a box filter: mostly low frequencies
        >>> bool(high_frequency_energy(w) < 0.5 * (w ** 2).sum())
        True
        >>> round(float(high_frequency_energy(w, cutoff=-1.0)), 4)
        9.0
    """
    if weight.ndim != 4:
        raise ArgumentError(f"filters must be (F, C, k, k); got shape {tuple(weight.shape)}")
    if pad < max(weight.shape[-2:]):
        raise ArgumentError(f"pad {pad} is smaller than the {weight.shape[-1]}×{weight.shape[-2]} filters; "
                            "pad to at least the kernel size")
    power = torch.fft.fft2(weight, s=(pad, pad)).abs().pow(2)
    high = radial_frequency(pad, weight.dtype, weight.device) > cutoff
    return power[..., high].sum() / pad**2
