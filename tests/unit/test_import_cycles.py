"""No import cycles: neither among the compiler's modules (webjit/, every import, at the top or inside a function)
nor among the runtime's (web/, static imports and import() calls; JSDoc type imports are not code)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def python_imports(package: str = "webjit") -> dict[str, set[str]]:
    files = {}
    for f in (ROOT / package).rglob("*.py"):
        parts = f.relative_to(ROOT).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    graph: dict[str, set[str]] = {m: set() for m in files}
    for m, f in files.items():
        here = m if f.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = here.split(".")[:len(here.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[m].update(t for t in targets if t in files and t != m)
    return graph


def js_imports(folder: str = "web") -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for f in (ROOT / folder).rglob("*.js"):
        rel = f.relative_to(ROOT)
        if rel.parts[1] in ("test", "types", "node_modules"):
            continue
        code = re.sub(r"/\*.*?\*/|(?<![:'\"])//[^\n]*", "", f.read_text(), flags=re.S)  # comments hold JSDoc types
        specs = re.findall(r"""\bfrom\s+['"](\.[^'"]+)['"]|\bimport\(\s*['"](\.[^'"]+)['"]""", code)
        graph[str(rel)] = {str((f.parent / (a or b)).resolve().relative_to(ROOT)) for a, b in specs}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state, path = [], {}, []

    def visit(u):
        state[u] = "open"
        path.append(u)
        for v in sorted(graph.get(u, ())):
            if state.get(v) == "open":
                found.append(path[path.index(v):] + [v])
            elif v not in state:
                visit(v)
        path.pop()
        state[u] = "done"
    for u in sorted(graph):
        if u not in state:
            visit(u)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_compiler_has_no_import_cycle():
    graph = python_imports()
    assert "webjit.lower.spec" in graph["webjit.lower.matmul"]  # the finder sees relative imports
    assert not cycles(graph), "\n".join(" -> ".join(c) for c in cycles(graph))


def test_the_runtime_has_no_import_cycle():
    graph = js_imports()
    assert "web/wasm/wasm_session.js" in graph["web/session.js"]  # and import() calls
    assert not cycles(graph), "\n".join(" -> ".join(c) for c in cycles(graph))
