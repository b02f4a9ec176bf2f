"""A house without circles: no import cycle inside posedenoise/ (lazy imports in function bodies included),
and every import points down or sideways along the floors that posedenoise/errors.py describes.

The graph is read from the source (ast), not from an interpreter, so an import that only runs in one branch
or one function counts as much as one at the top. `from PKG import NAME` is an arrow to PKG.NAME when that
is a module of the project, to nothing in the graph when PKG is a package that does not define NAME (a
compiled extension, posedenoise._C), else to PKG. kernels/ is installed as posedenoise.kernels.
"""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Bottom to top. A module belongs to the first floor one of whose names is the module or a package above it;
# a module that no floor names is a command (the top floor): cli, train, evaluate, ..., the package itself.
FLOORS = (
    ("base", ("posedenoise.errors", "posedenoise.install", "posedenoise.layout", "posedenoise.noise",
              "posedenoise.files", "posedenoise.memory", "posedenoise.metrics")),
    ("reference", ("posedenoise.reference",)),
    ("ops", ("posedenoise.ops", "posedenoise.kernels")),
    ("data", ("posedenoise.data",)),
    ("models", ("posedenoise.models",)),
    ("evaluation", ("posedenoise.evaluation", "posedenoise.sequences")),
    ("commands", ()),
)


def project_modules(root=ROOT, package="posedenoise", extra=(("kernels", "posedenoise.kernels"),)):
    """{dotted name: path} of every .py module under root/package (and root/kernels as posedenoise.kernels);
    a package's name maps to its __init__.py."""
    out = {}
    for folder, name in ((package, package),) + tuple(extra):
        base = root / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            parts = [name] + list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _defined_names(tree):
    """Names a module binds at its top level (defs, classes, assignments, imports)."""
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def import_graph(modules):
    """{module: {modules it imports anywhere in its source}}, restricted to `modules`."""
    trees = {name: ast.parse(path.read_text(), str(path)) for name, path in modules.items()}
    defined = {name: _defined_names(tree) for name, tree in trees.items()}

    def nearest(dotted):
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    graph = {}
    for name, tree in trees.items():
        is_package = modules[name].name == "__init__.py"
        here = name.split(".") if is_package else name.split(".")[:-1]
        arrows = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                arrows.update(nearest(a.name) for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(here[:len(here) - node.level + 1] + ([node.module] if node.module else [])) \
                    if node.level else node.module
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    if sub in modules:
                        arrows.add(sub)
                    elif (base in modules and modules[base].name == "__init__.py"
                          and alias.name not in defined[base] | {"*"}):
                        pass   # a package's submodule that is not Python source (a compiled extension)
                    else:
                        arrows.add(nearest(base))
            elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
                  in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)
                  and isinstance(node.args[0].value, str) and not node.args[0].value.startswith(".")):
                arrows.add(nearest(node.args[0].value))
        graph[name] = {a for a in arrows if a is not None and a != name}
    return graph


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan), each as a sorted list."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def one_cycle(graph, component):
    """A readable circle through a component: a -> b -> ... -> a."""
    members, start = set(component), component[0]
    path, seen = [start], {start}
    while True:
        nxt = sorted(w for w in graph[path[-1]] if w in members)
        back = [w for w in nxt if w == start]
        if back and len(path) > 1:
            return " -> ".join(path + [start])
        fresh = [w for w in nxt if w not in seen]
        if not fresh:
            return " -> ".join(path + [nxt[0]])
        path.append(fresh[0])
        seen.add(fresh[0])


def floor_of(module):
    for level, (_, names) in enumerate(FLOORS):
        if any(module == n or module.startswith(n + ".") for n in names):
            return level
    return len(FLOORS) - 1


def upward_arrows(graph):
    return sorted(f"{a} ({FLOORS[floor_of(a)][0]}) -> {b} ({FLOORS[floor_of(b)][0]})"
                  for a, targets in graph.items() for b in targets if floor_of(b) > floor_of(a))


@pytest.fixture(scope="module")
def graph():
    return import_graph(project_modules())


def test_the_walker_sees_the_project(graph):
    """Not an empty or partial graph: lazy imports (cli's of ops, inside a function) and the kernels are in."""
    assert {"posedenoise.cli", "posedenoise.ops", "posedenoise.data.windows", "posedenoise.kernels.heatmaps"} <= set(graph)
    assert "posedenoise.ops" in graph["posedenoise.cli"]                  # `from . import ops` in check_backend
    assert "posedenoise.kernels.heatmaps" in graph["posedenoise.kernels.pck"]
    assert "posedenoise.errors" in graph["posedenoise.noise"]             # lazy, inside load_noise_json


def test_no_import_cycle_inside_posedenoise(graph):
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(f"{one_cycle(graph, c)}   (the circle's component: "
                                                      f"{', '.join(c)})" for c in found)


def test_every_import_points_down_or_sideways(graph):
    up = upward_arrows(graph)
    assert not up, "imports that run back up the floors (tests/test_imports.py FLOORS):\n" + "\n".join(up)


def test_the_error_types_import_nothing_of_the_project(graph):
    assert graph["posedenoise.errors"] == set()


def test_windows_knows_no_particular_kind_of_cache(graph):
    assert "posedenoise.data.paired" not in graph["posedenoise.data.windows"]


def test_a_lazy_cycle_and_an_upward_arrow_are_found(tmp_path):
    """The checks can fail: a package whose circle closes inside a function body, and a floor-0 module that
    imports a command."""
    pkg = tmp_path / "posedenoise"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("def build_info():\n    from .ops import x\n")
    (pkg / "ops.py").write_text("from . import noise\nx = 1\n")
    (pkg / "noise.py").write_text("def load():\n    from .data.errors import DataError\n")
    (pkg / "data" / "__init__.py").write_text("")
    (pkg / "data" / "errors.py").write_text("import posedenoise.cli\n")
    (pkg / "cli.py").write_text("def check():\n    from . import ops\n    from . import _C\n")
    graph = import_graph(project_modules(tmp_path, extra=()))
    assert cycles(graph) == [["posedenoise.cli", "posedenoise.data.errors", "posedenoise.noise", "posedenoise.ops"]]
    assert one_cycle(graph, cycles(graph)[0]) == ("posedenoise.cli -> posedenoise.ops -> posedenoise.noise -> "
                                                  "posedenoise.data.errors -> posedenoise.cli")
    assert "posedenoise.noise (base) -> posedenoise.data.errors (data)" in upward_arrows(graph)
    assert graph["posedenoise"] == {"posedenoise.ops"} and "posedenoise" not in graph["posedenoise.cli"]
