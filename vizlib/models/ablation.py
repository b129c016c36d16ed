"""Zeiler's model-size study on the AlexNet-style bundled design: layers removed or widened.

Zeiler & Fergus (Table 3, summarised by Masum §VIII-B) retrain Krizhevsky's
net with layers removed (6 and 7, the dense layers; 3 and 4, two middle
convolutions; both) or made wider (layers 3-5; layers 6-7; both) and compare
train and test error. The same six variants of
:class:`~vizlib.models.bundled_nets.SmallAlexNet` are built here, plus the
unchanged design as the baseline:

==============  =====================================================================
variant         change from the AlexNet-style bundled net (c1..c5 24-48-64-64-48, fc 512)
==============  =====================================================================
``base``        none (the same layers and initialisation as ``alexnet_fmnist``)
``no_fc67``     fc6 and fc7 removed: fc8 reads the pooled c5 maps directly
``no_c34``      c3 and c4 removed: c5 reads c2's pooled maps
``no_c34_fc67`` both removed: a four-layer net (c1, c2, c5, fc8)
``wide_c345``   c3, c4, c5 with 96, 160, 96 maps (Zeiler: 384, 384, 256 -> 512, 1024, 512)
``wide_fc67``   fc6 and fc7 with 1024 units (Zeiler: 4096 -> 8192)
``wide_both``   both widened
==============  =====================================================================

Each variant keeps the papers' layer names of the layers it keeps (``no_c34``
has c1, c2, c5; every variant ends in fc8), so the methods address them the
same way. :func:`ablation_net` builds one, seeded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ..core.layers import seeded as _seeded
from .bundled_nets import _init, _pool, _TorchvisionLayout

__all__ = [
    "Variant", "VARIANTS", "AblationNet", "ablation_net", "parameter_count",
    "RECORD_DIR", "Budget", "REPRODUCED", "train_variant", "record_path", "load_records", "same_numbers", "main",
]


@dataclass(frozen=True)
class Variant:
    """One design of the model-size study.

    Attributes:
        name: the key (``"no_fc67"``...).
        label: a short description for tables.
        convs: which of c1..c5 are kept.
        widths: filters of each of c1..c5 (a removed layer's width is ignored).
        hidden: units of fc6 and fc7; ``0``: no fc6/fc7.
        zeiler: the study it stands for in Zeiler's Table 3.

    Example:
        >>> VARIANTS["no_c34"].convs
        ('c1', 'c2', 'c5')
    """

    name: str
    label: str
    convs: tuple[str, ...] = ("c1", "c2", "c3", "c4", "c5")
    widths: tuple[int, int, int, int, int] = (24, 48, 64, 64, 48)
    hidden: int = 512
    zeiler: str = ""


_ALL = ("c1", "c2", "c3", "c4", "c5")
_NO34 = ("c1", "c2", "c5")
_WIDE = (24, 48, 96, 160, 96)

#: The baseline and the six variants, in table order.
VARIANTS: "OrderedDict[str, Variant]" = OrderedDict(
    (v.name, v)
    for v in (
        Variant("base", "AlexNet-style (bundled design)", zeiler="Our replication of (Krizhevsky et al., 2012), 1 convnet"),
        Variant("no_fc67", "removed fc6, fc7", hidden=0, zeiler="Removed layers 6,7"),
        Variant("no_c34", "removed c3, c4", convs=_NO34, zeiler="Removed layer 3,4"),
        Variant("no_c34_fc67", "removed c3, c4, fc6, fc7", convs=_NO34, hidden=0, zeiler="Removed layers 3,4,6,7"),
        Variant("wide_c345", "wider c3, c4, c5 (96, 160, 96)", widths=_WIDE, zeiler="Adjust layers 3,4,5: 512,1024,512 maps"),
        Variant("wide_fc67", "wider fc6, fc7 (1024)", hidden=1024, zeiler="Adjust layers 6,7: 8192 units"),
        Variant("wide_both", "wider c3, c4, c5 and fc6, fc7", widths=_WIDE, hidden=1024,
                zeiler="Adjust layers 3,4,5 and 6,7"),
    )
)


class AblationNet(_TorchvisionLayout):
    """The AlexNet-style design with layers removed or widened (see the module docs).

    Args:
        variant: a :class:`Variant` (or its name in :data:`VARIANTS`).
        num_classes: size of fc8.
        in_channels: 1 for the bundled grey images.

    Example:
        >>> import torch
        >>> AblationNet("no_c34_fc67")(torch.zeros(2, 1, 64, 64)).shape
        torch.Size([2, 10])
    """

    def __init__(self, variant: Variant | str, num_classes: int = 10, *, in_channels: int = 1) -> None:
        super().__init__()
        v = _variant(variant)
        self.variant = v
        shapes = {"c1": (7, 2, 3), "c2": (3, 1, 1), "c3": (3, 1, 1), "c4": (3, 1, 1), "c5": (3, 1, 1)}
        pooled = {"c1": "p1", "c2": "p2", "c5": "p5"}
        widths = dict(zip(_ALL, v.widths))
        layers: list[nn.Module] = []
        names: list[tuple[str, int]] = []
        cin = in_channels
        for c in v.convs:
            k, stride, pad = shapes[c]
            layers += [nn.Conv2d(cin, widths[c], kernel_size=k, stride=stride, padding=pad), nn.ReLU(inplace=True)]
            names.append((c, len(layers) - 1))
            if c in pooled:
                layers.append(_pool())
                names.append((pooled[c], len(layers) - 1))
            cin = widths[c]
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        if v.hidden:
            # as the bundled net's classifier (bundled_nets._classifier), dropout after fc6 and fc7
            self.classifier = nn.Sequential(
                nn.Linear(cin, v.hidden), nn.ReLU(inplace=True), nn.Dropout(p=0.5),
                nn.Linear(v.hidden, v.hidden), nn.ReLU(inplace=True), nn.Dropout(p=0.5),
                nn.Linear(v.hidden, num_classes),
            )
            fcs = [("fc6", 1), ("fc7", 4), ("fc8", 6)]
        else:
            self.classifier = nn.Sequential(nn.Linear(cin, num_classes))
            fcs = [("fc8", 0)]
        _init(self)
        layer_map: OrderedDict[str, str] = OrderedDict((n, f"features.{i}") for n, i in names)
        layer_map.update((n, f"classifier.{i}") for n, i in fcs)
        self.vizlib_layers = layer_map
        self.vizlib_arch = "alexnet"


def _variant(variant: Variant | str) -> Variant:
    if isinstance(variant, Variant):
        return variant
    if variant not in VARIANTS:
        raise KeyError(f"unknown ablation variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    return VARIANTS[variant]


def ablation_net(variant: Variant | str, *, num_classes: int = 10, seed: int | None = None) -> AblationNet:
    """Build one variant of the model-size study, seeded, with the papers' layer names.

    Example:
        >>> net = ablation_net("no_c34", seed=0)
        >>> list(net.vizlib_layers)
        ['c1', 'p1', 'c2', 'p2', 'c5', 'p5', 'fc6', 'fc7', 'fc8']
    """
    v = _variant(variant)
    with _seeded(seed):
        return AblationNet(v, num_classes)


def parameter_count(model: nn.Module) -> int:
    """Number of parameters (weights and biases) of a model.

    Example:
        >>> parameter_count(nn.Linear(3, 2))
        8
    """
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------- training the variants

#: Where the committed records of the study live (one JSON per variant; weights are not kept).
RECORD_DIR = Path(__file__).resolve().parent / "records" / "ablation"


@dataclass(frozen=True)
class Budget:
    """The study's budget: a fixed subset of the composed training data and a few epochs.

    Every variant is trained with the same recipe and schedule (the bundled
    AlexNet-style net's: SGD, momentum 0.9, learning rate 1e-2 annealed by 10
    after ``anneal_at``, weight decay 5e-4, no dropout, Zeiler's filter
    renormalisation, flips; garments composed onto new backgrounds every epoch).
    On one thread of a 2-core AMD EPYC a run took 1-6 minutes beside other work
    (the records' ``total_seconds``), up to 18 on a busier machine.

    Attributes:
        train_images: the first this many of the training garments left after
            the validation split (the same images for every variant).
        val_images: held-out garments composed once, for the learning curve.
        epochs, batch_size, anneal_at, weight_decay, dropout, seed: the recipe (batches of 64
            rather than the bundled nets' 128: twice the steps for the same time).
        test_images: the composed test set's first this many images (seed 0, as the bundled nets').

    Example:
        >>> Budget().train_images, Budget().epochs
        (6000, 8)
    """

    train_images: int = 6000
    val_images: int = 2000
    epochs: int = 8
    batch_size: int = 64
    anneal_at: tuple[int, ...] = (6,)
    weight_decay: float = 5e-4
    dropout: float = 0.0
    seed: int = 0
    test_images: int = 10000


#: Numbers of a record that must come back bit for bit when it is retrained (times and machine may differ).
REPRODUCED = ("parameters", "train_error", "test_error", "train_correct", "test_correct", "curve")


def train_variant(
    variant: Variant | str,
    budget: Budget = Budget(),
    *,
    root: str | os.PathLike[str] | None = None,
    progress: bool = False,
    command: str | None = None,
) -> dict[str, Any]:
    """Train one variant within ``budget`` on the CPU and return its record (the numbers of the table).

    Train error is measured after training, in eval mode, on the training
    garments as the first epoch composed them; test error on the composed test
    set (seed 0). The learning curve holds each epoch's training loss and
    accuracy (running, as the net trained) and validation accuracy.

    Args:
        variant: a :class:`Variant` or its name.
        budget: the study's budget (:class:`Budget`).
        root: where the Fashion-MNIST files are (see :func:`vizlib.fashion_mnist`).
        progress: show a progress bar.
        command: the command line to record.

    Returns:
        The record: variant, command, seed, budget, seconds, machine, parameters,
        train/test error and the curve.

    Example:
        >>> record = train_variant("no_c34_fc67", Budget(train_images=500, epochs=1))   # doctest: +SKIP
        >>> 0 <= record["test_error"] <= 1                                              # doctest: +SKIP
        True
    """
    from ..core.composed import ComposedImages
    from ..core.data import fashion_mnist
    from .bundled import bundled_record
    from .training import (Preprocess, TrainConfig, _device_words, _split_train_val, epoch_seed, evaluate,
                           train)

    v = _variant(variant)
    began = time.perf_counter()
    full = fashion_mnist("train", root)
    test = fashion_mnist("test", root)
    train_set, val_set = _split_train_val(full, budget.val_images, budget.seed)
    train_set = train_set.subset(slice(0, budget.train_images))
    size = 64
    base = bundled_record("alexnet")
    preprocess = Preprocess(size, base["mean"][0], base["std"][0])  # the bundled net's input statistics
    val_data = ComposedImages(val_set, 1000 * budget.seed + 999, size) if val_set is not None else None
    test_data = ComposedImages(test.subset(slice(0, budget.test_images)), 0, size)
    config = TrainConfig(
        epochs=budget.epochs, batch_size=budget.batch_size, anneal_at=budget.anneal_at, weight_decay=budget.weight_decay,
        dropout=budget.dropout, seed=budget.seed, val_size=budget.val_images,
    )
    model = ablation_net(v, num_classes=len(full.classes), seed=budget.seed)
    dev = torch.device("cpu")
    history = train(model, train_set, preprocess, config, val_set=val_data, device=dev, progress=progress)
    seen = ComposedImages(train_set, epoch_seed(budget.seed, 1), size)
    train_eval = evaluate(model, seen, preprocess, device=dev)
    test_eval = evaluate(model, test_data, preprocess, device=dev)
    return {
        "variant": v.name,
        "label": v.label,
        "zeiler": v.zeiler,
        "command": command or f"python -m vizlib.models.ablation {v.name}",
        "seed": budget.seed,
        "budget": {**asdict(budget), "anneal_at": list(budget.anneal_at)},
        "recipe": {**asdict(config), "snapshots": [], "anneal_at": list(config.anneal_at)},
        "train_seconds": round(history.seconds, 1),
        "total_seconds": round(time.perf_counter() - began, 1),
        "machine": _device_words(dev) + f", {platform.machine()}",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "parameters": parameter_count(model),
        "train_images": len(train_set),
        "test_images": test_eval.total,
        "train_error": 1.0 - train_eval.accuracy,
        "train_correct": train_eval.correct,
        "test_error": 1.0 - test_eval.accuracy,
        "test_correct": test_eval.correct,
        "curve": [
            {"epoch": e.epoch, "train_loss": e.train_loss, "train_accuracy": e.train_accuracy,
             "val_accuracy": e.val_accuracy, "lr": e.lr}
            for e in history.epochs
        ],
        "epoch_seconds": [round(e.seconds, 1) for e in history.epochs],
    }


def record_path(variant: Variant | str, folder: str | os.PathLike[str] = RECORD_DIR, seed: int = 0) -> Path:
    """The JSON record of a variant trained with one seed.

    Example:
        >>> record_path("base").name, record_path("base", seed=2).name
        ('base_seed0.json', 'base_seed2.json')
    """
    return Path(folder) / f"{_variant(variant).name}_seed{int(seed)}.json"


def load_records(folder: str | os.PathLike[str] = RECORD_DIR) -> "OrderedDict[str, list[dict[str, Any]]]":
    """The committed records, in table order: variant -> its records, one per seed, by seed
    (variants not yet trained are missing).

    Example:
        >>> records = load_records()
        >>> set(records) <= set(VARIANTS)
        True
    """
    out: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
    for name in VARIANTS:
        found = []
        for path in Path(folder).glob(f"{name}_seed*.json"):
            seed = path.stem.rsplit("_seed", 1)[1]
            if seed.isdigit():
                found.append((int(seed), json.loads(path.read_text())))
        if found:
            out[name] = [rec for _, rec in sorted(found, key=lambda t: t[0])]
    return out


def same_numbers(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The fields of :data:`REPRODUCED` that differ between two records (empty: bit for bit the same).

    Example:
        >>> same_numbers({"train_error": 0.1}, {"train_error": 0.1})
        []
    """
    return [k for k in REPRODUCED if a.get(k) != b.get(k)]


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """``python -m vizlib.models.ablation [VARIANT ...] [--check] [--out DIR]``: train and write records.

    With ``--check`` each variant is retrained and compared with its committed
    record instead of overwriting it (exit status 1 when a number differs).

    Example:
        >>> main(["no_c34_fc67", "--out", "scratch"])      # doctest: +SKIP
    """
    p = argparse.ArgumentParser(prog="python -m vizlib.models.ablation",
                                description="Train the variants of Zeiler's model-size study; write one record each.")
    p.add_argument("variants", nargs="*", default=list(VARIANTS), help=f"default: all ({', '.join(VARIANTS)})")
    p.add_argument("--out", default=str(RECORD_DIR))
    p.add_argument("--check", action="store_true", help="retrain and compare with the record in --out")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (the records: 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, initialisation and training (default 0)")
    p.add_argument("--root", default=None, help="folder with the Fashion-MNIST files")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    env = " ".join(f"{k}={os.environ[k]}" for k in ("OMP_WAIT_POLICY",) if k in os.environ)
    records = []
    failed = False
    for name in args.variants:
        command = (env + " " if env else "") + (f"python -m vizlib.models.ablation {name} --threads {args.threads} "
                                                f"--seed {args.seed}")
        record = train_variant(name, Budget(seed=args.seed), root=args.root, progress=args.progress, command=command)
        path = record_path(name, args.out, args.seed)
        if args.check:
            diff = same_numbers(json.loads(path.read_text()), record)
            failed |= bool(diff)
            print(f"{name}: {'identical to ' + str(path) if not diff else 'DIFFERS in ' + ', '.join(diff)}")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(record, indent=1) + "\n")
            print(f"{name}: {record['parameters']:,} parameters, train error {100 * record['train_error']:.2f} %, "
                  f"test error {100 * record['test_error']:.2f} %, {record['train_seconds']:.0f} s -> {path}",
                  flush=True)
        records.append(record)
    if failed:
        raise SystemExit(1)
    return records


if __name__ == "__main__":
    main()
