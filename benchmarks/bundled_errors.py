"""Where the bundled nets go wrong: fit against generalisation, classes, object size (issue 14).

For each net (the committed checkpoints, or a scouting checkpoint with
``--checkpoint``), on the composed images the trainer uses:

* accuracy on 10,000 of the *training* garments composed once (a fixed draw
  the net never saw: each epoch composes new ones) beside the 5,000 held-out
  garments (composed as the trainer's validation set) and the 10,000 test
  garments (seed 0). Training composes fresh backgrounds every epoch, so the
  training loss the trainer prints is measured on nearly the held-out
  distribution whatever the net's capacity; only a held-out set of *garments*
  against the garments trained on shows whether a net overfits (a large gap:
  regularise) or underfits (a small gap: it needs capacity, a better design or
  a longer schedule);
* per-class recall and the most frequent confusions on the composed test set;
* accuracy by quartile of the object's share of the image;
* with more than one net: the test images each gets wrong that the last one
  gets right, and the reverse.

Needs Fashion-MNIST's training and test files (Debian's ``dataset-fashion-mnist``)::

    .venv/bin/python benchmarks/bundled_errors.py                    # alexnet zfnet vgg16
    .venv/bin/python benchmarks/bundled_errors.py --checkpoint /tmp/vizlib-scout/alexnet_wbase_s0.pt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

import vizlib as vl
from vizlib.core.composed import ComposedImages
from vizlib.models.bundled import checkpoint_path
from vizlib.models.bundled_nets import BUNDLED_BUILDERS
from vizlib.models.training import FMNIST_INPUT_SIZE, Preprocess, _split_train_val, evaluate


def _load(path: Path) -> tuple[str, torch.nn.Module, Preprocess, int]:
    """The model, its preprocessing and training seed from a checkpoint, widths read from its weights."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    arch, state = payload["arch"], payload["state_dict"]
    convs = [k for k in state if k.startswith("features.") and k.endswith(".weight") and state[k].ndim == 4]
    out = [int(state[k].shape[0]) for k in convs]
    if arch == "vgg16":   # groups of 2, 2, 3, 3, 3 convolutions: the width of each group's first
        widths = tuple(out[i] for i in (0, 2, 4, 7, 10))
    else:
        widths = tuple(out)
    model = BUNDLED_BUILDERS[arch](num_classes=len(payload["classes"]), widths=widths)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    pre = Preprocess(int(payload["input_size"]), float(payload["mean"][0]), float(payload["std"][0]))
    record = path.with_suffix(".json")   # the seed (and so the held-out garments) is in the record beside it
    seed = int(json.loads(record.read_text()).get("seed", 0)) if record.exists() else 0
    return arch, model.eval(), pre, seed


def _predict(model: torch.nn.Module, data: ComposedImages, pre: Preprocess, batch: int = 500) -> np.ndarray:
    preds = []
    with torch.no_grad():
        for start in range(0, len(data), batch):
            x = torch.from_numpy(np.stack([data.compose(i)[0] for i in range(start, min(start + batch, len(data)))]))
            preds.append(model(pre.batch(x)).argmax(1).numpy())
    return np.concatenate(preds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("archs", nargs="*", help="among alexnet, zfnet, vgg16 (default: all three)")
    ap.add_argument("--checkpoint", action="append", default=[], help="a scouting checkpoint (.pt); repeatable")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    full, test = vl.fashion_mnist("train"), vl.fashion_mnist("test", download=False)
    if unknown := set(args.archs) - set(BUNDLED_BUILDERS):
        ap.error(f"unknown architecture {', '.join(sorted(unknown))}; choose among {', '.join(BUNDLED_BUILDERS)}")
    archs = args.archs or ([] if args.checkpoint else ["alexnet", "zfnet", "vgg16"])
    paths = [checkpoint_path(a) for a in archs]
    paths += [Path(p) for p in args.checkpoint]
    test_data = ComposedImages(test, 0, 64)
    share = np.array([test_data.object_share(i) for i in range(len(test_data))])
    quart = np.quantile(share, [0.25, 0.5, 0.75])
    labels = np.asarray(test.labels)
    right: dict[str, np.ndarray] = {}
    for path in paths:
        arch, model, pre, seed = _load(path)
        size = FMNIST_INPUT_SIZE[arch]
        train_set, val_set = _split_train_val(full, 5000, seed)
        seen = evaluate(model, ComposedImages(train_set.subset(slice(0, 10_000)), 4242, size), pre)
        held = evaluate(model, ComposedImages(val_set, 1000 * seed + 999, size), pre)
        pred = _predict(model, test_data if size == 64 else ComposedImages(test, 0, size), pre)
        ok = pred == labels
        right[path.stem] = ok
        print(f"\n{path.stem} ({arch}): training garments {seen.accuracy:.2%} (loss {seen.loss:.4f}), "
              f"held-out garments {held.accuracy:.2%} (loss {held.loss:.4f}), test {ok.mean():.2%}; "
              f"gap {seen.accuracy - held.accuracy:+.2%}")
        confusion = np.zeros((10, 10), int)
        np.add.at(confusion, (labels, pred), 1)
        recall = np.diag(confusion) / confusion.sum(1)
        print("  recall: " + ", ".join(f"{c} {r:.3f}" for c, r in zip(test.classes, recall)))
        off = sorted(((confusion[i, j], i, j) for i in range(10) for j in range(10) if i != j), reverse=True)[:6]
        print("  confusions (true -> predicted, of 10,000): "
              + ", ".join(f"{test.classes[i]} -> {test.classes[j]} {n}" for n, i, j in off))
        bins = np.digitize(share, quart)
        print("  by object-share quartile (" + ", ".join(f"{q:.3f}" for q in quart) + "): "
              + ", ".join(f"{ok[bins == b].mean():.3f}" for b in range(4)))
    names = list(right)
    for name in names[:-1]:
        a, b = right[name], right[names[-1]]
        print(f"\n{name} against {names[-1]}: both wrong {(~a & ~b).mean():.2%}, only {name} wrong "
              f"{(~a & b).mean():.2%}, only {names[-1]} wrong {(a & ~b).mean():.2%}")


if __name__ == "__main__":
    main()
