"""DeNet against hand-computed results and against the deconvnet; its measures; its behaviour on bad input.

The hand-built net (all weights integers or halves, the expected images worked
out on paper in the comments):

    input 1×4×4  ->  conv 1×1, 2 maps (weights +1 and -1, biases 0 and 18)  ->  ReLU
    ->  max pool 2×2  ->  flatten (8)  ->  fc_a: Linear(8, 3)  ->  [ReLU]  ->  fc_b: Linear(3, 2)
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

import vizlib as vl
from vizlib.models.bundled_nets import alexnet_fmnist, vgg_fmnist, zfnet_fmnist
from vizlib.core.data import FASHION_MNIST_CLASSES
from vizlib.core.errors import UnsupportedLayer
from vizlib.methods.denet import DeNet, class_correlation, class_correlations, grid_share
from vizlib.core.errors import NoDenseLayers, NoObjectRegion
from vizlib.core.measures import energy_inside, object_mask, transform_mask
from vizlib.core.net import Net
from vizlib.models.training import Preprocess

from .conftest import hook_count, modes

TOL = 1e-5

X = torch.tensor([[3.0, 12, 7, 1], [9, 5, 16, 4], [14, 2, 10, 13], [6, 11, 8, 15]]).view(1, 4, 4)
# map 0 = x, map 1 = 18 - x (all positive). Pooling windows and their switches (row, col):
#   top-left  [[3, 12], [9, 5]]     map 0 max 12 at (0, 1); map 1 max (smallest x, 3) at (0, 0)
#   top-right [[7, 1], [16, 4]]     map 0 max 16 at (1, 2); map 1 at (0, 3)
#   bot-left  [[14, 2], [6, 11]]    map 0 max 14 at (2, 0); map 1 at (2, 1)
#   bot-right [[10, 13], [8, 15]]   map 0 max 15 at (3, 3); map 1 at (3, 2)
W_A = [[1.0, 0, 0, -1, 0, 1, 0, 0], [0, 1, 0, 0, 0, 0, 1, 0], [0, 0, 1, 0, -1, 0, 0, 1]]
B_A = [1.0, -1, 0.5]
W_B = [[1.0, 0, 2], [0, 1, -1]]
B_B = [0.5, -1]


def hand_net(relu_between: bool = True, dense_bias: bool = True) -> nn.Sequential:
    conv = nn.Conv2d(1, 2, 1)
    fc_a, fc_b = nn.Linear(8, 3), nn.Linear(3, 2)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
        conv.bias.copy_(torch.tensor([0.0, 18.0]))
        fc_a.weight.copy_(torch.tensor(W_A))
        fc_b.weight.copy_(torch.tensor(W_B))
        fc_a.bias.copy_(torch.tensor(B_A) if dense_bias else torch.zeros(3))
        fc_b.bias.copy_(torch.tensor(B_B) if dense_bias else torch.zeros(2))
    mid = [nn.ReLU()] if relu_between else []
    return nn.Sequential(conv, nn.ReLU(inplace=True), nn.MaxPool2d(2, 2), nn.Flatten(), fc_a, *mid, fc_b).eval()


def image(values: dict[tuple[int, int], float]) -> torch.Tensor:
    out = torch.zeros(1, 4, 4)
    for (y, x), v in values.items():
        out[0, y, x] = v
    return out


# --------------------------------------------------------------------------- hand-computed


# class 0: (e0 - b_B) = [0.5, 1] -> @W_B = [0.5, 1, 0] (nothing to rectify) -> - b_A = [-0.5, 2, -0.5]
#   -> @W_A = [-0.5, 2, -0.5, 0.5 | 0.5, -0.5, 2, -0.5]  (map 0 windows TL TR BL BR | map 1 ...)
#   -> unpool, ReLU: map 0: 2 at (1,2), 0.5 at (3,3); map 1: 0.5 at (0,0), 2 at (2,1)
#   -> transposed 1×1 filter (+1, -1): map 0 - map 1
SIGNAL_0 = [-0.5, 2, -0.5, 0.5, 0.5, -0.5, 2, -0.5]
PIXELS_0 = image({(1, 2): 2, (3, 3): 0.5, (0, 0): -0.5, (2, 1): -2})
# class 1: (e1 - b_B) = [-0.5, 2] -> @W_B = [-0.5, 2, -3]
#   not rectified: - b_A = [-1.5, 3, -3.5] -> @W_A = [-1.5, 3, -3.5, 1.5 | 3.5, -1.5, 3, -3.5]
#     -> map 0: 3 at (1,2), 1.5 at (3,3); map 1: 3.5 at (0,0), 3 at (2,1)
#   rectified: [0, 2, 0] - b_A = [-1, 3, -0.5] -> @W_A = [-1, 3, -0.5, 1 | 0.5, -1, 3, -0.5]
#     -> map 0: 3 at (1,2), 1 at (3,3); map 1: 0.5 at (0,0), 3 at (2,1)
SIGNAL_1 = [-1.5, 3, -3.5, 1.5, 3.5, -1.5, 3, -3.5]
PIXELS_1 = image({(1, 2): 3, (3, 3): 1.5, (0, 0): -3.5, (2, 1): -3})
SIGNAL_1_RECT = [-1, 3, -0.5, 1, 0.5, -1, 3, -0.5]
PIXELS_1_RECT = image({(1, 2): 3, (3, 3): 1, (0, 0): -0.5, (2, 1): -3})


@pytest.mark.parametrize(
    "target, rectify, signal, pixels",
    [
        (0, False, SIGNAL_0, PIXELS_0),
        (0, True, SIGNAL_0, PIXELS_0),
        (1, False, SIGNAL_1, PIXELS_1),
        (1, True, SIGNAL_1_RECT, PIXELS_1_RECT),
    ],
)
def test_hand_computed(target, rectify, signal, pixels):
    p = DeNet(hand_net()).project(X, target, rectify=rectify)
    assert p.target == [target] and p.layer == "2" and p.rectify is rectify
    assert torch.allclose(p.signal, torch.tensor(signal).view(1, 2, 2, 2), atol=TOL)
    assert torch.allclose(p.pixels[0], pixels, atol=TOL)


def test_several_targets_in_one_batch_and_the_default():
    net = hand_net()
    rec = DeNet(net).record(X)
    assert torch.allclose(rec.logits, net(X.unsqueeze(0)).detach())
    p = rec.project([1, 0])
    assert torch.allclose(p.pixels, torch.stack([PIXELS_1, PIXELS_0]), atol=TOL)
    default = rec.project()  # the predicted class
    assert default.target == [rec.predicted()] == [int(net(X.unsqueeze(0)).argmax())]
    assert rec.top_classes(2) == net(X.unsqueeze(0))[0].argsort(descending=True).tolist()


def test_a_batch_of_images_uses_each_image_s_switches():
    dn = DeNet(hand_net())
    other = X.flip(-1)
    rec = dn.record(torch.stack([X, other]), batch=True)
    assert rec.images == 2 and rec.logits.shape == (2, 2)
    assert torch.allclose(rec.project(1, image=0).pixels[0], PIXELS_1, atol=TOL)
    assert torch.allclose(rec.project(1, image=1).pixels, dn.project(other, 1).pixels, atol=TOL)
    assert rec.predicted(1) == dn.record(other).predicted()


def test_a_one_hot_weighting_equals_the_target():
    rec = DeNet(hand_net()).record(X)
    p = rec.project(weights=[0.0, 1.0])
    assert p.target == [None]
    assert torch.allclose(p.pixels[0], PIXELS_1, atol=TOL)
    two = rec.project(weights=torch.eye(2))
    assert torch.allclose(two.pixels, torch.stack([PIXELS_0, PIXELS_1]), atol=TOL)


def test_probabilities_at_the_top_undo_the_softmax():
    rec = DeNet(hand_net()).record(X)
    z = torch.tensor([0.3, -1.1])
    as_probs = rec.project(weights=z.softmax(0), top="probabilities")
    as_logits = rec.project(weights=z - z.mean(), top="logits")
    assert as_probs.top == "probabilities"
    assert torch.allclose(as_probs.signal, as_logits.signal, atol=TOL)
    assert torch.allclose(as_probs.pixels, as_logits.pixels, atol=TOL)
    # one-hot probabilities: log clipped at eps, centred: [L/2, -L/2] with L = -log(eps)
    half = -math.log(1e-4) / 2
    one_hot = rec.project(0, top="probabilities", eps=1e-4)
    assert torch.allclose(one_hot.signal, rec.project(weights=[half, -half]).signal, atol=1e-4)


# --------------------------------------------------------------------------- against the deconvnet


@pytest.mark.parametrize("target", [0, 1])
def test_zero_biases_equal_the_deconvnet_from_the_output(target):
    # the deconvnet rectifies at the ReLU between the dense layers: so does DeNet with rectify=True
    net = hand_net(relu_between=True, dense_bias=False)
    rec = DeNet(net).record(X)
    onehot = torch.eye(2)[target]
    deconv = rec.recording.project_signal("6", onehot).pixels
    assert torch.allclose(rec.project(target, rectify=True).pixels, deconv, atol=TOL)
    # with no ReLU between the dense layers, DeNet without rectification is the deconvnet projection
    net2 = hand_net(relu_between=False, dense_bias=False)
    rec2 = DeNet(net2).record(X)
    deconv2 = rec2.recording.project_signal("5", onehot).pixels
    assert torch.allclose(rec2.project(target, rectify=False).pixels, deconv2, atol=TOL)
    assert torch.allclose(rec2.project(target, rectify=True).pixels, deconv2, atol=TOL)  # nothing to rectify


def test_rectification_and_biases_matter():
    net = hand_net(relu_between=True, dense_bias=False)
    rec = DeNet(net).record(X)
    deconv = rec.recording.project_signal("6", torch.eye(2)[1]).pixels
    assert not torch.allclose(rec.project(1, rectify=False).pixels, deconv, atol=1e-3)
    biased = DeNet(hand_net()).record(X)
    assert not torch.allclose(biased.project(1, rectify=True).pixels, deconv, atol=1e-3)


@pytest.mark.parametrize("builder, size", [(alexnet_fmnist, 64), (zfnet_fmnist, 64), (vgg_fmnist, 32)])
def test_zero_biases_equal_the_deconvnet_on_the_bundled_architectures(builder, size):
    model = builder(seed=1).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.bias.zero_()
    x = torch.randn(1, size, size, generator=torch.Generator().manual_seed(0))
    rec = DeNet(model).record(x)
    targets = [0, 3, 9]
    fc8 = model.vizlib_layers["fc8"]
    deconv = rec.recording.project_signal(fc8, torch.eye(10)[targets]).pixels
    ours = rec.project(targets, rectify=True).pixels
    scale = deconv.abs().amax()
    assert scale > 0
    assert torch.allclose(ours, deconv, atol=1e-5 * float(scale))


def test_structure_of_the_papers_networks():
    dn = DeNet(vl.alexnet(seed=0))
    assert dn.dense_layers((3, 224, 224)) == ["fc6", "fc7", "fc8"]
    assert dn.top_conv_layer((3, 224, 224)) == "c5"
    chain = dn.chain((3, 224, 224))
    assert chain.start == "avgpool" and chain.start_shape == (256, 6, 6) and chain.relu_below == (False, True, True)
    small_vgg = DeNet(vgg_fmnist(seed=0))
    assert small_vgg.top_conv_layer((1, 32, 32)) == "c5_3" and small_vgg.dense_layers((1, 32, 32))[-1] == "fc8"


def test_strongest_map_is_the_deconvnet_projection_of_the_map_with_the_largest_activation():
    net = hand_net()
    rec = DeNet(net).record(X)
    p = rec.strongest_map()
    assert int(p.channel[0]) == 1  # map 1 = 18 - x reaches 17, map 0 only 16
    ref = vl.Deconvnet(net).project(X, "1", 1, whole_map=True)
    assert torch.allclose(p.pixels, ref.pixels, atol=TOL)


# --------------------------------------------------------------------------- leaves the model as it was


def test_leaves_the_model_as_it_was():
    model = alexnet_fmnist(seed=0).train()
    next(m for m in model.classifier if isinstance(m, nn.Linear)).weight.requires_grad_(False)
    before = copy.deepcopy(model.state_dict())
    flags = modes(model)
    grads = [p.requires_grad for p in model.parameters()]
    rec = DeNet(model).record(torch.randn(1, 64, 64))
    rec.project([1, 2], rectify=True)
    rec.project(weights=torch.rand(10), top="probabilities")
    rec.strongest_map()
    assert hook_count(model) == 0
    assert modes(model) == flags
    assert [p.requires_grad for p in model.parameters()] == grads
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_leaves_no_hooks_when_it_fails():
    model = hand_net()
    with pytest.raises(ValueError):
        DeNet(model).project(X, 5)
    assert hook_count(model) == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_gpu_equals_cpu():
    model = alexnet_fmnist(seed=0).eval()
    x = torch.randn(1, 64, 64)
    cpu = DeNet(model).project(x, [1, 4]).pixels
    gpu = DeNet(model, device="cuda").project(x, [1, 4]).pixels
    assert gpu.device.type == "cuda"
    assert next(model.parameters()).device.type == "cpu"
    assert torch.allclose(gpu.cpu(), cpu, atol=1e-4 * float(cpu.abs().amax()))


# --------------------------------------------------------------------------- bad input


def test_class_out_of_range():
    rec = DeNet(hand_net()).record(X)
    for bad in (2, -1, 100):
        with pytest.raises(ValueError, match=r"class -?\d+ is out of range: the output layer .* has 2 classes \(0\.\.1\)"):
            rec.project(bad)
    with pytest.raises(ValueError, match="out of range"):
        rec.project([0, 7])


def test_weighting_of_the_wrong_length():
    rec = DeNet(hand_net()).record(X)
    with pytest.raises(ValueError, match=r"shape \(3,\).* has 2 classes\. Give one weight per class"):
        rec.project(weights=[1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="one weight per class"):
        rec.project(weights=torch.ones(2, 5))
    with pytest.raises(ValueError, match="NaN"):
        rec.project(weights=[float("nan"), 1.0])


def test_network_without_dense_layers():
    convs = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2))
    with pytest.raises(NoDenseLayers, match="no nn.Linear layer.*vl.Deconvnet"):
        DeNet(convs)

    class Unused(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.head = nn.Conv2d(1, 2, 3), nn.Linear(2, 2)  # the head is never called

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x).mean((2, 3))

    with pytest.raises(NoDenseLayers, match="calls no nn.Linear"):
        DeNet(Unused()).record(torch.zeros(1, 8, 8))


def test_other_bad_arguments():
    rec = DeNet(hand_net()).record(X)
    with pytest.raises(ValueError, match="either target .* or weights"):
        rec.project(0, weights=[1.0, 0.0])
    with pytest.raises(ValueError, match="top must be one of 'logits', 'probabilities'"):
        rec.project(0, top="softmax")
    with pytest.raises(TypeError, match="index \\(an int\\) or its name"):
        rec.project(1.0)
    with pytest.raises(ValueError, match="cannot be negative"):
        rec.project(weights=[-0.2, 1.2], top="probabilities")
    with pytest.raises(ValueError, match="image 1 was not recorded"):
        rec.project(0, image=1)
    with pytest.raises(ValueError, match="only when DeNet is made from a vizlib Net"):
        rec.project("cat")
    with pytest.raises(ValueError, match="between 1 and 2"):
        rec.top_classes(3)


def test_unsupported_layer_between_dense_layers():
    model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 4),
                          nn.BatchNorm1d(4), nn.Linear(4, 2)).eval()
    with pytest.raises(UnsupportedLayer, match="BatchNorm1d.*between 4 and 6"):
        DeNet(model).record(X)


def fake_fmnist_net(model: nn.Module, size: int = 28) -> Net:
    mean, std = 0.25, 0.5
    return Net("alexnet", "bundled", model, list(FASHION_MNIST_CLASSES), Preprocess(size, mean, std),
               (mean,), (std,), size, "test")


def test_classes_by_name_with_a_net():
    model = alexnet_fmnist(seed=0).eval()
    net = fake_fmnist_net(model, 64)
    img = np.zeros((28, 28), np.uint8)
    img[6:20, 8:22] = 200
    rec = DeNet(net).record(img)  # a raw 28×28 image: the net's transform enlarges it
    assert rec.recording.input_size == (64, 64)
    assert rec.project("Sneaker").target == [FASHION_MNIST_CLASSES.index("Sneaker")]
    with pytest.raises(ValueError, match="unknown class 'Sneakers'; did you mean 'Sneaker'"):
        rec.project("Sneakers")


# --------------------------------------------------------------------------- measures


def test_object_energy_share():
    # DeNet's share on the object is the one energy measure, vizlib.core.measures.energy_inside
    v = torch.zeros(2, 2, 2)
    v[0, 0, 0], v[1, 0, 0], v[0, 1, 1] = 1.0, 2.0, 4.0  # energy: 1 + 4 = 5 at (0,0), 16 at (1,1)
    mask = torch.tensor([[True, False], [False, False]])
    assert energy_inside(v, mask) == pytest.approx(5 / 21)
    assert energy_inside(v[0], mask.numpy()) == pytest.approx(1 / 17)  # (H, W) and a numpy mask
    batch = energy_inside(torch.stack([v, -v, torch.zeros_like(v)]), mask)
    assert batch[:2] == pytest.approx([5 / 21, 5 / 21]) and math.isnan(batch[2])
    with pytest.raises(ValueError, match="the mask is \\(3, 3\\) but the visualisation is \\(2, 2\\)"):
        energy_inside(v, torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="empty"):
        energy_inside(v, torch.zeros(2, 2, dtype=torch.bool))


def test_object_energy_share_is_chapter_6s_measure():
    # one definition: the squared values summed over channels, the share inside the mask
    v = torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(2))
    m = torch.zeros(8, 8, dtype=torch.bool)
    m[2:5, 1:7] = True
    e = v.double().pow(2).sum(0)
    assert vl.energy_inside(v, m) == pytest.approx(float(e[m].sum() / e.sum()))
    assert energy_inside is vl.energy_inside


def test_class_correlation():
    a = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert class_correlation(a, a) == pytest.approx(1.0)
    assert class_correlation(a, -2 * a + 1) == pytest.approx(-1.0)
    # x = [1, 2, 3], y = [1, 3, 2]: centred [-1, 0, 1] and [-1, 1, 0]: 1 / (√2·√2) = 0.5
    assert class_correlation(torch.tensor([1.0, 2, 3]), np.array([1.0, 3, 2])) == pytest.approx(0.5)
    assert math.isnan(class_correlation(torch.ones(3), torch.tensor([1.0, 2, 3])))
    with pytest.raises(ValueError, match="differ in shape"):
        class_correlation(torch.ones(3), torch.ones(4))
    m = class_correlations(torch.stack([a, -a, a.T]))
    assert m.shape == (3, 3) and np.allclose(m, m.T) and np.allclose(np.diag(m), 1) and m[0, 1] == pytest.approx(-1)


def test_grid_share():
    grid = torch.zeros(1, 16, 16)
    grid[:, ::4, :] = 1.0  # a line every 4 rows: its power lies at rows 4, 8 and 12 of the spectrum, equally
    assert grid_share(grid, 4) == pytest.approx(1.0)
    assert grid_share(grid, 2) == pytest.approx(1 / 3)  # of those, only row 8 repeats every 2 pixels
    tiled = torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(1)).repeat(1, 8, 8)
    assert grid_share(tiled, 4) == pytest.approx(1.0)
    noise = torch.randn(8, 64, 64, generator=torch.Generator().manual_seed(0))
    assert grid_share(noise, 4) == pytest.approx(15 / 4095, rel=0.3)  # white noise: the lattice's share of bins
    assert math.isnan(grid_share(torch.ones(8, 8), 2))
    with pytest.raises(ValueError, match="divide the image sides"):
        grid_share(noise, 5)
    with pytest.raises(ValueError, match="at least 2"):
        grid_share(noise, 1)


def test_object_mask():
    # the one mask path: object_mask in the picture's pixels, transform_mask into the net's input.
    # transform_mask checks the picture against the net's model, so the 28×28 case uses a model that
    # takes 28×28 inputs (the small hand-built net); the mask depends only on the transform.
    net = fake_fmnist_net(hand_net(), 28)  # transform keeps 28×28: masks stay exact
    img = np.zeros((28, 28), np.uint8)
    img[5:15, 10:20] = 180
    garment = transform_mask(net, object_mask(img))
    expected = torch.zeros(28, 28, dtype=torch.bool)
    expected[5:15, 10:20] = True
    assert torch.equal(garment, expected)
    assert torch.equal(transform_mask(net, object_mask(img, (5, 10, 15, 20))), expected)
    assert transform_mask(fake_fmnist_net(alexnet_fmnist(seed=0), 56), object_mask(img, (5, 10, 15, 20))) \
        .float().mean() == pytest.approx(100 / 784, abs=0.01)  # scaled with the image
    with pytest.raises(NoObjectRegion, match="holds no pixel of a 28×28 image"):
        object_mask(img, (30, 30, 40, 40))
    with pytest.raises(NoObjectRegion, match="no pixel brighter than 25"):
        object_mask(np.zeros((28, 28), np.uint8))
