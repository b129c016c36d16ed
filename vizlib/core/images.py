"""Images in, images out: loading a picture for a network, checking it, showing results.

Three kinds of help:

* :func:`load_image` turns a file, a PIL image, an array or a tensor into the
  ``(1, C, H, W)`` tensor a network takes, with the network's own transform,
  and says clearly what is wrong when it cannot (not an image file, a
  greyscale or RGBA picture for an RGB network, a picture smaller than the
  network accepts).
* :func:`check_image` does the checks on a tensor that is already prepared;
  every vizlib routine that takes an image calls it.
* :class:`ImageFiles` reads a folder of images as a dataset (what
  ``torchvision.datasets.ImageFolder`` does, without needing one subfolder per
  class), and :func:`imagenette` opens torchvision's Imagenette.

:func:`to_display` turns a normalised input tensor back into an array that
``matplotlib`` can show.
"""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from .errors import ImageError, InputTooSmall
from .layers import as_module
from .shapes import min_input_size

__all__ = [
    "ImageError",
    "IMAGE_EXTENSIONS",
    "load_image",
    "check_image",
    "first_conv",
    "ImageFiles",
    "imagenette",
    "to_display",
]

#: File endings :class:`ImageFiles` treats as images.
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

_MODE_NAMES = {"L": "greyscale", "LA": "greyscale with alpha", "RGBA": "RGBA", "RGB": "RGB", "CMYK": "CMYK",
               "I": "32-bit greyscale", "I;16": "16-bit greyscale", "F": "floating-point greyscale", "1": "black-and-white"}



def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d] | None:
    """The first ``Conv2d`` of a model (its path and the module), or ``None``.

    Example:
        >>> from vizlib.models import alexnet_fmnist
        >>> path, conv = first_conv(alexnet_fmnist())
        >>> path, conv.in_channels
        ('features.0', 1)
    """
    for path, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return path, module
    return None


def _unwrap(net_or_model: Any, need: str = "") -> tuple[nn.Module | None, Callable[[Any], torch.Tensor] | None]:
    """A :class:`~vizlib.Net` gives its model and transform; a module gives itself; ``None`` gives
    nothing, unless the routine named by ``need`` needs a model (then an ArgumentError)."""
    if net_or_model is None and not need:
        return None, None
    model = as_module(net_or_model, need or "vizlib")
    return model, (None if model is net_or_model else getattr(net_or_model, "transform", None))


def _channel_fix(have: int, want: int) -> str:
    if want == 3 and have == 1:
        return ("repeat the grey channel (x.expand(-1, 3, -1, -1)), or load the file with "
                "vizlib.load_image(path, net, convert=True), which converts it to RGB")
    if want == 3 and have == 4:
        return ("drop the alpha channel (x[:, :3]), or load the file with vizlib.load_image(path, net, convert=True), "
                "which converts it to RGB")
    if want == 1 and have in (3, 4):
        return ("this network was trained on greyscale images: convert the picture to greyscale "
                "(vizlib.load_image(path, net, convert=True), or x.mean(1, keepdim=True) before normalising)")
    return f"give it {want}-channel images"


def check_image(image: torch.Tensor, model: nn.Module | None = None, *, batch: bool = False,
                start: int = 0) -> torch.Tensor:
    """Check a prepared image tensor against a network and return it as ``(N, C, H, W)``.

    Args:
        image: ``(C, H, W)`` or ``(N, C, H, W)``, floating point, already
            normalised the way the network expects.
        model: the network (or a :class:`~vizlib.Net`): its first convolution
            fixes the number of channels, its layers the smallest input it accepts.
        batch: allow ``N > 1``.
        start: the position of the first image in the caller's data (for the
            messages of a streamed dataset).

    Returns:
        The same data as a 4-d tensor.

    Raises:
        ImageError: not a tensor, wrong number of dimensions, no images,
            integer pixels, NaN or infinite pixels (the message counts them),
            wrong number of channels (the message says how to fix it).
        InputTooSmall: smaller than the network accepts.

    Example:
        >>> from vizlib.models import alexnet
        >>> check_image(torch.zeros(3, 224, 224), alexnet()).shape
        torch.Size([1, 3, 224, 224])
    """
    if not isinstance(image, torch.Tensor):
        raise ImageError(
            f"expected an image tensor, got {type(image).__name__}; load files and PIL images with "
            "vizlib.load_image(source, net)"
        )
    if image.ndim == 3:
        image = image.unsqueeze(0)
    if image.ndim != 4:
        raise ImageError(
            f"an image tensor must have shape (C, H, W) or (N, C, H, W); this one has shape {tuple(image.shape)}"
        )
    if not batch and image.shape[0] != 1:
        raise ImageError(f"expected one image, got a batch of {image.shape[0]}; pass images[i]")
    if image.shape[0] == 0:
        raise ImageError(f"the image tensor holds no images (shape {tuple(image.shape)}); pass at least one")
    if not image.is_floating_point():
        raise ImageError(
            f"image tensor has integer type {image.dtype}: networks take normalised floating-point images. "
            "Prepare it with the network's transform (vizlib.load_image(source, net))"
        )
    _check_finite(image, start)
    if model is None:
        return image
    model = as_module(model, "check_image")
    conv = first_conv(model)
    if conv is not None:
        path, module = conv
        want, have = module.in_channels, image.shape[1]
        if have != want:
            kind = {1: "greyscale", 3: "RGB", 4: "RGBA"}.get(have, f"{have}-channel")
            raise ImageError(
                f"this network's first convolution ({path}) expects {want}-channel images but the image is "
                f"{kind} ({have} channel{'s' if have != 1 else ''}). Fix: {_channel_fix(have, want)}"
            )
    smallest = _min_size(model)
    h, w = image.shape[-2:]
    if min(h, w) < smallest:
        raise InputTooSmall(
            f"the image is {h}×{w} pixels, smaller than this network accepts ({smallest}×{smallest} at least: "
            f"its layers would produce empty feature maps). Fix: resize it to at least {smallest} pixels a side, "
            "or load it with the network's transform (vizlib.load_image(path, net))"
        )
    return image


def _check_finite(image: torch.Tensor, start: int = 0) -> None:
    """Refuse NaN and infinite pixels, with their count: one of them turns every result into NaN."""
    if image.device.type == "meta" or bool(torch.isfinite(image.sum())):
        return  # a NaN or an infinity makes the sum non-finite (so may an overflow: then the exact count decides)
    bad = ~torch.isfinite(image)
    n_bad = int(bad.sum())
    if n_bad:
        per_image = bad.flatten(1).sum(1)
        first = int(per_image.nonzero()[0, 0])
        n_nan = int(torch.isnan(image).sum())
        where = f" (the first in image {start + first})" if image.shape[0] > 1 or start else ""
        raise ImageError(
            f"the image has {n_bad} non-finite pixel value{'s' if n_bad != 1 else ''} of {image.numel()} "
            f"({n_nan} NaN, {n_bad - n_nan} infinite){where}: every result computed from it would be NaN. "
            "Pixels must be finite numbers. Fix: find where they came from (a division by zero in the "
            "preprocessing, a damaged file), or replace them, e.g. torch.nan_to_num(x)"
        )


# Held weakly: a model checked once must not be kept alive by the cache.
_MIN_SIZE_CACHE: "weakref.WeakKeyDictionary[nn.Module, int]" = weakref.WeakKeyDictionary()


def _min_size(model: nn.Module) -> int:
    size = _MIN_SIZE_CACHE.get(model)
    if size is None:
        size = min_input_size(model)
        _MIN_SIZE_CACHE[model] = size
    return size


def _open(path: str | os.PathLike[str]) -> Any:
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such image file: {p}")
    if p.is_dir():
        raise ImageError(f"{p} is a folder, not an image; read a folder with vizlib.ImageFiles({str(p)!r}, net)")
    try:
        img = Image.open(p)
        img.load()
    except UnidentifiedImageError as exc:
        raise ImageError(
            f"{p} is not an image file that PIL can read (it looks like {_sniff(p)}). "
            f"Pass a JPEG, PNG or another picture format"
        ) from exc
    except OSError as exc:
        raise ImageError(f"{p} could not be read as an image ({exc}); the file may be truncated or damaged") from exc
    return img


def _sniff(p: Path) -> str:
    try:
        head = p.read_bytes()[:64]
    except OSError:
        return "an unreadable file"
    if not head:
        return "an empty file"
    if head.lstrip().startswith((b"{", b"[")):
        return "JSON"
    if head.startswith(b"%PDF"):
        return "a PDF"
    if head.startswith(b"PK"):
        return "a zip archive"
    try:
        head.decode("utf-8")
        return "a text file"
    except UnicodeDecodeError:
        return f"a binary file of type {p.suffix or 'unknown'}"


def _to_pil(source: Any) -> Any:
    from PIL import Image

    if isinstance(source, (str, os.PathLike)):
        return _open(source)
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, np.ndarray):
        arr = source
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
            raise ImageError(
                f"an image array must have shape (H, W), (H, W, 3) or (H, W, 4); this one has {arr.shape}"
            )
        if arr.dtype != np.uint8:
            if np.issubdtype(arr.dtype, np.floating) and arr.size and 0.0 <= arr.min() and arr.max() <= 1.0:
                arr = (arr * 255).round().astype(np.uint8)
            else:
                raise ImageError(
                    f"an image array must be uint8 (0..255) or float in [0, 1]; this one is {arr.dtype} "
                    f"with values {arr.min()}..{arr.max()}"
                )
        return Image.fromarray(arr)
    raise ImageError(
        f"cannot make an image from a {type(source).__name__}; pass a file path, a PIL image, a numpy array "
        "or a prepared tensor"
    )


def _to_8bit(img: Any) -> Any:
    """A 16-bit, 32-bit or floating-point greyscale picture as 8-bit greyscale, scaled (PIL's own
    ``convert("L")`` clips 16-bit values at 255 and turns floats in [0, 1] black).

    16-bit (``I;16``) pixels are divided by 257 (65535 -> 255). 32-bit (``I``) pixels are read as 16-bit
    when any exceeds 255, else as 8-bit values. Floating-point (``F``) pixels in [0, 1] are fractions of
    white; in [0, 255], 8-bit values.

    Raises:
        ImageError: non-finite pixels, or values outside those ranges (the message gives them).
    """
    from PIL import Image

    arr = np.asarray(img, dtype=np.float64)
    name = _MODE_NAMES.get(img.mode, img.mode)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise ImageError(
            f"the {name} picture has {bad} non-finite pixel value{'s' if bad != 1 else ''} (NaN or infinite) of "
            f"{arr.size}. Pixels must be finite numbers; fix: replace them (np.nan_to_num) before loading"
        )
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if img.mode.startswith("I;16") or (img.mode == "I" and 0 <= lo and hi <= 65535 and hi > 255):
        scale = 65535.0
    elif img.mode == "F" and 0 <= lo and hi <= 1:
        scale = 1.0
    elif 0 <= lo and hi <= 255:
        scale = 255.0
    else:
        valid = "[0, 1] or [0, 255]" if img.mode == "F" else "0..65535"
        raise ImageError(
            f"the {name} picture has values {lo:g}..{hi:g}, outside the range vizlib can read as brightness "
            f"({valid}). Fix: scale it to [0, 1] yourself (e.g. (a - a.min()) / (a.max() - a.min())) "
            "and pass the float array"
        )
    return Image.fromarray(np.round(arr * (255.0 / scale)).astype(np.uint8), mode="L")


def _wanted_mode(channels: int) -> str:
    return {1: "L", 3: "RGB"}.get(channels, "RGB")


def load_image(
    source: Any,
    net: Any = None,
    *,
    transform: Callable[[Any], torch.Tensor] | None = None,
    convert: bool = False,
) -> torch.Tensor:
    """Load an image for a network: ``(1, C, H, W)``, transformed and checked.

    Args:
        source: a file path, a PIL image, a numpy array (``H×W`` or ``H×W×3``,
            uint8 or floats in [0, 1]) or a tensor (already prepared: it is
            only checked).
        net: a :class:`~vizlib.Net` (gives the model and its transform) or an
            ``nn.Module`` (then pass ``transform``).
        transform: preprocessing from a PIL image to a tensor; default the
            net's own, else ``torchvision.transforms.functional.to_tensor``.
        convert: convert the picture to the colour mode the network takes
            (greyscale or RGBA to RGB, colour to greyscale). Without it such a
            mismatch is an error that says what to do.

    Returns:
        A float tensor of shape ``(1, C, H, W)``.

    Raises:
        FileNotFoundError: no such file.
        ImageError: not an image file; wrong colour mode (and ``convert`` is
            off); a malformed array; a 16-bit, 32-bit or floating-point
            picture with non-finite values or values outside the range it can
            be read in (these are scaled to 8 bits, not clipped); NaN or
            infinite pixels after the transform.
        ArgumentError: ``net`` is neither a Net nor a module.
        InputTooSmall: the picture is smaller than the network accepts.

    Example:
        >>> from PIL import Image
        >>> from vizlib.models import alexnet
        >>> x = load_image(Image.new("RGB", (80, 80)), alexnet())
        >>> x.shape
        torch.Size([1, 3, 80, 80])
    """
    model, net_tf = _unwrap(net)
    transform = transform or net_tf
    if isinstance(source, torch.Tensor):
        return check_image(source, model)
    img = _to_pil(source)
    conv = first_conv(model) if model is not None else None
    want = conv[1].in_channels if conv is not None else None
    if img.mode == "P":  # palette images: their colours, losslessly
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        img = _to_8bit(img)
    elif img.mode == "1":
        img = img.convert("L")
    if want is not None:
        mode = _wanted_mode(want)
        if img.mode != mode:
            if not convert:
                name = _MODE_NAMES.get(img.mode, img.mode)
                have = len(img.getbands())
                raise ImageError(
                    f"the image is {name} ({have} channel{'s' if have != 1 else ''}) but this network takes "
                    f"{'RGB' if want == 3 else 'greyscale'} images ({want} channel{'s' if want != 1 else ''}). "
                    f"Fix: convert it, img.convert({mode!r}), or load it with vizlib.load_image(image, net, "
                    "convert=True) and pass the tensor"
                )
            img = img.convert(mode)
        # Without a transform the picture goes in as it is: check its size here
        # with a fix that fits. A transform (a bundled net's blows 28-pixel
        # Fashion-MNIST up to 64) may resize: then what counts is its output,
        # checked by check_image below.
        if model is not None and transform is None:
            smallest = _min_size(model)
            if min(img.size) < smallest:
                raise InputTooSmall(
                    f"the image is {img.size[1]}×{img.size[0]} pixels, smaller than this network accepts "
                    f"({smallest}×{smallest} at least). Fix: use a larger picture, or resize it yourself "
                    f"(img.resize(...)) if you really mean to blow it up"
                )
    if transform is None:
        from torchvision.transforms.functional import to_tensor

        transform = to_tensor
    x = transform(img)
    if not isinstance(x, torch.Tensor):
        raise ImageError(f"the transform returned a {type(x).__name__}, not a tensor; end it with ToTensor()")
    return check_image(x, model)


class ImageFiles(torch.utils.data.Dataset):
    """A folder of images as a dataset: ``(tensor, path)`` items in sorted path order.

    Like ``torchvision.datasets.ImageFolder`` but with no class subfolders
    needed: every file with an image ending under ``root`` (recursively) is
    one item. Pictures are converted to the colour mode the network takes
    (a folder of photos often mixes greyscale and colour).

    Args:
        root: the folder.
        net: a :class:`~vizlib.Net` (gives transform and colour mode), or ``None``.
        transform: preprocessing from a PIL image to a tensor; default the
            net's transform, else ``to_tensor``.
        mode: PIL colour mode to convert to (default from the net: ``"RGB"``
            or ``"L"``; ``None`` without a net keeps each file's mode).
        recursive: look into subfolders.
        extensions: file endings to read.

    Raises:
        FileNotFoundError: the folder does not exist.
        ImageError: the folder holds no images.

    Example:
        >>> ds = ImageFiles("my_photos", net)      # doctest: +SKIP
        >>> image, path = ds[0]                    # doctest: +SKIP
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        net: Any = None,
        *,
        transform: Callable[[Any], torch.Tensor] | None = None,
        mode: str | None = None,
        recursive: bool = True,
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"no such folder: {self.root}")
        model, net_tf = _unwrap(net)
        self.transform = transform or net_tf
        conv = first_conv(model) if model is not None else None
        self.mode = mode or (_wanted_mode(conv[1].in_channels) if conv is not None else None)
        exts = tuple(e.lower() for e in extensions)
        files = self.root.rglob("*") if recursive else self.root.iterdir()
        self.paths: list[Path] = sorted(p for p in files if p.is_file() and p.suffix.lower() in exts)
        if not self.paths:
            raise ImageError(f"no image files ({', '.join(exts)}) found in {self.root}")

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        img = _open(self.paths[index])
        if img.mode == "P":
            img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        if img.mode in ("I", "F") or img.mode.startswith("I;16"):
            img = _to_8bit(img)  # scaled, not clipped
        if self.mode is not None and img.mode != self.mode:
            img = img.convert(self.mode)
        if self.transform is None:
            from torchvision.transforms.functional import to_tensor

            return to_tensor(img), str(self.paths[index])
        return self.transform(img), str(self.paths[index])


def imagenette(
    root: str | os.PathLike[str],
    net: Any = None,
    *,
    split: str = "val",
    size: str = "320px",
    download: bool = False,
    transform: Callable[[Any], torch.Tensor] | None = None,
) -> torch.utils.data.Dataset:
    """torchvision's Imagenette (10 easy ImageNet classes) with the net's transform.

    Args:
        root: where the data lives (or is downloaded to).
        net: a :class:`~vizlib.Net` whose transform to use.
        split: ``"train"`` or ``"val"``.
        size: ``"full"``, ``"320px"`` or ``"160px"``.
        download: fetch it (about 100 MB for ``320px``) when missing.
        transform: overrides the net's transform.

    Returns:
        A dataset of ``(image, label)`` items.

    Raises:
        FileNotFoundError: not there and ``download`` is off.

    Example:
        >>> ds = imagenette("~/data", net, download=True)   # doctest: +SKIP
    """
    from torchvision.datasets import Imagenette

    _, net_tf = _unwrap(net)
    tf = transform or net_tf
    root = Path(root).expanduser()
    try:
        return Imagenette(str(root), split=split, size=size, download=download, transform=tf)
    except RuntimeError as exc:
        raise FileNotFoundError(
            f"Imagenette ({size}, {split}) is not in {root}: pass download=True to fetch it, "
            f"or read any folder of photos with vizlib.ImageFiles(folder, net). ({exc})"
        ) from exc


def to_display(
    image: torch.Tensor,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> np.ndarray:
    """A normalised input tensor as an array ready for ``plt.imshow``.

    Args:
        image: ``(C, H, W)`` or ``(N, C, H, W)``.
        mean, std: the normalisation the network's transform applied
            (``net.mean``, ``net.std``); undone before display. Without them
            the tensor is min-max scaled.

    Returns:
        Floats in [0, 1], ``(H, W, 3)`` (or ``(N, H, W, 3)``) for colour and
        ``(H, W)`` (``(N, H, W)``) for one channel.

    Example:
        >>> to_display(torch.zeros(3, 4, 4), (0.5, 0.5, 0.5), (0.2, 0.2, 0.2)).shape
        (4, 4, 3)
    """
    x = image.detach().to("cpu", torch.float64)
    if mean is not None and std is not None:
        m = torch.tensor(mean, dtype=torch.float64).view(-1, 1, 1)
        s = torch.tensor(std, dtype=torch.float64).view(-1, 1, 1)
        x = x * s + m
    else:
        dims = tuple(range(x.ndim - 3, x.ndim))
        lo = x.amin(dim=dims, keepdim=True)
        hi = x.amax(dim=dims, keepdim=True)
        x = (x - lo) / (hi - lo).clamp_min(1e-12)
    x = x.clamp(0, 1).movedim(-3, -1).numpy()
    return x[..., 0] if x.shape[-1] == 1 else x
