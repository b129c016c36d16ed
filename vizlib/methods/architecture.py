"""Layer-by-layer accounts of a network: output sizes, parameters, multiply-adds.

Output sizes follow Vashishth's formulas (§2.1-2.2)::

    convolution:  W2 = (W1 - F + 2P) / S + 1
    pooling:      W2 = (W1 - F) / S + 1        (plus 2P when the pool pads)

rounded down, except for pooling in ``ceil_mode`` (rounded up), which is how
ZFNet's 110 -> 55 comes out.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Iterable

import torch
from torch import nn

from ..core.args import whole_number
from ..core.errors import ArgumentError
from ..core.hooks import meta_trace
from ..core.images import first_conv
from ..core.layers import _walk, as_module
from ..core.shapes import SizeStep, conv_output_size, min_input_size, output_sizes, pair as _pair, pool_output_size

__all__ = [
    "LayerRow",
    "Summary",
    "summary",
    "output_sizes",
    "SizeStep",
    "min_input_size",
    "conv_output_size",
    "pool_output_size",
]


@dataclass
class LayerRow:
    """One named layer of a summary: its output and what it costs.

    Example:
        >>> from vizlib.models import alexnet
        >>> row = summary(alexnet(), 224)["fc6"]
        >>> row.kind, row.output_shape
        ('fc 9216→4096', (4096,))
    """

    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    macs: int
    modules: list[str] = field(default_factory=list)

    @property
    def activations(self) -> int:
        return math.prod(self.output_shape)


class Summary:
    """A per-layer table (rows of :class:`LayerRow`) that prints as text and HTML.

    Example:
        >>> from vizlib.models import alexnet
        >>> table = summary(alexnet(), 224)
        >>> len(table), table.total_params
        (11, 61100840)
    """

    def __init__(self, rows: list[LayerRow], input_shape: tuple[int, ...], arch: str = "") -> None:
        self.rows = rows
        self.input_shape = input_shape
        self.arch = arch

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def total_macs(self) -> int:
        return sum(r.macs for r in self.rows)

    def share(self, prefix: str = "fc") -> tuple[float, float]:
        """Fraction of all parameters and of all multiply-adds in layers whose name starts with ``prefix``."""
        rows = [r for r in self.rows if r.name.startswith(prefix)]
        return (sum(r.params for r in rows) / max(self.total_params, 1),
                sum(r.macs for r in rows) / max(self.total_macs, 1))

    def __getitem__(self, name: str) -> LayerRow:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"no layer {name!r} in this summary; layers: {', '.join(r.name for r in self.rows)}")

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def _table(self) -> tuple[list[str], list[list[str]]]:
        head = ["layer", "type", "output", "parameters", "% params", "multiply-adds", "% MACs"]
        body = []
        tp, tm = max(self.total_params, 1), max(self.total_macs, 1)
        for r in self.rows:
            shape = "×".join(str(d) for d in r.output_shape)
            body.append([r.name, r.kind, shape, f"{r.params:,}", f"{100 * r.params / tp:.1f}",
                         f"{r.macs:,}", f"{100 * r.macs / tm:.1f}"])
        body.append(["total", "", "", f"{self.total_params:,}", "100.0", f"{self.total_macs:,}", "100.0"])
        return head, body

    def __str__(self) -> str:
        head, body = self._table()
        widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
        lines = ["  ".join(c.rjust(w) if i >= 3 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
                 for row in [head, *body]]
        lines.insert(1, "  ".join("-" * w for w in widths))
        title = f"{self.arch} on a {'×'.join(map(str, self.input_shape))} input"
        return title + "\n" + "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head, body = self._table()
        th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        trs = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body)
        title = html.escape(f"{self.arch} on a {'×'.join(map(str, self.input_shape))} input")
        return f"<p><b>{title}</b></p><table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def _describe(module: nn.Module) -> str:
    if isinstance(module, nn.Conv2d):
        k, s, p = _pair(module.kernel_size), _pair(module.stride), _pair(module.padding)
        return f"conv {k}×{k}/{s} pad {p}, {module.out_channels}"
    if isinstance(module, nn.MaxPool2d):
        return f"max pool {_pair(module.kernel_size)}×{_pair(module.kernel_size)}/{_pair(module.stride)}"
    if isinstance(module, nn.AvgPool2d):
        return f"avg pool {_pair(module.kernel_size)}×{_pair(module.kernel_size)}/{_pair(module.stride)}"
    if isinstance(module, nn.Linear):
        return f"fc {module.in_features}→{module.out_features}"
    if isinstance(module, nn.LocalResponseNorm):
        return f"response norm ({module.size} maps)"
    return type(module).__name__


def _macs(module: nn.Module, out_shape: torch.Size) -> int:
    if isinstance(module, nn.Conv2d):
        per_output = (module.in_channels // module.groups) * math.prod(module.kernel_size)
        return math.prod(out_shape[1:]) * per_output
    if isinstance(module, nn.Linear):
        return module.in_features * module.out_features
    return 0


def summary(model: nn.Module, input_size: int = 224, *, in_channels: int | None = None) -> Summary:
    """Per-layer output shape, parameters and multiply-adds, by paper name.

    Each row is a named layer (c1, p1, ..., fc8) and accounts for every module
    since the previous named layer (so c1 holds the convolution and its ReLU,
    fc6 the flattening, dropout, linear map and ReLU). Shapes are found by a
    forward pass on PyTorch's ``meta`` device: no memory, no arithmetic.

    Args:
        model: the network, an ``nn.Module`` or a :class:`~vizlib.Net`
            (vizlib-named, or any sequential CNN: then every leaf module gets
            a row under its path).
        input_size: side of the square input.
        in_channels: channels of the input (default: what the first
            convolution takes, 1 for the bundled Fashion-MNIST nets).

    Raises:
        InputTooSmall: the input is smaller than the network accepts.
        ArgumentError: ``input_size`` or ``in_channels`` not a whole number of
            at least 1, or ``in_channels`` not what the first convolution takes.

    Example:
        >>> from vizlib.models import alexnet
        >>> s = summary(alexnet(), 224)
        >>> s["c1"].output_shape, s["c1"].params
        ((64, 55, 55), 23296)
    """
    model = as_module(model, "summary")
    input_size = whole_number(input_size, "input_size", at_least=1)
    conv = first_conv(model)
    if in_channels is None:
        in_channels = conv[1].in_channels if conv is not None else 3
    in_channels = whole_number(in_channels, "in_channels", at_least=1)
    if conv is not None and conv[1].in_channels != in_channels:
        raise ArgumentError(
            f"in_channels={in_channels}, but this network's first convolution ({conv[0]}) takes "
            f"{conv[1].in_channels}-channel input; leave in_channels out (it is read from that convolution)"
        )
    output_sizes(model, input_size)  # raises InputTooSmall with a clear message
    names = {p: n for n, p in getattr(model, "vizlib_layers", {}).items()}
    leaves = list(_walk(model))
    calls = meta_trace(model, (in_channels, input_size, input_size)).calls
    shapes = {c.path: c.out_shape for c in calls}
    macs = {c.path: _macs(c.module, c.out_shape) for c in calls}

    rows: list[LayerRow] = []
    group: list[tuple[str, nn.Module]] = []
    for path, module in leaves:
        if path not in shapes:
            continue  # not used in forward
        group.append((path, module))
        if names and path not in names:
            continue
        label = names.get(path, path)
        main = next((m for _, m in group if isinstance(m, (nn.Conv2d, nn.Linear))), None)
        if main is None:
            main = next((m for _, m in group if not isinstance(m, (nn.ReLU, nn.Dropout))), module)
        rows.append(LayerRow(
            name=label,
            kind=_describe(main),
            output_shape=tuple(shapes[path][1:]),
            params=sum(p.numel() for _, m in group for p in m.parameters(recurse=False)),
            macs=sum(macs.get(p, 0) for p, _ in group),
            modules=[p for p, _ in group],
        ))
        group = []
    arch = getattr(model, "vizlib_arch", type(model).__name__)
    return Summary(rows, (in_channels, input_size, input_size), arch)


def parameter_share(s: Summary, groups: Iterable[tuple[str, Iterable[str]]]) -> dict[str, float]:
    """Share of all parameters held by groups of layers (e.g. conv vs dense)."""
    total = max(s.total_params, 1)
    return {label: sum(s[n].params for n in members) / total for label, members in groups}
