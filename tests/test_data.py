"""Fashion-MNIST lookup (root, Debian, torchvision), the committed sample, the demo photos."""

from __future__ import annotations

import gzip
import struct
import time
from pathlib import Path

import numpy as np
import torch
import pytest

import vizlib.core.data as D

DEBIAN_HAS_IT = (D.DEBIAN_FASHION_MNIST / "t10k-images-idx3-ubyte.gz").is_file()


def write_idx(path: Path, arr: np.ndarray, gz: bool = True) -> Path:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    data = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)
    return path


def fake_root(folder: Path, label: int, n: int = 6, gz: bool = True, layout: str = "flat") -> Path:
    """A folder with tiny train/test IDX files whose labels are all ``label``."""
    base = folder if layout == "flat" else folder / "FashionMNIST" / "raw"
    rng = np.random.default_rng(label)
    for split, (img, lab) in D._FILES.items():
        write_idx(base / img, rng.integers(0, 256, (n, 28, 28)), gz)
        write_idx(base / lab, np.full(n, label), gz)
    return folder


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No Fashion-MNIST anywhere: no named root, no Debian files, empty cache, offline."""
    monkeypatch.delenv(D.FASHION_MNIST_ENV, raising=False)
    monkeypatch.setattr(D, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("VIZLIB_OFFLINE", "1")
    return tmp_path


# --------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_round_trip(tmp_path, gz):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    out = D.read_idx(write_idx(tmp_path / "x-idx3-ubyte", arr, gz))
    assert out.dtype == np.uint8 and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, arr)
    out[0, 0, 0] = 7  # writable copy, not a view of a bytes buffer


def test_read_idx_truncated_and_garbage(tmp_path):
    path = write_idx(tmp_path / "x-idx3-ubyte", np.zeros((4, 5, 5)), gz=False)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated"):
        D.read_idx(path)
    bad = tmp_path / "y"
    bad.write_bytes(b"\x01\x02\x03\x04hello")
    with pytest.raises(ValueError, match="not an IDX file"):
        D.read_idx(bad)
    broken_gz = tmp_path / "z-idx1-ubyte.gz"
    broken_gz.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 9]) + bytes(9))[:-12])
    with pytest.raises(ValueError):
        D.read_idx(broken_gz)


# --------------------------------------------------------------------------- lookup order


def test_root_argument_wins_over_env_and_debian(nowhere, tmp_path, monkeypatch):
    monkeypatch.setattr(D, "DEBIAN_FASHION_MNIST", fake_root(tmp_path / "debian", 3))
    monkeypatch.setenv(D.FASHION_MNIST_ENV, str(fake_root(tmp_path / "env", 2)))
    given = fake_root(tmp_path / "given", 1)
    assert set(D.fashion_mnist("test", given).labels) == {1}
    assert set(D.fashion_mnist("train").labels) == {2}  # the environment variable next
    monkeypatch.delenv(D.FASHION_MNIST_ENV)
    got = D.fashion_mnist("test")
    assert set(got.labels) == {3} and "debian" in got.source  # then Debian's files


def test_torchvision_layout_and_plain_files(nowhere, tmp_path):
    root = fake_root(tmp_path / "tv", 4, n=5, gz=False, layout="torchvision")
    test = D.fashion_mnist("test", root)
    assert test.images.shape == (5, 28, 28) and test.images.dtype == np.uint8
    assert test.labels.dtype == np.int64 and set(test.labels) == {4}
    assert test.classes == D.FASHION_MNIST_CLASSES


def test_torchvision_download_is_third(nowhere, tmp_path, monkeypatch):
    calls: list[Path] = []

    def fake_download(target: Path) -> None:
        calls.append(target)
        fake_root(target, 5, layout="torchvision")

    monkeypatch.setattr("vizlib.core.online.host_reachable", lambda url, timeout=0: True)
    monkeypatch.setattr(D, "_download", fake_download)
    got = D.fashion_mnist("train")
    assert calls == [tmp_path / "cache" / "vizlib"]
    assert set(got.labels) == {5} and "torchvision download" in got.source
    # Now cached: found without a second download.
    assert set(D.fashion_mnist("test").labels) == {5} and len(calls) == 1


def test_no_data_anywhere_names_all_three_places(nowhere):
    t0 = time.perf_counter()
    with pytest.raises(D.DatasetUnavailable) as info:
        D.fashion_mnist("train")
    assert time.perf_counter() - t0 < 5  # offline: no hang
    msg = str(info.value)
    assert D.FASHION_MNIST_ENV in msg and "root=" in msg  # 1. the folder the reader names
    assert str(nowhere / "no-debian") in msg and "apt-get install dataset-fashion-mnist" in msg  # 2. Debian
    assert "torchvision" in msg and str(nowhere / "cache" / "vizlib" / "FashionMNIST" / "raw") in msg  # 3.
    assert "did not answer" in msg


def test_no_data_message_names_the_given_root(nowhere):
    with pytest.raises(D.DatasetUnavailable, match="nothing there") as info:
        D.fashion_mnist("test", nowhere / "my-root", download=False)
    assert str(nowhere / "my-root") in str(info.value) and "download=False" in str(info.value)


def test_unknown_split(nowhere):
    with pytest.raises(ValueError, match="split"):
        D.fashion_mnist("validation")


# --------------------------------------------------------------------------- the committed sample


def test_committed_sample():
    s = D.fashion_mnist_sample()
    assert len(s) == 1500 and s.images.shape == (1500, 28, 28) and s.images.dtype == np.uint8
    assert np.bincount(s.labels, minlength=10).tolist() == [150] * 10
    assert s.classes == D.FASHION_MNIST_CLASSES
    assert np.all(np.diff(s.indices) > 0) and 0 <= s.indices.min() and s.indices.max() < 10000
    assert D.SAMPLE_PATH.stat().st_size < 3_000_000
    notice = (D.SAMPLE_PATH.parent / "LICENSE-fashion-mnist.txt").read_text()
    assert "Zalando" in notice and "MIT" in notice


@pytest.mark.skipif(not DEBIAN_HAS_IT, reason="Fashion-MNIST not installed here")
def test_sample_is_exactly_the_official_test_images():
    s, test = D.fashion_mnist_sample(), D.fashion_mnist("test", download=False)
    np.testing.assert_array_equal(s.images, test.images[s.indices])
    np.testing.assert_array_equal(s.labels, test.labels[s.indices])
    again = D.make_sample(test, 150, seed=0)
    np.testing.assert_array_equal(again.indices, s.indices)  # the sample's recipe


def test_fashion_mnist_test_falls_back_to_the_sample(nowhere):
    got = D.fashion_mnist_test()
    assert len(got) == 1500 and "sample" in got.source


def test_make_sample_is_balanced_and_seeded():
    labels = np.repeat(np.arange(10), 30)
    images = np.arange(300, dtype=np.uint8)[:, None, None] * np.ones((1, 2, 2), np.uint8)
    full = D.ImageSet(images, labels, D.FASHION_MNIST_CLASSES, "synthetic")
    a, b = D.make_sample(full, 4, seed=1), D.make_sample(full, 4, seed=1)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert np.bincount(a.labels).tolist() == [4] * 10
    np.testing.assert_array_equal(a.images[:, 0, 0], a.indices.astype(np.uint8))
    sub = a.subset([0, 2])
    np.testing.assert_array_equal(sub.indices, a.indices[[0, 2]])


# --------------------------------------------------------------------------- demo photos


def test_demo_images_have_their_imagenet_class():
    categories = D.imagenet_categories()
    assert len(categories) == 1000
    shown = {d.name: d.category for d, _ in D.demo_images()}
    assert shown["chelsea"] == "tabby" and shown["coffee"] == "espresso"
    for d, img in D.demo_images():
        assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8
        assert d.category == categories[d.imagenet_index]
    assert D.demo_image("rocket")[0].category == "missile"
    with pytest.raises(KeyError, match="chelsea"):
        D.demo_image("nope")


# --------------------------------------------------------------------------- some classes, labelled folders, Caltech-101


def test_only_classes_relabels_in_the_order_given():
    from vizlib.core.composed import bundled_sample
    from vizlib.core.data import only_classes
    from vizlib.core.errors import ArgumentError

    s = bundled_sample()
    sub = only_classes(s, (9, 5))
    assert sub.classes == ("Ankle boot", "Sandal") and len(sub) == 300
    assert type(sub) is type(s) and sub.masks.shape == (300, 64, 64)  # a composed set keeps its masks
    nine = np.flatnonzero(s.labels == 9)
    assert np.array_equal(sub.images[sub.labels == 0], s.images[nine])
    assert np.array_equal(sub.indices[sub.labels == 0], s.indices[nine])
    for bad in ((), (1, 1), (10,)):
        with pytest.raises(ArgumentError, match="distinct class indices"):
            only_classes(s, bad)


def _folder(root, counts: dict, size=(20, 30)):
    from PIL import Image

    for name, n in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", size, (10 * i, 0, 0)).save(root / name / f"img_{i:02d}.jpg")
    return root


def test_labelled_folder_reads_classes_lazily(tmp_path):
    from vizlib.core.data import FolderImages, labelled_folder

    root = _folder(tmp_path / "pics", {"dog": 2, "cat": 3, "BACKGROUND_Google": 1})
    (root / "empty").mkdir()
    data = labelled_folder(root, skip=("BACKGROUND_Google",))
    assert data.classes == ("cat", "dog") and data.labels.tolist() == [0, 0, 0, 1, 1]
    assert isinstance(data.images, FolderImages) and data.images[4].shape == (30, 20, 3)
    sub = data.subset([1, 3])
    assert isinstance(sub.images, FolderImages) and [p.name for p in sub.images.paths] == ["img_01.jpg", "img_00.jpg"]
    assert "2 classes, 5 images" in data.source


def test_labelled_folder_errors(tmp_path):
    from vizlib.core.data import labelled_folder
    from vizlib.core.errors import DatasetUnavailable, EmptyData

    with pytest.raises(DatasetUnavailable, match="not a folder"):
        labelled_folder(tmp_path / "nowhere")
    (tmp_path / "none" / "a").mkdir(parents=True)
    with pytest.raises(EmptyData, match="no subfolder with images"):
        labelled_folder(tmp_path / "none")


def test_caltech101_from_a_named_folder_and_offline(tmp_path, monkeypatch):
    import vizlib as vl
    from vizlib.core import data as D
    from vizlib.core.errors import DatasetUnavailable

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(D.CALTECH101_ENV, raising=False)
    with pytest.raises(DatasetUnavailable) as err:
        vl.caltech101(download=False)
    text = str(err.value)
    assert D.CALTECH101_ENV in text and "labelled_folder" in text and "download=False" in text
    _folder(tmp_path / "c101" / "101_ObjectCategories", {"airplanes": 2, "BACKGROUND_Google": 2, "ant": 1})
    monkeypatch.setenv(D.CALTECH101_ENV, str(tmp_path / "c101"))
    data = vl.caltech101(download=False)
    assert data.classes == ("airplanes", "ant") and len(data) == 3 and data.source.startswith("Caltech-101")


def test_prepared_images_read_a_labelled_folder(tmp_path):
    import vizlib as vl
    from vizlib.core.data import labelled_folder
    from tests._nets import bundled_net

    data = labelled_folder(_folder(tmp_path / "pics", {"a": 2, "b": 1}))
    x = vl.PreparedImages(data, bundled_net("alexnet")).batch([0, 2])
    assert x.shape == (2, 1, 64, 64) and torch.isfinite(x).all()
