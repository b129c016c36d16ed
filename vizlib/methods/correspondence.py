"""Correspondence analysis (Zeiler & Fergus 2014, §4.3 and Table 1).

Does a network tie the same part of different objects together, with no
mechanism built for it? Mask the same part (say the left eye) in each of
``N`` images of one kind of object, and compare how the masking changes the
features at a layer ``l``: with ``x_i`` and ``x̃_i`` the feature vectors of
image ``i`` before and after masking,

    ε_i = x_i − x̃_i,        Δ_l = Σ_{i≠j} H(sign ε_i, sign ε_j),

``H`` the Hamming distance (the number of features whose change has a
different sign; sign takes the values −1, 0, +1). A lower Δ means the part's
masking changes the representation in a more consistent way: tighter
correspondence. The baseline masks squares of the same size at random
places on the object; its Δ is given as mean ± standard deviation over
several draws. Zeiler & Fergus report the *mean feature sign change*,
``Δ / (N (N − 1) D)`` with ``D`` features, which is comparable across layers
and sets; both are computed here.

Part coordinates come from a JSON file (``vizlib/datasets/part_annotations.json``
ships two sets: ankle boots from Fashion-MNIST and the faces among the
ImageNet demo photos); its ``format`` entry says how to annotate new images.
Each image's object (where random masks are centred) is its box or its
silhouette, carried into the network's input by
:func:`vizlib.core.measures.transform_mask`, the one mask function.

This module computes; chapter 5's figures, claims and the annotation guide
are in :mod:`vizlib.chapters.ch05`.

Example::

    from vizlib.methods.correspondence import part_set
    boots = part_set("ankle_boots")
    result = boots.correspondence(vl.load("zfnet", "bundled"), layers=["p5", "fc7"], draws=20)
    result.table()
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from ..core.progress import tqdm

from ..core.examples import ANNOTATIONS_PATH, ExampleImage
from ..core.device import on_device
from ..core.hooks import Capture, preserved
from ..core.images import _unwrap, check_image
from ..core.layers import resolve_layer
from ..core.measures import box_mask, silhouette_mask
from .occlusion import occluder_fill

__all__ = [
    "PARTS_PATH",
    "PartAnnotation",
    "PartSet",
    "PreparedParts",
    "Correspondence",
    "part_sets",
    "part_set",
    "load_annotations",
    "map_points",
    "map_box",
    "square_box",
    "sign_disagreement",
    "correspondence",
    "untrained_like",
]

#: The shipped part annotations (the same file as the demo photos' object boxes).
PARTS_PATH = ANNOTATIONS_PATH


# --------------------------------------------------------------------------- geometry


def _geometry(transform: Any, h: int, w: int) -> tuple[float, float, float, float, int, int]:
    """How a transform maps image pixels to input pixels: ``y' = (y + 0.5)·sy − 0.5 − top`` (and x).

    Returns ``(sy, sx, top, left, out_h, out_w)``.
    """
    name = type(transform).__name__
    if name == "Preprocess" and hasattr(transform, "size"):  # vizlib's bundled nets: centre square, resize
        side = min(h, w)
        s = transform.size / side
        top, left = (h - side) // 2, (w - side) // 2
        return s, s, top * s, left * s, transform.size, transform.size
    if hasattr(transform, "resize_size") and hasattr(transform, "crop_size"):  # torchvision's weights.transforms()
        r = int(transform.resize_size[0])
        crop = int(transform.crop_size[0])
        if h <= w:
            nh, nw = r, int(r * w / h)
        else:
            nh, nw = int(r * h / w), r
        return nh / h, nw / w, int(round((nh - crop) / 2.0)), int(round((nw - crop) / 2.0)), crop, crop
    raise ValueError(
        f"cannot follow image coordinates through a {name} transform; give the part coordinates in the "
        "network's input pixels instead (and the images prepared)"
    )


def map_points(points: Any, image_shape: Sequence[int], transform: Any) -> tuple[np.ndarray, float]:
    """Image coordinates ``(..., 2)`` as ``(y, x)`` to the network's input pixels.

    Follows vizlib's bundled-net preprocessing (centre square, resize) and
    torchvision's ImageNet preprocessing (resize the short side, centre crop).

    Returns:
        The mapped points and the scale (input pixels per image pixel).

    Example:
        >>> from vizlib.models.training import Preprocess
        >>> map_points([[13.5, 13.5]], (28, 28), Preprocess(64, 0.3, 0.3))[0].tolist()
        [[31.5, 31.5]]
    """
    sy, sx, top, left, _, _ = _geometry(transform, int(image_shape[0]), int(image_shape[1]))
    p = np.asarray(points, dtype=np.float64)
    out = np.empty_like(p)
    out[..., 0] = (p[..., 0] + 0.5) * sy - 0.5 - top
    out[..., 1] = (p[..., 1] + 0.5) * sx - 0.5 - left
    return out, math.sqrt(sy * sx)


def map_box(box: Sequence[float], image_shape: Sequence[int], transform: Any) -> tuple[int, int, int, int]:
    """A box ``(top, left, bottom, right)`` (bottom/right exclusive) in image pixels to input pixels, clipped.

    Example:
        >>> from vizlib.models.training import Preprocess
        >>> map_box((0, 0, 14, 14), (28, 28), Preprocess(64, 0.3, 0.3))
        (0, 0, 32, 32)
    """
    sy, sx, top, left, oh, ow = _geometry(transform, int(image_shape[0]), int(image_shape[1]))
    t, l, b, r = (float(v) for v in box)
    out = (round(t * sy - top), round(l * sx - left), round(b * sy - top), round(r * sx - left))
    return max(0, out[0]), max(0, out[1]), min(oh, out[2]), min(ow, out[3])


def square_box(cy: float, cx: float, size: int, height: int, width: int) -> tuple[int, int, int, int]:
    """The ``size``-pixel square centred on ``(cy, cx)``, clipped to the image: ``(top, left, bottom, right)``.

    Example:
        >>> square_box(10, 10, 5, 64, 64), square_box(0, 0, 5, 64, 64)
        ((8, 8, 13, 13), (0, 0, 3, 3))
    """
    top = int(math.floor(cy - (size - 1) / 2 + 0.5))
    left = int(math.floor(cx - (size - 1) / 2 + 0.5))
    return max(0, top), max(0, left), min(height, top + size), min(width, left + size)


# --------------------------------------------------------------------------- annotations


@dataclass(frozen=True)
class PartAnnotation:
    """The annotation of one image of a :class:`PartSet`: its id, part coordinates ``(y, x)`` in its
    own pixels and (optionally) its mask size and object box.

    Example:
        >>> face = part_set("faces").images[0]
        >>> face.id, face.parts["nose"], face.box
        ('astronaut', (127.0, 226.0), (30, 140, 175, 280))
    """

    id: int | str
    parts: dict[str, tuple[float, float]]
    mask_size: int | None = None
    box: tuple[int, int, int, int] | None = None


@dataclass
class PreparedParts:
    """A part set in the network's input space, ready for :func:`correspondence`.

    Attributes:
        images: ``(N, C, S, S)`` prepared inputs.
        parts: part name -> ``(N, 2)`` ``(y, x)`` in input pixels (NaN where not annotated).
        objects: ``(N, S, S)`` True on the object.
        sizes: ``(N,)`` mask side per image, input pixels.
        names: the images' ids, as text.
        pictures: the images before the transform.

    Example:
        >>> import vizlib as vl
        >>> prep = part_set("ankle_boots").prepare(vl.load("alexnet", "bundled"))
        >>> prep.images.shape, prep.parts["toe"].shape, prep.names[:2]
        (torch.Size([8, 1, 64, 64]), torch.Size([8, 2]), ['208', '250'])
    """

    images: torch.Tensor
    parts: dict[str, torch.Tensor]
    objects: torch.Tensor
    sizes: torch.Tensor
    names: list[str]
    pictures: list[np.ndarray] = field(default_factory=list, repr=False)


@dataclass
class PartSet:
    """Images of one kind of object with hand-annotated part locations (see ``PARTS_PATH``'s ``format``).

    Attributes:
        name: the set's key in the file.
        kind: what the images show.
        source: ``"fashion_mnist_test"`` or ``"demo_images"``.
        parts: part names, in table order.
        mask_size: default mask side, in image pixels.
        object: ``"silhouette"`` or ``"box"``.
        images: the annotated images.
        annotation: how the coordinates were made.
        part_notes: what each part name means.
        silhouette_level: brightness above which a pixel is the object (silhouette sets).

    Example:
        >>> boots = part_set("ankle_boots")
        >>> len(boots), boots.parts, boots.source
        (8, ('toe', 'heel', 'collar'), 'fashion_mnist_test')
    """

    name: str
    kind: str
    source: str
    parts: tuple[str, ...]
    mask_size: int
    object: str
    images: list[PartAnnotation]
    annotation: str = ""
    part_notes: dict[str, str] = field(default_factory=dict)
    silhouette_level: int = 0

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        return f"PartSet({self.name!r}: {len(self)} × {self.kind}, parts {', '.join(self.parts)})"

    def examples(self) -> list[ExampleImage]:
        """The images as :class:`~vizlib.core.examples.ExampleImage` records, in order: the picture
        (``H x W`` Fashion-MNIST or ``H x W x 3`` photo, uint8), its class and, as its mask, the
        object where random masks are centred (the annotated box, or the silhouette: pixels
        brighter than ``silhouette_level``).

        Raises:
            KeyError: an image is not in the source (the message names it).
            NoObjectRegion: an image's object is empty.

        Example:
            >>> ex = part_set("ankle_boots").examples()[0]
            >>> ex.name, ex.category, ex.image.shape, ex.mask.shape
            ('208', 'Ankle boot', (64, 64), (64, 64))
        """
        out = []
        if self.source == "fashion_mnist_test":
            # the garments as the bundled nets read them: composed like the rest of the sample, with
            # their exact masks; the annotated points follow each garment's place (:meth:`offsets`)
            from ..core.composed import bundled_sample

            s = bundled_sample()
            for im, j in zip(self.images, self._sample_positions(s)):
                ex = s.example(j)
                ex.name = str(im.id)
                out.append(ex)
        elif self.source == "demo_images":
            from ..core.data import demo_image

            for im in self.images:
                d, pic = demo_image(str(im.id))
                out.append(ExampleImage(str(im.id), pic, d.imagenet_index, d.category))
        else:
            raise ValueError(f"unknown source {self.source!r}; use 'fashion_mnist_test' or 'demo_images'")
        for im, ex in zip(self.images, out):
            if self.object == "box":
                if im.box is None:
                    raise ValueError(f"image {im.id} of set {self.name} has no object box")
                ex.mask = box_mask(ex.image.shape, im.box)
            elif self.source != "fashion_mnist_test":
                ex.mask = silhouette_mask(ex.image, self.silhouette_level)
        return out

    def _sample_positions(self, s: Any) -> list[int]:
        assert s.indices is not None
        where = {int(t): i for i, t in enumerate(s.indices)}
        missing = [im.id for im in self.images if int(im.id) not in where]
        if missing:
            raise KeyError(f"test images {missing} are not in the committed Fashion-MNIST sample; annotate "
                           "images of vizlib.fashion_mnist_sample() (its .indices are the test-set ids)")
        return [where[int(im.id)] for im in self.images]

    def offsets(self) -> list[tuple[int, int]]:
        """Where each image's annotated 28 px garment lies in the picture :meth:`examples` gives: ``(top, left)``.

        ``(0, 0)`` for photos; for Fashion-MNIST garments, the place the composed
        sample put each one (:meth:`vizlib.core.composed.ComposedImages.placement`).

        Example:
            >>> all(0 <= t + 28 and 0 <= l + 28 for t, l in part_set("ankle_boots").offsets())
            True
        """
        if self.source != "fashion_mnist_test":
            return [(0, 0)] * len(self.images)
        from ..core.composed import ComposedImages, bundled_sample
        from ..core.data import fashion_mnist_sample

        data = ComposedImages(fashion_mnist_sample())
        return [(data.placement(j).top, data.placement(j).left) for j in self._sample_positions(bundled_sample())]

    def pictures(self) -> list[np.ndarray]:
        """The images, ``H x W`` (Fashion-MNIST) or ``H x W x 3`` (photos) uint8, in order.

        Raises:
            KeyError: an image is not in the source (the message names it).
        """
        return [ex.image for ex in self.examples()]

    def prepare(self, net: Any) -> PreparedParts:
        """Images, part points, object masks and mask sizes in ``net``'s input space.

        The images go through the one prepare path (:meth:`ExampleImage.tensor`,
        converted to the net's colour mode), their objects through the one mask
        function (:meth:`ExampleImage.object_mask`); the part points follow the
        same resizing and cropping (:func:`map_points`).

        Raises:
            ValueError: the net's transform cannot be followed.
        """
        examples = self.examples()
        xs, objs, sizes = [], [], []
        pts: dict[str, list[np.ndarray]] = {p: [] for p in self.parts}
        for im, ex, (dy, dx) in zip(self.images, examples, self.offsets()):
            pic = ex.image
            xs.append(ex.tensor(net))
            for p in self.parts:
                yx = im.parts.get(p)
                pts[p].append(map_points([[yx[0] + dy, yx[1] + dx]], pic.shape, net.transform)[0][0]
                              if yx is not None else np.array([np.nan, np.nan]))
            _, scale = map_points([[0.0, 0.0]], pic.shape, net.transform)
            sizes.append(max(1, int(round((im.mask_size or self.mask_size) * scale))))
            objs.append(ex.object_mask(net))
        shapes = {tuple(x.shape) for x in xs}
        if len(shapes) != 1:
            raise ValueError(f"the transform gave inputs of different sizes: {sorted(shapes)}")
        return PreparedParts(
            images=torch.stack(xs), parts={p: torch.tensor(np.stack(v)) for p, v in pts.items()},
            objects=torch.stack(objs), sizes=torch.tensor(sizes), names=[str(im.id) for im in self.images],
            pictures=[ex.image for ex in examples],
        )

    def correspondence(self, net: Any, **kwargs: Any) -> "Correspondence":
        """:func:`correspondence` on this set, prepared for ``net`` (keyword arguments passed on)."""
        prep = self.prepare(net)
        return correspondence(net, prep.images, prep.parts, prep.objects, prep.sizes, **kwargs)


def load_annotations(path: str | Path = PARTS_PATH) -> dict[str, Any]:
    """An annotation file as a dict (its ``format``, ``sets`` and ``objects`` entries).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not valid JSON.

    Example:
        >>> sorted(load_annotations())
        ['format', 'objects', 'sets']
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no part annotation file at {p}")
    try:
        return dict(json.loads(p.read_text()))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p} is not valid JSON ({exc})") from exc


def part_sets(path: str | Path = PARTS_PATH) -> dict[str, PartSet]:
    """Every part set in an annotation file (default: the shipped one).

    Raises:
        ValueError: a set lacks a field or names a part it does not list.

    Example:
        >>> sorted(part_sets())
        ['ankle_boots', 'faces']
    """
    raw = load_annotations(path)
    out = {}
    for name, s in raw.get("sets", {}).items():
        try:
            parts = tuple(s["parts"])
            images = []
            for e in s["images"]:
                extra = set(e["parts"]) - set(parts)
                if extra:
                    raise ValueError(f"image {e['id']} of set {name!r} names parts {sorted(extra)} "
                                     f"not in {list(parts)}")
                images.append(PartAnnotation(
                    e["id"], {k: (float(v[0]), float(v[1])) for k, v in e["parts"].items()},
                    int(e["mask_size"]) if "mask_size" in e else None,
                    tuple(int(v) for v in e["box"]) if "box" in e else None,  # type: ignore[arg-type]
                ))
            out[name] = PartSet(name, s["kind"], s["source"], parts, int(s["mask_size"]), s.get("object", "box"),
                                images, s.get("annotation", ""), dict(s.get("part_notes", {})),
                                int(s.get("silhouette_level", 0)))
        except KeyError as exc:
            raise ValueError(f"part set {name!r} in {path} lacks the field {exc}; "
                             "see the file's 'format' entry") from exc
    return out


def part_set(name: str, path: str | Path = PARTS_PATH) -> PartSet:
    """One part set by name (``"ankle_boots"``, ``"faces"``).

    Example:
        >>> part_set("faces")
        PartSet('faces': 2 × frontal face, parts left eye, right eye, nose)
    """
    sets = part_sets(path)
    if name not in sets:
        raise KeyError(f"no part set {name!r} in {path}; there are: {', '.join(sets)}")
    return sets[name]


# --------------------------------------------------------------------------- Δ


def sign_disagreement(signs: torch.Tensor) -> int:
    """``Σ_{i≠j} H(s_i, s_j)`` over ordered pairs of rows of a sign matrix ``(N, D)``.

    Per feature, the ordered pairs that disagree are ``N² − Σ_v c_v²`` with
    ``c_v`` the count of rows holding the value ``v``; exact integers.

    Example:
        >>> sign_disagreement(torch.tensor([[1, 0, -1], [1, 1, -1], [-1, 0, -1]]))
        8
    """
    s = torch.as_tensor(signs)
    n = s.shape[0]
    if n < 2:
        return 0
    same = sum(((s == v).sum(0, dtype=torch.int64) ** 2) for v in (-1, 0, 1))
    return int((n * n - same).sum())


@dataclass
class Correspondence:
    """Zeiler & Fergus's Table 1 for one set of images.

    Attributes:
        layers: the layers compared.
        parts: the masked parts.
        n_images: images per part (``counts`` gives each part's, when some are unannotated).
        draws: random masks per image.
        dims: features per layer (``D``).
        delta: layer -> part -> Δ.
        score: layer -> part -> Δ / (n (n − 1) D), the mean feature sign change.
        random_delta: layer -> ``(draws,)`` Δ of each random draw.
        random_score: layer -> ``(draws,)`` mean sign change of each draw.
        counts: part -> images annotated with it.

    Example:
        >>> import vizlib as vl
        >>> table1 = part_set("ankle_boots").correspondence(vl.load("alexnet", "bundled"), draws=3, progress=False)
        >>> table1.layers, table1.n_images, table1.random_score["p5"].shape
        (['p5', 'fc7'], 8, (3,))
    """

    layers: list[str]
    parts: list[str]
    n_images: int
    draws: int
    dims: dict[str, int]
    delta: dict[str, dict[str, int]]
    score: dict[str, dict[str, float]]
    random_delta: dict[str, np.ndarray]
    random_score: dict[str, np.ndarray]
    counts: dict[str, int]

    def random_mean(self, layer: str) -> tuple[float, float]:
        """Mean and standard deviation of the random baseline's mean sign change at a layer."""
        r = self.random_score[layer]
        return float(r.mean()), float(r.std(ddof=1)) if len(r) > 1 else 0.0

    def gap(self, layer: str) -> float:
        """Random baseline's mean minus the parts' mean score at a layer: how much tighter the parts are."""
        scores = [v for v in self.score[layer].values() if not math.isnan(v)]
        return self.random_mean(layer)[0] - float(np.mean(scores))

    def below_random(self, layer: str, part: str) -> bool:
        """The part's score is below the random baseline's mean."""
        return self.score[layer][part] < self.random_mean(layer)[0]

    def z(self, layer: str, part: str) -> float:
        """How many random-baseline standard deviations the part lies below its mean."""
        m, s = self.random_mean(layer)
        gap = m - self.score[layer][part]
        return gap / s if s > 0 else math.copysign(math.inf, gap)

    def table(self) -> Any:
        """The table: one row per part and the random row; per layer Δ and the mean sign change."""
        from ..core.tables import Table

        header = ["masked"]
        for layer in self.layers:
            header += [f"{layer}: Δ", f"{layer}: sign change"]
        rows = []
        for p in self.parts:
            row: list[Any] = [f"{p} ({self.counts[p]} images)"]
            for layer in self.layers:
                row += [self.delta[layer][p], round(self.score[layer][p], 4)]
            rows.append(row)
        row = [f"random ({self.draws} draws, mean ± sd)"]
        for layer in self.layers:
            d = self.random_delta[layer].astype(np.float64)
            m, s = self.random_mean(layer)
            row += [f"{d.mean():.0f} ± {d.std(ddof=1) if len(d) > 1 else 0:.0f}", f"{m:.4f} ± {s:.4f}"]
        rows.append(row)
        return Table(header, rows, f"Correspondence: Δ and mean feature sign change over {self.n_images} images "
                                   "(lower = more consistent)")


def correspondence(
    net: Any,
    images: torch.Tensor,
    parts: Mapping[str, Any],
    objects: torch.Tensor,
    size: int | Sequence[int] | torch.Tensor,
    *,
    layers: Sequence[str | nn.Module] | None = None,
    draws: int = 10,
    seed: int = 0,
    grey: float | Sequence[float] | None = None,
    device: torch.device | str | None = None,
    batch_size: int = 64,
    progress: bool | None = None,
) -> Correspondence:
    """Zeiler & Fergus §4.3: Δ for each masked part against same-size masks at random places on the object.

    Args:
        net: a :class:`~vizlib.Net` (its mean is the mask's grey) or a module.
        images: ``(N, C, H, W)`` prepared inputs, one object each.
        parts: part name -> ``(N, 2)`` ``(y, x)`` centres in input pixels (NaN: not annotated).
        objects: ``(N, H, W)`` True on the object: random masks are centred on these pixels.
        size: the mask's side in input pixels, one for all or one per image.
        layers: the layers compared (default: ``p5`` and ``fc7``, Zeiler's layers 5 and 7).
        draws: random masks per image (the baseline's spread is over draws).
        seed: seed of the random positions.
        grey: the mask's pixel value (default: the mean the network subtracts).
        device: where to compute (default: where the model lives).
        batch_size: images per forward pass.
        progress: show a progress bar (default: when there are many batches).

    Returns:
        A :class:`Correspondence` (``.table()`` prints Table 1 for this run).

    Raises:
        ValueError: fewer than two images, shapes that do not match, a part
            centre outside the image, an empty object, ``draws < 2``.

    Example:
        >>> import vizlib as vl
        >>> net = vl.load("alexnet", "bundled")
        >>> p = part_set("ankle_boots").prepare(net)
        >>> result = correspondence(net, p.images, p.parts, p.objects, p.sizes, draws=2, progress=False)
        >>> result.parts, result.dims
        (['toe', 'heel', 'collar'], {'p5': 256, 'fc7': 512})
    """
    model, _ = _unwrap(net, need="correspondence")
    x = check_image(images, model, batch=True)
    n, c, h, w = x.shape
    if n < 2:
        raise ValueError("correspondence compares images pairwise: give at least two images")
    if draws < 2:
        raise ValueError(f"draws must be at least 2 to give the random baseline a spread, not {draws}")
    if layers is None:
        names = getattr(model, "vizlib_layers", {})
        if "p5" not in names or "fc7" not in names:
            raise ValueError("this model has no layers named p5 and fc7; name the layers to compare with layers=[...]")
        layers = ["p5", "fc7"]
    resolved = [resolve_layer(model, layer) for layer in layers]
    sizes = torch.as_tensor(size, dtype=torch.long).reshape(-1)
    sizes = sizes.expand(n) if len(sizes) == 1 else sizes
    if len(sizes) != n or bool((sizes < 1).any()):
        raise ValueError(f"size must be one positive side or one per image ({n}); got {size}")
    obj = torch.as_tensor(objects).bool()
    if tuple(obj.shape) != (n, h, w):
        raise ValueError(f"objects must be (N, H, W) = {(n, h, w)}, got {tuple(obj.shape)}")
    if not bool(obj.flatten(1).any(1).all()):
        raise ValueError("every image needs a non-empty object region for the random masks")
    pts = {}
    for name, v in parts.items():
        t = torch.as_tensor(np.asarray(v, dtype=np.float64))
        if tuple(t.shape) != (n, 2):
            raise ValueError(f"part {name!r} needs (N, 2) = ({n}, 2) coordinates, got {tuple(t.shape)}")
        ok = ~torch.isnan(t).any(1)
        if bool(((t[ok, 0] < 0) | (t[ok, 0] > h - 1) | (t[ok, 1] < 0) | (t[ok, 1] > w - 1)).any()):
            raise ValueError(f"part {name!r} has a centre outside the {h}×{w} input; give (y, x) in input pixels")
        pts[name] = t

    # the tasks: (image, box), parts first, then the random draws
    rng = np.random.default_rng(seed)
    tasks: list[tuple[int, tuple[int, int, int, int]]] = []
    groups: dict[str, list[int]] = {}
    for name, t in pts.items():
        groups[name] = []
        for i in range(n):
            if not bool(torch.isnan(t[i]).any()):
                groups[name].append(len(tasks))
                tasks.append((i, square_box(float(t[i, 0]), float(t[i, 1]), int(sizes[i]), h, w)))
    on = [obj[i].nonzero().numpy() for i in range(n)]
    draw_rows: list[list[int]] = []
    for _ in range(draws):
        rows = []
        for i in range(n):
            cy, cx = on[i][rng.integers(len(on[i]))]
            rows.append(len(tasks))
            tasks.append((i, square_box(float(cy), float(cx), int(sizes[i]), h, w)))
        draw_rows.append(rows)

    run, dev = on_device(model, device)
    p = next(run.parameters(), None)
    x = x.to(dev, p.dtype if p is not None else x.dtype)
    fill = occluder_fill(net, grey, channels=c).to(dev, x.dtype).view(c, 1, 1)
    labels = [label for label, _ in resolved]
    signs: dict[str, torch.Tensor] = {}
    chunks = range(0, len(tasks), batch_size)
    show = len(chunks) > 4 if progress is None else bool(progress)
    # the pass stops at the last compared layer: nothing above it is computed
    with preserved(run), torch.no_grad(), Capture(run, [path for _, path in resolved], stop=True) as cap:
        base = {label: v.flatten(1) for label, v in cap.run(x).items()}
        for label in labels:
            signs[label] = torch.empty(len(tasks), base[label].shape[1], dtype=torch.int8)
        for s in tqdm(chunks, desc="masking parts", unit="batch", disable=not show):
            batch = tasks[s : s + batch_size]
            idx = torch.tensor([i for i, _ in batch], device=dev)
            xb = x[idx].clone()
            for j, (_, (t, l, b, r)) in enumerate(batch):
                xb[j, :, t:b, l:r] = fill
            feats = cap.run(xb)
            for label in labels:
                change = base[label][idx] - feats[label].flatten(1)
                signs[label][s : s + len(batch)] = torch.sign(change).to(torch.int8).cpu()

    delta: dict[str, dict[str, int]] = {}
    score: dict[str, dict[str, float]] = {}
    rdelta: dict[str, np.ndarray] = {}
    rscore: dict[str, np.ndarray] = {}
    dims = {}
    for label in labels:
        sg = signs[label]
        d = sg.shape[1]
        dims[label] = d
        delta[label], score[label] = {}, {}
        for name, rows in groups.items():
            k = len(rows)
            delta[label][name] = sign_disagreement(sg[rows])
            score[label][name] = delta[label][name] / (k * (k - 1) * d) if k > 1 else float("nan")
        rdelta[label] = np.array([sign_disagreement(sg[rows]) for rows in draw_rows], dtype=np.int64)
        rscore[label] = rdelta[label] / (n * (n - 1) * d)
    return Correspondence(labels, list(pts), n, draws, dims, delta, score, rdelta, rscore,
                          {name: len(rows) for name, rows in groups.items()})


# --------------------------------------------------------------------------- the control


def untrained_like(net: Any, seed: int = 0) -> Any:
    """A copy of a :class:`~vizlib.Net` whose network has fresh, untrained weights (same architecture).

    Every layer's ``reset_parameters`` is called under ``seed`` (PyTorch's
    default initialisation). A control for correspondence analysis: a
    pattern that an untrained network shows as well is not learned.

    Example:
        >>> from vizlib import load
        >>> ctl = untrained_like(load("alexnet", "random"), seed=1)
        >>> ctl.model_set, ctl.source.startswith("untrained copy")
        ('random', True)
    """
    model = copy.deepcopy(net.model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in model.modules():
            reset = getattr(m, "reset_parameters", None)
            if callable(reset):
                reset()
    return dataclasses.replace(net, model=model.eval(), source=f"untrained copy (seed {seed}) of: {net.source}")
