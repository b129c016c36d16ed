"""Occlusion sensitivity (Zeiler & Fergus 2014, §4.2 and Fig. 7).

A grey square is slid over the image on a grid; at every position the
occluded image goes through the network, and four maps are read off the same
forward passes:

* **(b)** the total activation of one feature map of the top convolutional
  layer (by default the map with the strongest response on the unoccluded
  image), summed over its positions;
* **(d)** the probability of a class (the true class) under the softmax;
* **(e)** the most probable label;

and **(c)**, the deconvnet projection of that feature map's strongest
activation on the unoccluded image (:mod:`vizlib.methods.deconvnet`).

The square's grey is the mean the network subtracts: in pixel space the
occluder has the value ``mean`` (``Net.mean``), which the normalisation
``(x - mean) / std`` maps to ``(mean - mean) / std`` in the input the network
sees. :func:`occluder_fill` derives it from the network's own ``mean`` and
``std`` (or from a grey the reader picks).

How it is fast: the occluded images are built in place in one buffer that
holds copies of the image (the square is written with ``scatter_``, and the
pixels under it are put back after the forward pass); a
:class:`~vizlib.core.hooks.Capture` on the layer keeps its maps, which are
reduced to one number per map and position after each batch; no gradients
are kept. So the sweep costs little more than the forward passes themselves
(``benchmarks/bench_occlusion.py``).

And below that floor: by default (where it pays) the sweep is *incremental*
(:mod:`vizlib.methods.incremental`): the unoccluded image's activations are
kept, and each occluded image recomputes, layer by layer, only the windows its
square can have changed, up to the layer where whole maps are cheaper; the
maps are the same up to float rounding. ``OcclusionMaps.strategy`` says which
way a sweep went, ``sweep(..., incremental=False)`` forces the full one
(``benchmarks/occlusion_incremental.py``).

This module computes; chapter 5's figures, readings and claims are in
:mod:`vizlib.chapters.ch05`.

Example::

    import vizlib as vl
    net = vl.load("alexnet")
    occ = vl.Occlusion(net)                         # top conv layer, grey = net.mean
    maps = occ.sweep("dog.jpg", size=32, stride=8, target=207)
    maps.probability.shape                          # (d), one value per square position
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from ..core.progress import tqdm

from ..core.args import batch_size_arg, whole_number
from ..core.device import on_device
from ..core.errors import ArgumentError, ImageError
from ..core.hooks import Capture, leaf_modules, meta_trace, preserved, trace, version
from ..core.images import _unwrap, check_image, load_image
from ..core.layers import resolve_layer
from .incremental import IncrementalPlan, _NotAChain, plan_incremental, store_positions

__all__ = [
    "Occlusion",
    "OcclusionMaps",
    "occlusion_maps",
    "occluder_fill",
    "occlusion_grid",
    "top_conv_layer",
]

#: Bytes of activations one batch may use on the CPU (the GPU uses half its free memory).
CPU_BATCH_BUDGET = 512 * 2**20
#: Largest batch on the CPU (larger batches do not run faster there) and on a GPU.
CPU_MAX_BATCH = 128
GPU_MAX_BATCH = 1024
#: Full class probabilities are kept per position when positions x classes is at most this.
KEEP_PROBABILITIES_LIMIT = 2**22
#: Bytes of unoccluded activations the incremental sweep caches at once (images are taken in groups under it).
INCREMENTAL_CACHE_BUDGET = 1024 * 2**20


# --------------------------------------------------------------------------- helpers


def top_conv_layer(model: nn.Module) -> str:
    """The top convolutional layer's name: the ReLU after the last ``Conv2d`` (else that conv).

    Returns the paper name when the model carries them (``"c5"`` for AlexNet
    and ZFNet, ``"c5_3"`` for VGG-16), else the module path.

    Raises:
        ValueError: the model has no convolution.

    Example:
        >>> from vizlib.models import alexnet, vgg16
        >>> top_conv_layer(alexnet()), top_conv_layer(vgg16())
        ('c5', 'c5_3')
    """
    leaves = list(leaf_modules(model))
    last = max((i for i, (_, m) in enumerate(leaves) if isinstance(m, nn.Conv2d)), default=None)
    if last is None:
        raise ValueError("the model has no Conv2d layer; name the layer to watch with layer=...")
    path = leaves[last][0]
    if last + 1 < len(leaves) and isinstance(leaves[last + 1][1], nn.ReLU):
        path = leaves[last + 1][0]
    return resolve_layer(model, path)[0]


def occluder_fill(
    net: Any = None,
    grey: float | Sequence[float] | None = None,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    channels: int | None = None,
) -> torch.Tensor:
    """The occluder's value in the network's input space, one number per channel.

    The occluder is grey in **pixel space**: by default the mean the network
    subtracts (Zeiler & Fergus's grey square). The network's input is
    ``(pixel - mean) / std``, so the fill is ``(grey - mean) / std``.

    Args:
        net: a :class:`~vizlib.Net` (gives ``mean`` and ``std``) or ``None``.
        grey: the occluder's pixel value(s) in [0, 1] (default: ``mean``).
        mean, std: the normalisation, when ``net`` does not carry it.
        channels: number of input channels (to check or broadcast).

    Returns:
        ``(C,)`` float64 tensor.

    Raises:
        ValueError: lengths that do not match the channels, a zero std.
        ArgumentError: a NaN or infinite grey, mean or std.

    Example:
        >>> occluder_fill(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)).tolist()
        [0.0, 0.0, 0.0]
        >>> round(occluder_fill(mean=(0.25,), std=(0.5,), grey=0.5).item(), 6)
        0.5
    """
    m = mean if mean is not None else getattr(net, "mean", None)
    s = std if std is not None else getattr(net, "std", None)
    if m is None or s is None:
        if grey is not None:
            raise ValueError(
                "a grey in pixel space needs the network's normalisation to be placed in its input: "
                "pass mean=... and std=... (or a vizlib Net)"
            )
        c = channels or 1
        return torch.zeros(c, dtype=torch.float64)  # inputs already centred: their mean is 0
    m_t = torch.as_tensor(m, dtype=torch.float64).reshape(-1)
    s_t = torch.as_tensor(s, dtype=torch.float64).reshape(-1)
    g_t = m_t.clone() if grey is None else torch.as_tensor(grey, dtype=torch.float64).reshape(-1)
    c = channels or max(len(m_t), len(s_t), len(g_t))
    for name, t in (("mean", m_t), ("std", s_t), ("grey", g_t)):
        if len(t) not in (1, c):
            raise ValueError(f"{name} has {len(t)} values but the images have {c} channels")
    if bool((s_t == 0).any()):
        raise ValueError("std must not be zero")
    for name, t in (("mean", m_t), ("std", s_t), ("grey", g_t)):
        if not bool(torch.isfinite(t).all()):
            raise ArgumentError(f"{name} must be finite numbers, not {t.tolist()}: a NaN occluder makes every "
                                "occluded score NaN")
    return ((g_t - m_t) / s_t).expand(c).clone()


def occlusion_grid(height: int, width: int, size: int, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top rows and left columns of the occluder positions: ``range(0, side - size + 1, stride)``.

    The square always lies wholly inside the image; when ``side - size`` is
    not a multiple of ``stride`` the last strip is not reached (as in Captum).

    Raises:
        ValueError: size or stride not a positive integer, or the square
            larger than the image.

    Example:
        >>> ys, xs = occlusion_grid(224, 224, 32, 8)
        >>> len(ys) * len(xs), ys[:3].tolist(), int(ys[-1])
        (625, [0, 8, 16], 192)
    """
    for name, v in (("size", size), ("stride", stride)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ValueError(f"the occluder's {name} must be a whole number of pixels, not {v!r}")
    if stride < 1:
        raise ValueError(f"the stride must be at least 1 pixel (got {stride}): "
                         "it is the step between occluder positions")
    if size < 1:
        raise ValueError(f"the occluder size must be at least 1 pixel (got {size})")
    if size > min(height, width):
        raise ValueError(
            f"the occluder ({size}×{size} px) is larger than the image ({height}×{width} px); "
            f"pick a size of at most {min(height, width)}"
        )
    return torch.arange(0, height - size + 1, stride), torch.arange(0, width - size + 1, stride)


def _hooked(model: nn.Module) -> str:
    """The modules that carry forward (pre-)hooks, in words (``""`` when none)."""
    found = [path or "the model" for path, m in model.named_modules() if m._forward_hooks or m._forward_pre_hooks]
    if found:
        return ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
    from torch.nn.modules import module as _m

    return "global forward hooks" if (_m._global_forward_hooks or _m._global_forward_pre_hooks) else ""


def _default_size(side: int) -> int:
    return max(1, round(side * 32 / 224))


# --------------------------------------------------------------------------- result


@dataclass
class OcclusionMaps:
    """Zeiler & Fergus Fig. 7 for one image: every map as a function of occluder position.

    Maps have shape ``(ny, nx)``: entry ``[i, j]`` is for the square with top-left
    corner ``(ys[i], xs[j])`` (its centre: :attr:`centres`).

    Attributes:
        image: ``(C, H, W)`` the prepared (normalised) input.
        size, stride: the occluder's side and step, in input pixels.
        ys, xs: top rows and left columns of the occluder positions.
        layer: the watched layer (the top conv layer by default).
        channel: the feature map of (b) and (c): the strongest on the unoccluded image.
        target: the class of (d).
        activity: (b) ``(ny, nx)`` total activation of map ``channel``.
        activities: ``(ny, nx, M)`` total activation of every map of the layer.
        probability: (d) ``(ny, nx)`` probability of ``target``.
        label: (e) ``(ny, nx)`` most probable class.
        label_probability: ``(ny, nx)`` that class's probability.
        probabilities: ``(ny, nx, K)`` every class's probability (``None`` for
            very large sweeps, see ``keep_probabilities``).
        base_activities: ``(M,)`` total activation of every map, unoccluded.
        base_strongest: ``(M,)`` largest activation of every map, unoccluded.
        base_probabilities: ``(K,)`` class probabilities, unoccluded.
        projection: (c) the deconvnet projection of map ``channel``'s
            strongest activation on this image (a :class:`~vizlib.Projection`), or ``None``.
        fill: ``(C,)`` the occluder's value in input space.
        categories: class names, when known.
        mean, std: the network's normalisation, for display.
        strategy: how the occluded images were computed: ``"incremental"``
            (only what the square can change, :mod:`vizlib.methods.incremental`)
            or ``"full"`` (every occluded image through the whole network).
        strategy_note: why, in a sentence (which layers were computed on
            windows, or what stood in the way).

    Example:
        >>> from vizlib.models import alexnet_fmnist
        >>> sweep = Occlusion(alexnet_fmnist(seed=0)).sweep(torch.randn(1, 64, 64), size=32, stride=32,
        ...                                                 progress=False, project=False)
        >>> sweep.ys.tolist(), sweep.activities.shape[:2], sweep.projection is None
        ([0, 32], torch.Size([2, 2]), True)
    """

    image: torch.Tensor
    size: int
    stride: int
    ys: torch.Tensor
    xs: torch.Tensor
    layer: str
    channel: int
    target: int
    activity: torch.Tensor
    activities: torch.Tensor
    probability: torch.Tensor
    label: torch.Tensor
    label_probability: torch.Tensor
    probabilities: torch.Tensor | None
    base_activities: torch.Tensor
    base_strongest: torch.Tensor
    base_probabilities: torch.Tensor
    projection: Any = None
    fill: torch.Tensor = field(default_factory=lambda: torch.zeros(1))
    categories: list[str] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    strategy: str = "full"
    strategy_note: str = ""

    def __repr__(self) -> str:
        ny, nx = self.activity.shape
        return (f"OcclusionMaps({ny}×{nx} positions, {self.size}px square, stride {self.stride}, layer "
                f"{self.layer!r} map {self.channel}, class {self.class_name(self.target)!r})")

    # ------------------------------------------------------------------ reading

    @property
    def base_activity(self) -> float:
        """Total activation of map ``channel`` on the unoccluded image."""
        return float(self.base_activities[self.channel])

    @property
    def base_probability(self) -> float:
        """Probability of ``target`` on the unoccluded image."""
        return float(self.base_probabilities[self.target])

    @property
    def base_label(self) -> int:
        """Most probable class on the unoccluded image."""
        return int(self.base_probabilities.argmax())

    @property
    def centres(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Centre rows and columns of the occluder positions (input pixels, may be half-integers)."""
        half = (self.size - 1) / 2
        return self.ys.double() + half, self.xs.double() + half

    def class_name(self, k: int) -> str:
        """Name of class ``k`` (its number when the categories are not known)."""
        return self.categories[k] if self.categories is not None and 0 <= k < len(self.categories) else str(k)

    def for_class(self, k: int) -> torch.Tensor:
        """(d) for another class, from the same sweep: ``(ny, nx)``.

        Raises:
            ValueError: class out of range, or the full probabilities were not kept.
        """
        if self.probabilities is None:
            raise ValueError("this sweep did not keep every class's probability; sweep again with "
                             "keep_probabilities=True, or with target=k")
        n = self.probabilities.shape[-1]
        if not 0 <= int(k) < n:
            raise ValueError(f"class index {k} is out of range: the network has {n} classes (0..{n - 1})")
        return self.probabilities[..., int(k)]

    def for_map(self, c: int) -> torch.Tensor:
        """(b) for another feature map of the layer, from the same sweep: ``(ny, nx)``."""
        n = self.activities.shape[-1]
        if not 0 <= int(c) < n:
            raise ValueError(f"map {c} is out of range: layer {self.layer} has {n} maps (0..{n - 1})")
        return self.activities[..., int(c)]

    def lowest(self, which: str = "probability") -> tuple[int, int]:
        """Top-left ``(y, x)`` of the occluder position where a map is lowest.

        Args:
            which: ``"probability"`` (d) or ``"activity"`` (b).
        """
        m = {"probability": self.probability, "activity": self.activity}[which]
        i = int(torch.argmin(m))  # first minimum in row-major order
        return int(self.ys[i // m.shape[1]]), int(self.xs[i % m.shape[1]])

    def occluded(self, y: int, x: int) -> torch.Tensor:
        """The image with the square at top-left ``(y, x)``: ``(C, H, W)``."""
        img = self.image.clone()
        img[:, y : y + self.size, x : x + self.size] = self.fill.to(img.dtype).view(-1, 1, 1)
        return img


# --------------------------------------------------------------------------- the sweep


class Occlusion:
    """An occlusion sweep over a network: one verb, :meth:`sweep`.

    Args:
        net: a :class:`~vizlib.Net` (its transform prepares images, its
            ``mean``/``std`` give the grey, its categories name the labels)
            or an ``nn.Module`` (then pass prepared tensors, and ``mean`` and
            ``std``; without them the fill is 0, the mean of centred inputs).
        layer: the layer of (b) and (c): paper name, module path or module
            (default: the top convolutional layer, :func:`top_conv_layer`).
        grey: the occluder's pixel value(s) (default: the mean the network subtracts).
        mean, std: the normalisation, for a bare module.
        device: where to compute (default: where the model lives; another
            device gets a copy of the model, the model itself is never moved).

    Raises:
        ArgumentError: ``net`` is neither a module nor a Net; a layer given as an int.
        LayerError: an unknown layer.
        DeviceError: ``device`` is not a device name or not available here, or
            the model lives on the meta device (before any copy).

    Example:
        >>> from vizlib.models import alexnet
        >>> occ = Occlusion(alexnet(seed=0, num_classes=10))
        >>> maps = occ.sweep(torch.randn(3, 96, 96), size=32, stride=32, progress=False, project=False)
        >>> tuple(maps.probability.shape), maps.layer
        ((3, 3), 'c5')
    """

    def __init__(
        self,
        net: Any,
        layer: str | nn.Module | None = None,
        *,
        grey: float | Sequence[float] | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        module, transform = _unwrap(net, need="Occlusion")
        self.model: nn.Module = module
        self.transform = transform
        self.categories: list[str] | None = list(net.categories) if hasattr(net, "categories") else None
        m = mean if mean is not None else getattr(net, "mean", None)
        s = std if std is not None else getattr(net, "std", None)
        self.mean = tuple(float(v) for v in m) if m is not None else None
        self.std = tuple(float(v) for v in s) if s is not None else None
        self.layer, self.path = resolve_layer(module, layer if layer is not None else top_conv_layer(module))
        self._grey = grey
        self._net, self.device = on_device(module, device)
        self._dn: Any = None

    def __repr__(self) -> str:
        grey = "mean" if self._grey is None else self._grey
        return f"Occlusion(layer={self.layer!r}, device={self.device}, grey={grey})"

    # ------------------------------------------------------------------ input

    def _prepare(self, image: Any) -> torch.Tensor:
        if isinstance(image, torch.Tensor):
            return image
        return load_image(image, self.model, transform=self.transform)  # size checked after the transform

    def _batch(self, images: Any) -> torch.Tensor:
        if isinstance(images, torch.Tensor):
            return check_image(images, self.model, batch=True)
        items = [self._prepare(im) for im in images]
        if not items:
            raise ValueError("no images given")
        shapes = [tuple(check_image(t, self.model).shape[1:]) for t in items]
        for i, sh in enumerate(shapes):
            if sh != shapes[0]:
                raise ImageError(
                    f"images of different sizes in one call: image 0 is {shapes[0][1]}×{shapes[0][2]} and image {i} "
                    f"is {sh[1]}×{sh[2]}; sweep them in separate calls, or prepare them to one size "
                    "(the net's transform does)"
                )
        return torch.cat([check_image(t, self.model) for t in items])

    def fill(self, channels: int) -> torch.Tensor:
        """The occluder's value in input space for ``channels`` channels (see :func:`occluder_fill`)."""
        return occluder_fill(None, self._grey, mean=self.mean, std=self.std, channels=channels)

    def grid(self, height: int, width: int, size: int | None = None,
             stride: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The square's positions a sweep of a ``height x width`` input uses (:func:`occlusion_grid`),
        with :meth:`sweep`'s defaults: ``size`` 32/224 of the shorter side, ``stride`` ``size // 4``.

        Example:
            >>> from vizlib.models import alexnet
            >>> ys, xs = Occlusion(alexnet(seed=0)).grid(224, 224)
            >>> len(ys) * len(xs), int(ys[1])
            (625, 8)
        """
        size = _default_size(min(height, width)) if size is None else size
        stride = max(1, size // 4) if stride is None else stride
        return occlusion_grid(height, width, size, stride)

    # ------------------------------------------------------------------ verbs

    def sweep(
        self,
        image: Any,
        size: int | None = None,
        stride: int | None = None,
        target: int | str | None = None,
        *,
        channel: int | None = None,
        project: bool = True,
        batch_size: int | None = None,
        progress: bool | None = None,
        keep_probabilities: bool | None = None,
        incremental: bool | None = None,
    ) -> OcclusionMaps:
        """Slide the grey square over one image; every map of Fig. 7 from the same forward passes.

        Args:
            image: ``(C, H, W)`` / ``(1, C, H, W)`` prepared tensor, or a file,
                PIL image or array when the sweep was made from a Net.
            size: the square's side in input pixels (default: 32/224 of the image side).
            stride: step between positions (default: ``size // 4``).
            target: the class of (d), an index or a category name (default:
                the class predicted on the unoccluded image).
            channel: the map of (b) and (c) (default: the one with the
                strongest activation on the unoccluded image).
            project: compute (c), the deconvnet projection (needs a network the
                deconvnet can reverse).
            batch_size: occluded images per forward pass (default: sized to
                the memory at hand).
            progress: show a progress bar (default: when there are many batches).
            keep_probabilities: keep every class's probability per position, so
                that :meth:`OcclusionMaps.for_class` needs no new sweep
                (default: when positions × classes ≤ 4 M).
            incremental: recompute only what the square can change, layer by
                layer, from the unoccluded image's activations (exact: the same
                maps up to float rounding; :mod:`vizlib.methods.incremental`).
                ``None`` (default): where its estimated work is below 0.8 of
                the full sweep's, the model carries no forward hooks of yours
                (the incremental sweep does not call the modules, so hooks would
                not see the occluded images) and every layer up to the dense
                ones has an incremental rule. ``True``: incremental whenever the
                network allows (else the full sweep, with a warning); ``False``:
                every occluded image through the whole network.
                ``OcclusionMaps.strategy`` says which way it went, and why.

        Returns:
            An :class:`OcclusionMaps`.

        Raises:
            ValueError: size larger than the image, class or map out of range.
            ArgumentError: ``size``, ``stride``, ``channel`` or ``batch_size``
                not whole numbers, or below 1 (``batch_size=0`` is not "auto":
                leave it out); checked before any forward pass.
            ImageError, InputTooSmall: the image does not fit the network, or
                has NaN or infinite pixels (the message counts them).
        """
        x = self._prepare(image)
        x = check_image(x, self.model)
        return self.sweep_many(x, size, stride, None if target is None else [target], channel=channel,
                               project=project, batch_size=batch_size, progress=progress,
                               keep_probabilities=keep_probabilities, incremental=incremental)[0]

    def sweep_many(
        self,
        images: Any,
        size: int | None = None,
        stride: int | None = None,
        targets: Sequence[int | str] | torch.Tensor | None = None,
        *,
        channel: int | None = None,
        project: bool = True,
        batch_size: int | None = None,
        progress: bool | None = None,
        keep_probabilities: bool | None = None,
        incremental: bool | None = None,
    ) -> list[OcclusionMaps]:
        """:meth:`sweep` for several images of one size; their positions share batches.

        Args:
            images: ``(N, C, H, W)`` prepared tensor or a list of images.
            targets: one class per image (default: each image's predicted class).

        Returns:
            One :class:`OcclusionMaps` per image.

        Raises:
            ImageError: images of different sizes.
            ArgumentError, ValueError: as for :meth:`sweep` (checked before any forward pass).
        """
        batch_size = batch_size_arg(batch_size)
        if channel is not None:
            channel = whole_number(channel, "channel", at_least=0)
        size = None if size is None else whole_number(size, "size", at_least=1)
        stride = None if stride is None else whole_number(stride, "stride", at_least=1)
        x = self._batch(images)
        self._check_before(x, channel, targets)
        n, c, h, w = x.shape
        size = _default_size(min(h, w)) if size is None else size
        stride = max(1, size // 4) if stride is None else stride
        ys, xs = self.grid(h, w, size, stride)
        p = next(self._net.parameters(), None)
        x = x.to(self.device, p.dtype if p is not None else x.dtype)
        fill = self.fill(c).to(self.device, x.dtype)

        with preserved(self._net), torch.no_grad():
            base_sum, base_max, base_logits, per_image = self._base(x)
            k = base_logits.shape[1]
            tgt = self._targets(targets, n, base_logits)
            m = base_sum.shape[1]
            if channel is not None and not 0 <= int(channel) < m:
                raise ValueError(f"map {channel} is out of range: layer {self.layer} has {m} maps (0..{m - 1})")
            chans = (torch.full((n,), int(channel), dtype=torch.long) if channel is not None
                     else base_max.argmax(1).cpu())
            npos = len(ys) * len(xs)
            keep = (n * npos * k <= KEEP_PROBABILITIES_LIMIT) if keep_probabilities is None else keep_probabilities
            bs = batch_size or self._auto_batch(per_image, c * h * w * x.element_size())
            out, strategy, note = None, "full", "every occluded image through the whole network (incremental=False)"
            if incremental is not False:
                plan, note = self._plan(x, ys, xs, size, incremental)
                if plan is not None:
                    try:
                        out = plan.run(x, ys, xs, fill, tgt.to(self.device), bs, progress, keep,
                                       tuple(base_logits.shape[1:]), base_logits,
                                       group=max(1, INCREMENTAL_CACHE_BUDGET // max(1, plan.cache_bytes(x))))
                        strategy = "incremental"
                    except _NotAChain as e:
                        note = f"full sweep: {e}"
                        self._fallback_warning(incremental, note)
            if out is None:
                out = self._run(x, ys, xs, size, fill, tgt.to(self.device), bs, progress, keep)

        ny, nx = len(ys), len(xs)
        results = []
        for i in range(n):
            sl = slice(i * npos, (i + 1) * npos)
            ch = int(chans[i])
            acts = out["activities"][sl].reshape(ny, nx, m).cpu()
            probs = out["probabilities"][sl].reshape(ny, nx, k).cpu() if keep else None
            results.append(OcclusionMaps(
                image=x[i].detach().cpu(), size=size, stride=stride, ys=ys, xs=xs, layer=self.layer,
                channel=ch, target=int(tgt[i]), activity=acts[..., ch].clone(), activities=acts,
                probability=out["probability"][sl].reshape(ny, nx).cpu(),
                label=out["label"][sl].reshape(ny, nx).cpu(),
                label_probability=out["label_probability"][sl].reshape(ny, nx).cpu(),
                probabilities=probs, base_activities=base_sum[i].cpu(), base_strongest=base_max[i].cpu(),
                base_probabilities=base_logits[i].softmax(0).cpu(), fill=fill.cpu(),
                categories=self.categories, mean=self.mean, std=self.std, strategy=strategy, strategy_note=note,
            ))
        if project:
            for i, r in enumerate(results):
                r.projection = self.project(x[i], r.channel)
        return results

    def project(self, image: torch.Tensor, channel: int) -> Any:
        """(c): the deconvnet projection of map ``channel``'s strongest activation on ``image``."""
        from .deconvnet import Deconvnet

        if self._dn is None:
            self._dn = Deconvnet(self._net, device=self.device)
        return self._dn.project(image, self.path, int(channel))

    # ------------------------------------------------------------------ internals

    def _plan(self, x: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, size: int,
              incremental: bool | None) -> tuple[IncrementalPlan | None, str]:
        """The incremental plan to run, or ``None`` and why the full sweep runs instead."""
        hooked = _hooked(self._net)
        if incremental is None and hooked:
            return None, (f"full sweep: the model carries forward hooks ({hooked}), which see every occluded "
                          "image only in the full sweep (incremental=True computes around them)")
        plan = plan_incremental(self._net, x[:1], self.path, ys, xs, size, force=bool(incremental))
        if isinstance(plan, str):
            note = f"full sweep: the incremental sweep cannot follow this network: {plan}"
            self._fallback_warning(incremental, note)
            return None, note
        if plan.switch == 0:
            note = f"full sweep: {plan.note}"
            if plan.stop and not plan.ops[0].windowed():
                note = f"full sweep: no incremental rule for the first layer ({plan.stop})"
                self._fallback_warning(incremental, note)
            return None, note
        if incremental is None and not plan.pays:
            return None, f"full sweep: the incremental one does not pay here ({plan.note})"
        note = f"incremental: {plan.note}"
        if hooked:
            note += f"; the hooks on the model ({hooked}) did not see the occluded images"
        return plan, note

    @staticmethod
    def _fallback_warning(incremental: bool | None, note: str) -> None:
        if incremental:
            warnings.warn(f"incremental=True, but {note}", UserWarning, stacklevel=4)

    def _check_before(self, x: torch.Tensor, channel: int | None, targets: Any) -> None:
        """The map and the classes against the network's shapes, from a pass on the meta device (no
        memory, no arithmetic), so that a number out of range is refused before any forward pass."""
        try:
            t = meta_trace(self.model, tuple(x.shape[1:]))
        except Exception:  # a model the meta device cannot run: the same checks follow the unoccluded pass
            return
        if channel is not None:
            maps = [int(c.out_shape[1]) for c in t.calls if c.path == self.path and len(c.out_shape) > 1]
            if maps and not 0 <= channel < maps[0]:
                m = maps[0]
                raise ValueError(f"map {channel} is out of range: layer {self.layer} has {m} maps (0..{m - 1})")
        if targets is not None and isinstance(t.output, torch.Tensor) and t.output.ndim == 2:
            self._targets(targets, len(x), torch.zeros(len(x), t.output.shape[1]))

    def _targets(self, targets: Any, n: int, base_logits: torch.Tensor) -> torch.Tensor:
        k = base_logits.shape[1]
        if targets is None:
            return base_logits.argmax(1).cpu()
        if isinstance(targets, (int, str, np.integer)):
            targets = [targets]
        items = list(targets.tolist() if isinstance(targets, torch.Tensor) else targets)
        if len(items) != n:
            raise ValueError(f"{len(items)} target classes for {n} images: give one per image")
        out = []
        for t in items:
            if isinstance(t, str):
                if self.categories is None or t not in self.categories:
                    raise ValueError(f"unknown class name {t!r}" + ("" if self.categories is None else
                                     f"; e.g. {', '.join(self.categories[:5])}"))
                t = self.categories.index(t)
            if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
                raise ValueError(f"a class must be an index or a category name, not {t!r}")
            if not 0 <= int(t) < k:
                raise ValueError(f"class index {t} is out of range: the network has {k} classes (0..{k - 1})")
            out.append(int(t))
        return torch.tensor(out, dtype=torch.long)

    def _base(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """The unoccluded images, in one forward pass: per-map totals and maxima, logits, and peak
        bytes per image (the largest input + output of one module, which sets the batch size)."""
        t = trace(self._net, x.clone(), keep=[self.path])  # a clone: an in-place first layer writes into its input
        logits = t.output
        # bytes of the largest input + output of one module (non-tensor calls hold nothing)
        peak = max((math.prod(c.in_shape) + math.prod(c.out_shape) for c in t.calls if c.out_ptr != -2),
                   default=0) * x.element_size()
        o = t.outputs[self.path]
        if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
            raise ValueError("the network must return class scores of shape (N, classes)")
        flat = o.flatten(2) if o.ndim > 2 else o.unsqueeze(-1)
        return flat.sum(-1), flat.amax(-1), logits, max(1, peak // x.shape[0])

    def _auto_batch(self, per_image: int, image_bytes: int) -> int:
        per = 2 * per_image + image_bytes
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            return int(max(1, min(GPU_MAX_BATCH, free // 2 // per)))
        return int(max(1, min(CPU_MAX_BATCH, CPU_BATCH_BUDGET // per)))

    def _run(
        self, x: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, size: int, fill: torch.Tensor,
        targets: torch.Tensor, bs: int, progress: bool | None, keep: bool,
    ) -> dict[str, torch.Tensor]:
        """All occluded images through the network, ``bs`` at a time, built in place."""
        dev = x.device
        n, c, h, w = x.shape
        npos = len(ys) * len(xs)
        total = n * npos
        bs = min(bs, total)
        ar = torch.arange(size, device=dev)
        rows = ys.to(dev).view(-1, 1) + ar  # (ny, s)
        cols = xs.to(dev).view(-1, 1) + ar  # (nx, s)
        square = (rows.view(-1, 1, size, 1) * w + cols.view(1, -1, 1, size)).reshape(npos, size * size)
        flat = x.reshape(n, c, h * w)
        chan = torch.arange(c, device=dev).view(1, c, 1)
        buf = flat[:1].repeat(bs, 1, 1)  # every slot holds image 0 to start with
        slot = torch.zeros(bs, dtype=torch.long, device=dev)
        fill_v = fill.view(1, c, 1)

        res: dict[str, torch.Tensor] = {}
        chunks = range(0, total, bs)
        show = len(chunks) > 4 if progress is None else bool(progress)
        bar = tqdm(chunks, desc=f"occluding ({total} positions)", unit="batch", disable=not show)
        try:
            with Capture(self._net, [self.path]) as cap:
                label = cap.resolved[0][0]
                for start in bar:
                    b = min(bs, total - start)
                    task = torch.arange(start, start + b, device=dev)
                    img, pos = task // npos, task % npos
                    view = buf[:b]
                    if n > 1:
                        moved = slot[:b] != img
                        if bool(moved.any()):
                            view[moved] = flat[img[moved]]
                            slot[:b] = img
                    idx = square[pos].unsqueeze(1).expand(b, c, size * size)
                    view.scatter_(2, idx, fill_v.expand(b, c, size * size))
                    before = version(buf)
                    logits = self._net(view.view(b, c, h, w))
                    if version(buf) != before:  # an in-place first layer wrote into the buffer: copy the images again
                        view.copy_(flat[img])
                    else:  # put the pixels back
                        view.scatter_(2, idx, flat[img.view(-1, 1, 1), chan, square[pos].unsqueeze(1)])
                    o = cap.outputs.pop(label, None)
                    if o is None:
                        raise ValueError(f"layer {self.layer} was not reached by the forward pass")
                    red = o.flatten(2).sum(-1) if o.ndim > 2 else o
                    probs = logits.softmax(1)
                    store_positions(res, start, red, probs, targets[img], total, keep)
        finally:
            bar.close()
        return res


def occlusion_maps(
    net: Any,
    image: Any,
    size: int | None = None,
    stride: int | None = None,
    target: int | str | None = None,
    *,
    layer: str | nn.Module | None = None,
    grey: float | Sequence[float] | None = None,
    device: torch.device | str | None = None,
    **kwargs: Any,
) -> OcclusionMaps:
    """Shorthand: ``Occlusion(net, layer, grey=grey, device=device).sweep(image, size, stride, target, **kwargs)``.

    Example:
        >>> from vizlib.models import alexnet
        >>> m = occlusion_maps(alexnet(seed=0, num_classes=10), torch.randn(3, 96, 96), 48, 48,
        ...                    target=3, project=False, progress=False)
        >>> m.probability.shape, m.target
        (torch.Size([2, 2]), 3)
    """
    return Occlusion(net, layer, grey=grey, device=device).sweep(image, size, stride, target, **kwargs)


