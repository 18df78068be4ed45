"""The shape of the package: imports between inngest_do's modules form no circle.

Module-level imports must form a DAG (kernel -> runs -> flow/timers/store -> engine ->
client/api layer), and so must imports deferred into functions: a deferred import that
closes a circle only hides it. Imports under ``if TYPE_CHECKING:`` do not count (they
never run). The engine's collaborators are handed what they use, so they do not import
the engine at all, not even for annotations.
"""

from __future__ import annotations

import ast
import functools
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "inngest_do"

#: collaborators that get what they need passed in, never the Engine
NO_ENGINE = ("inngest_do.flow", "inngest_do.recovery", "inngest_do.driver",
             "inngest_do.queries", "inngest_do.event_table", "inngest_do.execution",
             "inngest_do.slots")


def _modules() -> dict[str, pathlib.Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = path
    return mods


def _is_type_checking(test: ast.expr) -> bool:
    return ((isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
            or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _targets(mod: str, is_pkg: bool, node: ast.Import | ast.ImportFrom,
             mods: dict[str, pathlib.Path]) -> set[str]:
    """The package's modules ``node`` imports (``from . import x`` names module ``x``)."""
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name in mods}
    if node.level:
        base = mod.split(".") if is_pkg else mod.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    out = set()
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        if sub in mods:
            out.add(sub)
        elif target in mods:
            out.add(target)
    return out


@functools.cache  # parsed once per mode for the whole module (no test changes it)
def import_graph(*, deferred: bool, type_checking: bool = False) -> dict[str, set[str]]:
    """Module -> the package modules it imports: at module level (``if``/``try`` bodies
    included), plus imports inside functions when ``deferred``, plus ``if TYPE_CHECKING``
    blocks when ``type_checking``."""
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        out: set[str] = set()

        def visit(stmts: list[ast.stmt], in_function: bool) -> None:
            for stmt in stmts:
                if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                    out.update(_targets(mod, is_pkg, stmt, mods))  # noqa: B023
                elif isinstance(stmt, ast.If):
                    if _is_type_checking(stmt.test) and not type_checking:
                        continue
                    visit(stmt.body, in_function)
                    visit(stmt.orelse, in_function)
                elif isinstance(stmt, ast.Try):
                    visit(stmt.body, in_function)
                    for handler in stmt.handlers:
                        visit(handler.body, in_function)
                    visit(stmt.orelse, in_function)
                    visit(stmt.finalbody, in_function)
                elif isinstance(stmt, (ast.With, ast.For, ast.While)):
                    visit(stmt.body, in_function)
                elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    if deferred:
                        visit(stmt.body, True)
                elif isinstance(stmt, ast.ClassDef):
                    visit(stmt.body, in_function)

        visit(ast.parse(path.read_text()).body, False)
        out.discard(mod)
        graph[mod] = out
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _describe(graph: dict[str, set[str]], found: list[list[str]]) -> str:
    lines = []
    for component in found:
        lines.append(f"a circle of {len(component)} modules:")
        members = set(component)
        lines += [f"  {m} -> {sorted(graph[m] & members)}" for m in component]
    return "\n".join(lines)


@pytest.mark.parametrize("deferred", [False, True], ids=["module_level", "with_deferred"])
def test_imports_form_no_circle(deferred: bool) -> None:
    graph = import_graph(deferred=deferred)
    found = cycles(graph)
    assert not found, _describe(graph, found)


@pytest.mark.parametrize("module", NO_ENGINE)
def test_collaborators_do_not_import_the_engine(module: str) -> None:
    graph = import_graph(deferred=True, type_checking=True)
    if module not in graph:
        pytest.skip(f"{module} does not exist")
    assert "inngest_do.engine" not in graph[module], (
        f"{module} imports inngest_do.engine: hand it what it needs instead")


#: the layer under the engine: state, its collaborators and the stores
BELOW_ENGINE = (*NO_ENGINE, "inngest_do.kernel", "inngest_do.runs", "inngest_do.storage",
                "inngest_do.storage.base", "inngest_do.storage.memory",
                "inngest_do.storage.sqlite")


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@pytest.mark.parametrize("module", BELOW_ENGINE)
def test_the_layer_under_the_engine_never_reaches_it(module: str) -> None:
    # kernel -> runs -> flow/recovery/event table/driver/queries/store -> engine -> client:
    # no import from below, direct or through another module, leads up to the engine.
    graph = import_graph(deferred=True)
    if module not in graph:
        pytest.skip(f"{module} does not exist")
    above = {"inngest_do.engine", "inngest_do.client", "inngest_do.testing",
             "inngest_do.worker"}
    assert not _reachable(graph, module) & above, (
        f"{module} reaches {sorted(_reachable(graph, module) & above)}")


def test_the_cycle_finder_finds_a_circle() -> None:
    # The checks above pass vacuously if cycles() never finds anything.
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
