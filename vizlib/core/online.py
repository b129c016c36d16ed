"""Asking a download host whether it answers, with a hard time limit."""

from __future__ import annotations

import os
import threading

__all__ = ["host_reachable", "PROBE_TIMEOUT"]

#: Seconds allowed for the reachability probe of a download host.
PROBE_TIMEOUT = 4.0
_PROBED: dict[str, bool] = {}


def host_reachable(url: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """True when the URL answers an HTTP HEAD request within ``timeout`` seconds.

    A bare TCP connection is not proof (a proxy may accept any connection), so
    the probe asks for the file's headers. It runs in a daemon thread so that
    even a stalled name lookup or handshake cannot hold the caller longer than
    ``timeout``. ``VIZLIB_OFFLINE=1`` skips it.

    Example:
        >>> host_reachable("https://download.pytorch.org/models/")      # doctest: +SKIP
        True
    """
    if os.environ.get("VIZLIB_OFFLINE"):
        return False
    if url in _PROBED:
        return _PROBED[url]
    import urllib.request

    result: list[bool] = []

    def probe() -> None:
        try:
            request = urllib.request.Request(url, method="HEAD")
            with urllib.request.urlopen(request, timeout=timeout) as response:
                result.append(200 <= response.status < 400)
        except Exception:
            result.append(False)

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(timeout)
    _PROBED[url] = bool(result and result[0])  # asked once per process: chapters load several nets
    return _PROBED[url]
