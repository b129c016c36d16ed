"""Network dissection (issue 16, item 3): exact thresholds, IoU 1 for a unit that copies a mask, brute force.

A unit whose map *is* a concept's mask scores IoU 1 with it (and 0 with its complement); the streaming
quantile equals the sorted order statistic; the whole dissection equals an all-in-memory brute force;
the Broden reader is checked on a tiny Broden-format folder the test writes.
"""

from __future__ import annotations

import csv
import gc
import math
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import vizlib as vl
from vizlib.core.composed import composed_sample
from vizlib.core.errors import ArgumentError, DatasetUnavailable
from vizlib.core.layers import name_layers
from vizlib.methods.dissection import (Broden, Concept, ConceptSet, Dissection, StreamingQuantile, bundled_concepts,
                                       dissect, untrained)
from vizlib.models import alexnet_fmnist

from .conftest import assert_same_state, model_state


@pytest.fixture(autouse=True)
def _threads():  # overrides conftest's: one thread, the machine is shared
    torch.set_num_threads(1)
    yield


def _feed(sq: StreamingQuantile, data: torch.Tensor, batch: int = 7) -> None:
    while not sq.done:
        for s in range(0, len(data), batch):
            sq.update(data[s:s + batch])
        sq.end_pass()


def test_the_streaming_quantile_is_the_order_statistic():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(300, 3, 20, generator=g) * torch.tensor([1.0, 5.0, 0.1]).view(1, 3, 1)  # 6,000 per unit
    sq = StreamingQuantile(3, q=0.005, bins=64)
    _feed(sq, a)
    flat = a.transpose(0, 1).reshape(3, -1).double()
    m = math.ceil(0.005 * flat.shape[1])  # the 30th largest
    want = flat.sort(1, descending=True).values[:, m - 1]
    assert torch.equal(sq.threshold, want)
    assert sq.state_bytes() == StreamingQuantile(3, q=0.005, bins=64).state_bytes()


def test_ties_and_constant_units():
    a = torch.zeros(50, 3, 10)
    a[:, 0, :3] = 1.0  # 30 % ones: the top 0.5 % is 1
    a[:, 1] = 2.5  # constant
    a[0, 2, 0] = 7.0  # one value in 500 (0.2 %) above zero: the 3rd largest is 0
    sq = StreamingQuantile(3, q=0.005)
    _feed(sq, a)
    assert sq.threshold.tolist() == [1.0, 2.5, 0.0]
    assert sq.minimum.tolist() == [0.0, 2.5, 0.0]


class Blobs(ConceptSet):
    """Hand-made concepts on 8x8 images: ``blob`` (a random rectangle) and ``rest`` (the complement),
    ``other`` annotated on even images only."""

    def __init__(self, n: int = 24, seed: int = 0) -> None:
        super().__init__([Concept("blob", "object"), Concept("rest", "background"), Concept("other", "part")],
                         (8, 8), n)
        rng = np.random.default_rng(seed)
        self.m = np.zeros((n, 8, 8), bool)
        self.o = rng.random((n, 8, 8)) < 0.3
        for i in range(n):
            y, x = rng.integers(0, 5, 2)
            self.m[i, y:y + rng.integers(1, 4), x:x + rng.integers(1, 4)] = True

    def masks(self, start: int, stop: int) -> torch.Tensor:
        m = torch.from_numpy(self.m[start:stop])
        return torch.stack([m, ~m, torch.from_numpy(self.o[start:stop])], 1)

    def annotated(self, start: int, stop: int) -> torch.Tensor:
        a = torch.ones(stop - start, 3, dtype=torch.bool)
        a[:, 2] = torch.arange(start, stop) % 2 == 0
        return a


def copier() -> nn.Module:
    """Unit 0 copies the image (the blob mask), unit 1 its complement (1 - x)."""
    conv = nn.Conv2d(1, 2, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
        conv.bias.copy_(torch.tensor([0.0, 1.0]))
    model = nn.Sequential(conv)
    model.vizlib_layers = name_layers(model)
    return model.eval()


def test_a_unit_that_copies_a_mask_scores_iou_one():
    cs = Blobs()
    data = torch.from_numpy(cs.m).float()[:, None]
    d = dissect(copier(), "c1", cs, data, batch_size=5)
    L = d.layers["c1"]
    assert L.iou[:, :2].tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert L.thresholds.tolist() == [1.0, 1.0]
    assert L.detectors.tolist() == [True, True]
    assert d.counts("c1") == {"units": 2, "detectors": 2, "unique": 2, "object": 1, "object unique": 1,
                              "background": 1, "background unique": 1, "part": 0, "part unique": 0}
    assert d.top_units("c1", 1)[0][2] == 1.0
    assert d.table().rows[0][:4] == ["c1", 2, 2, 2]
    assert torch.equal(d.unit_masks(copier(), "c1", 0, data[:5]), torch.from_numpy(cs.m[:5]))
    assert torch.equal(d.unit_masks(copier(), "c1", 1, data[:5]), ~torch.from_numpy(cs.m[:5]))


def test_bundled_concepts_are_each_garments_and_each_backgrounds_exact_region():
    s = composed_sample(garments=vl.fashion_mnist_sample().subset(slice(0, 40)))  # the sample's first 40
    cs = bundled_concepts(s)
    assert [c.category for c in cs.concepts] == ["object"] * 10 + ["background"] * 6
    m = cs.masks(0, 40)
    assert m.shape == (40, 16, 64, 64)
    rows = torch.arange(40)
    assert torch.equal(m[rows, torch.from_numpy(s.labels)], torch.from_numpy(s.masks))
    bg = torch.tensor([["brick", "grass", "gravel", "camera", "coins", "text"].index(b) for b in s.backgrounds])
    assert torch.equal(m[rows, 10 + bg], ~torch.from_numpy(s.masks))
    assert int(m.flatten(2).any(2).sum(1).max()) == 2  # one garment class, one background per image
    # a net whose unit k copies concept k's mask: IoU 1 for every concept present
    data = m.float()
    model = nn.Sequential(nn.Conv2d(16, 16, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(16).view(16, 16, 1, 1))
    model.vizlib_layers = name_layers(model)
    d = dissect(model, "c1", cs, data, batch_size=16)
    present = m.flatten(2).any(2).any(0)
    assert torch.equal(d.layers["c1"].iou.diagonal()[present], torch.ones(int(present.sum())))
    assert torch.equal(d.layers["c1"].best_concept[present], torch.arange(16)[present])


def test_the_dissection_equals_a_brute_force():
    cs = Blobs(n=30, seed=1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 5, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)).eval()
    model.vizlib_layers = name_layers(model)
    data = torch.randn(30, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    q = 0.05
    d = dissect(model, "p1", cs, data, quantile=q, batch_size=4, bins=16)
    with torch.no_grad():
        act = model(data)  # (30, 5, 4, 4)
    flat = act.transpose(0, 1).reshape(5, -1).double()
    m = math.ceil(q * flat.shape[1])
    thr = flat.sort(1, descending=True).values[:, m - 1]
    assert torch.equal(d.layers["p1"].thresholds.double(), thr.float().double())
    assert d.passes >= 3  # the range, at least one histogram, the IoUs
    up = F.interpolate(act, size=(8, 8), mode="bilinear", align_corners=False)
    unit = (up >= thr.float().view(1, 5, 1, 1)) & (up > flat.min(1).values.float().view(1, 5, 1, 1))
    lab = cs.masks(0, 30)
    ann = cs.annotated(0, 30)
    iou = torch.zeros(5, 3, dtype=torch.float64)
    for k in range(5):
        for c in range(3):
            keep = ann[:, c]
            inter = (unit[keep, k] & lab[keep, c]).sum()
            union = (unit[keep, k] | lab[keep, c]).sum()
            iou[k, c] = inter / union
    torch.testing.assert_close(d.layers["p1"].iou.double(), iou, atol=1e-6, rtol=0)


def test_several_layers_in_the_same_passes_and_dense_units():
    cs = Blobs(n=12)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(192, 4), nn.ReLU()).eval()
    model.vizlib_layers = name_layers(model)
    data = torch.from_numpy(cs.m).float()[:, None]
    both = dissect(model, ["fc6", "c1"], cs, data)
    assert list(both.layers) == ["fc6", "c1"]
    alone = dissect(model, "c1", cs, data)
    assert torch.equal(both.layers["c1"].iou, alone.layers["c1"].iou)
    assert both.layers["fc6"].iou.shape == (4, 3)


# --------------------------------------------------------------------------- Broden


def _png(path: Path, array: np.ndarray) -> None:
    Image.fromarray(array.astype(np.uint8)).save(path)


def broden_fixture(root: Path) -> Path:
    """Four 8x8 pictures; objects 'dog' (label 5) and 'cat' (label 300 = 44 + 256, so G=1) segmented at
    4x4; scene 'kitchen' (label 7) on images 0 and 1; texture column empty (not annotated)."""
    (root / "images").mkdir(parents=True)
    with open(root / "label.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["number", "name", "category", "frequency", "coverage", "syns"])
        w.writerows([[5, "dog", "object(4)", 4, 1.0, ""], [7, "kitchen", "scene(2)", 2, 1.0, ""],
                     [300, "cat", "object(2)", 2, 1.0, ""]])
    rows = []
    for i in range(4):
        seg = np.zeros((4, 4, 3), np.uint8)
        seg[i % 3:i % 3 + 2, 1:3, 0] = 5  # the dog, block-aligned
        if i >= 2:
            seg[3, :, 0], seg[3, :, 1] = 44, 1  # a cat along the bottom
        _png(root / "images" / f"seg{i}.png", seg)
        pic = np.zeros((8, 8, 3), np.uint8)
        pic[..., 0] = np.kron(seg[..., 0] == 5, np.ones((2, 2))) * 255  # red exactly on the dog
        pic[..., 1] = 60
        _png(root / "images" / f"img{i}.png", pic)
        rows.append({"image": f"img{i}.png", "split": "train" if i < 3 else "val", "ih": 8, "iw": 8, "sh": 4,
                     "sw": 4, "color": "", "object": f"seg{i}.png", "part": "", "material": "",
                     "scene": "7" if i < 2 else "", "texture": ""})
    with open(root / "index.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return root


def red_net() -> vl.Net:
    conv = nn.Conv2d(3, 1, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1))
    model = nn.Sequential(conv)
    model.vizlib_layers = name_layers(model)
    return vl.Net("alexnet", "imagenet", model.eval(), ["x"], lambda p: p, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 8, "test")


def test_the_broden_reader_and_a_unit_that_copies_the_dog(tmp_path: Path):
    b = Broden(broden_fixture(tmp_path / "broden"), size=8)
    assert [(c.name, c.category) for c in b.concepts] == [("dog", "object"), ("cat", "object"), ("kitchen", "scene")]
    m = b.masks(0, 4)
    assert m.shape == (4, 3, 8, 8)
    assert int(m[0, 0].sum()) == 16 and bool(m[0, 0, 0:4, 2:6].all())  # the 2x2-block dog, resized nearest
    assert int(m[2, 1].sum()) == 16 and bool(m[2, 1, 6:8].all())  # the cat, label 44 + 256 * 1
    assert bool(m[0, 2].all()) and not bool(m[2, 2].any())  # the scene covers the image
    ann = b.annotated(0, 4)
    assert ann.tolist() == [[True, True, True], [True, True, True], [True, True, False], [True, True, False]]
    net = red_net()
    x, i = b.data(net)[1]
    assert x.shape == (3, 8, 8) and i == 1 and float(x[1, 0, 0]) == pytest.approx(60 / 255)
    d = dissect(net, "c1", b)
    assert d.layers["c1"].iou[0].tolist()[0] == 1.0 and d.top_units("c1", 1)[0][1] == "dog"
    assert len(Broden(tmp_path / "broden", size=8, split="val")) == 1
    assert [c.name for c in Broden(tmp_path / "broden", size=8, categories=["scene"]).concepts] == ["kitchen"]


def test_broden_missing_gives_the_offline_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("VIZLIB_BRODEN", raising=False)
    with pytest.raises(DatasetUnavailable) as info:
        Broden(tmp_path / "nowhere")
    msg = str(info.value)
    assert "Broden is not at" in msg and "dlbroden.sh" in msg and "VIZLIB_BRODEN" in msg and "bundled_concepts" in msg
    with pytest.raises(DatasetUnavailable, match="VIZLIB_BRODEN is not set"):
        Broden()
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "index.csv").write_text("image\n")
    with pytest.raises(DatasetUnavailable, match="has no label.csv"):
        Broden(tmp_path / "half")
    monkeypatch.setenv("VIZLIB_BRODEN", str(broden_fixture(tmp_path / "b2")))
    assert len(Broden(size=8)) == 4


# --------------------------------------------------------------------------- the model, bad input


class Shifting(torch.utils.data.IterableDataset):
    """Two batches of 8x8 images, then one 9x9: dissection fails in its first pass."""

    def __iter__(self):
        yield torch.zeros(4, 1, 8, 8)
        yield torch.zeros(4, 1, 8, 8)
        yield torch.zeros(4, 1, 9, 9)


def test_the_model_comes_back_as_it_went_in_also_when_it_raises():
    model = alexnet_fmnist(seed=0).train()
    model.features[0].weight.requires_grad_(False)
    before = model_state(model)
    cs = bundled_concepts(composed_sample(garments=vl.fashion_mnist_sample().subset(slice(0, 8))))
    dissect(model, ["c1", "c5"], cs, torch.zeros(8, 1, 64, 64))
    assert_same_state(before, model_state(model))
    small = copier().train()
    before = model_state(small)
    with pytest.raises(ValueError, match="aligned"):
        dissect(small, "c1", Blobs(n=12), list(Shifting()))
    with pytest.raises(ValueError, match="gave 8 images and the concepts have 12"):
        dissect(small, "c1", Blobs(n=12), list(Shifting())[:2])
    assert_same_state(before, model_state(small))


def test_untrained_is_a_fresh_copy():
    from tests._nets import bundled_net

    net = bundled_net("alexnet")
    w = net.model.features[0].weight.clone()
    u = untrained(net, seed=3)
    assert u.model is not net.model and torch.equal(net.model.features[0].weight, w)
    assert not torch.equal(u.model.features[0].weight, w) and "untrained copy (seed 3)" in u.source
    assert torch.equal(untrained(net, seed=3).model.features[0].weight, u.model.features[0].weight)
    bare = untrained(copier(), seed=0)
    assert isinstance(bare, nn.Module) and bare[0].weight.shape == (2, 1, 1, 1)


def test_a_model_used_once_is_freed():
    model = copier()
    ref = weakref.ref(model)
    cs = Blobs(n=6)
    result = dissect(model, "c1", cs, torch.from_numpy(cs.m).float()[:, None])
    del model
    gc.collect()
    assert ref() is None and isinstance(result, Dissection)


BAD = [
    (dict(quantile=0), ArgumentError, ("quantile", "0.005")),
    (dict(quantile=1.5), ArgumentError, ("quantile",)),
    (dict(iou_threshold=1.0), ArgumentError, ("iou_threshold", "0.04")),
    (dict(layers=[]), ArgumentError, ("layers is empty",)),
    (dict(layers="c9"), vl.LayerError, ("unknown layer",)),
    (dict(concepts="broden"), ArgumentError, ("ConceptSet",)),
    (dict(data=torch.zeros(5, 1, 8, 8)), ValueError, ("5 images and the concepts 24",)),
    (dict(bins=1), ArgumentError, ("bins",)),
]


@pytest.mark.parametrize("kwargs,exc,words", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_input_is_refused_before_any_forward_pass(kwargs, exc, words):
    model = copier()
    cs = Blobs()
    args = {"layers": "c1", "concepts": cs, "data": torch.from_numpy(cs.m).float()[:, None], **kwargs}
    passes = []
    handle = torch.nn.modules.module.register_module_forward_hook(lambda m, i, o: passes.append(1))
    try:
        with pytest.raises(exc) as info:
            dissect(model, args.pop("layers"), args.pop("concepts"), args.pop("data"), **args)
    finally:
        handle.remove()
    for w in words:
        assert w in str(info.value), str(info.value)
    assert passes == []
