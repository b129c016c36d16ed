"""The deconvnet of Zeiler & Fergus (2014, §2.1), with Yu et al.'s reverse dense layer.

To see what an activation responds to, all other activations of its layer
are set to zero and the feature maps are sent back down to the pixels, layer
by layer, with the operations of the forward pass reversed:

* **unpooling**: each value goes back to the location of the maximum its
  pooling window picked in the forward pass (the *switches*). Where
  overlapping windows (3x3, stride 2) picked the same location, their values
  **add up**: this is the exact adjoint of max pooling.
  (``F.max_unpool2d`` writes instead of adding, so it loses all but one.)
* **rectification**: a ReLU on the signal coming down.
* **filtering**: the layer's own filters, transposed (flipped), applied at the
  layer's stride and padding (``conv_transpose2d``), giving back exactly the
  layer's input size. Biases play no part.
* contrast / response normalisation passes the signal through unchanged;
  adaptive average pooling and flattening are undone by their adjoints;
  a dense layer by its transposed weight (Yu et al.'s reverse fully-connected
  layer).

This equals autograd's backward pass through the network with every ReLU's
backward replaced by a ReLU of the incoming signal; the tests check that.

Many projections of one image share one forward pass and go down together
as one batch. A single activation's projection is confined to its receptive
field: it is computed on crops that grow layer by layer, which is exact and
several times cheaper than full-size maps for all but the largest fields.

Example::

    import vizlib as vl
    net = vl.load("alexnet")
    dn = vl.Deconvnet(net)
    p = dn.project(image, "c5", channel=range(256))   # the strongest unit of every map
    plt.imshow(p.display(0))
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from ..core.progress import tqdm

from ..core.args import batch_size_arg, index_list, position_pairs, whole_number
from ..core.device import on_device
from ..core.hooks import meta_trace, trace, version
from ..core.images import _unwrap, check_image, load_image
from ..core.layers import resolve_layer

from ..core.errors import ArgumentError, UnsupportedLayer, NoPositiveActivation

__all__ = [
    "Deconvnet",
    "Recording",
    "Projection",
    "UnsupportedLayer",
    "NoPositiveActivation",
    "normalize_projection",
    "SUPPORTED_LAYERS",
]

#: The layer types the deconvnet can go back through.
SUPPORTED_LAYERS: tuple[str, ...] = (
    "Conv2d", "ReLU", "MaxPool2d", "LocalResponseNorm", "CrossMapLRN2d", "Dropout (any kind)",
    "Identity", "AdaptiveAvgPool2d", "Flatten (module or torch.flatten)", "Linear",
)

#: A crop is abandoned for full-size maps when its area reaches this share of the map.
CROP_LIMIT = 0.6

_MEMORY_BUDGET = 256 * 2**20  # bytes of intermediate results per projection batch




# --------------------------------------------------------------------------- recording


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return (int(v[0]), int(v[1])) if len(v) == 2 else (int(v[0]), int(v[0]))
    return int(v), int(v)


@dataclass
class _Step:
    """One module call of the forward pass, as the way down needs it."""

    path: str
    module: nn.Module | None
    kind: str  # conv, relu, maxpool, pass, adaptive_avg, reshape, linear, or "unsupported"
    in_shape: tuple[int, ...]  # per image, without the batch dimension
    out_shape: tuple[int, ...]
    switches: torch.Tensor | None = None  # (N, C, oh, ow) flat indices into the input plane
    broken: str | None = None  # the input is not the previous step's output: why
    cache: dict = field(default_factory=dict)  # switches rearranged for crops, by crop width


def _kind(module: nn.Module) -> str:
    if isinstance(module, nn.Conv2d):
        return "conv" if module.padding_mode == "zeros" else "unsupported"
    if isinstance(module, nn.ReLU):
        return "relu"
    if isinstance(module, nn.MaxPool2d):
        return "unsupported" if module.return_indices else "maxpool"
    if isinstance(module, (nn.LocalResponseNorm, nn.CrossMapLRN2d, nn.modules.dropout._DropoutNd, nn.Identity)):
        return "pass"
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return "adaptive_avg"
    if isinstance(module, nn.Flatten):
        return "reshape"
    if isinstance(module, nn.Linear):
        return "linear"
    return "unsupported"


def _switches(module: nn.Module, inp: torch.Tensor) -> torch.Tensor | None:
    """The pooling switches of a max-pooling call (flat indices into its input plane); ``None`` for other modules."""
    if isinstance(module, nn.MaxPool2d) and not module.return_indices:
        return F.max_pool2d(inp, module.kernel_size, module.stride, module.padding,
                            module.dilation, module.ceil_mode, return_indices=True)[1]
    return None


def _conv_padding(module: nn.Conv2d) -> tuple[int, int]:
    pad = module.padding
    if isinstance(pad, str):
        if pad == "valid":
            return 0, 0
        total = [d * (k - 1) for d, k in zip(_pair(module.dilation), _pair(module.kernel_size))]
        if any(t % 2 for t in total):
            raise UnsupportedLayer(
                f"{module} uses padding='same' with an even kernel, which pads asymmetrically; "
                "the deconvnet supports symmetric padding only"
            )
        return total[0] // 2, total[1] // 2
    return _pair(pad)


class Recording:
    """The forward pass of some images, kept for projecting down: switches and activations.

    Made by :meth:`Deconvnet.record`. Every projection from the recorded
    layers reuses this one forward pass.

    Attributes:
        images: number of images recorded.
        input_size: ``(H, W)`` of the images.
        layers: labels of the layers whose activations were kept.

    Example:
        >>> from vizlib.models import alexnet_fmnist
        >>> rec = Deconvnet(alexnet_fmnist(seed=0)).record(torch.randn(2, 1, 64, 64), ["c2", "c5"], batch=True)
        >>> rec.images, rec.layers, rec.activation("c5").shape
        (2, ['c2', 'c5'], torch.Size([2, 64, 4, 4]))
    """

    def __init__(
        self,
        deconvnet: "Deconvnet",
        steps: list[_Step],
        activations: dict[str, torch.Tensor],
        labels: dict[str, str],
        images: int,
        input_size: tuple[int, int],
    ) -> None:
        self._dn = deconvnet
        self._steps = steps
        self._acts = activations  # path -> (N, ...)
        self._labels = labels  # label -> path
        self.images = images
        self.input_size = input_size

    @property
    def layers(self) -> list[str]:
        return list(self._labels)

    def _path(self, layer: str | nn.Module) -> tuple[str, str]:
        label, path = resolve_layer(self._dn.model, layer)
        if path not in self._acts:
            raise KeyError(
                f"layer {label!r} was not recorded; record it too: deconvnet.record(image, [..., {label!r}])"
            )
        return label, path

    def activation(self, layer: str | nn.Module) -> torch.Tensor:
        """The recorded activations of a layer, ``(N, C, H, W)`` or ``(N, F)``."""
        return self._acts[self._path(layer)[1]]

    # ------------------------------------------------------------------ selection

    def project(
        self,
        layer: str | nn.Module,
        channel: int | Sequence[int] | range | torch.Tensor | str | None = None,
        position: tuple[int, int] | Sequence[tuple[int, int]] | None = None,
        *,
        top: int = 1,
        whole_map: bool = False,
        mask: torch.Tensor | None = None,
        image: int | None = None,
        crop: bool | None = None,
        batch_size: int | None = None,
        progress: bool | None = None,
    ) -> "Projection":
        """Project activations of a recorded layer down to the pixels.

        What is projected (the rest of the layer is zero in every case):

        * ``channel`` and ``position`` given: those activations, one
          projection each (Zeiler: "set all other activations to zero").
          ``position`` is one ``(y, x)`` for every channel, or one per
          channel, or many for one channel.
        * ``channel`` alone: the ``top`` strongest activations of each map
          (the strongest with ``top=1``), one projection each. For a dense
          layer ``channel`` names units.
        * ``channel`` with ``whole_map=True``: each whole feature map.
        * ``mask``: the activations times the mask (the layer's shape, or
          ``(B, *shape)`` for ``B`` projections).
        * nothing: the whole layer (Yu et al., Fig. 4).

        Args:
            layer: paper name (``"c5"``, ``"fc6"``), module path or module.
            channel: feature map(s) or dense unit(s): an int, a sequence, a
                range, or ``"all"``.
            position: ``(y, x)`` in the feature map, or a sequence of them.
            top: how many of the strongest activations per map.
            whole_map: project each selected map as a whole.
            mask: weights on the layer's activations.
            image: which recorded image (default: every recorded image).
            crop: compute single activations on their receptive field only
                (default: where it pays; the result is the same).
            batch_size: projections per batch (default: by memory).
            progress: show a progress bar (default: when there are many batches).

        Returns:
            A :class:`Projection`.

        Raises:
            ValueError: channel or position out of range, conflicting arguments.
            ArgumentError: a channel, position, ``top``, ``image`` or
                ``batch_size`` that is not made of whole numbers (``3.7``,
                ``True``, ``(1.6, 2.6)``), a position that is not ``(y, x)``,
                ``batch_size=0``.
            UnsupportedLayer: a layer below ``layer`` cannot be reversed.
        """
        _check_selection(channel, position, top, batch_size)
        label, path = self._path(layer)
        act = self._acts[path]
        shape = tuple(act.shape[1:])
        dense = len(shape) == 1
        imgs = list(range(self.images)) if image is None else [self._check_image_index(image)]
        start = self._start(path)

        if mask is not None:
            if channel is not None or position is not None or whole_map:
                raise ValueError("give either a mask or channel/position/whole_map, not both")
            m = torch.as_tensor(mask, device=act.device).to(act.dtype)
            if tuple(m.shape) == shape:
                m = m.unsqueeze(0)
            if m.ndim != len(shape) + 1 or tuple(m.shape[1:]) != shape:
                raise ValueError(
                    f"the mask must have layer {label}'s shape {shape} or (B, *{shape}); it has {tuple(m.shape)}"
                )
            signals = [(n, act[n : n + 1] * m) for n in imgs]
            return self._project_signals(label, start, signals, "mask", batch_size, progress)

        if channel is None:
            if position is not None or whole_map:
                raise ValueError("position and whole_map need a channel")
            signals = [(n, act[n : n + 1]) for n in imgs]
            return self._project_signals(label, start, signals, "layer", batch_size, progress)

        chans = self._channels(channel, shape[0], label)
        if whole_map:
            if position is not None:
                raise ValueError("whole_map projects whole maps: leave position out")
            eye = torch.zeros(len(chans), *shape, dtype=act.dtype, device=act.device)
            eye[torch.arange(len(chans)), chans] = 1
            signals = [(n, act[n : n + 1] * eye) for n in imgs]
            result = self._project_signals(label, start, signals, "map", batch_size, progress)
            result.channel = chans.repeat(len(imgs))
            return result

        if dense:
            if position is not None:
                raise ValueError(f"layer {label} is a dense layer: its units have no position; give channel only")
            if top != 1:
                raise ValueError(f"layer {label} is a dense layer: each unit is one activation, so top must be 1")
            img = torch.tensor(imgs, dtype=torch.long).repeat_interleave(len(chans))
            ch = chans.repeat(len(imgs))
            values = act[img.to(act.device), ch.to(act.device)]
            signal = torch.zeros(len(ch), *shape, dtype=act.dtype, device=act.device)
            signal[torch.arange(len(ch)), ch] = values
            result = self._project_batched(label, start, signal, img, "unit", batch_size, progress)
            result.channel = ch
            return result

        h, w = shape[1], shape[2]
        if position is not None:
            pos = _in_range(label, shape, None, position)[1]
            assert pos is not None
            if len(pos) == 1:
                pos = pos.expand(len(chans), 2)
            elif len(chans) == 1:
                chans = chans.expand(len(pos)).clone()
            if len(pos) != len(chans):
                raise ValueError(
                    f"give one position for all channels, one channel for all positions, or one position per "
                    f"channel; got {len(chans)} channels and {len(pos)} positions"
                )
            ch = chans.repeat(len(imgs))
            ys, xs = pos[:, 0].repeat(len(imgs)), pos[:, 1].repeat(len(imgs))
            img = torch.tensor(imgs, dtype=torch.long).repeat_interleave(len(chans))
        else:
            if not 1 <= top <= h * w:
                raise ValueError(f"top must be between 1 and {h * w} (the size of layer {label}'s maps), not {top}")
            sel = act[imgs][:, chans.to(act.device)].flatten(2)  # (n, c, h*w)
            if top == 1:
                flat = sel.argmax(-1, keepdim=True)  # first maximum on ties
            else:
                flat = sel.topk(top, dim=-1).indices
            flat = flat.cpu()
            ch = chans.view(1, -1, 1).expand_as(flat).reshape(-1)
            img = torch.tensor(imgs, dtype=torch.long).view(-1, 1, 1).expand_as(flat).reshape(-1)
            flat = flat.reshape(-1)
            ys, xs = flat // w, flat % w
        return self.project_units(label, ch, ys, xs, img, crop=crop, batch_size=batch_size, progress=progress)

    def project_units(
        self,
        layer: str | nn.Module,
        channel: torch.Tensor,
        y: torch.Tensor,
        x: torch.Tensor,
        image: torch.Tensor | None = None,
        *,
        crop: bool | None = None,
        batch_size: int | None = None,
        progress: bool | None = None,
    ) -> "Projection":
        """Project single activations ``(channel[b], y[b], x[b])`` of image ``image[b]``, batched.

        The lower-level form of :meth:`project`; the results come as windows
        the size of the layer's receptive field (see :class:`Projection`).
        """
        label, path = self._path(layer)
        act = self._acts[path]
        if act.ndim != 4:
            raise ValueError(f"layer {label} has no feature maps; project its units with project(layer, channel=...)")
        start = self._start(path)
        channel, y, x = (torch.as_tensor(t, dtype=torch.long).reshape(-1).cpu() for t in (channel, y, x))
        img = torch.zeros_like(channel) if image is None else torch.as_tensor(image, dtype=torch.long).reshape(-1).cpu()
        self._channels(channel, act.shape[1], label)
        dev = act.device
        values = act[img.to(dev), channel.to(dev), y.to(dev), x.to(dev)]
        geom = self._geometry(start, act.shape[2], act.shape[3])
        use_crop = self._crop_pays(start, geom) if crop is None else crop
        bs = batch_size_arg(batch_size) or self._auto_batch(start, geom, use_crop)
        chunks = range(0, len(channel), bs)
        bar = tqdm(chunks, desc=f"projecting {label}", unit="batch", disable=not _show(progress, len(chunks)))
        outs = []
        for i in bar:
            sl = slice(i, i + bs)
            outs.append(self._dn._down_units(
                self._steps, start, channel[sl], y[sl], x[sl], values[sl], img[sl], geom, use_crop,
            ))
        pixels = torch.cat([o[0] for o in outs]) if outs else torch.zeros(0)
        origin = torch.cat([o[1] for o in outs]) if outs else torch.zeros(0, 2, dtype=torch.long)
        empty = (values <= 0).cpu()
        if empty.any():
            pixels[empty.to(pixels.device)] = 0
        _warn_empty(empty, label, "activation")
        return Projection(
            layer=label, pixels=pixels, origin=origin, input_size=self.input_size, image_index=img,
            channel=channel, position=torch.stack([y, x], 1), value=values.detach().cpu(), empty=empty, kind="unit",
        )

    def project_signal(
        self,
        layer: str | nn.Module,
        signal: torch.Tensor,
        *,
        image: int | torch.Tensor = 0,
        batch_size: int | None = None,
        progress: bool | None = None,
    ) -> "Projection":
        """Send an arbitrary signal down from a layer (not multiplied by the activations).

        Args:
            layer: where the signal starts.
            signal: the layer's shape, or ``(B, *shape)`` for ``B`` projections.
            image: the recorded image whose switches to use (one for all, or one per projection).

        Returns:
            A :class:`Projection` with full-size results.

        Example:
            >>> rec = Deconvnet(model).record(image, ["fc8"])            # doctest: +SKIP
            >>> onehot = torch.zeros(1000); onehot[281] = 1              # doctest: +SKIP
            >>> rec.project_signal("fc8", onehot).full()                 # doctest: +SKIP
        """
        label, path = self._path(layer)
        act = self._acts[path]
        shape = tuple(act.shape[1:])
        s = torch.as_tensor(signal).to(act.device, act.dtype)
        if tuple(s.shape) == shape:
            s = s.unsqueeze(0)
        if tuple(s.shape[1:]) != shape:
            raise ValueError(f"the signal must have layer {label}'s shape {shape} or (B, *{shape}); it has {tuple(s.shape)}")
        img = torch.as_tensor(image, dtype=torch.long).reshape(-1).cpu()
        if img.numel() == 1:
            img = img.expand(len(s)).clone()
        for n in img.unique().tolist():
            self._check_image_index(n)
        return self._project_batched(label, self._start(path), s, img, "signal", batch_size, progress)

    # ------------------------------------------------------------------ internals

    def _check_image_index(self, n: int) -> int:
        n = whole_number(n, "image")
        if not 0 <= n < self.images:
            raise ValueError(f"image {n} was not recorded; this recording holds {self.images} image(s)")
        return n

    def _channels(self, channel: Any, n: int, label: str) -> torch.Tensor:
        if isinstance(channel, str):
            _check_selection(channel, None, 1, None)
            return torch.arange(n)
        shape = tuple(self._acts[self._labels.get(label, label)].shape[1:])
        return _in_range(label, shape, channel, None)[0]  # type: ignore[return-value]

    def _start(self, path: str) -> int:
        idx = [i for i, st in enumerate(self._steps) if st.path == path]
        if len(idx) > 1:
            raise ValueError(f"module {path} is called {len(idx)} times in the forward pass; the deconvnet needs a chain")
        i = idx[0]
        for st in self._steps[: i + 1]:
            if st.broken:
                raise UnsupportedLayer(st.broken)
            if st.kind == "unsupported":
                raise UnsupportedLayer(
                    f"the deconvnet cannot go back through layer {st.path} ({_describe(st.module)}) on the way "
                    f"down from {self._dn._label(path)}. It supports {', '.join(SUPPORTED_LAYERS)}. "
                    "Project from a layer below it, or use a network built from these layer types"
                )
        return i

    def _geometry(self, start: int, h: int, w: int) -> list[tuple[int, int, int, int]]:
        """Crop size (nh, nw) after each step going down, with its map size; for the auto decisions."""
        nh, nw = 1, 1
        sizes = []
        for st in reversed(self._steps[: start + 1]):
            if st.kind in ("conv", "maxpool"):
                kh, kw, sh, sw, _, _ = _spatial(st.module)
                nh, nw = (nh - 1) * sh + kh, (nw - 1) * sw + kw
            elif st.kind not in ("relu", "pass"):
                nh, nw = st.in_shape[-2] if len(st.in_shape) == 3 else 1, st.in_shape[-1] if len(st.in_shape) == 3 else 1
            hh, ww = (st.in_shape[1], st.in_shape[2]) if len(st.in_shape) == 3 else (1, 1)
            sizes.append((nh, nw, hh, ww))
        return sizes

    def _crop_pays(self, start: int, geom: list[tuple[int, int, int, int]]) -> bool:
        crop_cost = sum(nh * nw for nh, nw, _, _ in geom)
        full_cost = sum(hh * ww for _, _, hh, ww in geom)
        return crop_cost < 0.8 * full_cost

    def _auto_batch(self, start: int, geom: list[tuple[int, int, int, int]], use_crop: bool) -> int:
        itemsize = self._acts[self._steps[start].path].element_size()
        peak = 1
        for st, (nh, nw, hh, ww) in zip(reversed(self._steps[: start + 1]), geom):
            c = st.in_shape[0] if len(st.in_shape) == 3 else 1
            area = min(nh * nw, hh * ww) if use_crop else hh * ww
            peak = max(peak, c * area * (3 * itemsize + (16 if st.kind == "maxpool" else 0)))
        return int(max(1, min(256, _MEMORY_BUDGET // peak)))

    def _project_signals(
        self, label: str, start: int, signals: list[tuple[int, torch.Tensor]], kind: str,
        batch_size: int | None, progress: bool | None,
    ) -> "Projection":
        s = torch.cat([sig for _, sig in signals])
        img = torch.cat([torch.full((len(sig),), n, dtype=torch.long) for n, sig in signals])
        return self._project_batched(label, start, s, img, kind, batch_size, progress)

    def _project_batched(
        self, label: str, start: int, signal: torch.Tensor, img: torch.Tensor, kind: str,
        batch_size: int | None, progress: bool | None,
    ) -> "Projection":
        per = max(int(np.prod(st.in_shape)) for st in self._steps[: start + 1]) * signal.element_size() * 4
        bs = batch_size_arg(batch_size) or int(max(1, min(256, _MEMORY_BUDGET // per)))
        chunks = range(0, len(signal), bs)
        bar = tqdm(chunks, desc=f"projecting {label}", unit="batch", disable=not _show(progress, len(chunks)))
        outs = [self._dn._down_full(self._steps, start, signal[i : i + bs], img[i : i + bs]) for i in bar]
        pixels = torch.cat(outs) if outs else torch.zeros(0)
        flat = signal.flatten(1)
        empty = ~(flat > 0).any(1).cpu()
        if empty.any():
            pixels[empty.to(pixels.device)] = 0
        _warn_empty(empty, label, "signal")
        return Projection(
            layer=label, pixels=pixels, origin=torch.zeros(len(signal), 2, dtype=torch.long),
            input_size=self.input_size, image_index=img, channel=None, position=None,
            value=flat.amax(1).detach().cpu() if flat.shape[1] else torch.zeros(len(signal)), empty=empty, kind=kind,
        )


#: The keywords :meth:`Deconvnet.project` passes on to :meth:`Recording.project`.
_PROJECT_KEYWORDS = frozenset({"top", "whole_map", "mask", "image", "crop", "batch_size", "progress"})


def _check_selection(channel: Any, position: Any, top: Any, batch_size: Any) -> None:
    """The form of what to project (whole numbers, ``(y, x)`` pairs), checked before any forward pass;
    the ranges need the layer's shape and are checked against the recording."""
    if isinstance(channel, str):
        if channel != "all":
            raise ValueError(f"channel must be an int, a sequence of ints or 'all', not {channel!r}")
    elif channel is not None:
        index_list(channel, "channel")
    if position is not None:
        position_pairs(position)
    whole_number(top, "top", at_least=1)
    batch_size_arg(batch_size)


def _in_range(label: str, shape: tuple[int, ...], channel: Any,
              position: Any) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Channels and positions checked against a layer's per-image shape, ``(C, H, W)`` or ``(F,)``.

    Returns:
        The channels and the ``(P, 2)`` positions as long tensors (``None`` where not given).

    Raises:
        ValueError: a channel or a position outside the layer (the message gives the valid range).
    """
    chans = pos = None
    n = shape[0]
    if channel is not None and not isinstance(channel, str):
        chans = index_list(channel, "channel")
        bad = (chans < 0) | (chans >= n)
        if bad.any():
            what = "units" if len(shape) == 1 else "feature maps"
            raise ValueError(f"channel {int(chans[bad][0])} is out of range: layer {label} has {n} {what} "
                             f"(0..{n - 1})")
    if position is not None and len(shape) == 3:
        pos = position_pairs(position)
        h, w = shape[1], shape[2]
        bad = (pos[:, 0] < 0) | (pos[:, 0] >= h) | (pos[:, 1] < 0) | (pos[:, 1] >= w)
        if bad.any():
            y, x = pos[bad.nonzero()[0, 0]].tolist()
            raise ValueError(
                f"position (y={y}, x={x}) is outside layer {label}'s {h}×{w} feature maps; "
                f"use 0 <= y < {h} and 0 <= x < {w}"
            )
    return chans, pos


def _show(progress: bool | None, chunks: int) -> bool:
    return chunks > 4 if progress is None else bool(progress)


def _warn_empty(empty: torch.Tensor, label: str, what: str) -> None:
    n = int(empty.sum())
    if n:
        warnings.warn(
            f"{n} of {len(empty)} projection(s) from layer {label} have no positive {what} to project; "
            "they are returned as zeros and flagged in Projection.empty. Pick another channel or image, "
            "or check that the image was prepared with the network's transform",
            NoPositiveActivation,
            stacklevel=3,
        )


def _describe(module: nn.Module | None) -> str:
    return type(module).__name__ if module is not None else "a tensor operation outside any module"


def _spatial(module: nn.Module | None) -> tuple[int, int, int, int, int, int]:
    """Effective kernel (with dilation), stride and padding of a conv or max pool, per axis."""
    if isinstance(module, nn.Conv2d):
        (kh, kw), (dh, dw) = _pair(module.kernel_size), _pair(module.dilation)
        (sh, sw), (ph, pw) = _pair(module.stride), _conv_padding(module)
    else:
        assert isinstance(module, nn.MaxPool2d)
        (kh, kw), (dh, dw) = _pair(module.kernel_size), _pair(module.dilation)
        (sh, sw) = _pair(module.stride if module.stride is not None else module.kernel_size)
        (ph, pw) = _pair(module.padding)
    return dh * (kh - 1) + 1, dw * (kw - 1) + 1, sh, sw, ph, pw


# --------------------------------------------------------------------------- the result


@dataclass
class Projection:
    """Deconvnet projections: one per selected activation (or mask, or layer).

    Single activations come as windows the size of their layer's receptive
    field (the projection is zero outside it): ``pixels[b]`` covers the input
    rows ``origin[b, 0] : origin[b, 0] + h`` and columns likewise, where the
    window may stick out of the image (those parts are zero). Whole layers,
    maps and masks come full size (``origin`` zero).

    Attributes:
        layer: the layer projected from.
        pixels: ``(B, C, h, w)`` projections in the network's input space.
        origin: ``(B, 2)`` top-left input coordinates of each window.
        input_size: ``(H, W)`` of the input image.
        image_index: ``(B,)`` which recorded image each projection belongs to.
        channel: ``(B,)`` feature map or dense unit (``None`` for layers and masks).
        position: ``(B, 2)`` ``(y, x)`` in the feature map, for single activations.
        value: ``(B,)`` the activation projected (the largest value of the signal for masks and layers).
        empty: ``(B,)`` True where there was no positive activation to project (the result is zero).
        kind: ``"unit"``, ``"map"``, ``"layer"``, ``"mask"`` or ``"signal"``.

    Example:
        >>> from vizlib.models import alexnet_fmnist
        >>> maps = Deconvnet(alexnet_fmnist(seed=0)).project(torch.randn(1, 64, 64), "c2", [0, 1], whole_map=True)
        >>> maps.kind, maps.pixels.shape, maps.origin.tolist()
        ('map', torch.Size([2, 1, 64, 64]), [[0, 0], [0, 0]])
    """

    layer: str
    pixels: torch.Tensor
    origin: torch.Tensor
    input_size: tuple[int, int]
    image_index: torch.Tensor
    channel: torch.Tensor | None
    position: torch.Tensor | None
    value: torch.Tensor
    empty: torch.Tensor
    kind: str

    def __len__(self) -> int:
        return len(self.pixels)

    def __repr__(self) -> str:
        shape = "×".join(str(s) for s in self.pixels.shape[1:])
        return f"Projection({self.layer!r}, {len(self)} × {shape}, kind={self.kind!r}, {int(self.empty.sum())} empty)"

    @property
    def boxes(self) -> torch.Tensor:
        """``(B, 4)``: each window clipped to the image, as ``(top, left, bottom, right)`` (bottom/right exclusive)."""
        h, w = self.pixels.shape[-2:]
        H, W = self.input_size
        top, left = self.origin[:, 0], self.origin[:, 1]
        return torch.stack([top.clamp(0, H), left.clamp(0, W), (top + h).clamp(0, H), (left + w).clamp(0, W)], 1)

    def crop(self, i: int) -> torch.Tensor:
        """Projection ``i`` clipped to the image: ``(C, bottom - top, right - left)``."""
        top, left, bottom, right = self.boxes[i].tolist()
        oy, ox = self.origin[i].tolist()
        return self.pixels[i, :, top - oy : bottom - oy, left - ox : right - ox]

    def full(self, i: int | None = None) -> torch.Tensor:
        """Projections pasted into full-size images: ``(B, C, H, W)`` (or ``(C, H, W)`` for one)."""
        idx = range(len(self)) if i is None else [i]
        H, W = self.input_size
        out = self.pixels.new_zeros(len(idx), self.pixels.shape[1], H, W)
        for j, b in enumerate(idx):
            top, left, bottom, right = self.boxes[b].tolist()
            out[j, :, top:bottom, left:right] = self.crop(b)
        return out[0] if i is not None else out

    def display(self, i: int | None = None, *, clip: bool = True) -> np.ndarray:
        """Projections scaled for ``plt.imshow`` (see :func:`normalize_projection`).

        Args:
            i: one projection, or all of them (``None``).
            clip: show only the part of the window inside the image.

        Returns:
            ``(h, w, 3)`` / ``(h, w)`` for one projection, a stacked array or a
            list (windows of different sizes after clipping) for all.
        """
        if i is not None:
            return normalize_projection(self.crop(i) if clip else self.pixels[i])
        if not clip or self.kind != "unit":
            return normalize_projection(self.pixels)
        return [normalize_projection(self.crop(b)) for b in range(len(self))]  # type: ignore[return-value]


def normalize_projection(x: torch.Tensor) -> np.ndarray:
    """Scale projections for display: zero is mid-grey, the largest magnitude reaches 0 or 1.

    Each projection is scaled on its own (``x / (2·max|x|) + 0.5``), as in
    Zeiler & Fergus's figures, where the background of a projection is grey.

    Args:
        x: ``(C, H, W)`` or ``(B, C, H, W)``.

    Returns:
        Floats in [0, 1], channels last; one-channel images lose the channel axis.

    Example:
        >>> normalize_projection(torch.tensor([[[-1.0, 0.0, 2.0]]])).round(2).tolist()
        [[0.25, 0.5, 1.0]]
    """
    t = x.detach().to("cpu", torch.float64)
    dims = tuple(range(t.ndim - 3, t.ndim))
    peak = t.abs().amax(dim=dims, keepdim=True).clamp_min(1e-30)
    t = (t / (2 * peak) + 0.5).clamp(0, 1).movedim(-3, -1).numpy()
    return t[..., 0] if t.shape[-1] == 1 else t


# --------------------------------------------------------------------------- the deconvnet


class Deconvnet:
    """Zeiler & Fergus's deconvnet attached to every layer of a network.

    Args:
        model: a CNN built from the layers in :data:`SUPPORTED_LAYERS`,
            called in a chain (AlexNet, ZFNet, VGG-16 and alike), or a
            :class:`~vizlib.Net` (then images can be files: its transform
            prepares them).
        device: where to compute (default: where the model lives; if another
            device is named, a copy of the model is moved there: the model
            itself is never moved).

    Raises:
        ArgumentError: ``model`` is neither a module nor a Net.
        DeviceError: ``device`` is not a device name or not available here, or
            the model lives on the meta device (before any copy).

    Example:
        >>> from vizlib.models import alexnet
        >>> dn = Deconvnet(alexnet(seed=0))
        >>> p = dn.project(torch.randn(3, 224, 224), "c5", channel=[0, 1, 2])
        >>> p.pixels.shape                    # windows the size of c5's receptive field
        torch.Size([3, 3, 163, 163])
    """

    def __init__(self, model: Any, *, device: torch.device | str | None = None) -> None:
        module, transform = _unwrap(model, need="Deconvnet")
        self.model: nn.Module = module
        self.transform = transform
        self._net, self.device = on_device(module, device)

    def _label(self, path: str) -> str:
        for name, p in getattr(self.model, "vizlib_layers", {}).items():
            if p == path:
                return name
        return path

    # ------------------------------------------------------------------ forward

    def record(self, image: Any, layers: str | nn.Module | Iterable[str | nn.Module], *, batch: bool = False) -> Recording:
        """Run the forward pass once and keep what projecting down needs.

        Args:
            image: a prepared tensor ``(C, H, W)`` / ``(N, C, H, W)`` (with
                ``batch=True``), or a file / PIL image / array when the
                deconvnet was made from a :class:`~vizlib.Net`.
            layers: the layer(s) to project from later.
            batch: accept several images.

        Returns:
            A :class:`Recording` (its ``project`` does the work).

        Raises:
            ImageError, InputTooSmall: the image does not fit the network.
        """
        x = self._prepare(image, batch)
        p = next(self._net.parameters(), None)
        x = x.to(self.device, p.dtype if p is not None else x.dtype)
        if isinstance(layers, (str, nn.Module)):
            layers = [layers]
        labels = {}
        for layer in layers:
            label, path = resolve_layer(self.model, layer)
            if list(self.model.get_submodule(path).children()):
                leaves = [n for n, m in self.model.get_submodule(path).named_modules() if n and not list(m.children())]
                raise ValueError(
                    f"{label!r} is a container of {len(leaves)} layers, not one layer; name one of them "
                    f"(e.g. {path}.{leaves[-1]})" if leaves else f"{label!r} has no layers"
                )
            labels[label] = path
        steps, acts = self._forward(x, set(labels.values()))
        return Recording(self, steps, acts, labels, x.shape[0], (x.shape[2], x.shape[3]))

    def _prepare(self, image: Any, batch: bool = False) -> torch.Tensor:
        if not isinstance(image, torch.Tensor):
            image = load_image(image, self.model, transform=self.transform)
        return check_image(image, self.model, batch=batch)

    def _check_before(self, x: torch.Tensor, layer: str | nn.Module, channel: Any, position: Any) -> None:
        """Channel and position against the layer's shape, from a pass on the meta device (no forward
        pass, no memory), so that a number out of range is refused before any work."""
        label, path = resolve_layer(self.model, layer)
        try:
            calls = meta_trace(self.model, tuple(x.shape[1:])).calls
        except Exception:  # a model the meta device cannot run: the recording checks the same after its pass
            return
        shapes = [tuple(int(v) for v in c.out_shape[1:]) for c in calls if c.path == path and c.out_shape]
        if len(shapes) == 1:
            _in_range(label, shapes[0], channel, position)

    def _forward(self, x: torch.Tensor, wanted: set[str]) -> tuple[list[_Step], dict[str, torch.Tensor]]:
        """One traced forward pass up to the last wanted layer: the chain of steps and the kept activations."""
        recorded = trace(self._net, x, keep=wanted, stop=True, on_call=_switches)
        acts = recorded.outputs
        steps: list[_Step] = []
        prev_shape, prev_ptr, prev_version, prev_path = x.shape, x.data_ptr(), version(x), "the input image"
        for call in recorded.calls:
            path, module, in_shape = call.path, call.module, call.in_shape
            out_shape, out_ptr, sw = call.out_shape, call.out_ptr, call.extra
            broken = None
            why = call.takes(prev_ptr, prev_version)
            if why == "other":
                broken = (
                    f"the deconvnet follows a chain of layers, and layer {path} ({_describe(module)}) does not take "
                    f"the output of {prev_path} as its input (a branch, a skip connection or a tensor operation "
                    "outside any module lies between them); project from a layer below it"
                )
            elif why == "in place":
                broken = (
                    f"the deconvnet follows a chain of layers, and the output of {prev_path} was changed in place "
                    f"before layer {path} ({_describe(module)}) took it (an in-place tensor operation outside any "
                    "module, such as F.relu(x, inplace=True) or a residual out += x, lies between them), so the "
                    "way down cannot reverse it; project from a layer below it, or write the operation as a "
                    "module (nn.ReLU) or out of place (out = out + x is refused the same way: it is a branch)"
                )
            elif tuple(in_shape) != tuple(prev_shape):
                if in_shape.numel() == prev_shape.numel() and in_shape[0] == prev_shape[0]:
                    steps.append(_Step(f"(flatten before {path})", None, "reshape", tuple(prev_shape[1:]),
                                       tuple(in_shape[1:])))
                else:
                    broken = f"layer {path} gets an input of shape {tuple(in_shape)} after an output of {tuple(prev_shape)}"
            kind = _kind(module)
            if isinstance(module, nn.Conv2d) and kind == "conv":
                try:
                    _conv_padding(module)
                except UnsupportedLayer:
                    kind = "unsupported"
            steps.append(_Step(path, module, kind, tuple(in_shape[1:]), tuple(out_shape[1:]), sw, broken))
            prev_shape, prev_ptr, prev_version, prev_path = out_shape, out_ptr, call.out_version, path
        return steps, acts

    # ------------------------------------------------------------------ the verbs

    def project(self, image: Any, layer: str | nn.Module, channel: Any = None, position: Any = None,
                **how: Any) -> Projection:
        """Project activations of one image from a layer down to the pixels.

        One forward pass, then all the selected projections in batches. See
        :meth:`Recording.project` for what each argument selects; in short:

        * ``project(img, "c5", 12, (6, 7))``: the activation at (6, 7) of map 12.
        * ``project(img, "c5", 12)``: the strongest activation of map 12.
        * ``project(img, "c5", "all", top=9)``: the 9 strongest of every map.
        * ``project(img, "c5", [3, 4], whole_map=True)``: maps 3 and 4 whole.
        * ``project(img, "c5", mask=m)``: the activations times ``m``.
        * ``project(img, "c5")``: the whole layer (Yu et al., Fig. 4).
        * ``project(img, "fc6", 7)``: dense unit 7 (Yu's reverse dense layer).

        Args:
            image: ``(C, H, W)`` or ``(1, C, H, W)`` prepared tensor (or a
                file/PIL image/array with a deconvnet made from a Net).
            layer: paper name, module path or module.
            channel, position: what to project, as for :meth:`Recording.project`.
            **how: the keywords of :meth:`Recording.project`: ``top``,
                ``whole_map``, ``mask``, ``crop``, ``batch_size``, ``progress``.

        Returns:
            A :class:`Projection`.

        Raises:
            ArgumentError: a keyword :meth:`Recording.project` does not take (a ``TypeError``).
            ValueError: channel or position out of range.
            ArgumentError: channel or position not whole numbers or not
                ``(y, x)`` pairs, ``top`` or ``batch_size`` below 1 (checked
                before the forward pass).
            LayerError, ArgumentError: an unknown layer, or one given as an int or ``None``.
            DeviceError: a model on the meta device (raised by the constructor).
            ImageError, InputTooSmall: the image does not fit the network.
            UnsupportedLayer: the way down crosses a layer the deconvnet cannot reverse.

        Example:
            >>> from vizlib.models import alexnet
            >>> p = Deconvnet(alexnet(seed=0)).project(torch.randn(3, 224, 224), "c1", 5)
            >>> tuple(p.pixels.shape), p.kind
            ((1, 3, 11, 11), 'unit')
        """
        unknown = sorted(set(how) - _PROJECT_KEYWORDS)
        if unknown:
            raise ArgumentError(f"project() got an unexpected keyword argument {unknown[0]!r}; it takes "
                                f"{', '.join(sorted(_PROJECT_KEYWORDS))} (see Recording.project)")
        _check_selection(channel, position, how.get("top", 1), how.get("batch_size"))
        x = self._prepare(image)
        self._check_before(x, layer, channel, position)
        rec = self.record(x, [layer])
        return rec.project(layer, channel, position, **how)

    def project_layers(self, image: Any, layers: Iterable[str | nn.Module]) -> dict[str, Projection]:
        """Whole-layer projections from several layers of one image, from one forward pass (Yu Fig. 4).

        Returns:
            layer label -> :class:`Projection` of one full-size image.

        Example:
            >>> from vizlib.models import alexnet
            >>> out = Deconvnet(alexnet(seed=0)).project_layers(torch.randn(3, 224, 224), ["c1", "c5"])
            >>> out["c5"].full().shape
            torch.Size([1, 3, 224, 224])
        """
        layers = list(layers)
        rec = self.record(image, layers)
        out: dict[str, Projection] = {}
        for layer in layers:
            p = rec.project(layer)
            out[p.layer] = p
        return out

    # ------------------------------------------------------------------ the way down

    @torch.no_grad()
    def _down_full(self, steps: list[_Step], start: int, g: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        for st in reversed(steps[: start + 1]):
            g = self._back(st, g, img)
        return g

    def _back(self, st: _Step, g: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        """One step down at full size."""
        b = g.shape[0]
        if st.kind in ("relu",):
            return F.relu(g)
        if st.kind == "pass":
            return g
        if st.kind == "conv":
            m = st.module
            assert isinstance(m, nn.Conv2d)
            kh, kw, sh, sw, ph, pw = _spatial(m)
            H, W = st.in_shape[-2:]
            full = _conv_t(g, m)  # covers input rows -ph .. ; keep rows 0 .. H-1
            return F.pad(full, (-pw, pw + W - full.shape[-1], -ph, ph + H - full.shape[-2]))
        if st.kind == "maxpool":
            sw_ = st.switches
            assert sw_ is not None
            idx = sw_.expand(b, *sw_.shape[1:]) if sw_.shape[0] == 1 else sw_.index_select(0, img.to(sw_.device))
            c, H, W = st.in_shape
            out = g.new_zeros(b, c, H * W)
            out.scatter_add_(2, idx.flatten(2), g.flatten(2))
            return out.view(b, c, H, W)
        if st.kind == "adaptive_avg":
            c, H, W = st.in_shape
            _, oh, ow = st.out_shape
            ph_ = _pool_matrix(H, oh, g)
            pw_ = _pool_matrix(W, ow, g)
            return torch.einsum("bcij,ih,jw->bchw", g, ph_, pw_)
        if st.kind == "reshape":
            return g.reshape(b, *st.in_shape)
        if st.kind == "linear":
            assert isinstance(st.module, nn.Linear)
            return g @ st.module.weight
        raise UnsupportedLayer(f"cannot go back through {st.path} ({_describe(st.module)})")

    @torch.no_grad()
    def _down_units(
        self, steps: list[_Step], start: int, ch: torch.Tensor, y: torch.Tensor, x: torch.Tensor,
        values: torch.Tensor, img: torch.Tensor, geom: list[tuple[int, int, int, int]], use_crop: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Single activations down to the pixels on crops that grow with the receptive field.

        Returns ``(windows, origin)``: ``(B, C, r, r)`` and ``(B, 2)``.
        """
        dev = values.device
        b = len(ch)
        c0 = steps[start].out_shape[0]
        g = values.new_zeros(b, c0, 1, 1)
        g[torch.arange(b, device=dev), ch.to(dev), 0, 0] = values
        oy, ox = y.to(dev).clone(), x.to(dev).clone()
        nh, nw = 1, 1
        H, W = steps[start].out_shape[1], steps[start].out_shape[2]
        full = False
        if not use_crop:
            g, full = _paste(g, oy, ox, H, W), True
        for st, (nh2, nw2, H2, W2) in zip(reversed(steps[: start + 1]), geom):
            if not full and (st.kind not in ("conv", "maxpool", "relu", "pass") or nh2 * nw2 >= CROP_LIMIT * H2 * W2):
                g, full = _paste(g, oy, ox, H, W), True
            py, px = oy, ox  # origin of the crop at this step's output
            if st.kind in ("conv", "maxpool"):
                kh, kw, sh, sw, ph, pw = _spatial(st.module)
                oy, ox = py * sh - ph, px * sw - pw
            if full:
                g = self._back(st, g, img)
            elif st.kind == "relu":
                g = g.clamp_min_(0)
            elif st.kind == "conv":
                m = st.module
                assert isinstance(m, nn.Conv2d)
                g = _conv_t(g, m)
                if int(oy.min()) < 0 or int(oy.max()) + nh2 > H2 or int(ox.min()) < 0 or int(ox.max()) + nw2 > W2:
                    g = g * (_inside(oy, nh2, H2, g.dtype).view(b, 1, -1, 1)
                             * _inside(ox, nw2, W2, g.dtype).view(b, 1, 1, -1))
            elif st.kind == "maxpool":
                g = _unpool_crop(g, st, img, py, px, oy, ox, nh2, nw2)
            nh, nw, H, W = nh2, nw2, H2, W2
        if full:
            g = _windows(g, oy, ox, nh, nw, torch.arange(b, device=dev))
        return g, torch.stack([oy, ox], 1).cpu()


def _conv_t(g: torch.Tensor, m: nn.Conv2d) -> torch.Tensor:
    """The transposed convolution of a layer without padding: ``(n - 1)·s + k`` rows from ``n``.

    The same sums as ``conv_transpose2d``, arranged for speed on the CPU: a
    1×1 input is one matrix product; a strided layer with few input channels
    (the first layer) is split into its ``s²`` sub-pixel phases, one ordinary
    convolution with ``C·s²`` output channels followed by a pixel shuffle.
    """
    w = m.weight
    b, co, nh, nw = g.shape
    _, ci, kh, kw = w.shape
    (sh, sw), dil = _pair(m.stride), _pair(m.dilation)
    if m.groups == 1 and dil == (1, 1):
        if nh == 1 and nw == 1:
            return (g.reshape(b, co) @ w.reshape(co, -1)).view(b, ci, kh, kw)
        if sh == sw and sh > 1 and kh == kw and ci * sh * sh <= 64:
            s = sh
            taps = -(-kh // s)
            k_pad = taps * s
            v = F.pad(w, (0, k_pad - kw, 0, k_pad - kh)).view(co, ci, taps, s, taps, s).flip(2, 4)
            v = v.permute(1, 3, 5, 0, 2, 4).reshape(ci * s * s, co, taps, taps)
            y = F.pixel_shuffle(F.conv2d(g, v, None, 1, taps - 1), s)
            return y[..., : (nh - 1) * s + kh, : (nw - 1) * s + kw]
    return F.conv_transpose2d(g, w, None, (sh, sw), 0, 0, m.groups, dil)


def _pool_matrix(n_in: int, n_out: int, like: torch.Tensor) -> torch.Tensor:
    """``(n_out, n_in)``: adaptive average pooling along one axis as a matrix."""
    m = like.new_zeros(n_out, n_in)
    for i in range(n_out):
        s, e = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
        m[i, s:e] = 1.0 / (e - s)
    return m


def _inside(o: torch.Tensor, n: int, size: int, dtype: torch.dtype) -> torch.Tensor:
    """``(B, n)`` mask: which of the rows ``o[b] .. o[b]+n-1`` lie inside ``0 .. size-1``."""
    r = o.view(-1, 1) + torch.arange(n, device=o.device)
    return ((r >= 0) & (r < size)).to(dtype)


def _paste(g: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """Crops ``(B, C, nh, nw)`` at origins into full maps ``(B, C, H, W)`` (parts outside dropped)."""
    b, c, nh, nw = g.shape
    dev = g.device
    ry = oy.view(-1, 1) + torch.arange(nh, device=dev)
    rx = ox.view(-1, 1) + torch.arange(nw, device=dev)
    keep = ((ry >= 0) & (ry < H)).view(b, 1, nh, 1) & ((rx >= 0) & (rx < W)).view(b, 1, 1, nw)
    out = g.new_zeros(b, H, W, c)
    bi = torch.arange(b, device=dev).view(-1, 1, 1)
    out.index_put_((bi, ry.clamp(0, H - 1).view(b, nh, 1), rx.clamp(0, W - 1).view(b, 1, nw)),
                   (g * keep).permute(0, 2, 3, 1), accumulate=True)
    return out.permute(0, 3, 1, 2).contiguous()


def _windows(
    x: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor, nh: int, nw: int, img: torch.Tensor
) -> torch.Tensor:
    """Windows ``(B, C, nh, nw)`` of images ``x[img[b]]`` at origins ``(oy, ox)``, zero outside."""
    _, c, H, W = x.shape
    dev = x.device
    oy, ox, img = oy.to(dev), ox.to(dev), img.to(dev)
    lo_y, lo_x = max(0, -int(oy.min())), max(0, -int(ox.min()))
    hi_y, hi_x = max(0, int(oy.max()) + nh - H), max(0, int(ox.max()) + nw - W)
    xp = F.pad(x, (lo_x, hi_x, lo_y, hi_y)).permute(0, 2, 3, 1)
    ry = (oy + lo_y).view(-1, 1, 1) + torch.arange(nh, device=dev).view(1, -1, 1)
    rx = (ox + lo_x).view(-1, 1, 1) + torch.arange(nw, device=dev).view(1, 1, -1)
    return xp[img.view(-1, 1, 1), ry, rx].permute(0, 3, 1, 2).contiguous()


def _unpool_crop(
    g: torch.Tensor, st: _Step, img: torch.Tensor, py: torch.Tensor, px: torch.Tensor,
    iy: torch.Tensor, ix: torch.Tensor, nh2: int, nw2: int,
) -> torch.Tensor:
    """Unpool crops: values of the pooled crop at ``(py, px)`` go to their switches in the input crop at ``(iy, ix)``.

    Where several windows share a switch, the values add (scatter-add).
    """
    assert st.switches is not None
    b, c, nh, nw = g.shape
    n, _, oh, ow = st.switches.shape
    dev = g.device
    key = st.cache.get(nw2)
    if key is None:  # switch (row, col) as row·nw2 + col, channels last, once per recording
        w_in = st.in_shape[-1]
        key = ((st.switches // w_in) * nw2 + st.switches % w_in).permute(0, 2, 3, 1).contiguous()
        st.cache[nw2] = key
    ry = (py.view(-1, 1) + torch.arange(nh, device=dev)).clamp_(0, oh - 1)
    rx = (px.view(-1, 1) + torch.arange(nw, device=dev)).clamp_(0, ow - 1)
    ii = img.to(dev).view(-1, 1, 1) if n > 1 else torch.zeros(b, 1, 1, dtype=torch.long, device=dev)
    local = key[ii, ry.view(b, nh, 1), rx.view(b, 1, nw)].permute(0, 3, 1, 2)  # (B, C, nh, nw)
    local = (local - (iy * nw2 + ix).view(-1, 1, 1, 1)).clamp_(0, nh2 * nw2 - 1)
    # (clamping only moves entries outside the map, where g is zero)
    out = g.new_zeros(b, c, nh2 * nw2)
    out.scatter_add_(2, local.reshape(b, c, -1), g.reshape(b, c, -1))
    return out.view(b, c, nh2, nw2)
