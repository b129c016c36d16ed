"""The strongest activations of every feature map over a dataset (Zeiler & Fergus, Fig. 2).

Zeiler & Fergus show, for a feature map, "the top 9 activations ... across
the validation data", each projected down to pixel space with the deconvnet
and next to the image patch the unit sees. Here that is two steps:

1. :func:`top_activations` streams once over the data and keeps, for every
   feature map of a layer, the ``k`` strongest activations seen so far (by
   default at most one per image, the image's strongest point in that map):
   value, image index and position. The state is ``k`` entries per map, so
   memory does not grow with the dataset.
2. :meth:`TopActivations.collect` goes back for just the images it needs,
   records their forward passes, and cuts out each unit's receptive-field
   patch and its deconvnet projection on the same field, batched.

:func:`top_patches` does both. Data can be a tensor of images, a dataset of
``(image, ...)`` items, a ``DataLoader`` or any iterable of image batches.

Example::

    top = vl.top_patches(net, "c5", vl.ImageFiles("photos", net), channels=range(16))
    top.patch_images(3)        # 9 arrays ready for plt.imshow
    top.projection_images(3)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, SequentialSampler
from ..core.progress import tqdm

from .deconvnet import Deconvnet, _windows, normalize_projection
from ..core.args import index_list, whole_number
from ..core.errors import NoPositiveActivation
from ..core.device import on_device
from ..core.batches import batches, first_tensor
from ..core.hooks import Capture, preserved
from ..core.images import _unwrap, check_image, to_display
from ..core.layers import resolve_layer

__all__ = ["TopKMiner", "TopActivations", "top_activations", "top_patches"]


class TopKMiner:
    """Streaming top-``k`` per feature map: feed batches of activations, read the winners.

    Ties are broken towards the earlier image (and, within an image, the
    first position in row-major order), so the result does not depend on
    how the data is batched.

    Args:
        channels: number of feature maps (or dense units).
        k: how many to keep per map.
        distinct_images: keep at most one activation per image and map (the
            image's strongest point); otherwise the ``k`` strongest
            activations wherever they are.
        device: where the state lives.
        dtype: type of the kept values (that of the activations).

    Example:
        >>> miner = TopKMiner(channels=2, k=1)
        >>> miner.update(torch.tensor([[[[1.0, 5.0]], [[2.0, 0.0]]]]))
        >>> miner.values.tolist(), miner.position.tolist()
        ([[5.0], [2.0]], [[[0, 1]], [[0, 0]]])
    """

    def __init__(
        self,
        channels: int,
        k: int = 9,
        *,
        distinct_images: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        k = whole_number(k, "k", at_least=1)
        channels = whole_number(channels, "channels", at_least=1)
        dev = torch.device(device) if device is not None else torch.device("cpu")
        self.k = k
        self.distinct_images = distinct_images
        self._values = torch.full((channels, k), -torch.inf, device=dev, dtype=dtype)
        self._index = torch.full((channels, k), -1, dtype=torch.long, device=dev)
        self._yx = torch.zeros((channels, k, 2), dtype=torch.long, device=dev)
        self.seen = 0

    def update(self, act: torch.Tensor) -> None:
        """Take the activations of the next images: ``(N, C, H, W)`` or ``(N, C)``."""
        act = act.detach()
        if act.ndim == 2:
            act = act[:, :, None, None]
        n, c, _, w = act.shape
        if c != self._values.shape[0]:
            raise ValueError(f"expected activations with {self._values.shape[0]} maps, got {c}")
        flat = act.flatten(2).to(self._values.device, self._values.dtype)  # (N, C, L)
        first = self.seen
        self.seen += n
        if self.distinct_images:
            v, p = flat.max(-1)  # the first maximum of each image's map
            cand_v, cand_p = v.t(), p.t()  # (C, N)
            cand_i = torch.arange(first, first + n, device=v.device).expand(c, n)
        else:
            per_map = flat.transpose(0, 1).reshape(c, -1)  # (C, N*L): image-major, then row-major
            kk = min(self.k, per_map.shape[1])
            cand_v, pos = per_map.topk(kk, dim=1)
            order = torch.sort(pos, dim=1).indices  # ties: keep the earliest first
            cand_v, pos = cand_v.gather(1, order), pos.gather(1, order)
            cand_i, cand_p = first + pos // flat.shape[2], pos % flat.shape[2]
        cand_yx = torch.stack([cand_p // w, cand_p % w], -1)
        vals = torch.cat([self._values, cand_v], 1)
        idx = torch.cat([self._index, cand_i], 1)
        yx = torch.cat([self._yx, cand_yx], 1)
        keep = torch.sort(vals, dim=1, descending=True, stable=True).indices[:, : self.k]
        self._values, self._index = vals.gather(1, keep), idx.gather(1, keep)
        self._yx = yx.gather(1, keep.unsqueeze(-1).expand(-1, -1, 2))

    @property
    def values(self) -> torch.Tensor:
        """``(C, k)`` activation values, strongest first (``-inf`` where fewer than ``k`` images were seen)."""
        return self._values

    @property
    def image_index(self) -> torch.Tensor:
        """``(C, k)`` index of each image in the order the data gave them (``-1``: none)."""
        return self._index

    @property
    def position(self) -> torch.Tensor:
        """``(C, k, 2)`` ``(y, x)`` of each activation in its feature map."""
        return self._yx

    def state_bytes(self) -> int:
        """Bytes of state the miner keeps: the same for ten images or ten million."""
        return sum(t.numel() * t.element_size() for t in (self._values, self._index, self._yx))


@dataclass
class TopActivations:
    """The ``k`` strongest activations of every feature map of a layer over a dataset.

    Attributes:
        layer: the layer's label.
        k: activations kept per map.
        values: ``(C, k)`` strongest first.
        image_index: ``(C, k)`` position of the image in the data's order (``-1``: none).
        position: ``(C, k, 2)`` ``(y, x)`` in the feature map (``(0, 0)`` for dense units).
        n_images: how many images were seen.
        input_size: ``(H, W)`` of the images (of the first batch).
        channels: ``(M,)`` the maps whose patches and projections were collected.
        patches: ``(M, k, C_in, r, r)`` receptive-field patches (network input space, zero outside the image).
        projections: ``(M, k, C_in, r, r)`` deconvnet projections on the same fields.
        origin: ``(M, k, 2)`` top-left input coordinates of each field.
        mean, std: the network's normalisation, for display.

    Example:
        >>> from vizlib.models import alexnet_fmnist
        >>> best = top_activations(alexnet_fmnist(seed=0), "c5", torch.randn(10, 1, 64, 64), k=2, progress=False)
        >>> best.n_images, best.values.shape, best.patches is None
        (10, torch.Size([64, 2]), True)
    """

    layer: str
    k: int
    values: torch.Tensor
    image_index: torch.Tensor
    position: torch.Tensor
    n_images: int
    input_size: tuple[int, int] | None = None
    channels: torch.Tensor | None = None
    patches: torch.Tensor | None = None
    projections: torch.Tensor | None = None
    origin: torch.Tensor | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __repr__(self) -> str:
        got = "" if self.channels is None else f", patches for {len(self.channels)} maps"
        return (f"TopActivations({self.layer!r}, {self.values.shape[0]} maps × top {self.k} over "
                f"{self.n_images} images{got})")

    @property
    def empty(self) -> torch.Tensor:
        """``(C, k)`` True where there is nothing to show: no image, or no positive activation."""
        return (self.image_index < 0) | ~(self.values > 0)

    def strongest_maps(self, n: int | None = None) -> list[int]:
        """Feature maps ordered by their strongest activation (strongest first)."""
        order = self.values[:, 0].argsort(descending=True).tolist()
        return order if n is None else order[:n]

    # ------------------------------------------------------------------ collect

    def collect(
        self,
        model: Any,
        data: Any,
        channels: int | Sequence[int] | range | torch.Tensor | None = None,
        *,
        device: torch.device | str | None = None,
        batch_size: int = 16,
        progress: bool = True,
    ) -> "TopActivations":
        """Cut out the receptive-field patches and deconvnet projections of the top activations.

        Goes through the data again for just the images that hold a top
        activation (directly by index for tensors, datasets and unshuffled
        data loaders), records their forward passes (``batch_size`` images
        at a time) and projects all their top activations in batches.

        Args:
            model: the network the activations came from (module or Net).
            data: the same data, in the same order, as for mining.
            channels: which maps (default: all). Each map costs ``2·k`` patches
                of the receptive field's size.
            device: where to compute (default: where the model lives).
            batch_size: images recorded at a time.
            progress: show a progress bar.

        Returns:
            A new :class:`TopActivations` with ``patches``, ``projections``,
            ``origin`` and ``channels`` filled in.

        Raises:
            ValueError: the data cannot be gone through again in the same
                order (a one-shot iterator, a shuffling loader); a channel out of range.
            ArgumentError: channels or ``batch_size`` not whole numbers.
        """
        module, _ = _unwrap(model)
        label, path = resolve_layer(module, self.layer)
        n_maps = self.values.shape[0]
        batch_size = whole_number(batch_size, "batch_size", at_least=1)
        sel = torch.arange(n_maps) if channels is None else index_list(channels, "channel")
        bad = (sel < 0) | (sel >= n_maps)
        if bad.any():
            raise ValueError(f"channel {int(sel[bad][0])} is out of range: layer {label} has {n_maps} maps (0..{n_maps - 1})")
        img = self.image_index[sel].cpu()
        rows, ranks = (img >= 0).nonzero(as_tuple=True)
        needed = sorted(set(img[rows, ranks].tolist()))
        dn = Deconvnet(model, device=device)
        patches = projections = None
        origin = torch.zeros(len(sel), self.k, 2, dtype=torch.long)
        dense = False
        chunks = -(-len(needed) // batch_size)
        bar = tqdm(total=chunks, desc=f"collecting {label}", unit="batch", disable=not progress)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NoPositiveActivation)
            for ids, images in _fetch(data, needed, batch_size):
                local = {g: i for i, g in enumerate(ids)}
                these = torch.tensor([local.get(int(g), -1) for g in img[rows, ranks]], dtype=torch.long)
                pick = these >= 0
                r, q, li = rows[pick], ranks[pick], these[pick]
                ch = sel[r]
                pos = self.position[sel][r, q].cpu()
                rec = dn.record(images, [path], batch=True)
                act = rec.activation(path)
                if act.ndim == 2:
                    dense = True
                    sig = torch.zeros(len(ch), act.shape[1], dtype=act.dtype, device=act.device)
                    sig[torch.arange(len(ch)), ch] = act[li.to(act.device), ch.to(act.device)]
                    proj = rec.project_signal(path, sig, image=li, progress=False)
                else:
                    proj = rec.project_units(path, ch, pos[:, 0], pos[:, 1], li, progress=False)
                x = images.to(proj.pixels.device, proj.pixels.dtype)
                h, w = proj.pixels.shape[-2:]
                win = _windows(x, proj.origin[:, 0], proj.origin[:, 1], h, w, li)
                if patches is None:
                    shape = (len(sel), self.k, *proj.pixels.shape[1:])
                    patches = torch.zeros(shape, dtype=proj.pixels.dtype)
                    projections = torch.zeros(shape, dtype=proj.pixels.dtype)
                patches[r, q] = win.cpu()
                projections[r, q] = proj.pixels.cpu()
                origin[r, q] = proj.origin.cpu()
                bar.update(1)
        bar.close()
        if dense:
            origin.zero_()
        dead = int((~(self.values[sel, 0] > 0)).sum())
        if dead:
            warnings.warn(
                f"{dead} of the {len(sel)} maps of layer {label} asked for have no positive activation on any "
                f"of the {self.n_images} images: their patches and projections are zeros",
                NoPositiveActivation,
                stacklevel=2,
            )
        return replace(self, channels=sel, patches=patches, projections=projections, origin=origin)

    # ------------------------------------------------------------------ display

    def _boxes(self, row: int) -> list[tuple[int, int, int, int]]:
        assert self.patches is not None and self.origin is not None and self.input_size is not None
        r = self.patches.shape[-1]
        H, W = self.input_size
        out = []
        for oy, ox in self.origin[row].tolist():
            top, left = max(oy, 0), max(ox, 0)
            out.append((top - oy, left - ox, min(oy + r, H) - oy, min(ox + r, W) - ox))
        return out

    def _row(self, channel: int) -> int:
        if self.channels is None or self.patches is None:
            raise ValueError("no patches yet: call .collect(model, data) first (or use vizlib.top_patches)")
        hits = (self.channels == channel).nonzero()
        if not len(hits):
            raise ValueError(f"map {channel} was not collected; collected: {self.channels.tolist()[:20]}...")
        return int(hits[0, 0])

    def _images(self, channel: int, stack: torch.Tensor | None, clip: bool, show: Any) -> list[np.ndarray]:
        row = self._row(channel)
        assert stack is not None
        return [show(stack[row, i][:, t:b, l:r] if clip else stack[row, i]) for i, (t, l, b, r) in enumerate(self._boxes(row))]

    def patch_images(self, channel: int, *, clip: bool = True) -> list[np.ndarray]:
        """The ``k`` image patches of a map, ready for ``plt.imshow`` (clipped to the image)."""
        return self._images(channel, self.patches, clip, lambda p: to_display(p, self.mean, self.std))

    def projection_images(self, channel: int, *, clip: bool = True) -> list[np.ndarray]:
        """The ``k`` deconvnet projections of a map, scaled for display (grey is zero)."""
        return self._images(channel, self.projections, clip, normalize_projection)


# --------------------------------------------------------------------------- data


def _is_map_dataset(data: Any) -> bool:
    return isinstance(data, Dataset) and hasattr(data, "__getitem__") and hasattr(data, "__len__")


def _fetch(data: Any, needed: list[int], batch_size: int) -> Iterator[tuple[list[int], torch.Tensor]]:
    """The images at the given positions of the data's order, ``batch_size`` at a time."""
    _check_reiterable(data)
    getter = None
    if isinstance(data, torch.Tensor):
        getter = lambda i: data[i]  # noqa: E731
    elif isinstance(data, DataLoader):
        if isinstance(data.sampler, SequentialSampler) and _is_map_dataset(data.dataset):
            getter = lambda i: first_tensor(data.dataset[i])  # noqa: E731
    elif _is_map_dataset(data):
        getter = lambda i: first_tensor(data[i])  # noqa: E731
    if getter is not None:
        for s in range(0, len(needed), batch_size):
            ids = needed[s : s + batch_size]
            yield from _same_size(ids, [getter(i) for i in ids])
        return
    want = set(needed)
    ids: list[int] = []
    imgs: list[torch.Tensor] = []
    seen = 0
    for batch in batches(data, batch_size):
        for j in range(len(batch)):
            if seen + j in want:
                ids.append(seen + j)
                imgs.append(batch[j])
        seen += len(batch)
        while len(ids) >= batch_size:
            yield from _same_size(ids[:batch_size], imgs[:batch_size])
            ids, imgs = ids[batch_size:], imgs[batch_size:]
        if seen > needed[-1]:
            break
    if ids:
        yield from _same_size(ids, imgs)


def _check_reiterable(data: Any) -> None:
    """Refuse data that cannot be gone through twice in the same order (collecting goes back to it)."""
    if isinstance(data, DataLoader) and isinstance(data.sampler, RandomSampler):
        raise ValueError(
            "this DataLoader shuffles, so going through it again would give other images: "
            "mine and collect with shuffle=False"
        )
    if not isinstance(data, (torch.Tensor, Dataset, DataLoader)) and hasattr(data, "__iter__") and iter(data) is data:
        raise ValueError(
            "the data is a one-shot iterator (a generator), so the images holding the top activations cannot "
            "be fetched again: pass a tensor, a dataset or a DataLoader (shuffle=False), or a list of batches"
        )


def _same_size(ids: list[int], imgs: list[torch.Tensor]) -> Iterator[tuple[list[int], torch.Tensor]]:
    """Stack images, in groups of equal size."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for j, im in enumerate(imgs):
        groups.setdefault(tuple(im.shape), []).append(j)
    for members in groups.values():
        yield [ids[j] for j in members], torch.stack([imgs[j] for j in members])


# --------------------------------------------------------------------------- the functions


def top_activations(
    model: Any,
    layer: str | nn.Module,
    data: Any,
    k: int = 9,
    *,
    distinct_images: bool = True,
    device: torch.device | str | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> TopActivations:
    """The ``k`` strongest activations of every feature map of a layer, in one pass over the data.

    The forward pass of each batch stops at the layer; only ``k`` entries per
    map are kept, so memory does not depend on the number of images.

    Args:
        model: a network (``nn.Module``) or a :class:`~vizlib.Net`.
        layer: paper name, module path or module (conv, pool or dense).
        data: a tensor ``(N, C, H, W)``, a dataset of ``(image, ...)``
            items, a ``DataLoader`` or any iterable of image batches,
            prepared with the network's transform.
        k: activations per map (Zeiler & Fergus show 9).
        distinct_images: at most one activation per image and map.
        device: where to compute (default: where the model lives).
        batch_size: batch size for tensors and datasets.
        progress: show a progress bar.

    Returns:
        A :class:`TopActivations` (patches and projections come with
        :meth:`TopActivations.collect`).

    Raises:
        ArgumentError: ``k`` or ``batch_size`` not a whole number of at least 1; a layer given as an int.
        LayerError: an unknown layer.
        EmptyData: the data holds no images.
        ImageError, InputTooSmall: images that do not fit the network, or with NaN or infinite pixels
            (the message counts them and names the first image's position in the data).
        DeviceError: ``device`` not available here, or a model on the meta device.

    Example:
        >>> from vizlib.models import alexnet
        >>> top = top_activations(alexnet(seed=0), "c5", torch.randn(20, 3, 67, 67), k=3, progress=False)
        >>> top.values.shape, top.image_index.shape
        (torch.Size([256, 3]), torch.Size([256, 3]))
    """
    module, _ = _unwrap(model, need="top_activations")
    k = whole_number(k, "k", at_least=1, fix="Zeiler & Fergus show k=9")
    batch_size = whole_number(batch_size, "batch_size", at_least=1)
    label, path = resolve_layer(module, layer)
    module, dev = on_device(module, device)
    p = next(module.parameters(), None)
    dtype = p.dtype if p is not None else torch.float32
    miner: TopKMiner | None = None
    input_size: tuple[int, int] | None = None
    total = None
    try:
        total = len(data) if not isinstance(data, torch.Tensor) else -(-len(data) // batch_size)
        if _is_map_dataset(data) and not isinstance(data, DataLoader):
            total = -(-len(data) // batch_size)
    except TypeError:
        pass
    bar = tqdm(batches(data, batch_size), total=total, desc=f"top {k} of {label}", unit="batch",
               disable=not progress)
    with preserved(module), torch.no_grad(), Capture(module, [path], stop=True) as cap:
        try:
            for batch in bar:
                x = check_image(batch, module, batch=True, start=miner.seen if miner else 0).to(dev, dtype)
                if input_size is None:
                    input_size = (x.shape[2], x.shape[3])
                (output,) = cap.run(x).values()  # the pass ends at the layer
                if miner is None:
                    miner = TopKMiner(output.shape[1], k, distinct_images=distinct_images, device=output.device,
                                      dtype=output.dtype)
                miner.update(output)
        finally:
            bar.close()
    if miner is None:
        raise ValueError("the data gave no images")
    ext = getattr(model, "mean", None), getattr(model, "std", None)
    return TopActivations(
        layer=label, k=k, values=miner.values.cpu(), image_index=miner.image_index.cpu(),
        position=miner.position.cpu(), n_images=miner.seen, input_size=input_size,
        mean=tuple(ext[0]) if ext[0] is not None else None, std=tuple(ext[1]) if ext[1] is not None else None,
    )


def top_patches(
    model: Any,
    layer: str | nn.Module,
    data: Any,
    k: int = 9,
    channels: int | Sequence[int] | range | torch.Tensor | None = None,
    *,
    distinct_images: bool = True,
    device: torch.device | str | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> TopActivations:
    """Zeiler & Fergus, Fig. 2: the top ``k`` activations of each map with patches and projections.

    :func:`top_activations` followed by :meth:`TopActivations.collect`.

    Raises:
        as :func:`top_activations` (an empty dataset is refused there, before any patch is collected);
        ValueError: data that cannot be gone through twice (a generator, a shuffling loader), before mining.

    Example:
        >>> top = top_patches(net, "c2", vl.ImageFiles("photos", net), channels=range(8))   # doctest: +SKIP
        >>> top.patch_images(0)[0].shape                                                     # doctest: +SKIP
        (51, 51, 3)
    """
    _check_reiterable(data)  # before mining: collecting goes through the data again
    top = top_activations(model, layer, data, k, distinct_images=distinct_images, device=device,
                          batch_size=batch_size, progress=progress)
    return top.collect(model, data, channels, device=device, progress=progress)
