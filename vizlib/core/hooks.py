"""Hooks as context managers, and the guarantee that a model comes back as it went in.

Every vizlib routine that touches a model runs inside :func:`preserved`, which
restores each submodule's train/eval flag and removes every hook vizlib added,
also when the routine raises.
"""

from __future__ import annotations

import contextlib
from typing import Iterable, Iterator

import torch
from torch import nn

from .layers import resolve_layer

__all__ = ["preserved", "capture", "Capture"]


@contextlib.contextmanager
def preserved(model: nn.Module, *, eval: bool = True) -> Iterator[nn.Module]:
    """Run a block with the model in eval mode (by default), then put it back.

    Restores every submodule's ``training`` flag and the ``requires_grad`` flag
    of every parameter, whatever happens inside the block.

    Example:
        >>> m = nn.Sequential(nn.Linear(2, 2), nn.Dropout()); _ = m.train()
        >>> with preserved(m):
        ...     m[1].training
        False
        >>> m[1].training
        True
    """
    modes = [(m, m.training) for m in model.modules()]
    grads = [(p, p.requires_grad) for p in model.parameters()]
    try:
        if eval:
            model.eval()
        yield model
    finally:
        for m, mode in modes:
            m.training = mode
        for p, flag in grads:
            p.requires_grad_(flag)


class Capture:
    """Forward hooks that keep the outputs of chosen layers.

    Use as a context manager: the hooks exist only inside the ``with`` block.
    Outputs are cloned when the next module may overwrite them in place (the
    in-place ReLUs of torchvision), so what is kept is what the layer produced.

    Args:
        model: the network.
        layers: paper names, module paths or modules.
        detach: keep detached copies (no autograd graph).

    Example:
        >>> from vizlib.models import alexnet
        >>> net = alexnet(seed=0).eval()
        >>> with Capture(net, ["c1", "p5"]) as cap:
        ...     _ = net(torch.zeros(1, 3, 224, 224))
        >>> tuple(cap["p5"].shape)
        (1, 256, 6, 6)
    """

    def __init__(self, model: nn.Module, layers: Iterable[str | nn.Module], *, detach: bool = True) -> None:
        self.model = model
        self.detach = detach
        self.resolved = [resolve_layer(model, layer) for layer in layers]
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def __enter__(self) -> "Capture":
        try:
            for label, path in self.resolved:
                module = self.model.get_submodule(path)
                self._handles.append(module.register_forward_hook(self._hook(label)))
        except BaseException:
            self.remove()
            raise
        return self

    def _hook(self, label: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            out = output.detach() if self.detach else output
            # Clone: an in-place ReLU after this module would overwrite it.
            self.outputs[label] = out.clone()

        return hook

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def __getitem__(self, label: str) -> torch.Tensor:
        if label not in self.outputs:
            raise KeyError(f"layer {label!r} produced no output in the last forward pass")
        return self.outputs[label]


def capture(model: nn.Module, layers: Iterable[str | nn.Module], *, detach: bool = True) -> Capture:
    """Shorthand for :class:`Capture`."""
    return Capture(model, layers, detach=detach)
