"""The one definition of a filter's high-frequency energy: the measure, and the training penalty."""

from __future__ import annotations

import math

import pytest
import torch

import vizlib.models.training as T
from vizlib.core.errors import ArgumentError
from vizlib.core.spectra import high_frequency_energy, radial_frequency
from vizlib.methods.filters import high_frequency_share
from vizlib.models.bundled_nets import alexnet_fmnist


def test_radial_frequency_of_every_bin():
    f = radial_frequency(8)
    assert f.shape == (8, 8) and f[0, 0] == 0
    assert float(f[0, 1]) == pytest.approx(1 / 8) and float(f[4, 4]) == pytest.approx(math.sqrt(0.5))
    assert torch.equal(f, f.T)


def test_parseval_and_the_share_are_the_same_cut():
    w = torch.randn(5, 3, 7, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert float(high_frequency_energy(w, cutoff=-1.0)) == pytest.approx(float((w**2).sum()))
    shares = high_frequency_share(w, cutoff=0.25, pad=32).shares
    for i in range(5):
        mine = high_frequency_energy(w[i:i + 1], 0.25, 32) / high_frequency_energy(w[i:i + 1], -1.0, 32)
        assert float(mine) == pytest.approx(float(shares[i]), rel=1e-12)


def test_a_checkerboard_is_all_high_and_a_constant_all_low():
    board = torch.tensor([[1.0, -1.0], [-1.0, 1.0]], dtype=torch.float64).repeat(4, 4).view(1, 1, 8, 8)
    # zero-padding spreads the checkerboard's one frequency a little: most, not all, of it stays above
    assert float(high_frequency_energy(board, 0.25, 8)) == pytest.approx(64.0)
    assert float(high_frequency_energy(torch.ones(1, 1, 8, 8, dtype=torch.float64), 0.25, 8)) == pytest.approx(0.0)


def test_the_penalty_gradient_is_the_high_frequency_part():
    w = torch.randn(2, 1, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    T.smooth_penalty(w, 3.0).backward()
    mask = (radial_frequency(32) > T.SMOOTH_CUTOFF).double()
    high = torch.fft.ifft2(torch.fft.fft2(w.detach(), s=(32, 32)) * mask).real[..., :5, :5]
    assert torch.allclose(w.grad, 3.0 * high)


def test_bad_filters_are_refused():
    with pytest.raises(ArgumentError, match="F, C, k, k"):
        high_frequency_energy(torch.zeros(3, 3))
    with pytest.raises(ArgumentError, match="pad"):
        high_frequency_energy(torch.zeros(1, 1, 9, 9), pad=8)


def test_train_adds_the_penalty_to_the_first_convolution_only():
    """One SGD step with and without the penalty: c1 differs by exactly lr x strength x its high part."""
    from vizlib.core.data import fashion_mnist_sample

    data = fashion_mnist_sample().subset(slice(0, 1500, 30))  # 50 images: one step of 50
    prep = T.Preprocess(64, 0.3, 0.3)
    after = {}
    for k in (0.0, 4.0):
        model = alexnet_fmnist(seed=0).double()
        w0 = model.features[0].weight.detach().clone()
        config = T.TrainConfig(epochs=1, batch_size=50, seed=0, first_layer_smooth=k, renorm=False)
        h = T.train(model, data, _Double(prep), config, device="cpu", progress=False)
        assert h.steps == 1
        after[k] = {name: p.detach().clone() for name, p in model.named_parameters()}
    mask = (radial_frequency(32) > T.SMOOTH_CUTOFF).double()
    high = torch.fft.ifft2(torch.fft.fft2(w0, s=(32, 32)) * mask).real[..., :7, :7]
    assert torch.allclose(after[0.0]["features.0.weight"] - after[4.0]["features.0.weight"], 1e-2 * 4.0 * high,
                          atol=1e-12)
    assert all(torch.equal(after[0.0][n], after[4.0][n]) for n in after[0.0] if n != "features.0.weight")


class _Double:
    """A preprocess that gives float64 input (for the exact comparison above)."""

    def __init__(self, prep):
        self.prep = prep

    def batch(self, x):
        return self.prep.batch(x).double()
