"""The errors vizlib raises, under one base.

Every error derives from :class:`VizlibError` *and* from the builtin it stands
for, so ``except vl.VizlibError`` catches all of them and ``except ValueError``
keeps working where a caller already relied on it. Each is raised at the API
boundary, before any copy or forward pass, with a message that says what was
wrong, what is valid and how to fix it.

Example:
    >>> import vizlib as vl
    >>> issubclass(vl.ImageError, ValueError) and issubclass(vl.ImageError, vl.VizlibError)
    True
"""

from __future__ import annotations

__all__ = [
    "VizlibError",
    "ImageError",
    "InputTooSmall",
    "LayerError",
    "UnsupportedLayer",
    "NoDenseLayers",
    "NoObjectRegion",
    "DatasetUnavailable",
    "WeightsUnavailable",
    "CheckpointError",
    "NoPositiveActivation",
    "ArgumentError",
    "EmptyData",
    "DeviceError",
]


class VizlibError(Exception):
    """Base of every error vizlib raises on purpose."""


class ImageError(VizlibError, ValueError):
    """An image that a network cannot take as it is: wrong file, wrong channels, wrong shape."""


class InputTooSmall(ImageError):
    """The input image is smaller than the network accepts."""


class LayerError(VizlibError, KeyError):
    """A layer name or module that the model does not have."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnsupportedLayer(VizlibError, TypeError):
    """The network has a layer (or a tensor operation) the method cannot reverse."""


class NoDenseLayers(VizlibError, ValueError):
    """The network has no dense (``nn.Linear``) layer: there is no class vector to start DeNet from."""


class NoObjectRegion(VizlibError, ValueError):
    """A measure needs the object's region in an image and the image has none (or it is empty)."""


class DatasetUnavailable(VizlibError, FileNotFoundError):
    """The dataset is in none of the places vizlib looks, and cannot be downloaded."""


class WeightsUnavailable(VizlibError, RuntimeError):
    """Pretrained weights were asked for and cannot be had (no cache, no network)."""


class CheckpointError(VizlibError, RuntimeError):
    """A checkpoint file is missing, damaged, truncated or not a vizlib checkpoint."""


class ArgumentError(VizlibError, ValueError, TypeError):
    """An argument of the wrong kind or out of its range: a channel of 3.7, a position with three numbers,
    ``k=2.5``, ``batch_size=0``. (A ``ValueError`` and a ``TypeError`` both, so either ``except`` catches it.)"""


class EmptyData(VizlibError, ValueError):
    """The data holds no images (an empty tensor, an empty dataset, a loader that yields nothing)."""


class DeviceError(VizlibError, RuntimeError):
    """A device that cannot be used: not a device name, not available here, or a model on the meta device."""


class NoPositiveActivation(UserWarning):
    """A warning, not an error: the chosen activation is zero, so its projection is empty."""
