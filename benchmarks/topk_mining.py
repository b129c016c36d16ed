"""Benchmark: streaming top-k mining (``vl.top_activations``) against the bare forward pass over the same data.

Untrained seeded AlexNet (the time does not depend on the weights), ``--n`` random 224×224 images
held in memory (so that no data loading is timed), batches of 64. In one process, interleaved
repetitions (the order rotating), medians:

* **floor**: the bare forward pass up to the layer, ``model.features[: i + 1](batch)`` per batch
  (no hooks, no checks), the work the mining cannot avoid;
* **mining**: ``vl.top_activations(model, layer, data, k=9)``: the image checks, the pass (stopped
  at the layer by a hook), and the miner's update;
* **parts**: the image check alone (``check_image``) and the miner's update alone, on the same batches,
  to say where any excess goes.

Target (issue 18): mining within 1.2× the floor.

Run::

    nice -n 10 .venv/bin/python benchmarks/topk_mining.py                 # c5 and c2, 256 images
    nice -n 10 .venv/bin/python benchmarks/topk_mining.py --layers c1 --n 512
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import vizlib as vl
from vizlib.core.device import cpu_name
from vizlib.core.images import check_image
from vizlib.core.layers import resolve_layer
from vizlib.methods.topk import TopKMiner


def _timed(fn, dev: torch.device) -> float:  # type: ignore[no-untyped-def]
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t = time.perf_counter()
    fn()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="alexnet")
    ap.add_argument("--layers", default="c5,c2")
    ap.add_argument("--n", type=int, default=256, help="images (default 256)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    where = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"{cpu_name()}, {os.cpu_count()} CPUs"
    print(f"machine: {where}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.2f}; {time.strftime('%Y-%m-%d %H:%M')}")
    model = getattr(vl, args.arch)(seed=0).eval().to(dev)
    data = torch.randn(args.n, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(dev)
    bs = args.batch_size
    summary = []
    for layer in args.layers.split(","):
        label, path = resolve_layer(model, layer)
        top, idx = path.split(".")
        assert top == "features", "the floor slices model.features: pick a convolutional layer"
        head = model.features[: int(idx) + 1]
        acts = []
        with torch.no_grad():
            for s in range(0, args.n, bs):
                acts.append(head(data[s : s + bs]))

        def floor() -> None:
            with torch.no_grad():
                for s in range(0, args.n, bs):
                    head(data[s : s + bs])

        def mining() -> None:
            vl.top_activations(model, layer, data, k=9, batch_size=bs, progress=False, device=dev)

        def checks() -> None:
            for s in range(0, args.n, bs):
                check_image(data[s : s + bs], model, batch=True)

        def update() -> None:
            miner = TopKMiner(acts[0].shape[1], 9, device=dev, dtype=acts[0].dtype)
            for a in acts:
                miner.update(a)

        runs = {"floor": floor, "mining": mining, "check_image": checks, "miner.update": update}
        times: dict[str, list[float]] = {k: [] for k in runs}
        floor()  # warm-up
        for r in range(args.repeats):
            keys = list(runs)
            for k in keys[r % 4:] + keys[: r % 4]:
                times[k].append(_timed(runs[k], dev))
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"\n{args.arch} {label} ({path}), {args.n} images in batches of {bs}, {args.repeats} repetitions, medians:")
        for k in runs:
            print(f"  {k:13s} {med[k]:8.3f} s   {med[k] / med['floor']:.3f} × the floor")
        summary.append((label, med["mining"] / med["floor"]))
    print("\nsummary: mining / bare forward pass: " + ", ".join(f"{l} {r:.3f}×" for l, r in summary)
          + " (target ≤ 1.2×)")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
