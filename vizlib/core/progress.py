"""Progress bars: ``tqdm.auto``'s, switched off everywhere at once by ``VIZLIB_PROGRESS=0``.

Every method that shows a bar (``progress=True``) gets it from here. In
JupyterLab a bar is a live widget that says how far a long pass has gone; in
the rendered book it would be a finished bar left above the figure, so
``make book`` sets ``VIZLIB_PROGRESS=0`` and the chapters' outputs carry none.

Example:
    >>> import os
    >>> os.environ["VIZLIB_PROGRESS"] = "0"
    >>> tqdm(range(3), disable=False).disable
    True
    >>> del os.environ["VIZLIB_PROGRESS"]
"""

from __future__ import annotations

import os
from typing import Any

from tqdm.auto import tqdm as _tqdm

__all__ = ["tqdm", "progress_allowed"]


def progress_allowed() -> bool:
    """False when ``VIZLIB_PROGRESS`` is ``0``, ``false``, ``no`` or ``off`` (any case); True otherwise."""
    return os.environ.get("VIZLIB_PROGRESS", "").strip().lower() not in ("0", "false", "no", "off")


def tqdm(*args: Any, disable: bool = False, **kwargs: Any) -> Any:
    """``tqdm.auto.tqdm``, disabled as asked or when :func:`progress_allowed` says no."""
    return _tqdm(*args, disable=bool(disable) or not progress_allowed(), **kwargs)
