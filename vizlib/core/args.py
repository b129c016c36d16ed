"""Checking the numbers a reader passes: whole numbers stay whole, nothing is rounded or coerced.

Every vizlib routine that takes a count, an index or a position checks it
here, at the API boundary, before any copy or forward pass: ``3.7`` is not
rounded to map 3, ``True`` is not map 1, ``(1.6, 2.6)`` is not ``(1, 2)``.
A float that is exactly whole (``3.0``) is taken as that number.

Example:
    >>> whole_number(3, "channel"), whole_number(2.0, "k", at_least=1)
    (3, 2)
    >>> whole_number(True, "channel")
    Traceback (most recent call last):
    ...
    vizlib.core.errors.ArgumentError: channel must be a whole number (an int), not True (a bool)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .errors import ArgumentError

__all__ = ["whole_number", "batch_size_arg", "index_list", "position_pairs"]


def _kind(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor"
    return f"type {type(value).__name__}"


def whole_number(value: Any, name: str, *, at_least: int | None = None, below: int | None = None,
                 fix: str = "") -> int:
    """``value`` as an ``int``, or an :class:`~vizlib.core.errors.ArgumentError` that says why not.

    Args:
        value: an int, a numpy integer, a 0-d integer tensor, or a float that is exactly whole.
        name: the argument's name, for the message.
        at_least, below: the valid range ``at_least <= value < below``.
        fix: a sentence appended to the message.

    Raises:
        ArgumentError: a bool, a fractional or non-finite float, a string or any other kind of
            value, or a number out of range (the message gives the range).

    Example:
        >>> whole_number(3.0, "k", at_least=1)
        3
    """
    tail = f". {fix}" if fix else ""
    if isinstance(value, (bool, np.bool_)):
        raise ArgumentError(f"{name} must be a whole number (an int), not {value!r} (a bool){tail}")
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.ndim == 0:
        value = value.item()
    if isinstance(value, (int, np.integer)):
        number = int(value)
    elif isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        number = int(value)
    elif isinstance(value, (float, np.floating)):
        raise ArgumentError(
            f"{name} must be a whole number (an int), not {value!r}: it is not rounded for you{tail}"
        )
    else:
        raise ArgumentError(f"{name} must be a whole number (an int), not {value!r} ({_kind(value)}){tail}")
    if at_least is not None and number < at_least or below is not None and number >= below:
        if below is None:
            valid = f"at least {at_least}"
        elif at_least is None:
            valid = f"below {below}"
        else:
            valid = f"{at_least}..{below - 1}"
        raise ArgumentError(f"{name} must be {valid}, not {number}{tail}")
    return number


def batch_size_arg(value: Any, name: str = "batch_size") -> int | None:
    """A batch size: ``None`` (chosen for you) or a whole number of at least 1; ``0`` is not "auto".

    Example:
        >>> batch_size_arg(None), batch_size_arg(16)
        (None, 16)
    """
    if value is None:
        return None
    return whole_number(value, name, at_least=1, fix="Leave it out (None) to have it chosen for you")


def index_list(value: Any, name: str) -> torch.Tensor:
    """One index or several (an int, a sequence, a range, an integer tensor) as a 1-d long tensor.

    Raises:
        ArgumentError: a bool, a fractional float or a string among them, or nothing at all.

    Example:
        >>> index_list(3, "channel").tolist(), index_list(range(2), "channel").tolist()
        ([3], [0, 1])
    """
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().reshape(-1)
        if t.dtype == torch.bool:
            raise ArgumentError(f"{name} must be whole numbers, not a bool tensor (a mask: use mask.nonzero())")
        if t.is_floating_point() and (not torch.isfinite(t).all() or not (t == t.round()).all()):
            raise ArgumentError(f"{name} must be whole numbers; this tensor has fractional values: "
                                "they are not rounded for you")
        out = t.long()
    elif isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        out = torch.tensor([whole_number(value, name)], dtype=torch.long)
    else:
        items = list(value)
        out = torch.tensor([whole_number(v, f"every {name}") for v in items], dtype=torch.long)
    if out.numel() == 0:
        raise ArgumentError(f"{name} is empty: give at least one index")
    return out


def position_pairs(position: Any, name: str = "position") -> torch.Tensor:
    """``(y, x)`` or a sequence of them as a ``(P, 2)`` long tensor; whole numbers only.

    Raises:
        ArgumentError: not pairs (three numbers, a flat list of odd length), fractional or
            boolean coordinates.

    Example:
        >>> position_pairs((1, 2)).tolist(), position_pairs([(0, 1), (2, 3)]).shape
        ([[1, 2]], torch.Size([2, 2]))
    """
    form = f"{name} must be one (y, x) pair of whole numbers or a sequence of them"
    if isinstance(position, torch.Tensor):
        t = position.detach().cpu()
        if t.dtype == torch.bool:
            raise ArgumentError(f"{form}, not a bool tensor")
        if t.is_floating_point():
            if not torch.isfinite(t).all() or not (t == t.round()).all():
                raise ArgumentError(f"{form}; this tensor has fractional or non-finite values: they are not rounded")
        values = t.long()
    else:
        try:
            arr = np.asarray(position, dtype=object)
        except Exception as exc:  # ragged sequences
            raise ArgumentError(f"{form}, not {position!r}") from exc
        if arr.ndim == 0 or arr.size == 0:
            raise ArgumentError(f"{form}, not {position!r}")
        flat = [whole_number(v, f"every coordinate of {name}") for v in arr.reshape(-1).tolist()]
        values = torch.tensor(flat, dtype=torch.long).reshape(arr.shape)
    if values.ndim == 1:
        values = values.unsqueeze(0)
    if values.ndim != 2 or values.shape[1] != 2:
        shape = tuple(values.shape) if values.ndim != 2 or values.shape[0] != 1 else (values.shape[1],)
        raise ArgumentError(
            f"{form}; got {shape[-1] if len(shape) == 1 else shape} "
            f"{'numbers' if len(shape) == 1 else 'shape'}: {position!r}. Fix: give (y, x), e.g. (6, 7)"
        )
    return values
