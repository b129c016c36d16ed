"""Measure how long each chapter takes to run, as a class would run it, for book/teaching.md.

Each chapter notebook of _toc.yml is executed from a fresh kernel, in book/ (as JupyterLab
and the book build run it), by nbclient, with the environment this script was started with
(set VIZLIB_MODEL_SET, VIZLIB_SMOKE, VIZLIB_OFFLINE before it). Recorded per chapter: the wall
time from the kernel's start to the last cell's reply ("Run All"), the longest cell (from
the execution timestamps nbclient writes into each cell), the CPU time the kernel used (user
and system, from psutil: on a machine shared with other work it varies less than the wall
time does), the model set the chapter printed,
and from the notebook itself its words of prose (markdown cells, code and directives' option
lines left out), code cells and exercises. The machine (cores, CPU, load average before and
after) is recorded too: on a shared machine the times are upper bounds.

A second source needs no run of its own: ``--from-cache DIR`` reads the execution time that
jupyter-cache recorded for each chapter when the book was built (``make book`` keeps its cache in
``_build/.jupyter_cache``), matched to the current notebooks by their content hash, so a record
of an older version of a chapter is never used. ``--label`` says how that build was run (its
VIZLIB_ variables: the cache does not record them).

Usage:
    VIZLIB_MODEL_SET=bundled VIZLIB_OFFLINE=1 python scripts/time_chapters.py --json out.json
    python scripts/time_chapters.py --from out.json --write book/teaching.md
    python scripts/time_chapters.py --from-cache _build/.jupyter_cache --label "VIZLIB_SMOKE=1 make book" \
        --write book/teaching.md

``--write`` replaces the table between the ``<!-- chapter-times:start -->`` and
``<!-- chapter-times:end -->`` markers of the page; nothing else in it changes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- chapter-times:start -->", "<!-- chapter-times:end -->"
WORDS_PER_MINUTE = 200  # MyST's reading-time default (myst_parser's words_per_minute)


def chapters() -> list[Path]:
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for c in toc.get("chapters", [])]
    return [ROOT / f"{f}.ipynb" for f in files if re.match(r"\d\d_", Path(f).name)]


def prose_words(nb) -> int:
    words = 0
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        text = re.sub(r"```[^\n]*\n", "", cell.source)           # fences of directives
        text = re.sub(r"^:\w[\w-]*:.*$", "", text, flags=re.M)   # directive options (:label:, :class:)
        text = re.sub(r"\$\$.*?\$\$|\$[^$\n]+\$", " formula ", text, flags=re.S)
        words += len(re.findall(r"[A-Za-z0-9][\w'’.-]*", text))
    return words


def _seconds(cell) -> float:
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def _title(nb) -> str:
    """The chapter's title: the first markdown heading (the first cell is the install cell)."""
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith("#"):
            return cell.source.lstrip().splitlines()[0].lstrip("# ").strip()
    return ""


def _first_line(nb) -> str:
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("text"):
                return out["text"].strip().splitlines()[0]
    return ""


def time_chapter(path: Path, timeout: int) -> dict:
    import nbformat
    from nbclient import NotebookClient

    import psutil

    nb = nbformat.read(path, as_version=4)
    cpu = {"s": 0.0}

    def kernel_cpu(**_: object) -> None:  # after every cell: the kernel's CPU time so far (and its children's)
        process = psutil.Process(client.km.provisioner.process.pid)
        times = process.cpu_times()
        cpu["s"] = times.user + times.system + times.children_user + times.children_system

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", on_cell_executed=kernel_cpu,
                            resources={"metadata": {"path": str(path.parent)}})
    t0 = time.perf_counter()
    client.execute()
    wall = time.perf_counter() - t0
    cells = [(i, _seconds(c)) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    longest = max(cells, key=lambda c: c[1])
    return {
        "chapter": path.stem, "title": _title(nb),
        "run_all_s": round(wall, 1), "kernel_cpu_s": round(cpu["s"], 1), "cells_s": round(sum(s for _, s in cells), 1),
        "longest_cell_s": round(longest[1], 1), "longest_cell": longest[0],
        "code_cells": len(cells), "exercises": sum(c.source.count("{exercise}") for c in nb.cells),
        "words": prose_words(nb), "shows": _first_line(nb),
    }


def from_cache(cache_dir: Path, label: str) -> dict:
    """The execution times jupyter-cache recorded for the current chapters (matched by hash)."""
    import nbformat
    from jupyter_cache import get_cache

    cache = get_cache(str(cache_dir))
    rows = []
    for path in chapters():
        nb = nbformat.read(path, as_version=4)
        base = {"chapter": path.stem, "title": _title(nb),
                "code_cells": sum(c.cell_type == "code" for c in nb.cells),
                "exercises": sum(c.source.count("{exercise}") for c in nb.cells), "words": prose_words(nb)}
        try:
            record = cache.match_cache_file(str(path))
        except KeyError:
            rows.append({**base, "run_all_s": None, "shows": ""})
            continue
        executed = cache.get_cache_bundle(record.pk).nb
        cells = [_seconds(c) for c in executed.cells if c.cell_type == "code"]
        rows.append({**base, "run_all_s": round(record.data.get("execution_seconds", 0.0), 1),
                     # jupyter-cache keeps no per-cell timestamps: no longest cell from it
                     "longest_cell_s": round(max(cells), 1) if any(cells) else None, "shows": _first_line(executed),
                     "executed": record.created.strftime("%Y-%m-%d %H:%M")})
    dates = sorted(r["executed"] for r in rows if r.get("executed"))
    return {"source": f"jupyter-cache ({cache_dir})", "label": label, "date": dates[-1][:10] if dates else "",
            "executed": f"{dates[0]} to {dates[-1]} UTC" if dates else "", "machine": machine(), "chapters": rows}


def machine() -> dict:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    import torch

    return {"cores": os.cpu_count(), "cpu": cpu, "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__}


def measure(timeout: int, only: list[str] | None = None) -> dict:
    env = {k: os.environ[k] for k in ("VIZLIB_MODEL_SET", "VIZLIB_SMOKE", "VIZLIB_OFFLINE") if k in os.environ}
    record = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "env": env, "machine": machine(),
              "load_before": os.getloadavg()[0], "chapters": []}
    for path in chapters():
        if only and not any(path.stem.startswith(o) for o in only):
            continue
        print(f"running {path.name} ...", file=sys.stderr, flush=True)
        row = time_chapter(path, timeout)
        print(f"  {row['run_all_s']} s", file=sys.stderr, flush=True)
        record["chapters"].append(row)
    record["load_after"] = os.getloadavg()[0]
    return record


def _intro(record: dict) -> str:
    m = record["machine"]
    where = f"{m['cores']} CPU cores ({m['cpu']}; torch {m['torch']}, {m['torch_threads']} threads), no GPU"
    if "label" in record:
        return (f"Measured by jupyter-cache when the book was built with `{record['label']}` ({record['executed']}) "
                f"on {where}, and read from its cache with `python scripts/time_chapters.py --from-cache`; where the "
                "machine was shared with other work the times are upper bounds. *Run All* is the time the build "
                "took to execute the chapter from a fresh kernel; *reading* is the prose at "
                f"{WORDS_PER_MINUTE} words a minute.")
    env = " ".join(f"{k}={v}" for k, v in record["env"].items()) or "(no VIZLIB_ variables: the default model set)"
    return (f"Measured on {record['date']} with `{env} python scripts/time_chapters.py` on {where}; load average "
            f"{record['load_before']:.1f} before and {record['load_after']:.1f} after (the machine was shared with "
            "other work, so the times are upper bounds). *Run All* is the wall time from a fresh kernel to the last "
            "cell, as `jupyter execute` would take; *kernel CPU* is the processor time the kernel used (on two cores "
            "a chapter that keeps both busy runs in about half of it); *reading* is the prose at "
            f"{WORDS_PER_MINUTE} words a minute.")


def table(record: dict) -> str:
    cpu_column = any("kernel_cpu_s" in r for r in record["chapters"])
    cell_column = any(r.get("longest_cell_s") is not None for r in record["chapters"])
    head = ["chapter", "shows", "Run All"] + (["kernel CPU"] if cpu_column else []) + (
        ["longest cell"] if cell_column else []) + ["code cells", "exercises", "prose", "reading"]
    lines = [_intro(record), "", "| " + " | ".join(head) + " |",
             "| --- | --- | " + " | ".join("---:" for _ in head[2:]) + " |"]
    seconds = lambda v: "not measured" if v is None else f"{v:.0f} s"  # noqa: E731
    for r in record["chapters"]:
        found = re.match(r"Model set: (\w+)", r.get("shows") or "")
        cells = [f"{r['chapter'][:2]} {r['title']}", found.group(1) if found else "", seconds(r.get("run_all_s"))]
        if cpu_column:
            cells.append(seconds(r.get("kernel_cpu_s")))
        if cell_column:
            cells.append(seconds(r.get("longest_cell_s")))
        cells += [str(r["code_cells"]), str(r["exercises"]),
                  f"{r['words']:,} words", f"{r['words'] / WORDS_PER_MINUTE:.0f} min"]
        lines.append("| " + " | ".join(cells) + " |")
    rows = record["chapters"]
    measured = [r["run_all_s"] for r in rows if r.get("run_all_s") is not None]
    total = [f"all {len(rows)}", "", f"{sum(measured):.0f} s" if len(measured) == len(rows) else "—"]
    if cpu_column:
        total.append(f"{sum(r.get('kernel_cpu_s') or 0 for r in rows):.0f} s")
    words = sum(r["words"] for r in rows)
    total += [""] * cell_column + [str(sum(r["code_cells"] for r in rows)), str(sum(r["exercises"] for r in rows)),
              f"{words:,} words", f"{words / WORDS_PER_MINUTE:.0f} min"]
    lines.append("| " + " | ".join(total) + " |")
    return "\n".join(lines)


def write(page: Path, text: str) -> None:
    content = page.read_text()
    if START not in content or END not in content:
        raise SystemExit(f"{page} has no {START} ... {END} block to replace")
    head, rest = content.split(START, 1)
    _, tail = rest.split(END, 1)
    page.write_text(f"{head}{START}\n{text}\n{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the measurements here")
    parser.add_argument("--from", dest="source", type=Path, help="read measurements instead of running the chapters")
    parser.add_argument("--from-cache", dest="cache", type=Path, help="read a book build's jupyter-cache instead")
    parser.add_argument("--label", default="make book",
                        help="with --from-cache: how that build was run (on this machine, which the table names)")
    parser.add_argument("--write", type=Path, help="replace the chapter-times block of this page")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    parser.add_argument("--only", nargs="*", help="chapters to run, by number (01 02 ...): a quick check")
    args = parser.parse_args()
    if args.cache:
        record = from_cache(args.cache, args.label)
    elif args.source:
        record = json.loads(args.source.read_text())
    else:
        record = measure(args.timeout, args.only)
    if args.json:
        args.json.write_text(json.dumps(record, indent=1))
    print(table(record))
    if args.write:
        write(args.write, table(record))


if __name__ == "__main__":
    main()
