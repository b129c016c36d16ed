"""Tests for vizlib.methods.embedding: patch sampling, t-SNE, grid fill, neighbour agreement, layer choice.

Chapter 4's figures, table, claims and explorer are tested in test_ch04.py."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from torch import nn

import vizlib as vl
from vizlib.methods import embedding as E
from vizlib.models import alexnet_fmnist, vgg_fmnist
from vizlib.models.training import Preprocess

from .conftest import hook_count, modes


def tiny(seed: int = 0) -> nn.Sequential:
    """conv 3x3 pad 1 -> ReLU (in place) -> pool 2 -> conv 3x3 pad 1 -> ReLU -> pool 2 -> dense."""
    g = torch.Generator().manual_seed(seed)
    m = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
        nn.Conv2d(3, 2, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Linear(8, 2),
    )
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return m


def images(n: int = 12, size: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 1, size, size, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- sampling


def test_features_are_the_activations_at_the_sampled_positions():
    m, x = tiny(), images()
    p = E.patch_features(m, "1", x, n=50, progress=False, device="cpu")
    with torch.no_grad():
        act = m[1](m[0](x))
    want = act[torch.as_tensor(p.image_index), :, torch.as_tensor(p.position[:, 0]), torch.as_tensor(p.position[:, 1])]
    np.testing.assert_array_equal(p.features, want.numpy())
    assert p.features.shape == (50, 3) and p.map_size == (8, 8) and p.rfield.size == 3


def test_stratified_over_images_and_positions():
    m, x = tiny(), images(10)
    p = E.patch_features(m, "1", x, n=137, progress=False, seed=3)
    per_image = np.bincount(p.image_index, minlength=10)
    assert per_image.max() - per_image.min() <= 1 and per_image.sum() == 137
    for i in range(10):  # distinct positions within an image
        pos = p.position[p.image_index == i]
        assert len({tuple(v) for v in pos.tolist()}) == len(pos)
    flat = p.position[:, 0] * 8 + p.position[:, 1]
    counts = np.bincount(flat, minlength=64)[E._valid_positions(p.rfield, 8, 8, 8, 8, 0.5)]
    assert counts.max() - counts.min() <= 1  # every usable position used equally often
    assert p.image_index.tolist() == sorted(p.image_index.tolist())


def test_fewer_patches_than_images_spreads_one_per_image():
    p = E.patch_features(tiny(), "1", images(12), n=5, progress=False)
    assert len(set(p.image_index.tolist())) == 5


def test_mostly_padding_positions_are_left_out():
    m = tiny()
    # c1 (field 3, start -1) on 8x8: the corners see 2x2 = 4 of 9 pixels (< half), the edges 6 of 9
    p = E.patch_features(m, "1", images(4), n=240, progress=False)
    assert p.valid_positions == 60 and p.available == 240 == E.available_patches(m, "1", 4, 8)
    corners = {(0, 0), (0, 7), (7, 0), (7, 7)}
    assert not corners & {tuple(v) for v in p.position.tolist()}
    # the second conv (field 8, stride 2, start -3) on 8x8: corners 5x5 = 25 of 64 (< half) are left out
    q = E.patch_features(m, "4", images(4), n=48, progress=False)
    assert q.valid_positions == 12 and E.available_patches(m, "4", 4, (8, 8)) == 48
    assert not {(0, 0), (0, 3), (3, 0), (3, 3)} & {tuple(v) for v in q.position.tolist()}
    for (y, x), box in zip(q.position.tolist(), q.boxes.tolist()):
        t, l, b, r = vl.unit_box(m, "4", y, x, 8)
        assert box == [t, l, b, r]
        assert (b - t) * (r - l) >= 0.5 * 64


def test_boxes_match_unit_box_on_a_bundled_net():
    m = vgg_fmnist(seed=0)
    p = E.patch_features(m, "c2_1", images(3, 32), n=30, progress=False)
    for (y, x), box in zip(p.position.tolist(), p.boxes.tolist()):
        assert tuple(box) == vl.unit_box(m, "c2_1", y, x, 32)


def test_several_layers_in_one_pass_equal_separate_calls():
    m, x = tiny(), images()
    both = E.patch_features(m, ["1", "4"], x, n=40, progress=False, seed=1)
    one = E.patch_features(m, "4", x, n=40, progress=False, seed=1)
    assert set(both) == {"1", "4"}
    # the plan of each layer depends only on the seed and the order of the layers
    np.testing.assert_array_equal(both["1"].features, E.patch_features(m, "1", x, n=40, progress=False,
                                                                       seed=1).features)
    assert both["4"].features.shape == one.features.shape


def test_in_place_relu_does_not_overwrite_a_captured_conv_output():
    m, x = tiny(), images()
    p = E.patch_features(m, ["0", "4"], x, n=60, progress=False)["0"]
    with torch.no_grad():
        conv = m[0](x)
    want = conv[torch.as_tensor(p.image_index), :, torch.as_tensor(p.position[:, 0]), torch.as_tensor(p.position[:, 1])]
    np.testing.assert_allclose(p.features, want.numpy(), rtol=0, atol=0)
    assert (p.features < 0).any()  # the pre-ReLU values survived


def test_model_left_as_found():
    m = tiny().train()
    m[2].training = False
    flags = [p.requires_grad for p in m.parameters()]
    m[0].weight.requires_grad_(False)
    flags = [p.requires_grad for p in m.parameters()]
    before = [p.detach().clone() for p in m.parameters()]
    mode = modes(m)
    E.patch_features(m, ["0", "4"], images(), n=30, progress=False)
    assert hook_count(m) == 0 and modes(m) == mode
    assert [p.requires_grad for p in m.parameters()] == flags
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters()))
    with pytest.raises(ValueError):
        E.patch_features(m, "1", images(), n=10**6, progress=False)
    assert hook_count(m) == 0 and modes(m) == mode


def test_labels_and_thumbnails():
    m, x = tiny(), images(6)
    p = E.patch_features(m, "1", x, n=30, labels=[0, 1, 2, 0, 1, 2], classes=["a", "b", "c"], thumb=5,
                         progress=False)
    np.testing.assert_array_equal(p.labels, np.array([0, 1, 2, 0, 1, 2])[p.image_index])
    assert p.thumbnails.shape == (30, 5, 5) and p.thumbnails.dtype == np.uint8
    assert p.crop(0, x).shape == (3, 3)


def test_prepared_images_bundled_and_full_size():
    sample = vl.fashion_mnist_sample().subset(slice(0, 6))
    net = vl.Net("vgg16", "bundled", vgg_fmnist(seed=0), list(sample.classes), Preprocess(32, 0.286, 0.353),
                 (0.286,), (0.353,), 32, "test")
    data = vl.PreparedImages(sample, net)
    x, y = data[2]
    assert x.shape == (1, 32, 32) and y == int(sample.labels[2])
    torch.testing.assert_close(data.batch([2])[0], x)
    p = E.patch_features(net, "c2_1", data, n=12, progress=False)
    np.testing.assert_array_equal(p.labels, sample.labels[p.image_index])
    assert p.classes == sample.classes and p.mean == (0.286,)
    full = vl.load("alexnet", "random")
    xf, _ = vl.PreparedImages(sample, full)[0]
    assert xf.shape == (3, 224, 224)


# --------------------------------------------------------------------------- bad input


def test_n_larger_than_the_available_patches():
    with pytest.raises(ValueError, match=r"offers only 240 .*4 images × 60 usable positions"):
        E.patch_features(tiny(), "1", images(4), n=241, progress=False)
    with pytest.raises(ValueError, match="positive"):
        E.patch_features(tiny(), "1", images(4), n=0, progress=False)


def test_layer_with_fewer_than_two_positions():
    with pytest.raises(ValueError, match=r"1×1 feature map .*pick a lower layer"):
        E.patch_features(tiny(), "5", images(3, 4), n=2, progress=False)


def test_other_bad_input():
    with pytest.raises(KeyError):
        E.patch_features(tiny(), "7", images(3), n=2, progress=False)  # dense
    with pytest.raises(TypeError, match="PreparedImages"):
        E.patch_features(tiny(), "1", vl.fashion_mnist_sample(), n=2, progress=False)
    with pytest.raises(ValueError, match="one class per image"):
        E.patch_features(tiny(), "1", images(3), n=2, labels=[0, 1], progress=False)
    with pytest.raises(ValueError, match="min_inside"):
        E.patch_features(tiny(), "1", images(3), n=2, min_inside=0, progress=False)


def test_perplexity_not_below_n():
    x = np.random.default_rng(0).normal(size=(20, 4))
    with pytest.raises(ValueError, match=r"perplexity 20 is not below the number of points \(20\)"):
        E.embed_patches(x, perplexity=20)
    with pytest.raises(ValueError, match="positive"):
        E.embed_patches(x, perplexity=0)
    with pytest.raises(ValueError, match="at least 2"):
        E.embed_patches(x[:1], perplexity=0.5)
    with pytest.raises(ValueError, match="unknown t-SNE method"):
        E.embed_patches(x, perplexity=5, method="umap")


# --------------------------------------------------------------------------- embedding


def blobs(n: int = 150, d: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    centres = rng.normal(size=(3, d)) * 6
    return centres[labels] + rng.normal(size=(n, d)), labels


def test_same_seed_same_embedding_sklearn():
    x, _ = blobs()
    a = E.embed_patches(x, perplexity=10, method="sklearn", seed=1, n_jobs=1)
    b = E.embed_patches(x, perplexity=10, method="sklearn", seed=1, n_jobs=1)
    np.testing.assert_array_equal(a.xy, b.xy)
    assert a.method == "scikit-learn" and a.pca_dims == 50 and 0 < a.pca_variance <= 1
    assert a.xy.shape == (150, 2)


def test_same_seed_same_embedding_opentsne():
    pytest.importorskip("openTSNE")
    x, labels = blobs(200)
    a = E.embed_patches(x, perplexity=10, method="opentsne", seed=2, n_jobs=1)
    b = E.embed_patches(x, perplexity=10, method="opentsne", seed=2, n_jobs=1)
    np.testing.assert_array_equal(a.xy, b.xy)
    assert a.method == "openTSNE"
    # the clusters survive the embedding: nearest neighbours share their blob
    assert E.neighbour_agreement(a.xy, labels, np.arange(200), k=5)[0] > 0.95


def test_schedules_reach_opentsne_as_stated(monkeypatch):
    openTSNE = pytest.importorskip("openTSNE")
    calls = []
    real = openTSNE.TSNE

    def spy(**kwargs):
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(openTSNE, "TSNE", spy)
    x, labels = blobs(200)
    fast = E.embed_patches(x, perplexity=10, method="opentsne", n_jobs=1)
    standard = E.embed_patches(x, perplexity=10, method="opentsne", n_jobs=1, schedule="standard")
    monkeypatch.setattr(E, "BH_MAX_POINTS", 100)  # 200 points: the FFT path
    fft = E.embed_patches(x, perplexity=10, method="opentsne", n_jobs=1)
    fft_standard = E.embed_patches(x, perplexity=10, method="opentsne", n_jobs=1, schedule="standard")
    got = [(c["negative_gradient_method"], c["early_exaggeration_iter"], c["n_iter"], c.get("ints_in_interval"))
           for c in calls]
    assert got == [("bh", 125, 250, None), ("bh", 250, 500, None), ("fft", 125, 250, 1.5), ("fft", 250, 500, None)]
    assert E.TSNE_SCHEDULE["fast"] == {"early_exaggeration_iter": 125, "n_iter": 250}
    for e in (fast, standard, fft, fft_standard):
        assert E.neighbour_agreement(e.xy, labels, np.arange(200), k=5)[0] > 0.95
    assert not np.array_equal(fast.xy, standard.xy)
    with pytest.raises(ValueError, match="schedule"):
        E.embed_patches(x, perplexity=10, schedule="slow")


def test_falls_back_to_sklearn_without_opentsne(monkeypatch):
    monkeypatch.setitem(sys.modules, "openTSNE", None)  # makes `import openTSNE` fail
    assert E.tsne_backend() == "scikit-learn"
    e = E.embed_patches(blobs(60, 5)[0], perplexity=5, n_jobs=1)
    assert e.method == "scikit-learn" and "openTSNE is not installed" in e.note and "no PCA" in e.note


# --------------------------------------------------------------------------- grid fill


def test_grid_fill_on_a_hand_made_layout():
    pts = np.array([[0, 0], [4, 0], [0, 4], [4, 4], [1, 1]], dtype=float)
    g = E.fill_grid(pts, 4, extent=(0, 4, 0, 4))
    # cell centres at 0.5, 1.5, 2.5, 3.5; row 0 is the top (y = 3.5); ties go to the lower index
    assert g.index.tolist() == [
        [2, 2, 3, 3],
        [2, 4, 3, 3],
        [4, 4, 4, 1],
        [0, 4, 1, 1],
    ]
    assert g.distance[3, 0] == pytest.approx(np.sqrt(0.5))
    assert E.fill_grid(pts, 4).extent == (0.0, 4.0, 0.0, 4.0)  # the default: the square around the points


def test_grid_fill_is_exact_nearest_neighbour():
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(0)
    pts = rng.normal(size=(500, 2))
    g = E.fill_grid(pts, (23, 31))
    cx, cy = g.centres()
    d, _ = cKDTree(pts).query(np.stack([cx.ravel(), cy.ravel()], 1))
    np.testing.assert_allclose(g.distance.ravel(), d, rtol=0, atol=1e-12)
    mine = np.hypot(pts[g.index.ravel(), 0] - cx.ravel(), pts[g.index.ravel(), 1] - cy.ravel())
    np.testing.assert_allclose(mine, d, rtol=0, atol=1e-12)


def test_grid_mosaic_places_thumbnails():
    pts = np.array([[0, 0], [1, 1]], dtype=float)
    g = E.fill_grid(pts, 2)
    thumbs = np.stack([np.full((3, 3), 10, np.uint8), np.full((3, 3), 200, np.uint8)])
    mos = g.mosaic(thumbs)
    assert mos.shape == (6, 6) and mos[0, 5] == 200 and mos[5, 0] == 10


def test_grid_bad_input():
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        E.fill_grid(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="at least one cell"):
        E.fill_grid(np.zeros((3, 2)), 0)
    with pytest.raises(ValueError, match="x1 > x0"):
        E.fill_grid(np.zeros((3, 2)), 2, extent=(1, 0, 0, 1))


# --------------------------------------------------------------------------- agreement


def test_neighbour_agreement_skips_the_same_image():
    pts = np.array([[0.0], [0.05], [0.1], [5.0], [0.25]])
    labels = np.array([0, 0, 1, 1, 0])
    img = np.array([0, 0, 1, 2, 3])
    mean, share = E.neighbour_agreement(pts, labels, img, k=1)
    # 0.0 -> 0.1 (other image, class 1): 0; 0.05 -> 0.1: 0; 0.1 -> 0.05: 0; 5.0 -> 0.25: 0; 0.25 -> 0.1: 0
    assert share.tolist() == [0, 0, 0, 0, 0]
    _, share2 = E.neighbour_agreement(pts, labels, img, k=2)
    # 0.0 -> 0.1, 0.25: one of two; 0.1 -> 0.05, 0.0: none; 5.0 -> 0.25, 0.1: one; 0.25 -> 0.1, 0.05: one
    assert share2.tolist() == [0.5, 0.5, 0.0, 0.5, 0.5]
    with pytest.raises(ValueError, match="fewer than k"):
        E.neighbour_agreement(pts, labels, img, k=4)


def test_neighbourhood_preservation_counts_shared_neighbours():
    feats = np.array([[0.0, 0], [1, 0], [3, 0], [10, 0], [11.5, 0]])
    # feature-space 1-NN: 0->1, 1->0, 2->1, 3->4, 4->3
    assert E.neighbourhood_preservation(feats, feats * 3 + 7, k=1) == 1.0  # a similarity keeps all
    assert E.neighbourhood_preservation(feats, np.array([[0.0], [1], [3], [11.5], [10]]), k=1) == 1.0
    swapped = np.array([[0.0], [10], [11.5], [1], [3]])
    # plane 1-NN: 0->3, 1->2, 2->1, 3->0, 4->3; shared with the features': 2->1 and 4->3
    assert E.neighbourhood_preservation(feats, swapped, k=1) == pytest.approx(2 / 5)
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(300, 5))
    random_plane = rng.normal(size=(300, 2))
    assert E.neighbourhood_preservation(pts, random_plane, k=10) < 0.1  # chance is k / n = 0.033
    emb = E.Embedding(pts[:, :2].copy(), "test", 5.0, 0, 5, 1.0, 0.0)
    assert E.neighbourhood_preservation(pts[:, :2], emb, k=10) == 1.0
    with pytest.raises(ValueError, match="same points"):
        E.neighbourhood_preservation(pts, random_plane[:10])
    with pytest.raises(ValueError, match="k must be"):
        E.neighbourhood_preservation(pts, random_plane, k=300)


def test_chance_level():
    labels = np.array([0, 0, 1, 1, 0])
    img = np.array([0, 0, 1, 2, 3])
    assert E._chance(labels, img) == pytest.approx((1 / 3 + 1 / 3 + 0.25 + 0.25 + 0.5) / 5)


def agreement_of_a_small_space():
    """A tiny net's patches of 30 images in 3 classes, their plane, and its class agreement at k = 5."""
    p = E.patch_features(tiny(), "4", images(30), n=120, labels=np.arange(30) % 3, progress=False)
    space = E.representation_space(p, perplexity=10, method="sklearn", cells=8, n_jobs=1)
    return p, space, E.class_agreement(space, k=5, network="tiny")


def test_class_agreement_and_table():
    p, space, a = agreement_of_a_small_space()
    assert a.layer == "4" and a.n == 120 and 0 <= a.feature <= 1 and 0 <= a.embedding <= 1
    assert a.chance == pytest.approx(E._chance(p.labels, p.image_index))


# --------------------------------------------------------------------------- layers, figures, widget


def test_equivalent_layers():
    assert E.equivalent_layers(vl.vgg16(), 224).layers == ("c4_1", "c5_3")
    assert E.equivalent_layers(vgg_fmnist(seed=0), 32).layers == ("c2_1", "c5_3")
    choice = E.equivalent_layers(alexnet_fmnist(seed=0), 64)
    assert choice.high == "c5" and "chosen" in choice.table.header
    assert choice.table.title.startswith("alexnet at 64×64")  # a bare module: its architecture key
    named = E.equivalent_layers(vl.load("alexnet", "bundled"), 64)  # a Net: its title, as every table names it
    assert named.table.title.startswith("AlexNet-style (bundled) at 64×64") and named.layers == choice.layers


def test_filter_visualisations_match_top_patches():
    m, x = tiny(), images(10)
    p = E.patch_features(m, "4", x, n=40, progress=False)
    ref = vl.top_activations(m, "4", x, k=1, progress=False)
    torch.testing.assert_close(p.top.values, ref.values)
    assert torch.equal(p.top.image_index, ref.image_index) and torch.equal(p.top.position, ref.position)
    vis = E.filter_visualisations(m, p, x, [1, 0])
    want = vl.top_patches(m, "4", x, k=1, channels=[0, 1], progress=False)
    for c in (0, 1):
        np.testing.assert_array_equal(vis[c], want.projection_images(c)[0])
    assert E.top_filters(p, 0, 2) == np.argsort(-p.features[0], kind="stable")[:2].tolist()
    assert hook_count(m) == 0 and E.filter_visualisations(m, p, x, [0])[0] is vis[0]  # cached


def regions_of_a_small_space():
    """A tiny net's patches, their plane, three default regions and the patches chosen in them (checked)."""
    m, x = tiny(), images(30)
    p = E.patch_features(m, "1", x, n=200, labels=np.arange(30) % 3, progress=False)
    space = E.representation_space(p, perplexity=10, method="sklearn", cells=10, n_jobs=1)
    regions = E.default_regions(space.embedding, n=3)
    assert len(regions) == 3 and all(0 <= r.x <= 1 for r in regions)
    chosen = E.select_patches(space, regions)
    assert all(len(c) == 1 for c in chosen)
    return m, x, p, space, regions


def test_regions_and_selected_patches():
    regions_of_a_small_space()
    with pytest.raises(ValueError, match="fractions"):
        E.Region(1.5, 0.5)


def test_one_data_path_and_one_stopping_capture():
    """The data comes through core.batches (PreparedImages is core's) and the pass stops at the deepest layer."""
    from vizlib.core import batches as core_batches

    assert E.PreparedImages is core_batches.PreparedImages is vl.PreparedImages
    assert not hasattr(E, "_Stop") and not hasattr(E, "_iterate")
    m, x = tiny(), images(6)
    calls = []
    handle = m[7].register_forward_hook(lambda *a: calls.append(1))  # the dense layer above "4"
    try:
        E.patch_features(m, ["1", "4"], x, n=20, progress=False)
    finally:
        handle.remove()
    assert calls == []  # the forward pass ended at layer 4

    class Pairs(torch.utils.data.Dataset):  # a map-style dataset of (image, label) pairs
        def __len__(self):
            return 6

        def __getitem__(self, i):
            return x[i], i % 2

    p = E.patch_features(m, "1", Pairs(), n=20, progress=False, batch_size=4)
    np.testing.assert_array_equal(p.labels, p.image_index % 2)
    np.testing.assert_array_equal(p.features, E.patch_features(m, "1", x, n=20, progress=False).features)
    assert p.crop(0, Pairs()).shape == (3, 3)
