"""vizlib.core: the one batches path, the example images and their objects, the tracer,
the stopping capture, the claims record and the size cache that holds models weakly."""

from __future__ import annotations

import gc
import json
import weakref

import numpy as np
import pytest
import torch
from torch import nn

import vizlib as vl
from vizlib.chapters.claims import NOT_SUPPORTED, NOT_TESTABLE, SUPPORTED, Claim, claims_table, number
from vizlib.core import examples as E
from vizlib.core.batches import PreparedImages, batches
from vizlib.core.hooks import Capture, StopForward, trace
from vizlib.core.images import _MIN_SIZE_CACHE, check_image
from vizlib.core.measures import box_mask, object_mask, silhouette_mask, transform_mask


def tiny() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 3 * 3, 3))


# --------------------------------------------------------------------------- batches


def test_batches_from_a_tensor_keep_order_and_sizes():
    x = torch.arange(5 * 4.0).view(5, 1, 2, 2)
    got = list(batches(x, 2))
    assert [len(b) for b in got] == [2, 2, 1] and torch.equal(torch.cat(got), x)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        list(batches(torch.zeros(3, 4, 4), 2))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            batches(x, bad)


def test_batches_from_a_dataset_with_labels_and_from_pairs():
    class Pairs(torch.utils.data.Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return torch.full((1, 2, 2), float(i)), i % 2

    got = list(batches(Pairs(), 2, labels=True))
    assert [lab.tolist() for _, lab in got] == [[0, 1], [0, 1], [0]]
    assert torch.cat([x for x, _ in got])[:, 0, 0, 0].tolist() == [0, 1, 2, 3, 4]
    # a loader's own batches pass through as they are, labels with them
    loader = torch.utils.data.DataLoader(Pairs(), batch_size=3)
    assert [(len(x), lab.tolist()) for x, lab in batches(loader, 2, labels=True)] == [(3, [0, 1, 0]), (2, [1, 0])]
    # a plain iterable of images, no labels
    assert [len(b) for b in batches([torch.zeros(1, 2, 2)] * 3, 2)] == [2, 1]
    assert list(batches([torch.zeros(1, 2, 2)], 2, labels=True))[0][1] is None


def test_mixed_image_sizes_name_the_items():
    class Mixed(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return torch.zeros(1, 8 if i < 2 else 9, 8)

    with pytest.raises(ValueError, match=r"item 0 is \(1, 8, 8\) but item 2 is \(1, 9, 8\)"):
        list(batches(Mixed(), 4))


def test_batches_prepare_pictures_and_image_sets_with_the_net():
    net = vl.load("alexnet", "bundled")
    sample = vl.fashion_mnist_sample().subset(slice(0, 7))
    got = list(batches(sample, 4, net=net, labels=True))
    assert [tuple(x.shape) for x, _ in got] == [(4, 1, 64, 64), (3, 1, 64, 64)]
    assert np.concatenate([lab for _, lab in got]).tolist() == sample.labels.tolist()
    prepared = PreparedImages(sample, net)
    assert torch.equal(torch.cat([x for x, _ in got]), prepared.batch(range(7)))
    pictures = [sample.images[i] for i in range(3)]
    assert torch.equal(torch.cat(list(batches(pictures, 2, net=net))), prepared.batch(range(3)))
    with pytest.raises(TypeError, match="net="):
        list(batches(pictures, 2))
    with pytest.raises(TypeError, match="PreparedImages"):
        list(batches(sample, 2))
    with pytest.raises(TypeError, match="cannot read images"):
        list(batches(3, 2))


# --------------------------------------------------------------------------- example images and their objects


def test_object_boxes_come_from_the_annotations_file():
    shipped = json.loads(E.ANNOTATIONS_PATH.read_text())["objects"]["demo_images"]
    assert E.object_boxes() == {k: tuple(v) for k, v in shipped.items()}
    assert E.object_boxes()["chelsea"] == (0, 60, 300, 420)


def test_photo_examples_carry_their_box_as_mask():
    photos = E.photo_examples(n=2)
    assert [p.name for p in photos] == ["chelsea", "coffee"] and photos[1].category == "espresso"
    top, left, bottom, right = E.object_boxes()["coffee"]
    assert photos[1].mask.shape == photos[1].image.shape[:2]
    assert photos[1].mask.sum() == (bottom - top) * (right - left)
    assert photos[1].area == pytest.approx(photos[1].mask.mean())
    with pytest.raises(ValueError, match="ships 6 demo photos"):
        E.photo_examples(n=7)


def test_fashion_examples_go_round_the_classes():
    sample = vl.fashion_mnist_sample()
    ex = E.fashion_examples(12, data=sample)
    assert [e.label for e in ex] == list(range(10)) + [0, 1]
    first_tshirts = np.flatnonzero(sample.labels == 0)[:2]
    assert [ex[0].index, ex[10].index] == [int(sample.indices[i]) for i in first_tshirts]
    assert all(np.array_equal(e.mask, e.image > 25) for e in ex)
    assert [e.label for e in E.fashion_examples(3, classes=(7, 3), data=sample)] == [7, 3, 7]
    with pytest.raises(ValueError, match="at least one"):
        E.fashion_examples(0)


def test_example_images_fit_the_net_and_carry_masks_into_its_input():
    bundled = vl.load("alexnet", "bundled")
    ex = E.example_images(bundled, 2)[0]
    assert ex.tensor(bundled).shape == (1, 64, 64)
    assert torch.equal(ex.object_mask(bundled), transform_mask(bundled, ex.mask))
    photo = E.example_images(vl.load("alexnet", "random"), 1)[0]
    assert photo.name == "chelsea" and photo.tensor(vl.load("alexnet", "random")).shape == (3, 224, 224)
    assert len(E.example_dataset(bundled, limit=5)) == 5


def test_one_mask_function():
    img = np.zeros((6, 6), np.uint8)
    img[1:4, 2:5] = 200
    assert np.array_equal(object_mask(img), silhouette_mask(img))
    assert np.array_equal(object_mask(img, (1, 2, 4, 5)), box_mask(img.shape, (1, 2, 4, 5)))
    assert np.array_equal(object_mask(img), object_mask(img, (1, 2, 4, 5)))
    with pytest.raises(vl.NoObjectRegion):
        object_mask(np.zeros((6, 6), np.uint8))


# --------------------------------------------------------------------------- hooks


def test_trace_records_the_chain_and_leaves_no_hooks():
    net = tiny().train()
    calls = []
    t = trace(net, torch.zeros(1, 1, 8, 8), keep=["1"], on_call=lambda m, x: calls.append(type(m).__name__) or len(calls))
    assert [c.path for c in t.calls] == ["0", "1", "2", "3", "4"]
    assert [c.extra for c in t.calls] == [1, 2, 3, 4, 5] and calls[0] == "Conv2d"
    assert tuple(t.outputs["1"].shape) == (1, 2, 6, 6)
    assert t.calls[1].in_ptr == t.calls[0].out_ptr  # the chain: each module takes the one before's output
    assert net.training and all(not m._forward_hooks for m in net.modules())
    stopped = trace(net, torch.zeros(1, 1, 8, 8), keep=["1"], stop=True)
    assert [c.path for c in stopped.calls] == ["0", "1"]
    with pytest.raises(ValueError, match="not reached"):
        trace(net, torch.zeros(1, 1, 8, 8), keep=["9"])
    assert all(not m._forward_hooks for m in net.modules())


def test_capture_can_stop_the_forward_pass():
    net = tiny()
    seen = []
    handle = net[4].register_forward_pre_hook(lambda m, i: seen.append(1))
    try:
        with Capture(net, ["0", "2"], stop=True) as cap:
            out = cap.run(torch.ones(2, 1, 8, 8))
        assert set(out) == {"0", "2"} and tuple(out["2"].shape) == (2, 2, 3, 3) and seen == []
        # the clone keeps the conv's output although an in-place ReLU follows it
        assert (out["0"] < 0).any()
        with Capture(net, ["0"]) as cap:
            cap.run(torch.ones(1, 1, 8, 8))
        assert seen == [1]
    finally:
        handle.remove()
    assert all(not m._forward_hooks for m in net.modules())
    assert issubclass(StopForward, Exception)


# --------------------------------------------------------------------------- claims


def test_one_claim_record_one_vocabulary():
    assert Claim.judge("Yu §5", "sparser", "0.8 vs 0.7", 0.8 > 0.7).verdict == SUPPORTED
    assert Claim.judge("Yu §5", "sparser", "0.6 vs 0.7", 0.6 > 0.7).verdict == NOT_SUPPORTED
    assert Claim.judge("Zeiler §4.2", "context", "no clutter in these images", None).verdict == NOT_TESTABLE
    with pytest.raises(ValueError, match="verdict is one of"):
        Claim("a", "b", "c", "not measured")
    table = claims_table([Claim.judge("s", "c", "m", True)])
    assert table.header == ["source", "claim", "measured", "verdict"] and table.rows == [["s", "c", "m", "supported"]]
    assert number(float("nan")) == "—" and number(None) == "—" and number(0.81934) == "0.819"


# --------------------------------------------------------------------------- the size cache


def test_the_size_cache_does_not_keep_a_model_alive():
    model = vl.alexnet(seed=0)
    check_image(torch.zeros(1, 3, 224, 224), model)
    assert model in _MIN_SIZE_CACHE
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None
