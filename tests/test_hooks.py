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


def test_meta_trace_keeps_the_callers_hooks_out_and_in_place():
    import torch.nn as nn

    from vizlib.core.hooks import meta_trace

    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten())
    seen: list[str] = []
    h = net[0].register_forward_hook(lambda m, i, o: seen.append(o.device.type))
    try:
        t = meta_trace(net, (1, 6, 6))
        assert [tuple(c.out_shape) for c in t.calls] == [(1, 2, 4, 4), (1, 2, 4, 4), (1, 32)]
        assert seen == [] and hook_count(net) == 1  # not called, still registered
        net(torch.zeros(1, 1, 6, 6))
        assert seen == ["cpu"]
    finally:
        h.remove()
    assert hook_count(net) == 0


def test_trace_sees_an_in_place_change_between_modules():
    import torch.nn as nn
    import torch.nn.functional as F

    class Net(nn.Module):
        def __init__(self, inplace: bool) -> None:
            super().__init__()
            self.inplace, self.a, self.b = inplace, nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 3)

        def forward(self, x):
            return self.b(F.relu(self.a(x), inplace=True) if self.inplace else self.a(x))

    for inplace, why in ((True, "in place"), (False, None)):
        a, b = vl.trace(Net(inplace), torch.randn(1, 1, 8, 8)).calls
        assert b.takes(a.out_ptr, a.out_version) == why
    relu = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(inplace=True), torch.nn.Conv2d(2, 2, 3))
    c = vl.trace(relu, torch.randn(1, 1, 8, 8)).calls
    assert c[1].takes(c[0].out_ptr, c[0].out_version) is None  # an in-place ReLU module is part of the chain
    assert c[2].takes(c[1].out_ptr, c[1].out_version) is None
