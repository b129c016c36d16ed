"""Masks of the object in an image, and the one energy-on-object measure.

One definition each, used by every chapter:

* :func:`box_mask` and :func:`silhouette_mask` mark the object in an image's
  own pixels (a drawn box for photos, the garment's pixels for
  Fashion-MNIST); :func:`object_mask` picks between them;
* :func:`transform_mask` carries such a mask through a network's own
  preprocessing into its input (the same resizing and cropping the image gets);
* :func:`energy_inside` is the share of a visualisation's energy on the object.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from .errors import NoObjectRegion

__all__ = ["OBJECT_LEVEL", "box_mask", "silhouette_mask", "object_mask", "transform_mask", "energy_inside"]

#: A Fashion-MNIST garment is every pixel brighter than this grey level on the black background.
#: It leaves out the faint speckle some images carry around the garment.
OBJECT_LEVEL = 25


def box_mask(shape: Sequence[int], box: Sequence[int]) -> np.ndarray:
    """A boolean mask of ``shape[:2]`` that is True inside ``box = (top, left, bottom, right)``.

    Bottom and right are exclusive; a box reaching past the image is clipped.

    Raises:
        NoObjectRegion: the box is empty or lies outside the image.

    Example:
        >>> int(box_mask((4, 5), (1, 1, 3, 4)).sum())
        6
    """
    h, w = int(shape[0]), int(shape[1])
    top, left, bottom, right = (int(v) for v in box)
    top, left, bottom, right = max(top, 0), max(left, 0), min(bottom, h), min(right, w)
    if bottom <= top or right <= left:
        raise NoObjectRegion(
            f"the box {tuple(box)} holds no pixel of a {h}×{w} image; give (top, left, bottom, right) "
            f"with 0 <= top < bottom <= {h} and 0 <= left < right <= {w}"
        )
    m = np.zeros((h, w), dtype=bool)
    m[top:bottom, left:right] = True
    return m


def silhouette_mask(image: Any, level: int = OBJECT_LEVEL) -> np.ndarray:
    """The object's own pixels in an image of a bright object on black: those brighter than ``level``.

    Raises:
        NoObjectRegion: no pixel is brighter than ``level`` (a blank image).

    Example:
        >>> silhouette_mask(np.array([[0, 3], [30, 200]], np.uint8)).tolist()
        [[False, False], [True, True]]
    """
    arr = np.asarray(image)
    if arr.ndim == 3:
        arr = arr.max(axis=-1)
    m = arr > level
    if not m.any():
        raise NoObjectRegion(
            f"the image has no pixel brighter than {level}: there is no garment to mark. "
            "Pick another image, or give its object region yourself (a box: vizlib.box_mask)"
        )
    return m


def object_mask(image: Any, box: Sequence[int] | None = None, *, level: int = OBJECT_LEVEL) -> np.ndarray:
    """Where the object is in an image's own pixels: inside ``box`` when one is given, else its silhouette.

    Example:
        >>> img = np.zeros((4, 4), np.uint8); img[1:3, 1:3] = 200
        >>> bool((object_mask(img) == object_mask(img, (1, 1, 3, 3))).all())
        True
    """
    if box is not None:
        return box_mask(np.asarray(image).shape, box)
    return silhouette_mask(image, level)


def transform_mask(net: Any, mask: Any) -> torch.Tensor:
    """An object mask in the original picture's pixels, carried into ``net``'s input: ``(H, W)`` bool.

    The mask goes through the net's own transform as a black-and-white picture
    (the same resizing and cropping the image gets); its normalisation is
    undone with the transforms of an all-black and an all-white picture, and
    the result is thresholded at one half.

    Args:
        net: a :class:`~vizlib.Net` (its transform).
        mask: ``(H, W)`` bool in the picture's pixels (:func:`object_mask`).

    Raises:
        NoObjectRegion: the mask is ``None`` or empty, or the net's crop cuts the object out.

    Example:
        >>> net = vizlib.load("alexnet", "bundled")                     # doctest: +SKIP
        >>> transform_mask(net, box_mask((28, 28), (7, 7, 21, 21))).shape  # doctest: +SKIP
        torch.Size([64, 64])
    """
    from .images import load_image

    if mask is None:
        raise NoObjectRegion("the image has no object region; give one (vizlib.object_mask(image, box))")
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2 or not m.any():
        raise NoObjectRegion(f"the object mask must be a non-empty H×W boolean array; it is {m.shape} with "
                             f"{int(m.sum())} object pixels")
    img = m.astype(np.uint8) * 255
    t = load_image(img, net, convert=True)[0].double()
    t0 = load_image(np.zeros_like(img), net, convert=True)[0].double()
    t1 = load_image(np.full_like(img, 255), net, convert=True)[0].double()
    span = t1 - t0
    frac = ((t - t0) / torch.where(span.abs() > 1e-12, span, torch.ones_like(span))).mean(0)
    out = frac > 0.5
    if not out.any():
        raise NoObjectRegion("the network's preprocessing (its crop) leaves none of the object region in its input")
    return out


def energy_inside(visualisation: Any, mask: Any) -> float | np.ndarray:
    """The share of a visualisation's energy that lies inside the object's region.

    Energy is the squared value summed over channels, pixel by pixel; the
    share is the energy on the mask's pixels divided by the energy of the
    whole visualisation. A visualisation spread evenly gives the mask's share
    of the area (``mask.mean()``: compare with that); one that kept only the
    object gives 1.

    Args:
        visualisation: ``(H, W)``, ``(C, H, W)``, or a batch ``(B, C, H, W)`` (tensor or array).
        mask: ``(H, W)`` bool, True on the object, in the visualisation's pixels
            (:func:`transform_mask` carries a mask into a network's input).

    Returns:
        A share in [0, 1] (NaN when the visualisation is zero everywhere: nothing
        to share); for a batch of more than one, a ``(B,)`` array.

    Raises:
        NoObjectRegion: no mask, or an empty one.
        ValueError: the mask's size differs from the visualisation's.

    Example:
        >>> v = torch.tensor([[3.0, 0.0], [0.0, 4.0]])
        >>> energy_inside(v, torch.tensor([[True, False], [False, False]]))
        0.36
    """
    if mask is None:
        raise NoObjectRegion(
            "this image has no object region, and the energy share needs one: give a mask "
            "(vizlib.object_mask(image, box), carried into the net's input by vizlib.transform_mask), "
            "or leave the image out of the energy comparison"
        )
    v = torch.as_tensor(np.asarray(visualisation) if not isinstance(visualisation, torch.Tensor) else visualisation)
    m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask).detach().cpu().to(torch.bool)
    if v.ndim == 2:
        v = v.unsqueeze(0)
    if v.ndim == 3:
        v = v.unsqueeze(0)
    if v.ndim != 4:
        raise ValueError(f"a visualisation must be (H, W), (C, H, W) or (B, C, H, W); this one is {tuple(v.shape)}")
    if m.ndim != 2 or tuple(m.shape) != tuple(v.shape[-2:]):
        raise ValueError(
            f"the mask is {tuple(m.shape)} but the visualisation is {tuple(v.shape[-2:])}: carry the mask into "
            "the network's input first (vizlib.transform_mask(net, mask))"
        )
    if not bool(m.any()):
        raise NoObjectRegion("the object mask is empty (no pixel marked): there is no object to measure inside")
    e = v.detach().to("cpu", torch.float64).pow(2).sum(1)
    total = e.sum((-2, -1))
    inside = (e * m).sum((-2, -1))
    share = torch.where(total > 0, inside / total.clamp_min(1e-300), torch.full_like(total, float("nan")))
    return float(share[0]) if len(share) == 1 else share.numpy()
