#!/usr/bin/env bash
# Create or refresh the project's virtual environment (.venv).
# The venv is rebuilt when it is missing or broken, or when requirements.txt,
# pyproject.toml or the Python version changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for cand in python3.11 python3 python; do
    if command -v "$cand" >/dev/null 2>&1; then PY=$cand; break; fi
  done
fi
[ -n "$PY" ] || { echo "ensure_venv: no python3 found; install Python 3.11" >&2; exit 1; }
key="$("$PY" -c 'import sys; print(sys.version.split()[0])') $(cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)"
stamp=.venv/.vizlib-installed
if [ -x .venv/bin/python ] && .venv/bin/python -c 'import sys' 2>/dev/null && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then
  exit 0
fi
if ! { [ -x .venv/bin/python ] && [ "$(.venv/bin/python -c 'import sys; print(sys.version.split()[0])' 2>/dev/null)" = "${key%% *}" ]; }; then
  echo "ensure_venv: creating .venv with $PY"
  rm -rf .venv
  "$PY" -m venv .venv
fi
echo "ensure_venv: installing requirements into .venv (torch is large: a few minutes the first time)"
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements.txt
.venv/bin/python -m pip install --quiet --no-deps -e . >/dev/null 2>&1 || .venv/bin/python -m pip install --no-deps -e .
.venv/bin/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (vizlib)" >/dev/null
echo "$key" > "$stamp"
