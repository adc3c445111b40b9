"""Token saliency of text models (kerascnn.analysis.tokens, `kerascnn visualize tokens`): a tiny kim_cnn
trained on a planted keyword puts the keyword first, occlusion agrees, and gradient x input matches a
finite difference of the full model's logit taken by scaling the word's rows in the embedding tables."""
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from kerascnn.analysis.tokens import html_snippet, occlusion, terminal_line, token_saliency
from kerascnn.cli import main
from kerascnn.errors import ModelError
from kerascnn.models import create_model

FILLER = ["the", "a", "movie", "plot", "was", "it", "and", "actors", "story", "long"]
KEYWORDS = ("dreadful", "superb")  # class 0, class 1


def _sentences(n, seed, filler=FILLER):
    rng = np.random.default_rng(seed)
    texts, labels, keys = [], [], []
    for i in range(n):
        words = list(rng.choice(filler, size=int(rng.integers(4, 9))))
        label = i % 2
        words.insert(int(rng.integers(0, len(words) + 1)), KEYWORDS[label])
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    texts, labels = _sentences(48, seed=0)
    vectorize = keras.layers.TextVectorization()
    vectorize.adapt(texts)
    model = create_model("kim_cnn", vocabulary=vectorize.get_vocabulary(), sequence_length=12, embedding_dim=16,
                         filters=8)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    data = tf.data.Dataset.from_tensor_slices((texts, labels)).shuffle(48, seed=0).batch(8)
    model.fit(data, epochs=8, verbose=0, shuffle=False)
    return model


def test_the_keyword_drives_held_out_predictions_and_occlusion_agrees(trained):
    # Held out: new sentences, and a word the vocabulary lacks ("zebra") shown as itself.
    texts, labels = _sentences(8, seed=99, filler=FILLER + ["zebra"])
    for text, label in zip(texts, labels):
        tokens, scores, probs = token_saliency(trained, text)
        assert tokens == text.split() and scores.shape == (len(tokens),)
        assert int(probs.argmax()) == label and abs(probs.sum() - 1) < 1e-5
        assert tokens[int(np.argmax(scores))] == KEYWORDS[label], (text, scores)
        occluded, drops = occlusion(trained, text, label)
        assert occluded == tokens and drops.shape == scores.shape
        assert int(np.argmax(drops)) == int(np.argmax(scores))
        # Explaining the other class: the keyword pulls against it.
        _, against, _ = token_saliency(trained, text, 1 - label)
        assert tokens[int(np.argmin(against))] == KEYWORDS[label]


def test_tokens_as_the_vectorizer_sees_them_cut_and_padded(trained):
    text = "The SUPERB, movie!! " + " ".join(["plot"] * 20)
    tokens, scores, _ = token_saliency(trained, text)
    # kerascnn.models.tokenize: lower case, "," and "!" tokens of their own
    assert tokens[:6] == ["the", "superb", ",", "movie", "!", "!"] and len(tokens) == 12  # sequence_length
    tokens, scores, _ = token_saliency(trained, "superb")
    assert tokens == ["superb"] and scores.shape == (1,)
    assert token_saliency(trained, "")[0] == []


def _logit_by_scaling_rows(model, text, word, class_index, eps=1e-3):
    """d logit / dt of the full model (strings in) with the word's rows of every embedding table scaled
    by (1 + t): the word's gradient x input (summed over channels), by central difference."""
    logits = keras.Model(model.input, model.get_layer("logits").output)
    row = model.get_layer("vectorize").get_vocabulary().index(word)
    tables = [layer for layer in model.layers if isinstance(layer, keras.layers.Embedding)]
    saved = [layer.embeddings.numpy() for layer in tables]
    values = []
    for t in (eps, -eps):
        for layer, m in zip(tables, saved):
            scaled = m.copy()
            scaled[row] *= 1 + t
            layer.embeddings.assign(scaled)
        values.append(float(logits(tf.constant([text]))[0, class_index]))
    for layer, m in zip(tables, saved):
        layer.embeddings.assign(m)
    return (values[0] - values[1]) / (2 * eps)


@pytest.mark.parametrize("variant", ["rand", "multichannel"])
def test_gradient_x_input_is_a_finite_difference_of_the_full_model(tmp_path, variant):
    vocab = ["the", "movie", "good", "bad", "plot", "fine"]
    path = tmp_path / "v.txt"
    rng = np.random.default_rng(1)
    path.write_text("".join(w + " " + " ".join(f"{x:.4f}" for x in rng.normal(0, 0.7, 6)) + "\n" for w in vocab))
    keras.utils.set_random_seed(2)
    model = create_model("kim_cnn", variant=variant, embeddings=str(path), vocabulary=vocab, sequence_length=8,
                         filters=6, embedding_dim=6 if variant == "rand" else None, seed=0)
    text = "the good movie bad plot"
    tokens, scores, _ = token_saliency(model, text, class_index=1)
    assert tokens == text.split()
    for word, score in zip(tokens, scores):
        np.testing.assert_allclose(_logit_by_scaling_rows(model, text, word, 1), score, rtol=2e-2, atol=2e-4)


def test_rendering():
    assert terminal_line(["good", "plot"], [0.123, -0.5], color=False) == "good(+0.12) plot(-0.50)"
    line = terminal_line(["good", "plot", "the"], [1.0, -0.6, 0.0], color=True)
    assert "\x1b[31;1mgood\x1b[0m" in line and "\x1b[34;1mplot\x1b[0m" in line and line.endswith(" the")
    snippet = html_snippet(["<b>", "ok"], [1.0, -0.5], title="t")
    assert "&lt;b&gt;" in snippet and "rgba(220,40,40,1.000)" in snippet and "rgba(40,90,220,0.500)" in snippet


def test_an_image_model_is_refused():
    model = create_model("lenet5")
    with pytest.raises(ModelError, match="takes image inputs"):
        token_saliency(model, "good movie")


def test_cli_prints_the_tokens_and_writes_the_html(trained, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    trained.save(folder / "model.keras")
    (folder / "classes.json").write_text(json.dumps(["neg", "pos"]))
    model = str(folder / "model.keras")
    runner = CliRunner()
    r = runner.invoke(main, ["visualize", "tokens", model, "it was a superb plot", "--out", str(tmp_path / "t")])
    assert r.exit_code == 0, r.output
    assert "predicted pos" in r.output and "superb(+" in r.output and "it(" in r.output
    html = (tmp_path / "t" / "tokens.html").read_text()
    assert ">superb</span>" in html and "pos" in html
    assert str(tmp_path / "t" / "tokens.html") in r.output
    settings = json.loads((tmp_path / "t" / "settings.json").read_text())
    assert settings["command"] == "visualize tokens" and settings["settings"]["text"] == "it was a superb plot"
    r = runner.invoke(main, ["visualize", "tokens", model, "it was a superb plot", "--class", "neg",
                             "--out", str(tmp_path / "n")])
    assert r.exit_code == 0 and "superb(-" in r.output, r.output

    r = runner.invoke(main, ["visualize", "tokens", model, "superb", "--class", "neutral"])
    assert r.exit_code == 2 and "neutral" in r.output and "pos" in r.output
    assert len(r.output.strip().splitlines()) <= 3 and "Traceback" not in r.output
    image = tmp_path / "image.keras"
    create_model("lenet5").save(image)
    r = runner.invoke(main, ["visualize", "tokens", str(image), "superb"])
    assert r.exit_code == 2 and "takes image inputs" in r.output and "Traceback" not in r.output
