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
    # usage errors, exit 2: a bad flag or a bad value of one, found before any work
    (["fit", "--model", "lenet"], 2, "Did you mean: lenet5"),
    (["fit", "--input-shape", "32,32"], 2, "--input-shape"),
    (["fit", "--input-shape", "8,8,1"], 2, "at least 16x16"),
    (["fit", "--epochs", "0"], 2, "--epochs"),
    (["fit", "--precision", "fp8"], 2, "--precision"),
    (["fit", "--model-arg", "oops"], 2, "KEY=VALUE"),
    (["fit", "--model-arg", "lrn=true"], 2, "valid: activation, subsample"),
    (["fit", "--weights", "imagenet"], 2, "--weights"),
    (["fit", "--data", "/no/such/folder", "--epochs", "1"], 2, "/no/such/folder"),
    (["finetune", "--model", "lenet5", "--data", "nosuch"], 2, "--data"),
    (["summary", "--model", "lenet"], 2, "Did you mean: lenet5"),
    (["evaluate", "/no/such/model.keras"], 2, "does not exist"),
    (["predict", "/no/such/model.keras", "x.png"], 2, "does not exist"),
    (["models", "--family", "nosuch"], 2, "--family"),
    # failures while running, exit 1
    (["fit", "--data", "mnist", "--data-dir", "/nonexistent-keras-cache", "--epochs", "1"], 1, "mnist"),
])
def test_errors_are_one_line_without_traceback(args, code, needle, tmp_path):
    r = CliRunner().invoke(main, args + (["--out", str(tmp_path / "o")] if args[0] == "fit" and "--data" in args else []))
    assert r.exit_code == code, r.output
    assert needle in r.output
    assert "Traceback" not in r.output
    error_lines = [line for line in r.output.splitlines() if line.startswith("Error")]
    assert len(error_lines) == 1


def test_a_model_file_that_is_no_keras_archive_is_one_line_naming_it(tmp_path):
    """A .keras file that is not a zip (cut short, another format): exit 1, one line naming the file and
    saying what it is, not Keras's "File not found" of a file that is there."""
    bad = tmp_path / "model.keras"
    bad.write_bytes(b"not a zip archive")
    for args in (["evaluate", str(bad)], ["predict", str(bad), str(bad)]):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 1, r.output
        assert f"{bad}: not a .keras archive" in r.output and "not found" not in r.output
        assert "Traceback" not in r.output
        assert len([line for line in r.output.splitlines() if line.startswith("Error")]) == 1


def test_resume_refuses_other_flags(trained):
    r = CliRunner().invoke(main, ["fit", "--resume", str(trained), "--lr", "0.1"])
    assert r.exit_code == 2 and "--lr" in r.output


def test_debug_shows_the_traceback():
    from kerascnn.errors import SettingError

    r = CliRunner().invoke(main, ["--debug", "fit", "--model", "lenet"])
    assert r.exit_code == 1  # the exception itself escapes, for its traceback
    assert r.exc_info is not None and isinstance(r.exc_info[1], SettingError)


def test_a_run_folder_records_every_setting_with_its_source(trained):
    settings = json.loads((trained / "settings.json").read_text())
    assert settings["command"] == "fit"
    assert settings["settings"]["epochs"] == 2 and settings["sources"]["epochs"] == "flag"
    assert settings["settings"]["batch_size"] == 64 and settings["sources"]["batch_size"] == "flag"
    assert settings["settings"]["label_smoothing"] == 0.1 and settings["sources"]["label_smoothing"] == "recipe lenet5"
    # "auto" is recorded as what it chose, and that it was chosen
    assert settings["settings"]["precision"] in ("float32", "mixed_bfloat16")
    assert settings["sources"]["precision"] == "default (auto)"
    # the settings file of a run is a settings file for the next one
    r = CliRunner().invoke(main, ["fit", "--config", str(trained / "settings.json"), "--print-config"])
    assert r.exit_code == 0, r.output
    assert "epochs = 2" in r.output and "batch_size = 64" in r.output


def test_python_dash_m_runs_the_same_cli():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "kerascnn", "fit", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: kerascnn fit") and "--precision" in proc.stdout


@pytest.mark.parametrize("args, file", [
    # finetune's default: mobilenet_v2 with ImageNet weights; the classes are unknown: the no-top file
    (["finetune", "--data", "digits"], "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"),
    (["fit", "--model", "vgg16", "--weights", "imagenet"], "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    (["visualize", "gradcam", "vgg16", "IMAGE", "--weights", "imagenet"],
     "vgg16_weights_tf_dim_ordering_tf_kernels.h5"),  # the classifier's scores: the file with the top
    (["visualize", "maximize", "vgg16", "--weights", "imagenet"],
     "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"),  # features only
    (["dream", "IMAGE", "-o", "OUT.jpg", "--model", "vgg16"], "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    (["stylize", "IMAGE", "IMAGE", "-o", "OUT.jpg"], "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"),
])
def test_imagenet_offline_fails_before_tensorflow_loads_naming_the_file(tmp_path, monkeypatch, args, file):
    """One ImageNet pre-check for every command that builds a network (cli.options.imagenet_preflight)."""
    import kerascnn.cli as cli
    import kerascnn.models.weights as weights

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(weights, "is_online", lambda *a, **k: False)

    def no_tensorflow():
        raise AssertionError("TensorFlow was imported before the weights check")

    monkeypatch.setattr(cli, "_import_tensorflow_quietly", no_tensorflow)
    image = tmp_path / "photo.png"
    image.write_bytes(bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c"
                                    "4944415408d763f8cfc0000003010100c9fe92ef0000000049454e44ae426082"))
    args = [str(image) if a == "IMAGE" else str(tmp_path / a) if a == "OUT.jpg" else a for a in args]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 1, r.output
    assert file in r.output
    assert str(tmp_path / "models") in r.output and "--weights PATH" in r.output
    assert "Traceback" not in r.output


def test_dream_zoom_is_also_spelled_as_two_words():
    r = CliRunner().invoke(main, ["dream", "zoom", "--help"])
    assert r.exit_code == 0, r.output
    assert "--frames" in r.output and "dream-zoom" in r.output


# TensorFlow's C++ start-up chatter (each printed twice by a plain `import tensorflow`).
_TF_CHATTER = ("absl::InitializeLog", "oneDNN", "cuda drivers", "cpu_feature_guard")


def _run_cli(*args, env=None):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"} if env is None else env
    return subprocess.run([sys.executable, "-m", "kerascnn", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def test_a_usage_error_is_one_line_without_tensorflow_chatter():
    proc = _run_cli("fit", "--model", "nosuchnet")
    output = proc.stderr + proc.stdout
    assert proc.returncode == 2, output
    assert "Unknown model 'nosuchnet'" in output
    assert not [line for line in output.splitlines() if any(c in line for c in _TF_CHATTER)], output
    assert len([line for line in output.splitlines() if line.strip()]) == 1, output


def test_debug_keeps_tensorflow_start_up_lines():
    proc = _run_cli("--debug", "fit", "--model", "nosuchnet")
    output = proc.stderr + proc.stdout
    assert "nosuchnet" in output
    assert any(c in output for c in _TF_CHATTER), output


def test_every_command_is_in_the_lazy_table():
    import importlib

    import kerascnn.cli as cli

    for module in set(cli._COMMAND_MODULES.values()):
        importlib.import_module(f"kerascnn.cli.{module}")
    assert sorted(cli.main.commands) == sorted(cli._COMMAND_MODULES)


def _damaged_jpegs(folder):
    """A good JPEG, one cut short (skipped), one cut short but closed with an end marker (libjpeg
    decodes it, writing "Corrupt JPEG data" to fd 2) and one whose EXIF block points past the file
    (Pillow warns "Truncated File Read")."""
    import io

    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    (folder / "good.jpg").write_bytes(data)
    (folder / "cut.jpg").write_bytes(data[: len(data) * 2 // 3])
    (folder / "cut_closed.jpg").write_bytes(data[: len(data) // 2] + b"\xff\xd9")
    exif = Image.Exif()
    exif[0x010E] = "x" * 200  # a description long enough to be stored at an offset
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", exif=exif.tobytes())
    broken = bytearray(buf.getvalue())
    entry = broken.find(b"\x01\x0e\x00\x02", broken.find(b"Exif\x00\x00"))  # big-endian IFD entry
    broken[entry + 8: entry + 12] = (0xFFF0).to_bytes(4, "big")  # its value "at" 64 KB: past the end
    (folder / "bad_exif.jpg").write_bytes(bytes(broken))


def test_predict_on_damaged_images_prints_one_summary_and_no_decoder_messages(tmp_path):
    import kerascnn

    kerascnn.create_model("lenet5", num_classes=10).save(tmp_path / "m.keras")
    photos = tmp_path / "photos"
    photos.mkdir()
    _damaged_jpegs(photos)
    proc = _run_cli("predict", str(tmp_path / "m.keras"), str(photos))
    output = proc.stderr + proc.stdout
    assert proc.returncode == 0, output
    assert [line.split(":")[0] for line in proc.stdout.splitlines()] == \
        [str(photos / n) for n in ("bad_exif.jpg", "cut_closed.jpg", "good.jpg")]
    assert proc.stderr.strip() == "Skipped 1 of 4 files that are not usable images: cut.jpg (truncated or corrupt)"

    debug = _run_cli("--debug", "predict", str(tmp_path / "m.keras"), str(photos))
    assert "Corrupt JPEG data" in debug.stderr and "UserWarning" in debug.stderr  # what the quiet mode hides


def _stderr_lines_of(block: str, after: str, before: str = "") -> list:
    """The stderr lines of a fresh Python running `before`, `block` inside native_stderr_hidden, then `after`
    (a subprocess: the block moves file descriptor 2, which pytest's capture must not see moved)."""
    import subprocess
    import sys
    import textwrap

    code = ("import logging, os, sys\n"
            "from kerascnn.cli.quiet import native_stderr_hidden\n"
            + before + "with native_stderr_hidden():\n" + textwrap.indent(block, "    ") + after)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr.splitlines()


def test_native_stderr_hidden_keeps_python_lines():
    lines = _stderr_lines_of("os.write(2, b'from C\\n')\n"
                             "print('from Python', file=sys.stderr)\n"
                             "logging.warning('a log line')\n",
                             after="os.write(2, b'after\\n')\n",
                             before="logging.basicConfig(format='%(message)s')\n")
    assert lines == ["from Python", "a log line", "after"]


def test_a_log_handler_made_while_native_stderr_is_hidden_writes_after_it():
    """TensorFlow makes its logger's handler on first use, on the sys.stderr of that moment: made
    inside the block (the quiet import), it must not be left on the block's closed copy."""
    lines = _stderr_lines_of("log = logging.getLogger('made_inside')\n"
                             "log.addHandler(logging.StreamHandler(sys.stderr))\n",
                             after="log.warning('deprecated, later')\n")
    assert lines == ["deprecated, later"]


@pytest.mark.parametrize("args, named", [
    (["stylize", "{missing}", "{photo}", "-o", "{out}"], "{missing}"),
    (["stylize", "{photo}", "{missing}", "-o", "{out}"], "{missing}"),
    (["stylize", "{photo}", "{photo}", "{missing}", "-o", "{out}"], "{missing}"),
    (["dream", "{missing}", "-o", "{out}"], "{missing}"),
    (["dream", "zoom", "{missing}", "-o", "{gif}"], "{missing}"),
    (["dream-zoom", "{missing}", "-o", "{gif}"], "{missing}"),
    (["stylize", "train", "--styles", "{photo}", "{missing}", "--content-dir", "{folder}", "-o", "{net}"],
     "{missing}"),
    (["stylize", "train", "--styles", "{photo}", "--content-dir", "{nofolder}", "-o", "{net}"], "{nofolder}"),
    (["stylize", "{photo}", "-o", "{out}"], "STYLE"),
    (["stylize", "{photo}", "{photo}"], "-o OUT.jpg"),
    (["dream", "{photo}"], "-o OUT.jpg"),
    (["stylize", "train", "--styles", "{photo}", "-o", "{net}"], "--content-dir"),
])
def test_offline_the_users_files_are_checked_before_the_weights(tmp_path, monkeypatch, args, named):
    import kerascnn.models.weights as weights

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # an empty cache, and no network
    monkeypatch.setattr(weights, "is_online", lambda *a, **k: False)
    _png(tmp_path / "photo.png", 128, size=(40, 40))
    (tmp_path / "photos").mkdir()
    paths = {"missing": str(tmp_path / "missing.jpg"), "photo": str(tmp_path / "photo.png"),
             "out": str(tmp_path / "o.jpg"), "gif": str(tmp_path / "z.gif"), "net": str(tmp_path / "n.keras"),
             "folder": str(tmp_path / "photos"), "nofolder": str(tmp_path / "nophotos")}
    r = CliRunner().invoke(main, [a.format(**paths) for a in args])
    assert r.exit_code == 2, r.output
    assert named.format(**paths) in r.output, r.output
    if named.startswith("{"):  # a missing file: one line naming it (a missing argument shows the usage too)
        assert len(r.output.strip().splitlines()) == 1, r.output
    assert "weights" not in r.output and "Traceback" not in r.output
