"""The bundled model set: architectures, committed checkpoints and records, the switch."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from torch import nn

import vizlib as vl
from vizlib.chapters import ch01
import vizlib.models.bundled as B
import vizlib.models.model_sets as MS
from vizlib.models.bundled_nets import (FMNIST_INPUT_SIZE, BandedLocalResponseNorm, alexnet_fmnist, vgg_fmnist,
                                        zfnet_fmnist)
from vizlib.core.data import DEBIAN_FASHION_MNIST, FASHION_MNIST_CLASSES, fashion_mnist, fashion_mnist_sample
from vizlib.core.errors import CheckpointError
from vizlib.models.training import evaluate, filter_rms

ARCHS = ("alexnet", "zfnet", "vgg16")
FULL_TEST_HERE = (DEBIAN_FASHION_MNIST / "t10k-images-idx3-ubyte.gz").is_file()
SHIPPED = all(B.checkpoint_path(a).is_file() for a in ARCHS)
# Until the trained checkpoints are committed these tests cannot run; they check every shipped file exactly.
needs_checkpoints = pytest.mark.skipif(
    not SHIPPED, reason="the bundled checkpoints are not committed yet (train them with `python -m vizlib.models.training ARCH`)"
)


def layers_of(model: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, kind)]


def map_sizes(model: nn.Module, size: int) -> dict[str, int]:
    out: dict[str, int] = {}
    handles = [
        model.get_submodule(path).register_forward_hook(lambda m, i, o, n=name: out.__setitem__(n, o.shape[-1]))
        for name, path in model.vizlib_layers.items()
        if path.startswith("features")
    ]
    try:
        model.eval()(torch.zeros(1, 1, size, size))
    finally:
        for h in handles:
            h.remove()
    return out


# --------------------------------------------------------------------------- architectures


def test_alexnet_and_zfnet_style_differ_where_zeiler_changed_them():
    a, z = alexnet_fmnist(seed=0), zfnet_fmnist(seed=0)
    for m in (a, z):
        assert len(layers_of(m, nn.Conv2d)) == 5 and len(layers_of(m, nn.Linear)) == 3
        assert [d.p for d in layers_of(m, nn.Dropout)] == [0.5, 0.5]
        pools = layers_of(m, nn.MaxPool2d)
        assert len(pools) == 3 and all(p.kernel_size == 3 and p.stride == 2 for p in pools)  # overlapping
    a1, z1 = layers_of(a, nn.Conv2d)[0], layers_of(z, nn.Conv2d)[0]
    assert a1.kernel_size == (7, 7) and a1.stride == (2, 2)
    assert z1.kernel_size == (5, 5) and z1.stride == (1, 1)  # smaller filter, half the stride
    assert layers_of(z, nn.Conv2d)[1].stride == (2, 2) and layers_of(a, nn.Conv2d)[1].stride == (1, 1)
    assert len(layers_of(a, nn.LocalResponseNorm)) == 0 and len(layers_of(z, nn.LocalResponseNorm)) == 2
    assert [c.out_channels for c in layers_of(a, nn.Conv2d)] == [c.out_channels for c in layers_of(z, nn.Conv2d)]
    assert list(a.vizlib_layers) == ["c1", "p1", "c2", "p2", "c3", "c4", "c5", "p5", "fc6", "fc7", "fc8"]
    assert list(z.vizlib_layers) == ["c1", "p1", "n1", "c2", "p2", "n2", "c3", "c4", "c5", "p5", "fc6", "fc7", "fc8"]
    assert map_sizes(a, 64) == {"c1": 32, "p1": 16, "c2": 16, "p2": 8, "c3": 8, "c4": 8, "c5": 8, "p5": 4}
    assert map_sizes(z, 64) == {
        "c1": 64, "p1": 32, "n1": 32, "c2": 16, "p2": 8, "n2": 8, "c3": 8, "c4": 8, "c5": 8, "p5": 4,
    }
    fields = {n: {r.name: r.size for r in vl.receptive_fields(m)} for n, m in (("a", a), ("z", z))}
    assert (fields["a"]["c2"], fields["z"]["c2"]) == (19, 11)  # below the 28 px garment: parts
    assert (a.vizlib_arch, z.vizlib_arch) == ("alexnet", "zfnet")


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("shape", [(3, 24, 16, 16), (2, 48, 8, 8), (2, 3, 4, 4)])
@pytest.mark.parametrize("size", [5, 4, 1])  # an even window: torch pads one map more before than after
def test_the_banded_response_norm_is_torchs(shape, channels_last, size):
    torch.manual_seed(0)
    x = torch.rand(shape) * 10
    x = (x.contiguous(memory_format=torch.channels_last) if channels_last else x).requires_grad_()
    ours, theirs = BandedLocalResponseNorm(size, 1e-4, 0.75, 2.0), nn.LocalResponseNorm(size, 1e-4, 0.75, 2.0)
    y, ref = ours(x), theirs(x)
    torch.testing.assert_close(y, ref, rtol=1e-6, atol=0)
    g = torch.randn_like(ref)
    torch.testing.assert_close(torch.autograd.grad(y, x, g)[0], torch.autograd.grad(ref, x, g)[0], rtol=1e-6, atol=1e-9)


def test_the_zfnet_style_net_normalises_with_the_banded_form():
    norms = [m for m in zfnet_fmnist(seed=0).modules() if isinstance(m, nn.LocalResponseNorm)]
    assert len(norms) == 2 and all(type(m) is BandedLocalResponseNorm for m in norms)
    assert (norms[0].size, norms[0].alpha, norms[0].beta, norms[0].k) == (5, 1e-4, 0.75, 2.0)
    x = torch.rand(2, 24, 6)  # not 4-D: torch's own path
    torch.testing.assert_close(norms[0](x), nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0)(x), rtol=0, atol=0)


def test_vgg_style_is_five_groups_of_3x3_stacks():
    v = vgg_fmnist(seed=0)
    convs = layers_of(v, nn.Conv2d)
    assert len(convs) == 13 and all(c.kernel_size == (3, 3) and c.stride == (1, 1) for c in convs)
    pools = layers_of(v, nn.MaxPool2d)
    assert len(pools) == 5 and all(p.kernel_size == 2 and p.stride == 2 for p in pools)
    names = list(v.vizlib_layers)
    assert names[:3] == ["c1_1", "c1_2", "p1"] and names[-4:] == ["p5", "fc6", "fc7", "fc8"]
    assert "c5_3" in names and v.vizlib_arch == "vgg16"
    assert map_sizes(v, 64)["p5"] == 2 and map_sizes(v, 64)["c5_3"] == 4
    assert v(torch.zeros(2, 1, 64, 64)).shape == (2, 10)


def test_builders_are_seeded():
    a, b = zfnet_fmnist(seed=3), zfnet_fmnist(seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


# --------------------------------------------------------------------------- committed checkpoints


@pytest.fixture(scope="module")
def sample():
    from vizlib.core.composed import bundled_sample

    return bundled_sample()  # the composed sample the records measure on


@needs_checkpoints
@pytest.mark.parametrize("arch", ARCHS)
def test_checkpoint_record_and_accuracy(arch, sample):
    path = B.checkpoint_path(arch)
    assert path.is_file() and path.stat().st_size < 5_000_000
    rec = B.bundled_record(arch)
    for key in ("command", "seed", "epochs", "wall_time_s", "device", "test_accuracy", "sample_accuracy", "sha256"):
        assert key in rec, key
    assert f"python -m vizlib.models.training {arch} " in rec["command"]
    assert rec["test_images"] == 10000 and "composed" in rec["test_source"] and rec["test_accuracy"] > 0.5
    net = vl.load(arch, "bundled")
    assert net.model_set == "bundled" and net.arch == arch and net.categories == list(FASHION_MNIST_CLASSES)
    assert net.input_size == FMNIST_INPUT_SIZE[arch] and len(net.mean) == len(net.std) == 1
    assert not net.model.training and net.model.vizlib_arch == arch
    assert net.transform(sample.images[0]).shape == (1, net.input_size, net.input_size)
    got = evaluate(net.model, sample, net.transform)
    assert got.correct == rec["sample_correct"] and got.total == rec["sample_images"] == 1500  # exactly
    if rec["renorm"]:
        assert max(float(r.max()) for r in filter_rms(net.model).values()) <= 0.1 * (1 + 1e-6)


@needs_checkpoints
@pytest.mark.skipif(not FULL_TEST_HERE, reason="the full Fashion-MNIST test set is not installed here")
@pytest.mark.parametrize("arch", ARCHS)
def test_full_test_accuracy_reproduces(arch):
    net, rec = vl.load(arch, "bundled"), B.bundled_record(arch)
    from vizlib.core.composed import ComposedImages
    from vizlib.models.training import on_black

    test = fashion_mnist("test", download=False)
    got = evaluate(net.model, ComposedImages(test, 0), net.transform)
    assert got.correct == rec["test_correct"]
    assert evaluate(net.model, on_black(test), net.transform).accuracy == rec["plain_test_accuracy"]


@needs_checkpoints
def test_alexnet_without_renorm(sample):
    rec = B.bundled_record("alexnet", "norenorm")
    assert rec["renorm"] is False and "--no-renorm" in rec["command"]
    net = B.load_bundled("alexnet", variant="norenorm")
    assert evaluate(net.model, sample, net.transform).correct == rec["sample_correct"]
    assert max(float(r.max()) for r in filter_rms(net.model).values()) > 0.1  # some filters outgrew the radius


@needs_checkpoints
def test_snapshots_ship_and_load():
    shipped = [(a, B.bundled_snapshots(a)) for a in ARCHS]
    assert any(epochs for _, epochs in shipped)
    for arch, epochs in shipped:
        for e in epochs:
            assert B.checkpoint_path(arch, epoch=e).stat().st_size < 2_000_000
            net = B.load_bundled(arch, epoch=e)
            assert net.extra["epoch"] == e and "after epoch" in net.source
        with pytest.raises(CheckpointError, match="no snapshot"):
            B.load_bundled(arch, epoch=999)


# --------------------------------------------------------------------------- damage and the switch


@needs_checkpoints
@pytest.mark.parametrize("damage", ["truncated", "flipped", "missing"])
def test_damaged_bundled_checkpoint(tmp_path, monkeypatch, damage):
    for f in B.CHECKPOINT_DIR.glob("zfnet_fmnist.*"):
        shutil.copy(f, tmp_path / f.name)
    monkeypatch.setattr(B, "CHECKPOINT_DIR", tmp_path)
    path = tmp_path / "zfnet_fmnist.pt"
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        path.write_bytes(bytes(data[: len(data) - 1000]))
    elif damage == "flipped":
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    else:
        path.unlink()
    with pytest.raises(CheckpointError, match="zfnet_fmnist.pt"):
        B.load_bundled("zfnet")
    assert B.bundled_checkpoint_available("zfnet") == (damage != "missing")


@needs_checkpoints
def test_auto_picks_bundled_without_imagenet(monkeypatch):
    monkeypatch.delenv(MS.ENV_VAR, raising=False)
    monkeypatch.setattr(MS, "imagenet_available", lambda arch, probe=True: False)
    assert MS.choose_model_set() == "bundled"
    net = vl.load("zfnet")
    assert net.model_set == "bundled" and "Fashion-MNIST" in net.source
    assert all(MS.bundled_available(a) for a in ARCHS)


@needs_checkpoints
def test_transform_accepts_pil_and_colour():
    from PIL import Image

    net = B.load_bundled("vgg16")
    rgb = np.zeros((50, 80, 3), np.uint8)
    assert net.transform(rgb).shape == (1, 64, 64)
    assert net.transform(Image.fromarray(rgb)).shape == (1, 64, 64)
    grey = torch.full((1, 64, 64), -net.mean[0] / net.std[0])
    torch.testing.assert_close(net.transform(rgb), grey)


@needs_checkpoints
def test_bundled_table_lists_every_shipped_record():
    table = ch01.bundled_table()
    names = table.column("checkpoint")
    assert names[:3] == ["alexnet_fmnist", "zfnet_fmnist", "vgg16_fmnist"]
    assert "alexnet_fmnist_norenorm" in names
    for name, acc in zip(names, table.column("composed test set (10,000)")):
        arch, _, variant = name.partition("_fmnist")
        rec = B.bundled_record(arch, variant.lstrip("_") or None)
        assert acc == f"{100 * rec['test_accuracy']:.2f} %"


@needs_checkpoints
def test_load_snapshots_with_the_final_weights():
    nets = vl.load_snapshots("zfnet")
    rec = B.bundled_record("zfnet")
    assert sorted(nets) == sorted(set(B.bundled_snapshots("zfnet")) | {rec["epochs"]})
    assert nets[rec["epochs"]].extra["checkpoint"].endswith("zfnet_fmnist.pt")
    assert vl.load_snapshots("vgg16") == {}  # none ship for it
