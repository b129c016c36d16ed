"""Comparing networks: what Yu et al. (§5, Figs. 5-6) and Zeiler & Fergus (§4.1, Fig. 6) measured.

Yu et al. set VGG-16 beside AlexNet; Zeiler & Fergus (and Vashishth §6) set
ZFNet beside AlexNet. This module turns their comparisons into numbers:

* **sparsity** (Yu Fig. 5): the share of exactly-zero activations of every
  convolution and pooling layer over a dataset, counted in one streaming pass
  (:func:`sparsity`; memory does not grow with the number of images);
* **reconstructions side by side** (Yu Fig. 6): whole-layer deconvnet
  reconstructions of one image through each network's layers, columns aligned
  by depth, with each network's top-5 predictions (:func:`side_by_side`); each
  network prepares the image with its own preprocessing, so nets with
  different input sizes and colour modes can be compared on one picture;
* **background removal** made measurable: the share of a reconstruction's
  energy inside the object (:func:`energy_inside`), per layer and network;
* **AlexNet against ZFNet**: first-layer filters, their radially averaged
  spectra and frequency bands (:func:`filter_spectrum`), dead filters
  (:func:`dead_filters`), aliasing in layer-2 projections
  (:func:`grid_contrast`), accuracy (:func:`net_accuracy`), and whether one
  filter dominates without Zeiler's RMS renormalisation (:func:`rms_dominance`);
* **claims**: a :class:`Claim` holds a paper's claim, the numbers this run
  measured and a rule over them; its verdict is computed, never typed.

Example::

    import vizlib as vl
    nets, missing = vl.load_nets(("alexnet", "vgg16"))
    sp = {a: vl.sparsity(n, vl.sparsity_data(n.model_set, 300)) for a, n in nets.items()}
    claim = vl.Claim("Yu §5", "high layers of VGG-16 are sparser than AlexNet's",
                     {"vgg16": sp["vgg16"].mean_share(sp["vgg16"].high_layers),
                      "alexnet": sp["alexnet"].mean_share(sp["alexnet"].high_layers)},
                     "vgg16 > alexnet")
    print(claim)
"""

from __future__ import annotations

import ast
import copy
import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn
from tqdm.auto import tqdm

from .deconvnet import Deconvnet, normalize_projection
from ..core.errors import NoPositiveActivation
from ..core.device import resolve_device
from ..core.hooks import preserved
from ..core.errors import ImageError
from ..core.images import _to_pil, _unwrap, check_image, first_conv, to_display
from ..models.nets import ARCHITECTURES
from ..core.layers import layer_names, resolve_layer
from ..core.tables import Table

from ..core.errors import NoObjectRegion

__all__ = [
    "NET_LABELS",
    "VASHISHTH_CALTECH101_ACCURACY",
    "DEMO_OBJECT_BOXES",
    "NoObjectRegion",
    "ObjectImage",
    "Sparsity",
    "NetView",
    "SideBySide",
    "FilterSpectrum",
    "FilterRMS",
    "DeadFilters",
    "Accuracy",
    "Claim",
    "load_nets",
    "load_renorm_pair",
    "box_mask",
    "garment_mask",
    "demo_object_images",
    "fashion_object_images",
    "comparison_images",
    "sparsity_data",
    "prepare",
    "prepared_batches",
    "transform_mask",
    "conv_pool_layers",
    "stage_layers",
    "sparsity",
    "sparsity_table",
    "top_predictions",
    "side_by_side",
    "energy_inside",
    "energy_by_stage",
    "energy_table",
    "predictions_table",
    "first_layer_filters",
    "filter_spectrum",
    "rms_dominance",
    "dead_filters",
    "whole_layer",
    "first_stride",
    "grid_contrast",
    "net_accuracy",
    "claims_table",
    "plot_sparsity",
    "plot_side_by_side",
    "plot_stage",
    "plot_energy",
    "plot_filters",
    "plot_spectra",
    "plot_rms",
    "plot_layer_projections",
    "reconstruction_explorer",
]

#: Vashishth §6.2: test accuracy of AlexNet and ZFNet trained on Caltech-101 with one recipe.
VASHISHTH_CALTECH101_ACCURACY: dict[str, float] = {"alexnet": 0.7406, "zfnet": 0.7469}

#: Display names of the architectures.
NET_LABELS: dict[str, str] = {"alexnet": "AlexNet", "zfnet": "ZFNet", "vgg16": "VGG-16"}

#: The object in each demo photo (``vizlib.DEMO_IMAGES``) as a box ``(top, left, bottom, right)``
#: in the photo's own pixels (bottom and right exclusive), drawn by hand around the thing the
#: photo's ImageNet class names: the cat, the cup, the rocket, the crash helmet, the motorcycle,
#: the tripod.
DEMO_OBJECT_BOXES: dict[str, tuple[int, int, int, int]] = {
    "chelsea": (0, 20, 300, 400),
    "coffee": (15, 170, 330, 425),
    "rocket": (125, 295, 410, 345),
    "astronaut": (340, 275, 512, 512),
    "stereo_motorcycle": (75, 90, 455, 690),
    "camera": (185, 225, 512, 410),
}

_DEMO_ORDER = ("coffee", "stereo_motorcycle", "camera", "astronaut", "rocket", "chelsea")
_FASHION_ORDER = (0, 1, 7, 8, 9, 5, 2, 3, 4, 6)



class _Stop(Exception):
    """Ends a forward pass once the layers needed are done."""


# --------------------------------------------------------------------------- networks


def load_nets(
    archs: Sequence[str] = ARCHITECTURES, model_set: str | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Load several networks from one model set, keeping going when one cannot be had.

    Args:
        archs: architecture keys (``"alexnet"``, ``"zfnet"``, ``"vgg16"``).
        model_set: the set (default: the reader's, ``VIZLIB_MODEL_SET``).

    Returns:
        ``(nets, missing)``: arch -> :class:`~vizlib.Net` for those loaded,
        arch -> the reason for each one that could not be (ZFNet's ImageNet
        weights, say, when ``pytorchcv`` is not installed).

    Example:
        >>> nets, missing = load_nets(("alexnet",), "random")
        >>> list(nets), missing
        (['alexnet'], {})
    """
    from ..core.errors import WeightsUnavailable
    from ..models.model_sets import load

    nets: dict[str, Any] = {}
    missing: dict[str, str] = {}
    for arch in archs:
        try:
            nets[arch] = load(arch, model_set)
        except WeightsUnavailable as exc:
            missing[arch] = str(exc)
    return nets, missing


def load_renorm_pair(arch: str = "alexnet") -> tuple[dict[str, Any], str]:
    """The bundled net trained with Zeiler's filter renormalisation and the one trained without.

    Returns:
        ``({"with": Net, "without": Net}, "")`` when both checkpoints ship, else
        ``({}, reason)``. Both come from the bundled set whatever the reader's
        set is: only it holds a net trained without renormalisation.
    """
    try:
        from ..models.bundled import bundled_checkpoint_available, load_bundled
        from ..core.errors import CheckpointError
    except ImportError as exc:  # pragma: no cover - the bundled set is part of vizlib
        return {}, f"the bundled set cannot be imported ({exc})"
    if not (bundled_checkpoint_available(arch) and bundled_checkpoint_available(arch, "norenorm")):
        return {}, (f"the bundled {arch} checkpoints with and without renormalisation do not both ship "
                    "with this copy (vizlib/checkpoints)")
    try:
        return {"with": load_bundled(arch), "without": load_bundled(arch, variant="norenorm")}, ""
    except CheckpointError as exc:
        return {}, str(exc)


# --------------------------------------------------------------------------- images and object regions


@dataclass
class ObjectImage:
    """A picture with the region of its object (or ``None`` when it has none).

    Attributes:
        name: what it shows, for titles.
        image: ``H x W`` or ``H x W x 3`` uint8.
        mask: ``H x W`` bool, True on the object; ``None``: no region known.
        label: the class it belongs to (a Fashion-MNIST or ImageNet class name).
    """

    name: str
    image: np.ndarray
    mask: np.ndarray | None
    label: str = ""

    def __repr__(self) -> str:
        region = f"object on {self.mask.mean():.0%} of the pixels" if self.mask is not None else "no object region"
        return f"ObjectImage({self.name!r}, {self.image.shape}, {region})"


def box_mask(shape: Sequence[int], box: Sequence[int]) -> np.ndarray:
    """A boolean mask of ``shape[:2]`` that is True inside ``box = (top, left, bottom, right)``.

    Raises:
        NoObjectRegion: the box is empty or lies outside the image.

    Example:
        >>> box_mask((4, 5), (1, 1, 3, 4)).sum()
        np.int64(6)
    """
    h, w = int(shape[0]), int(shape[1])
    top, left, bottom, right = (int(v) for v in box)
    top, left, bottom, right = max(top, 0), max(left, 0), min(bottom, h), min(right, w)
    if bottom <= top or right <= left:
        raise NoObjectRegion(
            f"the box {tuple(box)} holds no pixel of a {h}×{w} image; give (top, left, bottom, right) "
            f"with 0 <= top < bottom <= {h} and 0 <= left < right <= {w}"
        )
    m = np.zeros((h, w), dtype=bool)
    m[top:bottom, left:right] = True
    return m


def garment_mask(image: np.ndarray, level: int = 25) -> np.ndarray:
    """The garment's own pixels in a Fashion-MNIST image: those brighter than ``level`` on the black background.

    The default leaves out the faint speckle some images carry around the
    garment (chapter 3 draws the line at the same grey level).

    Raises:
        NoObjectRegion: no pixel is brighter than ``level`` (a blank image).

    Example:
        >>> garment_mask(np.array([[0, 3], [30, 200]], np.uint8)).tolist()
        [[False, False], [True, True]]
    """
    arr = np.asarray(image)
    if arr.ndim == 3:
        arr = arr.max(axis=-1)
    m = arr > level
    if not m.any():
        raise NoObjectRegion(
            f"the image has no pixel brighter than {level}: there is no garment to mark. "
            "Pick another image, or give its object region yourself (vizlib.box_mask)"
        )
    return m


def demo_object_images(names: Sequence[str] | None = None, n: int | None = None) -> list[ObjectImage]:
    """The demo photos with their shipped object boxes (:data:`DEMO_OBJECT_BOXES`).

    Args:
        names: which photos (default: all, the clearest objects first).
        n: at most this many.
    """
    from ..core.data import demo_image

    out = []
    for name in (names or _DEMO_ORDER)[: n if n is not None else None]:
        d, img = demo_image(name)
        box = DEMO_OBJECT_BOXES.get(name)
        out.append(ObjectImage(name, img, box_mask(img.shape, box) if box else None, d.category))
    return out


def fashion_object_images(n: int = 4, data: Any = None) -> list[ObjectImage]:
    """``n`` Fashion-MNIST images of different classes (the first of each), masked by :func:`garment_mask`.

    Args:
        n: how many (at most 10).
        data: an :class:`~vizlib.ImageSet` (default: the committed sample).
    """
    from ..core.data import fashion_mnist_sample

    data = data if data is not None else fashion_mnist_sample()
    out = []
    for c in _FASHION_ORDER[: max(0, min(n, 10))]:
        hits = np.flatnonzero(data.labels == c)
        if len(hits) == 0:
            continue
        i = int(hits[0])
        idx = int(data.indices[i]) if data.indices is not None else i
        img = np.asarray(data.images[i])
        out.append(ObjectImage(f"{data.classes[c]} (test image {idx})", img, garment_mask(img), data.classes[c]))
    return out


def comparison_images(model_set: str, n: int = 4) -> list[ObjectImage]:
    """The chapter's pictures for a model set: Fashion-MNIST for bundled, the demo photos otherwise."""
    return fashion_object_images(n) if model_set == "bundled" else demo_object_images(n=n)


def sparsity_data(model_set: str, n: int) -> Any:
    """What sparsity is counted over: the committed Fashion-MNIST sample (first ``n``) for bundled,
    the demo photos (first ``n``) otherwise."""
    if model_set == "bundled":
        from ..core.data import fashion_mnist_sample

        s = fashion_mnist_sample()
        return s.subset(slice(0, min(n, len(s))))
    return [o.image for o in demo_object_images(n=n)]


def prepare(net: Any, image: Any) -> torch.Tensor:
    """One picture as ``net``'s input ``(1, C, H, W)``, with the net's own preprocessing.

    The picture is first brought to the colour mode the network takes
    (greyscale for the bundled nets, RGB for the ImageNet ones), then the net's
    transform sizes and normalises it, so one picture can go to nets with
    different input sizes and channels.

    Args:
        net: a :class:`~vizlib.Net`.
        image: a PIL image, an ``H x W`` / ``H x W x 3`` array, an
            :class:`ObjectImage`, or a prepared tensor (only checked).

    Raises:
        ImageError: not an image, or the net has no transform to prepare it with.
    """
    model, transform = _unwrap(net)
    if isinstance(image, ObjectImage):
        image = image.image
    if isinstance(image, torch.Tensor):
        return check_image(image, model)
    if transform is None:
        raise ImageError(
            "this network comes without a transform, so a picture cannot be prepared for it: pass a vizlib Net "
            "(vl.load(arch)) or a tensor already prepared"
        )
    conv = first_conv(model) if model is not None else None
    want = conv[1].in_channels if conv is not None else 3
    pil = _to_pil(image).convert("L" if want == 1 else "RGB")
    x = transform(pil)
    return check_image(x, model)


def transform_mask(net: Any, mask: np.ndarray) -> torch.Tensor:
    """An object mask in the original picture's pixels, carried into ``net``'s input: ``(H, W)`` bool.

    The mask goes through the net's own transform as a black-and-white picture
    (the same resizing and cropping the image gets); its normalisation is
    undone with the transforms of an all-black and an all-white picture, and
    the result is thresholded at one half.

    Raises:
        NoObjectRegion: the mask is ``None`` or empty, or the net's crop cuts the object out.
    """
    if mask is None:
        raise NoObjectRegion("the image has no object region; give one (vizlib.box_mask / vizlib.garment_mask)")
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2 or not m.any():
        raise NoObjectRegion(f"the object mask must be a non-empty H×W boolean array; it is {m.shape} with "
                             f"{int(m.sum())} object pixels")
    img = m.astype(np.uint8) * 255
    t = prepare(net, img)[0].double()
    t0 = prepare(net, np.zeros_like(img))[0].double()
    t1 = prepare(net, np.full_like(img, 255))[0].double()
    span = t1 - t0
    frac = ((t - t0) / torch.where(span.abs() > 1e-12, span, torch.ones_like(span))).mean(0)
    out = frac > 0.5
    if not out.any():
        raise NoObjectRegion("the network's preprocessing (its crop) leaves none of the object region in its input")
    return out


# --------------------------------------------------------------------------- layers


_CONV = re.compile(r"^c(\d+)(?:_(\d+))?$")
_POOL = re.compile(r"^p\d+$")


def conv_pool_layers(model: nn.Module) -> list[str]:
    """The paper names of the convolution and pooling layers, in forward order (Yu Fig. 5's layers)."""
    return [n for n in layer_names(model) if _CONV.match(n) or _POOL.match(n)]


def stage_layers(model: nn.Module, stages: int = 5) -> list[str]:
    """One convolution layer per depth stage, so that different nets line up by depth (Yu Fig. 6).

    Convolutions are grouped as their names group them (VGG's ``c3_1..c3_3``
    form stage 3; AlexNet's ``c3`` alone is stage 3) and the last of each group
    stands for it. AlexNet, ZFNet and VGG-16 all have five stages.

    Example:
        >>> from vizlib.models import vgg16, alexnet
        >>> stage_layers(vgg16()), stage_layers(alexnet())
        (['c1_2', 'c2_2', 'c3_3', 'c4_3', 'c5_3'], ['c1', 'c2', 'c3', 'c4', 'c5'])
    """
    groups: dict[str, str] = {}
    for n in layer_names(model):
        m = _CONV.match(n)
        if m:
            groups[m.group(1)] = n
    last = list(groups.values())
    if not last:
        raise ValueError("the model carries no paper layer names (c1, c1_1, ...); build it with vizlib")
    if len(last) <= stages:
        return last
    pick = np.linspace(0, len(last) - 1, stages).round().astype(int)
    return [last[i] for i in pick]


# --------------------------------------------------------------------------- sparsity (Yu Fig. 5)


@dataclass
class Sparsity:
    """Zero activations per layer over a dataset (Yu et al., Fig. 5).

    Attributes:
        name: the network's label.
        layers: the layers counted, in forward order.
        zeros: layer -> number of activations exactly zero.
        total: layer -> number of activations.
        map_zeros: layer -> ``(C,)`` int64 zeros per feature map.
        map_total: layer -> activations per feature map (images × positions).
        images: images counted.
    """

    name: str
    layers: list[str]
    zeros: dict[str, int]
    total: dict[str, int]
    map_zeros: dict[str, torch.Tensor]
    map_total: dict[str, int]
    images: int

    @property
    def share(self) -> dict[str, float]:
        """layer -> share of exactly-zero activations."""
        return {layer: self.zeros[layer] / self.total[layer] for layer in self.layers}

    @property
    def pools(self) -> list[str]:
        return [layer for layer in self.layers if _POOL.match(layer)]

    @property
    def convs(self) -> list[str]:
        return [layer for layer in self.layers if _CONV.match(layer)]

    @property
    def high_layers(self) -> list[str]:
        """The layers after the last-but-one pooling layer (AlexNet: c3-p5; VGG-16: c5_1-p5)."""
        pools = [i for i, layer in enumerate(self.layers) if _POOL.match(layer)]
        start = pools[-2] + 1 if len(pools) >= 2 else len(self.layers) // 2
        return self.layers[start:]

    def mean_share(self, layers: Iterable[str] | None = None) -> float:
        """The mean of the layers' shares (each layer weighs the same)."""
        names = list(layers) if layers is not None else self.layers
        s = self.share
        return float(np.mean([s[n] for n in names]))

    def pool_drops(self) -> list[tuple[str, str, float, float]]:
        """For each pooling layer: ``(layer before, pool, share before, share after)``."""
        s = self.share
        out = []
        for i, layer in enumerate(self.layers):
            if _POOL.match(layer) and i > 0:
                out.append((self.layers[i - 1], layer, s[self.layers[i - 1]], s[layer]))
        return out

    def dead_maps(self, layer: str) -> list[int]:
        """Feature maps of ``layer`` that are zero at every position of every image counted."""
        if layer not in self.map_zeros:
            raise KeyError(f"layer {layer!r} was not counted; count it: sparsity(net, data, [..., {layer!r}])")
        return torch.nonzero(self.map_zeros[layer] == self.map_total[layer]).flatten().tolist()

    def state_bytes(self) -> int:
        """Bytes of counting state (independent of the number of images)."""
        return sum(t.numel() * t.element_size() for t in self.map_zeros.values()) + 16 * 2 * len(self.layers)

    def table(self) -> Table:
        rows = [[self.name, layer, "pool" if _POOL.match(layer) else "conv", self.zeros[layer], self.total[layer],
                 round(self.share[layer], 4)] for layer in self.layers]
        return Table(["network", "layer", "kind", "zero activations", "activations", "share zero"], rows,
                     f"{self.name}: exactly-zero activations over {self.images} images")

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v:.3f}" for k, v in self.share.items())
        return f"Sparsity({self.name!r}, {self.images} images: {body})"


def prepared_batches(net: Any, data: Any, batch_size: int = 32) -> Iterator[torch.Tensor]:
    """Batches ``(B, C, H, W)`` of ``net``'s input from any kind of data, one batch at a time.

    ``data`` may be an :class:`~vizlib.ImageSet` (uint8 images, prepared with
    the net's transform: a whole chunk at once when the transform can), a
    sequence of pictures or :class:`ObjectImage` (each prepared), a prepared
    tensor ``(N, C, H, W)``, a map-style dataset of prepared images or
    ``(image, label)`` pairs, or any iterable of prepared images / batches /
    ``(images, labels)`` pairs (a ``DataLoader``).
    """
    from ..core.data import ImageSet

    model, transform = _unwrap(net)
    if isinstance(data, ImageSet):
        chunker = getattr(transform, "batch", None)
        for s in range(0, len(data), batch_size):
            imgs = data.images[s : s + batch_size]
            if chunker is not None and first_conv(model) is not None and first_conv(model)[1].in_channels == 1:
                yield chunker(torch.from_numpy(np.ascontiguousarray(imgs)))
            else:
                yield torch.cat([prepare(net, im) for im in imgs])
        return
    if isinstance(data, torch.Tensor):
        if data.ndim != 4:
            raise ValueError(f"a tensor of images must be (N, C, H, W); this one is {tuple(data.shape)}")
        yield from data.split(batch_size)
        return
    if isinstance(data, torch.utils.data.Dataset) and not isinstance(data, torch.utils.data.IterableDataset):
        dataset = data
        data = (dataset[i] for i in range(len(dataset)))  # a map-style dataset, in order
    pending: list[torch.Tensor] = []
    for item in data:
        if isinstance(item, (tuple, list)) and item and isinstance(item[0], torch.Tensor):
            item = item[0]
        if isinstance(item, torch.Tensor) and item.ndim == 4:
            if pending:
                yield torch.cat(pending)
                pending = []
            yield item
            continue
        x = item.unsqueeze(0) if isinstance(item, torch.Tensor) and item.ndim == 3 else prepare(net, item)
        pending.append(x)
        if len(pending) == batch_size:
            yield torch.cat(pending)
            pending = []
    if pending:
        yield torch.cat(pending)


def sparsity(
    net: Any,
    data: Any,
    layers: Sequence[str] | None = None,
    *,
    name: str | None = None,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> Sparsity:
    """Count exactly-zero activations of every conv and pooling layer over a dataset (Yu Fig. 5).

    One pass over the data; each batch's activations are counted as they are
    produced and then dropped (the forward pass stops after the last layer
    counted), so memory holds one batch and a few integers per feature map,
    whatever the number of images.

    Args:
        net: a :class:`~vizlib.Net` or an ``nn.Module``.
        data: see :func:`prepared_batches` (with a bare module: prepared tensors).
        layers: paper names or module paths (default: every convolution, as
            the rectified maps, and every pooling layer).
        name: label for tables and plots (default: the architecture's).
        batch_size: images per forward pass.
        device: where to compute (default: where the model lives).
        progress: show a progress bar.

    Returns:
        A :class:`Sparsity` with exact integer counts.

    Raises:
        KeyError: an unknown layer. ValueError: no images in the data.

    Example:
        >>> from vizlib.models import alexnet_fmnist
        >>> s = sparsity(alexnet_fmnist(seed=0), torch.randn(8, 1, 64, 64), progress=False)
        >>> s.layers[:3], s.images
        (['c1', 'p1', 'c2'], 8)
    """
    model, _ = _unwrap(net)
    if model is None:
        raise TypeError("sparsity needs a network (a vizlib Net or an nn.Module)")
    names = list(layers) if layers is not None else conv_pool_layers(model)
    if not names:
        raise ValueError("no layers to count: name them (layers=['c1', ...]) or use a model vizlib named")
    resolved = [resolve_layer(model, layer) for layer in names]
    label = name or NET_LABELS.get(getattr(model, "vizlib_arch", ""), getattr(model, "vizlib_arch", "network"))
    dev = resolve_device(device, model)
    work = model if dev == resolve_device(None, model) else copy.deepcopy(model).to(dev)
    p = next(work.parameters(), None)
    dtype = p.dtype if p is not None else torch.float32

    zeros: dict[str, torch.Tensor] = {}
    per_map: dict[str, int] = {}
    seen: set[str] = set()

    def hook_for(lab: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            z = (output == 0)
            counts = z.sum(dim=(0, *range(2, z.ndim))) if z.ndim > 2 else z.sum(dim=0)
            zeros[lab] = zeros[lab] + counts if lab in zeros else counts.to(torch.int64)
            per_map[lab] = per_map.get(lab, 0) + int(output[:, 0].numel())
            seen.add(lab)
            if len(seen) == len(resolved):
                raise _Stop

        return hook

    from torch.utils.data import DataLoader

    try:
        total = len(data) if isinstance(data, DataLoader) else -(-len(data) // batch_size)
    except TypeError:
        total = None
    n_images = 0
    handles = []
    bar = tqdm(prepared_batches(net, data, batch_size), total=total, desc=f"sparsity of {label}", unit="batch",
               disable=not progress)
    with preserved(work), torch.no_grad():
        try:
            for lab, path in resolved:
                handles.append(work.get_submodule(path).register_forward_hook(hook_for(lab)))
            for batch in bar:
                x = check_image(batch, work, batch=True).to(dev, dtype)
                seen.clear()
                try:
                    work(x)
                except _Stop:
                    pass
                if len(seen) != len(resolved):
                    missed = [lab for lab, _ in resolved if lab not in seen]
                    raise ValueError(f"layer(s) {', '.join(missed)} were not reached by the forward pass")
                n_images += x.shape[0]
                del x, batch
        finally:
            for h in handles:
                h.remove()
            bar.close()
    if n_images == 0:
        raise ValueError("the data gave no images to count")
    labels = [lab for lab, _ in resolved]
    map_zeros = {lab: zeros[lab].cpu() for lab in labels}
    return Sparsity(
        name=label,
        layers=labels,
        zeros={lab: int(map_zeros[lab].sum()) for lab in labels},
        total={lab: per_map[lab] * len(map_zeros[lab]) for lab in labels},
        map_zeros=map_zeros,
        map_total=dict(per_map),
        images=n_images,
    )


def sparsity_table(results: Iterable[Sparsity]) -> Table:
    """Every counted layer of every network: zeros, activations, share."""
    rows: list[list[Any]] = []
    for r in results:
        rows += r.table().rows
    return Table(["network", "layer", "kind", "zero activations", "activations", "share zero"], rows,
                 "Exactly-zero activations per layer (Yu Fig. 5)")


# --------------------------------------------------------------------------- side by side (Yu Fig. 6)


def top_predictions(net: Any, image: Any, k: int = 5, *, device: torch.device | str | None = None
                    ) -> list[tuple[str, float]]:
    """The ``k`` most probable classes of one picture: ``[(category, probability), ...]``."""
    model, _ = _unwrap(net)
    x = prepare(net, image)
    dev = resolve_device(device, model)
    work = model if dev == resolve_device(None, model) else copy.deepcopy(model).to(dev)
    with preserved(work), torch.no_grad():
        logits = work(x.to(dev))
    return _topk(logits[0], list(getattr(net, "categories", [])), k)


def _topk(logits: torch.Tensor, categories: list[str], k: int) -> list[tuple[str, float]]:
    prob = logits.double().softmax(-1).cpu()
    vals, idx = prob.topk(min(k, len(prob)))
    return [(categories[i] if i < len(categories) else str(i), float(v)) for v, i in zip(vals.tolist(), idx.tolist())]


@dataclass
class NetView:
    """One network's row of a side-by-side figure.

    Attributes:
        name: the network's label.
        input: the prepared input as an array for display.
        layers: the layer shown at each stage.
        pixels: layer -> whole-layer reconstruction ``(C, H, W)`` in the net's input space.
        empty: layer -> True where the layer had nothing positive to project.
        predictions: the top classes with their probabilities.
        mask: the object region in the net's input ``(H, W)``, or ``None``.
        energy: layer -> share of the reconstruction's energy inside the object (NaN when empty).
        area: share of the input the object covers (``None`` without a mask).
    """

    name: str
    input: np.ndarray
    layers: list[str]
    pixels: dict[str, torch.Tensor]
    empty: dict[str, bool]
    predictions: list[tuple[str, float]]
    mask: torch.Tensor | None = None
    energy: dict[str, float] = field(default_factory=dict)
    area: float | None = None

    def display(self, layer: str) -> np.ndarray:
        return normalize_projection(self.pixels[layer])


@dataclass
class SideBySide:
    """One picture through several networks: reconstructions by stage and predictions (Yu Fig. 6)."""

    image: str
    views: list[NetView]

    @property
    def stages(self) -> int:
        return max(len(v.layers) for v in self.views)

    def has_mask(self) -> bool:
        return all(v.mask is not None for v in self.views)


def side_by_side(
    nets: Mapping[str, Any],
    image: Any,
    *,
    mask: np.ndarray | None = None,
    layers: Mapping[str, Sequence[str]] | None = None,
    k: int = 5,
    name: str | None = None,
    device: torch.device | str | None = None,
) -> SideBySide:
    """Whole-layer reconstructions of one picture through several networks, aligned by depth (Yu Fig. 6).

    Each network prepares the picture with its own transform (so a 32×32
    greyscale VGG-style net and a 224×224 RGB AlexNet can look at the same
    photo); one forward pass per network records its switches and its class
    scores; the deconvnet then projects each stage's whole layer to pixels.

    Args:
        nets: label -> :class:`~vizlib.Net`.
        image: a picture (array, PIL image) or an :class:`ObjectImage` (its mask is used).
        mask: the object region in the picture's own pixels (``H x W`` bool), if known.
        layers: label -> layers to show (default: :func:`stage_layers`).
        k: how many predictions to keep.
        name: the picture's name for titles.
        device: where to compute (default: where each model lives).

    Returns:
        A :class:`SideBySide`; with a mask, each view carries the energy share
        inside the object at each layer.

    Raises:
        NoObjectRegion: a mask was given but a net's crop cuts the object out.
    """
    if isinstance(image, ObjectImage):
        mask = image.mask if mask is None else mask
        name = name or image.name
        image = image.image
    views = []
    for label, net in nets.items():
        model, _ = _unwrap(net)
        chosen = list(layers[label]) if layers is not None and label in layers else stage_layers(model)
        x = prepare(net, image)
        out_layer = layer_names(model)[-1]
        dn = Deconvnet(model, device=device)
        rec = dn.record(x, [*chosen, out_layer])
        pixels: dict[str, torch.Tensor] = {}
        empty: dict[str, bool] = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NoPositiveActivation)
            for layer in chosen:
                p = rec.project(layer)
                pixels[p.layer] = p.pixels[0].detach().cpu()
                empty[p.layer] = bool(p.empty[0])
        logits = rec.activation(out_layer)[0]
        preds = _topk(logits, list(getattr(net, "categories", [])), k)
        view = NetView(label, to_display(x[0], getattr(net, "mean", None), getattr(net, "std", None)),
                       list(pixels), pixels, empty, preds)
        if mask is not None:
            m = transform_mask(net, mask)
            view.mask = m
            view.area = float(m.double().mean())
            view.energy = {layer: energy_inside(px, m) for layer, px in pixels.items()}
        views.append(view)
    return SideBySide(name or "image", views)


def energy_inside(visualisation: Any, mask: Any) -> float:
    """The share of a visualisation's energy that lies inside the object's region.

    Energy is the squared value summed over channels, pixel by pixel; the
    share is the energy on the mask's pixels divided by the energy of the
    whole visualisation. A visualisation spread evenly gives the mask's share
    of the area; one that kept only the object gives 1.

    Args:
        visualisation: ``(H, W)``, ``(C, H, W)`` or ``(1, C, H, W)`` (tensor or array).
        mask: ``(H, W)`` bool, True on the object.

    Returns:
        A share in [0, 1]; NaN when the visualisation is zero everywhere (nothing to share).

    Raises:
        NoObjectRegion: no mask, or an empty one.
        ValueError: the mask's size differs from the visualisation's.

    Example:
        >>> v = torch.tensor([[3.0, 0.0], [0.0, 4.0]])
        >>> energy_inside(v, torch.tensor([[True, False], [False, False]]))
        0.36
    """
    if mask is None:
        raise NoObjectRegion(
            "this image has no object region, and the energy share needs one: give a mask "
            "(vizlib.box_mask(image.shape, (top, left, bottom, right)), or vizlib.garment_mask for Fashion-MNIST), "
            "or leave the image out of the energy comparison"
        )
    v = torch.as_tensor(np.asarray(visualisation) if not isinstance(visualisation, torch.Tensor) else visualisation)
    m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask).to(torch.bool).cpu()
    if v.ndim == 4:
        if v.shape[0] != 1:
            raise ValueError(f"give one visualisation at a time, not a batch of {v.shape[0]}")
        v = v[0]
    if v.ndim == 2:
        v = v.unsqueeze(0)
    if v.ndim != 3:
        raise ValueError(f"a visualisation must be (H, W), (C, H, W) or (1, C, H, W); this one is {tuple(v.shape)}")
    if m.ndim != 2 or tuple(m.shape) != tuple(v.shape[-2:]):
        raise ValueError(
            f"the mask is {tuple(m.shape)} but the visualisation is {tuple(v.shape[-2:])}: carry the mask into "
            "the network's input first (vizlib.transform_mask(net, mask))"
        )
    if not bool(m.any()):
        raise NoObjectRegion("the object mask is empty (no pixel marked): there is no object to measure inside")
    e = v.detach().to("cpu", torch.float64).pow(2).sum(0)
    total = float(e.sum())
    if total == 0.0:
        return float("nan")
    return float(e[m].sum()) / total


def energy_by_stage(results: Sequence[SideBySide]) -> dict[str, dict[str, Any]]:
    """Mean energy share inside the object per stage, per network, over several pictures.

    Returns:
        label -> ``{"layers": [...], "inside": [mean share per stage], "area": mean object area,
        "images": n}`` (means skip NaN, i.e. empty reconstructions).

    Raises:
        NoObjectRegion: a picture has no object region (its name is given).
    """
    acc: dict[str, dict[str, Any]] = {}
    for r in results:
        for v in r.views:
            if v.mask is None:
                raise NoObjectRegion(
                    f"image {r.image!r} has no object region, so the energy inside the object cannot be measured "
                    "on it: give its mask (side_by_side(..., mask=...)) or leave it out"
                )
            a = acc.setdefault(v.name, {"layers": v.layers, "values": [], "areas": []})
            a["values"].append([v.energy[layer] for layer in v.layers])
            a["areas"].append(v.area)
    out = {}
    for label, a in acc.items():
        vals = np.asarray(a["values"], dtype=float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            inside = np.nanmean(vals, axis=0)
        out[label] = {"layers": a["layers"], "inside": [float(x) for x in inside],
                      "area": float(np.mean(a["areas"])), "images": len(vals)}
    return out


def energy_table(results: Sequence[SideBySide]) -> Table:
    """Share of reconstruction energy inside the object: one row per picture and network, one column per stage."""
    stages = max(r.stages for r in results)
    rows = []
    for r in results:
        for v in r.views:
            if v.mask is None:
                raise NoObjectRegion(f"image {r.image!r} has no object region; give its mask or leave it out")
            cells = [f"{v.energy[layer]:.3f} ({layer})" for layer in v.layers]
            rows.append([r.image, v.name, round(v.area or 0.0, 3), *cells, *[""] * (stages - len(cells))])
    return Table(["image", "network", "object area", *[f"stage {i + 1}" for i in range(stages)]], rows,
                 "Share of reconstruction energy inside the object, per stage")


def predictions_table(results: Sequence[SideBySide]) -> Table:
    """Each network's top predictions for each picture (Yu Fig. 6's right-hand column)."""
    rows = [[r.image, v.name, "; ".join(f"{c} {p:.1%}" for c, p in v.predictions)] for r in results for v in r.views]
    return Table(["image", "network", "top predictions (probability)"], rows, "Top predictions")


# --------------------------------------------------------------------------- first-layer filters


def first_layer_filters(net: Any) -> torch.Tensor:
    """The first convolution's weights ``(F, C, k, k)`` (a copy)."""
    if isinstance(net, torch.Tensor):
        return net.detach().clone()
    model, _ = _unwrap(net)
    conv = first_conv(model) if model is not None else None
    if conv is None:
        raise ValueError("the network has no convolution")
    return conv[1].weight.detach().clone()


@dataclass
class FilterSpectrum:
    """Radially averaged power spectrum of a bank of filters.

    Attributes:
        freqs: bin centres in cycles per input pixel (0 .. 0.5).
        profile: mean power at each radius, each filter's spectrum scaled to
            unit total power and averaged over filters, relative to a flat
            spectrum (a single-pixel filter reads 1 everywhere).
        bands: band -> share of spectral energy (``low``, ``mid``, ``high``), averaged over filters.
        edges: the band edges in cycles per pixel.
        size: the FFT size the filters were zero-padded to.
    """

    freqs: np.ndarray
    profile: np.ndarray
    bands: dict[str, float]
    edges: tuple[float, float]
    size: int


def filter_spectrum(net: Any, size: int = 64, edges: tuple[float, float] = (1 / 6, 1 / 3)) -> FilterSpectrum:
    """How the first-layer filters cover the frequencies (Zeiler §4.1: "little coverage of the mid frequencies").

    Each filter is zero-padded to ``size × size`` and Fourier transformed; its
    power (summed over input channels) is scaled to a total of 1 so each
    filter counts the same. The power is then split by radial frequency
    ``f = sqrt(fx² + fy²)`` in cycles per input pixel into low (``f < edges[0]``),
    mid and high (``f >= edges[1]``, up to the corners at 0.71) bands and
    averaged over filters; the radial profile averages the power in rings of
    width ``1/size`` up to the Nyquist frequency 0.5. The mean (DC) counts as low.

    Args:
        net: a net, a model, or the weights ``(F, C, k, k)``.
        size: FFT size (at least the kernel size).
        edges: the two band edges in cycles per pixel.

    Example:
        >>> w = torch.zeros(1, 1, 3, 3); w[0, 0, 1, 1] = 1          # a delta: flat spectrum
        >>> s = filter_spectrum(w, size=30)
        >>> round(sum(s.bands.values()), 6)
        1.0
    """
    w = first_layer_filters(net).double().cpu()
    if w.ndim != 4:
        raise ValueError(f"filters must be (F, C, k, k); got {tuple(w.shape)}")
    if size < max(w.shape[-2:]):
        raise ValueError(f"size {size} is smaller than the {w.shape[-1]}×{w.shape[-2]} filters")
    power = torch.fft.fft2(w, s=(size, size)).abs().pow(2).sum(1)  # (F, size, size)
    tot = power.sum((1, 2), keepdim=True)
    live = tot.flatten() > 0
    power = power[live] / tot[live]
    fy = torch.fft.fftfreq(size, dtype=torch.float64).view(-1, 1)
    fx = torch.fft.fftfreq(size, dtype=torch.float64).view(1, -1)
    f = (fy**2 + fx**2).sqrt()
    lo, hi = edges
    bands = {
        "low": float(power[:, f < lo].sum(1).mean()),
        "mid": float(power[:, (f >= lo) & (f < hi)].sum(1).mean()),
        "high": float(power[:, f >= hi].sum(1).mean()),
    }
    mean_power = power.mean(0).flatten().numpy()
    ring = (f * size).round().long().flatten().numpy()
    nbins = size // 2 + 1
    keep = ring < nbins  # rings up to the Nyquist frequency 0.5; the corners beyond count in the bands only
    sums = np.bincount(ring[keep], weights=mean_power[keep], minlength=nbins)
    counts = np.bincount(ring[keep], minlength=nbins)
    profile = sums / np.maximum(counts, 1) * size * size  # a flat spectrum reads 1
    return FilterSpectrum(np.arange(nbins) / size, profile, bands, (lo, hi), size)


@dataclass
class FilterRMS:
    """The RMS of each filter of a layer, as Zeiler & Fergus define it (root mean square of its weights).

    Attributes:
        rms: ``(F,)`` one value per filter.
        largest, median: of ``rms``.
        dominance: ``largest / median``: far above 1 when one filter dominates (Zeiler Fig. 6a).
    """

    rms: torch.Tensor
    largest: float
    median: float
    dominance: float

    def strongest(self, n: int = 3) -> list[int]:
        return self.rms.argsort(descending=True)[:n].tolist()


def rms_dominance(net: Any, layer: str | None = None) -> FilterRMS:
    """Filter RMS of a convolution (default: the first) and how far the largest stands above the median.

    Example:
        >>> conv = nn.Conv2d(1, 3, 1, bias=False)
        >>> _ = conv.weight.data.copy_(torch.tensor([1.0, 1.0, 10.0]).view(3, 1, 1, 1))
        >>> rms_dominance(nn.Sequential(conv)).dominance
        10.0
    """
    model, _ = _unwrap(net) if not isinstance(net, torch.Tensor) else (None, None)
    if isinstance(net, torch.Tensor):
        w = net.detach()
    elif layer is None:
        w = first_layer_filters(model)
    else:
        _, path = resolve_layer(model, layer)
        mod = model.get_submodule(path)
        if not isinstance(mod, nn.Conv2d):  # a paper name points at the ReLU: take the conv before it
            convs = [m for p, m in model.named_modules() if isinstance(m, nn.Conv2d) and _before(model, p, path)]
            if not convs:
                raise ValueError(f"no convolution at or before layer {layer!r}")
            mod = convs[-1]
        w = mod.weight.detach()
    rms = w.double().pow(2).mean(dim=tuple(range(1, w.ndim))).sqrt().cpu()
    largest, median = float(rms.max()), float(rms.median())
    return FilterRMS(rms, largest, median, largest / median if median > 0 else float("inf"))


def _before(model: nn.Module, a: str, b: str) -> bool:
    order = [p for p, _ in model.named_modules()]
    return order.index(a) <= order.index(b)


@dataclass
class DeadFilters:
    """Dead first-layer filters (Zeiler Fig. 6: ZFNet has "fewer dead features").

    A filter is **dead** when its rectified response is exactly zero at every
    position of every image of the sample (``silent``), or when its weights
    have negligible RMS: below ``rms_floor`` times the layer's median filter
    RMS (``faint``).

    Attributes:
        layer: the layer examined.
        filters: how many filters it has.
        silent: filters never active over the sample.
        faint: filters with negligible weights.
        images: images in the sample.
        rms_floor: the RMS threshold, as a fraction of the median.
    """

    layer: str
    filters: int
    silent: list[int]
    faint: list[int]
    images: int
    rms_floor: float

    @property
    def dead(self) -> list[int]:
        return sorted(set(self.silent) | set(self.faint))

    @property
    def share(self) -> float:
        return len(self.dead) / self.filters

    def __str__(self) -> str:
        return (f"{len(self.dead)} of {self.filters} {self.layer} filters dead ({self.share:.1%}): "
                f"{len(self.silent)} never active over {self.images} images, "
                f"{len(self.faint)} with RMS below {self.rms_floor:g}× the median")


def dead_filters(net: Any, counts: Sparsity, layer: str | None = None, rms_floor: float = 0.01) -> DeadFilters:
    """Dead filters of a layer (default: the first convolution), from a :class:`Sparsity` count over a sample.

    Args:
        net: the network the counts were made with.
        counts: :func:`sparsity` over the sample, including ``layer``.
        layer: paper name of a convolution (default: the first, ``c1`` / ``c1_1``).
        rms_floor: weights count as negligible below this fraction of the median filter RMS.
    """
    model, _ = _unwrap(net)
    layer = layer or next(n for n in layer_names(model) if _CONV.match(n))
    silent = counts.dead_maps(layer)
    rms = rms_dominance(model, layer)
    faint = torch.nonzero(rms.rms < rms_floor * rms.median).flatten().tolist()
    return DeadFilters(layer, len(rms.rms), silent, faint, counts.images, rms_floor)


# --------------------------------------------------------------------------- layer-2 aliasing


def whole_layer(net: Any, images: Sequence[Any], layer: str, *, device: torch.device | str | None = None
                ) -> torch.Tensor:
    """Whole-layer deconvnet reconstructions of several pictures from one layer: ``(N, C, H, W)``."""
    x = torch.cat([prepare(net, im) for im in images])
    model, _ = _unwrap(net)
    rec = Deconvnet(model, device=device).record(x, [layer], batch=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoPositiveActivation)
        return rec.project(layer).pixels.detach().cpu()


def first_stride(net: Any) -> int:
    """The stride of the first convolution (AlexNet 4, ZFNet 2, VGG-16 1)."""
    model, _ = _unwrap(net)
    conv = first_conv(model)
    if conv is None:
        raise ValueError("the network has no convolution")
    s = conv[1].stride
    return int(s[0] if isinstance(s, tuple) else s)


def grid_contrast(images: torch.Tensor, stride: int) -> float:
    """How strongly a grid with the period of a stride shows in projections (Zeiler §4.1's aliasing).

    The last step of the deconvnet is the first layer's transposed
    convolution, which stamps its filters every ``s`` pixels; with a large
    stride the stamps show as a grid (Zeiler's "aliasing artifacts"). On such
    a grid the pixels' energy depends on their position modulo ``s``. So the
    pixels are sorted into the ``s × s`` phases ``(y mod s, x mod s)``, each
    phase's mean energy is taken (squared values, summed over channels and
    images), and the contrast is the standard deviation of those
    ``s²`` means over their mean: 0 when every phase carries the same energy
    (no grid), ``sqrt(s² - 1)`` when one phase carries it all.

    Args:
        images: ``(C, H, W)`` or ``(N, C, H, W)`` projections.
        stride: the period in pixels (the first layer's stride).

    Returns:
        The contrast, or NaN for projections that are zero everywhere.

    Example:
        >>> grid = torch.zeros(1, 32, 32); grid[:, ::4, ::4] = 1
        >>> round(grid_contrast(grid, 4), 4) == round(15 ** 0.5, 4)
        True
    """
    x = images.detach().double().cpu()
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4:
        raise ValueError(f"projections must be (C, H, W) or (N, C, H, W); got {tuple(images.shape)}")
    if stride < 2:
        raise ValueError(f"a stride of {stride} makes no grid; the contrast needs a stride of 2 or more")
    h, w = (x.shape[-2] // stride) * stride, (x.shape[-1] // stride) * stride
    if h < 2 * stride or w < 2 * stride:
        raise ValueError(f"projections of {x.shape[-2]}×{x.shape[-1]} are too small for a period of {stride}")
    x = x[..., :h, :w]
    e = x.pow(2).sum((0, 1))  # (h, w)
    phases = e.view(h // stride, stride, w // stride, stride).mean((0, 2))  # (s, s)
    mean = float(phases.mean())
    if mean == 0.0:
        return float("nan")
    return float(phases.std(unbiased=False)) / mean


# --------------------------------------------------------------------------- accuracy


@dataclass
class Accuracy:
    """A net's accuracy as recorded with its weights and as measured now.

    Attributes:
        recorded: the figure that travels with the weights (bundled: the full
            Fashion-MNIST test set; ImageNet: torchvision's top-1), or ``None``.
        recorded_on: what it was measured on.
        live: accuracy measured now on ``live_on``, or ``None``.
        live_on: the data of the live measurement.
    """

    recorded: float | None
    recorded_on: str
    live: float | None
    live_on: str


def net_accuracy(net: Any, data: Any = None) -> Accuracy:
    """The recorded test accuracy of a net and, given labelled data of its classes, a live measurement.

    Args:
        net: a :class:`~vizlib.Net`.
        data: an :class:`~vizlib.ImageSet` whose classes are the net's (the
            committed Fashion-MNIST sample for the bundled nets), or ``None``.
    """
    record = (getattr(net, "extra", {}) or {}).get("record") or {}
    extra = getattr(net, "extra", {}) or {}
    recorded, recorded_on = None, "no accuracy travels with these weights"
    if record.get("test_accuracy") is not None:
        recorded = float(record["test_accuracy"])
        recorded_on = f"{record.get('test_images', 'the')} Fashion-MNIST test images (recorded at training)"
    elif extra.get("acc@1") is not None:
        recorded = float(extra["acc@1"]) / 100
        recorded_on = "ImageNet validation, top-1 (torchvision's metadata)"
    live, live_on = None, "no labelled data of this net's classes"
    transform = getattr(net, "transform", None)
    if data is not None and hasattr(transform, "batch") and list(getattr(data, "classes", [])) == list(net.categories):
        from ..models.training import evaluate

        ev = evaluate(net.model, data, transform)
        live, live_on = ev.accuracy, f"{ev.total} images: {data.source}"
    return Accuracy(recorded, recorded_on, live, live_on)


# --------------------------------------------------------------------------- claims


_ALLOWED = (ast.Expression, ast.Compare, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
            ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Name, ast.Load, ast.Constant,
            ast.Gt, ast.GtE, ast.Lt, ast.LtE, ast.Eq, ast.NotEq)


def _rule_names(rule: str) -> list[str]:
    try:
        tree = ast.parse(rule, mode="eval")
    except SyntaxError as exc:
        raise ValueError(
            f"the rule {rule!r} is not an expression ({exc.msg}); names in a rule must be Python identifiers "
            "that are not keywords (not 'with', 'if', ...)"
        ) from exc
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED) or (isinstance(node, ast.Constant) and not isinstance(node.value, (int, float))):
            raise ValueError(
                f"the rule {rule!r} uses {type(node).__name__}; rules may only compare measured names and numbers "
                "with + - * /, comparisons, and, or, not"
            )
    return sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)})


def _evaluate(node: ast.AST, values: Mapping[str, float]) -> Any:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, values)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.UnaryOp):
        v = _evaluate(node.operand, values)
        return (not v) if isinstance(node.op, ast.Not) else (-v if isinstance(node.op, ast.USub) else +v)
    if isinstance(node, ast.BinOp):
        a, b = _evaluate(node.left, values), _evaluate(node.right, values)
        ops = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b,
               ast.Div: lambda: a / b if b != 0 else math.inf}
        return ops[type(node.op)]()
    if isinstance(node, ast.BoolOp):
        vals = [_evaluate(v, values) for v in node.values]
        return all(vals) if isinstance(node.op, ast.And) else any(vals)
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, values)
        for op, comp in zip(node.ops, node.comparators):
            right = _evaluate(comp, values)
            ok = {ast.Gt: left > right, ast.GtE: left >= right, ast.Lt: left < right, ast.LtE: left <= right,
                  ast.Eq: left == right, ast.NotEq: left != right}[type(op)]
            if not ok:
                return False
            left = right
        return True
    raise ValueError(f"cannot evaluate {type(node).__name__}")  # pragma: no cover - _rule_names guards


@dataclass
class Claim:
    """A paper's claim, the numbers this run measured for it, and the rule that turns them into a verdict.

    The verdict is computed from ``measured`` by ``rule``, a small expression
    over the measured names (comparisons, ``and``/``or``/``not``, ``+ - * /``):

    * ``"supported"`` when the rule holds,
    * ``"not supported here"`` when it does not,
    * ``"not measured"`` when a number it needs is missing (``None`` or NaN),
      with ``why`` saying why.

    Attributes:
        source: where the claim is made (``"Yu §5, Fig. 5"``).
        text: the claim, in a line.
        measured: name -> number (``None`` when this run could not measure it).
        rule: the expression that decides, e.g. ``"vgg16 > alexnet"``.
        why: the reason a number is missing, for the verdict line.

    Example:
        >>> c = Claim("Yu §5", "VGG-16's high layers are sparser", {"vgg16": 0.8, "alexnet": 0.7}, "vgg16 > alexnet")
        >>> c.verdict
        'supported'
        >>> print(c)
        Yu §5: VGG-16's high layers are sparser | measured: vgg16=0.8, alexnet=0.7 | rule: vgg16 > alexnet | verdict: supported
    """

    source: str
    text: str
    measured: dict[str, float | None]
    rule: str
    why: str = ""

    def __post_init__(self) -> None:
        unknown = [n for n in _rule_names(self.rule) if n not in self.measured]
        if unknown:
            raise ValueError(
                f"the rule {self.rule!r} names {', '.join(unknown)}, which {'is' if len(unknown) == 1 else 'are'} "
                f"not among the measured numbers ({', '.join(self.measured) or 'none'})"
            )

    @property
    def missing(self) -> list[str]:
        """Names the rule needs that this run could not measure."""
        return [n for n in _rule_names(self.rule)
                if self.measured[n] is None or (isinstance(self.measured[n], float) and math.isnan(self.measured[n]))]

    @property
    def holds(self) -> bool | None:
        """The rule's value, or ``None`` when a number is missing."""
        if self.missing:
            return None
        return bool(_evaluate(ast.parse(self.rule, mode="eval"), self.measured))  # type: ignore[arg-type]

    @property
    def verdict(self) -> str:
        h = self.holds
        return "not measured" if h is None else ("supported" if h else "not supported here")

    def numbers(self) -> str:
        return ", ".join(f"{k}={_fmt(v)}" for k, v in self.measured.items())

    def __str__(self) -> str:
        why = f" ({self.why or 'missing: ' + ', '.join(self.missing)})" if self.holds is None else ""
        return (f"{self.source}: {self.text} | measured: {self.numbers()} | rule: {self.rule} | "
                f"verdict: {self.verdict}{why}")


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    return f"{v:.4g}"


def claims_table(claims: Sequence[Claim]) -> Table:
    """The claims with their measured numbers and computed verdicts."""
    return Table(["source", "claim", "measured", "rule", "verdict"],
                 [[c.source, c.text, c.numbers(), c.rule, c.verdict] for c in claims],
                 "The papers' claims against this run")


# --------------------------------------------------------------------------- figures


def _plt():
    import matplotlib.pyplot as plt

    return plt


def plot_sparsity(results: Sequence[Sparsity]) -> Figure:
    """Yu Fig. 5: share of zero activations per layer, one panel per network, side by side."""
    plt = _plt()
    results = list(results)
    widths = [max(3, len(r.layers)) for r in results]
    fig, axes = plt.subplots(1, len(results), figsize=(min(16, 1.2 + 0.42 * sum(widths) + 1.2 * len(results)), 3.6),
                             sharey=True, squeeze=False, gridspec_kw={"width_ratios": widths})
    for ax, r in zip(axes[0], results):
        s = r.share
        colours = ["tab:orange" if _POOL.match(layer) else "tab:blue" for layer in r.layers]
        ax.bar(range(len(r.layers)), [s[layer] for layer in r.layers], color=colours)
        ax.set_xticks(range(len(r.layers)), r.layers, rotation=90, fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_title(f"{r.name} ({r.images} images)", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("share of zero activations")
    from matplotlib.patches import Patch

    axes[0][-1].legend(handles=[Patch(color="tab:blue", label="convolution (rectified)"),
                                Patch(color="tab:orange", label="max pooling")], fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def _show(ax: Any, img: np.ndarray) -> None:
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_side_by_side(result: SideBySide) -> Figure:
    """Yu Fig. 6: per network, the input, its whole-layer reconstructions by stage, and its top predictions.

    The object region, when known, is outlined in red on the input; each
    reconstruction's title gives the share of its energy inside the object.
    """
    plt = _plt()
    cols = 2 + result.stages
    fig, axes = plt.subplots(len(result.views), cols, figsize=(1.75 * cols + 1.2, 1.95 * len(result.views)),
                             squeeze=False)
    for row, v in zip(axes, result.views):
        _show(row[0], v.input)
        if v.mask is not None:
            row[0].contour(v.mask.numpy().astype(float), levels=[0.5], colors="red", linewidths=0.8)
        row[0].set_ylabel(v.name, fontsize=10)
        row[0].set_title(f"input {v.input.shape[0]}×{v.input.shape[1]}", fontsize=8)
        for j in range(result.stages):
            ax = row[1 + j]
            if j >= len(v.layers):
                ax.axis("off")
                continue
            layer = v.layers[j]
            _show(ax, v.display(layer))
            extra = f"\n{v.energy[layer]:.0%} inside" if layer in v.energy and not math.isnan(v.energy[layer]) else ""
            ax.set_title(f"{layer}{' (empty)' if v.empty[layer] else ''}{extra}", fontsize=8)
        text = row[-1]
        text.axis("off")
        text.text(0, 0.5, "\n".join(f"{p:5.1%}  {c[:22]}" for c, p in v.predictions), fontsize=7.5,
                  family="monospace", va="center")
        text.set_title("top predictions", fontsize=8)
    fig.suptitle(result.image, fontsize=10)
    fig.tight_layout()
    return fig


def plot_stage(result: SideBySide, stage: int) -> Figure:
    """One stage of a side-by-side comparison, large: each network's input (object outlined) and reconstruction."""
    plt = _plt()
    n = len(result.views)
    fig, axes = plt.subplots(2, n, figsize=(3.2 * n, 6.4), squeeze=False)
    for j, v in enumerate(result.views):
        _show(axes[0][j], v.input)
        if v.mask is not None:
            axes[0][j].contour(v.mask.numpy().astype(float), levels=[0.5], colors="red", linewidths=0.8)
        top = v.predictions[0] if v.predictions else ("?", float("nan"))
        axes[0][j].set_title(f"{v.name}: {top[0][:24]} ({top[1]:.1%})", fontsize=9)
        k = min(stage, len(v.layers)) - 1
        layer = v.layers[k]
        _show(axes[1][j], v.display(layer))
        share = v.energy.get(layer)
        inside = f", {share:.0%} of energy inside (object area {v.area:.0%})" if share is not None and not math.isnan(share) else ""
        axes[1][j].set_title(f"stage {k + 1}: {layer}{inside}", fontsize=8)
    fig.suptitle(result.image, fontsize=10)
    fig.tight_layout()
    return fig


def plot_energy(summary: Mapping[str, Mapping[str, Any]]) -> Figure:
    """Share of reconstruction energy inside the object per stage (solid), against the object's area (dashed)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for i, (label, s) in enumerate(summary.items()):
        colour = f"C{i}"
        x = np.arange(1, len(s["inside"]) + 1)
        ax.plot(x, s["inside"], "o-", color=colour, label=f"{label} ({', '.join(s['layers'])})")
        ax.axhline(s["area"], color=colour, ls="--", lw=1)
    ax.set_xlabel("stage (depth)")
    ax.set_ylabel("energy inside the object")
    ax.set_ylim(0, 1)
    ax.set_xticks(np.arange(1, max(len(s["inside"]) for s in summary.values()) + 1))
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _montage(w: torch.Tensor, scale: str) -> np.ndarray:
    w = w.detach().double().cpu()
    f, c, kh, kw = w.shape
    if c not in (1, 3):
        w = w.mean(1, keepdim=True)
        c = 1
    if scale == "each":
        lo = w.amin(dim=(1, 2, 3), keepdim=True)
        hi = w.amax(dim=(1, 2, 3), keepdim=True)
        w = (w - lo) / (hi - lo).clamp_min(1e-12)
    elif scale == "common":
        w = w / (2 * w.abs().max().clamp_min(1e-12)) + 0.5
    else:
        raise ValueError(f"scale must be 'each' or 'common', not {scale!r}")
    cols = math.ceil(math.sqrt(f))
    rows = math.ceil(f / cols)
    out = np.ones((rows * (kh + 1) + 1, cols * (kw + 1) + 1, c))
    for i in range(f):
        r, q = divmod(i, cols)
        out[1 + r * (kh + 1): 1 + r * (kh + 1) + kh, 1 + q * (kw + 1): 1 + q * (kw + 1) + kw] = \
            w[i].permute(1, 2, 0).numpy()
    return out[..., 0] if c == 1 else out


def plot_filters(filters: Mapping[str, Any], *, scale: str = "each") -> Figure:
    """First-layer filters of several nets side by side (Zeiler Fig. 6 b, c).

    Args:
        filters: label -> a net, a model or weights ``(F, C, k, k)``.
        scale: ``"each"``: every filter stretched to its own range (shows
            structure); ``"common"``: one scale for the whole bank, zero grey
            (shows which filters dominate, Zeiler Fig. 6a).
    """
    plt = _plt()
    fig, axes = plt.subplots(1, len(filters), figsize=(4.2 * len(filters), 4.4), squeeze=False)
    for ax, (label, f) in zip(axes[0], filters.items()):
        w = first_layer_filters(f)
        _show(ax, _montage(w, scale))
        ax.set_title(f"{label}: {w.shape[0]} filters {w.shape[-2]}×{w.shape[-1]}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_spectra(spectra: Mapping[str, FilterSpectrum]) -> Figure:
    """Radially averaged power spectra of first-layer filters, with the low / mid / high bands shaded."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    first = next(iter(spectra.values()))
    lo, hi = first.edges
    ax.axvspan(0, lo, color="0.93")
    ax.axvspan(hi, 0.5, color="0.93")
    for i, (label, s) in enumerate(spectra.items()):
        b = s.bands
        ax.plot(s.freqs, s.profile, "-", color=f"C{i}",
                label=f"{label}: low {b['low']:.0%}, mid {b['mid']:.0%}, high {b['high']:.0%}")
    ax.set_xlim(0, 0.5)
    ax.set_xlabel("frequency (cycles per input pixel)")
    ax.set_ylabel("power relative to a flat spectrum")
    ax.set_title("first-layer filters: radially averaged power spectrum", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_rms(rms: Mapping[str, FilterRMS]) -> Figure:
    """Filter RMS per first-layer filter, sorted, one panel per net; the median dashed."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(rms), figsize=(4.6 * len(rms), 3.2), squeeze=False, sharey=True)
    for ax, (label, r) in zip(axes[0], rms.items()):
        vals = r.rms.sort(descending=True).values.numpy()
        ax.bar(range(len(vals)), vals, color="tab:blue")
        ax.axhline(r.median, color="k", ls="--", lw=1)
        ax.set_title(f"{label}: largest / median = {r.dominance:.2f}", fontsize=9)
        ax.set_xlabel("filter (sorted)")
    axes[0][0].set_ylabel("filter RMS")
    fig.tight_layout()
    return fig


def plot_layer_projections(projections: Mapping[str, torch.Tensor], titles: Sequence[str] | None = None) -> Figure:
    """Rows of projections, one row per net (e.g. layer-2 reconstructions of AlexNet and ZFNet)."""
    plt = _plt()
    n = max(len(p) for p in projections.values())
    fig, axes = plt.subplots(len(projections), n, figsize=(2.3 * n, 2.4 * len(projections)), squeeze=False)
    for row, (label, p) in zip(axes, projections.items()):
        for j in range(n):
            if j >= len(p):
                row[j].axis("off")
                continue
            _show(row[j], normalize_projection(p[j]))
            if titles is not None and j < len(titles):
                row[j].set_title(titles[j][:28], fontsize=8)
        row[0].set_ylabel(label, fontsize=10)
    fig.tight_layout()
    return fig


def reconstruction_explorer(results: Sequence[SideBySide], stage: int | None = None) -> Any:
    """Pick an image and a stage; see each network's reconstruction side by side (calls :func:`plot_stage`)."""
    import ipywidgets as W
    from IPython.display import display

    plt = _plt()
    results = list(results)
    stages = max(r.stages for r in results)
    pick = W.Dropdown(options=[(r.image, i) for i, r in enumerate(results)], value=0, description="image")
    depth = W.Dropdown(options=[(f"stage {s}: " + " | ".join(v.layers[min(s, len(v.layers)) - 1]
                                                             for v in results[0].views), s)
                                for s in range(1, stages + 1)], value=stage or stages, description="layer")
    out = W.Output()

    def show(*_: object) -> None:
        out.clear_output(wait=True)
        with out:
            fig = plot_stage(results[pick.value], depth.value)
            display(fig)
            plt.close(fig)

    pick.observe(show, "value")
    depth.observe(show, "value")
    # The first drawing is set as the output's state rather than displayed into it: under
    # nbclient (the book build), output captured by an Output widget makes the client write on
    # the shell channel, which can hold the cell until its timeout (jupyter/nbclient#312).
    fig = plot_stage(results[pick.value], depth.value)
    out.outputs = (_png_output(fig),)
    plt.close(fig)
    return W.VBox([W.HBox([pick, depth]), out])


def _png_output(fig: Figure) -> dict[str, Any]:
    """A figure as a notebook ``display_data`` output (PNG)."""
    import base64
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": base64.b64encode(buf.getvalue()).decode("ascii"), "text/plain": repr(fig)}}
