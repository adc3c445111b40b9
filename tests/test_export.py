"""kerascnn export: SavedModel and TFLite files that take raw uint8 images, checked against Keras."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from kerascnn.cli import main
from kerascnn.errors import SettingError
from kerascnn.inference.export import export
from kerascnn.runtime import run_dir as rd


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small digits classifier with our Preprocess layer first, beside classes.json."""
    import keras

    from kerascnn.models.preprocessing import Preprocess

    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("m")
    inputs = keras.Input((8, 8, 1), name="input")
    x = Preprocess("scale", name="preprocess")(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(x)
    x = keras.layers.Flatten(name="flat")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="predictions")(x)
    keras.Model(inputs, outputs, name="tiny").save(folder / rd.MODEL)
    rd.write_classes(folder, [str(i) for i in range(10)])
    return folder / rd.MODEL


def test_savedmodel_takes_uint8_images_and_names_the_class(tiny, tmp_path):
    import tensorflow as tf

    from kerascnn.models.loading import load_model

    r = export(tiny, tmp_path / "sm", format="savedmodel")
    assert r.max_abs_diff <= 1e-4 and r.checked_images == 64
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    images = np.random.default_rng(1).integers(0, 256, (3, 8, 8, 1)).astype(np.uint8)
    out = loaded.signatures["serving_default"](images=tf.constant(images))
    want = load_model(tiny).predict(images.astype(np.float32), verbose=0)
    np.testing.assert_allclose(out["probabilities"].numpy(), want, atol=1e-5)
    assert [s.decode() for s in out["top_class"].numpy()] == [str(i) for i in want.argmax(-1)]
    names = loaded.signatures["class_names"]()["class_names"].numpy()
    assert [n.decode() for n in names] == [str(i) for i in range(10)]
    assert json.loads((tmp_path / "sm" / "classes.json").read_text()) == [str(i) for i in range(10)]


def test_tflite_float_and_int8_with_calibration_on_real_digits(tiny, tmp_path):
    r = export(tiny, tmp_path / "m.tflite", format="tflite", calibration_data="digits")
    assert r.max_abs_diff <= 1e-4 and r.checked_images == 200
    assert r.keras_top1 == r.export_top1
    r8 = export(tiny, tmp_path / "m8.tflite", format="tflite-int8", calibration_data="digits")
    assert r8.max_abs_diff is None and abs(r8.top1_drop) < 0.1  # 8-bit weights barely move a small net
    assert (tmp_path / "m8.tflite").stat().st_size < (tmp_path / "m.tflite").stat().st_size
    assert (tmp_path / "m8.tflite.classes.json").is_file()


def test_bad_requests_are_setting_errors(tiny, tmp_path):
    with pytest.raises(SettingError) as e:
        export(tiny, tmp_path / "x.tflite", format="tflite-int8")
    assert e.value.param == "calibration_data"
    with pytest.raises(SettingError):
        export(tiny, tmp_path / "x", format="coreml")
    r = CliRunner().invoke(main, ["export", str(tiny), "--format", "tflite-int8", "-o", str(tmp_path / "x.tflite")])
    assert r.exit_code == 2 and "--calibration-data" in r.output


def test_export_cli_reports_its_check(tiny, tmp_path):
    r = CliRunner().invoke(main, ["export", str(tiny), "--format", "tflite", "-o", str(tmp_path / "c.tflite")],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "largest difference from the Keras model's probabilities" in r.output and "random images" in r.output
