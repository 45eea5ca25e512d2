"""The package is layered: every area imports only downward, and no module imports itself back.

Read from the source with `ast` (nothing is imported), function-level imports included, so an import
that only works because it is deferred into a function still counts. Layers, bottom to top:

    0  errors io layout progress resources cli_utils _version safe_yaml outdir processes   (shared facts, no area)
    1  data, executors
    2  engine (uses data), models (uses data)
    3  generate (uses engine), harness (uses models: protocol, loading, registry, checkpoint only)
    4  reports (uses harness)
    5  cli, demo, the package face (__init__)

A module may import its own area and any lower layer; never a higher one, never a sibling area of its
own layer (engine <-> models, generate <-> harness).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "corrupt_bench"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE
BOTTOM = {"errors", "io", "layout", "progress", "resources", "cli_utils", "_version", "safe_yaml", "outdir", "processes"}
LAYERS = {"data": 1, "executors": 1, "engine": 2, "models": 2, "generate": 3, "harness": 3, "reports": 4}
TOP = {"cli", "demo", "__init__"}
# what the harness may take from models: the protocol and the one way in, never an implementation
HARNESS_MAY_USE = {"models", "models.protocol", "models.loading", "models.registry", "models.checkpoint"}


def _modules() -> dict[str, Path]:
    """Dotted names (without the package prefix) of every module of the package."""
    found = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The package module an absolute dotted import refers to (longest known prefix), or None."""
    if name == PACKAGE:
        return "__init__"
    if not name.startswith(PACKAGE + "."):
        return None
    parts = name[len(PACKAGE) + 1 :].split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


def _imports(module: str, path: Path) -> set[str]:
    """Every package module `module` imports, at any depth of its code (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    here = module.split(".") if module != "__init__" else []
    out: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here if is_package else here[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join([PACKAGE, *base, *([node.module] if node.module else [])])
            else:
                prefix = node.module or ""
            names = [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module":
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                names = [node.args[0].value]
        for name in names:
            target = _resolve(name)
            if target is not None and target != module:
                out.add(target)
    return out


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _area(module: str) -> str:
    return module.split(".")[0]


def _layer(module: str) -> int:
    area = _area(module)
    if module in BOTTOM or area in BOTTOM:
        return 0
    if module in TOP:
        return 5
    return LAYERS[area]


def test_every_module_has_a_layer():
    unplaced = [m for m in MODULES if m not in TOP and _area(m) not in BOTTOM | set(LAYERS)]
    assert not unplaced, f"modules outside the layer map (add them to a layer): {unplaced}"


def test_no_import_circle():
    """Tarjan's strongly connected components over the whole package: none larger than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH.get(v, ()):
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
                circles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert not circles, "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m not in TOP))
def test_imports_go_downward(module):
    upward = []
    for target in sorted(GRAPH[module]):
        same_area = _area(target) == _area(module) or _layer(target) == _layer(module) == 0
        if same_area:  # inside one area (or among the shared bottom modules) only circles are forbidden
            continue
        if _layer(target) >= _layer(module):
            upward.append(target)
    assert not upward, f"{module} (layer {_layer(module)}) imports {upward}"


def test_harness_uses_no_model_implementation_and_no_generator():
    for module in (m for m in MODULES if _area(m) == "harness"):
        bad = [t for t in GRAPH[module] if _area(t) == "generate" or (_area(t) == "models" and t not in HARNESS_MAY_USE)]
        assert not bad, f"{module} imports {bad}"


def test_models_and_generate_never_import_the_harness():
    for module in (m for m in MODULES if _area(m) in ("models", "generate")):
        bad = [t for t in GRAPH[module] if _area(t) == "harness"]
        assert not bad, f"{module} imports {bad}"


def test_the_checker_sees_function_level_and_relative_imports(tmp_path):
    source = "import os\n\ndef f():\n    from corrupt_bench.layout import CLEAN\n    from . import io\n    return CLEAN, io\n"
    path = tmp_path / "probe.py"
    path.write_text(source)
    assert _imports("engine.probe", path) == {"layout", "engine"}  # `from . import io` is the engine package
    assert _imports("data.probe", path) == {"layout", "data"}
