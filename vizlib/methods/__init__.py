"""One module per paper method. They compute and return data: no matplotlib,
no ipywidgets, no chapter wording. ``import vizlib as vl`` exports their API."""
