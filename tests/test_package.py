"""The package's layout: every module importable by its dotted name, the API names intact."""

import importlib
import pkgutil
import subprocess
import sys
import types

from conftest import subprocess_env

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
