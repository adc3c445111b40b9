"""A text model end to end through the commands: fit on a rated TSV, predict raw strings, and export a
SavedModel that serves raw strings (the tokenizer inside); formats that cannot hold it are refused."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

import kerascnn
from kerascnn.cli import main
from kerascnn.errors import SettingError


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("text")
    good, bad = ("a warm witty fine film", "a dull tedious cold mess")
    lines = [f"{i}\t{2.0 if i % 2 else -2.0}\t{good if i % 2 else bad} number {i % 7}" for i in range(200)]
    (tmp / "rated.tsv").write_text("\n".join(lines) + "\n")
    result = kerascnn.fit("kim_cnn", data=f"tsv:{tmp / 'rated.tsv'}", label_threshold=0.0, epochs=3,
                          optimizer="adam", lr=1e-3, batch_size=16, precision="float32",
                          model_args={"filters": 8, "embedding_dim": 16, "sequence_length": 12},
                          out=str(tmp / "run"), verbose=0)
    return result, tmp


def test_fit_predict_and_the_cli_on_raw_strings(text_run):
    result, tmp = text_run
    assert result.class_names == ["negative", "positive"] and result.final["val_accuracy"] == 1.0
    model = result.run_dir / "model.keras"
    preds, _ = kerascnn.predict(model, texts=["a witty fine film", "a tedious mess"])
    assert [p.top[0][0] for p in preds] == ["positive", "negative"]
    r = CliRunner().invoke(main, ["predict", str(model), "--text", "a warm film", "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output[r.output.index("["):])[0]["top"][0]["class"] == "positive"


def test_a_savedmodel_serves_raw_strings_like_the_keras_model(text_run):
    import tensorflow as tf

    from kerascnn.inference.export import export

    result, tmp = text_run
    r = export(result.run_dir / "model.keras", tmp / "served", format="savedmodel")
    assert r.max_abs_diff is not None and r.max_abs_diff <= 1e-5 and r.checked_images > 0
    served = tf.saved_model.load(str(tmp / "served"))
    out = served.signatures["serving_default"](texts=tf.constant(["a witty fine film", "a tedious mess"]))
    assert [t.decode() for t in out["top_class"].numpy()] == ["positive", "negative"]
    keras_probs = result.model.predict(np.asarray(["a witty fine film", "a tedious mess"], dtype=object), verbose=0)
    np.testing.assert_allclose(out["probabilities"].numpy(), keras_probs, atol=1e-5)


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_formats_that_cannot_hold_the_tokenizer_are_refused_in_one_line(text_run, fmt):
    from kerascnn.inference.export import export

    result, tmp = text_run
    with pytest.raises(SettingError, match="carrying its tokenizer.*--format savedmodel"):
        export(result.run_dir / "model.keras", tmp / f"m.{fmt}", format=fmt)
