import time
import types

import pytest
import torch

import vizlib as vl
from vizlib.models import ARCHITECTURES
from vizlib.models import model_sets as ms


def test_random_set_is_seeded_and_named():
    a, b = vl.load("alexnet", "random", seed=1), vl.load("alexnet", "random", seed=1)
    assert a.model_set == "random" and a.layers[0] == "c1" and len(a.categories) == 1000
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))
    assert not a.model.training
    assert a.input_size == 224 and len(a.mean) == 3


def test_offline_imagenet_fails_fast_with_clear_message(monkeypatch, tmp_path):
    # An address that never answers: the probe must give up within its bound.
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    fake = types.SimpleNamespace(url="https://10.255.255.1/alexnet-owt-7be5be79.pth")
    monkeypatch.setitem(ms._TV_WEIGHTS, "alexnet", fake)
    monkeypatch.delenv("VIZLIB_OFFLINE", raising=False)
    t0 = time.monotonic()
    with pytest.raises(vl.WeightsUnavailable) as err:
        vl.load("alexnet", "imagenet")
    assert time.monotonic() - t0 < 10
    msg = str(err.value)
    assert "VIZLIB_MODEL_SET=bundled" in msg and "VIZLIB_MODEL_SET=random" in msg and str(tmp_path) in msg


def test_real_imagenet_request_never_hangs(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setenv("VIZLIB_OFFLINE", "1")
    t0 = time.monotonic()
    with pytest.raises(vl.WeightsUnavailable):
        vl.load("vgg16", "imagenet")
    with pytest.raises(vl.WeightsUnavailable):
        vl.load("zfnet", "imagenet")
    assert time.monotonic() - t0 < 10


def test_auto_falls_back_offline(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setenv("VIZLIB_OFFLINE", "1")
    monkeypatch.delenv("VIZLIB_MODEL_SET", raising=False)
    chosen = vl.choose_model_set()
    assert chosen == ("bundled" if all(ms.bundled_available(a) for a in ARCHITECTURES) else "random")
    monkeypatch.setenv("VIZLIB_MODEL_SET", "random")
    assert vl.choose_model_set() == "random"
    monkeypatch.setenv("VIZLIB_MODEL_SET", "imagenett")
    with pytest.raises(ValueError, match="must be one of imagenet, bundled, random, auto"):
        vl.choose_model_set()


def test_cached_weights_are_used_without_network(monkeypatch, tmp_path):
    """A file already in torch's cache loads with the network off."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setenv("VIZLIB_OFFLINE", "1")
    weights = ms._TV_WEIGHTS["alexnet"]
    path = ms._cache_file(weights.url)
    path.parent.mkdir(parents=True)
    state = vl.alexnet(seed=5).state_dict()
    torch.save(state, path)
    monkeypatch.setattr(type(weights), "get_state_dict",
                        lambda self, progress=True, check_hash=False: torch.load(path, weights_only=True))
    net = vl.load("alexnet", "imagenet")
    assert net.model_set == "imagenet" and "AlexNet_Weights" in net.source
    assert torch.equal(net.model.features[0].weight, state["features.0.weight"])


def test_unknown_arch():
    with pytest.raises(KeyError, match="choose one of alexnet, zfnet, vgg16"):
        vl.load("resnet", "random")


def test_describe():
    assert "Random" in vl.describe_model_set("random")


def test_device_choice(monkeypatch):
    monkeypatch.delenv("VIZLIB_DEVICE", raising=False)
    d = vl.device()
    assert d.type in ("cuda", "mps", "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            vl.device("cuda")
    assert vl.device("cpu").type == "cpu"
