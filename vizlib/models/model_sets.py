"""The three model sets and the one switch between them.

* ``imagenet``: the papers' networks with ImageNet weights. AlexNet and VGG-16
  come from torchvision's weights enums (their own transforms and category
  names); ZFNet from the ``pytorchcv`` model zoo when it can be had.
* ``bundled``: small AlexNet-, ZFNet- and VGG-style networks trained on
  Fashion-MNIST by vizlib itself, checkpoints committed with the book.
* ``random``: the full-size architectures untrained, seeded.

The reader picks one with the environment variable ``VIZLIB_MODEL_SET``
(``imagenet``, ``bundled``, ``random`` or ``auto``); ``auto`` (the default)
means ImageNet when its weights can be had (already in the cache, or the
download host answers within seconds), else bundled, else random.

Nothing here ever hangs on a missing network: the host is probed with a hard
time limit before any download starts.
"""

from __future__ import annotations

import os
import socket
import urllib.parse
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torchvision import models as tvm

from ..core.device import resolve_device
from ..core.errors import ArgumentError, WeightsUnavailable
from ..core.net import Net
from ..core.online import PROBE_TIMEOUT, host_reachable as _host_reachable
from . import nets as vm
from .bundled import bundled_checkpoint_available, load_bundled
from .bundled_nets import BUNDLED_BUILDERS

__all__ = [
    "MODEL_SETS",
    "Net",
    "WeightsUnavailable",
    "load",
    "choose_model_set",
    "imagenet_available",
    "bundled_available",
    "describe_model_set",
]

MODEL_SETS: tuple[str, ...] = ("imagenet", "bundled", "random")
ENV_VAR = "VIZLIB_MODEL_SET"


# --------------------------------------------------------------------------- ImageNet

_TV_WEIGHTS: dict[str, Any] = {
    "alexnet": tvm.AlexNet_Weights.IMAGENET1K_V1,
    "vgg16": tvm.VGG16_Weights.IMAGENET1K_V1,
}
_PYTORCHCV_ZFNET = "zfnet"


def _cache_file(url: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urllib.parse.urlparse(url).path)


def _offline_message(arch: str, what: str, folder: str | os.PathLike[str] | None = None) -> str:
    folder = folder if folder is not None else Path(torch.hub.get_dir()) / "checkpoints"
    cache = "pytorchcv's model store" if arch == "zfnet" else "torch's cache"
    return (
        f"ImageNet weights for {arch} are not in the cache ({what}) and the download host "
        f"did not answer within {PROBE_TIMEOUT:.0f} s. To fix: connect to the internet once "
        f"(the weights are downloaded into {cache} and reused), or copy the file into "
        f"{folder}, or pick another model set with "
        f"{ENV_VAR}=bundled (small nets trained on Fashion-MNIST, no download) or "
        f"{ENV_VAR}=random (untrained)."
    )


def imagenet_available(arch: str, *, probe: bool = True) -> bool:
    """Whether ImageNet weights for ``arch`` can be had now (cached, or reachable).

    Example:
        >>> imagenet_available("vgg16")          # doctest: +SKIP
        False
    """
    if arch in _TV_WEIGHTS:
        url = _TV_WEIGHTS[arch].url
        return _cache_file(url).exists() or (probe and _host_reachable(url))
    if arch == "zfnet":
        return _pytorchcv_zfnet_file(download=False) is not None or (
            probe and _pytorchcv_installed() and _host_reachable(_pytorchcv_url())
        )
    raise KeyError(f"unknown architecture {arch!r}; choose one of {', '.join(vm.ARCHITECTURES)}")


def _imagenet_transform() -> tuple[Callable[[Any], torch.Tensor], tuple[float, ...], tuple[float, ...], int]:
    # The preprocessing that travels with torchvision's AlexNet weights (resize
    # 256, centre crop 224, ImageNet mean/std), shared by the three nets.
    tf = tvm.AlexNet_Weights.IMAGENET1K_V1.transforms()
    return tf, tuple(tf.mean), tuple(tf.std), int(tf.crop_size[0])


def _imagenet_categories() -> list[str]:
    return list(tvm.AlexNet_Weights.IMAGENET1K_V1.meta["categories"])


def _load_imagenet(arch: str, progress: bool) -> Net:
    tf, mean, std, size = _imagenet_transform()
    if arch in _TV_WEIGHTS:
        weights = _TV_WEIGHTS[arch]
        cached = _cache_file(weights.url)
        if not cached.exists() and not _host_reachable(weights.url):
            raise WeightsUnavailable(_offline_message(arch, str(cached)))
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(60)
        try:
            state = weights.get_state_dict(progress=progress, check_hash=True)
        except OSError as exc:  # connection dropped mid-download
            raise WeightsUnavailable(_offline_message(arch, f"download failed: {exc}")) from exc
        finally:
            socket.setdefaulttimeout(old)
        model = vm.alexnet() if arch == "alexnet" else vm.vgg16()
        model.load_state_dict(state)
        tf = weights.transforms()
        return Net(
            arch, "imagenet", model.eval(), list(weights.meta["categories"]), tf,
            tuple(tf.mean), tuple(tf.std), int(tf.crop_size[0]),
            f"torchvision {type(weights).__name__}.{weights.name}",
            {"acc@1": weights.meta["_metrics"]["ImageNet-1K"]["acc@1"]},
        )
    if arch == "zfnet":
        path = _pytorchcv_zfnet_file(download=True)
        model = load_pytorchcv_zfnet(path)
        return Net(arch, "imagenet", model.eval(), _imagenet_categories(), tf, mean, std, size,
                   f"pytorchcv zfnet ({path.name})")
    raise KeyError(f"unknown architecture {arch!r}; choose one of {', '.join(vm.ARCHITECTURES)}")


def _pytorchcv_installed() -> bool:
    try:
        import pytorchcv  # noqa: F401
    except ImportError:
        return False
    return True


def _pytorchcv_names() -> tuple[Path, str]:
    """Where pytorchcv keeps its ZFNet file, and the URL it downloads it from."""
    from pytorchcv.models.common import model_store  # type: ignore

    error, sha1, tag = model_store.get_model_name_suffix_data(_PYTORCHCV_ZFNET)
    name = f"{_PYTORCHCV_ZFNET}-{error}-{sha1[:8]}.pth"
    root = Path("~/.torch/models").expanduser()
    return root / name, f"{model_store.imgclsmob_repo_url}/releases/download/{tag}/{name}.zip"


def _pytorchcv_url() -> str:
    return _pytorchcv_names()[1]


def _pytorchcv_zfnet_file(download: bool) -> Path | None:
    """The pytorchcv ZFNet weights file: cached path, or download it (bounded)."""
    if not _pytorchcv_installed():
        if download:
            raise WeightsUnavailable(
                "ImageNet weights for ZFNet come from the pytorchcv model zoo, which is not "
                "installed: `pip install pytorchcv`, or use "
                f"{ENV_VAR}=bundled or {ENV_VAR}=random."
            )
        return None
    from pytorchcv.models.common.model_store import get_model_file  # type: ignore

    cached, url = _pytorchcv_names()
    if cached.exists():
        return cached
    if not download:
        return None
    if not _host_reachable(url):
        raise WeightsUnavailable(_offline_message("zfnet", str(cached), cached.parent))
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(60)
    try:
        return Path(get_model_file(_PYTORCHCV_ZFNET, local_model_store_dir_path=str(cached.parent)))
    except Exception as exc:  # pytorchcv raises plain exceptions on failed downloads
        raise WeightsUnavailable(_offline_message("zfnet", f"download failed: {exc}", cached.parent)) from exc
    finally:
        socket.setdefaulttimeout(old)


def load_pytorchcv_zfnet(path: str | os.PathLike[str]) -> nn.Module:
    """Build vizlib's ZFNet and fill it with pytorchcv's ImageNet weights.

    pytorchcv's ZFNet is the same network (7x7/2 pad 1, 5x5/2, ceil-mode 3x3/2
    pooling, dense 384-384-256, 4096-4096-1000) with the response
    normalisation before the pooling; the model is built that way so the
    weights compute what they were trained to.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = vm.zfnet(norm_before_pool=True)
    ours = [k for k in model.state_dict()]
    theirs = [k for k in state if k.endswith(("weight", "bias"))]
    if len(ours) != len(theirs):
        raise ValueError(f"{path} does not hold pytorchcv's ZFNet weights ({len(theirs)} tensors, expected {len(ours)})")
    mapped = {k: state[t] for k, t in zip(ours, theirs)}
    model.load_state_dict(mapped)
    return model


# --------------------------------------------------------------------------- Bundled

def bundled_available(arch: str) -> bool:
    """Whether a trained bundled checkpoint for ``arch`` ships with this copy.

    Example:
        >>> bundled_available("zfnet")
        True
    """
    return arch in BUNDLED_BUILDERS and bundled_checkpoint_available(arch)


# --------------------------------------------------------------------------- Random


def _load_random(arch: str, seed: int) -> Net:
    builder = {"alexnet": vm.alexnet, "zfnet": vm.zfnet, "vgg16": vm.vgg16}[arch]
    model = builder(seed=seed)
    tf, mean, std, size = _imagenet_transform()
    return Net(arch, "random", model.eval(), _imagenet_categories(), tf, mean, std, size,
               f"untrained, seed {seed} (ImageNet preprocessing and category names)")


# --------------------------------------------------------------------------- the switch


def choose_model_set(requested: str | None = None, archs: tuple[str, ...] = vm.ARCHITECTURES) -> str:
    """Resolve the model set to show.

    Args:
        requested: ``"imagenet"``, ``"bundled"``, ``"random"``, ``"auto"`` or
            ``None`` (read ``VIZLIB_MODEL_SET``, default ``auto``).
        archs: the architectures the caller needs (for ``auto``).

    Returns:
        The set's name. ``auto`` gives ImageNet when the weights of every
        architecture in ``archs`` can be had, else bundled when all its
        checkpoints ship, else random.

    Example:
        >>> choose_model_set("random")
        'random'
    """
    choice = (requested or os.environ.get(ENV_VAR) or "auto").strip().lower()
    if choice in MODEL_SETS:
        return choice
    if choice != "auto":
        raise ValueError(f"unknown model set {choice!r}; {ENV_VAR} must be one of imagenet, bundled, random, auto")
    if all(imagenet_available(a) for a in archs):
        return "imagenet"
    if all(bundled_available(a) for a in archs):
        return "bundled"
    return "random"


def load(
    arch: str,
    model_set: str | None = None,
    *,
    device: torch.device | str | None = None,
    seed: int = 0,
    progress: bool = True,
) -> Net:
    """Load one of the three networks from a model set.

    Args:
        arch: ``"alexnet"``, ``"zfnet"`` or ``"vgg16"``.
        model_set: ``"imagenet"``, ``"bundled"``, ``"random"``, ``"auto"``, or
            ``None`` for the reader's choice (``VIZLIB_MODEL_SET``).
        device: where to put the model (default: the CPU; use
            :func:`vizlib.device` for the best available).
        seed: initialisation seed of the random set.
        progress: show the download progress bar.

    Returns:
        A :class:`Net` with the model in eval mode.

    Raises:
        WeightsUnavailable: ImageNet weights asked for and not to be had
            (within seconds, never a hang), or bundled checkpoints missing.
        ArgumentError: ``arch`` not a string (``None``...).
        KeyError: an unknown architecture.
        ValueError: an unknown model set.
        DeviceError: ``device`` not a device name or not available here (checked before any weights are read).

    Example:
        >>> net = load("alexnet", "random")
        >>> net.layers[:3]
        ['c1', 'p1', 'c2']
    """
    if not isinstance(arch, str):
        raise ArgumentError(
            f"arch must be the name of an architecture, one of {', '.join(map(repr, vm.ARCHITECTURES))}, "
            f"not {arch!r} (type {type(arch).__name__}); e.g. vl.load('alexnet')"
        )
    arch = arch.lower()
    if arch not in vm.ARCHITECTURES:
        raise KeyError(f"unknown architecture {arch!r}; choose one of {', '.join(vm.ARCHITECTURES)}")
    target = resolve_device(device) if device is not None else torch.device("cpu")
    # one choice for every architecture, so a chapter never mixes sets
    chosen = choose_model_set(model_set)
    if chosen == "imagenet":
        net = _load_imagenet(arch, progress)
    elif chosen == "bundled":
        if not bundled_available(arch):
            raise WeightsUnavailable(
                f"no bundled checkpoint for {arch} ships with this copy of the book; "
                f"use {ENV_VAR}=random (untrained) or {ENV_VAR}=imagenet."
            )
        net = load_bundled(arch)
    else:
        net = _load_random(arch, seed)
    net.model.to(target)
    return net


def describe_model_set(model_set: str) -> str:
    """One line for a chapter's first output: which set this run shows.

    Example:
        >>> describe_model_set("random").startswith("Model set: Random")
        True
    """
    text = {
        "imagenet": "ImageNet: the papers' networks with pretrained ImageNet weights",
        "bundled": "Bundled: small AlexNet-, ZFNet- and VGG-style nets trained on Fashion-MNIST by vizlib",
        "random": "Random: the full-size architectures, untrained (seeded) — structure only",
    }[model_set]
    return f"Model set: {text}. (Change it with {ENV_VAR}=imagenet|bundled|random.)"
