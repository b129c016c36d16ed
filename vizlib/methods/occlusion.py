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
activation on the unoccluded image (:mod:`vizlib.deconvnet`), with, from
:func:`vizlib.top_activations`, its strongest projections on other images.

The square's grey is the mean the network subtracts: in pixel space the
occluder has the value ``mean`` (``Net.mean``), which the normalisation
``(x - mean) / std`` maps to ``(mean - mean) / std`` in the input the network
sees. :func:`occluder_fill` derives it from the network's own ``mean`` and
``std`` (or from a grey the reader picks).

How it is fast: the occluded images are built in place in one buffer that
holds copies of the image (the square is written with ``scatter_``, and the
pixels under it are put back after the forward pass); a forward hook on the
layer reduces its maps to one number per map and position while the batch
goes through; no gradients are kept. So the sweep costs little more than
the forward passes themselves (``benchmarks/bench_occlusion.py``).

Example::

    import vizlib as vl
    net = vl.load("alexnet")
    occ = vl.Occlusion(net)                         # top conv layer, grey = net.mean
    maps = occ.sweep("dog.jpg", size=32, stride=8, target=207)
    fig = vl.plot_occlusion(maps)
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn
from tqdm.auto import tqdm

from ..core.errors import InputTooSmall
from ..core.device import resolve_device
from ..core.hooks import preserved
from ..core.errors import ImageError
from ..core.images import _unwrap, check_image, load_image, to_display
from ..core.layers import resolve_layer

__all__ = [
    "Occlusion",
    "OcclusionMaps",
    "occlusion_maps",
    "occluder_fill",
    "occlusion_grid",
    "top_conv_layer",
    "occlusion_readings",
    "OcclusionReadings",
    "readings_table",
    "occlusion_claims",
    "plot_occlusion",
    "occlusion_explorer",
    "object_of",
    "other_images",
]

#: Bytes of activations one batch may use on the CPU (the GPU uses half its free memory).
CPU_BATCH_BUDGET = 512 * 2**20
#: Largest batch on the CPU (larger batches do not run faster there) and on a GPU.
CPU_MAX_BATCH = 128
GPU_MAX_BATCH = 1024
#: Full class probabilities are kept per position when positions x classes is at most this.
KEEP_PROBABILITIES_LIMIT = 2**22


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
    leaves = [(p, m) for p, m in model.named_modules() if p and not list(m.children())]
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
        raise ValueError(f"the stride must be at least 1 pixel (got {stride}): it is the step between occluder positions")
    if size < 1:
        raise ValueError(f"the occluder size must be at least 1 pixel (got {size})")
    if size > min(height, width):
        raise ValueError(
            f"the occluder ({size}×{size} px) is larger than the image ({height}×{width} px); "
            f"pick a size of at most {min(height, width)}"
        )
    return torch.arange(0, height - size + 1, stride), torch.arange(0, width - size + 1, stride)


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
        module, transform = _unwrap(net)
        if module is None:
            raise TypeError("Occlusion needs a model (an nn.Module or a vizlib Net)")
        self.model: nn.Module = module
        self.transform = transform
        self.categories: list[str] | None = list(net.categories) if hasattr(net, "categories") else None
        m = mean if mean is not None else getattr(net, "mean", None)
        s = std if std is not None else getattr(net, "std", None)
        self.mean = tuple(float(v) for v in m) if m is not None else None
        self.std = tuple(float(v) for v in s) if s is not None else None
        self.layer, self.path = resolve_layer(module, layer if layer is not None else top_conv_layer(module))
        self._grey = grey
        self.device = resolve_device(device, module)
        self._net = module
        if resolve_device(None, module) != self.device:
            self._net = copy.deepcopy(module).to(self.device)
        self._dn: Any = None

    def __repr__(self) -> str:
        return f"Occlusion(layer={self.layer!r}, device={self.device}, grey={'mean' if self._grey is None else self._grey})"

    # ------------------------------------------------------------------ input

    def _prepare(self, image: Any) -> torch.Tensor:
        if isinstance(image, torch.Tensor):
            return image
        try:
            return load_image(image, self.model, transform=self.transform)
        except InputTooSmall:
            if self.transform is None:
                raise
            # load_image checks the picture's own size; a transform that enlarges it (28 px
            # Fashion-MNIST to a bundled net's 64) makes it fit: check what the net gets.
            from ..core.images import _to_pil

            return check_image(self.transform(_to_pil(image)), self.model)

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

        Returns:
            An :class:`OcclusionMaps`.

        Raises:
            ValueError: size larger than the image, stride 0, class or map out of range.
            ImageError, InputTooSmall: the image does not fit the network.
        """
        x = self._prepare(image)
        x = check_image(x, self.model)
        return self.sweep_many(x, size, stride, None if target is None else [target], channel=channel,
                               project=project, batch_size=batch_size, progress=progress,
                               keep_probabilities=keep_probabilities)[0]

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
    ) -> list[OcclusionMaps]:
        """:meth:`sweep` for several images of one size; their positions share batches.

        Args:
            images: ``(N, C, H, W)`` prepared tensor or a list of images.
            targets: one class per image (default: each image's predicted class).

        Returns:
            One :class:`OcclusionMaps` per image.

        Raises:
            ImageError: images of different sizes.
        """
        x = self._batch(images)
        n, c, h, w = x.shape
        size = _default_size(min(h, w)) if size is None else size
        stride = max(1, size // 4) if stride is None else stride
        ys, xs = occlusion_grid(h, w, size, stride)
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
            if bs < 1:
                raise ValueError(f"batch_size must be at least 1, not {bs}")
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
                categories=self.categories, mean=self.mean, std=self.std,
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
        """The unoccluded images: per-map totals and maxima, logits, and peak bytes per image."""
        got: dict[str, torch.Tensor] = {}
        peak = [0]

        def watch(module: nn.Module, inputs: tuple, output: Any) -> None:
            if isinstance(output, torch.Tensor):
                inp = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
                size = output.numel() * output.element_size() + (
                    inp.numel() * inp.element_size() if inp is not None else 0)
                peak[0] = max(peak[0], size)

        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            o = output.detach()
            flat = o.flatten(2) if o.ndim > 2 else o.unsqueeze(-1)
            got["sum"] = flat.sum(-1)
            got["max"] = flat.amax(-1)

        handles = []
        try:
            for path, mod in self._net.named_modules():
                if path and not list(mod.children()):
                    handles.append(mod.register_forward_hook(watch))
            handles.append(self._net.get_submodule(self.path).register_forward_hook(hook))
            logits = self._net(x)
        finally:
            for h in handles:
                h.remove()
        if "sum" not in got:
            raise ValueError(f"layer {self.layer} was not reached by the forward pass")
        if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
            raise ValueError("the network must return class scores of shape (N, classes)")
        return got["sum"], got["max"], logits, max(1, peak[0] // x.shape[0])

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
        cursor = [0, 0]  # start, count of the batch in flight

        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            o = output.detach()
            red = o.flatten(2).sum(-1) if o.ndim > 2 else o
            if "activities" not in res:
                res["activities"] = red.new_empty(total, red.shape[1])
            res["activities"][cursor[0] : cursor[0] + cursor[1]] = red

        chunks = range(0, total, bs)
        show = len(chunks) > 4 if progress is None else bool(progress)
        bar = tqdm(chunks, desc=f"occluding ({total} positions)", unit="batch", disable=not show)
        handle = self._net.get_submodule(self.path).register_forward_hook(hook)
        try:
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
                cursor[0], cursor[1] = start, b
                logits = self._net(view.view(b, c, h, w))
                view.scatter_(2, idx, flat[img.view(-1, 1, 1), chan, square[pos].unsqueeze(1)])  # put the pixels back
                probs = logits.softmax(1)
                if "probability" not in res:
                    res["probability"] = probs.new_empty(total)
                    res["label"] = torch.empty(total, dtype=torch.long, device=dev)
                    res["label_probability"] = probs.new_empty(total)
                    if keep:
                        res["probabilities"] = probs.new_empty(total, probs.shape[1])
                res["probability"][start : start + b] = probs.gather(1, targets[img].view(-1, 1)).view(-1)
                top_p, top_k = probs.max(1)
                res["label"][start : start + b] = top_k
                res["label_probability"][start : start + b] = top_p
                if keep:
                    res["probabilities"][start : start + b] = probs
        finally:
            handle.remove()
            bar.close()
        if "activities" not in res:
            raise ValueError(f"layer {self.layer} was not reached by the forward pass")
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


# --------------------------------------------------------------------------- images for the chapter


def object_of(example: Any, net: Any) -> torch.Tensor | None:
    """Where an example image's object lies in ``net``'s input: ``(S, S)`` boolean, or ``None``.

    A Fashion-MNIST garment: its own pixels (the silhouette on the black
    background). A demo photo: the hand-drawn box around the object of its
    ImageNet class (:func:`vizlib.demo_object_boxes`).

    Args:
        example: a :class:`vizlib.examples.Example` (``image``, ``name``).
        net: the :class:`~vizlib.Net` whose input it is.
    """
    from .correspondence import demo_object_boxes, object_in_input

    if example.image.ndim == 2:
        return object_in_input(example.image, net, level=0)
    box = demo_object_boxes().get(example.name)
    return None if box is None else object_in_input(example.image, net, box=box)


def other_images(net: Any, shown: Sequence[Any], limit: int | None = None) -> Any:
    """The chapter's dataset for ``net`` without the images ``shown``: where (c)'s other images come from.

    Args:
        net: a :class:`~vizlib.Net`.
        shown: :class:`vizlib.examples.Example` images to leave out.
        limit: at most this many images.

    Returns:
        A :class:`vizlib.examples.ExampleDataset` of ``(tensor, label)`` items.
    """
    from ..core.examples import ExampleDataset, example_dataset

    data = example_dataset(net)
    keep = [i for i in range(len(data)) if not any(np.array_equal(data.raw(i), ex.image) for ex in shown)]
    keep = keep[:limit] if limit is not None else keep
    return ExampleDataset([data.images[i] for i in keep], [int(data.labels[i]) for i in keep], net,
                          f"{data.description}, without the {len(shown)} images shown")


# --------------------------------------------------------------------------- readings


@dataclass
class OcclusionReadings:
    """What one sweep says about Zeiler & Fergus's two readings of Fig. 7, as numbers.

    Attributes:
        target: the class of (d) and its name.
        base_probability: p(target) unoccluded; ``lowest_probability`` its minimum
            over positions, at the square with top-left ``lowest_at``.
        strongest_drop_at: where (b), the strongest map's total activation, is lowest.
        distance: pixels between the two squares' positions.
        same_place: the two squares overlap (distance below the occluder size on both axes).
        label_changes: share of positions where the most probable label is not the unoccluded one.
        on_object: share of the most damaging positions (lowest tenth of (d)) whose
            square centre lies on the object (``None`` without an object mask).
        object_share: share of all positions whose centre lies on the object (chance level).
        projection_ratio: the share of (c)'s energy (squared projection) under the square
            where (b) is lowest, over the share of the image that square covers: above 1 when
            the occluder that silences the map covers what its projection shows (``None``
            without a projection).
    """

    name: str
    target: int
    target_name: str
    base_probability: float
    lowest_probability: float
    lowest_at: tuple[int, int]
    strongest_map: int
    base_activity: float
    lowest_activity: float
    strongest_drop_at: tuple[int, int]
    distance: float
    same_place: bool
    label_changes: float
    on_object: float | None
    object_share: float | None
    projection_ratio: float | None = None

    @property
    def localises(self) -> bool | None:
        """The most damaging positions fall on the object more often than chance (``None``: no mask)."""
        if self.on_object is None or self.object_share is None:
            return None
        return self.on_object > self.object_share


def occlusion_readings(
    maps: OcclusionMaps, object_mask: torch.Tensor | np.ndarray | None = None, *, name: str = "", quantile: float = 0.1
) -> OcclusionReadings:
    """Zeiler & Fergus's readings of Fig. 7 as numbers: where p(class) and the strongest map drop.

    Args:
        maps: a sweep.
        object_mask: ``(H, W)`` boolean, True on the object (input pixels).
        name: a label for the image.
        quantile: the share of positions counted as "most damaging".

    Example:
        >>> from vizlib.models import alexnet
        >>> m = occlusion_maps(alexnet(seed=0, num_classes=10), torch.randn(3, 96, 96), 48, 24,
        ...                    project=False, progress=False)
        >>> occlusion_readings(m).lowest_at in [(y, x) for y in (0, 24, 48) for x in (0, 24, 48)]
        True
    """
    ly, lx = maps.lowest("probability")
    ay, ax = maps.lowest("activity")
    on_object = share = None
    if object_mask is not None:
        mask = torch.as_tensor(np.asarray(object_mask)).bool()
        if tuple(mask.shape) != tuple(maps.image.shape[-2:]):
            raise ValueError(f"the object mask is {tuple(mask.shape)}, the image {tuple(maps.image.shape[-2:])}")
        cy, cx = maps.centres
        on = mask[cy.round().long().clamp(0, mask.shape[0] - 1).view(-1, 1),
                  cx.round().long().clamp(0, mask.shape[1] - 1).view(1, -1)]
        p = maps.probability.flatten()
        k = max(1, int(math.ceil(quantile * p.numel())))
        worst = torch.argsort(p, stable=True)[:k]
        on_object = float(on.flatten()[worst].double().mean())
        share = float(on.double().mean())
    ratio = None
    if maps.projection is not None:
        energy = maps.projection.full(0).detach().double().pow(2).sum(0)
        total = float(energy.sum())
        if total > 0:
            under = float(energy[ay : ay + maps.size, ax : ax + maps.size].sum()) / total
            ratio = under / (maps.size * maps.size / energy.numel())
    return OcclusionReadings(
        name=name, target=maps.target, target_name=maps.class_name(maps.target),
        base_probability=maps.base_probability, lowest_probability=float(maps.probability.min()),
        lowest_at=(ly, lx), strongest_map=maps.channel, base_activity=maps.base_activity,
        lowest_activity=float(maps.activity.min()), strongest_drop_at=(ay, ax),
        distance=float(math.hypot(ly - ay, lx - ax)),
        same_place=abs(ly - ay) < maps.size and abs(lx - ax) < maps.size,
        label_changes=float((maps.label != maps.base_label).double().mean()),
        on_object=on_object, object_share=share, projection_ratio=ratio,
    )


def readings_table(readings: Sequence[OcclusionReadings]) -> Any:
    """The readings of several sweeps as a :class:`~vizlib.Table`."""
    from ..core.tables import Table

    rows = []
    for r in readings:
        rows.append([
            r.name, r.target_name, round(r.base_probability, 4), round(r.lowest_probability, 4),
            f"{r.lowest_at}", f"{r.strongest_drop_at}", r.same_place, round(r.label_changes, 3),
            "—" if r.on_object is None else f"{r.on_object:.2f} vs {r.object_share:.2f}",
        ])
    return Table(["image", "class", "p unoccluded", "lowest p", "(d) lowest at", "(b) lowest at",
                  "same place", "labels changed", "on object (worst 10%) vs chance"], rows,
                 "Occlusion readings: where the class probability (d) and the strongest map (b) drop")


def occlusion_claims(readings: Sequence[OcclusionReadings]) -> Any:
    """Zeiler & Fergus's three readings of Fig. 7 beside what these sweeps measured, with verdicts.

    Rules: the model *localises the object* on an image when the lowest tenth
    of (d) falls on the object more often than chance (images with an object
    region only); the map's projection *shows what silences it* when the
    square where (b) is lowest covers more of (c)'s energy than its share of
    the image (ratio above 1); the classifier's sensitivity is *not always
    where the strongest feature is* when, on at least one image, the squares
    where (b) and (d) are lowest do not overlap.
    """
    from ..core.tables import Table

    n = len(readings)
    loc = [r for r in readings if r.localises is not None]
    k_loc = sum(bool(r.localises) for r in loc)
    proj = [r for r in readings if r.projection_ratio is not None]
    k_proj = sum(r.projection_ratio > 1 for r in proj)  # type: ignore[operator]
    k_apart = sum(not r.same_place for r in readings)
    drops = ", ".join(f"{r.base_probability:.3g}→{r.lowest_probability:.3g}" for r in readings)
    rows = [
        ["the model localises the object: p(true class) drops when the object is covered",
         f"p unoccluded→lowest: {drops}; worst tenth on the object more than chance on {k_loc} of {len(loc)} images",
         ("holds" if k_loc == len(loc) else "holds on some" if k_loc else "does not hold") if loc else "no object regions"],
        ["covering what the strongest map's projection shows silences that map (b)",
         "energy of (c) under the square where (b) is lowest, over that square's share of the image: "
         + ", ".join(f"{r.projection_ratio:.2f}" for r in proj),
         ("holds" if k_proj == len(proj) else "holds on some" if k_proj else "does not hold") if proj else "no projections"],
        ["the classifier's sensitivity is not always where the strongest feature is",
         f"(b) and (d) lowest at different places on {k_apart} of {n} images",
         "holds" if k_apart else "not seen here"],
    ]
    return Table(["Zeiler & Fergus (§4.2, Fig. 7)", "this run", "verdict"], rows,
                 "The paper's readings beside these sweeps")


# --------------------------------------------------------------------------- figures


def _extent(maps: OcclusionMaps) -> tuple[float, float, float, float]:
    cy, cx = maps.centres
    sy = float(cy[1] - cy[0]) if len(cy) > 1 else float(maps.size)
    sx = float(cx[1] - cx[0]) if len(cx) > 1 else float(maps.size)
    return (float(cx[0]) - sx / 2, float(cx[-1]) + sx / 2, float(cy[-1]) + sy / 2, float(cy[0]) - sy / 2)


def _short(name: str, n: int = 18) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


def _mosaic(images: list[np.ndarray], cols: int) -> np.ndarray:
    if not images:
        return np.full((8, 8), 0.5)
    r = max(max(im.shape[0], im.shape[1]) for im in images)
    colour = images[0].ndim == 3
    rows = -(-len(images) // cols)
    gap = max(1, r // 12)
    shape = (rows * (r + gap) - gap, cols * (r + gap) - gap) + ((3,) if colour else ())
    out = np.ones(shape)
    for i, im in enumerate(images):
        y, x = (i // cols) * (r + gap), (i % cols) * (r + gap)
        out[y : y + im.shape[0], x : x + im.shape[1]] = im
    return out


def _shown(a: np.ndarray) -> np.ndarray:
    """An image array matplotlib can draw: channels other than 1 or 3 are averaged to grey."""
    return a.mean(-1) if a.ndim == 3 and a.shape[-1] not in (3, 4) else a


def plot_occlusion(
    maps: OcclusionMaps | Sequence[OcclusionMaps],
    *,
    others: Any = None,
    titles: Sequence[str] | None = None,
    max_labels: int = 6,
) -> Figure:
    """Zeiler & Fergus Fig. 7: one row per image, columns (a)-(e).

    (a) the image with the grey square where it lowers the class most; (b) the
    strongest map's total activity; (c) its projection on this image (the
    black square is the receptive field of the projected unit); (c') with
    ``others``, its strongest projections on other images; (d) p(class);
    (e) the most probable label, coloured by label (legend below). In (b) and
    (d) dark is low. Each map cell sits at the centre of its occluder position.

    Args:
        maps: one sweep or several.
        others: a :class:`~vizlib.TopActivations` of the same layer with
            projections collected for the maps shown (``top.collect``).
        titles: one title per row (default: the class name).
        max_labels: labels named in the legend of (e); the rest are "other".

    Returns:
        The Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch, Rectangle

    from .deconvnet import normalize_projection

    items = [maps] if isinstance(maps, OcclusionMaps) else list(maps)
    with_others = others is not None
    ncol = 6 if with_others else 5
    fig, axes = plt.subplots(len(items), ncol, figsize=(2.9 * ncol, 3.3 * len(items)), squeeze=False)
    for row, (m, ax) in enumerate(zip(items, axes)):
        H, W = m.image.shape[-2:]
        img = _shown(to_display(m.image, m.mean, m.std))
        grey = "gray" if img.ndim == 2 else None
        ly, lx = m.lowest("probability")
        ax[0].imshow(_shown(to_display(m.occluded(ly, lx), m.mean, m.std)), cmap=grey, vmin=0, vmax=1)
        ax[0].add_patch(Rectangle((lx - 0.5, ly - 0.5), m.size, m.size, fill=False, ec="red", lw=1))
        ax[0].set_title((titles[row] if titles else f"{_short(m.class_name(m.target), 22)}") + "\n(a) occluded", fontsize=8)
        ext = _extent(m)
        im_b = ax[1].imshow(m.activity.numpy(), extent=ext, cmap="viridis")
        ax[1].set_title(f"(b) total activity, {m.layer} map {m.channel}", fontsize=8)
        fig.colorbar(im_b, ax=ax[1], fraction=0.046, pad=0.03).ax.tick_params(labelsize=6)
        if m.projection is not None:
            full = m.projection.full(0)
            ax[2].imshow(_shown(normalize_projection(full)), cmap=grey)
            t, l, b, r = m.projection.boxes[0].tolist()
            ax[2].add_patch(Rectangle((l - 0.5, t - 0.5), r - l, b - t, fill=False, ec="black", lw=1.5))
        else:
            ax[2].imshow(np.full((H, W), 0.5), cmap="gray", vmin=0, vmax=1)
        ax[2].set_title(f"(c) {m.layer} map {m.channel} projected", fontsize=8)
        col = 3
        if with_others:
            try:
                projs = others.projection_images(m.channel, clip=False)
                empty = others.empty[m.channel].tolist()
                projs = [np.full_like(_shown(p), 0.5) if e else _shown(p) for p, e in zip(projs, empty)]
            except ValueError:
                projs = []
            k = len(projs)
            ax[3].imshow(_mosaic(projs, int(math.ceil(math.sqrt(k))) if k else 1), cmap=grey, vmin=0, vmax=1)
            ax[3].set_title(f"(c) map {m.channel}: top {k} on other images", fontsize=8)
            col = 4
        im_d = ax[col].imshow(m.probability.numpy(), extent=ext, cmap="viridis")
        ax[col].set_title(f"(d) p({_short(m.class_name(m.target))})", fontsize=8)
        fig.colorbar(im_d, ax=ax[col], fraction=0.046, pad=0.03).ax.tick_params(labelsize=6)
        labels, counts = torch.unique(m.label, return_counts=True)
        order = labels[torch.argsort(counts, descending=True, stable=True)].tolist()
        named = order[:max_labels]
        code = torch.full_like(m.label, len(named))
        for i, lab in enumerate(named):
            code[m.label == lab] = i
        palette = plt.get_cmap("tab10").colors[: len(named)] + ((0.6, 0.6, 0.6),)
        ax[col + 1].imshow(code.numpy(), extent=ext, cmap=ListedColormap(palette), vmin=-0.5,
                           vmax=len(palette) - 0.5, interpolation="nearest")
        ax[col + 1].set_title("(e) most probable label", fontsize=8)
        handles = [Patch(color=palette[i], label=_short(m.class_name(lab))) for i, lab in enumerate(named)]
        if len(order) > len(named):
            handles.append(Patch(color=palette[-1], label=f"{len(order) - len(named)} other"))
        ax[col + 1].legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02), fontsize=6,
                           ncol=2, frameon=False)
        for a in ax:
            a.set_xticks([])
            a.set_yticks([])
        for a in (ax[0], ax[1], ax[2], ax[col], ax[col + 1]):
            a.set_xlim(-0.5, W - 0.5)
            a.set_ylim(H - 0.5, -0.5)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- explorer


def occlusion_explorer(
    net: Any,
    images: dict[str, tuple[torch.Tensor, int]],
    *,
    sizes: tuple[int, int] | None = None,
    size: int | None = None,
    stride: int | None = None,
    others: Any = None,
    maps: Sequence[OcclusionMaps] | None = None,
    progress: bool = False,
) -> Any:
    """Pick an image, the occluder's size and stride, and a class; see Fig. 7 for it.

    Calls :meth:`Occlusion.sweep` and :func:`plot_occlusion`, the functions the
    chapter calls. A new class re-reads the kept probabilities (no new sweep);
    sweeps are cached per (image, size, stride).

    Args:
        net: a :class:`~vizlib.Net` or module.
        images: name -> (prepared image ``(C, H, W)``, true class).
        sizes: range of the size slider (default: 1/28 to 1/2 of the image side).
        size, stride: starting values.
        others: a :class:`~vizlib.TopActivations` for (c') (maps not collected there show empty).
        maps: sweeps already made of these images, in the same order (they are reused, not redone).

    Returns:
        An ipywidgets widget.
    """
    import ipywidgets as W
    import matplotlib.pyplot as plt
    from IPython.display import display

    from ..chapters.widgets import _draw

    occ = Occlusion(net)
    first = next(iter(images.values()))[0]
    side = int(min(first.shape[-2:]))
    lo, hi = sizes or (max(1, side // 28), max(2, side // 2))
    size0 = size or _default_size(side)
    pick = W.Dropdown(options=list(images), description="image")
    size_w = W.IntSlider(value=size0, min=lo, max=hi, description="size", continuous_update=False)
    stride_w = W.IntSlider(value=stride or max(1, size0 // 4), min=1, max=hi, description="stride",
                           continuous_update=False)
    classes = occ.categories
    if classes is None:
        with torch.no_grad(), preserved(occ._net):
            classes = [str(i) for i in range(int(occ._net(first[None].to(occ.device)).shape[1]))]
    cls = W.Dropdown(options=[(f"{i}: {c}", i) for i, c in enumerate(classes)], value=images[pick.value][1],
                     description="class")
    out = W.Output()
    cache: dict[tuple[str, int, int], OcclusionMaps] = {}
    for name, m in zip(images, maps or []):
        if m.probabilities is not None:
            cache[(name, m.size, m.stride)] = m

    def content() -> None:
        key = (pick.value, size_w.value, stride_w.value)
        try:
            if key not in cache:
                img, true = images[pick.value]
                cache[key] = occ.sweep(img, size_w.value, stride_w.value, true, progress=progress,
                                       keep_probabilities=True)
        except ValueError as exc:
            print(exc)
            return
        m = cache[key]
        view = copy.copy(m)
        view.target = int(cls.value)
        view.probability = m.for_class(int(cls.value))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fig = plot_occlusion(view, others=others, titles=[pick.value])
        display(fig)
        plt.close(fig)

    def show(*_: object, first: bool = False) -> None:
        _draw(out, content, first)

    def new_image(*_: object) -> None:
        if cls.value != images[pick.value][1]:
            cls.value = images[pick.value][1]  # its observer redraws
        else:
            show()

    pick.observe(new_image, "value")
    for w in (size_w, stride_w, cls):
        w.observe(show, "value")
    show(first=True)  # captured into the output directly: a headless executor can stall on Output contexts
    return W.VBox([W.HBox([pick, cls]), W.HBox([size_w, stride_w]), out])
