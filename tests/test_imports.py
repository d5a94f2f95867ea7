"""The library's module graph has no import cycle, lazy (function-level) imports included, and
no module of ``rrs/`` loads files by path or imports the app (``ui``, ``streamlit``)."""
from __future__ import annotations

import ast
from pathlib import Path

RRS = Path(__file__).resolve().parent.parent / "rrs"


def _modules(root: Path) -> dict[str, Path]:
    out = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph(root: Path = RRS) -> dict[str, set[str]]:
    """Module → the modules of the same package it imports anywhere in its file (module level,
    inside functions, under ``if``/``try``). ``from pkg import name`` counts as importing
    ``pkg.name`` when that is a module, else ``pkg``; a parent package is not an edge of its
    own (Python imports it first, but it imports nothing of its children's unless listed)."""
    mods = _modules(root)
    graph = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module
                for a in node.names:
                    edges.add(f"{target}.{a.name}" if f"{target}.{a.name}" in mods else target)
        graph[name] = {e for e in edges if e in mods and e != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_lazy_cycles(tmp_path):
    """The checker itself: a cycle made only by a function-level import is found."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import f\n")
    (pkg / "b.py").write_text("def f():\n    from .sub import c\n")
    (pkg / "sub" / "c.py").write_text("def g():\n    from ..a import f\n")
    (pkg / "d.py").write_text("from . import a\n")
    graph = import_graph(pkg)
    assert graph["pkg.d"] == {"pkg.a"} and graph["pkg.sub.c"] == {"pkg.a"}
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c"]]


def test_rrs_has_no_import_cycle():
    found = cycles(import_graph())
    assert not found, f"import cycles in rrs/: {found}"


def test_rrs_loads_no_file_by_path_and_never_imports_the_app():
    for name, path in _modules(RRS).items():
        text = path.read_text()
        assert "spec_from_file_location" not in text and "SourceFileLoader" not in text, name
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, "level", 0):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] in ("ui", "streamlit", "bench", "pages") for n in names), name
