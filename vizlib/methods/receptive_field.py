"""Receptive fields: which input pixels a unit can see.

For a chain of convolutions and poolings, layer by layer (Yu §3.2)::

    size   r_l = r_{l-1} + (k_l - 1) · j_{l-1}
    stride j_l = j_{l-1} · s_l
    start  a_l = a_{l-1} - p_l · j_{l-1}

with ``r_0 = j_0 = 1`` and ``a_0 = 0``. Unit ``i`` of layer ``l`` sees input
rows ``a_l + i·j_l`` to ``a_l + i·j_l + r_l - 1`` (before clipping to the
image); ``a_l`` is negative where padding is involved. ReLU, normalisation
and dropout leave all three unchanged.

:func:`empirical_receptive_field` checks these numbers against a
measurement: the footprint of the nonzero input gradient of one unit.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from ..core.shapes import pair as _pair, output_sizes
from ..core.hooks import preserved
from ..core.errors import LayerError
from ..core.args import position_pairs, whole_number
from ..core.layers import _walk, as_module, resolve_layer

__all__ = [
    "RField",
    "receptive_fields",
    "receptive_field",
    "unit_box",
    "empirical_receptive_field",
    "Footprint",
]


@dataclass(frozen=True)
class RField:
    """Receptive field of the units of one layer.

    Attributes:
        name: paper name (or module path).
        size: side of the square input region one unit sees.
        stride: distance in input pixels between neighbouring units.
        start: first input row (column) unit 0 sees; negative when padding is
            involved.
        path: module path of the layer.

    Example:
        >>> from vizlib.models import alexnet
        >>> rf = receptive_field(alexnet(), "c1")
        >>> rf.size, rf.stride, rf.start, rf.span(0)
        (11, 4, -2, (-2, 8))
    """

    name: str
    size: int
    stride: int
    start: int
    path: str

    @property
    def offset(self) -> float:
        """Input coordinate of the centre of unit 0's field."""
        return self.start + (self.size - 1) / 2

    def span(self, i: int) -> tuple[int, int]:
        """Unclipped first and last input index seen by unit ``i``."""
        first = self.start + i * self.stride
        return first, first + self.size - 1


def _geometry(module: nn.Module) -> tuple[int, int, int] | None:
    """(kernel, stride, padding) of a spatial layer, with dilation folded into the kernel."""
    if isinstance(module, nn.Conv2d):
        k, d = _pair(module.kernel_size), _pair(module.dilation)
        return d * (k - 1) + 1, _pair(module.stride), _pair(module.padding)
    if isinstance(module, nn.MaxPool2d):
        k, d = _pair(module.kernel_size), _pair(module.dilation)
        return d * (k - 1) + 1, _pair(module.stride or module.kernel_size), _pair(module.padding)
    if isinstance(module, nn.AvgPool2d):
        return _pair(module.kernel_size), _pair(module.stride or module.kernel_size), _pair(module.padding)
    return None


_PASS = (nn.ReLU, nn.LocalResponseNorm, nn.Dropout, nn.BatchNorm2d, nn.Identity, nn.CrossMapLRN2d)


def receptive_fields(model: nn.Module, *, all_layers: bool = False, pool_kernel: int | None = None) -> list[RField]:
    """Receptive field size, stride and start of every convolution and pooling layer.

    Args:
        model: AlexNet, ZFNet, VGG-16 or any sequential CNN of conv/pool layers.
        all_layers: one row per leaf module instead of one per paper name.
        pool_kernel: compute as if every max pooling window were this size
            (same stride): a "what if" for checking a published table.

    Returns:
        A list of :class:`RField`, in forward order, up to the last pooling
        layer (dense layers see the whole image).

    Example:
        >>> from vizlib.models import vgg16
        >>> [(r.name, r.size, r.stride) for r in receptive_fields(vgg16())][-1]
        ('p5', 212, 32)
    """
    model = as_module(model, "receptive_fields")
    names = {p: n for n, p in getattr(model, "vizlib_layers", {}).items()}
    r, j, a = 1, 1, 0
    rows: list[RField] = []
    for path, module in _walk(model):
        geom = _geometry(module)
        if geom is not None and pool_kernel is not None and isinstance(module, nn.MaxPool2d):
            geom = (pool_kernel, geom[1], geom[2])
        if geom is not None:
            k, s, p = geom
            r, a, j = r + (k - 1) * j, a - p * j, j * s
        elif not isinstance(module, _PASS):
            break  # adaptive pooling, flatten, linear: the spatial chain ends here
        if all_layers or path in names:
            rows.append(RField(names.get(path, path), r, j, a, path))
    return rows


def receptive_field(model: nn.Module, layer: str | nn.Module) -> RField:
    """The :class:`RField` of one layer, by paper name, module path or module.

    Args:
        model: the network, an ``nn.Module`` or a :class:`~vizlib.Net`.
        layer: paper name, module path or module.

    Raises:
        LayerError: unknown layer, or a layer past the spatial part of the net
            (a ``KeyError``).
        ArgumentError: the layer given as an int or ``None``; a model that is neither a module nor a Net.

    Example:
        >>> from vizlib.models import alexnet
        >>> receptive_field(alexnet(), "c5")
        RField(name='c5', size=163, stride=16, start=-66, path='features.11')
    """
    model = as_module(model, "receptive_field")
    label, path = resolve_layer(model, layer)
    for row in receptive_fields(model, all_layers=True):
        if row.path == path:
            return RField(label, row.size, row.stride, row.start, path)
    raise LayerError(
        f"layer {label!r} is not a convolution or pooling layer in the spatial part of the network; "
        "dense layers see the whole image"
    )


def _map_size(model: nn.Module, path: str, input_size: int) -> int:
    """Side of the feature map at ``path`` (a spatial layer or a ReLU/norm after one)."""
    steps = {s.path: s.w_out for s in output_sizes(model, input_size, until=path)}
    side = input_size
    for p, _ in _walk(model):
        side = steps.get(p, side)
        if p == path:
            return side
    raise KeyError(path)


def unit_box(
    model: nn.Module,
    layer: str | nn.Module,
    y: int,
    x: int,
    input_size: int | tuple[int, int] = 224,
    *,
    channel: int | None = None,
) -> tuple[int, int, int, int]:
    """The input patch that unit ``(layer, channel, y, x)`` sees, clipped to the image.

    Args:
        model: the network, an ``nn.Module`` or a :class:`~vizlib.Net`.
        layer: paper name, module path or module.
        y, x: position in the layer's feature map.
        input_size: the input image's side (or ``(height, width)``).
        channel: optional feature map index, checked against the layer's width
            (the field itself is the same for every channel).

    Returns:
        ``(top, left, bottom, right)``, inclusive-exclusive: rows
        ``top:bottom`` and columns ``left:right`` of the image.

    Raises:
        ValueError: position outside the map, or channel out of range.
        ArgumentError: ``y``, ``x``, ``channel`` or ``input_size`` not whole
            numbers (``1.5``, ``True``: not rounded), ``input_size`` not one
            side or a ``(height, width)`` pair.
        LayerError: unknown layer.

    Example:
        >>> from vizlib.models import alexnet
        >>> unit_box(alexnet(), "c1", 0, 0)
        (0, 0, 9, 9)
    """
    model = as_module(model, "unit_box")
    y, x = whole_number(y, "y"), whole_number(x, "x")
    if isinstance(input_size, (tuple, list, torch.Tensor)):
        h, w = (int(v) for v in position_pairs(input_size, "input_size")[0])
    else:
        h = w = whole_number(input_size, "input_size", at_least=1)
    if channel is not None:
        channel = whole_number(channel, "channel")
    rf = receptive_field(model, layer)
    mh, mw = _map_size(model, rf.path, h), _map_size(model, rf.path, w)
    if not (0 <= y < mh and 0 <= x < mw):
        raise ValueError(
            f"position (y={y}, x={x}) is outside layer {rf.name}'s {mh}×{mw} feature map "
            f"for a {h}×{w} input; use 0 <= y < {mh} and 0 <= x < {mw}"
        )
    if channel is not None:
        n = _channels(model, rf.path)
        if not 0 <= channel < n:
            raise ValueError(f"channel {channel} is out of range: layer {rf.name} has {n} feature maps (0..{n - 1})")
    top, bottom = rf.span(y)
    left, right = rf.span(x)
    return max(top, 0), max(left, 0), min(bottom + 1, h), min(right + 1, w)


def _channels(model: nn.Module, path: str) -> int:
    channels = 0
    for p, module in _walk(model):
        if isinstance(module, nn.Conv2d):
            channels = module.out_channels
        if p == path:
            return channels
    raise KeyError(path)


@dataclass(frozen=True)
class Footprint:
    """A measured receptive field: the box of nonzero input gradient of one unit.

    Example:
        >>> from vizlib.models import alexnet
        >>> print(empirical_receptive_field(alexnet(), "p1").box)
        (30, 30, 49, 49)
    """

    name: str
    unit: tuple[int, int]
    box: tuple[int, int, int, int]  # top, left, bottom, right (exclusive)
    input_size: int

    @property
    def size(self) -> tuple[int, int]:
        return self.box[2] - self.box[0], self.box[3] - self.box[1]


def _surrogate(model: nn.Module, path: str) -> nn.Sequential:
    """The spatial chain up to ``path`` with the same geometry, one channel, positive weights.

    Convolutions become one-channel convolutions with the same kernel, stride,
    padding and dilation and all weights ``1/k²``; max pooling becomes average
    pooling over the same windows (a max's gradient reaches only the winning
    input; an average's reaches every input the window covers, which is what
    "can see" means); ReLU, normalisation and dropout are dropped (with all
    weights and inputs positive, ReLU is the identity). Every input the unit
    depends on then gets a strictly positive gradient.
    """
    layers: list[nn.Module] = []
    for p, module in _walk(model):
        if isinstance(module, nn.Conv2d):
            conv = nn.Conv2d(1, 1, module.kernel_size, module.stride, module.padding, module.dilation, bias=False)
            conv.weight.data.fill_(1.0 / math.prod(module.kernel_size))
            layers.append(conv)
        elif isinstance(module, nn.MaxPool2d):
            if _pair(module.dilation) != 1:
                raise ValueError(f"dilated max pooling at {p} is not supported by the empirical measurement")
            layers.append(nn.AvgPool2d(module.kernel_size, module.stride, module.padding, module.ceil_mode,
                                       count_include_pad=True))
        elif isinstance(module, nn.AvgPool2d):
            layers.append(copy.deepcopy(module))
        elif not isinstance(module, _PASS):
            raise ValueError(f"layer {p} ({type(module).__name__}) is past the spatial part of the network")
        if p == path:
            return nn.Sequential(*layers).double()
    raise KeyError(path)


def empirical_receptive_field(
    model: nn.Module,
    layer: str | nn.Module,
    *,
    input_size: int | None = None,
    unit: tuple[int, int] | None = None,
) -> Footprint:
    """Measure a unit's receptive field from its input gradient.

    A one-channel copy of the network's spatial chain (see :func:`_surrogate`:
    same kernels, strides, paddings, pooling windows) is run in float64 on an
    all-ones image; the gradient of one unit with respect to the image is
    nonzero exactly on the pixels that unit sees. The model itself is not
    touched.

    Args:
        model: the network.
        layer: paper name, module path or module.
        input_size: image side; by default large enough that the chosen unit's
            field lies wholly inside the image.
        unit: ``(y, x)`` in the layer's map; default the centre unit.

    Returns:
        A :class:`Footprint` whose ``size`` should equal the analytic size
        (and whose ``box`` the analytic :func:`unit_box`).

    Example:
        >>> from vizlib.models import alexnet
        >>> empirical_receptive_field(alexnet(), "p1").size
        (19, 19)
    """
    model = as_module(model, "empirical_receptive_field")
    rf = receptive_field(model, layer)
    if unit is not None:
        unit = tuple(int(v) for v in position_pairs(unit, "unit")[0])  # type: ignore[assignment]
    with preserved(model):
        chain = _surrogate(model, rf.path)
    size = input_size or (2 * rf.size + 4 * rf.stride + 2 * abs(rf.start) + 1)
    x = torch.ones(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    out = chain(x)
    mh, mw = out.shape[-2:]
    uy, ux = unit if unit is not None else (mh // 2, mw // 2)
    if not (0 <= uy < mh and 0 <= ux < mw):
        raise ValueError(f"unit ({uy}, {ux}) is outside layer {rf.name}'s {mh}×{mw} map for a {size}×{size} input")
    out[0, 0, uy, ux].backward()
    nz = (x.grad[0, 0] != 0).nonzero()
    top, left = nz.min(0).values.tolist()
    bottom, right = (nz.max(0).values + 1).tolist()
    return Footprint(rf.name, (uy, ux), (top, left, bottom, right), size)
