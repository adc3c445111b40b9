"""ResNets with basic blocks (He, Zhang, Ren & Sun 2015, "Deep Residual Learning for Image
Recognition"): ResNet-18/34 for ImageNet (Table 1) and the CIFAR-10 ResNets of section 4.2.

Keras ships only the bottleneck ResNets (50/101/152, see keras_apps.py); these reuse its layer names
("conv1_conv", "conv2_block1_1_conv", ..., "conv5_block2_out", "avg_pool"). Convs have no bias (BN
follows), so the trainable parameters are exactly torchvision's: ResNet-18 11,689,512 and ResNet-34
21,797,672 at 1000 classes; the BN moving statistics add 9,600 / 17,024 non-trainable ones.

CIFAR ResNets (depth 6n+2): 3x3@16 conv, three stages of n basic blocks with 16/32/64 filters (the
first block of stages 2 and 3 halves the map), global average pooling and a 10-way FC. Shortcuts are
option A, parameter-free: subsample and zero-pad the channels (`kerascnn.models.layers.ShortcutA`).
Trainable parameters at 10 classes (convs without bias, BN gamma/beta, FC 64x10 + 10): ResNet-20
269,722; -32 464,154; -44 658,586; -56 853,018; -110 1,727,962 (the paper's 0.27/0.46/0.66/0.85/1.7 M).
"""
from __future__ import annotations

import keras

from kerascnn.models.layers import basic_stack, conv_bn_act
from kerascnn.models.common import (check_common_args, finish_model, global_pool_top, model_input,
                                    resolve_input_shape)
from kerascnn.models.keras_apps import resnet_layers
from kerascnn.models.registry import register_model, register_variant

BN_EPSILON = 1.001e-5  # keras.applications.ResNet's
STAGE_FILTERS = (64, 128, 256, 512)  # conv2_x .. conv5_x
CIFAR_STAGE_FILTERS = (16, 32, 64)
RESNET_BLOCKS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}
CIFAR_DEPTHS = (20, 32, 44, 56, 110)


def _cifar_blocks(depth: int):
    """Blocks per stage of the CIFAR ResNet of `depth` = 6n+2: (n, n, n)."""
    return ((depth - 2) // 6,) * len(CIFAR_STAGE_FILTERS)


def _head(inputs, x, *, include_top, num_classes, classifier_activation, pooling, weights, name):
    return finish_model(inputs, x, top=global_pool_top(), name=name, include_top=include_top,
                        num_classes=num_classes, classifier_activation=classifier_activation, pooling=pooling,
                        weights=weights)


@register_model("resnet18", default_input=(224, 224, 3), min_input=(32, 32, 3), paper="He et al. 2015",
                family="resnet", preprocessing="torch", layers=resnet_layers(RESNET_BLOCKS["resnet18"]),
                name="resnet18", blocks=RESNET_BLOCKS["resnet18"])
def resnet_basic(input_shape=None, num_classes=1000, include_top=True, weights=None, pooling=None,
                 classifier_activation="softmax", name="resnet18", blocks=(2, 2, 2, 2)):
    """ResNet with basic blocks (He et al. 2015, "Deep Residual Learning for Image Recognition",
    Table 1): `blocks=(2, 2, 2, 2)` is ResNet-18, `(3, 4, 6, 3)` ResNet-34.

    Projection shortcuts (option B) where the shape changes. Preprocessing "torch", the ImageNet
    statistics torchvision's ResNets are trained with.
    """
    if len(blocks) != len(STAGE_FILTERS):
        raise ValueError(f"{name}: blocks must have {len(STAGE_FILTERS)} stages. Received: blocks={blocks}")
    check_common_args(name, num_classes, include_top, pooling)
    shape = resolve_input_shape(input_shape, (224, 224, 3), (32, 32, 3), name)
    inputs, x = model_input(shape, "torch")
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = conv_bn_act(x, 64, 7, "conv1", strides=2, padding="valid", bn_epsilon=BN_EPSILON)
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, (filters, n) in enumerate(zip(STAGE_FILTERS, blocks), start=2):
        x = basic_stack(x, filters, n, f"conv{stage}", strides=1 if stage == 2 else 2)
    return _head(inputs, x, include_top=include_top, num_classes=num_classes, weights=weights,
                 classifier_activation=classifier_activation, pooling=pooling, name=name)


register_variant("resnet34", "resnet18", name="resnet34", blocks=RESNET_BLOCKS["resnet34"],
                 layers=resnet_layers(RESNET_BLOCKS["resnet34"]))


@register_model("resnet20", default_input=(32, 32, 3), min_input=(8, 8, 3), paper="He et al. 2015",
                family="resnet_cifar", layers=resnet_layers(_cifar_blocks(20)), name="resnet20", depth=20)
def cifar_resnet(input_shape=None, num_classes=10, include_top=True, weights=None, pooling=None,
                 classifier_activation="softmax", name="resnet20", depth=20):
    """CIFAR-10 ResNet of depth 6n+2 (He et al. 2015, "Deep Residual Learning for Image
    Recognition", section 4.2). num_classes defaults to CIFAR-10's 10, the paper's setting.

    Layers: conv1_conv/bn/relu, conv2_block1 ... conv4_block{n} (option-A shortcuts named
    `..._0_pad`), avg_pool, logits, predictions. Preprocessing "scale" (trained from scratch).
    """
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"{name}: depth must be 6n+2 (20, 32, 44, 56, 110, ...). Received: depth={depth}")
    n = (depth - 2) // 6
    check_common_args(name, num_classes, include_top, pooling)
    shape = resolve_input_shape(input_shape, (32, 32, 3), (8, 8, 3), name)
    inputs, x = model_input(shape, "scale")
    x = conv_bn_act(x, CIFAR_STAGE_FILTERS[0], 3, "conv1", bn_epsilon=BN_EPSILON)
    for stage, filters in enumerate(CIFAR_STAGE_FILTERS, start=2):
        x = basic_stack(x, filters, n, f"conv{stage}", strides=1 if stage == 2 else 2, shortcut="A")
    return _head(inputs, x, include_top=include_top, num_classes=num_classes, weights=weights,
                 classifier_activation=classifier_activation, pooling=pooling, name=name)


for _depth in CIFAR_DEPTHS[1:]:
    register_variant(f"resnet{_depth}", "resnet20", name=f"resnet{_depth}", depth=_depth,
                     layers=resnet_layers(_cifar_blocks(_depth)))
