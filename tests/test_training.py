"""The training recipe, run for real on tiny subsets; checkpoints and the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

import vizlib.models.training as T
from vizlib.models.bundled_nets import alexnet_fmnist, vgg_fmnist, zfnet_fmnist
from vizlib.core.data import FASHION_MNIST_CLASSES, ImageSet, fashion_mnist_sample



def fake_root(folder, label: int, n: int):
    """A folder with tiny train/test IDX files (gzipped, Fashion-MNIST's names), all labelled ``label``."""
    import gzip
    import struct

    import vizlib.core.data as D

    rng = np.random.default_rng(label)
    folder.mkdir(parents=True)
    for img, lab in D._FILES.values():
        for stem, arr in ((img, rng.integers(0, 256, (n, 28, 28))), (lab, np.full(n, label))):
            arr = arr.astype(np.uint8)
            head = bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
            with gzip.open(folder / f"{stem}.gz", "wb") as fh:
                fh.write(head + arr.tobytes())
    return folder


@pytest.fixture(scope="module")
def tiny() -> ImageSet:
    """192 real Fashion-MNIST images (from the committed sample), every class."""
    return fashion_mnist_sample().subset(slice(0, 1500, 8))


def prep(size: int = 64) -> T.Preprocess:
    return T.Preprocess(size, 0.286, 0.353)


# --------------------------------------------------------------------------- pieces


def test_augment_identity_flip_and_crop():
    g = torch.Generator().manual_seed(0)
    imgs = torch.arange(6 * 5 * 7, dtype=torch.uint8).view(6, 5, 7)
    assert torch.equal(T.augment(imgs, g, pad=0, flip=False), imgs)
    flipped = T.augment(imgs, torch.Generator().manual_seed(3), pad=0, flip=True)
    same = [torch.equal(f, i) for f, i in zip(flipped, imgs)]
    mirrored = [torch.equal(f, i.flip(1)) for f, i in zip(flipped, imgs)]
    assert all(s or m for s, m in zip(same, mirrored)) and any(same) and any(mirrored)
    cropped = T.augment(imgs, g, pad=2, flip=False)
    padded = torch.nn.functional.pad(imgs, (2, 2, 2, 2))
    for c, p in zip(cropped, padded):  # each is a 5x7 window of the padded image
        assert any(torch.equal(c, p[y : y + 5, x : x + 7]) for y in range(5) for x in range(5))


def test_renormalize_filters_exact():
    conv = nn.Conv2d(2, 3, 2)
    w = torch.zeros(3, 2, 2, 2)
    w[0] = 0.2  # RMS 0.2 -> scaled to 0.1
    w[1] = 0.05  # RMS 0.05 -> untouched
    w[2, 0, 0, 0] = 1.0  # RMS sqrt(1/8) -> scaled by 0.1 / 0.35355
    conv.weight.data.copy_(w)
    assert T.renormalize_filters(conv, 0.1) == 2
    rms = T.filter_rms(conv)[""]
    torch.testing.assert_close(rms, torch.tensor([0.1, 0.05, 0.1]))
    assert torch.equal(conv.weight[1], w[1])  # bit for bit
    torch.testing.assert_close(conv.weight[0], torch.full((2, 2, 2), 0.1))
    assert T.renormalize_filters(conv, 0.1) == 0 or float(T.filter_rms(conv)[""].max()) <= 0.1 + 1e-7


def test_preprocess_paths_agree():
    p = prep(64)
    img = fashion_mnist_sample().images[:3]
    batch = p.batch(torch.from_numpy(img))
    assert batch.shape == (3, 1, 64, 64) and batch.dtype == torch.float32
    assert torch.equal(p(img[1]), batch[1])  # H x W array
    assert torch.equal(p(np.stack([img[1]] * 3, -1)), batch[1])  # grey as RGB
    from PIL import Image

    assert torch.equal(p(Image.fromarray(img[1])), batch[1])
    flat = p(np.full((28, 28), 255, np.uint8))
    torch.testing.assert_close(flat, torch.full((1, 64, 64), (1 - 0.286) / 0.353))
    wide = np.zeros((40, 100), np.uint8)
    wide[:, 30:70] = 255  # the centred square is all white
    torch.testing.assert_close(prep(32)(wide), torch.full((1, 32, 32), (1 - 0.286) / 0.353))
    with pytest.raises(TypeError, match="uint8"):
        p(np.zeros((28, 28), np.float32))


# --------------------------------------------------------------------------- the loop, for real


def test_loss_falls_and_renorm_holds_after_every_step(tiny):
    model = zfnet_fmnist(seed=0)
    p = prep(64)
    before = T.evaluate(model, tiny, p)
    worst: list[float] = []

    def check(step: int, m: nn.Module, loss: float) -> None:
        worst.append(max(float(r.max()) for r in T.filter_rms(m).values()))

    config = T.TrainConfig(epochs=3, batch_size=32, seed=0, renorm=True, compose=False)  # the plain garments: a steady fall
    history = T.train(model, tiny, p, config, device="cpu", progress=False, on_step=check)
    after = T.evaluate(model, tiny, p)
    assert len(worst) == history.steps == 3 * 6
    assert max(worst) <= 0.1 * (1 + 1e-6)  # every conv filter, after every step
    assert history.epochs[0].renormalized > 0  # the switch did something
    assert after.loss < before.loss
    assert [e.epoch for e in history.epochs] == [1, 2, 3]


def test_without_renorm_filters_grow_past_the_radius(tiny):
    model = alexnet_fmnist(seed=0)
    config = T.TrainConfig(epochs=1, batch_size=64, seed=0, renorm=False)
    T.train(model, tiny, prep(64), config, device="cpu", progress=False)
    assert max(float(r.max()) for r in T.filter_rms(model).values()) > 0.1


def test_deterministic_for_a_seed_and_leaves_global_rng_and_mode(tiny):
    def run(seed: int) -> dict[str, torch.Tensor]:
        model = vgg_fmnist(seed=seed).eval()
        config = T.TrainConfig(epochs=1, batch_size=48, seed=seed)
        T.train(model, tiny, prep(64), config, val_set=tiny.subset(slice(0, 40)), device="cpu", progress=False)
        assert not model.training  # came in eval mode, leaves in eval mode
        return model.state_dict()

    state = torch.random.get_rng_state()
    a, b, c = run(0), run(0), run(1)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_training_composes_a_new_draw_each_epoch(tiny, monkeypatch):
    from vizlib.core import composed as C

    seeds = []
    real = C.ComposedImages.__init__

    def spy(self, images, seed=0, *args, **kwargs):
        seeds.append(seed)
        real(self, images, seed, *args, **kwargs)

    monkeypatch.setattr(C.ComposedImages, "__init__", spy)
    config = T.TrainConfig(epochs=2, batch_size=96, seed=3)
    T.train(alexnet_fmnist(seed=0), tiny, prep(64), config, device="cpu", progress=False)
    assert seeds == [T.epoch_seed(3, 1), T.epoch_seed(3, 2)] == [3001, 3002]


def test_evaluate_streams_composed_images(tiny):
    from vizlib.core.composed import ComposedImages

    data = ComposedImages(tiny.subset(slice(0, 30)), seed=0)
    model = alexnet_fmnist(seed=0)
    ev = T.evaluate(model, data, prep(64), batch_size=7)
    x = torch.from_numpy(np.stack([data[i][0] for i in range(30)]))
    with torch.no_grad():
        want = int((model.eval()(prep(64).batch(x)).argmax(1) == torch.as_tensor(tiny.labels[:30])).sum())
    assert ev.total == 30 and ev.correct == want


def test_first_layer_decay_and_fixed_annealing(tiny):
    model = alexnet_fmnist(seed=0)
    config = T.TrainConfig(epochs=3, batch_size=96, seed=0, anneal_at=(1, 2), first_layer_decay=0.5)
    h = T.train(model, tiny, prep(64), config, device="cpu", progress=False)
    assert [e.lr for e in h.epochs] == pytest.approx([1e-2, 1e-3, 1e-4])


def test_on_black_centres_the_garments(tiny):
    b = T.on_black(tiny, 64)
    assert b.images.shape == (len(tiny), 64, 64)
    assert (b.images[:, 18:46, 18:46] == tiny.images).all() and b.images.sum() == tiny.images.astype(int).sum()


def test_evaluate_keeps_train_mode(tiny):
    model = alexnet_fmnist(seed=0).train()
    ev = T.evaluate(model, tiny.subset(slice(0, 10)), prep(64))
    assert model.training and ev.total == 10 and 0 <= ev.correct <= 10


def test_plateau_anneals_the_learning_rate(tiny):
    model = vgg_fmnist(seed=0)
    config = T.TrainConfig(epochs=3, batch_size=96, seed=0, lr=1e-6, patience=0, min_lr=0.0)  # too small to improve
    h = T.train(model, tiny, prep(64), config, val_set=tiny, device="cpu", progress=False)
    lrs = [e.lr for e in h.epochs]
    assert lrs[0] == 1e-6 and lrs[-1] < lrs[0]


# --------------------------------------------------------------------------- checkpoints


def saved(tmp_path, half: bool = False):
    model = zfnet_fmnist(seed=2)
    path = T.save_checkpoint(
        model, tmp_path / "z.pt", arch="zfnet", preprocess=prep(64), classes=FASHION_MNIST_CLASSES, epoch=4, half=half
    )
    return model, path


def test_checkpoint_round_trip(tmp_path):
    model, path = saved(tmp_path)
    loaded, meta = T.load_checkpoint(path, expected_sha256=T.sha256(path))
    assert meta["arch"] == "zfnet" and meta["epoch"] == 4 and meta["input_size"] == 64
    assert meta["classes"] == list(FASHION_MNIST_CLASSES) and not loaded.training
    assert loaded.vizlib_arch == "zfnet" and "n1" in loaded.vizlib_layers
    ref = model.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in loaded.state_dict().items())
    torch.load(path, map_location="cpu", weights_only=True)  # plain tensors and builtins only


def test_half_snapshot_loads_as_float32(tmp_path):
    model, path = saved(tmp_path, half=True)
    loaded, _ = T.load_checkpoint(path)
    for k, v in loaded.state_dict().items():
        assert v.dtype == torch.float32
        torch.testing.assert_close(v, model.state_dict()[k], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "not-vizlib", "missing", "wrong-shape"])
def test_damaged_checkpoint_gives_a_clear_error(tmp_path, damage):
    _, path = saved(tmp_path)
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"this is not a checkpoint" * 100)
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "not-vizlib":
        torch.save({"weights": torch.zeros(3)}, path)
    elif damage == "missing":
        path.unlink()
    elif damage == "wrong-shape":
        payload = torch.load(path, weights_only=True)
        payload["state_dict"]["features.0.weight"] = torch.zeros(1)
        torch.save(payload, path)
    with pytest.raises(T.CheckpointError, match=str(path.name)) as info:
        T.load_checkpoint(path)
    assert "python -m vizlib.models.training" in str(info.value)


def test_checksum_mismatch(tmp_path):
    _, path = saved(tmp_path)
    with pytest.raises(T.CheckpointError, match="SHA-256"):
        T.load_checkpoint(path, expected_sha256="0" * 64)


# --------------------------------------------------------------------------- the command line


def test_command_line_writes_checkpoint_snapshots_and_record(tmp_path):
    root = fake_root(tmp_path / "data", 3, n=80)
    out = tmp_path / "out"
    argv = ["vgg16", "--epochs", "2", "--seed", "5", "--batch-size", "32", "--val-size", "16",
            "--snapshots", "0,2", "--root", str(root), "--out", str(out), "--device", "cpu", "--no-progress"]
    record = T.main(argv)
    on_disk = json.loads((out / "vgg16_fmnist.json").read_text())
    assert on_disk == json.loads(json.dumps(record))
    assert record["command"].endswith("python -m vizlib.models.training " + " ".join(argv))
    assert record["seed"] == 5 and record["epochs"] == 2 and record["renorm"] is True
    assert record["train_images"] == 64 and record["val_images"] == 16
    assert record["test_images"] == 80 and record["test_correct"] == 80 * record["test_accuracy"]
    assert record["sample_images"] == 1500 and record["device"].startswith("cpu")
    assert record["wall_time_s"] >= 0 and len(record["history"]) == 2
    assert sorted(record["snapshots"]) == ["0", "2"]
    for snap in record["snapshots"].values():
        assert T.sha256(out / snap["checkpoint"]) == snap["sha256"]
    model, _ = T.load_checkpoint(out / "vgg16_fmnist.pt", expected_sha256=record["sha256"])
    from vizlib.core.composed import bundled_sample

    p = T.Preprocess(64, record["mean"][0], record["std"][0])
    assert T.evaluate(model, bundled_sample(), p).correct == record["sample_correct"]
    assert record["plain_test_accuracy"] is not None and "composed" in record["data"]


def test_command_line_trains_on_some_classes_only(tmp_path):
    """--classes: the held-out-classes pretrain. Only those classes are trained and tested, relabelled in order."""
    root = fake_root(tmp_path / "data", 3, n=40)
    out = tmp_path / "out"
    argv = ["alexnet", "--epochs", "1", "--batch-size", "16", "--val-size", "8", "--classes", "3,7", "--root", str(root),
            "--out", str(out), "--name", "two", "--device", "cpu", "--no-progress"]
    record = T.main(argv)
    assert record["config"]["classes"] == [3, 7]
    assert record["train_images"] == 32 and record["test_images"] == 40  # every fake image is of class 3
    assert record["sample_images"] == 300  # the sample's 150 dresses and 150 sneakers
    model, meta = T.load_checkpoint(out / "two.pt", expected_sha256=record["sha256"])
    assert meta["classes"] == ["Dress", "Sneaker"] and model.classifier[-1].out_features == 2
