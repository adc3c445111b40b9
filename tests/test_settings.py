"""One source of settings: the layers' order, sources, up-front checks, the Python API = the CLI."""
import dataclasses
import json
import sys

import pytest
from click.testing import CliRunner

import kerascnn
from kerascnn.cli import main
from kerascnn.config import FinetuneConfig, TrainConfig, check, fields_of, override, setting_names, to_dict
from kerascnn.errors import SettingError
from kerascnn.settings import Layer, read_settings_file, resolve

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _printed(args):
    r = CliRunner().invoke(main, [*args, "--print-config"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


def _flatten(table, prefix=""):
    out = {}
    for k, v in table.items():
        if isinstance(v, dict) and k in ("augment", "data", "finetune"):
            out.update(_flatten(v, f"{k}."))
        else:
            out[prefix + k] = v
    return out


def _config_values(cfg):
    out = {}
    for key, _ in fields_of(cfg):
        value = cfg
        for part in key.split("."):
            value = getattr(value, part)
        if value is not None:
            out[key] = list(value) if isinstance(value, tuple) else value
    return out


def test_python_api_resolves_exactly_what_the_cli_prints():
    printed = tomllib.loads(_printed(["fit", "--model", "lenet5", "--data", "digits", "--epochs", "3", "--hflip",
                                      "--val-split", "0.2", "--model-arg", "activation=tanh"]))
    py = kerascnn.resolve_fit("lenet5", data="digits", epochs=3, hflip=True, val_split=0.2,
                              model_args={"activation": "tanh"})
    assert _flatten(printed) == _config_values(py.config)
    # and the values really come from the layers they should
    assert py.config.batch_size == 32 and py.sources["batch_size"] == "recipe lenet5"
    assert py.config.label_smoothing == 0.1
    assert py.sources["epochs"] == "argument" and py.sources["augment.hflip"] == "argument"
    assert py.sources["optimizer"] == "default"


def test_print_config_marks_each_value_with_its_source():
    text = _printed(["fit", "--model", "lenet5", "--epochs", "3"])
    lines = {line.split("=")[0].strip(): line for line in text.splitlines() if "=" in line and not line.startswith("#")}
    assert lines["epochs"].endswith("# flag")
    assert lines["batch_size"].endswith("# recipe lenet5")
    assert lines["optimizer"].endswith("# default")


def test_a_hand_built_trainconfig_gets_the_recipe_like_the_cli():
    """kerascnn.fit(TrainConfig(...)) used to skip the model's recipe, training another thing than the CLI."""
    py = kerascnn.resolve_fit(TrainConfig(model="lenet5", epochs=2))
    cli = tomllib.loads(_printed(["fit", "--model", "lenet5", "--epochs", "2"]))
    assert py.config.batch_size == cli["batch_size"] == 32
    assert py.config.label_smoothing == cli["label_smoothing"] == 0.1


def test_layers_apply_in_the_documented_order(tmp_path):
    """default < recipe < app < file < flag, each value's source recorded."""
    from kerascnn.apps.transfer_learning import resolve as resolve_finetune

    settings_file = tmp_path / "s.toml"
    settings_file.write_text('epochs = 4\nbatch_size = 16\nlabel_smoothing = 0.2\n[augment]\nhflip = true\n')
    r = resolve_finetune({"model": "lenet5", "weights": "none", "epochs": 2, "head_epochs": 0},
                         config_file=settings_file, source="flag")
    c = r.config
    assert (c.epochs, r.sources["epochs"]) == (2, "flag")                       # flag over file over app
    assert (c.batch_size, r.sources["batch_size"]) == (16, f"file {settings_file}")  # file over app over recipe
    assert (c.label_smoothing, r.sources["label_smoothing"]) == (0.2, f"file {settings_file}")  # file over recipe
    assert (c.optimizer, r.sources["optimizer"]) == ("adam", "app finetune")
    assert c.augment.hflip and r.sources["augment.hflip"] == f"file {settings_file}"
    assert r.sources["momentum"] == "default"
    # weights none: the baseline trains its whole (random) backbone unless freeze is set explicitly
    assert c.weights is None and c.freeze == "none"
    r = resolve_finetune({"model": "lenet5", "weights": "none", "freeze": "backbone"})
    assert r.config.freeze == "backbone" and r.sources["freeze"] == "argument"


def test_printed_settings_read_back_as_a_config_file(tmp_path):
    text = _printed(["fit", "--model", "lenet5", "--epochs", "3", "--crop", "0.1", "--data", "digits",
                     "--input-shape", "28,28,1"])
    f = tmp_path / "settings.toml"
    f.write_text(text)
    again = resolve(TrainConfig, [read_settings_file(f, TrainConfig)])
    assert again.config == kerascnn.resolve_fit("lenet5", epochs=3, crop=0.1, data="digits",
                                                input_shape=(28, 28, 1)).config
    assert set(again.sources.values()) == {f"file {f}", "default"}


def test_every_recipe_key_is_declared_as_recipe_settable():
    """So that --help's "[default: the model's recipe, else X]" is said wherever a recipe can change X,
    and a plain "[default: X]" is always true."""
    recipe_fields = {key for key, f in fields_of(TrainConfig) if f.metadata.get("recipe")}
    for name in kerascnn.list_models():
        for key in kerascnn.get_spec(name).recipe:
            assert key in recipe_fields, f"{name}'s recipe sets {key}, which --help shows without 'recipe'"


def test_help_states_the_defaults_that_apply():
    r = CliRunner().invoke(main, ["fit", "--help"], terminal_width=200)
    text = " ".join(r.output.split())
    assert "--batch-size INTEGER RANGE Global batch size (over all devices). [default: the model's recipe, else 128]" in text
    assert "[default: 0.01]" in text  # the checkpoint budget: no recipe sets it
    r = CliRunner().invoke(main, ["finetune", "--help"], terminal_width=200)
    text = " ".join(r.output.split())
    assert "[default: 32 (finetune)]" in text and "[default: mobilenet_v2 (finetune)]" in text


@pytest.mark.parametrize("settings, param, needle", [
    ({"model": "lenet5", "model_args": {"lrn": True}}, "model_args", "valid: activation, subsample"),
    ({"model": "lenet5", "model_args": {"activation": 3}}, "model_args", "takes a str"),
    ({"model": "alexnet", "model_args": {"lrn": "yes"}}, "model_args", "takes a bool"),
    ({"model": "lenet5", "model_args": {"num_classes": 3}}, "model_args", "set by kerascnn"),
    ({"model": "no_such_net"}, "model", "Unknown model"),
    ({"model": "lenet5", "data": "no_such_data"}, "data", "not a known data set"),
    ({"model": "lenet5", "weights": "imagenet"}, "weights", "no pretrained weights"),
    ({"model": "lenet5", "weights": "/no/such/file.weights.h5"}, "weights", "no such weights file"),
    ({"model": "lenet5", "batch_size": 0}, "batch_size", ">= 1"),
    ({"model": "lenet5", "epochs": "ten"}, "epochs", "must be a int"),
    ({"model": "lenet5", "optimizer": "lion"}, "optimizer", "one of sgd, adam, adamw"),
    ({"model": "lenet5", "input_shape": (8, 8, 1)}, "input_shape", "at least 16x16"),
    ({"model": "lenet5", "batchsize": 64}, "batchsize", "Did you mean batch_size"),
])
def test_bad_settings_are_refused_before_any_data_or_model_is_loaded(settings, param, needle, monkeypatch):
    import kerascnn.data.build as build
    import kerascnn.training.loop as loop

    def must_not_run(*a, **k):
        raise AssertionError("data was loaded before the settings were checked")

    monkeypatch.setattr(build, "build_datasets", must_not_run)  # what the image kind's pipeline runs
    monkeypatch.setattr(loop, "resolve_model", must_not_run)
    with pytest.raises(SettingError) as e:
        kerascnn.fit(**settings, verbose=0)
    assert e.value.param == param
    assert needle in str(e.value)


def test_model_args_of_keras_applications_are_checked_against_keras():
    from kerascnn.training.configure import check_model_args

    check_model_args(kerascnn.get_spec("mobilenet_v2"), {"alpha": 0.35})
    with pytest.raises(SettingError, match="valid: alpha"):
        check_model_args(kerascnn.get_spec("mobilenet_v2"), {"alpah": 0.35})


def test_setting_names_are_unique_and_reach_every_field():
    names = setting_names(TrainConfig)
    reached = {key for keys in names.values() for key in keys}
    assert reached == {key for key, _ in fields_of(TrainConfig)}
    assert names["data"] == ("data.spec",) and names["hflip"] == ("augment.hflip",)
    assert set(names["seed"]) == {"seed", "data.seed"}


# finetune's settings: a nested group (TrainConfig.finetune), reached by their old flat names
FINETUNE = {"head_dropout": 0.3, "head_at": "flatten", "head_epochs": 2, "unfreeze": "from:fc2", "finetune_lr": 1e-3,
            "lr_decay": 0.5, "feature_cache": "off"}


def test_finetune_settings_are_a_nested_group_set_by_their_flat_names():
    assert {key for key, _ in fields_of(TrainConfig) if key.startswith("finetune.")} == \
        {f"finetune.{name}" for name in FINETUNE}
    assert not any(hasattr(TrainConfig(), name) for name in FINETUNE)  # declared once, in the group
    py = kerascnn.resolve_fit("lenet5", **FINETUNE, class_weight="balanced")
    assert py.config.finetune == FinetuneConfig(**FINETUNE) and py.config.class_weight == "balanced"
    assert all(py.sources[f"finetune.{name}"] == "argument" for name in FINETUNE)
    flags = [x for name, value in FINETUNE.items() for x in (f"--{name.replace('_', '-')}", str(value))]
    printed = tomllib.loads(_printed(["fit", "--model", "lenet5", *flags]))
    assert printed["finetune"] == FINETUNE and "head_epochs" not in printed  # a [finetune] table
    with pytest.raises(SettingError) as e:
        kerascnn.resolve_fit("lenet5", lr_decay=1.5)
    assert e.value.param == "lr_decay"  # errors name the flag's setting, not the dotted key
    r = CliRunner().invoke(main, ["fit", "--model", "lenet5", "--feature-cache", "never"])
    assert r.exit_code == 2 and "--feature-cache" in r.output


@pytest.mark.parametrize("text", [
    "head_epochs = 2\nunfreeze = \"from:fc2\"\nlr_decay = 0.5\n",                        # flat names
    "[finetune]\nhead_epochs = 2\nunfreeze = \"from:fc2\"\nlr_decay = 0.5\n",            # a table
    "finetune.head_epochs = 2\nfinetune.unfreeze = \"from:fc2\"\nfinetune.lr_decay = 0.5\n",  # dotted keys
])
def test_settings_files_set_finetune_by_flat_names_tables_or_dotted_keys(tmp_path, text):
    f = tmp_path / "s.toml"
    f.write_text(text)
    r = resolve(TrainConfig, [read_settings_file(f, TrainConfig)])
    assert (r.config.finetune.head_epochs, r.config.finetune.unfreeze, r.config.finetune.lr_decay) == \
        (2, "from:fc2", 0.5)
    assert r.sources["finetune.head_epochs"] == f"file {f}"


def test_an_old_flat_config_json_loads_into_the_finetune_group(tmp_path):
    """Run folders from before TrainConfig.finetune keep its settings flat at the top of config.json."""
    from kerascnn.runtime.run_dir import read_config, write_config

    old = {k: v for k, v in to_dict(TrainConfig(model="lenet5", epochs=3)).items() if k != "finetune"}
    old.update(FINETUNE, class_weight="balanced")
    (tmp_path / "config.json").write_text(json.dumps(old))
    cfg = read_config(tmp_path)
    assert cfg.finetune == FinetuneConfig(**FINETUNE)
    assert (cfg.model, cfg.epochs, cfg.class_weight) == ("lenet5", 3, "balanced")
    write_config(tmp_path, cfg)  # written anew: nested, and reads back the same
    assert json.loads((tmp_path / "config.json").read_text())["finetune"] == FINETUNE
    assert read_config(tmp_path) == cfg


def test_check_refuses_out_of_range_values_of_nested_configs():
    with pytest.raises(SettingError) as e:
        check(override(TrainConfig(), **{"augment.crop": 0.95}))
    assert e.value.param == "crop"
    with pytest.raises(SettingError) as e:
        check(override(TrainConfig(), lr=0.0))
    assert e.value.param == "lr" and "> 0.0" in str(e.value)


def test_a_settings_file_with_an_unknown_name_or_bad_syntax_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = [\n")
    with pytest.raises(SettingError, match="not valid TOML"):
        read_settings_file(bad, TrainConfig)
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"epoch": 3}))
    with pytest.raises(SettingError, match="Did you mean epochs"):
        resolve(TrainConfig, [read_settings_file(unknown, TrainConfig)])
    r = CliRunner().invoke(main, ["fit", "--config", str(unknown)])
    assert r.exit_code == 2 and "epoch" in r.output and "Traceback" not in r.output


def test_resolved_settings_round_trip_through_json():
    r = kerascnn.resolve_fit("lenet5", epochs=2)
    data = json.loads(json.dumps(r.to_json()))
    assert data["settings"] == json.loads(json.dumps(to_dict(r.config)))
    assert data["sources"]["epochs"] == "argument" and data["command"] == "fit"


def test_config_classes_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().epochs = 3


def test_resolve_records_layer_sources_for_dotted_and_flat_names():
    r = resolve(TrainConfig, [Layer("one", {"data": "mnist"}), Layer("two", {"data.val_split": 0.3, "seed": 7})])
    assert r.config.data.spec == "mnist" and r.sources["data.spec"] == "one"
    assert r.config.data.val_split == 0.3 and r.sources["data.val_split"] == "two"
    assert r.config.seed == r.config.data.seed == 7 and r.sources["data.seed"] == "two"


@pytest.mark.parametrize("command, cls", [("evaluate", "EvaluateConfig"), ("predict", "PredictConfig")])
def test_python_functions_take_the_commands_settings_with_the_same_defaults(command, cls):
    """kerascnn.evaluate / kerascnn.predict are the commands' twins: same names, same defaults."""
    import inspect

    import kerascnn.config as config
    import kerascnn.inference.apply as inference

    params = inspect.signature(getattr(inference, command)).parameters
    for key, f in fields_of(getattr(config, cls)):
        if key == "model":
            continue
        assert key in params, f"{command}() lacks the setting {key}"
        assert params[key].default == f.default, key


def test_evaluate_prints_its_settings_and_checks_the_split(tmp_path):
    model = tmp_path / "m.keras"
    model.write_bytes(b"not read by --print-config")
    text = _printed(["evaluate", str(model), "--split", "all", "--batch-size", "7"])
    parsed = tomllib.loads(text)
    assert parsed["split"] == "all" and parsed["batch_size"] == 7 and parsed["model"] == str(model)
    r = CliRunner().invoke(main, ["evaluate", str(model), "--split", "everything"])
    assert r.exit_code == 2 and "--split" in r.output


def test_lr_find_sweeps_and_suggests_a_rate_below_divergence(tmp_path):
    """The range test on LeNet-5 and the digits: the sweep covers the range exponentially, the loss
    falls somewhere in it, and the suggestion lies where the smoothed loss falls, before its minimum."""
    import numpy as np

    from kerascnn.training.lr_find import lr_find

    r = lr_find(kerascnn.resolve_fit("lenet5", precision="float32", batch_size=64), steps=40, start_lr=1e-5,
                end_lr=1.0, out=tmp_path / "lrf")
    lrs = np.asarray(r.lrs)
    np.testing.assert_allclose(np.diff(np.log(lrs)), np.log(1e5) / 39, rtol=1e-6)
    assert min(r.smoothed) < r.smoothed[0] - 0.05
    assert lrs[0] < r.suggestion <= r.minimum
    assert (tmp_path / "lrf" / "lr_find.png").stat().st_size > 5000
    assert (tmp_path / "lrf" / "lr_find.csv").read_text().count("\n") == len(lrs) + 1
    assert json.loads((tmp_path / "lrf" / "settings.json").read_text())["sources"]["batch_size"] == "argument"


def test_lr_find_cli_prints_the_suggestion(tmp_path):
    r = CliRunner().invoke(main, ["lr-find", "--model", "lenet5", "--steps", "12", "--batch-size", "64",
                                  "--precision", "float32", "--out", str(tmp_path / "l")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    import re

    import numpy as np

    assert (tmp_path / "l" / "lr_find.png").is_file() and f"Curve: {tmp_path / 'l' / 'lr_find.png'}" in r.output
    found = re.search(r"suggested learning rate (\S+) \(steepest descent\); minimum loss at (\S+), so (\S+) is",
                      r.output)
    suggestion, minimum, cautious = map(float, found.groups())
    # By hand from the written curve: the default sweep 1e-7 to 10 in 12 exponential steps; the
    # minimum of the smoothed loss; the steepest fall of the smoothed loss against log(lr) before it.
    curve = np.loadtxt(tmp_path / "l" / "lr_find.csv", delimiter=",", skiprows=1)
    lrs, smoothed = curve[:, 0], curve[:, 2]
    np.testing.assert_allclose(lrs, 1e-7 * 1e8 ** (np.arange(len(lrs)) / 11), rtol=1e-5)
    lowest = int(np.argmin(smoothed))
    upto = max(lowest, 2) + 1
    steepest = int(np.argmin(np.gradient(smoothed[:upto], np.log(lrs[:upto]))))
    np.testing.assert_allclose([suggestion, minimum, cautious], [lrs[steepest], lrs[lowest], lrs[lowest] / 10],
                               rtol=5e-3)  # printed to 3 significant digits


def test_auto_steps_per_execution_follows_the_measured_step_time():
    """Fast steps get 8 per compiled call; slow ones 1, so that progress shows within seconds."""
    import keras
    import tensorflow as tf

    from kerascnn.training.loop import AUTO_CALL_SECONDS, auto_steps_per_execution

    class Slow(keras.layers.Layer):
        def __init__(self, seconds, **kw):
            super().__init__(**kw)
            self.seconds = seconds

        def call(self, x):
            import time

            y = tf.numpy_function(lambda a: (time.sleep(self.seconds), a)[1], [x], x.dtype, stateful=True)
            y.set_shape(x.shape)
            return y

        def compute_output_shape(self, shape):
            return shape

    def model(seconds):
        inputs = keras.Input((4,))
        x = Slow(seconds)(inputs) if seconds else inputs
        return keras.Model(inputs, keras.layers.Dense(2)(x))

    data = tf.data.Dataset.from_tensor_slices((tf.zeros((8, 4)), tf.zeros((8, 2)))).batch(4)
    fast, _, _ = auto_steps_per_execution(model(0), data)
    slow, step, _ = auto_steps_per_execution(model(0.1), data)
    assert fast == 8
    assert slow == max(1, int(AUTO_CALL_SECONDS / step)) and slow <= 2 and step >= 0.3


def test_eta_report_speaks_early_and_advises_on_long_runs(caplog):
    import logging

    from kerascnn.training.callbacks import EtaReport

    clock = iter([0.0, 30.0, 50.0, 70.0])  # begin; the first call (with tracing); 20 s steps; 1,000 a epoch
    cb = EtaReport(epochs=30, initial_epoch=0, steps_per_epoch=1000, clock=lambda: next(clock))
    with caplog.at_level(logging.INFO, logger="kerascnn"):
        cb.on_train_begin()
        cb.on_train_batch_end(0)  # a slow first step is said at once
        cb.on_train_batch_end(1)  # 20 s for one step: past MEASURE_SECONDS, report now
        cb.on_train_batch_end(2)  # reported once only
    text = [r.getMessage() for r in caplog.records]
    assert text[0].startswith("the first 1 training step(s) took 30s")
    assert text[1] == "about 5h33m per epoch, 166h40m for the 30 epoch(s) of this run (timed over 1 steps)"
    assert "smaller --input-shape" in text[2] and len(text) == 3
