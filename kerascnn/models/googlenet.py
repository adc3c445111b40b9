"""GoogLeNet, Inception v1 (Szegedy et al. 2014, "Going Deeper with Convolutions"), Table 1.

    conv1 7x7/2        112x112x64      inception 4a..4e  14x14x512, 512, 512, 528, 832
    pool1 3x3/2         56x56x64       pool4 3x3/2       7x7x832
    conv2 1x1 + 3x3     56x56x192      inception 5a, 5b  7x7x832, 7x7x1024
    pool2 3x3/2         28x28x192      avg pool 7x7/1    1x1x1024, dropout 40%, linear, softmax
    inception 3a, 3b    28x28x256, 480
    pool3 3x3/2         14x14x480

Parameters at 1000 classes without the auxiliary heads: 6,998,552 = 5,973,552 in the 57
convolutions (weights 5,966,272 + biases 7,280) + 1,025,000 in the classifier (1024x1000 weights +
1000 biases); LRN adds none. Table 1's params column is approximate (weights only, rows rounded,
some in units of 1024: 3a's "159K" is 163,328/1024; conv1's "2.7K" should be 9,408) and sums to
about 6.8 M. torchvision's 6,624,904 differs: BN instead of conv
biases and 3x3 instead of 5x5 convolutions in the "5x5" branches. The two auxiliary classifiers add
3,188,840 + 3,190,888 parameters (training only; `strip_auxiliary` drops them).
"""
from __future__ import annotations

import keras

from kerascnn.errors import ModelError
from kerascnn.models.layers import LocalResponseNormalization, conv_relu, inception_v1_module
from kerascnn.models.common import (check_common_args, finish_model, global_pool_top, model_input,
                                    resolve_input_shape)
from kerascnn.models.registry import register_model

# Table 1: module -> (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj); "pool" = max-pool 3x3/2.
GOOGLENET_STAGES = (
    ("3a", (64, 96, 128, 16, 32, 32)),
    ("3b", (128, 128, 192, 32, 96, 64)),
    ("pool3", None),
    ("4a", (192, 96, 208, 16, 48, 64)),
    ("4b", (160, 112, 224, 24, 64, 64)),
    ("4c", (128, 128, 256, 24, 64, 64)),
    ("4d", (112, 144, 288, 32, 64, 64)),
    ("4e", (256, 160, 320, 32, 128, 128)),
    ("pool4", None),
    ("5a", (256, 160, 320, 32, 128, 128)),
    ("5b", (384, 192, 384, 48, 128, 128)),
)
AUX_AFTER = {"4a": "aux1", "4d": "aux2"}  # the auxiliary classifiers' positions (section 5)
AUX_MIN_INPUT = 65  # 4a/4d are ceil(H/16) wide; the 5x5/3 pooling of the aux heads needs 5
# The apps' layers (registry.USES): style from the stem convs and the first module of each stage,
# content and dream in stage 4 (DeepDream's classic inception_4c), cam the last module.
GOOGLENET_LAYERS = {
    "content": ("inception_4c_concat",),
    "style": ("conv1_7x7", "conv2_3x3", "inception_3a_concat", "inception_4a_concat", "inception_5a_concat"),
    "dream": ("inception_4a_concat", "inception_4c_concat", "inception_4e_concat"),
    "cam": ("inception_5b_concat",),
}


def _lrn(x, name):
    return LocalResponseNormalization(depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75, name=name)(x)


def googlenet_stem(x, lrn: bool):
    """conv1 7x7/2, pool1, [LRN], conv2 1x1 reduce + 3x3, [LRN], pool2 (Figure 3's first rows)."""
    x = conv_relu(x, 64, 7, "conv1_7x7", strides=2)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    if lrn:
        x = _lrn(x, "lrn1")
    x = conv_relu(x, 64, 1, "conv2_3x3_reduce")
    x = conv_relu(x, 192, 3, "conv2_3x3")
    if lrn:
        x = _lrn(x, "lrn2")
    return keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)


def auxiliary_head(x, num_classes: int, classifier_activation, name: str):
    """Section 5: avg-pool 5x5/3, 1x1@128 + ReLU, FC 1024 + ReLU, dropout 70%, linear, softmax."""
    x = keras.layers.AveragePooling2D(5, strides=3, name=f"{name}_pool")(x)
    x = conv_relu(x, 128, 1, f"{name}_conv")
    x = keras.layers.Flatten(name=f"{name}_flatten")(x)
    x = keras.layers.Dense(1024, activation="relu", name=f"{name}_fc")(x)
    x = keras.layers.Dropout(0.7, name=f"{name}_dropout")(x)
    x = keras.layers.Dense(num_classes, name=f"{name}_logits")(x)
    return keras.layers.Activation(classifier_activation or "linear", dtype="float32",
                                   name=f"{name}_predictions")(x)


@register_model(default_input=(224, 224, 3), min_input=(32, 32, 3), paper="Szegedy et al. 2014",
                family="inception", layers=GOOGLENET_LAYERS)
def googlenet(input_shape=None, num_classes=1000, include_top=True, weights=None, pooling=None,
              classifier_activation="softmax", name="googlenet", aux_logits=False, lrn=False,
              dropout=0.4):
    """GoogLeNet / Inception v1 (Szegedy et al. 2014, "Going Deeper with Convolutions").

    Args:
        aux_logits: add the two auxiliary classifiers after 4a and 4d; the model then has three
            outputs `[predictions, aux1_predictions, aux2_predictions]` (train with loss weights
            1, 0.3, 0.3; `kerascnn.models.common.strip_auxiliary` keeps only "predictions").
            Needs include_top and an input of at least 65x65.
        lrn: local response normalisation after pool1 and after conv2 (Figure 3).
        dropout: dropout rate before the classifier (40% in the paper).
    """
    check_common_args(name, num_classes, include_top, pooling)
    shape = resolve_input_shape(input_shape, (224, 224, 3), (32, 32, 3), name)
    if aux_logits and not include_top:
        raise ValueError(f"{name}: aux_logits needs include_top=True. Received: include_top={include_top}")
    if aux_logits and min(shape[:2]) < AUX_MIN_INPUT:
        raise ModelError(f"{name}: the auxiliary heads need an input of at least {AUX_MIN_INPUT}x"
                         f"{AUX_MIN_INPUT}. Received: input_shape={shape}")
    inputs, x = model_input(shape, "scale")
    x = googlenet_stem(x, lrn)
    aux_outputs = []
    for stage, filters in GOOGLENET_STAGES:
        if filters is None:
            x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name=stage)(x)
            continue
        x = inception_v1_module(x, filters, f"inception_{stage}")
        if aux_logits and stage in AUX_AFTER:
            aux_outputs.append(auxiliary_head(x, num_classes, classifier_activation, AUX_AFTER[stage]))
    # Table 1's 7x7/1 average pool is global at 224x224; global pooling keeps other sizes valid.
    return finish_model(inputs, x, top=global_pool_top(dropout), aux_outputs=aux_outputs, name=name,
                        include_top=include_top, num_classes=num_classes,
                        classifier_activation=classifier_activation, pooling=pooling, weights=weights)
