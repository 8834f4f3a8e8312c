"""The layout is the architecture: one package per part, imports only downward, no circle
between packages, no module too long to read.  Read from the code (ast), not from a list
of modules that could fall behind it."""

from __future__ import annotations

import ast
from collections import defaultdict

import pytest

from tests.support.imports import ROOT, imports_of, modules

FLOORS: dict[str, int] = {
    # ground floor: vocabulary every part shares
    "loader._version": 0,
    "loader.counts": 0,
    "loader.progress": 0,
    "loader.errors": 0,
    "loader.config": 0,
    "loader.results": 0,
    "loader.retry": 0,
    "loader.domain": 1,  # pure, no I/O
    "loader.warehouse": 2,  # Postgres and its schema
    "loader.pipeline": 3,
    "loader.analyst": 3,
    "loader.drip_api": 3,
    "loader.serve": 4,
    "loader.commands": 5,  # one verb per command
    "loader.cli": 6,
    "loader": 7,  # the package face (__init__, __main__)
    "loader.__main__": 7,
}
"""Each part's floor: a part imports only parts on its floor or below."""


def part(module: str) -> str:
    """The part a module belongs to: its package under loader, or itself on the ground floor."""
    parts = module.split(".")
    return module if module in FLOORS else ".".join(parts[:2])


def _edges() -> dict[tuple[str, str], list[str]]:
    """(importing part, imported part) -> where, for every import between two parts."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name in modules():
        for imported in imports_of(name):
            if imported.module == "loader" or imported.module.startswith("loader."):
                a, b = part(name), part(imported.module)
                if a != b:
                    edges[a, b].append(f"{name}:{imported.line}")
    return edges


EDGES = _edges()


def test_every_module_belongs_to_a_part_with_a_floor() -> None:
    assert {part(name) for name in modules()} == set(FLOORS)


def test_nothing_imports_upward() -> None:
    upward = {f"{a} -> {b}": where for (a, b), where in EDGES.items() if FLOORS[a] < FLOORS[b]}
    assert upward == {}


def test_no_circle_between_parts() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in EDGES:
        graph[a].add(b)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph[start] - seen:
            if nxt == goal or reaches(nxt, goal, seen | {nxt}):
                return True
        return False

    circles = sorted(a for a in list(graph) if reaches(a, a, set()))
    assert circles == []


def test_the_graph_is_read_from_the_code() -> None:
    # the checks above are only as good as the edges found: these are known to exist
    assert ("loader.pipeline", "loader.warehouse") in EDGES
    assert ("loader.cli", "loader.commands") in EDGES  # imported inside a function
    assert ("loader.warehouse", "loader.domain") in EDGES


MAX_LINES = 500
REGISTRY_DATA = "COLLECTIONS"
"""The registry's table of collections is data, however long it grows."""


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_is_too_long_to_read(name: str) -> None:
    path = modules()[name]
    text = path.read_text(encoding="utf-8")
    lines = len(text.splitlines())
    for node in ast.parse(text).body:
        if isinstance(node, ast.AnnAssign | ast.Assign) and REGISTRY_DATA in ast.unparse(
            node.targets[0] if isinstance(node, ast.Assign) else node.target
        ):
            lines -= (node.end_lineno or node.lineno) - node.lineno + 1
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)}: {lines} lines"
