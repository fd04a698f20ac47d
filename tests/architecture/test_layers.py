"""The layering rule of docs/architecture.md, checked on the source (no imports executed).

Every ``.py`` file under ``kfp_cicd/``, ``components/`` and ``pipelines/`` (a component's own
``tests/`` folder aside: it is not installed) is parsed with :mod:`ast` and mapped to the module name
it installs as (``setup.py``'s ``package_dir``:
``components/X/y.py`` -> ``kfp_cicd.components.X.y``, ``pipelines/y.py`` -> ``kfp_cicd.pipelines.y``).
Its imports, those inside functions included, give the project's module import graph. The test
fails when an import runs against the layers (app -> pipelines -> components -> library), when a
component imports another component (except the one documented exception), or when the graph has a
cycle.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Source folder -> the package it installs as (setup.py's package_dir, plus kfp_cicd itself).
SOURCE_ROOTS = {
    "kfp_cicd": "kfp_cicd",
    "components": "kfp_cicd.components",
    "pipelines": "kfp_cicd.pipelines",
}

#: The application: entry points that drive everything below them.
APP_MODULES = (
    "kfp_cicd.cli",
    "kfp_cicd.local_run",
    "kfp_cicd.compiler",
    "kfp_cicd.orchestration",
    "kfp_cicd.run_summary",
    "kfp_cicd.console",
    "kfp_cicd.headlines",
    "kfp_cicd.run_page",
    "kfp_cicd.task_capture",
)
PIPELINES = "kfp_cicd.pipelines"
COMPONENTS = "kfp_cicd.components"

#: The package kfp_cicd.components itself (components/__init__.py) is the components layer's public face,
#: the suite of ops users import: it may import every component (lazily); no component may import it.

#: The one allowed dependency between components (docs/architecture.md, "The exception"):
#: train_pytorchjob launches the train component's runtime (node_main, TrainingConfig) on a PyTorchJob.
ALLOWED_COMPONENT_IMPORTS = {("train_pytorchjob", "train")}

LAYER_RANK = {"library": 0, "component": 1, "pipelines": 2, "app": 3}


@dataclass(frozen=True)
class Import:
    """One import statement: who imports which project module, where, and whether only for typing."""

    importer: str
    imported: str
    path: Path
    line: int
    typing_only: bool

    def __str__(self) -> str:
        return f"{self.path.relative_to(REPO_ROOT)}:{self.line} imports {self.imported}"


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def module_name(path: Path) -> str:
    """The installed module name of a source file (``__init__.py``: its package)."""
    relative = path.relative_to(REPO_ROOT)
    parts = [SOURCE_ROOTS[relative.parts[0]], *relative.parts[1:-1]]
    if relative.name != "__init__.py":
        parts.append(relative.stem)
    return ".".join(parts)


def source_files() -> list[Path]:
    """The installed source: every .py file of the three roots, a component's own ``tests/`` aside."""
    return sorted(
        path
        for root in SOURCE_ROOTS
        for path in (REPO_ROOT / root).rglob("*.py")
        if not {"__pycache__", "tests"} & set(path.relative_to(REPO_ROOT).parts)
    )


def layer_of(module: str) -> str:
    if any(_within(module, app) for app in APP_MODULES):
        return "app"
    if _within(module, PIPELINES):
        return "pipelines"
    if _within(module, COMPONENTS):
        return "component"
    return "library"


def component_of(module: str) -> str | None:
    """``kfp_cicd.components.train.vertex`` -> ``train``; None outside a component."""
    parts = module.split(".")
    return parts[2] if _within(module, COMPONENTS) and len(parts) > 2 else None


def _type_checking_lines(tree: ast.Module) -> set[int]:
    """Lines of the statements under ``if TYPE_CHECKING:`` (typing-only imports)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.body:
                lines.update(range(statement.lineno, (statement.end_lineno or statement.lineno) + 1))
    return lines


def _resolve(
    node: ast.Import | ast.ImportFrom,
    importer: str,
    is_package: bool,
    modules: set[str],
    siblings: dict[str, str],
) -> set[str]:
    """The project modules an import statement loads (``from a import b``: ``a.b`` if it is a
    module, else ``a``); bare names of sibling files count for scripts run by path."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
        return {siblings.get(name) or name for name in names if name in modules or name in siblings}
    base = node.module or ""
    if node.level:  # relative: resolved against the importer's package
        package = importer.split(".") if is_package else importer.split(".")[:-1]
        anchor = package[: len(package) - (node.level - 1)]
        base = ".".join([*anchor, *([base] if base else [])])
    elif base in siblings:
        return {siblings[base]}
    found = set()
    for alias in node.names:
        submodule = f"{base}.{alias.name}" if base else alias.name
        if submodule in modules:
            found.add(submodule)
        elif base in modules:
            found.add(base)
    return found


def collect_imports() -> tuple[set[str], list[Import]]:
    """Every project module, and every import of a project module by one."""
    files = source_files()
    modules = {module_name(path) for path in files}
    imports: list[Import] = []
    for path in files:
        importer = module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        typing_lines = _type_checking_lines(tree)
        # Scripts run by path (the TFDV jobs) import the modules beside them by their bare name.
        siblings = {
            p.stem: module_name(p) for p in path.parent.glob("*.py") if p != path and p.name != "__init__.py"
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in sorted(_resolve(node, importer, path.name == "__init__.py", modules, siblings)):
                    if target != importer:
                        imports.append(
                            Import(importer, target, path, node.lineno, node.lineno in typing_lines)
                        )
    return modules, imports


def layer_violation(edge: Import) -> str | None:
    """Why an import breaks the layering, or None."""
    source, target = layer_of(edge.importer), layer_of(edge.imported)
    if LAYER_RANK[target] > LAYER_RANK[source]:
        return f"{source} must not import {target}"
    if source == target == "component":
        if edge.importer == COMPONENTS:  # the suite's public face (components/__init__.py) builds every op
            return None
        if edge.imported == COMPONENTS:
            return "a component must not import the suite kfp_cicd.components (a sibling import in disguise)"
        own, other = component_of(edge.importer), component_of(edge.imported)
        if own != other and other is not None and (own, other) not in ALLOWED_COMPONENT_IMPORTS:
            return f"component {own} must not import component {other}"
    return None


def find_cycles(modules: set[str], edges: list[Import]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {module: set() for module in modules}
    for edge in edges:
        graph[edge.importer].add(edge.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


@pytest.fixture(scope="module")
def project() -> tuple[set[str], list[Import]]:
    return collect_imports()


def test_the_source_maps_to_the_installed_layout(project: tuple[set[str], list[Import]]) -> None:
    modules, _ = project
    assert {
        "kfp_cicd.errors",
        "kfp_cicd.components.train.component",
        "kfp_cicd.pipelines.parameters",
        "kfp_cicd.components",
        "kfp_cicd.cli",
    } <= modules
    assert layer_of("kfp_cicd.cli.run") == "app" and layer_of("kfp_cicd.pipelines.parameters") == "pipelines"
    assert layer_of("kfp_cicd.components.train.vertex") == "component"
    assert layer_of("kfp_cicd.registry.client") == "library"


def test_imports_run_one_way(project: tuple[set[str], list[Import]]) -> None:
    """app -> pipelines -> components -> library; a component imports no other component."""
    _, edges = project
    problems = sorted(f"{edge} ({why})" for edge in edges if (why := layer_violation(edge)))
    if problems:
        pytest.fail(
            "imports against the layers (docs/architecture.md):\n" + "\n".join(problems), pytrace=False
        )


def test_there_is_no_import_cycle(project: tuple[set[str], list[Import]]) -> None:
    """No module imports itself back, directly or through others, at run time (typing-only imports aside)."""
    modules, edges = project
    cycles = find_cycles(modules, [edge for edge in edges if not edge.typing_only])
    if cycles:
        pytest.fail("import cycles:\n" + "\n".join(" <-> ".join(cycle) for cycle in cycles), pytrace=False)


def test_the_checks_catch_what_they_guard_against() -> None:
    """The rule and the cycle finder on made-up imports: each kind of violation is reported."""
    here = REPO_ROOT / "kfp_cicd" / "x.py"

    def edge(importer: str, imported: str) -> Import:
        return Import(importer, imported, here, 1, False)

    assert layer_violation(edge("kfp_cicd.serving.model_source", "kfp_cicd.components.register.x"))
    assert layer_violation(edge("kfp_cicd.errors", "kfp_cicd.cli"))
    assert layer_violation(edge("kfp_cicd.components.monitor.a", "kfp_cicd.components.validate_data.b"))
    assert layer_violation(edge("kfp_cicd.components.deploy.a", "kfp_cicd.pipelines.parameters"))
    assert layer_violation(edge("kfp_cicd.pipelines.training_pipeline", "kfp_cicd.compiler"))
    assert not layer_violation(edge("kfp_cicd.components.train_pytorchjob.a", "kfp_cicd.components.train.b"))
    assert layer_violation(edge("kfp_cicd.components.train.a", "kfp_cicd.components.train_pytorchjob.b"))
    assert not layer_violation(edge("kfp_cicd.cli.run", "kfp_cicd.components.deploy.a"))
    assert not layer_violation(edge("kfp_cicd.components", "kfp_cicd.components.deploy.component"))
    assert layer_violation(edge("kfp_cicd.components.deploy.a", "kfp_cicd.components"))
    assert layer_violation(edge("kfp_cicd.serving.model_source", "kfp_cicd.components"))
    assert find_cycles({"a", "b", "c"}, [edge("a", "b"), edge("b", "c"), edge("c", "a")]) == [["a", "b", "c"]]
    assert find_cycles({"a", "b"}, [edge("a", "b")]) == []
