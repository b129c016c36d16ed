import pytest
import torch

import vizlib as vl
from vizlib.core.hooks import capture

from .conftest import hook_count, modes


def test_capture_clones_before_inplace_relu(nets):
    m = nets["alexnet"]
    x = torch.randn(1, 3, 96, 96)
    with capture(m, ["features.0", "c1"]) as cap:
        m(x)
    assert (cap["features.0"] < 0).any(), "pre-ReLU output was overwritten by the in-place ReLU"
    assert torch.equal(cap["c1"], cap["features.0"].clamp(min=0))
    assert hook_count(m) == 0


def test_nothing_survives_a_call_even_when_it_raises(nets):
    m = nets["zfnet"]
    m.train()
    before = modes(m)
    with pytest.raises(RuntimeError, match="boom"):
        with capture(m, ["c1", "p5"]):
            with vl.preserved(m):
                assert not m.training
                raise RuntimeError("boom")
    assert hook_count(m) == 0 and modes(m) == before
    vl.summary(m, 224)
    vl.empirical_receptive_field(m, "c3")
    with pytest.raises(vl.InputTooSmall):
        vl.summary(m, 20)
    with pytest.raises(KeyError):
        with capture(m, ["c1", "nope"]):
            pass
    assert hook_count(m) == 0 and modes(m) == before
    m.eval()


def test_weights_untouched(nets):
    m = nets["alexnet"]
    before = [p.clone() for p in m.parameters()]
    vl.summary(m, 224)
    vl.empirical_receptive_field(m, "p5")
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters()))
