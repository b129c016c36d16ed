"""Write the students' edition's Jupyter Book config: _config.yml with every solution removed.

Jupyter Book 1.x has no ``-D`` on ``jupyter-book build``; its ``--config`` takes a whole
config file instead of _config.yml. This script copies _config.yml and changes only:

- ``sphinx.config.hide_solutions: true`` (sphinx-exercise drops every ``solution``;
  book/_ext/students_edition.py also drops the gated ones, code cells included);
- the title, so a reader knows which edition is open;
- the local extensions' paths made absolute (Jupyter Book resolves them from the
  config file's folder, and this one is written under _build);
- the execution cache: the teacher's (``--cache``), so a book already built by
  ``make book`` is not executed again; or ``--execute off`` for a build that only
  needs the pages' text (the test).

Usage: python scripts/students_config.py OUT.yml [--cache DIR] [--execute off]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def students_config(cache: str | None = None, execute: str | None = None) -> dict:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["title"] = f"{config.get('title', '')} (students' edition)".strip()
    sphinx = config.setdefault("sphinx", {})
    sphinx.setdefault("config", {})["hide_solutions"] = True
    local = sphinx.get("local_extensions") or {}
    sphinx["local_extensions"] = {name: str((ROOT / path).resolve()) for name, path in local.items()}
    run = config.setdefault("execute", {})
    run["cache"] = str(Path(cache).resolve()) if cache else str(ROOT / "_build" / ".jupyter_cache")
    if execute:
        run["execute_notebooks"] = execute
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="where to write the config (a .yml file)")
    parser.add_argument("--cache", help="the execution cache to reuse (default: make book's, _build/.jupyter_cache)")
    parser.add_argument("--execute", choices=["cache", "auto", "force", "off"], help="override execute_notebooks")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(yaml.safe_dump(students_config(args.cache, args.execute), sort_keys=False, allow_unicode=True))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
