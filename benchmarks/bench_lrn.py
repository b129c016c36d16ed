"""Benchmark: a training step of the ZFNet-style bundled net, torch's response normalisation against the banded one.

The ZFNet-style net (:func:`vizlib.models.bundled_nets.zfnet_fmnist`) normalises
across maps twice, on 24 maps of 32x32 and 48 of 8x8. torch's
``nn.LocalResponseNorm`` squares the input, pads a copy along the channels
and average-pools it in 3-D; :class:`~vizlib.models.bundled_nets.BandedLocalResponseNorm`
sums the window with one 1x1 convolution. Measured in one process, alternating
the two nets step by step so that any change in the machine's load hits both:

* one SGD step (forward, cross-entropy, backward, update) on a batch of 128
  64x64 inputs in channels-last format, as training runs it, with dropout off;
* the same net with both normalisations removed, the floor.

It checks that the two nets give the same logits and gradients, and prints the
median step of each and the ratio.

Run::

    .venv/bin/python benchmarks/bench_lrn.py            # --steps, --threads, --batch
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn
from torch.nn import functional as F

from vizlib.core.device import cpu_name
from vizlib.models.bundled_nets import zfnet_fmnist


def _with(model: nn.Module, make) -> nn.Module:
    for name, m in list(model.features.named_children()):
        if isinstance(m, nn.LocalResponseNorm):
            setattr(model.features, name, make(m))
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=15, help="timed steps per net (default 15)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--batch", type=int, default=128, help="batch size (default 128, as training)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    x = torch.randn(args.batch, 1, 64, 64).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.batch,))
    nets = {
        "banded (vizlib)": zfnet_fmnist(seed=0, dropout=0.0),
        "torch LocalResponseNorm": _with(zfnet_fmnist(seed=0, dropout=0.0),
                                         lambda m: nn.LocalResponseNorm(m.size, m.alpha, m.beta, m.k)),
        "no normalisation (floor)": _with(zfnet_fmnist(seed=0, dropout=0.0), lambda m: nn.Identity()),
    }
    for m in nets.values():
        m.to(memory_format=torch.channels_last)

    # the same function: logits and gradients of the two normalised nets
    grads = {}
    for name in ("banded (vizlib)", "torch LocalResponseNorm"):
        m = nets[name]
        m.zero_grad()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        grads[name] = (loss.item(), [p.grad.clone() for p in m.parameters()])
    (la, ga), (lb, gb) = grads.values()
    diff = max(float((a - b).abs().max()) for a, b in zip(ga, gb))
    print(f"loss {la!r} against {lb!r}; largest gradient difference {diff:.3g}")

    opts = {k: torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9) for k, m in nets.items()}
    times: dict[str, list[float]] = {k: [] for k in nets}
    for step in range(args.steps + 2):  # two warm-up steps each, not timed
        for name, m in nets.items():
            t0 = time.perf_counter()
            opts[name].zero_grad()
            F.cross_entropy(m(x), y).backward()
            opts[name].step()
            if step >= 2:
                times[name].append(time.perf_counter() - t0)

    print(f"{cpu_name()}, torch {torch.__version__}, {args.threads} thread(s); batch {args.batch}, "
          f"median of {args.steps} steps, alternating")
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    for name, ms in med.items():
        print(f"  {name:26s} {ms:7.1f} ms a step")
    print(f"  torch's over banded: {med['torch LocalResponseNorm'] / med['banded (vizlib)']:.2f}x")


if __name__ == "__main__":
    main()
