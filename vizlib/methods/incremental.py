"""Exact incremental occlusion: recompute only what the grey square can have changed.

An occluder changes the input in one square; a convolution or a pooling layer
changes its output only where its windows overlap what changed in its input,
and a pointwise layer (ReLU, contrast normalisation across maps, batch norm in
eval mode) only where its input changed. So, after the idea of Krypton
(Nakandala, Kumar & Papakonstantinou, SIGMOD 2019), implemented here from the
layer geometry alone:

1. the unoccluded image goes through the network once, and the input of every
   layer that is computed incrementally is kept (padded with the layer's
   padding value, channels last);
2. for every occluder position and layer, the changed region is derived from
   the previous layer's (kernel, stride, padding, dilation), and the layer is
   computed on a *window* that holds it: the window's input is the cached map
   around it with the previous layer's window pasted in;
3. from the layer where that stops paying (the windows cover most of the map,
   and always before a dense layer, a flatten or an adaptive pooling that
   resizes) the whole map is materialised (cached map plus window) and the
   rest of the network runs as usual, batched over positions.

The per-map totals of the watched layer, when it lies in the windowed part,
are the unoccluded total (from a float64 summed-area table) minus the window's
unoccluded part plus the window's new values. Every number is computed, none
approximated: the results equal the full sweep's up to float rounding (the
tests hold them to 1e-5 absolute on probabilities, 1e-4 relative on map
activities).

A cost model (multiply-adds, plus a charge per element moved) picks the
layer to switch at and whether the incremental sweep pays at all;
:class:`~vizlib.methods.occlusion.Occlusion` uses it by default where it does
and says which way it went (``OcclusionMaps.strategy``).

Example::

    import vizlib as vl
    maps = vl.Occlusion(vl.vgg16(seed=0)).sweep(image, 32, 8)   # incremental where it pays
    maps.strategy, maps.strategy_note
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from ..core.progress import tqdm

from ..core.hooks import trace, version

__all__ = ["IncrementalPlan", "plan_incremental", "PAYS_BELOW", "MOVE_COST"]

#: The incremental sweep is used by default when its estimated work is below this share of the full sweep's.
PAYS_BELOW = 0.8
#: Cost of moving one element (gather, paste, copy), in multiply-adds (a rough CPU figure; only ratios matter).
MOVE_COST = 30.0

_POINTWISE = (
    nn.ReLU, nn.LeakyReLU, nn.ReLU6, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Tanh, nn.Sigmoid,
    nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.PReLU,
    nn.LocalResponseNorm, nn.CrossMapLRN2d,  # across maps, at one position: pointwise in space
)
_IDENTITY = (nn.Identity, nn.modules.dropout._DropoutNd)  # dropout: the sweep runs in eval mode


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return (int(v[0]), int(v[-1]))
    return int(v), int(v)


@dataclass
class _Op:
    """One leaf-module call of the forward pass, as the incremental sweep needs it."""

    path: str
    module: nn.Module
    kind: str  # conv, maxpool, avgpool, pointwise, identity, other
    in_shape: tuple[int, ...]  # per item, as the module takes it
    out_shape: tuple[int, ...]
    reshape: bool = False  # the input is the previous output reshaped (a flatten between modules)
    why: str = ""  # for kind "other": why it is not computed incrementally
    k: tuple[int, int] = (1, 1)
    s: tuple[int, int] = (1, 1)
    p: tuple[int, int] = (0, 0)  # padding before (top, left)
    d: tuple[int, int] = (1, 1)
    pad_value: float = 0.0

    def spatial(self) -> bool:
        return self.kind in ("conv", "maxpool", "avgpool")

    def windowed(self) -> bool:
        return self.kind in ("conv", "maxpool", "avgpool", "pointwise", "identity")

    def apply(self, patch: torch.Tensor) -> torch.Tensor:
        """The layer on an input patch that holds exactly the windows it needs (padding already in it)."""
        m = self.module
        if self.kind == "conv":
            return F.conv2d(patch, m.weight, m.bias, self.s, 0, self.d, m.groups)
        if self.kind == "maxpool":
            return F.max_pool2d(patch, self.k, self.s, 0, self.d)
        return F.avg_pool2d(patch, self.k, self.s, 0)


def _classify(module: nn.Module, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> _Op:
    """What kind of step a module is for the incremental sweep (and, if none, why)."""
    op = _Op("", module, "other", in_shape, out_shape)
    spatial_io = len(in_shape) == 3 and len(out_shape) == 3
    name = type(module).__name__
    if isinstance(module, _IDENTITY) and in_shape == out_shape:
        op.kind = "identity"
    elif isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) and in_shape == out_shape:
        op.kind = "identity"  # the output size is the input size: each output averages one input
    elif isinstance(module, _POINTWISE) and in_shape == out_shape and len(in_shape) == 3:
        op.kind = "pointwise"
    elif isinstance(module, nn.BatchNorm2d) and module.track_running_stats and module.running_mean is not None:
        op.kind = "pointwise"  # eval mode: a per-map affine map
    elif isinstance(module, nn.Conv2d) and spatial_io:
        if module.padding_mode != "zeros":
            op.why = f"{name} with padding_mode={module.padding_mode!r}"
        else:
            op.kind, op.k, op.s, op.d = "conv", _pair(module.kernel_size), _pair(module.stride), _pair(module.dilation)
            if isinstance(module.padding, str):
                total = [d * (k - 1) for d, k in zip(op.d, op.k)]
                op.p = (0, 0) if module.padding == "valid" else (total[0] // 2, total[1] // 2)
            else:
                op.p = _pair(module.padding)
    elif isinstance(module, nn.MaxPool2d) and spatial_io and not module.return_indices:
        op.kind, op.k, op.s = "maxpool", _pair(module.kernel_size), _pair(module.stride or module.kernel_size)
        op.p, op.d, op.pad_value = _pair(module.padding), _pair(module.dilation), -math.inf
    elif isinstance(module, nn.AvgPool2d) and spatial_io and module.divisor_override is None:
        k, s, p = _pair(module.kernel_size), _pair(module.stride or module.kernel_size), _pair(module.padding)
        overhang = any((o - 1) * ss + kk > n + 2 * pp for o, ss, kk, n, pp in zip(out_shape[1:], s, k, in_shape[1:], p))
        if (any(p) and not module.count_include_pad) or overhang:
            op.why = f"{name} whose divisor depends on the position (padding not counted, or ceil_mode overhang)"
        else:
            op.kind, op.k, op.s, op.p = "avgpool", k, s, p
    else:
        op.why = f"{name} ({'not a spatial map' if not spatial_io else 'no incremental rule'})"
    return op


def _chain(model: nn.Module, x: torch.Tensor) -> tuple[list[_Op] | None, str]:
    """The network as a chain of leaf-module calls (each takes the previous one's output), from one
    traced forward pass; ``(None, why)`` when it is not one (a branch, a skip connection, a tensor
    operation outside any module)."""
    x = x.clone()  # an in-place first layer writes into its input
    prev_shape, prev_ptr, prev_ver, prev = x.shape, x.data_ptr(), version(x), "the input"
    t = trace(model, x)
    if not isinstance(t.output, torch.Tensor):
        return None, "the network does not return one tensor"
    ops: list[_Op] = []
    seen: set[str] = set()
    for c in t.calls:
        if c.out_ptr == -2:
            return None, f"layer {c.path} does not take and give one tensor"
        if c.path in seen:
            return None, f"layer {c.path} is called more than once"
        seen.add(c.path)
        why = c.takes(prev_ptr, prev_ver)
        if why is not None:
            how = "was changed in place" if why == "in place" else "is not its input"
            return None, (f"the network is not a chain of layers: the output of {prev} {how} when layer {c.path} "
                          "ran (a branch, a skip connection or a tensor operation outside any module)")
        reshape = tuple(c.in_shape) != tuple(prev_shape)
        if reshape and (c.in_shape.numel() != prev_shape.numel() or c.in_shape[0] != prev_shape[0]):
            return None, f"layer {c.path} gets an input of shape {tuple(c.in_shape)} after {tuple(prev_shape)}"
        op = _classify(c.module, tuple(c.in_shape[1:]), tuple(c.out_shape[1:]))
        op.path, op.reshape = c.path, reshape
        ops.append(op)
        prev_shape, prev_ptr, prev_ver, prev = c.out_shape, c.out_ptr, c.out_version, f"layer {c.path}"
    out = t.output
    if not ops or out.data_ptr() != prev_ptr or out.numel() != prev_shape.numel():
        return None, "the network's output is not its last layer's output"
    return ops, ""


@dataclass
class _Axis:
    """The windows along one axis (rows or columns) at every windowed layer, for every square position."""

    origin: list[torch.Tensor]  # per layer: (npos,) first row of the window in the layer's output
    size: list[int]  # per layer: the window's length (the same for every position)
    start: list[torch.Tensor | None]  # per spatial layer: first row of its input patch (padded coordinates)
    length: list[int]  # per spatial layer: the patch's length


def _axis(ops: list[_Op], n_windowed: int, starts: torch.Tensor, size: int, axis: int) -> _Axis:
    """Propagate the changed region ``[starts, starts + size)`` of the input through the windowed layers."""
    lo, hi = starts.clone(), starts + size  # the changed region (exact superset), in the current map
    org, win = starts.clone(), size  # the window computed at the current layer
    out = _Axis([], [], [], [])
    for op in ops[:n_windowed]:
        if op.spatial():
            k, s, p, d = op.k[axis], op.s[axis], op.p[axis], op.d[axis]
            n_out = op.out_shape[1 + axis]
            empty = hi <= lo
            # output o reads padded inputs o*s .. o*s + d*(k-1), i.e. inputs o*s - p .. o*s - p + d*(k-1)
            nlo = torch.div(lo + p - d * (k - 1) + s - 1, s, rounding_mode="floor").clamp(0, n_out)
            nhi = (torch.div(hi - 1 + p, s, rounding_mode="floor") + 1).clamp(0, n_out)
            nlo, nhi = torch.where(empty, 0, nlo), torch.where(empty, 0, nhi)
            nhi = torch.maximum(nhi, nlo)
            win = max(1, int((nhi - nlo).max()))
            org = nlo.clamp(max=n_out - win).clamp(min=0)
            lo, hi = nlo, nhi
            out.start.append(org * s)
            out.length.append((win - 1) * s + d * (k - 1) + 1)
        else:
            out.start.append(None)
            out.length.append(0)
        out.origin.append(org)
        out.size.append(win)
    return out


def _cost(op: _Op, h: int | None = None, w: int | None = None) -> float:
    """Work of one layer for one image (multiply-adds, plus MOVE_COST per element moved); on a window
    ``h x w`` of its output when given (then with the gathering of its input patch)."""
    out = math.prod(op.out_shape)
    if op.kind == "identity":
        return 0.0
    if h is None:
        if op.kind == "conv":
            m = op.module
            return out * (m.in_channels // m.groups) * op.k[0] * op.k[1]
        if op.kind in ("maxpool", "avgpool"):
            return out * op.k[0] * op.k[1] + MOVE_COST * math.prod(op.in_shape)
        if isinstance(op.module, nn.Linear):
            return out * op.module.in_features
        return MOVE_COST * (math.prod(op.in_shape) + out)
    c_out = op.out_shape[0]
    if op.kind == "pointwise":
        return MOVE_COST * 2 * c_out * h * w
    lh, lw = (h - 1) * op.s[0] + op.d[0] * (op.k[0] - 1) + 1, (w - 1) * op.s[1] + op.d[1] * (op.k[1] - 1) + 1
    gather = MOVE_COST * 3 * op.in_shape[0] * lh * lw  # the cached patch, the pasted window, the merge
    if op.kind == "conv":
        m = op.module
        return c_out * h * w * (m.in_channels // m.groups) * op.k[0] * op.k[1] + gather
    return c_out * h * w * op.k[0] * op.k[1] + gather


@dataclass
class IncrementalPlan:
    """How an incremental sweep computes: which layers on windows, where it switches to whole maps.

    Made by :func:`plan_incremental`; run by :meth:`run`.

    Attributes:
        ops: the network's layers, as a chain.
        switch: layers ``ops[:switch]`` are computed on windows, the rest on whole maps.
        watched: index of the watched layer in ``ops``.
        rows, cols: the windows' geometry per layer.
        cost, full_cost: estimated work per position, incremental and full re-inference.
        size: the occluder's side.
        note: what was decided, in words.

    Example:
        >>> from vizlib.models import vgg_fmnist
        >>> import torch
        >>> plan = plan_incremental(vgg_fmnist(seed=0).eval(), torch.zeros(1, 1, 32, 32), "features.29",
        ...                         torch.arange(0, 25, 8), torch.arange(0, 25, 8), 8)
        >>> plan.ops[plan.switch - 1].path.startswith("features"), plan.cost < plan.full_cost
        (True, True)
    """

    ops: list[_Op]
    switch: int
    watched: int
    rows: _Axis
    cols: _Axis
    cost: float
    full_cost: float
    size: int
    note: str = ""
    stop: str = ""  # why the windows stop where they stop
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """Estimated work of the incremental sweep over the full sweep's, per position."""
        return self.cost / self.full_cost if self.full_cost else 1.0

    @property
    def pays(self) -> bool:
        """Whether the incremental sweep is expected to be faster (its work below ``PAYS_BELOW`` of the full's)."""
        return self.switch > 0 and self.ratio < PAYS_BELOW

    def cache_bytes(self, x: torch.Tensor) -> int:
        """Bytes of unoccluded activations cached per image (padded inputs of the windowed layers, the
        switch layer's input, the watched layer's float64 summed-area table)."""
        n = 0
        for j, op in enumerate(self.ops[: self.switch]):
            if op.spatial():
                hp = (op.out_shape[1] - 1) * op.s[0] + op.d[0] * (op.k[0] - 1) + 1
                wp = (op.out_shape[2] - 1) * op.s[1] + op.d[1] * (op.k[1] - 1) + 1
                n += op.in_shape[0] * hp * wp
        last = self.ops[self.switch].in_shape if self.switch < len(self.ops) else self.ops[-1].out_shape
        n += math.prod(last)
        area = 0
        if self.watched < self.switch:
            c, h, w = self.ops[self.watched].out_shape
            area = c * (h + 1) * (w + 1) * 8
        return n * x.element_size() + area

    # ------------------------------------------------------------------ caches

    def _caches(self, x: torch.Tensor) -> tuple[dict[int, torch.Tensor], torch.Tensor, dict[str, torch.Tensor],
                                                 torch.Tensor]:
        """The unoccluded images through the chain (``module.forward``: no hooks), keeping what the windows
        read: each windowed spatial layer's input padded (channels last), the switch layer's input, and the
        watched layer's summed-area table (float64). Also returns the chain's output."""
        pads: dict[int, torch.Tensor] = {}
        watch: dict[str, torch.Tensor] = {}
        full = None
        t = x.clone()  # an in-place first layer must not write into the caller's image
        for j, op in enumerate(self.ops):
            if op.reshape:
                t = t.reshape(len(t), *op.in_shape)
            if j == self.switch:
                full = t.clone()
            if j < self.switch and op.spatial():
                _, h, w = op.in_shape
                hp = (op.out_shape[1] - 1) * op.s[0] + op.d[0] * (op.k[0] - 1) + 1
                wp = (op.out_shape[2] - 1) * op.s[1] + op.d[1] * (op.k[1] - 1) + 1
                padded = F.pad(t, (op.p[1], wp - op.p[1] - w, op.p[0], hp - op.p[0] - h), value=op.pad_value)
                pads[j] = padded.permute(0, 2, 3, 1).contiguous()
            t = op.module.forward(t) if op.kind != "identity" else t
            if j == self.watched and j < self.switch:
                area = torch.zeros(*t.shape[:2], t.shape[2] + 1, t.shape[3] + 1, dtype=torch.float64, device=t.device)
                area[:, :, 1:, 1:] = t.double().cumsum(2).cumsum(3)
                watch["area"] = area
        if full is None:  # every layer windowed: the output map is materialised
            full = t.clone()
        return pads, full, watch, t

    # ------------------------------------------------------------------ the sweep

    def run(
        self, x: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, fill: torch.Tensor, targets: torch.Tensor,
        bs: int, progress: bool | None, keep: bool, out_shape: tuple[int, ...], logits: torch.Tensor,
        group: int = 1,
    ) -> dict[str, torch.Tensor]:
        """Every occluder position of every image, ``bs`` positions at a time; the same dict as the full sweep.

        Args:
            x: ``(N, C, H, W)`` the images (on the device, in the model's dtype).
            ys, xs: the square's top rows and left columns.
            fill: ``(C,)`` the occluder's value.
            targets: ``(N,)`` the class of (d) per image.
            bs: positions per batch.
            keep: keep every class's probability.
            out_shape: the model's output shape per image.
            logits: ``(N, K)`` the model's output on the unoccluded images (to check the chain against).
            group: images whose caches are held at once.
        """
        dev = x.device
        n, c = x.shape[:2]
        ny, nx = len(ys), len(xs)
        npos = ny * nx
        total = n * npos
        bs = max(1, min(bs, npos * min(group, n)))
        s = self.size
        pos_r = torch.arange(npos, device=dev) // nx  # row index of each position
        pos_c = torch.arange(npos, device=dev) % nx
        rows = _to(self.rows, dev)
        cols = _to(self.cols, dev)
        fill_v = fill.view(1, c, 1, 1).to(dev, x.dtype)
        res: dict[str, torch.Tensor] = {}
        chunks = [(g, st) for g in range(0, n, group) for st in range(0, min(group, n - g) * npos, bs)]
        show = len(chunks) > 4 if progress is None else bool(progress)
        bar = tqdm(chunks, desc=f"occluding incrementally ({total} positions)", unit="batch", disable=not show)
        try:
            cache_of = -1
            for g, st in bar:
                if cache_of != g:
                    xg = x[g : g + group]
                    pads, full_base, watch, out = self._caches(xg)
                    _check_replay(out.reshape(len(xg), *out_shape), logits[g : g + group], self.ops)
                    cache_of = g
                ng = len(xg)
                b = min(bs, ng * npos - st)
                task = torch.arange(st, st + b, device=dev)
                img, pos = task // npos, task % npos
                ri, ci = pos_r[pos], pos_c[pos]
                logit, red = self._batch(pads, full_base, watch, img, ri, ci, ys.to(dev)[ri], xs.to(dev)[ci],
                                         fill_v.expand(b, c, s, s), rows, cols)
                logit = logit.reshape(b, -1)
                probs = logit.softmax(1)
                lo = g * npos + st
                store_positions(res, lo, red, probs, targets[g + img], total, keep)
        finally:
            bar.close()
        return res

    def _batch(
        self, pads: dict[int, torch.Tensor], full_base: torch.Tensor, watch: dict[str, torch.Tensor],
        img: torch.Tensor, ri: torch.Tensor, ci: torch.Tensor, y0: torch.Tensor, x0: torch.Tensor,
        square: torch.Tensor, rows: _Axis, cols: _Axis,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch of positions: (the network's outputs, the watched layer's per-map totals)."""
        win = square.contiguous(memory_format=torch.channels_last)  # the occluder: the changed input
        wy, wx = y0, x0
        red = None
        for j in range(self.switch):
            op = self.ops[j]
            if op.spatial():
                patch = _compose(pads[j], img, win, wy, wx, rows.start[j][ri], cols.start[j][ci],
                                 rows.length[j], cols.length[j], op.p)
                win = op.apply(patch)
                wy, wx = rows.origin[j][ri], cols.origin[j][ci]
            elif op.kind == "pointwise":
                win = op.module.forward(win)
            if j == self.watched:
                red = _window_totals(watch["area"], img, win, wy, wx)
        t = full_base[img]  # a copy: the unoccluded map at the switch, with the window pasted in
        h, w = win.shape[2:]
        ar_h, ar_w = torch.arange(h, device=t.device), torch.arange(w, device=t.device)
        t.permute(0, 2, 3, 1)[torch.arange(len(img), device=t.device).view(-1, 1, 1), (wy.view(-1, 1) + ar_h).view(-1, h, 1),
                              (wx.view(-1, 1) + ar_w).view(-1, 1, w)] = win.permute(0, 2, 3, 1)
        for j in range(self.switch, len(self.ops)):
            op = self.ops[j]
            if op.reshape:
                t = t.reshape(len(t), *op.in_shape)
            if op.kind != "identity":
                t = op.module.forward(t)
            if j == self.watched:
                red = t.flatten(2).sum(-1) if t.ndim > 2 else t.clone()
        assert red is not None
        return t, red


def _to(axis: _Axis, dev: torch.device) -> _Axis:
    return _Axis([o.to(dev) for o in axis.origin], axis.size,
                 [None if s is None else s.to(dev) for s in axis.start], axis.length)


def _check_replay(out: torch.Tensor, logits: torch.Tensor, ops: list[_Op]) -> None:
    """The chain, replayed module by module, must give what the model gave (else something outside the
    modules, or a hook, changes the result: the incremental sweep cannot follow it)."""
    scale = float(logits.abs().max()) if logits.numel() else 0.0
    if out.shape != logits.shape or not torch.allclose(out, logits.to(out.dtype), rtol=1e-4, atol=1e-5 * scale + 1e-12):
        raise _NotAChain("replaying the network layer by layer does not give its output (a hook or an "
                         "operation outside the modules changes it)")


class _NotAChain(RuntimeError):
    """The network cannot be swept incrementally (found while running: the sweep falls back)."""


def _compose(
    base: torch.Tensor, img: torch.Tensor, win: torch.Tensor, wy: torch.Tensor, wx: torch.Tensor,
    sy: torch.Tensor, sx: torch.Tensor, lh: int, lw: int, pad: tuple[int, int],
) -> torch.Tensor:
    """The input patches of a batch: the cached padded map ``base`` ``(N, Hp, Wp, C)`` from padded
    ``(sy, sx)``, size ``lh x lw``, with each position's window ``win`` (its origin ``(wy, wx)`` in
    unpadded coordinates) pasted in. Returns ``(B, C, lh, lw)`` (channels-last memory)."""
    dev = base.device
    b, _, h, w = win.shape
    ar_h, ar_w = torch.arange(lh, device=dev), torch.arange(lw, device=dev)
    r = sy.view(-1, 1) + ar_h  # (B, lh) padded rows
    q = sx.view(-1, 1) + ar_w
    patch = base[img.view(-1, 1, 1), r.view(b, lh, 1), q.view(b, 1, lw)]  # (B, lh, lw, C)
    wr = r - pad[0] - wy.view(-1, 1)  # window rows of the patch rows
    wc = q - pad[1] - wx.view(-1, 1)
    oy, ox = wr[:, 0], wc[:, 0]  # where the window starts in the patch: -offset
    src = win.permute(0, 2, 3, 1)
    bi = torch.arange(b, device=dev)
    if bool(((oy <= 0) & (oy + lh >= h) & (ox <= 0) & (ox + lw >= w)).all()):
        # the whole window lies in every patch: paste it at its offset
        pr = (-oy).view(-1, 1) + torch.arange(h, device=dev)
        pc = (-ox).view(-1, 1) + torch.arange(w, device=dev)
        patch[bi.view(-1, 1, 1), pr.view(b, h, 1), pc.view(b, 1, w)] = src
    else:
        inside = ((wr >= 0) & (wr < h)).view(b, lh, 1, 1) & ((wc >= 0) & (wc < w)).view(b, 1, lw, 1)
        got = src[bi.view(-1, 1, 1), wr.clamp(0, h - 1).view(b, lh, 1), wc.clamp(0, w - 1).view(b, 1, lw)]
        patch = torch.where(inside, got, patch)
    return patch.permute(0, 3, 1, 2)


def _window_totals(area: torch.Tensor, img: torch.Tensor, win: torch.Tensor, wy: torch.Tensor,
                   wx: torch.Tensor) -> torch.Tensor:
    """Per-map totals of the watched layer: the unoccluded total outside the window (from the
    float64 summed-area table ``area``) plus the window's new values. ``(B, C)`` in ``win``'s dtype."""
    h, w = win.shape[2:]
    hh, ww = area.shape[2] - 1, area.shape[3] - 1
    corner = lambda yy, xx: area[img, :, yy, xx]  # noqa: E731  (B, C)
    inside = corner(wy + h, wx + w) - corner(wy, wx + w) - corner(wy + h, wx) + corner(wy, wx)
    outside = area[img, :, hh, ww] - inside
    return (outside + win.double().sum((2, 3))).to(win.dtype)


def plan_incremental(
    model: nn.Module, x1: torch.Tensor, watched: str, ys: torch.Tensor, xs: torch.Tensor, size: int,
    *, force: bool = False,
) -> IncrementalPlan | str:
    """Plan an incremental sweep of ``model`` for images shaped like ``x1`` ``(1, C, H, W)``.

    Args:
        model: the network (in eval mode; nothing is registered on it but :func:`~vizlib.core.hooks.trace`'s hooks,
            removed when it returns).
        x1: one image (its values are not used but for the traced pass).
        watched: the module path of the watched layer.
        ys, xs: the square's top rows and left columns.
        size: the square's side.
        force: window at least the first layer (when it can be), even where that does not pay.

    Returns:
        An :class:`IncrementalPlan`, or the reason (a sentence) why the network cannot be swept incrementally.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 30 * 30, 3)).eval()
        >>> plan = plan_incremental(net, torch.zeros(1, 1, 32, 32), "1", torch.tensor([0, 8]), torch.tensor([0]), 4)
        >>> plan.switch, [op.kind for op in plan.ops]
        (2, ['conv', 'pointwise', 'other', 'other'])
    """
    ops, why = _chain(model, x1)
    if ops is None:
        return why
    paths = [op.path for op in ops]
    if watched not in paths:
        return f"the watched layer {watched} is not one of the network's leaf layers"
    # the last layer that may be windowed: before the first one that is not, or that takes a reshaped input
    limit = 0
    stop = "every layer can be windowed"
    for op in ops:
        if op.reshape:
            stop = f"layer {op.path} takes a reshaped input"
            break
        if not op.windowed():
            stop = f"layer {op.path} is {op.why}"
            break
        limit += 1
    _, _, h, w = x1.shape
    rows = _axis(ops, limit, ys, size, 0)
    cols = _axis(ops, limit, xs, size, 1)
    full = [_cost(op) for op in ops]
    inc = [_cost(op, rows.size[j], cols.size[j]) for j, op in enumerate(ops[:limit])]
    full_total = sum(full)
    best, best_cost = 0, math.inf if force and limit else full_total
    acc = 0.0
    for j in range(1, limit + 1):
        acc += inc[j - 1]
        materialise = MOVE_COST * 2 * (math.prod(ops[j].in_shape) if j < len(ops) else math.prod(ops[-1].out_shape))
        total = acc + materialise + sum(full[j:])
        if total < best_cost:
            best, best_cost = j, total
    plan = IncrementalPlan(ops, best, paths.index(watched), rows, cols, best_cost, full_total, size, stop=stop)
    if best == 0:
        plan.note = f"no layer pays to compute on windows (estimated work {plan.ratio:.2f} of the full sweep's)"
    else:
        last, nxt = ops[best - 1].path, (ops[best].path if best < len(ops) else "the output")
        plan.note = (f"layers {ops[0].path}..{last} on windows around the square, whole maps from {nxt} on; "
                     f"estimated work {plan.ratio:.2f} of the full sweep's")
        if best == limit and limit < len(ops):
            plan.note += f" ({stop})"
    return plan


def store_positions(res: dict[str, torch.Tensor], lo: int, red: torch.Tensor, probs: torch.Tensor,
                    targets: torch.Tensor, total: int, keep: bool) -> None:
    """Write one batch of occluded positions' readings into the sweep's result buffers (made on first use).

    ``red``: per-map total activity ``(b, maps)``; ``probs``: class probabilities ``(b, classes)``;
    ``targets``: each position's class ``(b,)``; rows ``lo .. lo + b`` of buffers of ``total`` rows.
    The one writer for the full and the incremental sweep.
    """
    b = probs.shape[0]
    if "probability" not in res:
        res["activities"] = red.new_empty(total, red.shape[1])
        res["probability"] = probs.new_empty(total)
        res["label"] = torch.empty(total, dtype=torch.long, device=probs.device)
        res["label_probability"] = probs.new_empty(total)
        if keep:
            res["probabilities"] = probs.new_empty(total, probs.shape[1])
    res["activities"][lo : lo + b] = red
    res["probability"][lo : lo + b] = probs.gather(1, targets.view(-1, 1)).view(-1)
    top_p, top_k = probs.max(1)
    res["label"][lo : lo + b] = top_k
    res["label_probability"][lo : lo + b] = top_p
    if keep:
        res["probabilities"][lo : lo + b] = probs
