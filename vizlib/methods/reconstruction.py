"""Whole-layer deconvnet reconstructions across networks (Yu et al. §5, Fig. 6).

The deconvnet (:mod:`vizlib.methods.deconvnet`) projects one network's layer
to pixels; this module sets several networks side by side on one picture:

* :func:`side_by_side` — each network prepares the picture with its own
  preprocessing (so a 32×32 greyscale net and a 224×224 RGB net can look at
  the same photo), one forward pass per network records its switches and
  class scores, and the whole layer at each depth stage
  (:func:`~vizlib.methods.sparsity.stage_layers`) is projected to pixels;
  with an object region, each reconstruction's share of energy on the object
  (:func:`vizlib.energy_inside`) is measured;
* :func:`energy_by_stage` — those shares averaged over pictures, per stage;
* :func:`object_energy_by_stage` — over many pictures (streamed in
  batches), the median share on the object at each stage against the
  median object share;
* :func:`whole_layer` — one layer's whole-layer reconstructions of several
  pictures at once (Zeiler Fig. 6's layer-2 projections);
* :func:`top_predictions` — a net's most probable classes for a picture.

Example::

    import vizlib as vl
    from vizlib.methods.reconstruction import side_by_side
    nets = {"VGG-16": vl.load("vgg16", "bundled"), "AlexNet": vl.load("alexnet", "bundled")}
    r = side_by_side(nets, vl.example_images(nets["AlexNet"], 1)[0])
    r.views[0].energy          # layer -> share of energy on the garment
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch

from ..core.device import on_device
from ..core.args import whole_number
from ..core.errors import EmptyData, NoObjectRegion, NoPositiveActivation
from ..core.examples import ExampleImage
from ..core.hooks import preserved
from ..core.images import _unwrap, load_image, to_display
from ..core.layers import layer_names
from ..core.measures import energy_inside, transform_mask
from .deconvnet import Deconvnet, normalize_projection
from .sparsity import stage_layers

__all__ = ["NetView", "SideBySide", "side_by_side", "energy_by_stage", "whole_layer", "StageEnergy",
           "object_energy_by_stage", "top_predictions"]


def _topk(logits: torch.Tensor, categories: list[str], k: int) -> list[tuple[str, float]]:
    prob = logits.double().softmax(-1).cpu()
    vals, idx = prob.topk(min(k, len(prob)))
    return [(categories[i] if i < len(categories) else str(i), float(v)) for v, i in zip(vals.tolist(), idx.tolist())]


def top_predictions(net: Any, image: Any, k: int = 5, *, device: torch.device | str | None = None
                    ) -> list[tuple[str, float]]:
    """The ``k`` most probable classes of one picture: ``[(category, probability), ...]``.

    Args:
        net: a :class:`~vizlib.Net` (its transform prepares the picture, its categories name the classes).
        image: a picture (array, PIL image, file) or a prepared tensor.
        k: how many.
        device: where to compute (default: where the model lives).

    Example:
        >>> import vizlib as vl
        >>> net = vl.load("alexnet", "bundled")                                   # doctest: +SKIP
        >>> top_predictions(net, vl.fashion_mnist_sample().images[0], 2)           # doctest: +SKIP
        [('Ankle boot', 0.99...), ...]
    """
    model, _ = _unwrap(net)
    x = load_image(image, net, convert=True)
    work, dev = on_device(model, device)
    with preserved(work), torch.no_grad():
        logits = work(x.to(dev))
    return _topk(logits[0], list(getattr(net, "categories", [])), k)


@dataclass
class NetView:
    """One network's row of a side-by-side comparison.

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

    Example:
        >>> import vizlib as vl
        >>> nets = {"AlexNet": vl.load("alexnet", "bundled")}
        >>> view = side_by_side(nets, vl.example_images(nets["AlexNet"], 1)[0]).views[0]
        >>> view.name, view.layers, view.predictions[0][0]
        ('AlexNet', ['c1', 'c2', 'c3', 'c4', 'c5'], 'T-shirt/top')
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
        """The reconstruction at ``layer`` scaled for display."""
        return normalize_projection(self.pixels[layer])


@dataclass
class SideBySide:
    """One picture through several networks: reconstructions by stage and predictions (Yu Fig. 6).

    Example:
        >>> import vizlib as vl
        >>> shirt = vl.example_images(vl.load("alexnet", "bundled"), 1)[0]
        >>> result = side_by_side({"ZFNet": vl.load("zfnet", "bundled")}, shirt)
        >>> result.image, result.has_mask(), result.stages
        ('T-shirt/top (test image 35)', True, 5)
    """

    image: str
    views: list[NetView]

    @property
    def stages(self) -> int:
        """The most stages any network shows."""
        return max(len(v.layers) for v in self.views)

    def has_mask(self) -> bool:
        """Whether every view carries the object region."""
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
        image: a picture (array, PIL image) or an :class:`~vizlib.core.examples.ExampleImage`
            (its mask and name are used).
        mask: the object region in the picture's own pixels (``H x W`` bool), if known.
        layers: label -> layers to show (default: :func:`~vizlib.methods.sparsity.stage_layers`).
        k: how many predictions to keep.
        name: the picture's name for titles.
        device: where to compute (default: where each model lives).

    Returns:
        A :class:`SideBySide`; with a mask, each view carries the energy share
        inside the object at each layer.

    Raises:
        NoObjectRegion: a mask was given but a net's crop cuts the object out.

    Example:
        >>> import vizlib as vl
        >>> nets = {"AlexNet": vl.load("alexnet", "bundled")}                       # doctest: +SKIP
        >>> r = side_by_side(nets, vl.example_images(nets["AlexNet"], 1)[0])        # doctest: +SKIP
        >>> r.views[0].layers                                                       # doctest: +SKIP
        ['c1', 'c2', 'c3', 'c4', 'c5']
    """
    if isinstance(image, ExampleImage):
        mask = image.mask if mask is None else mask
        name = name or image.name
        image = image.image
    views = []
    for label, net in nets.items():
        model, _ = _unwrap(net)
        chosen = list(layers[label]) if layers is not None and label in layers else stage_layers(model)
        x = load_image(image, net, convert=True)
        out_layer = layer_names(model)[-1]
        rec = Deconvnet(model, device=device).record(x, [*chosen, out_layer])
        pixels: dict[str, torch.Tensor] = {}
        empty: dict[str, bool] = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NoPositiveActivation)
            for layer in chosen:
                p = rec.project(layer)
                pixels[p.layer] = p.pixels[0].detach().cpu()
                empty[p.layer] = bool(p.empty[0])
        preds = _topk(rec.activation(out_layer)[0], list(getattr(net, "categories", [])), k)
        view = NetView(label, to_display(x[0], getattr(net, "mean", None), getattr(net, "std", None)),
                       list(pixels), pixels, empty, preds)
        if mask is not None:
            m = transform_mask(net, mask)
            view.mask = m
            view.area = float(m.double().mean())
            view.energy = {layer: energy_inside(px, m) for layer, px in pixels.items()}
        views.append(view)
    return SideBySide(name or "image", views)


def energy_by_stage(results: Sequence[SideBySide]) -> dict[str, dict[str, Any]]:
    """Mean energy share inside the object per stage, per network, over several pictures.

    Returns:
        label -> ``{"layers": [...], "inside": [mean share per stage], "area": mean object area,
        "images": n}`` (means skip NaN, i.e. empty reconstructions).

    Raises:
        NoObjectRegion: a picture has no object region (its name is given).

    Example:
        >>> v = NetView("net", np.zeros((2, 2)), ["c1"], {}, {}, [], torch.ones(2, 2, dtype=torch.bool),
        ...             {"c1": 0.5}, 0.25)
        >>> energy_by_stage([SideBySide("x", [v])])["net"]["inside"]
        [0.5]
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


def whole_layer(net: Any, images: Sequence[Any], layer: str, *, device: torch.device | str | None = None
                ) -> torch.Tensor:
    """Whole-layer deconvnet reconstructions of several pictures from one layer: ``(N, C, H, W)``.

    Args:
        net: a :class:`~vizlib.Net`.
        images: pictures or :class:`~vizlib.core.examples.ExampleImage` records, each
            prepared with the net's own transform.
        layer: paper name or module path.
        device: where to compute (default: where the model lives).

    Example:
        >>> import vizlib as vl
        >>> net = vl.load("alexnet", "bundled")                                          # doctest: +SKIP
        >>> whole_layer(net, vl.example_images(net, 2), "c2").shape                      # doctest: +SKIP
        torch.Size([2, 1, 64, 64])
    """
    return _whole_layers(net, images, [layer], device)[0]


def _whole_layers(net: Any, images: Sequence[Any], layers: Sequence[str], device: torch.device | str | None
                  ) -> list[torch.Tensor]:
    """Whole-layer reconstructions of several pictures from each of ``layers``, one forward pass: ``[(N, C, H, W)]``."""
    x = torch.cat([load_image(im.image if isinstance(im, ExampleImage) else im, net, convert=True)
                   for im in images])
    model, _ = _unwrap(net)
    rec = Deconvnet(model, device=device).record(x, list(layers), batch=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoPositiveActivation)
        return [rec.project(layer).pixels.detach().cpu() for layer in layers]


@dataclass
class StageEnergy:
    """How much of the whole-layer reconstruction from each conv stage lies on the object, over many images.

    A reconstruction that ignores where the object is puts about the
    object's share of the image on it (``area``); one that shows the object
    puts more.

    Attributes:
        layers: the layer shown at each stage.
        inside: layer -> median over images of the share of the reconstruction's energy on the object
            (images whose reconstruction is empty left out).
        area: the median over images of the object's share of the net's input.
        images: how many images were measured.
        empty: layer -> how many images had an all-zero reconstruction there.
        shares: ``(images, stages)`` every image's share (NaN where empty), columns in ``layers`` order.
        areas: ``(images,)`` every image's object share.

    Example:
        >>> e = StageEnergy(["c1"], {"c1": 0.3}, 0.5, 1, {"c1": 0}, np.array([[0.3]]), np.array([0.5]))
        >>> e.ratio("c1")
        0.6
    """

    layers: list[str]
    inside: dict[str, float]
    area: float
    images: int
    empty: dict[str, int]
    shares: np.ndarray = field(repr=False)
    areas: np.ndarray = field(repr=False)

    def ratio(self, layer: str) -> float:
        """The median share on the object at ``layer`` over the median object share."""
        return self.inside[layer] / self.area if self.area > 0 else float("nan")


def object_energy_by_stage(
    net: Any,
    images: Iterable[Any],
    masks: Iterable[Any] | None = None,
    *,
    layers: Sequence[str] | None = None,
    batch_size: int = 32,
    device: torch.device | str | None = None,
) -> StageEnergy:
    """Median share of whole-layer reconstruction energy on the object at every conv stage, over many images.

    The images are taken ``batch_size`` at a time (one forward pass each,
    memory does not grow with their number); each batch's whole layer at each
    stage is projected to pixels (:func:`whole_layer`) and its energy on the
    object measured (:func:`vizlib.energy_inside`), the mask carried into the
    net's input by :func:`vizlib.transform_mask`.

    Args:
        net: a :class:`~vizlib.Net`.
        images: :class:`~vizlib.core.examples.ExampleImage` records with masks, or pictures with ``masks``.
        masks: one object mask (``H x W`` bool, the picture's pixels) per picture; default: each record's own.
        layers: the layers to measure (default: one per stage, :func:`~vizlib.methods.sparsity.stage_layers`).
        batch_size: images per forward pass.
        device: where to compute (default: where the model lives).

    Returns:
        A :class:`StageEnergy`: per stage the median share on the object, and the median object share.

    Raises:
        NoObjectRegion: an image has no mask, or the net's crop cuts its object out.
        EmptyData: no images.

    Example:
        >>> import vizlib as vl
        >>> net = vl.load("alexnet", "bundled")                                       # doctest: +SKIP
        >>> e = object_energy_by_stage(net, vl.example_images(net, 10))               # doctest: +SKIP
        >>> e.layers, e.inside["c1"] > e.area                                         # doctest: +SKIP
        (['c1', 'c2', 'c3', 'c4', 'c5'], ...)
    """
    batch_size = whole_number(batch_size, "batch_size", at_least=1)
    model, _ = _unwrap(net)
    chosen = list(layers) if layers is not None else stage_layers(model)
    pictures = iter(images)
    given = iter(masks) if masks is not None else None
    shares: list[np.ndarray] = []
    areas: list[float] = []
    while True:
        chunk = list(itertools.islice(pictures, batch_size))
        if not chunk:
            break
        if given is not None:
            chunk_masks = list(itertools.islice(given, len(chunk)))
            if len(chunk_masks) < len(chunk):
                raise NoObjectRegion(f"{len(areas) + len(chunk)} images but only {len(areas) + len(chunk_masks)} "
                                     "masks: give one mask per image")
        else:
            chunk_masks = [im.mask if isinstance(im, ExampleImage) else None for im in chunk]
        m = [transform_mask(net, mask) for mask in chunk_masks]
        pixels = _whole_layers(net, chunk, chosen, device)
        shares.append(np.stack([[float(energy_inside(px[i], m[i])) for px in pixels] for i in range(len(chunk))]))
        areas += [float(mi.double().mean()) for mi in m]
    if not areas:
        raise EmptyData("no images to measure: give at least one image with its object mask")
    table = np.concatenate(shares)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        inside = np.nanmedian(table, axis=0)
    return StageEnergy(chosen, {layer: float(v) for layer, v in zip(chosen, inside)}, float(np.median(areas)),
                       len(areas), {layer: int(np.isnan(table[:, j]).sum()) for j, layer in enumerate(chosen)},
                       table, np.asarray(areas))
