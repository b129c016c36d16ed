"""Training with the papers' recipe, for the bundled networks.

Zeiler & Fergus §3 (after Krizhevsky et al.): stochastic gradient descent with
momentum 0.9, starting at a learning rate of 1e-2 that is annealed (when the
validation error plateaus, or after fixed epochs: ``anneal_at``, as Krizhevsky
did by hand); weight decay; dropout in the dense layers (built into the
networks of :mod:`vizlib.models.bundled_nets`, its rate settable while
training); random flips (and crops) of each training image; and Zeiler's fix
for dominating filters: after every update, each convolutional filter whose
RMS exceeds a fixed radius of 0.1 is scaled back to that radius
(:func:`renormalize_filters`; switch it off with ``renorm=False`` to see why
it was needed).

The training images are Fashion-MNIST's garments composed on the fly onto
crops of grey photos at half contrast (:class:`~vizlib.core.composed.ComposedImages`), a new
draw of places and crops every epoch; the accuracy is measured on the 10,000
test garments composed with seed 0, on the committed sample composed the same
way (:func:`~vizlib.core.composed.bundled_sample`) and on the test garments
centred on black (:func:`on_black`).

Training is deterministic for a seed on the CPU (same thread count): the
initialisation, the shuffling, the compositions, the flips and the dropout
masks all come from seeded generators, and the caller's global random state
is left as it was. On CUDA the same code runs faster but not bit-for-bit the same.

The exact command of each committed checkpoint is in the JSON record beside
it, for instance::

    python -m vizlib.models.training alexnet --epochs 15 --seed 0 --threads 1 --weight-decay 5e-4 \\
        --dropout 0 --anneal-at 10,13
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .bundled_nets import BUNDLED_BUILDERS, FMNIST_INPUT_SIZE
from ..core.data import ImageSet, fashion_mnist, fashion_mnist_sample, only_classes
from ..core.errors import DatasetUnavailable
from ..core.device import device as best_device
from ..core.device import cpu_name, resolve_device
from ..core.hooks import preserved
from ..core.spectra import high_frequency_energy

from ..core.errors import CheckpointError

__all__ = [
    "CHECKPOINT_DIR",
    "CheckpointError",
    "Preprocess",
    "TrainConfig",
    "EpochRecord",
    "History",
    "Evaluation",
    "augment",
    "epoch_seed",
    "on_black",
    "renormalize_filters",
    "SMOOTH_CUTOFF",
    "smooth_penalty",
    "filter_rms",
    "pixel_stats",
    "train",
    "evaluate",
    "save_checkpoint",
    "load_checkpoint",
    "sha256",
    "train_bundled",
    "main",
]

#: Where the committed checkpoints and their records live.
CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
_FORMAT = "vizlib-checkpoint"



# --------------------------------------------------------------------------- preprocessing


class Preprocess:
    """Grey images to the normalised input of a bundled net.

    One code path for everything: a batch of 28x28 uint8 images in training
    and evaluation (:meth:`batch`), and a single PIL image or ``H x W`` /
    ``H x W x C`` uint8 array for the book (calling the object). Pixels are
    scaled to [0, 1], the image is resized to ``size x size`` (bilinear; a
    non-square image is first cropped to its centred square), and the mean is
    subtracted and the result divided by the std.

    Args:
        size: side of the network's input.
        mean, std: the training images' pixel mean and std, in [0, 1] units.

    Example:
        >>> p = Preprocess(64, 0.286, 0.353)
        >>> p(np.zeros((28, 28), np.uint8)).shape
        torch.Size([1, 64, 64])
    """

    def __init__(self, size: int, mean: float, std: float) -> None:
        self.size = int(size)
        self.mean = float(mean)
        self.std = float(std)

    def __repr__(self) -> str:
        return f"Preprocess(size={self.size}, mean={self.mean:.4f}, std={self.std:.4f})"

    def batch(self, images: torch.Tensor) -> torch.Tensor:
        """``B x H x W`` uint8 -> ``B x 1 x size x size`` float32, normalised."""
        x = images.to(torch.float32).div_(255.0).unsqueeze(1)
        h, w = x.shape[-2:]
        if (h, w) != (self.size, self.size):
            down = h > self.size or w > self.size
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=down)
        return x.sub_(self.mean).div_(self.std)

    def __call__(self, image: Any) -> torch.Tensor:
        """One image (PIL, or ``H x W`` / ``H x W x C`` uint8 array) -> ``1 x size x size``."""
        arr = _grey_uint8(image)
        h, w = arr.shape
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        arr = np.array(arr[top : top + side, left : left + side])  # a writable copy
        return self.batch(torch.from_numpy(arr).unsqueeze(0))[0]


def _grey_uint8(image: Any) -> np.ndarray:
    from PIL import Image

    if isinstance(image, Image.Image):
        return np.asarray(image.convert("L"))
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image (0..255), got dtype {arr.dtype}")
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        return np.asarray(Image.fromarray(np.ascontiguousarray(arr)).convert("L"))  # ITU-R 601 luma, as PIL
    if arr.ndim != 2:
        raise ValueError(f"expected an H x W or H x W x C image, got shape {arr.shape}")
    return arr


def pixel_stats(images: np.ndarray, chunk: int = 4096) -> tuple[float, float]:
    """Mean and std of the pixels of uint8 images, in [0, 1] units.

    Computed from a histogram of the 256 grey levels, a chunk of images at a
    time, so no float copy of the dataset is made.

    Example:
        >>> pixel_stats(np.array([[[0, 255]]], np.uint8))
        (0.5, 0.5)
    """
    counts = np.zeros(256, dtype=np.int64)
    for start in range(0, len(images), chunk):
        counts += np.bincount(np.asarray(images[start : start + chunk], dtype=np.uint8).ravel(), minlength=256)
    levels = np.arange(256, dtype=np.float64) / 255.0
    n = counts.sum()
    mean = float(counts @ levels / n)
    var = float(counts @ (levels - mean) ** 2 / n)
    return mean, var**0.5


def augment(images: torch.Tensor, generator: torch.Generator, *, pad: int = 2, flip: bool = True) -> torch.Tensor:
    """Random crops and horizontal flips of a batch, as in Krizhevsky and Zeiler.

    Each ``H x W`` image is padded with ``pad`` black pixels on every side, a
    random ``H x W`` window is cut from it, and (with ``flip``) mirrored left
    to right with probability 1/2. All randomness comes from ``generator``.

    Args:
        images: ``B x H x W`` (any dtype).
        generator: a seeded ``torch.Generator`` (CPU).
        pad: largest shift, in pixels.
        flip: mirror half of the images.

    Returns:
        ``B x H x W``, same dtype.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> augment(torch.zeros(4, 28, 28, dtype=torch.uint8), g).shape
        torch.Size([4, 28, 28])
    """
    b, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad)) if pad else images
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    rows = oy[:, None] + torch.arange(h)
    cols = ox[:, None] + torch.arange(w)
    if flip:
        mirrored = torch.rand(b, generator=generator) < 0.5
        cols = torch.where(mirrored[:, None], cols.flip(1), cols)
    return padded[torch.arange(b)[:, None, None], rows[:, :, None], cols[:, None, :]]


def on_black(images: ImageSet, size: int = 64) -> ImageSet:
    """Plain Fashion-MNIST as the bundled nets read it: each 28 px garment centred on a black ``size`` px frame.

    The garments at their native size, as in the composed set, on the plain
    set's black background: the nets' accuracy here, beside the composed test
    set's, says what the backgrounds cost.

    Example:
        >>> import vizlib as vl
        >>> on_black(vl.fashion_mnist_sample()).images.shape
        (1500, 64, 64)
    """
    h, w = images.images.shape[1:]
    top, left = (size - h) // 2, (size - w) // 2
    out = np.zeros((len(images), size, size), np.uint8)
    out[:, top:top + h, left:left + w] = images.images
    return ImageSet(out, images.labels, images.classes, f"{images.source}, centred on black {size} px",
                    images.indices)


# --------------------------------------------------------------------------- Zeiler's renormalisation


def _convs(model: nn.Module) -> Iterator[tuple[str, nn.Conv2d]]:
    for path, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            yield path, module


def filter_rms(model: nn.Module) -> dict[str, torch.Tensor]:
    """RMS of every convolutional filter: module path -> one value per output map.

    Example:
        >>> from vizlib.models import alexnet_fmnist
        >>> rms = filter_rms(alexnet_fmnist(seed=0))
        >>> sorted(rms)[0], tuple(rms["features.0"].shape)
        ('features.0', (24,))
    """
    return {path: conv.weight.detach().pow(2).mean(dim=(1, 2, 3)).sqrt() for path, conv in _convs(model)}


#: The cut-off (cycles per input pixel) above which ``TrainConfig.first_layer_smooth`` penalises
#: first-layer energy: the Nyquist frequency of a stride-2 sampling, and the cut-off the book measures.
SMOOTH_CUTOFF = 0.25


def smooth_penalty(weight: torch.Tensor, strength: float) -> torch.Tensor:
    """``strength / 2`` times the filters' energy above :data:`SMOOTH_CUTOFF` (the ``first_layer_smooth`` term).

    Its gradient is ``strength`` times the filters' high-frequency part: the
    weight decay of SGD, applied only to what lies above the cut-off.

    Example:
        >>> w = torch.zeros(1, 1, 7, 7); w[0, 0, ::2, ::2] = 1.0            # a grid of dots: high frequencies
        >>> blob = torch.ones(1, 1, 7, 7)
        >>> bool(smooth_penalty(w, 1.0) > smooth_penalty(blob, 1.0) * 16 / 49)
        True
    """
    return 0.5 * strength * high_frequency_energy(weight, SMOOTH_CUTOFF, 32)


@torch.no_grad()
def renormalize_filters(model: nn.Module, radius: float = 0.1) -> int:
    """Zeiler's fix: scale each conv filter whose RMS exceeds ``radius`` back to ``radius``.

    A filter is one output map's weights (``in_channels x k x k``). Filters
    within the radius are left exactly as they are.

    Returns:
        How many filters were rescaled.

    Example:
        >>> conv = nn.Conv2d(1, 2, 1, bias=False)
        >>> _ = conv.weight.data.copy_(torch.tensor([0.5, 0.05]).view(2, 1, 1, 1))
        >>> renormalize_filters(conv), conv.weight.flatten().tolist()
        (1, [0.10000000149011612, 0.05000000074505806])
    """
    count = 0
    for _, conv in _convs(model):
        w = conv.weight
        rms = w.pow(2).mean(dim=(1, 2, 3)).sqrt()
        over = rms > radius
        if over.any():
            scale = torch.where(over, radius / rms, torch.ones_like(rms))
            w.mul_(scale.view(-1, 1, 1, 1))
            count += int(over.sum())
    return count


# --------------------------------------------------------------------------- the loop


@dataclass
class TrainConfig:
    """Everything that decides a training run (recorded with each checkpoint).

    Attributes:
        epochs: passes over the training images.
        batch_size: images per SGD step (Zeiler: 128).
        lr: initial learning rate (Zeiler: 1e-2).
        momentum: SGD momentum (Zeiler: 0.9).
        weight_decay: L2 penalty (Zeiler names none).
        lr_factor: the learning rate is multiplied by this when the validation
            loss plateaus.
        patience: epochs without improvement of the validation loss before
            annealing (1: anneal after two epochs in a row that do not improve;
            0 anneals on the first noisy epoch, which in session-1 runs cut the
            1e-2 phase to six epochs and left the nets under-trained).
        plateau: the smallest relative fall of the validation loss that
            counts as an improvement (0.01: a fall of less than 1 % is a plateau).
        min_lr: the learning rate is never annealed below this (1e-4: at most
            two annealings, 1e-2 -> 1e-3 -> 1e-4).
        renorm: Zeiler's filter renormalisation after every step.
        renorm_radius: the RMS radius (Zeiler: 0.1).
        crop_pad: random crops shift images by up to this many pixels (0: none;
            composed images already put the garment anywhere).
        flip: random horizontal flips.
        val_size: training images held out for validation (the plateau test).
        seed: seed of the initialisation, shuffling, augmentation and dropout.
        snapshots: epochs after which to save a snapshot (0: before training).
        limit: train on only this many images (tests, quick looks).
        compose: paste each training garment onto a background on the fly
            (:class:`~vizlib.core.composed.ComposedImages`), with a new draw each
            epoch (seed ``1000 * seed + epoch``): every epoch shows each garment
            at another place on another crop. ``False``: the images as given.
        anneal_at: epochs after which the learning rate is multiplied by
            ``lr_factor`` (Krizhevsky annealed by hand, three times); empty: anneal
            when the validation loss plateaus (``patience``, ``plateau``).
        first_layer_decay: an extra L2 penalty on the first convolution's
            weights only (0: none beyond ``weight_decay``).
        first_layer_smooth: an L2 penalty on the first convolution's
            high-frequency energy: ``first_layer_smooth / 2`` times the energy of
            its filters above :data:`SMOOTH_CUTOFF` cycles/px (spectra zero-padded to
            32 × 32, :func:`vizlib.core.spectra.high_frequency_energy`) is added to the
            loss (0: none). A weight decay in the frequency domain: a stride-2
            first layer (or stride-1 followed by stride-2 pooling) samples its
            output every other pixel, so whatever its filters pass above
            0.25 cycles/px folds back into lower frequencies (aliasing), and a
            filter whose energy is there shows a checkerboard, not the edge or
            blob it responds to. The penalty lets the gradient keep what it needs.
        dropout: the probability of every dropout layer while training (``None``:
            as the net was built, 0.5 for the bundled nets).
        channels_last: train in PyTorch's channels-last memory format (the same
            arithmetic; twice as fast on the CPU for the VGG-style net's many small
            convolutions on large maps); the model is given back in the usual format.
        classes: train (and test) on these Fashion-MNIST classes only, relabelled in the
            order given (:func:`vizlib.core.data.only_classes`); empty: all ten. The others
            stay unseen: chapter 8's held-out-classes pretrain.

    Example:
        >>> config = TrainConfig(epochs=2, snapshots=(0, 1))
        >>> config.batch_size, config.lr
        (128, 0.01)
    """

    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-2
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_factor: float = 0.1
    patience: int = 1
    plateau: float = 0.01
    min_lr: float = 1e-4
    renorm: bool = True
    renorm_radius: float = 0.1
    crop_pad: int = 0
    flip: bool = True
    val_size: int = 5000
    seed: int = 0
    snapshots: tuple[int, ...] = ()
    limit: int | None = None
    compose: bool = True
    anneal_at: tuple[int, ...] = ()
    first_layer_decay: float = 0.0
    first_layer_smooth: float = 0.0
    dropout: float | None = None
    channels_last: bool = False
    classes: tuple[int, ...] = ()


@dataclass
class EpochRecord:
    """One epoch of training: mean training loss and accuracy, validation loss and accuracy.

    Example:
        >>> history = train(net, train_set, preprocess, TrainConfig(epochs=1))    # doctest: +SKIP
        >>> last = history.epochs[-1]                                            # doctest: +SKIP
        >>> print(f"epoch {last.epoch}: lr {last.lr}, validation accuracy {last.val_accuracy:.2%}")  # doctest: +SKIP
    """

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    lr: float
    seconds: float
    renormalized: int


@dataclass
class History:
    """What :func:`train` did, epoch by epoch.

    Example:
        >>> history = train(net, train_set, preprocess)            # doctest: +SKIP
        >>> len(history.epochs)                                    # doctest: +SKIP
        10
    """

    epochs: list[EpochRecord] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0


@dataclass
class Evaluation:
    """Loss and accuracy of a model on a labelled set.

    Example:
        >>> import vizlib as vl
        >>> from vizlib.core.data import make_sample
        >>> from vizlib.models import alexnet_fmnist
        >>> result = evaluate(alexnet_fmnist(seed=0), make_sample(vl.fashion_mnist_sample(), per_class=2),
        ...                   Preprocess(64, 0.286, 0.353), device="cpu")
        >>> result.total, 0 <= result.accuracy <= 1
        (20, True)
    """

    loss: float
    accuracy: float
    correct: int
    total: int

    def __str__(self) -> str:
        return f"accuracy {100 * self.accuracy:.2f} % ({self.correct}/{self.total}), loss {self.loss:.4f}"


@contextlib.contextmanager
def _seeded_global(seed: int, dev: torch.device) -> Iterator[None]:
    """Seed torch's global generators (dropout uses them) and restore them afterwards."""
    devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        old = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        try:
            yield
        finally:
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = old


def _batches(n: int, batch_size: int, order: torch.Tensor) -> Iterator[torch.Tensor]:
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def epoch_seed(seed: int, epoch: int) -> int:
    """The composition seed of a training epoch: each epoch a new draw of places and crops.

    Example:
        >>> epoch_seed(0, 3)
        3
    """
    return 1000 * int(seed) + int(epoch)


def _composed_batch(data: Any, idx: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.stack([data.compose(int(i))[0] for i in idx]))


def _labelled(data: Any) -> tuple[int, Callable[[torch.Tensor], torch.Tensor], torch.Tensor]:
    """``(n, images_at(index) -> B x H x W uint8, labels)`` of an ImageSet or a ComposedImages."""
    from ..core.composed import ComposedImages

    labels = torch.from_numpy(np.array(data.labels, dtype=np.int64))
    if isinstance(data, ComposedImages):
        return len(data), lambda idx: _composed_batch(data, idx), labels
    arr = np.ascontiguousarray(data.images)
    images = torch.from_numpy(arr if arr.flags.writeable else arr.copy())  # the shared sample is read-only
    return len(data), lambda idx: images[idx], labels


def train(
    model: nn.Module,
    train_set: ImageSet,
    preprocess: Preprocess,
    config: TrainConfig = TrainConfig(),
    *,
    val_set: ImageSet | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    on_step: Callable[[int, nn.Module, float], None] | None = None,
    on_epoch: Callable[[int, nn.Module], None] | None = None,
) -> History:
    """Train a classifier with the papers' recipe (see the module docs).

    Images stay uint8 on the CPU; each step crops, flips and preprocesses one
    batch and moves only that batch to the device, so memory holds the
    dataset arrays and one batch, nothing more.

    Args:
        model: the network (left on ``device`` afterwards, in the train/eval
            mode it came in).
        train_set: training images (uint8) and labels.
        preprocess: turns a uint8 batch into the network's input.
        config: the recipe's settings.
        val_set: held-out images for the plateau test (``None``: anneal on
            the training loss).
        device: where to train (default: :func:`vizlib.device`, CUDA when present).
        progress: show a tqdm progress bar.
        on_step: called after every step (and renormalisation) with the step
            number, the model and the batch loss.
        on_epoch: called after every epoch with the epoch number (1-based) and
            the model; also once with 0 before training.

    Returns:
        A :class:`History`.

    Example:
        >>> import vizlib as vl
        >>> from vizlib.models import alexnet_fmnist
        >>> net = alexnet_fmnist(seed=0)
        >>> history = train(net, vl.fashion_mnist(), Preprocess(64, 0.286, 0.353),  # doctest: +SKIP
        ...                 TrainConfig(epochs=1))
    """
    from tqdm.auto import tqdm

    from ..core.composed import ComposedImages

    dev = torch.device(device) if device is not None else best_device()
    model.to(dev)
    images = torch.from_numpy(np.ascontiguousarray(train_set.images))
    labels = torch.from_numpy(np.ascontiguousarray(train_set.labels)).long()
    n = len(train_set)
    steps_per_epoch = -(-n // config.batch_size)
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    first_ids = {id(first.weight)} if first is not None and config.first_layer_decay else set()
    smooth = first is not None and config.first_layer_smooth > 0
    groups = [{"params": [p for p in model.parameters() if id(p) not in first_ids]}]
    if first_ids:
        groups.append({"params": [first.weight], "weight_decay": config.weight_decay + config.first_layer_decay})
    optimizer = torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    if config.anneal_at:
        scheduler: Any = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(config.anneal_at), config.lr_factor)
    else:
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=config.lr_factor, patience=config.patience,
            threshold=config.plateau, threshold_mode="rel", min_lr=config.min_lr,
        )
    generator = torch.Generator().manual_seed(config.seed)
    history = History()
    start = time.perf_counter()
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    kept = [m.p for m in drops]
    if config.dropout is not None:
        for m in drops:
            m.p = float(config.dropout)
    memory = torch.channels_last if config.channels_last else torch.contiguous_format
    if config.channels_last:
        model.to(memory_format=memory)
    with _seeded_global(config.seed, dev), preserved(model, eval=False):
        if config.renorm:
            renormalize_filters(model, config.renorm_radius)
        if on_epoch is not None:
            on_epoch(0, model)
        bar = tqdm(total=config.epochs * steps_per_epoch, disable=not progress, unit="batch", leave=True)
        try:
            for epoch in range(1, config.epochs + 1):
                model.train()
                t0 = time.perf_counter()
                loss_sum, correct, renormed = 0.0, 0, 0
                order = torch.randperm(n, generator=generator)
                composed = ComposedImages(train_set, epoch_seed(config.seed, epoch)) if config.compose else None
                for idx in _batches(n, config.batch_size, order):
                    batch = _composed_batch(composed, idx) if composed is not None else images[idx]
                    x = augment(batch, generator, pad=config.crop_pad, flip=config.flip)
                    x = preprocess.batch(x).to(dev).contiguous(memory_format=memory)
                    y = labels[idx].to(dev)
                    logits = model(x)
                    loss = F.cross_entropy(logits, y)
                    optimizer.zero_grad(set_to_none=True)
                    if smooth:
                        (loss + smooth_penalty(first.weight, config.first_layer_smooth)).backward()
                    else:
                        loss.backward()
                    optimizer.step()
                    if config.renorm:
                        renormed += renormalize_filters(model, config.renorm_radius)
                    history.steps += 1
                    value = float(loss.detach())
                    loss_sum += value * len(idx)
                    correct += int((logits.detach().argmax(1) == y).sum())
                    if on_step is not None:
                        on_step(history.steps, model, value)
                    bar.update(1)
                    bar.set_postfix(epoch=epoch, loss=f"{value:.3f}", lr=optimizer.param_groups[0]["lr"])
                lr = optimizer.param_groups[0]["lr"]
                val = evaluate(model, val_set, preprocess) if val_set is not None and len(val_set) else None
                if config.anneal_at:
                    scheduler.step()
                else:
                    scheduler.step(val.loss if val is not None else loss_sum / n)
                history.epochs.append(
                    EpochRecord(
                        epoch, loss_sum / n, correct / n,
                        val.loss if val else None, val.accuracy if val else None,
                        lr, time.perf_counter() - t0, renormed,
                    )
                )
                if val is not None:
                    bar.write(f"epoch {epoch}: train loss {loss_sum / n:.4f}, val {val}, lr {lr:g}")
                if on_epoch is not None:
                    on_epoch(epoch, model)
        finally:
            bar.close()
            for m, p in zip(drops, kept):
                m.p = p
            if config.channels_last:
                model.to(memory_format=torch.contiguous_format)
    history.seconds = time.perf_counter() - start
    return history


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: ImageSet,
    preprocess: Preprocess,
    *,
    batch_size: int = 500,
    device: torch.device | str | None = None,
) -> Evaluation:
    """Mean cross-entropy and accuracy of ``model`` on ``data`` (eval mode, no augmentation).

    ``data`` is an :class:`~vizlib.ImageSet` (uint8 images) or a
    :class:`~vizlib.core.composed.ComposedImages`, composed a batch at a time
    (memory does not grow with the set).

    Args:
        device: where to compute (default: where the model's parameters are).

    Example:
        >>> import vizlib as vl
        >>> from vizlib.models import alexnet_fmnist
        >>> print(evaluate(alexnet_fmnist(), vl.fashion_mnist_test(), Preprocess(64, 0.286, 0.353)))  # doctest: +SKIP
        accuracy ... % (.../10000), loss ...
    """
    dev = resolve_device(device, model)
    n, images_at, labels = _labelled(data)
    loss_sum, correct = 0.0, 0
    with preserved(model):
        for start in range(0, n, batch_size):
            idx = torch.arange(start, min(start + batch_size, n))
            x = preprocess.batch(images_at(idx)).to(dev)
            y = labels[idx].to(dev)
            logits = model(x)
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
    return Evaluation(loss_sum / max(n, 1), correct / max(n, 1), correct, n)


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    arch: str,
    preprocess: Preprocess,
    classes: Sequence[str],
    epoch: int,
    half: bool = False,
) -> Path:
    """Save a model's weights with what is needed to use it (loadable with ``weights_only=True``).

    Args:
        half: store the weights as float16 (for the small epoch snapshots);
            :func:`load_checkpoint` turns them back into float32.

    Example:
        >>> import vizlib as vl
        >>> save_checkpoint(net, "alexnet.pt", arch="alexnet", preprocess=Preprocess(64, 0.286, 0.353),
        ...                 classes=vl.fashion_mnist_sample().classes, epoch=16)      # doctest: +SKIP
        PosixPath('alexnet.pt')
    """
    dtype = torch.float16 if half else torch.float32
    payload = {
        "format": _FORMAT,
        "version": 1,
        "arch": arch,
        "input_size": preprocess.size,
        "mean": [preprocess.mean],
        "std": [preprocess.std],
        "classes": list(classes),
        "epoch": int(epoch),
        "state_dict": {k: v.detach().to("cpu", dtype).clone() for k, v in model.state_dict().items()},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return path


def sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file.

    Example:
        >>> from vizlib.models.bundled import checkpoint_path
        >>> len(sha256(checkpoint_path("alexnet")))
        64
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_checkpoint(path: str | os.PathLike[str], *, expected_sha256: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Load a bundled-net checkpoint into a freshly built, named model (CPU, eval mode).

    Args:
        path: the ``.pt`` file written by :func:`save_checkpoint`.
        expected_sha256: the digest its record lists; a mismatch means the file
            was damaged or replaced.

    Returns:
        ``(model, payload)``: the model and the checkpoint's metadata (the
        payload without ``state_dict``).

    Raises:
        CheckpointError: missing, damaged, truncated, not a vizlib checkpoint,
            or weights that do not fit the architecture; the message says which
            file and how to get a good copy back.

    Example:
        >>> from vizlib.models.bundled import bundled_record, checkpoint_path
        >>> digest = bundled_record("alexnet")["sha256"]
        >>> model, payload = load_checkpoint(checkpoint_path("alexnet"), expected_sha256=digest)
        >>> payload["arch"], payload["input_size"]
        ('alexnet', 64)
    """
    path = Path(path)
    fix = (
        f"Restore it with `git checkout -- {path.name}` in {path.parent}, or retrain it "
        "with the command in the JSON record beside it (python -m vizlib.models.training ...)."
    )
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist. {fix}")
    if expected_sha256 is not None and sha256(path) != expected_sha256:
        raise CheckpointError(
            f"checkpoint {path} is damaged or was replaced: its SHA-256 differs from the one in its record. {fix}"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load fails in many ways on a damaged file (IndexError, EOFError, ...)
        raise CheckpointError(f"checkpoint {path} is damaged or truncated and cannot be read ({exc}). {fix}") from exc
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT or "state_dict" not in payload:
        raise CheckpointError(f"{path} is not a vizlib checkpoint (no {_FORMAT!r} format tag). {fix}")
    arch = payload.get("arch")
    if arch not in BUNDLED_BUILDERS:
        raise CheckpointError(f"checkpoint {path} is for an unknown architecture {arch!r}. {fix}")
    model = BUNDLED_BUILDERS[arch](num_classes=len(payload["classes"]))
    state = {k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"the weights in {path} do not fit the {arch} bundled net ({exc}). {fix}") from exc
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    return model.eval(), meta


# --------------------------------------------------------------------------- the bundled nets, end to end


def _split_train_val(train_set: ImageSet, val_size: int, seed: int) -> tuple[ImageSet, ImageSet | None]:
    order = np.random.default_rng(seed).permutation(len(train_set))
    val_size = min(val_size, len(train_set) - 1)
    if val_size <= 0:
        return train_set, None
    return train_set.subset(np.sort(order[val_size:])), train_set.subset(np.sort(order[:val_size]))


def _device_words(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    cpu = cpu_name()
    return f"{dev.type} ({cpu}; torch threads {torch.get_num_threads()}, {os.cpu_count()} cores visible)"


def train_bundled(
    arch: str,
    config: TrainConfig = TrainConfig(),
    *,
    name: str | None = None,
    out: str | os.PathLike[str] = CHECKPOINT_DIR,
    root: str | os.PathLike[str] | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Train one bundled net on Fashion-MNIST, save its checkpoint, snapshots and record.

    Writes ``out/NAME.pt`` (float32 weights), ``out/NAME_epochEE.pt`` for each
    snapshot epoch (float16), and ``out/NAME.json``: the command, seed, epochs,
    wall time, device, per-epoch history, and the accuracy on the full test set
    and on the committed sample.

    Args:
        arch: ``"alexnet"``, ``"zfnet"`` or ``"vgg16"``.
        config: the recipe's settings.
        name: file stem (default ``ARCH_fmnist``, plus ``_norenorm`` without renormalisation).
        out: folder for the files.
        root: where the Fashion-MNIST files are (see :func:`vizlib.fashion_mnist`).
        device: where to train (default: :func:`vizlib.device`).
        progress: show a progress bar.
        command: the command line to record (the CLI passes its own).

    Returns:
        The record (also written as JSON).

    Example:
        >>> record = train_bundled("alexnet", TrainConfig(epochs=16), out="scratch")   # doctest: +SKIP
        >>> record["checkpoint"]                                                      # doctest: +SKIP
        'alexnet_fmnist.pt'
    """
    if arch not in BUNDLED_BUILDERS:
        raise KeyError(f"unknown architecture {arch!r}; choose one of {', '.join(BUNDLED_BUILDERS)}")
    began = time.perf_counter()
    name = name or f"{arch}_fmnist" + ("" if config.renorm else "_norenorm")
    out = Path(out)
    dev = torch.device(device) if device is not None else best_device()

    from ..core.composed import BACKGROUND_CONTRAST, ComposedImages, bundled_sample

    full_train = fashion_mnist("train", root)
    try:
        test: ImageSet | None = fashion_mnist("test", root, download=False)
    except DatasetUnavailable:
        test = None
    size = FMNIST_INPUT_SIZE[arch]
    if config.classes:
        full_train = only_classes(full_train, config.classes)
        test = only_classes(test, config.classes) if test is not None else None
    train_set, val_set = _split_train_val(full_train, config.val_size, config.seed)
    if config.limit is not None:
        train_set = train_set.subset(slice(0, config.limit))
    if config.compose:
        # the held-out garments composed once (a fixed draw), the test set with seed 0 like the sample
        val_data: Any = ComposedImages(val_set, 1000 * config.seed + 999, size) if val_set is not None else None
        test_data: Any = ComposedImages(test, 0, size) if test is not None else None
        sample: Any = bundled_sample() if not config.classes else only_classes(bundled_sample(), config.classes)
        first = ComposedImages(train_set, epoch_seed(config.seed, 1), size)
        stats_images = np.stack([first.compose(i)[0] for i in range(min(10_000, len(first)))])
    else:
        val_data, test_data, sample = val_set, test, fashion_mnist_sample()
        if config.classes:
            sample = only_classes(sample, config.classes)
        stats_images = train_set.images
    mean, std = pixel_stats(stats_images)
    del stats_images
    preprocess = Preprocess(size, mean, std)
    model = BUNDLED_BUILDERS[arch](seed=config.seed, num_classes=len(full_train.classes))

    snapshots: dict[str, dict[str, Any]] = {}

    def on_epoch(epoch: int, m: nn.Module) -> None:
        if epoch in config.snapshots:
            path = out / f"{name}_epoch{epoch:02d}.pt"
            save_checkpoint(m, path, arch=arch, preprocess=preprocess, classes=full_train.classes, epoch=epoch, half=True)
            snapshots[str(epoch)] = {"checkpoint": path.name, "sha256": sha256(path), "size_bytes": path.stat().st_size}

    history = train(model, train_set, preprocess, config, val_set=val_data, device=dev, progress=progress,
                    on_epoch=on_epoch)
    path = save_checkpoint(model, out / f"{name}.pt", arch=arch, preprocess=preprocess, classes=full_train.classes, epoch=config.epochs)

    # Accuracy as a reader will see it: reloaded from the file, on the CPU.
    reloaded, _ = load_checkpoint(path)
    test_eval = evaluate(reloaded, test_data, preprocess) if test_data is not None else None
    sample_eval = evaluate(reloaded, sample, preprocess)
    plain_eval = evaluate(reloaded, on_black(test, size), preprocess) if test is not None and config.compose else None
    record: dict[str, Any] = {
        "name": name,
        "arch": arch,
        "checkpoint": path.name,
        "sha256": sha256(path),
        "size_bytes": path.stat().st_size,
        "command": command or f"python -c \"vizlib.train_bundled({arch!r}, ...)\"",
        "seed": config.seed,
        "epochs": config.epochs,
        "config": {**asdict(config), "snapshots": list(config.snapshots), "anneal_at": list(config.anneal_at),
                   "classes": list(config.classes)},
        "renorm": config.renorm,
        "wall_time_s": round(history.seconds, 1),
        "total_wall_time_s": round(time.perf_counter() - began, 1),
        "device": _device_words(dev),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "data": (f"{full_train.source}, each garment composed on the fly onto 64 px crops of scikit-image "
                 f"backgrounds at contrast {BACKGROUND_CONTRAST:g}, a new draw each epoch "
                 "(vizlib.core.composed.ComposedImages, seed 1000 * seed + epoch)") if config.compose else full_train.source,
        "train_images": len(train_set),
        "val_images": len(val_set) if val_set is not None else 0,
        "input_size": preprocess.size,
        "mean": [preprocess.mean],
        "std": [preprocess.std],
        "parameters": sum(p.numel() for p in model.parameters()),
        "test_accuracy": test_eval.accuracy if test_eval else None,
        "test_correct": test_eval.correct if test_eval else None,
        "test_images": test_eval.total if test_eval else None,
        "test_loss": round(test_eval.loss, 6) if test_eval else None,
        "test_source": (f"{test.source}, composed with seed 0" if config.compose else test.source)
        if test is not None else None,
        "plain_test_accuracy": plain_eval.accuracy if plain_eval else None,
        "plain_test_source": f"{test.source}, each garment centred on black" if plain_eval else None,
        "sample_source": getattr(sample, "source", ""),
        "sample_accuracy": sample_eval.accuracy,
        "sample_correct": sample_eval.correct,
        "sample_images": sample_eval.total,
        "snapshots": snapshots,
        "history": [asdict(e) for e in history.epochs],
    }
    (out / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    defaults = TrainConfig()
    p = argparse.ArgumentParser(
        prog="python -m vizlib.models.training",
        description="Train a bundled net on Fashion-MNIST with the papers' recipe; write its checkpoint and record.",
    )
    p.add_argument("arch", choices=sorted(BUNDLED_BUILDERS))
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--momentum", type=float, default=defaults.momentum)
    p.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    p.add_argument("--lr-factor", type=float, default=defaults.lr_factor)
    p.add_argument("--patience", type=int, default=defaults.patience)
    p.add_argument("--plateau", type=float, default=defaults.plateau,
                   help="relative fall of the validation loss below which it counts as a plateau")
    p.add_argument("--min-lr", type=float, default=defaults.min_lr)
    p.add_argument("--no-renorm", action="store_true", help="switch off Zeiler's filter renormalisation")
    p.add_argument("--renorm-radius", type=float, default=defaults.renorm_radius)
    p.add_argument("--crop-pad", type=int, default=defaults.crop_pad)
    p.add_argument("--no-flip", action="store_true")
    p.add_argument("--val-size", type=int, default=defaults.val_size)
    p.add_argument("--snapshots", default="", help="comma-separated epochs to snapshot, e.g. 0,1,2,5")
    p.add_argument("--limit", type=int, default=None, help="train on only this many images")
    p.add_argument("--plain", action="store_true", help="train on the garments as given (no composing)")
    p.add_argument("--anneal-at", default="", help="comma-separated epochs after which to anneal, e.g. 8,11")
    p.add_argument("--first-layer-decay", type=float, default=defaults.first_layer_decay)
    p.add_argument("--first-layer-smooth", type=float, default=defaults.first_layer_smooth,
                   help="L2 penalty on the first convolution's energy above 0.25 cycles/px (0: none)")
    p.add_argument("--channels-last", action="store_true", help="train in the channels-last memory format")
    p.add_argument("--classes", default="", help="comma-separated classes to train on only, e.g. 0,1,2,3,4 "
                   "(relabelled in that order; default: all ten)")
    p.add_argument("--dropout", type=float, default=None, help="dropout probability while training "
                   "(default: as the net is built, 0.5)")
    p.add_argument("--name", default=None, help="file stem (default ARCH_fmnist[_norenorm])")
    p.add_argument("--out", default=str(CHECKPOINT_DIR), help="output folder")
    p.add_argument("--root", default=None, help="folder with the Fashion-MNIST files")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: the best available)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The command line: ``python -m vizlib.models.training ARCH [options]``; returns the record.

    Example:
        >>> main(["alexnet", "--epochs", "1", "--out", "scratch"])     # doctest: +SKIP
    """
    args = _parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
        weight_decay=args.weight_decay, lr_factor=args.lr_factor, patience=args.patience, plateau=args.plateau,
        min_lr=args.min_lr,
        renorm=not args.no_renorm, renorm_radius=args.renorm_radius, crop_pad=args.crop_pad,
        flip=not args.no_flip, val_size=args.val_size, seed=args.seed,
        snapshots=tuple(int(e) for e in args.snapshots.split(",") if e.strip()), limit=args.limit,
        compose=not args.plain, anneal_at=tuple(int(e) for e in args.anneal_at.split(",") if e.strip()),
        first_layer_decay=args.first_layer_decay, first_layer_smooth=args.first_layer_smooth, dropout=args.dropout, channels_last=args.channels_last,
        classes=tuple(int(c) for c in args.classes.split(",") if c.strip()),
    )
    words = list(sys.argv[1:] if argv is None else argv)
    # OpenMP's wait policy changes speed on a shared CPU, never results; keep it in the record.
    env = " ".join(f"{k}={os.environ[k]}" for k in ("OMP_WAIT_POLICY",) if k in os.environ)
    command = (env + " " if env else "") + "python -m vizlib.models.training " + shlex.join(words)
    record = train_bundled(
        args.arch, config, name=args.name, out=args.out, root=args.root,
        device=args.device, progress=not args.no_progress, command=command,
    )
    test = record["test_accuracy"]
    print(
        f"{record['name']}: test accuracy {'n/a' if test is None else f'{100 * test:.2f} %'}, "
        f"sample {100 * record['sample_accuracy']:.2f} %, {record['wall_time_s']:.0f} s training "
        f"on {record['device']} -> {Path(args.out) / record['checkpoint']}"
    )
    return record


if __name__ == "__main__":
    main()
