"""Progress bars: on when asked, off everywhere with VIZLIB_PROGRESS=0 (as `make book` builds the book)."""

from __future__ import annotations

import io

import pytest
import torch

import vizlib as vl
from vizlib.core.progress import progress_allowed, tqdm

from ._nets import bundled_net


@pytest.mark.parametrize("value, allowed", [("", True), ("1", True), ("0", False), ("false", False), ("OFF", False)])
def test_the_environment_switches_every_bar_off(monkeypatch, value, allowed):
    monkeypatch.setenv("VIZLIB_PROGRESS", value)
    assert progress_allowed() is allowed
    assert tqdm(range(2), disable=False, file=io.StringIO()).disable is (not allowed)
    assert tqdm(range(2), disable=True, file=io.StringIO()).disable is True


def test_a_method_asked_for_a_bar_shows_none_when_switched_off(monkeypatch, capsys):
    net = bundled_net("alexnet")
    data = torch.utils.data.TensorDataset(torch.rand(8, 1, net.input_size, net.input_size), torch.zeros(8))
    monkeypatch.setenv("VIZLIB_PROGRESS", "0")
    vl.layer_sparsity(net, data, progress=True)
    assert "sparsity of" not in capsys.readouterr().err
    monkeypatch.delenv("VIZLIB_PROGRESS")
    vl.layer_sparsity(net, data, progress=True)
    assert "sparsity of" in capsys.readouterr().err
