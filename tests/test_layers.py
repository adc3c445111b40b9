"""The package's layers: every import in kerascnn/ and apps/ (function-level ones included) points down
the declared order, and no modules import each other in a circle.

The order is the architecture README.md's layout table describes; a new module joins its folder's
layer, and a new folder must be placed here before it can import or be imported.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Bottom to top. A module may import its own layer and the layers below it; the root's loose modules
# are the bottom (stdlib-only settings machinery), the root face (`kerascnn`, `kerascnn.api`) sits
# above the library it re-exports, and only the CLI wires the apps in.
LAYERS = (
    ("kerascnn.errors",),
    ("kerascnn.recipes",),
    ("kerascnn.config",),
    ("kerascnn.settings",),
    ("kerascnn.runtime",),      # job folders, run folders, progress, plots, network checks, Keras internals
    ("kerascnn.models",),       # layers, preprocessing, weights, registry, builders, loading, features
    ("kerascnn.data",),         # --data specs, tf.data pipeline, image files
    ("kerascnn.synthesis",),    # tiles, colour, perceptual losses, style objective: the apps' shared core
    ("kerascnn.training",),     # the harness
    ("kerascnn.inference",),    # evaluate, predict, TTA, export
    ("kerascnn.analysis",),     # summaries, visualisation, reports
    ("kerascnn.api", "kerascnn"),   # the public face
    ("kerascnn.apps",),
    ("kerascnn.cli", "kerascnn.__main__"),
)
# `from kerascnn import __version__` is a constant of the face's (its __init__ imports nothing eagerly).
CONSTANTS_OF_THE_FACE = {"__version__"}


def _modules():
    mods = {}
    for folder, pkg in (("kerascnn", "kerascnn"), ("apps", "kerascnn.apps")):
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join([pkg, *parts])] = path
    return mods


MODULES = _modules()


def _owner(name):
    """The longest known module that prefixes a dotted name (kerascnn.models.registry.create_model ->
    kerascnn.models.registry)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module):
    """(imported module, imported name or None, line) for every kerascnn import in `module`."""
    path = MODULES[module]
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(_owner(a.name), None, node.lineno) for a in node.names if a.name.startswith("kerascnn")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            if not base.startswith("kerascnn"):
                continue
            for a in node.names:
                full = f"{base}.{a.name}"
                out.append((_owner(full) if full in MODULES else _owner(base), a.name, node.lineno))
    return [(t, n, line) for t, n, line in out if t and t != module]


def layer_of(module):
    """The index in LAYERS of the longest entry that is the module or a package above it."""
    best, best_len = None, -1
    for i, entries in enumerate(LAYERS):
        for e in entries:
            if (module == e or module.startswith(e + ".")) and len(e) > best_len and not (
                    e == "kerascnn" and module != "kerascnn"):
                best, best_len = i, len(e)
    return best


def test_every_module_has_a_layer():
    assert MODULES, "no modules found"
    assert [m for m in MODULES if layer_of(m) is None] == []


def test_every_import_points_down_the_declared_layers():
    upward = []
    for module in MODULES:
        for target, name, line in _imports(module):
            if target == "kerascnn" and name in CONSTANTS_OF_THE_FACE:
                continue
            if layer_of(target) > layer_of(module):
                upward.append(f"{MODULES[module].relative_to(ROOT)}:{line} imports {target}"
                              f"{'.' + name if name else ''} (layer {LAYERS[layer_of(target)][0]} is above "
                              f"{LAYERS[layer_of(module)][0]})")
    assert upward == []


def _cycles(graph):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_module_imports_itself_in_a_circle():
    # Package faces (__init__) only hand names on, so they are left out, as the house's import graph does.
    faces = {m for m, p in MODULES.items() if p.name == "__init__.py"}
    graph = {m: {t for t, _, _ in _imports(m) if t not in faces} for m in MODULES if m not in faces}
    assert _cycles(graph) == []


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
])
def test_the_cycle_finder_finds_cycles(graph, expected):
    assert _cycles(graph) == expected


def test_the_layer_check_sees_function_level_imports(tmp_path, monkeypatch):
    """An upward import inside a function body is still an import (the check must be able to fail)."""
    low = tmp_path / "low.py"
    low.write_text("def f():\n    from kerascnn.cli import main\n")
    monkeypatch.setitem(MODULES, "kerascnn.runtime.low", low)
    found = [(t, n) for t, n, _ in _imports("kerascnn.runtime.low")]
    assert found == [("kerascnn.cli", "main")]
    assert layer_of("kerascnn.cli") > layer_of("kerascnn.runtime.low")
