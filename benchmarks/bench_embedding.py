"""Benchmark: sample 10,000 patches of a layer, embed them with t-SNE, fill the grid (Yu Fig. 3 (a)).

The acceptance figure of the representation-space chapter: on the bundled
set (the VGG-style net and chapter 4's images, the composed test sample:
its 1,500 images offer 24,000 patches at c5_3, whose map is 4x4), the time of

1. :func:`vizlib.patch_features`: one streaming pass, 10,000 patches of the
   chosen layers (both in the same pass);
2. :func:`vizlib.embed_patches`: PCA to 50 dimensions, then t-SNE: openTSNE on
   the fast schedule (vizlib's default: 125 + 250 iterations; Barnes-Hut up to
   3,000 points, FFT above) and on the library's standard one (250 + 500), and
   scikit-learn's Barnes-Hut t-SNE, each with 1 and 2 threads; beside each
   time, what the embedding keeps: the share of each patch's 10 nearest
   neighbours in feature space that stay among its 10 nearest in the plane
   (:func:`vizlib.neighbourhood_preservation`) and chapter 4's class agreement
   (k = 10, :func:`vizlib.methods.embedding.neighbour_agreement`);
3. :func:`vizlib.fill_grid`: 40×40 cells, exact nearest neighbour.

Each step is repeated ``--reps`` times; the medians (wall and CPU seconds)
are printed with the ratio of the two t-SNE libraries, the load average of
the machine before and after (the machine may be shared), and whether the
repeated embeddings with the same seed came out identical.

When the bundled checkpoint is not there, the untrained bundled architecture
is timed instead (the time does not depend on the weights; it says so).

Run::

    .venv/bin/pip install "openTSNE>=1.0,<2"
    nice -n 10 .venv/bin/python benchmarks/bench_embedding.py --reps 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

import vizlib as vl
from vizlib.core.data import FASHION_MNIST_CLASSES
from vizlib.core.device import cpu_name
from vizlib.methods.embedding import equivalent_layers, neighbour_agreement, neighbourhood_preservation, tsne_backend


def _load() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "n/a"


def _timed(fn, reps: int) -> tuple[list[float], list[float], list]:
    walls, cpus, outs = [], [], []
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time()
        outs.append(fn())
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return walls, cpus, outs


def _net(arch: str) -> tuple[object, str]:
    try:
        return vl.load(arch, "bundled"), "trained bundled checkpoint"
    except Exception as exc:  # no checkpoint yet: the same architecture untrained
        from vizlib.models.bundled_nets import BUNDLED_BUILDERS, FMNIST_INPUT_SIZE
        from vizlib.models.training import Preprocess

        size = FMNIST_INPUT_SIZE[arch]
        model = BUNDLED_BUILDERS[arch](seed=0).eval()
        net = vl.Net(arch, "bundled", model, list(FASHION_MNIST_CLASSES), Preprocess(size, 0.286, 0.353),
                     (0.286,), (0.353,), size, "untrained bundled architecture")
        return net, f"untrained bundled architecture (no checkpoint: {exc})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="vgg16", help="bundled architecture (default vgg16)")
    ap.add_argument("--n", type=int, default=10_000, help="patches (default 10,000)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of each step (default 3)")
    ap.add_argument("--sklearn-reps", type=int, default=None, help="repetitions for scikit-learn (default --reps)")
    ap.add_argument("--threads", default="1,2", help="thread counts to time t-SNE with (default 1,2)")
    ap.add_argument("--perplexity", type=float, default=30.0)
    ap.add_argument("--model-set", default="bundled", help="whose images chapter 4 uses (default bundled)")
    ap.add_argument("--low", action="store_true", help="time t-SNE at the low layer too")
    ap.add_argument("--skip-sklearn", action="store_true")
    ap.add_argument("--skip-standard", action="store_true", help="do not time openTSNE's standard schedule")
    args = ap.parse_args()
    torch.set_num_threads(2)
    net, what = _net(args.arch)
    from vizlib.chapters.ch04 import chapter_images

    images = chapter_images(args.model_set)  # chapter 4's: the composed test sample for the Bundled set
    data = vl.PreparedImages(images, net)
    low, high = equivalent_layers(net.model, net.input_size).layers
    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs visible, torch threads {torch.get_num_threads()}; "
          f"load average before: {_load()}")
    print(f"net: {args.arch}, {what}; data: {images.source}, {len(images)} images; layers {low} and {high}; "
          f"N = {args.n:,}; perplexity {args.perplexity:g}; {args.reps} repetitions")

    walls, cpus, outs = _timed(lambda: vl.patch_features(net, [low, high], data, args.n, progress=False), args.reps)
    feats = outs[-1]
    sampling = statistics.median(walls)
    print(f"\nsampling {args.n:,} patches of {low} and {high} (one pass over {len(images)} images): "
          f"median {sampling:.2f} s wall, {statistics.median(cpus):.2f} s CPU  (runs: "
          + ", ".join(f"{w:.2f}" for w in walls) + ")")
    same = all(np.array_equal(o[high].features, feats[high].features) for o in outs)
    print(f"  same seed, same sample every run: {same}")

    results: dict[tuple[str, int, str], tuple[float, float]] = {}
    threads = [int(t) for t in args.threads.split(",") if t]
    # (label, method, schedule): openTSNE on vizlib's fast schedule and on its own standard one
    methods = [("opentsne", "opentsne", "fast")] + ([] if args.skip_standard else [("opentsne-std", "opentsne", "standard")])
    methods += [] if args.skip_sklearn else [("sklearn", "sklearn", "fast")]
    if tsne_backend() != "openTSNE":
        methods = [m for m in methods if m[1] != "opentsne"]
        print("openTSNE is not installed: only scikit-learn is timed")
    for layer in (high, low) if args.low else (high,):
        x = feats[layer].features
        print(f"\nlayer {layer}: {x.shape[0]:,} patches × {x.shape[1]} maps")
        p = feats[layer]
        for label, method, schedule in methods:
            for nj in threads:
                reps = args.reps if method == "opentsne" else (args.sklearn_reps or args.reps)
                w, c, embs = _timed(lambda: vl.embed_patches(x, perplexity=args.perplexity, method=method, n_jobs=nj,
                                                     seed=0, schedule=schedule), reps)
                ident = all(np.array_equal(e.xy, embs[0].xy) for e in embs)
                results[(label, nj, layer)] = (statistics.median(w), statistics.median(c))
                kept = neighbourhood_preservation(x, embs[0], k=10)
                agree = neighbour_agreement(embs[0].xy, p.labels, p.image_index, k=10)[0]
                print(f"  {embs[0].method:12s} {schedule if method == 'opentsne' else 'its own':8s} {nj} thread(s): "
                      f"median {statistics.median(w):7.2f} s wall, {statistics.median(c):7.2f} s CPU (runs: "
                      + ", ".join(f"{v:.1f}" for v in w) + f"); 10-NN kept {kept:.3f}, class agreement {agree:.3f}; "
                      f"PCA to {embs[0].pca_dims} dims; same seed, identical embedding: {ident}")
        emb = vl.embed_patches(x, perplexity=args.perplexity, seed=0, n_jobs=1)
        w, c, _ = _timed(lambda: vl.fill_grid(emb.xy, 40), args.reps)
        results[("grid", 0, layer)] = (statistics.median(w), statistics.median(c))
        print(f"  grid fill 40×40, exact: median {statistics.median(w) * 1000:.1f} ms")

    print(f"\nload average after: {_load()}")
    print("\nsummary (medians, wall seconds): sampling + embedding + grid fill for the high layer")
    for label, _, _ in methods:
        for nj in threads:
            tot = sampling + results[(label, nj, high)][0] + results[("grid", 0, high)][0]
            print(f"  {label:12s} {nj} thread(s): {tot:7.2f} s  (PCA + t-SNE alone: {results[(label, nj, high)][0]:.2f} s)")
    labels = [m[0] for m in methods]
    for other in ("opentsne-std", "sklearn"):
        if other in labels and "opentsne" in labels:
            for nj in threads:
                for layer in (high, low) if args.low else (high,):
                    a, b = results[(other, nj, layer)][0], results[("opentsne", nj, layer)][0]
                    print(f"  {other} / openTSNE fast, {nj} thread(s), {layer}: {a / b:.2f}x")


if __name__ == "__main__":
    main()
