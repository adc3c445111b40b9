"""Inception v3 (Keras's, plus the auxiliary classifier) and Inception v4 (our own builder).

Inception v4 (Szegedy, Ioffe, Vanhoucke & Alemi 2016, "Inception-v4, Inception-ResNet and the
Impact of Residual Connections on Learning", Figures 3-9) follows TF-slim's `inception_v4.py`, the
reference implementation with published weights: every conv is conv (no bias) -> BN (no scale,
eps 1e-3) -> ReLU. Each block is data: a list of branches, each a list of convs and pools, the
branch outputs concatenated. Keras ships no Inception v4, so there are no pretrained weights.

Parameters at 299x299x3 (they do not depend on the input size): 42,711,400 at 1000 classes, of
which 42,648,232 trainable (conv weights, BN betas, classifier) and 63,168 BN moving statistics.
With slim's 1001 classes: 42,712,937 (42.7 M), 42,649,769 trainable. timm's 42,679,816 (1000
classes) also counts a BN gamma per channel (31,584), which slim and we leave out.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence, Union

import keras

from kerascnn.errors import ModelError
from kerascnn.models.layers import conv_bn_act
from kerascnn.models.common import (check_common_args, finish_model, global_pool_top, load_weights,
                                    model_input, resolve_input_shape)
from kerascnn.models.keras_apps import build_application
from kerascnn.models.registry import register_model


class Conv(NamedTuple):
    filters: int
    kernel: tuple  # (height, width)
    strides: int = 1
    padding: str = "same"


class Pool(NamedTuple):
    kind: str  # "max" or "avg", always 3x3
    strides: int = 1
    padding: str = "same"


class Split(NamedTuple):
    """Ends a branch with parallel sub-branches whose outputs join the block's concatenation."""
    branches: Sequence[Sequence[Conv]]


Op = Union[Conv, Pool, Split]

# Stem (Figure 3)
MIXED_3A = [[Pool("max", 2, "valid")], [Conv(96, (3, 3), 2, "valid")]]
MIXED_4A = [[Conv(64, (1, 1)), Conv(96, (3, 3), 1, "valid")],
            [Conv(64, (1, 1)), Conv(64, (1, 7)), Conv(64, (7, 1)), Conv(96, (3, 3), 1, "valid")]]
MIXED_5A = [[Conv(192, (3, 3), 2, "valid")], [Pool("max", 2, "valid")]]
# Inception-A, -B, -C (Figures 4, 5, 6) and Reduction-A, -B (Figures 7, 8; A with k,l,m,n = 192,224,256,384)
INCEPTION_A = [[Conv(96, (1, 1))],
               [Conv(64, (1, 1)), Conv(96, (3, 3))],
               [Conv(64, (1, 1)), Conv(96, (3, 3)), Conv(96, (3, 3))],
               [Pool("avg"), Conv(96, (1, 1))]]
REDUCTION_A = [[Conv(384, (3, 3), 2, "valid")],
               [Conv(192, (1, 1)), Conv(224, (3, 3)), Conv(256, (3, 3), 2, "valid")],
               [Pool("max", 2, "valid")]]
INCEPTION_B = [[Conv(384, (1, 1))],
               [Conv(192, (1, 1)), Conv(224, (1, 7)), Conv(256, (7, 1))],
               [Conv(192, (1, 1)), Conv(192, (7, 1)), Conv(224, (1, 7)), Conv(224, (7, 1)), Conv(256, (1, 7))],
               [Pool("avg"), Conv(128, (1, 1))]]
REDUCTION_B = [[Conv(192, (1, 1)), Conv(192, (3, 3), 2, "valid")],
               [Conv(256, (1, 1)), Conv(256, (1, 7)), Conv(320, (7, 1)), Conv(320, (3, 3), 2, "valid")],
               [Pool("max", 2, "valid")]]
_SPLIT_C = Split([[Conv(256, (1, 3))], [Conv(256, (3, 1))]])
INCEPTION_C = [[Conv(256, (1, 1))],
               [Conv(384, (1, 1)), _SPLIT_C],
               [Conv(384, (1, 1)), Conv(448, (3, 1)), Conv(512, (1, 3)), _SPLIT_C],
               [Pool("avg"), Conv(256, (1, 1))]]
# (block, repeats, name of the first; later repeats count on: mixed_5b, mixed_5c, ...)
INCEPTION_V4_BLOCKS = ((MIXED_3A, 1, "mixed_3a"), (MIXED_4A, 1, "mixed_4a"), (MIXED_5A, 1, "mixed_5a"),
                       (INCEPTION_A, 4, "mixed_5b"), (REDUCTION_A, 1, "mixed_6a"),
                       (INCEPTION_B, 7, "mixed_6b"), (REDUCTION_B, 1, "mixed_7a"),
                       (INCEPTION_C, 3, "mixed_7b"))

# The apps' layers (registry.USES). Inception v3 keeps Keras's names, which leave the stem unnamed:
# style from mixed0 on, content and dream in the 17x17 blocks (keras-io dreams with mixed4..mixed7).
# Inception v4's blocks mirror them (mixed_6b..mixed_6h are its 17x17 blocks).
INCEPTION_V3_LAYERS = {
    "content": ("mixed5",),
    "style": ("mixed0", "mixed2", "mixed5", "mixed7", "mixed9"),
    "dream": ("mixed4", "mixed5", "mixed6", "mixed7"),
    "cam": ("mixed10",),
}
INCEPTION_V4_LAYERS = {
    "content": ("mixed_6d",),
    "style": ("conv2b_relu", "mixed_5e", "mixed_6d", "mixed_6h", "mixed_7c"),
    "dream": ("mixed_6b", "mixed_6d", "mixed_6f", "mixed_6h"),
    "cam": ("mixed_7d",),
}


def _conv(x, op: Conv, name: str):
    return conv_bn_act(x, op.filters, op.kernel, name, strides=op.strides, padding=op.padding,
                       bn_epsilon=1e-3, bn_scale=False)


def _branch(x, ops: Sequence[Op], name: str):
    """Run one branch; returns the list of its output tensors (two when it ends in a Split)."""
    for i, op in enumerate(ops):
        if isinstance(op, Split):
            return [_branch(x, sub, f"{name}_{chr(ord('a') + j)}")[0] for j, sub in enumerate(op.branches)]
        if isinstance(op, Pool):
            pool = keras.layers.MaxPooling2D if op.kind == "max" else keras.layers.AveragePooling2D
            x = pool(3, strides=op.strides, padding=op.padding, name=f"{name}_{i}_{op.kind}pool")(x)
        else:
            x = _conv(x, op, f"{name}_{i}")
    return [x]


def branched_block(x, branches: Sequence[Sequence[Op]], name: str):
    """Branches `{name}_b0` ... on the same input, concatenated into the layer `name`."""
    outputs = [out for b, ops in enumerate(branches) for out in _branch(x, ops, f"{name}_b{b}")]
    return keras.layers.Concatenate(axis=-1, name=name)(outputs)


def _next_name(name: str, k: int) -> str:
    return name[:-1] + chr(ord(name[-1]) + k)


@register_model(default_input=(299, 299, 3), min_input=(75, 75, 3), paper="Szegedy et al. 2016",
                family="inception", preprocessing="tf", layers=INCEPTION_V4_LAYERS)
def inception_v4(input_shape=None, num_classes=1000, include_top=True, weights=None, pooling=None,
                 classifier_activation="softmax", name="inception_v4", dropout=0.2):
    """Inception-v4 (Szegedy et al. 2016, "Inception-v4, Inception-ResNet and the Impact of Residual
    Connections on Learning"). `dropout`: before the classifier (slim keeps 0.8)."""
    check_common_args(name, num_classes, include_top, pooling)
    shape = resolve_input_shape(input_shape, (299, 299, 3), (75, 75, 3), name)
    inputs, x = model_input(shape, "tf")
    x = _conv(x, Conv(32, (3, 3), 2, "valid"), "conv1a")
    x = _conv(x, Conv(32, (3, 3), 1, "valid"), "conv2a")
    x = _conv(x, Conv(64, (3, 3)), "conv2b")
    for block, repeats, first in INCEPTION_V4_BLOCKS:
        for k in range(repeats):
            x = branched_block(x, block, _next_name(first, k))
    return finish_model(inputs, x, top=global_pool_top(dropout), name=name, include_top=include_top,
                        num_classes=num_classes, classifier_activation=classifier_activation, pooling=pooling,
                        weights=weights)


def inception_v3_aux_head(x, num_classes: int, classifier_activation, name: str = "aux"):
    """The auxiliary classifier on "mixed7" (17x17x768 at 299; Szegedy et al. 2015, Figure 8):
    avg-pool 5x5/3 -> 1x1@128 -> 5x5@768 valid -> classes, convs with BN as in Keras's InceptionV3.

    As in TF-slim, the 5x5 kernel shrinks when the pooled map is smaller (inputs below 299), and a
    global average keeps larger inputs valid (at 299 the 5x5 conv already gives 1x1).
    """
    x = keras.layers.AveragePooling2D(5, strides=3, name=f"{name}_pool")(x)
    x = conv_bn_act(x, 128, 1, f"{name}_conv1", bn_scale=False)
    kernel = (min(5, x.shape[1]), min(5, x.shape[2]))
    x = conv_bn_act(x, 768, kernel, f"{name}_conv2", padding="valid", bn_scale=False)
    x = keras.layers.GlobalAveragePooling2D(name=f"{name}_avg_pool")(x)
    x = keras.layers.Dense(num_classes, name=f"{name}_logits")(x)
    return keras.layers.Activation(classifier_activation or "linear", dtype="float32",
                                   name=f"{name}_predictions")(x)


@register_model(default_input=(299, 299, 3), min_input=(75, 75, 3), paper="Szegedy et al. 2015",
                family="inception", pretrained=("imagenet",), preprocessing="tf", layers=INCEPTION_V3_LAYERS)
def inception_v3(input_shape=None, num_classes=1000, include_top=True, weights=None, pooling=None,
                 classifier_activation="softmax", name="inception_v3", aux_logits=False):
    """Inception-v3 (Szegedy et al. 2015, "Rethinking the Inception Architecture for Computer
    Vision"), keras.applications.InceptionV3.

    Args:
        aux_logits: add the auxiliary classifier on "mixed7" (layers `aux_*`); the model then has
            the outputs `[predictions, aux_predictions]`. Keras's ImageNet weights have no aux head,
            so it starts from scratch. Needs include_top and an input of at least 107x107 (mixed7 >= 5x5).
    """
    model = build_application(
        keras.applications.InceptionV3, name=name, preprocessing="tf", default_input=(299, 299, 3),
        min_input=(75, 75, 3), input_shape=input_shape, num_classes=num_classes, include_top=include_top,
        weights=weights if weights == "imagenet" or not aux_logits else None, pooling=pooling,
        classifier_activation=classifier_activation)
    if not aux_logits:
        return model
    if not include_top:
        raise ValueError(f"{name}: aux_logits needs include_top=True. Received: include_top={include_top}")
    mixed7 = model.get_layer("mixed7").output
    if min(mixed7.shape[1:3]) < 5:
        raise ModelError(f"{name}: the auxiliary head needs mixed7 of at least 5x5 (an input of at least "
                         f"107x107). Received: input_shape={tuple(model.input.shape[1:])}")
    aux = inception_v3_aux_head(mixed7, num_classes, classifier_activation)
    model = keras.Model(model.input, [model.output, aux], name=name)
    return model if weights in (None, "imagenet") else load_weights(model, weights, name)
