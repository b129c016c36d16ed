"""What every chapter's explorer shares: controls above an output that shows the current choice.

Each explorer lives in its chapter's module, calls the same plain functions the
chapter calls, and returns an :class:`Explorer` to display.

How an explorer draws, and why:

- Everything a drawing displays or prints is **captured** and set as the
  Output widget's contents in one step (``out.outputs = ...``), both while the
  cell runs and on every interaction. Nothing is written through the Output
  widget's context manager, whose routing depends on the front end having
  registered the message first: when it had not (the first interaction after
  Run All), JupyterLab put the figure in its Log Console and left the
  explorer blank. A headless executor (nbclient) can also stall on it.
- The previous view stays until the new one is ready; meanwhile a **busy line**
  says that it is computing and the controls are disabled.
- Warnings and stderr (progress bars) raised while drawing are kept in
  :attr:`Explorer.last`, never shown: an explorer says in plain words what it
  cannot show (its ``update`` returns a note), it does not print warnings.
- A figure the drawing leaves open is closed, so it cannot surface later in
  another cell or in the Log Console.
"""

from __future__ import annotations

import html
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import ipywidgets as W
import numpy as np

__all__ = ["Explorer", "Drawn", "Words", "explorer", "show_figure", "capture", "BUSY", "StaticExplorer",
           "static_explorer", "spread"]

BUSY = "⏳ Computing… the view below is the previous choice until the new one is ready."

_NOTE_STYLE = "color: #444; font-size: 0.95em; min-height: 1.4em"


@dataclass
class Drawn:
    """What one drawing produced: the outputs shown, and what was kept out of sight.

    Attributes:
        outputs: the Output widget's new contents (nbformat output dicts).
        warnings: the warnings raised while drawing, as ``"Category: message"``.
        stderr: text written to stderr (progress bars, logging).
        error: the exception that stopped the drawing, if any (its message is shown in plain words).
        note: the plain-words note shown above the output (from ``update``), or ``""``.
    """

    outputs: tuple[dict, ...] = ()
    warnings: list[str] = field(default_factory=list)
    stderr: str = ""
    error: BaseException | None = None
    note: str = ""


def capture(*steps: Callable[[], Any]) -> tuple[Drawn, list[Any]]:
    """Run ``steps`` in order, capturing what they display and print; return it as Output contents.

    Text printed (stdout) comes first, then the displays in their order. An
    exception stops the steps; its message becomes a plain line of text.
    Figures the steps leave open are closed.

    Returns:
        The :class:`Drawn` record and the steps' return values (``None`` for steps that did not run).

    Example:
        >>> drawn, values = capture(lambda: print("hello") or 3)
        >>> drawn.outputs[0]["text"], values
        ('hello\\n', [3])
    """
    import matplotlib.pyplot as plt
    from IPython.utils.capture import capture_output

    before = set(plt.get_fignums())
    values: list[Any] = [None] * len(steps)
    error: BaseException | None = None
    with warnings.catch_warnings(record=True) as caught, capture_output() as cap:
        warnings.simplefilter("always")
        try:
            for i, step in enumerate(steps):
                values[i] = step()
        except Exception as exc:  # shown in plain words below; kept in Drawn.error
            error = exc
    for num in set(plt.get_fignums()) - before:
        plt.close(num)
    outputs: list[dict] = []
    text = cap.stdout
    if error is not None:
        text += f"This choice could not be drawn: {error}\n"
    if text:
        outputs.append({"output_type": "stream", "name": "stdout", "text": text})
    outputs += [{"output_type": "display_data", "data": o.data, "metadata": o.metadata} for o in cap.outputs]
    found = [f"{w.category.__name__}: {w.message}" for w in caught]
    return Drawn(tuple(outputs), found, cap.stderr, error), values


class Explorer(W.VBox):
    """Rows of controls, a line for notes and the busy state, and the output that shows the current choice.

    ``content`` draws the current state (``display(...)``, ``print(...)``,
    :func:`show_figure`); it is drawn once now, while the cell runs (so the
    rendered book shows the first state), and again whenever a control's
    value changes. Before each redraw ``update(change)`` runs, if given: it
    may adjust other controls (their changes do not redraw on their own) and
    return a note in plain words, shown above the output (say there what a
    control could not keep, and why). ``busy()``, if given, says what is being
    computed (shown instead of :data:`BUSY` while the new view is made).

    Attributes:
        controls: the controls, row by row, flattened.
        status: the line above the output (busy state, notes).
        output: the Output widget.
        last: the :class:`Drawn` record of the latest drawing.

    Example:
        >>> pick = W.Dropdown(options=["a", "b"])
        >>> box = Explorer([[pick]], lambda: print(pick.value))
        >>> box.output.outputs[0]["text"].strip()
        'a'
        >>> pick.value = "b"
        >>> box.output.outputs[0]["text"].strip()
        'b'
    """

    def __init__(self, rows: Sequence[Sequence[W.Widget]], content: Callable[[], None], *,
                 update: Callable[[dict | None], str | None] | None = None,
                 busy: Callable[[], str] | None = None) -> None:
        rows = [list(r) for r in rows]
        output = W.Output()
        status = W.HTML(value="", layout=W.Layout(min_height="1.6em"))
        super().__init__([*(W.HBox(r) for r in rows), status, output])
        self.controls: list[W.Widget] = [w for r in rows for w in r]
        self.status = status
        self.output = output
        self.last = Drawn()
        self._content = content
        self._update = update
        self._busy = busy
        self._held = 0
        for w in self.controls:
            w.observe(self._changed, "value")
        self.refresh(None, busy=False)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Inside this block control changes do not redraw (use it to refill a control's options).

        Example:
            >>> pick = W.Dropdown(options=["a", "b"])
            >>> box = Explorer([[pick]], lambda: print(pick.value))
            >>> with box.held():
            ...     pick.value = "b"
            >>> box.output.outputs[0]["text"].strip()
            'a'
        """
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1

    def _changed(self, change: dict) -> None:
        if not self._held:
            self.refresh(change)

    def refresh(self, change: dict | None = None, *, busy: bool = True) -> Drawn:
        """Draw the current state: run ``update(change)`` (when a control changed), then ``content``.

        Shows the busy line and disables the controls meanwhile; the old
        output stays until the new one replaces it in one step.

        Returns:
            The :class:`Drawn` record (also kept in :attr:`last`).
        """
        disabled = {id(w): w.disabled for w in self.controls if hasattr(w, "disabled")}
        if busy:
            text = BUSY
            if self._busy is not None:
                try:
                    text = self._busy() or BUSY
                except Exception:  # a busy line is never worth a failed drawing
                    text = BUSY
            self.status.value = _line(text)
            for w in self.controls:
                if id(w) in disabled:
                    w.disabled = True
        try:
            with self.held():
                steps = [self._content]
                if self._update is not None and change is not None:
                    steps.insert(0, lambda: self._update(change))  # type: ignore[misc]
                drawn, values = capture(*steps)
            note = values[0] if len(steps) == 2 and isinstance(values[0], str) else ""
            drawn.note = note
            self.output.outputs = drawn.outputs
            self.last = drawn
        finally:
            for w in self.controls:
                if id(w) in disabled:
                    w.disabled = disabled[id(w)]
            self.status.value = _line(self.last.note) if self.last.note else ""
        return drawn

    def note(self, text: str) -> None:
        """Show ``text`` (plain words) on the line above the output, until the next change."""
        self.last.note = text
        self.status.value = _line(text) if text else ""


def _line(text: str) -> str:
    return f'<div style="{_NOTE_STYLE}">{html.escape(text)}</div>'


class Words:
    """A sentence for an explorer's output: shown as a wrapped paragraph (HTML), plain text elsewhere.

    Printed text in an Output widget is monospace and breaks words at the edge; ``display(Words(...))``
    reads as prose.

    Example:
        >>> Words("c5: 40 of 48 maps respond")
        c5: 40 of 48 maps respond
        >>> Words("a < b")._repr_html_()
        '<p style="margin: 0.2em 0">a &lt; b</p>'
    """

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return f'<p style="margin: 0.2em 0">{html.escape(self.text)}</p>'


def explorer(controls: Sequence[W.Widget], content: Callable[[], None], *,
             update: Callable[[dict | None], str | None] | None = None,
             busy: Callable[[], str] | None = None) -> Explorer:
    """An :class:`Explorer` with ``controls`` in one row.

    Args:
        controls: the widgets, shown in one row.
        content: draws the current state (``display(...)``, ``print(...)``, :func:`show_figure`).
        update: runs before each redraw with the change; may adjust other controls and return a note.
        busy: says what a redraw is computing (the busy line), if more than :data:`BUSY`.

    Example:
        >>> pick = W.Dropdown(options=["a", "b"])
        >>> box = explorer([pick], lambda: print(pick.value))
        >>> box.output.outputs[0]["text"].strip()
        'a'
    """
    return Explorer([list(controls)], content, update=update, busy=busy)


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


# --------------------------------------------------------------------------- kernel-free figures

# matplotlib's JavaScript animation names Font Awesome 4 icons and loads their stylesheet from a CDN;
# the book serves nothing from outside itself, so the link goes and each icon becomes a character.
_ICONS = {"fa fa-minus": "−", "fa fa-fast-backward": "|◀◀", "fa fa-step-backward": "◀|",
          "fa fa-play fa-flip-horizontal": "◀", "fa fa-pause": "||", "fa fa-play": "▶",
          "fa fa-step-forward": "|▶", "fa fa-fast-forward": "▶▶|", "fa fa-plus": "+"}
_BUTTON_STYLE = "width: auto; min-width: 36px; padding: 0 4px"
_STATIC_STYLE = ("border: 1px solid #d0d7de; border-radius: 4px; padding: 0.4em 0.6em; margin: 0.4em 0; "
                 "max-width: 100%; overflow-x: auto")


def spread(items: Sequence[Any], n: int) -> list[Any]:
    """``n`` items spread evenly over ``items`` (first and last kept); all of them when there are fewer.

    Example:
        >>> spread(range(10), 4)
        [0, 3, 6, 9]
        >>> spread("ab", 5)
        ['a', 'b']
    """
    items = list(items)
    if n <= 0:
        raise ValueError(f"spread needs n >= 1 items to keep, got {n}")
    if len(items) <= n:
        return items
    if n == 1:
        return items[:1]
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)]


@dataclass
class StaticExplorer:
    """A figure that steps through precomputed states in the page, with no kernel and no network.

    Shown through matplotlib's JavaScript animation (``Animation.to_jshtml``): every state is one
    PNG frame embedded in the page, a slider and step buttons pick the frame. Each frame carries
    its state's label above the figure. :func:`static_explorer` makes it.

    Attributes:
        labels: one label per state, in slider order.
        html: the self-contained HTML (frames, slider, buttons, script).
        frame_size: the frames' ``(width, height)`` in pixels.
    """

    labels: list[str]
    html: str
    frame_size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.labels)

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return (f"Kernel-free figure: {len(self)} precomputed states ({self.labels[0]} … {self.labels[-1]}); "
                "its slider works in the rendered page")


def _frame(fig: Any, dpi: float, max_width: int) -> np.ndarray:
    import io

    import matplotlib.pyplot as plt
    from PIL import Image

    try:
        width_in = float(fig.get_size_inches()[0])
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=min(dpi, max_width / width_in), facecolor="white")
    finally:
        plt.close(fig)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def _stack(parts: list[np.ndarray]) -> np.ndarray:
    """Frames one above the other, on white, left-aligned."""
    w = max(p.shape[1] for p in parts)
    out = np.full((sum(p.shape[0] for p in parts), w, 3), 255, dtype=np.uint8)
    y = 0
    for p in parts:
        out[y : y + p.shape[0], : p.shape[1]] = p
        y += p.shape[0]
    return out


def static_explorer(states: Sequence[Any], draw: Callable[[Any], Any], *, labels: Sequence[str] | None = None,
                    name: str = "state", dpi: float = 80, max_width: int = 660, fps: float = 1.0,
                    frame_format: str = "png") -> StaticExplorer:
    """Precompute ``draw(state)`` for each state and show the figures behind one slider, kernel-free.

    The explorer beside it recomputes any choice in a live kernel; this figure keeps a few
    choices, drawn by the same chapter function, so that the rendered book (no kernel, no
    network) still responds to its control. Frames are PNGs at ``dpi`` (lowered where a figure
    would be wider than ``max_width`` pixels), padded to one size; each carries the line
    ``"{name}: {label}"`` above the figure.

    Args:
        states: the states, in slider order (keep them few: each is a PNG in the page).
        draw: draws one state and returns its matplotlib Figure, or a list of them shown one above the
            other (closed here).
        labels: one label per state (default: ``str(state)``).
        name: what a state is ("occluder at", "map", "class"), for the line above each frame.
        dpi: resolution of the frames.
        max_width: widest frame, in pixels (660: the book's content column in a 1280-pixel window, so
            frames are shown at their own size, never scaled down).
        fps: frames per second when played.
        frame_format: ``"png"`` (exact; for plots) or ``"jpeg"`` (a fifth of the bytes for photographs).

    Returns:
        A :class:`StaticExplorer` (display it; ``len()`` is the number of states).

    Raises:
        ValueError: no states, labels not one per state, or another frame format.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> def draw(k):
        ...     fig, ax = plt.subplots(figsize=(2, 1))
        ...     ax.plot(range(k + 2))
        ...     return fig
        >>> view = static_explorer([0, 1, 2], draw, name="k")
        >>> len(view), view.html.count("data:image/png;base64")
        (3, 3)
    """
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation

    states = list(states)
    if frame_format not in ("png", "jpeg"):
        raise ValueError(f"frame_format must be 'png' or 'jpeg', got {frame_format!r}")
    if not states:
        raise ValueError("static_explorer needs at least one state to show; pass a non-empty list of states")
    labels = [str(s) for s in states] if labels is None else [str(t) for t in labels]
    if len(labels) != len(states):
        raise ValueError(f"static_explorer got {len(labels)} labels for {len(states)} states; give one label per state")
    frames = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for state in states:
            drawn = draw(state)
            parts = [_frame(f, dpi, max_width) for f in (drawn if isinstance(drawn, (list, tuple)) else [drawn])]
            frames.append(_stack(parts))
    head_px = 22
    h = max(f.shape[0] for f in frames)
    w = max(f.shape[1] for f in frames)
    padded = []
    for f in frames:
        canvas = np.full((h, w, 3), 255, dtype=np.uint8)
        canvas[: f.shape[0], : f.shape[1]] = f
        padded.append(canvas)
    fig = plt.figure(figsize=(w / dpi, (h + head_px) / dpi), dpi=dpi)
    try:
        ax = fig.add_axes((0, 0, 1, h / (h + head_px)))
        ax.set_axis_off()
        im = ax.imshow(padded[0], interpolation="none", aspect="auto")
        text = fig.text(0.01, 1 - 0.5 * head_px / (h + head_px), "", va="center", ha="left",
                        fontsize=13 * 72 / dpi, weight="bold")

        def step(i: int) -> None:
            im.set_data(padded[i])
            text.set_text(f"{name}: {labels[i]}")

        anim = FuncAnimation(fig, step, frames=len(padded), init_func=lambda: step(0), repeat=False)
        with plt.rc_context({"animation.frame_format": frame_format}):
            raw = anim.to_jshtml(fps=fps, default_mode="once")
    finally:
        plt.close(fig)
    body = re.sub(r"<link[^>]*font-awesome[^>]*>", "", raw)
    for cls, char in _ICONS.items():
        body = body.replace(f'<i class="{cls}"></i>', char)
    body = body.replace("<button title=", f'<button style="{_BUTTON_STYLE}" title=')
    body = body.replace("<img id=", '<img style="max-width: 100%; height: auto" alt="'
                        + html.escape(f"{name}: {labels[0]}") + '" id=', 1)
    intro = (f'<p style="margin: 0 0 0.3em 0">Works without a kernel: drag the slider or use the buttons to step '
             f'through {len(states)} precomputed choices ({html.escape(name)}). The explorer below computes any '
             "choice in a live kernel (JupyterLab).</p>")
    page = (f'<div class="vizlib-static-explorer" data-states="{len(states)}" style="{_STATIC_STYLE}">'
            f"{intro}{body}</div>")
    return StaticExplorer(labels, page, _size_of_first_frame(raw))


def _size_of_first_frame(html_text: str) -> tuple[int, int]:
    import base64
    import io

    from PIL import Image

    found = re.search(r'"data:image/(?:png|jpeg);base64,([^"]+)"', html_text)
    if found is None:  # matplotlib changed how it embeds frames: fail here, not in the page
        raise RuntimeError("matplotlib's JavaScript animation embedded no PNG frame")
    return Image.open(io.BytesIO(base64.b64decode(found.group(1)))).size
