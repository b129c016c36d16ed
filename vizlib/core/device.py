"""Choosing where the work runs: CUDA, then Apple's MPS, then the CPU."""

from __future__ import annotations

import torch

__all__ = ["device", "resolve_device", "cpu_name"]


def device(prefer: str | None = None) -> torch.device:
    """Return the best available device: CUDA, then MPS, then CPU.

    Args:
        prefer: an explicit choice (``"cuda"``, ``"mps"``, ``"cpu"``, ``"cuda:1"``).
            When given it is checked and returned; when ``None`` the environment
            variable ``VIZLIB_DEVICE`` is honoured, then the first available of
            CUDA, MPS and CPU is chosen.

    Returns:
        A :class:`torch.device`.

    Example:
        >>> import vizlib as vl
        >>> vl.device("cpu")
        device(type='cpu')
    """
    import os

    choice = prefer or os.environ.get("VIZLIB_DEVICE") or None
    if choice:
        dev = torch.device(choice)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(
                f"device {choice!r} was asked for but CUDA is not available here; "
                "use vizlib.device() to pick the best available device, or 'cpu'."
            )
        if dev.type == "mps" and not _mps_available():
            raise RuntimeError(
                f"device {choice!r} was asked for but MPS is not available here; "
                "use vizlib.device() or 'cpu'."
            )
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(dev: torch.device | str | None, module: torch.nn.Module | None = None) -> torch.device:
    """The device a vizlib routine should compute on.

    ``dev`` wins when given; otherwise the device the module's parameters
    already live on (so nothing the caller did not ask for is moved);
    otherwise the CPU.
    """
    if dev is not None:
        return torch.device(dev)
    if module is not None:
        for p in module.parameters():
            return p.device
        for b in module.buffers():
            return b.device
    return torch.device("cpu")


def on_device(model: torch.nn.Module, device: torch.device | str | None = None) -> tuple[torch.nn.Module, torch.device]:
    """The module to compute with and its device: ``model`` itself when it lives on ``device``
    (default: where it lives, :func:`resolve_device`), else a copy moved there.

    The caller's model is never moved, so it comes back from every vizlib call
    where it was.

    Example:
        >>> m = torch.nn.Linear(2, 2)
        >>> on_device(m)[0] is m, on_device(m, "cpu")[1]
        (True, device(type='cpu'))
    """
    import copy

    dev = resolve_device(device, model)
    if resolve_device(None, model) == dev:
        return model, dev
    return copy.deepcopy(model).to(dev), dev


def cpu_name() -> str:
    """The processor's model name (from ``/proc/cpuinfo`` on Linux), for benchmark and training records.

    Example:
        >>> isinstance(cpu_name(), str)
        True
    """
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"
