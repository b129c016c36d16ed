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

Example::

    boots = vl.part_set("ankle_boots")
    result = boots.correspondence(vl.load("zfnet", "bundled"), layers=["p5", "fc7"], draws=20)
    result.table()
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..core.device import resolve_device
from ..core.hooks import preserved
from ..core.images import _unwrap, check_image
from ..core.layers import resolve_layer
from .occlusion import occluder_fill

__all__ = [
    "PARTS_PATH",
    "ZEILER_TABLE1",
    "AnnotatedImage",
    "PartSet",
    "PreparedParts",
    "Correspondence",
    "part_sets",
    "part_set",
    "demo_object_boxes",
    "map_points",
    "map_box",
    "object_in_input",
    "square_box",
    "sign_disagreement",
    "correspondence",
    "untrained_like",
    "plot_parts",
    "table1",
    "correspondence_claims",
    "annotation_format",
]

#: The shipped part annotations.
PARTS_PATH = Path(__file__).resolve().parent.parent / "datasets" / "part_annotations.json"

#: Zeiler & Fergus (2014), Table 1: mean feature sign change (mean ± std) when masking parts of
#: 5 dog faces, and random parts of the object, at layers 5 and 7. Transcribed from memory of the
#: published paper (the plain-text copy in the project lacks the table): UNVERIFIED, check against the
#: PDF before quoting. The book does not print these.
ZEILER_TABLE1: dict[str, dict[str, tuple[float, float]]] = {
    "layer 5": {"right eye": (0.067, 0.007), "left eye": (0.069, 0.007), "nose": (0.079, 0.017),
                "random": (0.107, 0.017)},
    "layer 7": {"right eye": (0.069, 0.015), "left eye": (0.068, 0.013), "nose": (0.069, 0.011),
                "random": (0.073, 0.014)},
}


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
    """A box ``(top, left, bottom, right)`` (bottom/right exclusive) in image pixels to input pixels, clipped."""
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


def object_in_input(
    picture: np.ndarray, net: Any, *, box: Sequence[float] | None = None, level: int = 0
) -> torch.Tensor:
    """Where the object is in the network's input: ``(S, S)`` boolean.

    Args:
        picture: the image as ``H x W`` or ``H x W x 3`` uint8 (before the transform).
        net: a :class:`~vizlib.Net` (its transform and normalisation).
        box: ``(top, left, bottom, right)`` in the picture's pixels; without
            it the object is the silhouette: input pixels brighter than
            ``level`` (0..255) on a dark background (Fashion-MNIST).

    Raises:
        ValueError: the region is empty.
    """
    h, w = picture.shape[:2]
    if box is not None:
        t, l, b, r = map_box(box, (h, w), net.transform)
        _, _, _, _, oh, ow = _geometry(net.transform, h, w)
        m = torch.zeros(oh, ow, dtype=torch.bool)
        m[t:b, l:r] = True
    else:
        x = net.transform(_pil(picture))
        fill = occluder_fill(net, float(level) / 255.0, channels=x.shape[0]).to(x.dtype)
        m = (x > fill.view(-1, 1, 1) + 1e-6).any(0)
    if not bool(m.any()):
        raise ValueError("the object region is empty in the network's input; check the box or the level")
    return m


def _pil(picture: np.ndarray) -> Any:
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(picture))


# --------------------------------------------------------------------------- annotations


@dataclass(frozen=True)
class AnnotatedImage:
    """One image of a :class:`PartSet`: its id, part coordinates ``(y, x)`` and (optionally) mask size and box."""

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
    """

    name: str
    kind: str
    source: str
    parts: tuple[str, ...]
    mask_size: int
    object: str
    images: list[AnnotatedImage]
    annotation: str = ""
    part_notes: dict[str, str] = field(default_factory=dict)
    silhouette_level: int = 0

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        return f"PartSet({self.name!r}: {len(self)} × {self.kind}, parts {', '.join(self.parts)})"

    def pictures(self) -> list[np.ndarray]:
        """The images, ``H x W`` (Fashion-MNIST) or ``H x W x 3`` (photos) uint8, in order.

        Raises:
            KeyError: an image is not in the source (the message names it).
        """
        if self.source == "fashion_mnist_test":
            from ..core.data import fashion_mnist_sample

            s = fashion_mnist_sample()
            assert s.indices is not None
            where = {int(t): i for i, t in enumerate(s.indices)}
            missing = [im.id for im in self.images if int(im.id) not in where]
            if missing:
                raise KeyError(f"test images {missing} are not in the committed Fashion-MNIST sample; annotate "
                               "images of vizlib.fashion_mnist_sample() (its .indices are the test-set ids)")
            return [s.images[where[int(im.id)]] for im in self.images]
        if self.source == "demo_images":
            from ..core.data import demo_image

            return [demo_image(str(im.id))[1] for im in self.images]
        raise ValueError(f"unknown source {self.source!r}; use 'fashion_mnist_test' or 'demo_images'")

    def prepare(self, net: Any) -> PreparedParts:
        """Images, part points, object masks and mask sizes in ``net``'s input space.

        Raises:
            ValueError: the net's transform cannot be followed, or an image's
                colour mode does not fit the net.
        """
        pics = self.pictures()
        xs, objs, sizes = [], [], []
        pts = {p: [] for p in self.parts}
        for im, pic in zip(self.images, pics):
            x = net.transform(_pil(pic if pic.ndim == 2 or net.in_channels == 3 else pic.mean(-1).astype(np.uint8)))
            if net.in_channels == 3 and x.shape[0] == 1:
                x = x.expand(3, -1, -1)
            xs.append(x)
            for p in self.parts:
                yx = im.parts.get(p)
                pts[p].append(map_points([yx], pic.shape, net.transform)[0][0] if yx is not None
                              else np.array([np.nan, np.nan]))
            _, scale = map_points([[0.0, 0.0]], pic.shape, net.transform)
            sizes.append(max(1, int(round((im.mask_size or self.mask_size) * scale))))
            if self.object == "box":
                if im.box is None:
                    raise ValueError(f"image {im.id} of set {self.name} has no object box")
                objs.append(object_in_input(pic, net, box=im.box))
            else:
                objs.append(object_in_input(pic, net, level=self.silhouette_level))
        shapes = {tuple(x.shape) for x in xs}
        if len(shapes) != 1:
            raise ValueError(f"the transform gave inputs of different sizes: {sorted(shapes)}")
        return PreparedParts(
            images=torch.stack(xs), parts={p: torch.tensor(np.stack(v)) for p, v in pts.items()},
            objects=torch.stack(objs), sizes=torch.tensor(sizes), names=[str(im.id) for im in self.images],
            pictures=pics,
        )

    def correspondence(self, net: Any, **kwargs: Any) -> "Correspondence":
        """:func:`correspondence` on this set, prepared for ``net`` (keyword arguments passed on)."""
        prep = self.prepare(net)
        return correspondence(net, prep.images, prep.parts, prep.objects, prep.sizes, **kwargs)


def _load(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        return dict(json.loads(p.read_text()))
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"no part annotation file at {p}") from exc
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
    raw = _load(path)
    out = {}
    for name, s in raw.get("sets", {}).items():
        try:
            parts = tuple(s["parts"])
            images = []
            for e in s["images"]:
                extra = set(e["parts"]) - set(parts)
                if extra:
                    raise ValueError(f"image {e['id']} of set {name!r} names parts {sorted(extra)} not in {list(parts)}")
                images.append(AnnotatedImage(
                    e["id"], {k: (float(v[0]), float(v[1])) for k, v in e["parts"].items()},
                    int(e["mask_size"]) if "mask_size" in e else None,
                    tuple(int(v) for v in e["box"]) if "box" in e else None,  # type: ignore[arg-type]
                ))
            out[name] = PartSet(name, s["kind"], s["source"], parts, int(s["mask_size"]), s.get("object", "box"),
                                images, s.get("annotation", ""), dict(s.get("part_notes", {})),
                                int(s.get("silhouette_level", 0)))
        except KeyError as exc:
            raise ValueError(f"part set {name!r} in {path} lacks the field {exc}; see the file's 'format' entry") from exc
    return out


def part_set(name: str, path: str | Path = PARTS_PATH) -> PartSet:
    """One part set by name (``"ankle_boots"``, ``"faces"``)."""
    sets = part_sets(path)
    if name not in sets:
        raise KeyError(f"no part set {name!r} in {path}; there are: {', '.join(sets)}")
    return sets[name]


def demo_object_boxes(path: str | Path = PARTS_PATH) -> dict[str, tuple[int, int, int, int]]:
    """Boxes ``(top, left, bottom, right)`` around the object of each ImageNet demo photo, in its pixels."""
    raw = _load(path)
    return {k: tuple(int(x) for x in v) for k, v in raw.get("objects", {}).get("demo_images", {}).items()}  # type: ignore[misc]


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


def _features(model: nn.Module, paths: list[str], x: torch.Tensor) -> dict[str, torch.Tensor]:
    got: dict[str, torch.Tensor] = {}
    handles = []
    try:
        for path in paths:
            handles.append(model.get_submodule(path).register_forward_hook(
                lambda m, i, o, path=path: got.__setitem__(path, o.detach().flatten(1).clone())))
        model(x)
    finally:
        for h in handles:
            h.remove()
    missing = [p for p in paths if p not in got]
    if missing:
        raise ValueError(f"layer(s) {missing} were not reached by the forward pass")
    return got


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
    """
    model, _ = _unwrap(net)
    if model is None:
        raise TypeError("correspondence needs a model (an nn.Module or a vizlib Net)")
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

    dev = resolve_device(device, model)
    run = model if resolve_device(None, model) == dev else copy.deepcopy(model).to(dev)
    p = next(run.parameters(), None)
    x = x.to(dev, p.dtype if p is not None else x.dtype)
    fill = occluder_fill(net, grey, channels=c).to(dev, x.dtype).view(c, 1, 1)
    paths = [path for _, path in resolved]
    signs: dict[str, torch.Tensor] = {}
    chunks = range(0, len(tasks), batch_size)
    show = len(chunks) > 4 if progress is None else bool(progress)
    with preserved(run), torch.no_grad():
        base = _features(run, paths, x)
        for path in paths:
            signs[path] = torch.empty(len(tasks), base[path].shape[1], dtype=torch.int8)
        for s in tqdm(chunks, desc="masking parts", unit="batch", disable=not show):
            batch = tasks[s : s + batch_size]
            idx = torch.tensor([i for i, _ in batch], device=dev)
            xb = x[idx].clone()
            for j, (_, (t, l, b, r)) in enumerate(batch):
                xb[j, :, t:b, l:r] = fill
            feats = _features(run, paths, xb)
            for path in paths:
                signs[path][s : s + len(batch)] = torch.sign(base[path][idx] - feats[path]).to(torch.int8).cpu()

    labels = [label for label, _ in resolved]
    delta: dict[str, dict[str, int]] = {}
    score: dict[str, dict[str, float]] = {}
    rdelta: dict[str, np.ndarray] = {}
    rscore: dict[str, np.ndarray] = {}
    dims = {}
    for label, path in zip(labels, paths):
        sg = signs[path]
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


# --------------------------------------------------------------------------- controls and figures


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
    import dataclasses

    model = copy.deepcopy(net.model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in model.modules():
            reset = getattr(m, "reset_parameters", None)
            if callable(reset):
                reset()
    return dataclasses.replace(net, model=model.eval(), source=f"untrained copy (seed {seed}) of: {net.source}")


def table1() -> Any:
    """Zeiler & Fergus's Table 1 as printed (:data:`ZEILER_TABLE1`), as a :class:`~vizlib.Table`."""
    from ..core.tables import Table

    parts = list(ZEILER_TABLE1["layer 5"])
    return Table(["masked (5 dog faces)", "layer 5: sign change", "layer 7: sign change"],
                 [[p] + [f"{ZEILER_TABLE1[layer][p][0]:.3f} ± {ZEILER_TABLE1[layer][p][1]:.3f}"
                         for layer in ("layer 5", "layer 7")] for p in parts],
                 "Zeiler & Fergus (2014), Table 1: mean feature sign change, as printed")


def plot_parts(prepared: PreparedParts, net: Any = None, *, per_row: int = 4) -> Any:
    """The annotated images as the network sees them, each part's mask drawn as a square.

    The object region (where random masks are centred) is outlined in white.

    Returns:
        A matplotlib Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    from ..core.images import to_display

    n = len(prepared.names)
    cols = min(per_row, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.6 * rows + 0.4), squeeze=False)
    colours = plt.get_cmap("tab10").colors
    h, w = prepared.images.shape[-2:]
    mean, std = getattr(net, "mean", None), getattr(net, "std", None)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = to_display(prepared.images[i], mean, std)
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
        ax.contour(prepared.objects[i].numpy(), levels=[0.5], colors="white", linewidths=0.6)
        for k, (name, pts) in enumerate(prepared.parts.items()):
            y, x = (float(v) for v in pts[i])
            if math.isnan(y):
                continue
            t, l, b, r = square_box(y, x, int(prepared.sizes[i]), h, w)
            ax.add_patch(Rectangle((l - 0.5, t - 0.5), r - l, b - t, fill=False, ec=colours[k % 10], lw=1.5))
        ax.set_title(prepared.names[i], fontsize=8)
    fig.legend(handles=[Patch(fill=False, ec=colours[k % 10], label=p) for k, p in enumerate(prepared.parts)],
               loc="lower center", ncol=len(prepared.parts), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def correspondence_claims(result: Correspondence, control: Correspondence | None = None) -> Any:
    """Zeiler & Fergus's reading of Table 1 beside this run's, with verdicts.

    The paper: masked parts score below random object regions at layer 5
    (some correspondence), and the scores are closer at layer 7. Verdicts
    here: *below random* when every part's score is under the random mean at
    the lower layer; *closer higher up* when the gap (random mean minus the
    parts' mean) is smaller at the last layer than at the first. A control
    (an untrained copy of the network, :func:`untrained_like`) shows how much
    of the pattern the architecture and the masks give without learning; with
    it, a third row: *learned* when the network's gap at the lower layer is
    positive and larger than the control's.
    """
    from ..core.tables import Table

    def measured(r: Correspondence) -> list[str]:
        first, last = r.layers[0], r.layers[-1]
        below = sum(r.below_random(first, p) for p in r.parts)
        m, sd = r.random_mean(first)
        out = [f"{below} of {len(r.parts)} parts below the random mean at {first}: "
               + ", ".join(f"{p} {r.score[first][p]:.3f}" for p in r.parts) + f" vs random {m:.3f} ± {sd:.3f}"]
        out.append(f"gap (random − parts) {r.gap(first):+.4f} at {first}, {r.gap(last):+.4f} at {last}")
        return out

    def verdicts(r: Correspondence) -> list[str]:
        first, last = r.layers[0], r.layers[-1]
        below = all(r.below_random(first, p) for p in r.parts)
        return ["holds" if below else "does not hold", "holds" if r.gap(last) < r.gap(first) else "does not hold"]

    claims = [f"masked parts score below random object regions at {result.layers[0]} (correspondence)",
              f"the scores are closer together at {result.layers[-1]}"]
    rows = []
    for i, claim in enumerate(claims):
        row = [claim, measured(result)[i], verdicts(result)[i]]
        if control is not None:
            row += [measured(control)[i], verdicts(control)[i]]
        rows.append(row)
    header = ["Zeiler & Fergus (§4.3, Table 1)", "this network", "verdict"]
    if control is not None:
        header += ["untrained control", "control's verdict"]
        first = result.layers[0]
        mine, theirs = result.gap(first), control.gap(first)
        rows.append([f"the correspondence is learned: the gap at {first} exceeds an untrained copy's",
                     f"gap {mine:+.4f} against the control's {theirs:+.4f}",
                     "holds" if mine > theirs and mine > 0 else "does not hold", "", ""])
    return Table(header, rows, "The paper's reading of Table 1 beside this run")


def annotation_format(path: str | Path = PARTS_PATH) -> str:
    """How to annotate new images: the file's ``format`` entry and one annotated image, as text."""
    raw = _load(path)
    sets = raw.get("sets", {})
    name, first = next(iter(sets.items()))
    entry = json.dumps(first["images"][0])
    head = {k: v for k, v in first.items() if k not in ("images", "annotation", "part_notes")}
    return (f"{raw.get('format', '')}\n\nExample, set {name!r}: " + json.dumps(head) +
            f"\nwith images such as {entry}")
