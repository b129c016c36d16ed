"""Benchmark: the rest of the family (issue 16): activation maximisation of every map of a layer, and
network dissection of a layer over the bundled test sample, beside the bare passes the work needs.

1. ``vl.maximise(net, layer)``: every feature map of the layer, one image each, optimised together
   (``--steps`` steps, the chosen regulariser). The floor: the same number of bare forward passes to the
   layer and backward passes, on a batch of the same size and of the size the net sees (with
   ``transforms`` the images are ``side + 2 pad - jitter - jitter2`` px), no regulariser, no optimiser,
   no checks. Per map and in total.
   With the maximum over the sample images (mined before the timer) the share of maps whose image
   reached it is printed too (the checks every 16 steps are in the time).
2. ``vl.dissect(net, layer, vl.bundled_concepts())`` over the bundled sample (1,500 composed images):
   streaming passes for the thresholds (a range, then histograms until each unit's threshold is exact:
   three or four in all) and one for the IoUs. The floor: one bare forward pass over the same images to
   the layer (no gradients), and as many of them as the method made.

Each is repeated ``--reps`` times; medians of wall and CPU seconds, the load average before and
after (the machine may be shared). Threads: ``--threads`` (default 2).

Run::

    nice -n 10 .venv/bin/python -u benchmarks/bench_family.py --reps 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import vizlib as vl
from vizlib.core.composed import bundled_sample
from vizlib.core.device import cpu_name
from vizlib.core.hooks import Capture, preserved
from vizlib.methods.dissection import bundled_concepts, dissect
from vizlib.methods.maximisation import maximise, objective_site, transform_amounts


def _load() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "n/a"


def _timed(fn, reps: int) -> tuple[list[float], list[float], object]:
    walls, cpus, out = [], [], None
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return walls, cpus, out


def _fmt(walls: list[float], cpus: list[float]) -> str:
    return (f"median {statistics.median(walls):7.2f} s wall, {statistics.median(cpus):7.2f} s CPU (runs: "
            + ", ".join(f"{w:.2f}" for w in walls) + ")")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="alexnet")
    ap.add_argument("--layer", default="c5", help="layer maximised (all its maps) and dissected (default c5)")
    ap.add_argument("--steps", type=int, default=256)
    ap.add_argument("--regulariser", default="fourier+transforms", help="names joined by + (default fourier+transforms)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--images", type=int, default=None, help="dissect the first N sample images (default all)")
    ap.add_argument("--skip-dissection", action="store_true")
    ap.add_argument("--skip-maximisation", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    net = vl.load(args.arch, "bundled")
    model = net.model
    regs = tuple(args.regulariser.split("+"))
    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs visible, torch {torch.__version__} with "
          f"{torch.get_num_threads()} threads; load average before: {_load()}")
    print(f"net: {net.title} ({net.source}); layer {args.layer}; {args.reps} repetitions")

    if not args.skip_maximisation:
        label, path, site, _ = objective_site(model, args.layer)
        with torch.no_grad(), Capture(model, [site], stop=True) as cap:
            maps = next(iter(cap.run(torch.zeros(1, 1, net.input_size, net.input_size)).values())).shape[1]
        side = net.input_size
        if "transforms" in regs:
            a = transform_amounts(side)
            side = side + 2 * a["pad"] - a["jitter"] - a["jitter2"]

        def floor() -> None:
            x = torch.randn(maps, 1, side, side, requires_grad=True)
            with preserved(model), Capture(model, [site], detach=False, stop=True) as cap:
                for p in model.parameters():
                    p.requires_grad_(False)
                for _ in range(args.steps):
                    t = next(iter(cap.run(x).values()))
                    t[torch.arange(maps), torch.arange(maps)].sum().backward()

        sample = bundled_sample() if args.images is None else bundled_sample().subset(slice(0, args.images))
        top = vl.top_activations(net, args.layer, vl.PreparedImages(sample, net), k=1, progress=False)  # untimed
        fw, fc, _ = _timed(floor, args.reps)
        mw, mc, am = _timed(lambda: maximise(net, args.layer, regulariser=regs, steps=args.steps, batch_size=maps,
                                             reference=top), args.reps)
        print(f"\nactivation maximisation: all {maps} maps of {label}, {args.steps} steps, {'+'.join(regs)}, "
              f"one batch of {maps} images ({side} px seen)")
        print(f"  vizlib.maximise:   {_fmt(mw, mc)}; {statistics.median(mw) / maps * 1000:.1f} ms per map")
        print(f"  floor (fwd+bwd):   {_fmt(fw, fc)}; {statistics.median(fw) / maps * 1000:.1f} ms per map")
        print(f"  maximise / floor:  {statistics.median(mw) / statistics.median(fw):.2f}x wall, "
              f"{statistics.median(mc) / statistics.median(fc):.2f}x CPU")
        reached = am.steps_to_reach[am.steps_to_reach > 0].float()
        print(f"  {int(am.reached.sum())} of {maps} maps reached their maximum over the {top.n_images} sample images "
              f"(median activation / dataset maximum {float(am.ratio.nanmedian()):.2f}; median steps to reach it "
              f"{float(reached.median()) if len(reached) else float('nan'):.0f}, checked every {am.check_steps[0]})")

    if not args.skip_dissection:
        sample = bundled_sample()
        if args.images:
            sample = sample.subset(slice(0, args.images))
        concepts = bundled_concepts(sample)
        data = concepts.data(net)
        x_all = torch.stack([data[i][0] for i in range(len(data))])  # prepared once, outside the timers
        _, path = vl.resolve_layer(model, args.layer)

        def one_pass() -> None:
            with preserved(model), torch.no_grad(), Capture(model, [path], stop=True) as cap:
                for s in range(0, len(x_all), 32):
                    cap.run(x_all[s:s + 32])

        pw, pc, _ = _timed(one_pass, args.reps)
        dw, dc, d = _timed(lambda: dissect(net, args.layer, concepts, x_all, batch_size=32), args.reps)
        counts = d.counts(next(iter(d.layers)))
        print(f"\ndissection of {args.layer} over {len(x_all)} bundled sample images, "
              f"{len(concepts.concepts)} concepts, batches of 32")
        print(f"  vizlib.dissect:    {_fmt(dw, dc)}")
        print(f"  floor, one pass:   {_fmt(pw, pc)}")
        print(f"  dissect / 1 pass:  {statistics.median(dw) / statistics.median(pw):.2f}x wall; "
              f"/ its {d.passes} passes: {statistics.median(dw) / (d.passes * statistics.median(pw)):.2f}x")
        print(f"  {counts['detectors']} of {counts['units']} units are detectors, {counts['unique']} unique concepts")
    print(f"\nload average after: {_load()}")


if __name__ == "__main__":
    main()
