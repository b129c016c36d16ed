"""One module per paper method. They compute and return data: no matplotlib,
no ipywidgets, no chapter wording. ``import vizlib as vl`` exports their API."""

# Issue 16's methods (the rest of the family), importable from here and from ``vizlib``:
from .maximisation import Maximisation, compare_regularisers, maximise  # noqa: E402,F401
from .inversion import Inversion, invert  # noqa: E402,F401
from .dissection import Broden, Dissection, bundled_concepts, dissect, untrained  # noqa: E402,F401
