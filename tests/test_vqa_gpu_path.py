"""The path bench/vqa_gpu.py takes to train the VQA models without TensorFlow: questions tokenized in
Python (kerascnn.models.tokenize) exactly as the models' TextVectorization layer tokenizes them, the
models built over those token ids (`question_input="tokens"`), and their weights moved by layer name
into the full models, which then answer the questions as strings the same way.

The references are TensorFlow's own: `TextVectorization.adapt` for the vocabulary, the layer's
output for the ids, and the full model (strings in) for the transferred weights.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from data_helpers import load_bench_script
from kerascnn.data import sort_of_clevr as soc
from kerascnn.data.text import learn_vocabulary
from kerascnn.errors import ModelError
from kerascnn.models import create_model
from kerascnn.models.tokenize import learn_vocabulary_py, sentence_standardize, standardize_text, text_vectorizer, \
    token_ids

TINY = dict(conv_filters=4, embedding_dim=4, question_units=4, f_units=8, f_layers=1, question_length=12)
TINY_G = dict(g_units=8, g_layers=2)
# Sentences with what the cleaning treats specially: clitics, quotes, brackets, marks, "_", digits,
# runs of spaces, accents; words repeated so that the vocabulary has ties of every count.
SENTENCES = ["Doesn't it? ''Conan'' (the kids') won't; I'm sure you'll see we've they're he'd",
             "  Multiple   spaces\tand\nnewlines!! snake_case 42nd 3.5 a-b x'y", "`quoted` 'single' it's's don't'",
             "émigré naïve café, the the kids", "", "?!"]


@pytest.fixture(scope="module")
def bench():
    return load_bench_script("vqa_gpu")


def _questions():
    return sorted({soc.question_text(t, c) for t in range(len(soc.QUESTION_TYPES)) for c in range(soc.OBJECTS)})


def test_python_cleaning_equals_the_tensorflow_one():
    texts = _questions() + SENTENCES
    want = [s.decode("utf-8") for s in sentence_standardize(tf.constant(texts)).numpy()]
    assert [standardize_text(t) for t in texts] == want


@pytest.mark.parametrize("texts", [_questions(), SENTENCES, np.unique(soc.generate(30).texts().ravel().astype(str))])
def test_python_vocabulary_equals_what_adapt_learns(texts):
    want = learn_vocabulary(np.asarray(texts, dtype=str))  # TextVectorization.adapt
    got = learn_vocabulary_py(list(texts))
    assert got == want and got[:2] == ["", "[UNK]"]


@pytest.mark.parametrize("length", [24, 5])  # padded; cut short
def test_token_ids_equal_the_vectorize_layer(length):
    vocab = learn_vocabulary(np.asarray(_questions()))
    texts = _questions() + SENTENCES + ["What is the shape of the purple thing?"]  # unknown words: 1
    want = text_vectorizer(vocab, length)(tf.constant(texts)).numpy()
    got = token_ids(texts, vocab, length)
    assert got.dtype == np.int32 and got.shape == (len(texts), length)
    np.testing.assert_array_equal(got, want)
    assert (got == 1).any() and (got == 0).any()


def _pair(name, vocab, seed=0, **extra):
    kwargs = {**TINY, **(TINY_G if name == "vqa_cnn_rn" else {}), "vocabulary": vocab, **extra}
    keras.utils.set_random_seed(seed)
    tokens = create_model(name, question_input="tokens", **kwargs)
    keras.utils.set_random_seed(seed + 1)  # other initial weights: the transfer must overwrite them all
    full = create_model(name, **kwargs)
    return tokens, full


@pytest.mark.parametrize("name", ["vqa_cnn_rn", "vqa_cnn_mlp"])
def test_the_token_model_has_every_layer_of_the_full_one_but_vectorize(name):
    vocab = learn_vocabulary(np.asarray(_questions()))
    tokens, full = _pair(name, vocab)
    assert tokens.get_layer("question").output.shape == (None, TINY["question_length"])
    assert tokens.get_layer("question").output.dtype == "int32"
    assert {layer.name for layer in full.layers} - {layer.name for layer in tokens.layers} == {"vectorize"}
    assert tokens.count_params() == full.count_params()
    with pytest.raises(ModelError, match="question_input"):
        create_model(name, question_input="ids", **TINY)


@pytest.mark.parametrize("name", ["vqa_cnn_rn", "vqa_cnn_mlp"])
def test_weights_trained_on_token_ids_answer_strings_the_same(bench, tmp_path, name):
    data = soc.generate(6, seed=3)
    texts = data.texts()
    vocab = learn_vocabulary(np.unique(texts.ravel().astype(str)))
    tokens, _ = _pair(name, vocab)
    rng = np.random.default_rng(0)
    for layer in tokens.layers:  # weights unlike any initialisation, BatchNorm statistics included
        layer.set_weights([rng.normal(0.0, 0.3, w.shape).astype("float32") + (w.ndim == 1) * 1.0
                           for w in layer.get_weights()])
    path = tmp_path / f"{name}.weights.h5"
    tokens.save_weights(path)
    model_args = {**TINY, **(TINY_G if name == "vqa_cnn_rn" else {})}
    record = {"vocabulary": vocab, "question_length": model_args.pop("question_length"), "model_args": model_args,
              "class_names": list(soc.ANSWERS)}
    full, loaded = bench.assembled(name, record, path)
    questions = np.empty(12, object)
    questions[:] = list(texts[:, :2].ravel())
    images = data.images[np.repeat(np.arange(6), 2)].astype("float32")
    want = np.asarray(tokens.predict_on_batch({"image": images, "question": token_ids(list(questions), vocab, 12)}))
    got = np.asarray(full.predict_on_batch({"image": images, "question": questions}))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert np.ptp(want.argmax(-1)) > 0 or np.ptp(want) > 1e-3  # the answers depend on the input
    for layer in full.layers:
        for a, b in zip(layer.get_weights(), tokens.get_layer(layer.name).get_weights() if layer.weights else []):
            np.testing.assert_array_equal(a, b)


def test_transfer_refuses_models_whose_layers_differ(bench):
    vocab = learn_vocabulary(np.asarray(_questions()))
    rn, _ = _pair("vqa_cnn_rn", vocab)
    _, mlp = _pair("vqa_cnn_mlp", vocab)
    with pytest.raises(ValueError, match="g1"):
        bench.transfer_by_name(rn, mlp)


def test_learning_curves_plot_each_model_and_group_from_the_record(bench, tmp_path):
    """The GPU record's per-epoch validation figures go through the library's plot_group_curves (the
    same plot a CPU comparison of two `kerascnn fit` runs makes): a line per model and group."""
    from kerascnn.runtime.plots import plot_group_curves

    curve = [{"epoch": e, "val_by_group": {"non-relational": 0.5 + e / 10, "relational": 0.4 + e / 20}}
             for e in (1, 2, 3)]
    record = {"data": "sort_of_clevr:100", "models": {"vqa_cnn_rn": {"curve": curve}, "vqa_cnn_mlp": {"curve": curve}}}
    bench.plot_learning_curves(record, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 5000
    rows = [{"epoch": 1, "val_accuracy": 0.5, "val_accuracy_relational": 0.4},
            {"epoch": 2, "val_accuracy": 0.6, "val_accuracy_relational": ""}]  # a blank cell: skipped
    labels = plot_group_curves({"A": rows, "B": [{"epoch": 1, "val_accuracy_non_relational": 0.9}], "C": []},
                               tmp_path / "two.png")
    assert labels == ["A, relational", "B, non-relational"]
