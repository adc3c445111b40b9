"""Pieces every builder shares: the input (with in-model preprocessing), the head and weights.

Builders call `model_input` first and `finish_model` last, so that every
model in the zoo takes raw pixels, names its layers the same way at both ends ("input",
"preprocess", ..., "logits", "predictions") and keeps the final softmax in float32 under mixed
precision.
"""
from __future__ import annotations

import logging
import os
import warnings
from typing import Callable, Optional, Sequence, Tuple

import keras
import numpy as np

from kerascnn.errors import ModelError
from kerascnn.models.preprocessing import Preprocess

log = logging.getLogger(__name__)

POOLINGS = (None, "avg", "max")


def resolve_input_shape(input_shape: Optional[Sequence[int]], default: Tuple[int, int, int],
                        minimum: Tuple[int, int, int], name: str) -> Tuple[int, int, int]:
    """Check `input_shape` against what the architecture allows; None picks the paper's input."""
    if input_shape is None:
        return tuple(default)
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3:
        raise ModelError(f"{name}: input_shape must be (height, width, channels). Received: input_shape={input_shape}")
    if shape[0] < minimum[0] or shape[1] < minimum[1]:
        raise ModelError(
            f"{name}: input {shape[0]}x{shape[1]} is too small; the architecture needs at least "
            f"{minimum[0]}x{minimum[1]}. Received: input_shape={shape}"
        )
    return shape


def check_common_args(name: str, num_classes: int, include_top: bool, pooling: Optional[str]) -> None:
    if pooling not in POOLINGS:
        raise ValueError(f"{name}: pooling must be one of {POOLINGS}. Received: pooling={pooling!r}")
    if include_top and (not isinstance(num_classes, int) or num_classes < 1):
        raise ValueError(f"{name}: num_classes must be a positive integer. Received: num_classes={num_classes!r}")


def model_input(shape: Tuple[int, int, int], preprocessing: str):
    """The raw-pixel Input and the tensor after the model's own preprocessing."""
    inputs = keras.Input(shape=shape, name="input")
    return inputs, Preprocess(preprocessing, name="preprocess")(inputs)


def classifier(x, num_classes: int, classifier_activation: Optional[str]):
    """Dense "logits" then the activation "predictions", kept in float32 for mixed precision."""
    x = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.layers.Activation(classifier_activation or "linear", dtype="float32", name="predictions")(x)


def finish_model(inputs, x, *, name: str, include_top: bool, num_classes: int,
                 classifier_activation: Optional[str], pooling: Optional[str], weights: Optional[str],
                 top: Optional[Callable] = None, logits: Optional[Callable] = None,
                 aux_outputs: Sequence = ()) -> keras.Model:
    """The end every builder shares, after its feature layers `x`.

    With the top: the family's own `top` layers (Flatten and the FC layers, or global pooling and
    dropout), then "logits" (a Dense of `num_classes` unless the family's `logits` callable makes
    them) and the "predictions" activation, kept in float32 for mixed precision. Without: the
    feature map, or its global pooling (`pooling`). Then the model named `name` (with any auxiliary
    outputs after the main one) and the `weights` file loaded into it.
    """
    if include_top:
        x = top(x) if top is not None else x
        if logits is None:
            x = classifier(x, num_classes, classifier_activation)
        else:
            x = keras.layers.Activation(classifier_activation or "linear", dtype="float32",
                                        name="predictions")(logits(x))
    else:
        x = pool_features(x, pooling)
    outputs = [x, *aux_outputs] if aux_outputs else x
    return load_weights(keras.Model(inputs, outputs, name=name), weights, name)


def global_pool_top(dropout: Optional[float] = None) -> Callable:
    """The top of the fully convolutional families (GoogLeNet, Inception, ResNet): global average
    pooling, which keeps any input size valid, then dropout when given."""

    def top(x):
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        return keras.layers.Dropout(dropout, name="dropout")(x) if dropout else x

    return top


def pool_features(x, pooling: Optional[str]):
    """The `include_top=False` output: the feature map, or its global average / max."""
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def load_weights(model: keras.Model, weights: Optional[str], name: str) -> keras.Model:
    """Load a weights file (`.weights.h5`, or the weights of a `.keras` model) into `model`.

    Named pretrained weights ("imagenet") are the wrappers' business; here `weights` is a path.
    """
    if weights is None:
        return model
    if not os.path.isfile(weights):
        raise ModelError(
            f"{name}: weights {weights!r} is neither a file nor one of the model's pretrained weight "
            f"names. Pass --weights PATH to a .weights.h5 or .keras file (see `kerascnn models`)."
        )
    before = [w.numpy() for w in model.weights]
    try:
        _load_into(model, weights)
    except Exception as e:  # Keras raises ValueError, KeyError or h5py errors for mismatches
        if not _has_layer(model, "logits"):
            raise ModelError(f"{name}: cannot load weights from {weights}: {_first_line(e)}") from None
        # Perhaps a no-top (backbone) file: load everything below the classifier, which then starts
        # from scratch (the transfer-learning case).
        try:
            _load_into(keras.Model(model.inputs, model.get_layer("logits").input), weights)
        except Exception:
            raise ModelError(f"{name}: cannot load weights from {weights}: {_first_line(e)}") from None
    # Keras 3 skips layers missing from the file without an error (that is how a no-top backbone file
    # loads under a new head); a file that matches nothing at all is a user error, not a silent no-op.
    changed = sum(not np.array_equal(a, w.numpy()) for a, w in zip(before, model.weights))
    if model.weights and changed == 0:
        raise ModelError(f"{name}: no layer in {weights} matches the model; is it the weights of another network?")
    if changed < len(model.weights):
        log.info("%s: %d of %d weight tensors loaded from %s; the rest keep their initial values",
                 name, changed, len(model.weights), weights)
    return model


def _has_layer(model: keras.Model, name: str) -> bool:
    return any(layer.name == name for layer in model.layers)


def _load_into(model: keras.Model, weights: str) -> None:
    if weights.endswith(".keras"):
        # By layer name, so that a saved classifier's layers load into the same network under a new
        # head too (its backbone: transfer learning from a model trained with `kerascnn fit`).
        source = {layer.name: layer for layer in
                  keras.saving.load_model(weights, compile=False, safe_mode=True).layers}
        for layer in model.layers:
            other = source.get(layer.name)
            if other is not None and layer.weights and \
                    [w.shape for w in layer.weights] == [w.shape for w in other.weights]:
                layer.set_weights(other.get_weights())
        return
    with warnings.catch_warnings():
        # Keras warns for every layer the file lacks; load_weights counts what loaded instead.
        warnings.simplefilter("ignore", UserWarning)
        model.load_weights(weights)


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]


def strip_auxiliary(model: keras.Model) -> keras.Model:
    """The inference model of a network trained with auxiliary heads (GoogLeNet, Inception v3).

    Keeps only the output of the layer named "predictions" and the layers it depends on; the
    weights are shared with `model`, not copied.
    """
    if len(model.outputs) == 1:
        return model
    if not _has_layer(model, "predictions"):
        raise ModelError(f"{model.name}: no layer named 'predictions' to keep.")
    return keras.Model(model.input, model.get_layer("predictions").output, name=model.name)


def float32_copy(model: keras.Model, always: bool = False) -> keras.Model:
    """`model` with every layer computing in float32 and the same weights: what a run exports.

    Mixed precision is a training detail (Keras keeps float32 master weights anyway). A model saved
    with mixed_bfloat16 layers would compute in bfloat16 wherever it is loaded, emulated and slow on
    hardware without it, so exports are rebuilt from the model's config with float32 policies. A
    float32 model is returned as it is, unless `always` (a copy with weights of its own).
    """
    config = model.get_config()
    if not _set_float32(config) and not always and all(layer.compute_dtype == "float32" for layer in model.layers):
        return model
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")  # layers without a policy of their own (inputs)
    try:
        copy = model.__class__.from_config(config)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    copy.set_weights(model.get_weights())
    return copy


def _set_float32(config) -> bool:
    """Rewrite every mixed dtype policy in a (nested) layer config to float32; whether any was."""
    changed = False
    if isinstance(config, dict):
        if config.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and \
                str(config.get("config", {}).get("name", "")).startswith("mixed_"):
            config["config"]["name"] = "float32"
            return True
        for value in config.values():
            changed = _set_float32(value) or changed
    elif isinstance(config, list):
        for value in config:
            changed = _set_float32(value) or changed
    return changed


def freeze_backbone(model: keras.Model) -> int:
    """Freeze every layer but the classifier ("logits") and auxiliary heads; returns how many.

    Frozen BatchNormalization layers also stop updating their statistics (Keras 3 runs them in
    inference mode when trainable is False), which is what transfer learning on small data needs.
    """
    frozen = 0
    for layer in model.layers:
        if layer.weights and layer.name != "logits" and not layer.name.startswith("aux"):
            layer.trainable = False
            frozen += 1
    if frozen == len([layer for layer in model.layers if layer.weights]):
        raise ModelError(f"{model.name}: no 'logits' layer to train; freeze='backbone' needs a classifier.")
    return frozen
