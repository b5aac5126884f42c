"""No module of heapseg imports another that imports it back, directly or through a loop.

Every ``import`` counts: at module level, inside functions, and under ``if TYPE_CHECKING:``
(a loop hidden in a function or in type hints is still a loop in the design). Importing
``a.b.c`` also runs the faces ``a`` and ``a.b``; those implicit imports are not counted, or
every package whose ``__init__`` re-exports its modules would be a loop.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import heapseg

PACKAGE = Path(heapseg.__file__).parent

#: Loops being taken apart elsewhere: allowed while they are exactly these modules (none now).
KNOWN_LOOPS: list[frozenset[str]] = []


@dataclass(frozen=True)
class Edge:
    """One import statement: ``source`` imports ``target`` at ``line``."""

    source: str
    target: str
    line: int


def module_names(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package at ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join([*base, node.module] if node.module else base)


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The deepest module of the package that ``name`` is, or lives in."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in modules:
            return ".".join(parts)
        parts.pop()
    return None


def imports_of(module: str, modules: dict[str, Path]) -> list[Edge]:
    """Every import of another module of the package that ``module`` makes, anywhere in it."""
    path = modules[module]
    edges = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, path.name == "__init__.py", node)
            # ``from a import b`` imports the module ``a.b`` when there is one, else names of ``a``.
            names = [f"{base}.{alias.name}" for alias in node.names] or [base]
        else:
            continue
        for name in names:
            target = _owner(name, modules)
            if target is None or target == module:
                continue
            edge = Edge(module, target, node.lineno)
            if edge not in edges:
                edges.append(edge)
    return edges


def import_graph(root: Path) -> list[Edge]:
    modules = module_names(root)
    return [edge for module in modules for edge in imports_of(module, modules)]


def loops(edges: list[Edge]) -> list[set[str]]:
    """The groups of modules that reach each other through imports (Tarjan's components)."""
    following: dict[str, set[str]] = {}
    for edge in edges:
        following.setdefault(edge.source, set()).add(edge.target)
        following.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for after in sorted(following[node]):
            if after not in index:
                visit(after)
                low[node] = min(low[node], low[after])
            elif after in on_stack:
                low[node] = min(low[node], index[after])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(following):
        if node not in index:
            visit(node)
    return found


def describe(loop: set[str], edges: list[Edge], modules: dict[str, Path]) -> str:
    inside = sorted(
        (e for e in edges if e.source in loop and e.target in loop),
        key=lambda e: (e.source, e.line),
    )
    lines = [
        f"  {modules[e.source].relative_to(PACKAGE.parent)}:{e.line} imports {e.target}"
        for e in inside
    ]
    return "loop of " + ", ".join(sorted(loop)) + ":\n" + "\n".join(lines)


def test_no_module_imports_another_that_imports_it_back():
    modules = module_names(PACKAGE)
    edges = import_graph(PACKAGE)
    unknown = [loop for loop in loops(edges) if frozenset(loop) not in KNOWN_LOOPS]
    assert not unknown, "\n".join(describe(loop, edges, modules) for loop in unknown)


def test_the_check_sees_loops_through_functions_type_hints_and_relative_imports(tmp_path):
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "from pkg.a import A\n",
        "a.py": "class A:\n    def b(self):\n        from pkg.sub import b\n        return b\n",
        "sub/__init__.py": "",
        "sub/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..c import C\n",
        "c.py": "import pkg.a\n",
        "d.py": "from pkg import a\nfrom . import c\n",
    }
    for name, text in files.items():
        (root / name).write_text(text)
    edges = import_graph(root)
    assert {(e.source, e.target) for e in edges} == {
        ("pkg", "pkg.a"),
        ("pkg.a", "pkg.sub.b"),
        ("pkg.sub.b", "pkg.c"),
        ("pkg.c", "pkg.a"),
        ("pkg.d", "pkg.a"),
        ("pkg.d", "pkg.c"),
    }
    assert loops(edges) == [{"pkg.a", "pkg.sub.b", "pkg.c"}]
