"""Launch buttons from one setting: ``repository.url`` in _config.yml.

_config.yml names the launch services once (``launch_buttons``: Binder, Colab, and a
JupyterHub where a school has one). sphinx-book-theme builds each chapter's links from
the repository URL, and fails the build when a service is configured and the URL is
empty. So, before the theme reads its options:

- with ``repository.url`` empty (a local or unpublished copy), every launch service is
  switched off: the pages show only the download buttons;
- with it set, the services stay on (Colab only for a GitHub URL: it opens nothing else)
  and the header also links to the repository.

Set the URL and rebuild; README.md ("Launch buttons") says more.
"""

from __future__ import annotations

from typing import Any

from sphinx.util import logging

LOGGER = logging.getLogger(__name__)
SERVICES = ("binderhub_url", "colab_url", "jupyterhub_url", "deepnote_url", "jupyterlite_url")


def launch_services(theme_options: dict) -> dict:
    """The ``launch_buttons`` theme options that fit ``repository_url``.

    Args:
        theme_options: ``html_theme_options`` as Jupyter Book wrote them from _config.yml.

    Returns:
        A copy of ``theme_options["launch_buttons"]``: unchanged when the repository URL is set
        (less Colab for a non-GitHub host), with every service and Thebe off when it is empty.

    Example:
        >>> launch_services({"repository_url": "", "launch_buttons": {"colab_url": "x"}})["colab_url"]
        ''
    """
    launch = dict(theme_options.get("launch_buttons") or {})
    url = (theme_options.get("repository_url") or "").strip()
    if not url:
        return {**launch, **{key: "" for key in SERVICES if key in launch}, "thebe": False}
    if launch.get("colab_url") and "github.com" not in url.lower():
        launch["colab_url"] = ""
    return launch


def _configure(app: Any, config: Any) -> None:
    options = config.html_theme_options
    options["launch_buttons"] = launch_services(options)
    if (options.get("repository_url") or "").strip():
        options["use_repository_button"] = True
        shown = [key.removesuffix("_url") for key in SERVICES if options["launch_buttons"].get(key)]
        LOGGER.info(f"launch buttons for {options['repository_url']}: {', '.join(shown) or 'none'}")


def setup(app: Any) -> dict:
    app.connect("config-inited", _configure, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
