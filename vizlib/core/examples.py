"""Images for the chapters that suit the model set being shown.

The Bundled set's networks read Fashion-MNIST (grey 28x28 garments, 10
classes); the ImageNet and Random sets read colour photos with ImageNet's
1000 categories. Chapters ask here for "a few images" or "a dataset" and get
what fits the network, so one notebook reads true for every set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..methods.compare import energy_inside  # one definition of the measure, shared with chapters 6 and 7
from .data import demo_images, fashion_mnist_sample
from .net import Net

__all__ = ["Example", "example_images", "ExampleDataset", "example_dataset", "energy_inside"]


@dataclass
class Example:
    """One image with its true class.

    Attributes:
        image: the raw picture (``H x W`` or ``H x W x 3`` uint8), before preprocessing.
        label: index of its true class in the network's categories.
        name: a short name for titles.
        category: the class name.
    """

    image: np.ndarray
    label: int
    name: str
    category: str

    def object_mask(self, net: Net, threshold: int = 25) -> torch.Tensor | None:
        """Where the object is, at the network's input size: a Fashion-MNIST garment's own pixels
        (brighter than ``threshold`` on the black background); ``None`` for photos (no mask known)."""
        if self.image.ndim != 2:
            return None
        m = torch.from_numpy(self.image > threshold).float()[None, None]
        size = self.tensor(net).shape[-2:]
        return torch.nn.functional.interpolate(m, size=tuple(size), mode="nearest")[0, 0].bool()

    def tensor(self, net: Net) -> torch.Tensor:
        """The image prepared for ``net`` (its own transform)."""
        return net.transform(self.image if self.image.ndim == 2 else _pil(self.image))


def _pil(arr: np.ndarray) -> Any:
    from PIL import Image

    return Image.fromarray(arr)


def example_images(net: Net, n: int = 3) -> list[Example]:
    """``n`` images for ``net``: Fashion-MNIST test images of ``n`` different classes for the
    Bundled set, the demo photos (``skimage.data``) for the ImageNet and Random sets.

    Raises:
        ValueError: more images asked for than there are.

    Example:
        >>> from vizlib import load
        >>> [e.name for e in example_images(load("alexnet", "random"), 2)]
        ['chelsea', 'coffee']
    """
    if net.model_set == "bundled":
        sample = fashion_mnist_sample()
        if n > len(sample.classes):
            raise ValueError(f"asked for {n} images of different classes; Fashion-MNIST has {len(sample.classes)}")
        out = []
        for label in range(n):
            i = int(np.flatnonzero(sample.labels == label)[0])
            out.append(Example(sample.images[i], label, f"test image {int(sample.indices[i])}"
                               if sample.indices is not None else f"sample {i}", sample.classes[label]))
        return out
    photos = demo_images()
    if n > len(photos):
        raise ValueError(f"asked for {n} photos; vizlib ships {len(photos)} demo photos")
    return [Example(img, d.imagenet_index, d.name, net.categories[d.imagenet_index]) for d, img in photos[:n]]


class ExampleDataset(torch.utils.data.Dataset):
    """Raw images prepared on the fly with a network's transform: items are ``(tensor, label)``."""

    def __init__(self, images: list[np.ndarray] | np.ndarray, labels: list[int] | np.ndarray, net: Net,
                 description: str) -> None:
        self.images, self.labels, self.net, self.description = images, labels, net, description

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = self.images[i]
        return (self.net.transform(img if img.ndim == 2 else _pil(img)), int(self.labels[i]))

    def raw(self, i: int) -> np.ndarray:
        """The ``i``-th image before preprocessing."""
        return self.images[i]

    def __repr__(self) -> str:
        return f"ExampleDataset({len(self)} images: {self.description})"


def example_dataset(net: Net, limit: int | None = None) -> ExampleDataset:
    """A dataset to mine for ``net``: the committed Fashion-MNIST test sample for the Bundled set,
    the demo photos otherwise (point :class:`vizlib.ImageFiles` at a folder, or use
    :func:`vizlib.imagenette`, for a real ImageNet-style dataset).

    Args:
        net: the network (its model set decides the images, its transform prepares them).
        limit: use at most this many images.
    """
    if net.model_set == "bundled":
        s = fashion_mnist_sample()
        k = len(s) if limit is None else min(limit, len(s))
        return ExampleDataset(s.images[:k], s.labels[:k], net, f"{s.source}, first {k}")
    photos = demo_images()[: limit or None]
    return ExampleDataset([img for _, img in photos], [d.imagenet_index for d, _ in photos], net,
                          "the skimage demo photos")

