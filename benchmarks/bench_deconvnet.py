"""Benchmark: projecting the top-9 activations of every feature map of every AlexNet conv layer.

One image, AlexNet (untrained: timing does not depend on the weights), the 9
strongest activations of each of the 64 + 192 + 384 + 256 + 256 maps of
c1...c5: 10,368 deconvnet projections. Measured in one process:

* vizlib, batched: one forward pass, then every projection of a layer in
  batches (on receptive-field crops where that pays). Timed in full.
* vizlib without receptive-field crops (``crop=False``): full-size maps,
  timed on the first 256 projections of each layer.
* vizlib one activation at a time: ``Deconvnet.project(image, layer, c, (y, x))``
  in a Python loop (a forward pass each). Median of a sample, times the count.
* Captum's ``NeuronDeconvolution`` per neuron. Median of a sample, times the count.
* the floor: batched autograd backward passes alone (64 projections per
  pass, from a forward pass kept outside the timer), full size. Median of a
  few batches, times the count.

It checks that vizlib's projection equals Captum's for one neuron per layer,
and prints the per-layer times and the ratios.

Run::

    .venv/bin/pip install captum          # a benchmark dependency only
    .venv/bin/python benchmarks/bench_deconvnet.py
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
import warnings

import torch
from torch import nn

import vizlib as vl
from vizlib.core.device import cpu_name

LAYERS = ("c1", "c2", "c3", "c4", "c5")


def _now() -> float:
    return time.perf_counter()


def _sample(n_total: int, n: int) -> list[int]:
    step = max(1, n_total // n)
    return list(range(0, n_total, step))[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=224, help="image side (default 224)")
    ap.add_argument("--top", type=int, default=9, help="activations per map (default 9)")
    ap.add_argument("--samples", type=int, default=6, help="neurons sampled per layer for the per-neuron loops")
    ap.add_argument("--floor-batches", type=int, default=2, help="batches of 64 timed per layer for the floor")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    try:
        from captum.attr import NeuronDeconvolution
    except ImportError:
        raise SystemExit("this benchmark compares with Captum: .venv/bin/pip install captum")

    torch.manual_seed(0)
    model = vl.alexnet(seed=0).eval()
    image = torch.randn(3, args.size, args.size)
    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs, torch {torch.__version__} with "
          f"{torch.get_num_threads()} threads; load average {os.getloadavg()[0]:.1f} at start")
    print(f"AlexNet (untrained), one {args.size}×{args.size} image, top {args.top} of every map of "
          f"{', '.join(LAYERS)}\n")

    # ---------------------------------------------------------------- vizlib, batched (all of it)
    dn = vl.Deconvnet(model)
    t0 = _now()
    rec = dn.record(image, list(LAYERS))
    t_forward = _now() - t0
    ours: dict[str, float] = {}
    units: dict[str, vl.Projection] = {}
    for layer in LAYERS:
        t0 = _now()
        units[layer] = rec.project(layer, "all", top=args.top, progress=False)
        ours[layer] = _now() - t0
    counts = {layer: len(units[layer]) for layer in LAYERS}
    n_all = sum(counts.values())

    # ---------------------------------------------------------------- vizlib without crops (a sample)
    nocrop: dict[str, float] = {}
    crop_sample: dict[str, float] = {}
    for layer in LAYERS:
        p = units[layer]
        m = min(256, len(p))
        ch, y, x = p.channel[:m], p.position[:m, 0], p.position[:m, 1]
        t0 = _now()
        a = rec.project_units(layer, ch, y, x, crop=False, progress=False)
        nocrop[layer] = (_now() - t0) / m
        t0 = _now()
        b = rec.project_units(layer, ch, y, x, crop=True, progress=False)
        crop_sample[layer] = (_now() - t0) / m
        assert torch.allclose(a.pixels, b.pixels, rtol=1e-4, atol=1e-6 * float(a.pixels.abs().max()))

    # ---------------------------------------------------------------- one at a time (a sample)
    single: dict[str, float] = {}
    for layer in LAYERS:
        p = units[layer]
        ts = []
        for b in _sample(len(p), args.samples):
            c, (yy, xx) = int(p.channel[b]), p.position[b].tolist()
            t0 = _now()
            dn.project(image, layer, c, (yy, xx), progress=False)
            ts.append(_now() - t0)
        single[layer] = statistics.median(ts)

    # ---------------------------------------------------------------- Captum per neuron (a sample)
    plain = copy.deepcopy(model)
    for mod in plain.modules():
        if isinstance(mod, nn.ReLU):
            mod.inplace = False  # Captum's hooks do not work with in-place ReLUs
    captum: dict[str, float] = {}
    agree: dict[str, float] = {}
    x1 = image.unsqueeze(0)
    for layer in LAYERS:
        target = plain.get_submodule(plain.vizlib_layers[layer])
        nd = NeuronDeconvolution(plain, target)
        p = units[layer]
        ts = []
        for i, b in enumerate(_sample(len(p), args.samples + 1)):
            c, (yy, xx) = int(p.channel[b]), p.position[b].tolist()
            t0 = _now()
            attr = nd.attribute(x1, neuron_selector=(c, yy, xx))
            if i:  # the first call warms up
                ts.append(_now() - t0)
            if i == 1:  # Captum sends down 1, Zeiler's deconvnet the activation's value
                full = p.full(b)
                diff = attr[0] * p.value[b] - full
                agree[layer] = float(diff.abs().max() / full.abs().max().clamp_min(1e-30))
        captum[layer] = statistics.median(ts)

    # ---------------------------------------------------------------- the floor: batched backward passes
    floor: dict[str, float] = {}
    bsz = 64
    for layer in LAYERS:
        path = plain.vizlib_layers[layer]
        out: list[torch.Tensor] = []
        h = plain.get_submodule(path).register_forward_hook(lambda m, i, o: out.append(o))
        xb = image.unsqueeze(0).repeat(bsz, 1, 1, 1).requires_grad_(True)
        try:
            plain(xb)
        finally:
            h.remove()
        act = out[0]
        p = units[layer]
        ts = []
        for s in range(args.floor_batches):
            sl = slice(s * bsz, (s + 1) * bsz)
            g = torch.zeros_like(act)
            ch, pos = p.channel[sl], p.position[sl]
            g[torch.arange(len(ch)), ch, pos[:, 0], pos[:, 1]] = 1.0
            t0 = _now()
            torch.autograd.grad(act, xb, g, retain_graph=True)
            ts.append((_now() - t0) / bsz)
        floor[layer] = statistics.median(ts)
        del act, out, xb

    # ---------------------------------------------------------------- report
    print(f"{'layer':>5} {'proj.':>6} | {'vizlib':>17} | {'no crops':>9} | {'one at a time':>13} | "
          f"{'Captum':>9} | {'floor':>9} | {'vizlib = Captum':>15}")
    print(f"{'':>5} {'':>6} | {'s':>6} {'ms/proj':>10} | {'ms/proj':>9} | {'ms/proj':>13} | "
          f"{'ms/neuron':>9} | {'ms/proj':>9} | {'max rel. diff':>15}")
    for layer in LAYERS:
        print(f"{layer:>5} {counts[layer]:>6} | {ours[layer]:6.2f} {1e3 * ours[layer] / counts[layer]:10.2f} | "
              f"{1e3 * nocrop[layer]:9.2f} | {1e3 * single[layer]:13.2f} | {1e3 * captum[layer]:9.1f} | "
              f"{1e3 * floor[layer]:9.2f} | {agree[layer]:15.1e}")
    total_ours = t_forward + sum(ours.values())
    total = {
        "one at a time": sum(single[k] * counts[k] for k in LAYERS),
        "Captum": sum(captum[k] * counts[k] for k in LAYERS),
        "floor": sum(floor[k] * counts[k] for k in LAYERS),
        "no crops": sum(nocrop[k] * counts[k] for k in LAYERS),
    }
    print(f"\nall {n_all} projections (the per-neuron loops and the floor extrapolated from their "
          f"medians × the count):")
    print(f"  vizlib, batched:               {total_ours:8.1f} s  (forward pass {t_forward * 1e3:.0f} ms)")
    print(f"  vizlib, batched, no crops:     {total['no crops']:8.1f} s   ratio {total['no crops'] / total_ours:6.1f}×")
    print(f"  vizlib, one at a time:         {total['one at a time']:8.1f} s   ratio {total['one at a time'] / total_ours:6.1f}×")
    print(f"  Captum NeuronDeconvolution:    {total['Captum']:8.1f} s   ratio {total['Captum'] / total_ours:6.1f}×")
    print(f"  floor (batched backward only): {total['floor']:8.1f} s   ratio {total['floor'] / total_ours:6.1f}×")
    print(f"\nCaptum per conv5 neuron: {captum['c5'] * 1e3:.1f} ms (median of {args.samples}); "
          f"vizlib per conv5 projection: {ours['c5'] / counts['c5'] * 1e3:.2f} ms")
    print(f"load average {os.getloadavg()[0]:.1f} at the end (other users of the machine slow every method alike)")


if __name__ == "__main__":
    main()
