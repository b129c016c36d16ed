"""Every chapter's frame (scripts/chapter_frame.py): its install cell, goals and takeaways, and the
teachers' page that shows them, kept in step with the notebooks and with _config.yml."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import chapter_frame as cf  # noqa: E402


def test_every_chapter_has_its_frame_and_the_teachers_page_is_up_to_date():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "chapter_frame.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(cf.chapters()) >= 7


def test_the_teachers_page_shows_each_chapters_own_goals_and_takeaways():
    page = cf.PAGE.read_text()
    for path in cf.chapters():
        nb = json.loads(path.read_text())
        goals = cf._source(nb["cells"][cf._tagged(nb, cf.GOALS)[0]]).strip()
        last = cf._source(nb["cells"][-1]).strip().removeprefix("## Takeaways").strip()
        assert goals in page and last in page, path.name
        assert f"{{doc}}`{path.stem}`" in page


def test_a_chapter_without_goals_is_reported():
    nb = {"cells": [cf.install_cell("", "main"),
                    {"cell_type": "markdown", "metadata": {}, "source": ["# Title\n", "\n", "Intro."]},
                    {"cell_type": "code", "metadata": {}, "source": ["1 + 1"], "outputs": []}]}
    problems = cf.frame_problems(Path("99_x.ipynb"), nb, "", "main")
    assert any("chapter-goals" in p for p in problems) and any("chapter-takeaways" in p for p in problems)
    stale = cf.frame_problems(Path("99_x.ipynb"), nb, "https://example.org/a/b", "main")
    assert any("does not match _config.yml" in p for p in stale)


def _run_install_cell(monkeypatch, url: str, present: bool) -> list[list[str]]:
    import importlib.util

    calls: list[list[str]] = []
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if present else None)
    monkeypatch.setattr(subprocess, "run", lambda args, check: calls.append(args))
    exec(cf.INSTALL_SOURCE.format(url=url, branch="main"), {})
    return calls


def test_the_install_cell_does_nothing_where_vizlib_imports(monkeypatch):
    assert _run_install_cell(monkeypatch, "https://example.org/a/b", present=True) == []


def test_the_install_cell_installs_from_the_repository_where_vizlib_is_missing(monkeypatch):
    (args,) = _run_install_cell(monkeypatch, "https://example.org/a/b", present=False)
    assert args[1:4] == ["-m", "pip", "install"]
    assert args[-1] == "vizlib[tsne,zoo] @ git+https://example.org/a/b@main"


def test_the_install_cell_says_what_to_do_when_no_repository_is_named(monkeypatch):
    with pytest.raises(ModuleNotFoundError, match="names no repository"):
        _run_install_cell(monkeypatch, "", present=False)


def test_the_install_cell_carries_config_yml_repository():
    url, branch = cf.repository()
    for path in cf.chapters():
        first = json.loads(path.read_text())["cells"][0]
        assert cf._source(first) == cf.INSTALL_SOURCE.format(url=url, branch=branch), path.name
        assert "remove-cell" in first["metadata"]["tags"]
