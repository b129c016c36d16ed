"""Fashion-MNIST garments composed onto textured backgrounds: a bundled set that can ask the papers' questions.

On plain Fashion-MNIST the garment fills the 28 px frame and the background is
black, so a net's use of object against context cannot be tested and every
high-layer "patch" is the whole image. Here each garment is pasted **at its
native resolution** (28 px) at a random place onto a random ``size`` x ``size``
crop (64 px by default) of a random grey photo, and every image comes with the
**exact object mask**: the garment's own pixels,
:func:`~vizlib.core.measures.silhouette_mask` of the placed garment (brighter
than :data:`~vizlib.core.measures.OBJECT_LEVEL`).

How a garment is pasted. A Fashion-MNIST image is the garment on black. Its
silhouette is the pixels brighter than ``OBJECT_LEVEL``
(:func:`~vizlib.core.measures.silhouette_mask`) with the holes inside filled
(a dark print or a shadow inside a shirt is still the shirt), and on that mask
the garment is pasted **opaque**: each pixel is the garment's own, exactly;
off the mask it is the background crop's, exactly (the faint speckle at or
below ``OBJECT_LEVEL`` around some garments is dropped with the rest of the
black). So the object carries all of Fashion-MNIST's detail on any
background, and the mask is exact. (An earlier version blended the garment in
through its brightness, ``g + (255 - g) b / 255``: every composed pixel was at
least as bright as the background, so dark stripes and prints took the
background's texture and a light garment on a bright crop all but vanished.)

Where and how large. Each item draws, from NumPy's generator seeded with
``[seed, index]`` (so an item does not depend on which others were read, or in
what order): the background, the crop's corner, an optional scale, and the
garment's place, uniform over every place that keeps the garment's silhouette
(its bounding box, not its 28 px tile) inside the frame. The default is the
native size (``scale=None``): resampling would blur the garment, and the blur
is what left the old nets' first-layer filters untrained (28 px images
upsampled to 64 px carry nothing above 0.22 cycles/px). ``scale=(0.8, 1.2)``
resizes each garment bilinearly by a factor drawn uniformly from that range,
for training that wants size variation; the mask is then the resized garment's
silhouette.

How strong the background is. Each photo is pasted at half its contrast
(:data:`BACKGROUND_CONTRAST`, 0.5: every pixel moved halfway to the photo's
mean brightness, :func:`background`). At full contrast the photos' own edges
(bricks, coins, letters) are as strong as the garment's, so a small net spends
its training sorting background from object: in a pilot (the AlexNet-style
net, 30,000 training images, 3 epochs, one run each) it reached 63.8 % on
composed test images at full contrast and 71.2 % at half. At half contrast the
backgrounds still carry all their content and vary from image to image.

The backgrounds are photos that ship inside scikit-image's wheel
(``skimage/data/*.png``: they load offline), all 2-D uint8, with their
licences as the installed ``skimage.data`` docstrings give them:

========  =========  ==========================================================
name      size       source and licence
========  =========  ==========================================================
brick     512 x 512  a brick wall, CC0Textures "Bricks25"; CC0
grass     512 x 512  grass, DeviantArt (linolafett, "Grass 01"); CC0
gravel    512 x 512  gravel, CC0Textures "Gravel04"; CC0
camera    512 x 512  a cameraman (Lav Varshney); CC0 by the photographer
coins     303 x 384  Greek coins from Pompeii, Brooklyn Museum Collection;
                     no known copyright restrictions
text      172 x 448  printed text at angles, Wikipedia "Corner.png"; public
                     domain
========  =========  ==========================================================

Left out: ``moon`` and ``page`` (their docstrings state no licence), ``cell``
and ``clock`` (CC0 and public domain, but mostly flat: little content), and the
colour photos (the ImageNet demo photos, :data:`~vizlib.core.data.DEMO_IMAGES`).
The garments are Fashion-MNIST's (Zalando SE, MIT licence).

What is committed is only this code: :func:`composed_sample` composes the
committed 1,500-image test sample (:func:`~vizlib.fashion_mnist_sample`) by
the seeded function; :class:`ComposedImages` composes any
:class:`~vizlib.ImageSet` (the full training set too) on the fly, one item at
a time, holding nothing but the 28 px set and the six backgrounds.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from .args import whole_number
from .data import ImageSet, fashion_mnist_sample
from .errors import ArgumentError, EmptyData, ImageError
from .example_image import ExampleImage
from .measures import silhouette_mask

__all__ = [
    "Background",
    "BACKGROUNDS",
    "background_names",
    "load_background",
    "background",
    "BACKGROUND_CONTRAST",
    "Placement",
    "garment_mask",
    "paste",
    "ComposedImages",
    "ComposedSet",
    "composed_sample",
    "bundled_sample",
    "box_sides",
    "median_box_side",
]


@dataclass(frozen=True)
class Background:
    """A grey photo from ``skimage.data`` that garments are pasted onto.

    Attributes:
        name: the ``skimage.data`` function that returns it.
        licence: its licence, as the installed docstring gives it.
        note: what it shows and where it comes from.

    Example:
        >>> from vizlib.core.composed import BACKGROUNDS
        >>> BACKGROUNDS[0].name, BACKGROUNDS[0].licence
        ('brick', 'CC0')
    """

    name: str
    licence: str
    note: str = ""

    def image(self) -> np.ndarray:
        """The photo as ``H x W`` uint8 (read-only; loaded once per process)."""
        return load_background(self.name)


#: The backgrounds, in the order an item's draw indexes them.
BACKGROUNDS: tuple[Background, ...] = (
    Background("brick", "CC0", "a brick wall (CC0Textures, Bricks25)"),
    Background("grass", "CC0", "grass (DeviantArt, linolafett, Grass 01)"),
    Background("gravel", "CC0", "gravel (CC0Textures, Gravel04)"),
    Background("camera", "CC0", "a cameraman with his camera (Lav Varshney)"),
    Background("coins", "no known copyright restrictions", "Greek coins from Pompeii (Brooklyn Museum)"),
    Background("text", "public domain", "printed text at angles (Wikipedia, Corner.png)"),
)


def background_names() -> tuple[str, ...]:
    """The names of the backgrounds, in :data:`BACKGROUNDS` order.

    Example:
        >>> from vizlib.core.composed import background_names
        >>> background_names()
        ('brick', 'grass', 'gravel', 'camera', 'coins', 'text')
    """
    return tuple(b.name for b in BACKGROUNDS)


@functools.lru_cache(maxsize=None)
def load_background(name: str) -> np.ndarray:
    """One background photo, ``H x W`` uint8, read-only; read from scikit-image's own files once.

    Raises:
        ArgumentError: ``name`` is not one of :func:`background_names`.

    Example:
        >>> from vizlib.core.composed import load_background
        >>> load_background("brick").shape, load_background("brick").dtype
        ((512, 512), dtype('uint8'))
    """
    if name not in background_names():
        raise ArgumentError(f"no background {name!r}; choose among {', '.join(background_names())}")
    import skimage.data

    img = np.asarray(getattr(skimage.data, name)())
    if img.ndim != 2 or img.dtype != np.uint8:  # pragma: no cover - scikit-image ships them so
        raise ImageError(f"skimage.data.{name}() is {img.shape} {img.dtype}, not a grey uint8 photo")
    img = np.ascontiguousarray(img)
    img.setflags(write=False)
    return img


#: How much of a photo's contrast the composed images keep (see the module docs).
BACKGROUND_CONTRAST = 0.5


@functools.lru_cache(maxsize=None)
def background(name: str, contrast: float = BACKGROUND_CONTRAST) -> np.ndarray:
    """A background photo at ``contrast`` of its own contrast: ``H x W`` uint8, read-only, made once.

    Every pixel ``b`` becomes ``round(m + contrast * (b - m))``, ``m`` the photo's
    mean brightness; ``contrast=1`` is the photo as scikit-image ships it
    (:func:`load_background`).

    Raises:
        ArgumentError: ``name`` is not one of :func:`background_names`, or
            ``contrast`` is not in ``(0, 1]``.

    Example:
        >>> from vizlib.core.composed import background, load_background
        >>> full, half = load_background("coins"), background("coins", 0.5)
        >>> int(full.max()) - int(full.min()) > int(half.max()) - int(half.min())
        True
    """
    photo = load_background(name)
    c = float(contrast)
    if not 0.0 < c <= 1.0:
        raise ArgumentError(f"contrast must be in (0, 1] (1 keeps the photo as it is); got {contrast!r}")
    if c == 1.0:
        return photo
    m = float(photo.mean())
    out = np.clip(np.round(m + c * (photo.astype(np.float64) - m)), 0, 255).astype(np.uint8)
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class Placement:
    """Where one item's garment went: the draw of :meth:`ComposedImages.placement`.

    Attributes:
        background: the background's name.
        crop: ``(top, left)`` of the crop in the background photo.
        top, left: where the garment's tile's top-left pixel lands in the composed
            image (negative when the tile's empty border hangs over the frame).
        side: the garment tile's side after scaling (the garment's own: native).
        size: the composed image's side.
        contrast: the share of the photo's contrast the background keeps.

    Example:
        >>> import vizlib as vl
        >>> from vizlib.core.composed import ComposedImages
        >>> p = ComposedImages(vl.fashion_mnist_sample()).placement(0)
        >>> p.background in {"brick", "grass", "gravel", "camera", "coins", "text"}, p.side, p.size
        (True, 28, 64)
    """

    background: str
    crop: tuple[int, int]
    top: int
    left: int
    side: int
    size: int
    contrast: float = 1.0

    def background_crop(self) -> np.ndarray:
        """The ``size x size`` crop of the background the garment was pasted onto (a copy)."""
        y, x = self.crop
        return background(self.background, self.contrast)[y:y + self.size, x:x + self.size].copy()


def garment_mask(garment: np.ndarray) -> np.ndarray:
    """A garment's exact mask in its own tile: its silhouette with the holes inside filled.

    Raises:
        NoObjectRegion: the garment has no pixel above ``OBJECT_LEVEL``.

    Example:
        >>> from vizlib.core.composed import garment_mask
        >>> g = np.full((5, 5), 200, np.uint8); g[2, 2] = 0; g[0, :] = 0
        >>> int(garment_mask(g).sum())     # the dark pixel inside counts, the dark top row does not
        20
    """
    from scipy.ndimage import binary_fill_holes

    return binary_fill_holes(silhouette_mask(garment))


def paste(garment: np.ndarray, crop: np.ndarray, top: int, left: int) -> tuple[np.ndarray, np.ndarray]:
    """A garment (bright on black) pasted opaque onto a crop on its exact mask: ``(image, mask)``.

    The garment's tile goes with its top-left pixel at ``(top, left)`` (which may
    be negative: only the tile's black border may hang over the frame). On the
    garment's mask (:func:`garment_mask`) a pixel is the garment's own;
    elsewhere it is the crop's.

    Args:
        garment: ``h x w`` uint8, a bright object on black.
        crop: ``H x W`` uint8, the background.
        top, left: where the tile's top-left pixel lands.

    Returns:
        The composed ``H x W`` uint8 image and its ``H x W`` bool mask (the placed
        garment's mask).

    Raises:
        ImageError: the garment's mask does not lie wholly inside the crop.
        NoObjectRegion: the garment has no pixel above ``OBJECT_LEVEL``.

    Example:
        >>> from vizlib.core.composed import paste
        >>> g = np.zeros((3, 3), np.uint8); g[1, 1] = 255
        >>> image, mask = paste(g, np.full((4, 4), 100, np.uint8), 0, 0)
        >>> int(image[1, 1]), int(image[0, 0]), int(mask.sum())
        (255, 100, 1)
    """
    g = np.asarray(garment)
    b = np.asarray(crop)
    sil = garment_mask(g)
    rows, cols = np.flatnonzero(sil.any(axis=1)), np.flatnonzero(sil.any(axis=0))
    if top + rows[0] < 0 or left + cols[0] < 0 or top + rows[-1] >= b.shape[0] or left + cols[-1] >= b.shape[1]:
        raise ImageError(
            f"the garment's silhouette (rows {rows[0]}..{rows[-1]}, columns {cols[0]}..{cols[-1]} of its tile) "
            f"placed at ({top}, {left}) reaches outside the {b.shape[0]}x{b.shape[1]} frame; place it so that "
            "it lies wholly inside"
        )
    # the part of the tile that overlaps the frame, in tile and in frame coordinates
    t0, l0 = max(0, -top), max(0, -left)
    t1, l1 = min(g.shape[0], b.shape[0] - top), min(g.shape[1], b.shape[1] - left)
    on = sil[t0:t1, l0:l1]
    mask = np.zeros(b.shape[:2], dtype=bool)
    mask[top + t0:top + t1, left + l0:left + l1] = on
    image = np.array(b, dtype=np.uint8, copy=True)
    window = image[top + t0:top + t1, left + l0:left + l1]
    window[on] = g[t0:t1, l0:l1][on]
    return image, mask


def _scale_range(scale: Any) -> tuple[float, float] | None:
    if scale is None:
        return None
    try:
        lo, hi = (float(v) for v in scale)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"scale must be None (native size) or a pair (low, high) such as (0.8, 1.2), "
                            f"not {scale!r}") from exc
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
        raise ArgumentError(f"scale must be a pair 0 < low <= high of finite numbers, not {scale!r}")
    return lo, hi


class ComposedImages(torch.utils.data.Dataset):
    """Garments composed onto background crops on the fly: items ``(image, label)`` or ``(image, label, mask)``.

    Item ``i`` is the ``i``-th garment of ``images`` pasted by the draw of
    ``np.random.default_rng([seed, i])`` (:class:`Placement`): the same
    ``(seed, i)`` gives the same bytes whatever was read before. Nothing is
    kept between items: memory does not grow with the number read; the
    backgrounds are loaded once per process.

    Args:
        images: the garments (:class:`~vizlib.ImageSet`: the committed sample,
            Fashion-MNIST's training or test set), ``N x h x w`` uint8 white on black.
        seed: a whole number ``>= 0``.
        size: the composed images' side (at least the garment's, at most the
            smallest background's).
        masks: items carry the object mask as a third element.
        scale: ``None`` (native size, the default) or ``(low, high)``: each garment
            resized bilinearly by a factor drawn uniformly from that range.
        backgrounds: names among :func:`background_names` (default: all of them).
        contrast: the share of each photo's contrast kept (:func:`background`;
            default :data:`BACKGROUND_CONTRAST`).

    Raises:
        ArgumentError: a bad seed, size, scale, background name or contrast.
        ImageError: the images are not ``N x h x w`` uint8.
        EmptyData: no images.

    Example:
        >>> import vizlib as vl
        >>> from vizlib.core.composed import ComposedImages
        >>> data = ComposedImages(vl.fashion_mnist_sample(), seed=0)
        >>> image, label = data[0]
        >>> image.shape, image.dtype, data.classes[label]
        ((64, 64), dtype('uint8'), 'Shirt')
    """

    def __init__(self, images: ImageSet, seed: int = 0, size: int = 64, *, masks: bool = False,
                 scale: Sequence[float] | None = None, backgrounds: Sequence[str] | None = None,
                 contrast: float = BACKGROUND_CONTRAST) -> None:
        pictures = getattr(images, "images", None)
        labels = getattr(images, "labels", None)
        if pictures is None or labels is None:
            raise ImageError(f"ComposedImages takes an ImageSet (vizlib.fashion_mnist_sample(), "
                             f"vizlib.fashion_mnist('train')), not {type(images).__name__}")
        if not isinstance(pictures, np.ndarray) or pictures.ndim != 3 or pictures.dtype != np.uint8:
            shape = getattr(pictures, "shape", None)
            raise ImageError(f"the garments must be an N x h x w uint8 array (white on black), not {shape} "
                             f"{getattr(pictures, 'dtype', type(pictures).__name__)}")
        if len(labels) != len(pictures):
            raise ImageError(f"{len(pictures)} images but {len(labels)} labels")
        if len(pictures) == 0:
            raise EmptyData("the ImageSet holds no images: there is nothing to compose")
        self.seed = whole_number(seed, "seed", at_least=0)
        names = background_names() if backgrounds is None else tuple(backgrounds)
        if not names or any(n not in background_names() for n in names):
            raise ArgumentError(f"backgrounds must be names among {', '.join(background_names())}; "
                                f"not {list(names)!r}")
        self.background_names = names
        self.contrast = float(contrast)
        self.backgrounds = tuple(background(n, self.contrast) for n in names)
        self.scale = _scale_range(scale)
        largest = max(pictures.shape[1:])
        if self.scale is not None:
            largest = max(largest, round(largest * self.scale[1]))
        smallest_bg = min(min(b.shape) for b in self.backgrounds)
        self.size = whole_number(size, "size", at_least=largest, below=smallest_bg + 1,
                                 fix=f"It must hold the {largest} px garment and fit in the smallest "
                                     f"background ({smallest_bg} px)")
        self.images, self.labels, self.with_masks = pictures, labels, bool(masks)
        self.classes = tuple(getattr(images, "classes", ()))
        self.indices = getattr(images, "indices", None)
        self.source = getattr(images, "source", "")

    def __len__(self) -> int:
        return int(len(self.labels))

    def __repr__(self) -> str:
        return (f"ComposedImages({len(self)} garments on {', '.join(self.background_names)} at contrast "
                f"{self.contrast:g}, {self.size} px, seed={self.seed}, scale={self.scale or 'native'})")

    def _index(self, i: Any) -> int:
        n = len(self)
        i = whole_number(i, "index")
        if not -n <= i < n:
            raise IndexError(f"index {i} is out of range for {n} composed images")
        return i + n if i < 0 else i

    def _garment(self, i: int, factor: float) -> np.ndarray:
        g = np.asarray(self.images[i])
        if factor == 1.0:
            return g
        from PIL import Image

        h, w = g.shape
        side = (max(1, round(w * factor)), max(1, round(h * factor)))
        if side == (w, h):
            return g
        return np.asarray(Image.fromarray(g).resize(side, Image.BILINEAR))

    def _draw(self, i: int) -> tuple[Placement, np.ndarray]:
        rng = np.random.default_rng([self.seed, i])
        k = int(rng.integers(len(self.backgrounds)))
        u = float(rng.random())  # drawn always, so the rest of the draw does not depend on `scale`
        factor = 1.0 if self.scale is None else self.scale[0] + u * (self.scale[1] - self.scale[0])
        bg = self.backgrounds[k]
        cy = int(rng.integers(bg.shape[0] - self.size + 1))
        cx = int(rng.integers(bg.shape[1] - self.size + 1))
        g = self._garment(i, factor)
        sil = garment_mask(g)
        rows, cols = np.flatnonzero(sil.any(axis=1)), np.flatnonzero(sil.any(axis=0))
        top = int(rng.integers(-rows[0], self.size - rows[-1]))
        left = int(rng.integers(-cols[0], self.size - cols[-1]))
        return Placement(self.background_names[k], (cy, cx), top, left, int(g.shape[0]), self.size,
                         self.contrast), g

    def placement(self, i: int) -> Placement:
        """Item ``i``'s draw: background, crop, place and size of the garment.

        Example:
            >>> import vizlib as vl
            >>> from vizlib.core.composed import ComposedImages
            >>> ComposedImages(vl.fashion_mnist_sample()).placement(0).size
            64
        """
        return self._draw(self._index(i))[0]

    def compose(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Item ``i`` as ``(image, mask)``: ``size x size`` uint8 and its object mask (bool).

        Example:
            >>> import vizlib as vl
            >>> from vizlib.core.composed import ComposedImages
            >>> image, mask = ComposedImages(vl.fashion_mnist_sample()).compose(3)
            >>> image.shape, mask.dtype
            ((64, 64), dtype('bool'))
        """
        return self._item(self._index(i))[1:]

    def _item(self, j: int) -> tuple[Placement, np.ndarray, np.ndarray]:
        p, g = self._draw(j)
        y, x = p.crop
        crop = self.backgrounds[self.background_names.index(p.background)][y:y + p.size, x:x + p.size]
        return (p, *paste(g, crop, p.top, p.left))

    def __getitem__(self, i: int) -> tuple[np.ndarray, int] | tuple[np.ndarray, int, np.ndarray]:
        image, mask = self.compose(i)
        label = int(self.labels[self._index(i)])
        return (image, label, mask) if self.with_masks else (image, label)

    def object_share(self, i: int) -> float:
        """Item ``i``'s object share: the fraction of its pixels on the garment.

        Example:
            >>> import vizlib as vl
            >>> from vizlib.core.composed import ComposedImages
            >>> 0 < ComposedImages(vl.fashion_mnist_sample()).object_share(0) < 0.2
            True
        """
        return float(self.compose(i)[1].mean())

    def example(self, i: int) -> ExampleImage:
        """Item ``i`` as an :class:`~vizlib.core.examples.ExampleImage`, with its exact mask.

        Example:
            >>> import vizlib as vl
            >>> from vizlib.core.composed import ComposedImages
            >>> e = ComposedImages(vl.fashion_mnist_sample()).example(0)
            >>> e.category, e.image.shape, e.mask.shape
            ('Shirt', (64, 64), (64, 64))
        """
        j = self._index(i)
        p, image, mask = self._item(j)
        label = int(self.labels[j])
        index = int(self.indices[j]) if self.indices is not None else j
        category = self.classes[label] if label < len(self.classes) else str(label)
        return ExampleImage(f"{category} (test image {index}) on {p.background}", image, label, category, mask,
                            index)


@dataclass(frozen=True)
class ComposedSet(ImageSet):
    """An :class:`~vizlib.ImageSet` of composed images with each image's exact object mask.

    Attributes:
        masks: ``N x H x W`` bool, True on the garment.
        backgrounds: ``N`` background names.
        (and those of :class:`~vizlib.ImageSet`: images ``N x H x W`` uint8, labels,
        classes, source, indices in Fashion-MNIST's test set.)

    Example:
        >>> from vizlib.core.composed import composed_sample
        >>> s = composed_sample()
        >>> s.images.shape, s.masks.shape
        ((1500, 64, 64), (1500, 64, 64))
    """

    masks: np.ndarray | None = field(default=None, repr=False)
    backgrounds: np.ndarray | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return (f"ComposedSet({len(self)} images {self.images.shape[1:]}, {len(self.classes)} classes, "
                f"source={self.source!r})")

    @property
    def object_share(self) -> np.ndarray:
        """Each image's object share: the fraction of its pixels on the garment (``N`` floats)."""
        return self.masks.reshape(len(self), -1).mean(axis=1)

    def subset(self, index: Sequence[int] | np.ndarray | slice) -> "ComposedSet":
        """The images at ``index`` (positions in this set), masks and all, as a new set."""
        idx = np.arange(len(self))[index]
        base = self.indices if self.indices is not None else np.arange(len(self))
        return ComposedSet(self.images[idx], self.labels[idx], self.classes, self.source, base[idx],
                           self.masks[idx], self.backgrounds[idx])

    def example(self, i: int) -> ExampleImage:
        """Image ``i`` as an :class:`~vizlib.core.examples.ExampleImage` with its exact mask."""
        label = int(self.labels[i])
        index = int(self.indices[i]) if self.indices is not None else int(i)
        category = self.classes[label]
        return ExampleImage(f"{category} (test image {index}) on {self.backgrounds[i]}", self.images[i], label,
                            category, self.masks[i], index)


def composed_sample(seed: int = 0, size: int = 64, *, scale: Sequence[float] | None = None,
                    garments: ImageSet | None = None, contrast: float = BACKGROUND_CONTRAST) -> ComposedSet:
    """The committed Fashion-MNIST test sample (1,500 garments) composed onto the backgrounds.

    Composed here, by :class:`ComposedImages` with the same seed: nothing but the
    28 px sample and this code is committed. About 12 MB (images and masks).

    Args:
        seed, size, scale, contrast: as for :class:`ComposedImages`.
        garments: the set to compose (default: :func:`~vizlib.fashion_mnist_sample`).

    Returns:
        A :class:`ComposedSet`: images, labels, masks, background names, the
        garments' test-set indices; ``object_share`` per image.

    Example:
        >>> from vizlib.core.composed import composed_sample, median_box_side
        >>> s = composed_sample(seed=0)
        >>> len(s), s.images.dtype, bool(np.median(s.object_share) < 0.15)
        (1500, dtype('uint8'), True)
    """
    data = ComposedImages(garments if garments is not None else fashion_mnist_sample(), seed, size, scale=scale,
                          contrast=contrast)
    n = len(data)
    images = np.empty((n, data.size, data.size), np.uint8)
    masks = np.empty((n, data.size, data.size), bool)
    where = []
    for i in range(n):
        p, images[i], masks[i] = data._item(i)
        where.append(p.background)
    how = "native size" if data.scale is None else f"scaled {data.scale[0]}-{data.scale[1]}"
    source = (f"{data.source or 'garments'} composed at {how} onto {data.size} px crops of scikit-image "
              f"backgrounds at contrast {data.contrast:g} (seed {data.seed})")
    indices = data.indices if data.indices is not None else np.arange(n)
    return ComposedSet(images, np.asarray(data.labels, np.int64), data.classes, source, np.asarray(indices),
                       masks, np.array(where))


@functools.lru_cache(maxsize=1)
def bundled_sample() -> ComposedSet:
    """The Bundled set's test sample, as the chapters show it: :func:`composed_sample` with its defaults.

    Composed once per process and kept (about 12 MB, read-only arrays).

    Example:
        >>> from vizlib.core.composed import bundled_sample
        >>> bundled_sample() is bundled_sample(), bundled_sample().images.flags.writeable
        (True, False)
    """
    s = composed_sample()
    for a in (s.images, s.labels, s.masks, s.backgrounds, s.indices):
        a.setflags(write=False)
    return s


def box_sides(masks: Any) -> np.ndarray:
    """The height and width of each mask's bounding box: ``(N, 2)`` ints (one mask: ``(1, 2)``).

    Raises:
        ArgumentError: not ``H x W`` or ``N x H x W``, or a mask with no pixel set.

    Example:
        >>> from vizlib.core.composed import box_sides
        >>> m = np.zeros((6, 6), bool); m[1:4, 2:3] = True
        >>> box_sides(m).tolist()
        [[3, 1]]
    """
    m = np.asarray(masks, dtype=bool)
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3 or m.shape[0] == 0:
        raise ArgumentError(f"masks must be H x W or N x H x W (N >= 1), not {m.shape}")
    rows, cols = m.any(axis=2), m.any(axis=1)
    empty = np.flatnonzero(~rows.any(axis=1))
    if empty.size:
        raise ArgumentError(f"mask {int(empty[0])} is empty: it has no bounding box")
    h = rows.shape[1] - rows[:, ::-1].argmax(axis=1) - rows.argmax(axis=1)
    w = cols.shape[1] - cols[:, ::-1].argmax(axis=1) - cols.argmax(axis=1)
    return np.stack([h, w], axis=1).astype(np.int64)


def median_box_side(masks: Any, side: str = "longer") -> float:
    """The median over objects of their bounding box's longer (or shorter) side, in pixels.

    A receptive field smaller than the longer side cannot hold the whole object:
    its top patches show parts. The issue's bar (the second conv stage's field
    smaller than the median object's box) is read with ``side="longer"``;
    ``"shorter"`` is the stricter reading (the field fits inside the box both ways).

    Args:
        masks: ``N x H x W`` (or ``H x W``) bool object masks.
        side: ``"longer"`` or ``"shorter"``.

    Raises:
        ArgumentError: another ``side``, or masks as :func:`box_sides` refuses them.

    Example:
        >>> from vizlib.core.composed import median_box_side
        >>> m = np.zeros((2, 8, 8), bool); m[0, :4, :2] = True; m[1, :6, :6] = True
        >>> median_box_side(m), median_box_side(m, "shorter")
        (5.0, 4.0)
    """
    if side not in ("longer", "shorter"):
        raise ArgumentError(f"side must be 'longer' or 'shorter', not {side!r}")
    hw = box_sides(masks)
    return float(np.median(hw.max(axis=1) if side == "longer" else hw.min(axis=1)))
