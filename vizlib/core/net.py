"""The ``Net`` record: a network with what is needed to feed it and read it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from .layers import layer_names

__all__ = ["Net", "ARCH_NAMES", "net_title"]

#: The papers' names of the three designs.
ARCH_NAMES: dict[str, str] = {"alexnet": "AlexNet", "zfnet": "ZFNet", "vgg16": "VGG-16"}


def net_title(arch: str, model_set: str) -> str:
    """The name a figure or table gives a network: what it is, not what it imitates.

    The ImageNet set's nets are the papers' own designs ("AlexNet"); the Bundled
    set's are small nets in their style ("AlexNet-style (bundled)"); the Random
    set's are the designs untrained ("AlexNet (untrained)").

    Example:
        >>> net_title("vgg16", "bundled"), net_title("zfnet", "random"), net_title("alexnet", "imagenet")
        ('VGG-16-style (bundled)', 'ZFNet (untrained)', 'AlexNet')
    """
    name = ARCH_NAMES.get(arch, arch)
    if model_set == "bundled":
        return f"{name}-style (bundled)"
    if model_set == "random":
        return f"{name} (untrained)"
    return name


@dataclass
class Net:
    """A network together with what is needed to feed it and read its output.

    Attributes:
        arch: ``"alexnet"``, ``"zfnet"`` or ``"vgg16"``.
        model_set: ``"imagenet"``, ``"bundled"`` or ``"random"``.
        model: the ``nn.Module`` (in eval mode), with ``vizlib_layers``.
        categories: class names, index = output unit.
        transform: preprocessing from a PIL image to a normalised tensor.
        mean, std: the per-channel normalisation the model expects; ``mean``
            is also the grey an occluder uses.
        input_size: side of the square input the model was trained on.
        source: where the weights came from, in words.

    Example:
        >>> import vizlib as vl
        >>> net = vl.load("alexnet", "random")
        >>> net.layers[:3], net.input_size, len(net.categories)
        (['c1', 'p1', 'c2'], 224, 1000)
    """

    arch: str
    model_set: str
    model: nn.Module
    categories: list[str]
    transform: Callable[[Any], torch.Tensor]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: int
    source: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def layers(self) -> list[str]:
        """The paper names of the layers, in forward order."""
        return layer_names(self.model)

    @property
    def title(self) -> str:
        """Its name for figures and tables (:func:`net_title`): ``"AlexNet-style (bundled)"``, ..."""
        return net_title(self.arch, self.model_set)

    @property
    def in_channels(self) -> int:
        return len(self.mean)

    def __repr__(self) -> str:
        return f"Net({self.arch!r}, set={self.model_set!r}, {len(self.categories)} classes, source={self.source!r})"
