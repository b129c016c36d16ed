"""The composed bundled set: garments pasted at native size onto scikit-image backgrounds, exact masks."""

from __future__ import annotations

import socket
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import vizlib as vl
from vizlib.core import composed as C
from vizlib.core.errors import ArgumentError, EmptyData, ImageError, VizlibError
from vizlib.core.examples import ExampleImage
from vizlib.core.measures import OBJECT_LEVEL, silhouette_mask


@pytest.fixture(scope="module")
def sample() -> vl.ImageSet:
    return vl.fashion_mnist_sample()


@pytest.fixture(scope="module")
def data(sample) -> C.ComposedImages:
    return C.ComposedImages(sample, seed=0)


def _placed_garment(g: np.ndarray, p: C.Placement) -> np.ndarray:
    """The garment's tile put on a black size x size canvas at the item's place (brute force, pixel by pixel)."""
    out = np.zeros((p.size, p.size), np.uint8)
    for r in range(g.shape[0]):
        for c in range(g.shape[1]):
            y, x = p.top + r, p.left + c
            if 0 <= y < p.size and 0 <= x < p.size:
                out[y, x] = g[r, c]
    return out


# --------------------------------------------------------------------------- the backgrounds


def test_backgrounds_are_grey_uint8_files_inside_scikit_image(monkeypatch):
    import skimage.data

    folder = Path(skimage.data.__file__).parent
    assert C.background_names() == ("brick", "grass", "gravel", "camera", "coins", "text")
    for b in C.BACKGROUNDS:
        assert (folder / f"{b.name}.png").is_file(), b.name
        assert b.licence
    C.load_background.cache_clear()

    def no_network(*args, **kwargs):
        raise OSError("the tests are offline")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    for b in C.BACKGROUNDS:
        img = b.image()
        assert img.ndim == 2 and img.dtype == np.uint8 and min(img.shape) >= 64
        assert not img.flags.writeable
        assert img.std() > 10, f"{b.name} carries content"


def test_backgrounds_are_loaded_once(sample):
    a, b = C.ComposedImages(sample), C.ComposedImages(sample, seed=5)
    assert all(x is y for x, y in zip(a.backgrounds, b.backgrounds))


# --------------------------------------------------------------------------- paste


def test_paste_by_hand():
    g = np.array([[0, 20, 0], [26, 255, 128], [0, 0, 0]], np.uint8)
    bg = np.full((5, 5), 100, np.uint8)
    bg[0, 0] = 7
    image, mask = C.paste(g, bg, 1, 2)
    expected = bg.copy()
    # opaque on the mask: the garment's own pixels, whatever the background
    expected[2, 2], expected[2, 3], expected[2, 4] = 26, 255, 128
    assert image.tolist() == expected.tolist()
    assert np.flatnonzero(mask.ravel()).tolist() == [12, 13, 14]  # the 20 (<= OBJECT_LEVEL) is left out
    assert image.dtype == np.uint8 and bg[2, 2] == 100  # the crop is not written


def test_paste_on_black_gives_back_the_garment(sample):
    for g in sample.images[:20]:
        image, mask = C.paste(g, np.zeros((64, 64), np.uint8), 10, 20)
        tile = image[10:38, 20:48]
        assert (tile[g > OBJECT_LEVEL] == g[g > OBJECT_LEVEL]).all()
        assert (image[~mask] == 0).all()


def test_paste_is_opaque_on_white_too(sample):
    g = sample.images[0]
    image, mask = C.paste(g, np.full((40, 40), 255, np.uint8), 5, 5)
    m = C.garment_mask(g)
    assert (image[5:33, 5:33][m] == g[m]).all() and (image[~mask] == 255).all()


def test_garment_mask_fills_holes_inside_only():
    g = np.zeros((7, 7), np.uint8)
    g[1:6, 1:6] = 200
    g[3, 3] = 0      # a dark print inside: part of the garment
    g[1, 3] = 0      # a notch on the edge: open to the outside, not a hole
    m = C.garment_mask(g)
    assert m[3, 3] and not m[1, 3] and m.sum() == 24
    image, mask = C.paste(g, np.full((7, 7), 90, np.uint8), 0, 0)
    assert image[3, 3] == 0 and image[1, 3] == 90 and (mask == m).all()


def test_paste_refuses_a_garment_over_the_edge(sample):
    g = sample.images[0]
    rows = np.flatnonzero((g > OBJECT_LEVEL).any(axis=1))
    with pytest.raises(ImageError, match="outside"):
        C.paste(g, np.zeros((64, 64), np.uint8), -int(rows[0]) - 1, 0)
    C.paste(g, np.zeros((64, 64), np.uint8), -int(rows[0]), 0)  # just inside


# --------------------------------------------------------------------------- the items


def test_same_seed_and_index_same_bytes_in_any_order(sample):
    a, b = C.ComposedImages(sample, seed=3), C.ComposedImages(sample, seed=3)
    forward = [a[i][0].tobytes() for i in range(30)]
    backward = [b[i][0].tobytes() for i in reversed(range(30))][::-1]
    assert forward == backward
    assert a[7][0].tobytes() == a[7][0].tobytes()
    assert a[-1][0].tobytes() == a[len(a) - 1][0].tobytes()


def test_another_seed_gives_other_images(sample):
    a, b = C.ComposedImages(sample, seed=0), C.ComposedImages(sample, seed=1)
    differ = [a[i][0].tobytes() != b[i][0].tobytes() for i in range(30)]
    assert all(differ)
    assert a.placement(0) != b.placement(0)


def test_background_keeps_the_stated_share_of_the_photos_contrast():
    photo = C.load_background("coins").astype(np.float64)
    m = photo.mean()
    for c in (0.25, 0.5, C.BACKGROUND_CONTRAST):
        soft = C.background("coins", c)
        assert soft.dtype == np.uint8 and soft.shape == photo.shape and not soft.flags.writeable
        # every pixel moved to m + c (b - m), rounded: within half a grey level
        assert np.abs(soft - (m + c * (photo - m))).max() <= 0.5 + 1e-9
    assert C.background("coins", 1.0) is C.load_background("coins")
    assert C.BACKGROUND_CONTRAST == 0.5
    with pytest.raises(ArgumentError, match="contrast"):
        C.background("coins", 0)
    with pytest.raises(ArgumentError, match="contrast"):
        C.ComposedImages(vl.fashion_mnist_sample(), contrast=1.5)


def test_contrast_changes_the_background_only(sample):
    full = C.ComposedImages(sample, contrast=1.0, masks=True)
    half = C.ComposedImages(sample, masks=True)
    assert half.contrast == C.BACKGROUND_CONTRAST and "contrast 0.5" in repr(half)
    for i in (0, 7, 99):
        (a, la, ma), (b, lb, mb) = full[i], half[i]
        assert la == lb and (ma == mb).all() and (a[ma] == b[ma]).all()  # same draw, same garment pixels
        p = half.placement(i)
        assert p.contrast == C.BACKGROUND_CONTRAST
        assert (b[~mb] == C.background(p.background)[p.crop[0]:p.crop[0] + 64, p.crop[1]:p.crop[1] + 64][~mb]).all()
        assert np.ptp(b[~mb].astype(int)) <= np.ptp(a[~ma].astype(int))


def test_the_draw_is_numpy_seeded_per_index(data):
    rng = np.random.default_rng([0, 11])
    p = data.placement(11)
    k = int(rng.integers(len(C.BACKGROUNDS)))
    rng.random()
    bg = C.load_background(C.BACKGROUNDS[k].name)
    assert p.background == C.BACKGROUNDS[k].name
    assert p.crop == (int(rng.integers(bg.shape[0] - 63)), int(rng.integers(bg.shape[1] - 63)))


def test_mask_is_the_placed_garments_silhouette_exactly(sample, data):
    for i in range(0, len(sample), 37):
        image, label, mask = C.ComposedImages(sample, masks=True)[i]
        p = data.placement(i)
        assert label == int(sample.labels[i])
        assert mask.dtype == np.bool_ and mask.shape == (64, 64)
        assert (mask == C.garment_mask(_placed_garment(sample.images[i], p))).all()
        assert mask.sum() == C.garment_mask(sample.images[i]).sum()  # nothing of the garment cut off


def test_pixels_off_the_mask_are_the_background_crop(sample, data):
    for i in range(0, len(sample), 23):
        image, mask = data.compose(i)
        crop = data.placement(i).background_crop()
        assert (image[~mask] == crop[~mask]).all()
        placed = _placed_garment(sample.images[i], data.placement(i))
        assert (image[mask] == placed[mask]).all()


def test_garment_lies_inside_the_frame_and_places_vary(sample, data):
    tops, lefts = [], []
    for i in range(len(sample)):
        p = data.placement(i)
        g = sample.images[i] > OBJECT_LEVEL
        rows, cols = np.flatnonzero(g.any(axis=1)), np.flatnonzero(g.any(axis=0))
        assert 0 <= p.top + rows[0] and p.top + rows[-1] < 64
        assert 0 <= p.left + cols[0] and p.left + cols[-1] < 64
        tops.append(p.top + rows[0])
        lefts.append(p.left + cols[0])
    assert min(tops) == 0 and min(lefts) == 0  # places reach the frame's edges
    assert len(set(zip(tops, lefts))) > 500


def test_every_background_is_used(data):
    used = {data.placement(i).background for i in range(200)}
    assert used == set(C.background_names())


def test_scale_range(sample):
    d = C.ComposedImages(sample, scale=(0.8, 1.2), masks=True)
    sides = {d.placement(i).side for i in range(200)}
    assert min(sides) >= 22 and max(sides) <= 34 and len(sides) > 5
    native = C.ComposedImages(sample)
    assert d.placement(0).crop == native.placement(0).crop  # the scale does not shift the rest of the draw
    for i in range(20):
        image, _, mask = d[i]
        assert image.shape == (64, 64) and mask.any()
        assert (image[~mask] == d.placement(i).background_crop()[~mask]).all()


def test_other_size_and_fewer_backgrounds(sample):
    d = C.ComposedImages(sample, size=48, backgrounds=["grass"])
    image, mask = d.compose(0)
    assert image.shape == (48, 48) and d.placement(0).background == "grass"


def test_example_is_an_example_image(sample, data):
    e = data.example(0)
    assert isinstance(e, ExampleImage)
    assert e.label == int(sample.labels[0]) and e.index == int(sample.indices[0])
    assert e.category == sample.classes[e.label] and e.name.endswith("on " + data.placement(0).background)
    assert (e.mask == data.compose(0)[1]).all() and e.area == data.object_share(0)


def test_a_dataloader_batches_the_items(data):
    import torch

    x, y = next(iter(torch.utils.data.DataLoader(data, batch_size=8)))
    assert x.shape == (8, 64, 64) and x.dtype == torch.uint8 and y.shape == (8,)


def test_memory_stays_flat_over_2000_items(sample):
    garments = vl.ImageSet(np.concatenate([sample.images, sample.images[:500]]),
                           np.concatenate([sample.labels, sample.labels[:500]]), sample.classes, "tiled")
    d = C.ComposedImages(garments, masks=True)
    assert len(d) == 2000
    d[0]  # warm
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        total = 0
        for i in range(len(d)):
            image, label, mask = d[i]
            total += int(mask.sum())
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total > 0
    # 2,000 kept images and masks would be 16 MB; one item is 8 kB
    assert peak - base < 512 * 1024
    assert current - base < 64 * 1024


# --------------------------------------------------------------------------- the composed sample


def test_composed_sample(sample):
    s = C.composed_sample(seed=0)
    assert isinstance(s, vl.ImageSet) and isinstance(s, C.ComposedSet)
    assert s.images.shape == (1500, 64, 64) and s.images.dtype == np.uint8 and s.masks.shape == (1500, 64, 64)
    assert (s.labels == sample.labels).all() and (s.indices == sample.indices).all()
    d = C.ComposedImages(sample, seed=0)
    for i in (0, 777, 1499):
        image, mask = d.compose(i)
        assert (s.images[i] == image).all() and (s.masks[i] == mask).all()
        assert s.backgrounds[i] == d.placement(i).background
    assert np.allclose(s.object_share, s.masks.mean(axis=(1, 2)))
    assert 0.05 < np.median(s.object_share) < 0.12  # the garment is small in the frame
    assert (C.composed_sample(seed=0).images == s.images).all()
    part = s.subset(slice(10, 13))
    assert isinstance(part, C.ComposedSet) and (part.masks == s.masks[10:13]).all()
    assert part.example(0).name == s.example(10).name


def test_box_sides_by_hand():
    m = np.zeros((3, 8, 8), bool)
    m[0, 2:5, 1:2] = True
    m[1, 0:8, 3:7] = True
    m[2, 6, 6] = True
    m[2, 1, 2] = True
    assert C.box_sides(m).tolist() == [[3, 1], [8, 4], [6, 5]]
    assert C.median_box_side(m) == 6.0 and C.median_box_side(m, "shorter") == 4.0


def test_median_box_side_of_the_composed_sample():
    s = C.composed_sample()
    hw = C.box_sides(s.masks)
    assert (hw <= 28).all()
    assert C.median_box_side(s.masks) == float(np.median(hw.max(axis=1)))


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0", None])
def test_bad_seed(sample, seed):
    with pytest.raises(ArgumentError, match="seed"):
        C.ComposedImages(sample, seed=seed)


@pytest.mark.parametrize("size", [27, 0, 173, 64.5, "64"])
def test_bad_size(sample, size):
    with pytest.raises(ArgumentError, match="size"):
        C.ComposedImages(sample, size=size)


def test_size_must_hold_the_scaled_garment(sample):
    with pytest.raises(ArgumentError, match="34 px garment"):
        C.ComposedImages(sample, size=32, scale=(1.0, 1.2))


@pytest.mark.parametrize("scale", [(0, 1), (1.2, 0.8), 2, (1, float("nan"))])
def test_bad_scale(sample, scale):
    with pytest.raises(ArgumentError, match="scale"):
        C.ComposedImages(sample, scale=scale)


def test_bad_images_and_backgrounds(sample):
    with pytest.raises(ImageError, match="ImageSet"):
        C.ComposedImages(np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(ImageError, match="uint8"):
        C.ComposedImages(vl.ImageSet(sample.images.astype(float), sample.labels, sample.classes, ""))
    with pytest.raises(EmptyData):
        C.ComposedImages(sample.subset(slice(0, 0)))
    with pytest.raises(ArgumentError, match="brick"):
        C.ComposedImages(sample, backgrounds=["moon"])
    with pytest.raises(ArgumentError, match="side"):
        C.median_box_side(np.ones((1, 4, 4), bool), "middle")
    with pytest.raises(ArgumentError, match="empty"):
        C.box_sides(np.zeros((2, 4, 4), bool))
    with pytest.raises(IndexError):
        C.ComposedImages(sample)[1500]
    with pytest.raises(VizlibError):
        C.load_background("chelsea")


# --------------------------------------------------------------------------- the figure (chapter 1)


def test_plot_composed_examples():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from vizlib.chapters import ch01

    assert "plot_composed_examples" in ch01.__all__
    fig = ch01.plot_composed_examples(n=8, seed=0)
    assert isinstance(fig, Figure)
    assert round(fig.get_figwidth() * 100) == 800
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 8
    titles = [ax.get_title() for ax in shown]
    assert [t.split("\n")[0] for t in titles] == list(vl.fashion_mnist_sample().classes[:8])
    assert all(ax.collections for ax in shown)  # the mask outlines
    import matplotlib.pyplot as plt

    plt.close(fig)
