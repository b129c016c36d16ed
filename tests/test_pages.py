"""The rendered book: every chapter page loads in headless Chromium without console
errors, shows its figures and has no error output; every chapter has exercises with
collapsed solutions, and the students' edition has the exercises and no solution. Every
chapter has a kernel-free figure (its explorer's main interaction, precomputed) whose slider
and buttons change the image it shows.

Self-contained pages (issue 17, item 1): every page of the book is opened from disk
with the network cut off (Chromium blocks every http, https and ws URL) and its
requests are read from Chromium's performance log (the DevTools Network events):
any request to an address outside the built book fails the test, and so does a
script, stylesheet or image in the HTML whose address is not relative. On pages with
equations MathJax (served from the book's _static/) must have typeset every one of
them (an ``mjx-container`` in each ``.math`` element, no ``mjx-merror``), and no raw
TeX (``\\(``, ``\\[``, ``$$``, ``\\frac`` ...) may be left in the visible text.

The HTML is taken from ``VIZLIB_BOOK_HTML`` (a built ``_build/html``) when set;
otherwise the book is built here, into a temporary folder (so the smoke-sized
execution cache never mixes with the one ``make book`` keeps). The students' edition
is built once per run from that book's execution cache (nothing executes again); with
``VIZLIB_BOOK_HTML`` and no cache beside it, it is built without executing
(``execute_notebooks: off``): the exercises are text and need no outputs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--no-first-run", "--disable-dev-shm-usage", "--disable-component-update", "--disable-sync"]


def _toc() -> dict:
    import yaml  # jupyter-book depends on PyYAML

    return yaml.safe_load((ROOT / "_toc.yml").read_text())


def _chapters() -> list[str]:
    """The chapter notebooks (book/NN_slug), in reading order: not the pages around them."""
    return [c["file"] for c in _toc().get("chapters", []) if re.match(r"\d\d_", Path(c["file"]).name)]


def _pages() -> list[str]:
    """Every page of the book: the front page, the chapters and the pages beside them."""
    toc = _toc()
    return [toc["root"]] + [c["file"] for c in toc.get("chapters", [])]


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
    # the performance log carries the DevTools Network events: every request a page makes
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    opts.add_experimental_option("perfLoggingPrefs", {"enableNetwork": True, "enablePage": False})
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    # generous: on two cores shared with other work, MathJax and the widgets' bundle load slowly
    driver.set_page_load_timeout(180)
    driver.set_script_timeout(180)
    # no network: a page opened from disk must not need one (and must not try)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*", "ws://*", "wss://*"]})
    yield driver
    driver.quit()


_SETTLE = """
const done = arguments[arguments.length - 1];
const mathjax = (window.MathJax && window.MathJax.startup && window.MathJax.startup.promise) || null;
Promise.resolve(mathjax)
  .then(() => document.fonts ? document.fonts.ready : null)
  .then(() => setTimeout(() => done('ok'), 500), (err) => done('MathJax failed: ' + err));
"""


def _open(browser, page: Path) -> tuple[list[dict], list[str]]:
    """Open a page from disk and let it settle (MathJax typeset, fonts, widgets).

    Returns:
        The console's SEVERE entries and the URL of every request the page made.
    """
    browser.get_log("browser")  # drop what earlier pages left
    browser.get_log("performance")
    browser.get(page.as_uri())
    settled = browser.execute_async_script(_SETTLE)
    assert settled == "ok", f"{page.name}: {settled}"
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") != "Network.requestWillBeSent":
            continue
        params = message["params"]
        # the browser's own pages (its new-tab page, internal resources) are not the book's
        if urlsplit(params.get("documentURL", "")).scheme in _BROWSER_SCHEMES:
            continue
        urls.append(params["request"]["url"])
    return errors, urls


_BROWSER_SCHEMES = {"chrome", "chrome-untrusted", "chrome-search", "chrome-extension", "devtools"}


def _outside(url: str, html_dir: Path) -> bool:
    """Whether a request leaves the built book: any network address, or a file elsewhere."""
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return False
    if parts.scheme != "file":
        return True
    return not Path(unquote(parts.path)).resolve().is_relative_to(html_dir.resolve())


_RAW_TEX = r"\\\(|\\\[|\$\$|\\begin\{|\\(?:frac|epsilon|sum|mathrm|mathbf|cdot|times|left|right|lfloor|rfloor|text|alpha|beta|sigma|partial|operatorname|max|min|log)\b"
_MATH_STATE = """
const skip = new Set(['SCRIPT', 'STYLE', 'CODE', 'PRE', 'TEXTAREA', 'MJX-CONTAINER', 'NOSCRIPT']);
const raw = new RegExp(arguments[0]);
const root = document.querySelector('main') || document.body;
const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
const found = [];
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  let el = node.parentElement, hidden = false;
  for (; el && el !== root; el = el.parentElement) {
    if (skip.has(el.tagName) || el.classList.contains('highlight')) { hidden = true; break; }
  }
  if (!hidden && raw.test(node.textContent)) found.push(node.textContent.trim().slice(0, 80));
}
const math = Array.from(root.querySelectorAll('.math'));
return {
  math: math.length,
  untypeset: math.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 80)),
  containers: root.querySelectorAll('mjx-container').length,
  errors: Array.from(root.querySelectorAll('mjx-merror')).map(m => m.textContent.slice(0, 80)),
  raw: found,
};
"""


class _Resources(HTMLParser):
    """The addresses a page loads by itself (scripts, stylesheets, images, frames...), not its links."""

    LOADS = {"script": "src", "img": "src", "iframe": "src", "source": "src", "audio": "src",
             "video": "src", "embed": "src", "object": "data", "track": "src", "input": "src"}
    LINK_RELS = {"stylesheet", "preload", "modulepreload", "prefetch", "icon", "shortcut", "manifest",
                 "apple-touch-icon", "preconnect", "dns-prefetch"}

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        if tag in self.LOADS and attrs.get(self.LOADS[tag]):
            self.urls.append(attrs[self.LOADS[tag]])
        if tag == "link" and attrs.get("href") and self.LINK_RELS & set((attrs.get("rel") or "").lower().split()):
            self.urls.append(attrs["href"])
        if tag == "img" and attrs.get("srcset"):
            self.urls += [part.split()[0] for part in attrs["srcset"].split(",") if part.strip()]


def _remote(url: str) -> bool:
    return bool(urlsplit(url).scheme not in ("", "data", "blob") or url.startswith("//"))


def test_book_has_no_error_outputs(html_dir):
    for chapter in _chapters():
        text = (html_dir / f"{chapter}.html").read_text()
        assert "Traceback (most recent call last)" not in text, chapter
        assert 'class="output traceback' not in text and "output_error" not in text, chapter


@pytest.mark.parametrize("chapter", _chapters())
def test_chapter_page_loads_and_shows_figures(html_dir, browser, chapter):
    page = html_dir / f"{chapter}.html"
    assert page.exists(), f"{page} was not built"
    errors, _ = _open(browser, page)
    title = browser.title
    assert title and "404" not in title
    assert not errors, f"console errors on {chapter}: {errors}"
    images = browser.execute_script(
        "return Array.from(document.querySelectorAll('main img, article img'))"
        ".map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0]);"
    )
    assert images, f"{chapter} shows no figures"
    broken = [src for src, ok in images if not ok]
    assert not broken, f"{chapter}: figures that did not load: {broken}"


_STATIC_STATE = """
return Array.from(document.querySelectorAll('.vizlib-static-explorer')).map(box => {
  const img = box.querySelector('img'), slider = box.querySelector('input[type=range]');
  return {states: Number(box.dataset.states), src: img ? img.src : '', shown: !!img && img.complete && img.naturalWidth > 0,
          width: img ? img.getBoundingClientRect().width : 0, max: slider ? Number(slider.max) : -1,
          value: slider ? Number(slider.value) : -1};
});
"""
_STATIC_MOVE = """
const box = document.querySelectorAll('.vizlib-static-explorer')[arguments[0]];
const slider = box.querySelector('input[type=range]');
slider.value = arguments[1];
slider.dispatchEvent(new Event('input', {bubbles: true}));
return box.querySelector('img').src;
"""
_STATIC_BUTTON = """
const box = document.querySelectorAll('.vizlib-static-explorer')[arguments[0]];
box.querySelector('button[title="' + arguments[1] + '"]').click();
return [box.querySelector('img').src, Number(box.querySelector('input[type=range]').value)];
"""


@pytest.mark.parametrize("chapter", _chapters())
def test_chapter_has_a_kernel_free_figure_that_responds_to_its_controls(html_dir, browser, chapter):
    """Issue 17, item 2: the explorer's main interaction also works in the page, with no kernel:
    moving the slider (as a reader drags it) and pressing the step buttons change the image shown."""
    page = html_dir / f"{chapter}.html"
    errors, _ = _open(browser, page)
    assert not errors, f"{chapter}: console errors: {errors}"
    boxes = browser.execute_script(_STATIC_STATE)
    assert boxes, f"{chapter}: no kernel-free figure (.vizlib-static-explorer) on the page"
    for k, box in enumerate(boxes):
        assert box["states"] >= 2 and box["max"] == box["states"] - 1, f"{chapter}: figure {k}: {box}"
        assert box["shown"] and box["width"] > 100 and box["value"] == 0, f"{chapter}: figure {k} shows no frame: {box}"
        seen = {box["src"]}
        for value in range(1, box["states"]):
            src = browser.execute_script(_STATIC_MOVE, k, value)
            assert src not in seen, f"{chapter}: figure {k}: the slider at {value} shows a frame already shown"
            seen.add(src)
        src, value = browser.execute_script(_STATIC_BUTTON, k, "First frame")
        assert value == 0 and src == box["src"], f"{chapter}: figure {k}: 'First frame' did not go back"
        src, value = browser.execute_script(_STATIC_BUTTON, k, "Next frame")
        assert value == 1 and src != box["src"], f"{chapter}: figure {k}: 'Next frame' did not step"


def test_built_html_loads_only_files_of_the_book(html_dir):
    """Every script, stylesheet, image or frame a built page names is a relative address."""
    pages = [p for p in html_dir.rglob("*.html") if not p.relative_to(html_dir).parts[0] in ("_static", "_sources")]
    assert len(pages) >= len(_pages()), f"only {len(pages)} pages under {html_dir}"
    remote = {}
    for page in pages:
        parser = _Resources()
        parser.feed(page.read_text())
        found = [url for url in parser.urls if _remote(url)]
        if found:
            remote[str(page.relative_to(html_dir))] = found
    assert not remote, f"pages that load files from outside the book: {remote}"
    css = {str(f.relative_to(html_dir)): hits for f in (html_dir / "_static").rglob("*.css")
           if (hits := re.findall(r"(?:url\(|@import)\s*['\"]?((?:https?:)?//[^'\")\s]+)", f.read_text(errors="replace")))}
    assert not css, f"stylesheets that load files from outside the book: {css}"


@pytest.mark.parametrize("page", _pages())
def test_page_works_offline_and_typesets_its_equations(html_dir, browser, page):
    """Opened from disk with no network: no request leaves the book, no console error,
    every equation typeset by the book's own MathJax and no raw TeX left on the page."""
    path = html_dir / f"{page}.html"
    assert path.exists(), f"{path} was not built"
    errors, urls = _open(browser, path)
    outside = sorted({url for url in urls if _outside(url, html_dir)})
    assert not outside, f"{page}: requests that leave the book: {outside}"
    assert urls, f"{page}: the performance log recorded no request at all (is the log working?)"
    assert not errors, f"{page}: console errors: {errors}"
    state = browser.execute_script(_MATH_STATE, _RAW_TEX)
    assert not state["raw"], f"{page}: raw TeX on the page: {state['raw']}"
    if state["math"]:
        assert not state["untypeset"], f"{page}: equations MathJax did not typeset: {state['untypeset']}"
        assert state["containers"] >= state["math"], f"{page}: {state['containers']} typeset of {state['math']}"
        assert not state["errors"], f"{page}: TeX errors: {state['errors']}"
        loaded = [u for u in urls if "/_static/mathjax/" in u]
        assert loaded, f"{page}: has equations but did not load the book's MathJax"


@pytest.mark.parametrize("chapter", _chapters())
def test_chapter_has_exercises_with_collapsed_solutions(html_dir, chapter):
    found = _exercises(html_dir / f"{chapter}.html")
    assert found.exercises >= 1, f"{chapter}: no exercise directive on the page"
    assert found.solutions >= found.exercises, f"{chapter}: {found.exercises} exercises, {found.solutions} solutions"
    assert found.collapsed == found.solutions, f"{chapter}: {found.solutions - found.collapsed} solutions not collapsed"


_SOLUTIONS_SHOWN = (
    "return Array.from(document.querySelectorAll('div.solution')).map(d => "
    "Array.from(d.children).filter(c => !c.classList.contains('admonition-title'))"
    ".some(c => c.offsetParent !== null && c.getBoundingClientRect().height > 0));")


@pytest.mark.parametrize("chapter", _chapters())
def test_solutions_start_closed_in_the_browser(html_dir, browser, chapter):
    """Every solution box is in the page and folded on first view: only its title shows.

    The page is opened and left to settle as every other page test does; the boxes are then
    read for up to 20 s (a slow machine may still be running the page's scripts), and a
    failure says what the browser had open and how many boxes the file on disk holds.
    """
    import time

    page = html_dir / f"{chapter}.html"
    _open(browser, page)
    deadline = time.monotonic() + 20
    shown = browser.execute_script(_SOLUTIONS_SHOWN)
    while not shown and time.monotonic() < deadline:
        time.sleep(0.5)
        # the navigation did not take: again (CI once found no solution on a page whose file has them)
        if unquote(browser.current_url.split("#")[0]) != unquote(page.as_uri()):
            browser.get(page.as_uri())
        shown = browser.execute_script(_SOLUTIONS_SHOWN)
    on_disk = _exercises(page).solutions
    state = browser.execute_script("return [document.URL, document.title, document.readyState];")
    assert shown, f"{chapter}: no solution in the browser's page {state}; the file on disk has {on_disk}"
    assert len(shown) == on_disk, f"{chapter}: {len(shown)} solutions in the browser, {on_disk} in the file"
    assert not any(shown), f"{chapter}: solutions open on first view: {shown}"


def test_students_edition_has_exercises_and_no_solution(html_dir, students_html):
    for chapter in _chapters():
        teacher, student = _exercises(html_dir / f"{chapter}.html"), _exercises(students_html / f"{chapter}.html")
        # read after the students' build: it must not have touched the teacher's pages
        assert teacher.solutions >= teacher.exercises >= 1, f"{chapter}: the teacher's page has {teacher.solutions} solutions"
        assert student.exercises == teacher.exercises, f"{chapter}: {student.exercises} of {teacher.exercises} exercises"
        assert student.solutions == 0, f"{chapter}: {student.solutions} solutions left in the students' edition"
        # the gated solutions' code cells go too, and nothing else does
        assert student.cells == teacher.cells - teacher.cells_in_solutions, (
            f"{chapter}: {student.cells} cells, expected {teacher.cells} - {teacher.cells_in_solutions} in solutions")
        assert "solution-end" not in (students_html / f"{chapter}.html").read_text(), chapter


def test_launch_services_follow_the_repository_url():
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        from launch_setting import launch_services
    finally:
        sys.path.remove(str(ROOT / "book" / "_ext"))
    launch = {"binderhub_url": "https://binder.example", "colab_url": "https://colab.example",
              "jupyterhub_url": "https://hub.example", "thebe": True, "notebook_interface": "jupyterlab"}
    off = launch_services({"repository_url": "", "launch_buttons": launch})
    assert off == {**launch, "binderhub_url": "", "colab_url": "", "jupyterhub_url": "", "thebe": False}
    assert launch_services({"repository_url": "https://github.com/o/r", "launch_buttons": launch}) == launch
    # Colab opens GitHub notebooks only: another host keeps Binder and JupyterHub
    other = launch_services({"repository_url": "https://gitlab.com/o/r", "launch_buttons": launch})
    assert other == {**launch, "colab_url": ""}


def test_launch_buttons_appear_when_the_repository_url_is_set(tmp_path):
    """One setting: with repository.url set, each chapter links to Binder, Colab and (with a hub
    named) JupyterHub, at the chapter's notebook; with it empty (_config.yml as committed), none."""
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert not config["repository"]["url"], "the committed book has no repository URL: launch buttons off"
    url = "https://github.com/example-org/example-book"
    config["repository"]["url"] = url
    config["launch_buttons"]["jupyterhub_url"] = "https://hub.example.org"
    config["sphinx"]["local_extensions"] = {
        name: str((ROOT / path).resolve()) for name, path in config["sphinx"]["local_extensions"].items()}
    config["execute"] = {**config["execute"], "execute_notebooks": "off"}
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(ROOT), "--path-output", str(tmp_path), "--config", str(tmp_path / "_config.yml"),
           "-W", "--keep-going"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"the book did not build with a repository URL:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
    html = tmp_path / "_build" / "html"
    chapter = _chapters()[0]
    text = (html / f"{chapter}.html").read_text()
    assert f"https://mybinder.org/v2/gh/example-org/example-book/main?urlpath=lab/tree/{chapter}.ipynb" in text
    assert f"https://colab.research.google.com/github/example-org/example-book/blob/main/{chapter}.ipynb" in text
    assert "https://hub.example.org/hub/user-redirect/git-pull?repo=https%3A//github.com/example-org/example-book" in text
    assert f"urlpath=lab/tree/example-book/{chapter}.ipynb" in text  # nbgitpuller clones into example-book/
    assert f'href="{url}"' in text, "no link to the repository in the header"


def test_no_launch_buttons_without_a_repository_url(html_dir):
    for chapter in _chapters():
        text = (html_dir / f"{chapter}.html").read_text()
        for service in ("mybinder.org", "colab.research.google.com", "/hub/user-redirect/"):
            assert service not in text, f"{chapter}: a {service} launch link, but _config.yml has no repository URL"
