"""The record of one example image: the picture, its true class and where its object is.

Defined here, below both :mod:`vizlib.core.examples` (the chapters' images) and
:mod:`vizlib.core.composed` (the bundled set's composed images), which both
return it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .measures import transform_mask

__all__ = ["ExampleImage"]


@dataclass
class ExampleImage:
    """One image with its true class and where its object is.

    Attributes:
        name: a short name for titles.
        image: the raw picture (``H x W`` or ``H x W x 3`` uint8), before preprocessing.
        label: index of its true class in the network's categories.
        category: the class name.
        mask: ``H x W`` bool in the picture's own pixels, True on the object
            (``None``: no object region known).
        index: its index in the dataset it comes from (Fashion-MNIST test set), if any.

    Example:
        >>> from vizlib.core.examples import fashion_examples
        >>> shirt = fashion_examples(1)[0]
        >>> shirt.category, shirt.index, shirt.image.shape
        ('T-shirt/top', 35, (28, 28))
    """

    name: str
    image: np.ndarray = field(repr=False)
    label: int
    category: str
    mask: np.ndarray | None = field(default=None, repr=False)
    index: int | None = None

    def tensor(self, net: Any) -> torch.Tensor:
        """The image prepared for ``net`` (its own transform, its colour mode): ``(C, H, W)``."""
        from .images import load_image

        return load_image(self.image, net, convert=True)[0]

    def object_mask(self, net: Any) -> torch.Tensor | None:
        """The object region in ``net``'s input: ``(H, W)`` bool, or ``None`` when the image has none."""
        return None if self.mask is None else transform_mask(net, self.mask)

    @property
    def area(self) -> float:
        """The object's share of the picture (NaN when no region is known)."""
        return float(self.mask.mean()) if self.mask is not None else float("nan")
