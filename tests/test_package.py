"""The package's layout: every module importable by its dotted name, the API names intact."""

import importlib
import pkgutil
import subprocess
import sys
import types

from helpers import subprocess_env

import vidpred


def test_every_module_is_reachable_by_its_dotted_name():
    """`import vidpred.X as m` binds vidpred.X, which was the *function* for train, render and
    evaluate when their modules had those names: m.__file__ failed."""
    names = [
        m.name
        for m in pkgutil.walk_packages(vidpred.__path__, "vidpred.")
        if m.name != "vidpred.__main__"
    ]  # importing it runs the CLI
    assert {"vidpred.training", "vidpred.rendering", "vidpred.evaluation"} <= set(names)
    # A fresh interpreter: `import X as m` in the statement form the issue names.
    code = "\n".join(f"import {name} as m; print(m.__file__)" for name in names)
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-500:]
    assert all(line.endswith(".py") for line in result.stdout.split()), result.stdout
    for name in names:
        module = importlib.import_module(name)
        parent, _, leaf = name.rpartition(".")
        assert getattr(importlib.import_module(parent), leaf) is module, name


def test_the_api_names_are_functions_and_classes():
    from vidpred import Predictor, evaluate, read_video, render, train

    for thing in (evaluate, read_video, render, train):
        assert isinstance(thing, types.FunctionType), thing
    assert isinstance(Predictor, type)
    assert render.__module__ == "vidpred.rendering" and train.__module__ == "vidpred.training"


def _imports(path, module: str) -> set[str]:
    """Returns the vidpred modules ``path`` (the module ``module``) imports, at any level of
    the file: function-level imports count."""
    import ast

    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            parts = package[: len(package) - node.level + 1]
            target = ".".join(parts + ([node.module] if node.module else []))
            found |= {target} | {f"{target}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vidpred"):
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


def test_imports_point_one_way():
    """No two vidpred modules import each other, directly or around a loop, counting the
    imports inside functions (they hid two loops: outputs <-> weights, precision <->
    tuning)."""
    from pathlib import Path

    root = Path(vidpred.__file__).parent
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    edges = {m: (_imports(p, m) & modules.keys()) - {m} for m, p in modules.items()}
    # Depth-first search for a path back to where it started.
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in sorted(edges[module]):
            if state.get(target) == "open":
                loop = trail[trail.index(target) :] + [target] if target in trail else [target]
                raise AssertionError(f"import loop: {' -> '.join(loop)}")
            if target not in state:
                visit(target, trail + [target])
        state[module] = "done"

    for module in sorted(modules):
        if module not in state:
            visit(module, [module])


def test_no_module_holds_two_rooms():
    """Issue 25's measure of a module that does one thing: at most 700 lines."""
    from pathlib import Path

    root = Path(vidpred.__file__).parent
    sizes = {
        p.relative_to(root).as_posix(): len(p.read_text().splitlines()) for p in root.rglob("*.py")
    }
    assert max(sizes.values()) <= 700, {name: n for name, n in sizes.items() if n > 700}
