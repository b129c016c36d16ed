# How convolutional networks see — the book and its package.
#   make book   build the book (executes every chapter) into _build/html
#   make book-students  the students' edition (no solutions) into _build/students/_build/html
#   make test   run the tests: pytest for vizlib, nbval over every chapter, the page test
#   make lab    open the chapters in JupyterLab
#   make assets fetch the JavaScript the pages serve themselves (MathJax, widgets) into _vendor/
# Both set up .venv on first use (and refresh it when requirements change).

VENV   := .venv
PY     := $(VENV)/bin/python
JB     := $(VENV)/bin/jupyter-book

.PHONY: all book book-students test lab venv assets pytest nbval pages bench ablation clean

all: book

venv:
	@bash scripts/ensure_venv.sh

# MathJax, RequireJS and the widgets' HTML manager, pinned, from the npm registry: the built
# pages serve them from their own _static/, so they work opened from disk with no network.
assets:
	@bash scripts/ensure_assets.sh

# VIZLIB_PROGRESS=0: no progress bars in the executed outputs (in JupyterLab the chapters show them).
book: venv assets
	VIZLIB_PROGRESS=0 $(JB) build . -W --keep-going

# The students' edition: the same book with every solution removed (sphinx-exercise's
# hide_solutions, passed through a generated copy of _config.yml, since jupyter-book 1.x
# has no -D). It reuses make book's execution cache, so after `make book` nothing runs again.
book-students: venv assets
	$(PY) scripts/students_config.py _build/students/_config.yml
	VIZLIB_PROGRESS=0 $(JB) build . -W --keep-going --path-output _build/students --config _build/students/_config.yml

# Under test the chapters shrink their workloads (VIZLIB_SMOKE=1) and use the offline
# model sets, so the whole run stays well inside 30 minutes on 2 CPU cores. Every figure the
# chapters display is logged (VIZLIB_FIGURE_LOG) and check_figures fails on text under 9 CSS px.
test: venv assets
	@bash scripts/ensure_chromium.sh
	VIZLIB_SMOKE=1 $(PY) -m pytest tests -q
	rm -f _build/figures.jsonl && mkdir -p _build
	VIZLIB_SMOKE=1 VIZLIB_FIGURE_LOG=$(CURDIR)/_build/figures.jsonl $(PY) -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider book -q
	$(PY) scripts/check_figures.py _build/figures.jsonl

lab: venv
	$(VENV)/bin/jupyter lab book

# Speed measurements (minutes; Captum is installed for the comparisons). Not part of the tests.
bench: venv
	$(PY) -m pip install --quiet "captum>=0.7,<1"
	for f in benchmarks/bench_*.py; do $(PY) $$f || exit 1; done

# Chapter 8's model-size study: train the AlexNet-style design and its six variants with seeds 0, 1
# and 2, each on 6,000 composed training garments for 8 epochs on one CPU thread (about 1 min each
# on a quiet 2-core machine, up to 18 min when it is shared), and write one record per variant and
# seed into vizlib/models/records/ablation/. Needs Fashion-MNIST's training files (Debian's
# dataset-fashion-mnist). Check one against its record, bit for bit:
#   OMP_WAIT_POLICY=PASSIVE .venv/bin/python -m vizlib.models.ablation no_c34_fc67 --threads 1 --seed 0 --check
ABLATION_SEEDS := 0 1 2
ablation: venv
	for seed in $(ABLATION_SEEDS); do \
	  OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE $(PY) -m vizlib.models.ablation --threads 1 --seed $$seed || exit 1; \
	done

clean:
	rm -rf _build .jupyter_cache
