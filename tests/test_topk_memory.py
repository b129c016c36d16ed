"""Peak memory of streaming top-k mining does not grow with the number of images."""

import psutil
import torch

import vizlib as vl
from vizlib.models.bundled_nets import alexnet_fmnist

from ._memory import RandomImages, peak_rss_during


def test_peak_memory_flat_when_mining_10x_more_images():
    model = alexnet_fmnist(seed=0).eval()
    run = lambda n: vl.top_activations(model, "c5", RandomImages(n, 64), k=9, batch_size=32, progress=False)  # noqa: E731
    run(64)  # warm the allocator and the code paths
    base = psutil.Process().memory_info().rss
    small = peak_rss_during(lambda: run(64)) - base
    large = peak_rss_during(lambda: run(640)) - base
    # the mining state and one batch are all that is held: the peak grows by under 10 %
    # (of the process's memory at the start; a per-image leak of even 1 KB would exceed it)
    assert large - small < 0.10 * base, (small, large, base)
    assert large - small < 20 * 2**20, (small, large)
