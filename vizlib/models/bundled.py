"""The bundled model set: small AlexNet-, ZFNet- and VGG-style nets trained on Fashion-MNIST.

The model-set switch (:func:`vizlib.load`) loads these for
``vl.load("zfnet", "bundled")``, and the default set falls back to them when
ImageNet weights cannot be had.

Each checkpoint ships in ``vizlib/checkpoints/`` with a JSON record beside it:
the exact command that trained it, seed, epochs, wall time, device, and its
accuracy on the full Fashion-MNIST test set and on the committed sample.
Also shipped: the AlexNet-style net trained without Zeiler's filter
renormalisation (``variant="norenorm"``) and epoch snapshots of the
ZFNet-style net (``epoch=...``, for the feature-evolution figure).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from .bundled_nets import BUNDLED_BUILDERS
from ..core.net import Net
from .training import CHECKPOINT_DIR, Preprocess, load_checkpoint
from ..core.errors import CheckpointError

__all__ = [
    "VARIANTS",
    "checkpoint_path",
    "bundled_record",
    "bundled_snapshots",
    "bundled_checkpoint_available",
    "load_bundled",
    "load_snapshots",
    "initial_model",
]

#: Variants shipped besides the main checkpoints: suffix of the file stem.
VARIANTS: tuple[str, ...] = ("norenorm", "first5")


def _stem(arch: str, variant: str | None) -> str:
    if arch not in BUNDLED_BUILDERS:
        raise KeyError(f"unknown architecture {arch!r}; choose one of {', '.join(BUNDLED_BUILDERS)}")
    if variant is not None and variant not in VARIANTS:
        raise KeyError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)} or None")
    return f"{arch}_fmnist" + (f"_{variant}" if variant else "")


def checkpoint_path(arch: str, variant: str | None = None, epoch: int | None = None) -> Path:
    """The ``.pt`` file of a bundled net (``epoch``: one of its snapshots).

    Example:
        >>> checkpoint_path("zfnet", epoch=5).name
        'zfnet_fmnist_epoch05.pt'
    """
    stem = _stem(arch, variant)
    return CHECKPOINT_DIR / (f"{stem}_epoch{epoch:02d}.pt" if epoch is not None else f"{stem}.pt")


def bundled_record(arch: str, variant: str | None = None) -> dict[str, Any]:
    """The JSON record of a bundled checkpoint: command, seed, epochs, wall time, device, accuracies, history.

    Raises:
        CheckpointError: the record is missing or is not valid JSON.

    Example:
        >>> record = bundled_record("alexnet")
        >>> record["arch"], record["epochs"]
        ('alexnet', 16)
    """
    path = CHECKPOINT_DIR / f"{_stem(arch, variant)}.json"
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError as exc:
        raise CheckpointError(f"the record {path} of the bundled {arch} net is missing") from exc
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"the record {path} of the bundled {arch} net is damaged ({exc})") from exc


def bundled_snapshots(arch: str, variant: str | None = None) -> list[int]:
    """Epochs at which snapshots of a bundled net ship (empty when none).

    Example:
        >>> bundled_snapshots("zfnet"), bundled_snapshots("vgg16")
        ([0, 1, 2, 5, 10], [])
    """
    try:
        rec = bundled_record(arch, variant)
    except CheckpointError:
        return []
    return sorted(int(e) for e in rec.get("snapshots", {}))


def bundled_checkpoint_available(arch: str, variant: str | None = None) -> bool:
    """Whether the checkpoint file of a bundled net ships with this copy.

    Example:
        >>> bundled_checkpoint_available("alexnet", "norenorm")
        True
    """
    return checkpoint_path(arch, variant).is_file()


def load_bundled(arch: str, *, variant: str | None = None, epoch: int | None = None) -> Net:
    """A bundled net as a :class:`vizlib.Net` (model in eval mode, on the CPU).

    Args:
        arch: ``"alexnet"``, ``"zfnet"`` or ``"vgg16"``.
        variant: ``None`` for the net trained with the papers' recipe,
            ``"norenorm"`` for the AlexNet-style net trained without Zeiler's
            filter renormalisation.
        epoch: load the snapshot saved after this epoch instead of the final
            weights (see :func:`bundled_snapshots`; 0 = before training).

    Returns:
        A :class:`vizlib.Net`: ``categories`` are Fashion-MNIST's ten classes,
        ``transform`` turns a PIL image or ``H x W`` / ``H x W x C`` uint8
        array into the ``1 x S x S`` normalised input, ``mean``/``std`` are
        1-tuples (the mean is the occluder's grey), ``extra`` holds the record.

    Raises:
        CheckpointError: the file is missing, damaged or truncated.

    Example:
        >>> net = load_bundled("zfnet")
        >>> net.categories[0], net.input_size, net.transform(np.zeros((28, 28), np.uint8)).shape  # doctest: +SKIP
        ('T-shirt/top', 64, torch.Size([1, 64, 64]))
    """
    path = checkpoint_path(arch, variant, epoch)
    # A checkpoint without its record (say, retrained elsewhere) loads unverified.
    has_record = (CHECKPOINT_DIR / f"{_stem(arch, variant)}.json").exists()
    record = bundled_record(arch, variant) if has_record else {}
    if epoch is None:
        digest = record.get("sha256")
    else:
        digest = record.get("snapshots", {}).get(str(epoch), {}).get("sha256")
        if record and str(epoch) not in record.get("snapshots", {}):
            raise CheckpointError(
                f"no snapshot of the bundled {arch} net after epoch {epoch}; "
                f"shipped: {bundled_snapshots(arch, variant) or 'none'}"
            )
    model, meta = load_checkpoint(path, expected_sha256=digest)
    preprocess = Preprocess(int(meta["input_size"]), float(meta["mean"][0]), float(meta["std"][0]))
    test = record.get("test_accuracy")
    when = f", after epoch {epoch}" if epoch is not None else ""
    acc = f"; {100 * test:.2f} % on its test set" if test is not None and epoch is None else ""
    return Net(
        arch=arch,
        model_set="bundled",
        model=model.eval(),
        categories=list(meta["classes"]),
        transform=preprocess,
        mean=(preprocess.mean,),
        std=(preprocess.std,),
        input_size=preprocess.size,
        source=f"vizlib bundled checkpoint {path.name} (trained on Fashion-MNIST{when}{acc})",
        extra={"record": record, "epoch": meta["epoch"], "variant": variant, "checkpoint": str(path)},
    )


def load_snapshots(arch: str, variant: str | None = None) -> dict[int, Net]:
    """Every shipped snapshot of a bundled net, and its final weights: ``{epoch: Net}``.

    Empty when no snapshots ship for that net (the ZFNet-style net has them).

    Example:
        >>> sorted(load_snapshots("zfnet"))  # doctest: +SKIP
        [0, 1, 2, 5, 10, 16]
    """
    epochs = bundled_snapshots(arch, variant)
    if not epochs:
        return {}
    nets = {e: load_bundled(arch, variant=variant, epoch=e) for e in epochs}
    final = load_bundled(arch, variant=variant)
    nets[int(final.extra["record"].get("epochs", final.extra["epoch"]))] = final
    return nets


def initial_model(arch: str, variant: str | None = None) -> nn.Module:
    """A bundled net as it was before its first training step, rebuilt from its record.

    Training builds ``BUNDLED_BUILDERS[arch](seed=record["seed"], num_classes=...)``
    (:func:`vizlib.models.training.train_bundled`); this builds it again with
    the seed of the checkpoint's JSON record and the number of classes of its
    checkpoint, so the weights are bit for bit the ones training started from.
    (With renormalisation on, training then rescales any filter of RMS above
    0.1 before the first step; that only rescales, see
    :func:`vizlib.models.training.renormalize_filters`.)

    Args:
        arch: ``"alexnet"``, ``"zfnet"`` or ``"vgg16"``.
        variant: ``None`` or one of :data:`VARIANTS`.

    Returns:
        The untrained model (eval mode, on the CPU), named as the trained one.

    Raises:
        KeyError: an unknown architecture or variant.
        CheckpointError: the record or the checkpoint is missing or damaged.

    Example:
        >>> from vizlib.methods.filters import init_similarity
        >>> init_similarity(load_bundled("zfnet", epoch=0), initial_model("zfnet")).median > 0.999
        True
    """
    record = bundled_record(arch, variant)
    if "seed" not in record:
        raise CheckpointError(f"the record of the bundled {_stem(arch, variant)} net keeps no seed; "
                              "its initialisation cannot be rebuilt")
    classes = record.get("num_classes")
    if classes is None:
        _, meta = load_checkpoint(checkpoint_path(arch, variant), expected_sha256=record.get("sha256"))
        classes = len(meta["classes"])
    return BUNDLED_BUILDERS[arch](seed=int(record["seed"]), num_classes=int(classes)).eval()
