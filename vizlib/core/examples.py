"""The example images the chapters show, each with one definition of its object.

The Bundled set's networks read Fashion-MNIST garments (10 classes) pasted at
their native 28 px onto 64 px crops of grey photos
(:mod:`vizlib.core.composed`); the ImageNet and Random sets read colour photos with ImageNet's
1000 categories. Chapters ask here for "a few images" or "a dataset" and get
what fits the network, so one notebook reads true for every set.

Every image comes as an :class:`ExampleImage` with its object: a garment's exact
mask (:func:`~vizlib.core.composed.garment_mask`, placed), a photo's hand-drawn
box from ``vizlib/datasets/part_annotations.json`` (:data:`OBJECT_BOXES`, the
only place the boxes are written down).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .data import DEMO_IMAGES, ImageSet, demo_image
from .composed import ComposedSet, bundled_sample
from .example_image import ExampleImage
from .measures import box_mask, silhouette_mask

__all__ = [
    "ANNOTATIONS_PATH",
    "ExampleImage",
    "object_boxes",
    "fashion_examples",
    "photo_examples",
    "example_images",
    "ExampleDataset",
    "example_dataset",
]

#: The annotations shipped with vizlib: part positions (chapter 5) and the demo photos' object boxes.
ANNOTATIONS_PATH = Path(__file__).resolve().parent.parent / "datasets" / "part_annotations.json"


@functools.lru_cache(maxsize=1)
def _annotations() -> dict[str, Any]:
    return json.loads(ANNOTATIONS_PATH.read_text())


def object_boxes() -> dict[str, tuple[int, int, int, int]]:
    """The object box ``(top, left, bottom, right)`` of each demo photo, in its own pixels.

    Read from ``vizlib/datasets/part_annotations.json`` (``objects.demo_images``),
    drawn by hand around the thing the photo's ImageNet class names.

    Example:
        >>> object_boxes()["coffee"]
        (15, 170, 305, 425)
    """
    return {k: tuple(int(v) for v in box) for k, box in _annotations()["objects"]["demo_images"].items()}


def fashion_examples(n: int = 3, *, classes: Sequence[int] | None = None, data: ImageSet | None = None) -> list[ExampleImage]:
    """``n`` Fashion-MNIST test images with their garments as objects: what the Bundled set reads.

    By default the committed test sample composed onto the backgrounds
    (:func:`~vizlib.core.composed.bundled_sample`: 64 px, each garment's exact
    mask); with ``data``, images from that set (a plain :class:`~vizlib.ImageSet`'s
    garments on black get their silhouettes as masks).

    The ``i``-th image is of class ``classes[i % len(classes)]`` (default
    0..9), the first image of that class not taken yet: ``n <= 10`` gives one of
    each class, more go round again.

    Args:
        n: how many.
        classes: the order of the classes.
        data: an :class:`~vizlib.ImageSet` or :class:`~vizlib.core.composed.ComposedSet`
            (default: the composed sample).

    Raises:
        ValueError: ``n`` below 1, or more images of a class asked for than the data holds.

    Example:
        >>> from vizlib.core.examples import fashion_examples
        >>> [(e.category, e.image.shape) for e in fashion_examples(2)]
        [('T-shirt/top', (64, 64)), ('Trouser', (64, 64))]
    """
    data = data if data is not None else bundled_sample()
    order = list(range(len(data.classes)) if classes is None else classes)
    if n < 1 or not order:
        raise ValueError(f"ask for at least one image of at least one class (n={n}, classes={order})")
    taken: dict[int, int] = {}
    out = []
    for i in range(n):
        c = order[i % len(order)]
        hits = np.flatnonzero(data.labels == c)
        k = taken.get(c, 0)
        if k >= len(hits):
            raise ValueError(f"the data holds {len(hits)} images of class {data.classes[c]!r}; asked for {k + 1}")
        taken[c] = k + 1
        j = int(hits[k])
        if isinstance(data, ComposedSet):
            out.append(data.example(j))
            continue
        idx = int(data.indices[j]) if data.indices is not None else j
        img = np.asarray(data.images[j])
        out.append(ExampleImage(f"{data.classes[c]} (test image {idx})", img, int(c), data.classes[c],
                                silhouette_mask(img), idx))
    return out


def photo_examples(names: Sequence[str] | None = None, n: int | None = None, *,
                   categories: Sequence[str] | None = None) -> list[ExampleImage]:
    """The demo photos (``skimage.data``) with their ImageNet class and object box.

    Args:
        names: which photos, in this order (default: :data:`vizlib.DEMO_IMAGES` order).
        n: at most this many.
        categories: the class names to title them with (default ImageNet's).

    Raises:
        ValueError: more photos asked for than vizlib ships.

    Example:
        >>> from vizlib.core.examples import photo_examples
        >>> [(e.name, e.label) for e in photo_examples(n=2)]
        [('chelsea', 281), ('coffee', 967)]
    """
    names = list(names) if names is not None else [d.name for d in DEMO_IMAGES]
    if n is not None:
        if n > len(names):
            raise ValueError(f"asked for {n} photos; vizlib ships {len(names)} demo photos")
        names = names[:n]
    boxes = object_boxes()
    out = []
    for name in names:
        d, img = demo_image(name)
        category = categories[d.imagenet_index] if categories is not None else d.category
        mask = box_mask(img.shape, boxes[name]) if name in boxes else None
        out.append(ExampleImage(name, img, d.imagenet_index, category, mask))
    return out


def example_images(net: Any, n: int = 3, *, classes: Sequence[int] | None = None,
                   names: Sequence[str] | None = None) -> list[ExampleImage]:
    """``n`` images for ``net``: Fashion-MNIST test images (one of each class in turn) for a
    one-channel net (the Bundled set), the demo photos for the ImageNet and Random sets.

    Args:
        net: a :class:`~vizlib.Net`.
        n: how many.
        classes: the order of Fashion-MNIST classes (:func:`fashion_examples`).
        names: which photos (:func:`photo_examples`).

    Example:
        >>> from vizlib import load
        >>> [e.name for e in example_images(load("alexnet", "random"), 2)]
        ['chelsea', 'coffee']
    """
    if len(net.mean) == 1:
        return fashion_examples(n, classes=classes)
    return photo_examples(names, n, categories=net.categories)


class ExampleDataset(torch.utils.data.Dataset):
    """Raw images prepared on the fly with a network's transform: items are ``(tensor, label)``.

    Example:
        >>> import vizlib as vl
        >>> from vizlib.core.examples import example_dataset
        >>> image, label = example_dataset(vl.load("alexnet", "bundled"), limit=4)[0]
        >>> image.shape, label
        (torch.Size([1, 64, 64]), 6)
    """

    def __init__(self, images: list[np.ndarray] | np.ndarray, labels: list[int] | np.ndarray, net: Any,
                 description: str) -> None:
        self.images, self.labels, self.net, self.description = images, labels, net, description

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from .images import load_image

        return load_image(self.images[i], self.net, convert=True)[0], int(self.labels[i])

    def raw(self, i: int) -> np.ndarray:
        """The ``i``-th image before preprocessing."""
        return self.images[i]

    def __repr__(self) -> str:
        return f"ExampleDataset({len(self)} images: {self.description})"


def example_dataset(net: Any, limit: int | None = None) -> ExampleDataset:
    """A dataset to mine for ``net``: the committed Fashion-MNIST test sample for the Bundled set,
    the demo photos otherwise (point :class:`vizlib.ImageFiles` at a folder, or use
    :func:`vizlib.core.images.imagenette`, for a real ImageNet-style dataset).

    Args:
        net: the network (its model set decides the images, its transform prepares them).
        limit: use at most this many images.

    Example:
        >>> import vizlib as vl
        >>> from vizlib.core.examples import example_dataset
        >>> example_dataset(vl.load("alexnet", "bundled"), limit=4)
        ExampleDataset(4 images: Fashion-MNIST test sample committed with vizlib (150 per class), first 4)
    """
    if len(net.mean) == 1:
        s = bundled_sample()
        k = len(s) if limit is None else min(limit, len(s))
        return ExampleDataset(s.images[:k], s.labels[:k], net, f"{s.source}, first {k}")
    photos = photo_examples(n=min(limit, len(DEMO_IMAGES)) if limit else None)
    return ExampleDataset([p.image for p in photos], [p.label for p in photos], net, "the skimage demo photos")
