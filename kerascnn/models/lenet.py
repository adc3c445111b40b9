"""LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998, "Gradient-based learning applied to document
recognition").

C1 6@5x5 -> S2 pool -> C3 16@5x5 -> S4 pool -> C5 120 -> F6 84 -> classes: 61,706 parameters at
32x32x1 with 10 classes. C3 is fully connected to S2 (the paper's sparse connection table would give
1,516 instead of 2,416 weights there); the lecture's count assumes full connections too.
"""
from __future__ import annotations

import keras

from kerascnn.models.common import check_common_args, finish_model, model_input, resolve_input_shape
from kerascnn.models.registry import register_model

# (filters, kernel) of the convolution stages, then the widths of the fully connected layers.
LENET5_CONVS = ((6, 5), (16, 5))
LENET5_FCS = (120, 84)
# The apps' layers (registry.USES): a two-conv net has only its two convs to offer.
LENET5_LAYERS = {"content": ("conv2",), "style": ("conv1", "conv2"), "dream": ("conv1", "conv2"), "cam": ("conv2",)}


# Small data (the 1,617 training digits): small batches and label smoothing reach 99.4% val top-1.
LENET5_RECIPE = {"batch_size": 32, "label_smoothing": 0.1}


@register_model(default_input=(32, 32, 1), min_input=(16, 16, 1), paper="LeCun et al. 1998", family="lenet",
                recipe=LENET5_RECIPE, layers=LENET5_LAYERS)
def lenet5(input_shape=None, num_classes=10, include_top=True, weights=None, pooling=None,
           classifier_activation="softmax", name="lenet5", activation="relu", subsample="max"):
    """LeNet-5, a digit recogniser: 10 classes by default. `activation="tanh", subsample="avg"` is closer to the 1998 network; ReLU and max
    pooling (the defaults) train faster and reach the same accuracy."""
    check_common_args(name, num_classes, include_top, pooling)
    shape = resolve_input_shape(input_shape, (32, 32, 1), (16, 16, 1), name)
    pool = {"max": keras.layers.MaxPooling2D, "avg": keras.layers.AveragePooling2D}[subsample]
    inputs, x = model_input(shape, "scale")
    for i, (filters, kernel) in enumerate(LENET5_CONVS, start=1):
        x = keras.layers.Conv2D(filters, kernel, activation=activation, name=f"conv{i}")(x)
        x = pool(2, name=f"pool{i}")(x)

    def top(x):
        x = keras.layers.Flatten(name="flatten")(x)
        for i, units in enumerate(LENET5_FCS, start=1):
            x = keras.layers.Dense(units, activation=activation, name=f"fc{i}")(x)
        return x

    return finish_model(inputs, x, top=top, name=name, include_top=include_top, num_classes=num_classes,
                        classifier_activation=classifier_activation, pooling=pooling, weights=weights)
