"""Peak memory of streaming top-k mining does not grow with the number of images."""

import threading
import time

import psutil
import torch

import vizlib as vl
from vizlib.bundled_models import alexnet_fmnist


class Images(torch.utils.data.Dataset):
    """Random 64x64 grey images made on demand: nothing held but the index."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.randn(1, 64, 64, generator=torch.Generator().manual_seed(i))


def _peak_rss_during(fn) -> int:
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


def test_peak_memory_flat_when_mining_10x_more_images():
    model = alexnet_fmnist(seed=0).eval()
    run = lambda n: vl.top_activations(model, "c5", Images(n), k=9, batch_size=32, progress=False)  # noqa: E731
    run(64)  # warm the allocator and the code paths
    base = psutil.Process().memory_info().rss
    small = _peak_rss_during(lambda: run(64)) - base
    large = _peak_rss_during(lambda: run(640)) - base
    # the mining state and one batch are all that is held: the peak grows by under 10 %
    # (of the process's memory at the start; a per-image leak of even 1 KB would exceed it)
    assert large - small < 0.10 * base, (small, large, base)
    assert large - small < 20 * 2**20, (small, large)
