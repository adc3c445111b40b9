"""The AlphaGo policy network (Silver et al. 2016, "Mastering the game of Go with deep neural networks
and tree search", Methods, "Neural network architecture").

    19x19x48 feature planes -> conv1 k@5x5 ReLU -> conv2..conv12 k@3x3 ReLU (zero padding keeps
    19x19) -> conv13 1@1x1 without bias -> a separate bias for each of the 361 points
    -> flatten ("logits") -> softmax over the 361 moves ("predictions")

No pooling anywhere: every board point matters. The match version used k=192: 3,882,793 parameters
(conv1 230,592 + 11 x 331,968 + 192 weights of conv13 + 361 position biases).
"""
from __future__ import annotations

import keras

from kerascnn.errors import ModelError
from kerascnn.models.layers import PositionBias
from kerascnn.models.common import check_common_args, finish_model, model_input, resolve_input_shape
from kerascnn.models.registry import register_model

HIDDEN_LAYERS = 12  # layer 1 is 5x5, layers 2-12 are 3x3
# Grad-CAM looks at the last hidden layer: conv13 (one plane, the move logits) is the head, and it
# is absent when include_top=False. Feature planes are not images: no style, content or dream.
ALPHAGO_LAYERS = {"cam": (f"conv{HIDDEN_LAYERS}",)}


@register_model(default_input=(19, 19, 48), min_input=(9, 9, 48), paper="Silver et al. 2016",
                family="alphago", preprocessing="none",
                layers=ALPHAGO_LAYERS)
def alphago_policy(input_shape=None, num_classes=361, include_top=True, weights=None, pooling=None,
                   classifier_activation="softmax", name="alphago_policy", filters=192):
    """AlphaGo's supervised-learning policy network (Silver et al. 2016, Nature 529).

    Inputs are the 48 feature planes (preprocessing "none"). There is one class per board point, so
    `num_classes` must be height*width (361 on the 19x19 board; it defaults to that).

    Args:
        filters: k, the width of the hidden layers (192 in the match version; 128, 256, 384 in Fig. 2b).
    """
    check_common_args(name, num_classes, include_top, pooling)
    shape = resolve_input_shape(input_shape, (19, 19, 48), (9, 9, 48), name)
    if include_top and num_classes != shape[0] * shape[1]:
        raise ModelError(f"{name}: the policy has one output per board point, so num_classes must be "
                         f"{shape[0] * shape[1]} for a {shape[0]}x{shape[1]} board. "
                         f"Received: num_classes={num_classes}")
    inputs, x = model_input(shape, "none")
    for i in range(1, HIDDEN_LAYERS + 1):
        x = keras.layers.Conv2D(filters, 5 if i == 1 else 3, padding="same", activation="relu",
                                name=f"conv{i}")(x)

    def logits(x):
        x = keras.layers.Conv2D(1, 1, use_bias=False, name=f"conv{HIDDEN_LAYERS + 1}")(x)
        x = PositionBias(name="position_bias")(x)
        # The biased 19x19x1 map flattened is the 361 move logits; no Dense layer here.
        return keras.layers.Flatten(name="logits")(x)

    return finish_model(inputs, x, logits=logits, name=name, include_top=include_top, num_classes=num_classes,
                        classifier_activation=classifier_activation, pooling=pooling, weights=weights)
