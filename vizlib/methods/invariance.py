"""Feature invariance (Zeiler & Fergus 2014, §4.2 "Feature Invariance" and Fig. 5).

Zeiler and Fergus translate (vertically), scale and rotate five images by
varying amounts and plot, for each transform: the Euclidean distance between
the feature vectors of the transformed and the untransformed image at layer 1
and at layer 7, and the probability of the true class. Their reading: small
transformations change layer 1 a lot and layer 7 less, quasi-linearly for
translation and scale; the output is stable to translation and scale, not to
rotation, except for rotationally symmetric objects.

:func:`invariance_sweep` does one transform family for one image in **one
batched forward pass** (the untransformed image first, then every amount),
reading both layers through one :class:`~vizlib.core.hooks.Capture` and the
class probability from the same pass. The transforms act on the prepared input
(in the network's normalised space), filling what comes in from outside the
frame with 0 there, that is the mean grey the network subtracts (the occluder's
grey of chapter 5):

* ``"translation"``: vertical shift by a whole number of pixels (positive: down),
  exact (no resampling);
* ``"scale"``: zoom about the centre by a factor (above 1: larger), bilinear;
* ``"rotation"``: rotation about the centre by degrees (counter-clockwise), bilinear.

A distance means little alone (layer 1 has more units than layer 7), so each is
also given relative to that layer's **typical distance between different
images** (:func:`typical_distance`: the median over pairs of a set of images).
:func:`rotational_symmetry` measures how alike an image is to its own
rotations (the correlation inside the central disc), so that which objects are
rotationally symmetric is a measured fact, not a judgement by eye.

This module computes; chapter 8's figures, readings and claims are in
:mod:`vizlib.chapters.ch08`.

Example::

    import vizlib as vl
    net = vl.load("alexnet")
    sweep = vl.invariance_sweep(net, image, "rotation", target=3)
    sweep.distances["fc7"], sweep.probability
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.device import on_device
from ..core.errors import ArgumentError
from ..core.hooks import Capture, preserved
from ..core.images import check_image, load_image
from ..core.layers import as_module, layer_names, resolve_layer

__all__ = [
    "TRANSFORMS",
    "DEFAULT_AMOUNTS",
    "default_amounts",
    "InvarianceSweep",
    "invariance_layers",
    "transform_batch",
    "invariance_sweep",
    "typical_distance",
    "rotational_symmetry",
]

#: The three transform families of Fig. 5 and the amount that leaves an image as it is.
TRANSFORMS: dict[str, float] = {"translation": 0.0, "scale": 1.0, "rotation": 0.0}

#: Default amounts per family (as a fraction of the image side for translation: see :func:`default_amounts`).
DEFAULT_AMOUNTS: dict[str, tuple[float, ...]] = {
    "translation": tuple(float(a) for a in np.linspace(-0.25, 0.25, 11)),
    "scale": tuple(float(a) for a in np.linspace(0.6, 1.4, 9)),
    "rotation": tuple(float(a) for a in range(0, 361, 30)),
}


def default_amounts(transform: str, side: int) -> np.ndarray:
    """The default amounts of a family for an image of ``side`` pixels.

    Translation: whole pixels up to a quarter of the side each way (11 steps);
    scale: 0.6 to 1.4 (9 steps); rotation: 0 to 360 degrees in steps of 30.

    Example:
        >>> default_amounts("translation", 64).tolist()
        [-16.0, -13.0, -10.0, -6.0, -3.0, 0.0, 3.0, 6.0, 10.0, 13.0, 16.0]
    """
    _check_transform(transform)
    amounts = np.asarray(DEFAULT_AMOUNTS[transform], dtype=np.float64)
    if transform == "translation":
        amounts = np.round(amounts * side)
    return amounts


def _check_transform(transform: str) -> None:
    if transform not in TRANSFORMS:
        raise ArgumentError(f"unknown transform {transform!r}; choose one of {', '.join(TRANSFORMS)}")


def invariance_layers(model: Any) -> tuple[str, str]:
    """Zeiler's "layer 1" and "layer 7" of a named net: ``("c1", "fc7")``, ``("c1_1", "fc7")`` for VGG.

    For a net without fc7 (an ablation variant) the top layer is the last named
    layer before fc8.

    Example:
        >>> from vizlib.models import alexnet, vgg16
        >>> invariance_layers(alexnet()), invariance_layers(vgg16())
        (('c1', 'fc7'), ('c1_1', 'fc7'))
    """
    names = layer_names(as_module(model, "invariance_layers"))
    if not names:
        raise ArgumentError("this model carries no layer names; pass layers=(low, high) as module paths")
    low = next((n for n in names if n.startswith("c")), names[0])
    high = "fc7" if "fc7" in names else [n for n in names if n != "fc8"][-1]
    return low, high


@dataclass
class InvarianceSweep:
    """One image under one transform family: Fig. 5's columns 2-4 (and column 1's images).

    Attributes:
        transform: ``"translation"``, ``"scale"`` or ``"rotation"``.
        amounts: ``(A,)`` pixels, factors or degrees.
        layers: the two layers' names (low, high).
        distances: layer -> ``(A,)`` Euclidean distance to the untransformed image's features.
        relative: layer -> ``(A,)`` the distance divided by ``typical[layer]`` (``None``
            when no typical distance was given).
        typical: layer -> the typical distance between different images (or ``None``).
        probability: ``(A,)`` p(target class).
        predicted: ``(A,)`` most probable class.
        target: the class whose probability is read.
        images: ``(A, C, H, W)`` the transformed inputs (normalised), for drawing.

    Example:
        >>> sweep = invariance_sweep(net, image, "scale", target=3)   # doctest: +SKIP
        >>> sweep.at(1.0)["probability"] == sweep.probability[sweep.identity]   # doctest: +SKIP
        True
    """

    transform: str
    amounts: np.ndarray
    layers: tuple[str, str]
    distances: dict[str, np.ndarray]
    relative: dict[str, np.ndarray] | None
    typical: dict[str, float] | None
    probability: np.ndarray
    predicted: np.ndarray
    target: int
    images: torch.Tensor = field(repr=False)

    @property
    def identity(self) -> int:
        """Index of the amount that leaves the image unchanged (or the nearest one)."""
        return int(np.argmin(np.abs(self.amounts - TRANSFORMS[self.transform])))

    def at(self, amount: float) -> dict[str, Any]:
        """The readings at the amount nearest to ``amount``: distances, relative distances, probability."""
        i = int(np.argmin(np.abs(self.amounts - float(amount))))
        out: dict[str, Any] = {"amount": float(self.amounts[i]), "probability": float(self.probability[i]),
                               "predicted": int(self.predicted[i])}
        for layer in self.layers:
            out[layer] = float(self.distances[layer][i])
            if self.relative is not None:
                out[f"{layer} relative"] = float(self.relative[layer][i])
        return out


def transform_batch(image: torch.Tensor, transform: str, amounts: Sequence[float]) -> torch.Tensor:
    """``(1, C, H, W)`` -> ``(A, C, H, W)``: the image under each amount of one family, filled with 0.

    Translation shifts whole pixels vertically (positive: down) exactly; scale
    and rotation resample bilinearly about the image centre (scale above 1
    enlarges; rotation counter-clockwise in degrees).

    Example:
        >>> x = torch.arange(16.0).view(1, 1, 4, 4)
        >>> transform_batch(x, "translation", [1])[0, 0, :, 0].tolist()
        [0.0, 0.0, 4.0, 8.0]
    """
    _check_transform(transform)
    x = image if image.dim() == 4 else image.unsqueeze(0)
    if x.shape[0] != 1:
        raise ArgumentError(f"transform_batch takes one image (1, C, H, W), got a batch of {x.shape[0]}")
    amounts_t = [float(a) for a in amounts]
    _, c, h, w = x.shape
    if transform == "translation":
        out = x.new_zeros(len(amounts_t), c, h, w)
        for i, a in enumerate(amounts_t):
            if a != round(a):
                raise ArgumentError(f"a translation is a whole number of pixels, not {a}")
            s = int(round(a))
            if abs(s) >= h:
                continue
            if s >= 0:
                out[i, :, s:] = x[0, :, : h - s]
            else:
                out[i, :, : h + s] = x[0, :, -s:]
        return out
    theta = torch.zeros(len(amounts_t), 2, 3, dtype=x.dtype, device=x.device)
    for i, a in enumerate(amounts_t):
        if transform == "scale":
            if a <= 0:
                raise ArgumentError(f"a scale factor must be positive, not {a}")
            theta[i, 0, 0] = theta[i, 1, 1] = 1.0 / a
        else:
            r = math.radians(a)
            # each output pixel samples the input rotated back (in pixel units, so the aspect is kept):
            # the content turns by +angle counter-clockwise on screen (rows point down)
            cos, sin = math.cos(r), math.sin(r)
            theta[i, 0, 0], theta[i, 0, 1] = cos, -sin * h / w
            theta[i, 1, 0], theta[i, 1, 1] = sin * w / h, cos
    grid = F.affine_grid(theta, [len(amounts_t), c, h, w], align_corners=False)
    out = F.grid_sample(x.expand(len(amounts_t), c, h, w), grid, mode="bilinear", padding_mode="zeros",
                        align_corners=False)
    # the identity amount gives the image back exactly (no resampling error)
    for i, a in enumerate(amounts_t):
        if a == TRANSFORMS[transform]:
            out[i] = x[0]
    return out


def _prepare(net: Any, image: Any) -> tuple[nn.Module, torch.Tensor]:
    model = as_module(net, "invariance_sweep")
    x = image if isinstance(image, torch.Tensor) else load_image(image, net)
    return model, check_image(x, model)


@torch.no_grad()
def _features(model: nn.Module, x: torch.Tensor, layers: Sequence[str], batch_size: int) -> tuple[dict, torch.Tensor]:
    feats: dict[str, list[torch.Tensor]] = {layer: [] for layer in layers}
    logits = []
    with Capture(model, layers) as cap:
        for start in range(0, len(x), batch_size):
            logits.append(model(x[start : start + batch_size]).float())
            for layer in layers:
                feats[layer].append(cap[layer].flatten(1).float())
    return {k: torch.cat(v) for k, v in feats.items()}, torch.cat(logits)


def invariance_sweep(
    net: Any,
    image: Any,
    transform: str,
    amounts: Sequence[float] | None = None,
    *,
    target: int | None = None,
    layers: Sequence[str] | None = None,
    typical: dict[str, float] | None = None,
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> InvarianceSweep:
    """Transform one image by every amount of one family and read Fig. 5's curves off one batched pass.

    Args:
        net: a :class:`~vizlib.Net` (or an ``nn.Module`` with an already prepared image).
        image: a prepared ``(1, C, H, W)`` / ``(C, H, W)`` tensor, or anything
            :func:`~vizlib.load_image` takes.
        transform: ``"translation"`` (pixels), ``"scale"`` (factor) or ``"rotation"`` (degrees).
        amounts: the amounts (default :func:`default_amounts`).
        target: the class whose probability is read (default: the untransformed image's prediction).
        layers: the low and high layer (default :func:`invariance_layers`: c1 and fc7).
        typical: layer -> typical distance between different images
            (:func:`typical_distance`), for the relative distances.
        batch_size: images per forward pass (all amounts in one pass by default).
        device: where to compute (default: where the model is).

    Returns:
        An :class:`InvarianceSweep`.

    Raises:
        ArgumentError: an unknown transform, a fractional translation, a
            non-positive scale, no amounts.

    Example:
        >>> import vizlib as vl
        >>> net = vl.load("alexnet", "random")
        >>> s = invariance_sweep(net, torch.zeros(1, 3, 224, 224), "translation", [0, 8], target=0)
        >>> s.layers, s.distances["c1"].tolist()
        (('c1', 'fc7'), [0.0, 0.0])
    """
    _check_transform(transform)
    model, x = _prepare(net, image)
    low_high = tuple(layers) if layers is not None else invariance_layers(model)
    if len(low_high) != 2:
        raise ArgumentError(f"layers is a pair (low, high), not {layers!r}")
    for layer in low_high:
        resolve_layer(model, layer)
    amounts_a = default_amounts(transform, x.shape[-2]) if amounts is None else np.asarray(amounts, dtype=np.float64)
    if amounts_a.ndim != 1 or len(amounts_a) == 0:
        raise ArgumentError("amounts must be a non-empty list of numbers")
    model, dev = on_device(model, device)
    x = x.to(dev)
    with preserved(model):
        batch = torch.cat([x, transform_batch(x, transform, amounts_a.tolist())])
        feats, logits = _features(model, batch, low_high, batch_size)
    probs = logits.softmax(1)
    tgt = int(probs[0].argmax()) if target is None else int(target)
    if not 0 <= tgt < probs.shape[1]:
        raise ArgumentError(f"target {tgt} is not a class of this net (0..{probs.shape[1] - 1})")
    distances = {layer: (f[1:] - f[:1]).norm(dim=1).cpu().numpy().astype(np.float64) for layer, f in feats.items()}
    relative = None
    if typical is not None:
        relative = {layer: distances[layer] / float(typical[layer]) for layer in low_high}
    return InvarianceSweep(
        transform=transform, amounts=amounts_a, layers=low_high, distances=distances, relative=relative,
        typical=dict(typical) if typical is not None else None,
        probability=probs[1:, tgt].cpu().numpy().astype(np.float64),
        predicted=probs[1:].argmax(1).cpu().numpy(), target=tgt, images=batch[1:].cpu(),
    )


def typical_distance(
    net: Any,
    images: torch.Tensor,
    layers: Sequence[str] | None = None,
    *,
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """The median Euclidean distance between the features of different images, per layer.

    The yardstick of the relative distances: a transformation that moves the
    features as far as this has made the image as different as another image.

    Args:
        net: a :class:`~vizlib.Net` or ``nn.Module``.
        images: ``(N, C, H, W)`` prepared images, ``N >= 2``.
        layers: default :func:`invariance_layers`.

    Returns:
        layer -> median over the ``N (N - 1) / 2`` pairs.

    Example:
        >>> import vizlib as vl
        >>> net = vl.load("alexnet", "random")
        >>> d = typical_distance(net, torch.randn(4, 3, 224, 224))
        >>> sorted(d), all(v > 0 for v in d.values())
        (['c1', 'fc7'], True)
    """
    model = as_module(net, "typical_distance")
    x = check_image(images, model, batch=True)
    if len(x) < 2:
        raise ArgumentError("a typical distance between images needs at least two images")
    chosen = tuple(layers) if layers is not None else invariance_layers(model)
    model, dev = on_device(model, device)
    with preserved(model):
        feats, _ = _features(model, x.to(dev), chosen, batch_size)
    out = {}
    iu = torch.triu_indices(len(x), len(x), 1)
    for layer, f in feats.items():
        d = torch.cdist(f.double(), f.double())[iu[0], iu[1]]
        out[layer] = float(d.median())
    return out


def rotational_symmetry(
    image: torch.Tensor,
    angles: Sequence[float] = tuple(range(0, 360, 15)),
    *,
    exclude: float = 60.0,
    mask: torch.Tensor | np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """How alike an image is to its own rotations: correlation inside the central disc, per angle.

    Each rotation (bilinear, about the centre) is compared with the image by
    Pearson's correlation over the pixels of the largest centred disc (its
    corners come from outside the frame). The score is the largest correlation
    at angles at least ``exclude`` degrees away from 0 (any rotation near 0
    looks like the image): near 1 for an object that a half turn or a quarter
    turn maps onto itself, near 0 for one that no large rotation does.

    Args:
        image: ``(C, H, W)`` or ``(1, C, H, W)``; pass the object alone (on a plain
            ground) to measure the object rather than its background.
        angles: degrees.
        exclude: angles closer than this to 0 (mod 360) do not count for the score.
        mask: ``(H, W)`` True on the object: measure the object alone (0 off it) and
            rotate it about its own centre (its bounding box's, moved to the frame's
            centre first). Without it the rotation is about the frame's centre, and an
            object away from the centre scores low whatever its shape.

    Returns:
        ``(correlations per angle, score)``.

    Example:
        >>> disc = (torch.arange(32.0) - 15.5).abs().view(1, 1, 1, 32).expand(1, 1, 32, 32)
        >>> corr, score = rotational_symmetry(disc.clone(), [0, 180])
        >>> round(score, 3)
        1.0
    """
    x = image if image.dim() == 4 else image.unsqueeze(0)
    x = x.float()
    h, w = x.shape[-2:]
    if mask is not None:
        x = _object_centred(x, torch.as_tensor(np.asarray(mask, dtype=bool)))
    ang = [float(a) for a in angles]
    rotated = transform_batch(x, "rotation", ang)
    yy, xx = torch.meshgrid(torch.arange(h) - (h - 1) / 2, torch.arange(w) - (w - 1) / 2, indexing="ij")
    disc = (yy**2 + xx**2) <= (min(h, w) / 2 - 1) ** 2
    a = x[0][:, disc].flatten()
    a = a - a.mean()
    corr = []
    for r in rotated:
        b = r[:, disc].flatten()
        b = b - b.mean()
        denom = float(a.norm() * b.norm())
        corr.append(min(1.0, max(-1.0, float(a @ b) / denom)) if denom > 0 else 0.0)
    corr_a = np.asarray(corr)
    far = np.array([min(a % 360, 360 - a % 360) >= exclude for a in ang])
    score = float(corr_a[far].max()) if far.any() else float("nan")
    return corr_a, score


def _object_centred(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``x`` (1, C, H, W) zeroed off ``mask`` (H, W) and shifted so the mask's bounding box is centred."""
    h, w = x.shape[-2:]
    m = mask.reshape(-1, *mask.shape[-2:])[0] if mask.dim() > 2 else mask
    if tuple(m.shape) != (h, w):
        raise ArgumentError(f"mask is {tuple(m.shape)}, the image {h} x {w}: give the object mask of this image")
    if not bool(m.any()):
        raise ArgumentError("the mask has no pixel set: there is no object to measure")
    ys, xs = torch.nonzero(m, as_tuple=True)
    dy = int(round((h - 1) / 2 - (int(ys.min()) + int(ys.max())) / 2))
    dx = int(round((w - 1) / 2 - (int(xs.min()) + int(xs.max())) / 2))
    obj = x * m.to(x.dtype)
    p = max(abs(dy), abs(dx))
    padded = F.pad(obj, (p, p, p, p))
    return padded[..., p - dy:p - dy + h, p - dx:p - dx + w]
