"""Streaming top-k against brute force, its memory, and the patches and projections it collects."""

from __future__ import annotations

import weakref

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vizlib.methods.deconvnet import Deconvnet
from vizlib.core.errors import NoPositiveActivation
from vizlib.core.errors import ImageError
from vizlib.core.images import ImageFiles
from vizlib.models.nets import alexnet
from vizlib.methods.receptive_field import unit_box
from vizlib.methods.topk import TopKMiner, top_activations, top_patches

SIZE = 67


@pytest.fixture(scope="module")
def model():
    return alexnet(seed=0, num_classes=10).double().eval()


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, 3, SIZE, SIZE, generator=g, dtype=torch.float64)
    x[7] = x[3]  # identical images: ties, to be broken towards the earlier image
    x[20] = x[3]
    x[11] = 0.0
    return x


def layer_output(model: nn.Module, path: str, batches: list[torch.Tensor]) -> torch.Tensor:
    out: list[torch.Tensor] = []
    h = model.get_submodule(path).register_forward_hook(lambda m, i, o: out.append(o.detach().clone()))
    try:
        with torch.no_grad():
            for b in batches:
                model(b)
    finally:
        h.remove()
    return torch.cat(out)


def brute_force(act: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per map: every image's strongest point (first in row-major order), sorted by value, then image."""
    n, c = act.shape[:2]
    flat = act.reshape(n, c, -1).numpy()
    w = act.shape[-1] if act.ndim == 4 else 1
    vals = np.zeros((c, k)), np.zeros((c, k), dtype=np.int64), np.zeros((c, k, 2), dtype=np.int64)
    for ch in range(c):
        best = flat[:, ch].max(1)
        where = flat[:, ch].argmax(1)
        order = np.lexsort((np.arange(n), -best))[:k]
        vals[0][ch] = best[order]
        vals[1][ch] = order
        vals[2][ch] = np.stack([where[order] // w, where[order] % w], 1)
    return vals


@pytest.mark.parametrize("layer", ["c2", "p2", "c5", "fc7"])
def test_streaming_equals_brute_force(model, images, layer):
    batches = [images[0:7], images[7:12], images[12:30]]  # uneven batches, as a loader might give
    top = top_activations(model, layer, batches, k=5, progress=False)
    act = layer_output(model, model.vizlib_layers[layer], batches)
    values, index, pos = brute_force(act, 5)
    assert top.n_images == 30
    assert np.array_equal(top.values.numpy(), values)
    assert np.array_equal(top.image_index.numpy(), index)
    assert np.array_equal(top.position.numpy(), pos)
    # the three copies of image 3 tie: wherever two of them are kept with the same value, the
    # earlier comes first (a dense layer may round a copy differently in a batch of another size)
    for ch in range(top.values.shape[0]):
        kept = [(v, i) for v, i in zip(top.values[ch].tolist(), top.image_index[ch].tolist()) if i in (3, 7, 20)]
        for value in {v for v, _ in kept}:
            tied = [i for v, i in kept if v == value]
            assert tied == sorted(tied)


def test_streaming_without_distinct_images(model, images):
    top = top_activations(model, "c3", images, k=4, distinct_images=False, batch_size=8, progress=False)
    act = layer_output(model, model.vizlib_layers["c3"], list(images.split(8)))
    expected = act.transpose(0, 1).reshape(act.shape[1], -1).topk(4, dim=1).values
    assert torch.equal(top.values, expected)
    for ch in (0, 17, 100):
        for r in range(4):
            i, (y, x) = int(top.image_index[ch, r]), top.position[ch, r].tolist()
            assert act[i, ch, y, x] == top.values[ch, r]


def test_memory_does_not_grow_with_the_number_of_images():
    def stream(n_batches: int):
        g = torch.Generator().manual_seed(1)
        for _ in range(n_batches):
            yield torch.randn(16, 32, 5, 5, generator=g)

    sizes = []
    for n in (10, 100):
        miner = TopKMiner(32, 9)
        last = None
        for batch in stream(n):
            miner.update(batch)
            last = weakref.ref(batch)
        del batch
        assert last() is None  # no batch is kept alive by the miner
        sizes.append(miner.state_bytes())
        assert miner.seen == 16 * n
    assert sizes[1] <= 1.1 * sizes[0]
    assert sizes[0] == 32 * 9 * (4 + 8 + 2 * 8)


def test_mining_a_generator_and_data_kinds(model, images):
    ref = top_activations(model, "c2", images, k=3, batch_size=10, progress=False)
    labels = torch.zeros(len(images), dtype=torch.long)
    kinds = {
        "dataset": TensorDataset(images, labels),
        "loader": DataLoader(TensorDataset(images, labels), batch_size=6),
        "pairs": [(images[i : i + 10], labels[i : i + 10]) for i in range(0, 30, 10)],
        "generator": (images[i : i + 5] for i in range(0, 30, 5)),
        "single images": list(images),
    }
    for name, data in kinds.items():
        top = top_activations(model, "c2", data, k=3, batch_size=10, progress=False)
        assert torch.allclose(top.values, ref.values, rtol=1e-12, atol=0), name
        assert torch.equal(top.image_index, ref.image_index), name


def test_collect_patches_and_projections(model, images):
    loader = DataLoader(TensorDataset(images, torch.zeros(30)), batch_size=8)
    top = top_patches(model, "c3", loader, k=3, channels=[0, 5, 9], progress=False)
    assert top.patches is not None and top.projections is not None
    r = top.patches.shape[-1]
    assert top.patches.shape == (3, 3, 3, r, r) == top.projections.shape
    dn = Deconvnet(model)
    for row, ch in enumerate([0, 5, 9]):
        for q in range(3):
            i = int(top.image_index[ch, q])
            y, x = top.position[ch, q].tolist()
            if top.values[ch, q] <= 0:
                continue
            one = dn.project(images[i], "c3", ch, (y, x))
            assert torch.allclose(top.projections[row, q], one.pixels[0], rtol=1e-9, atol=1e-12)
            assert torch.equal(top.origin[row, q], one.origin[0])
            t, l, b, rr = unit_box(model, "c3", y, x, SIZE)
            oy, ox = top.origin[row, q].tolist()
            assert torch.equal(top.patches[row, q, :, t - oy : b - oy, l - ox : rr - ox], images[i, :, t:b, l:rr])
    pics, projs = top.patch_images(5), top.projection_images(5)
    assert len(pics) == len(projs) == 3
    assert pics[0].shape[:2] == projs[0].shape[:2] and pics[0].shape[-1] == 3
    assert all(0 <= p.min() and p.max() <= 1 for p in projs)


def test_collect_a_dense_layer(model, images):
    top = top_patches(model, "fc6", images, k=2, channels=[1, 2], batch_size=12, progress=False)
    dn = Deconvnet(model)
    for row, u in enumerate([1, 2]):
        i = int(top.image_index[u, 0])
        if top.values[u, 0] > 0:
            assert torch.allclose(top.projections[row, 0], dn.project(images[i], "fc6", u).pixels[0])
        assert torch.equal(top.patches[row, 0], images[i])


def test_collect_refuses_data_it_cannot_go_through_again(model, images):
    gen = (images[i : i + 10] for i in range(0, 30, 10))
    top = top_activations(model, "c5", gen, k=2, progress=False)
    with pytest.raises(ValueError, match="one-shot iterator"):
        top.collect(model, (images[i : i + 10] for i in range(0, 30, 10)), [0], progress=False)
    shuffled = DataLoader(TensorDataset(images), batch_size=10, shuffle=True)
    with pytest.raises(ValueError, match="shuffle=False"):
        top.collect(model, shuffled, [0], progress=False)
    with pytest.raises(ValueError, match="channel 256 is out of range"):
        top.collect(model, images, [256], progress=False)
    with pytest.raises(ValueError, match="collect"):
        top.patch_images(0)


def test_bad_data(model):
    with pytest.raises(ValueError, match="expects 3-channel images but the image is greyscale"):
        top_activations(model, "c1", torch.randn(4, 1, SIZE, SIZE, dtype=torch.float64), progress=False)
    with pytest.raises(ValueError, match="smaller than this network accepts"):
        top_activations(model, "c1", torch.randn(4, 3, 20, 20, dtype=torch.float64), progress=False)
    with pytest.raises(TypeError, match="expected image tensors"):
        top_activations(model, "c1", [["a", "b"]], progress=False)


def test_dead_maps_are_flagged(model, images):
    import copy

    dead = copy.deepcopy(model)
    with torch.no_grad():
        dead.features[10].bias.fill_(-1e3)
    top = top_activations(dead, "c5", images, k=2, progress=False)
    assert top.empty.all()
    with pytest.warns(NoPositiveActivation, match="no positive activation"):
        got = top.collect(dead, images, [0, 1], progress=False)
    assert (got.projections == 0).all()


def test_a_folder_of_images(tmp_path):
    from PIL import Image
    from torchvision import transforms as T

    rng = np.random.default_rng(0)
    for i in range(5):
        arr = (rng.random((70 + i, 75, 3)) * 255).astype(np.uint8)
        img = Image.fromarray(arr)
        (img.convert("L") if i == 2 else img).save(tmp_path / f"img{i}.png")
    (tmp_path / "readme.txt").write_text("not a picture")
    net = alexnet(seed=0, num_classes=10)
    tf = T.Compose([T.Resize((SIZE, SIZE)), T.ToTensor()])
    ds = ImageFiles(tmp_path, net, transform=tf)
    assert len(ds) == 5
    x, path = ds[2]
    assert x.shape == (3, SIZE, SIZE) and path.endswith("img2.png")
    top = top_patches(net, "c2", ds, k=2, channels=[0, 1], progress=False)
    assert top.n_images == 5 and top.patches.shape[:2] == (2, 2)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ImageError, match="broken.png"):
        ImageFiles(tmp_path, net, transform=tf)[0]
    with pytest.raises(ImageError, match="no image files"):
        ImageFiles(_empty(tmp_path), net)


def _empty(base):
    d = base / "empty"
    d.mkdir()
    return d
