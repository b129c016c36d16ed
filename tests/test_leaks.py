"""No model is kept alive by vizlib after the caller drops it (issue 13).

A model is used once with one method, its result is kept (results must not hold the model), the
model and the method's object are deleted, and a weak reference to the model must die after
``gc.collect()``. A call that raises must not keep it either.
"""

from __future__ import annotations

import gc
import warnings
import weakref
from typing import Any, Callable

import pytest
import torch
from PIL import Image
from torch import nn

import vizlib as vl
from vizlib.models import alexnet_fmnist
from vizlib.models.training import Preprocess

X = torch.randn(1, 64, 64, generator=torch.Generator().manual_seed(0))
DATA = torch.randn(6, 1, 64, 64, generator=torch.Generator().manual_seed(1))
Q = dict(progress=False)


def _net(model: nn.Module) -> vl.Net:
    """A Net around the model (not through vl.load, which may share its nets)."""
    p = Preprocess(64, 0.286, 0.353)
    return vl.Net("alexnet", "bundled", model, [str(i) for i in range(10)], p, (p.mean,), (p.std,), 64, "test")


USES: dict[str, Callable[[nn.Module], Any]] = {
    "Deconvnet.project": lambda m: vl.Deconvnet(m).project(X, "c5", 3),
    "Deconvnet.record": lambda m: vl.Deconvnet(m).record(X, ["c2"]).project("c2", 1),
    "top_activations": lambda m: vl.top_activations(m, "c5", DATA, k=2, **Q),
    "top_patches": lambda m: vl.top_patches(m, "c2", DATA, k=2, channels=[0, 1], **Q),
    "Occlusion.sweep": lambda m: vl.Occlusion(m).sweep(X, 16, 16, **Q),
    "DeNet.project": lambda m: vl.DeNet(m).project(X),
    "patch_features": lambda m: vl.patch_features(m, "c2", DATA, n=12, **Q),
    "layer_sparsity": lambda m: vl.layer_sparsity(m, DATA, **Q),
    "check_image": lambda m: vl.check_image(X, m),
    "load_image": lambda m: vl.load_image(Image.new("L", (64, 64)), _net(m)),
    "summary": lambda m: vl.summary(m, 64),
    "receptive_field": lambda m: vl.receptive_field(m, "c5"),
    "unit_box": lambda m: vl.unit_box(m, "c2", 1, 1, 64),
    "min_input_size": lambda m: vl.min_input_size(m),
    "raising check_image": lambda m: vl.check_image(torch.zeros(1, 20, 20), m),
    "raising Deconvnet.project": lambda m: vl.Deconvnet(m).project(X, "c5", 999),
}


@pytest.mark.parametrize("use", list(USES), ids=list(USES))
def test_a_model_used_once_is_freed(use: str):
    model = alexnet_fmnist(seed=0).eval()
    ref = weakref.ref(model)
    result = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = USES[use](model)
        except vl.VizlibError:
            assert use.startswith("raising"), use
        except (ValueError, KeyError):
            assert use.startswith("raising"), use
    del model
    gc.collect()
    assert ref() is None, f"vizlib keeps the model alive after {use} (the result is {type(result).__name__})"
    del result
