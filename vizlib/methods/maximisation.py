"""Activation maximisation (Erhan et al. 2009; Simonyan et al. 2013; Yosinski et al. 2015; Olah et al. 2017).

Masum §III-A: "an input pattern is synthesized that can cause the maximal
activation of a neuron ... by iteratively changing the pixels of the CNN's
input". Zeiler & Fergus §2 contrast their deconvnet with it: gradient ascent
"requires a careful initialization and does not give any information about
the unit's invariances". Here it is one batched optimisation in input space:

* every unit, feature map or class logit asked for gets its own image, and all
  of them are optimised together as one batch (``batch_size`` at a time): the
  loss is the sum of each image's own objective, so each image's gradient is
  its own unit's;
* the start is small noise around the network's mean grey, drawn from a
  generator seeded with ``seed`` (the same seed gives the same images on any
  device, whatever the batch size);
* the regularisers that make the result readable are chosen by name and can
  be compared side by side on the same units (:func:`compare_regularisers`):

  ``"none"``
      plain gradient ascent (pixels kept in the valid range, as for all).
  ``"l2"``
      L2 decay (Simonyan): the loss adds ``l2 * mean(x^2)`` (``x`` in the
      network's input space, where 0 is the mean grey; the mean over the image's
      values, so the weight does not depend on its size).
  ``"tv"``
      total variation (Mahendran & Vedaldi's ``V^beta``, beta 2): the loss adds
      ``tv`` times the squared differences of neighbouring pixels, summed and
      divided by the number of the image's values.
  ``"blur"``
      Yosinski's blur: every ``blur_every`` steps the image is blurred with a
      Gaussian of ``blur_sigma`` pixels.
  ``"transforms"``
      transformation robustness (Olah et al.; Lucid's ``standard_transforms``):
      at every step the image the net sees is padded with grey (12 px), jittered
      (8 px), scaled by one of 0.90, 0.92, ..., 1.10, rotated by a whole number
      of degrees in -10..10 and jittered again (4 px); one draw per step for the
      whole batch, from a generator seeded with ``(seed, step)``. Lucid's pixel
      amounts are for its default 128 px image, so they are scaled by
      ``side / 128`` (rounded, at least 1): a 64 px bundled net gets pad 6,
      jitter 4 and jitter 2; a 224 px ImageNet net pad 21, jitter 14 and 7.
  ``"fourier"``
      the image is parameterised by its Fourier coefficients, scaled by
      ``1 / f`` (Olah et al.'s decorrelated space: every frequency learns at
      the same rate), and squashed into the valid pixel range by a sigmoid; for
      RGB nets the colours are also decorrelated (:data:`COLOUR_SQRT`).

  Names combine: ``("fourier", "transforms")`` is Olah et al.'s recipe.

What is maximised. For a convolutional layer whose paper name points at the
ReLU after a convolution (``"c5"``), the objective is the convolution's output
*before* the ReLU (the ReLU would give no gradient where a unit is off; the
maximiser of one is the maximiser of the other where it is positive). The
measures are read on the layer itself (after the ReLU), as
:func:`~vizlib.top_activations` reads the dataset. ``objective="map"``
maximises the mean of a whole feature map, ``"unit"`` one position of it (the
centre unless ``position`` is given), and for a dense layer both mean the unit
itself; ``objective="logit"`` is a class score (the output layer, ``"fc8"``).

Measures. :attr:`Maximisation.activation` is the unit's activation on the
synthesized image (for ``"map"``: the strongest point of the map, the quantity
the dataset maximum is too); :attr:`Maximisation.dataset_max` the largest
activation over a dataset from :func:`~vizlib.top_activations` (``reference=``);
:attr:`Maximisation.steps_to_reach` the first checked step at which the image
reached it.

Example::

    net = vl.load("alexnet", "bundled")
    data = vl.PreparedImages(vl.fashion_mnist_sample(), net)
    am = vl.maximise(net, "c5", range(8), regulariser=("fourier", "transforms"), reference=data)
    am.share_reached, am.images.shape
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from ..core.progress import tqdm

from ..core.args import index_list, whole_number
from ..core.device import on_device
from ..core.errors import ArgumentError
from ..core.hooks import Capture, leaf_modules, preserved
from ..core.images import _unwrap, first_conv, to_display
from ..core.layers import resolve_layer
from .topk import TopActivations, top_activations

__all__ = ["REGULARISERS", "OBJECTIVES", "COLOUR_SQRT", "Maximisation", "maximise", "compare_regularisers",
           "transform_amounts", "objective_site"]

#: The regularisers :func:`maximise` knows, in the order a comparison shows them.
REGULARISERS: tuple[str, ...] = ("none", "l2", "tv", "blur", "fourier", "transforms")

#: What can be maximised: a whole feature map, one unit of it, or a class score.
OBJECTIVES: tuple[str, ...] = ("map", "unit", "logit")

#: Square root of ImageNet's colour covariance (rows: R, G, B), as Lucid publishes it (Olah et al. 2017):
#: the RGB nets' Fourier images are built in this decorrelated colour space. Divided by its largest
#: column norm before use, as there.
COLOUR_SQRT: tuple[tuple[float, float, float], ...] = ((0.26, 0.09, 0.02), (0.27, 0.00, -0.05), (0.27, -0.09, 0.03))

#: Lucid's standard transforms at its default 128 px image: pad, jitter, scales, rotations (degrees), jitter.
LUCID_PAD, LUCID_JITTER, LUCID_JITTER2, LUCID_SIDE = 12, 8, 4, 128
LUCID_SCALES: tuple[float, ...] = tuple(1 + (i - 5) / 50 for i in range(11))
LUCID_ANGLES: tuple[int, ...] = tuple(range(-10, 11))


@dataclass
class Maximisation:
    """Synthesized inputs, one per unit, and how strongly they drive their units.

    Attributes:
        layer: the layer's label.
        channels: ``(N,)`` the feature map (or dense unit, or class) of each image.
        objective: ``"map"``, ``"unit"`` or ``"logit"``.
        regulariser: the regularisers' names (``("none",)`` for plain ascent).
        images: ``(N, C, H, W)`` the synthesized inputs, in the network's input space (normalised).
        activation: ``(N,)`` the unit's activation on its image, read on the layer (after its ReLU);
            for ``"map"`` the strongest point of the map.
        objective_value: ``(N,)`` the quantity maximised, on the final image (before the ReLU).
        start_activation: ``(N,)`` ``activation`` on the starting noise.
        dataset_max: ``(N,)`` the unit's largest activation over the reference data (``None``: none given).
        steps: optimisation steps taken.
        steps_to_reach: ``(N,)`` the first checked step whose image reached ``dataset_max`` (``-1``: never;
            ``None`` without reference data).
        check_steps: the steps at which the images were checked.
        history: ``(len(check_steps), N)`` ``activation`` at those steps.
        position: the ``(y, x)`` of a ``"unit"`` objective in the feature map (``None`` otherwise).
        settings: the weights and amounts used (``lr``, ``l2``, ``tv``, transforms' pixel amounts...).
        mean, std: the network's normalisation, for display.

    Example:
        >>> m = Maximisation("c1", torch.tensor([0]), "map", ("none",), torch.zeros(1, 1, 4, 4),
        ...                  torch.tensor([2.0]), torch.tensor([2.0]), torch.tensor([0.1]), torch.tensor([1.5]), 8)
        >>> m.reached.tolist(), m.share_reached
        ([True], 1.0)
    """

    layer: str
    channels: torch.Tensor
    objective: str
    regulariser: tuple[str, ...]
    images: torch.Tensor
    activation: torch.Tensor
    objective_value: torch.Tensor
    start_activation: torch.Tensor
    dataset_max: torch.Tensor | None
    steps: int
    steps_to_reach: torch.Tensor | None = None
    check_steps: list[int] = field(default_factory=list)
    history: torch.Tensor | None = None
    position: tuple[int, int] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __repr__(self) -> str:
        got = "" if self.dataset_max is None else f", {self.share_reached:.0%} reach their dataset maximum"
        return (f"Maximisation({self.layer!r}, {len(self.channels)} {self.objective}s, "
                f"{'+'.join(self.regulariser)}, {self.steps} steps{got})")

    @property
    def reached(self) -> torch.Tensor:
        """``(N,)`` True where the synthesized image drives the unit at least as hard as any dataset image.

        Raises:
            ValueError: no reference data was given.
        """
        if self.dataset_max is None:
            raise ValueError("no dataset maximum: call maximise(..., reference=data or a TopActivations)")
        return self.activation >= self.dataset_max

    @property
    def share_reached(self) -> float:
        """The share of the units whose image reached their dataset maximum."""
        return float(self.reached.float().mean())

    @property
    def ratio(self) -> torch.Tensor:
        """``(N,)`` activation on the synthesized image over the dataset maximum (``nan`` where that is 0)."""
        if self.dataset_max is None:
            raise ValueError("no dataset maximum: call maximise(..., reference=data or a TopActivations)")
        d = self.dataset_max
        return torch.where(d > 0, self.activation / d.where(d > 0, torch.ones_like(d)), torch.full_like(d, math.nan))

    def image(self, i: int) -> np.ndarray:
        """Image ``i`` ready for ``plt.imshow`` (the normalisation undone; min-max scaled without one)."""
        return to_display(self.images[i], self.mean, self.std)


# --------------------------------------------------------------------------- what is maximised


def objective_site(model: nn.Module, layer: str | nn.Module) -> tuple[str, str, str, bool]:
    """Where a layer's objective is read: ``(label, path, objective path, before_relu)``.

    A paper name that points at the ReLU after a convolution or a linear layer is
    maximised before the ReLU (on the convolution's output); anything else on
    its own output.

    Example:
        >>> from vizlib.models import alexnet_fmnist
        >>> objective_site(alexnet_fmnist(), "c2")
        ('c2', 'features.4', 'features.3', True)
    """
    label, path = resolve_layer(model, layer)
    module = model.get_submodule(path)
    if isinstance(module, nn.ReLU):
        previous = None
        for p, m in leaf_modules(model):
            if p == path:
                break
            previous = (p, m)
        if previous is not None and isinstance(previous[1], (nn.Conv2d, nn.Linear)):
            return label, path, previous[0], True
    return label, path, path, False


def transform_amounts(side: int) -> dict[str, int]:
    """Lucid's pixel amounts (pad 12, jitter 8, jitter 4 at 128 px) scaled to an image side.

    Example:
        >>> transform_amounts(64), transform_amounts(224)
        ({'pad': 6, 'jitter': 4, 'jitter2': 2}, {'pad': 21, 'jitter': 14, 'jitter2': 7})
    """
    f = side / LUCID_SIDE
    return {"pad": max(1, round(LUCID_PAD * f)), "jitter": max(1, round(LUCID_JITTER * f)),
            "jitter2": max(1, round(LUCID_JITTER2 * f))}


def _regularisers(spec: Any) -> tuple[str, ...]:
    names = (spec,) if isinstance(spec, str) else tuple(spec) if spec is not None else ()
    if not names or any(not isinstance(n, str) or n not in REGULARISERS for n in names):
        raise ArgumentError(f"regulariser must be one of {', '.join(map(repr, REGULARISERS))} or a sequence of "
                            f"them, such as ('fourier', 'transforms'); not {spec!r}")
    if len(set(names)) != len(names):
        raise ArgumentError(f"regulariser {spec!r} names one twice")
    if "none" in names and len(names) > 1:
        raise ArgumentError(f"'none' does not combine with other regularisers; got {spec!r}")
    if "fourier" in names and "blur" in names:
        raise ArgumentError("'blur' blurs pixels and 'fourier' has none to blur: choose one of the two")
    return tuple(n for n in REGULARISERS if n in names)


def _number(value: Any, name: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ArgumentError(f"{name} must be a number, not {value!r} (type {type(value).__name__})")
    v = float(value)
    if not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise ArgumentError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, not {value!r}")
    return v


# --------------------------------------------------------------------------- image parameterisations


def _freq_scale(h: int, w: int, decay: float = 1.0) -> torch.Tensor:
    """``1 / f`` (with ``f`` at least one cycle per image) for the coefficients of ``rfft2`` of an ``h x w`` image."""
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    f = torch.sqrt(fy * fy + fx * fx)
    return 1.0 / f.clamp_min(1.0 / max(h, w)) ** decay


class _Image:
    """The variable an optimisation changes, and the image it stands for."""

    def __init__(self, init: torch.Tensor, shape: tuple[int, int, int], fourier: bool, lo: torch.Tensor | None,
                 hi: torch.Tensor | None, dev: torch.device, dtype: torch.dtype) -> None:
        c, h, w = shape
        self.fourier, self.lo, self.hi = fourier, lo, hi
        self.shape = shape
        self.param = init.to(dev, dtype).clone().requires_grad_(True)
        if fourier:
            self.scale = _freq_scale(h, w).to(dev, dtype)
            mix = torch.tensor(COLOUR_SQRT, dtype=torch.float64)
            mix = mix / mix.norm(dim=0).max()
            self.mix = mix.to(dev, dtype) if c == 3 else None

    def image(self) -> torch.Tensor:
        if not self.fourier:
            return self.param
        c, h, w = self.shape
        spec = torch.view_as_complex(self.param.contiguous()) * self.scale
        x = torch.fft.irfft2(spec, s=(h, w), norm="ortho") / 4.0
        if self.mix is not None:
            x = torch.einsum("ij,njhw->nihw", self.mix, x)
        if self.lo is None or self.hi is None:
            return x
        return self.lo + (self.hi - self.lo) * torch.sigmoid(x)

    @torch.no_grad()
    def clamp_(self) -> None:
        if not self.fourier and self.lo is not None and self.hi is not None:
            self.param.copy_(torch.maximum(torch.minimum(self.param, self.hi), self.lo))

    @torch.no_grad()
    def blur_(self, sigma: float) -> None:
        self.param.copy_(_gaussian_blur(self.param, sigma))


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _total_variation(x: torch.Tensor) -> torch.Tensor:
    """Per image: the sum of squared differences to the right and below neighbour (``V^beta``, beta 2)."""
    dx = x[..., :, 1:] - x[..., :, :-1]
    dy = x[..., 1:, :] - x[..., :-1, :]
    return dx.pow(2).flatten(1).sum(1) + dy.pow(2).flatten(1).sum(1)


def _transform(x: torch.Tensor, neutral: torch.Tensor, amounts: dict[str, int], rng: np.random.Generator) -> torch.Tensor:
    """Lucid's standard transforms, one draw for the batch: pad, jitter, scale, rotate, jitter (one resampling)."""
    n, _, h, w = x.shape
    pad, j1, j2 = amounts["pad"], amounts["jitter"], amounts["jitter2"]
    hin, win = h + 2 * pad, w + 2 * pad
    hout, wout = hin - j1 - j2, win - j1 - j2
    s = float(rng.choice(LUCID_SCALES))
    a = math.radians(float(rng.choice(LUCID_ANGLES)))
    o1 = rng.integers(0, j1 + 1, size=2) - j1 / 2  # (dy, dx) of the first crop about the centre
    o2 = rng.integers(0, j2 + 1, size=2) - j2 / 2
    # canvas point (about its centre) = shift1 + R(-a) S^-1 (output point about its centre + shift2)
    cos, sin = math.cos(a) / s, math.sin(a) / s
    m = torch.tensor([[cos, sin], [-sin, cos]], dtype=torch.float64)  # acts on (x, y)
    shift = m @ torch.tensor([o2[1], o2[0]], dtype=torch.float64) + torch.tensor([o1[1], o1[0]], dtype=torch.float64)
    theta = torch.zeros(2, 3, dtype=torch.float64)
    theta[0, :2] = m[0] * torch.tensor([wout / win, hout / win])
    theta[1, :2] = m[1] * torch.tensor([wout / hin, hout / hin])
    theta[0, 2], theta[1, 2] = 2 * shift[0] / win, 2 * shift[1] / hin
    canvas = F.pad(x - neutral, (pad, pad, pad, pad))  # grey around the image (0 after subtracting it)
    grid = F.affine_grid(theta.to(x.device, x.dtype).expand(n, 2, 3), [n, x.shape[1], hout, wout],
                         align_corners=False)
    return F.grid_sample(canvas, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + neutral


# --------------------------------------------------------------------------- the method


def _read(t: torch.Tensor, ch: torch.Tensor, objective: str, position: tuple[int, int] | None) -> torch.Tensor:
    """Each image's own unit of a captured layer: ``(N,)``."""
    rows = torch.arange(len(ch), device=t.device)
    if t.ndim == 2:
        return t[rows, ch]
    maps = t[rows, ch]  # (N, h, w)
    if objective == "map":
        return maps.flatten(1).mean(1)
    y, x = position if position is not None else (maps.shape[1] // 2, maps.shape[2] // 2)
    return maps[:, min(y, maps.shape[1] - 1), min(x, maps.shape[2] - 1)]


def _measure(t: torch.Tensor, ch: torch.Tensor, objective: str, position: tuple[int, int] | None,
             relu: bool) -> torch.Tensor:
    """The activation the dataset maximum is compared with: on the layer (after its ReLU); a map's strongest point."""
    if relu:
        t = t.clamp_min(0)
    if t.ndim == 4 and objective == "map":
        rows = torch.arange(len(ch), device=t.device)
        return t[rows, ch].flatten(1).amax(1)
    return _read(t, ch, objective, position)


def _input_shape(module: nn.Module, net: Any, size: Any) -> tuple[int, int, int]:
    conv = first_conv(module)
    channels = conv[1].in_channels if conv is not None else None
    if size is None:
        side = getattr(net, "input_size", None) if net is not module else None
        if side is None or channels is None:
            raise ArgumentError("the input's size is not known for a bare nn.Module: give size=(C, H, W) or "
                                "size=side, or pass a vizlib Net (vl.load(...)), which knows it")
        return channels, int(side), int(side)
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        if channels is None:
            raise ArgumentError("this model has no convolution to read the channels from: give size=(C, H, W)")
        s = whole_number(size, "size", at_least=1)
        return channels, s, s
    try:
        dims = tuple(whole_number(v, "every number of size", at_least=1) for v in size)
    except TypeError as exc:
        raise ArgumentError(f"size must be a side or (C, H, W), not {size!r}") from exc
    if len(dims) == 2 and channels is not None:
        return channels, dims[0], dims[1]
    if len(dims) != 3:
        raise ArgumentError(f"size must be a side or (C, H, W), not {size!r}")
    return dims  # type: ignore[return-value]


def _reference_max(reference: Any, model: Any, label: str, channels: torch.Tensor, dev: Any,
                   progress: bool) -> torch.Tensor | None:
    if reference is None:
        return None
    if not isinstance(reference, TopActivations):
        reference = top_activations(model, label, reference, k=1, device=dev, progress=progress)
    if reference.layer != label:
        raise ArgumentError(f"the reference TopActivations are of layer {reference.layer!r}, not {label!r}: "
                            f"mine the same layer (vl.top_activations(net, {label!r}, data))")
    if int(channels.max()) >= reference.values.shape[0]:
        raise ArgumentError(f"the reference has {reference.values.shape[0]} maps; channel {int(channels.max())} "
                            "is not among them")
    best = reference.values[:, 0].clamp_min(0)  # -inf where no image was seen; activations are >= 0 after ReLU
    return best[channels].float()


def maximise(
    net: Any,
    layer: str | nn.Module,
    channels: int | Sequence[int] | range | torch.Tensor | None = None,
    *,
    objective: str = "map",
    regulariser: str | Sequence[str] = ("fourier", "transforms"),
    steps: int = 256,
    lr: float = 0.05,
    l2: float = 1.0,
    tv: float = 1.0,
    blur_every: int = 8,
    blur_sigma: float = 0.5,
    norm: float | None = None,
    optimizer: str = "adam",
    position: tuple[int, int] | None = None,
    size: int | Sequence[int] | None = None,
    value_range: tuple[Any, Any] | None | str = "net",
    reference: Any = None,
    check_every: int = 16,
    seed: int = 0,
    batch_size: int = 64,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> Maximisation:
    """Synthesize, by gradient ascent from small noise, one input per unit that drives the unit hard.

    Args:
        net: a :class:`~vizlib.Net` or an ``nn.Module`` (then give ``size``).
        layer: paper name, module path or module.
        channels: the feature maps (or dense units, or classes) to maximise; default all of the layer's.
        objective: ``"map"`` (the mean of a feature map), ``"unit"`` (one position: ``position``, default
            the centre) or ``"logit"`` (a class score: ``layer`` must be the output layer).
        regulariser: a name of :data:`REGULARISERS` or several (see the module's text).
        steps: optimisation steps.
        lr: the step size (Adam's, as Lucid's 0.05; plain gradient ascent's with ``optimizer="sgd"``).
        l2: weight of the L2 decay (``"l2"``).
        tv: weight of the total variation (``"tv"``).
        blur_every, blur_sigma: Yosinski's blur (``"blur"``): how often, and the Gaussian's sigma in pixels.
        norm: Erhan's constraint: after each step each image is projected onto the L2 ball of this radius
            (in input space about the mean grey); ``None``: no constraint.
        optimizer: ``"adam"`` or ``"sgd"`` (plain gradient ascent).
        position: ``(y, x)`` of a ``"unit"`` objective in the feature map.
        size: the input's side or ``(C, H, W)``; default the Net's.
        value_range: the pixels' valid range in input space, ``(low, high)`` (numbers or per-channel
            sequences); ``"net"`` (default): pixel values 0..1 through the Net's normalisation (none for a
            bare module); ``None``: unbounded.
        reference: data (as :func:`~vizlib.top_activations` takes it) or a
            :class:`~vizlib.methods.topk.TopActivations` of the same layer: the dataset maximum to compare with.
        check_every: check the images (and record ``history``) every this many steps; 0: only at the end.
        seed: the seed of the starting noise and of the transforms' draws.
        batch_size: images optimised together.
        device: where to compute (default: where the model lives).
        progress: show a progress bar over the batches.

    Returns:
        A :class:`Maximisation`.

    Raises:
        ArgumentError: an unknown objective, regulariser or optimizer; a bad number; a position with a
            ``"map"`` objective or with ``"transforms"``; ``"logit"`` on another layer than the output.
        LayerError: an unknown layer.
        ValueError: a channel out of range.
        DeviceError: ``device`` not available here.

    Example:
        >>> from vizlib.models import alexnet_fmnist
        >>> am = maximise(alexnet_fmnist(seed=0), "c2", [0, 1], size=64, steps=4, regulariser="l2")
        >>> am.images.shape, am.steps
        (torch.Size([2, 1, 64, 64]), 4)
    """
    module, _ = _unwrap(net, need="maximise")
    if objective not in OBJECTIVES:
        raise ArgumentError(f"objective must be one of {', '.join(map(repr, OBJECTIVES))}, not {objective!r}")
    regs = _regularisers(regulariser)
    steps = whole_number(steps, "steps", at_least=1)
    batch_size = whole_number(batch_size, "batch_size", at_least=1)
    check_every = whole_number(check_every, "check_every", at_least=0)
    blur_every = whole_number(blur_every, "blur_every", at_least=1)
    seed = whole_number(seed, "seed", at_least=0)
    lr, l2, tv = _number(lr, "lr", positive=True), _number(l2, "l2"), _number(tv, "tv")
    blur_sigma = _number(blur_sigma, "blur_sigma", positive=True)
    if norm is not None:
        norm = _number(norm, "norm", positive=True)
    if optimizer not in ("adam", "sgd"):
        raise ArgumentError(f"optimizer must be 'adam' or 'sgd', not {optimizer!r}")
    if position is not None:
        if objective != "unit":
            raise ArgumentError(f"position is for objective='unit'; objective={objective!r} reads the whole map")
        if "transforms" in regs:
            raise ArgumentError("a fixed position moves with the transforms' jitter: leave position out (the "
                                "centre unit) or drop 'transforms'")
        position = tuple(whole_number(v, "every coordinate of position", at_least=0) for v in position)  # type: ignore
        if len(position) != 2:
            raise ArgumentError(f"position must be (y, x), not {position!r}")
    label, path, site, relu = objective_site(module, layer)
    shape = _input_shape(module, net, size)
    if objective == "logit":
        linears = [p for p, m in leaf_modules(module) if isinstance(m, nn.Linear)]
        if not linears or site != linears[-1]:
            raise ArgumentError(f"objective='logit' maximises a class score: layer must be the output layer "
                                f"({_label_of(module, linears[-1]) if linears else 'the model has none'}), "
                                f"not {label!r}")
    # the layer's width, from a shape-only pass, before any real work
    from ..core.hooks import meta_trace

    calls = {c.path: c for c in meta_trace(module, shape).calls}
    width = int(calls[site].out_shape[1]) if site in calls else None
    if width is None:
        raise ArgumentError(f"layer {label!r} is not reached by the forward pass")
    sel = torch.arange(width) if channels is None else index_list(channels, "channel")
    bad = (sel < 0) | (sel >= width)
    if bad.any():
        raise ValueError(f"channel {int(sel[bad][0])} is out of range: layer {label} has {width} maps (0..{width - 1})")
    mean, std = getattr(net, "mean", None), getattr(net, "std", None)
    lo_hi = _value_range(value_range, module is not net, mean, std, shape[0])

    module, dev = on_device(module, device)
    p0 = next(module.parameters(), None)
    dtype = p0.dtype if p0 is not None and p0.is_floating_point() else torch.float32
    dataset_max = _reference_max(reference, net, label, sel, device, progress)
    lo = hi = None
    neutral = torch.zeros(1, shape[0], 1, 1, dtype=dtype, device=dev)
    if lo_hi is not None:
        lo = torch.tensor(lo_hi[0], dtype=dtype, device=dev).view(1, -1, 1, 1)
        hi = torch.tensor(lo_hi[1], dtype=dtype, device=dev).view(1, -1, 1, 1)
        neutral = (lo + hi) / 2
    amounts = transform_amounts(min(shape[1], shape[2]))
    gen = torch.Generator().manual_seed(seed)  # one draw for all units: the same start whatever the batching
    if "fourier" in regs:
        start = 0.01 * torch.randn(len(sel), shape[0], shape[1], shape[2] // 2 + 1, 2, generator=gen,
                                   dtype=torch.float64)
    else:
        start = neutral.cpu().double() + 0.01 * torch.randn(len(sel), *shape, generator=gen, dtype=torch.float64)
    checks = list(range(check_every, steps + 1, check_every)) if check_every else []
    if not checks or checks[-1] != steps:
        checks.append(steps)

    out_images, out_act, out_obj, out_start, out_hist, out_reach = [], [], [], [], [], []
    chunks = range(0, len(sel), batch_size)
    with preserved(module), Capture(module, [site], detach=False, stop=True) as cap:
        for p in module.parameters():
            p.requires_grad_(False)
        for s in tqdm(chunks, desc=f"maximising {label}", unit="batch", disable=not progress):
            ch = sel[s:s + batch_size].to(dev)
            n = len(ch)
            img = _Image(start[s:s + n], shape, "fourier" in regs, lo, hi, dev, dtype)
            opt = (torch.optim.Adam([img.param], lr=lr) if optimizer == "adam"
                   else torch.optim.SGD([img.param], lr=lr))

            def evaluate() -> tuple[torch.Tensor, torch.Tensor]:
                with torch.no_grad():
                    t = next(iter(cap.run(img.image()).values()))
                    return _measure(t, ch, objective, position, relu), _read(t, ch, objective, position)

            first, _ = evaluate()
            hist, reach = [], torch.full((n,), -1, dtype=torch.long)
            for step in range(1, steps + 1):
                x = img.image()
                seen = _transform(x, neutral, amounts, np.random.default_rng([seed, step])) if "transforms" in regs else x
                t = next(iter(cap.run(seen).values()))
                value = _read(t, ch, objective, None if "transforms" in regs else position)
                loss = -value.sum()
                if "l2" in regs:
                    loss = loss + l2 * (x - neutral).pow(2).flatten(1).mean(1).sum()
                if "tv" in regs:
                    loss = loss + tv * (_total_variation(x) / x[0].numel()).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if "blur" in regs and step % blur_every == 0:
                    img.blur_(blur_sigma)
                if norm is not None and not img.fourier:
                    with torch.no_grad():
                        d = img.param - neutral
                        r = d.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
                        img.param.copy_(neutral + d * torch.clamp(norm / r, max=1.0))
                img.clamp_()
                if step in checks:
                    act, _ = evaluate()
                    hist.append(act.cpu())
                    if dataset_max is not None:
                        hit = (act.cpu() >= dataset_max[s:s + n]) & (reach < 0)
                        reach[hit] = step
            act, obj = evaluate()
            out_images.append(img.image().detach().cpu())
            out_act.append(act.cpu())
            out_obj.append(obj.cpu())
            out_start.append(first.cpu())
            out_hist.append(torch.stack(hist, 1))
            out_reach.append(reach)
    settings: dict[str, Any] = {"lr": lr, "optimizer": optimizer, "size": shape, "seed": seed}
    if "l2" in regs:
        settings["l2"] = l2
    if "tv" in regs:
        settings["tv"] = tv
    if "blur" in regs:
        settings.update(blur_every=blur_every, blur_sigma=blur_sigma)
    if "transforms" in regs:
        settings.update(amounts, scales=(LUCID_SCALES[0], LUCID_SCALES[-1]), angles=(LUCID_ANGLES[0], LUCID_ANGLES[-1]))
    if norm is not None:
        settings["norm"] = norm
    return Maximisation(
        layer=label, channels=sel, objective=objective, regulariser=regs, images=torch.cat(out_images),
        activation=torch.cat(out_act), objective_value=torch.cat(out_obj), start_activation=torch.cat(out_start),
        dataset_max=dataset_max, steps=steps, steps_to_reach=torch.cat(out_reach) if dataset_max is not None else None,
        check_steps=checks, history=torch.cat(out_hist, 0).t().contiguous() if out_hist else None,
        position=position if objective == "unit" else None, settings=settings,
        mean=tuple(mean) if mean is not None else None, std=tuple(std) if std is not None else None,
    )


def _label_of(model: nn.Module, path: str) -> str:
    from ..core.layers import _label

    return _label(model, path)


def _value_range(value_range: Any, has_net: bool, mean: Any, std: Any, channels: int) -> tuple[list[float], list[float]] | None:
    if value_range is None:
        return None
    if isinstance(value_range, str):
        if value_range != "net":
            raise ArgumentError(f"value_range must be 'net', None or (low, high), not {value_range!r}")
        if not has_net or mean is None or std is None:
            return None
        m, s = [float(v) for v in mean], [float(v) for v in std]
        return [(0 - a) / b for a, b in zip(m, s)], [(1 - a) / b for a, b in zip(m, s)]
    try:
        lo, hi = value_range
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"value_range must be 'net', None or (low, high), not {value_range!r}") from exc
    lo_l = [float(lo)] * channels if np.isscalar(lo) else [float(v) for v in lo]
    hi_l = [float(hi)] * channels if np.isscalar(hi) else [float(v) for v in hi]
    if len(lo_l) != channels or len(hi_l) != channels or any(not a < b for a, b in zip(lo_l, hi_l)):
        raise ArgumentError(f"value_range must give low < high for each of the {channels} channel(s), not "
                            f"{value_range!r}")
    return lo_l, hi_l


def compare_regularisers(
    net: Any,
    layer: str | nn.Module,
    channels: int | Sequence[int] | range | torch.Tensor | None = None,
    regularisers: Iterable[str | Sequence[str]] = REGULARISERS,
    **kwargs: Any,
) -> dict[str, Maximisation]:
    """The same units maximised under each regulariser, from the same seed: name -> :class:`Maximisation`.

    The reference data's maximum is mined once and shared. Combinations are named with ``+``
    (``"fourier+transforms"``).

    Example:
        >>> from vizlib.models import alexnet_fmnist
        >>> out = compare_regularisers(alexnet_fmnist(seed=0), "c1", [0], ["none", "tv"], size=64, steps=2)
        >>> list(out)
        ['none', 'tv']
    """
    reference = kwargs.pop("reference", None)
    regs = [(_regularisers(r)) for r in regularisers]
    if reference is not None and not isinstance(reference, TopActivations):
        module, _ = _unwrap(net, need="compare_regularisers")
        label, _ = resolve_layer(module, layer)
        reference = top_activations(net, label, reference, k=1, device=kwargs.get("device"),
                                    progress=kwargs.get("progress", False))
    return {"+".join(r): maximise(net, layer, channels, regulariser=r, reference=reference, **kwargs) for r in regs}
