"""The training harness: run folder, atomic outputs, schedules, resume after kill -9."""
import csv
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from kerascnn.config import TrainConfig, override
from kerascnn.models.loading import load_model
from kerascnn.training import fit
from kerascnn.training.optim import make_schedule

TINY = dict(model="lenet5", epochs=2, batch_size=64, **{"data.spec": "digits", "data.val_split": 0.2})


def _cfg(tmp_path, **kw):
    return override(TrainConfig(), out=str(tmp_path / "run"), **{**TINY, **kw})


def _history(run):
    with open(run / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_fit_writes_a_complete_run_folder(tmp_path):
    result = fit(_cfg(tmp_path), verbose=0)
    run = result.run_dir
    for name in ("config.json", "history.csv", "curves.png", "model.keras", "best.keras", "classes.json"):
        assert (run / name).is_file(), name
    assert any((run / "tb").rglob("*tfevents*"))
    assert [p.name for p in (run / "backup").iterdir()] == ["epoch-0002.weights.h5"], "only the last backup stays"
    assert json.loads((run / "config.json").read_text())["model"] == "lenet5"
    assert json.loads((run / "classes.json").read_text()) == [str(i) for i in range(10)]
    rows = _history(run)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert {"loss", "accuracy", "top5", "val_loss", "val_accuracy", "learning_rate"} <= set(rows[0])
    # no temporary files left behind by the atomic writes
    assert not [p for p in run.iterdir() if ".tmp" in p.name]
    model = load_model(run / "model.keras")
    x = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 1)).astype("float32")
    p = model.predict(x, verbose=0)
    assert p.shape == (3, 10) and np.allclose(p.sum(axis=1), 1, atol=1e-5)
    # two epochs of LeNet-5 on the digits already beat chance by far
    assert float(rows[-1]["val_accuracy"]) > 0.5


def test_tensorboard_logs_per_epoch_and_does_no_work_per_step(tmp_path, monkeypatch):
    import keras
    import tensorflow as tf

    from kerascnn.training.callbacks import EpochTensorBoard

    written = []
    scalar = tf.summary.scalar
    monkeypatch.setattr(tf.summary, "scalar", lambda name, *a, **k: written.append(name) or scalar(name, *a, **k))
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    logs = {"loss": 1.0, "accuracy": 0.5}
    for callback, per_step in ((EpochTensorBoard(str(tmp_path / "ours")), False),
                               (keras.callbacks.TensorBoard(str(tmp_path / "keras")), True)):  # the test can fail
        written.clear()
        hooks = keras.callbacks.CallbackList([callback], model=model)
        hooks.on_train_begin()
        hooks.on_epoch_begin(0)
        for step in range(3):
            hooks.on_train_batch_begin(step)
            hooks.on_train_batch_end(step, logs)
        hooks.on_epoch_end(0, logs)
        hooks.on_train_end()
        assert any(name.startswith("batch_") for name in written) == per_step, written
        assert "epoch_loss" in written and "epoch_accuracy" in written


def test_saving_does_not_rebuild_keras_skipsets_every_time(tmp_path, monkeypatch):
    import keras
    from keras.src.layers import layer as layer_module

    from kerascnn.models import create_model
    from kerascnn.training.callbacks import cache_keras_saving_skipsets

    model = create_model("lenet5", input_shape=(32, 32, 1), num_classes=10)
    built = []
    init = layer_module.Layer.__init__
    monkeypatch.setattr(layer_module.Layer, "__init__", lambda self, *a, **k: built.append(1) or init(self, *a, **k))
    keras.backend.clear_session()  # no cache: Keras builds throwaway layers on every save
    model.save_weights(tmp_path / "a.weights.h5")
    assert built, "Keras no longer rebuilds its skipsets: cache_keras_saving_skipsets can go"
    cache_keras_saving_skipsets()
    built.clear()
    model.save_weights(tmp_path / "b.weights.h5")
    assert not built
    copy = create_model("lenet5", input_shape=(32, 32, 1), num_classes=10)
    copy.load_weights(tmp_path / "b.weights.h5")
    for a, b in zip(model.get_weights(), copy.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_nan_loss_stops_training_within_the_epoch(tmp_path):
    import keras

    class Poison(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 8:  # the second call of 8 steps: poison a kernel, the loss turns NaN
                kernel = self.model.get_layer("logits").kernel
                kernel.assign(np.full(kernel.shape, np.nan, "float32"))

    result = fit(_cfg(tmp_path, epochs=3, steps_per_execution=8, **{"data.val_split": 0.1}), callbacks=[Poison()],
                 verbose=0)
    assert len(result.history) == 1, "training went on past the NaN"
    assert np.isnan(float(result.history[0]["loss"]))
    assert int(result.trained.optimizer.iterations.numpy()) < result.steps_per_epoch


def test_cosine_schedule_with_warmup_peaks_then_decays():
    cfg = override(TrainConfig(), epochs=10, lr=0.1, warmup_epochs=2, schedule="cosine")
    s = make_schedule(cfg, steps_per_epoch=10)
    lrs = np.array([float(s(i)) for i in range(100)])
    assert lrs[0] == pytest.approx(0.0) and lrs[20] == pytest.approx(0.1, rel=1e-3)
    assert np.all(np.diff(lrs[:20]) > 0) and np.all(np.diff(lrs[20:]) <= 1e-9)


def test_step_schedule_divides_by_ten():
    cfg = override(TrainConfig(), epochs=7, lr=0.1, schedule="step", step_epochs=3, optimizer="sgd")
    s = make_schedule(cfg, steps_per_epoch=5)
    got = [float(s(e * 5)) for e in range(7)]
    assert got == pytest.approx([0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001])


def test_resume_after_kill_9_continues_from_last_finished_epoch(tmp_path):
    out = tmp_path / "run"
    script = textwrap.dedent(f"""
        import os, signal, keras
        from kerascnn.config import TrainConfig, override
        from kerascnn.training import fit

        class Kill(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 1:  # after the 2nd epoch (short epochs: the newest backup may be the 1st)
                    os.kill(os.getpid(), signal.SIGKILL)

        cfg = override(TrainConfig(), model="lenet5", epochs=4, batch_size=64, out={str(out)!r},
                       schedule="cosine", **{{"data.spec": "digits", "data.val_split": 0.2}})
        fit(cfg, callbacks=[Kill()], verbose=0)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert not (out / "model.keras").exists()
    assert [int(r["epoch"]) for r in _history(out)] == [1, 2]

    resumed = fit(resume=out, verbose=0)
    rows = _history(out)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    # the optimizer state came back: 4 epochs of steps in all (a fresh start would count 2)
    assert int(resumed.trained.optimizer.iterations.numpy()) == 4 * resumed.steps_per_epoch
    # the schedule continued where it stopped: compare with an uninterrupted run's learning rates
    straight = fit(override(_cfg(tmp_path), epochs=4, out=str(tmp_path / "straight")), verbose=0)
    assert [float(r["learning_rate"]) for r in rows] == pytest.approx(
        [float(r["learning_rate"]) for r in straight.history], rel=1e-6)
    assert len(resumed.history) == 4


def test_resume_of_a_finished_run_says_so(tmp_path):
    from kerascnn.errors import UserError

    result = fit(_cfg(tmp_path, epochs=1), verbose=0)
    with pytest.raises(UserError, match="already finished"):
        fit(resume=result.run_dir, verbose=0)
    # ... and trains further when asked for more epochs
    more = fit(resume=result.run_dir, epochs=2, verbose=0)
    assert [int(r["epoch"]) for r in _history(more.run_dir)] == [1, 2]
    # ... and its config says so from then on: a later plain resume knows the run is finished at 2
    from kerascnn.runtime.run_dir import read_config

    assert read_config(more.run_dir).epochs == 2
    with pytest.raises(UserError, match="larger than 2"):
        fit(resume=result.run_dir, verbose=0)


def test_out_folder_holding_a_run_is_refused(tmp_path):
    from kerascnn.errors import UserError

    fit(_cfg(tmp_path, epochs=1), verbose=0)
    with pytest.raises(UserError, match="--resume"):
        fit(_cfg(tmp_path, epochs=1), verbose=0)


def test_mixed_bfloat16_trains_in_bfloat16_and_exports_float32(tmp_path):
    import keras

    from kerascnn.models import create_model

    result = fit(_cfg(tmp_path, epochs=1, precision="mixed_bfloat16"), verbose=0)
    assert keras.mixed_precision.global_policy().name == "float32", "fit restores the global policy"
    assert result.trained.get_layer("conv1").compute_dtype == "bfloat16"
    assert result.trained.output.dtype == "float32"  # the softmax stays float32 in training
    saved = load_model(result.run_dir / "model.keras")
    best = load_model(result.run_dir / "best.keras")
    for model in (result.model, saved, best):
        assert {layer.compute_dtype for layer in model.layers} == {"float32"}
    # the same weights, and the float32 export agrees with the bfloat16-trained model (to bf16 round-off)
    for a, b in zip(result.trained.get_weights(), saved.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 1)).astype("float32")
    np.testing.assert_allclose(saved.predict(x, verbose=0), result.trained.predict(x, verbose=0), atol=0.05)
    reference = create_model("lenet5", input_shape=(32, 32, 1), num_classes=10)
    reference.set_weights(saved.get_weights())
    np.testing.assert_allclose(saved.predict(x, verbose=0), reference.predict(x, verbose=0), atol=1e-6)
    assert json.loads((result.run_dir / "config.json").read_text())["precision"] == "mixed_bfloat16"


def test_precision_auto_picks_bfloat16_only_on_hardware_that_has_it(tmp_path, monkeypatch):
    import tensorflow as tf

    from kerascnn.training import distribute

    cpuinfo = tmp_path / "cpuinfo"
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    for flags, expected in (("fpu avx2 avx512f avx512_bf16", "mixed_bfloat16"), ("fpu amx_bf16 amx_tile", "mixed_bfloat16"),
                            ("fpu avx2 avx512f avx512_vnni", "float32")):
        cpuinfo.write_text(f"processor : 0\nflags\t\t: {flags}\n\nprocessor : 1\nflags\t\t: {flags}\n")
        monkeypatch.setattr(distribute, "cpu_bfloat16_flags",
                            lambda f=str(cpuinfo), real=distribute.cpu_bfloat16_flags: real(f))
        assert distribute.resolve_precision("auto") == expected, flags
    assert distribute.cpu_bfloat16_flags(str(tmp_path / "missing")) == []
    assert distribute.resolve_precision("float32") == "float32"  # an explicit choice is kept
    gpus = {"old": (7, 5), "new": (8, 0)}
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["new"])
    monkeypatch.setattr(tf.config.experimental, "get_device_details", lambda g: {"compute_capability": gpus[g]})
    assert distribute.resolve_precision("auto") == "mixed_bfloat16"
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["new", "old"])
    assert distribute.resolve_precision("auto") == "float32"


def test_auxiliary_heads_train_with_weight_and_are_dropped_at_export(tmp_path):
    """GoogLeNet with aux_logits: three outputs in training (loss = main + 0.3 x each aux), one saved."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(tmp_path / "imgs" / c / f"{i}.png")
    # 8 steps per call (both steps of the epoch in one call), the setting this check was made under:
    # Keras averages the total and the per-output losses differently over calls of unequal batches.
    cfg = override(TrainConfig(), model="googlenet", model_args={"aux_logits": True}, input_shape=(96, 96, 3),
                   epochs=1, batch_size=4, steps_per_execution=8, out=str(tmp_path / "run"),
                   **{"data.spec": str(tmp_path / "imgs"), "data.val_split": 0.25})
    result = fit(cfg, verbose=0)
    row = result.history[0]
    expected = row["predictions_loss"] + 0.3 * (row["aux1_predictions_loss"] + row["aux2_predictions_loss"])
    assert row["loss"] == pytest.approx(expected, rel=0.02)
    saved = load_model(result.run_dir / "model.keras")
    assert saved.output_names == ["predictions"] and saved.output_shape == (None, 2)


def test_the_models_a_run_returns_predict_every_image(tmp_path):
    """Training runs several steps per call; Keras's predict with that drops a last partial batch."""
    import numpy as np

    result = fit(_cfg(tmp_path, epochs=1, steps_per_execution=4))
    x = np.zeros((40, 32, 32, 1), np.float32)
    assert len(result.model.predict(x, batch_size=8, verbose=0)) == 40
    assert len(result.trained.predict(x, batch_size=8, verbose=0)) == 40
