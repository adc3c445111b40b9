"""Where a VQA model's answer came from (kerascnn.analysis.vqa_explain, `kerascnn visualize vqa`), the
registry's "cam" layer with a backbone, and the SavedModel export of image+question models.

References are independent of the code under test: g's outputs per pair are numpy concatenations
and matrix products from the layers' weights; a planted g (weights set by hand on the objects'
coordinates only) has its top pair and cell heat worked out by hand.
"""
import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from kerascnn.analysis.vqa_explain import explain_vqa
from kerascnn.errors import SettingError
from kerascnn.models import create_model

QUESTION = "What is the shape of the red object?"
VOCAB = ["what", "is", "the", "shape", "of", "red", "object", "?"]
TINY = dict(conv_filters=4, embedding_dim=4, question_units=4, vocabulary=VOCAB)


def _rn(**kwargs):
    keras.utils.set_random_seed(0)
    return create_model("vqa_cnn_rn", **{**TINY, "g_units": 8, "g_layers": 2, "f_units": 8, "f_layers": 1,
                                         **kwargs})


def _image(seed=0, shape=(75, 75, 3)):
    return np.random.default_rng(seed).uniform(0, 255, shape).astype("float32")


def _objects_and_question(model, image):
    """The RN's inputs, objects (N, D) and q (Q,), read from the model's own layers."""
    tap = keras.Model(model.inputs, [model.get_layer("objects").output, model.get_layer("question_lstm").output])
    objects, q = tap({"image": image[None], "question": np.array([QUESTION], dtype=object)})
    return np.asarray(objects)[0].astype(np.float64), np.asarray(q)[0].astype(np.float64)


def _g_numpy(model, objects, q):
    """g over every ordered pair (i, j) as the paper writes it: [o_i, o_j, q] through g1, g2 (ReLU)."""
    n = len(objects)
    pairs = np.stack([np.concatenate([objects[i], objects[j], q]) for i in range(n) for j in range(n)])
    w1, b1 = (np.asarray(v, np.float64) for v in model.get_layer("g1").get_weights())
    w2, b2 = (np.asarray(v, np.float64) for v in model.get_layer("g2").get_weights())
    return np.maximum(np.maximum(pairs @ w1 + b1, 0) @ w2 + b2, 0)  # (N*N, U)


def test_top_pairs_are_the_largest_g_outputs_computed_in_numpy():
    model, image = _rn(), _image()
    found = explain_vqa(model, image, QUESTION, pairs=5)
    g = _g_numpy(model, *_objects_and_question(model, image))
    norms = np.linalg.norm(g, axis=-1)
    np.testing.assert_allclose(found.pair_scores, norms, rtol=1e-4, atol=1e-5)
    want = np.argsort(-norms, kind="stable")[:5]
    assert [p.first * 25 + p.second for p in found.pairs] == list(want)
    assert found.pairs[0].first_cell == divmod(int(want[0]) // 25, 5)
    assert found.method == "relations" and found.layer == "g2" and found.grid == (5, 5)
    probs = np.asarray(model.predict_on_batch({"image": image[None], "question": np.array([QUESTION], dtype=object)}))
    assert found.answer_index == int(probs.argmax()) and found.probability == pytest.approx(float(probs.max()), 1e-5)


def _plant(model):
    """g1 unit 0 = relu(x_i + y_i - x_j - y_j), every other weight of g1 zero; g2 the identity. The
    largest pair output is (bottom-right cell, top-left cell) = (24, 0), and both cells take part in
    pairs summing to 50 (over the grid x and y add up to 0), the most of any cell."""
    g1 = model.get_layer("g1")
    d = g1.object_dim
    kernel = np.zeros(g1.kernel.shape, np.float32)
    kernel[[d - 2, d - 1], 0] = 1.0  # o_i's (x, y)
    kernel[[2 * d - 2, 2 * d - 1], 0] = -1.0  # o_j's (x, y)
    g1.set_weights([kernel, np.zeros(g1.units, np.float32)])
    units = model.get_layer("g2").units
    model.get_layer("g2").set_weights([np.eye(g1.units, units, dtype=np.float32), np.zeros(units, np.float32)])


def test_a_planted_pair_is_found_and_its_cells_are_the_hottest():
    model = _rn()
    _plant(model)
    found = explain_vqa(model, _image(1), QUESTION, pairs=3)
    assert (found.pairs[0].first, found.pairs[0].second) == (24, 0) and found.pairs[0].score == pytest.approx(4.0)
    assert found.pairs[0].first_cell == (4, 4) and found.pairs[0].second_cell == (0, 0)
    assert found.heat[0, 0] == pytest.approx(1.0) and found.heat[4, 4] == pytest.approx(1.0)
    assert np.sort(found.heat.ravel())[-3] < 1.0 - 1e-3


def test_the_logit_score_is_each_pairs_share_of_the_answers_logit():
    """With f linear (no hidden layers, no dropout) the logits are relations @ W + b, so pair p's
    contribution is g_p . W[:, answer] exactly, and the contributions add up to the logit less b."""
    model = _rn(f_layers=0, dropout=0.0)
    _plant(model)
    image = _image(2)
    found = explain_vqa(model, image, QUESTION, score="logit")
    g = _g_numpy(model, *_objects_and_question(model, image))
    w, b = (np.asarray(v, np.float64) for v in model.get_layer("logits").get_weights())
    logits = g.sum(0) @ w + b
    answer = int(logits.argmax())
    assert found.answer_index == answer and found.score == "logit"
    np.testing.assert_allclose(found.pair_scores, g @ w[:, answer], rtol=1e-4, atol=1e-5)
    assert found.pair_scores.sum() == pytest.approx(logits[answer] - b[answer], rel=1e-4, abs=1e-4)


def test_the_mlp_is_explained_by_grad_cam_on_its_cells():
    keras.utils.set_random_seed(0)
    model = create_model("vqa_cnn_mlp", **TINY, f_units=8, f_layers=1)
    found = explain_vqa(model, _image(), QUESTION)
    assert found.method == "gradcam" and found.layer == "image_features" and found.pairs == ()
    assert found.heat.shape == (5, 5) and found.heat.min() >= 0 and found.heat.max() in (0.0, pytest.approx(1.0))


def test_with_a_backbone_cam_is_the_backbones_last_map():
    from kerascnn.models.features import feature_extractor

    keras.utils.set_random_seed(0)
    model = create_model("vqa_cnn_mlp", **TINY, f_units=8, f_layers=1, backbone="lenet5", input_shape=(32, 32, 3))
    extractor = feature_extractor(model, "cam")
    assert extractor.layer_names == ("image_features",)
    image = _image(3, (32, 32, 3))
    got = np.asarray(extractor({"image": image[None], "question": np.array([QUESTION], dtype=object)}))
    want = np.asarray(model.get_layer("backbone")(image[None], training=False))  # LeNet-5's 5x5x16 map
    assert want.shape == (1, 5, 5, 16)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    found = explain_vqa(model, image, QUESTION)  # Grad-CAM through the backbone's map
    assert found.grid == (5, 5) and found.layer == "image_features"
    # Without a backbone "cam" is the fourth convolution's output.
    plain = create_model("vqa_cnn_rn", **TINY, g_units=8, g_layers=1, f_units=8, f_layers=1)
    assert plain.get_layer("image_features").input is plain.get_layer("conv4_relu").output


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("explain")
    _rn().save(root / "model.keras")
    Image.fromarray(_image().astype(np.uint8)).save(root / "scene.png")
    return root


def _visualize(*args):
    from kerascnn.cli import main

    return CliRunner().invoke(main, ["visualize", "vqa", *map(str, args)])


def test_visualize_vqa_writes_the_png_and_json(saved):
    out = saved / "out"
    r = _visualize(saved / "model.keras", saved / "scene.png", QUESTION, "--pairs", "3", "--out", out, "--json")
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    assert got["question"] == QUESTION and len(got["pairs"]) == 3 and np.asarray(got["heat"]).shape == (5, 5)
    png = out / "vqa_scene.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "vqa.json").read_text())["pairs"] == got["pairs"]
    table = _visualize(saved / "model.keras", saved / "scene.png", QUESTION, "--out", saved / "out2")
    assert table.exit_code == 0 and table.output.startswith(QUESTION + " -> ") and "  5. object" in table.output


def test_visualize_vqa_refuses_other_models_and_unknown_words_in_one_line(saved):
    lenet = saved / "lenet.keras"
    create_model("lenet5", input_shape=(32, 32, 1), num_classes=3).save(lenet)
    r = _visualize(lenet, saved / "scene.png", QUESTION)
    assert r.exit_code == 2 and "does not take an image and a question" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1, r.output
    r = _visualize(saved / "model.keras", saved / "scene.png", "What colour is the cube?")
    assert r.exit_code == 2 and "colour, cube" in r.output and len(r.output.strip().splitlines()) == 1


def test_an_image_question_model_exports_as_a_savedmodel_taking_both(saved):
    import tensorflow as tf

    from kerascnn.inference.export import export

    model_path = saved / "model.keras"
    r = export(model_path, saved / "served", format="savedmodel")
    assert r.max_abs_diff is not None and r.max_abs_diff <= 1e-5 and r.checked_images > 0
    serve = tf.saved_model.load(str(saved / "served")).signatures["serving_default"]
    images = np.stack([_image(4), _image(5)]).astype(np.uint8)
    questions = [QUESTION, "What is the shape of the object?"]
    got = serve(images=tf.constant(images), questions=tf.constant(questions))["probabilities"].numpy()
    want = keras.models.load_model(model_path).predict_on_batch(
        {"image": images.astype("float32"), "question": np.array(questions, dtype=object)})
    np.testing.assert_allclose(got, want, atol=1e-5)
    with pytest.raises(SettingError, match="image\\+question model carrying its tokenizer.*--format savedmodel"):
        export(model_path, saved / "m.tflite", format="tflite")
