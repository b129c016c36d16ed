"""Scouting: a bundled design on a short schedule, to compare variants side by side before a full retraining.

Trains one bundled architecture with the committed recipe (SGD, weight decay
5e-4, dropout off, renormalisation, channels-last, the first-layer smoothness
penalty) on the first ``--limit`` training garments for a few epochs, with its
filter widths changed if asked, and prints the accuracy on the 10,000 composed
test images beside plain Fashion-MNIST, the wall time and the last epoch's
losses. The checkpoint and record go to ``--out`` (never into the package).

Issue 14's closing note has one set of runs (AlexNet-style, seed 0 unless
said, 8 epochs annealed after 5 and 7, 20,000 garments, one thread each)::

    .venv/bin/python benchmarks/scout_bundled.py alexnet                       # 73.60 %
    .venv/bin/python benchmarks/scout_bundled.py alexnet --seed 1              # 74.91 %
    .venv/bin/python benchmarks/scout_bundled.py alexnet --widths 24,48,128,128,128
    .venv/bin/python benchmarks/scout_bundled.py alexnet --widths 48,96,64,64,48
    .venv/bin/python benchmarks/scout_bundled.py alexnet --smooth 0
    .venv/bin/python benchmarks/scout_bundled.py alexnet --epochs 16 --anneal-at 10,14

and a second (2026-12-07, a 2-core Intel Xeon, same schedule)::

    .venv/bin/python benchmarks/scout_bundled.py alexnet                       # 73.80 %
    .venv/bin/python benchmarks/scout_bundled.py alexnet --batch-size 64       # 77.28 %
    .venv/bin/python benchmarks/scout_bundled.py alexnet --batch-size 32       # 77.52 %
    .venv/bin/python benchmarks/scout_bundled.py alexnet --batch-size 64 --lr 0.02   # 76.84 %
    .venv/bin/python benchmarks/scout_bundled.py alexnet --batch-norm          # 75.85 %
    .venv/bin/python benchmarks/scout_bundled.py alexnet --batch-norm --lr 0.05   # 71.95 %
    .venv/bin/python benchmarks/scout_bundled.py zfnet                         # 73.78 %
    .venv/bin/python benchmarks/scout_bundled.py zfnet --batch-size 64         # 76.54 %
    .venv/bin/python benchmarks/scout_bundled.py alexnet --pool2-stride 1      # 74.39 %, 2.2x the time
    .venv/bin/python benchmarks/scout_bundled.py alexnet --pool2-stride 1 --widths 24,48,32,32,32   # 69.50 %

and a third (2026-12-07, the Intel Xeon, all 55,000 garments, 20 epochs annealed after 12 and 16;
benchmarks/README.md has the table)::

    .venv/bin/python benchmarks/scout_bundled.py alexnet --epochs 20 --anneal-at 12,16 --limit 55000 --weight-decay 1e-4              # 84.35 %
    .venv/bin/python benchmarks/scout_bundled.py alexnet --epochs 20 --anneal-at 12,16 --limit 55000 --widths 24,48,96,160,96       # 84.05 %
    .venv/bin/python benchmarks/scout_bundled.py alexnet --epochs 20 --anneal-at 12,16 --limit 55000 --weight-decay 1e-4 --smooth 0.02  # 85.09 %
    .venv/bin/python benchmarks/scout_bundled.py alexnet --epochs 60 --anneal-at 36,48 --limit 55000 --weight-decay 1e-4 --smooth 0.02  # 87.83 %
    .venv/bin/python benchmarks/scout_bundled.py zfnet --epochs 28 --anneal-at 17,23 --limit 55000 --weight-decay 1e-4 --smooth 0.02    # 86.42 %

Any option the script does not know goes to ``python -m vizlib.models.training``
as it is (``--batch-size``, ``--lr``, ...). ``--batch-norm`` puts a batch
normalisation after every convolution (a scouting question only: the
bundled nets have none, and its checkpoint does not load as a bundled net).

Needs Fashion-MNIST's training files (Debian's ``dataset-fashion-mnist``).
"""

from __future__ import annotations

import argparse
import functools

from torch import nn

import vizlib.models.training as T
from vizlib.models.bundled_nets import BUNDLED_BUILDERS


def _with_batch_norm(build, **kwargs) -> nn.Module:
    """The bundled net ``build(**kwargs)`` with a BatchNorm2d after each convolution of ``features``."""
    net = build(**kwargs)
    layers: list[nn.Module] = []
    for m in net.features:
        layers.append(m)
        if isinstance(m, nn.Conv2d):
            layers.append(nn.BatchNorm2d(m.out_channels))
    net.features = nn.Sequential(*layers)
    return net


def _with_pool2_stride(build, stride: int, **kwargs) -> nn.Module:
    """The AlexNet- or ZFNet-style net ``build(**kwargs)`` with its second max pooling (p2) at ``stride``.

    Padded so that at stride 1 it keeps the map's size (a 3x3 max filter): c3-c5 then see the
    garment at twice the resolution, as many map cells across it as AlexNet's c3 has across an
    ImageNet object of the same share of the image.
    """
    net = build(**kwargs)
    pools = [i for i, m in enumerate(net.features) if isinstance(m, nn.MaxPool2d)]
    net.features[pools[1]] = nn.MaxPool2d(3, stride=stride, padding=1 if stride == 1 else 0, ceil_mode=True)
    return net


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("arch", choices=sorted(BUNDLED_BUILDERS))
    ap.add_argument("--widths", help="filters of c1..c5 (AlexNet, ZFNet) or of groups 1..5 (VGG), comma-separated")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--anneal-at", default="5,7")
    ap.add_argument("--limit", type=int, default=20_000, help="training garments (default 20,000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smooth", type=float, default=0.1, help="first-layer smoothness penalty (default 0.1)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-norm", action="store_true", help="batch normalisation after every convolution")
    ap.add_argument("--pool2-stride", type=int, default=None,
                    help="AlexNet and ZFNet: the second pooling's stride (1: c3-c5 work on maps twice as large)")
    ap.add_argument("--out", default="/tmp/vizlib-scout")
    args, passed = ap.parse_known_args()

    tag = f"{args.arch}_w{args.widths.replace(',', '-') if args.widths else 'base'}_s{args.seed}"
    tag += f"_e{args.epochs}" * (args.epochs != 8) + f"_n{args.limit}" * (args.limit != 20_000)
    tag += f"_sm{args.smooth:g}" * (args.smooth != 0.1) + "_bn" * args.batch_norm
    tag += "".join("_" + w.lstrip("-").replace("-", "") for w in passed)
    build = BUNDLED_BUILDERS[args.arch]
    if args.widths:
        build = functools.partial(build, widths=tuple(int(w) for w in args.widths.split(",")))
    if args.batch_norm:
        build = functools.partial(_with_batch_norm, build)
    if args.pool2_stride is not None:
        tag += f"_p2s{args.pool2_stride}"
        build = functools.partial(_with_pool2_stride, build, args.pool2_stride)
    T.BUNDLED_BUILDERS[args.arch] = build
    rec = T.main([args.arch, "--epochs", str(args.epochs), "--anneal-at", args.anneal_at, "--limit", str(args.limit),
                  "--seed", str(args.seed), "--threads", str(args.threads), "--weight-decay", "5e-4",
                  "--dropout", "0", "--first-layer-smooth", str(args.smooth), "--channels-last", "--no-progress",
                  "--out", args.out, "--name", tag, *passed])
    last = rec["history"][-1]
    print(f"{tag}: {rec['parameters']:,} parameters; composed test {rec['test_accuracy']:.2%}, "
          f"plain {rec['plain_test_accuracy']:.2%}; {rec['wall_time_s']:.0f} s; last epoch train loss "
          f"{last['train_loss']:.4f}, val loss {last['val_loss']:.4f}")


if __name__ == "__main__":
    main()
