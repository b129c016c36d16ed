"""What every chapter's explorer shares: drawing its state into an Output widget.

Each explorer lives in its chapter's module, calls the same plain functions the
chapter calls, and returns an ipywidgets widget to display."""

from __future__ import annotations

from typing import Callable

import ipywidgets as W

__all__ = ["_draw"]


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
