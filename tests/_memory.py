"""Shared by the memory tests: images made on demand, and a process's peak memory while a call runs."""

from __future__ import annotations

import threading
import time
from typing import Callable

import torch


class RandomImages(torch.utils.data.Dataset):
    """Random ``side``x``side`` grey images made on demand: nothing held but the index."""

    def __init__(self, n: int, side: int) -> None:
        self.n, self.side = n, side

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.randn(1, self.side, self.side, generator=torch.Generator().manual_seed(i))


def peak_rss_during(fn: Callable[[], object]) -> int:
    """The largest resident set size of this process, sampled every 2 ms while ``fn()`` runs."""
    import psutil

    proc = psutil.Process()
    peak, done = [proc.memory_info().rss], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.002)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        fn()
    finally:
        done.set()
        t.join()
    return peak[0]
