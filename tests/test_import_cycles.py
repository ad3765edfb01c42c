"""No import cycle in bench/ or service/: every module's imports form a tree of layers.

The rule: every `import` and `from ... import` statement counts, at module level and inside
functions alike (a late import that dodges a cycle at start-up is still a cycle: the two
modules still need each other), except those under `if TYPE_CHECKING:` (never run).
`from pkg import name` is an edge to the module `pkg.name` when there is one, else to `pkg`.
A module's edge to a package that contains it is left out: Python initialises a package
before any module inside it, so that import adds nothing (a package's `__init__` that
imports its own modules is its edge to them, and counts).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bench", "service")

#: Cycles left on purpose, each with why; the test fails once one is gone, so the entry
#: cannot outlive its cycle.
KNOWN: dict[frozenset[str], str] = {}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of the import nodes under `if TYPE_CHECKING:`."""
    skipped = set()
    for node in ast.walk(tree):
        test = node.test if isinstance(node, ast.If) else None
        if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
            skipped |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skipped


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of bench and service that `name` imports, by the rule above."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skipped = _type_checking_only(tree)
    targets: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                targets.add(sub if sub in modules else node.module)
    return {t for t in targets if t in modules and t != name and not name.startswith(t + ".")}


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected groups of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.add(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        found.append(frozenset(group))
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def test_bench_and_service_have_no_import_cycle() -> None:
    found = set(cycles(_graph()))
    new = [sorted(group) for group in found if group not in KNOWN]
    assert not new, f"import cycles: {new}"
    gone = [sorted(group) for group in KNOWN if group not in found]
    assert not gone, f"cycles no longer there, drop them from KNOWN: {gone}"


def test_the_detector_finds_a_late_import_cycle_and_ignores_type_checking(
    tmp_path: Path,
) -> None:
    modules = {"bench.a": tmp_path / "a.py", "bench.b": tmp_path / "b.py", "bench": tmp_path}
    modules["bench.a"].write_text("from bench import b\n")
    modules["bench.b"].write_text("def f():\n    from bench.a import x\n")
    graph = {n: imports_of(n, p, modules) for n, p in modules.items() if p.suffix}
    graph["bench"] = set()
    assert cycles(graph) == [frozenset({"bench.a", "bench.b"})]
    modules["bench.b"].write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bench.a import x\n"
    )
    graph = {n: imports_of(n, p, modules) for n, p in modules.items() if p.suffix}
    graph["bench"] = set()
    assert cycles(graph) == []


def test_a_module_importing_its_own_package_is_no_edge() -> None:
    modules = _modules()
    assert "bench.report" not in imports_of(
        "bench.report.site", modules["bench.report.site"], modules
    )
