"""The package's structure: no import cycle, the core imports nothing of the applications, every module imports
on its own, and no module grows past ~500 lines."""
from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tracker"
# The tracker core (frame loop, networks, where they run) and what it may not import, not even inside a function.
CORE = ("tracker.core", "tracker.networks", "tracker.backends")
APPLICATIONS = ("tracker.apps", "tracker.eval", "tracker.training", "tracker.io")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its file (module level or inside functions)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    # The package's __init__ re-exports the public API: importing "tracker" itself is not a dependency edge.
    return {name: _imports(name, path, modules) - {"tracker"} for name, path in modules.items()}


def test_no_import_cycle_in_the_package():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append(" -> ".join(stack[stack.index(n):] + [n]))
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_core_imports_nothing_of_the_applications():
    bad = {m: sorted(n for n in deps if n.startswith(APPLICATIONS))
           for m, deps in _graph().items() if m.startswith(CORE)}
    bad = {m: deps for m, deps in bad.items() if deps}
    assert not bad, f"core modules importing applications: {bad}"
    assert len([m for m in _graph() if m.startswith(CORE)]) >= 15  # the check sees the whole core


def test_only_the_distributed_module_imports_ray():
    """Ray is an optional extra: one module imports it, inside a function, so the rest works without it."""
    importers = {}
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            if any(m == "ray" or m.startswith("ray.") for m in mods):
                importers.setdefault(name, []).append(node.col_offset)
    assert set(importers) == {"tracker.eval.distributed"}
    assert all(col > 0 for col in importers["tracker.eval.distributed"])  # not at module level


def test_the_layout_check_finds_a_cycle(tmp_path, monkeypatch):
    """The graph above is not vacuous: two modules importing each other (one inside a function) show up."""
    pkg = tmp_path / "tracker"
    (pkg / "core").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "core" / "__init__.py").write_text("")
    (pkg / "core" / "a.py").write_text("from . import b\n")
    (pkg / "core" / "b.py").write_text("def f():\n    from .a import x\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", pkg)
    assert _graph()["tracker.core.b"] == {"tracker.core.a"} and _graph()["tracker.core.a"] == {"tracker.core.b"}
    with pytest.raises(AssertionError, match="import cycles"):
        test_no_import_cycle_in_the_package()


def test_no_module_past_500_lines():
    long = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > 500}
    assert not long, f"modules past 500 lines: {long}"


@pytest.mark.slow
def test_every_module_imports_on_its_own_and_the_core_loads_no_application():
    """Each module in a fresh interpreter: it imports (no cycle that only shows at run time), and after a core
    module's import no application module is loaded."""
    code = ("import importlib, sys; importlib.import_module(sys.argv[1]); "
            f"print(' '.join(m for m in sys.modules if m.startswith({APPLICATIONS!r})))")

    def run(name: str) -> tuple[str, subprocess.CompletedProcess]:
        return name, subprocess.run([sys.executable, "-c", code, name], capture_output=True, text=True, timeout=300)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, sorted(_modules())))
    failed = {name: p.stderr.strip().splitlines()[-1:] for name, p in results if p.returncode}
    assert not failed, f"modules that do not import on their own: {failed}"
    loaded = {name: p.stdout.split() for name, p in results if name.startswith(CORE) and p.stdout.strip()}
    assert not loaded, f"core modules that load applications: {loaded}"
