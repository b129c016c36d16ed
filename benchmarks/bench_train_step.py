"""One training step of each bundled net, in the contiguous and the channels-last memory format.

    .venv/bin/python benchmarks/bench_train_step.py            # --archs alexnet,zfnet --batch-size 64 --reps 30

A step as ``vizlib.models.training.train`` takes it: forward pass, cross-entropy plus the
first-layer smoothness penalty, backward pass, SGD step (momentum 0.9, weight decay 5e-4),
Zeiler's renormalisation. Random inputs (timing does not depend on the values), one thread unless
``--threads``; the two formats interleaved, 5 warm-up steps, then the median of ``--reps`` steps
split into forward, backward, SGD step and renormalisation. The figures in benchmarks/README.md
were measured with it.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.nn import functional as F

import vizlib.models.training as T
from vizlib.models.bundled_nets import BUNDLED_BUILDERS, FMNIST_INPUT_SIZE


def _stepper(arch: str, batch: int, channels_last: bool):
    net = BUNDLED_BUILDERS[arch](seed=0)
    net.train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net.to(memory_format=fmt)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    size = FMNIST_INPUT_SIZE[arch]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, size, size, generator=g).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,), generator=g)
    first = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))

    def step() -> tuple[float, float, float, float]:
        t0 = time.perf_counter()
        loss = F.cross_entropy(net(x), y)
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        (loss + T.smooth_penalty(first.weight, 0.1)).backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        T.renormalize_filters(net, 0.1)
        t4 = time.perf_counter()
        return t1 - t0, t2 - t1, t3 - t2, t4 - t3

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archs", default="alexnet,zfnet,vgg16")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"batch {args.batch_size}, {args.threads} thread(s), medians of {args.reps} steps (ms)")
    print("| net | format | forward | backward | SGD step | renorm | step |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for arch in args.archs.split(","):
        steps = {cl: _stepper(arch, args.batch_size, cl) for cl in (False, True)}
        times: dict[bool, list] = {False: [], True: []}
        for _ in range(5):
            for s in steps.values():
                s()
        for _ in range(args.reps):
            for cl, s in steps.items():
                times[cl].append(s())
        for cl in (False, True):
            p = np.median(np.asarray(times[cl]), axis=0) * 1000
            print(f"| {arch} | {'channels-last' if cl else 'contiguous'} | {p[0]:.1f} | {p[1]:.1f} | {p[2]:.1f} | "
                  f"{p[3]:.1f} | {p.sum():.1f} |")


if __name__ == "__main__":
    main()
