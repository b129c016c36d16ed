"""The rendered book: every chapter page loads in headless Chromium without console
errors, shows its figures and has no error output; every chapter has exercises with
collapsed solutions, and the students' edition has the exercises and no solution.

The HTML is taken from ``VIZLIB_BOOK_HTML`` (a built ``_build/html``) when set;
otherwise the book is built here, into a temporary folder (so the smoke-sized
execution cache never mixes with the one ``make book`` keeps). The students' edition
is built once per run from that book's execution cache (nothing executes again); with
``VIZLIB_BOOK_HTML`` and no cache beside it, it is built without executing
(``execute_notebooks: off``): the exercises are text and need no outputs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--no-first-run", "--disable-dev-shm-usage", "--disable-component-update", "--disable-sync"]


def _chapters() -> list[str]:
    import yaml  # jupyter-book depends on PyYAML

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [c["file"] for c in toc.get("chapters", [])]


@pytest.fixture(scope="module")
def html_dir(tmp_path_factory) -> Path:
    given = os.environ.get("VIZLIB_BOOK_HTML")
    if given:
        path = Path(given).resolve()
        if not (path / "index.html").exists():
            pytest.fail(f"VIZLIB_BOOK_HTML={given} holds no built book (no index.html); run `make book` first")
        return path
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(ROOT), "--path-output", str(out), "-W", "--keep-going"]
    # the kernel must use Jupyter's inline backend: a MPLBACKEND inherited from the tests (Agg) would hide every figure
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, env=env)
    assert proc.returncode == 0, f"the book did not build with warnings as errors:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    return out / "_build" / "html"


@pytest.fixture(scope="module")
def students_html(html_dir, tmp_path_factory) -> Path:
    """The students' edition, as `make book-students` builds it, reusing the teacher's execution."""
    out = tmp_path_factory.mktemp("students")
    cache = html_dir.parent / ".jupyter_cache"
    config = out / "_config.yml"
    make_config = [sys.executable, str(ROOT / "scripts" / "students_config.py"), str(config), "--cache", str(cache)]
    if not cache.is_dir():
        make_config += ["--execute", "off"]
    subprocess.run(make_config, check=True, capture_output=True, text=True, timeout=60)
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(ROOT), "--path-output", str(out), "--config", str(config), "-W", "--keep-going"]
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, env=env)
    assert proc.returncode == 0, f"the students' edition did not build:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    return out / "_build" / "html"


class _Exercises(HTMLParser):
    """Counts sphinx-exercise's boxes on a page, and the notebook cells inside solutions."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[set[str]] = []
        self.exercises = self.solutions = self.collapsed = self.cells = self.cells_in_solutions = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag != "div":
            return
        classes = set((dict(attrs).get("class") or "").split())
        inside = any("solution" in c for c in self.stack)
        if "exercise" in classes:
            self.exercises += 1
        if "solution" in classes:
            self.solutions += 1
            self.collapsed += "dropdown" in classes
        if "cell" in classes:
            self.cells += 1
            self.cells_in_solutions += inside
        self.stack.append(classes)

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self.stack:
            self.stack.pop()


def _exercises(page: Path) -> _Exercises:
    parser = _Exercises()
    parser.feed(page.read_text())
    return parser


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("headless Chromium not installed (Debian packages chromium and chromium-driver; "
                    "`make test` installs them when it runs as root with apt-get)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _offline_cdn(entry: dict) -> bool:
    """A CDN script (MathJax, widget manager) that an offline machine cannot fetch.

    Readers online get these; the test machine has no internet, so a failed
    *remote* fetch is not a fault of the book. Local files must all load.
    """
    message = entry.get("message", "")
    return entry.get("source") == "network" and message.startswith(("https://", "http://"))


def test_book_has_no_error_outputs(html_dir):
    for chapter in _chapters():
        text = (html_dir / f"{chapter}.html").read_text()
        assert "Traceback (most recent call last)" not in text, chapter
        assert 'class="output traceback' not in text and "output_error" not in text, chapter


@pytest.mark.parametrize("chapter", _chapters())
def test_chapter_page_loads_and_shows_figures(html_dir, browser, chapter):
    page = html_dir / f"{chapter}.html"
    assert page.exists(), f"{page} was not built"
    browser.get_log("browser")  # drop what earlier pages left
    browser.get(page.as_uri())
    title = browser.title
    assert title and "404" not in title
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and not _offline_cdn(e)]
    assert not errors, f"console errors on {chapter}: {errors}"
    images = browser.execute_script(
        "return Array.from(document.querySelectorAll('main img, article img'))"
        ".map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0]);"
    )
    assert images, f"{chapter} shows no figures"
    broken = [src for src, ok in images if not ok]
    assert not broken, f"{chapter}: figures that did not load: {broken}"


@pytest.mark.parametrize("chapter", _chapters())
def test_chapter_has_exercises_with_collapsed_solutions(html_dir, chapter):
    found = _exercises(html_dir / f"{chapter}.html")
    assert found.exercises >= 1, f"{chapter}: no exercise directive on the page"
    assert found.solutions >= found.exercises, f"{chapter}: {found.exercises} exercises, {found.solutions} solutions"
    assert found.collapsed == found.solutions, f"{chapter}: {found.solutions - found.collapsed} solutions not collapsed"


def test_students_edition_has_exercises_and_no_solution(html_dir, students_html):
    for chapter in _chapters():
        teacher, student = _exercises(html_dir / f"{chapter}.html"), _exercises(students_html / f"{chapter}.html")
        assert student.exercises == teacher.exercises, f"{chapter}: {student.exercises} of {teacher.exercises} exercises"
        assert student.solutions == 0, f"{chapter}: {student.solutions} solutions left in the students' edition"
        # the gated solutions' code cells go too, and nothing else does
        assert student.cells == teacher.cells - teacher.cells_in_solutions, (
            f"{chapter}: {student.cells} cells, expected {teacher.cells} - {teacher.cells_in_solutions} in solutions")
        assert "solution-end" not in (students_html / f"{chapter}.html").read_text(), chapter


def test_solutions_start_closed_in_the_browser(html_dir, browser):
    page = html_dir / f"{_chapters()[0]}.html"
    browser.get(page.as_uri())
    shown = browser.execute_script(
        "return Array.from(document.querySelectorAll('div.solution')).map(d => "
        "Array.from(d.children).filter(c => !c.classList.contains('admonition-title'))"
        ".some(c => c.offsetParent !== null && c.getBoundingClientRect().height > 0));")
    assert shown, "no solution on the page"
    assert not any(shown), f"solutions open on first view: {shown}"
