"""The representation space of a layer: t-SNE of the patches it sees (Yu et al. 2016, §4.1 and Fig. 3).

Every unit of a convolutional layer looks at one patch of the image, its
receptive field; all the feature maps together give each patch a feature
vector, the activations of every map at that position. So a layer builds a
*representation space* of patches, and t-SNE draws it in two dimensions.

Four steps, one function each:

1. :func:`patch_features` streams once over a dataset (through
   :func:`vizlib.batches`), runs the network up to the layer (or layers) and
   keeps ``n`` patches, stratified over images and positions, leaving out
   patches that lie mostly in the zero padding: the feature vector, which
   image and position, the receptive-field box and a small thumbnail of the
   patch for drawing. Memory holds ``n`` patches, not the dataset. It also
   keeps each feature map's strongest activation over the data
   (:class:`~vizlib.methods.topk.TopActivations`), from which the deconvnet
   later shows what each filter responds to (Yu's column (d),
   :func:`filter_visualisations`).
2. :func:`embed_patches`: PCA to about 50 dimensions, then t-SNE, seeded and
   reproducible: openTSNE when it is installed (Barnes-Hut up to
   :data:`BH_MAX_POINTS` points, FFT interpolation above, on the short
   schedule :data:`TSNE_SCHEDULE`), otherwise scikit-learn's Barnes-Hut
   t-SNE, with a note saying so.
3. :func:`fill_grid`: Yu's fill of empty and overlapping regions: every cell of
   a regular grid laid over the plane shows the patch embedded nearest to the
   cell's centre (exact nearest neighbour).
4. :func:`class_agreement`: a measured reading of Yu's claim that high layers
   place semantically similar patches close, low layers similar textures: for
   each patch, the share of its ``k`` nearest neighbours from *other* images
   that come from an image of the same class, in feature space and in the
   embedding, beside the level chance gives.

:func:`representation_space` runs steps 2-3 on sampled patches;
:func:`default_regions`, :func:`select_patches`, :func:`top_filters` and
:func:`filter_visualisations` give what Yu's columns (b)-(d) show, and
:func:`equivalent_layers` picks Yu's c4_1 and c5_3 in another network. This
module computes and returns data; chapter 4's figures, tables, claims and
explorer are in :mod:`vizlib.chapters.ch04`.

Example::

    import vizlib as vl
    from vizlib.methods import embedding
    net = vl.load("vgg16")
    data = vl.PreparedImages(vl.fashion_mnist_sample(), net)
    low, high = embedding.equivalent_layers(net.model, net.input_size).layers
    feats = vl.patch_features(net, [low, high], data, n=5000)
    space = embedding.representation_space(feats[high])
    agreement = embedding.class_agreement(space, k=10)
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset
from ..core.progress import tqdm

from ..core.args import batch_size_arg, whole_number
from ..core.errors import EmptyData
from ..core.batches import PreparedImages, batches, first_tensor
from ..core.device import on_device
from ..core.hooks import Capture, preserved
from ..core.images import _unwrap, check_image, to_display
from ..core.layers import resolve_layer
from ..core.tables import Table
from .receptive_field import RField, _map_size, receptive_field, receptive_fields
from .topk import TopActivations, TopKMiner

__all__ = [
    "PatchFeatures",
    "patch_features",
    "available_patches",
    "Embedding",
    "embed_patches",
    "tsne_backend",
    "BH_MAX_POINTS",
    "TSNE_SCHEDULE",
    "FFT_INTS_IN_INTERVAL",
    "GridFill",
    "fill_grid",
    "square_extent",
    "Region",
    "default_regions",
    "RepresentationSpace",
    "representation_space",
    "select_patches",
    "top_filters",
    "filter_visualisations",
    "Agreement",
    "neighbour_agreement",
    "neighbourhood_preservation",
    "class_agreement",
    "LayerChoice",
    "equivalent_layers",
    "YU_LOW_SHARE",
    "YU_HIGH_SHARE",
]

#: openTSNE embeds up to this many points with Barnes-Hut, more with FFT interpolation. On the
#: fast schedule (one thread, patches of the bundled VGG-style net) the two cost the same at
#: 3,000 points (4.5 and 4.7 s at c5_3), Barnes-Hut a sixth at 600 (0.6 against 3.6 s: FFT's
#: grid has a fixed cost) and FFT under half at 10,000 (c2_2: 9.8 against 21.8 s), with the
#: same neighbour preservation to 0.016.
BH_MAX_POINTS = 3_000

#: The iterations of openTSNE's two phases (early exaggeration 12, then none) that
#: :func:`embed_patches` runs by default: ``("fast")``, against the library's own
#: 250 + 500 (``schedule="standard"``). On 10,000 patches of the bundled VGG-style
#: net's c5_3 the standard schedule spent two thirds of its time in the last 250
#: iterations, in which the embedding keeps spreading (its extent grew from 127 to
#: 169) while each patch's neighbours hardly change: 10-NN preservation 0.433
#: standard, 0.421 fast; class agreement 0.255 and 0.252 (one thread, one run each;
#: ``benchmarks/bench_embedding.py``).
TSNE_SCHEDULE: dict[str, dict[str, int]] = {
    "fast": {"early_exaggeration_iter": 125, "n_iter": 250},
    "standard": {"early_exaggeration_iter": 250, "n_iter": 500},
}

#: Integers per interval of openTSNE's FFT grid on the fast schedule (the library's
#: default is 1): the grid's cost grows with the embedding's extent over this, and
#: a grid half as fine again still resolves t-SNE's kernel ``1 / (1 + d^2)``, whose
#: scale is 1. Measured with :data:`TSNE_SCHEDULE` (see there): 8.4 s against 18.9 s
#: at 1 on one thread, the same neighbour preservation to 0.006.
FFT_INTS_IN_INTERVAL = 1.5

#: Share of a 224-pixel image that Yu's low layer (VGG-16 c4_1, field 60) sees: what
#: :func:`equivalent_layers` matches in another network.
YU_LOW_SHARE = 60 / 224
#: Share of a 224-pixel image that Yu's high layer (VGG-16 c5_3, field 196) sees.
YU_HIGH_SHARE = 196 / 224


# --------------------------------------------------------------------------- data

def _normalisation(net: Any, data: Any) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    """The mean and std the images were normalised with, from the Net or the PreparedImages."""
    for source in (net, data):
        if isinstance(source, (PreparedImages,)) or (not isinstance(source, (nn.Module, torch.Tensor))
                                                      and hasattr(source, "mean") and hasattr(source, "std")):
            mean, std = getattr(source, "mean", None), getattr(source, "std", None)
            if isinstance(mean, (tuple, list)) and isinstance(std, (tuple, list)) and mean and std:
                return tuple(float(m) for m in mean), tuple(float(v) for v in std)
    return None, None


def _batch_size(data: Any) -> int:
    """About 4 million input values per batch (at most 1024 images, at least 4).

    Small nets run far faster in big batches.
    """
    if isinstance(data, PreparedImages):
        values = data.channels * max(data.size, 28) ** 2
    elif isinstance(data, torch.Tensor) and data.ndim == 4:
        values = int(np.prod(data.shape[1:]))
    else:
        return 64
    return int(min(1024, max(4, 2**22 // max(values, 1))))


def _data_length(data: Any) -> int:
    try:
        return len(data)
    except TypeError:
        raise TypeError(
            "patch_features needs data whose length is known up front (to spread the patches evenly over "
            "the images): pass a vizlib.PreparedImages, a tensor (N, C, H, W) or a map-style dataset"
        ) from None


# --------------------------------------------------------------------------- patch features


@dataclass
class PatchFeatures:
    """Patches sampled at one layer: their feature vectors and where they come from.

    Attributes:
        layer: the layer's label.
        features: ``(n, C)`` float32, the activations of all ``C`` maps at each patch's position.
        image_index: ``(n,)`` position of each patch's image in the data.
        position: ``(n, 2)`` ``(y, x)`` in the layer's feature map.
        boxes: ``(n, 4)`` ``(top, left, bottom, right)``: the receptive field
            clipped to the image (bottom/right exclusive), as :func:`vizlib.unit_box`.
        windows: ``(n, 4)`` ``(top, left, height, width)`` of the square window
            drawn for each patch: the receptive field itself, or, where the field
            is larger than the image, the image-sized part of it that covers most
            of the image (may reach into the padding, drawn as the mean grey).
        labels: ``(n,)`` class of each patch's image (``None`` when the data had no labels).
        classes: class names, index = label.
        thumbnails: ``(n, t, t)`` (grey) or ``(n, t, t, 3)`` uint8 images of the windows.
        rfield: the layer's receptive field.
        map_size: ``(h, w)`` of the layer's feature maps.
        input_size: ``(H, W)`` of the images.
        n_images: how many images were streamed.
        valid_positions: positions per image that are not mostly padding.
        min_inside: the share of the field that had to lie inside the image.
        seconds: wall time of the streaming pass.
        top: each map's strongest activation over the data (for :func:`filter_visualisations`).
        mean, std: the network's normalisation (for drawing).

    Example:
        >>> from vizlib.models import vgg_fmnist
        >>> p = patch_features(vgg_fmnist(seed=0), "c3_1", torch.randn(4, 1, 32, 32), n=20, progress=False)
        >>> len(p), p.channels, p.labels is None
        (20, 48, True)
    """

    layer: str
    features: np.ndarray
    image_index: np.ndarray
    position: np.ndarray
    boxes: np.ndarray
    windows: np.ndarray
    labels: np.ndarray | None
    classes: tuple[str, ...] | None
    thumbnails: np.ndarray
    rfield: RField
    map_size: tuple[int, int]
    input_size: tuple[int, int]
    n_images: int
    valid_positions: int
    min_inside: float
    seconds: float = 0.0
    top: TopActivations | None = field(default=None, repr=False)
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    _filters: dict[tuple[int, int, int], np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def __repr__(self) -> str:
        return (f"PatchFeatures({self.layer!r}: {len(self)} patches × {self.channels} maps from {self.n_images} "
                f"images, field {self.rfield.size} px, map {self.map_size[0]}×{self.map_size[1]}, "
                f"{self.valid_positions} usable positions per image)")

    @property
    def channels(self) -> int:
        """Number of feature maps (the dimension of the representation space)."""
        return int(self.features.shape[1])

    @property
    def available(self) -> int:
        """How many patches the data offers at this layer (images × usable positions)."""
        return self.n_images * self.valid_positions

    def crop(self, i: int, data: Any) -> np.ndarray:
        """Patch ``i`` at full resolution, cut again from the data, ready for ``plt.imshow``.

        Args:
            i: index of the patch.
            data: the data the patches were sampled from (random access).
        """
        img = int(self.image_index[i])
        if isinstance(data, PreparedImages):
            x = data.batch([img])
        elif isinstance(data, torch.Tensor):
            x = data[img : img + 1]
        elif isinstance(data, Dataset):
            x = first_tensor(data[img]).unsqueeze(0)
        else:
            raise TypeError("crop needs random access to the data: a PreparedImages, a tensor or a dataset")
        top, left, h, w = (int(v) for v in self.windows[i])
        win = _cut(x.float(), np.array([0]), np.array([top]), np.array([left]), h, w)
        return to_display(win[0], self.mean, self.std)


def _valid_positions(rf: RField, h: int, w: int, H: int, W: int, min_inside: float) -> np.ndarray:
    """Flat indices ``y*w + x`` of the positions whose clipped field is at least ``min_inside`` of its full size."""
    full = min(rf.size, H) * min(rf.size, W)
    ys = rf.start + np.arange(h) * rf.stride
    xs = rf.start + np.arange(w) * rf.stride
    in_y = np.clip(ys + rf.size, 0, H) - np.clip(ys, 0, H)
    in_x = np.clip(xs + rf.size, 0, W) - np.clip(xs, 0, W)
    area = in_y[:, None] * in_x[None, :]
    return np.flatnonzero(area.reshape(-1) >= min_inside * full - 1e-9)


def _window_starts(rf: RField, n: int, side: int) -> np.ndarray:
    """Top (or left) of the drawn window of each of ``n`` positions along one axis."""
    s = min(rf.size, side)
    a = rf.start + np.arange(n) * rf.stride
    return np.clip(0, a, a + rf.size - s) if rf.size > side else a


def _cut(x: torch.Tensor, b: np.ndarray, top: np.ndarray, left: np.ndarray, h: int, w: int) -> torch.Tensor:
    """Windows ``(len(b), C, h, w)`` of images ``x[b]`` at ``(top, left)``, zero outside the image."""
    H, W = x.shape[-2:]
    pt = max(0, -int(top.min())) if len(top) else 0
    pl = max(0, -int(left.min())) if len(left) else 0
    pb = max(0, int(top.max()) + h - H) if len(top) else 0
    pr = max(0, int(left.max()) + w - W) if len(left) else 0
    xp = F.pad(x, (pl, pr, pt, pb)) if pt or pl or pb or pr else x
    rows = torch.as_tensor(top + pt).view(-1, 1) + torch.arange(h).view(1, -1)  # (B, h)
    cols = torch.as_tensor(left + pl).view(-1, 1) + torch.arange(w).view(1, -1)  # (B, w)
    bi = torch.as_tensor(b).view(-1, 1, 1)
    win = xp[bi, :, rows[:, :, None], cols[:, None, :]]  # (B, h, w, C)
    return win.permute(0, 3, 1, 2)



@dataclass
class _LayerState:
    label: str
    path: str
    rf: RField
    valid: np.ndarray | None = None
    plan_counts: np.ndarray | None = None
    plan_starts: np.ndarray | None = None
    order: np.ndarray | None = None
    shift: int = 0
    map_size: tuple[int, int] = (0, 0)
    feats: np.ndarray | None = None
    img: np.ndarray | None = None
    pos: np.ndarray | None = None
    thumbs: np.ndarray | None = None
    labels: np.ndarray | None = None
    filled: int = 0
    miner: TopKMiner | None = None


def available_patches(
    net: Any,
    layer: str | nn.Module,
    n_images: int,
    input_size: int | tuple[int, int] | None = None,
    *,
    min_inside: float = 0.5,
) -> int:
    """How many patches :func:`patch_features` can sample at a layer from ``n_images`` images.

    Args:
        net: a :class:`~vizlib.Net` or an ``nn.Module``.
        layer: paper name, module path or module.
        n_images: number of images.
        input_size: image side or ``(H, W)`` (default: the Net's input size).
        min_inside: as for :func:`patch_features`.

    Returns:
        ``n_images`` times the positions whose field is not mostly padding.

    Example:
        >>> from vizlib.models import vgg_fmnist
        >>> available_patches(vgg_fmnist(seed=0), "c5_3", 1500, 32)
        6000
    """
    module, _ = _unwrap(net, need="available_patches")
    size = input_size if input_size is not None else getattr(net, "input_size", None)
    if size is None:
        raise ValueError("give the input size (the network alone does not fix it)")
    H, W = (size, size) if isinstance(size, int) else size
    rf = receptive_field(module, layer)
    h, w = _map_size(module, rf.path, H), _map_size(module, rf.path, W)
    return int(n_images) * len(_valid_positions(rf, h, w, H, W, min_inside))


def _plan(state: _LayerState, n: int, n_images: int, rng: np.random.Generator) -> None:
    """Spread ``n`` patches over the images (as evenly as possible) and over the usable positions.

    Image ``i`` gets ``n // M`` or one more patch (the images that get one more
    are drawn at random); its positions are consecutive entries of one random
    cyclic order of the usable positions, so within an image they are distinct
    and over the data every position is used equally often (to within one).
    """
    assert state.valid is not None
    P = len(state.valid)
    base, extra = divmod(n, n_images)
    counts = np.full(n_images, base, dtype=np.int64)
    counts[rng.choice(n_images, size=extra, replace=False)] += 1
    state.plan_counts = counts
    state.plan_starts = np.cumsum(counts) - counts
    state.order = rng.permutation(P)
    state.shift = int(rng.integers(P))


def patch_features(
    net: Any,
    layer: str | nn.Module | Sequence[str | nn.Module],
    data: Any,
    n: int = 10_000,
    *,
    labels: Sequence[int] | np.ndarray | None = None,
    classes: Sequence[str] | None = None,
    min_inside: float = 0.5,
    seed: int = 0,
    thumb: int = 24,
    mine_top: bool = True,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> PatchFeatures | dict[str, PatchFeatures]:
    """Sample ``n`` patches of a layer (or of several layers in one pass) over a dataset.

    Each spatial position of the layer's output on each image is a patch: its
    receptive field in the image, with the activations of all the layer's maps
    at that position as its feature vector. The data is streamed once; the
    forward pass stops at the (deepest) layer asked for. The patches are
    stratified: every image gives ``n // N`` or one more, and every usable
    position is used equally often (to within one). Positions whose receptive
    field lies less than ``min_inside`` inside the image (mostly zero padding)
    are left out; "full size" is the field's side capped at the image's side,
    so at layers whose field is larger than the image a position counts as
    usable when it sees at least ``min_inside`` of the whole image.

    Args:
        net: a :class:`~vizlib.Net` or an ``nn.Module``.
        layer: paper name, module path or module of a convolution or pooling
            layer; or a list of them (one pass, a dict of results).
        data: :class:`PreparedImages` (labels come with it), a tensor
            ``(N, C, H, W)`` of prepared images, or a map-style dataset of
            ``(image, label)`` items.
        n: patches to keep per layer.
        labels: the class of each image (overrides the data's).
        classes: class names (default: the data's).
        min_inside: share of the (capped) field that must lie inside the image.
        seed: seed of the sampling.
        thumb: side of the thumbnails kept for drawing.
        mine_top: also keep each map's strongest activation over the data (for
            the filters' deconvnet visualisations, :func:`filter_visualisations`).
        batch_size: images per forward pass (default: about 4 million input
            values per batch, at most 1024 images: 1024 at 32x32 or 64x64
            grey, 27 at 224x224 RGB).
        device: where to compute (default: where the model lives).
        progress: show a progress bar.

    Returns:
        A :class:`PatchFeatures`, or a dict label -> :class:`PatchFeatures` when
        ``layer`` is a list.

    Raises:
        ValueError: ``n`` larger than the patches the data offers (the message
            gives the number), ``n < 1``, a layer with fewer than 2 positions per
            image (its one "patch" is the whole image), no usable position,
            ``min_inside`` outside (0, 1], labels of the wrong length.
        ArgumentError: ``n``, ``thumb`` or ``batch_size`` not a whole number of at
            least 1 (``batch_size=0`` is not "auto"), a layer given as an int.
        KeyError: unknown layer, or a dense layer.
        ImageError: images that do not fit the network, or NaN or infinite pixels (counted).

    Example:
        >>> from vizlib.models import vgg_fmnist
        >>> net = vgg_fmnist(seed=0)
        >>> p = patch_features(net, "c2_1", torch.randn(8, 1, 32, 32), n=40, progress=False)
        >>> p.features.shape, p.map_size, p.rfield.size
        ((40, 24), (16, 16), 10)
    """
    module, _ = _unwrap(net, need="patch_features")
    many = not isinstance(layer, (str, nn.Module))
    layers = list(layer) if many else [layer]  # type: ignore[arg-type]
    if not layers:
        raise ValueError("no layer given")
    n = whole_number(n, "n", at_least=1, fix="It counts the patches to keep: a positive whole number")
    thumb = whole_number(thumb, "thumb", at_least=1)
    batch_size = batch_size_arg(batch_size)
    if not 0 < min_inside <= 1:
        raise ValueError(f"min_inside is a share of the receptive field, in (0, 1]; got {min_inside}")
    n = int(n)
    states: dict[str, _LayerState] = {}
    for lay in layers:
        label, path = resolve_layer(module, lay)
        states[path] = _LayerState(label, path, receptive_field(module, path))
    n_images = _data_length(data)
    if n_images < 1:
        raise EmptyData("the data holds no images: pass a tensor (N, C, H, W) with N >= 1 or a dataset that is "
                        "not empty")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n_images,):
            raise ValueError(f"labels must give one class per image: {n_images} expected, got shape {labels.shape}")
    if classes is None:
        classes = getattr(data, "classes", None)
    mean, std = _normalisation(net, data)

    run, dev = on_device(module, device)
    p0 = next(run.parameters(), None)
    dtype = p0.dtype if p0 is not None else torch.float32
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    seen = 0
    input_size: tuple[int, int] | None = None
    batch_size = batch_size or _batch_size(data)
    total = -(-n_images // batch_size)
    names = ", ".join(s.label for s in states.values())
    bar = tqdm(batches(data, batch_size, labels=True), total=total, desc=f"patches of {names}", unit="batch",
               disable=not progress)
    # the pass stops at the deepest layer asked for; Capture clones each output (an in-place ReLU
    # further on must not change it) and removes its hooks on leaving
    with preserved(run), torch.no_grad(), Capture(run, list(states), stop=True) as cap:
        try:
            for x, batch_labels in bar:
                x = check_image(x, module, batch=True, start=seen).to(dev, dtype)
                if labels is not None:
                    batch_labels = labels[seen : seen + len(x)]
                outputs = cap.run(x)
                acts = {path: outputs[label] for label, path in cap.resolved}
                if input_size is None:
                    input_size = (int(x.shape[2]), int(x.shape[3]))
                    for path, st in states.items():
                        _setup(st, acts[path], n, n_images, input_size, min_inside, thumb, x.shape[1],
                               mine_top, rng)
                for path, st in states.items():
                    _take(st, acts[path], x, seen, batch_labels, thumb, mean, std)
                seen += len(x)
        finally:
            bar.close()
    if seen != n_images:
        raise ValueError(f"the data announced {n_images} images but gave {seen}")
    seconds = time.perf_counter() - t0
    assert input_size is not None
    out: dict[str, PatchFeatures] = {}
    for st in states.values():
        assert st.feats is not None and st.img is not None and st.pos is not None and st.thumbs is not None
        top = None
        if st.miner is not None:
            top = TopActivations(
                layer=st.label, k=st.miner.k, values=st.miner.values.cpu(), image_index=st.miner.image_index.cpu(),
                position=st.miner.position.cpu(), n_images=seen, input_size=input_size, mean=mean, std=std,
            )
        out[st.label] = _finish(st, input_size, seen, min_inside, seconds, top, classes, mean, std)
    return out if many else next(iter(out.values()))


def _setup(st: _LayerState, act: torch.Tensor, n: int, n_images: int, input_size: tuple[int, int],
           min_inside: float, thumb: int, in_channels: int, mine_top: bool, rng: np.random.Generator) -> None:
    if act.ndim != 4:
        raise KeyError(f"layer {st.label!r} has no feature maps; choose a convolution or pooling layer")
    h, w = int(act.shape[2]), int(act.shape[3])
    if h * w < 2:
        raise ValueError(
            f"layer {st.label} has a {h}×{w} feature map for a {input_size[0]}×{input_size[1]} input: one position "
            "per image, so its only patch is the whole image and there is no space of patches to draw; "
            "pick a lower layer (vizlib.methods.embedding.equivalent_layers suggests one) or use larger images"
        )
    H, W = input_size
    st.map_size = (h, w)
    st.valid = _valid_positions(st.rf, h, w, H, W, min_inside)
    if len(st.valid) == 0:
        raise ValueError(
            f"no position of layer {st.label} has {min_inside:.0%} of its {st.rf.size}-pixel field inside a "
            f"{H}×{W} image; lower min_inside"
        )
    available = n_images * len(st.valid)
    if n > available:
        raise ValueError(
            f"n={n:,} patches asked for at layer {st.label}, but the data offers only {available:,} "
            f"({n_images:,} images × {len(st.valid)} usable positions of the {h}×{w} map): "
            f"ask for at most {available:,}, use more images, or pick a lower layer (more positions)"
        )
    _plan(st, n, n_images, rng)
    c = int(act.shape[1])
    st.feats = np.zeros((n, c), dtype=np.float32)
    st.img = np.zeros(n, dtype=np.int64)
    st.pos = np.zeros((n, 2), dtype=np.int64)
    shape = (n, thumb, thumb) if in_channels == 1 else (n, thumb, thumb, in_channels)
    st.thumbs = np.zeros(shape, dtype=np.uint8)
    st.labels = np.zeros(n, dtype=np.int64)
    if mine_top:
        st.miner = TopKMiner(c, 1, distinct_images=True, device=act.device, dtype=act.dtype)


def _take(st: _LayerState, act: torch.Tensor, x: torch.Tensor, first: int, batch_labels: np.ndarray | None,
          thumb: int, mean: tuple[float, ...] | None, std: tuple[float, ...] | None) -> None:
    assert st.valid is not None and st.order is not None and st.plan_counts is not None
    assert st.plan_starts is not None and st.feats is not None
    if st.miner is not None:
        st.miner.update(act)
    b = len(x)
    counts = st.plan_counts[first : first + b]
    if counts.sum() == 0:
        return
    P = len(st.valid)
    local = np.repeat(np.arange(b), counts)
    k = np.concatenate([np.arange(c) for c in counts])
    flat = st.valid[st.order[(st.shift + st.plan_starts[first + local] + k) % P]]
    h, w = st.map_size
    ys, xs = flat // w, flat % w
    lo, hi = st.filled, st.filled + len(flat)
    dev = act.device
    vec = act[torch.as_tensor(local, device=dev), :, torch.as_tensor(ys, device=dev), torch.as_tensor(xs, device=dev)]
    st.feats[lo:hi] = vec.float().cpu().numpy()
    st.img[lo:hi] = first + local
    st.pos[lo:hi, 0], st.pos[lo:hi, 1] = ys, xs
    assert st.labels is not None and st.thumbs is not None
    st.labels[lo:hi] = batch_labels[local] if batch_labels is not None else -1
    H, W = x.shape[-2:]
    top = _window_starts(st.rf, h, H)[ys]
    left = _window_starts(st.rf, w, W)[xs]
    win = _cut(x.float().cpu(), local, top, left, min(st.rf.size, H), min(st.rf.size, W))
    small = F.interpolate(win, size=(thumb, thumb), mode="bilinear", align_corners=False,
                          antialias=win.shape[-1] > thumb)
    st.thumbs[lo:hi] = _to_uint8(small, mean, std)
    st.filled = hi


def _to_uint8(x: torch.Tensor, mean: Any, std: Any) -> np.ndarray:
    """``(B, C, t, t)`` normalised windows -> ``(B, t, t)`` / ``(B, t, t, C)`` uint8 for display.

    With the network's mean and std the normalisation is undone; without them
    each window is min-max scaled (as :func:`vizlib.to_display` does).
    """
    if mean is not None and std is not None:
        x = x * torch.tensor(std, dtype=x.dtype).view(1, -1, 1, 1) + torch.tensor(mean, dtype=x.dtype).view(1, -1, 1, 1)
    else:
        lo = x.amin(dim=(1, 2, 3), keepdim=True)
        x = (x - lo) / (x.amax(dim=(1, 2, 3), keepdim=True) - lo).clamp_min(1e-12)
    u = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return u[..., 0] if u.shape[-1] == 1 else u


def _finish(st: _LayerState, input_size: tuple[int, int], n_images: int, min_inside: float, seconds: float,
            top: TopActivations | None, classes: Sequence[str] | None, mean: Any, std: Any) -> PatchFeatures:
    assert st.pos is not None and st.img is not None and st.feats is not None and st.labels is not None
    H, W = input_size
    a = st.rf.start + st.pos * st.rf.stride  # (n, 2) unclipped first row / column
    boxes = np.stack([np.clip(a[:, 0], 0, H), np.clip(a[:, 1], 0, W),
                      np.clip(a[:, 0] + st.rf.size, 0, H), np.clip(a[:, 1] + st.rf.size, 0, W)], 1)
    h, w = st.map_size
    windows = np.stack([_window_starts(st.rf, h, H)[st.pos[:, 0]], _window_starts(st.rf, w, W)[st.pos[:, 1]],
                        np.full(len(st.pos), min(st.rf.size, H)), np.full(len(st.pos), min(st.rf.size, W))], 1)
    have_labels = bool(len(st.labels)) and bool((st.labels >= 0).all())
    assert st.valid is not None and st.thumbs is not None
    return PatchFeatures(
        layer=st.label, features=st.feats, image_index=st.img, position=st.pos, boxes=boxes.astype(np.int64),
        windows=windows.astype(np.int64), labels=st.labels if have_labels else None,
        classes=tuple(classes) if classes is not None else None, thumbnails=st.thumbs, rfield=st.rf,
        map_size=st.map_size, input_size=input_size, n_images=n_images, valid_positions=len(st.valid),
        min_inside=min_inside, seconds=seconds, top=top, mean=tuple(mean) if mean else None,
        std=tuple(std) if std else None,
    )


# --------------------------------------------------------------------------- embedding


def tsne_backend() -> str:
    """``"openTSNE"`` when openTSNE is installed, else ``"scikit-learn"``.

    Example:
        >>> tsne_backend() in ("openTSNE", "scikit-learn")
        True
    """
    try:
        import openTSNE  # noqa: F401
    except ImportError:
        return "scikit-learn"
    return "openTSNE"


@dataclass
class Embedding:
    """A 2-D t-SNE embedding of feature vectors.

    Attributes:
        xy: ``(n, 2)`` embedded positions.
        method: ``"openTSNE"`` or ``"scikit-learn"``.
        perplexity: the perplexity used.
        seed: the seed of PCA, the initialisation and the optimisation.
        pca_dims: dimensions after PCA (the input's own when it had no more).
        pca_variance: share of the variance the PCA kept.
        seconds: wall time of PCA plus t-SNE.
        note: anything the reader should know (a fallback, a skipped PCA).

    Example:
        >>> e = embed_patches(np.random.default_rng(1).normal(size=(60, 4)), perplexity=5, method="sklearn")
        >>> len(e), e.method, e.pca_dims
        (60, 'scikit-learn', 4)
    """

    xy: np.ndarray
    method: str
    perplexity: float
    seed: int
    pca_dims: int
    pca_variance: float
    seconds: float
    note: str = ""

    def __len__(self) -> int:
        return int(self.xy.shape[0])

    def __repr__(self) -> str:
        return (f"Embedding({len(self)} points, {self.method}, perplexity {self.perplexity:g}, seed {self.seed}, "
                f"PCA to {self.pca_dims} dims, {self.seconds:.1f} s)")


def _threads(n_jobs: int | None) -> int:
    if n_jobs is None:
        return 1
    if int(n_jobs) < 1:
        raise ValueError(f"n_jobs must be at least 1; got {n_jobs}")
    return int(n_jobs)


def embed_patches(
    features: np.ndarray | PatchFeatures,
    *,
    perplexity: float = 30.0,
    pca_dims: int = 50,
    seed: int = 0,
    method: str = "auto",
    n_jobs: int | None = None,
    schedule: str = "fast",
) -> Embedding:
    """t-SNE of feature vectors after PCA, seeded: the same seed gives the same embedding.

    The features are centred and reduced by PCA to ``pca_dims`` dimensions
    (as is usual before t-SNE: it removes noise and makes the neighbour search
    cheap), then embedded with exact nearest-neighbour affinities, a PCA
    initialisation, early exaggeration 12 and then the normal phase, for the
    iterations of ``schedule`` (:data:`TSNE_SCHEDULE`).

    Args:
        features: ``(n, d)`` array, or :class:`PatchFeatures`.
        perplexity: t-SNE's perplexity (about the number of effective neighbours); below ``n``.
        pca_dims: dimensions kept by PCA (no PCA when the features have no more).
        seed: seed of the randomised PCA, the initialisation and t-SNE.
        method: ``"auto"`` (openTSNE when installed, else scikit-learn),
            ``"opentsne"`` or ``"sklearn"``.
        n_jobs: threads for PCA and t-SNE (default 1). t-SNE's threads meet
            at every one of its 750-1000 iterations, so on a machine whose cores
            are busy with other work (a shared 2-core machine) 2 threads were
            measured slower than 1 (``benchmarks/bench_embedding.py``); on an
            idle multi-core machine more threads pay for large ``n``.
        schedule: ``"fast"`` (125 + 250 iterations, openTSNE's FFT grid at
            :data:`FFT_INTS_IN_INTERVAL`) or ``"standard"`` (openTSNE's own
            250 + 500 and grid). scikit-learn always runs its own schedule.

    Returns:
        An :class:`Embedding`.

    Raises:
        ValueError: not a 2-d array of at least 2 points; perplexity not
            positive or not below the number of points; unknown method or schedule.
        ImportError: ``method="opentsne"`` and openTSNE is not installed.

    Example:
        >>> e = embed_patches(np.random.default_rng(0).normal(size=(200, 8)), perplexity=10, method="sklearn")
        >>> e.xy.shape
        (200, 2)
    """
    x = features.features if isinstance(features, PatchFeatures) else np.asarray(features)
    if x.ndim != 2:
        raise ValueError(f"features must be a 2-d array (points × dimensions); got shape {x.shape}")
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"t-SNE needs at least 2 points; got {n}")
    if not perplexity > 0:
        raise ValueError(f"perplexity must be positive; got {perplexity}")
    if perplexity >= n:
        raise ValueError(
            f"perplexity {perplexity:g} is not below the number of points ({n}): t-SNE cannot give each point "
            f"that many effective neighbours; use a perplexity below {n} (5 to 50 is usual) or sample more patches"
        )
    if schedule not in TSNE_SCHEDULE:
        raise ValueError(f"unknown t-SNE schedule {schedule!r}; use {' or '.join(map(repr, TSNE_SCHEDULE))}")
    choice = method.lower().replace("-", "").replace("_", "")
    if choice not in ("auto", "opentsne", "sklearn", "scikitlearn"):
        raise ValueError(f"unknown t-SNE method {method!r}; use 'auto', 'opentsne' or 'sklearn'")
    notes = []
    if choice == "auto":
        backend = tsne_backend()
        if backend == "scikit-learn":
            notes.append("openTSNE is not installed, so scikit-learn's (slower) t-SNE was used: "
                         "pip install 'openTSNE>=1.0,<2' for the faster one")
        elif 3 * perplexity >= n - 1:
            backend = "scikit-learn"
            notes.append(f"with {n} points openTSNE would lower perplexity {perplexity:g}; scikit-learn keeps it")
    elif choice == "opentsne":
        backend = "openTSNE"
    else:
        backend = "scikit-learn"
    jobs = _threads(n_jobs)
    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    with threadpool_limits(limits=jobs):  # BLAS and OpenMP (scikit-learn's gradient) use `jobs` threads too
        xy, dims, variance = _pca_tsne(x, backend, perplexity, pca_dims, seed, jobs, notes, schedule)
    return Embedding(xy, backend, float(perplexity), seed, dims, variance, time.perf_counter() - t0, "; ".join(notes))


def _pca_tsne(x: np.ndarray, backend: str, perplexity: float, pca_dims: int, seed: int, jobs: int,
              notes: list[str], schedule: str = "fast") -> tuple[np.ndarray, int, float]:
    z = x.astype(np.float64)
    z = z - z.mean(0, keepdims=True)
    variance = 1.0
    dims = z.shape[1]
    if dims > pca_dims:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=pca_dims, random_state=seed, svd_solver="randomized" if dims > 2 * pca_dims else "full")
        z = pca.fit_transform(z)
        variance = float(pca.explained_variance_ratio_.sum())
        dims = pca_dims
    else:
        notes.append(f"no PCA: the features have only {dims} dimensions")
    if backend == "openTSNE":
        import openTSNE

        # Barnes-Hut up to BH_MAX_POINTS, FFT interpolation above (see BH_MAX_POINTS)
        method = "bh" if len(z) <= BH_MAX_POINTS else "fft"
        grid = {"ints_in_interval": FFT_INTS_IN_INTERVAL} if schedule == "fast" and method == "fft" else {}
        tsne = openTSNE.TSNE(n_components=2, perplexity=perplexity, neighbors="exact", initialization="pca",
                             negative_gradient_method=method, n_jobs=jobs, random_state=seed, verbose=False,
                             **TSNE_SCHEDULE[schedule], **grid)
        xy = np.asarray(tsne.fit(z), dtype=np.float64)
    else:
        from sklearn.manifold import TSNE

        tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=seed,
                    n_jobs=jobs, method="barnes_hut")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            xy = np.asarray(tsne.fit_transform(z), dtype=np.float64)
    return xy, dims, variance


# --------------------------------------------------------------------------- grid fill


@dataclass
class GridFill:
    """Yu's fill of the plane: each cell of a regular grid shows the point embedded nearest its centre.

    Attributes:
        index: ``(rows, cols)`` index of the nearest point of each cell; row 0
            is the top of the plane (largest y), as an image is drawn.
        distance: ``(rows, cols)`` distance from each cell's centre to that point.
        extent: ``(x0, x1, y0, y1)`` of the gridded area.

    Example:
        >>> g = fill_grid(np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0]]), 3)
        >>> g.shape, g.index.shape == g.distance.shape
        ((3, 3), True)
    """

    index: np.ndarray
    distance: np.ndarray
    extent: tuple[float, float, float, float]

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.index.shape[0]), int(self.index.shape[1])

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, cols)`` x and y of every cell's centre."""
        return _centres(self.extent, *self.shape)

    def mosaic(self, thumbnails: np.ndarray) -> np.ndarray:
        """The filled plane as one image: each cell's nearest thumbnail, ``(rows·t, cols·t[, 3])``."""
        rows, cols = self.shape
        t = thumbnails[self.index.reshape(-1)]  # (rows*cols, t, t[, C])
        side = t.shape[1]
        t = t.reshape(rows, cols, side, side, *t.shape[3:])
        t = np.moveaxis(t, 2, 1)  # rows, t, cols, t, ...
        return t.reshape(rows * side, cols * side, *t.shape[4:])


def _centres(extent: tuple[float, float, float, float], rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    x0, x1, y0, y1 = extent
    cx = x0 + (np.arange(cols) + 0.5) * (x1 - x0) / cols
    cy = y1 - (np.arange(rows) + 0.5) * (y1 - y0) / rows
    return np.broadcast_to(cx[None, :], (rows, cols)), np.broadcast_to(cy[:, None], (rows, cols))


def square_extent(xy: np.ndarray, margin: float = 0.0) -> tuple[float, float, float, float]:
    """The smallest square (plus ``margin`` of its side on each edge) around the points.

    Example:
        >>> square_extent(np.array([[0.0, 0.0], [2.0, 1.0]]))
        (0.0, 2.0, -0.5, 1.5)
    """
    lo, hi = xy.min(0), xy.max(0)
    mid = (lo + hi) / 2
    half = max(float((hi - lo).max()) / 2, 1e-9) * (1 + 2 * margin)
    return float(mid[0] - half), float(mid[0] + half), float(mid[1] - half), float(mid[1] + half)


def fill_grid(
    xy: np.ndarray | Embedding,
    cells: int | tuple[int, int] = 40,
    *,
    extent: tuple[float, float, float, float] | None = None,
) -> GridFill:
    """Fill every cell of a regular grid with the nearest embedded point (exact, brute force).

    Args:
        xy: ``(n, 2)`` embedded points, or an :class:`Embedding`.
        cells: cells per side, or ``(rows, cols)``.
        extent: ``(x0, x1, y0, y1)`` to grid (default: the smallest square
            around the points, so cells are square).

    Returns:
        A :class:`GridFill`. Ties go to the point with the lower index.

    Raises:
        ValueError: no points, not ``(n, 2)``, fewer than one cell, an empty extent.

    Example:
        >>> g = fill_grid(np.array([[0.0, 0.0], [1.0, 1.0]]), 2)
        >>> g.index.tolist()  # row 0 is the top: (1, 1) fills the top right; the bottom right ties, lower index wins
        [[0, 1], [0, 0]]
    """
    pts = np.asarray(xy.xy if isinstance(xy, Embedding) else xy, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) == 0:
        raise ValueError(f"expected (n, 2) embedded points with n >= 1; got shape {pts.shape}")
    rows, cols = (cells, cells) if isinstance(cells, (int, np.integer)) else cells
    rows, cols = int(rows), int(cols)
    if rows < 1 or cols < 1:
        raise ValueError(f"the grid needs at least one cell per side; got {rows}×{cols}")
    ext = tuple(float(v) for v in (extent if extent is not None else square_extent(pts)))
    if not (ext[1] > ext[0] and ext[3] > ext[2]):
        raise ValueError(f"extent (x0, x1, y0, y1) must have x1 > x0 and y1 > y0; got {ext}")
    cx, cy = _centres(ext, rows, cols)  # type: ignore[arg-type]
    cx, cy = cx.reshape(-1), cy.reshape(-1)
    index = np.empty(len(cx), dtype=np.int64)
    dist = np.empty(len(cx), dtype=np.float64)
    chunk = max(1, 2_000_000 // len(pts))
    for s in range(0, len(cx), chunk):
        d = (cx[s : s + chunk, None] - pts[None, :, 0]) ** 2 + (cy[s : s + chunk, None] - pts[None, :, 1]) ** 2
        j = d.argmin(1)  # the first minimum: ties go to the lower index
        index[s : s + chunk] = j
        dist[s : s + chunk] = np.sqrt(d[np.arange(len(j)), j])
    return GridFill(index.reshape(rows, cols), dist.reshape(rows, cols), ext)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- regions


@dataclass(frozen=True)
class Region:
    """A square part of the plane to zoom into, in fractions of the plane's extent.

    Attributes:
        x, y: the centre, 0 (left / bottom) to 1 (right / top).
        size: the side, as a share of the plane's side.

    Example:
        >>> Region(0.5, 0.5, 0.25).bounds((0.0, 4.0, 0.0, 4.0))
        (1.5, 2.5, 1.5, 2.5)
    """

    x: float
    y: float
    size: float = 0.2

    def __post_init__(self) -> None:
        if not (0 <= self.x <= 1 and 0 <= self.y <= 1):
            raise ValueError(f"a region's centre is given in fractions of the plane, 0..1; got ({self.x}, {self.y})")
        if not 0 < self.size <= 1:
            raise ValueError(f"a region's size is a share of the plane's side, in (0, 1]; got {self.size}")

    def bounds(self, extent: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """``(x0, x1, y0, y1)`` of the region in embedding coordinates."""
        x0, x1, y0, y1 = extent
        cx, cy = x0 + self.x * (x1 - x0), y0 + self.y * (y1 - y0)
        hx, hy = self.size * (x1 - x0) / 2, self.size * (y1 - y0) / 2
        return cx - hx, cx + hx, cy - hy, cy + hy


def default_regions(xy: np.ndarray | Embedding, n: int = 3, size: float = 0.2, seed: int = 0) -> list[Region]:
    """``n`` regions to zoom into: centred on the points nearest the centres of ``n`` k-means clusters of the plane.

    Example:
        >>> pts = np.array([[0, 0], [0, 1], [10, 10], [10, 11]], float)
        >>> len(default_regions(pts, n=2))
        2
    """
    from sklearn.cluster import KMeans

    pts = np.asarray(xy.xy if isinstance(xy, Embedding) else xy, dtype=np.float64)
    if n < 1 or n > len(pts):
        raise ValueError(f"n must be between 1 and the number of points ({len(pts)}); got {n}")
    ext = square_extent(pts)
    km = KMeans(n_clusters=n, n_init=4, random_state=seed).fit(pts)
    out = []
    for c in km.cluster_centers_:
        p = pts[((pts - c) ** 2).sum(1).argmin()]
        fx = (p[0] - ext[0]) / (ext[1] - ext[0])
        fy = (p[1] - ext[2]) / (ext[3] - ext[2])
        half = size / 2
        out.append(Region(float(np.clip(fx, half, 1 - half)), float(np.clip(fy, half, 1 - half)), size))
    return sorted(out, key=lambda r: (-r.y, r.x))


# --------------------------------------------------------------------------- the space


@dataclass
class RepresentationSpace:
    """A layer's sampled patches, their t-SNE embedding and the filled plane.

    Attributes:
        patches: the sampled :class:`PatchFeatures`.
        embedding: their :class:`Embedding`.
        grid: the filled plane (:class:`GridFill`).
        seconds: wall time of each step (``"sampling"``, ``"embedding"``, ``"grid"``).

    Example:
        >>> from vizlib.models import vgg_fmnist
        >>> patches = patch_features(vgg_fmnist(seed=0), "c2_1", torch.randn(8, 1, 32, 32), n=40, progress=False)
        >>> space = representation_space(patches, cells=5, perplexity=5, method="sklearn")
        >>> space.layer, space.grid.shape, sorted(space.seconds)
        ('c2_1', (5, 5), ['embedding', 'grid', 'sampling'])
    """

    patches: PatchFeatures
    embedding: Embedding
    grid: GridFill
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def layer(self) -> str:
        return self.patches.layer

    def __repr__(self) -> str:
        return (f"RepresentationSpace({self.layer!r}: {len(self.patches)} patches, {self.embedding.method}, "
                f"perplexity {self.embedding.perplexity:g}, grid {self.grid.shape[0]}×{self.grid.shape[1]})")

    def zoom(self, region: Region, cells: int = 12) -> GridFill:
        """The plane inside ``region``, filled again at a finer grid (Yu's column (b))."""
        return fill_grid(self.embedding.xy, cells, extent=region.bounds(self.grid.extent))

    def mosaic(self, grid: GridFill | None = None) -> np.ndarray:
        """The filled plane (or a zoom of it) as one image."""
        return (grid or self.grid).mosaic(self.patches.thumbnails)


def representation_space(patches: PatchFeatures, *, cells: int = 30, **options: Any) -> RepresentationSpace:
    """Embed sampled patches with t-SNE and fill the plane (Yu Fig. 3 (a)).

    Args:
        patches: from :func:`patch_features`.
        cells: grid cells per side of the filled plane.
        options: ``perplexity``, ``pca_dims``, ``seed``, ``method``, ``n_jobs``,
            passed to :func:`embed_patches` (with its defaults).

    Returns:
        A :class:`RepresentationSpace`, with the time of each step.

    Example:
        >>> space = representation_space(vl.patch_features(net, "c5_3", data, n=2000))   # doctest: +SKIP
        >>> space.mosaic().shape                                                          # doctest: +SKIP
        (720, 720)
    """
    emb = embed_patches(patches, **options)
    t0 = time.perf_counter()
    grid = fill_grid(emb.xy, cells)
    t_grid = time.perf_counter() - t0
    return RepresentationSpace(patches, emb, grid,
                               {"sampling": patches.seconds, "embedding": emb.seconds, "grid": t_grid})


def select_patches(space: RepresentationSpace, regions: Sequence[Region], per_region: int = 1) -> list[list[int]]:
    """In each region, the ``per_region`` patches embedded nearest its centre (Yu's column (c)).

    Returns:
        One list of patch indices per region (shorter when the region holds fewer patches).

    Example:
        >>> space = representation_space(patches, perplexity=10)          # doctest: +SKIP
        >>> select_patches(space, default_regions(space.embedding))        # doctest: +SKIP
        [[412], [87], [1033]]
    """
    xy = space.embedding.xy
    out = []
    for r in regions:
        x0, x1, y0, y1 = r.bounds(space.grid.extent)
        inside = np.flatnonzero((xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1))
        d = (xy[inside, 0] - (x0 + x1) / 2) ** 2 + (xy[inside, 1] - (y0 + y1) / 2) ** 2
        out.append(inside[np.argsort(d, kind="stable")[:per_region]].tolist())
    return out


def top_filters(patches: PatchFeatures, index: int, n: int = 6) -> list[int]:
    """The ``n`` feature maps with the highest activations for patch ``index`` (strongest first).

    Example:
        >>> p = patch_features(net, "c5_3", data, n=1000)   # doctest: +SKIP
        >>> top_filters(p, 0, 3)                             # doctest: +SKIP
        [17, 40, 3]
    """
    if not 0 <= index < len(patches):
        raise IndexError(f"patch {index} does not exist; there are {len(patches)} patches")
    f = patches.features[index]
    return np.argsort(-f, kind="stable")[: min(n, len(f))].tolist()


def filter_visualisations(
    net: Any,
    patches: PatchFeatures,
    data: Any,
    channels: Sequence[int],
    *,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> dict[int, np.ndarray]:
    """Each filter shown by the deconvnet projection of its strongest activation over the data (Yu Fig. 3 (d)).

    Uses the strongest activation of each map that :func:`patch_features` kept
    while streaming, goes back for just those images, and projects them with
    the deconvnet (:meth:`vizlib.methods.topk.TopActivations.collect`).

    Args:
        net: the network the patches came from.
        patches: with ``top`` (sampled with ``mine_top=True``).
        data: the same data, random access (:class:`PreparedImages`, a tensor or a dataset).
        channels: feature maps to show.

    Returns:
        channel -> projection image (``(h, w)`` or ``(h, w, 3)`` in [0, 1], grey is zero).
        Projections already computed for these patches, net and data are reused.

    Example:
        >>> p = patch_features(net, "c5_3", data, n=1000)                  # doctest: +SKIP
        >>> vis = filter_visualisations(net, p, data, top_filters(p, 0, 3))  # doctest: +SKIP
        >>> sorted(vis)                                                     # doctest: +SKIP
        [3, 17, 40]
    """
    if patches.top is None:
        raise ValueError("these patches carry no top activations: sample them with patch_features(..., mine_top=True)")
    module, _ = _unwrap(net)
    key = lambda c: (id(module), id(data), c)  # noqa: E731
    chans = sorted(set(int(c) for c in channels))
    todo = [c for c in chans if key(c) not in patches._filters]
    if todo:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            top = patches.top.collect(net, data, todo, device=device, progress=progress)
        for c in todo:
            patches._filters[key(c)] = top.projection_images(c)[0]
    return {c: patches._filters[key(c)] for c in chans}


# --------------------------------------------------------------------------- neighbour agreement


def neighbour_agreement(
    points: np.ndarray,
    labels: np.ndarray,
    image_index: np.ndarray,
    k: int = 10,
) -> tuple[float, np.ndarray]:
    """Share of each point's ``k`` nearest neighbours from other images whose image has the same class.

    Neighbours are exact (Euclidean); patches of the point's own image are
    skipped, so the measure is about *different* images with the same class.

    Args:
        points: ``(n, d)`` features or embedded positions.
        labels: ``(n,)`` class of each point's image.
        image_index: ``(n,)`` which image each point comes from.
        k: neighbours per point.

    Returns:
        The mean over points, and the per-point shares ``(n,)``.

    Raises:
        ValueError: mismatched lengths, ``k < 1``, or fewer than ``k`` points from other images.

    Example:
        >>> pts = np.array([[0.0], [0.1], [5.0], [5.1]])
        >>> neighbour_agreement(pts, np.array([0, 0, 1, 1]), np.arange(4), k=1)[0]
        1.0
    """
    from sklearn.neighbors import NearestNeighbors

    pts = np.asarray(points, dtype=np.float64)
    labels, image_index = np.asarray(labels), np.asarray(image_index)
    n = len(pts)
    if pts.ndim != 2 or labels.shape != (n,) or image_index.shape != (n,):
        raise ValueError(f"points (n, d), labels (n,) and image_index (n,) must match; got {pts.shape}, "
                         f"{labels.shape}, {image_index.shape}")
    if k < 1:
        raise ValueError(f"k must be at least 1; got {k}")
    per_image = np.bincount(np.unique(image_index, return_inverse=True)[1])
    most = int(per_image.max())
    if n - most < k:
        raise ValueError(f"{n} points, up to {most} of them from one image: fewer than k={k} neighbours from "
                         "other images; lower k or sample more images")
    want = min(n, k + most)
    nn_ = NearestNeighbors(n_neighbors=want, algorithm="brute" if pts.shape[1] > 3 else "auto").fit(pts)
    _, nb = nn_.kneighbors(pts)
    other = image_index[nb] != image_index[:, None]
    keep = other & (np.cumsum(other, axis=1) <= k)
    same = (labels[nb] == labels[:, None]) & keep
    share = same.sum(1) / k
    return float(share.mean()), share


def neighbourhood_preservation(features: np.ndarray | PatchFeatures, xy: np.ndarray | "Embedding",
                                k: int = 10) -> float:
    """How much of each point's neighbourhood survives the embedding: the mean share of its ``k``
    nearest neighbours in feature space that are also among its ``k`` nearest in the plane.

    1 when the plane keeps every neighbourhood, about ``k / n`` for a random
    placement. Neighbours are exact (Euclidean), the point itself excluded, in
    the features as given (before PCA).

    Args:
        features: ``(n, d)`` features, or :class:`PatchFeatures`.
        xy: ``(n, 2)`` embedded positions, or an :class:`Embedding` of the same points.
        k: neighbours per point (``1 <= k < n``).

    Raises:
        ValueError: mismatched lengths or a bad ``k``.

    Example:
        >>> pts = np.array([[0.0, 0], [1, 0], [10, 0], [11, 0]])
        >>> neighbourhood_preservation(pts, pts[:, :1] * 2, k=1)
        1.0
        >>> neighbourhood_preservation(pts, np.array([[0.0], [10], [1], [11]]), k=1)
        0.0
    """
    from sklearn.neighbors import NearestNeighbors

    a = np.asarray(features.features if isinstance(features, PatchFeatures) else features, dtype=np.float64)
    b = np.asarray(xy.xy if isinstance(xy, Embedding) else xy, dtype=np.float64)
    n = len(a)
    if a.ndim != 2 or b.ndim != 2 or len(b) != n:
        raise ValueError(f"features (n, d) and positions (n, 2) must hold the same points; got {a.shape} and {b.shape}")
    if not 1 <= int(k) < n:
        raise ValueError(f"k must be at least 1 and below the number of points ({n}); got {k}")
    k = int(k)

    def neighbours(pts: np.ndarray) -> np.ndarray:
        nb = NearestNeighbors(n_neighbors=k + 1, algorithm="brute" if pts.shape[1] > 3 else "auto").fit(pts)
        idx = nb.kneighbors(pts, return_distance=False)
        # drop the point itself (with duplicates it need not come first)
        own = idx == np.arange(n)[:, None]
        drop = np.where(own.any(1), own.argmax(1), k)
        keep = np.ones_like(idx, dtype=bool)
        keep[np.arange(n), drop] = False
        return idx[keep].reshape(n, k)

    na, nb_ = neighbours(a), neighbours(b)
    na.sort(axis=1)
    nb_.sort(axis=1)
    common = sum(len(np.intersect1d(x, y, assume_unique=True)) for x, y in zip(na, nb_))
    return float(common / (n * k))


@dataclass(frozen=True)
class Agreement:
    """Nearest-neighbour class agreement of one layer's patches.

    Attributes:
        network: a label for the network.
        layer: the layer.
        n: patches.
        k: neighbours per patch.
        feature: mean agreement in the layer's feature space.
        embedding: mean agreement in the 2-D embedding.
        chance: what neighbours drawn at random from the other images would give.

    Example:
        >>> import vizlib as vl
        >>> net = vl.load("vgg16", "bundled")
        >>> data = vl.PreparedImages(vl.fashion_mnist_sample().subset(slice(0, 30)), net)
        >>> space = representation_space(patch_features(net, "c5_3", data, n=60, progress=False), perplexity=5)
        >>> a = class_agreement(space, k=3, network="vgg16")
        >>> a.layer, a.n, 0 <= a.chance <= 1
        ('c5_3', 60, True)
    """

    network: str
    layer: str
    n: int
    k: int
    feature: float
    embedding: float
    chance: float


def _chance(labels: np.ndarray, image_index: np.ndarray) -> float:
    """Mean over patches of the share of other images' patches with the same class (exact baseline)."""
    _, inv, per_image = np.unique(image_index, return_inverse=True, return_counts=True)
    per_class = np.bincount(labels, minlength=int(labels.max()) + 1)
    own = per_image[inv]
    return float(((per_class[labels] - own) / (len(labels) - own)).mean())


def class_agreement(space: RepresentationSpace, k: int = 10, network: str = "") -> Agreement:
    """Yu's claim, measured: how often a patch's nearest neighbours come from images of its class.

    Computed in the layer's feature space (all maps) and in the t-SNE plane,
    with the chance level (the class frequencies among other images' patches)
    beside: at a layer that groups patches by meaning, the agreement is well
    above chance; where texture and simple shape decide, it is closer to chance.

    Raises:
        ValueError: the patches carry no class labels.

    Example:
        >>> space = representation_space(patch_features(net, "c5_3", data, n=1000))   # doctest: +SKIP
        >>> a = class_agreement(space, k=10, network="vgg16")                          # doctest: +SKIP
        >>> a.feature > a.chance                                                       # doctest: +SKIP
        True
    """
    p = space.patches
    if p.labels is None:
        raise ValueError("the patches carry no class labels: sample them from labelled data (vizlib.PreparedImages)")
    feat, _ = neighbour_agreement(p.features, p.labels, p.image_index, k)
    emb, _ = neighbour_agreement(space.embedding.xy, p.labels, p.image_index, k)
    return Agreement(network, p.layer, len(p), k, feat, emb, _chance(p.labels, p.image_index))



# --------------------------------------------------------------------------- choosing layers


@dataclass(frozen=True)
class LayerChoice:
    """The low and high layer to compare, with the table that justifies them.

    Attributes:
        low: the convolutional layer whose field covers the share of the image
            nearest to Yu's c4_1 (60 of 224 pixels).
        high: the deepest convolutional layer with at least 2 positions per image (Yu's c5_3).
        table: every convolutional layer: field, share of the image, map size.

    Example:
        >>> from vizlib.models import vgg_fmnist
        >>> choice = equivalent_layers(vgg_fmnist(), 32)
        >>> choice.low, choice.high
        ('c2_1', 'c5_3')
    """

    low: str
    high: str
    table: Table

    @property
    def layers(self) -> tuple[str, str]:
        return self.low, self.high


def equivalent_layers(model: Any, input_size: int) -> LayerChoice:
    """Yu's c4_1 and c5_3 in another network, for a given input size.

    Yu's c4_1 sees 60 of 224 pixels (27 % of the image's side) and c5_3 196
    (88 %). Depth alone does not carry over to small inputs: in the bundled
    nets (64 or 32 pixels) a field reaches the whole image after two or three
    layers. So the low layer is the convolutional layer whose field covers the
    share of the image nearest to c4_1's, and the high layer is the deepest
    convolutional layer that still has at least 2 positions per image.

    Args:
        model: a network (or :class:`~vizlib.Net`) with paper layer names.
        input_size: the side of its input images.

    Returns:
        A :class:`LayerChoice`.

    Example:
        >>> import vizlib as vl
        >>> equivalent_layers(vl.vgg16(), 224).layers
        ('c4_1', 'c5_3')
    """
    module, _ = _unwrap(model)
    assert module is not None
    rows, convs = [], []
    for r in receptive_fields(module):
        if not (r.name.startswith("c") and r.name[1:2].isdigit()):
            continue
        side = _map_size(module, r.path, input_size)
        convs.append((r.name, r.size / input_size, side))
    usable = [c for c in convs if c[2] * c[2] >= 2]
    if not usable:
        raise ValueError(f"no convolutional layer has 2 or more positions for a {input_size}-pixel input")
    low = min(usable, key=lambda c: abs(c[1] - YU_LOW_SHARE))[0]
    high = usable[-1][0]
    for name, share, side in convs:
        note = "low (share nearest Yu's c4_1)" if name == low else ("high (deepest with 2+ positions)"
                                                                    if name == high else "")
        rows.append([name, round(share * input_size), round(share, 2), f"{side}×{side}", note])
    table = Table(["layer", "field (px)", "field / image", "map", "chosen"], rows,
                  title=f"{getattr(model, 'title', None) or getattr(module, 'vizlib_arch', '')} at {input_size}×{input_size}: "
                        f"Yu's c4_1 sees "
                        f"{YU_LOW_SHARE:.2f} of the image, c5_3 {YU_HIGH_SHARE:.2f}")
    return LayerChoice(low, high, table)

