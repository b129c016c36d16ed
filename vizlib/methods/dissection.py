"""Network dissection (Bau et al. 2017): which units detect which concepts, and how many.

Masum §III-C: Bau et al. "proposed the Network Dissection, in which each
convolutional neuron is directly associated with a particular semantic
concept". For every unit ``k`` of a layer:

1. its threshold ``T_k`` is the top quantile ``q = 0.005`` of its activations
   over every position of every image of the dataset;
2. each image's map is upsampled (bilinear) to the input's size and
   thresholded: ``M_k = A_k >= T_k`` (and above the unit's dataset minimum, so
   that a unit that is off on more than 99.5 % of positions has no mask);
3. against every concept ``c``'s masks ``L_c``, over the dataset,
   ``IoU_{k,c} = sum |M_k & L_c| / sum |M_k | L_c|`` (summed over the images on
   which ``c`` is annotated);
4. the unit detects its best concept when that IoU exceeds 0.04.

Per layer: how many units are detectors, how many unique concepts they detect,
by category (:meth:`Dissection.table`); Bau compare a trained net with the same
net untrained (:func:`untrained`: far fewer detectors) and the layers among
themselves (detectors grow with depth).

Streaming, with bounded memory. The thresholds come from a multi-pass
histogram (:class:`StreamingQuantile`): one pass for each unit's range, then
passes of ``bins``-bin histograms, each inside the bin that held the quantile,
until that bin holds one distinct value: the threshold is then the exact order
statistic (two or three histogram passes at 1,024 bins). A last pass
accumulates intersections and unions. State: ``bins`` counts per unit and a
units x concepts table; one batch in memory at a time.

Concepts. :func:`bundled_concepts` gives the Bundled set's, exact by
construction (:func:`~vizlib.core.composed.bundled_sample`): each garment
class's object mask (category ``"object"``; an image of another class has an
empty mask for it) and each background photo's region, the pixels off the
garment (category ``"background"``). :class:`Broden` reads the Broden dataset
(Bau's) from a folder in its own format for the ImageNet set, with a clear
error when it is not there (it is not downloaded for you).

Example::

    net = vl.load("alexnet", "bundled")
    d = vl.dissect(net, ["c1", "c2", "c3", "c4", "c5"], vl.bundled_concepts())
    d.table()
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from ..core.progress import tqdm

from ..core.args import whole_number
from ..core.batches import batches
from ..core.device import on_device
from ..core.errors import ArgumentError, DatasetUnavailable, EmptyData
from ..core.hooks import Capture, preserved
from ..core.images import _unwrap, check_image
from ..core.layers import resolve_layer, seeded
from ..core.tables import Table

__all__ = ["QUANTILE", "IOU_THRESHOLD", "Concept", "ConceptSet", "bundled_concepts", "Broden", "BrodenImages",
           "LayerDissection", "Dissection", "dissect", "untrained", "StreamingQuantile"]

QUANTILE = 0.005  #: Bau et al.'s top quantile of each unit's activations
IOU_THRESHOLD = 0.04  #: a unit detects a concept when its IoU exceeds this


@dataclass(frozen=True)
class Concept:
    """A concept: its name and its category (``"object"``, ``"background"``, Broden's ``"texture"``...).

    Example:
        >>> Concept("Trouser", "object").category
        'object'
    """

    name: str
    category: str


class ConceptSet:
    """Concept masks for a dataset's images, in the data's order: read a slice at a time.

    Subclasses give :meth:`masks` (and :meth:`annotated` when a concept is labelled on some images
    only, as in Broden) and :meth:`data` (the images, prepared for a net, in the same order).

    Attributes:
        concepts: the concepts, in the order of the masks' second axis.
        size: ``(H, W)`` of the masks.

    Example:
        >>> cs = ConceptSet([Concept("a", "object")], (2, 2), 3)
        >>> len(cs), cs.annotated(0, 2).shape
        (3, torch.Size([2, 1]))
    """

    def __init__(self, concepts: Sequence[Concept], size: tuple[int, int], n: int) -> None:
        self.concepts = list(concepts)
        self.size = (int(size[0]), int(size[1]))
        self._n = int(n)

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        cats = sorted({c.category for c in self.concepts})
        return f"{type(self).__name__}({len(self)} images, {len(self.concepts)} concepts: {', '.join(cats)})"

    @property
    def categories(self) -> list[str]:
        """The categories, in order of first appearance."""
        return list(dict.fromkeys(c.category for c in self.concepts))

    def masks(self, start: int, stop: int) -> torch.Tensor:
        """``(stop - start, K, H, W)`` bool: concept ``k``'s mask on each image."""
        raise NotImplementedError

    def annotated(self, start: int, stop: int) -> torch.Tensor:
        """``(stop - start, K)`` bool: whether concept ``k`` is labelled on the image (default: all are)."""
        return torch.ones(stop - start, len(self.concepts), dtype=torch.bool)

    def data(self, net: Any) -> Any:
        """The images prepared for ``net``, in the masks' order."""
        raise NotImplementedError(f"{type(self).__name__} does not know its images: pass data= to dissect")


class _ComposedConcepts(ConceptSet):
    """The Bundled set's concepts: garment classes (object masks) and background photos (their regions)."""

    def __init__(self, sample: Any) -> None:
        from ..core.composed import background_names

        if getattr(sample, "masks", None) is None or getattr(sample, "backgrounds", None) is None:
            raise ArgumentError("bundled_concepts takes a composed set with masks and backgrounds "
                                "(vizlib.core.composed.bundled_sample() or composed_sample()), not "
                                f"{type(sample).__name__}")
        self.sample = sample
        self.classes = tuple(sample.classes)
        self.background_names = tuple(background_names())
        concepts = [Concept(c, "object") for c in self.classes]
        concepts += [Concept(b, "background") for b in self.background_names]
        super().__init__(concepts, sample.masks.shape[1:], len(sample))
        bg = {b: i for i, b in enumerate(self.background_names)}
        self._bg_index = np.array([bg[str(b)] for b in sample.backgrounds])

    def masks(self, start: int, stop: int) -> torch.Tensor:
        obj = torch.from_numpy(np.array(self.sample.masks[start:stop], dtype=bool))  # a copy: the sample is read-only
        labels = torch.from_numpy(np.array(self.sample.labels[start:stop], dtype=np.int64))
        where = torch.from_numpy(self._bg_index[start:stop])
        n, k = obj.shape[0], len(self.concepts)
        out = torch.zeros(n, k, *obj.shape[1:], dtype=torch.bool)
        rows = torch.arange(n)
        out[rows, labels] = obj
        out[rows, len(self.classes) + where] = ~obj
        return out

    def data(self, net: Any) -> Any:
        from ..core.batches import PreparedImages

        return PreparedImages(self.sample, net)


def bundled_concepts(sample: Any = None) -> ConceptSet:
    """The Bundled set's concepts on its test sample: 10 garment classes and 6 background photos.

    Args:
        sample: a composed set (default :func:`~vizlib.core.composed.bundled_sample`, 1,500 images).

    Example:
        >>> cs = bundled_concepts()
        >>> len(cs), [c.name for c in cs.concepts][:2], cs.categories
        (1500, ['T-shirt/top', 'Trouser'], ['object', 'background'])
    """
    if sample is None:
        from ..core.composed import bundled_sample

        sample = bundled_sample()
    return _ComposedConcepts(sample)


# --------------------------------------------------------------------------- Broden

BRODEN_ENV = "VIZLIB_BRODEN"
_PIXEL_CATEGORIES = ("color", "object", "part", "material")
_IMAGE_CATEGORIES = ("scene", "texture")


class Broden(ConceptSet):
    """Bau et al.'s Broden dataset, read from a folder in its own format.

    The folder holds ``index.csv`` (one row per image: ``image, split, ih, iw, sh, sw`` and one column
    per category: ``;``-separated segmentation files for the pixel categories, ``;``-separated label
    numbers for the whole-image categories ``scene`` and ``texture``), ``label.csv`` (``number, name,
    category, ...``) and ``images/`` (the pictures and the segmentations, whose label is ``R + 256 G``).
    Masks are resized (nearest) to ``size``; whole-image labels cover the image. A concept is annotated
    on an image when the image has a segmentation (or a label) of its category.

    Args:
        root: the folder (default: the environment variable ``VIZLIB_BRODEN``).
        size: ``(H, W)`` or a side: the net's input (default 224).
        categories: the categories to read (default all that the index has).
        split: ``"train"``, ``"val"`` or ``None`` (both).
        min_pixels: drop concepts that cover fewer pixels than this over the images read (Bau's
            frequency cut; 0 keeps all).

    Raises:
        DatasetUnavailable: no folder, or no ``index.csv``/``label.csv`` in it (the message says where
            it looked and how to get Broden).

    Example:
        >>> Broden("/nowhere")                                  # doctest: +SKIP
        Traceback (most recent call last):
        vizlib.core.errors.DatasetUnavailable: Broden is not at /nowhere ...
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, size: int | Sequence[int] = 224, *,
                 categories: Sequence[str] | None = None, split: str | None = None, min_pixels: int = 0) -> None:
        given = root if root is not None else os.environ.get(BRODEN_ENV)
        how = (f"Broden is not downloaded for you: get broden1_224 (or broden1_227) with the script of Bau et "
               f"al.'s NetDissect (script/dlbroden.sh), unzip it, and pass its folder (Broden('.../broden1_224')) "
               f"or set {BRODEN_ENV}; without it, dissect the Bundled set (vizlib.bundled_concepts())")
        if given is None:
            raise DatasetUnavailable(f"no Broden folder given and {BRODEN_ENV} is not set. {how}")
        self.root = Path(given)
        for name in ("index.csv", "label.csv"):
            if not (self.root / name).is_file():
                where = "is not there" if not self.root.exists() else f"has no {name}"
                raise DatasetUnavailable(f"Broden is not at {self.root}: the folder {where}. {how}")
        side = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
        side = tuple(whole_number(s, "size", at_least=1) for s in side)
        if len(side) != 2:
            raise ArgumentError(f"size must be a side or (H, W), not {size!r}")
        if split not in (None, "train", "val"):
            raise ArgumentError(f"split must be 'train', 'val' or None, not {split!r}")
        with open(self.root / "index.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        if split is not None:
            rows = [r for r in rows if r.get("split") == split]
        if not rows:
            raise EmptyData(f"Broden's index at {self.root} lists no images" + (f" in split {split!r}" if split else ""))
        have = [c for c in (*_PIXEL_CATEGORIES, *_IMAGE_CATEGORIES) if c in rows[0]]
        cats = have if categories is None else list(categories)
        bad = [c for c in cats if c not in have]
        if bad:
            raise ArgumentError(f"Broden's index has no categor{'y' if len(bad) == 1 else 'ies'} {bad}; it has {have}")
        names: dict[int, str] = {}
        with open(self.root / "label.csv", newline="") as f:
            for r in csv.DictReader(f):
                names[int(r["number"])] = r["name"]
        self.rows, self.categories_read, self.names = rows, cats, names
        # the concepts: every (category, label) that occurs in the images read
        self._keys = sorted({key for i in range(len(rows)) for key in self._label_keys(i)},
                            key=lambda cl: (cats.index(cl[0]), cl[1]))
        if min_pixels:
            cover: dict[tuple[str, int], int] = {k: 0 for k in self._keys}
            for i in range(len(rows)):
                for cat, lab, m in self._decoded(i, side):
                    cover[(cat, lab)] += int(m.sum())
            self._keys = [k for k in self._keys if cover[k] >= min_pixels]
        self._index = {k: j for j, k in enumerate(self._keys)}
        concepts = [Concept(names.get(lab, str(lab)), cat) for cat, lab in self._keys]
        super().__init__(concepts, side, len(rows))

    def _files(self, i: int, cat: str) -> list[str]:
        cell = (self.rows[i].get(cat) or "").strip()
        return [v for v in cell.split(";") if v]

    def _label_keys(self, i: int) -> set[tuple[str, int]]:
        keys = set()
        for cat in self.categories_read:
            if cat in _IMAGE_CATEGORIES:
                keys.update((cat, int(v)) for v in self._files(i, cat))
            else:
                for name in self._files(i, cat):
                    seg = self._segmentation(name)
                    keys.update((cat, int(v)) for v in np.unique(seg) if v != 0)
        return keys

    def _segmentation(self, name: str) -> np.ndarray:
        from PIL import Image

        path = self.root / "images" / name
        try:
            rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.int64)
        except FileNotFoundError as exc:
            raise DatasetUnavailable(f"Broden's index names {name}, which is not in {self.root / 'images'}: "
                                     "the copy is incomplete; unzip it again") from exc
        return rgb[..., 0] + 256 * rgb[..., 1]

    def _decoded(self, i: int, side: tuple[int, int]) -> Iterator[tuple[str, int, np.ndarray]]:
        from PIL import Image

        h, w = side
        for cat in self.categories_read:
            if cat in _IMAGE_CATEGORIES:
                for v in self._files(i, cat):
                    yield cat, int(v), np.ones((h, w), dtype=bool)
            else:
                for name in self._files(i, cat):
                    seg = self._segmentation(name)
                    big = np.asarray(Image.fromarray(seg.astype(np.int32), mode="I").resize((w, h), Image.NEAREST))
                    for v in np.unique(big):
                        if v != 0:
                            yield cat, int(v), big == v

    def masks(self, start: int, stop: int) -> torch.Tensor:
        out = torch.zeros(stop - start, len(self.concepts), *self.size, dtype=torch.bool)
        for b, i in enumerate(range(start, stop)):
            for cat, lab, m in self._decoded(i, self.size):
                j = self._index.get((cat, lab))
                if j is not None:
                    out[b, j] |= torch.from_numpy(m)
        return out

    def annotated(self, start: int, stop: int) -> torch.Tensor:
        cat_of = [c.category for c in self.concepts]
        out = torch.zeros(stop - start, len(self.concepts), dtype=torch.bool)
        for b, i in enumerate(range(start, stop)):
            has = {cat for cat in self.categories_read if self._files(i, cat)}
            out[b] = torch.tensor([c in has for c in cat_of], dtype=torch.bool)
        return out

    def data(self, net: Any) -> "BrodenImages":
        return BrodenImages(self, net)


class BrodenImages(torch.utils.data.Dataset):
    """Broden's pictures prepared for a net: resized to the masks' size (no crop, so that they stay
    aligned with the masks), scaled to 0..1 and normalised with the net's mean and std.

    Example:
        >>> data = Broden(root).data(vl.load("alexnet", "imagenet"))    # doctest: +SKIP
        >>> data[0][0].shape                                              # doctest: +SKIP
        torch.Size([3, 224, 224])
    """

    def __init__(self, broden: Broden, net: Any) -> None:
        self.broden = broden
        self.mean = tuple(getattr(net, "mean", ()) or (0.0, 0.0, 0.0))
        self.std = tuple(getattr(net, "std", ()) or (1.0, 1.0, 1.0))

    def __len__(self) -> int:
        return len(self.broden)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        h, w = self.broden.size
        name = self.broden.rows[i]["image"]
        try:
            pic = Image.open(self.broden.root / "images" / name).convert("RGB" if len(self.mean) == 3 else "L")
        except FileNotFoundError as exc:
            raise DatasetUnavailable(f"Broden's index names {name}, which is not in {self.broden.root / 'images'}: "
                                     "the copy is incomplete; unzip it again") from exc
        x = torch.from_numpy(np.asarray(pic.resize((w, h), Image.BILINEAR), dtype=np.float32) / 255.0)
        x = x.permute(2, 0, 1) if x.ndim == 3 else x[None]
        m = torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        s = torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        return (x - m) / s, i


# --------------------------------------------------------------------------- the streaming quantile


class StreamingQuantile:
    """Each unit's top-``q`` threshold over a stream of activations, exactly, with bounded memory.

    Feed every activation once per pass (:meth:`update`, then :meth:`end_pass`), over the same data,
    until :attr:`done`: the first pass finds each unit's range; each further pass makes a ``bins``-bin
    histogram of the current window (keeping each bin's smallest and largest value) and narrows the
    window to the bin holding the quantile, until that bin holds one distinct value for every unit
    (two or three passes at 1,024 bins; at most ``max_passes``). :attr:`threshold` is then the
    ``ceil(q n)``-th largest activation of each unit: at least a share ``q`` of the activations is
    ``>= threshold``, and fewer than that share is above it.

    Example:
        >>> sq = StreamingQuantile(1, q=0.25)
        >>> a = torch.arange(8.0).view(1, 1, 8)        # (batch, units, positions)
        >>> while not sq.done:
        ...     sq.update(a); sq.end_pass()
        >>> sq.threshold.tolist(), sq.pass_no           # the 2nd largest of 0..7
        ([6.0], 2)
    """

    def __init__(self, units: int, q: float = QUANTILE, bins: int = 1024, max_passes: int = 8) -> None:
        self.units, self.q, self.bins, self.max_passes = int(units), float(q), int(bins), int(max_passes)
        self.pass_no = 0
        self.count = 0
        self.need = 1
        self.lo = torch.full((units,), math.inf, dtype=torch.float64)
        self.hi = torch.full((units,), -math.inf, dtype=torch.float64)
        self.minimum = self.lo.clone()
        self.above = torch.zeros(units, dtype=torch.long)  # values above the current window
        self.pure = torch.zeros(units, dtype=torch.bool)  # the window holds one distinct value
        self._hist = torch.zeros(units, bins, dtype=torch.long)
        self._binmin = torch.full((units, bins), math.inf, dtype=torch.float64)
        self._binmax = torch.full((units, bins), -math.inf, dtype=torch.float64)
        self.threshold = torch.full((units,), math.nan, dtype=torch.float64)

    @property
    def done(self) -> bool:
        """Whether every unit's threshold is found (or ``max_passes`` passes were made)."""
        return self.pass_no >= self.max_passes or (self.pass_no > 0 and bool(self.pure.all()))

    def state_bytes(self) -> int:
        """Bytes of state: the same for ten images or ten million."""
        ts = (self.lo, self.hi, self.minimum, self.above, self.pure, self._hist, self._binmin, self._binmax,
              self.threshold)
        return sum(t.numel() * t.element_size() for t in ts)

    def update(self, act: torch.Tensor) -> None:
        """Take activations ``(batch, units, positions)`` (any device; reduced there, kept on the CPU)."""
        a = act.detach().transpose(0, 1).reshape(self.units, -1).double()
        if self.pass_no == 0:
            self.count += a.shape[1]
            self.lo = torch.minimum(self.lo, a.amin(1).cpu())
            self.hi = torch.maximum(self.hi, a.amax(1).cpu())
            return
        lo, hi = self.lo.to(a.device)[:, None], self.hi.to(a.device)[:, None]
        width = (hi - lo).clamp_min(1e-300)
        inside = (a >= lo) & (a <= hi)
        idx = ((a - lo) / width * self.bins).floor().clamp(0, self.bins - 1).long()
        idx = torch.where(inside, idx, torch.zeros_like(idx))
        hist = torch.zeros(self.units, self.bins, dtype=torch.long, device=a.device).scatter_add_(1, idx, inside.long())
        fill = torch.full((self.units, self.bins), math.inf, dtype=torch.float64, device=a.device)
        mins = fill.scatter_reduce(1, idx, torch.where(inside, a, torch.full_like(a, math.inf)), reduce="amin")
        maxs = (-fill).scatter_reduce(1, idx, torch.where(inside, a, torch.full_like(a, -math.inf)), reduce="amax")
        self._hist += hist.cpu()
        self._binmin = torch.minimum(self._binmin, mins.cpu())
        self._binmax = torch.maximum(self._binmax, maxs.cpu())

    def end_pass(self) -> None:
        """Close a pass over the data: narrow each unit's window (and set :attr:`threshold` when it holds one value)."""
        if self.pass_no == 0:
            if self.count == 0:
                raise EmptyData("no activations were seen: the data gave no images")
            self.minimum = self.lo.clone()
            self.need = max(1, math.ceil(self.q * self.count))  # values >= threshold
            self.pure = self.hi <= self.lo  # a constant unit: its one value
            self.threshold = torch.where(self.pure, self.hi, self.threshold)
        else:
            rows = torch.arange(self.units)
            # counting down from the top bin (and what lies above the window): the first bin reaching `need`
            from_top = self._hist.flip(1).cumsum(1) + self.above[:, None]
            b = self.bins - 1 - (from_top >= self.need).long().argmax(1)
            above_b = from_top.flip(1)[rows, b] - self._hist[rows, b]
            new_lo, new_hi = self._binmin[rows, b], self._binmax[rows, b]  # the bin's own smallest and largest
            now = ~self.pure
            self.lo, self.hi = torch.where(now, new_lo, self.lo), torch.where(now, new_hi, self.hi)
            self.above = torch.where(now, above_b, self.above)
            self.pure = self.pure | (self.hi <= self.lo)
            self.threshold = torch.where(now, self.lo, self.threshold)  # exact once pure
            self._hist.zero_()
            self._binmin.fill_(math.inf)
            self._binmax.fill_(-math.inf)
        self.pass_no += 1


# --------------------------------------------------------------------------- results


@dataclass
class LayerDissection:
    """One layer's dissection.

    Attributes:
        layer: the layer's label.
        thresholds: ``(K,)`` each unit's top-quantile threshold.
        minimum: ``(K,)`` each unit's smallest activation over the dataset.
        iou: ``(K, C)`` each unit's IoU with each concept.
        intersection, union: ``(K, C)`` the summed pixel counts the IoU is made of.
        iou_threshold: a detector's IoU bar.

    Example:
        >>> d = LayerDissection("c1", torch.ones(2), torch.zeros(2), torch.tensor([[0.5, 0.01], [0.02, 0.03]]))
        >>> d.best_concept.tolist(), d.detectors.tolist()
        ([0, 1], [True, False])
    """

    layer: str
    thresholds: torch.Tensor
    minimum: torch.Tensor
    iou: torch.Tensor
    intersection: torch.Tensor | None = None
    union: torch.Tensor | None = None
    iou_threshold: float = IOU_THRESHOLD

    @property
    def best_concept(self) -> torch.Tensor:
        """``(K,)`` each unit's best concept (index into the concepts)."""
        return self.iou.argmax(1)

    @property
    def best_iou(self) -> torch.Tensor:
        """``(K,)`` each unit's best IoU."""
        return self.iou.amax(1)

    @property
    def detectors(self) -> torch.Tensor:
        """``(K,)`` True where the unit's best IoU exceeds the bar."""
        return self.best_iou > self.iou_threshold

    def unique_concepts(self) -> list[int]:
        """The concepts detected by at least one unit (indices, sorted)."""
        return sorted(set(self.best_concept[self.detectors].tolist()))


@dataclass
class Dissection:
    """Dissections of a net's layers against a set of concepts.

    Attributes:
        concepts: the concepts.
        layers: layer -> :class:`LayerDissection`, in forward order.
        n_images: images seen.
        quantile, iou_threshold: Bau's 0.005 and 0.04, or what was asked.
        input_size: ``(H, W)`` of the images (and masks).
        source: the concepts, in words.
        passes: passes made over the data (those for the thresholds, and one for the IoUs).

    Example:
        >>> L = LayerDissection("c1", torch.ones(2), torch.zeros(2), torch.tensor([[0.5, 0.0], [0.0, 0.3]]))
        >>> d = Dissection([Concept("a", "object"), Concept("b", "background")], {"c1": L}, 10)
        >>> d.counts("c1")
        {'units': 2, 'detectors': 2, 'unique': 2, 'object': 1, 'object unique': 1, 'background': 1, 'background unique': 1}
    """

    concepts: list[Concept]
    layers: dict[str, LayerDissection]
    n_images: int
    quantile: float = QUANTILE
    iou_threshold: float = IOU_THRESHOLD
    input_size: tuple[int, int] | None = None
    source: str = ""
    passes: int = 0

    def __repr__(self) -> str:
        return (f"Dissection({', '.join(self.layers)}: "
                + ", ".join(f"{k} {int(v.detectors.sum())}/{len(v.thresholds)}" for k, v in self.layers.items())
                + f" detectors over {self.n_images} images)")

    @property
    def categories(self) -> list[str]:
        return list(dict.fromkeys(c.category for c in self.concepts))

    def counts(self, layer: str) -> dict[str, int]:
        """Units, detectors, unique concepts, and detectors and unique concepts per category."""
        d = self.layers[layer]
        det = d.detectors
        best = d.best_concept
        out = {"units": len(d.thresholds), "detectors": int(det.sum()), "unique": len(d.unique_concepts())}
        for cat in self.categories:
            in_cat = torch.tensor([self.concepts[int(b)].category == cat for b in best], dtype=torch.bool)
            out[cat] = int((det & in_cat).sum())
            out[f"{cat} unique"] = len(set(best[det & in_cat].tolist()))
        return out

    def table(self) -> Table:
        """One row per layer: units, detectors, unique concepts, and per category."""
        keys = ["units", "detectors", "unique"] + [k for c in self.categories for k in (c, f"{c} unique")]
        rows = [[layer, *[self.counts(layer)[k] for k in keys]] for layer in self.layers]
        return Table(["layer", *keys], rows,
                     f"Network dissection: top {self.quantile:.1%} threshold, detector when IoU > {self.iou_threshold}")

    def unit_masks(self, net: Any, layer: str, unit: int, images: torch.Tensor, *,
                   device: torch.device | str | None = None) -> torch.Tensor:
        """Where ``unit`` of ``layer`` fires above its threshold on ``images``: ``(N, H, W)`` bool, the
        masks the IoUs were made of (for drawing a detector's masks on images).

        Raises:
            KeyError: a layer that was not dissected; ValueError: a unit out of range.
        """
        if layer not in self.layers:
            raise KeyError(f"layer {layer!r} was not dissected; dissected: {', '.join(self.layers)}")
        d = self.layers[layer]
        unit = whole_number(unit, "unit", at_least=0)
        if unit >= len(d.thresholds):
            raise ValueError(f"unit {unit} is out of range: layer {layer} has {len(d.thresholds)} units")
        module, _ = _unwrap(net, need="unit_masks")
        x = check_image(images, module, batch=True)
        _, path = resolve_layer(module, layer)
        module, dev = on_device(module, device)
        with preserved(module), torch.no_grad(), Capture(module, [path], stop=True) as cap:
            a = next(iter(cap.run(x.to(dev)).values()))[:, unit:unit + 1]
        size = self.input_size or tuple(x.shape[-2:])
        up = _upsampled(a, size)[:, 0].cpu()
        return (up >= d.thresholds[unit]) & (up > d.minimum[unit])

    def top_units(self, layer: str, n: int = 8) -> list[tuple[int, str, float]]:
        """The ``n`` units with the highest best IoU: ``(unit, concept name, IoU)``."""
        d = self.layers[layer]
        order = d.best_iou.argsort(descending=True)[:n].tolist()
        return [(k, self.concepts[int(d.best_concept[k])].name, float(d.best_iou[k])) for k in order]


# --------------------------------------------------------------------------- the method


def _upsampled(act: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if act.ndim == 2:  # a dense unit covers the image
        return act[:, :, None, None].expand(-1, -1, *size)
    if tuple(act.shape[-2:]) == tuple(size):
        return act
    return F.interpolate(act, size=size, mode="bilinear", align_corners=False)


def dissect(
    net: Any,
    layers: str | Sequence[str],
    concepts: ConceptSet,
    data: Any = None,
    *,
    quantile: float = QUANTILE,
    iou_threshold: float = IOU_THRESHOLD,
    bins: int = 1024,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> Dissection:
    """Bau et al.'s network dissection of one or more layers: thresholds, IoU with every concept, detectors.

    Args:
        net: a :class:`~vizlib.Net` or an ``nn.Module``.
        layers: a layer or several (paper names or module paths); all are dissected in the same passes.
        concepts: a :class:`ConceptSet` (:func:`bundled_concepts`, :class:`Broden`).
        data: the images, prepared for the net, in the concepts' order (default ``concepts.data(net)``);
            a tensor, a dataset or a loader that yields them in order.
        quantile: the top share of activations that sets each unit's threshold (Bau: 0.005).
        iou_threshold: a detector's IoU bar (Bau: 0.04).
        bins: the streaming histogram's bins.
        batch_size: images per forward pass.
        device: where to compute (default: where the model lives).
        progress: show a progress bar.

    Returns:
        A :class:`Dissection`.

    Raises:
        ArgumentError: a bad quantile, IoU bar or count; concepts that are not a ConceptSet.
        LayerError: an unknown layer.
        ValueError: data and concepts of different lengths, or images of another size than the masks.
        EmptyData: no images.

    Example:
        >>> from vizlib.models import alexnet_fmnist
        >>> from vizlib.core.composed import bundled_sample
        >>> cs = bundled_concepts(bundled_sample().subset(slice(0, 20)))
        >>> d = dissect(alexnet_fmnist(seed=0), "c2", cs, torch.zeros(20, 1, 64, 64))
        >>> d.layers["c2"].iou.shape
        torch.Size([48, 16])
    """
    module, _ = _unwrap(net, need="dissect")
    if not isinstance(concepts, ConceptSet):
        raise ArgumentError(f"concepts must be a ConceptSet (vizlib.bundled_concepts(), Broden(...)), not "
                            f"{type(concepts).__name__}")
    chosen = [layers] if isinstance(layers, (str, nn.Module)) else list(layers)
    if not chosen:
        raise ArgumentError("layers is empty: give at least one layer")
    resolved = [resolve_layer(module, layer) for layer in chosen]
    if isinstance(quantile, bool) or not isinstance(quantile, (int, float)) or not 0 < float(quantile) < 1:
        raise ArgumentError(f"quantile must be a share between 0 and 1 (Bau: 0.005), not {quantile!r}")
    if isinstance(iou_threshold, bool) or not isinstance(iou_threshold, (int, float)) or not 0 <= iou_threshold < 1:
        raise ArgumentError(f"iou_threshold must be between 0 and 1 (Bau: 0.04), not {iou_threshold!r}")
    bins = whole_number(bins, "bins", at_least=2)
    batch_size = whole_number(batch_size, "batch_size", at_least=1)
    if data is None:
        data = concepts.data(net)
    n_data = None
    if isinstance(data, torch.Tensor) or (isinstance(data, torch.utils.data.Dataset)
                                          and not isinstance(data, torch.utils.data.IterableDataset)):
        n_data = len(data)  # type: ignore[arg-type]
    if n_data is not None and n_data != len(concepts):
        raise ValueError(f"the data has {n_data} images and the concepts {len(concepts)}: they must be the same "
                         "images in the same order")
    labels = [label for label, _ in resolved]
    paths = [p for _, p in resolved]
    module, dev = on_device(module, device)
    p0 = next(module.parameters(), None)
    dtype = p0.dtype if p0 is not None and p0.is_floating_point() else torch.float32
    H, W = concepts.size
    K = len(concepts.concepts)

    def passes() -> Iterator[tuple[int, torch.Tensor, dict[str, torch.Tensor]]]:
        seen = 0
        for batch in batches(data, batch_size):
            x = check_image(batch, module, batch=True, start=seen).to(dev, dtype)
            if tuple(x.shape[-2:]) != (H, W):
                raise ValueError(f"the images are {tuple(x.shape[-2:])} and the concept masks {(H, W)}: dissection "
                                 "needs them aligned (prepare the images at the masks' size, without cropping)")
            yield seen, x, cap.run(x)
            seen += len(x)
        if seen == 0:
            raise EmptyData("the data gave no images")
        if seen != len(concepts):
            raise ValueError(f"the data gave {seen} images and the concepts have {len(concepts)}")

    quantiles: dict[str, StreamingQuantile] = {}
    bar = tqdm(desc="dissecting", unit="pass", disable=not progress)
    n_passes = 0
    with preserved(module), torch.no_grad(), Capture(module, paths, stop=True) as cap:
        while not quantiles or not all(sq.done for sq in quantiles.values()):
            for _, _, out in passes():
                for label in labels:
                    a = out[label]
                    a = a.flatten(2) if a.ndim == 4 else a[:, :, None]
                    if label not in quantiles:
                        quantiles[label] = StreamingQuantile(a.shape[1], quantile, bins)
                    if not quantiles[label].done:
                        quantiles[label].update(a)
            for sq in quantiles.values():
                if not sq.done:
                    sq.end_pass()
            n_passes += 1
            bar.update(1)
        inter = {label: torch.zeros(quantiles[label].units, K, dtype=torch.float64) for label in labels}
        msum = {label: torch.zeros(quantiles[label].units, K, dtype=torch.float64) for label in labels}
        lsum = torch.zeros(K, dtype=torch.float64)
        thr = {label: quantiles[label].threshold.to(dev, dtype) for label in labels}
        low = {label: quantiles[label].minimum.to(dev, dtype) for label in labels}
        for start, x, out in passes():
            stop = start + len(x)
            lab = concepts.masks(start, stop).to(dev)  # (B, K, H, W)
            ann = concepts.annotated(start, stop).to(dev, torch.float32)  # (B, K)
            lab_f = lab.flatten(2).float() * ann[:, :, None]
            lsum += lab_f.sum(2).sum(0).double().cpu()
            for label in labels:
                a = out[label]
                units = a.shape[1]
                for u0 in range(0, units, 64):  # bounded memory: 64 upsampled maps at a time
                    sub = a[:, u0:u0 + 64]
                    up = _upsampled(sub, (H, W))
                    t = thr[label][u0:u0 + 64].view(1, -1, *([1] * (up.ndim - 2)))
                    m = low[label][u0:u0 + 64].view(1, -1, *([1] * (up.ndim - 2)))
                    mask = ((up >= t) & (up > m)).flatten(2).float()  # (B, k, HW)
                    inter[label][u0:u0 + 64] += torch.einsum("bkp,bcp->kc", mask, lab_f).double().cpu()
                    msum[label][u0:u0 + 64] += torch.einsum("bk,bc->kc", mask.sum(2), ann).double().cpu()
        bar.update(1)
    bar.close()
    result: dict[str, LayerDissection] = {}
    for label in labels:
        union = msum[label] + lsum[None, :] - inter[label]
        iou = torch.where(union > 0, inter[label] / union.clamp_min(1), torch.zeros_like(union))
        sq = quantiles[label]
        result[label] = LayerDissection(label, sq.threshold.float(), sq.minimum.float(), iou.float(), inter[label],
                                        union, float(iou_threshold))
    return Dissection(list(concepts.concepts), result, len(concepts), float(quantile), float(iou_threshold), (H, W),
                      repr(concepts), n_passes + 1)


def untrained(net: Any, seed: int = 0) -> Any:
    """The same net with fresh random weights: Bau's baseline for dissection.

    A bundled net gets its builder's own initialisation (what its training started from); any other
    net a copy with every layer's ``reset_parameters`` under ``seed``. The net given is not changed.

    Example:
        >>> import vizlib as vl
        >>> net = vl.load("alexnet", "random")
        >>> u = untrained(net, seed=1)
        >>> u.model is not net.model, u.source.startswith("untrained copy (seed 1) of:")
        (True, True)
    """
    seed = whole_number(seed, "seed", at_least=0)
    module, _ = _unwrap(net, need="untrained")
    fresh = None
    arch = getattr(net, "arch", None)
    if getattr(net, "model_set", None) == "bundled" and arch is not None:
        from ..models.bundled_nets import BUNDLED_BUILDERS

        builder = BUNDLED_BUILDERS.get(arch)
        if builder is not None:
            candidate = builder(seed=seed)
            if [tuple(p.shape) for p in candidate.parameters()] == [tuple(p.shape) for p in module.parameters()]:
                fresh = candidate.to(next(module.parameters()).device).train(module.training)
    if fresh is None:
        fresh = copy.deepcopy(module)
        with seeded(seed):
            for m in fresh.modules():
                if hasattr(m, "reset_parameters"):
                    m.reset_parameters()
    if module is net:
        return fresh
    return dataclasses.replace(net, model=fresh, source=f"untrained copy (seed {seed}) of: {net.source}")
