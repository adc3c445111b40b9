"""evaluate and predict through the Python API: which examples are scored, class-name checks, the scores.

The models are a pooling layer and a softmax (any .keras file will do for inference); the data are
image folders of tiny one-colour PNGs, so every test runs in a second or two.
"""
from types import SimpleNamespace

import numpy as np
import pytest

import data_helpers as h
from kerascnn.config import TrainConfig, override
from kerascnn.errors import SettingError
from kerascnn.inference.apply import check_class_names, evaluate, predict
from kerascnn.models.loading import load_model
from kerascnn.runtime import run_dir as rd

DIGITS = [str(i) for i in range(10)]


def _model(folder, classes, channels=3, data=None):
    """A saved 8x8 model beside classes.json, and beside config.json when `data` (its run's spec) is given."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, channels), name="input")
    x = keras.layers.Rescaling(1 / 255, name="rescale")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(len(classes), activation="softmax", name="predictions")(x)
    folder.mkdir(parents=True, exist_ok=True)
    keras.Model(inputs, outputs, name="tiny").save(folder / rd.MODEL)
    rd.write_classes(folder, classes)
    if data is not None:
        rd.write_config(folder, override(TrainConfig(), **{"data.spec": str(data)}))
    return folder / rd.MODEL


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """4 class folders x 100 images."""
    return h.class_folder(str(tmp_path_factory.mktemp("plain") / "data"), {c: 100 for c in "abcd"}, size=(8, 8))


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    """train/ (3 a class), val/ (2 a class) and test/ (1 a class), 4 classes."""
    root = tmp_path_factory.mktemp("layout") / "data"
    for split, n in (("train", 3), ("val", 2), ("test", 1)):
        h.class_folder(str(root / split), {c: n for c in "abcd"}, size=(8, 8))
    return str(root)


def test_a_folder_the_model_never_saw_is_scored_whole(plain, tmp_path):
    path = _model(tmp_path / "m", list("abcd"))
    r = evaluate(path, plain, out=tmp_path / "cm.png")
    assert (r.count, r.split, r.data) == (400, "all", plain)
    assert r.confusion_png == tmp_path / "cm.png" and r.confusion_png.stat().st_size > 1000
    # The scores against numpy on the model's own predictions of the same files
    from kerascnn.data import load_images

    images, files, _ = load_images(plain, (8, 8, 3))
    labels = np.array(["abcd".index(f.split("/")[-2]) for f in files])
    p = load_model(path).predict(images, verbose=0).astype(np.float64)
    cm = np.zeros((4, 4), np.int64)
    np.add.at(cm, (labels, p.argmax(-1)), 1)
    np.testing.assert_array_equal(r.confusion, cm)
    assert r.top1 == pytest.approx(np.mean(p.argmax(-1) == labels)) and r.top5 is None  # 4 classes: no top-5
    assert r.loss == pytest.approx(np.mean(-np.log(p[np.arange(400), labels])), rel=1e-5)


def test_a_folder_with_train_val_test_is_scored_on_test_unless_a_split_is_named(layout, tmp_path):
    path = _model(tmp_path / "m", list("abcd"))
    r = evaluate(path, layout, plot=False)
    assert (r.count, r.split) == (4, "test") and r.confusion_png is None
    assert [(s, evaluate(path, layout, split=s, plot=False).count) for s in ("val", "train", "all")] == \
        [("val", 8), ("train", 12), ("all", 24)]


def test_the_runs_own_folder_is_scored_on_what_fit_held_out(plain, tmp_path):
    path = _model(tmp_path / "m", list("abcd"), data=plain)  # config.json: trained on `plain`, 10% held out
    for data in (None, plain + "/"):  # data=None: the run's own data
        r = evaluate(path, data, plot=False)
        assert (r.count, r.split, r.data.rstrip("/")) == (40, "val", plain)
    assert evaluate(path, split="all", plot=False).count == 400


def test_without_a_run_config_the_default_data_is_digits_held_out(tmp_path):
    r = evaluate(_model(tmp_path / "m", DIGITS, channels=1), plot=False)
    assert (r.data, r.split, r.count) == ("digits", "val", 179)


def test_bad_split_names_are_setting_errors(tmp_path):
    with pytest.raises(SettingError, match="train, val, test, all") as e:
        evaluate(tmp_path / "no-model-needed.keras", split="testing")  # checked before anything is read
    assert e.value.param == "split"
    with pytest.raises(SettingError, match="digits has no test split") as e:
        evaluate(_model(tmp_path / "m", DIGITS, channels=1), split="test", plot=False)
    assert e.value.param == "split"


def test_data_with_other_class_names_is_refused_naming_both_lists(tmp_path):
    path = _model(tmp_path / "m", DIGITS)
    names = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    other = h.class_folder(str(tmp_path / "cifar-like"), {n: 1 for n in names}, size=(8, 8))
    with pytest.raises(SettingError) as e:
        evaluate(path, other, plot=False)
    message = str(e.value)
    assert e.value.param == "data" and "\n" not in message
    assert "[bird, car, cat, deer, dog, frog, horse, plane, ship, truck]" in message  # the folder's, sorted
    assert "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]" in message and "ignore_class_names" in message
    r = evaluate(path, other, ignore_class_names=True, plot=False)
    assert r.count == 10 and r.class_names == DIGITS  # the model's names label the matrix
    same = h.class_folder(str(tmp_path / "digit-folders"), {n: 1 for n in DIGITS}, size=(8, 8))
    assert evaluate(path, same, plot=False).class_names == DIGITS


def test_other_class_counts_are_refused_even_when_ignoring_names(plain, tmp_path):
    with pytest.raises(SettingError, match="has 4 classes but the model predicts 10") as e:
        evaluate(_model(tmp_path / "m", DIGITS), plain, ignore_class_names=True, plot=False)
    assert e.value.param == "data"


def test_class_name_lists_are_shortened_and_reorderings_named(tmp_path):
    rd.write_classes(tmp_path, [f"model{i}" for i in range(30)])
    model = SimpleNamespace(output_shape=(None, 30))
    with pytest.raises(SettingError) as e:
        check_class_names(model, tmp_path / "model.keras", [f"data{i}" for i in range(30)], "d")
    assert "[data0, data1, data2, data3, data4, data5, data6, data7, data8, data9, data10, ... data29] (30)" \
        in str(e.value) and "model29] (30)" in str(e.value)
    rd.write_classes(tmp_path, ["b", "a"])
    with pytest.raises(SettingError, match="the same names in another order"):
        check_class_names(SimpleNamespace(output_shape=(None, 2)), tmp_path / "model.keras", ["a", "b"], "d")
    assert check_class_names(model, tmp_path / "nothing-beside" / "m.keras", list("xyz") * 10, "d")[:3] == list("xyz")


def test_predict_names_the_classes_best_first(plain, tmp_path):
    path = _model(tmp_path / "m", list("abcd"))
    preds, skipped = predict(path, [plain + "/a/000.png", plain + "/b", str(tmp_path / "missing.png")], top_k=3)
    assert len(preds) == 101 and skipped == [(str(tmp_path / "missing.png"), "no such file or folder")]
    for p in preds:
        assert len(p.top) == 3 and {c for c, _ in p.top} <= set("abcd")
        assert [q for _, q in p.top] == sorted((q for _, q in p.top), reverse=True)


def test_the_cli_predict_needs_inputs_and_takes_texts_only_for_text_models(tmp_path):
    from click.testing import CliRunner

    from kerascnn.cli import main

    path = _model(tmp_path / "m", list("abcd"))
    r = CliRunner().invoke(main, ["predict", str(path)])
    assert r.exit_code == 2 and "give the files to predict" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["predict", str(path), "--text", "a fine film"])
    assert r.exit_code == 2 and "takes image inputs" in r.output and "Traceback" not in r.output


def test_the_cli_scores_a_whole_folder_and_refuses_other_class_names(plain, tmp_path):
    from click.testing import CliRunner

    from kerascnn.cli import main

    path = _model(tmp_path / "m", list("abcd"))
    r = CliRunner().invoke(main, ["evaluate", str(path), "--data", plain, "--out", str(tmp_path / "cm.png")])
    assert r.exit_code == 0, r.output
    assert "(all split): examples 400 " in r.output
    other = _model(tmp_path / "o", list("wxyz"))
    r = CliRunner().invoke(main, ["evaluate", str(other), "--data", plain])
    assert r.exit_code == 2 and "--ignore-class-names" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["evaluate", str(other), "--data", plain, "--ignore-class-names",
                                  "--split", "all", "--out", str(tmp_path / "cm2.png")])
    assert r.exit_code == 0, r.output
    assert "examples 400" in r.output


def test_tta_views_are_the_papers_crops_and_mirrors():
    import tensorflow as tf

    from kerascnn.inference.tta import base_shape, view_count, views

    assert base_shape("10crop", (224, 224, 3)) == (256, 256, 3)
    x = np.random.default_rng(0).random((2, 9, 10, 3)).astype(np.float32)
    got = [np.asarray(v) for v in views(tf.constant(x), "10crop", (8, 8))]
    want = [x[:, 0:8, 0:8], x[:, 0:8, 2:10], x[:, 1:9, 0:8], x[:, 1:9, 2:10], x[:, 0:8, 1:9]]
    want += [w[:, :, ::-1] for w in want]
    assert len(got) == view_count("10crop") == 10
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    ms = views(tf.constant(np.zeros((1, 10, 10, 3), np.float32)), "multiscale", (8, 8))
    assert len(ms) == view_count("multiscale") and all(tuple(v.shape) == (1, 8, 8, 3) for v in ms)


def test_flip_tta_and_an_ensemble_average_probabilities_like_numpy(plain, tmp_path):
    from kerascnn.data import load_images

    a, b = _model(tmp_path / "a", list("abcd")), _model(tmp_path / "b", list("abcd"))
    import keras

    keras.utils.set_random_seed(1)  # a second, different member
    m = load_model(b)
    m.get_layer("predictions").set_weights([w * 3 + 0.1 for w in m.get_layer("predictions").get_weights()])
    m.save(b)
    images, files, _ = load_images(plain, (8, 8, 3))
    labels = np.array(["abcd".index(f.split("/")[-2]) for f in files])

    def probs(path, x):
        return load_model(path).predict(x, verbose=0).astype(np.float64)

    flip = (probs(a, images) + probs(a, images[:, :, ::-1])) / 2
    r = evaluate(a, plain, tta="flip", plot=False)
    assert r.tta == "flip" and r.count == 400
    assert r.top1 == pytest.approx(np.mean(flip.argmax(-1) == labels))
    assert r.loss == pytest.approx(np.mean(-np.log(flip[np.arange(400), labels])), rel=1e-5)

    pa, pb = probs(a, images), probs(b, images)
    r = evaluate(a, plain, ensemble=[b], plot=False)
    both = (pa + pb) / 2
    assert r.top1 == pytest.approx(np.mean(both.argmax(-1) == labels))
    assert [m["top1"] for m in r.members] == pytest.approx([np.mean(pa.argmax(-1) == labels),
                                                            np.mean(pb.argmax(-1) == labels)])
    assert r.members[1]["loss"] == pytest.approx(np.mean(-np.log(pb[np.arange(400), labels])), rel=1e-5)


def test_the_cli_reports_each_member_and_the_ensemble_as_json(plain, tmp_path):
    import json

    from click.testing import CliRunner

    from kerascnn.cli import main

    a, b = _model(tmp_path / "a", list("abcd")), _model(tmp_path / "b", list("abcd"))
    r = CliRunner().invoke(main, ["evaluate", str(a), "--data", plain, "--ensemble", str(b), "--tta", "10crop",
                                  "--json", "--out", str(tmp_path / "cm.png")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["tta"] == "10crop" and data["examples"] == 400 and len(data["members"]) == 2
    other = _model(tmp_path / "c", list("abcd"), channels=1)
    r = CliRunner().invoke(main, ["evaluate", str(a), "--data", plain, "--ensemble", str(other)])
    assert r.exit_code == 2 and "--ensemble" in r.output
