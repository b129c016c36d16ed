"""What every chapter's explorer shares: drawing its state into an Output widget.

Each explorer lives in its chapter's module, calls the same plain functions the
chapter calls, and returns an ipywidgets widget to display."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import ipywidgets as W

__all__ = ["explorer", "show_figure", "_draw"]


def _draw(out: W.Output, draw: Callable[[], None], first: bool) -> None:
    """Show what ``draw`` displays in ``out``.

    The first drawing happens while the notebook cell runs: there it is
    captured and set as the widget's outputs directly, because an Output
    widget used as a context manager (and ``clear_output(wait=True)``) during
    execution can stall a headless executor (nbclient) waiting for a front
    end. Later drawings, on user interaction, replace the contents normally.

    Example:
        >>> out = W.Output()
        >>> _draw(out, lambda: print("first state"), first=True)
        >>> out.outputs
        ({'output_type': 'stream', 'name': 'stdout', 'text': 'first state\\n'},)
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


def explorer(controls: Sequence[W.Widget], content: Callable[[], None]) -> W.Widget:
    """An explorer: ``controls`` in a row above an output that ``content`` draws into.

    ``content`` is drawn once now (captured, so that the rendered book shows
    it: see :func:`_draw`) and again whenever a control's value changes.
    Observers registered on a control before this call run before the redraw
    (use them to bound one slider by another control).

    Args:
        controls: the widgets, shown in one row.
        content: draws the current state (``display(...)``, ``print(...)``, :func:`show_figure`).

    Example:
        >>> pick = W.Dropdown(options=["a", "b"])
        >>> box = explorer([pick], lambda: print(pick.value))
        >>> box.children[1].outputs[0]["text"].strip()
        'a'
    """
    out = W.Output()

    def show(change: object = None, *, first: bool = False) -> None:
        _draw(out, content, first)

    for w in controls:
        w.observe(show, "value")
    show(first=True)
    return W.VBox([W.HBox(list(controls)), out])


def show_figure(fig: Any) -> None:
    """Display a matplotlib figure in an explorer's output, then close it (no second copy below the cell).

    Example:
        >>> from vizlib.chapters.ch02 import photo, plot_units          # doctest: +SKIP
        >>> from vizlib.models import alexnet                           # doctest: +SKIP
        >>> show_figure(plot_units(photo(), alexnet(), [("c3", 6, 6)]))  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt
    from IPython.display import display

    display(fig)
    plt.close(fig)
