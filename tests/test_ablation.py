"""The model-size study's variants: each builds, has the layers and the parameter count it should; records."""

from __future__ import annotations

import json

import pytest
import torch

from vizlib.models.ablation import (
    REPRODUCED,
    VARIANTS,
    Budget,
    ablation_net,
    load_records,
    parameter_count,
    record_path,
    same_numbers,
)
from vizlib.models.bundled_nets import alexnet_fmnist


def conv(cin: int, cout: int, k: int) -> int:
    return cin * cout * k * k + cout


def dense(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


# Counted by hand from the design: c1 7x7 on 1 channel, c2..c5 3x3, fc8 10 classes.
EXPECTED = {
    "base": conv(1, 24, 7) + conv(24, 48, 3) + conv(48, 64, 3) + conv(64, 64, 3) + conv(64, 48, 3)
    + dense(48, 512) + dense(512, 512) + dense(512, 10),
    "no_fc67": conv(1, 24, 7) + conv(24, 48, 3) + conv(48, 64, 3) + conv(64, 64, 3) + conv(64, 48, 3) + dense(48, 10),
    "no_c34": conv(1, 24, 7) + conv(24, 48, 3) + conv(48, 48, 3) + dense(48, 512) + dense(512, 512) + dense(512, 10),
    "no_c34_fc67": conv(1, 24, 7) + conv(24, 48, 3) + conv(48, 48, 3) + dense(48, 10),
    "wide_c345": conv(1, 24, 7) + conv(24, 48, 3) + conv(48, 96, 3) + conv(96, 160, 3) + conv(160, 96, 3)
    + dense(96, 512) + dense(512, 512) + dense(512, 10),
    "wide_fc67": conv(1, 24, 7) + conv(24, 48, 3) + conv(48, 64, 3) + conv(64, 64, 3) + conv(64, 48, 3)
    + dense(48, 1024) + dense(1024, 1024) + dense(1024, 10),
    "wide_both": conv(1, 24, 7) + conv(24, 48, 3) + conv(48, 96, 3) + conv(96, 160, 3) + conv(160, 96, 3)
    + dense(96, 1024) + dense(1024, 1024) + dense(1024, 10),
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_builds_with_its_parameter_count(name):
    net = ablation_net(name, seed=0).eval()
    assert parameter_count(net) == EXPECTED[name]
    assert tuple(net(torch.zeros(2, 1, 64, 64)).shape) == (2, 10)
    layers = list(net.vizlib_layers)
    assert layers[-1] == "fc8"
    assert ("c3" in layers) == ("c3" in VARIANTS[name].convs)
    assert ("fc7" in layers) == bool(VARIANTS[name].hidden)
    for label, path in net.vizlib_layers.items():   # names point at the rectified outputs and the pools
        module = net.get_submodule(path)
        kind = type(module).__name__
        assert kind == {"c": "ReLU", "p": "MaxPool2d"}.get(label[0], "Linear" if label == "fc8" else "ReLU"), label


def test_base_is_the_bundled_design():
    a, b = alexnet_fmnist(seed=0), ablation_net("base", seed=0)
    assert a.vizlib_layers == b.vizlib_layers
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_variants_table_and_records():
    with pytest.raises(KeyError, match="unknown ablation variant"):
        ablation_net("no_c5")
    assert Budget().seed == 0
    records = load_records()
    assert records, "the committed records of the study are missing"
    for name, runs in records.items():
        assert [r["seed"] for r in runs] == sorted({r["seed"] for r in runs})  # one record per seed, by seed
        for record in runs:
            assert record["variant"] == name and record["budget"]["seed"] == record["seed"]
            assert record["budget"] == records["base"][0]["budget"] | {"seed": record["seed"]}  # one budget for all
            assert record["parameters"] == EXPECTED[name]
            assert 0 <= record["train_error"] <= 1 and 0 <= record["test_error"] <= 1
            assert len(record["curve"]) == record["budget"]["epochs"]
            assert f"python -m vizlib.models.ablation {name} " in record["command"]
            assert record["command"].endswith(f"--seed {record['seed']}")
            assert same_numbers(record, json.loads(json.dumps(record))) == []
    assert set(REPRODUCED) >= {"train_error", "test_error", "curve"}


def test_record_paths_and_loading_per_seed(tmp_path):
    for seed in (1, 0):
        record_path("no_fc67", tmp_path, seed).write_text(json.dumps({"variant": "no_fc67", "seed": seed}))
    (tmp_path / "no_fc67_seedx.json").write_text("{}")  # not a seed: ignored
    assert record_path("base", tmp_path).name == "base_seed0.json"
    loaded = load_records(tmp_path)
    assert list(loaded) == ["no_fc67"] and [r["seed"] for r in loaded["no_fc67"]] == [0, 1]
