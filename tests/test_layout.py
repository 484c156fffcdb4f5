"""edgefer's shape: no import circles (imports inside functions count), and a device path (runtime,
detection, the live loop) that reaches no training, pruning, profiling, sweep or export code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "edgefer"
DEVICE_PATH = ("edgefer.runtime", "edgefer.detect", "edgefer.pipeline", "edgefer.live")
NOT_ON_DEVICE = ("edgefer.train", "edgefer.prune", "edgefer.profile", "edgefer.sweep", "edgefer.convert")
CONVERT = PACKAGE.parent / "convert"   # the top-level folder that installs as edgefer.convert
HEAVY = ("tensorflow", "keras", "mtcnn", "tf2onnx", "onnx", "optuna", "matplotlib", "ray", "jax")
# the only device-path files that may name a heavy package: the Keras backend (for .keras files, behind
# the train extra) and LiteRT's last fallback to TensorFlow's bundled interpreter
HEAVY_ALLOWED = {"edgefer.runtime.keras": {"keras"}, "edgefer.runtime.litert": {"tensorflow"}}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[0] == "convert":
        parts = ["edgefer", *parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """module -> the edgefer/convert modules it imports anywhere (top level or inside functions), and
    module -> the third-party top-level packages it imports."""
    files = {module_name(p): p for p in [*PACKAGE.rglob("*.py"), *CONVERT.rglob("*.py")]}
    known = set(files)
    graph, external = {}, {}
    for name, path in files.items():
        edges, outside = set(), set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module
                           for alias in node.names]
            # a module run as a child process (`python -m edgefer.x.y`) is a dependency too: a string constant
            # that names a module counts as an import of it
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in known:
                targets = [node.value]
            for target in targets:
                root = target.split(".")[0]
                if root == "edgefer":
                    edges.add(target)
                else:
                    outside.add(root)
        graph[name], external[name] = edges - {name}, outside
    return graph, external


def with_parents(module: str) -> list[str]:
    """Importing a.b.c also runs a/__init__ and a/b/__init__."""
    parts = module.split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts) + 1)]


def reachable(graph: dict[str, set[str]], starts) -> set[str]:
    seen, todo = set(), [m for s in starts for m in with_parents(s)]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        for target in graph.get(module, ()):
            todo.extend(with_parents(target))
    return seen


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_imports_inside_functions():
    graph, external = import_graph()
    assert "edgefer.train.callbacks" in graph["edgefer.train.loop"]        # imported inside _fit
    assert "edgefer.profile.workers" in graph["edgefer.profile.run"]       # run as `python -m` in a child
    assert "edgefer.runtime.timing" in graph["edgefer.convert.export"] and not any(
        m.startswith("edgefer.profile") for m in graph["edgefer.convert.export"])   # export's latency child is the runtime's
    assert "keras" in external["edgefer.train.loop"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles():
    graph, _ = import_graph()
    assert cycles(graph) == []


@pytest.mark.parametrize("start", DEVICE_PATH)
def test_the_device_path_reaches_no_training_code(start):
    graph, external = import_graph()
    reached = reachable(graph, [start] + [m for m in graph if m.startswith(start + ".")])
    forbidden = sorted(m for m in reached if m.startswith(NOT_ON_DEVICE))
    assert forbidden == [], f"{start} reaches {forbidden}"
    for module in sorted(reached):
        heavy = external.get(module, set()) & set(HEAVY)
        assert heavy <= HEAVY_ALLOWED.get(module, set()), f"{module} imports {sorted(heavy)}"


def test_result_types_are_leaves():
    """The containers other modules share import nothing of edgefer but other leaves."""
    graph, _ = import_graph()
    assert graph["edgefer.detect.types"] == set()
    leaves = {"edgefer.detect.types", "edgefer.live.config", "edgefer.labels", "edgefer.scaling", "edgefer.media",
              "edgefer.machine", "edgefer.extras", "edgefer.tfenv", "edgefer.train.results", "edgefer.errors",
              "edgefer.options", "edgefer.pipeline.config", "edgefer.pipeline.face", "edgefer.bulk.config"}
    for leaf in sorted(leaves):
        assert graph[leaf] <= leaves, (leaf, graph[leaf])


def test_the_wheel_lists_every_package_and_installs_convert_inside_edgefer():
    """pyproject's explicit package list (convert/ maps to edgefer.convert) names every package folder."""
    tomllib = pytest.importorskip("tomllib")   # Python 3.11+
    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {module_name(p) for p in [*PACKAGE.rglob("__init__.py"), *CONVERT.glob("__init__.py")]}
    assert set(project["packages"]) == folders
    assert project["package-dir"] == {"edgefer.convert": "convert"}
