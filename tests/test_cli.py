"""The command line through click's CliRunner: a tiny fit -> evaluate -> predict, and the errors."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from kerascnn.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny LeNet-5 run on the embedded digits, shared by the tests below."""
    out = tmp_path_factory.mktemp("cli") / "run"
    r = CliRunner().invoke(main, ["fit", "--model", "lenet5", "--epochs", "2", "--batch-size", "64",
                                  "--out", str(out)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "Run folder:" in r.output
    return out


def _png(path, value, size=(8, 8)):
    from PIL import Image

    Image.fromarray(np.full(size, value, dtype=np.uint8)).save(path)


def test_fit_evaluate_predict_end_to_end(trained, tmp_path):
    runner = CliRunner()
    r = runner.invoke(main, ["evaluate", str(trained / "model.keras"), "--data", "digits"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "top-1" in r.output and "top-5" in r.output
    assert (trained / "confusion.png").is_file()

    folder = tmp_path / "some folder"
    folder.mkdir()
    _png(tmp_path / "a.png", 0)
    _png(folder / "b.png", 255)
    (folder / "notes.txt").write_text("not an image")
    r = runner.invoke(main, ["predict", str(trained / "model.keras"), str(tmp_path / "a.png"), str(folder),
                             "--top-k", "3", "--format", "json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    preds = json.loads(r.stdout)
    assert sorted(p["file"].rsplit("/", 1)[-1] for p in preds) == ["a.png", "b.png"]
    for p in preds:
        assert len(p["top"]) == 3
        assert {t["class"] for t in p["top"]} <= {str(i) for i in range(10)}
        probs = [t["probability"] for t in p["top"]]
        assert probs == sorted(probs, reverse=True)


def test_models_lists_the_registry(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    r = CliRunner().invoke(main, ["models", "--family", "lenet", "--format", "json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert rows[0]["name"] == "lenet5"
    # conv1 + conv2 + fc1 + fc2 + the 10-class classifier, by hand: LeCun et al.'s 61,706
    assert rows[0]["params"] == (5 * 5 * 1 + 1) * 6 + (5 * 5 * 6 + 1) * 16 + 401 * 120 + 121 * 84 + 85 * 10 == 61_706
    assert rows[0]["classes"] == 10 and rows[0]["default_input"] == "32x32x1"
    assert (tmp_path / "kerascnn").is_dir(), "counts are cached"


@pytest.mark.parametrize("args, code, needle", [
    (["fit", "--model", "lenet"], 1, "Did you mean: lenet5"),
    (["fit", "--input-shape", "32,32"], 2, "--input-shape"),
    (["fit", "--epochs", "0"], 2, "--epochs"),
    (["fit", "--precision", "fp8"], 2, "--precision"),
    (["fit", "--model-arg", "oops"], 2, "KEY=VALUE"),
    (["fit", "--data", "/no/such/folder", "--epochs", "1"], 1, "/no/such/folder"),
    (["evaluate", "/no/such/model.keras"], 1, "does not exist"),
    (["predict", "/no/such/model.keras", "x.png"], 1, "does not exist"),
    (["models", "--family", "nosuch"], 2, "--family"),
])
def test_errors_are_one_line_without_traceback(args, code, needle, tmp_path):
    r = CliRunner().invoke(main, args + (["--out", str(tmp_path / "o")] if args[0] == "fit" and "--data" in args else []))
    assert r.exit_code == code, r.output
    assert needle in r.output
    assert "Traceback" not in r.output
    error_lines = [line for line in r.output.splitlines() if line.startswith("Error")]
    assert len(error_lines) == 1


def test_resume_refuses_other_flags(trained):
    r = CliRunner().invoke(main, ["fit", "--resume", str(trained), "--lr", "0.1"])
    assert r.exit_code == 2 and "--lr" in r.output


def test_debug_shows_the_traceback():
    r = CliRunner().invoke(main, ["--debug", "fit", "--model", "lenet"])
    assert r.exit_code == 1
    assert r.exc_info is not None and type(r.exc_info[1]).__name__ == "ModelError"


def test_python_dash_m_runs_the_same_cli():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "kerascnn", "fit", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: kerascnn fit") and "--precision" in proc.stdout
