"""Visual question answering: CNN + Relation Network and CNN + MLP (Santoro et al. 2017, "A simple
neural network module for relational reasoning").

Both take {"image": (B, H, W, C) raw pixels [0, 255], "question": (B,) strings} and carry their
tokenizer, so a saved `.keras` file answers raw questions (`question_input="tokens"` builds them
over the token ids instead, without TensorFlow; the same layer names, so weights move by name):

    image -> "preprocess" (/255) -> "conv1" .. "conv4" (3x3, stride 2, 24 maps, BatchNorm, ReLU:
             layers conv1_conv, conv1_bn, conv1_relu, ...) -> a 5x5x24 map at 75x75 ("image_features",
             the registry's "cam" layer)
    question -> "vectorize" (TextVectorization, kerascnn.models.tokenize's cleaning) -> "embedding"
             -> "question_lstm" (128 units, the paper's) or "question_conv" + "question_pool" (a 1-D
             ConvNet) -> the question vector q

* vqa_cnn_rn: every cell of the map is an object, tagged with its (x, y) in [-1, 1] ("objects");
  g = an MLP of 4 x 256 ReLU over every ordered pair (o_i, o_j) with q ("g1" .. "g4"), summed over
  the pairs ("relations"); f = "f1" (256), "f2" (256), "dropout" (0.5), "logits".
* vqa_cnn_mlp: the map flattened ("flatten") and q concatenated ("features"), then the same f:
  Santoro's own code for the paper's CNN+MLP baseline (a 5*5*24 + q -> 256 -> 256 -> answers MLP).

The RN on a CPU: g's first layer is linear in the concatenation [o_i, o_j, q], so
W [o_i; o_j; q] + b = W_i o_i + W_j o_j + (W_q q + b): "g1" (`PairwiseDense`) computes W_i o and
W_j o once per object and W_q q once per question and adds them per pair (N^2 additions of 256
instead of N^2 products of (2D + Q) x 256); exact, and the same weights as the plain layer.

The image backbone is replaceable: `backbone=` a registry name or `keras:NAME` (kerascnn.models.refs),
built without its top at the model's image size; its last feature map's cells are the objects (its
own preprocessing travels inside it, so there is no "preprocess" layer then); "image_features" is
then its last map, so Grad-CAM's "cam" still names the map the objects come from.
"""
from __future__ import annotations

from typing import Optional, Sequence

import keras
from keras import ops

from kerascnn.errors import ModelError
from kerascnn.models.common import check_common_args, finish_model
from kerascnn.models.layers import conv_bn_act
from kerascnn.models.preprocessing import Preprocess
from kerascnn.models.registry import register_model
from kerascnn.models.tokenize import full_vocabulary, text_vectorizer

ENCODERS = ("lstm", "cnn")
# "text": the model takes the questions as strings and tokenizes them ("vectorize"); "tokens": it
# takes the token ids that layer would give ((B, question_length) int32, kerascnn.models.tokenize's
# `token_ids`), for a backend without TensorFlow (bench/vqa_gpu.py trains on JAX); the other layers
# and their names are the same, so weights move between the two by layer name.
QUESTION_INPUTS = ("text", "tokens")
PLACEHOLDER_VOCABULARY = 64  # Sort-of-CLEVR's questions use 30 words
SORT_OF_CLEVR_ANSWERS = 12  # square, circle, left, right, top, bottom, 1 .. 6
FEATURES = "image_features"  # the map whose cells are the objects (registry use "cam")

# The CNN's moving BatchNorm statistics decay at 0.9 a step (PyTorch's momentum 0.1, which the
# reproductions of Santoro et al. use), not Keras's 0.99. Conv kernels followed by BN are free to drift
# under Adam (the loss does not see their scale or offset), and on Sort-of-CLEVR at 1e-4 they drift
# faster than a 100-step average follows: after epoch 8 of the CPU run, conv4's moving means stood 0.6
# (at most 1.25) standard deviations from the batch statistics, and the validation accuracy fell from
# 67% (statistics recomputed for the same weights) to 47%; two of eight epochs ended so (bench/RESULTS.md).
BN_MOMENTUM = 0.9

# Santoro et al.'s training (their code): Adam at 1e-4, mini-batches of 64. Ours adds PreciseBN before
# each validation (50 batches, 3,200 scenes; ~9 s an epoch on 2 cores): the RN sums g over 625 pairs,
# ~400 of them background cells, so a small error in the moving statistics moves the sum a lot; with
# moving averages at 0.9 that were 0.02 (at most 0.09) standard deviations off, the count questions
# scored 59% against 81% with the statistics recomputed (epoch 10 of the CPU run, bench/RESULTS.md).
SANTORO2017_RECIPE = {"optimizer": "adam", "lr": 1e-4, "batch_size": 64, "schedule": "constant", "precise_bn": 50}


def mlp_init():
    """g's and f's kernels: uniform in +-1/sqrt(fan_in), PyTorch's nn.Linear default, which the
    reproductions of Santoro et al. use. Glorot's is ~sqrt(3) wider a layer; through g's four
    layers and the sum over 625 pairs that makes the untrained RN's answers near certain (cross-
    entropy 5-8 on Sort-of-CLEVR, softmax saturated); this starts at ~ln(12), the uniform guess."""
    return keras.initializers.VarianceScaling(scale=1.0 / 3.0, mode="fan_in", distribution="uniform")


def word_init():
    """The question words' vectors: N(0, 1), PyTorch's nn.Embedding default, which the reproductions of
    Santoro et al. use (the paper itself gave Sort-of-CLEVR's questions as one-hot colour and type bits).
    Keras's uniform +-0.05 makes them ~35x shorter, and then questions that differ only in their colour
    word reach g nearly alike (an untrained LSTM's vectors 0.016 apart, against 0.46 with N(0, 1)): the
    model cannot tell which object is asked about, and Sort-of-CLEVR's CNN+RN sat at chance on the
    non-relational questions for 9 epochs (24k steps) while it learned the question types."""
    return keras.initializers.RandomNormal(stddev=1.0)


@keras.saving.register_keras_serializable(package="kerascnn")
class ObjectCoordinates(keras.layers.Layer):
    """A feature map (B, H, W, C) -> its cells as objects (B, H*W, C + 2), each tagged with its
    (x, y) centre in [-1, 1] (x across the columns, y down the rows; one cell: 0), row by row."""

    def call(self, x):
        h, w, c = x.shape[1], x.shape[2], x.shape[3]

        def axis(n):
            return ops.linspace(-1.0, 1.0, n) if n > 1 else ops.zeros((1,))

        ys, xs = ops.meshgrid(axis(h), axis(w), indexing="ij")
        coords = ops.cast(ops.reshape(ops.stack([xs, ys], axis=-1), (1, h * w, 2)), x.dtype)
        objects = ops.reshape(x, (-1, h * w, c))
        return ops.concatenate([objects, ops.broadcast_to(coords, (ops.shape(objects)[0], h * w, 2))], axis=-1)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, h * w, c + 2)


@keras.saving.register_keras_serializable(package="kerascnn")
class PairwiseDense(keras.layers.Layer):
    """g's first layer over every ordered pair of objects with the question, factorised (exact):

        out[b, i * N + j] = act(W [o_i; o_j; q] + bias) = act(o_i W_i + o_j W_j + q W_q + bias)

    Inputs [objects (B, N, D), question (B, Q)]; output (B, N*N, units), pair (i, j) at i*N + j.
    The kernel is W itself ((2D + Q, units): rows W_i, then W_j, then W_q), so its weights are
    those of a Dense over the concatenation (`naive_pairs` computes that, for tests).
    """

    def __init__(self, units: int, activation=None, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        objects, question = input_shape
        self.object_dim, self.question_dim = int(objects[-1]), int(question[-1])
        self.kernel = self.add_weight(shape=(2 * self.object_dim + self.question_dim, self.units),
                                      initializer=self.kernel_initializer, name="kernel")
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

    def call(self, inputs):
        objects, question = inputs
        d = self.object_dim
        first = ops.matmul(objects, self.kernel[:d])  # (B, N, U): o_i W_i, once per object
        second = ops.matmul(objects, self.kernel[d:2 * d])  # o_j W_j
        third = ops.matmul(question, self.kernel[2 * d:]) + self.bias  # (B, U), once per question
        n = objects.shape[1] if objects.shape[1] is not None else ops.shape(objects)[1]
        pairs = first[:, :, None, :] + second[:, None, :, :] + third[:, None, None, :]  # (B, N, N, U)
        return self.activation(ops.reshape(pairs, (-1, n * n, self.units)))

    def compute_output_shape(self, input_shape):
        objects, _ = input_shape
        n = objects[1]
        return (objects[0], None if n is None else n * n, self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": keras.activations.serialize(self.activation),
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


@keras.saving.register_keras_serializable(package="kerascnn")
class SumPairs(keras.layers.Layer):
    """(B, P, U) -> (B, U): the sum of g over the pairs (the RN's sum, not a mean), accumulated in
    float32 (625 pairs at 75x75: bfloat16's 8-bit mantissa would lose the small terms)."""

    def call(self, x):
        return ops.cast(ops.sum(ops.cast(x, "float32"), axis=1), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


def naive_pairs(objects, question, kernel, bias):
    """The plain RN's first g layer (pre-activation): every ordered pair concatenated [o_i, o_j, q]
    and multiplied by the whole kernel; what `PairwiseDense` must equal (numpy, for tests)."""
    import numpy as np

    b, n, d = objects.shape
    left = np.repeat(objects[:, :, None, :], n, axis=2)  # o_i
    right = np.repeat(objects[:, None, :, :], n, axis=1)  # o_j
    q = np.broadcast_to(question[:, None, None, :], (b, n, n, question.shape[-1]))
    pairs = np.concatenate([left, right, q], axis=-1).reshape(b, n * n, -1)
    return pairs @ kernel + bias


def _image_features(image, shape, backbone, backbone_weights, conv_filters: int, name: str):
    """The feature map the objects come from: the paper's four convolutions, or a backbone's, then
    "image_features" (an identity): the registry's "cam" layer whatever the backbone, and a tap in
    the outer graph (Grad-CAM cannot tap inside a nested backbone whose head also takes the question)."""
    if backbone is None:
        x = Preprocess("scale", name="preprocess")(image)
        for i in range(1, 5):
            x = conv_bn_act(x, int(conv_filters), 3, name=f"conv{i}", strides=2, bn_momentum=BN_MOMENTUM)
        return keras.layers.Identity(name=FEATURES)(x)
    from kerascnn.models.refs import resolve_model

    net = resolve_model(str(backbone), backbone_weights, include_top=False, input_shape=shape)
    if len(net.output_shape) != 4:
        raise ModelError(f"{name}: backbone {backbone} gives {net.output_shape}, not a feature map (B, H, W, C).")
    net.name = "backbone"
    return keras.layers.Identity(name=FEATURES)(net(image))


def _question_vector(question, vocab: list, encoder: str, length: int, embedding_dim: int, units: int, name: str,
                     question_input: str = "text"):
    if encoder not in ENCODERS:
        raise ModelError(f"{name}: question_encoder must be one of {', '.join(ENCODERS)}. Received: {encoder!r}")
    tokens = question if question_input == "tokens" else text_vectorizer(vocab, int(length), name="vectorize")(question)
    # The LSTM skips the padding (mask); the ConvNet sees it as zeros (row 0 of the embedding).
    x = keras.layers.Embedding(len(vocab), int(embedding_dim), mask_zero=encoder == "lstm",
                               embeddings_initializer=word_init(), name="embedding")(tokens)
    if encoder == "lstm":
        return keras.layers.LSTM(int(units), name="question_lstm")(x)
    x = keras.layers.Conv1D(int(units), 3, padding="same", activation="relu", name="question_conv")(x)
    return keras.layers.GlobalMaxPooling1D(name="question_pool")(x)


def _build(relational: bool, input_shape, num_classes, include_top, weights, pooling, classifier_activation, name,
           vocabulary, question_length, question_encoder, embedding_dim, question_units, conv_filters, g_units,
           f_units, dropout, backbone, backbone_weights, vocabulary_size, question_input):
    check_common_args(name, num_classes, include_top, None)
    if pooling is not None:
        raise ModelError(f"{name}: its features are a vector already (the relations' sum, or the MLP's "
                         f"input); pooling must be None. Received: pooling={pooling!r}")
    shape = tuple(int(s) for s in (input_shape or (75, 75, 3)))
    if len(shape) != 3:
        raise ModelError(f"{name}: input_shape is the image's (height, width, channels). Received: {input_shape}")
    if backbone is None and min(shape[:2]) < 16:
        raise ModelError(f"{name}: input {shape[0]}x{shape[1]} is too small; four stride-2 convolutions need at "
                         f"least 16x16.")
    if question_input not in QUESTION_INPUTS:
        raise ModelError(f"{name}: question_input must be one of {', '.join(QUESTION_INPUTS)}. "
                         f"Received: {question_input!r}")
    image = keras.Input(shape=shape, name="image")
    question = (keras.Input(shape=(int(question_length),), dtype="int32", name="question")
                if question_input == "tokens" else keras.Input(shape=(), dtype="string", name="question"))
    features = _image_features(image, shape, backbone, backbone_weights, conv_filters, name)
    vocab = full_vocabulary(vocabulary, vocabulary_size, name)
    q = _question_vector(question, vocab, question_encoder, question_length, embedding_dim, question_units, name,
                         question_input)
    if relational:
        objects = ObjectCoordinates(name="objects")(features)
        units = [int(u) for u in g_units]
        if not units:
            raise ModelError(f"{name}: g needs at least one layer (g_layers >= 1).")
        x = PairwiseDense(units[0], activation="relu", kernel_initializer=mlp_init(), name="g1")([objects, q])
        for i, u in enumerate(units[1:], start=2):
            x = keras.layers.Dense(u, activation="relu", kernel_initializer=mlp_init(), name=f"g{i}")(x)
        x = SumPairs(name="relations")(x)
    else:
        flat = keras.layers.Flatten(name="flatten")(features)
        x = keras.layers.Concatenate(name="features")([flat, q])

    def top(x):
        for i, u in enumerate(f_units, start=1):
            x = keras.layers.Dense(int(u), activation="relu", kernel_initializer=mlp_init(), name=f"f{i}")(x)
        return keras.layers.Dropout(float(dropout), name="dropout")(x) if dropout else x

    return finish_model({"image": image, "question": question}, x, name=name, include_top=include_top,
                        num_classes=num_classes, classifier_activation=classifier_activation, pooling=None,
                        weights=weights, top=top)


_ARGS_DOC = """
    Args:
        input_shape: the image's (height, width, channels); default 75x75x3 (Sort-of-CLEVR).
        num_classes: the answers (Sort-of-CLEVR: 12).
        pooling: None (the features are a vector already).
        vocabulary: the question words, as TextVectorization.get_vocabulary() lists them (with or
            without "" and "[UNK]" first; the data gives it: DataBundle.model_args); None: a
            placeholder of `vocabulary_size` tokens (summaries).
        question_length: tokens per question (longer ones are cut, shorter ones padded).
        question_encoder: "lstm" (the paper's) or "cnn" (a 1-D convolution of width 3, max over time).
        embedding_dim, question_units: the word vectors' size; the LSTM's units (or the filters).
        conv_filters: the maps of each of the four convolutions (paper: 24).
        g_units, g_layers: g's width and depth (paper: 4 x 256); vqa_cnn_mlp has no g.
        f_units, f_layers: f's hidden layers before the dropout and the answers (paper: 2 x 256).
        dropout: the rate before the answers (paper: 0.5).
        backbone: None (the paper's four convolutions), a registry name or keras:NAME whose last
            feature map gives the objects; backbone_weights: its weights (e.g. "imagenet").
        vocabulary_size: the placeholder vocabulary's size.
        question_input: "text" (questions as strings, tokenized inside the model) or "tokens" (the
            token ids, (B, question_length) int32, as kerascnn.models.tokenize.token_ids gives them:
            no TensorFlow needed; the same layers and names otherwise).
"""


@register_model(default_input=(75, 75, 3), min_input=(16, 16, 3), paper="Santoro et al. 2017", family="vqa",
                inputs="image+question", recipe=SANTORO2017_RECIPE, layers={"cam": FEATURES})
def vqa_cnn_rn(input_shape=None, num_classes=SORT_OF_CLEVR_ANSWERS, include_top=True, weights=None, pooling=None,
               classifier_activation="softmax", name="vqa_cnn_rn", vocabulary: Optional[Sequence[str]] = None,
               question_length=24, question_encoder="lstm", embedding_dim=32, question_units=128, conv_filters=24,
               g_units=256, g_layers=4, f_units=256, f_layers=2, dropout=0.5, backbone=None,
               backbone_weights=None, vocabulary_size=PLACEHOLDER_VOCABULARY, question_input="text"):
    """CNN + Relation Network (Santoro et al. 2017): g over every ordered pair of the CNN's cells
    with the question, summed, then f to the answers; takes {"image", "question"}.
    """
    return _build(True, input_shape, num_classes, include_top, weights, pooling, classifier_activation, name,
                  vocabulary, question_length, question_encoder, embedding_dim, question_units, conv_filters,
                  (g_units,) * int(g_layers), (f_units,) * int(f_layers), dropout, backbone, backbone_weights,
                  vocabulary_size, question_input)


@register_model(default_input=(75, 75, 3), min_input=(16, 16, 3), paper="Santoro et al. 2017", family="vqa",
                inputs="image+question", recipe=SANTORO2017_RECIPE, layers={"cam": FEATURES})
def vqa_cnn_mlp(input_shape=None, num_classes=SORT_OF_CLEVR_ANSWERS, include_top=True, weights=None, pooling=None,
                classifier_activation="softmax", name="vqa_cnn_mlp", vocabulary: Optional[Sequence[str]] = None,
                question_length=24, question_encoder="lstm", embedding_dim=32, question_units=128, conv_filters=24,
                f_units=256, f_layers=2, dropout=0.5, backbone=None, backbone_weights=None,
                vocabulary_size=PLACEHOLDER_VOCABULARY, question_input="text"):
    """CNN + MLP, the paper's baseline (Santoro et al. 2017): the CNN's flattened map and the
    question through an MLP to the answers; takes {"image", "question"}.
    """
    return _build(False, input_shape, num_classes, include_top, weights, pooling, classifier_activation, name,
                  vocabulary, question_length, question_encoder, embedding_dim, question_units, conv_filters, (),
                  (f_units,) * int(f_layers), dropout, backbone, backbone_weights, vocabulary_size, question_input)


vqa_cnn_rn.__doc__ += _ARGS_DOC
vqa_cnn_mlp.__doc__ += _ARGS_DOC

__all__ = ["BN_MOMENTUM", "ENCODERS", "FEATURES", "ObjectCoordinates", "PairwiseDense", "QUESTION_INPUTS",
           "SANTORO2017_RECIPE", "SumPairs", "mlp_init", "naive_pairs", "vqa_cnn_mlp", "vqa_cnn_rn", "word_init"]
