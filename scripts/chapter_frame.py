"""The frame around every chapter: its install cell, its goals, its takeaways, and the teachers' page.

Each chapter notebook (in ``_toc.yml``'s order) has

* a first cell tagged ``install-vizlib`` (and ``remove-cell``, so the rendered page does not show
  it): on Colab, or any kernel where ``vizlib`` is missing, it installs the book's package from
  the repository named in ``_config.yml`` (``repository.url`` and ``repository.branch``); where
  ``vizlib`` imports it does nothing. The URL is written into the cell, because a notebook opened
  on Colab comes without ``_config.yml``;
* a markdown cell tagged ``chapter-goals`` right after its title cell (**Goals.** and
  **Prerequisites.**);
* a last cell tagged ``chapter-takeaways`` (``## Takeaways`` and a list).

The notebooks are the one place those words are written. The teachers' page
(``book/teaching.md``) shows them for every chapter, between the
``<!-- chapter-guide:start -->`` and ``<!-- chapter-guide:end -->`` markers: this script writes
that block from the notebooks, and the install cells from ``_config.yml``.

Run after changing a chapter's goals or takeaways, or the repository URL::

    python scripts/chapter_frame.py --write     # rewrite the install cells and the teachers' block
    python scripts/chapter_frame.py --check     # exit 1 and say what is stale (the tests run it)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "book" / "teaching.md"
START, END = "<!-- chapter-guide:start -->", "<!-- chapter-guide:end -->"
INSTALL, GOALS, TAKEAWAYS = "install-vizlib", "chapter-goals", "chapter-takeaways"

INSTALL_SOURCE = '''\
# On Colab or in a fresh kernel without vizlib: install the book's package (nothing happens where it imports).
import importlib.util, subprocess, sys
REPOSITORY, BRANCH = {url!r}, {branch!r}  # _config.yml's repository (scripts/chapter_frame.py writes them here)
if importlib.util.find_spec("vizlib") is None:
    if not REPOSITORY:
        raise ModuleNotFoundError("vizlib is not installed and this copy of the book names no repository: "
                                  "in a clone of the book run `make lab` (README.md), or `pip install -e .`")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                    f"vizlib[tsne,zoo] @ git+{{REPOSITORY}}@{{BRANCH}}"], check=True)'''


def chapters() -> list[Path]:
    """The chapter notebooks in the table of contents' order."""
    toc = (ROOT / "_toc.yml").read_text()
    return [ROOT / f"{m}.ipynb" for m in re.findall(r"^\s*- file:\s*(book/\d\d_\S+)\s*$", toc, re.M)
            if (ROOT / f"{m}.ipynb").is_file()]


def repository() -> tuple[str, str]:
    """``(url, branch)`` from ``_config.yml``'s ``repository`` block."""
    text = (ROOT / "_config.yml").read_text()
    block = re.search(r"^repository:\n((?:[ \t]+.*\n?)*)", text, re.M)
    if block is None:
        raise SystemExit("_config.yml has no repository: block")

    def value(key: str) -> str:
        m = re.search(rf"^\s+{key}:\s*(\"[^\"]*\"|'[^']*'|[^#\s]*)", block.group(1), re.M)
        return m.group(1).strip("\"'") if m else ""

    return value("url"), value("branch") or "main"


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _tagged(nb: dict, tag: str) -> list[int]:
    return [i for i, c in enumerate(nb["cells"]) if tag in c.get("metadata", {}).get("tags", [])]


def _lines(text: str) -> list[str]:
    lines = text.split("\n")
    return [line + "\n" for line in lines[:-1]] + [lines[-1]]


def install_cell(url: str, branch: str) -> dict:
    """The first cell of every chapter, for this repository."""
    return {"cell_type": "code", "execution_count": None, "id": "install-vizlib",
            "metadata": {"tags": ["remove-cell", INSTALL]}, "outputs": [],
            "source": _lines(INSTALL_SOURCE.format(url=url, branch=branch))}


def frame_problems(path: Path, nb: dict, url: str, branch: str) -> list[str]:
    """What is missing or stale in one chapter's frame (empty when it is right)."""
    name, cells, out = path.name, nb["cells"], []
    inst, goals, take = _tagged(nb, INSTALL), _tagged(nb, GOALS), _tagged(nb, TAKEAWAYS)
    if inst != [0]:
        out.append(f"{name}: the first cell (and only it) must be tagged {INSTALL!r}")
    elif _source(cells[0]) != INSTALL_SOURCE.format(url=url, branch=branch):
        out.append(f"{name}: the install cell does not match _config.yml's repository (run --write)")
    title = next((i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
                  and _source(c).lstrip().startswith("# ")), None)
    if title is None or goals != [title + 1]:
        out.append(f"{name}: one markdown cell tagged {GOALS!r} must follow the title cell")
    elif not re.search(r"^\*\*Goals\.\*\* \S", _source(cells[goals[0]]), re.M):
        out.append(f"{name}: the goals cell must open with **Goals.**")
    if take != [len(cells) - 1]:
        out.append(f"{name}: the last cell (and only it) must be tagged {TAKEAWAYS!r}")
    elif not re.match(r"## Takeaways\n\n\* \S", _source(cells[-1])):
        out.append(f"{name}: the takeaways cell must be '## Takeaways' and a list")
    return out


def _short_title(nb: dict) -> str:
    for c in nb["cells"]:
        s = _source(c).lstrip()
        if c["cell_type"] == "markdown" and s.startswith("# "):
            return s[2:].split("\n")[0].split(":")[0].strip()
    return "?"


def guide(paths: list[Path]) -> str:
    """The teachers' block: every chapter's title, link, goals, prerequisites and takeaways."""
    parts = []
    for n, path in enumerate(paths, 1):
        nb = json.loads(path.read_text())
        goals = _source(nb["cells"][_tagged(nb, GOALS)[0]]).strip()
        take = _source(nb["cells"][_tagged(nb, TAKEAWAYS)[0]]).strip()
        take = take.removeprefix("## Takeaways").strip()
        parts.append(f"### {n}. {_short_title(nb)}\n\n{{doc}}`{path.stem}`\n\n{goals}\n\n**Takeaways.**\n\n{take}\n")
    return "\n".join(parts)


def _replace_block(text: str, block: str) -> str:
    if START not in text or END not in text:
        raise SystemExit(f"{PAGE.relative_to(ROOT)} has no {START} … {END} block")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{block}{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the install cells and the teachers' block")
    mode.add_argument("--check", action="store_true", help="say what is stale; exit 1 if anything is")
    args = parser.parse_args()
    url, branch = repository()
    paths = chapters()
    problems = []
    for path in paths:
        nb = json.loads(path.read_text())
        if args.write and _tagged(nb, INSTALL) == [0]:
            cell = install_cell(url, branch)
            if _source(nb["cells"][0]) != _source(cell):
                nb["cells"][0] = cell
                path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        problems += frame_problems(path, nb, url, branch)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    page = PAGE.read_text()
    new = _replace_block(page, guide(paths))
    if new != page:
        if args.write:
            PAGE.write_text(new)
            print(f"wrote {PAGE.relative_to(ROOT)}'s chapter guide ({len(paths)} chapters)")
        else:
            print(f"{PAGE.relative_to(ROOT)}'s chapter guide is stale: run python scripts/chapter_frame.py --write",
                  file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
