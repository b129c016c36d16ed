"""Three small networks that keep what distinguishes AlexNet, ZFNet and VGG-16.

They are the bundled model set: trained by :mod:`vizlib.models.training` on
Fashion-MNIST garments pasted at their native 28 px onto 64 px crops of grey
photos at half contrast (:mod:`vizlib.core.composed`), with checkpoints small enough to ship
with the book. Each is laid out like torchvision's models (``features``,
``avgpool``, ``classifier``, modules registered in forward order) and carries
the papers' layer names (``model.vizlib_layers``) like the full-size builders
in :mod:`vizlib.models`.

The sizes follow the objects. A garment's box is about 28 x 22 px (the
median over the composed sample), so the second conv stage's receptive field
is kept below that (its top patches are parts of a garment), and the top
layers see more than the whole 64 px input (they can use the object and its
context). Receptive fields in pixels, from :func:`vizlib.receptive_fields` (for
VGG-16 the last convolution of each group: c1_2, c2_2, c3_3, c5_3):

==========  ======  ======  ======  ======  ======
net         c1      c2      c3      c5      p5
==========  ======  ======  ======  ======  ======
AlexNet     7       19      43      75      91
ZFNet       5       11      35      67      83
VGG-16      5       14      40      196     212
==========  ======  ======  ======  ======  ======

What is kept from each design, at 64 x 64 instead of 224 x 224:

* **AlexNet-style**: the large strided first filter (7x7, stride 2: the
  largest filter and stride of the three, as 11x11 stride 4 is at 224 px),
  overlapping 3x3 stride-2 max pooling, five convolutions and three dense
  layers with dropout 0.5 on the outputs of fc6 and fc7. No response
  normalisation (as in torchvision's AlexNet and Yu et al.'s retrained one).
  c2 is 3x3 (AlexNet's is 5x5) so that its field stays inside a garment.
  Sizes: 64 -> c1 32 -> p1 16 -> c2 16 -> p2 8 -> c3..c5 8 -> p5 4.
* **ZFNet-style**: the same net with Zeiler's fixes (§4.1 and Fig. 3): a
  smaller first filter at half the stride (5x5, stride 1), contrast
  normalisation after p1 and p2, and, as in Zeiler's Fig. 3, stride 2 in the
  second convolution, so that layers 3-5 see maps of the same size as the
  AlexNet-style net's (real nets: 110 -> 55 -> 26 -> 13 against
  55 -> 27 -> 27 -> 13).
  Sizes: 64 -> c1 64 -> p1 32 -> c2 16 -> p2 8 -> c3..c5 8 -> p5 4.
* **VGG-style**: only 3x3 convolutions (stride 1, padding 1), in five groups
  of 2, 2, 3, 3, 3 like VGG-16, each group closed by 2x2 max pooling.
  Sizes: 64 -> 32 -> 16 -> 8 -> 4 -> 2.

All three pool the last map to one value per channel (``avgpool``: 1 x 1) before
fc6, as the object can be anywhere in the image. Widths are cut down (the
AlexNet pair: 24-48-64-64-48 filters against 64-192-384-256-256; VGG:
8-16-24-32-48 against 64-128-256-512-512; dense layers of 512 units against
4096) so that each net trains in under 45 minutes on two CPU cores: the
AlexNet pair for 28 epochs (about what the ZFNet-style net's large first-layer
maps allow), the VGG-style net, slower to learn and cheaper per epoch, for 40
(the records keep each run's command, wall time and machine).

The first convolution starts small (normal, std :data:`FIRST_LAYER_STD`)
rather than at He et al.'s scale: whatever of the initial noise no gradient
removes stays in the filters, and at He's scale that noise was most of what
the old bundled nets' first-layer filters showed (see the issue behind this
design, and :func:`vizlib.methods.filters.init_similarity`). The AlexNet- and
ZFNet-style nets (and the AlexNet-style no-renormalisation variant) are also
trained with a smoothness penalty on the first convolution
(``TrainConfig.first_layer_smooth``; each record's command gives the
strength): a layer sampled every other pixel, by its stride (AlexNet) or by
the pooling after it (ZFNet), folds whatever its filters pass above 0.25
cycles/px back into lower frequencies, and without the penalty those filters
kept most of their energy there
(:func:`vizlib.methods.filters.high_frequency_share`). The VGG-16-style net is
trained without it: its first convolution is followed by a second one at full
resolution, not by subsampling, and 3x3 filters are broad-band by their size.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..core.layers import _attach, seeded as _seeded

__all__ = [
    "FMNIST_INPUT_SIZE",
    "FIRST_LAYER_STD",
    "SmallAlexNet",
    "SmallZFNet",
    "SmallVGG",
    "BandedLocalResponseNorm",
    "alexnet_fmnist",
    "zfnet_fmnist",
    "vgg_fmnist",
    "BUNDLED_BUILDERS",
]

#: Input side each bundled architecture is trained at.
FMNIST_INPUT_SIZE: dict[str, int] = {"alexnet": 64, "zfnet": 64, "vgg16": 64}

#: The first convolution's initial weights: normal with this std (the others: He et al.).
FIRST_LAYER_STD = 1e-2


def _pool() -> nn.MaxPool2d:
    # Overlapping pooling (Krizhevsky): 3x3 windows, stride 2. ceil_mode as in
    # vizlib's ZFNet, so 16 -> 8 -> 4 -> 2 (floor would give 7, 3, 1).
    return nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)


class BandedLocalResponseNorm(nn.LocalResponseNorm):
    """:class:`torch.nn.LocalResponseNorm`, its sum over neighbouring maps done as one 1x1 convolution.

    The same function, ``x / (k + alpha * mean_{size maps} x^2)^beta``, and
    the same class for every ``isinstance`` check (the deconvnet, DeNet and
    the receptive fields pass it through as they pass torch's). Torch squares
    the input, pads a copy along the channels and average-pools it in 3-D;
    here the window sum over ``size`` neighbouring maps is one 1x1 convolution
    with a fixed 0/1 band matrix, the padding implicit in the band. A
    training step of the ZFNet-style net, whose two normalisations work on
    large maps, is about 1.5x faster on the CPU
    (``benchmarks/bench_lrn.py``), and its results match torch's in value and
    gradient (the tests; bit for bit on the machines the book was made on).

    Example:
        >>> x = torch.rand(2, 6, 5, 5)
        >>> torch.allclose(BandedLocalResponseNorm(5, 1e-4, 0.75, 2.0)(x), nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0)(x))
        True
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 (torch's name)
        if input.dim() != 4:
            return super().forward(input)
        c = input.shape[1]
        i = torch.arange(c, device=input.device)
        before, after = self.size // 2, (self.size - 1) // 2  # torch pads so many maps before and after
        band = ((i[None, :] >= i[:, None] - before) & (i[None, :] <= i[:, None] + after)).to(input.dtype)
        mean = F.conv2d(input * input, band.view(c, c, 1, 1)) / self.size  # torch's order: average, times alpha, plus k
        return input / mean.mul(self.alpha).add(self.k).pow(self.beta)


def _lrn() -> nn.LocalResponseNorm:
    # Contrast normalisation across 5 adjacent maps, Krizhevsky's constants.
    return BandedLocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)


def _classifier(in_features: int, hidden: int, num_classes: int, dropout: float) -> nn.Sequential:
    # Dropout on the outputs of fc6 and fc7, where Krizhevsky et al. put it
    # ("the first two fully-connected layers"); torchvision drops the input of
    # fc6 instead, which for these small nets means half of only 256 features.
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(p=dropout),
        nn.Linear(hidden, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(p=dropout),
        nn.Linear(hidden, num_classes),
    )


def _init(model: nn.Module) -> None:
    # He et al.'s initialisation (zero biases): with PyTorch's default the
    # signal shrinks layer by layer and these plain nets (no batch norm) sit at
    # chance for epochs at the papers' learning rate of 1e-2. The first
    # convolution alone starts small (FIRST_LAYER_STD, as Zeiler's 1e-2): its
    # filters then show what training put there, not their initial noise.
    first = True
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if first and isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, FIRST_LAYER_STD)
                first = False
            else:
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(m.bias)


class _TorchvisionLayout(nn.Module):
    """``features`` -> ``avgpool`` -> flatten -> ``classifier``, as torchvision's AlexNet and VGG."""

    features: nn.Sequential
    avgpool: nn.Module
    classifier: nn.Sequential

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


class SmallAlexNet(_TorchvisionLayout):
    """AlexNet-style net for 64x64 grey images (or ZFNet-style with ``zeiler=True``); see the module docs.

    Args:
        num_classes: size of fc8.
        in_channels: 1 for Fashion-MNIST.
        widths: filters of c1..c5.
        hidden: units of fc6 and fc7.
        dropout: dropout probability on the outputs of fc6 and fc7.
        zeiler: build the ZFNet-style variant (5x5 stride-1 c1, stride-2 c2,
            contrast normalisation after p1 and p2).

    Example:
        >>> SmallAlexNet()(torch.zeros(2, 1, 64, 64)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        num_classes: int = 10,
        *,
        in_channels: int = 1,
        widths: tuple[int, int, int, int, int] = (24, 48, 64, 64, 48),
        hidden: int = 512,
        dropout: float = 0.5,
        zeiler: bool = False,
    ) -> None:
        super().__init__()
        w1, w2, w3, w4, w5 = widths
        # c1 and c2 with their pooling (and, for ZFNet, contrast normalisation after each pooling)
        c1, c2 = ((5, 1, 2), (3, 2, 1)) if zeiler else ((7, 2, 3), (3, 1, 1))
        first: list[nn.Module] = []
        for cin, cout, (k, stride, pad) in ((in_channels, w1, c1), (w1, w2, c2)):
            first += [nn.Conv2d(cin, cout, kernel_size=k, stride=stride, padding=pad), nn.ReLU(inplace=True), _pool()]
            if zeiler:
                first.append(_lrn())
        self.features = nn.Sequential(
            *first,
            nn.Conv2d(w2, w3, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(w3, w4, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(w4, w5, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            _pool(),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = _classifier(w5, hidden, num_classes, dropout)
        _init(self)


class SmallZFNet(SmallAlexNet):
    """ZFNet-style net: :class:`SmallAlexNet` with Zeiler's changes (see the module docs).

    Example:
        >>> SmallZFNet()(torch.zeros(2, 1, 64, 64)).shape
        torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 10, **kwargs: object) -> None:
        kwargs.pop("zeiler", None)
        super().__init__(num_classes, zeiler=True, **kwargs)  # type: ignore[arg-type]


class SmallVGG(_TorchvisionLayout):
    """VGG-style net for 64x64 grey images: five groups of 3x3 convolutions, 2x2 pooling.

    Args:
        num_classes: size of fc8.
        in_channels: 1 for Fashion-MNIST.
        widths: filters in groups 1..5.
        depths: convolutions in groups 1..5 (VGG-16: 2, 2, 3, 3, 3).
        hidden: units of fc6 and fc7.
        dropout: dropout probability on the outputs of fc6 and fc7.

    Example:
        >>> vgg = SmallVGG()
        >>> sum(isinstance(m, nn.Conv2d) for m in vgg.modules()), tuple(vgg(torch.zeros(2, 1, 64, 64)).shape)
        (13, (2, 10))
    """

    def __init__(
        self,
        num_classes: int = 10,
        *,
        in_channels: int = 1,
        widths: tuple[int, int, int, int, int] = (8, 16, 24, 32, 48),
        depths: tuple[int, int, int, int, int] = (2, 2, 3, 3, 3),
        hidden: int = 512,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for width, depth in zip(widths, depths):
            for _ in range(depth):
                layers += [nn.Conv2d(cin, width, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                cin = width
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = _classifier(cin, hidden, num_classes, dropout)
        _init(self)


def alexnet_fmnist(*, num_classes: int = 10, seed: int | None = None, **kwargs: object) -> nn.Module:
    """The AlexNet-style bundled net (:class:`SmallAlexNet`), named c1...c5, p1, p2, p5, fc6...fc8.

    Example:
        >>> alexnet_fmnist(seed=0).vizlib_layers["c1"]
        'features.1'
    """
    return _named(SmallAlexNet, num_classes, seed, kwargs, "alexnet", "alexnet")


def zfnet_fmnist(*, num_classes: int = 10, seed: int | None = None, **kwargs: object) -> nn.Module:
    """The ZFNet-style bundled net (:class:`SmallZFNet`), named like AlexNet plus n1, n2.

    Example:
        >>> zfnet_fmnist(seed=0).vizlib_layers["n1"]
        'features.3'
    """
    return _named(SmallZFNet, num_classes, seed, kwargs, "alexnet", "zfnet")


def vgg_fmnist(*, num_classes: int = 10, seed: int | None = None, **kwargs: object) -> nn.Module:
    """The VGG-style bundled net (:class:`SmallVGG`), named c1_1...c5_3, p1...p5, fc6...fc8.

    Example:
        >>> vgg_fmnist(seed=0).vizlib_layers["p5"]
        'features.30'
    """
    return _named(SmallVGG, num_classes, seed, kwargs, "vgg", "vgg16")


def _named(cls: type, num_classes: int, seed: int | None, kwargs: dict, scheme: str, arch: str) -> nn.Module:
    """Build ``cls`` seeded and give it the papers' layer names."""
    with _seeded(seed):
        model = cls(num_classes, **kwargs)
    return _attach(model, scheme, arch)


#: Architecture key (as in :data:`vizlib.models.ARCHITECTURES`) -> builder.
BUNDLED_BUILDERS = {"alexnet": alexnet_fmnist, "zfnet": zfnet_fmnist, "vgg16": vgg_fmnist}
