"""Job folders (atomic writes, settings.json), and the layout rules: apps install as kerascnn.apps, the
core never imports them, the CLI is a package of command families."""
import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kerascnn.runtime.jobs import JobDir, atomic_save, atomic_write_text, new_job_path
from kerascnn.settings import resolve
from kerascnn.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


def test_job_dir_writes_settings_and_outputs_atomically(tmp_path):
    job = JobDir.create("dream", "my photo.jpg", root=tmp_path)
    assert job.path.parent == tmp_path and job.path.name.startswith("dream-my_photo_jpg-")
    resolved = resolve(TrainConfig, [])
    settings = json.loads(job.write_settings(resolved).read_text())
    assert settings["settings"]["epochs"] == 30 and settings["sources"]["epochs"] == "default"
    out = job.save("x.bin", lambda p: Path(p).write_bytes(b"abc"))
    assert out.read_bytes() == b"abc"
    assert sorted(p.name for p in job.path.iterdir()) == ["settings.json", "x.bin"]  # no temporary left


def test_two_jobs_in_the_same_second_get_two_folders(tmp_path):
    a = JobDir.create("stylize", "cat", root=tmp_path)
    b = JobDir.create("stylize", "cat", root=tmp_path)
    assert a.path != b.path and a.path.is_dir() and b.path.is_dir()
    assert new_job_path("x", "y", out=tmp_path / "given") == tmp_path / "given"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")

    def broken(path):
        Path(path).write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_save(target, broken)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_the_core_never_imports_the_apps():
    """cli -> apps -> core: only the CLI wires the apps in (and kerascnn/__init__'s lazy names point
    at them as data, without importing)."""
    offenders = []
    for path in (ROOT / "kerascnn").rglob("*.py"):
        if "cli" in path.relative_to(ROOT / "kerascnn").parts:
            continue
        for module in _imports(path):
            if module == "apps" or module.startswith(("apps.", "kerascnn.apps")):
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not offenders


def test_apps_never_import_the_cli():
    for path in (ROOT / "apps").rglob("*.py"):
        assert not any(m.startswith("kerascnn.cli") for m in _imports(path)), path


def test_apps_install_as_kerascnn_apps_not_as_a_top_level_package(tmp_path):
    """A top-level `apps` would collide with many projects' own; from outside the repository there is none."""
    code = ("import importlib.util, kerascnn.apps.transfer_learning as t; "
            "print(importlib.util.find_spec('apps') is None, t.__name__)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "kerascnn.apps.transfer_learning"]


def test_keras_private_internals_live_in_one_module():
    offenders = []
    for path in (ROOT / "kerascnn").rglob("*.py"):
        if path.name == "compat.py":
            continue
        text = path.read_text(encoding="utf-8")
        for needle in ("keras.src", "_keras_history", "._reduce_to", "_inbound_nodes", "._functional", "._nodes"):
            if needle in text:
                offenders.append(f"{path.relative_to(ROOT)}: {needle}")
    assert not offenders


def test_help_is_instant_because_tensorflow_loads_inside_commands():
    code = "import sys; from kerascnn.cli import main; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "False"]
