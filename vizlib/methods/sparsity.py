"""Sparsity per layer (Yu et al. §5, Fig. 5): the share of exactly-zero activations.

:func:`layer_sparsity` counts, for every convolution (its rectified output)
and every pooling layer, how many activations are exactly zero over a
dataset, in one streaming pass: each batch's activations are counted as they
are produced and dropped, and the forward pass stops after the last layer
counted, so memory holds one batch and a few integers per feature map,
whatever the number of images.

:func:`conv_pool_layers` and :func:`stage_layers` name the layers such
comparisons use: every convolution and pooling layer (Yu Fig. 5), and one
convolution per depth stage so that nets of different depth line up (Yu Fig. 6).

Example::

    import vizlib as vl
    net = vl.load("alexnet", "bundled")
    s = vl.layer_sparsity(net, vl.fashion_mnist_sample().subset(slice(0, 200)))
    s.share["c5"], s.mean_share(s.high_layers)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from torch import nn
from ..core.progress import tqdm

from ..core.args import whole_number
from ..core.batches import batches
from ..core.device import on_device
from ..core.hooks import Capture, StopForward, preserved
from ..core.images import _unwrap, check_image
from ..core.layers import layer_names
from ..core.tables import Table

__all__ = ["Sparsity", "layer_sparsity", "conv_pool_layers", "conv_layers", "stage_layers", "is_pool"]

_CONV = re.compile(r"^c(\d+)(?:_(\d+))?$")
_POOL = re.compile(r"^p\d+$")


def is_pool(layer: str) -> bool:
    """Whether a paper layer name is a pooling layer (``p1``, ``p5``).

    Example:
        >>> is_pool("p2"), is_pool("c2_1")
        (True, False)
    """
    return bool(_POOL.match(layer))


def conv_layers(model: nn.Module) -> list[str]:
    """The paper names of the convolutions, in forward order (``c1``, ... or ``c1_1``, ...).

    Example:
        >>> from vizlib.models import alexnet
        >>> conv_layers(alexnet())
        ['c1', 'c2', 'c3', 'c4', 'c5']
    """
    return [n for n in layer_names(model) if _CONV.match(n)]


def conv_pool_layers(model: nn.Module) -> list[str]:
    """The paper names of the convolution and pooling layers, in forward order (Yu Fig. 5's layers).

    Example:
        >>> from vizlib.models import alexnet
        >>> conv_pool_layers(alexnet())
        ['c1', 'p1', 'c2', 'p2', 'c3', 'c4', 'c5', 'p5']
    """
    return [n for n in layer_names(model) if _CONV.match(n) or _POOL.match(n)]


def stage_layers(model: nn.Module, stages: int = 5) -> list[str]:
    """One convolution layer per depth stage, so that different nets line up by depth (Yu Fig. 6).

    Convolutions are grouped as their names group them (VGG's ``c3_1..c3_3``
    form stage 3; AlexNet's ``c3`` alone is stage 3) and the last of each group
    stands for it. AlexNet, ZFNet and VGG-16 all have five stages.

    Raises:
        ValueError: the model carries no paper layer names.

    Example:
        >>> from vizlib.models import vgg16, alexnet
        >>> stage_layers(vgg16()), stage_layers(alexnet())
        (['c1_2', 'c2_2', 'c3_3', 'c4_3', 'c5_3'], ['c1', 'c2', 'c3', 'c4', 'c5'])
    """
    groups: dict[str, str] = {}
    for n in layer_names(model):
        m = _CONV.match(n)
        if m:
            groups[m.group(1)] = n
    last = list(groups.values())
    if not last:
        raise ValueError("the model carries no paper layer names (c1, c1_1, ...); build it with vizlib")
    if len(last) <= stages:
        return last
    pick = np.linspace(0, len(last) - 1, stages).round().astype(int)
    return [last[i] for i in pick]


@dataclass
class Sparsity:
    """Zero activations per layer over a dataset (Yu et al., Fig. 5).

    Attributes:
        name: the network's label.
        layers: the layers counted, in forward order.
        zeros: layer -> number of activations exactly zero.
        total: layer -> number of activations.
        map_zeros: layer -> ``(C,)`` int64 zeros per feature map.
        map_total: layer -> activations per feature map (images × positions).
        images: images counted.

    Example:
        >>> s = Sparsity("net", ["c1"], {"c1": 3}, {"c1": 4}, {"c1": torch.tensor([1, 2])}, {"c1": 2}, 1)
        >>> s.share, s.dead_maps("c1")
        ({'c1': 0.75}, [1])
    """

    name: str
    layers: list[str]
    zeros: dict[str, int]
    total: dict[str, int]
    map_zeros: dict[str, torch.Tensor]
    map_total: dict[str, int]
    images: int

    @property
    def share(self) -> dict[str, float]:
        """layer -> share of exactly-zero activations."""
        return {layer: self.zeros[layer] / self.total[layer] for layer in self.layers}

    @property
    def pools(self) -> list[str]:
        """The pooling layers counted."""
        return [layer for layer in self.layers if _POOL.match(layer)]

    @property
    def convs(self) -> list[str]:
        """The convolutions counted."""
        return [layer for layer in self.layers if _CONV.match(layer)]

    @property
    def high_layers(self) -> list[str]:
        """The layers after the last-but-one pooling layer (AlexNet: c3-p5; VGG-16: c5_1-p5)."""
        pools = [i for i, layer in enumerate(self.layers) if _POOL.match(layer)]
        start = pools[-2] + 1 if len(pools) >= 2 else len(self.layers) // 2
        return self.layers[start:]

    def mean_share(self, layers: Iterable[str] | None = None) -> float:
        """The mean of the layers' shares (each layer weighs the same)."""
        names = list(layers) if layers is not None else self.layers
        s = self.share
        return float(np.mean([s[n] for n in names]))

    def pool_drops(self) -> list[tuple[str, str, float, float]]:
        """For each pooling layer: ``(layer before, pool, share before, share after)``."""
        s = self.share
        out = []
        for i, layer in enumerate(self.layers):
            if _POOL.match(layer) and i > 0:
                out.append((self.layers[i - 1], layer, s[self.layers[i - 1]], s[layer]))
        return out

    def dead_maps(self, layer: str) -> list[int]:
        """Feature maps of ``layer`` that are zero at every position of every image counted."""
        if layer not in self.map_zeros:
            raise KeyError(f"layer {layer!r} was not counted; count it: layer_sparsity(net, data, [..., {layer!r}])")
        return torch.nonzero(self.map_zeros[layer] == self.map_total[layer]).flatten().tolist()

    def state_bytes(self) -> int:
        """Bytes of counting state (independent of the number of images)."""
        return sum(t.numel() * t.element_size() for t in self.map_zeros.values()) + 16 * 2 * len(self.layers)

    def table(self) -> Table:
        """One row per layer: zeros, activations, share."""
        rows = [[self.name, layer, "pool" if _POOL.match(layer) else "conv", self.zeros[layer], self.total[layer],
                 round(self.share[layer], 4)] for layer in self.layers]
        return Table(["network", "layer", "kind", "zero activations", "activations", "share zero"], rows,
                     f"{self.name}: exactly-zero activations over {self.images} images")

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v:.3f}" for k, v in self.share.items())
        return f"Sparsity({self.name!r}, {self.images} images: {body})"


class _ZeroCounts(Capture):
    """A :class:`~vizlib.core.hooks.Capture` that keeps, per layer, the zeros per feature map
    (``(C,)`` int64) instead of the output itself, and the activations per map in ``sizes``."""

    def __init__(self, model: nn.Module, layers: Iterable[str]) -> None:
        super().__init__(model, layers, stop=True)
        self.sizes: dict[str, int] = {}

    def _hook(self, label: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            z = output == 0
            self.outputs[label] = (z.sum(dim=(0, *range(2, z.ndim))) if z.ndim > 2 else z.sum(dim=0)).to(torch.int64)
            self.sizes[label] = int(output[:, 0].numel())
            if len(self.outputs) == len(self.resolved):
                raise StopForward

        return hook


def layer_sparsity(
    net: Any,
    data: Any,
    layers: Sequence[str] | None = None,
    *,
    name: str | None = None,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> Sparsity:
    """Count exactly-zero activations of every conv and pooling layer over a dataset (Yu Fig. 5).

    One pass over the data; each batch's activations are counted as they are
    produced and then dropped (the forward pass stops after the last layer
    counted), so memory holds one batch and a few integers per feature map,
    whatever the number of images.

    Args:
        net: a :class:`~vizlib.Net` or an ``nn.Module``.
        data: anything :func:`vizlib.batches` reads (with a bare module:
            prepared tensors; with a Net also an ImageSet or pictures).
        layers: paper names or module paths (default: every convolution, as
            the rectified maps, and every pooling layer).
        name: label for tables and plots (default: the architecture's key).
        batch_size: images per forward pass.
        device: where to compute (default: where the model lives; another
            device gets a copy of the model, the model itself is not moved).
        progress: show a progress bar.

    Returns:
        A :class:`Sparsity` with exact integer counts.

    Raises:
        KeyError: an unknown layer. EmptyData (a ValueError): no images in the data.
        ArgumentError: ``batch_size`` not a whole number of at least 1; a layer given as an int.
        ImageError: images that do not fit the network, or NaN or infinite pixels (counted).
        DeviceError: ``device`` not available here, or a model on the meta device.

    Example:
        >>> from vizlib.models import alexnet_fmnist
        >>> s = layer_sparsity(alexnet_fmnist(seed=0), torch.randn(8, 1, 64, 64), progress=False)
        >>> s.layers[:3], s.images
        (['c1', 'p1', 'c2'], 8)
    """
    model, _ = _unwrap(net, need="layer_sparsity")
    batch_size = whole_number(batch_size, "batch_size", at_least=1)
    if isinstance(layers, str):
        layers = [layers]
    names = list(layers) if layers is not None else conv_pool_layers(model)
    if not names:
        raise ValueError("no layers to count: name them (layers=['c1', ...]) or use a model vizlib named")
    label = name or getattr(model, "vizlib_arch", "network")
    work, dev = on_device(model, device)
    p = next(work.parameters(), None)
    dtype = p.dtype if p is not None else torch.float32

    from torch.utils.data import DataLoader

    try:
        total = len(data) if isinstance(data, DataLoader) else -(-len(data) // batch_size)
    except TypeError:
        total = None
    zeros: dict[str, torch.Tensor] = {}
    per_map: dict[str, int] = {}
    n_images = 0
    with preserved(work), torch.no_grad(), _ZeroCounts(work, names) as counts:
        bar = tqdm(batches(data, batch_size, net=net if model is not net else None), total=total,
                   desc=f"sparsity of {label}", unit="batch", disable=not progress)
        try:
            for batch in bar:
                x = check_image(batch, work, batch=True, start=n_images).to(dev, dtype)
                for lab, c in counts.run(x).items():
                    zeros[lab] = zeros[lab] + c if lab in zeros else c
                    per_map[lab] = per_map.get(lab, 0) + counts.sizes[lab]
                n_images += x.shape[0]
                del x, batch
        finally:
            bar.close()
        labels = [lab for lab, _ in counts.resolved]
    if n_images == 0:
        raise ValueError("the data gave no images to count")
    map_zeros = {lab: zeros[lab].cpu() for lab in labels}
    return Sparsity(
        name=label,
        layers=labels,
        zeros={lab: int(map_zeros[lab].sum()) for lab in labels},
        total={lab: per_map[lab] * len(map_zeros[lab]) for lab in labels},
        map_zeros=map_zeros,
        map_total=dict(per_map),
        images=n_images,
    )
