"""The seams for other kinds of input (kerascnn.data.kinds): a registry entry says what its model takes,
a --data spec says what it produces, and fit / evaluate / predict / export / report run a kind's own
data steps, keeping pixel-only steps (augmentation, TTA, Grad-CAM, galleries, the folder audit, the
image exports) to images.

Proved with a toy kind the test registers: 8-number vectors in 3 separable classes, a small MLP.
"""
import json

import numpy as np
import pytest

import kerascnn
from kerascnn.data import kinds
from kerascnn.data.build import DataBundle
from kerascnn.data.sources import ArraySplit, Source
from kerascnn.errors import SettingError
from kerascnn.models import registry

CENTRES = np.eye(3, 8, dtype=np.float32) * 4.0


def _vectors(n, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    return (CENTRES[labels] + rng.normal(0, 0.5, (n, 8))).astype(np.float32), labels


def _open(cfg):
    x, y = _vectors(240, 0)
    tx, ty = _vectors(60, 1)
    return Source(splits={"train": ArraySplit(x, y), "test": ArraySplit(tx, ty)},
                  class_names=["a", "b", "c"], kind="toy vectors", spec=cfg.spec)


def _build(cfg, input_shape, batch_size, augment=None, splits=("train", "val"), source=None):
    import tensorflow as tf

    from kerascnn.data.build import resolve_splits

    assert augment is None, "augmentation is an image step"
    source = source or _open(cfg)
    parts = resolve_splits(source, cfg)
    if "all" in splits:
        parts["all"] = ArraySplit(*(np.concatenate([getattr(source.splits[n], f) for n in source.splits])
                                    for f in ("images", "labels")))
    if "eval" in splits:
        parts["eval"] = parts.get("test", parts.get("val"))
    bundle = DataBundle(class_names=list(source.class_names), eval_split="test" if "eval" in splits else None)
    for name in splits:
        if name in parts:
            p = parts[name]
            ds = tf.data.Dataset.from_tensor_slices((p.images, np.eye(3, dtype=np.float32)[p.labels]))
            setattr(bundle, name, ds.batch(batch_size))
            bundle.counts[name] = len(p)
    bundle.class_counts = np.bincount(parts["train"].labels, minlength=3).tolist() if "train" in parts else []
    bundle.description = f"{cfg.spec}: toy vectors"
    bundle.model_args = {"hidden": 5}  # what a text kind's vocabulary is: a builder argument the data gives
    return bundle


def _load(paths, input_shape):
    arrays = [np.load(p).astype(np.float32) for p in paths]
    return np.stack(arrays), list(map(str, paths)), []


def toy_mlp(input_shape=None, num_classes=3, include_top=True, weights=None, pooling=None,
            classifier_activation="softmax", name="toy_mlp", hidden=16):
    """An MLP over 8 numbers (a model of another kind of input than images)."""
    import keras

    from kerascnn.models.common import finish_model

    inputs = keras.Input(shape=tuple(input_shape or (8,)), name="input")
    x = keras.layers.Dense(hidden, activation="relu", name="fc1")(inputs)
    return finish_model(inputs, x, name=name, include_top=include_top, num_classes=num_classes,
                        classifier_activation=classifier_activation, pooling=None, weights=weights)


@pytest.fixture
def vectors(monkeypatch):
    registry.list_models()  # the families first, so the toy entry is added to a loaded registry
    monkeypatch.setitem(registry._REGISTRY, "toy_mlp", registry.ModelSpec(
        "toy_mlp", toy_mlp, default_input=(8,), min_input=(8,), paper="-", family="toy", inputs="vector",
        recipe={"batch_size": 32, "lr": 0.05}))
    monkeypatch.setitem(kinds._KINDS, "vector", kinds.DataKind("vector", open_source=_open, build=_build,
                                                                load_inputs=_load))
    monkeypatch.setitem(kinds._SPEC_KINDS, "toyvec", "vector")


def test_every_registered_model_but_kims_takes_images_and_every_shipped_spec_gives_images():
    inputs = {n: registry.get_spec(n).inputs for n in registry.list_models()}
    assert {n: k for n, k in inputs.items() if k != "image"} == {"kim_cnn": "text", "vqa_cnn_mlp": "image+question",
                                                                 "vqa_cnn_rn": "image+question", "wavenet": "audio"}
    assert {kinds.spec_kind(s) for s in ("digits", "mnist", "tfds:mnist", "idx:/x", "/some/folder")} == {"image"}
    assert kinds.data_kind("image").tta and kinds.data_kind("image").explain


def test_a_kind_without_a_pipeline_is_a_one_line_setting_error():
    with pytest.raises(SettingError, match="no data pipeline for vector inputs"):
        kinds.data_kind("vector")


def test_fit_evaluate_predict_and_report_run_another_kind_of_input(vectors, tmp_path):
    result = kerascnn.fit("toy_mlp", data="toyvec", epochs=4, val_split=0.2, out=str(tmp_path / "run"),
                          verbose=0)
    assert result.final["val_accuracy"] >= 0.9
    assert result.model.get_layer("fc1").units == 5  # the data's builder arguments reached the builder
    report = (result.run_dir / "report.html").read_text()
    assert "Validation" in report and "Grad-CAM" not in report and "Top losses" not in report
    model = result.run_dir / "model.keras"
    scores = kerascnn.evaluate(model, split="test")
    assert scores.count == 60 and scores.top1 >= 0.9
    with pytest.raises(SettingError, match="test-time augmentation views are for images"):
        kerascnn.evaluate(model, tta="flip")
    files = []
    for i, label in enumerate((0, 2)):
        files.append(tmp_path / f"v{i}.npy")
        np.save(files[-1], CENTRES[label])
    predictions, skipped = kerascnn.predict(model, files)
    assert [p.top[0][0] for p in predictions] == ["a", "c"] and skipped == []
    from kerascnn.inference.export import export

    with pytest.raises(SettingError, match="takes vector inputs"):
        export(model, tmp_path / "m.tflite", format="tflite")
    assert json.loads((result.run_dir / "config.json").read_text())["model"] == "toy_mlp"


@pytest.mark.parametrize("model, data, message", [
    ("toy_mlp", "digits", "toy_mlp takes vector inputs, but --data digits gives image inputs"),
    ("lenet5", "toyvec", "lenet5 takes image inputs, but --data toyvec gives vector inputs"),
])
def test_data_of_another_kind_is_refused_before_training(vectors, tmp_path, model, data, message):
    with pytest.raises(SettingError, match=message):
        kerascnn.fit(model, data=data, epochs=1, out=str(tmp_path / "run"), verbose=0)
    assert not (tmp_path / "run").exists()


def test_augmentation_is_an_image_step(vectors, tmp_path):
    with pytest.raises(SettingError, match="augmentation"):
        kerascnn.fit("toy_mlp", data="toyvec", hflip=True, epochs=1, out=str(tmp_path / "run"), verbose=0)
