"""Benchmark: the incremental occlusion sweep against the full sweep and the re-inference floor, side by side.

One photo (scikit-image's cat, ImageNet preprocessing, 224×224), untrained seeded nets (the time
does not depend on the weights), a 32 px grey square at stride 8 (625 positions). For each
architecture, in one process, interleaved repetitions (the order rotating):

* **floor**: the same occluded images through plain batched forward passes (batches built
  outside the timer, no hooks, the model's own memory layout), at the batch size vizlib uses;
* **full**: ``Occlusion(net).sweep(image, 32, 8, incremental=False)``, every Fig. 7 map;
* **incremental**: ``Occlusion(net).sweep(image, 32, 8, incremental=True)``, the same maps;
* with ``--channels-last-floor``, also the floor with the model and the batches in channels-last
  memory (the incremental sweep computes its windows channels-last; this says how much of its gain
  the layout alone would give).

Medians (and minima) of wall-clock and process CPU time, the ratios, and the largest differences
between the incremental and the full maps.

Run::

    nice -n 10 .venv/bin/python benchmarks/occlusion_incremental.py                  # VGG-16 and AlexNet
    nice -n 10 .venv/bin/python benchmarks/occlusion_incremental.py --arch alexnet --repeats 5
    .venv/bin/python benchmarks/occlusion_incremental.py --device cuda               # on a GPU
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import torch

import vizlib as vl
from vizlib.core.data import demo_image
from vizlib.core.device import cpu_name
from vizlib.methods.incremental import plan_incremental


def _timed(fn, dev: torch.device) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t, c = time.perf_counter(), time.process_time()
    fn()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return time.perf_counter() - t, time.process_time() - c


def bench(arch: str, args: argparse.Namespace, dev: torch.device) -> dict[str, float]:
    net = vl.load(arch, "random")
    model = net.model.eval().to(dev)
    meta, photo = demo_image("chelsea")
    image = vl.load_image(photo, net)[0].to(dev)
    target = meta.imagenet_index
    occ = vl.Occlusion(net, device=dev)
    c, h, w = image.shape
    ys, xs = occ.grid(h, w, args.size, args.stride)
    n = len(ys) * len(xs)
    with torch.no_grad():
        _, _, _, per = occ._base(image[None])
    bs = args.batch_size or occ._auto_batch(per, image.numel() * image.element_size())
    plan = plan_incremental(model, image[None], occ.path, ys, xs, args.size)
    print(f"\n{arch} (untrained), {h}×{w} image, {args.size} px square at stride {args.stride}: {n} positions, "
          f"batch {bs}; {args.repeats} repetitions")
    print(f"  plan: {plan.note if not isinstance(plan, str) else plan}")

    fill = occ.fill(c).to(dev, image.dtype)
    batches = []
    for s in range(0, n, bs):
        b = min(bs, n - s)
        xb = image.repeat(b, 1, 1, 1)
        for j in range(b):
            y, x = int(ys[(s + j) // len(xs)]), int(xs[(s + j) % len(xs)])
            xb[j, :, y : y + args.size, x : x + args.size] = fill.view(-1, 1, 1)
        batches.append(xb)
    cl_model = cl_batches = None
    if args.channels_last_floor:
        import copy

        cl_model = copy.deepcopy(model).to(memory_format=torch.channels_last)
        cl_batches = [xb.contiguous(memory_format=torch.channels_last) for xb in batches]

    def floor() -> None:
        with torch.no_grad():
            for xb in batches:
                model(xb)

    def floor_cl() -> None:
        with torch.no_grad():
            for xb in cl_batches:  # type: ignore[union-attr]
                cl_model(xb)  # type: ignore[misc]

    result: dict[str, object] = {}

    def sweep(incremental: bool):  # type: ignore[no-untyped-def]
        def run() -> None:
            result[str(incremental)] = occ.sweep(image, args.size, args.stride, target, batch_size=bs,
                                                  progress=False, incremental=incremental, project=True)
        return run

    runs = {"floor": floor, "full": sweep(False), "incremental": sweep(True)}
    if args.channels_last_floor:
        runs["floor_cl"] = floor_cl
    with torch.no_grad():  # warm-up
        model(batches[0][:2])
    wall: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(args.repeats):
        keys = list(runs)
        order = keys[r % len(keys):] + keys[: r % len(keys)]
        for k in order:
            wt, ct = _timed(runs[k], dev)
            wall[k].append(wt)
            cpu[k].append(ct)
        print(f"  repetition {r + 1} (order {', '.join(order)}): "
              + ", ".join(f"{k} {wall[k][-1]:.2f} s" for k in keys), flush=True)
    full, fast = result["False"], result["True"]
    assert fast.strategy == "incremental", fast.strategy_note  # type: ignore[attr-defined]
    dp = float((fast.probabilities - full.probabilities).abs().max())  # type: ignore[attr-defined]
    da = float((fast.activities - full.activities).abs().max() / full.activities.abs().max())  # type: ignore[attr-defined]
    same = bool(torch.equal(fast.label, full.label))  # type: ignore[attr-defined]
    print(f"  agreement: max |Δp| {dp:.2g}, max |Δactivity| / max activity {da:.2g}, labels identical: {same}")
    out = {}
    for what, t in (("wall-clock", wall), ("CPU time of this process", cpu)):
        med = {k: statistics.median(v) for k, v in t.items()}
        low = {k: min(v) for k, v in t.items()}
        print(f"  {what} (median / min of {args.repeats}):")
        for k in runs:
            print(f"    {k:12s} {med[k]:8.2f} / {low[k]:8.2f} s   floor / {k}: {med['floor'] / med[k]:.2f}× "
                  f"(min {low['floor'] / low[k]:.2f}×)")
        print(f"    full / incremental: {med['full'] / med['incremental']:.2f}×")
        if what == "wall-clock":
            out = {f"{k}_s": med[k] for k in runs} | {"speedup_vs_floor": med["floor"] / med["incremental"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="vgg16,alexnet", help="comma-separated: vgg16, alexnet, zfnet")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--stride", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    ap.add_argument("--channels-last-floor", action="store_true", help="also time the floor in channels-last memory")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    where = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"{cpu_name()}, {os.cpu_count()} CPUs"
    print(f"machine: {where}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.2f}; {time.strftime('%Y-%m-%d %H:%M')}")
    summary = {a: bench(a, args, dev) for a in args.arch.split(",")}
    print("\nsummary (wall-clock medians):")
    for a, r in summary.items():
        print(f"  {a}: floor {r['floor_s']:.2f} s, full {r['full_s']:.2f} s, incremental {r['incremental_s']:.2f} s: "
              f"{r['speedup_vs_floor']:.2f}× faster than the floor")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
