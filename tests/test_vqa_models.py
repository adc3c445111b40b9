"""The VQA models (kerascnn.models.vqa: CNN+RN and CNN+MLP, Santoro et al. 2017), their harness
path (fit, evaluate per question type) and `kerascnn vqa ask`.

References are independent of the code under test: the plain pairwise RN is numpy concatenation
through a keras Dense, parameter counts are worked out by hand from the paper's layer sizes.
"""
import json
from types import SimpleNamespace

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from kerascnn.models import create_model
from kerascnn.models.vqa import ObjectCoordinates, PairwiseDense

QUESTIONS = ["What is the shape of the red object?", "Is the blue object on the left or on the right?"]
TINY = dict(conv_filters=4, embedding_dim=4, question_units=4, f_units=8, f_layers=1)
TINY_G = dict(g_units=8, g_layers=2)  # vqa_cnn_rn only


def _tiny(name):
    return {**TINY, **(TINY_G if name == "vqa_cnn_rn" else {})}


def _inputs(n=2, shape=(75, 75, 3), seed=0):
    pixels = np.random.default_rng(seed).uniform(0, 255, (n, *shape)).astype("float32")
    return {"image": pixels, "question": np.array((QUESTIONS * n)[:n], dtype=object)}


def _plain_pairs(objects, question, kernel, bias):
    """The RN as the paper writes it: every ordered pair (o_i, o_j) concatenated with q, through a
    Dense over the concatenation (Keras's own layer, given the same weights)."""
    b, n, d = objects.shape
    pairs = [np.concatenate([objects[:, i], objects[:, j], question], axis=-1) for i in range(n) for j in range(n)]
    dense = keras.layers.Dense(kernel.shape[1])
    dense.build((None, kernel.shape[0]))
    dense.set_weights([kernel, bias])
    return np.stack([np.asarray(dense(p)) for p in pairs], axis=1)  # (B, N*N, U), pair (i, j) at i*N + j


@pytest.mark.parametrize("n,d,q,units", [(5, 3, 4, 6), (25, 26, 128, 16)])
def test_factorised_first_g_layer_equals_the_plain_pairwise_dense(n, d, q, units):
    rng = np.random.default_rng(n)
    objects = rng.normal(size=(3, n, d)).astype("float32")
    question = rng.normal(size=(3, q)).astype("float32")
    layer = PairwiseDense(units)
    layer.build(((None, n, d), (None, q)))
    kernel = rng.normal(size=(2 * d + q, units)).astype("float32")
    bias = rng.normal(size=(units,)).astype("float32")
    layer.set_weights([kernel, bias])
    got = np.asarray(layer([objects, question]))
    want = _plain_pairs(objects, question, kernel, bias)
    assert got.shape == (3, n * n, units)
    np.testing.assert_allclose(got, want, atol=1e-5 * max(1.0, np.abs(want).max()), rtol=0)
    relu = PairwiseDense(units, activation="relu")
    relu.build(((None, n, d), (None, q)))
    relu.set_weights([kernel, bias])
    np.testing.assert_allclose(np.asarray(relu([objects, question])), np.maximum(want, 0), atol=1e-4, rtol=0)


def test_objects_are_the_cells_tagged_with_their_coordinates():
    fmap = np.arange(2 * 2 * 3 * 5, dtype="float32").reshape(2, 2, 3, 5)
    got = np.asarray(ObjectCoordinates()(fmap))
    assert got.shape == (2, 6, 7)
    np.testing.assert_array_equal(got[:, :, :5], fmap.reshape(2, 6, 5))  # row by row
    xy = [(x, y) for y in (-1.0, 1.0) for x in (-1.0, 0.0, 1.0)]
    np.testing.assert_allclose(got[0, :, 5:], xy)
    np.testing.assert_allclose(got[1, :, 5:], xy)


def test_vqa_cnn_rn_parameters_by_hand():
    """The paper's sizes: 4 convs of 24 3x3 maps (BN, no conv bias), 5x5 cells + (x, y) = 25 objects
    of 26; a 128-unit LSTM over 32-d word vectors; g 4 x 256 over [o_i, o_j, q]; f 256, 256; 12 answers."""
    vocab = ["what", "is", "the", "shape", "of", "red", "object", "?"]  # + "" and "[UNK]"
    model = create_model("vqa_cnn_rn", vocabulary=vocab)
    conv = 3 * 3 * 3 * 24 + 3 * (3 * 3 * 24 * 24) + 4 * (4 * 24)  # kernels + BN (gamma, beta, mean, var)
    words = 10 * 32
    lstm = 4 * (128 * (32 + 128) + 128)
    g = (2 * 26 + 128) * 256 + 256 + 3 * (256 * 256 + 256)
    f = 2 * (256 * 256 + 256) + 256 * 12 + 12
    assert model.get_layer("objects").output.shape == (None, 25, 26)
    assert model.get_layer("relations").output.shape == (None, 256)
    assert model.get_layer("g1").count_params() == (2 * 26 + 128) * 256 + 256
    assert model.get_layer("question_lstm").count_params() == lstm
    assert model.count_params() == conv + words + lstm + g + f == 477_716
    mlp = create_model("vqa_cnn_mlp", vocabulary=vocab)
    # CNN+MLP (Santoro's code): flattened 5x5x24 map + q -> 256 -> 256 -> 12.
    assert mlp.count_params() == conv + words + lstm + ((5 * 5 * 24 + 128) * 256 + 256) + (256 * 256 + 256) \
        + (256 * 12 + 12)


@pytest.mark.parametrize("name,args", [("vqa_cnn_rn", {}), ("vqa_cnn_mlp", {"question_encoder": "cnn"}),
                                       ("vqa_cnn_rn", {"backbone": "lenet5", "input_shape": (32, 32, 3)})])
def test_saved_and_loaded_with_safe_mode_predicts_the_same(tmp_path, name, args):
    from kerascnn.models.loading import load_model

    keras.utils.set_random_seed(1)
    model = create_model(name, vocabulary=["what", "is", "the", "red", "blue", "object"], **{**_tiny(name), **args})
    x = _inputs(3, model.get_layer("image").output.shape[1:] if "input_shape" in args else (75, 75, 3))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = load_model(path)  # safe_mode=True
    np.testing.assert_array_equal(np.asarray(loaded.predict_on_batch(x)), np.asarray(model.predict_on_batch(x)))


def test_a_backbone_replaces_the_four_convolutions():
    model = create_model("vqa_cnn_rn", backbone="lenet5", input_shape=(32, 32, 3), **_tiny("vqa_cnn_rn"))
    names = [layer.name for layer in model.layers]
    assert "backbone" in names and "conv1_conv" not in names and "preprocess" not in names
    # LeNet-5's last map at 32x32 is 5x5x16: 25 objects of 16 + (x, y).
    assert model.get_layer("objects").output.shape == (None, 25, 18)


def test_bad_arguments_are_model_errors():
    from kerascnn.errors import ModelError

    with pytest.raises(ModelError, match="question_encoder"):
        create_model("vqa_cnn_rn", question_encoder="gru", **_tiny("vqa_cnn_rn"))
    with pytest.raises(ModelError, match="pooling"):
        create_model("vqa_cnn_mlp", pooling="avg", **TINY)


def test_fit_and_evaluate_per_question_type_on_sort_of_clevr(tmp_path):
    """The harness end to end (a CI smoke test: 40 scenes, one epoch, tiny widths): the run folder,
    then evaluate's top-1 per question type and group, whose counts add up to the split's."""
    import kerascnn
    from kerascnn.data.vqa import sort_of_clevr_sizes

    result = kerascnn.fit("vqa_cnn_rn", data="sort_of_clevr:40", epochs=1, batch_size=128, out=str(tmp_path / "run"),
                          model_args=_tiny("vqa_cnn_rn"), precision="float32", verbose=0)
    for name in ("model.keras", "history.csv", "config.json", "classes.json", "report.html"):
        assert (result.run_dir / name).is_file(), name
    assert result.model.get_layer("vectorize").vocabulary_size() > 20  # the training questions' words
    # each epoch's validation accuracy per group (ValAccuracyByGroup): half the questions each, so
    # their mean is Keras's own val_accuracy, computed in its validation pass
    row = result.history[-1]
    assert 0.0 <= row["val_accuracy_relational"] <= 1.0
    np.testing.assert_allclose((row["val_accuracy_relational"] + row["val_accuracy_non_relational"]) / 2,
                               row["val_accuracy"], atol=1e-6)
    assert "val_accuracy_relational" in (result.run_dir / "history.csv").read_text().splitlines()[0]
    r = kerascnn.evaluate(result.run_dir / "model.keras", plot=False)
    assert r.split == "test" and r.count == sort_of_clevr_sizes(40)["test"] * 20
    assert [t["type"] for t in r.by_type] == ["shape", "horizontal", "vertical", "closest", "furthest", "count"]
    assert sum(t["examples"] for t in r.by_type) == r.count
    assert {g["group"]: g["examples"] for g in r.by_group} == {"non-relational": r.count // 2,
                                                                 "relational": r.count // 2}
    assert sum(t["correct"] for t in r.by_type) == round(r.top1 * r.count) == int(np.trace(r.confusion))
    assert set(r.to_json()) >= {"by_type", "by_group"}
    # the model file copied on its own, no run config beside it: still known to take image + question
    import shutil

    (tmp_path / "alone").mkdir()
    shutil.copy(result.run_dir / "model.keras", tmp_path / "alone" / "model.keras")
    alone = kerascnn.evaluate(tmp_path / "alone" / "model.keras", "sort_of_clevr:40", split="test", plot=False)
    assert alone.count == r.count and alone.top1 == r.top1
    # bench/vqa.py compare (the CPU reproduction's table and curves), the same run as both models
    from data_helpers import load_bench_script

    out = load_bench_script("vqa").compare(SimpleNamespace(rn=result.run_dir, mlp=result.run_dir, out=tmp_path / "cmp"))
    assert (tmp_path / "cmp" / "learning_curves.png").is_file()
    for m in out["models"].values():
        assert m["epochs"] == 1 and m["test_questions"] == r.count
        assert m["test_by_group"] == {g["group"]: g["accuracy"] for g in r.by_group}


@pytest.fixture(scope="module")
def asked(tmp_path_factory):
    """An untrained tiny CNN+RN over Sort-of-CLEVR's vocabulary, saved with the answers' names as a
    run would be, and one generated scene as a PNG."""
    from PIL import Image

    from kerascnn.data import sort_of_clevr as soc
    from kerascnn.data.vqa import question_vocabulary
    from kerascnn.runtime import run_dir as rd

    root = tmp_path_factory.mktemp("ask")
    scenes = soc.generate(2, 0)
    keras.utils.set_random_seed(0)
    model = create_model("vqa_cnn_rn", num_classes=len(soc.ANSWERS), **_tiny("vqa_cnn_rn"),
                         vocabulary=question_vocabulary(scenes.texts().ravel()))
    model.save(root / "model.keras")
    rd.write_classes(root, list(soc.ANSWERS))
    Image.fromarray(scenes.images[0]).save(root / "scene.png")
    return root, model, scenes.images[0]


def _ask(*args):
    from kerascnn.cli import main

    return CliRunner().invoke(main, ["vqa", "ask", *map(str, args)])


def test_vqa_ask_prints_json_answers_with_their_probabilities(asked):
    from kerascnn.data.sort_of_clevr import ANSWERS

    root, model, pixels = asked
    r = _ask(root / "model.keras", root / "scene.png", QUESTIONS[0], "--question", QUESTIONS[1], "--json")
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    assert [sorted(a) for a in got] == [["answer", "probability", "question"]] * 2
    assert [a["question"] for a in got] == QUESTIONS
    # The same as the model on the scene's own pixels (PNG is lossless).
    probs = np.asarray(model.predict_on_batch({"image": np.repeat(pixels[None].astype("float32"), 2, axis=0),
                                               "question": np.array(QUESTIONS, dtype=object)}))
    assert [a["answer"] for a in got] == [ANSWERS[i] for i in probs.argmax(-1)]
    np.testing.assert_allclose([a["probability"] for a in got], probs.max(-1), atol=1e-5)
    table = _ask(root / "model.keras", root / "scene.png", QUESTIONS[0])
    assert table.exit_code == 0 and table.output.startswith(QUESTIONS[0] + " -> ")


def test_vqa_ask_refuses_unknown_words_and_unreadable_images_in_one_line(asked):
    root, _, _ = asked
    r = _ask(root / "model.keras", root / "scene.png", "What is the colour of the purple cube?")
    assert r.exit_code == 2 and "colour, purple, cube" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()[-1]) > 0 and "shape" not in r.output.split("vocabulary")[-1]
    (root / "broken.png").write_bytes(b"not an image")
    for image in (root / "broken.png", root / "missing.png"):
        r = _ask(root / "model.keras", image, QUESTIONS[0])
        assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1 and str(image) in r.output, r.output


def test_vqa_scene_writes_the_generators_scene_and_prints_its_true_answers(tmp_path):
    """`kerascnn vqa scene -o S.png --seed N`: scene 0 of seed N as `generate` draws it (the PNG read back
    pixel for pixel), and its 20 questions with the generator's answers; a JPEG is refused (exit 2)."""
    from PIL import Image

    from kerascnn.cli import main
    from kerascnn.data import sort_of_clevr as soc

    r = CliRunner().invoke(main, ["vqa", "scene", "-o", str(tmp_path / "s.png"), "--seed", "5", "--json"])
    assert r.exit_code == 0, r.output
    truth = soc.generate(1, seed=5)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "s.png")), truth.images[0])
    got = json.loads(r.output)
    assert [(q["question"], q["type"], q["relational"], q["answer"]) for q in got] == \
        [(q.text, q.type, q.relational, q.answer) for q in truth.questions(0)]
    assert sum(q["relational"] for q in got) == 10
    other = CliRunner().invoke(main, ["vqa", "scene", "-o", str(tmp_path / "t.png"), "--seed", "6"])
    first = soc.generate(1, seed=6).questions(0)[0]
    assert other.exit_code == 0 and other.output.splitlines()[1] == f"{first.text} -> {first.answer}"
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "t.png")), truth.images[0])  # another seed, another scene
    jpeg = CliRunner().invoke(main, ["vqa", "scene", "-o", str(tmp_path / "s.jpg")])
    assert jpeg.exit_code == 2 and ".png" in jpeg.output and not (tmp_path / "s.jpg").exists()


def test_the_untrained_paper_sized_rn_starts_near_a_uniform_guess():
    """g's sum over 625 pairs amplifies its weights' scale: with Glorot's initialisation the untrained
    RN answered near-certainly (cross-entropy 5-8 on these scenes, a saturated softmax); g and f start
    at PyTorch's nn.Linear scale (vqa.mlp_init), so the loss starts near ln(12), the uniform guess."""
    from kerascnn.data import sort_of_clevr as soc
    from kerascnn.models.tokenize import learn_vocabulary_py

    scenes = soc.generate(4, seed=0)
    questions = [soc.question_text(int(t), int(c)) for t, c in zip(scenes.types.ravel(), scenes.colors.ravel())]
    x = {"image": np.repeat(scenes.images, 20, axis=0).astype("float32"), "question": np.array(questions)}
    keras.utils.set_random_seed(0)
    model = create_model("vqa_cnn_rn", num_classes=12, vocabulary=learn_vocabulary_py(questions))
    probs = np.asarray(model.predict_on_batch(x), np.float64)
    loss = -np.log(np.maximum(probs[np.arange(len(probs)), scenes.answers.ravel()], 1e-12)).mean()
    assert abs(loss - np.log(12)) < 0.6 and probs.max(axis=1).mean() < 0.3


@pytest.mark.parametrize("encoder,layer", [("lstm", "question_lstm"), ("cnn", "question_pool")])
def test_untrained_question_vectors_tell_the_colours_apart(encoder, layer):
    """Questions that differ only in their colour word must reach g clearly apart from the start, or the
    RN cannot learn which object is asked about (vqa.word_init: with Keras's +-0.05 word vectors an
    untrained LSTM put them 0.016 apart and training sat at chance on the non-relational questions)."""
    from kerascnn.data import sort_of_clevr as soc
    from kerascnn.models.tokenize import learn_vocabulary_py

    rows = [[soc.question_text(t, c) for c in range(soc.OBJECTS)] for t in range(len(soc.QUESTION_TYPES))]
    keras.utils.set_random_seed(0)
    model = create_model("vqa_cnn_rn", num_classes=12, question_encoder=encoder,
                         vocabulary=learn_vocabulary_py([q for row in rows for q in row]))
    encode = keras.Model(model.input["question"], model.get_layer(layer).output)
    vectors = np.stack([np.asarray(encode(np.array(row))) for row in rows])  # (types, colours, units)
    apart = [np.linalg.norm(v[a] - v[b]) for v in vectors for a in range(soc.OBJECTS) for b in range(a)]
    assert np.mean(apart) > 0.2 and min(apart) > 0.05


@pytest.mark.parametrize("name", ["vqa_cnn_rn", "vqa_cnn_mlp"])
def test_the_cnn_moving_statistics_follow_a_batch_at_pytorchs_rate(name):
    """Every BN of the four convolutions moves its statistics 1 - 0.9 of the way to a training batch's
    (PyTorch's momentum 0.1; Keras's 0.99 lagged the drifting kernels, see vqa.BN_MOMENTUM)."""
    from kerascnn.models.vqa import BN_MOMENTUM

    small = {"g_units": 8} if name == "vqa_cnn_rn" else {}
    filters = 24 if name == "vqa_cnn_rn" else 32  # Keras's BN ops, and TensorFlow's fused kernel (16k channels)
    model = create_model(name, input_shape=(32, 32, 3), num_classes=4, vocabulary=["what", "red"],
                         question_length=3, conv_filters=filters, f_units=8, question_units=8, **small)
    bns = [model.get_layer(f"conv{i}_bn") for i in range(1, 5)]
    # Each BN's input, and the last BN's output so that all four run: one training pass, one update from 0.
    features = keras.Model(model.input["image"], [bn.input for bn in bns] + [bns[-1].output])
    images = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    inputs = [np.asarray(x, "float64") for x in features(images, training=True)[:-1]]
    for bn, x in zip(bns, inputs):
        batch_mean = x.reshape(-1, x.shape[-1]).mean(0)
        np.testing.assert_allclose(np.asarray(bn.moving_mean), (1 - BN_MOMENTUM) * batch_mean, rtol=1e-3, atol=1e-5)
    assert BN_MOMENTUM == 0.9


def test_the_probe_finds_colour_in_an_untrained_networks_cells(tmp_path):
    """bench/vqa.py probe reads the cell under each object: an untrained CNN's cells tell the colours
    apart well above chance (1/6), which cells picked at the wrong place would not."""
    from data_helpers import load_bench_script

    from kerascnn.data import sort_of_clevr as soc
    from kerascnn.data.vqa import question_vocabulary

    keras.utils.set_random_seed(0)
    model = create_model("vqa_cnn_rn", g_units=8, f_units=8, question_units=8,
                         vocabulary=question_vocabulary(soc.generate(2, 0).texts().ravel()))
    model.save(tmp_path / "model.keras")
    out = load_bench_script("vqa").probe(SimpleNamespace(model=tmp_path / "model.keras", weights=None, scenes=200))
    assert out["colour"] > 0.3 and 0.0 <= out["shape"] <= 1.0


def test_the_binding_free_shortcut_and_margins_of_bench_vqa():
    """bench/vqa.py shortcuts' reference answers, checked question by question with plain Python: the
    shortcut is right on count exactly when the named object's shape group is the larger one, and a
    closest/furthest margin is the gap between the two nearest (farthest) other objects."""
    import math

    from data_helpers import load_bench_script

    from kerascnn.data import sort_of_clevr as soc

    data = soc.generate(40, seed=5)
    per = data.types.shape[1]
    scene = np.repeat(np.arange(len(data)), per)
    types, colors = data.types.ravel(), data.colors.ravel()
    cut = load_bench_script("vqa").shortcut_answers(data.shapes[scene], data.centres[scene], types, colors)
    for q, (s, t, c) in enumerate(zip(scene, types, colors)):
        kind, shapes, centres = soc.QUESTION_TYPES[t], list(data.shapes[s]), data.centres[s].tolist()
        others = [k for k in range(6) if k != c]
        if kind in soc.NON_RELATIONAL:
            assert cut["answer"][q] == -1
            continue
        if kind == "count":
            same = shapes.count(shapes[c])
            assert soc.ANSWERS[cut["answer"][q]] == str(max(same, 6 - same))
            assert (cut["answer"][q] == data.answers.ravel()[q]) == (same >= 3)
            continue
        squares = sum(shapes[k] == 0 for k in others)
        assert soc.ANSWERS[cut["answer"][q]] == ("square" if squares >= 3 else "circle")
        dist = sorted(math.dist(centres[c], centres[k]) for k in others)
        gap = dist[1] - dist[0] if kind == "closest" else dist[-1] - dist[-2]
        assert cut["margin"][q] == pytest.approx(gap) and gap > 0
