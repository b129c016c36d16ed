"""One module per chapter: its images, readings, tables, claims, figures and
explorer, plus the plotting and widget helpers and the papers' numbers as data.

A chapter notebook uses ``vl.`` for methods and ``from vizlib.chapters import
ch05 as ch`` for its own presentation. Chapter modules import matplotlib and
ipywidgets; nothing below them does.
"""

import os as _os

if _os.environ.get("VIZLIB_FIGURE_LOG"):  # under `make test`: every displayed figure's text size, for check_figures
    from .legibility import log_figures as _log_figures

    _log_figures(_os.environ["VIZLIB_FIGURE_LOG"])
