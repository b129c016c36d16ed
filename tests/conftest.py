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


def model_state(model: nn.Module) -> dict:
    """What a vizlib call must leave as it found it: hooks, modes, requires_grad, .grad, weights."""
    return {"hooks": hook_count(model), "modes": modes(model),
            "grads": [p.requires_grad for p in model.parameters()],
            "no_grad": [p.grad is None for p in model.parameters()],
            "weights": {k: v.detach().clone() for k, v in model.state_dict().items()}}


def assert_same_state(before: dict, after: dict) -> None:
    """Two :func:`model_state` snapshots are equal (weights bit for bit)."""
    assert after["hooks"] == before["hooks"] and after["modes"] == before["modes"]
    assert after["grads"] == before["grads"] and after["no_grad"] == before["no_grad"]
    assert all(torch.equal(before["weights"][k], after["weights"][k]) for k in before["weights"])


@pytest.fixture
def shell():
    """An IPython shell that renders figures as PNG (as the inline backend does in a kernel)."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.core.pylabtools import select_figure_formats

    sh = InteractiveShell.instance()
    select_figure_formats(sh, {"png"})
    yield sh
    InteractiveShell.clear_instance()


@pytest.fixture(scope="session")
def nets():
    import vizlib as vl

    return {"alexnet": vl.alexnet(seed=0), "zfnet": vl.zfnet(seed=0), "vgg16": vl.vgg16(seed=0)}


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)
    yield
