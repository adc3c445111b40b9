"""Apps are compositions of the core's public API: every name apps/ imports from kerascnn (function-level
imports included) is documented public API: listed in its module's `__all__` and, when it is a
function or class, with a docstring. What the apps import is listed here, so a new dependency of an
app on the core is a visible change."""
import ast
import importlib
import inspect
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def app_imports():
    """(app file, kerascnn module, name, line) for each `from kerascnn.X import name` in apps/."""
    found = []
    for path in sorted((ROOT / "apps").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("kerascnn") \
                    and not node.module.startswith("kerascnn.apps"):
                found += [(path.name, node.module, a.name, node.lineno) for a in node.names]
            elif isinstance(node, ast.Import):
                found += [(path.name, a.name, None, node.lineno) for a in node.names
                          if a.name.startswith("kerascnn") and not a.name.startswith("kerascnn.apps")]
    return found


IMPORTS = app_imports()


def undocumented(module_name, name):
    """Why `name` of `module_name` is not documented public API ("" when it is)."""
    module = importlib.import_module(module_name)
    if name is None:  # `import kerascnn.x`: the module itself
        return "" if module.__doc__ else f"{module_name} has no docstring"
    if name.startswith("_"):
        return f"{module_name}.{name} is private"
    try:  # `from kerascnn.synthesis import ascent`: a module
        sub = importlib.import_module(f"{module_name}.{name}")
    except ImportError:
        sub = None
    if sub is not None:
        return "" if sub.__doc__ else f"{module_name}.{name} has no docstring"
    public = getattr(module, "__all__", None)
    if public is None or name not in public:
        return f"{module_name}.{name} is not in {module_name}.__all__"
    value = getattr(module, name)
    if (inspect.isfunction(value) or inspect.isclass(value)) and not inspect.getdoc(value):
        return f"{module_name}.{name} has no docstring"
    return ""


def test_apps_import_the_core():
    assert len(IMPORTS) > 20, "the scan found too little: is apps/ where it was?"


@pytest.mark.parametrize("app, module, name, line", IMPORTS,
                         ids=[f"{a}:{m}.{n}" for a, m, n, _ in IMPORTS])
def test_apps_use_only_documented_public_names(app, module, name, line):
    assert undocumented(module, name) == "", f"apps/{app}:{line}"


@pytest.mark.parametrize("module, name, why", [
    ("kerascnn.analysis.visualize", "_gradcam", "private"),
    ("kerascnn.models.transfer", "is_model_file", "not in kerascnn.models.transfer.__all__"),
])
def test_the_check_refuses_private_and_unlisted_names(module, name, why):
    assert why in undocumented(module, name)
