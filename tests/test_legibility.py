"""Text sizes of figures on the book's page (vizlib.chapters.legibility) and the figure log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from vizlib.chapters import legibility as L  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _fig(width: float, title_pt: float = 10.0):
    fig, ax = plt.subplots(figsize=(width, 2))
    ax.set_title("title", fontsize=title_pt)
    ax.axis("off")  # no ticks: the title is the only string drawn
    return fig


def test_a_figure_narrower_than_the_page_keeps_its_points_at_its_dpi():
    fig = _fig(4)
    (t,) = L.text_sizes(fig, dpi=100, bbox_inches=None)
    assert (t.text, t.points) == ("title", 10.0)
    assert t.px == pytest.approx(10 / 72 * 100)  # 400 px wide: shown at its natural size
    plt.close(fig)


def test_a_wide_figure_is_shrunk_to_the_content_column():
    fig = _fig(20)
    (t,) = L.text_sizes(fig, dpi=100, bbox_inches=None, content_px=500)
    assert t.px == pytest.approx(10 / 72 * 100 * 500 / 2000)
    assert L.check_figure(fig, dpi=100, bbox_inches=None, content_px=500) == [t]
    assert L.check_figure(fig, dpi=100, bbox_inches=None, content_px=2000) == []
    plt.close(fig)


def test_only_drawn_strings_count_and_a_tight_crop_changes_the_width():
    fig, ax = plt.subplots(figsize=(10, 2))
    ax.plot([0, 1])
    ax.set_xlabel("x label", fontsize=12)
    hidden = ax.text(0.5, 0.5, "hidden", fontsize=3)
    hidden.set_visible(False)
    sizes = L.text_sizes(fig, dpi=100)
    assert "x label" in {t.text for t in sizes} and "hidden" not in {t.text for t in sizes}
    loose = {t.text: t.px for t in L.text_sizes(fig, dpi=100, bbox_inches=None)}
    tight = {t.text: t.px for t in sizes}
    assert tight["x label"] != loose["x label"]  # the crop (plus padding) is not the figure's width
    plt.close(fig)


def test_the_log_records_each_saved_figure_and_the_checker_reads_it(tmp_path, monkeypatch):
    log = tmp_path / "figures.jsonl"
    monkeypatch.setattr(L, "_INSTALLED", {})
    from matplotlib.backend_bases import FigureCanvasBase

    from vizlib.core.tables import Table

    monkeypatch.setattr(FigureCanvasBase, "print_figure", FigureCanvasBase.print_figure)  # restored afterwards
    monkeypatch.setattr(Table, "_repr_html_", Table._repr_html_)
    L.log_figures(log)
    small, fine = _fig(30), _fig(5)
    small.savefig(tmp_path / "a.png", dpi=100, bbox_inches="tight")
    fine.savefig(tmp_path / "b.png", dpi=100, bbox_inches="tight")
    plt.close("all")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["n_small"] for r in records] == [1, 0]
    assert records[0]["small"][0][0] == "title" and records[0]["figsize"] == [30, 2]
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_figures.py"), str(log)],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "1 of 2 figures" in done.stdout
    log.write_text(log.read_text().splitlines()[1] + "\n")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_figures.py"), str(log)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_the_log_records_a_table_shown_without_a_title(tmp_path, monkeypatch):
    from matplotlib.backend_bases import FigureCanvasBase

    from vizlib.core.tables import Table

    log = tmp_path / "figures.jsonl"
    monkeypatch.setattr(L, "_INSTALLED", {})
    monkeypatch.setattr(FigureCanvasBase, "print_figure", FigureCanvasBase.print_figure)
    monkeypatch.setattr(Table, "_repr_html_", Table._repr_html_)
    L.log_figures(log)
    assert "<caption>titled</caption>" in Table(["a"], [[1]], "titled")._repr_html_()
    Table(["a", "b"], [[1, 2]])._repr_html_()
    (record,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert record["kind"] == "table" and record["header"] == ["a", "b"]
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_figures.py"), str(log)],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "1 tables have no title" in done.stdout
