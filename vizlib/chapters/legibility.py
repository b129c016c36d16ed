"""How large a figure's text is on the book's page, in CSS pixels.

A figure is saved as a PNG (cropped to its drawn content, as the notebook's
inline backend does) and shown at its natural size, or shrunk to the content
column when it is wider. Its text is then ``points / 72 × dpi × shrink`` CSS
pixels tall. A 17-inch-wide row of panels with 10 pt titles shrinks to about
6 px: readable in JupyterLab on a wide screen, not on the page.

* :func:`text_sizes` — every string a figure draws and its size on the page;
* :func:`check_figure` — the strings below :data:`MIN_TEXT_PX`;
* :func:`log_figures` — while the book's chapters run under test, a line per
  displayed figure (and per table shown without a title) in a JSON-lines file (``VIZLIB_FIGURE_LOG``; installed by
  ``vizlib.chapters`` itself), which ``scripts/check_figures.py`` reads.

Example:
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots(figsize=(17, 3))
    >>> _ = ax.set_title("wide", fontsize=10)
    >>> bool(min(t.px for t in text_sizes(fig) if t.text == "wide") < MIN_TEXT_PX)
    True
    >>> plt.close(fig)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CONTENT_PX", "PAGE_INCHES", "MIN_TEXT_PX", "TextSize", "text_sizes", "check_figure", "log_figures"]

#: The widest a figure is shown on the page, in CSS pixels (a cell output in sphinx-book-theme at a 1280 px window:
#: ``tests/test_pages.py`` measures it on a built page and checks this value).
CONTENT_PX = 688

#: The width a chapter's figure is drawn at, in inches: at the notebooks' 100 dpi it is shown at about
#: 93 % (688 of 740 px), so 7.5 pt text stays above :data:`MIN_TEXT_PX`.
PAGE_INCHES = 7.4

#: The smallest text, in CSS pixels, a figure may draw on the page (issue 17: "about 9 CSS px").
MIN_TEXT_PX = 9.0


@dataclass(frozen=True)
class TextSize:
    """One string a figure draws: its text, its size in points, and on the page in CSS pixels."""

    text: str
    points: float
    px: float


def _page_scale(fig: Any, dpi: float, bbox_inches: Any, pad_inches: float | None,
                content_px: float) -> tuple[float, Any]:
    """The shrink factor a figure saved this way gets on the page, and a renderer that drew it."""
    import matplotlib as mpl
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    renderer = canvas.get_renderer()
    width_in = fig.get_figwidth()
    if bbox_inches == "tight":
        pad = mpl.rcParams["savefig.pad_inches"] if pad_inches in (None, "layout") else float(pad_inches)
        width_in = fig.get_tightbbox(renderer).width + 2 * pad
    elif bbox_inches is not None and hasattr(bbox_inches, "width"):
        width_in = bbox_inches.width
    width_px = max(width_in * dpi, 1.0)
    return min(1.0, content_px / width_px), renderer


def text_sizes(fig: Any, *, dpi: float | None = None, bbox_inches: Any = "tight", pad_inches: float | None = None,
               content_px: float = CONTENT_PX) -> list[TextSize]:
    """Every string ``fig`` draws (titles, labels, ticks, legends, annotations) and its size on the page.

    The figure is drawn once with a renderer that records each string and its
    font size; only what is drawn counts (hidden axes' ticks do not).

    Args:
        fig: a matplotlib figure.
        dpi: the resolution it is saved at (default: the figure's own, as the inline backend uses).
        bbox_inches: ``"tight"`` (the inline backend's crop) or ``None`` (the whole figure).
        pad_inches: the padding around a tight crop (default ``savefig.pad_inches``).
        content_px: the page's content width in CSS pixels.

    Returns:
        One :class:`TextSize` per drawn string (empty strings left out).
    """
    dpi = float(dpi or fig.dpi)
    scale, renderer = _page_scale(fig, dpi, bbox_inches, pad_inches, content_px)
    found: list[TextSize] = []
    original = renderer.draw_text

    def draw_text(gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if str(s).strip():
            pts = float(prop.get_size_in_points())
            found.append(TextSize(str(s), pts, pts / 72 * dpi * scale))
        return original(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

    renderer.draw_text = draw_text
    try:
        fig.draw(renderer)
    finally:
        del renderer.draw_text
    return found


def check_figure(fig: Any, *, minimum: float = MIN_TEXT_PX, **kwargs: Any) -> list[TextSize]:
    """The strings of ``fig`` smaller than ``minimum`` CSS pixels on the page (empty: legible).

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig, ax = plt.subplots(figsize=(6, 3))
        >>> _ = ax.set_title("fits the page", fontsize=10)
        >>> check_figure(fig, dpi=100)
        []
        >>> plt.close(fig)
    """
    return [t for t in text_sizes(fig, **kwargs) if t.px < minimum]


def _where() -> tuple[str, str]:
    """Which chapter is running (its notebook's ``ch`` module) and the first line of the cell being run."""
    try:
        from IPython import get_ipython

        ip = get_ipython()
        if ip is None:
            return "", ""
        ch = ip.user_ns.get("ch")
        chapter = getattr(ch, "__name__", "").rsplit(".", 1)[-1]
        src = ip.history_manager.input_hist_raw[-1] if ip.history_manager.input_hist_raw else ""
        lines = [line for line in src.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        return chapter, (lines[0][:120] if lines else "")
    except Exception:  # a diagnostic must never break a chapter
        return "", ""


_INSTALLED: dict[str, Any] = {}


def log_figures(path: str | os.PathLike) -> None:
    """Record every figure saved from now on (the inline backend saves each one it displays).

    Each save appends one JSON line to ``path``: the chapter (the notebook's
    ``ch`` module), the first line of the cell being run, the figure's size, the dpi, the smallest
    text in CSS pixels and the strings below :data:`MIN_TEXT_PX`. Installed once
    per process; figures saved elsewhere (``savefig`` to a file) are recorded too.
    """
    from matplotlib.backend_bases import FigureCanvasBase

    if "print_figure" in _INSTALLED:
        return
    target = Path(path)
    original = FigureCanvasBase.print_figure

    def print_figure(self, filename, dpi=None, *args, **kwargs):
        try:
            fig = self.figure
            d = float(dpi) if isinstance(dpi, (int, float)) else float(fig.dpi)
            sizes = text_sizes(fig, dpi=d, bbox_inches=kwargs.get("bbox_inches"), pad_inches=kwargs.get("pad_inches"))
            small = sorted({(t.text[:60], round(t.px, 1)) for t in sizes if t.px < MIN_TEXT_PX}, key=lambda x: x[1])
            chapter, cell = _where()
            record = {"chapter": chapter, "cell": cell, "figsize": [round(v, 2) for v in fig.get_size_inches()],
                      "dpi": d, "smallest_px": round(min((t.px for t in sizes), default=float("inf")), 2),
                      "small": small[:12], "n_small": len(small)}
            with target.open("a") as fh:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        except Exception:  # a diagnostic must never break a chapter
            pass
        return original(self, filename, dpi, *args, **kwargs)

    FigureCanvasBase.print_figure = print_figure
    _INSTALLED["print_figure"] = original

    from ..core.tables import Table

    shown = Table._repr_html_

    def table_html(self):  # a table without its own title: the reader cannot tell what it is
        try:
            if not self.title:
                chapter, cell = _where()
                with target.open("a") as fh:
                    fh.write(json.dumps({"kind": "table", "chapter": chapter, "cell": cell,
                                         "header": [str(h)[:30] for h in self.header][:6]}, ensure_ascii=False) + "\n")
        except Exception:  # a diagnostic must never break a chapter
            pass
        return shown(self)

    Table._repr_html_ = table_html
    _INSTALLED["table"] = shown
