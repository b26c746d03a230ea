"""The package's import rules, read from the source (pure Python, no backend).

Packages import downwards only: `ops`/`images` <- `layers` <- `models` <-
(`augment`, `convert`, `data`, `training`, `metrics`, `export`, `visualize`)
<- `bench` <- `cli`, with the few sideways imports the design names
(training uses the augmentation pipe, the pickle converter and the data).
Function-level imports count: a cycle through them is still a cycle.
"""

import ast
import collections
import pathlib
import subprocess
import sys

import keras
import pytest

from tests.testing import REPO_ROOT
from tests.testing import python_env

PACKAGE = pathlib.Path(REPO_ROOT) / "keras_afgan"
RANK = {"ops": 0, "images": 0, "cpu_tuning": 0, "timing": 0, "layers": 1, "models": 2,
        "augment": 3, "convert": 3, "data": 3, "training": 3, "metrics": 3, "export": 3,
        "visualize": 3, "bench": 4, "reference_bench": 4, "study": 4, "cli": 5}
SIDEWAYS = {("training", "augment"), ("training", "convert"), ("training", "data"),
            ("metrics", "data")}
TOOLS = ("bench", "convert", "dataset", "export", "generate", "metrics", "spectra", "study",
         "train", "video")


def _modules():
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _import_graph():
    """`{module: {imported keras_afgan module, ...}}`, every import statement."""
    modules = _modules()
    graph = collections.defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("keras_afgan"):
                targets = [f"{node.module}.{a.name}" for a in node.names]
                targets = [t if t in modules else node.module for t in targets]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("keras_afgan")]
            else:
                continue
            for target in targets:
                while target not in modules:
                    target = target.rpartition(".")[0]
                if target != name:
                    graph[name].add(target)
    return modules, graph


def _package(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_package_has_a_rank():
    subpackages = {_package(m) for m in _modules()} - {None}
    assert subpackages == set(RANK)


def test_no_upward_imports():
    _, graph = _import_graph()
    upward = sorted(
        f"{a} imports {b}" for a, targets in graph.items() for b in targets
        if _package(a) and _package(b) and _package(a) != _package(b)
        and RANK[_package(b)] >= RANK[_package(a)]
        and (_package(a), _package(b)) not in SIDEWAYS)
    assert not upward, upward


def test_no_import_cycles():
    modules, graph = _import_graph()
    # A package's __init__ only re-exports its own modules: it is no link of a cycle.
    inits = {name for name, path in modules.items() if path.name == "__init__.py"}
    state, stack, cycles = {}, [], []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph[module] - inits):
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(set(modules) - inits):
        if module not in state:
            visit(module)
    assert not cycles, cycles


def test_the_checker_sees_a_cycle_and_an_upward_import(monkeypatch):
    """The two checks above fail on a graph that has what they look for."""
    fake = {"keras_afgan.layers.a": {"keras_afgan.models.b"},
            "keras_afgan.models.b": {"keras_afgan.layers.a"}}
    monkeypatch.setattr(sys.modules[__name__], "_import_graph", lambda: (
        {m: pathlib.Path(m) for m in fake}, collections.defaultdict(set, fake)))
    with pytest.raises(AssertionError, match="keras_afgan.layers.a imports keras_afgan.models.b"):
        test_no_upward_imports()
    with pytest.raises(AssertionError, match="keras_afgan.layers.a"):
        test_no_import_cycles()


@pytest.mark.skipif(keras.config.backend() != "tensorflow",
                    reason="flag parsing runs before any backend code: checked in one job")
@pytest.mark.parametrize("tool", TOOLS)
def test_every_tool_answers_help(tool):
    """`python -m keras_afgan.cli.<tool> --help` prints its flags and exits 0."""
    result = subprocess.run([sys.executable, "-m", f"keras_afgan.cli.{tool}", "--help"],
                            env=python_env(keras.config.backend()), cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    # absl lists the tool's own flags under its file's path.
    assert f"keras_afgan/cli/{tool}.py:\n  --" in result.stdout, result.stdout[-2000:]
