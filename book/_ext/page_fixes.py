"""Two fixes to the pages the theme writes, so they load without console errors.

1. Drop duplicate <script> entries from each page.

sphinx-thebe registers its inline configuration script on every
``env-before-read-docs`` event; when Jupyter Book's notebook execution makes
Sphinx fire that event more than once, every page declares ``const
THEBE_JS_URL`` twice and the browser reports a SyntaxError. Keeping the first
copy of each identical script fixes the page without touching the packages.

2. Give the colour mode a default. pydata-sphinx-theme reads it from
``localStorage`` and logs "Got invalid theme mode" as an error on a reader's
first visit, when nothing is stored yet; we set it to ``auto`` first.
"""

from __future__ import annotations

from typing import Any


def _dedupe(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[str, tuple]] = set()
    unique = []
    for js in scripts:
        # the same inline script is registered once with filename None and once with ""
        attrs = tuple(sorted((k, str(v)) for k, v in getattr(js, "attributes", {}).items()))
        key = (str(getattr(js, "filename", js) or ""), attrs)
        if key in seen:
            continue
        seen.add(key)
        unique.append(js)
    context["script_files"] = unique


_MODE_DEFAULT = 'if (!document.documentElement.dataset.mode) { document.documentElement.dataset.mode = "auto"; }'


def setup(app: Any) -> dict:
    app.connect("html-page-context", _dedupe, priority=900)
    app.add_js_file(None, body=_MODE_DEFAULT, priority=1)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
