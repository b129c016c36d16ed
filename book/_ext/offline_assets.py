"""The book's pages load nothing from outside the book.

_config.yml serves MathJax, RequireJS and the widgets' HTML manager from ``_vendor/``
(``html_static_path``; ``mathjax_path`` and ``nb_ipywidgets_js`` name files in it), which
``scripts/ensure_assets.sh`` (``make assets``, run by ``make book`` and ``make test``) fills
from the npm registry. This extension stops the build early, with the fix, when

- a script or stylesheet the pages load is configured as a remote URL (a reader without
  a network would get raw TeX or blank widgets), or
- a configured local file is missing (``_vendor/`` was never fetched, or is stale).

On pages that embed widget views it also adds, before RequireJS, one inline script:

- RequireJS's ``paths`` for the modules inside the widgets' bundle (``embed-amd.js``
  names them ``@jupyter-widgets/...``), so that the icon fonts the bundle loads from
  "beside its module" are looked for in ``_static/html-manager/``, where they are, and
  not under the page's folder;
- the one MathJax 2 call ipywidgets' controls make (``MathJax.Hub.Queue`` to typeset a
  label), mapped onto the MathJax 3 the book serves; without it every widget label
  throws ``Cannot read properties of undefined (reading 'Queue')``.

tests/test_pages.py checks the result in a browser: no request leaves the book.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sphinx.errors import ConfigError

_FIX = "run `make assets` (scripts/ensure_assets.sh) to fetch them"


def _remote(path: str) -> bool:
    return "://" in path or path.startswith("//")


def _check(app: Any, config: Any) -> None:
    static_dirs = [Path(app.confdir, p) for p in config.html_static_path]
    wanted: list[tuple[str, str]] = [("mathjax_path", config.mathjax_path)]
    wanted += [("nb_ipywidgets_js", path) for path in (getattr(config, "nb_ipywidgets_js", None) or {})]
    for name in ("html_js_files", "html_css_files"):
        for entry in getattr(config, name, None) or []:
            path = entry[0] if isinstance(entry, (tuple, list)) else entry
            if path:
                wanted.append((name, str(path)))
    remote = [f"{name}: {path}" for name, path in wanted if _remote(path)]
    if remote:
        raise ConfigError(
            "the pages would load scripts from outside the book, which a reader without a network "
            f"cannot fetch: {remote}. Serve them from _vendor/ (scripts/ensure_assets.sh) and name the "
            "local file in _config.yml instead")
    missing = [f"{name}: {path}" for name, path in wanted
               if not any((d / path).is_file() for d in static_dirs)]
    if missing:
        raise ConfigError(
            f"the book's scripts are not in {[str(d) for d in static_dirs]}: {missing}; {_FIX}")


_WIDGETS_SETUP = """
(function () {
  var root = (document.documentElement.dataset.content_root || "") + "_static/html-manager";
  window.require = { paths: { "@jupyter-widgets/html-manager/dist": root, "@jupyter-widgets": root } };
  document.addEventListener("DOMContentLoaded", function () {
    var mj = window.MathJax;
    if (mj && mj.startup && !mj.Hub) {
      mj.Hub = { Queue: function (job) {
        var el = job && job[2];
        mj.startup.promise.then(function () { return mj.typesetPromise(el ? [el] : undefined); });
      } };
    }
  });
})();
"""


def _widgets_setup(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    from sphinx.builders.html._assets import _JavaScript

    scripts = context.get("script_files") or []
    for i, js in enumerate(scripts):
        if str(getattr(js, "filename", "") or "").endswith("requirejs/require.js"):
            scripts.insert(i, _JavaScript("", priority=getattr(js, "priority", 500), body=_WIDGETS_SETUP))
            return


def setup(app: Any) -> dict:
    app.connect("config-inited", _check, priority=900)
    app.connect("html-page-context", _widgets_setup, priority=800)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
