"""Fail when a chapter's figure has text smaller than about 9 CSS px on the book's page, or a table
has no title (issue 17, item 3).

``make test`` runs the chapters under nbval with ``VIZLIB_FIGURE_LOG`` set: every figure a chapter
displays adds a line to that file (``vizlib.chapters.legibility.log_figures``: the chapter, the
cell, the figure's size and dpi, its smallest text on the page and the strings below the floor).
This script reads the file, prints one line per figure whose text is too small, and exits 1 if
there is any. Each figure's size on the page assumes the content column of
``vizlib.chapters.legibility.CONTENT_PX`` CSS px.

    python scripts/check_figures.py _build/figures.jsonl
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vizlib.chapters.legibility import CONTENT_PX, MIN_TEXT_PX  # noqa: E402


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    path = Path(argv[0])
    if not path.is_file():
        print(f"check_figures: {path} does not exist: were the chapters run with VIZLIB_FIGURE_LOG set?",
              file=sys.stderr)
        return 1
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    tables = [r for r in records if r.get("kind") == "table"]
    records = [r for r in records if r.get("kind") != "table"]
    bad = [r for r in records if r["n_small"]]
    per = Counter(r["chapter"] or "?" for r in records)
    print(f"check_figures: {len(records)} figures from {len(per)} chapters "
          f"({', '.join(f'{k} {v}' for k, v in sorted(per.items()))}); content column {CONTENT_PX} px, "
          f"floor {MIN_TEXT_PX:g} px")
    for r in bad:
        w, h = r["figsize"]
        strings = "; ".join(f"{t!r} {px:g} px" for t, px in r["small"][:4])
        print(f"  {r['chapter'] or '?'}: {w:g}×{h:g} in at {r['dpi']:g} dpi, {r['n_small']} strings below the floor "
              f"(smallest {r['smallest_px']:g} px: {strings}) — cell: {r['cell']}")
    for r in tables:
        print(f"  {r['chapter'] or '?'}: a table without a title (columns {', '.join(r['header'])})")
    if bad:
        print(f"check_figures: {len(bad)} of {len(records)} figures have text below {MIN_TEXT_PX:g} CSS px")
    if tables:
        print(f"check_figures: {len(tables)} tables have no title (Table(header, rows, title))")
    return 1 if bad or tables else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
