"""The imports of ``medssl.data``: no circle, and ``synth/`` below the sources and recipes.

Every import counts, at the top of a module, inside a function or under ``TYPE_CHECKING``: a
circle hidden in a function-local import is still a circle. ``synth/`` renders images and
writes files; the sources know their layouts and call it, never the other way.
"""

from __future__ import annotations

import ast
from pathlib import Path

import medssl

SRC = Path(medssl.__file__).parent
DATA = SRC / "data"


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(p): p for p in DATA.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    """The medssl modules ``path`` imports anywhere in it (``from pkg import sub`` names sub)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("medssl")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("medssl"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names} & set(MODULES)
    return found


GRAPH = {m: _imports(p) & set(MODULES) - {m} for m, p in MODULES.items()}


def test_no_module_of_data_imports_itself_back():
    circles = []

    def walk(m: str, path: list[str]) -> None:
        for n in sorted(GRAPH[m]):
            if n in path:
                circles.append(" -> ".join(path[path.index(n) :] + [n]))
            elif n not in done:
                walk(n, [*path, n])
        done.add(m)

    done: set[str] = set()
    for m in sorted(GRAPH):
        if m not in done:
            walk(m, [m])
    assert not circles, circles


def test_synth_imports_no_source_recipe_or_build():
    """synth/ may import records (the classes) and itself, nothing else of medssl.data."""
    synth = {m for m in MODULES if m.startswith("medssl.data.synth")}
    allowed = synth | {"medssl.data", "medssl.data.records"}
    found = {m: sorted(GRAPH[m] - allowed) for m in synth if GRAPH[m] - allowed}
    assert not found, found
    assert "medssl.data.phantoms" in GRAPH["medssl.data.build"]  # the walk does see imports


def _map() -> list[str]:
    """The entries of docs/architecture.md's data/ map, in their order."""
    text = (SRC.parent.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = text[text.index("\ndata/ ") : text.index("\nmodels/ ")]
    lines = block.splitlines()[2:]
    return [line.split()[0] for line in lines if line.startswith("  ") and line[2] != " "]


def _entry(module: str) -> str:
    parts = module.split(".")[2:]
    return {"synth": "synth/", "sources": "sources/<name>.py"}.get(parts[0], f"{parts[0]}.py")


def test_the_architecture_map_lists_every_data_module_in_import_order():
    """Each module of data/ is on the map, and imports (within data/) only those above it."""
    order = _map()
    modules = [m for m in MODULES if m != "medssl.data"]
    assert not sorted({_entry(m) for m in modules} - set(order)), "modules missing from the map"
    rank = {e: i for i, e in enumerate(order)}
    up = [
        f"{m} -> {n}"
        for m in modules
        for n in GRAPH[m] - {"medssl.data"}
        if rank[_entry(n)] > rank[_entry(m)]
    ]
    assert not up, f"imports of a module listed below: {up}"
