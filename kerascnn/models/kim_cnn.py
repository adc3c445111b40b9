"""Kim's sentence CNN (Kim 2014, "Convolutional Neural Networks for Sentence Classification").

raw strings -> "vectorize" (TextVectorization with kerascnn.models.tokenize's Kim-style cleaning:
lower case, clitics and ( ) , ! ? as tokens of their own, the vocabulary, padded or cut to
`sequence_length` tokens) -> word vectors ("embedding") ->
"conv3", "conv4", "conv5" (100 filters each, ReLU) -> max over time ("pool3" ...) -> "features"
(300) -> "dropout" (0.5) -> "logits" (Dense under a max-norm 3 constraint on each class's weight
vector) -> "predictions". The model carries its tokenizer, so a saved `.keras` file takes raw text.

Kim's four variants (`variant=`):

* rand: word vectors initialised at random (U[-0.25, 0.25], Kim's code) and trained.
* static: pretrained vectors (`embeddings=` a GloVe / word2vec / .npy file, see
  kerascnn.models.embeddings), frozen.
* non_static: pretrained vectors, fine-tuned.
* multichannel: two copies, "embedding_static" (frozen) and "embedding_tuned" (trained), the two
  channels of the sentence "image". Each filter sees both channels and sums them (Kim, section 2):
  the channels are concatenated along the vector axis ("channels"), so a Conv1D of width w over
  2D inputs is exactly the 2-channel convolution with a w x D kernel per channel and one bias.

Words the vectors file lacks start at U[-a, a] with the pretrained vectors' variance (Kim); the
padding row stays zero (ZeroFirstRow, as Kim's code resets it), and so does "[UNK]": the vocabulary
holds every training word, so no training sentence has an unknown word and that row would never
train; a random vector there made out-of-domain sentences (tweets, with many words the movie
reviews lack) lean to one class (47.5% on the tweets, bench/RESULTS.md). Zero, an unknown word adds
nothing, as padding does. Without `vocabulary` (summaries,
`kerascnn models`) the model is built over a placeholder vocabulary of `vocabulary_size` tokens: its
parameter count is that of a real vocabulary of that size, its predictions meaningless (the
pretrained variants then take random vectors of `embedding_dim` unless `embeddings` is given).
"""
from __future__ import annotations

import logging
from typing import Optional, Sequence

import keras
import numpy as np

from kerascnn.errors import ModelError
from kerascnn.models.common import check_common_args, finish_model
from kerascnn.models.embeddings import embedding_matrix, load_vectors, resolve_embeddings
from kerascnn.models.layers import ZeroFirstRow
from kerascnn.models.registry import register_model
from kerascnn.models.tokenize import full_vocabulary, text_vectorizer

log = logging.getLogger(__name__)

VARIANTS = ("rand", "static", "non_static", "multichannel")
RAND_DIM = 300  # word vector size of rand (Kim: the word2vec vectors' 300)
RAND_INIT = 0.25  # rand's U[-0.25, 0.25] (Kim's code)
UNKNOWN_ROWS = 2  # the rows kept at zero: padding "" and "[UNK]" (see the module doc)
PLACEHOLDER_VOCABULARY = 20_000  # MR's vocabulary is 18,765 words (Kim, Table 1)

# Kim's training (section 3.1): Adadelta (rho 0.95, eps 1e-6), mini-batches of 50, early stopping
# on a dev set; dropout and the max-norm constraint live in the model.
KIM2014_RECIPE = {"optimizer": "adadelta", "rho": 0.95, "epsilon": 1e-6, "schedule": "constant",
                  "batch_size": 50, "epochs": 25, "early_stopping": 5,
                  "early_stopping_on": "val_accuracy"}


def _pretrained(vocab: list, embeddings, embedding_dim: Optional[int], seed: Optional[int]) -> np.ndarray:
    if embeddings is None:
        raise ModelError("kim_cnn: the static, non_static and multichannel variants need pretrained vectors: "
                         "embeddings=PATH (GloVe .txt, word2vec .bin, .npy) or a name like glove.6B.300d.")
    vectors = load_vectors(resolve_embeddings(str(embeddings)), vocab)
    if embedding_dim is not None and int(embedding_dim) != vectors.dim:
        raise ModelError(f"kim_cnn: embedding_dim={embedding_dim} but {vectors.path} holds {vectors.dim}-d vectors.")
    if seed is None:
        seed = int(np.random.randint(2**31 - 1))  # follows keras.utils.set_random_seed
    matrix, missing = embedding_matrix(vocab, vectors, seed)
    log.info("kim_cnn: %d of %d vocabulary words not in %s, initialised at random", missing, len(vocab) - 2,
             vectors.path)
    return matrix


def _embedding(tokens, vocab_size: int, dim: int, name: str, trainable: bool, matrix: Optional[np.ndarray]):
    init = keras.initializers.RandomUniform(-RAND_INIT, RAND_INIT)
    layer = keras.layers.Embedding(vocab_size, dim, embeddings_initializer=init,
                                   embeddings_constraint=ZeroFirstRow(UNKNOWN_ROWS), trainable=trainable, name=name)
    x = layer(tokens)
    # Set after building: a Constant initializer would copy the whole matrix into the model's JSON.
    layer.set_weights([ZeroFirstRow(UNKNOWN_ROWS)(keras.ops.convert_to_tensor(
        matrix if matrix is not None else layer.get_weights()[0]))])
    return x


@register_model(default_input=(), min_input=(), paper="Kim 2014", family="kim", inputs="text",
                recipe=KIM2014_RECIPE)
def kim_cnn(input_shape=None, num_classes=2, include_top=True, weights=None, pooling=None,
            classifier_activation="softmax", name="kim_cnn", variant=None,
            vocabulary: Optional[Sequence[str]] = None, sequence_length=64, embedding_dim=None, embeddings=None,
            filter_sizes=(3, 4, 5), filters=100, dropout=0.5, max_norm=3.0, vocabulary_size=PLACEHOLDER_VOCABULARY,
            seed=None):
    """Kim's CNN for sentence classification (Kim 2014); takes a batch of raw strings.

    Args:
        input_shape: None or () (one string per example); the length in tokens is `sequence_length`.
        pooling: None or "max": the features are max-over-time pooled already.
        variant: rand | static | non_static | multichannel (see the module doc); None: non_static
            when `embeddings` is given (a user who names vectors wants them used), else rand.
        vocabulary: the tokens, as TextVectorization.get_vocabulary() returns them (with or without
            "" and "[UNK]" first); None: a placeholder of `vocabulary_size` tokens (for summaries).
        sequence_length: tokens per example (longer texts are cut, shorter ones padded).
        embedding_dim: word vector size; default 300 for rand, the file's for the others.
        embeddings: a vectors file or a known name (kerascnn.models.embeddings); rand ignores it.
        filter_sizes, filters: the convolution widths (in words) and filters per width.
        dropout: the rate on the pooled features (Kim: 0.5).
        max_norm: the l2-norm bound of each class's weight vector in "logits" (Kim: 3); None: none.
        vocabulary_size: the placeholder vocabulary's size ("" and "[UNK]" included).
        seed: the random rows of words missing from `embeddings`; None: from numpy's global state.
    """
    check_common_args(name, num_classes, include_top, None)
    if input_shape is not None and tuple(input_shape) != ():
        raise ModelError(f"{name}: takes one string per example (input_shape ()); set the length in tokens with "
                         f"sequence_length. Received: input_shape={tuple(input_shape)}")
    if pooling not in (None, "max"):
        raise ModelError(f"{name}: its features are max-over-time pooled already; pooling must be None or 'max'. "
                         f"Received: pooling={pooling!r}")
    if variant is None:
        variant = "rand" if embeddings is None else "non_static"
    if variant not in VARIANTS:
        raise ModelError(f"{name}: variant must be one of {', '.join(VARIANTS)}. Received: variant={variant!r}")
    if int(sequence_length) < max(filter_sizes):
        raise ModelError(f"{name}: sequence_length {sequence_length} is shorter than the widest filter "
                         f"({max(filter_sizes)} words).")
    vocab = full_vocabulary(vocabulary, vocabulary_size, name)
    if variant == "rand":
        if embeddings is not None:
            log.warning("%s: variant rand ignores embeddings=%s (pick static, non_static or multichannel)",
                        name, embeddings)
        matrix, dim = None, int(embedding_dim or RAND_DIM)
    elif vocabulary is None and embeddings is None:
        # A placeholder model (summaries): its counts need the vector size, not a vectors file.
        matrix, dim = None, int(embedding_dim or RAND_DIM)
    else:
        matrix = _pretrained(vocab, embeddings, embedding_dim, seed)
        dim = matrix.shape[1]

    inputs = keras.Input(shape=(), dtype="string", name="input")
    tokens = text_vectorizer(vocab, sequence_length, name="vectorize")(inputs)
    if variant == "multichannel":
        x = keras.layers.Concatenate(name="channels")([
            _embedding(tokens, len(vocab), dim, "embedding_static", False, matrix),
            _embedding(tokens, len(vocab), dim, "embedding_tuned", True, matrix)])
    else:
        x = _embedding(tokens, len(vocab), dim, "embedding", variant != "static", matrix)
    pooled = []
    for w in filter_sizes:
        c = keras.layers.Conv1D(int(filters), int(w), activation="relu", name=f"conv{w}")(x)
        pooled.append(keras.layers.GlobalMaxPooling1D(name=f"pool{w}")(c))
    x = pooled[0] if len(pooled) == 1 else keras.layers.Concatenate(name="features")(pooled)

    def logits(x):
        constraint = keras.constraints.MaxNorm(float(max_norm), axis=0) if max_norm else None
        return keras.layers.Dense(num_classes, kernel_constraint=constraint, name="logits")(x)

    return finish_model(inputs, x, name=name, include_top=include_top, num_classes=num_classes,
                        classifier_activation=classifier_activation, pooling=None, weights=weights,
                        top=lambda x: keras.layers.Dropout(float(dropout), name="dropout")(x), logits=logits)


__all__ = ["KIM2014_RECIPE", "VARIANTS", "kim_cnn"]
