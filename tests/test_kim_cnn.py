"""Kim's sentence CNN (kerascnn.models.kim_cnn) and the word-vector files it reads
(kerascnn.models.embeddings): tiny vocabularies and vectors written by the tests, compared with numpy."""
import math
import struct

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerascnn.errors import ModelError
from kerascnn.models import create_model, get_spec
from kerascnn.models import embeddings as emb
from kerascnn.models.loading import load_model

WORDS = ["the", "movie", "Good", "bad", "plot", "fine"]
DIM = 4


def _vectors(n=len(WORDS), dim=DIM, seed=0):
    return np.random.default_rng(seed).normal(0, 0.7, (n, dim)).astype("float32")


def _glove(path, words=WORDS, matrix=None):
    matrix = _vectors() if matrix is None else matrix
    with open(path, "w", encoding="utf-8") as f:
        for w, v in zip(words, matrix):
            f.write(w + " " + " ".join(repr(float(x)) for x in v) + "\n")
    return matrix


def _word2vec(path, words=WORDS, matrix=None, newline=True):
    matrix = _vectors() if matrix is None else matrix
    with open(path, "wb") as f:
        f.write(f"{len(words)} {matrix.shape[1]}\n".encode())
        for w, v in zip(words, matrix):
            f.write(w.encode("utf-8") + b" " + struct.pack(f"<{len(v)}f", *v) + (b"\n" if newline else b""))
    return matrix


@pytest.fixture
def glove(tmp_path):
    path = tmp_path / "vectors.txt"
    return str(path), _glove(path)


# ------------------------------------------------------------------------------------------------
# Vectors files


@pytest.mark.parametrize("fmt", ["glove", "word2vec", "word2vec_no_newline", "npy"])
def test_every_format_lands_each_vector_on_its_word(tmp_path, fmt):
    matrix = _vectors(seed=3)
    if fmt == "glove":
        path = tmp_path / "v.txt"
        _glove(path, matrix=matrix)
    elif fmt.startswith("word2vec"):
        path = tmp_path / "v.bin"
        _word2vec(path, matrix=matrix, newline=fmt == "word2vec")
    else:
        path = tmp_path / "v.npy"
        np.save(path, matrix)
        (tmp_path / "v.vocab").write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    vectors = emb.load_vectors(str(path))
    assert vectors.words == tuple(WORDS) and vectors.dim == DIM
    np.testing.assert_array_equal(vectors.matrix, matrix)

    vocab = ["", "[UNK]", "bad", "the", "good", "unseen"]  # "good": the file has "Good" only
    rows, missing = emb.embedding_matrix(vocab, emb.load_vectors(str(path), vocab), seed=0)
    assert rows.shape == (6, DIM) and missing == 1
    np.testing.assert_array_equal(rows[0], 0.0)
    np.testing.assert_array_equal(rows[2], matrix[WORDS.index("bad")])
    np.testing.assert_array_equal(rows[3], matrix[WORDS.index("the")])
    np.testing.assert_array_equal(rows[4], matrix[WORDS.index("Good")])


def test_missing_words_are_uniform_with_the_pretrained_variance(glove):
    path, matrix = glove
    vocab = ["", "[UNK]", "movie"] + [f"zz{i}" for i in range(400)]
    rows, missing = emb.embedding_matrix(vocab, emb.load_vectors(path, vocab), seed=1)
    assert missing == 400  # "" and "[UNK]" are not counted
    # Only "movie" was kept while reading: the variance is of the vectors the vocabulary found.
    a = math.sqrt(3 * np.var(matrix[[WORDS.index("movie")]]))
    random = rows[[1] + list(range(3, len(vocab)))]
    assert np.abs(random).max() <= a and np.abs(random).max() > 0.9 * a
    assert abs(np.var(random) / (a * a / 3) - 1) < 0.1  # U[-a, a] has variance a^2 / 3
    again, _ = emb.embedding_matrix(vocab, emb.load_vectors(path, vocab), seed=1)
    np.testing.assert_array_equal(rows, again)


def test_full_file_variance_sets_the_range(glove):
    path, matrix = glove
    rows, missing = emb.embedding_matrix(["", "[UNK]", "nothere"], emb.load_vectors(path), seed=0)
    assert missing == 1
    assert np.abs(rows[1:]).max() <= math.sqrt(3 * np.var(matrix))


@pytest.mark.parametrize("content,match", [
    ("the 0.1 0.2\nmovie 0.3\n", "line 2 has 1 numbers"),
    ("the 0.1 x\n", "not a number"),
    ("", "holds no vectors"),
])
def test_a_malformed_text_file_is_one_line_naming_it(tmp_path, content, match):
    path = tmp_path / "bad.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ModelError, match=match) as e:
        emb.load_vectors(str(path))
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_a_truncated_word2vec_file_and_a_missing_file_are_one_line(tmp_path):
    path = tmp_path / "v.bin"
    _word2vec(path)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ModelError, match="ends in the vector of word 6 of 6"):
        emb.load_vectors(str(path))
    with pytest.raises(ModelError, match="no such vectors file: .*nope.txt"):
        emb.load_vectors(str(tmp_path / "nope.txt"))
    np.save(tmp_path / "m.npy", _vectors())
    with pytest.raises(ModelError, match="no word list beside it"):
        emb.load_vectors(str(tmp_path / "m.npy"))


def test_a_glove_name_offline_names_the_file_and_the_download(tmp_path, monkeypatch):
    monkeypatch.setenv("KERASCNN_EMBEDDINGS", str(tmp_path))
    monkeypatch.setattr(emb, "url_reachable", lambda url, timeout: False)
    with pytest.raises(ModelError) as e:
        emb.resolve_embeddings("glove.6B.300d")
    message = str(e.value)
    assert "glove.6B.300d.txt" in message and str(tmp_path) in message
    assert "https://nlp.stanford.edu/data/glove.6B.zip" in message and "\n" not in message
    (tmp_path / "glove.6B.300d.txt").write_text("the 0.1 0.2\n")
    assert emb.resolve_embeddings("glove.6B.300d") == str(tmp_path / "glove.6B.300d.txt")
    with pytest.raises(ModelError, match="no such vectors file: glove.7B"):
        emb.resolve_embeddings("glove.7B")


# ------------------------------------------------------------------------------------------------
# The model

VOCAB = ["", "[UNK]", "the", "movie", "good", "bad", "plot", "fine"]
SMALL = {"vocabulary": VOCAB, "sequence_length": 8, "filters": 5}


def test_four_variants_build_with_their_embeddings(glove):
    path, matrix = glove
    models = {v: create_model("kim_cnn", variant=v, embeddings=path, seed=0, **SMALL)
              for v in ("rand", "static", "non_static", "multichannel")}
    assert models["rand"].get_layer("embedding").trainable
    assert models["rand"].get_layer("embedding").output.shape == (None, 8, 300)
    assert not models["static"].get_layer("embedding").trainable
    assert models["non_static"].get_layer("embedding").trainable
    pretrained = models["static"].get_layer("embedding").get_weights()[0]
    np.testing.assert_array_equal(pretrained[VOCAB.index("movie")], matrix[WORDS.index("movie")])
    np.testing.assert_array_equal(pretrained[VOCAB.index("good")], matrix[WORDS.index("Good")])
    np.testing.assert_array_equal(pretrained[0], 0.0)
    multi = models["multichannel"]
    assert not multi.get_layer("embedding_static").trainable and multi.get_layer("embedding_tuned").trainable
    np.testing.assert_array_equal(multi.get_layer("embedding_tuned").get_weights()[0], pretrained)
    assert multi.get_layer("conv4").kernel.shape == (4, 2 * DIM, 5)  # each filter sees both channels
    for model in models.values():
        names = [layer.name for layer in model.layers]
        assert {"input", "vectorize", "conv3", "conv4", "conv5", "pool3", "pool5", "features", "dropout",
                "logits", "predictions"} <= set(names)
        constraint = model.get_layer("logits").kernel_constraint
        assert isinstance(constraint, keras.constraints.MaxNorm)
        assert constraint.max_value == 3.0 and constraint.axis == 0


def test_pretrained_variants_need_a_vectors_file_and_the_vocabulary_rules():
    with pytest.raises(ModelError, match="need pretrained vectors"):
        create_model("kim_cnn", variant="static", **SMALL)
    with pytest.raises(ModelError, match="variant must be one of"):
        create_model("kim_cnn", variant="dynamic", **SMALL)
    with pytest.raises(ModelError, match="input_shape"):
        create_model("kim_cnn", input_shape=(32, 32, 3), **SMALL)
    with pytest.raises(ModelError, match="widest filter"):
        create_model("kim_cnn", **{**SMALL, "sequence_length": 4})
    assert get_spec("kim_cnn").inputs == "text"
    assert get_spec("kim_cnn").recipe["optimizer"] == "adadelta"


@pytest.mark.parametrize("classes", [2, 5])
def test_rand_parameter_count_by_hand(classes):
    v, d = 50, 16
    model = create_model("kim_cnn", vocabulary=[f"w{i}" for i in range(v - 2)], embedding_dim=d,
                         num_classes=classes, sequence_length=10, filters=100)
    by_hand = v * d + sum(w * d * 100 + 100 for w in (3, 4, 5)) + 300 * classes + classes
    assert model.count_params() == by_hand
    # Without a vocabulary: a placeholder one of vocabulary_size tokens, for summaries.
    assert create_model("kim_cnn", vocabulary_size=v, embedding_dim=d, num_classes=classes,
                        sequence_length=10).count_params() == by_hand


def test_static_and_multichannel_trainable_counts(glove):
    path, _ = glove
    v, convs = len(VOCAB), sum(w * DIM * 5 + 5 for w in (3, 4, 5))
    static = create_model("kim_cnn", variant="static", embeddings=path, **SMALL)
    trainable = sum(math.prod(w.shape) for w in static.trainable_weights)
    assert trainable == convs + 15 * 2 + 2 and static.count_params() == trainable + v * DIM
    multi = create_model("kim_cnn", variant="multichannel", embeddings=path, **SMALL)
    multi_convs = sum(w * 2 * DIM * 5 + 5 for w in (3, 4, 5))
    assert sum(math.prod(w.shape) for w in multi.trainable_weights) == v * DIM + multi_convs + 32


def test_saves_and_loads_safely_with_identical_predictions(tmp_path, glove):
    path, _ = glove
    texts = tf.constant(["The movie was good!", "bad plot", "fine, fine movie", ""])
    for variant in ("rand", "multichannel"):
        model = create_model("kim_cnn", variant=variant, embeddings=path, **SMALL)
        file = tmp_path / f"{variant}.keras"
        model.save(file)
        again = load_model(file)
        np.testing.assert_array_equal(model.predict(texts, verbose=0), again.predict(texts, verbose=0))
        assert again.get_layer("vectorize").get_vocabulary() == VOCAB
        assert again.get_layer("logits").kernel_constraint.max_value == 3.0


def test_a_planted_keyword_trains_to_every_sentence_right():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    filler = ["the", "a", "movie", "plot", "was", "it", "and", "actors", "story", "long"]
    texts, labels = [], []
    for i in range(48):
        words = list(rng.choice(filler, size=int(rng.integers(4, 9))))
        label = i % 2
        words.insert(int(rng.integers(0, len(words) + 1)), "superb" if label else "dreadful")
        texts.append(" ".join(words))
        labels.append(label)
    vectorize = keras.layers.TextVectorization()
    vectorize.adapt(texts)
    model = create_model("kim_cnn", vocabulary=vectorize.get_vocabulary(), sequence_length=12, embedding_dim=16,
                         filters=8)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    data = tf.data.Dataset.from_tensor_slices((texts, labels)).shuffle(48, seed=0).batch(8)
    model.fit(data, epochs=8, verbose=0, shuffle=False)
    predicted = model.predict(tf.constant(texts), verbose=0).argmax(-1)
    assert (predicted == np.array(labels)).all()
    # The max-norm bound held through training.
    assert np.linalg.norm(model.get_layer("logits").kernel.numpy(), axis=0).max() <= 3.0 + 1e-5
    # The padding row stays zero (Kim's code resets it; ZeroFirstRow here).
    np.testing.assert_array_equal(model.get_layer("embedding").get_weights()[0][0], 0.0)


def test_adadelta_is_an_optimizer_choice_with_rate_one():
    from kerascnn.config import OPTIMIZER_DEFAULT_LR, TrainConfig
    from kerascnn.training.optim import make_optimizer

    opt = make_optimizer(TrainConfig(optimizer="adadelta", rho=0.95, epsilon=1e-6, schedule="constant"), 10)
    assert isinstance(opt, keras.optimizers.Adadelta) and OPTIMIZER_DEFAULT_LR["adadelta"] == 1.0
    assert math.isclose(float(opt.learning_rate), 1.0) and opt.rho == 0.95 and opt.epsilon == 1e-6

