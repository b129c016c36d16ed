"""Interactive explorers for the chapters. Each calls the same plain functions the
chapters call, and returns an ipywidgets widget to display."""

from __future__ import annotations

from typing import Any, Callable

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display
from torch import nn

from ..core.errors import InputTooSmall
from ..core.shapes import min_input_size
from ..methods.architecture import summary
from ..methods.receptive_field import _map_size, receptive_fields
from .plotting import plot_receptive_field

__all__ = ["architecture_explorer", "receptive_field_explorer", "_draw"]


def _draw(out: W.Output, draw: Callable[[], None], first: bool) -> None:
    """Show what ``draw`` displays in ``out``.

    The first drawing happens while the notebook cell runs: there it is
    captured and set as the widget's outputs directly, because an Output
    widget used as a context manager (and ``clear_output(wait=True)``) during
    execution can stall a headless executor (nbclient) waiting for a front
    end. Later drawings, on user interaction, replace the contents normally.
    """
    if first:
        from IPython.utils.capture import capture_output

        with capture_output() as cap:
            draw()
        outputs = []
        if cap.stdout:
            outputs.append({"output_type": "stream", "name": "stdout", "text": cap.stdout})
        outputs += [{"output_type": "display_data", "data": o.data, "metadata": o.metadata} for o in cap.outputs]
        out.outputs = tuple(outputs)
        return
    out.clear_output(wait=True)
    with out:
        draw()


def _builders() -> dict[str, Callable[[], nn.Module]]:
    from ..models import nets as models

    return {"AlexNet (torchvision)": models.alexnet, "ZFNet": models.zfnet, "VGG-16": models.vgg16,
            "AlexNet (Krizhevsky, 1 stream)": models.alexnet_original}


def architecture_explorer(
    nets: dict[str, nn.Module] | None = None, sizes: tuple[int, int] = (32, 512), value: int = 224
) -> W.Widget:
    """Pick a network and an input size; see its per-layer table.

    Args:
        nets: label -> model (default: the papers' three nets and Krizhevsky's
            original AlexNet, untrained: the table needs no weights).
        sizes: range of the input-size slider.
        value: initial input size.
    """
    models = nets if nets is not None else {k: b() for k, b in _builders().items()}
    pick = W.Dropdown(options=list(models), description="network")
    size = W.IntSlider(value=value, min=sizes[0], max=sizes[1], step=1, description="input",
                       continuous_update=False)
    out = W.Output()

    def content() -> None:
        model = models[pick.value]
        try:
            display(summary(model, size.value))
        except InputTooSmall as exc:
            print(f"{exc}\n(smallest input this network accepts: {min_input_size(model)})")

    def show(*_: object, first: bool = False) -> None:
        _draw(out, content, first)

    pick.observe(show, "value")
    size.observe(show, "value")
    show(first=True)
    return W.VBox([W.HBox([pick, size]), out])


def receptive_field_explorer(image: np.ndarray, model: nn.Module, layer: str | None = None) -> W.Widget:
    """Pick a layer and a unit position; see the patch the unit sees on ``image``."""
    names = [r.name for r in receptive_fields(model)]
    pick = W.Dropdown(options=names, value=layer or names[len(names) // 2], description="layer")
    ys = W.IntSlider(description="y", continuous_update=False)
    xs = W.IntSlider(description="x", continuous_update=False)
    out = W.Output()
    h = image.shape[0]

    def limits(*_: object) -> None:
        side = _map_size(model, model.vizlib_layers.get(pick.value, pick.value) if hasattr(model, "vizlib_layers")
                         else pick.value, h)
        for s in (ys, xs):
            s.max = side - 1
            s.value = min(s.value, side - 1)

    def content() -> None:
        fig = plot_receptive_field(image, model, pick.value, ys.value, xs.value)
        display(fig)
        plt.close(fig)

    def show(*_: object, first: bool = False) -> None:
        _draw(out, content, first)

    limits()
    ys.value = xs.value = ys.max // 2  # set before observing: the first drawing is below
    pick.observe(limits, "value")
    for w in (pick, ys, xs):
        w.observe(show, "value")
    show(first=True)
    return W.VBox([W.HBox([pick, ys, xs]), out])
