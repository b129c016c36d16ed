"""Feature generalisation (Zeiler & Fergus 2014, §5.2; Masum §VIII-C): a new softmax on frozen layers.

Zeiler and Fergus keep layers 1-7 of their ImageNet-trained net fixed and
train only a new softmax classifier on a new dataset (Caltech-101, -256,
PASCAL VOC), with few labelled images per class, and compare it with the same
architecture trained from scratch on the same images: the pretrained features
win by a wide margin when images are few.

* :func:`layer_features` reads a layer's output (flattened) for a set of images,
  batched, with the net frozen; :func:`stream_features` reads several layers at once
  from a stream of batches (one forward pass each), so that memory holds the features
  and never all the images;
* :func:`fit_softmax` fits a multinomial logistic regression (the "new softmax")
  to such features, deterministically: full-batch L-BFGS on the mean
  cross-entropy plus an L2 penalty on the weights, a strictly convex problem
  with one optimum;
* :class:`LinearProbe` does both for one net and layer (``c5``, ``fc6``, ``fc7``...),
  with the features standardised by the training images' mean and std;
* :func:`train_from_scratch` trains a freshly initialised copy of the
  architecture on the same few images (the recipe of
  :func:`vizlib.models.training.train`, for a fixed number of steps), for the
  other curve.

This module computes; chapter 8's curves and claims are in :mod:`vizlib.chapters.ch08`.

Example::

    import vizlib as vl
    probe = vl.LinearProbe(net, "fc7").fit(train_x, train_y)
    probe.accuracy(test_x, test_y)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.device import on_device
from ..core.errors import ArgumentError
from ..core.hooks import Capture, preserved
from ..core.images import check_image
from ..core.layers import as_module, resolve_layer
from ..models.training import renormalize_filters

__all__ = [
    "Softmax",
    "fit_softmax",
    "layer_features",
    "stream_features",
    "LinearProbe",
    "train_from_scratch",
    "per_class_subset",
]


@dataclass
class Softmax:
    """A fitted softmax classifier on features: ``logits = x @ weight.T + bias``.

    Attributes:
        weight: ``(K, D)``.
        bias: ``(K,)``.
        loss: the objective at the end (mean cross-entropy + ``weight_decay / 2 * |W|^2``).
        iterations: L-BFGS iterations used.
        weight_decay: the L2 penalty.

    Example:
        >>> s = fit_softmax(torch.tensor([[-1.0], [1.0]]), torch.tensor([0, 1]), 2)
        >>> s.predict(torch.tensor([[-2.0], [2.0]])).tolist()
        [0, 1]
    """

    weight: torch.Tensor
    bias: torch.Tensor
    loss: float
    iterations: int
    weight_decay: float

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, D)`` features -> ``(N, K)`` class scores."""
        return x.to(self.weight.dtype) @ self.weight.T + self.bias

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The most probable class of each row."""
        return self.logits(x).argmax(1)


def fit_softmax(
    features: torch.Tensor,
    labels: torch.Tensor | np.ndarray | Sequence[int],
    num_classes: int | None = None,
    *,
    weight_decay: float = 1e-3,
    max_iter: int = 500,
    tolerance: float = 1e-10,
) -> Softmax:
    """Fit a multinomial logistic regression: the one optimum of a strictly convex objective.

    Minimises ``mean_i CE(x_i W^T + b, y_i) + weight_decay / 2 * |W|_F^2`` (the
    bias is not penalised) with full-batch L-BFGS (strong Wolfe line search) in
    float64, from zero weights: the same data give the same classifier, bit for
    bit. This is scikit-learn's ``LogisticRegression(C=1 / (weight_decay * N))``.

    Args:
        features: ``(N, D)``.
        labels: ``(N,)`` class indices.
        num_classes: ``K`` (default: the largest label + 1).
        weight_decay: the L2 penalty (> 0, for a unique optimum on separable data).
        max_iter: the most L-BFGS iterations.
        tolerance: stop when the gradient's largest entry falls below this.

    Returns:
        A :class:`Softmax` (float64).

    Raises:
        ArgumentError: shapes that do not match, no data, a negative penalty.

    Example:
        >>> x = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
        >>> fit_softmax(x, [0, 1, 0, 1]).predict(x).tolist()
        [0, 1, 0, 1]
    """
    x = torch.as_tensor(features).detach().to(torch.float64).cpu()
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long).cpu()
    if x.ndim != 2 or len(x) == 0 or y.shape != (len(x),):
        raise ArgumentError(f"features must be (N, D) and labels (N,) with N >= 1; got {tuple(x.shape)} and "
                            f"{tuple(y.shape)}")
    if weight_decay < 0:
        raise ArgumentError(f"weight_decay must be >= 0, not {weight_decay}")
    k = int(num_classes) if num_classes is not None else int(y.max()) + 1
    if int(y.min()) < 0 or int(y.max()) >= k:
        raise ArgumentError(f"labels must lie in 0..{k - 1}")
    w = torch.zeros(k, x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, tolerance_grad=tolerance,
                            tolerance_change=1e-15, history_size=20, line_search_fn="strong_wolfe")

    def objective() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(x @ w.T + b, y) + 0.5 * weight_decay * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(objective)
        final = float(objective().detach())
    state = opt.state[opt._params[0]]
    return Softmax(w.detach(), b.detach(), final, int(state.get("n_iter", 0)), float(weight_decay))


def per_class_subset(labels: np.ndarray | Sequence[int], per_class: int, *, seed: int = 0,
                     exclude: np.ndarray | None = None, reserve: int | None = None) -> np.ndarray:
    """Indices of ``per_class`` images of each class, drawn with a seed (sorted).

    Args:
        labels: ``(N,)`` class of each image.
        per_class: how many of each class.
        seed: NumPy seed of the draw (the same seed gives nested draws: the first
            ``k`` of each class are the same for every ``per_class >= k``).
        exclude: indices not to draw (a test split).
        reserve: draw *up to* ``per_class``, leaving at least this many of each class
            undrawn (a test split of "up to 50 per class" that leaves 30 to train on, as
            Zeiler's on Caltech-101, whose smallest class has 31 images). ``None``:
            exactly ``per_class``.

    Raises:
        ArgumentError: a class has fewer images than asked for (with ``reserve``: not
            even one beyond the reserve).

    Example:
        >>> per_class_subset([0, 0, 1, 1, 1], 1, seed=0).tolist()
        [1, 3]
        >>> per_class_subset([0, 0, 1, 1, 1], 5, seed=0, reserve=1).tolist()
        [1, 2, 3]
    """
    lab = np.asarray(labels)
    banned = set(np.asarray(exclude).tolist()) if exclude is not None else set()
    rng = np.random.default_rng(seed)
    out = []
    for c in np.unique(lab):
        pool = np.array([i for i in np.flatnonzero(lab == c) if i not in banned])
        pool = pool[rng.permutation(len(pool))]
        take = per_class if reserve is None else min(per_class, len(pool) - int(reserve))
        if len(pool) < per_class if reserve is None else take < 1:
            more = "" if reserve is None else f" beyond the {reserve} kept back"
            raise ArgumentError(f"class {c} has only {len(pool)} images, fewer than the {per_class if reserve is None else 1}"
                                f" asked for{more}")
        out.extend(pool[:take].tolist())
    return np.sort(np.asarray(out, dtype=np.int64))


@torch.no_grad()
def layer_features(
    net: Any,
    images: torch.Tensor,
    layer: str,
    *,
    batch_size: int = 128,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """A layer's output for each image, flattened: ``(N, D)`` float32 on the CPU (the net frozen, eval mode).

    Example:
        >>> import vizlib as vl
        >>> layer_features(vl.load("alexnet", "random"), torch.zeros(2, 3, 224, 224), "fc7").shape
        torch.Size([2, 4096])
    """
    model = as_module(net, "layer_features")
    resolve_layer(model, layer)
    x = check_image(images, model, batch=True)
    model, dev = on_device(model, device)
    out = []
    with preserved(model), Capture(model, [layer], stop=True) as cap:
        for start in range(0, len(x), batch_size):
            out.append(cap.run(x[start : start + batch_size].to(dev))[layer].flatten(1).float().cpu())
    return torch.cat(out)


@torch.no_grad()
def stream_features(
    net: Any,
    batches: Iterable[torch.Tensor],
    layers: Sequence[str],
    *,
    device: torch.device | str | None = None,
) -> dict[str, torch.Tensor]:
    """Several layers' outputs, flattened, for a stream of prepared batches: ``{layer: (N, D)}`` on the CPU.

    One forward pass per batch reads every layer (stopping after the last of them); only
    the features are kept, so a folder of photos streams through in batches and memory
    does not grow with its images. The net is frozen and left as it was.

    Example:
        >>> import vizlib as vl
        >>> f = stream_features(vl.load("alexnet", "random"), [torch.zeros(2, 3, 224, 224)] * 2, ["c5", "fc7"])
        >>> f["c5"].shape, f["fc7"].shape
        (torch.Size([4, 9216]), torch.Size([4, 4096]))
    """
    model = as_module(net, "stream_features")
    names = [resolve_layer(model, layer)[0] for layer in layers]
    if not names:
        raise ArgumentError("stream_features needs at least one layer")
    model, dev = on_device(model, device)
    out: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    with preserved(model), Capture(model, names, stop=True) as cap:
        for b in batches:
            x = check_image(b, model, batch=True)
            got = cap.run(x.to(dev))
            for n in names:
                out[n].append(got[n].flatten(1).float().cpu())
    if not out[names[0]]:
        raise ArgumentError("stream_features got no batch")
    return {n: torch.cat(v) for n, v in out.items()}


class LinearProbe:
    """A new softmax on one frozen layer of a net (Zeiler §5.2).

    Args:
        net: a :class:`~vizlib.Net` or ``nn.Module`` (never changed).
        layer: the layer whose features the softmax reads (``"c5"``, ``"fc6"``, ``"fc7"``...).
        weight_decay: the softmax's L2 penalty (:func:`fit_softmax`).

    Example:
        >>> import vizlib as vl
        >>> net = vl.load("alexnet", "random")
        >>> x = torch.randn(6, 3, 224, 224); y = torch.tensor([0, 1, 2, 0, 1, 2])
        >>> LinearProbe(net, "fc7").fit(x, y).accuracy(x, y)
        1.0
    """

    def __init__(self, net: Any, layer: str, *, weight_decay: float = 1e-3) -> None:
        self.net = net
        self.layer = resolve_layer(as_module(net, "LinearProbe"), layer)[0]
        self.weight_decay = float(weight_decay)
        self.softmax: Softmax | None = None
        self.mean: torch.Tensor | None = None
        self.std: torch.Tensor | None = None

    def __repr__(self) -> str:
        state = "fitted" if self.softmax is not None else "not fitted"
        return f"LinearProbe(layer={self.layer!r}, weight_decay={self.weight_decay:g}, {state})"

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The layer's features of ``images``, standardised as the training images' were (after :meth:`fit`)."""
        f = layer_features(self.net, images, self.layer).double()
        if self.mean is not None and self.std is not None:
            f = (f - self.mean) / self.std
        return f

    def fit(self, images: torch.Tensor, labels: Any, num_classes: int | None = None) -> "LinearProbe":
        """Train the softmax on the features of ``images`` (prepared, ``(N, C, H, W)``); returns itself."""
        self.mean = self.std = None
        f = self.features(images)
        self.mean = f.mean(0)
        self.std = f.std(0, unbiased=False).clamp_min(1e-6)
        self.softmax = fit_softmax((f - self.mean) / self.std, labels, num_classes, weight_decay=self.weight_decay)
        return self

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """The most probable class of each image."""
        if self.softmax is None:
            raise ArgumentError("this probe is not fitted yet: call .fit(images, labels) first")
        return self.softmax.predict(self.features(images))

    def accuracy(self, images: torch.Tensor, labels: Any) -> float:
        """The share of ``images`` whose predicted class is ``labels``."""
        y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        return float((self.predict(images) == y).double().mean())


def train_from_scratch(
    build: Callable[[], nn.Module],
    images: torch.Tensor,
    labels: Any,
    *,
    steps: int = 200,
    batch_size: int = 32,
    lr: float = 1e-2,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    seed: int = 0,
) -> nn.Module:
    """Train a freshly built net on few prepared images, deterministically (CPU, fixed steps).

    SGD with momentum and weight decay (the papers' recipe, as in
    :func:`vizlib.models.training.train`) for ``steps`` steps of ``batch_size``
    images drawn with a seeded generator, the learning rate divided by 10 for
    the last quarter; random horizontal flips; Zeiler's filter renormalisation
    after every step. Global random state is left as it was.

    Args:
        build: returns the untrained net (called inside the seeded block).
        images: ``(N, C, H, W)`` prepared.
        labels: ``(N,)``.
        steps, batch_size, lr, momentum, weight_decay, seed: the recipe.

    Returns:
        The trained net, in eval mode, on the CPU.

    Example:
        >>> from vizlib.models import alexnet_fmnist
        >>> net = train_from_scratch(lambda: alexnet_fmnist(), torch.zeros(4, 1, 64, 64), [0, 1, 0, 1], steps=2)
        >>> net.training
        False
    """
    x = torch.as_tensor(images).float().cpu()
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long).cpu()
    if x.ndim != 4 or y.shape != (len(x),) or len(x) == 0:
        raise ArgumentError(f"images must be (N, C, H, W) and labels (N,); got {tuple(x.shape)}, {tuple(y.shape)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build().cpu()
        g = torch.Generator().manual_seed(seed)
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
        model.train()
        with torch.enable_grad():
            for step in range(int(steps)):
                if step == (3 * steps) // 4:
                    for group in opt.param_groups:
                        group["lr"] = lr / 10
                idx = torch.randint(0, len(x), (min(batch_size, len(x)),), generator=g)
                xb = x[idx]
                flip = torch.rand(len(idx), generator=g) < 0.5
                xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
                loss = F.cross_entropy(model(xb), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                renormalize_filters(model)  # Zeiler's filter renormalisation, as in training.train
    return model.eval()
