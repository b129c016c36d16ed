"""Measures of whether a net sees (issue 14): first-layer high-frequency share, change from
initialisation, and the share of whole-layer reconstruction energy on the object per stage."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from vizlib.core.data import fashion_mnist_sample
from vizlib.core.errors import ArgumentError, EmptyData, NoObjectRegion
from vizlib.core.examples import ExampleImage
from vizlib.core.measures import energy_inside, silhouette_mask, transform_mask
from vizlib.methods.filters import (first_layer_filters, high_frequency_share, image_high_frequency_share,
                                    init_similarity)
from vizlib.methods.reconstruction import object_energy_by_stage, whole_layer
from vizlib.methods.sparsity import stage_layers
from vizlib.models.bundled import bundled_record, initial_model, load_bundled
from vizlib.models.bundled_nets import BUNDLED_BUILDERS
from vizlib.models.training import renormalize_filters

from ._nets import bundled_net
from .conftest import hook_count, modes


def _band_area(cutoff: float, pad: int) -> float:
    f = np.fft.fftfreq(pad)
    return float((np.hypot(f[:, None], f[None, :]) > cutoff).mean())


# --------------------------------------------------------------------------- high-frequency share


def test_a_constant_filter_as_large_as_the_fft_has_no_high_frequencies():
    hf = high_frequency_share(torch.full((3, 2, 32, 32), 0.7), cutoff=0.25, pad=32)
    assert hf.median == 0.0 and torch.equal(hf.shares, torch.zeros(3, dtype=torch.float64))
    assert (hf.cutoff, hf.pad) == (0.25, 32)


def test_a_checkerboard_has_its_energy_above_a_quarter_cycle_per_pixel():
    board = (torch.arange(8).view(-1, 1) + torch.arange(8).view(1, -1)) % 2 * 2.0 - 1  # ±1, period 2 px
    w = board.view(1, 1, 8, 8)
    assert high_frequency_share(w, pad=8).median == pytest.approx(1.0, abs=1e-12)  # all at (0.5, 0.5)
    assert high_frequency_share(w, pad=32).median > 0.9  # zero-padding spreads it a little


def test_white_noise_gives_the_band_its_share_of_the_area():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(4000, 1, 11, 11, generator=g)
    hf = high_frequency_share(w, cutoff=0.25, pad=32)
    # A white filter's expected power is the same at every frequency, so its share is the band's area.
    assert float(hf.shares.mean()) == pytest.approx(_band_area(0.25, 32), abs=0.005)
    assert hf.median == pytest.approx(_band_area(0.25, 32), abs=0.01)


def test_high_frequency_share_matches_numpy_brute_force():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(5, 3, 7, 7, generator=g, dtype=torch.float64)
    for cutoff, pad in [(0.25, 32), (0.1, 16), (0.4, 7)]:
        f = np.fft.fftfreq(pad)
        band = np.hypot(f[:, None], f[None, :]) > cutoff
        want = []
        for k in range(5):
            p = sum(np.abs(np.fft.fft2(w[k, c].numpy(), s=(pad, pad))) ** 2 for c in range(3))
            want.append(p[band].sum() / p.sum())
        got = high_frequency_share(w, cutoff, pad)
        np.testing.assert_allclose(got.shares.numpy(), want, rtol=1e-12)
        assert got.median == pytest.approx(float(np.median(want)))


def test_an_images_share_matches_numpy_brute_force_and_ignores_its_mean_and_scale():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(4, 3, 12, 10, generator=g, dtype=torch.float64)
    f = np.hypot(np.fft.fftfreq(12)[:, None], np.fft.fftfreq(10)[None, :])
    want = []
    for k in range(4):
        p = sum(np.abs(np.fft.fft2(x[k, c].numpy() - x[k, c].numpy().mean())) ** 2 for c in range(3))
        want.append(p[f > 0.25].sum() / p.sum())
    got = image_high_frequency_share(x, 0.25)
    np.testing.assert_allclose(got.shares.numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(image_high_frequency_share((x - 0.3) / 0.2).shares.numpy(), want, rtol=1e-9)
    assert got.pad == 10 and got.median == pytest.approx(float(np.median(want)))


def test_an_images_share_of_a_checkerboard_a_ramp_and_a_flat_image():
    board = ((torch.arange(8).view(-1, 1) + torch.arange(8).view(1, -1)) % 2).double()
    ramp = torch.linspace(0, 1, 64).repeat(64, 1)
    assert image_high_frequency_share(board.view(1, 8, 8)).median == pytest.approx(1.0, abs=1e-12)
    assert float(image_high_frequency_share(ramp.view(1, 64, 64)).median) < 0.05  # smooth: little above 0.25
    flat = image_high_frequency_share(torch.full((2, 1, 6, 6), 5.0))
    assert torch.isnan(flat.shares).all()
    with pytest.raises(ArgumentError, match="cutoff"):
        image_high_frequency_share(board.view(1, 8, 8), cutoff=-1)
    with pytest.raises(ArgumentError, match="shape"):
        image_high_frequency_share(torch.zeros(8, 8))


def test_high_frequency_share_reads_a_model_and_a_net_and_refuses_bad_settings():
    net = bundled_net("alexnet")
    hf = high_frequency_share(net)
    assert torch.equal(hf.shares, high_frequency_share(first_layer_filters(net.model)).shares)
    assert len(hf.shares) == first_layer_filters(net).shape[0]
    zero = torch.zeros(3, 1, 3, 3)
    zero[0, 0, 1, 1] = 1  # a delta: flat spectrum; two all-zero filters: NaN, left out of the median
    out = high_frequency_share(zero, pad=32)
    assert torch.isnan(out.shares[1:]).all() and out.median == pytest.approx(_band_area(0.25, 32))
    with pytest.raises(ArgumentError, match="cutoff"):
        high_frequency_share(net, cutoff=-0.1)
    with pytest.raises(ValueError, match="smaller than"):
        high_frequency_share(net, pad=4)


# --------------------------------------------------------------------------- change from initialisation


def test_init_similarity_of_a_model_with_itself_a_negated_copy_and_an_orthogonal_one():
    model = BUNDLED_BUILDERS["zfnet"](seed=3)
    assert init_similarity(model, model).median == pytest.approx(1.0)
    assert init_similarity(model, model.state_dict()).median == pytest.approx(1.0)
    negated = first_layer_filters(model).neg()
    sims = init_similarity(model, negated).similarities
    assert torch.allclose(sims, torch.full_like(sims, -1.0))
    assert init_similarity(first_layer_filters(model) * 5, model).median == pytest.approx(1.0)  # rescaling is ignored
    a = torch.zeros(2, 1, 2, 2); a[0, 0, 0, 0] = 1; a[1, 0, 1, 1] = 3
    b = torch.zeros(2, 1, 2, 2); b[0, 0, 0, 1] = 2; b[1, 0, 1, 1] = 1; b[1, 0, 0, 0] = 1
    sims = init_similarity(a, b).similarities
    assert sims.tolist() == pytest.approx([0.0, 2 ** -0.5])
    assert init_similarity(a, b).median == pytest.approx((0.0 + 2 ** -0.5) / 2)  # mean of the middle two


def test_init_similarity_refuses_mismatched_layers():
    with pytest.raises(ValueError, match="differ"):
        init_similarity(BUNDLED_BUILDERS["alexnet"](seed=0), BUNDLED_BUILDERS["zfnet"](seed=0))
    with pytest.raises(ValueError, match="state dict"):
        init_similarity(BUNDLED_BUILDERS["alexnet"](seed=0), {"fc.weight": torch.zeros(2, 2)})


def test_initial_model_is_what_training_started_from():
    for arch, variant in [("alexnet", None), ("zfnet", None), ("vgg16", None), ("alexnet", "norenorm")]:
        record = bundled_record(arch, variant)
        rebuilt = initial_model(arch, variant)
        fresh = BUNDLED_BUILDERS[arch](seed=record["seed"], num_classes=10)
        for (k, v), (k2, v2) in zip(rebuilt.state_dict().items(), fresh.state_dict().items()):
            assert k == k2 and torch.equal(v, v2)
        assert not rebuilt.training
    # The ZFNet-style snapshot "after epoch 0" is the initialisation, renormalised once, stored in half precision.
    start = initial_model("zfnet")
    renormalize_filters(start)
    snap = first_layer_filters(load_bundled("zfnet", epoch=0))
    assert torch.equal(first_layer_filters(start).half().float(), snap.float())
    assert init_similarity(load_bundled("zfnet", epoch=0), initial_model("zfnet")).median > 0.999999


# --------------------------------------------------------------------------- energy on the object per stage


def _sample(n: int) -> list[ExampleImage]:
    s = fashion_mnist_sample()
    return [ExampleImage(f"sample {i}", s.images[i], int(s.labels[i]), s.classes[int(s.labels[i])],
                         silhouette_mask(s.images[i]), i) for i in range(n)]


def test_object_energy_by_stage_equals_energy_inside_of_whole_layer():
    net = bundled_net("alexnet")
    images = _sample(7)
    before = modes(net.model)
    got = object_energy_by_stage(net, iter(images), batch_size=3)
    layers = stage_layers(net.model)
    assert got.layers == layers and got.images == 7
    masks = [transform_mask(net, im.mask) for im in images]
    for j, layer in enumerate(layers):
        px = whole_layer(net, images, layer)
        want = [energy_inside(px[i], masks[i]) for i in range(7)]
        # float32 convolutions of batches of 3 and of 7 may round differently, hence not exact
        np.testing.assert_allclose(got.shares[:, j], want, rtol=1e-5)
        assert got.inside[layer] == pytest.approx(float(np.nanmedian(want)), rel=1e-5)
    assert got.area == pytest.approx(float(np.median([float(m.double().mean()) for m in masks])))
    assert got.ratio("c1") == pytest.approx(got.inside["c1"] / got.area)
    assert hook_count(net.model) == 0 and modes(net.model) == before
    # pictures with their masks given apart give the same numbers, and so does any batch size
    apart = object_energy_by_stage(net, [im.image for im in images], (im.mask for im in images), layers=["c2"],
                                   batch_size=7)
    np.testing.assert_allclose(apart.shares[:, 0], got.shares[:, 1], rtol=1e-5)


def test_object_energy_by_stage_bad_input():
    net = bundled_net("zfnet")
    images = _sample(2)
    with pytest.raises(NoObjectRegion):
        object_energy_by_stage(net, [images[0].image])  # a bare picture, no mask
    with pytest.raises(NoObjectRegion, match="one mask per image"):
        object_energy_by_stage(net, [im.image for im in images], [images[0].mask])
    with pytest.raises(EmptyData):
        object_energy_by_stage(net, [])
    with pytest.raises(ArgumentError):
        object_energy_by_stage(net, images, batch_size=0)


# --------------------------------------------------------------------------- chapter 1's table and claims


def _row(arch, variant, high, init, inside, area):
    from vizlib.chapters.ch01 import Seeing
    from vizlib.methods.filters import HighFrequencyShare, InitSimilarity
    from vizlib.methods.reconstruction import StageEnergy

    layers = [f"c{i + 1}" for i in range(len(inside))]
    energy = StageEnergy(layers, dict(zip(layers, inside)), area, 10, {k: 0 for k in layers},
                         np.array([inside]), np.array([area]))
    return Seeing(f"{arch} {variant}", arch, variant, HighFrequencyShare(high, torch.tensor([high]), 0.25, 32),
                  HighFrequencyShare(0.8, torch.tensor([0.8]), 0.25, 32), InitSimilarity(init, torch.tensor([init])),
                  energy)


def test_seeing_claims_follow_from_the_printed_numbers():
    from vizlib.chapters.ch01 import seeing_claims, seeing_table

    rows = [_row("alexnet", None, 0.35, 0.5, [0.375, 0.5], 0.125),      # meets every bar, exactly at three
            _row("zfnet", None, 0.36, 0.51, [0.37, 0.9], 0.125),        # misses each, one stage below 3×
            _row("vgg16", None, 0.9, 0.1, [0.6, 0.7], 0.5),             # above the object, 3× unreachable
            _row("alexnet", "norenorm", 0.9, 0.1, [0.4, float("nan")], 0.2)]
    verdicts = [c.verdict for c in seeing_claims(rows)]
    assert verdicts == [
        "supported", "not supported here",                                    # high frequencies: renormalised A, Z only
        "supported", "not supported here", "supported", "supported",          # initialisation: every net
        "supported", "not supported here", "not testable here", "not testable here",  # energy
        "not testable here", "not testable here", "not testable here"]  # accuracy: no record in these rows
    below = seeing_claims([_row("vgg16", None, 0.9, 0.1, [0.5, 0.7], 0.5)])[-2]  # [-1]: accuracy
    assert below.verdict == "not supported here" and "at or below the object's share at c1" in below.measured
    t = seeing_table(rows)
    assert t.rows[0][:4] == ["alexnet None", "0.350 (0.800)", "0.500", "0.125"]
    assert t.rows[0][4:] == ["c1 0.375 · c2 0.500", 10]


def test_seeing_measures_on_the_committed_checkpoints():
    from vizlib.chapters.ch01 import seeing_measures

    (row,) = seeing_measures(3, nets=[("zfnet", None)])
    net = load_bundled("zfnet")
    start = initial_model("zfnet")
    assert row.high.median == high_frequency_share(net).median
    assert row.high_init.median == high_frequency_share(start).median
    assert row.init.median == init_similarity(net, start).median
    assert row.energy.images == 3 and row.energy.layers == stage_layers(net.model)


def test_the_centred_share_leaves_out_the_garments_too_small_to_hold_half_of_the_worst_tenth():
    from vizlib.chapters.ch01 import OcclusionSeeing

    # 100 positions: the worst tenth is 10 of them, so a garment needs 6 square centres to hold more than half
    o = OcclusionSeeing(np.array([0.5, 0.5, 0.5, 0.5]), np.array([0.6, 0.4, 0.5, 0.9]), 9, 3,
                        np.array([0.06, 0.2, 0.5, 0.05]), 100)
    assert o.reachable.tolist() == [True, True, True, False]  # 5 centres on the last garment: 5 of 10 at best
    assert o.testable == 3 and o.centred == pytest.approx(1 / 3)  # only the first has more than half on it
    # without the positions (as recorded before), every image counts
    legacy = OcclusionSeeing(np.array([0.5, 0.5]), np.array([0.6, 0.4]), 9, 3)
    assert legacy.testable == 2 and legacy.centred == 0.5
    none = OcclusionSeeing(np.array([0.5]), np.array([0.9]), 9, 3, np.array([0.01]), 100)
    assert none.testable == 0 and np.isnan(none.centred)


def test_occlusion_seeing_records_each_garments_share_of_the_positions():
    from vizlib.chapters.ch01 import occlusion_seeing
    from vizlib.core.composed import bundled_sample

    o = occlusion_seeing(load_bundled("alexnet"), 2, size=16, stride=8)
    assert o.positions == 7 * 7  # (64 - 16) / 8 + 1 a side
    sample = bundled_sample()
    for i in range(2):
        m = np.asarray(sample.example(i).mask, bool)
        centres = np.arange(7) * 8 + 7.5  # each square's centre, rounded to the nearest pixel as the readings do
        idx = np.clip(np.round(centres).astype(int), 0, 63)
        assert o.object_share[i] == pytest.approx(m[np.ix_(idx, idx)].mean())
