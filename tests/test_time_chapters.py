"""The teachers' page's time table (scripts/time_chapters.py): one row per chapter, named by its title."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("time_chapters", ROOT / "scripts" / "time_chapters.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_chapter_is_named_by_its_heading_not_its_install_cell():
    tc = _script()
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("# On Colab: install the book's package\n%pip install vizlib"),
        nbformat.v4.new_markdown_cell("# Occlusion: what the classifier looks at\n\nProse."),
        nbformat.v4.new_markdown_cell("## A section"),
    ])
    assert tc._title(nb) == "Occlusion: what the classifier looks at"
    assert tc._title(nbformat.v4.new_notebook()) == ""


def test_the_teachers_page_has_a_row_for_every_chapter():
    tc = _script()
    page = (ROOT / "book" / "teaching.md").read_text()
    block = page.split(tc.START, 1)[1].split(tc.END, 1)[0]
    for path in tc.chapters():
        title = tc._title(nbformat.read(path, as_version=4))
        assert title, path.name
        assert f"| {path.stem[:2]} {title} |" in block, f"{path.stem}: no row in book/teaching.md's time table"
