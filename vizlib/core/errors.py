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
    """Base of every error vizlib raises on purpose.

    Example:
        >>> import torch, vizlib as vl
        >>> try:
        ...     vl.check_image("photo.jpg")
        ... except vl.VizlibError as err:
        ...     print(type(err).__name__)
        ImageError
    """


class ImageError(VizlibError, ValueError):
    """An image that a network cannot take as it is: wrong file, wrong channels, wrong shape.

    Example:
        >>> import vizlib as vl
        >>> issubclass(vl.ImageError, ValueError)
        True
    """


class InputTooSmall(ImageError):
    """The input image is smaller than the network accepts.

    Example:
        >>> import torch, vizlib as vl
        >>> from vizlib.models import alexnet
        >>> try:
        ...     vl.check_image(torch.zeros(3, 8, 8), alexnet())
        ... except vl.InputTooSmall as err:
        ...     print(str(err)[:30])
        the image is 8×8 pixels, small
    """


class LayerError(VizlibError, KeyError):
    """A layer name or module that the model does not have.

    Example:
        >>> import vizlib as vl
        >>> from vizlib.models import alexnet
        >>> try:
        ...     vl.resolve_layer(alexnet(), "c9")
        ... except KeyError as err:
        ...     print(type(err).__name__)
        LayerError
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnsupportedLayer(VizlibError, TypeError):
    """The network has a layer (or a tensor operation) the method cannot reverse.

    Example:
        >>> from vizlib.core.errors import UnsupportedLayer, VizlibError
        >>> issubclass(UnsupportedLayer, TypeError) and issubclass(UnsupportedLayer, VizlibError)
        True
    """


class NoDenseLayers(VizlibError, ValueError):
    """The network has no dense (``nn.Linear``) layer: there is no class vector to start DeNet from.

    Example:
        >>> import torch.nn as nn, vizlib as vl
        >>> from vizlib.core.errors import NoDenseLayers
        >>> try:
        ...     vl.DeNet(nn.Sequential(nn.Conv2d(3, 4, 3)))
        ... except NoDenseLayers:
        ...     print("no nn.Linear to start from")
        no nn.Linear to start from
    """


class NoObjectRegion(VizlibError, ValueError):
    """A measure needs the object's region in an image and the image has none (or it is empty).

    Example:
        >>> import vizlib as vl
        >>> issubclass(vl.NoObjectRegion, ValueError)
        True
    """


class DatasetUnavailable(VizlibError, FileNotFoundError):
    """The dataset is in none of the places vizlib looks, and cannot be downloaded.

    Example:
        >>> import vizlib as vl
        >>> issubclass(vl.DatasetUnavailable, FileNotFoundError)
        True
    """


class WeightsUnavailable(VizlibError, RuntimeError):
    """Pretrained weights were asked for and cannot be had (no cache, no network).

    Example:
        >>> import vizlib as vl
        >>> try:                                        # doctest: +SKIP
        ...     net = vl.load("vgg16", "imagenet")
        ... except vl.WeightsUnavailable:
        ...     net = vl.load("vgg16", "bundled")
    """


class CheckpointError(VizlibError, RuntimeError):
    """A checkpoint file is missing, damaged, truncated or not a vizlib checkpoint.

    Example:
        >>> from vizlib.core.errors import CheckpointError
        >>> issubclass(CheckpointError, RuntimeError)
        True
    """


class ArgumentError(VizlibError, ValueError, TypeError):
    """An argument of the wrong kind or out of its range: a channel of 3.7, a position with three numbers,
    ``k=2.5``, ``batch_size=0``. (A ``ValueError`` and a ``TypeError`` both, so either ``except`` catches it.)

    Example:
        >>> from vizlib.core.args import whole_number
        >>> try:
        ...     whole_number(2.5, "k")
        ... except TypeError as err:
        ...     print(err)
        k must be a whole number (an int), not 2.5: it is not rounded for you
    """


class EmptyData(VizlibError, ValueError):
    """The data holds no images (an empty tensor, an empty dataset, a loader that yields nothing).

    Example:
        >>> import torch, vizlib as vl
        >>> from vizlib.core.errors import EmptyData
        >>> try:
        ...     next(iter(vl.batches(torch.zeros(0, 3, 8, 8))))
        ... except EmptyData:
        ...     print("no images")
        no images
    """


class DeviceError(VizlibError, RuntimeError):
    """A device that cannot be used: not a device name, not available here, or a model on the meta device.

    Example:
        >>> import vizlib as vl
        >>> from vizlib.core.errors import DeviceError
        >>> try:
        ...     vl.device("tpu9")
        ... except DeviceError as err:
        ...     print(str(err)[:31])
        device 'tpu9' is not a device n
    """


class NoPositiveActivation(UserWarning):
    """A warning, not an error: the chosen activation is zero, so its projection is empty.

    Example:
        >>> import warnings, vizlib as vl
        >>> warnings.simplefilter("ignore", vl.NoPositiveActivation)
    """
