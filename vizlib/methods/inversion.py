"""Network inversion (Mahendran & Vedaldi 2015, regulariser-based): an image from one layer's representation.

Masum §III-B: "an arbitrary layer can be used to reconstruct an image that
illustrates the CNN layer-level feature for a given input image ...
Mahendran et al. ... uses gradient descent with a regularization term to
reconstruct the image from each layer". Given an image ``x0`` and a layer's
representation ``Phi0 = Phi(x0)``, :func:`invert` looks for the image ``x``
that minimises

    x0_sigma^2 * ||Phi(x) - Phi0||^2 / ||Phi0||^2  +  lambda_tv / 2 * V_beta(x)  +  lambda_alpha / 2 * sum |x|^alpha

by gradient descent with momentum, for every chosen layer at once (one batch:
one copy of the image per layer, one forward pass to the deepest layer; each
copy's loss reads only its own layer, so each gets its own gradient).

The constants are the authors' (their code, ``deep-goggle``:
``experiments/experiment_cnn.m`` and ``core/invert_nn.m``; the survey does not
give them and the paper itself is not in this project's papers):

* ``alpha = 6`` with ``lambda_alpha = 8e-10`` (their ``beta``/``lambdaL2``), the
  TV exponent ``beta = 2`` (``TVbeta``);
* ``lambda_tv`` by depth, as their runs on AlexNet's 20 layers: 1 for layers 1-6
  (conv1 to relu2), 10 for 7-12 (pool2 to relu4), 100 for 13-20 (conv5 to fc8).
  :func:`tv_weight` gives any paper name its group (VGG's stages the same way);
* 400 steps of momentum 0.9 at learning rates ``0.004 x (1 for 100 steps, 0.1 for
  200, 0.01 for 100)``, the momentum reset when the rate changes;
* the start: Gaussian noise scaled to the norm ``x0_sigma``; the feature term
  scaled by ``x0_sigma^2`` as in their update (their ``x0_sigma`` is the typical
  norm of an image, from a separate dataset; here, by default, the norm of the
  image being inverted).

Their images are in Caffe's units: pixel values 0..255, the mean subtracted.
A :class:`~vizlib.Net`'s input ``u = (p - mean) / std`` (``p`` in 0..1) is
optimised as ``x = 255 * std * u`` so that the constants mean what they meant
there; for a bare module the unit is the module's input (``pixel_scale=1``).

:attr:`Inversion.feature_error` is the normalised reconstruction error
``||Phi(x) - Phi0||^2 / ||Phi0||^2`` per layer, and
:attr:`Inversion.pixel_correlation` the Pearson correlation of the
reconstruction's pixels with the original's.

Example::

    net = vl.load("alexnet", "bundled")
    x = vl.example_images(net)[0].tensor        # any prepared (1, C, H, W) image
    inv = vl.invert(net, x)                     # every layer
    inv.table()
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..core.args import whole_number
from ..core.device import on_device
from ..core.errors import ArgumentError
from ..core.hooks import Capture, preserved
from ..core.images import _unwrap, check_image, to_display
from ..core.layers import layer_names, resolve_layer
from ..core.tables import Table

__all__ = ["Inversion", "invert", "tv_weight", "authors_schedule", "ALPHA", "BETA", "LAMBDA_ALPHA", "MOMENTUM"]

ALPHA = 6  #: the alpha-norm's exponent (the paper's alpha; ``opts.beta`` in the authors' code)
BETA = 2  #: the total variation's exponent (``TVbeta``)
LAMBDA_ALPHA = 8e-10  #: the alpha-norm's weight (``lambdaL2``), for images in Caffe's units
MOMENTUM = 0.9

_CONV = re.compile(r"^c(\d+)(?:_\d+)?$")
_POOL = re.compile(r"^[pn](\d+)$")


def authors_schedule() -> list[float]:
    """The authors' learning rates: 0.004 for 100 steps, 0.0004 for 200, 0.00004 for 100 (400 in all).

    Example:
        >>> s = authors_schedule()
        >>> len(s), s[0], s[100], s[-1]
        (400, 0.004, 0.0004, 4e-05)
    """
    return [0.004] * 100 + [0.004 * 0.1] * 200 + [0.004 * 0.01] * 100


def tv_weight(layer: str) -> float:
    """The TV weight the authors gave a layer at its depth: 1 up to the second conv stage, 10 from the
    second pooling to the fourth stage, 100 from the fifth stage and on the dense layers.

    Their AlexNet runs: layers 1-6 (conv1, relu1, pool1, norm1, conv2, relu2) 1; 7-12 (pool2, norm2,
    conv3, relu3, conv4, relu4) 10; 13-20 (conv5, relu5, pool5, fc6, relu6, fc7, relu7, fc8) 100. A name
    that is not a paper name (a module path) gets the middle value, 10.

    Example:
        >>> [tv_weight(n) for n in ("c1", "n1", "c2", "p2", "c4", "c5", "fc8", "c2_2", "c3_1", "p5")]
        [1.0, 1.0, 1.0, 10.0, 10.0, 100.0, 100.0, 1.0, 10.0, 100.0]
    """
    if layer.startswith("fc"):
        return 100.0
    m = _CONV.match(layer)
    if m:
        k = int(m.group(1))
        return 1.0 if k <= 2 else 10.0 if k <= 4 else 100.0
    m = _POOL.match(layer)
    if m:
        k = int(m.group(1))
        return 1.0 if k <= 1 else 10.0 if k <= 4 else 100.0
    return 10.0


@dataclass
class Inversion:
    """Reconstructions of an image from the representations of several layers.

    Attributes:
        layers: the layers inverted, in forward order.
        images: ``(N, L, C, H, W)`` the reconstruction of image ``n`` from layer ``l`` (input space).
        original: ``(N, C, H, W)`` the images inverted.
        feature_error: ``(N, L)`` ``||Phi(x) - Phi0||^2 / ||Phi0||^2`` of each reconstruction at its layer.
        pixel_correlation: ``(N, L)`` Pearson correlation of each reconstruction's pixels with the original's.
        lambda_tv: the TV weight of each layer.
        steps: the steps taken.
        error_history: ``(len(history_steps), N, L)`` the feature error during the descent.
        history_steps: the steps at which it was recorded.
        settings: ``alpha``, ``beta``, ``lambda_alpha``, ``momentum``, ``x0_sigma``, ``pixel_scale``, ``lr``.
        mean, std: the network's normalisation, for display.

    Example:
        >>> inv = Inversion(["c1"], torch.zeros(1, 1, 1, 4, 4), torch.zeros(1, 1, 4, 4), torch.tensor([[0.01]]),
        ...                 torch.tensor([[0.99]]), [1.0], 400)
        >>> inv.error("c1"), inv.correlation("c1")
        (0.01, 0.99)
    """

    layers: list[str]
    images: torch.Tensor
    original: torch.Tensor
    feature_error: torch.Tensor
    pixel_correlation: torch.Tensor
    lambda_tv: list[float]
    steps: int
    error_history: torch.Tensor | None = None
    history_steps: list[int] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __repr__(self) -> str:
        return f"Inversion({len(self.original)} image(s) from {len(self.layers)} layers: {', '.join(self.layers)})"

    def _col(self, layer: str) -> int:
        if layer not in self.layers:
            raise KeyError(f"layer {layer!r} was not inverted; inverted: {', '.join(self.layers)}")
        return self.layers.index(layer)

    def error(self, layer: str, image: int = 0) -> float:
        """The normalised feature-space error of the reconstruction from ``layer``."""
        return float(self.feature_error[image, self._col(layer)])

    def correlation(self, layer: str, image: int = 0) -> float:
        """The pixel correlation of the reconstruction from ``layer`` with the original."""
        return float(self.pixel_correlation[image, self._col(layer)])

    def image(self, layer: str, image: int = 0) -> np.ndarray:
        """The reconstruction from ``layer``, ready for ``plt.imshow``."""
        return to_display(self.images[image, self._col(layer)], self.mean, self.std)

    def original_image(self, image: int = 0) -> np.ndarray:
        """The image inverted, ready for ``plt.imshow``."""
        return to_display(self.original[image], self.mean, self.std)

    def table(self, image: int = 0) -> Table:
        """Layer, TV weight, feature error and pixel correlation, one row per layer."""
        rows = [[layer, self.lambda_tv[i], float(self.feature_error[image, i]), float(self.pixel_correlation[image, i])]
                for i, layer in enumerate(self.layers)]
        return Table(["layer", "lambda_tv", "feature error", "pixel correlation"], rows,
                     "Mahendran & Vedaldi inversion, layer by layer")


def _tv(x: torch.Tensor, beta: float) -> torch.Tensor:
    """The authors' ``V^beta`` per image: differences to the next column and row (zero past the last)."""
    d1 = torch.zeros_like(x)
    d2 = torch.zeros_like(x)
    d1[..., :, :-1] = x[..., :, 1:] - x[..., :, :-1]
    d2[..., :-1, :] = x[..., 1:, :] - x[..., :-1, :]
    v = d1 * d1 + d2 * d2
    if beta != 2:
        v = (v + 1e-10).pow(beta / 2)
    return v.flatten(1).sum(1)


def _pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a = a.flatten(1).double()
    b = b.flatten(1).double()
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-30)


def _positive(value: Any, name: str, *, zero: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ArgumentError(f"{name} must be a number, not {value!r} (type {type(value).__name__})")
    v = float(value)
    if not math.isfinite(v) or v < 0 or (not zero and v == 0):
        raise ArgumentError(f"{name} must be a finite number {'>= 0' if zero else '> 0'}, not {value!r}")
    return v


def invert(
    net: Any,
    image: torch.Tensor,
    layers: str | Sequence[str] | None = None,
    *,
    lr: float | Sequence[float] | None = None,
    steps: int | None = None,
    alpha: float = ALPHA,
    beta: float = BETA,
    lambda_alpha: float = LAMBDA_ALPHA,
    lambda_tv: float | Sequence[float] | None = None,
    momentum: float = MOMENTUM,
    x0_sigma: float | None = None,
    pixel_scale: float | Sequence[float] | None = None,
    record_every: int = 25,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> Inversion:
    """Reconstruct images from the representations of layers (Mahendran & Vedaldi 2015).

    Args:
        net: a :class:`~vizlib.Net` or an ``nn.Module``.
        image: a prepared ``(C, H, W)`` image or a batch ``(N, C, H, W)``.
        layers: one layer or several (paper names or module paths); default every named layer
            (their Fig. 6: every layer of the net).
        lr: the learning rates, one per step (or one number for every step); default
            :func:`authors_schedule`. The momentum is reset when the rate changes.
        steps: how many steps (default: one per learning rate; with one number, 400).
        alpha, lambda_alpha: the alpha-norm's exponent and weight.
        beta: the total variation's exponent.
        lambda_tv: one TV weight for every layer or one per layer; default :func:`tv_weight` per layer.
        momentum: the momentum.
        x0_sigma: the typical norm of an image in the optimised units; default the norm of each image.
        pixel_scale: input space to the authors' units (Caffe's 0..255): default ``255 * std`` for a
            Net, 1 for a bare module.
        record_every: record the feature error every this many steps (0: never).
        seed: the seed of the starting noise.
        device: where to compute (default: where the model lives).

    Returns:
        An :class:`Inversion`.

    Raises:
        ImageError, InputTooSmall: an image the net cannot take.
        LayerError: an unknown layer; ArgumentError: a bad number, an empty layer list, a ``lambda_tv``
            list of the wrong length, no named layers to default to.
        ValueError: a layer with an all-zero representation of the image (nothing to normalise by).
        DeviceError: ``device`` not available here.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Identity())
        >>> x = torch.randn(1, 1, 4, 4, generator=torch.Generator().manual_seed(0))
        >>> inv = invert(net, x, "0", lr=0.04, steps=300, lambda_alpha=0, lambda_tv=0)
        >>> bool(torch.allclose(inv.images[0, 0], x[0], atol=1e-5))
        True
    """
    module, _ = _unwrap(net, need="invert")
    x0 = check_image(image, module, batch=True)
    if layers is None:
        names = layer_names(module)
        if not names:
            raise ArgumentError("this model carries no paper layer names: say which layers to invert "
                                "(layers=['features.3', ...])")
        chosen = names
    else:
        chosen = [layers] if isinstance(layers, (str, nn.Module)) else list(layers)
        if not chosen:
            raise ArgumentError("layers is empty: give at least one layer (or leave it out for every layer)")
    resolved = [resolve_layer(module, layer) for layer in chosen]
    order = {p: i for i, (p, _) in enumerate(module.named_modules())}
    resolved = sorted(dict(resolved).items(), key=lambda lp: order[lp[1]])  # forward order, each once
    labels = [label for label, _ in resolved]
    if lr is None:
        schedule = authors_schedule()
    elif isinstance(lr, (int, float, np.integer, np.floating)) and not isinstance(lr, bool):
        schedule = [_positive(lr, "lr", zero=False)] * 400
    else:
        schedule = [_positive(v, "every lr", zero=False) for v in lr]
        if not schedule:
            raise ArgumentError("lr is empty: give a rate, a list of rates, or leave it out (the authors')")
    if steps is not None:
        steps = whole_number(steps, "steps", at_least=1)
        schedule = (schedule + [schedule[-1]] * steps)[:steps]
    alpha, beta = _positive(alpha, "alpha", zero=False), _positive(beta, "beta", zero=False)
    lambda_alpha, momentum = _positive(lambda_alpha, "lambda_alpha"), _positive(momentum, "momentum")
    if momentum >= 1:
        raise ArgumentError(f"momentum must be below 1, not {momentum}")
    if lambda_tv is None:
        tvs = [tv_weight(label) for label in labels]
    elif isinstance(lambda_tv, (int, float, np.integer, np.floating)) and not isinstance(lambda_tv, bool):
        tvs = [_positive(lambda_tv, "lambda_tv")] * len(labels)
    else:
        tvs = [_positive(v, "every lambda_tv") for v in lambda_tv]
        if len(tvs) != len(labels):
            raise ArgumentError(f"lambda_tv has {len(tvs)} values for {len(labels)} layers ({', '.join(labels)}): "
                                "give one per layer, one for all, or leave it out (the authors' by depth)")
    if x0_sigma is not None:
        x0_sigma = _positive(x0_sigma, "x0_sigma", zero=False)
    record_every = whole_number(record_every, "record_every", at_least=0)
    seed = whole_number(seed, "seed", at_least=0)
    std = getattr(net, "std", None) if module is not net else None
    c = x0.shape[1]
    if pixel_scale is None:
        scale_l = [255.0 * float(s) for s in std] if std is not None else [1.0] * c
    elif isinstance(pixel_scale, (int, float, np.integer, np.floating)) and not isinstance(pixel_scale, bool):
        scale_l = [_positive(pixel_scale, "pixel_scale", zero=False)] * c
    else:
        scale_l = [_positive(v, "every pixel_scale", zero=False) for v in pixel_scale]
    if len(scale_l) != c:
        raise ArgumentError(f"pixel_scale has {len(scale_l)} values for {c}-channel images")

    module, dev = on_device(module, device)
    p0 = next(module.parameters(), None)
    dtype = p0.dtype if p0 is not None and p0.is_floating_point() else torch.float32
    n, L = x0.shape[0], len(labels)
    paths = [p for _, p in resolved]
    scale = torch.tensor(scale_l, dtype=dtype, device=dev).view(1, c, 1, 1)
    u0 = x0.to(dev, dtype)
    with preserved(module), Capture(module, paths, detach=False, stop=True) as cap:
        for p in module.parameters():
            p.requires_grad_(False)
        with torch.no_grad():
            out = cap.run(u0)
            target = [out[label].detach().clone() for label in labels]  # each (N, ...)
        norms = torch.stack([t.flatten(1).pow(2).sum(1) for t in target], 1)  # (N, L): ||Phi0||^2
        if not (norms > 0).all():
            i, j = (norms <= 0).nonzero()[0].tolist()
            raise ValueError(f"the representation of image {i} at layer {labels[j]} is all zeros: there is nothing "
                             "to reconstruct from (and no norm to divide by); choose another layer or image")
        x_orig = u0 * scale
        sig = (torch.full((n,), float(x0_sigma), dtype=dtype, device=dev) if x0_sigma is not None
               else x_orig.flatten(1).norm(dim=1))  # (N,)
        sig2 = sig.pow(2).repeat_interleave(L)  # (N*L,) image-major: copy n*L + l is image n at layer l
        norm_flat = norms.reshape(-1)
        tv_w = torch.tensor(tvs, dtype=dtype, device=dev).repeat(n)
        gen = torch.Generator().manual_seed(seed)
        noise = torch.randn(n, *x0.shape[1:], generator=gen, dtype=torch.float64).to(dtype)
        noise = noise / noise.flatten(1).norm(dim=1).view(-1, 1, 1, 1) * sig.cpu().view(-1, 1, 1, 1)
        x = noise.to(dev).repeat_interleave(L, 0).clone()  # the same start for each layer of an image
        vel = torch.zeros_like(x)
        history: list[torch.Tensor] = []
        hist_steps: list[int] = []
        prev = None

        def feature_errors(xx: torch.Tensor) -> torch.Tensor:
            feats = cap.run(xx / scale)
            errs = []
            for j, label in enumerate(labels):
                f = feats[label].view(n, L, -1)[:, j]
                errs.append((f - target[j].flatten(1)).pow(2).sum(1))
            return torch.stack(errs, 1)  # (N, L)

        for t, rate in enumerate(schedule, start=1):
            if rate != prev:
                vel.zero_()  # as the authors: a new rate starts with no momentum
                prev = rate
            xg = x.detach().requires_grad_(True)
            err = feature_errors(xg).reshape(-1)  # (N*L,)
            loss = (sig2 * err / norm_flat).sum()
            if tv_w.any():
                loss = loss + (tv_w / 2 * _tv(xg, beta)).sum()
            if lambda_alpha > 0:
                loss = loss + lambda_alpha / 2 * xg.abs().pow(alpha).sum()
            (grad,) = torch.autograd.grad(loss, xg)
            with torch.no_grad():
                vel.mul_(momentum).sub_(rate * grad)
                x = x + vel
            if record_every and (t % record_every == 0 or t == len(schedule)):
                history.append((err.detach() / norm_flat).view(n, L).cpu())
                hist_steps.append(t)
        with torch.no_grad():
            final = (feature_errors(x) / norms).cpu()
    recon = (x / scale).detach().cpu().view(n, L, *x0.shape[1:])
    corr = torch.stack([_pearson(recon[:, j], x0.cpu()) for j in range(L)], 1).float()
    mean = getattr(net, "mean", None) if std is not None else None
    return Inversion(
        layers=labels, images=recon, original=x0.detach().cpu().clone(), feature_error=final.float(),
        pixel_correlation=corr, lambda_tv=tvs, steps=len(schedule),
        error_history=torch.stack(history) if history else None, history_steps=hist_steps,
        settings={"alpha": alpha, "beta": beta, "lambda_alpha": lambda_alpha, "momentum": momentum,
                  "x0_sigma": sig.cpu().tolist(), "pixel_scale": scale_l,
                  "lr": "authors' schedule" if lr is None else schedule[0] if len(set(schedule)) == 1 else "given"},
        mean=tuple(mean) if mean is not None else None, std=tuple(std) if std is not None else None,
    )
