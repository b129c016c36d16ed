"""The three networks of the papers and their layer names.

AlexNet and VGG-16 are torchvision's architectures; ZFNet is built here after
Zeiler & Fergus, Fig. 3. Every builder attaches the papers' layer names to the
model (``model.vizlib_layers``: paper name -> module path), so every vizlib
routine accepts either ``"c5"`` or ``"features.11"``.

What a paper name points at is the module whose *output* is that layer as the
papers use it: for a convolutional layer the rectified feature maps (the ReLU
after the convolution), for a pooling layer the pooled maps, for fc6/fc7 the
rectified units and for fc8 the class scores (logits).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Iterator

import torch
from torch import nn
from torchvision import models as tvm

__all__ = [
    "ZFNet",
    "alexnet",
    "zfnet",
    "vgg16",
    "alexnet_original",
    "ARCHITECTURES",
    "name_layers",
    "layer_names",
    "resolve_layer",
    "layer_module",
]

#: Architecture keys understood by :func:`vizlib.load` and the builders.
ARCHITECTURES: tuple[str, ...] = ("alexnet", "zfnet", "vgg16")


class ZFNet(nn.Module):
    """ZFNet, Zeiler & Fergus (2014), Fig. 3, in torchvision's layout.

    Layer 1: 96 filters 7x7 stride 2 (padding 1: 224 -> 110), ReLU, 3x3 max
    pooling with stride 2 (110 -> 55), contrast normalisation across feature
    maps. Layer 2: 256 filters 5x5 stride 2 (55 -> 26), ReLU, pooling
    (26 -> 13), normalisation. Layers 3-5: 384, 384, 256 filters 3x3 with
    dense connections (no two-GPU split), then pooling (13 -> 6). fc6, fc7: 4096
    units with dropout 0.5; fc8: the classes.

    The pooling windows use ``ceil_mode=True``: that is what makes the paper's
    sizes 110 -> 55 and 26 -> 13 come out (floor would give 54 and 12).
    Contrast normalisation is local response normalisation over 5 adjacent
    maps (``alpha=1e-4, beta=0.75, k=2``, Krizhevsky's constants).

    Args:
        num_classes: size of the output layer.
        norm_before_pool: put the normalisation before the pooling instead of
            after it. Zeiler's text puts it after; the pretrained weights of the
            ``pytorchcv`` zoo were trained with it before, and are loaded so.
        dropout: dropout probability of fc6 and fc7.
        in_channels: 3 for colour images.

    Example:
        >>> net = ZFNet()
        >>> net(torch.zeros(1, 3, 224, 224)).shape
        torch.Size([1, 1000])
    """

    def __init__(
        self,
        num_classes: int = 1000,
        *,
        norm_before_pool: bool = False,
        dropout: float = 0.5,
        in_channels: int = 3,
    ) -> None:
        super().__init__()

        def block(cin: int, cout: int, k: int, s: int, p: int) -> list[nn.Module]:
            conv = nn.Conv2d(cin, cout, kernel_size=k, stride=s, padding=p)
            pool = nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)
            norm = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
            tail = [norm, pool] if norm_before_pool else [pool, norm]
            return [conv, nn.ReLU(inplace=True), *tail]

        self.features = nn.Sequential(
            *block(in_channels, 96, 7, 2, 1),
            *block(96, 256, 5, 2, 0),
            nn.Conv2d(256, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def _walk(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Leaf modules in registration order (the forward order of these nets)."""
    for path, module in model.named_modules():
        if path and not list(module.children()):
            yield path, module


def name_layers(model: nn.Module, scheme: str = "alexnet") -> "OrderedDict[str, str]":
    """Give the papers' names to the layers of a sequential CNN.

    Args:
        model: a network laid out like torchvision's (convolutions, pooling,
            then linear layers, registered in forward order).
        scheme: ``"alexnet"`` numbers convolutions c1, c2, ... and names each
            pooling after the convolution before it (p1, p2, p5) and each
            normalisation n1, n2; ``"vgg"`` numbers convolutions by group
            (c1_1, c1_2, ...) and pools p1...p5. Linear layers are fc6, fc7,
            fc8 in both, as in the papers.

    Returns:
        paper name -> module path, in forward order. A convolution's or a
        hidden linear layer's name points at the ReLU that follows it when
        there is one (the rectified output the papers visualise).

    Example:
        >>> names = name_layers(vgg16(), "vgg")
        >>> names["c1_1"], names["p5"], names["fc8"]
        ('features.1', 'features.30', 'classifier.6')
    """
    if scheme not in ("alexnet", "vgg"):
        raise ValueError(f"unknown naming scheme {scheme!r}; use 'alexnet' or 'vgg'")
    names: OrderedDict[str, str] = OrderedDict()
    conv_count, group, in_group, fc_count, norm_count = 0, 1, 0, 5, 0
    pending: str | None = None  # name waiting for the ReLU that follows
    for path, module in _walk(model):
        if isinstance(module, nn.ReLU) and pending is not None:
            names[pending] = path
            pending = None
            continue
        pending = None
        if isinstance(module, nn.Conv2d):
            conv_count += 1
            in_group += 1
            name = f"c{conv_count}" if scheme == "alexnet" else f"c{group}_{in_group}"
            names[name] = path
            pending = name
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            name = f"p{conv_count}" if scheme == "alexnet" else f"p{group}"
            names[name] = path
            group += 1
            in_group = 0
        elif isinstance(module, nn.LocalResponseNorm):
            norm_count += 1
            names[f"n{norm_count}"] = path
        elif isinstance(module, nn.Linear):
            fc_count += 1
            names[f"fc{fc_count}"] = path
            pending = f"fc{fc_count}"
    return names


def _attach(model: nn.Module, scheme: str, arch: str) -> nn.Module:
    model.vizlib_layers = name_layers(model, scheme)  # type: ignore[assignment]
    model.vizlib_arch = arch  # type: ignore[assignment]
    return model


def alexnet(*, num_classes: int = 1000, seed: int | None = None) -> nn.Module:
    """torchvision's AlexNet (single stream, 64-192-384-256-256 filters), named.

    Args:
        num_classes: size of fc8.
        seed: seed for the random initialisation (``None`` leaves the global
            generator alone).

    Example:
        >>> alexnet().vizlib_layers["c5"]
        'features.11'
    """
    with _seeded(seed):
        model = tvm.alexnet(weights=None, num_classes=num_classes)
    return _attach(model, "alexnet", "alexnet")


def zfnet(*, num_classes: int = 1000, seed: int | None = None, norm_before_pool: bool = False) -> nn.Module:
    """ZFNet (:class:`ZFNet`), named like AlexNet (c1...c5, p1, n1, p2, n2, p5, fc6...fc8)."""
    with _seeded(seed):
        model = ZFNet(num_classes=num_classes, norm_before_pool=norm_before_pool)
    return _attach(model, "alexnet", "zfnet")


def alexnet_original(*, num_classes: int = 1000, seed: int | None = None) -> nn.Module:
    """Krizhevsky's AlexNet as one stream, as Vashishth §3 lists it.

    A 227x227 input; 96 filters 11x11 stride 4 with no padding; 3x3 stride-2
    max pooling and response normalisation after layers 1 and 2; 256 filters
    5x5 padding 2; 384, 384, 256 filters 3x3 padding 1; pooling; fc 4096,
    4096, classes. (torchvision's AlexNet is the later "one weird trick"
    variant: 64-192-384-256-256 filters, padding 2 in layer 1, no LRN.)
    """
    with _seeded(seed):
        features = nn.Sequential(
            nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2), nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
            nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2), nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
            nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
        )
        model = tvm.AlexNet(num_classes=num_classes)
        model.features = features
        model.classifier[1] = nn.Linear(256 * 6 * 6, 4096)
    return _attach(model, "alexnet", "alexnet_original")


def vgg16(*, num_classes: int = 1000, seed: int | None = None) -> nn.Module:
    """torchvision's VGG-16 (configuration D, no batch norm), named c1_1...c5_3, p1...p5, fc6...fc8."""
    with _seeded(seed):
        model = tvm.vgg16(weights=None, num_classes=num_classes)
    return _attach(model, "vgg", "vgg16")


class _seeded:
    """Seed torch's global generator for a block, then restore its state."""

    def __init__(self, seed: int | None) -> None:
        self.seed = seed
        self.state: torch.Tensor | None = None

    def __enter__(self) -> None:
        if self.seed is not None:
            self.state = torch.random.get_rng_state()
            torch.manual_seed(self.seed)

    def __exit__(self, *exc: object) -> None:
        if self.state is not None:
            torch.random.set_rng_state(self.state)


def layer_names(model: nn.Module) -> list[str]:
    """The paper names a model carries (empty for a model vizlib did not build)."""
    return list(getattr(model, "vizlib_layers", {}))


def resolve_layer(model: nn.Module, layer: str | nn.Module) -> tuple[str, str]:
    """Turn a paper name, a module path or a module into ``(label, module path)``.

    Raises:
        KeyError: the layer is unknown; the message lists the names it knows.
    """
    if isinstance(layer, nn.Module):
        for path, module in model.named_modules():
            if module is layer:
                return _label(model, path), path
        raise KeyError("that module is not part of this model; pass one of its submodules or a layer name")
    names = getattr(model, "vizlib_layers", {})
    if layer in names:
        return layer, names[layer]
    paths = dict(model.named_modules())
    if layer in paths and layer:
        return _label(model, layer), layer
    known = ", ".join(names) if names else ", ".join(p for p in paths if p)
    hint = f" Did you mean {_closest(layer, list(names))!r}?" if names else ""
    raise KeyError(f"unknown layer {layer!r} for this model. Known layers: {known}.{hint}")


def layer_module(model: nn.Module, layer: str | nn.Module) -> nn.Module:
    """The module behind a paper name or a module path."""
    _, path = resolve_layer(model, layer)
    return model.get_submodule(path)


def _label(model: nn.Module, path: str) -> str:
    for name, p in getattr(model, "vizlib_layers", {}).items():
        if p == path:
            return name
    return path


def _closest(word: str, options: list[str]) -> str:
    import difflib

    match = difflib.get_close_matches(word, options, n=1, cutoff=0.0)
    return match[0] if match else (options[0] if options else "")

