"""Choosing where the work runs: CUDA, then Apple's MPS, then the CPU."""

from __future__ import annotations

import torch

from .errors import DeviceError

__all__ = ["device", "resolve_device", "on_device", "cpu_name"]


def device(prefer: str | None = None) -> torch.device:
    """Return the best available device: CUDA, then MPS, then CPU.

    Args:
        prefer: an explicit choice (``"cuda"``, ``"mps"``, ``"cpu"``, ``"cuda:1"``).
            When given it is checked and returned; when ``None`` the environment
            variable ``VIZLIB_DEVICE`` is honoured, then the first available of
            CUDA, MPS and CPU is chosen.

    Returns:
        A :class:`torch.device`.

    Raises:
        DeviceError: not a device name (the message says whether it came from
            ``VIZLIB_DEVICE``), or CUDA/MPS asked for and not available here,
            or the ``meta`` device (it holds no data to compute with).

    Example:
        >>> import vizlib as vl
        >>> vl.device("cpu")
        device(type='cpu')
    """
    import os

    from_env = not prefer and bool(os.environ.get("VIZLIB_DEVICE"))
    choice = prefer or os.environ.get("VIZLIB_DEVICE") or None
    if choice:
        return _check(choice, "the environment variable VIZLIB_DEVICE" if from_env else None)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _check(choice: "torch.device | str | int", source: str | None = None) -> torch.device:
    """``choice`` as a device that can be computed on here, or a :class:`DeviceError` saying why not."""
    said = f"{choice!r} (from {source})" if source else repr(choice)
    fix = "unset VIZLIB_DEVICE or set it to 'cpu', 'cuda' or 'mps'" if source else "use vizlib.device() or 'cpu'"
    if isinstance(choice, bool) or not isinstance(choice, (str, torch.device, int)):
        raise DeviceError(f"a device is a name like 'cpu', 'cuda' or 'cuda:1', or a torch.device, not {said} "
                          f"(a {type(choice).__name__})")
    try:
        dev = torch.device(choice)
    except (RuntimeError, ValueError) as exc:
        raise DeviceError(
            f"device {said} is not a device name; valid are 'cpu', 'cuda', 'cuda:N', 'mps'. Fix: {fix}"
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            f"device {said} was asked for but CUDA is not available here; "
            f"use vizlib.device() to pick the best available device, or 'cpu'."
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceError(f"device {said} was asked for but this machine has {torch.cuda.device_count()} CUDA "
                          f"device(s) (0..{torch.cuda.device_count() - 1}); {fix}")
    if dev.type == "mps" and not _mps_available():
        raise DeviceError(
            f"device {said} was asked for but MPS is not available here; "
            "use vizlib.device() or 'cpu'."
        )
    if dev.type == "meta":
        raise DeviceError(f"device {said} holds no data to compute with; use vizlib.device() or 'cpu'")
    return dev


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(dev: torch.device | str | None, module: torch.nn.Module | None = None) -> torch.device:
    """The device a vizlib routine should compute on.

    ``dev`` wins when given (checked: it must be available here); otherwise
    the device the module's parameters already live on (so nothing the caller
    did not ask for is moved); otherwise the CPU.

    Raises:
        DeviceError: ``dev`` is not a device name or not available here.

    Example:
        >>> resolve_device(None, torch.nn.Linear(2, 2))
        device(type='cpu')
    """
    if dev is not None:
        return _check(dev)
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
    where it was. Both checks come before any copy.

    Raises:
        DeviceError: ``device`` is not available here (see :func:`device`), or
            the model lives on the ``meta`` device (it has no weights to compute with).

    Example:
        >>> m = torch.nn.Linear(2, 2)
        >>> on_device(m)[0] is m, on_device(m, "cpu")[1]
        (True, device(type='cpu'))
    """
    import copy

    here = resolve_device(None, model)
    if here.type == "meta":
        raise DeviceError(
            "the model's weights are on the meta device: they have shapes but no values, so nothing can be "
            "computed with them. Fix: give it real weights, e.g. model.to_empty(device='cpu') and then "
            "model.load_state_dict(...), or build it on the CPU"
        )
    dev = resolve_device(device, model)
    if here == dev:
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
