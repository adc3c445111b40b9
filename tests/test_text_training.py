"""Training a text model as Kim did: the tokenisation shared by data and model, --embeddings (a file
or a name found as .npy), early stopping on validation accuracy going back to the best epoch."""
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

import kerascnn
from kerascnn.cli import main
from kerascnn.data.text import learn_vocabulary
from kerascnn.models import embeddings as emb
from kerascnn.models.kim_cnn import kim_cnn
from kerascnn.models.tokenize import sentence_standardize, text_vectorizer
from kerascnn.training.callbacks import EarlyStop


@pytest.mark.parametrize("text,tokens", [
    ("It doesn't work!", "it does n't work !"),
    ("I'm sure, (really)? They've we're he'd you'll", "i 'm sure , ( really ) ? they 've we 're he 'd you 'll"),
    ("Jackson's ''Conan'' and the kids' 'what'", "jackson 's conan and the kids what"),
    ("co-writer/director -- 21st   Century", "co writer director 21st century"),
    ("CAFÉ Señor", "café señor"),
    ("  ", ""),
])
def test_sentences_are_cleaned_as_kims_code_cleans_them(text, tokens):
    assert sentence_standardize(tf.constant([text])).numpy()[0].decode("utf-8") == tokens


def test_the_data_vocabulary_and_the_models_tokenizer_agree_on_every_word():
    texts = np.asarray(["It doesn't work!", "Jackson's ''Conan'' (2002)", "Isn't it great?"], dtype=object)
    vocab = learn_vocabulary(texts)
    assert {"n't", "'s", "!", "(", ")", "?", "conan", "2002"} <= set(vocab)
    model = kim_cnn(vocabulary=vocab, embedding_dim=4, filters=2, sequence_length=12)
    ids = model.get_layer("vectorize")(texts).numpy()
    assert (ids != 1).all()  # no training word is out of the vocabulary ("[UNK]" is id 1)
    assert np.array_equal(ids, text_vectorizer(vocab, 12)(texts).numpy())


def test_a_glove_name_finds_a_npy_matrix_with_its_word_list(tmp_path, monkeypatch):
    monkeypatch.setenv("KERASCNN_EMBEDDINGS", str(tmp_path))
    monkeypatch.setattr(emb, "url_reachable", lambda url, timeout: False)
    matrix = np.arange(12, dtype="float32").reshape(3, 4)
    np.save(tmp_path / "glove.6B.50d.npy", matrix)
    (tmp_path / "glove.6B.50d.vocab").write_text("the\nfilm\nn't\n", encoding="utf-8")
    path = emb.resolve_embeddings("glove.6B.50d")
    assert path == str(tmp_path / "glove.6B.50d.npy")
    vectors = emb.load_vectors(path, ["film", "n't"])
    assert vectors.words == ("film", "n't") and np.array_equal(vectors.matrix, matrix[1:])


def _rated(tmp_path, n=120):
    good, bad = "a warm witty fine film", "a dull tedious cold mess"
    lines = [f"{i}\t{2.0 if i % 2 else -2.0}\t{good if i % 2 else bad} number {i % 7}" for i in range(n)]
    (tmp_path / "rated.tsv").write_text("\n".join(lines) + "\n")
    return tmp_path / "rated.tsv"


def test_fit_takes_embeddings_and_puts_each_vector_on_its_word(tmp_path):
    words = ["warm", "witty", "dull", "number"]
    matrix = np.random.default_rng(0).normal(0, 0.5, (4, 6)).astype("float32")
    (tmp_path / "v.txt").write_text("".join(w + " " + " ".join(map(repr, map(float, v))) + "\n"
                                            for w, v in zip(words, matrix)))
    result = kerascnn.fit("kim_cnn", data=f"tsv:{_rated(tmp_path)}", label_threshold=0.0, epochs=1,
                          embeddings=str(tmp_path / "v.txt"), model_args={"variant": "static", "filters": 4},
                          batch_size=16, precision="float32", out=str(tmp_path / "run"), verbose=0)
    layer = result.model.get_layer("embedding")
    assert not layer.trainable
    vocab = result.model.get_layer("vectorize").get_vocabulary()
    table = layer.get_weights()[0]
    for w, v in zip(words, matrix):
        np.testing.assert_allclose(table[vocab.index(w)], v, rtol=1e-6)
    assert json.loads((result.run_dir / "config.json").read_text())["embeddings"] == str(tmp_path / "v.txt")


def test_the_cli_has_embeddings_and_early_stopping_on(tmp_path, monkeypatch):
    # a named file in the embeddings folder (KERASCNN_EMBEDDINGS): the test does not depend on what
    # the machine has downloaded into ~/.keras/datasets
    folder = tmp_path / "vectors"
    folder.mkdir()
    (folder / "glove.6B.50d.txt").write_text("".join(f"{w} " + " ".join(["0.1"] * 50) + "\n" for w in ("warm", "dull")))
    monkeypatch.setenv("KERASCNN_EMBEDDINGS", str(folder))
    r = CliRunner().invoke(main, ["fit", "--model", "kim_cnn", "--data", f"tsv:{_rated(tmp_path)}",
                                  "--embeddings", "glove.6B.50d", "--early-stopping-on", "val_accuracy",
                                  "--print-config"])
    assert r.exit_code == 0, r.output
    assert "glove.6B.50d" in r.output and "val_accuracy" in r.output
    r = CliRunner().invoke(main, ["fit", "--model", "kim_cnn", "--recipe", "kim2014", "--data",
                                  f"tsv:{_rated(tmp_path)}", "--print-config"])
    assert r.exit_code == 0 and "val_accuracy" in r.output


class _Model:
    """Just enough of a keras.Model for EarlyStopping: weights to keep and restore, stop_training."""

    def __init__(self):
        self.weights_now = [np.zeros(1)]
        self.stop_training = False

    def get_weights(self):
        return [w.copy() for w in self.weights_now]

    def set_weights(self, weights):
        self.weights_now = weights


def _run(stop: EarlyStop, accuracies):
    model = _Model()
    stop.set_model(model)
    stop.on_train_begin()
    for epoch, acc in enumerate(accuracies):
        model.weights_now = [np.full(1, float(epoch))]  # the weights "after epoch `epoch`"
        stop.on_epoch_end(epoch, {"val_accuracy": acc, "val_loss": 1.0 - acc})
        if model.stop_training:
            break
    stop.on_train_end()
    return model


def test_early_stopping_on_accuracy_stops_and_goes_back_to_the_best_epoch():
    model = _run(EarlyStop("val_accuracy", 2), [0.6, 0.8, 0.7, 0.75, 0.9])
    assert model.stop_training and float(model.weights_now[0][0]) == 1.0  # epoch 2 of 5 (index 1)
    model = _run(EarlyStop("val_accuracy", 2), [0.6, 0.8, 0.7, 0.9])
    assert not model.stop_training and float(model.weights_now[0][0]) == 3.0  # ran out: the last weights
    model = _run(EarlyStop("val_accuracy", 2), [0.6, 0.8, 0.8, 0.8])  # a tie is no progress
    assert model.stop_training and float(model.weights_now[0][0]) == 1.0


def test_the_harness_watches_what_early_stopping_on_says(tmp_path, monkeypatch):
    import kerascnn.training.loop as loop

    watched = []

    class Spy(EarlyStop):
        def __init__(self, monitor, patience):
            watched.append((monitor, patience))
            super().__init__(monitor, patience)

    monkeypatch.setattr(loop, "EarlyStop", Spy)
    for on in ("val_accuracy", "val_loss"):
        kerascnn.fit("kim_cnn", data=f"tsv:{_rated(tmp_path, 40)}", label_threshold=0.0, epochs=1, early_stopping=3,
                     early_stopping_on=on, model_args={"filters": 2, "embedding_dim": 4}, batch_size=16,
                     precision="float32", out=str(tmp_path / on), verbose=0)
    assert watched == [("val_accuracy", 3), ("val_loss", 3)]
    keras.backend.clear_session()


def test_kept_epoch_names_the_weights_the_model_got_back():
    from kerascnn.training.loop import FitResult

    stop = EarlyStop("val_accuracy", 2)
    _run(stop, [0.6, 0.8, 0.7, 0.75, 0.9])
    assert stop.kept_epoch == 2  # 1-based, as history.csv counts
    ran_out = EarlyStop("val_accuracy", 2)
    _run(ran_out, [0.6, 0.8, 0.7, 0.9])
    assert ran_out.kept_epoch is None
    rows = [{"epoch": e, "val_accuracy": a} for e, a in ((1, 0.6), (2, 0.8), (3, 0.7), (4, 0.75))]
    result = FitResult(None, None, rows, [], 1, None, kept_epoch=2)
    assert result.final["val_accuracy"] == 0.8  # what `fit` prints is the model it saved
    assert FitResult(None, None, rows, [], 1, None).final["epoch"] == 4


def test_curves_mark_the_epoch_early_stopping_kept(tmp_path):
    from kerascnn.runtime.plots import plot_curves

    rows = [{"epoch": e, "loss": 1 / e, "val_loss": 1 / e, "accuracy": a, "val_accuracy": a, "learning_rate": 0.1}
            for e, a in ((1, 0.6), (2, 0.8), (3, 0.7))]
    loss, accuracy, lr = plot_curves(rows, tmp_path / "curves.png", kept_epoch=2)
    assert "kept (epoch 2)" in loss and "kept (epoch 2)" in accuracy and "val top-1 accuracy" in accuracy
    assert not any("kept" in label for label in plot_curves(rows, tmp_path / "c2.png")[1])
    assert (tmp_path / "curves.png").is_file() and plot_curves([], tmp_path / "none.png") == []


def test_an_unknown_word_adds_nothing_as_padding_does():
    # The vocabulary holds every training word, so "[UNK]" never trains: its row stays zero, and a
    # sentence of unknown words scores as the empty sentence (not as a random vector would).
    vocab = ["", "[UNK]", "good", "bad"]
    model = kim_cnn(vocabulary=vocab, embedding_dim=6, filters=3, sequence_length=8, seed=0)
    table = model.get_layer("embedding").get_weights()[0]
    assert not table[:2].any() and table[2:].any()
    probs = model.predict(np.asarray(["zork blorp quux", ""], dtype=object), verbose=0)
    np.testing.assert_allclose(probs[0], probs[1], atol=1e-6)
    assert not np.allclose(model.predict(np.asarray(["good"], dtype=object), verbose=0), probs[1])


def test_evaluate_reads_another_tsv_layout_with_the_column_flags(tmp_path):
    tsv = _rated(tmp_path)
    result = kerascnn.fit("kim_cnn", data=f"tsv:{tsv}", label_threshold=0.0, epochs=2, optimizer="adam", lr=1e-2,
                          model_args={"filters": 4, "embedding_dim": 8}, batch_size=16, precision="float32",
                          out=str(tmp_path / "run"), verbose=0)
    # Another file: the text first, then a rating on a 1-5 scale, a header line.
    rows = ["text,stars"] + [f"{'a warm witty fine film' if i % 2 else 'a dull tedious cold mess'},{5 if i % 2 else 1}"
                             for i in range(20)]
    (tmp_path / "other.csv").write_text("\n".join(rows) + "\n")
    model = result.run_dir / "model.keras"
    r = CliRunner().invoke(main, ["evaluate", str(model), "--data", f"csv:{tmp_path / 'other.csv'}", "--split", "all",
                                  "--text-column", "text", "--label-column", "stars", "--label-threshold", "3",
                                  "--json"])
    assert r.exit_code == 0, r.output
    scores = json.loads(r.output[r.output.index("{"):])
    assert scores["examples"] == 20 and scores["class_names"] == ["negative", "positive"]
    direct = kerascnn.evaluate(model, f"csv:{tmp_path / 'other.csv'}", split="all", text_column="text",
                               label_column="stars", label_threshold=3.0, plot=False)
    assert direct.count == 20 and direct.top1 == scores["top1"]


@pytest.mark.parametrize("model,embeddings,match", [
    ("kim_cnn", "nosuch.txt", "no such vectors file: nosuch.txt"),
    ("kim_cnn", "glove.6B.300d", r"glove.6B.300d.txt is not in .* cannot be reached"),
    ("lenet5", "glove.6B.50d", "lenet5 takes no word vectors"),
    ("keras:MobileNetV2", "glove.6B.50d", "takes images, not word vectors"),
])
def test_bad_embeddings_are_one_line_before_any_run_folder(tmp_path, monkeypatch, model, embeddings, match):
    import re

    monkeypatch.setenv("KERASCNN_EMBEDDINGS", str(tmp_path / "vectors"))
    monkeypatch.setattr(emb, "url_reachable", lambda url, timeout: False)
    out = tmp_path / "run"
    data = f"tsv:{_rated(tmp_path)}" if model == "kim_cnn" else "digits"
    r = CliRunner().invoke(main, ["fit", "--model", model, "--data", data, "--embeddings", embeddings,
                                  "--out", str(out)])
    assert r.exit_code != 0 and re.search(match, r.output), r.output
    assert "Traceback" not in r.output and not out.exists()
