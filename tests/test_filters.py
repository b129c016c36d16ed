"""vizlib.methods.filters: spectra of known filters, RMS and its renormalisation, dead filters (silent and
faint), the first layer's stride, the grid contrast of stamped projections."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import vizlib as vl
from vizlib.methods.filters import (dead_filters, filter_spectrum, first_layer_filters, first_stride, grid_contrast,
                                    rms_dominance)
from vizlib.methods.sparsity import layer_sparsity
from vizlib.models.bundled_nets import alexnet_fmnist
from vizlib.models.nets import alexnet, vgg16, zfnet
from vizlib.models.training import renormalize_filters

from ._nets import bundled_net


def test_dead_filters_silent_and_faint():
    net = bundled_net("alexnet")
    conv = net.model.features[0]
    with torch.no_grad():
        conv.bias[3] = -1e6  # never active
        conv.weight[5].mul_(1e-4)  # negligible weights
    s = layer_sparsity(net, torch.randn(5, 1, 64, 64), ["c1"], progress=False)
    d = dead_filters(net, s)
    assert d.silent == [3] and d.faint == [5] and d.dead == [3, 5]
    assert d.filters == 24 and math.isclose(d.share, 2 / 24)
    assert "2 of 24 c1 filters dead" in str(d)
    with pytest.raises(KeyError, match="was not counted"):
        dead_filters(net, s, layer="c2")


def test_filter_spectrum_bands():
    delta = torch.zeros(1, 1, 7, 7)
    delta[0, 0, 3, 3] = 1
    flat = filter_spectrum(delta, size=32)
    assert np.allclose(flat.profile, 1.0)
    assert sum(flat.bands.values()) == pytest.approx(1)
    # the share of a flat spectrum in each band is the band's share of the frequency plane
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(32), np.fft.fftfreq(32)))
    assert flat.bands["low"] == pytest.approx((f < 1 / 6).mean())
    assert flat.bands["high"] == pytest.approx((f >= 1 / 3).mean())
    r = torch.arange(9.0) - 4
    blur = torch.exp(-(r.view(-1, 1) ** 2 + r**2) / 8).expand(2, 3, 9, 9)  # a Gaussian: low frequencies
    assert filter_spectrum(blur, size=32).bands["low"] > 0.9
    checker = ((torch.arange(7).view(-1, 1) + torch.arange(7)) % 2 * 2 - 1).float().view(1, 1, 7, 7)
    assert filter_spectrum(checker, size=32).bands["high"] > 0.9
    with pytest.raises(ValueError, match="smaller than"):
        filter_spectrum(torch.ones(1, 1, 11, 11), size=8)


def test_rms_dominance_and_renormalisation():
    model = alexnet_fmnist(seed=0)
    conv = model.features[0]
    with torch.no_grad():
        conv.weight[7].mul_(50)
    r = rms_dominance(model)
    w = conv.weight.detach().double()
    rms = w.pow(2).mean(dim=(1, 2, 3)).sqrt()
    assert torch.allclose(r.rms, rms) and r.largest == pytest.approx(float(rms.max()))
    assert r.dominance == pytest.approx(float(rms.max() / rms.median())) and r.dominance > 20
    assert r.strongest(1) == [7]
    renormalize_filters(model, float(rms.median()))
    assert rms_dominance(model).dominance == pytest.approx(1.0)
    c2 = rms_dominance(model, "c2")  # a paper name pointing at the ReLU: the conv before it
    assert len(c2.rms) == model.features[3].out_channels


def test_grid_contrast():
    g = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.avg_pool2d(torch.randn(3, 1, 68, 68, generator=g), 5, 1)[..., :64, :64]
    grid = torch.zeros(1, 64, 64)
    grid[:, ::4, ::4] = 1
    assert grid_contrast(grid, 4) == pytest.approx(15**0.5)  # one phase of 16 holds all the energy
    assert grid_contrast(smooth, 4) < 0.1
    # content stamped on a stride-4 grid: phase (0, 0) carries 4x the energy of the other 15
    blocky = smooth * (1 + grid)
    expected = ((4 - 19 / 16) ** 2 + 15 * (1 - 19 / 16) ** 2) ** 0.5 / 4 / (19 / 16)
    assert grid_contrast(blocky, 4) == pytest.approx(expected, abs=0.08)
    assert math.isnan(grid_contrast(torch.zeros(1, 16, 16), 2))
    with pytest.raises(ValueError, match="stride of 1"):
        grid_contrast(grid, 1)
    with pytest.raises(ValueError, match="too small"):
        grid_contrast(torch.zeros(1, 6, 6), 4)


def test_first_layer_filters_and_stride():
    with torch.device("meta"):  # structure only
        full = {"alexnet": alexnet(), "zfnet": zfnet(), "vgg16": vgg16()}
    assert {k: first_stride(m) for k, m in full.items()} == {"alexnet": 4, "zfnet": 2, "vgg16": 1}
    net = bundled_net("zfnet")
    w = first_layer_filters(net)
    assert torch.equal(w, net.model.features[0].weight) and w.data_ptr() != net.model.features[0].weight.data_ptr()
    assert torch.equal(first_layer_filters(w), w)
    with pytest.raises(ValueError, match="no convolution"):
        first_layer_filters(torch.nn.Sequential(torch.nn.Linear(2, 2)))


def test_the_top_level_names_are_the_methods():
    assert vl.filter_spectrum is filter_spectrum and vl.dead_filters is dead_filters
