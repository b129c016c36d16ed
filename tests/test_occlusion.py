"""Occlusion sweep against brute force, its geometry and grey, bad input, and correspondence analysis.

Chapter 5's presentation (figures, readings table, claims, explorer) is tested in test_ch05.py."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from torch import nn

from tests.conftest import hook_count, modes
from vizlib.chapters.ch05 import occlusion_readings
from vizlib.core.data import DEMO_IMAGES, FASHION_MNIST_CLASSES
from vizlib.core.errors import ImageError
from vizlib.core.examples import object_boxes
from vizlib.methods.correspondence import (
    PARTS_PATH,
    correspondence,
    map_box,
    map_points,
    part_set,
    part_sets,
    sign_disagreement,
    square_box,
    untrained_like,
)
from vizlib.methods.deconvnet import Deconvnet
from vizlib.methods.occlusion import Occlusion, occluder_fill, occlusion_grid, occlusion_maps, top_conv_layer
from vizlib.models.bundled_nets import alexnet_fmnist, vgg_fmnist, zfnet_fmnist
from vizlib.models.nets import alexnet


def small_net(seed: int = 0, integer: bool = True) -> nn.Sequential:
    """conv-relu-pool-conv-relu(inplace)-dense, float64; integer weights make every sum exact."""
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(2, 4, 3, 1, 1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(4, 5, 3, 1, 1), nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(5 * 8 * 8, 7),
    ).double()
    with torch.no_grad():
        for p in net.parameters():
            if integer:
                p.copy_(torch.randint(-3, 4, p.shape, generator=g).double())
            else:
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.3)
    return net.eval()


MEAN, STD = (0.4, 0.6), (0.25, 0.5)


@pytest.fixture(autouse=True)
def _one_thread():
    """These nets are tiny: one thread avoids OpenMP's barrier waits on a shared, busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def brute_force(net: nn.Module, layer: nn.Module, x: torch.Tensor, size: int, stride: int, fill: torch.Tensor):
    """One forward pass per occluder position: (activities (ny, nx, M), probabilities (ny, nx, K))."""
    _, h, w = x.shape
    ys, xs = range(0, h - size + 1, stride), range(0, w - size + 1, stride)
    acts, probs = [], []
    kept: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda m, i, o: kept.append(o.detach().clone()))
    try:
        with torch.no_grad():
            for y, xx in itertools.product(ys, xs):
                z = x.clone()
                z[:, y : y + size, xx : xx + size] = fill.view(-1, 1, 1)
                probs.append(net(z[None]).softmax(1)[0])
                acts.append(kept.pop().sum((2, 3))[0])
    finally:
        handle.remove()
    return torch.stack(acts).view(len(ys), len(xs), -1), torch.stack(probs).view(len(ys), len(xs), -1)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randint(-4, 5, (3, 2, 16, 16), generator=g).double()


# --------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("size,stride,bs", [(5, 3, 7), (4, 4, None), (16, 1, 1), (1, 5, 3)])
def test_every_map_equals_brute_force(images, size, stride, bs):
    net = small_net()
    occ = Occlusion(net, mean=MEAN, std=STD)
    x = images[0]
    m = occ.sweep(x, size, stride, target=2, project=False, batch_size=bs, progress=False)
    acts, probs = brute_force(net, net[4], x, size, stride, occ.fill(2).double())
    assert torch.equal(m.activities, acts)
    assert torch.equal(m.activity, acts[..., m.channel])
    assert torch.equal(m.probability, probs[..., 2])
    assert torch.equal(m.label, probs.argmax(-1))
    assert torch.equal(m.label_probability, probs.max(-1).values)
    assert torch.equal(m.probabilities, probs)
    assert m.ys.tolist() == list(range(0, 16 - size + 1, stride))


def test_several_images_share_batches_and_equal_brute_force(images):
    net = small_net()
    occ = Occlusion(net, mean=MEAN, std=STD)
    out = occ.sweep_many(images, 6, 3, targets=[0, 3, 6], batch_size=7, progress=False, project=False)
    fill = occ.fill(2).double()
    for i, m in enumerate(out):
        acts, probs = brute_force(net, net[4], images[i], 6, 3, fill)
        assert torch.equal(m.activities, acts) and torch.equal(m.probabilities, probs)
        assert torch.equal(m.probability, probs[..., [0, 3, 6][i]]) and torch.equal(m.label, probs.argmax(-1))
        assert torch.equal(m.image, images[i])


def test_float_weights_agree_with_brute_force(images):
    net = small_net(3, integer=False)
    m = Occlusion(net).sweep(images[1] * 0.3, 5, 3, project=False, progress=False)
    acts, probs = brute_force(net, net[4], images[1] * 0.3, 5, 3, torch.zeros(2, dtype=torch.float64))
    torch.testing.assert_close(m.activities, acts, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(m.probabilities, probs, rtol=1e-12, atol=1e-12)
    assert torch.equal(m.label, probs.argmax(-1))


def test_unoccluded_values_strongest_map_and_default_target(images):
    net = small_net()
    x = images[2]
    m = Occlusion(net, mean=MEAN, std=STD).sweep(x, 4, 4, project=False, progress=False)
    kept = []
    h = net[4].register_forward_hook(lambda mod, i, o: kept.append(o.detach().clone()))
    with torch.no_grad():
        p = net(x[None]).softmax(1)[0]
    h.remove()
    act = kept[0][0]
    assert torch.equal(m.base_activities, act.sum((1, 2)))
    assert torch.equal(m.base_strongest, act.amax((1, 2)))
    assert m.channel == int(act.amax((1, 2)).argmax())
    assert m.target == int(p.argmax()) == m.base_label
    assert m.base_probability == float(p.max())
    torch.testing.assert_close(m.base_probabilities, p, rtol=1e-12, atol=0)


def test_projection_is_the_deconvnets(images):
    net = small_net()
    m = Occlusion(net, mean=MEAN, std=STD).sweep(images[0], 4, 4, progress=False)
    ref = Deconvnet(net).project(images[0], "4", m.channel)
    assert torch.equal(m.projection.pixels, ref.pixels) and torch.equal(m.projection.origin, ref.origin)


def test_for_class_and_for_map_read_the_same_sweep(images):
    net = small_net()
    occ = Occlusion(net, mean=MEAN, std=STD)
    m = occ.sweep(images[0], 5, 3, target=1, project=False, progress=False)
    other = occ.sweep(images[0], 5, 3, target=4, channel=2, project=False, progress=False)
    assert torch.equal(m.for_class(4), other.probability)
    assert torch.equal(m.for_map(2), other.activity) and other.channel == 2
    slim = occ.sweep(images[0], 5, 3, target=1, project=False, progress=False, keep_probabilities=False)
    assert slim.probabilities is None and torch.equal(slim.probability, m.probability)
    with pytest.raises(ValueError, match="keep_probabilities"):
        slim.for_class(3)


# --------------------------------------------------------------------------- the grey and the geometry


def test_the_occluded_input_is_the_image_with_a_grey_square(images):
    """What the network sees: the image everywhere but the square, which holds (grey - mean) / std."""
    net = small_net()
    seen: list[torch.Tensor] = []
    h = net[0].register_forward_pre_hook(lambda mod, inp: seen.append(inp[0].detach().clone()))
    try:
        occ = Occlusion(net, mean=MEAN, std=STD, grey=(0.9, 0.1))
        m = occ.sweep(images[0], 5, 11, target=0, project=False, progress=False, batch_size=3)
    finally:
        h.remove()
    fill = torch.tensor([(0.9 - 0.4) / 0.25, (0.1 - 0.6) / 0.5], dtype=torch.float64)
    assert torch.equal(m.fill, fill)
    batches = torch.cat(seen[1:])  # seen[0] is the unoccluded pass
    assert len(batches) == 4
    for k, (y, x) in enumerate(itertools.product([0, 11], [0, 11])):
        ref = images[0].clone()
        ref[:, y : y + 5, x : x + 5] = fill.view(-1, 1, 1)
        assert torch.equal(batches[k], ref)
        assert torch.equal(m.occluded(y, x), ref)


def test_default_grey_is_the_mean_zero_after_normalisation():
    assert occluder_fill(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)).tolist() == [0.0, 0.0, 0.0]

    class FakeNet:
        mean, std = (0.25,), (0.5,)

    assert occluder_fill(FakeNet()).tolist() == [0.0]
    assert occluder_fill(FakeNet(), 0.75).tolist() == [1.0]
    assert occluder_fill(FakeNet(), channels=3).tolist() == [0.0] * 3
    assert occluder_fill(None, channels=2).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="mean=... and std"):
        occluder_fill(None, 0.5)
    with pytest.raises(ValueError, match="3 values"):
        occluder_fill(mean=(0.1, 0.2, 0.3), std=(1.0, 1.0, 1.0), channels=1)


def test_grid():
    ys, xs = occlusion_grid(224, 224, 32, 8)
    assert len(ys) * len(xs) == 625 and int(ys[-1]) == 192
    ys, xs = occlusion_grid(10, 7, 7, 3)
    assert ys.tolist() == [0, 3] and xs.tolist() == [0]


def test_occlusion_grid_method_uses_the_sweeps_defaults(images):
    occ = Occlusion(small_net(), mean=MEAN, std=STD)
    ys, xs = occ.grid(224, 224)
    assert len(ys) * len(xs) == 625 and int(ys[1]) == 8  # 32 px square, stride 8
    assert [t.tolist() for t in occ.grid(10, 7, 7, 3)] == [[0, 3], [0]]
    m = occ.sweep(images[0], progress=False, project=False)  # 16 px side: square 2, stride 1
    gy, gx = occ.grid(16, 16)
    assert m.size == 2 and m.stride == 1 and torch.equal(m.ys, gy) and torch.equal(m.xs, gx)


def test_top_conv_layer():
    assert top_conv_layer(alexnet()) == "c5"
    assert top_conv_layer(zfnet_fmnist()) == "c5"
    assert top_conv_layer(vgg_fmnist()) == "c5_3"
    assert top_conv_layer(small_net()) == "4"
    assert top_conv_layer(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten())) == "0"
    with pytest.raises(ValueError, match="no Conv2d"):
        top_conv_layer(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))


# --------------------------------------------------------------------------- localisation


class RegionMean(nn.Module):
    """Class 0's score is 4 × the mean of rows 10..15, columns 20..25 of the image; class 1's is 0."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1, bias=False)
        self.relu = nn.ReLU()
        with torch.no_grad():
            self.conv.weight.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.relu(self.conv(x))
        score = 4 * a[:, 0, 10:16, 20:26].mean((1, 2))
        return torch.stack([score, torch.zeros_like(score)], 1)


def test_probability_is_lowest_on_the_region_the_class_reads():
    torch.manual_seed(0)
    x = torch.rand(1, 32, 32) + 0.5  # bright everywhere; the occluder (the mean, 0) darkens
    m = Occlusion(RegionMean()).sweep(x, 6, 2, target=0, progress=False, project=False)
    y, xx = m.lowest("probability")
    assert (y, xx) == (10, 20)  # the square that covers the region exactly
    cy, cx = y + 2.5, xx + 2.5
    assert 10 <= cy < 16 and 20 <= cx < 26
    far = m.probability[0, 0]
    assert m.probability.min() < far and torch.isclose(far, torch.tensor(m.base_probability, dtype=far.dtype))
    region = torch.zeros(32, 32, dtype=torch.bool)
    region[10:16, 20:26] = True
    r = occlusion_readings(m, region, name="region")
    assert r.lowest_at == (10, 20) and r.localises
    assert r.object_share < 0.05 and r.on_object > 0.4  # the worst tenth sits on the region 10x more than chance


# --------------------------------------------------------------------------- bad input


def test_bad_input_is_refused_clearly(images):
    net = small_net()
    occ = Occlusion(net, mean=MEAN, std=STD)
    with pytest.raises(ValueError, match="larger than the image"):
        occ.sweep(images[0], 17, 2)
    with pytest.raises(ValueError, match="stride must be at least 1"):
        occ.sweep(images[0], 4, 0)
    with pytest.raises(ValueError, match="size must be at least 1"):
        occ.sweep(images[0], 0, 2)
    with pytest.raises(ValueError, match="whole number"):
        occ.sweep(images[0], 4.5, 2)
    with pytest.raises(ValueError, match=r"class index 7 is out of range: the network has 7 classes \(0..6\)"):
        occ.sweep(images[0], 4, 4, target=7)
    with pytest.raises(ValueError, match="out of range"):
        occ.sweep(images[0], 4, 4, target=-1)
    with pytest.raises(ValueError, match="unknown class name"):
        occ.sweep(images[0], 4, 4, target="cat")
    with pytest.raises(ValueError, match="map 9 is out of range"):
        occ.sweep(images[0], 4, 4, channel=9)
    with pytest.raises(ImageError, match="different sizes in one call"):
        occ.sweep_many([images[0], images[1, :, :12, :12]], 4, 4)
    with pytest.raises(ValueError, match="one per image"):
        occ.sweep_many(images, 4, 4, targets=[1, 2])
    with pytest.raises(ImageError, match="2-channel"):
        occ.sweep(torch.zeros(3, 16, 16, dtype=torch.float64), 4, 4)


def test_the_model_is_left_as_found(images):
    net = small_net()
    net.train()
    before = [p.clone() for p in net.parameters()]
    hooks, mode = hook_count(net), modes(net)
    occ = Occlusion(net, mean=MEAN, std=STD)
    occ.sweep(images[0], 4, 4, progress=False)
    with pytest.raises(ValueError):
        occ.sweep(images[0], 4, 4, target=99)
    assert hook_count(net) == hooks and modes(net) == mode
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert all(p.requires_grad for p in net.parameters())


def test_net_with_a_transform_takes_pictures():
    import vizlib as vl
    from vizlib.models.training import Preprocess

    net = vl.Net("alexnet", "bundled", alexnet_fmnist(seed=0).eval(), list(FASHION_MNIST_CLASSES),
                 Preprocess(64, 0.3, 0.35), (0.3,), (0.35,), 64, "untrained")
    picture = (np.arange(28 * 28).reshape(28, 28) % 251).astype(np.uint8)
    m = occlusion_maps(net, picture, 16, 16, target="Ankle boot", progress=False, project=False)
    assert m.target == 9 and m.probability.shape == (4, 4) and m.layer == "c5"
    assert m.class_name(9) == "Ankle boot"
    assert torch.equal(m.fill, occluder_fill(net))


# --------------------------------------------------------------------------- correspondence


def test_sign_disagreement_is_the_sum_of_pairwise_hamming_distances():
    g = torch.Generator().manual_seed(0)
    s = torch.randint(-1, 2, (6, 50), generator=g)
    ref = sum(int((s[i] != s[j]).sum()) for i in range(6) for j in range(6) if i != j)
    assert sign_disagreement(s) == ref
    assert sign_disagreement(s[:1]) == 0


def correspondence_reference(net, x, parts, sizes, draw_boxes, path):
    """Masks built by hand, one forward pass per masked image."""
    kept: list[torch.Tensor] = []
    h = net.get_submodule(path).register_forward_hook(lambda m, i, o: kept.append(o.detach().flatten(1).clone()))
    try:
        with torch.no_grad():
            net(x)
            base = kept.pop()

            def eps(i: int, box) -> torch.Tensor:
                z = x[i].clone()
                t, l, b, r = box
                z[:, t:b, l:r] = 0.0
                net(z[None])
                return torch.sign(base[i] - kept.pop()[0])

            out = {}
            for name, p in parts.items():
                e = [eps(i, square_box(float(p[i, 0]), float(p[i, 1]), sizes[i], 16, 16)) for i in range(len(x))]
                out[name] = sum(int((e[i] != e[j]).sum()) for i in range(len(e)) for j in range(len(e)) if i != j)
            rnd = []
            for boxes in draw_boxes:
                e = [eps(i, b) for i, b in enumerate(boxes)]
                rnd.append(sum(int((e[i] != e[j]).sum()) for i in range(len(e)) for j in range(len(e)) if i != j))
    finally:
        h.remove()
    return out, rnd


def test_correspondence_equals_a_hand_computed_reference(images):
    net = small_net()
    x = images
    parts = {"a": torch.tensor([[3.0, 4.0], [5.0, 5.0], [2.0, 12.0]]),
             "b": torch.tensor([[12.0, 12.0], [float("nan"), float("nan")], [14.5, 1.0]])}
    objects = torch.zeros(3, 16, 16, dtype=torch.bool)
    objects[:, 4:12, 3:9] = True
    res = correspondence(net, x, parts, objects, [4, 5, 3], layers=["1", "4"], draws=4, seed=7)
    # the same random centres as the library draws: per draw, per image, one object pixel
    rng = np.random.default_rng(7)
    on = [objects[i].nonzero().numpy() for i in range(3)]
    draw_boxes = []
    for _ in range(4):
        boxes = []
        for i in range(3):
            cy, cx = on[i][rng.integers(len(on[i]))]
            boxes.append(square_box(float(cy), float(cx), [4, 5, 3][i], 16, 16))
        draw_boxes.append(boxes)
    hooks = hook_count(net)
    for layer in ("1", "4"):
        want = {"a": parts["a"], "b": parts["b"][[0, 2]]}
        ref, rnd = correspondence_reference(net, x, {"a": want["a"]}, [4, 5, 3], draw_boxes, layer)
        refb, _ = correspondence_reference(net, x[[0, 2]], {"b": want["b"]}, [4, 3], [], layer)
        assert res.delta[layer]["a"] == ref["a"]
        assert res.delta[layer]["b"] == refb["b"]
        assert res.random_delta[layer].tolist() == rnd
        d = res.dims[layer]
        assert res.score[layer]["a"] == ref["a"] / (3 * 2 * d)
        assert res.score[layer]["b"] == refb["b"] / (2 * 1 * d)
    assert res.counts == {"a": 3, "b": 2} and hook_count(net) == hooks
    table = res.table()
    assert len(table) == 3 and "random (4 draws" in table.rows[-1][0]


def test_correspondence_bad_input(images):
    net = small_net()
    obj = torch.ones(3, 16, 16, dtype=torch.bool)
    part = {"p": torch.tensor([[3.0, 3.0]] * 3)}
    with pytest.raises(ValueError, match="at least two images"):
        correspondence(net, images[:1], {"p": torch.tensor([[3.0, 3.0]])}, obj[:1], 3, layers=["4"])
    with pytest.raises(ValueError, match="outside"):
        correspondence(net, images, {"p": torch.tensor([[3.0, 3.0], [3.0, 30.0], [1.0, 1.0]])}, obj, 3, layers=["4"])
    with pytest.raises(ValueError, match="draws must be at least 2"):
        correspondence(net, images, part, obj, 3, layers=["4"], draws=1)
    with pytest.raises(ValueError, match="non-empty object"):
        correspondence(net, images, part, torch.zeros(3, 16, 16, dtype=torch.bool), 3, layers=["4"])
    with pytest.raises(ValueError, match="p5 and fc7"):
        correspondence(net, images, part, obj, 3)


def test_shipped_annotations_are_consistent():
    import vizlib as vl

    raw = json.loads(PARTS_PATH.read_text())
    assert "format" in raw
    sets = part_sets()
    boots = sets["ankle_boots"]
    assert 5 <= len(boots) <= 10 and boots.parts == ("toe", "heel", "collar")
    sample = vl.fashion_mnist_sample()
    pics = boots.pictures()
    for im, pic in zip(boots.images, pics):
        i = int(np.flatnonzero(sample.indices == int(im.id))[0])
        assert sample.labels[i] == 9  # ankle boots
        for y, x in im.parts.values():
            assert 0 <= y <= 27 and 0 <= x <= 27
            assert pic[int(round(y)), int(round(x))] > 0  # on the boot
    faces = sets["faces"]
    assert all(im.box is not None for im in faces.images)
    boxes = object_boxes()  # the one definition of the demo photos' object boxes
    assert set(boxes) == {d.name for d in DEMO_IMAGES}
    with pytest.raises(KeyError, match="no part set"):
        part_set("dogs")
    with pytest.raises(FileNotFoundError, match="no part annotation file"):
        part_sets(PARTS_PATH.parent / "no_such_annotations.json")


def test_points_follow_the_transforms():
    """A bright dot at an annotated point lands where map_points says, for both preprocessings."""
    from PIL import Image
    from torchvision.models import AlexNet_Weights

    from vizlib.models.training import Preprocess

    tv = AlexNet_Weights.IMAGENET1K_V1.transforms()
    for transform, shape, point in ((tv, (300, 451), (117, 165)), (tv, (512, 400), (300, 120)),
                                    (Preprocess(64, 0.3, 0.3), (28, 28), (19, 3))):
        pic = np.zeros(shape + ((3,) if transform is tv else ()), np.uint8)
        y, x = point
        pic[y - 2 : y + 3, x - 2 : x + 3] = 255
        out = transform(Image.fromarray(pic))[0]
        my, mx = map_points([point], shape, transform)[0][0]
        wgt = (out - out.min()).double()
        rows, cols = torch.meshgrid(torch.arange(out.shape[0]), torch.arange(out.shape[1]), indexing="ij")
        cy, cx = float((wgt * rows).sum() / wgt.sum()), float((wgt * cols).sum() / wgt.sum())  # the dot's centroid
        assert abs(cy - my) < 0.2 and abs(cx - mx) < 0.2
    t, l, b, r = map_box((0, 60, 300, 420), (300, 451), tv)
    assert (t, l, b, r) == (0, 0, 224, 224)


# --------------------------------------------------------------------------- the untrained control


def test_untrained_like_and_the_gap(images):
    import vizlib as vl

    net = small_net()
    parts = {"a": torch.tensor([[3.0, 4.0], [5.0, 5.0], [2.0, 12.0]])}
    objects = torch.ones(3, 16, 16, dtype=torch.bool)
    res = correspondence(net, images, parts, objects, 4, layers=["1", "4"], draws=3)
    ctl_net = untrained_like(vl.Net("x", "random", net, [str(i) for i in range(7)], None, MEAN, STD, 16, "test"), 3)
    assert ctl_net.model is not net and not torch.equal(ctl_net.model[0].weight, net[0].weight)
    assert res.gap("1") == pytest.approx(res.random_mean("1")[0] - res.score["1"]["a"])


def test_prepared_objects_are_the_one_mask_of_each_image():
    """A part set's object regions are its images' ExampleImage masks carried by transform_mask."""
    import vizlib as vl
    from vizlib.core.measures import silhouette_mask, transform_mask
    from vizlib.models.training import Preprocess

    net = vl.Net("alexnet", "bundled", alexnet_fmnist(seed=0).eval(), list(FASHION_MNIST_CLASSES),
                 Preprocess(64, 0.3, 0.35), (0.3,), (0.35,), 64, "untrained")
    boots = part_set("ankle_boots")
    examples = boots.examples()
    prep = boots.prepare(net)
    assert [ex.name for ex in examples] == prep.names and all(ex.category == "Ankle boot" for ex in examples)
    from vizlib.core.composed import bundled_sample

    s = bundled_sample()
    where = {int(t): i for i, t in enumerate(s.indices)}
    for i, ex in enumerate(examples):
        assert np.array_equal(ex.mask, s.masks[where[int(ex.name)]])  # the composed garment's exact mask
        assert torch.equal(prep.objects[i], transform_mask(net, ex.mask))
        assert torch.equal(prep.images[i], ex.tensor(net))
    assert prep.objects.shape == (8, 64, 64) and prep.images.shape == (8, 1, 64, 64)
