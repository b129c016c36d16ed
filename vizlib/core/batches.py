"""One path from data to batches of network input, streaming.

:func:`batches` takes any of the forms a reader's data comes in and yields
batches ``(B, C, H, W)`` of prepared input (with labels when asked), one
batch in memory at a time:

* a prepared tensor ``(N, C, H, W)``;
* a :class:`PreparedImages` (an :class:`~vizlib.ImageSet` prepared for a net,
  with the net's batched transform when it has one), or an ``ImageSet`` with
  ``net=`` given;
* a map-style ``Dataset`` of prepared images, ``(image, label)`` pairs or
  dicts (read in order);
* a ``DataLoader`` or any iterable of images, batches or pairs;
* a sequence of pictures (arrays, PIL images, :class:`~vizlib.core.examples.ExampleImage`)
  with ``net=`` given, each prepared by :func:`~vizlib.load_image`.

Images of different sizes in one batch get a clear error that names the
dataset positions and the sizes.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset

from .args import whole_number
from .data import ImageSet
from .errors import EmptyData
from .images import _unwrap, first_conv, load_image

__all__ = ["PreparedImages", "batches", "first_tensor"]


class PreparedImages(Dataset):
    """A labelled image set prepared for a network: ``(input tensor, label)`` items.

    Fashion-MNIST's 28x28 grey images go through the network's own transform:
    a bundled net's :class:`~vizlib.models.training.Preprocess` (batched, fast), or an
    ImageNet net's torchvision transform after upscaling to the network's input
    size and converting grey to RGB (the full-size nets take 3-channel 224x224
    inputs).

    Args:
        images: the images and their labels (:class:`~vizlib.ImageSet`).
        net: a :class:`~vizlib.Net` (its transform, input size, mean and std).

    Example:
        >>> data = PreparedImages(vl.fashion_mnist_sample(), vl.load("vgg16", "bundled"))  # doctest: +SKIP
        >>> data[0][0].shape, data.classes[data[0][1]]                                      # doctest: +SKIP
        (torch.Size([1, 32, 32]), 'Ankle boot')
    """

    def __init__(self, images: ImageSet, net: Any) -> None:
        model, transform = _unwrap(net)
        if model is None or transform is None:
            raise TypeError(
                "PreparedImages needs a vizlib Net (it carries the transform that prepares the images); "
                "for a bare nn.Module, prepare the images yourself and pass a tensor"
            )
        self.images = images
        self.net = net
        self.transform = transform
        self.labels = np.asarray(images.labels)
        self.classes = tuple(images.classes)
        conv = first_conv(model)
        self.channels = conv[1].in_channels if conv is not None else 3
        self.size = int(getattr(net, "input_size", 0) or 0)
        self.mean = tuple(getattr(net, "mean", ())) or None
        self.std = tuple(getattr(net, "std", ())) or None

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        return f"PreparedImages({len(self)} images of {self.images.source!r} for {getattr(self.net, 'arch', 'a net')})"

    def _one(self, i: int) -> torch.Tensor:
        from PIL import Image

        img = Image.fromarray(np.ascontiguousarray(self.images.images[i]))
        if self.size and min(img.size) < self.size:
            img = img.resize((self.size, self.size), Image.BILINEAR)
        return load_image(img, self.net, convert=True)[0]

    def batch(self, index: Sequence[int] | np.ndarray) -> torch.Tensor:
        """The prepared images at ``index``: ``(B, C, H, W)``."""
        index = np.asarray(index, dtype=np.int64)
        fast = getattr(self.transform, "batch", None)
        if callable(fast) and self.channels == 1 and isinstance(self.images.images, np.ndarray):
            return fast(torch.from_numpy(np.ascontiguousarray(self.images.images[index])))
        return torch.stack([self._one(int(i)) for i in index])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.batch([i])[0], int(self.labels[i])


def first_tensor(item: Any) -> torch.Tensor:
    """The image tensor of a data item: the item itself, the first of a pair, or a dict's image entry.

    Raises:
        TypeError: the item holds no tensor (a dataset without ``ToTensor()``).

    Example:
        >>> import torch
        >>> first_tensor((torch.zeros(1, 28, 28), 7)).shape
        torch.Size([1, 28, 28])
    """
    if isinstance(item, (tuple, list)) and item:
        item = item[0]
    elif isinstance(item, dict):
        for key in ("image", "images", "img", "pixel_values", "x"):
            if key in item:
                item = item[key]
                break
    if not isinstance(item, torch.Tensor):
        raise TypeError(
            f"expected image tensors (or (image, label) pairs) from the data, got {type(item).__name__}; "
            "use a transform that ends in ToTensor(), or pass net= so that pictures are prepared"
        )
    return item


def _label(item: Any) -> Any:
    if isinstance(item, (tuple, list)) and len(item) >= 2:
        lab = item[1]
        if isinstance(lab, torch.Tensor) and not lab.is_floating_point() and lab.ndim <= 1:
            return lab
        if isinstance(lab, (int, np.integer)):
            return int(lab)
    return None


def _stack(images: list[torch.Tensor], where: list[Any]) -> torch.Tensor:
    shapes = {tuple(x.shape) for x in images}
    if len(shapes) > 1:
        first = tuple(images[0].shape)
        odd = next(i for i, x in enumerate(images) if tuple(x.shape) != first)
        raise ValueError(
            f"the data mixes image sizes: item {where[0]} is {first} but item {where[odd]} is "
            f"{tuple(images[odd].shape)}. Give every image the network's input size (a transform with "
            "Resize and CenterCrop, or the net's own: vl.load(arch).transform)"
        )
    return torch.stack(images)


def _is_picture(item: Any) -> bool:
    if isinstance(item, np.ndarray) or hasattr(item, "getbands"):
        return True
    return hasattr(item, "image") and isinstance(getattr(item, "image"), np.ndarray)


def batches(data: Any, batch_size: int = 64, *, net: Any = None,
            labels: bool = False) -> Iterator[torch.Tensor] | Iterator[tuple[torch.Tensor, np.ndarray | None]]:
    """Batches ``(B, C, H, W)`` of prepared input from any kind of data, one at a time, in order.

    Args:
        data: see the module's docstring for the forms it takes.
        batch_size: images per batch (a loader's own batches pass as they are).
        net: a :class:`~vizlib.Net`, needed for data that is not prepared yet
            (an ``ImageSet``, pictures).
        labels: yield ``(batch, labels)`` pairs; ``labels`` is an int array, or
            ``None`` when the data carries none.

    Raises:
        ValueError: a tensor that is not ``(N, C, H, W)``, mixed image sizes.
        ArgumentError: a batch size that is not a whole number of at least 1
            (``0`` is not "auto"; raised at the call).
        EmptyData: the data holds no images (an empty tensor or dataset: raised
            at the first ``next``; data that yields nothing: at its end).
        TypeError: data of a kind this cannot read.

    Example:
        >>> [tuple(b.shape) for b in batches(torch.zeros(5, 1, 4, 4), 2)]
        [(2, 1, 4, 4), (2, 1, 4, 4), (1, 1, 4, 4)]
    """
    batch_size = whole_number(batch_size, "batch_size", at_least=1)
    gen = _nonempty(_batches(data, batch_size, net), data)
    if labels:
        return gen
    return (x for x, _ in gen)


def _nonempty(gen: Iterator[tuple[torch.Tensor, np.ndarray | None]],
              data: Any) -> Iterator[tuple[torch.Tensor, np.ndarray | None]]:
    """The batches, with a clear error when there are none at all."""
    given = 0
    for x, lab in gen:
        if len(x):
            given += len(x)
            yield x, lab
    if not given:
        shape = f" of shape {tuple(data.shape)}" if isinstance(data, torch.Tensor) else ""
        raise EmptyData(
            f"the data holds no images (a {type(data).__name__}{shape} gave none). Pass at least one image: "
            "a tensor (N, C, H, W) with N >= 1, a dataset that is not empty, or a list of pictures"
        )


def _batches(data: Any, batch_size: int, net: Any) -> Iterator[tuple[torch.Tensor, np.ndarray | None]]:
    if isinstance(data, ImageSet):
        if net is None:
            raise TypeError("an ImageSet holds raw images: prepare them for the network, "
                            "vizlib.PreparedImages(images, net), or pass net=")
        data = PreparedImages(data, net)
    if isinstance(data, PreparedImages):
        for s in range(0, len(data), batch_size):
            idx = np.arange(s, min(s + batch_size, len(data)))
            yield data.batch(idx), data.labels[idx]
        return
    if isinstance(data, torch.Tensor):
        if data.ndim != 4:
            raise ValueError(f"a tensor of images must be (N, C, H, W); this one is {tuple(data.shape)}")
        for x in data.split(batch_size):
            yield x, None
        return
    if isinstance(data, Dataset) and not isinstance(data, IterableDataset) and hasattr(data, "__len__"):
        items = ((i, data[i]) for i in range(len(data)))
    elif isinstance(data, (str, bytes)) or not hasattr(data, "__iter__"):
        raise TypeError(
            f"cannot read images from a {type(data).__name__}: pass a tensor (N, C, H, W), a vizlib.PreparedImages, "
            "a dataset or DataLoader of images, or a list of pictures with net="
        )
    else:
        items = enumerate(data)
    pending: list[torch.Tensor] = []
    where: list[Any] = []
    labs: list[Any] = []

    def flush() -> tuple[torch.Tensor, np.ndarray | None]:
        x = _stack(pending, where)
        lab = np.asarray([int(v) for v in labs]) if labs and all(v is not None for v in labs) else None
        pending.clear(), where.clear(), labs.clear()
        return x, lab

    for i, item in items:
        if _is_picture(item):
            if net is None:
                raise TypeError(f"item {i} is a picture, not a prepared tensor: pass net= so that it is prepared "
                                "with the network's own transform")
            pic = item.image if hasattr(item, "image") and isinstance(item.image, np.ndarray) else item
            x, lab = load_image(pic, net, convert=True)[0], getattr(item, "label", None)
        else:
            x, lab = first_tensor(item), _label(item)
        if x.ndim == 4:
            if pending:
                yield flush()
            if isinstance(lab, torch.Tensor) and lab.ndim == 1:
                yield x, lab.numpy()
            else:
                yield x, None
            continue
        if x.ndim != 3:
            raise ValueError(f"expected images (C, H, W) or batches (N, C, H, W) from the data; item {i} is "
                             f"{tuple(x.shape)}")
        pending.append(x)
        where.append(i)
        labs.append(int(lab) if lab is not None else None)
        if len(pending) == batch_size:
            yield flush()
    if pending:
        yield flush()
