"""VGG configurations A, A-LRN, B, C, D, E (Simonyan & Zisserman 2014, "Very Deep Convolutional
Networks for Large-Scale Image Recognition", Table 1), with and without batch normalisation.

One builder reads the configuration table (timm style): an int is a 3x3 conv with that many filters,
`(filters, 1)` is configuration C's 1x1 conv, "LRN" is A-LRN's local response normalisation and
"M" a 2x2/2 max-pool that closes a block. Layer names are keras.applications' ("block1_conv1",
"block1_pool", "flatten", "fc1", "fc2"), so `vgg16`/`vgg19` with `weights="imagenet"` build Keras's
VGG16/VGG19 on our Preprocess layer and load its official weights, and a weights file saved from
one loads into the other.

Parameters at 224x224x3, 1000 classes (Table 2 rounds to 133, 133, 134, 138, 144 M):
A / A-LRN 132,863,336; B 133,047,848; C 133,638,952; D 138,357,544; E 143,667,240.
The `_bn` variants add 4 parameters per conv channel (gamma, beta, moving mean and variance).
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple, Union

import keras

from kerascnn.errors import ModelError
from kerascnn.models.layers import LocalResponseNormalization
from kerascnn.models.common import check_common_args, finish_model, model_input, resolve_input_shape
from kerascnn.models.keras_apps import build_application
from kerascnn.models.registry import register_model

Layer = Union[int, Tuple[int, int], str]

VGG_CONFIGS: Dict[str, Sequence[Layer]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "A-LRN": [64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "C": [64, 64, "M", 128, 128, "M", 256, 256, (256, 1), "M", 512, 512, (512, 1), "M",
          512, 512, (512, 1), "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],
}
# Registered name -> configuration; each also gets a `_bn` twin.
VGG_VARIANTS = {"vgg11": "A", "vgg11_lrn": "A-LRN", "vgg13": "B", "vgg16c": "C", "vgg16": "D", "vgg19": "E"}
# Configurations Keras ships ImageNet weights for (without batch norm).
KERAS_VGG = {"D": keras.applications.VGG16, "E": keras.applications.VGG19}
FC_UNITS = (4096, 4096)


def vgg_layers(config: Sequence[Layer], batch_norm: bool) -> Dict[str, Tuple[str, ...]]:
    """The apps' layers (registry.USES) of a VGG configuration: Gatys et al.'s choice (content
    conv4_2, style conv1_1 .. conv5_1), dream at the end of blocks 3-5, cam the last conv.

    With batch norm the ReLU is a layer of its own (`..._relu`); without, it is inside the conv.
    """
    convs = [0]  # convs per block, counted from the table
    for layer in config:
        if layer == "M":
            convs.append(0)
        elif layer != "LRN":
            convs[-1] += 1
    convs = convs[:-1]  # the table ends with the pool that closes block 5
    act = "_relu" if batch_norm else ""

    def conv(b: int, i: int) -> str:
        return f"block{b}_conv{i}{act}"

    return {"content": (conv(4, 2),), "style": tuple(conv(b, 1) for b in range(1, 6)),
            "dream": tuple(conv(b, convs[b - 1]) for b in (3, 4, 5)), "cam": (conv(5, convs[4]),)}


def vgg_features(x, config: Sequence[Layer], batch_norm: bool):
    """The convolutional part: `block{b}_conv{i}` [+ `_bn`, `_relu`], `block1_lrn`, `block{b}_pool`."""
    block, conv = 1, 0
    for layer in config:
        if layer == "M":
            x = keras.layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
            block, conv = block + 1, 0
        elif layer == "LRN":
            x = LocalResponseNormalization(depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75,
                                           name=f"block{block}_lrn")(x)
        else:
            filters, kernel = layer if isinstance(layer, tuple) else (layer, 3)
            conv += 1
            prefix = f"block{block}_conv{conv}"
            x = keras.layers.Conv2D(filters, kernel, padding="same", name=prefix,
                                    activation=None if batch_norm else "relu")(x)
            if batch_norm:
                x = keras.layers.BatchNormalization(name=f"{prefix}_bn")(x)
                x = keras.layers.Activation("relu", name=f"{prefix}_relu")(x)
    return x


def vgg(input_shape=None, num_classes=1000, include_top=True, weights=None, pooling=None,
        classifier_activation="softmax", name="vgg16", config="D", batch_norm=False, dropout=0.5):
    """VGG (Simonyan & Zisserman 2014), configuration `config` of Table 1 (A, A-LRN, B, C, D, E).

    Args:
        config: key of VGG_CONFIGS.
        batch_norm: conv -> BN -> ReLU (the `_bn` variants; not in the paper, which predates BN).
        dropout: dropout after fc1 and fc2, as in the paper (Keras's VGG16 has none; the layers
            "fc1_dropout"/"fc2_dropout" carry no weights, so weight files load either way).
        weights: None, a weights file, or "imagenet" (configurations D and E without BN: Keras's
            official VGG16/VGG19 weights).
    """
    if config not in VGG_CONFIGS:
        raise ValueError(f"{name}: config must be one of {sorted(VGG_CONFIGS)}. Received: config={config!r}")
    if weights == "imagenet":
        if batch_norm or config not in KERAS_VGG:
            raise ModelError(f"{name}: no ImageNet weights for this configuration; only vgg16 and vgg19 "
                             f"(Keras's) have them. Use weights=None or a weights file.")
        return build_application(KERAS_VGG[config], name=name, preprocessing="caffe",
                                 default_input=(224, 224, 3), min_input=(32, 32, 3),
                                 input_shape=input_shape, num_classes=num_classes,
                                 include_top=include_top, weights=weights, pooling=pooling,
                                 classifier_activation=classifier_activation)
    check_common_args(name, num_classes, include_top, pooling)
    shape = resolve_input_shape(input_shape, (224, 224, 3), (32, 32, 3), name)
    inputs, x = model_input(shape, "caffe")
    x = vgg_features(x, VGG_CONFIGS[config], batch_norm)

    def top(x):
        x = keras.layers.Flatten(name="flatten")(x)
        for i, units in enumerate(FC_UNITS, start=1):
            x = keras.layers.Dense(units, activation="relu", name=f"fc{i}")(x)
            x = keras.layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
        return x

    return finish_model(inputs, x, top=top, name=name, include_top=include_top, num_classes=num_classes,
                        classifier_activation=classifier_activation, pooling=pooling, weights=weights)


for _name, _config in VGG_VARIANTS.items():
    for _bn in (False, True):
        _key = f"{_name}_bn" if _bn else _name
        register_model(_key, default_input=(224, 224, 3), min_input=(32, 32, 3),
                       paper="Simonyan & Zisserman 2014", family="vgg", preprocessing="caffe",
                       pretrained=("imagenet",) if _config in KERAS_VGG and not _bn else (),
                       layers=vgg_layers(VGG_CONFIGS[_config], _bn), name=_key, config=_config,
                       batch_norm=_bn)(vgg)
