"""The bad-input catalogue (issue 13): every bad input of the public API gets a clear error.

Each case is one call with one thing wrong. The test asserts the exception's type and the key
words of its message (what was wrong, the valid form, the fix), and that the model comes back as
it went in: the same hooks, train/eval flags, ``requires_grad``, device and weights, whether the
call raised or not. Cases with ``exc=None`` are valid input that must keep working (the "right
result" of the issue: a Net where a module goes, 16-bit and float pictures, an in-place ReLU
module).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import TensorDataset

import vizlib as vl
from vizlib.core.errors import ArgumentError, DeviceError, EmptyData, NoDenseLayers
from vizlib.core.layers import name_layers
from vizlib.models import alexnet_fmnist

from .conftest import hook_count

X = torch.randn(1, 64, 64, generator=torch.Generator().manual_seed(0))  # one prepared grey 64x64 image
DATA = torch.randn(4, 1, 64, 64, generator=torch.Generator().manual_seed(1))
QUIET = dict(progress=False)


def nan_image(n: int = 1, value: float = float("nan")) -> torch.Tensor:
    x = X.clone()
    x.view(-1)[:n] = value
    return x


def nan_data(image: int = 2) -> torch.Tensor:
    d = DATA.clone()
    d[image, 0, 5, 5] = float("nan")
    return d


# --------------------------------------------------------------------------- small nets


class InplaceFunctional(nn.Module):
    """conv -> F.relu(inplace=True) -> pool -> conv: the in-place op lies outside any module."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.c1, self.p, self.c2 = nn.Conv2d(1, 4, 3), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c2(self.p(F.relu(self.c1(x), inplace=True)))


class Residual(nn.Module):
    """A residual ``out += h`` (in place) or ``out = out + h`` (out of place) before a ReLU module."""

    def __init__(self, inplace: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inplace = inplace
        self.c1, self.c2 = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.r, self.c3 = nn.ReLU(), nn.Conv2d(4, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c1(x)
        out = self.c2(h)
        if self.inplace:
            out += h
        else:
            out = out + h
        return self.c3(self.r(out))


class InplaceDense(nn.Module):
    """A dense top whose ReLU is F.relu(inplace=True) between two Linear layers: DeNet's chain breaks."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.c1, self.p, self.flat = nn.Conv2d(1, 4, 3), nn.MaxPool2d(2), nn.Flatten()
        self.fc6, self.fc8 = nn.Linear(4 * 9 * 9, 8), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc8(F.relu(self.fc6(self.flat(self.p(self.c1(x)))), inplace=True))


def module_relu_inplace() -> nn.Module:
    """torchvision's style: nn.ReLU(inplace=True) modules. Valid: the chain holds."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3),
                      nn.ReLU(inplace=True)).eval()
    m.vizlib_layers = name_layers(m)
    return m


def meta_model() -> nn.Module:
    return alexnet_fmnist(seed=0).to("meta")


# --------------------------------------------------------------------------- pictures


def picture_16bit() -> Image.Image:
    arr = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    return Image.fromarray(arr)


def picture_float(lo: float = 0.0, hi: float = 1.0, nan: bool = False) -> Image.Image:
    arr = np.linspace(lo, hi, 64 * 64, endpoint=False).reshape(64, 64).astype(np.float32)
    if nan:
        arr[3, 3] = np.nan
    return Image.fromarray(arr)


def check_16bit(net: vl.Net) -> None:
    img = picture_16bit()
    x = vl.load_image(img, net)
    want = vl.load_image(Image.fromarray(np.round(np.asarray(img) / 257.0).astype(np.uint8)), net)
    assert torch.allclose(x, want), "16-bit pixels must be scaled to 8 bits (not clipped at 255)"
    assert x.std() > 0.1


def check_float(net: vl.Net) -> None:
    img = picture_float()
    x = vl.load_image(img, net)
    want = vl.load_image(Image.fromarray(np.round(np.asarray(img) * 255).astype(np.uint8)), net)
    assert torch.allclose(x, want), "a float picture in [0, 1] holds fractions of white, not near-black values"
    assert x.std() > 0.1


class MixedSizes(torch.utils.data.Dataset):
    """Three images, the last one larger: the error must name the dataset's index."""

    def __len__(self) -> int:
        return 3

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.zeros(1, 70 if i == 2 else 64, 70 if i == 2 else 64), 0


def text_file(tmp: Path) -> Path:
    p = tmp / "notes.png"
    p.write_text("not a picture")
    return p


# --------------------------------------------------------------------------- the catalogue


@dataclass
class Case:
    id: str
    call: Callable[..., Any]  # (model, net, env) -> anything
    exc: type[BaseException] | None
    words: tuple[str, ...] = ()
    forward: bool = False  # a raising call may run the model first (streamed data: the bad image comes later)


def dn(m: Any) -> vl.Deconvnet:
    return vl.Deconvnet(m)


CUDA = torch.cuda.is_available()

CASES = [
    # non-finite pixels: refused, with their count
    Case("deconvnet-nan", lambda m, n, e: dn(m).project(nan_image(), "c5", 3), vl.ImageError,
         ("1 non-finite pixel", "NaN", "nan_to_num")),
    Case("deconvnet-inf", lambda m, n, e: dn(m).project(nan_image(3, float("inf")), "c5", 3), vl.ImageError,
         ("3 non-finite pixel values", "3 infinite")),
    Case("check_image-nan", lambda m, n, e: vl.check_image(nan_image(5), m), vl.ImageError,
         ("5 non-finite",)),
    Case("occlusion-nan", lambda m, n, e: vl.Occlusion(m).sweep(nan_image(), 16, 16, project=False, **QUIET),
         vl.ImageError, ("non-finite",)),
    Case("top_activations-nan", lambda m, n, e: vl.top_activations(m, "c5", nan_data(2), k=1, batch_size=2,
                                                                   **QUIET),
         vl.ImageError, ("1 non-finite", "image 2"), forward=True),
    Case("denet-nan", lambda m, n, e: vl.DeNet(m).project(nan_image()), vl.ImageError, ("non-finite",)),
    Case("patch_features-nan", lambda m, n, e: vl.patch_features(m, "c2", nan_data(1), n=10, **QUIET),
         vl.ImageError, ("non-finite", "image 1")),
    Case("layer_sparsity-nan", lambda m, n, e: vl.layer_sparsity(m, nan_data(0), **QUIET), vl.ImageError,
         ("non-finite",)),
    Case("check_image-huge-but-finite", lambda m, n, e: vl.check_image(torch.full((1, 64, 64), 3e38), m), None),
    Case("load_image-float-nan", lambda m, n, e: vl.load_image(picture_float(nan=True), n), vl.ImageError,
         ("1 non-finite",)),
    # numbers checked, not coerced
    Case("channel-3.7", lambda m, n, e: dn(m).project(X, "c5", 3.7), ArgumentError, ("channel", "whole number", "3.7")),
    Case("channel-True", lambda m, n, e: dn(m).project(X, "c5", True), ArgumentError, ("channel", "bool")),
    Case("channel-list-float", lambda m, n, e: dn(m).project(X, "c5", [1, 2.5]), ArgumentError, ("2.5",)),
    Case("channel-string", lambda m, n, e: dn(m).project(X, "c5", "some"), ValueError, ("'all'",)),
    Case("channel-out-of-range", lambda m, n, e: dn(m).project(X, "c5", 48), ValueError,
         ("channel 48 is out of range", "0..47")),
    Case("position-fractional", lambda m, n, e: dn(m).project(X, "c5", 3, (1.6, 2.6)), ArgumentError,
         ("position", "1.6", "not rounded")),
    Case("position-3-numbers", lambda m, n, e: dn(m).project(X, "c5", 3, (1, 2, 3)), ArgumentError,
         ("(y, x)", "3 numbers")),
    Case("position-outside", lambda m, n, e: dn(m).project(X, "c5", 3, (40, 0)), ValueError,
         ("outside", "0 <= y <")),
    Case("top-0", lambda m, n, e: dn(m).project(X, "c5", 3, top=0), ArgumentError, ("top", "at least 1")),
    Case("deconvnet-batch_size-0", lambda m, n, e: dn(m).project(X, "c5", 3, batch_size=0), ArgumentError,
         ("batch_size", "at least 1")),
    Case("deconvnet-unknown-keyword", lambda m, n, e: dn(m).project(X, "c5", 3, topp=2), TypeError,
         ("topp", "whole_map")),
    Case("unit_box-float-position", lambda m, n, e: vl.unit_box(m, "c1", 1.5, 2, 64), ArgumentError,
         ("y", "1.5")),
    Case("unit_box-outside", lambda m, n, e: vl.unit_box(m, "c1", 99, 0, 64), ValueError, ("outside",)),
    Case("unit_box-input_size-3", lambda m, n, e: vl.unit_box(m, "c1", 0, 0, (64, 64, 64)), ArgumentError,
         ("input_size", "(y, x)")),
    Case("unit_box-whole-float", lambda m, n, e: vl.unit_box(m, "c1", 1.0, 2, 64), None),
    Case("top_activations-k-2.5", lambda m, n, e: vl.top_activations(m, "c5", DATA, k=2.5, **QUIET),
         ArgumentError, ("k", "whole number", "2.5")),
    Case("top_activations-k-0", lambda m, n, e: vl.top_activations(m, "c5", DATA, k=0, **QUIET), ValueError,
         ("k must be at least 1",)),
    Case("top_activations-batch_size-0", lambda m, n, e: vl.top_activations(m, "c5", DATA, batch_size=0, **QUIET),
         ArgumentError, ("batch_size", "at least 1")),
    Case("batches-batch_size-0", lambda m, n, e: vl.batches(DATA, 0), ArgumentError, ("batch_size", "at least 1")),
    Case("batches-batch_size--1", lambda m, n, e: vl.batches(DATA, -1), ValueError, ("at least 1",)),
    Case("batches-batch_size-True", lambda m, n, e: vl.batches(DATA, True), ArgumentError, ("bool",)),
    Case("occlusion-batch_size-0", lambda m, n, e: vl.Occlusion(m).sweep(X, 16, 16, batch_size=0, **QUIET),
         ArgumentError, ("batch_size", "at least 1", "None")),
    Case("occlusion-stride-0", lambda m, n, e: vl.Occlusion(m).sweep(X, 16, 0, **QUIET), ValueError,
         ("stride must be at least 1",)),
    Case("occlusion-size-2.5", lambda m, n, e: vl.Occlusion(m).sweep(X, 2.5, **QUIET), ArgumentError, ("size",)),
    Case("occlusion-size-too-big", lambda m, n, e: vl.Occlusion(m).sweep(X, 100, 8, project=False, **QUIET),
         ValueError, ()),
    Case("occlusion-grey-nan", lambda m, n, e: vl.Occlusion(n, grey=float("nan")).sweep(X, 16, 16, **QUIET),
         ArgumentError, ("grey must be finite", "NaN")),
    Case("occlusion-map-out-of-range", lambda m, n, e: vl.Occlusion(m).sweep(X, 16, 16, channel=999, project=False,
                                                                             **QUIET),
         ValueError, ("out of range",)),
    Case("occlusion-class-out-of-range", lambda m, n, e: vl.Occlusion(m).sweep(X, 16, 16, target=10, project=False,
                                                                               **QUIET),
         ValueError, ("out of range",)),
    Case("occlusion-class-float", lambda m, n, e: vl.Occlusion(m).sweep(X, 16, 16, target=3.7, project=False,
                                                                        **QUIET),
         ValueError, ("index or a category name", "3.7")),
    Case("patch_features-n-True", lambda m, n, e: vl.patch_features(m, "c2", DATA, n=True, **QUIET), ArgumentError,
         ("bool",)),
    Case("patch_features-batch_size-0", lambda m, n, e: vl.patch_features(m, "c2", DATA, n=10, batch_size=0,
                                                                          **QUIET),
         ArgumentError, ("batch_size",)),
    Case("layer_sparsity-batch_size-0", lambda m, n, e: vl.layer_sparsity(m, DATA, batch_size=0, **QUIET),
         ArgumentError, ("batch_size",)),
    Case("denet-class-2.5", lambda m, n, e: vl.DeNet(m).project(X, 2.5), ArgumentError, ("index", "2.5")),
    Case("denet-class-True", lambda m, n, e: vl.DeNet(m).project(X, [1, True]), TypeError, ("True",)),
    Case("denet-class-unknown-name", lambda m, n, e: vl.DeNet(n).project(X, "Sneakers"), ValueError,
         ("unknown class", "Sneaker")),
    Case("denet-class-out-of-range", lambda m, n, e: vl.DeNet(m).project(X, 10), ValueError, ("out of range",),
         forward=True),
    Case("denet-no-dense-layer", lambda m, n, e: vl.DeNet(module_relu_inplace()), NoDenseLayers, ("nn.Linear",)),
    # layers
    Case("layer-int", lambda m, n, e: dn(m).project(X, 5, 3), ArgumentError, ("paper name", "5", "int")),
    Case("layer-None", lambda m, n, e: vl.resolve_layer(m, None), ArgumentError, ("paper name", "None")),
    Case("layer-unknown", lambda m, n, e: vl.resolve_layer(m, "c9"), vl.LayerError, ("unknown layer", "Did you mean")),
    Case("layer-unknown-is-KeyError", lambda m, n, e: vl.top_activations(m, "fc9", DATA, **QUIET), KeyError,
         ("unknown layer",)),
    Case("receptive_field-int-layer", lambda m, n, e: vl.receptive_field(m, 3), ArgumentError, ("paper name",)),
    Case("receptive_field-dense", lambda m, n, e: vl.receptive_field(m, "fc6"), KeyError, ("dense layers",)),
    # a Net where a module goes
    Case("receptive_field-Net", lambda m, n, e: vl.receptive_field(n, "c5"), None),
    Case("receptive_fields-Net", lambda m, n, e: vl.receptive_fields(n), None),
    Case("unit_box-Net", lambda m, n, e: vl.unit_box(n, "c1", 0, 0, 64), None),
    Case("summary-Net", lambda m, n, e: _summary_channels(vl.summary(n, 64), 1), None),
    Case("summary-grey-module", lambda m, n, e: _summary_channels(vl.summary(m, 64), 1), None),
    Case("summary-wrong-in_channels", lambda m, n, e: vl.summary(m, 64, in_channels=3), ArgumentError,
         ("in_channels=3", "first convolution", "1-channel")),
    Case("summary-too-small", lambda m, n, e: vl.summary(m, 10), vl.InputTooSmall, ("too small", "at least")),
    Case("summary-None", lambda m, n, e: vl.summary(None), ArgumentError, ("nn.Module or a vizlib Net",)),
    Case("receptive_field-None", lambda m, n, e: vl.receptive_field(None, "c1"), ArgumentError, ("Net",)),
    Case("deconvnet-None", lambda m, n, e: vl.Deconvnet(None), ArgumentError, ("Deconvnet needs a network",)),
    Case("occlusion-None", lambda m, n, e: vl.Occlusion(None), ArgumentError, ("Occlusion needs a network",)),
    Case("denet-None", lambda m, n, e: vl.DeNet(None), ArgumentError, ("DeNet needs a network",)),
    Case("top_activations-None", lambda m, n, e: vl.top_activations(None, "c5", DATA), ArgumentError,
         ("needs a network",)),
    Case("layer_sparsity-string-model", lambda m, n, e: vl.layer_sparsity("alexnet", DATA), ArgumentError,
         ("nn.Module or a vizlib Net", "'alexnet'")),
    Case("patch_features-None", lambda m, n, e: vl.patch_features(None, "c2", DATA), ArgumentError,
         ("needs a network",)),
    Case("min_input_size-Net", lambda m, n, e: vl.min_input_size(n), None),
    Case("output_sizes-Net", lambda m, n, e: vl.output_sizes(n, 64), None),
    Case("Capture-Net", lambda m, n, e: vl.Capture(n, ["c1"]).__enter__().remove(), None),
    Case("trace-Net", lambda m, n, e: vl.trace(n, X.unsqueeze(0), keep=["features.0"]), None),
    Case("deconvnet-Net", lambda m, n, e: vl.Deconvnet(n).project(X, "c5", 3), None),
    # images: PIL modes, channels, sizes, files
    Case("load_image-16-bit", lambda m, n, e: check_16bit(n), None),
    Case("load_image-float-0-1", lambda m, n, e: check_float(n), None),
    Case("load_image-float-0-255", lambda m, n, e: vl.load_image(picture_float(0, 255), n), None),
    Case("load_image-float-out-of-range", lambda m, n, e: vl.load_image(picture_float(-5, 5), n), vl.ImageError,
         ("-5..", "outside", "[0, 1]")),
    Case("load_image-cmyk", lambda m, n, e: vl.load_image(Image.new("CMYK", (64, 64)), n), vl.ImageError,
         ("CMYK", "convert=True", "load_image")),
    Case("deconvnet-cmyk-fix-names-load_image", lambda m, n, e: vl.Deconvnet(n).project(Image.new("CMYK", (64, 64)),
                                                                                       "c5", 3),
         vl.ImageError, ("vizlib.load_image(image, net, convert=True)",)),
    Case("load_image-palette", lambda m, n, e: vl.load_image(Image.new("P", (64, 64)), n), vl.ImageError,
         ("RGB", "convert=True")),
    Case("load_image-palette-convert", lambda m, n, e: vl.load_image(Image.new("P", (64, 64)), n, convert=True),
         None),
    Case("load_image-no-file", lambda m, n, e: vl.load_image(e["tmp"] / "missing.png", n), FileNotFoundError,
         ("no such image file",)),
    Case("load_image-text-file", lambda m, n, e: vl.load_image(text_file(e["tmp"]), n), vl.ImageError,
         ("not an image file", "text file")),
    Case("load_image-folder", lambda m, n, e: vl.load_image(e["tmp"], n), vl.ImageError, ("folder", "ImageFiles")),
    Case("load_image-bad-array", lambda m, n, e: vl.load_image(np.zeros((4, 4, 7), np.uint8), n), vl.ImageError,
         ("(H, W, 3)",)),
    Case("load_image-bad-net", lambda m, n, e: vl.load_image(X, "alexnet"), ArgumentError, ("nn.Module",)),
    Case("load_image-None", lambda m, n, e: vl.load_image(None, n), vl.ImageError, ("NoneType", "file path")),
    Case("check_image-rgb-for-grey", lambda m, n, e: vl.check_image(torch.zeros(3, 64, 64), m), vl.ImageError,
         ("1-channel", "Fix")),
    Case("check_image-too-small", lambda m, n, e: vl.check_image(torch.zeros(1, 12, 12), m), vl.InputTooSmall,
         ("smaller than this network accepts",)),
    Case("check_image-integer", lambda m, n, e: vl.check_image(torch.zeros(1, 64, 64, dtype=torch.uint8), m),
         vl.ImageError, ("integer",)),
    Case("check_image-5d", lambda m, n, e: vl.check_image(torch.zeros(1, 1, 1, 64, 64), m), vl.ImageError,
         ("(C, H, W)",)),
    Case("check_image-list", lambda m, n, e: vl.check_image([1, 2], m), vl.ImageError, ("load_image",)),
    Case("check_image-batch", lambda m, n, e: vl.check_image(DATA, m), vl.ImageError, ("batch of 4",)),
    Case("check_image-no-images", lambda m, n, e: vl.check_image(torch.zeros(0, 1, 64, 64), m, batch=True),
         vl.ImageError, ("no images",)),
    # empty data
    Case("top_activations-empty-tensor", lambda m, n, e: vl.top_activations(m, "c5", DATA[:0], **QUIET), EmptyData,
         ("no images", "(0, 1, 64, 64)")),
    Case("top_activations-empty-list", lambda m, n, e: vl.top_activations(m, "c5", [], **QUIET), EmptyData,
         ("no images",)),
    Case("top_patches-empty-tensor", lambda m, n, e: vl.top_patches(m, "c5", DATA[:0], **QUIET), EmptyData,
         ("no images",)),
    Case("layer_sparsity-empty-dataset", lambda m, n, e: vl.layer_sparsity(m, TensorDataset(DATA[:0]), **QUIET),
         EmptyData, ("no images", "TensorDataset")),
    Case("patch_features-empty", lambda m, n, e: vl.patch_features(m, "c2", DATA[:0], n=10, **QUIET), EmptyData,
         ("no images",)),
    Case("batches-empty", lambda m, n, e: list(vl.batches(DATA[:0])), EmptyData, ("no images",)),
    Case("batches-mixed-sizes", lambda m, n, e: list(vl.batches([torch.zeros(1, 64, 64), torch.zeros(1, 70, 70)])),
         ValueError, ("mixes image sizes", "item 1")),
    Case("top_activations-mixed-sizes-dataset", lambda m, n, e: vl.top_activations(m, "c5", MixedSizes(), **QUIET),
         ValueError, ("mixes image sizes", "item 2", "(1, 70, 70)")),
    Case("batches-not-data", lambda m, n, e: list(vl.batches(3)), TypeError, ("cannot read images",)),
    Case("top_patches-generator", lambda m, n, e: vl.top_patches(m, "c5", (b for b in DATA.split(2)), k=1, **QUIET),
         ValueError, ("one-shot",)),
    # devices
    Case("deconvnet-meta-model", lambda m, n, e: vl.Deconvnet(meta_model()), DeviceError, ("meta device",)),
    Case("occlusion-meta-model", lambda m, n, e: vl.Occlusion(meta_model()), DeviceError, ("meta device",)),
    Case("summary-meta-model", lambda m, n, e: vl.summary(meta_model(), 64), None),
    Case("device-meta", lambda m, n, e: vl.Deconvnet(m, device="meta"), DeviceError, ("meta",)),
    Case("device-not-a-name", lambda m, n, e: vl.Deconvnet(m, device="gpu0"), DeviceError,
         ("'gpu0'", "not a device name", "'cuda'")),
    Case("device-env-gpu0", lambda m, n, e: e["env"]("VIZLIB_DEVICE", "gpu0") or vl.device(), DeviceError,
         ("'gpu0'", "VIZLIB_DEVICE", "not a device name")),
    Case("device-int", lambda m, n, e: vl.top_activations(m, "c5", DATA, device=3.5, **QUIET), DeviceError,
         ("torch.device",)),
    Case("load-device-not-a-name", lambda m, n, e: vl.load("alexnet", "random", device="gpu"), DeviceError,
         ("'gpu'",)),
    *([] if CUDA else [
        Case("deconvnet-cuda-on-cpu", lambda m, n, e: vl.Deconvnet(m, device="cuda"), DeviceError,
             ("CUDA is not available",)),
        Case("occlusion-cuda-on-cpu", lambda m, n, e: vl.Occlusion(m, device="cuda"), DeviceError,
             ("CUDA is not available",)),
        Case("top_activations-cuda-on-cpu", lambda m, n, e: vl.top_activations(m, "c5", DATA, device="cuda", **QUIET),
             DeviceError, ("CUDA is not available",)),
        Case("sparsity-cuda-on-cpu", lambda m, n, e: vl.layer_sparsity(m, DATA, device="cuda:0", **QUIET),
             DeviceError, ("CUDA is not available",)),
        Case("device-cuda-on-cpu", lambda m, n, e: vl.device("cuda"), DeviceError, ("CUDA is not available",)),
    ]),
    # load
    Case("load-None", lambda m, n, e: vl.load(None), ArgumentError, ("arch", "None", "'alexnet'")),
    Case("load-unknown-arch", lambda m, n, e: vl.load("resnet"), KeyError, ("unknown architecture", "alexnet")),
    Case("load-unknown-set", lambda m, n, e: vl.load("alexnet", "cifar"), ValueError, ("unknown model set",)),
    # the chain of modules: in place or not, a break is refused
    Case("chain-F.relu-inplace", lambda m, n, e: vl.Deconvnet(InplaceFunctional().eval()).project(
        torch.randn(1, 20, 20), "c2", 0), vl.UnsupportedLayer, ("changed in place", "F.relu", "project from a layer")),
    Case("chain-F.relu-inplace-in-inference-mode", lambda m, n, e: _in_inference_mode(
        lambda: vl.Deconvnet(InplaceFunctional().eval()).project(torch.randn(1, 20, 20), "c2", 0)),
        vl.UnsupportedLayer, ("changed in place",)),
    Case("chain-residual-+=", lambda m, n, e: vl.Deconvnet(Residual(True).eval()).project(
        torch.randn(1, 20, 20), "c3", 0), vl.UnsupportedLayer, ("changed in place", "out += x")),
    Case("chain-residual-out-of-place", lambda m, n, e: vl.Deconvnet(Residual(False).eval()).project(
        torch.randn(1, 20, 20), "c3", 0), vl.UnsupportedLayer, ("does not take", "skip connection")),
    Case("chain-below-the-break-works", lambda m, n, e: vl.Deconvnet(InplaceFunctional().eval()).project(
        torch.randn(1, 20, 20), "c1", 0), None),
    Case("chain-nn.ReLU-inplace-module", lambda m, n, e: vl.Deconvnet(module_relu_inplace()).project(
        torch.randn(1, 20, 20), "c2", 0), None),
    Case("denet-F.relu-inplace-dense", lambda m, n, e: vl.DeNet(InplaceDense().eval()).project(
        torch.randn(1, 20, 20), 0), vl.UnsupportedLayer, ("does not take", "in place")),
    # the common cases that already worked: valid calls stay valid
    Case("deconvnet-valid", lambda m, n, e: dn(m).project(X, "c5", [0, 1], (1, 1)), None),
    Case("deconvnet-numpy-int", lambda m, n, e: dn(m).project(X, "c5", np.int64(3)), None),
    Case("top_activations-valid", lambda m, n, e: vl.top_activations(m, "c5", DATA, k=2, **QUIET), None),
    Case("deconvnet-valid-in-inference-mode", lambda m, n, e: _in_inference_mode(
        lambda: dn(m).project(X, "c5", 3)), None),
    Case("top_patches-valid", lambda m, n, e: vl.top_patches(m, "c2", DATA, k=2, channels=[0, 1], **QUIET), None),
    Case("denet-valid", lambda m, n, e: vl.DeNet(m).project(X, [1, 2]), None),
    Case("patch_features-valid", lambda m, n, e: vl.patch_features(m, "c2", DATA, n=12, **QUIET), None),
    Case("layer_sparsity-valid", lambda m, n, e: vl.layer_sparsity(n, DATA, **QUIET), None),
    Case("empirical_receptive_field-valid", lambda m, n, e: vl.empirical_receptive_field(m, "p1"), None),
    Case("summary-valid", lambda m, n, e: vl.summary(m, 64), None),
    Case("occlusion-valid-with-projection", lambda m, n, e: vl.Occlusion(n).sweep(X, 16, 16, **QUIET), None),
    Case("occlusion-valid", lambda m, n, e: vl.Occlusion(m).sweep(X, 16, 16, project=False, **QUIET), None),
]


def _in_inference_mode(call: Callable[[], Any]) -> Any:
    with torch.inference_mode():
        return call()


def _summary_channels(s: Any, channels: int) -> None:
    assert s.input_shape[0] == channels, s.input_shape


def _state(model: nn.Module) -> dict[str, Any]:
    return {
        "hooks": hook_count(model),
        "modes": [m.training for m in model.modules()],
        "grads": [p.requires_grad for p in model.parameters()],
        "devices": {p.device for p in model.parameters()},
        "weights": {k: v.detach().clone() for k, v in model.state_dict().items()},
    }


def _same(before: dict[str, Any], after: dict[str, Any]) -> None:
    for key in ("hooks", "modes", "grads", "devices"):
        assert before[key] == after[key], f"the call changed the model's {key}"
    assert before["weights"].keys() == after["weights"].keys()
    for k, v in before["weights"].items():
        assert torch.equal(v, after["weights"][k]), f"the call changed weight {k}"


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return alexnet_fmnist(seed=0).eval()


@pytest.fixture(scope="module")
def net() -> vl.Net:
    return vl.load("alexnet", "bundled")


def test_the_catalogue_covers_the_issue():
    ids = {c.id for c in CASES}
    assert len(ids) == len(CASES), "case ids must be unique"
    assert len(CASES) >= 90


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, model: nn.Module, net: vl.Net, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("VIZLIB_DEVICE", raising=False)
    env = {"tmp": tmp_path, "env": lambda k, v: monkeypatch.setenv(k, v)}
    model.train()  # a flag that a call could silently change
    model.features[0].weight.requires_grad_(False)
    before, before_net = _state(model), _state(net.model)
    ours = {id(mod) for mod in [*model.modules(), *net.model.modules()]}
    passes: list[str] = []

    def count(module: nn.Module, inputs: tuple, output: Any) -> None:  # real passes, not the meta-device checks
        if id(module) in ours and isinstance(output, torch.Tensor) and output.device.type != "meta":
            passes.append(type(module).__name__)

    handle = torch.nn.modules.module.register_module_forward_hook(count)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if case.exc is None:
                case.call(model, net, env)
            else:
                with pytest.raises(case.exc) as info:
                    case.call(model, net, env)
                message = str(info.value)
                for word in case.words:
                    assert word in message, f"{word!r} is not in the message: {message}"
                if issubclass(case.exc, vl.VizlibError):
                    assert isinstance(info.value, vl.VizlibError)
                if not case.forward:
                    assert not passes, f"the error came after a forward pass ({len(passes)} module calls)"
        _same(before, _state(model))
        _same(before_net, _state(net.model))
    finally:
        handle.remove()
        model.eval()
        model.features[0].weight.requires_grad_(True)


def test_zfnet_offline_message_names_pytorchcvs_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    pytest.importorskip("pytorchcv")
    from vizlib.models import model_sets

    cached = tmp_path / "pytorchcv-store" / "zfnet-0000-00000000.pth"
    monkeypatch.setattr(model_sets, "_pytorchcv_names", lambda: (cached, "https://example.invalid/zfnet.pth.zip"))
    monkeypatch.setattr(model_sets, "_host_reachable", lambda url: False)
    with pytest.raises(vl.WeightsUnavailable) as info:
        model_sets._pytorchcv_zfnet_file(download=True)
    message = str(info.value)
    assert str(cached.parent) in message and "pytorchcv" in message
    assert "hub" not in message.split("copy the file into")[1].split(",")[0]


def test_every_error_class_derives_from_a_builtin():
    import vizlib.core.errors as errors

    for name in errors.__all__:
        cls = getattr(errors, name)
        if cls is errors.VizlibError or not issubclass(cls, errors.VizlibError):
            continue
        assert any(b.__module__ == "builtins" and b is not object for b in cls.__mro__[1:]
                   if b not in (errors.VizlibError, BaseException, Exception)), name
