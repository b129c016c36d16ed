"""Layer names and layer resolution: the papers' names on any sequential CNN.

Every builder attaches the papers' layer names to its model
(``model.vizlib_layers``: paper name -> module path), so every vizlib routine
accepts either ``"c5"`` or ``"features.11"``.

What a paper name points at is the module whose *output* is that layer as the
papers use it: for a convolutional layer the rectified feature maps (the ReLU
after the convolution), for a pooling layer the pooled maps, for fc6/fc7 the
rectified units and for fc8 the class scores (logits).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterator

import torch
from torch import nn

from .errors import ArgumentError, LayerError

__all__ = ["name_layers", "layer_names", "resolve_layer", "layer_module", "seeded", "as_module"]


def as_module(net_or_model: Any, who: str = "this") -> nn.Module:
    """The ``nn.Module`` of a :class:`~vizlib.Net` (its ``.model``), or the module itself.

    Every routine that takes "a model" takes either, through this.

    Raises:
        ArgumentError: neither a module nor a Net (``None``, a string, a tensor...).

    Example:
        >>> m = nn.Linear(2, 2)
        >>> as_module(m) is m
        True
    """
    if isinstance(net_or_model, nn.Module):
        return net_or_model
    model = getattr(net_or_model, "model", None)
    if isinstance(model, nn.Module):
        return model
    raise ArgumentError(
        f"{who} needs a network: an nn.Module or a vizlib Net (vl.load(...)), not {net_or_model!r:.60} "
        f"(type {type(net_or_model).__name__})"
    )


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
        >>> from vizlib import vgg16
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


class seeded:
    """Seed torch's global generator for a block, then restore its state.

    Example:
        >>> import torch
        >>> with seeded(0):
        ...     a = torch.rand(1)
        >>> with seeded(0):
        ...     b = torch.rand(1)
        >>> bool(a == b)
        True
    """

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
    """The paper names a model carries (empty for a model vizlib did not build).

    Example:
        >>> from vizlib.models import alexnet_fmnist
        >>> layer_names(alexnet_fmnist())[:4]
        ['c1', 'p1', 'c2', 'p2']
    """
    return list(getattr(model, "vizlib_layers", {}))


def resolve_layer(model: nn.Module, layer: str | nn.Module) -> tuple[str, str]:
    """Turn a paper name, a module path or a module into ``(label, module path)``.

    Args:
        model: the network (an ``nn.Module`` or a :class:`~vizlib.Net`).
        layer: a paper name (``"c5"``), a module path (``"features.11"``) or a module of the model.

    Raises:
        LayerError: the layer is unknown (a ``KeyError``); the message lists the names it knows
            and the closest one.
        ArgumentError: ``layer`` is not a string or a module (an int, ``None``...).

    Example:
        >>> from vizlib.models import alexnet
        >>> resolve_layer(alexnet(), "c5"), resolve_layer(alexnet(), "features.12")
        (('c5', 'features.11'), ('p5', 'features.12'))
    """
    model = as_module(model, "resolve_layer")
    names = getattr(model, "vizlib_layers", {})
    if isinstance(layer, nn.Module):
        for path, module in model.named_modules():
            if module is layer:
                return _label(model, path), path
        raise LayerError("that module is not part of this model; pass one of its submodules or a layer name")
    if not isinstance(layer, str):
        some = ", ".join(list(names)[:4]) or ", ".join(p for p, _ in list(model.named_modules())[1:4])
        raise ArgumentError(
            f"a layer is a paper name, a module path or a module, not {layer!r} (type {type(layer).__name__}); "
            f"for example {some}"
        )
    if layer in names:
        return layer, names[layer]
    paths = dict(model.named_modules())
    if layer in paths and layer:
        return _label(model, layer), layer
    known = ", ".join(names) if names else ", ".join(p for p in paths if p)
    hint = f" Did you mean {_closest(layer, list(names))!r}?" if names else ""
    raise LayerError(f"unknown layer {layer!r} for this model. Known layers: {known}.{hint}")


def layer_module(model: nn.Module, layer: str | nn.Module) -> nn.Module:
    """The module behind a paper name or a module path.

    Example:
        >>> from vizlib.models import alexnet_fmnist
        >>> layer_module(alexnet_fmnist(), "features.0")
        Conv2d(1, 32, kernel_size=(11, 11), stride=(4, 4), padding=(5, 5))
    """
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

