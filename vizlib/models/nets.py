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

import torch
from torch import nn
from torchvision import models as tvm

from ..core.layers import _attach, seeded as _seeded

__all__ = ["ZFNet", "alexnet", "zfnet", "vgg16", "alexnet_original", "ARCHITECTURES"]

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
    return _torchvision("alexnet", num_classes, seed)


def zfnet(*, num_classes: int = 1000, seed: int | None = None, norm_before_pool: bool = False) -> nn.Module:
    """ZFNet (:class:`ZFNet`), named like AlexNet (c1...c5, p1, n1, p2, n2, p5, fc6...fc8).

    Example:
        >>> [s.w_out for s in __import__("vizlib").output_sizes(zfnet(), 224)][:4]
        [110, 55, 26, 13]
    """
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

    Example:
        >>> import torch
        >>> alexnet_original(seed=0)(torch.zeros(1, 3, 227, 227)).shape
        torch.Size([1, 1000])
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
    """torchvision's VGG-16 (configuration D, no batch norm), named c1_1...c5_3, p1...p5, fc6...fc8.

    Example:
        >>> vgg16().vizlib_layers["c5_3"]
        'features.29'
    """
    return _torchvision("vgg16", num_classes, seed)


def _torchvision(arch: str, num_classes: int, seed: int | None) -> nn.Module:
    """torchvision's builder of that name, untrained and seeded, with the papers' layer names."""
    with _seeded(seed):
        model = getattr(tvm, arch)(weights=None, num_classes=num_classes)
    return _attach(model, "vgg" if arch.startswith("vgg") else "alexnet", arch)
