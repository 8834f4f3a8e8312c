"""The import graph of ``loader``, read from the code (ast), for the layering and the light
``--help`` tests: nothing here is a hand list that could fall behind the code."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "loader"


@dataclass(frozen=True)
class Import:
    module: str
    """The imported module, absolute (``loader.warehouse.db``, ``sqlalchemy.engine``)."""
    top_level: bool
    """Run when the importing module is imported (not inside a function, not TYPE_CHECKING)."""
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of the package, by its dotted name."""
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _resolve(importer: str, path: Path, node: ast.ImportFrom) -> list[str]:
    if node.level == 0:
        base = node.module or ""
    else:
        package = importer.split(".") if path.name == "__init__.py" else importer.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, node.module] if node.module else package)
    names = []
    for alias in node.names:
        candidate = f"{base}.{alias.name}"
        # `from . import commands` imports a module; `from .db import x` imports from one
        names.append(candidate if candidate in modules() else base)
    return names


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


@cache
def imports_of(name: str) -> tuple[Import, ...]:
    """What module ``name`` imports, with where."""
    path = modules()[name]
    found: list[Import] = []

    def visit(node: ast.AST, top_level: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend(Import(a.name, top_level, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                found.extend(
                    Import(m, top_level, child.lineno) for m in _resolve(name, path, child)
                )
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, False)
            elif isinstance(child, ast.If) and _type_checking(child):
                visit(child, False)
            else:
                visit(child, top_level)

    visit(ast.parse(path.read_text(encoding="utf-8")), True)
    return tuple(found)


def loaded_on_import(name: str) -> set[str]:
    """Every module importing ``name`` loads: its top-level imports, their parent packages,
    transitively within ``loader``; outside modules are named by their top package."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        if current not in modules():
            continue
        parts = current.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages
        todo += [i.module for i in imports_of(current) if i.top_level]
    return {m if m in modules() else m.split(".")[0] for m in seen}


def heavy_modules(heavy: tuple[str, ...]) -> set[str]:
    """The modules of ``loader`` whose import loads one of the ``heavy`` libraries."""
    return {name for name in modules() if loaded_on_import(name) & set(heavy)}
