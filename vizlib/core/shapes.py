"""Output sizes of a sequential CNN by Vashishth's formulas, and the smallest input it takes.

Output sizes follow Vashishth's formulas (§2.1-2.2)::

    convolution:  W2 = (W1 - F + 2P) / S + 1
    pooling:      W2 = (W1 - F) / S + 1        (plus 2P when the pool pads)

rounded down, except for pooling in ``ceil_mode`` (rounded up), which is how
ZFNet's 110 -> 55 comes out. Image checks use :func:`min_input_size`; the
architecture chapter prints :func:`output_sizes` worked through.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from torch import nn

from .errors import InputTooSmall
from .layers import _walk, as_module

__all__ = ["SizeStep", "output_sizes", "min_input_size", "conv_output_size", "pool_output_size", "pair"]


def conv_output_size(w1: int, f: int, p: int, s: int, dilation: int = 1) -> Fraction:
    """Vashishth's ``(W1 - F + 2P)/S + 1`` as an exact fraction (not yet rounded).

    Example:
        >>> conv_output_size(224, 11, 2, 4)
        Fraction(221, 4)
    """
    f_eff = dilation * (f - 1) + 1
    return Fraction(w1 - f_eff + 2 * p, s) + 1


def pool_output_size(w1: int, f: int, s: int, p: int = 0) -> Fraction:
    """Vashishth's ``(W1 - F)/S + 1`` (with ``2P`` added when the pool pads), exact.

    Example:
        >>> pool_output_size(55, 3, 2)
        Fraction(27, 1)
    """
    return Fraction(w1 - f + 2 * p, s) + 1


@dataclass
class SizeStep:
    """One convolution or pooling layer worked through with the formula.

    Example:
        >>> from vizlib.models import alexnet
        >>> output_sizes(alexnet(), 224)[0].formula
        '(224 − 11 + 2·2)/4 + 1 = 55.25 → 55 (floor)'
    """

    path: str
    name: str
    kind: str
    w_in: int
    f: int
    p: int
    s: int
    exact: Fraction
    w_out: int
    ceil: bool = False

    @property
    def formula(self) -> str:
        """The formula with this layer's numbers, e.g. ``(224 − 11 + 2·2)/4 + 1 = 55.25 → 55``."""
        padding = f" + 2·{self.p}" if self.p else ""
        result = str(self.w_out)
        if self.exact.denominator != 1:
            result = f"{float(self.exact):g} → {self.w_out} ({'ceil' if self.ceil else 'floor'})"
        return f"({self.w_in} − {self.f}{padding})/{self.s} + 1 = {result}"


def pair(v: int | tuple[int, ...]) -> int:
    """One side of a square kernel, stride or padding, given as an int or as a tuple of equal ints.

    Raises:
        ValueError: a tuple of unequal sides (a non-square kernel, stride or padding).

    Example:
        >>> pair((3, 3)), pair(2)
        (3, 2)
    """
    if isinstance(v, tuple):
        if len(set(v)) != 1:
            raise ValueError(f"non-square kernel/stride/padding {v} is not supported here")
        return int(v[0])
    return int(v)


def output_sizes(model: nn.Module, input_size: int, *, until: str | None = None) -> list[SizeStep]:
    """Work Vashishth's formulas through every convolution and pooling layer.

    Args:
        model: a sequential CNN (modules registered in forward order).
        input_size: side of the square input.
        until: stop after this module path (layers beyond it may not fit).

    Returns:
        One :class:`SizeStep` per convolution / max or average pooling, with
        the exact fraction and the rounded size.

    Raises:
        InputTooSmall: a layer's output would be empty.

    Example:
        >>> from vizlib.models import zfnet
        >>> [s.w_out for s in output_sizes(zfnet(), 224)]
        [110, 55, 26, 13, 13, 13, 13, 6]
    """
    model = as_module(model, "output_sizes")
    names = {p: n for n, p in getattr(model, "vizlib_layers", {}).items()}
    conv_names: dict[str, str] = {}
    # a convolution's paper name sits on its ReLU; give it to the convolution too
    leaves = list(_walk(model))
    for i, (path, module) in enumerate(leaves):
        if isinstance(module, nn.Conv2d):
            nxt = leaves[i + 1][0] if i + 1 < len(leaves) else None
            conv_names[path] = names.get(path) or names.get(nxt or "", path)
    steps: list[SizeStep] = []
    w = int(input_size)
    for path, module in leaves:
        if until is not None and steps and steps[-1].path == until:
            break
        if path == until and not isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            break
        if isinstance(module, nn.Conv2d):
            f, p, s, d = (pair(module.kernel_size), pair(module.padding), pair(module.stride), pair(module.dilation))
            exact = conv_output_size(w, f, p, s, d)
            out = math.floor(exact)
            steps.append(SizeStep(path, conv_names[path], f"conv {f}×{f}/{s}", w, f, p, s, exact, out))
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            f, p, s = pair(module.kernel_size), pair(module.padding), pair(module.stride or module.kernel_size)
            exact = pool_output_size(w, f, s, p)
            out = math.ceil(exact) if module.ceil_mode else math.floor(exact)
            if module.ceil_mode and (out - 1) * s >= w + p:  # PyTorch drops a window that starts in the padding
                out -= 1
            kind = "max" if isinstance(module, nn.MaxPool2d) else "avg"
            steps.append(SizeStep(path, names.get(path, path), f"{kind} pool {f}×{f}/{s}", w, f, p, s, exact, out,
                                  bool(module.ceil_mode)))
        else:
            continue
        if out < 1:
            raise InputTooSmall(
                f"an input of {input_size}×{input_size} is too small for this network: layer "
                f"{steps[-1].name} ({steps[-1].kind}) would get a {w}×{w} input and produce nothing. "
                f"Use an input of at least {min_input_size(model)}×{min_input_size(model)} pixels."
            )
        w = out
    return steps


def min_input_size(model: nn.Module, limit: int = 4096) -> int:
    """The smallest square input every convolution and pooling layer accepts.

    Example:
        >>> from vizlib.models import alexnet
        >>> min_input_size(alexnet())
        63
    """
    model = as_module(model, "min_input_size")
    lo, hi = 1, limit
    while lo < hi:
        mid = (lo + hi) // 2
        if _fits(model, mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _fits(model: nn.Module, size: int) -> bool:
    w = size
    for _, module in _walk(model):
        if isinstance(module, nn.Conv2d):
            f, p, s, d = (pair(module.kernel_size), pair(module.padding), pair(module.stride), pair(module.dilation))
            w = math.floor(conv_output_size(w, f, p, s, d))
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            f, p, s = pair(module.kernel_size), pair(module.padding), pair(module.stride or module.kernel_size)
            exact = pool_output_size(w, f, s, p)
            w = math.ceil(exact) if module.ceil_mode else math.floor(exact)
        if w < 1:
            return False
    return True
