"""bench/throughput.py checks its optional dependency (PyTorch) before measuring anything."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "throughput.py"


@pytest.fixture
def throughput(monkeypatch):
    spec = importlib.util.spec_from_file_location("throughput_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    return module


def test_default_kinds_skip_torch_with_a_note(throughput, capsys):
    assert throughput.select_kinds(None) == ["kerascnn", "keras"]
    assert "PyTorch is not installed" in capsys.readouterr().err


def test_asking_for_torch_without_it_stops_with_the_install_command(throughput):
    with pytest.raises(ValueError, match=r'torch-bf16 needs PyTorch.*pip install -e "\.\[bench\]"'):
        throughput.select_kinds("kerascnn,torch-bf16")
    with pytest.raises(ValueError, match="unknown jax"):
        throughput.select_kinds("jax")
    assert throughput.select_kinds("keras") == ["keras"]


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="PyTorch is installed here")
def test_the_script_exits_2_at_once():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--kinds", "torch"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and 'pip install -e ".[bench]"' in proc.stderr
