"""Benchmark: vizlib's occlusion sweep (all of Zeiler Fig. 7) against Captum and the floor.

One photo (scikit-image's cat, ImageNet preprocessing, 224×224), AlexNet
(untrained, seeded: the time does not depend on the weights), a 32 px grey
square at stride 8: 25 × 25 = 625 occluder positions. Measured in one process:

* **vizlib**: ``Occlusion(net).sweep(image, 32, 8, target)``, the full sweep:
  the unoccluded pass, then every occluded image with (b) the top conv
  layer's per-map activity, (d) the class probability, (e) the most probable
  label (and every class's probability), and (c) the deconvnet projection of
  the strongest map.
* **Captum** ``Occlusion`` for the class-probability map alone (forward
  function: softmax of the logits, baseline 0, the grey in normalised input
  space), at its default ``perturbations_per_eval=1`` (once) and at the best
  of several settings.
* **the floor**: the same number of occluded images through plain batched
  forward passes (batches built outside the timer, no hooks), at the batch
  size vizlib's sweep uses.

The three are run in turn, ``--repeats`` times (interleaved, the order
rotating, so that load on the machine affects them alike); medians and
minima of the wall-clock time and of the process's CPU time are reported
with the ratios.
It also checks that vizlib's probability map agrees with Captum's attribution
where a pixel is covered by a single square.

Run::

    .venv/bin/pip install captum          # a benchmark dependency only
    nice -n 10 .venv/bin/python benchmarks/bench_occlusion.py
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


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _timed2(fn) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Wall-clock and this process's CPU seconds (less disturbed by other work on a shared machine)."""
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=32, help="occluder side in pixels (default 32)")
    ap.add_argument("--stride", type=int, default=8, help="occluder stride in pixels (default 8)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repetitions of each method (default 3)")
    ap.add_argument("--ppe", default="16,32,64,128", help="Captum perturbations_per_eval settings to search")
    ap.add_argument("--skip-default", action="store_true", help="skip Captum at perturbations_per_eval=1 (slow)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--batch-size", type=int, default=None,
                    help="vizlib's and the floor's batch (default: vizlib's choice)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    try:
        from captum.attr import Occlusion as CaptumOcclusion
    except ImportError:
        raise SystemExit("this benchmark compares with Captum: .venv/bin/pip install captum")

    torch.set_num_threads(args.threads)
    net = vl.load("alexnet", "random")
    model = net.model.eval()
    meta, photo = demo_image("chelsea")
    image = vl.load_image(photo, net)[0]  # (3, 224, 224)
    target = meta.imagenet_index
    occ = vl.Occlusion(net)
    c, h, w = image.shape
    ys, xs = occ.grid(h, w, args.size, args.stride)
    n = len(ys) * len(xs)

    # vizlib's batch size (what its sweep picks on this machine), used by the floor too
    probe = occ.sweep(image, h, 1, target, project=False, progress=False)  # one position: cheap warm-up
    bs = args.batch_size or occ._auto_batch(*_per_image(occ, image))
    del probe

    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")
    print(f"AlexNet (untrained), 224×224 image, {args.size} px square at stride {args.stride}: {n} positions; "
          f"batch {bs} for vizlib and the floor; {args.repeats} repetitions, medians")

    # the floor: prebuilt occluded batches, plain forward passes
    fill = occ.fill(c)
    batches = []
    for s in range(0, n, bs):
        b = min(bs, n - s)
        xb = image.repeat(b, 1, 1, 1)
        for j in range(b):
            y, x = int(ys[(s + j) // len(xs)]), int(xs[(s + j) % len(xs)])
            xb[j, :, y : y + args.size, x : x + args.size] = fill.view(-1, 1, 1).float()
        batches.append(xb)

    def floor() -> None:
        with torch.no_grad():
            for xb in batches:
                model(xb)

    result: dict[str, object] = {}

    def vizlib_sweep() -> None:
        result["maps"] = occ.sweep(image, args.size, args.stride, target, batch_size=bs, progress=False)

    def captum(ppe: int):  # type: ignore[no-untyped-def]
        def run() -> None:
            with torch.no_grad():
                result[f"captum{ppe}"] = CaptumOcclusion(lambda t: model(t).softmax(1)).attribute(
                    image[None], sliding_window_shapes=(c, args.size, args.size),
                    strides=(c, args.stride, args.stride), baselines=0.0, target=target,
                    perturbations_per_eval=ppe)
        return run

    with torch.no_grad():  # warm-up
        model(batches[0])

    # Captum's best perturbations_per_eval
    search = {}
    for ppe in [int(v) for v in args.ppe.split(",")]:
        search[ppe] = _timed(captum(ppe))
        print(f"  Captum perturbations_per_eval={ppe}: {search[ppe]:.2f} s")
    best = min(search, key=search.get)  # type: ignore[arg-type]
    print(f"Captum's best setting here: perturbations_per_eval={best}")

    runs = {"floor": floor, "vizlib": vizlib_sweep, "captum": captum(best)}
    wall: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(args.repeats):
        order = list(runs)[r % 3:] + list(runs)[: r % 3]  # rotate, so that no method always runs first
        for k in order:
            w_, c_ = _timed2(runs[k])
            wall[k].append(w_)
            cpu[k].append(c_)
        print(f"  repetition {r + 1} (order {', '.join(order)}): " + ", ".join(
            f"{k} {wall[k][-1]:.2f} s wall / {cpu[k][-1]:.2f} s CPU" for k in runs))
    default = None if args.skip_default else _timed2(captum(1))

    # agreement: pixel (0, 0) is covered by the first square only, so Captum's attribution there
    # is p(unoccluded) - p(square at (0, 0))
    maps = result["maps"]
    attr = result[f"captum{best}"]
    mine = maps.base_probability - float(maps.probability[0, 0])  # type: ignore[attr-defined]
    theirs = float(attr[0, 0, 0, 0])  # type: ignore[index]
    print(f"check: p drop at the first square, vizlib {mine:.6g}, Captum {theirs:.6g}, "
          f"difference {abs(mine - theirs):.2g}")

    print()
    for what, t in (("wall-clock", wall), ("CPU time of this process", cpu)):
        med = {k: statistics.median(v) for k, v in t.items()}
        low = {k: min(v) for k, v in t.items()}
        print(f"{what} (median / min of {args.repeats}):")
        print(f"  floor (plain batched forward passes)        {med['floor']:7.2f} / {low['floor']:7.2f} s")
        print(f"  vizlib full sweep (all maps + projection)   {med['vizlib']:7.2f} / {low['vizlib']:7.2f} s   "
              f"{med['vizlib'] / med['floor']:.3f} / {low['vizlib'] / low['floor']:.3f} × the floor")
        print(f"  Captum Occlusion, p(class) map alone, best  {med['captum']:7.2f} / {low['captum']:7.2f} s   "
              f"{med['captum'] / med['floor']:.3f} / {low['captum'] / low['floor']:.3f} × the floor "
              f"(perturbations_per_eval={best})")
        if default is not None:
            d = default[0] if t is wall else default[1]
            print(f"  Captum Occlusion at its default (1), once   {d:7.2f} s             "
                  f"{d / med['floor']:.3f} × the floor's median")
        print(f"  vizlib / Captum best: {med['vizlib'] / med['captum']:.3f} / {low['vizlib'] / low['captum']:.3f}")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


def _per_image(occ: "vl.Occlusion", image: torch.Tensor) -> tuple[int, int]:
    with torch.no_grad():
        _, _, _, per = occ._base(image[None])
    return per, image.numel() * image.element_size()


if __name__ == "__main__":
    main()
