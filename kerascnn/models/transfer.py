"""Models for transfer learning: a backbone (a registered network, or a saved `.keras` model with its
head cut off) under a new head for the data's classes.

The new head is timm's and keras-io's: the backbone's pooled features, dropout, and the same two
layers every kerascnn classifier ends in ("logits", then the float32 "predictions" activation), so
the apps, `evaluate`, `predict` and `export` treat a fine-tuned model like any other. A saved model
keeps its first layers, preprocessing included, so it is fed raw pixels as when it was trained.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Tuple

import keras

from kerascnn.errors import ModelError, SettingError
from kerascnn.models.common import classifier
from kerascnn.models.refs import (APPLICATION_PREPROCESSING, DEFAULT_INPUT, KERAS_PREFIX,  # noqa: F401
                                  application, is_application, is_backbone_ref, is_model_file,  # (re-exported)
                                  model_name, resolve_model)

HEAD_DROPOUT = "head_dropout"  # layer names of the new head (kerascnn.models.blocks.HEAD_LAYERS)


def input_shape_for(ref: str, input_shape: Optional[Sequence[int]] = None) -> Tuple[int, int, int]:
    """The input a --model takes: a saved model's own; else --input-shape, else the registered model's
    (or, for keras:NAME, 224x224x3)."""
    if is_model_file(ref):
        return file_input_shape(ref)
    if input_shape is not None:
        return tuple(input_shape)
    if is_application(ref):
        return DEFAULT_INPUT
    from kerascnn.models.registry import get_spec

    return tuple(get_spec(ref).default_input)


def check_model_file(path: os.PathLike) -> None:
    """A --model that names a `.keras` file must be one (checked before anything loads)."""
    if not Path(path).is_file():
        raise SettingError("model", f"--model {path}: no such file. Give a registered model name "
                                    f"(`kerascnn models`) or a .keras file, e.g. a run's model.keras.")


def load_backbone_file(path: os.PathLike) -> keras.Model:
    """A saved `.keras` model, loaded with Keras's safe_mode on (no code from the file runs)."""
    check_model_file(path)
    path = Path(path)
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as e:  # noqa: BLE001  (Keras raises many kinds for a bad file)
        raise SettingError("model", f"--model {path}: cannot load it as a Keras model "
                                    f"({type(e).__name__}: {str(e).splitlines()[0][:200]}).") from None


def file_input_shape(path: os.PathLike) -> Tuple[int, int, int]:
    """The (height, width, channels) input a saved model was built for."""
    shape = tuple(load_backbone_file(path).input_shape[1:])
    if len(shape) != 3 or None in shape:
        raise SettingError("model", f"--model {path}: takes inputs of shape {shape}, not fixed-size images.")
    return shape


def features_of(model: keras.Model, at: Optional[str] = None):
    """The tensor a saved classifier's head reads: the output of layer `at`, else the input of its
    "logits" layer (for a network with global pooling, the pooled features; for LeNet or AlexNet,
    the last hidden fully connected layer's output, the classic "fc7 features"; a small network
    trained on few classes transfers better from below its fully connected layers, `at="flatten"`)."""
    if at is not None:
        names = [layer.name for layer in model.layers]
        if at not in names:
            import difflib

            from kerascnn.errors import UnknownNameError

            close = difflib.get_close_matches(at, names, n=3)
            raise UnknownNameError("head_at", f"{model.name} has no layer {at!r}"
                                              + (f"; did you mean {' or '.join(close)}?" if close else "."))
        return model.get_layer(at).output
    try:
        logits = model.get_layer("logits")
    except ValueError:
        raise ModelError(f"{model.name}: no layer named 'logits' whose input to take as features; "
                         f"models saved by kerascnn fit have one.") from None
    return logits.input


def transfer_model(ref: str, *, num_classes: int, input_shape: Optional[Sequence[int]] = None,
                   weights: Optional[str] = None, dropout: Optional[float] = 0.2,
                   model_args: Optional[Mapping[str, Any]] = None, at: Optional[str] = None) -> keras.Model:
    """`ref`'s backbone under a new head: pooled features, Dropout("head_dropout"), "logits" and
    "predictions".

    Args:
        ref: a registered model name, `keras:NAME` (any keras.applications network, e.g.
            keras:EfficientNetB0), or a `.keras` file (its layers up to the input of "logits").
        num_classes: the new head's classes.
        input_shape: a registered backbone's input; a file's must match its own (or be None).
        weights: a registered backbone's weights (None, "imagenet" or a file); a `.keras` file
            brings its own.
        dropout: the rate before the new dense layer; None or 0: no dropout layer.
        model_args: more builder arguments of a registered backbone.
        at: a `.keras` file's layer whose output the head reads (`features_of`).
    """
    if is_model_file(ref):
        if weights is not None:
            raise SettingError("weights", f"--model {ref} is a saved model and brings its own weights; "
                                          f"drop --weights {weights}.")
        if model_args:
            raise SettingError("model_args", f"--model {ref} is a saved model; builder arguments do not apply.")
        source = load_backbone_file(ref)
        if input_shape is not None and tuple(input_shape) != tuple(source.input_shape[1:]):
            raise SettingError("input_shape", f"--model {ref} was built for {tuple(source.input_shape[1:])} "
                                              f"inputs. Received: input_shape={tuple(input_shape)}")
        inputs, x, name = source.input, features_of(source, at), Path(ref).parent.name or Path(ref).stem
    elif at is not None:
        raise SettingError("head_at", "--head-at picks a layer of a .keras --model; other backbones end at their "
                                      "pooled features.")
    else:  # a registry name or keras:NAME, pooled, under the new head
        source = resolve_model(ref, weights, include_top=False, input_shape=input_shape, pooling="avg",
                               **dict(model_args or {}))
        inputs, x, name = source.input, source.output, ref[len(KERAS_PREFIX):] if is_application(ref) else ref
    if dropout:
        x = keras.layers.Dropout(dropout, name=HEAD_DROPOUT)(x)
    return keras.Model(inputs, classifier(x, num_classes, "softmax"), name=model_name(name))


__all__ = ["HEAD_DROPOUT", "check_model_file", "features_of", "file_input_shape", "input_shape_for",
           "load_backbone_file", "transfer_model"]
