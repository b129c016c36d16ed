"""A small table that prints as text in a terminal and as HTML in a notebook."""

from __future__ import annotations

import html
from typing import Any, Sequence

__all__ = ["Table"]


class Table:
    """Rows of values under a header; ``str()`` is aligned text, notebooks show HTML.

    Example:
        >>> print(Table(["layer", "size"], [["c1", 11]]))
        layer  size
        -----  ----
        c1       11
    """

    def __init__(self, header: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> None:
        self.header = list(header)
        self.rows = [list(r) for r in rows]
        self.title = title

    @staticmethod
    def _fmt(v: Any) -> str:
        if isinstance(v, bool):
            return "yes" if v else "NO"
        if isinstance(v, int):
            return f"{v:,}"
        if isinstance(v, float):
            return f"{v:.4g}"
        return "" if v is None else str(v)

    def column(self, name: str) -> list[Any]:
        i = self.header.index(name)
        return [r[i] for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __str__(self) -> str:
        cells = [self.header] + [[self._fmt(v) for v in r] for r in self.rows]
        numeric = [all(isinstance(r[i], (int, float)) and not isinstance(r[i], bool) for r in self.rows)
                   for i in range(len(self.header))]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.header))]

        def line(row: list[str]) -> str:
            return "  ".join(c.rjust(w) if numeric[i] else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))

        out = [line(cells[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in cells[1:]]
        return (self.title + "\n" if self.title else "") + "\n".join(s.rstrip() for s in out)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        th = "".join(f"<th>{html.escape(h)}</th>" for h in self.header)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(self._fmt(v))}</td>" for v in r) + "</tr>" for r in self.rows
        )
        cap = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        return f"<table>{cap}<thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"
