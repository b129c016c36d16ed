"""The images the book shows: Fashion-MNIST for the bundled nets, scikit-image's photos for ImageNet.

Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, Zalando; MIT licence) is found in
this order:

1. a folder the reader names: the ``root`` argument, else the environment
   variable ``VIZLIB_FASHION_MNIST``;
2. the Debian package's files (``apt-get install dataset-fashion-mnist`` puts
   the original gzipped IDX files under ``/usr/share/datasets/fashion-mnist``);
3. torchvision's download, into ``~/.cache/vizlib`` (or the ``root`` given),
   tried only when the download host answers within seconds.

When none has it, one :class:`DatasetUnavailable` error names all three places
and how to fix each. The IDX files are read here with ``gzip`` and NumPy, in
either layout (``train-images-idx3-ubyte.gz`` in the folder itself, or
torchvision's ``FashionMNIST/raw/``), gzipped or not.

A class-balanced sample of the test set (150 images per class) ships with the
package, so that the book builds with no download:
:func:`fashion_mnist_test` gives the full test set when it is at hand and the
sample otherwise.

The natural photos bundled with scikit-image stand in for the ImageNet
validation images of the papers: :func:`demo_images` gives each with the
ImageNet category it shows (the index into torchvision's category list).
"""

from __future__ import annotations

import gzip
from collections import abc
import os
import socket
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .errors import ArgumentError, DatasetUnavailable

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_ENV",
    "DEBIAN_FASHION_MNIST",
    "SAMPLE_PATH",
    "DatasetUnavailable",
    "ImageSet",
    "FolderImages",
    "labelled_folder",
    "caltech101",
    "CALTECH101_ENV",
    "only_classes",
    "read_idx",
    "fashion_mnist",
    "fashion_mnist_sample",
    "fashion_mnist_test",
    "find_fashion_mnist",
    "make_sample",
    "save_sample",
    "DemoImage",
    "DEMO_IMAGES",
    "demo_images",
    "demo_image",
    "imagenet_categories",
]

#: Environment variable naming a folder that holds the Fashion-MNIST files.
FASHION_MNIST_ENV = "VIZLIB_FASHION_MNIST"
#: Where Debian's ``dataset-fashion-mnist`` package installs the files.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
#: The committed sample of the test set.
SAMPLE_PATH = Path(__file__).resolve().parent.parent / "datasets" / "fashion_mnist_sample.npz"
#: Environment variable naming a folder that holds Caltech-101 (one subfolder per category).
CALTECH101_ENV = "VIZLIB_CALTECH101"
#: Seconds allowed for probing torchvision's download host.
DOWNLOAD_PROBE_TIMEOUT = 4.0

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_SIZES = {"train": 60000, "test": 10000}


def _classes() -> tuple[str, ...]:
    from torchvision.datasets import FashionMNIST

    return tuple(FashionMNIST.classes)


#: The ten class names, index = label (torchvision's list).
FASHION_MNIST_CLASSES: tuple[str, ...] = _classes()



@dataclass(frozen=True)
class ImageSet:
    """Images with their labels, held as NumPy arrays.

    Attributes:
        images: ``N x H x W`` uint8 (Fashion-MNIST: white objects on black, 28x28).
        labels: ``N`` int64 class indices.
        classes: class names, index = label.
        source: where the images came from, in words.
        indices: each image's position in the split it was drawn from (the
            sample's positions in the official test set), or ``None``.

    Example:
        >>> s = fashion_mnist_sample()
        >>> s.subset(slice(0, 5)).labels.shape
        (5,)
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    source: str
    indices: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        return f"ImageSet({len(self)} images {self.images.shape[1:]}, {len(self.classes)} classes, source={self.source!r})"

    def subset(self, index: Sequence[int] | np.ndarray | slice) -> "ImageSet":
        """The images at ``index`` (positions in this set), as a new set."""
        idx = np.arange(len(self))[index]
        base = self.indices if self.indices is not None else np.arange(len(self))
        return ImageSet(self.images[idx], self.labels[idx], self.classes, self.source, base[idx])


def only_classes(data: ImageSet, classes: Sequence[int]) -> ImageSet:
    """The images of some classes only, relabelled ``0 .. len(classes) - 1`` in the order given.

    For a pretraining run on some classes that leaves the others unseen (chapter 8's held-out
    classes). The result has the same type as ``data`` (a composed set keeps its masks), its
    ``classes`` are the kept names and its ``indices`` still point into the original split.

    Raises:
        ArgumentError: no classes, a repeated class, or one ``data`` does not have.

    Example:
        >>> s = only_classes(fashion_mnist_sample(), (5, 9))
        >>> s.classes, sorted(set(s.labels.tolist()))
        (('Sandal', 'Ankle boot'), [0, 1])
    """
    keep = [int(c) for c in classes]
    if not keep or len(set(keep)) != len(keep) or not all(0 <= c < len(data.classes) for c in keep):
        raise ArgumentError(f"classes={list(classes)}: give distinct class indices between 0 and "
                            f"{len(data.classes) - 1} ({', '.join(data.classes)})")
    labels = np.asarray(data.labels)
    sub = data.subset(np.flatnonzero(np.isin(labels, keep)))
    relabel = np.full(len(data.classes), -1, np.int64)
    relabel[keep] = np.arange(len(keep))
    return replace(sub, labels=relabel[np.asarray(sub.labels)], classes=tuple(data.classes[c] for c in keep))


# --------------------------------------------------------------------------- labelled folders (Caltech-101)


class FolderImages(abc.Sequence):
    """Image files read on demand: ``images[i]`` is an ``H x W x 3`` uint8 array (sizes differ).

    Stands in for an :class:`ImageSet`'s array of images when the images are files of
    different sizes (a folder of photos): indexing with a slice or an index array gives
    another :class:`FolderImages`, so :meth:`ImageSet.subset` works, and nothing is read
    until an image is asked for (memory does not grow with the folder).

    Example:
        >>> imgs = FolderImages(["a.jpg", "b.jpg"])
        >>> len(imgs[1:]), imgs.shape
        (1, (2,))
    """

    def __init__(self, paths: Sequence[str | os.PathLike[str]]) -> None:
        self.paths = [Path(p) for p in paths]

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.paths),)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, (slice, list, np.ndarray)):
            return FolderImages([self.paths[int(j)] for j in np.arange(len(self.paths))[index]])
        from PIL import Image

        path = self.paths[int(index)]
        try:
            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path} cannot be read as an image ({exc}); delete or replace it") from exc


def labelled_folder(
    root: str | os.PathLike[str],
    *,
    source: str | None = None,
    skip: Sequence[str] = (),
    extensions: Sequence[str] | None = None,
) -> ImageSet:
    """A folder with one subfolder of images per class, as a labelled :class:`ImageSet`.

    The layout of ``torchvision.datasets.ImageFolder`` and of Caltech-101's
    ``101_ObjectCategories``: ``root/<class name>/<image file>``. Classes are the
    subfolders in sorted order (subfolders without images and those named in ``skip``
    are left out); images are read only when used (:class:`FolderImages`).

    Raises:
        DatasetUnavailable: ``root`` is not a folder.
        EmptyData: no subfolder holds an image.

    Example:
        >>> data = labelled_folder("my_images")          # doctest: +SKIP
        >>> data.classes[:2], len(data)                   # doctest: +SKIP
        (('cat', 'dog'), 120)
    """
    from .errors import EmptyData
    from .images import IMAGE_EXTENSIONS

    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise DatasetUnavailable(f"{folder} is not a folder; name a folder with one subfolder of images per class")
    endings = tuple(e.lower() for e in (extensions or IMAGE_EXTENSIONS))
    classes, paths, labels = [], [], []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and p.name not in set(skip)):
        files = sorted(f for f in sub.rglob("*") if f.is_file() and f.suffix.lower() in endings)
        if not files:
            continue
        paths += files
        labels += [len(classes)] * len(files)
        classes.append(sub.name)
    if not classes:
        raise EmptyData(f"{folder} has no subfolder with images ({', '.join(endings)}); "
                        "put each class's images in a subfolder named after the class")
    return ImageSet(FolderImages(paths), np.asarray(labels, np.int64), tuple(classes),  # type: ignore[arg-type]
                    source or f"the labelled folder {folder} ({len(classes)} classes, {len(paths)} images)",
                    np.arange(len(paths)))


def _caltech_folder(place: Path) -> Path | None:
    for candidate in (place, place / "101_ObjectCategories", place / "caltech101" / "101_ObjectCategories"):
        if candidate.is_dir() and (candidate / "airplanes").is_dir():
            return candidate
    return None


def caltech101(root: str | os.PathLike[str] | None = None, *, download: bool = True) -> ImageSet:
    """Caltech-101 (Fei-Fei, Fergus & Perona 2004): 101 object categories, 31 to 800 photos each.

    Zeiler & Fergus §5.2 train a new softmax on 15 or 30 images per class of it. Found in
    this order: the folder named by ``root``, else ``$VIZLIB_CALTECH101``; torchvision's
    download folder ``~/.cache/vizlib/caltech101``; torchvision's download there, tried
    only when its host answers within seconds. A folder may be the
    ``101_ObjectCategories`` folder itself or one above it. The background class
    (``BACKGROUND_Google``) is left out, as torchvision does.

    Raises:
        DatasetUnavailable: nowhere at hand; the message names the places and how to
            fix each (any labelled folder works too: :func:`labelled_folder`).

    Example:
        >>> data = caltech101()              # doctest: +SKIP
        >>> len(data.classes)                # doctest: +SKIP
        101
    """
    named = root if root is not None else os.environ.get(CALTECH101_ENV) or None
    target = _cache_root()
    places = ([Path(named).expanduser()] if named else []) + [target]
    for place in places:
        found = _caltech_folder(place)
        if found is not None:
            return labelled_folder(found, skip=("BACKGROUND_Google",),
                                   source=f"Caltech-101 ({found})")
    why = "download=False"
    if download:
        from .online import host_reachable as _host_reachable

        url = "https://drive.google.com"  # where torchvision's Caltech101 downloads from
        if _host_reachable(url, timeout=DOWNLOAD_PROBE_TIMEOUT):
            try:
                from torchvision.datasets import Caltech101

                Caltech101(str(target), download=True)
            except Exception as exc:  # torchvision raises many kinds (HTTP errors, bad archives)
                why = f"the download failed: {exc}"
            else:
                found = _caltech_folder(target)
                if found is not None:
                    return labelled_folder(found, skip=("BACKGROUND_Google",), source=f"Caltech-101 ({found})")
                why = "the download finished without 101_ObjectCategories"
        else:
            why = f"the host {url} did not answer within {DOWNLOAD_PROBE_TIMEOUT:.0f} s (offline?)"
    where = f"{named} (no 101_ObjectCategories there)" if named else \
        f"none named (pass root=... or set {CALTECH101_ENV}=/path)"
    raise DatasetUnavailable(
        "Caltech-101 was not found. vizlib looked in:\n"
        f"  1. the folder you name: {where};\n"
        f"  2. torchvision's download into {target / 'caltech101'}: {why}; connect to the internet once "
        "and call vizlib.caltech101() again.\n"
        "Any folder with one subfolder of images per class serves instead: vizlib.labelled_folder(path)."
    )


# --------------------------------------------------------------------------- IDX files


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (LeCun's MNIST format), gzipped or not, into a NumPy array.

    Raises:
        ValueError: the file is not IDX, or holds fewer bytes than its header says
            (a truncated download).

    Example:
        >>> read_idx("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz").shape  # doctest: +SKIP
        (10000,)
    """
    path = Path(path)
    opener: Callable[..., object] = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:  # type: ignore[operator]
            data = fh.read()  # type: ignore[attr-defined]
    except (OSError, EOFError) as exc:  # gzip raises these on a damaged stream
        raise ValueError(f"{path} cannot be read as an IDX file ({exc}); delete it and fetch it again") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if data[2] not in dtypes:
        raise ValueError(f"{path} is not an IDX file (unknown type code {data[2]:#x})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path} is truncated (header incomplete)")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(dtypes[data[2]])
    need = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != need:
        raise ValueError(
            f"{path} holds {len(data) - header} bytes of data, its header promises {need}: "
            "the file is truncated or damaged; delete it and fetch it again"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _split_files(folder: Path, split: str) -> tuple[Path, Path] | None:
    """The image and label files of ``split`` in ``folder`` (or its FashionMNIST/raw), if both are there."""
    for base in (folder, folder / "FashionMNIST" / "raw"):
        found: list[Path] = []
        for stem in _FILES[split]:
            for name in (stem, stem + ".gz"):
                if (base / name).is_file():
                    found.append(base / name)
                    break
        if len(found) == 2:
            return found[0], found[1]
    return None


def _read_split(files: tuple[Path, Path], split: str, source: str) -> ImageSet:
    images = read_idx(files[0])
    labels = read_idx(files[1]).astype(np.int64)
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"{files[0]} and {files[1]} do not hold matching images and labels")
    return ImageSet(images, labels, FASHION_MNIST_CLASSES, f"Fashion-MNIST {split} ({source})")


def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "vizlib"


def _download_url() -> str:
    from torchvision.datasets import FashionMNIST

    return FashionMNIST.mirrors[0]


def _download(root: Path) -> None:
    """torchvision's download into ``root/FashionMNIST/raw`` (raises OSError/RuntimeError on failure)."""
    from torchvision.datasets import FashionMNIST

    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(60)
    try:
        FashionMNIST(str(root), train=True, download=True)
    finally:
        socket.setdefaulttimeout(old)


def find_fashion_mnist(split: str = "test", root: str | os.PathLike[str] | None = None) -> tuple[Path, Path] | None:
    """The files of ``split`` from the first place that has them, without downloading.

    Looks in ``root`` (else ``$VIZLIB_FASHION_MNIST``), then Debian's
    ``/usr/share/datasets/fashion-mnist``, then torchvision's download folder
    (``~/.cache/vizlib/FashionMNIST/raw``). Returns ``None`` when none has them.

    Example:
        >>> from vizlib.core.data import find_fashion_mnist
        >>> found = find_fashion_mnist("test")
        >>> found is None or found[0].name.startswith("t10k-images")
        True
    """
    if split not in _FILES:
        raise ValueError(f"unknown split {split!r}; use 'train' or 'test'")
    named = root if root is not None else os.environ.get(FASHION_MNIST_ENV) or None
    places = [Path(named).expanduser()] if named else []
    places += [DEBIAN_FASHION_MNIST, _cache_root()]
    for place in places:
        files = _split_files(place, split)
        if files is not None:
            return files
    return None


def fashion_mnist(
    split: str = "train",
    root: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
) -> ImageSet:
    """Fashion-MNIST's training (60,000) or test (10,000) images, 28x28 uint8.

    Args:
        split: ``"train"`` or ``"test"``.
        root: a folder holding the four IDX files (or torchvision's
            ``FashionMNIST/raw`` below it). Default: ``$VIZLIB_FASHION_MNIST``.
        download: when the files are nowhere at hand, let torchvision download
            them (into ``root``, else ``~/.cache/vizlib``), but only if its host
            answers within a few seconds.

    Returns:
        An :class:`ImageSet` with ``source`` saying which file it came from.

    Raises:
        DatasetUnavailable: in none of the three places; the message names them
            and how to fix each.
        ValueError: a file was found but is damaged or truncated.

    Example:
        >>> test = fashion_mnist("test")  # doctest: +SKIP
        >>> test.images.shape, test.classes[9]  # doctest: +SKIP
        ((10000, 28, 28), 'Ankle boot')
    """
    files = find_fashion_mnist(split, root)
    if files is not None:
        return _read_split(files, split, str(files[0].parent))
    named = root if root is not None else os.environ.get(FASHION_MNIST_ENV) or None
    target = Path(named).expanduser() if named else _cache_root()
    why = "download=False"
    if download:
        from .online import host_reachable as _host_reachable

        url = _download_url()
        if _host_reachable(url, timeout=DOWNLOAD_PROBE_TIMEOUT):
            try:
                _download(target)
            except (OSError, RuntimeError) as exc:
                why = f"the download failed: {exc}"
            else:
                files = _split_files(target, split)
                if files is not None:
                    return _read_split(files, split, f"torchvision download, {files[0].parent}")
                why = "the download finished without the expected files"
        else:
            why = f"the host {url} did not answer within {DOWNLOAD_PROBE_TIMEOUT:.0f} s (offline?)"
    raise DatasetUnavailable(_missing_message(split, named, target, why))


def _missing_message(split: str, named: object, target: Path, why: str) -> str:
    stems = ", ".join(f"{s}.gz" for s in _FILES[split])
    where = f"{named} (nothing there)" if named else f"none named (pass root=... or set {FASHION_MNIST_ENV}=/path)"
    return (
        f"Fashion-MNIST ({split} split: {stems}) was not found. vizlib looked in three places:\n"
        f"  1. the folder you name: {where};\n"
        f"  2. the Debian package's files in {DEBIAN_FASHION_MNIST}: not there; install them with "
        f"`sudo apt-get install dataset-fashion-mnist`;\n"
        f"  3. torchvision's download into {target / 'FashionMNIST' / 'raw'}: {why}; connect to the "
        f"internet once and call vizlib.fashion_mnist() again.\n"
        "Or copy the four IDX files from another machine into a folder and name it. "
        "The book itself runs on the committed sample (vizlib.fashion_mnist_sample())."
    )


# --------------------------------------------------------------------------- the committed sample


def make_sample(test: ImageSet, per_class: int = 150, seed: int = 0) -> ImageSet:
    """A class-balanced random sample of a labelled set, in the set's order.

    Args:
        test: the set to draw from (Fashion-MNIST's test set for the committed sample).
        per_class: images drawn from each class.
        seed: seed of NumPy's generator.

    Returns:
        The sample, with ``indices`` its positions in ``test``.

    Example:
        >>> import vizlib as vl
        >>> from vizlib.core.data import make_sample
        >>> small = make_sample(vl.fashion_mnist_sample(), per_class=2)
        >>> len(small), len(small.indices)
        (20, 20)
    """
    rng = np.random.default_rng(seed)
    picked = [
        rng.choice(np.flatnonzero(test.labels == c), size=per_class, replace=False)
        for c in range(len(test.classes))
    ]
    index = np.sort(np.concatenate(picked))
    base = test.indices if test.indices is not None else np.arange(len(test))
    return ImageSet(test.images[index], test.labels[index], test.classes, "", base[index])


def save_sample(sample: ImageSet, path: str | os.PathLike[str] = SAMPLE_PATH) -> Path:
    """Write a sample as a compressed ``.npz`` (images, labels, indices, classes).

    Example:
        >>> from vizlib.core.data import fashion_mnist_test, make_sample, save_sample
        >>> save_sample(make_sample(fashion_mnist_test()), "sample.npz")     # doctest: +SKIP
        PosixPath('sample.npz')
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    indices = sample.indices if sample.indices is not None else np.arange(len(sample))
    np.savez_compressed(
        path,
        images=sample.images.astype(np.uint8),
        labels=sample.labels.astype(np.int64),
        indices=indices.astype(np.int64),
        classes=np.array(sample.classes),
    )
    return path


def fashion_mnist_sample(path: str | os.PathLike[str] = SAMPLE_PATH) -> ImageSet:
    """The committed sample of Fashion-MNIST's test set: 1,500 images, 150 per class.

    ``indices`` are the images' positions in the official test set. Licence:
    MIT, Zalando SE (``vizlib/datasets/LICENSE-fashion-mnist.txt``).

    Example:
        >>> s = fashion_mnist_sample()
        >>> len(s), s.images.shape[1:], np.bincount(s.labels).tolist() == [150] * 10
        (1500, (28, 28), True)
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            images, labels, indices = z["images"], z["labels"], z["indices"]
            classes = tuple(str(c) for c in z["classes"])
    except FileNotFoundError as exc:
        raise DatasetUnavailable(f"the committed Fashion-MNIST sample {path} is missing from this copy") from exc
    return ImageSet(images, labels, classes, "Fashion-MNIST test sample committed with vizlib (150 per class)", indices)


def fashion_mnist_test(root: str | os.PathLike[str] | None = None, *, download: bool = False) -> ImageSet:
    """The full Fashion-MNIST test set when it is at hand, else the committed sample.

    What the book calls: it never waits on a download unless ``download=True``.
    ``source`` says which of the two this is.

    Example:
        >>> test = fashion_mnist_test()
        >>> test.images.shape[1:], len(test.classes)
        ((28, 28), 10)
    """
    try:
        return fashion_mnist("test", root, download=download)
    except DatasetUnavailable:
        return fashion_mnist_sample()


# --------------------------------------------------------------------------- ImageNet demo photos


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet category names, from torchvision's AlexNet weights metadata.

    Example:
        >>> from vizlib.core.data import imagenet_categories
        >>> names = imagenet_categories()
        >>> len(names), names[0]
        (1000, 'tench')
    """
    from torchvision.models import AlexNet_Weights

    return list(AlexNet_Weights.IMAGENET1K_V1.meta["categories"])


@dataclass(frozen=True)
class DemoImage:
    """A natural photo from ``skimage.data`` with the ImageNet category it shows.

    Attributes:
        name: the ``skimage.data`` function that returns it.
        imagenet_index: index into the 1000 ImageNet categories.
        note: what in the photo the category refers to.

    Example:
        >>> from vizlib.core.data import demo_image
        >>> record, pixels = demo_image("chelsea")
        >>> record.imagenet_index, record.category
        (281, 'tabby')
    """

    name: str
    imagenet_index: int
    note: str = ""

    @property
    def category(self) -> str:
        """The category's name, from torchvision's metadata."""
        return imagenet_categories()[self.imagenet_index]

    def image(self) -> np.ndarray:
        """The photo as ``H x W x 3`` uint8 RGB."""
        import skimage.data

        img = getattr(skimage.data, self.name)()
        if isinstance(img, tuple):  # stereo_motorcycle: (left, right, disparity)
            img = img[0]
        img = np.asarray(img)
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        return np.ascontiguousarray(img[..., :3].astype(np.uint8))


#: The photos, with their ImageNet class. ImageNet has no class for a person,
#: a motorcycle or a launch vehicle: the nearest category is given and the note says so.
DEMO_IMAGES: tuple[DemoImage, ...] = (
    DemoImage("chelsea", 281, "a tabby cat's face (Chelsea)"),
    DemoImage("coffee", 967, "a cup of espresso on a saucer"),
    DemoImage("rocket", 657, "a rocket on its launch pad; ImageNet's nearest class is 'missile'"),
    DemoImage("astronaut", 518, "Eileen Collins holding her helmet; ImageNet has no person class"),
    DemoImage("stereo_motorcycle", 665, "a motorcycle in a garage; ImageNet's nearest class is 'moped'"),
    DemoImage("camera", 872, "a cameraman with his camera on a tripod (grey photo)"),
)


def demo_images() -> list[tuple[DemoImage, np.ndarray]]:
    """Every demo photo with its image (``H x W x 3`` uint8), in :data:`DEMO_IMAGES` order.

    Example:
        >>> first, img = demo_images()[0]
        >>> first.category, img.shape
        ('tabby', (300, 451, 3))
    """
    return [(d, d.image()) for d in DEMO_IMAGES]


def demo_image(name: str) -> tuple[DemoImage, np.ndarray]:
    """One demo photo by its ``skimage.data`` name (``"chelsea"``, ``"coffee"``, ...).

    Example:
        >>> from vizlib.core.data import demo_image
        >>> demo_image("coffee")[1].shape
        (400, 600, 3)
    """
    for d in DEMO_IMAGES:
        if d.name == name:
            return d, d.image()
    raise KeyError(f"no demo image {name!r}; choose one of {', '.join(d.name for d in DEMO_IMAGES)}")
