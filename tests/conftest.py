import os

import pytest
import torch
from torch import nn

os.environ.setdefault("MPLBACKEND", "Agg")


def hook_count(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        + len(getattr(m, "_forward_hooks_with_kwargs", {}))
        for m in model.modules()
    )


def modes(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


@pytest.fixture(scope="session")
def nets():
    import vizlib as vl

    return {"alexnet": vl.alexnet(seed=0), "zfnet": vl.zfnet(seed=0), "vgg16": vl.vgg16(seed=0)}


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)
    yield
