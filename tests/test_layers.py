"""The package's layers, kept by parsing every module's imports (those inside functions too).

A module may import its own package and any lower layer, never a higher layer, never a peer of its own
layer, never a private name (``_x``) of another package; and no two modules may import each other, directly or
through others.
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1] / "rgnet"

#: Bottom to top. A unit is a top-level module or sub-package of rgnet; "rgnet" is the package's __init__.
LAYERS = [
    {"errors", "progress"},                  # ground: the exceptions; progress lines for logs
    {"theory", "config"},                    # ground: what a level is, what a run is; no registry
    {"store", "tasks", "models"},            # one run file; the task and model registries
    {"catalog", "engine", "align"},          # many runs; the training core; symmetries of a network
    {"imp", "verdicts", "rg"},               # the IMP protocol; verdict rules; RG analysis
    {"universality", "sweep", "plot", "info"},  # classes and their scores; whole experiments; figures; rgnet info
    {"cli", "rgnet"},                        # entry points
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = p.relative_to(ROOT.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


MODULES = _modules()


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "rgnet"


def _imports(module: str, modules: dict[str, Path]) -> list[tuple[str, str | None, int]]:
    """(imported rgnet module, imported name or None, line) for every import statement of ``module``."""
    path = modules[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names if a.name.split(".")[0] == "rgnet"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != "rgnet":
                continue
            for a in node.names:
                sub = f"{source}.{a.name}"
                out.append((sub, None, node.lineno) if sub in modules else (source, a.name, node.lineno))
    return out


def _edges(modules: dict[str, Path] = MODULES):
    for module in modules:
        for target, name, line in _imports(module, modules):
            if target != module:
                yield module, target, name, line


def test_every_unit_has_a_layer():
    assert {_unit(m) for m in MODULES} <= set(LAYER), "a new top-level module needs a place in LAYERS"


def test_no_import_cycle():
    graph = nx.DiGraph((a, b) for a, b, _, _ in _edges())
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert cycles == []


def test_imports_point_down():
    wrong = [f"{a}:{line} imports {b} ({_unit(a)} is layer {LAYER[_unit(a)]}, {_unit(b)} layer {LAYER[_unit(b)]})"
             for a, b, _, line in _edges()
             if _unit(a) != _unit(b) and LAYER[_unit(b)] >= LAYER[_unit(a)]]
    assert wrong == []


def test_no_private_name_across_packages():
    def package(m):
        return m if MODULES[m].name == "__init__.py" else m.rpartition(".")[0]

    wrong = [f"{a}:{line} imports {b}{'.' + name if name else ''}" for a, b, name, line in _edges()
             if package(a) != package(b) and (name or "").startswith("_") or
             _unit(a) != _unit(b) and any(p.startswith("_") and p != "__init__" for p in b.split("."))]
    assert wrong == []


@pytest.mark.parametrize("bad", ["upward", "cycle"])
def test_the_checks_can_fail(bad, tmp_path):
    """The rules catch what they are for: a store module importing the task registry, and a cycle."""
    a = "from rgnet.tasks import task_label\n" if bad == "upward" else "import rgnet.store.b\n"
    (tmp_path / "a.py").write_text(a)
    (tmp_path / "b.py").write_text("import rgnet.store.a\n")
    edges = list(_edges({**MODULES, "rgnet.store.a": tmp_path / "a.py", "rgnet.store.b": tmp_path / "b.py"}))
    if bad == "cycle":
        graph = nx.DiGraph((a, b) for a, b, _, _ in edges)
        assert any(len(c) > 1 for c in nx.strongly_connected_components(graph))
    else:
        assert any(a == "rgnet.store.a" and LAYER[_unit(b)] >= LAYER[_unit(a)] for a, b, _, _ in edges)


def test_layers_are_disjoint():
    assert all(not (x & y) for x, y in itertools.combinations(LAYERS, 2))


#: What may be imported inside a function (slow to import, and not needed by `import rgnet`, `rgnet --help` or the
#: analysis commands): torch and what imports it, scipy, matplotlib, networkx, dask, tqdm, mnist1d. The CLI loads
#: each subcommand's modules when it runs.
LAZY = ("torch", "torchvision", "scipy", "matplotlib", "networkx", "dask", "distributed", "tqdm", "mnist1d",
        "rgnet.imp", "rgnet.engine", "rgnet.models")


def test_imports_inside_functions_are_the_slow_ones():
    wrong = []
    for module, path in MODULES.items():
        if module == "rgnet.cli":
            continue
        for fn in ast.walk(ast.parse(path.read_text())):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
                wrong += [f"{module}:{node.lineno} imports {n} inside {fn.name}" for n in names
                          if not any(n == m or n.startswith(m + ".") for m in LAZY)]
    assert wrong == []
