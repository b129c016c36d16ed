"""The explorers in a live JupyterLab, driven as a student would (issue 17, item 8).

One JupyterLab server is started on 127.0.0.1 (a free port, a known token, temporary
config, settings, workspace and runtime folders; autosave off) over a temporary copy of
the chapter notebooks, so nothing is written into ``book/``. Its kernels inherit
``VIZLIB_SMOKE=1`` (the smoke workload). For every chapter, headless Chromium opens the
notebook, runs all cells (JupyterLab's own ``notebook:run-all-cells``), then changes one
or two of the explorer's dropdowns through the page (a real ``change`` event in the
browser, so the new value travels to the kernel as a widget message), and checks:

- every code cell ran, and no cell output is an error or stderr text (a warning);
- after each change the explorer's Output widget shows something new, and the busy
  line (⏳) was shown while the kernel recomputed, and is gone once it is done;
- the explorer shows no warning or error text;
- nothing was routed outside the explorer: no output message came back from a widget
  callback (parent ``comm_msg``) and none reached the session's *unhandled* messages,
  which is what JupyterLab's Log Console shows (at its default level).

With ``VIZLIB_LIVE_SHOTS=folder`` a screenshot of each explorer after the changes is kept there.
Skipped, with the reason, where Chromium/ChromeDriver, selenium or jupyterlab is missing.
Browser lookup as in tests/test_pages.py. Takes a few minutes on two cores: the chapters'
smoke run dominates.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p.stem for p in (ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
TOKEN = "vizlib-live-test"
RUN_TIMEOUT = 420  # seconds for Run All of one chapter (smoke workload, two shared cores)
CHANGE_TIMEOUT = 180  # seconds for the explorer to show a new choice
LEAK = "leaky_explorer"  # a notebook whose widget callback prints outside any Output: the checks must see it
_LEAKY_NOTEBOOK = {
    "cells": [{"cell_type": "code", "execution_count": None, "id": "leak", "metadata": {}, "outputs": [], "source": [
        "import ipywidgets as W\n",
        "def leaky_explorer():\n",
        "    pick = W.Dropdown(options=['a', 'b'])\n",
        "    pick.observe(lambda change: print('printed by a callback:', change['new']), 'value')\n",
        "    return W.VBox([pick, W.HTML('status'), W.Output(outputs=({'output_type': 'stream', 'name': 'stdout', 'text': 'x'},))])\n",
        "leaky_explorer()"]}],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
    "nbformat": 4, "nbformat_minor": 5,
}
# what Python prints for an exception or a warning: "Traceback", "ValueError", "Error:", "UserWarning",
# "file.py:12"; case-sensitive, so that prose such as "feature error" (chapter 9's inversion) is not one
WARNING_TEXT = re.compile(r"Traceback|\b[A-Z]\w*Error\b|\bError:|\b[A-Z]\w*Warning\b|warnings\.warn|\.py:\d+")


def _missing() -> str | None:
    if not (shutil.which("chromium") or shutil.which("chromium-browser")) or not shutil.which("chromedriver"):
        return ("headless Chromium not installed (Debian packages chromium and chromium-driver; "
                "`make test` installs them when it runs as root with apt-get)")
    for module, what in (("selenium", "selenium"), ("jupyterlab", "jupyterlab"), ("ipykernel", "ipykernel")):
        if importlib.util.find_spec(module) is None:
            return f"{what} is not installed in this environment (it is in requirements.txt: run `make venv`)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, method: str = "GET") -> bytes:
    req = urllib.request.Request(url, method=method, headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 over a copy of the chapters; yields its base URL."""
    reason = _missing()
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("lab")
    book = tmp / "book"
    book.mkdir()
    for name in CHAPTERS:
        shutil.copy(ROOT / "book" / f"{name}.ipynb", book)
    (book / f"{LEAK}.ipynb").write_text(json.dumps(_LEAKY_NOTEBOOK))
    settings = tmp / "settings"
    for plugin, values in {
        "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    }.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "JUPYTER_PLATFORM_DIRS")}
    env.update({
        "VIZLIB_SMOKE": "1",  # the kernels inherit it: the smoke workload
        "JUPYTER_CONFIG_DIR": str(tmp / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
        "IPYTHONDIR": str(tmp / "ipython"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")])),
    })
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(tmp / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={book}",
         "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=", "--ServerApp.disable_check_xsrf=True",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly",
         "--ServerApp.allow_root=True"],
        cwd=book, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 120
        while True:
            try:
                _get(f"{base}/api/status")
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{(tmp / 'lab.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(lab, tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from .test_pages import CHROMIUM_FLAGS

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for flag in CHROMIUM_FLAGS + ["--window-size=1400,1000"]:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-lab-profile')}")
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    driver.command_executor._client_config.timeout = 300  # generous: two cores shared with other work
    driver.set_page_load_timeout(400)  # JupyterLab's bundle is large: slow to load on two shared cores
    driver.set_script_timeout(120)
    driver.get(f"{lab}/lab?reset&token={TOKEN}")  # once: each chapter opens in this page
    _wait(driver, _APP, bool, 300, "JupyterLab's page")
    yield driver
    driver.quit()


# The page's side, in JavaScript (window.jupyterapp: --LabApp.expose_app_in_browser).
_APP = "return !!(window.jupyterapp && window.jupyterapp.shell && window.jupyterapp.commands.hasCommand('docmanager:open'));"

_OPEN = """
const done = arguments[arguments.length - 1];
window.__vzPanel = null;
window.__vzBusy = [];
window.jupyterapp.commands.execute('docmanager:open', {path: arguments[0], factory: 'Notebook'})
  .then(panel => { window.__vzPanel = panel; done('opened'); }, err => done('failed: ' + err));
"""

_READY = """
const panel = window.__vzPanel;
if (!panel || !panel.sessionContext || !panel.content || !panel.content.widgets) return 'no notebook';
const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
if (!kernel || kernel.connectionStatus !== 'connected' || kernel.status !== 'idle') return 'kernel ' + (kernel ? kernel.status : 'none');
if (!panel.__vz) {
  panel.__vz = {routed: [], unhandled: []};
  const outputs = ['display_data', 'stream', 'execute_result', 'error', 'update_display_data'];
  panel.sessionContext.iopubMessage.connect((_, msg) => {
    const parent = (msg.parent_header || {}).msg_type;
    if (outputs.includes(msg.header.msg_type) && parent !== 'execute_request')
      panel.__vz.routed.push(msg.header.msg_type + ' from ' + parent + ': ' + JSON.stringify(msg.content).slice(0, 300));
  });
  panel.sessionContext.unhandledMessage.connect((_, msg) => {
    if (outputs.includes(msg.header.msg_type))
      panel.__vz.unhandled.push(msg.header.msg_type + ': ' + JSON.stringify(msg.content).slice(0, 300));
  });
}
return 'ready';
"""

_SHOW = """
const cell = window.__vzPanel.content.widgets.filter(c => c.model.type === 'code' &&
  c.model.sharedModel.getSource().includes('_explorer(')).pop();
window.__vzPanel.content.scrollToItem(window.__vzPanel.content.widgets.indexOf(cell), 'start');
"""

_CLOSE = """
const panel = window.__vzPanel;
if (panel) { panel.context.model.dirty = false; panel.dispose(); }
window.__vzPanel = null;
"""

_RUN_STATE = """
const panel = window.__vzPanel;
const kernel = panel.sessionContext.session.kernel;
const cells = panel.content.widgets.filter(c => c.model.type === 'code');
const errors = [];
const stderr = [];
cells.forEach((c, i) => {
  const outs = c.model.outputs.toJSON();
  outs.forEach(o => {
    if (o.output_type === 'error') errors.push(i + ': ' + o.ename + ': ' + o.evalue);
    if (o.output_type === 'stream' && o.name === 'stderr') stderr.push(i + ': ' + String(o.text).slice(0, 300));
  });
});
const pending = cells.filter(c => c.model.executionCount === null || c.promptNode && c.promptNode.textContent.includes('*')).length;
return {status: kernel.status, cells: cells.length, pending: pending, errors: errors, stderr: stderr};
"""

_EXPLORER = """
const panel = window.__vzPanel;
const cell = panel.content.widgets.filter(c => c.model.type === 'code' && c.model.sharedModel.getSource().includes('_explorer(')).pop();
if (!cell) return null;
const out = cell.node.querySelector('.widget-output');
const status = out && out.previousElementSibling;
const selects = Array.from(cell.node.querySelectorAll('select'));
if (!out) return {ready: false};
if (status && !status.__vzWatched) {
  status.__vzWatched = true;
  window.__vzBusy = window.__vzBusy || [];
  new MutationObserver(() => { if (status.textContent.includes('\u23f3')) window.__vzBusy.push(status.textContent); })
    .observe(status, {subtree: true, childList: true, characterData: true});
}
const imgs = Array.from(out.querySelectorAll('img')).map(i => i.getAttribute('src') || '');
let h = 0;
const sig = out.textContent + '|' + imgs.join('|');
for (let k = 0; k < sig.length; k++) h = (h * 31 + sig.charCodeAt(k)) | 0;
return {ready: true, signature: h + ':' + sig.length, images: imgs.length, text: out.textContent.slice(0, 2000),
        status: status ? status.textContent : '', selects: selects.length,
        options: selects.map(s => s.options.length), busy: (window.__vzBusy || []).length,
        kernel: panel.sessionContext.session.kernel.status, html: out.innerHTML.slice(0, 600),
        model: JSON.stringify(cell.model.outputs.toJSON()).slice(0, 600)};
"""


def _wait(browser, script, ok, timeout, what):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = browser.execute_script(script)
        if ok(last):
            return last
        time.sleep(0.5)
    pytest.fail(f"{what}: timed out after {timeout} s; last state: {last}")


def _shutdown_kernels(lab):
    for s in json.loads(_get(f"{lab}/api/sessions")):
        _get(f"{lab}/api/sessions/{s['id']}", method="DELETE")


def _open_and_run(browser, name: str) -> dict:
    """Open ``name``.ipynb, run all its cells, and return the explorer's first state."""
    opened = browser.execute_async_script(_OPEN, f"{name}.ipynb")
    assert opened == "opened", f"{name}: JupyterLab could not open the notebook: {opened}"
    _wait(browser, _READY, lambda r: r == "ready", 180, f"{name}: its kernel")
    browser.execute_script("window.jupyterapp.shell.activateById(window.__vzPanel.id);"
                           "window.jupyterapp.commands.execute('notebook:run-all-cells');")
    time.sleep(2)
    run = _wait(browser, _RUN_STATE, lambda r: r["errors"] or (r["pending"] == 0 and r["status"] == "idle"),
                RUN_TIMEOUT, f"{name}: Run All")
    assert not run["errors"], f"{name}: cells failed: {run['errors']}"
    assert not run["stderr"], f"{name}: warning or stderr text in cell outputs: {run['stderr']}"
    return _wait(browser, _EXPLORER, lambda r: r and r.get("ready") and (r["images"] or r["text"].strip()), 60,
                 f"{name}: the explorer's first state")


def _pick_next(browser, k: int) -> bool:
    """Choose the next option of the explorer's ``k``-th dropdown, as a user does; False if it has one option."""
    from selenium.webdriver.support.ui import Select

    select = browser.execute_script(
        "return window.__vzPanel.content.widgets.filter(c => c.model.type === 'code' && "
        "c.model.sharedModel.getSource().includes('_explorer(')).pop().node.querySelectorAll('select')[arguments[0]];", k)
    pick = Select(select)
    n = len(pick.options)
    if n < 2:
        return False
    current = next(i for i, o in enumerate(pick.options) if o.is_selected())
    pick.select_by_index((current + 1) % n)
    return True


def test_the_checks_see_output_that_escapes_a_widget(lab, browser):
    """The negative control: a callback that prints outside any Output widget is caught as output from
    a widget callback (what JupyterLab logs; its Log Console shows those no future handled)."""
    try:
        _open_and_run(browser, LEAK)
        assert _pick_next(browser, 0)
        routed = _wait(browser, "return window.__vzPanel.__vz;", lambda r: r["routed"], 60, "the leak to be seen")
        assert "printed by a callback" in routed["routed"][0] and "comm_msg" in routed["routed"][0]
        print("leak: seen as", routed)
    finally:
        browser.execute_script(_CLOSE)
        _shutdown_kernels(lab)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_explorer_in_a_live_lab(lab, browser, chapter):
    start = time.time()
    try:
        state = _open_and_run(browser, chapter)
        ran = time.time() - start
        assert state["selects"], f"{chapter}: the explorer has no dropdown to change"
        # the first dropdown, then the last one (when there are two or more)
        plan = [0] + ([state["selects"] - 1] if state["selects"] > 1 else [])
        for k in plan:
            before = state
            if not _pick_next(browser, k):
                continue
            state = _wait(browser, _EXPLORER,
                          lambda r: r["signature"] != before["signature"] and "\u23f3" not in r["status"]
                          and r["kernel"] == "idle", CHANGE_TIMEOUT, f"{chapter}: the explorer after changing dropdown {k}")
            assert state["busy"] > before["busy"], f"{chapter}: no busy line was shown while dropdown {k}'s choice was computed"
            assert state["images"] or state["text"].strip(), f"{chapter}: the explorer is blank after changing dropdown {k}"
            assert not WARNING_TEXT.search(state["text"]), f"{chapter}: warning or error text in the explorer: {state['text']}"
        routed = browser.execute_script("return window.__vzPanel.__vz;")
        assert not routed["unhandled"], f"{chapter}: output reached the Log Console: {routed['unhandled']}"
        assert not routed["routed"], f"{chapter}: output sent from a widget callback, outside the explorer: {routed['routed']}"
        run = browser.execute_script(_RUN_STATE)
        assert not run["errors"] and not run["stderr"], f"{chapter}: after the changes: {run['errors']} {run['stderr']}"
        print(f"{chapter}: run all {ran:.0f} s, explorer changes {time.time() - start - ran:.0f} s")
        shots = os.environ.get("VIZLIB_LIVE_SHOTS")  # a folder: keep a screenshot of each explorer there
        if shots:
            browser.execute_script(_SHOW)
            time.sleep(1)
            browser.save_screenshot(str(Path(shots) / f"{chapter}.png"))
    finally:
        browser.execute_script(_CLOSE)
        _shutdown_kernels(lab)
