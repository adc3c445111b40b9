"""AlexNet (Krizhevsky, Sutskever & Hinton 2012) and ZFNet (Zeiler & Fergus 2013): five
convolutions, three max-pools, optional local response normalisation, three fully connected layers.

Both are one builder driven by a table of layers. AlexNet is the single-tower 227x227 network of the
lectures (the paper's two-GPU split is merged, which is what its 62,378,344 parameters at 1000
classes count):

    conv1 96@11x11/4 valid -> 55x55 -> pool 3/2 -> 27 -> [LRN] -> conv2 256@5x5 pad 2 -> pool -> 13
    -> [LRN] -> conv3 384@3x3 -> conv4 384@3x3 -> conv5 256@3x3 -> pool -> 6x6x256
    -> fc6 4096 -> fc7 4096 -> classes (dropout 0.5 before fc7 and the classifier)

ZFNet is AlexNet with a 7x7/2 first layer and 512/1024/512 filters in conv3-5 (the variant of
Zeiler & Fergus' Table 2 that the lectures describe, 14.8% top-5). Its sizes follow the paper's
Figure 3: 224 -> conv1 (pad 1) 110 -> pool 55 -> conv2 5x5/2 26 -> pool 13 -> conv3-5 13 -> pool 6,
which needs Caffe's round-up pooling ("same" here) after conv1 and conv2. At 224x224x3 and 1000
classes it has 107,627,624 parameters, 75.5 M of them in fc6 (6*6*512*4096 + 4096); the Figure 3
network (384/384/256 in conv3-5) would have 62,357,608 (6*6*256 into fc6 instead).
"""
from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Tuple, Union

import keras

from kerascnn.models.layers import LocalResponseNormalization
from kerascnn.models.common import check_common_args, finish_model, model_input, resolve_input_shape
from kerascnn.models.registry import register_model, register_variant


class Conv(NamedTuple):
    filters: int
    kernel: int
    strides: int = 1
    padding: Union[str, int] = "same"  # "same" / "valid", or explicit zero padding in pixels
    pool: Optional[str] = None  # 3x3/2 max-pool after the conv: "valid" (floor) or "same" (ceil)
    lrn: bool = False  # local response normalisation after the pool (when lrn=True)


ALEXNET = (
    Conv(96, 11, 4, "valid", pool="valid", lrn=True),
    Conv(256, 5, 1, "same", pool="valid", lrn=True),
    Conv(384, 3),
    Conv(384, 3),
    Conv(256, 3, pool="valid"),
)
ZFNET = (
    Conv(96, 7, 2, 1, pool="same", lrn=True),
    Conv(256, 5, 2, "valid", pool="same", lrn=True),
    Conv(512, 3),
    Conv(1024, 3),
    Conv(512, 3, pool="valid"),
)
FC_UNITS: Tuple[int, int] = (4096, 4096)


def alexnet_layers(convs) -> Dict[str, Tuple[str, ...]]:
    """The apps' layers (registry.USES) of a five-conv net: style from every conv, content and dream
    from the 13x13 convs 3-5 (the deepest maps), cam the last conv (its ReLU is inside the layer)."""
    names = tuple(f"conv{i}" for i in range(1, len(convs) + 1))
    return {"content": (names[-2],), "style": names, "dream": names[2:], "cam": (names[-1],)}


def _conv_layers(x, convs, lrn: bool):
    for i, c in enumerate(convs, start=1):
        padding = c.padding
        if isinstance(padding, int):
            x = keras.layers.ZeroPadding2D(padding, name=f"conv{i}_pad")(x)
            padding = "valid"
        x = keras.layers.Conv2D(c.filters, c.kernel, strides=c.strides, padding=padding,
                                activation="relu", name=f"conv{i}")(x)
        if c.pool:
            x = keras.layers.MaxPooling2D(3, strides=2, padding=c.pool, name=f"pool{i}")(x)
        if lrn and c.lrn:
            x = LocalResponseNormalization(depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75,
                                           name=f"lrn{i}")(x)
    return x


def _build(convs, *, default_input, min_input, input_shape, num_classes, include_top, weights,
           pooling, classifier_activation, name, lrn, dropout):
    check_common_args(name, num_classes, include_top, pooling)
    shape = resolve_input_shape(input_shape, default_input, min_input, name)
    inputs, x = model_input(shape, "scale")
    x = _conv_layers(x, convs, lrn)

    def top(x):
        x = keras.layers.Flatten(name="flatten")(x)
        for i, units in enumerate(FC_UNITS, start=6):
            x = keras.layers.Dense(units, activation="relu", name=f"fc{i}")(x)
            x = keras.layers.Dropout(dropout, name=f"dropout{i}")(x)
        return x

    return finish_model(inputs, x, top=top, name=name, include_top=include_top, num_classes=num_classes,
                        classifier_activation=classifier_activation, pooling=pooling, weights=weights)


@register_model(default_input=(227, 227, 3), min_input=(67, 67, 3), paper="Krizhevsky et al. 2012",
                family="alexnet", layers=alexnet_layers(ALEXNET))
def alexnet(input_shape=None, num_classes=1000, include_top=True, weights=None, pooling=None,
            classifier_activation="softmax", name="alexnet", lrn=False, dropout=0.5):
    """AlexNet (Krizhevsky, Sutskever & Hinton 2012, "ImageNet Classification with Deep
    Convolutional Neural Networks"), single tower, 227x227 input.

    Args:
        lrn: add the paper's local response normalisation (k=2, n=5, alpha=1e-4, beta=0.75) after
            pool1 and pool2. Off by default: it adds no parameters and little accuracy (VGG, sec. 4.1).
        dropout: dropout rate after fc6 and fc7.
    """
    return _build(ALEXNET, default_input=(227, 227, 3), min_input=(67, 67, 3), input_shape=input_shape,
                  num_classes=num_classes, include_top=include_top, weights=weights, pooling=pooling,
                  classifier_activation=classifier_activation, name=name, lrn=lrn, dropout=dropout)


register_variant("alexnet_lrn", "alexnet", lrn=True, name="alexnet_lrn")


@register_model(default_input=(224, 224, 3), min_input=(53, 53, 3), paper="Zeiler & Fergus 2013",
                family="alexnet", layers=alexnet_layers(ZFNET))
def zfnet(input_shape=None, num_classes=1000, include_top=True, weights=None, pooling=None,
          classifier_activation="softmax", name="zfnet", lrn=False, dropout=0.5):
    """ZFNet (Zeiler & Fergus 2013, "Visualizing and Understanding Convolutional Networks"),
    the 512/1024/512 variant, 224x224 input.

    Args:
        lrn: normalise across feature maps after pool1 and pool2, as the paper does (with
            AlexNet's constants; the paper's contrast normalisation differs in detail).
        dropout: dropout rate after fc6 and fc7.
    """
    return _build(ZFNET, default_input=(224, 224, 3), min_input=(53, 53, 3), input_shape=input_shape,
                  num_classes=num_classes, include_top=include_top, weights=weights, pooling=pooling,
                  classifier_activation=classifier_activation, name=name, lrn=lrn, dropout=dropout)
