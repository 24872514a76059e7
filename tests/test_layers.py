"""Layers and import cycles of the project's own modules (function-level imports count too).

Layers, low to high: ``datasets``, ``federation`` (transport) < ``algorithms`` < ``silo`` < ``arbiter``; the
CLI (``arbiter/cli.py``) is on top: it may import everything and nothing imports it. Protocol code
(``algorithms``) imports no transport or service code beyond the channel abstraction and the codec. No
module takes part in an import cycle (a package ``__init__`` re-exporting its own submodules excepted).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYER = {"datasets": 0, "federation": 0, "algorithms": 1, "silo": 2, "arbiter": 3}
CLI = "arbiter.cli"
PROTOCOL_MAY_USE = {"federation", "federation.channel", "federation.codec"}


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for pkg in LAYER:
        for path in (ROOT / pkg).rglob("*.py"):
            if path.name.endswith(("_pb2.py", "_pb2_grpc.py")):
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            mods[name] = path
    return mods


def _imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module → the project modules it imports (resolved to the longest known module name)."""

    def resolve(name: str) -> str | None:
        parts = name.split(".")
        while parts:
            if ".".join(parts) in mods:
                return ".".join(parts)
            parts.pop()
        return None

    edges: dict[str, set[str]] = {}
    for mod, path in mods.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            deps.update(t for t in map(resolve, names) if t is not None and t != mod)
        edges[mod] = deps
    return edges


def _layer(mod: str) -> int:
    return LAYER[mod.split(".")[0]]


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, deps in sorted(edges.items()):
        for dep in sorted(deps):
            if dep == CLI and mod != CLI:
                bad.append(f"{mod} imports the CLI")
            elif mod != CLI and _layer(dep) > _layer(mod):
                bad.append(f"{mod} imports {dep} (a higher layer)")
            elif mod.startswith("algorithms") and dep.startswith("federation") and dep not in PROTOCOL_MAY_USE:
                bad.append(f"protocol module {mod} imports transport module {dep}")
    return bad


def import_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), minus package re-exports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:  # recursion depth is bounded by the module count (~100)
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)

    def package(m: str) -> str:  # "algorithms.paillier.vector" -> "algorithms.paillier"
        return ".".join(m.split(".")[:2])

    return [c for c in found if len({package(m) for m in c}) > 1]


def test_no_module_imports_a_higher_layer() -> None:
    assert upward_imports(_imports(_modules())) == []


def test_no_import_cycles() -> None:
    assert import_cycles(_imports(_modules())) == []


def test_the_checks_catch_what_they_should() -> None:
    edges = {"federation.codec": {"algorithms.paillier.vector"}, "algorithms.paillier.vector": set(),
             "arbiter.runner": {"arbiter.evaluate"}, "arbiter.evaluate": {"arbiter.runner"},
             "silo.jobs": {"arbiter.cli"}, "arbiter.cli": {"silo.jobs"},
             "algorithms.psi": {"federation.grpc_transport"}, "federation.grpc_transport": set()}
    assert upward_imports(edges) == [
        "protocol module algorithms.psi imports transport module federation.grpc_transport",
        "federation.codec imports algorithms.paillier.vector (a higher layer)",
        "silo.jobs imports the CLI",
    ]
    assert sorted(import_cycles(edges)) == [["arbiter.cli", "silo.jobs"], ["arbiter.evaluate", "arbiter.runner"]]


def test_no_service_code_names_an_algorithm() -> None:
    """The silo, the arbiter and the transport ask the catalogue; only plug-ins name an algorithm."""
    from algorithms import catalogue

    names = catalogue.names()
    offenders = []
    for pkg in ("silo", "arbiter", "federation"):
        for path in (ROOT / pkg).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for name in names:
                if f'"{name}"' in text or f"'{name}'" in text:
                    offenders.append(f"{path.relative_to(ROOT)} names {name!r}")
            if re.search(r"""algorithm *(==|!=) *["']""", text):
                offenders.append(f"{path.relative_to(ROOT)} compares the algorithm with a name")
    assert offenders == []
