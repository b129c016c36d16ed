"""Hooks as context managers, and the guarantee that a model comes back as it went in.

* :func:`preserved` runs a block with the model in eval mode and then restores
  each submodule's train/eval flag and each parameter's ``requires_grad``,
  also when the block raises. (It does not touch hooks: those are removed by
  the context managers below, which register them.)
* :class:`Capture` keeps the outputs of chosen layers during a forward pass,
  and can end the pass once it has them all (``stop=True``, then
  :meth:`Capture.run`).
* :func:`trace` records the chain of leaf-module calls of one forward pass
  (what each module took and gave), the one tracer the deconvnet and DeNet
  build on.

Every hook is registered inside ``try`` and removed in ``finally``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import torch
from torch import nn

from .layers import as_module, resolve_layer

__all__ = ["preserved", "capture", "Capture", "StopForward", "Call", "Trace", "trace", "meta_trace", "leaf_modules",
           "version"]


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
    model = as_module(model, "preserved")
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
        stop: end the forward pass as soon as every chosen layer has given
            its output (run it with :meth:`run`, which catches the stop).

    Example:
        >>> from vizlib.models import alexnet
        >>> net = alexnet(seed=0).eval()
        >>> with Capture(net, ["c1", "p5"]) as cap:
        ...     _ = net(torch.zeros(1, 3, 224, 224))
        >>> tuple(cap["p5"].shape)
        (1, 256, 6, 6)
    """

    def __init__(self, model: nn.Module, layers: Iterable[str | nn.Module], *, detach: bool = True,
                 stop: bool = False) -> None:
        model = as_module(model, "Capture")
        self.model = model
        self.detach = detach
        self.stop = stop
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
            if self.stop and len(self.outputs) == len(self.resolved):
                raise StopForward

        return hook

    def run(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the model on ``x`` inside the ``with`` block and return the captured outputs.

        With ``stop=True`` the pass ends at the last chosen layer (the layers
        above it are not computed).
        """
        self.outputs = {}
        try:
            self.model(x)
        except StopForward:
            pass
        missing = [label for label, _ in self.resolved if label not in self.outputs]
        if missing:
            raise ValueError(f"layer(s) {', '.join(missing)} were not reached by the forward pass")
        return self.outputs

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


def capture(model: nn.Module, layers: Iterable[str | nn.Module], *, detach: bool = True,
            stop: bool = False) -> Capture:
    """Shorthand for :class:`Capture`.

    Example:
        >>> import torch
        >>> from vizlib.models import alexnet_fmnist
        >>> net = alexnet_fmnist()
        >>> with capture(net, ["c1"]) as cap:
        ...     _ = net(torch.zeros(1, 1, 64, 64))
        >>> cap["c1"].shape
        torch.Size([1, 32, 16, 16])
    """
    return Capture(model, layers, detach=detach, stop=stop)


class StopForward(Exception):
    """Raised inside a forward hook to end a forward pass once the needed layers are done.

    Example:
        >>> issubclass(StopForward, Exception)
        True
    """


def leaf_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """The modules without children, with their paths, in registration order.

    Example:
        >>> from vizlib.models import alexnet_fmnist
        >>> [path for path, _ in leaf_modules(alexnet_fmnist())][:3]
        ['features.0', 'features.1', 'features.2']
    """
    for path, module in model.named_modules():
        if path and not list(module.children()):
            yield path, module


@dataclass
class Call:
    """One leaf-module call of a forward pass (see :func:`trace`).

    Attributes:
        path: the module's path in the model.
        module: the module.
        in_shape, out_shape: the shapes of its (first) input and its output;
            empty when either is not a tensor.
        in_ptr, out_ptr: their storage addresses (a module whose input is not
            the previous module's output breaks the chain).
        in_version, out_version: their version counters, the input's taken
            before the module ran: an in-place operation between two modules
            (``F.relu(x, inplace=True)``, ``out += x``) keeps the address but
            bumps the version, and breaks the chain as much.
        extra: what ``on_call`` returned for this call.

    Example:
        >>> import torch
        >>> from vizlib.models import alexnet_fmnist
        >>> first = trace(alexnet_fmnist(), torch.zeros(1, 1, 64, 64)).calls[0]
        >>> first.path, first.out_shape
        ('features.0', torch.Size([1, 32, 16, 16]))
    """

    path: str
    module: nn.Module
    in_shape: torch.Size
    in_ptr: int
    out_shape: torch.Size
    out_ptr: int
    extra: Any = None
    in_version: int = -1
    out_version: int = -1

    def takes(self, ptr: int, version: int) -> str | None:
        """Whether this call's input is the tensor ``(ptr, version)`` as it was given (an earlier call's
        output, or the image): ``None`` if so, else why not, in words for an error message.

        Example:
            >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(inplace=True), nn.Flatten())
            >>> c = trace(net, torch.zeros(1, 1, 5, 5)).calls
            >>> [c[i].takes(c[i - 1].out_ptr, c[i - 1].out_version) for i in (1, 2)]
            [None, None]
        """
        if self.in_ptr != ptr:
            return "other"
        if self.in_version != version:
            return "in place"
        return None


def version(t: torch.Tensor) -> int:
    """A tensor's version counter (bumped by every in-place operation); ``-1`` for tensors without one.

    Example:
        >>> import torch
        >>> x = torch.zeros(2)
        >>> _ = x.add_(1)
        >>> version(x)
        1
    """
    try:
        return int(t._version)
    except (RuntimeError, AttributeError):  # inference-mode tensors have no version counter
        return -1


@dataclass
class Trace:
    """The calls of one forward pass, the outputs kept on the way, and what the model returned
    (``None`` when the pass was stopped early; see :func:`trace`).

    Example:
        >>> import torch
        >>> from vizlib.models import alexnet_fmnist
        >>> t = trace(alexnet_fmnist(), torch.zeros(1, 1, 64, 64))
        >>> len(t.calls) > 10, t.output.shape
        (True, torch.Size([1, 10]))
    """

    calls: list[Call] = field(default_factory=list)
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)
    output: Any = None


def trace(
    model: nn.Module,
    x: torch.Tensor,
    *,
    keep: Iterable[str] = (),
    stop: bool = False,
    on_call: Callable[[nn.Module, torch.Tensor], Any] | None = None,
    run: Callable[[nn.Module, torch.Tensor], Any] | None = None,
) -> Trace:
    """Run ``model`` on ``x`` once (no gradients, eval mode) and record every leaf-module call.

    Args:
        model: the network.
        x: its input.
        keep: module paths whose outputs to keep (cloned: an in-place ReLU
            after them cannot overwrite them).
        stop: end the pass once every path in ``keep`` has given its output.
        on_call: called as ``on_call(module, input)`` at each call; what it
            returns is kept as the call's ``extra`` (the deconvnet records
            pooling switches so).
        run: how to call the model (default ``model(x)``); the architecture
            summary runs it on the meta device with ``torch.func.functional_call``.

    Raises:
        ValueError: a path in ``keep`` was not reached.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten())
        >>> t = trace(net, torch.zeros(1, 1, 5, 5), keep=["1"])
        >>> [c.path for c in t.calls], tuple(t.outputs["1"].shape)
        (['0', '1', '2'], (1, 2, 3, 3))
    """
    model = as_module(model, "trace")
    result = Trace()
    remaining = set(keep)
    before: dict[str, int] = {}  # the input's version as the module got it (an in-place module bumps it)

    def pre_for(path: str):
        def pre(module: nn.Module, inputs: tuple) -> None:
            if inputs and isinstance(inputs[0], torch.Tensor):
                before[path] = version(inputs[0])

        return pre

    def hook_for(path: str):
        def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
            inp = inputs[0] if inputs else None
            if isinstance(inp, torch.Tensor) and isinstance(output, torch.Tensor):
                extra = on_call(module, inp) if on_call is not None else None
                result.calls.append(Call(path, module, inp.shape, inp.data_ptr(), output.shape, output.data_ptr(),
                                         extra, before.pop(path, version(inp)), version(output)))
            else:
                result.calls.append(Call(path, module, torch.Size(), -1, torch.Size(), -2))
            if path in remaining:
                result.outputs[path] = output.detach().clone()
                remaining.discard(path)
                if stop and not remaining:
                    raise StopForward

        return hook

    handles: list[torch.utils.hooks.RemovableHandle] = []
    with preserved(model), torch.inference_mode(False), torch.no_grad():  # tensors with version counters
        try:
            for path, module in leaf_modules(model):
                handles.append(module.register_forward_pre_hook(pre_for(path)))
                handles.append(module.register_forward_hook(hook_for(path)))
            try:
                result.output = model(x) if run is None else run(model, x)
            except StopForward:
                pass
        finally:
            for h in handles:
                h.remove()
    if remaining:
        raise ValueError(f"layer(s) {', '.join(sorted(remaining))} were not reached by the forward pass")
    return result


def meta_trace(model: nn.Module, input_shape: Iterable[int]) -> Trace:
    """:func:`trace` of one image of shape ``(C, H, W)`` on PyTorch's ``meta`` device: every call's shapes
    (and the output's), with no memory, no arithmetic and the model's own weights untouched.

    The architecture summary is made from it, and methods check a channel or a position against a
    layer's shape with it before their real forward pass.

    Raises:
        whatever the model raises on that input (a wrong number of channels, an input too small).

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten())
        >>> [tuple(c.out_shape) for c in meta_trace(net, (1, 5, 5)).calls]
        [(1, 2, 3, 3), (1, 2, 3, 3), (1, 18)]
    """
    meta = {k: torch.empty_like(v, device="meta") for k, v in model.named_parameters()}
    meta.update({k: torch.empty_like(v, device="meta") for k, v in model.named_buffers()})
    p = next(model.parameters(), None)
    x = torch.empty(1, *(int(s) for s in input_shape), device="meta",
                    dtype=p.dtype if p is not None and p.is_floating_point() else torch.float32)
    # The caller's own hooks must not see this pass (they would get meta tensors): they are set
    # aside for it and put back, also when it raises.
    kept = [(m, m._forward_hooks, m._forward_pre_hooks) for m in model.modules()]
    try:
        for m, _, _ in kept:
            m._forward_hooks, m._forward_pre_hooks = type(m._forward_hooks)(), type(m._forward_pre_hooks)()
        return trace(model, x, run=lambda m, inp: torch.func.functional_call(m, meta, (inp,)))
    finally:
        for m, hooks, pre in kept:
            m._forward_hooks, m._forward_pre_hooks = hooks, pre
