"""The package's architecture, checked: four layers, imports only downward, no circles,
no drawing below the chapters, a small top-level API, notebooks that import only vizlib
and their own chapter module."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import vizlib as vl

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "vizlib"
LAYERS = ("core", "models", "methods", "chapters")


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = p.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def _imports(path: Path, name: str) -> set[str]:
    """Every vizlib module a file imports (relative imports resolved), at any depth of the file."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.startswith("vizlib"):
                found.add(mod)
                found.update(f"{mod}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("vizlib"))
    return found


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_module_sits_in_a_layer():
    loose = [m for m in _modules() if m != "vizlib" and _layer(m) is None]
    assert loose == [], f"modules outside core/models/methods/chapters: {loose}"


def test_imports_only_go_down():
    modules = _modules()
    upward = []
    for name, path in modules.items():
        own = _layer(name)
        if own is None:
            continue
        for imp in _imports(path, name):
            other = _layer(imp)
            if other is not None and other > own:
                upward.append(f"{name} imports {imp}")
    assert upward == []


def test_no_import_circles():
    modules = _modules()
    graph = {n: {i for i in _imports(p, n) if i in modules and i != n} for n, p in modules.items()}
    graph = {n: {i for i in deps if not n.startswith(i + ".")} for n, deps in graph.items()}  # a package's own __init__
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(n: str, stack: list[str]) -> bool:
        state[n] = 1
        for m in graph.get(n, ()):
            if m == "vizlib":
                continue
            if state.get(m) == 1:
                cycle.extend(stack[stack.index(m):] + [m] if m in stack else [n, m])
                return True
            if state.get(m) is None and visit(m, stack + [m]):
                return True
        state[n] = 2
        return False

    for n in graph:
        if n != "vizlib" and state.get(n) is None and visit(n, [n]):
            break
    assert cycle == []


def test_no_drawing_below_the_chapters():
    offenders = []
    for name, path in _modules().items():
        if _layer(name) in (0, 1, 2):
            text = path.read_text()
            if re.search(r"^\s*(import|from)\s+(matplotlib|ipywidgets)", text, re.M):
                offenders.append(name)
    assert offenders == []


def test_the_top_level_api_is_small_and_real():
    assert len(vl.__all__) <= 80  # CONTRIBUTING.md: about eight names a chapter, nine chapters
    assert len(set(vl.__all__)) == len(vl.__all__)
    missing = [n for n in vl.__all__ if not hasattr(vl, n)]
    assert missing == []
    for name in vl.__all__:
        assert getattr(vl, name).__doc__, f"vl.{name} has no docstring"
    import types

    hidden = [n for n, v in vars(vl).items() if not n.startswith("_") and n not in vl.__all__
              and not isinstance(v, types.ModuleType)]
    assert hidden == [], f"reachable as vl.<name> but not in __all__: {hidden}"


def test_errors_share_one_base_and_keep_their_builtins():
    assert issubclass(vl.ImageError, ValueError) and issubclass(vl.ImageError, vl.VizlibError)
    assert issubclass(vl.InputTooSmall, vl.ImageError)
    assert issubclass(vl.LayerError, KeyError) and issubclass(vl.UnsupportedLayer, TypeError)
    assert issubclass(vl.DatasetUnavailable, FileNotFoundError) and issubclass(vl.WeightsUnavailable, RuntimeError)
    assert issubclass(vl.NoObjectRegion, ValueError)


def _notebook_imports(path: Path) -> set[str]:
    nb = json.loads(path.read_text())
    found: set[str] = set()
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        src = "\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                found.add(node.module or "")
                if node.module == "vizlib.chapters":
                    found.update(f"vizlib.chapters.{a.name}" for a in node.names)
    return found


def test_each_notebook_imports_only_vizlib_and_its_chapter():
    import sys

    allowed_roots = set(sys.stdlib_module_names) | {"torch", "IPython"}
    for path in sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb")):
        own = f"vizlib.chapters.ch{path.name[:2]}"
        bad = []
        for imp in _notebook_imports(path):
            if imp in ("vizlib", "vizlib.chapters", own) or imp.split(".")[0] in allowed_roots:
                continue
            bad.append(imp)
        assert bad == [], f"{path.name} imports {bad}"
