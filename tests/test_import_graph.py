"""The package's own import graph has no cycle, and its arrows point one way.

Read from the source (ast), not by importing: every `import rllib_seac...` and
`from rllib_seac... import ...`, at module level and inside functions.

The layers, from the bottom up (docs/layout.md): the base modules (columns, seeding,
checkpoints, RLlib internals, ...), envs (env batches included), the shared math
(numerics), the algorithms (seac, seql, seppo: siblings that never import each
other), then analysis and the library code the command line and benchmarks share,
then the command line. A module imports only from its own layer or below.
"""

import ast
from pathlib import Path

import rllib_seac

PACKAGE = Path(rllib_seac.__file__).parent

# Deferred (function-level) imports that close a cycle, each for a reason that
# a module-level import cannot serve: RLlib's config names its algorithm class
# (`AlgorithmConfig(algo_class=...)`) and the algorithm its default config
# (`Algorithm.get_default_config`). RLlib keeps each pair in one file; we keep
# config and algorithm apart, so the algorithm imports its config when asked.
ALLOWED_DEFERRED = {
    ("rllib_seac.seac.algorithm", "rllib_seac.seac.config"),
    ("rllib_seac.seql.algorithm", "rllib_seac.seql.config"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> tuple[set[str], set[str]]:
    """(module-level, function-level) imports of this package's modules in `path`."""
    name = module_name(path)
    is_package = path.name == "__init__.py"
    top, deferred = set(), set()

    def targets(node) -> set[str]:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:  # relative: from the importing module's package
                package = name if is_package else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            # `from pkg import mod` imports the module pkg.mod; `from pkg import name`
            # reads pkg (whose own import every submodule's import runs first anyway).
            names = [f"{base}.{alias.name}" for alias in node.names]
            if not all(n in modules for n in names):
                names.append(base)
        return {n for n in names if n in modules}

    def visit(node, in_function: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                (deferred if in_function else top).update(targets(child))
            visit(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef))

    visit(ast.parse(path.read_text()), False)
    return top - {name}, deferred - {name}


def graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    top, deferred = {}, {}
    for p in paths:
        top[module_name(p)], deferred[module_name(p)] = imports(p, modules)
    return top, deferred


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path of module names, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


LAYERS = {
    "envs": 1,
    "numerics": 2,
    "seac": 3,
    "seql": 3,
    "seppo": 3,
    "analysis": 4,
    "experiment_config": 4,
    "cli": 5,
}


def layer(module: str) -> tuple[int, str]:
    """(layer, package) of a module of this package; the base is layer 0."""
    part = module.split(".")[1]
    return LAYERS.get(part, 0), part


def test_the_graph_is_read():
    top, deferred = graph()
    assert "rllib_seac.algorithm_support" in top["rllib_seac.seac.algorithm"]
    assert "rllib_seac.seac.algorithm" in deferred["rllib_seac.seac.config"]


def test_every_import_points_down_or_within_its_package():
    top, deferred = graph()
    wrong = []
    for m in top:
        if m == "rllib_seac":  # the package's lazy names reach every layer by design
            continue
        for t in top[m] | deferred[m]:
            if t == "rllib_seac":
                continue
            (lm, pm), (lt, pt) = layer(m), layer(t)
            if lt > lm or (lt == lm and lm > 0 and pm != pt):
                wrong.append(f"{m} -> {t}")
    assert not wrong, "imports against the layers: " + ", ".join(sorted(wrong))


def test_module_level_imports_have_no_cycle():
    found = cycle(graph()[0])
    assert found is None, "module-level import cycle: " + " -> ".join(found)


def test_deferred_imports_close_no_cycle_but_the_documented_ones():
    top, deferred = graph()
    edges = {m: top[m] | {t for t in deferred[m] if (m, t) not in ALLOWED_DEFERRED} for m in top}
    found = cycle(edges)
    assert found is None, "import cycle through a function-level import: " + " -> ".join(found)
    for m, t in ALLOWED_DEFERRED:
        assert t in deferred[m], f"{m} no longer defers importing {t}: drop it from the list"
