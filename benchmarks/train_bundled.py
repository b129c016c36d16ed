"""Retrain bundled nets with the exact commands recorded beside their checkpoints, and compare.

Usage (from the repository root)::

    python benchmarks/train_bundled.py                 # list the recorded commands
    python benchmarks/train_bundled.py zfnet_fmnist    # retrain into a scratch folder and compare

Each record (``vizlib/checkpoints/NAME.json``) holds the command that trained
the committed checkpoint. This script runs that command with ``--out`` pointed
at a scratch folder (the committed files are never touched), then prints the
recorded and the new accuracy on the full test set and on the committed
sample, and both wall times. Same command, same thread count, CPU: the
weights come out bit for bit the same; another thread count or device gives
a slightly different run (the acceptance bar is 0.5 points).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ROOT / "vizlib" / "checkpoints"


def records() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(CHECKPOINTS.glob("*.json"))}


def retrain(name: str, record: dict, out: Path) -> dict:
    words = shlex.split(record["command"])
    env = dict(os.environ)
    while words and "=" in words[0] and not words[0].startswith("-"):  # leading VAR=value
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    assert words[:3] == ["python", "-m", "vizlib.models.training"], record["command"]
    cmd = [sys.executable, "-m", "vizlib.models.training", *words[3:], "--out", str(out)]
    print("$", shlex.join(cmd), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, env=env)
    new = json.loads((out / f"{name}.json").read_text())
    new["script_wall_time_s"] = round(time.perf_counter() - t0, 1)
    return new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="records to retrain (default: list them)")
    parser.add_argument("--out", default=None, help="scratch folder (default: a new temporary one)")
    args = parser.parse_args()
    recs = records()
    if not args.names:
        for name, rec in recs.items():
            print(f"{name}: {rec['command']}  # {rec['wall_time_s']:.0f} s on {rec['device']}")
        return
    out = Path(args.out or tempfile.mkdtemp(prefix="vizlib-retrain-"))
    for name in args.names:
        old = recs[name]
        new = retrain(name, old, out)
        for key in ("test_accuracy", "sample_accuracy"):
            a, b = old[key], new[key]
            diff = None if a is None or b is None else 100 * (b - a)
            print(f"{name} {key}: recorded {a}, retrained {b}, difference {diff:+.2f} points" if diff is not None
                  else f"{name} {key}: recorded {a}, retrained {b}")
        print(f"{name} same weights: {old['sha256'] == new['sha256']}")
        print(f"{name} wall time: recorded {old['wall_time_s']} s, retrained {new['wall_time_s']} s "
              f"(training loop) on {new['device']}")


if __name__ == "__main__":
    main()
