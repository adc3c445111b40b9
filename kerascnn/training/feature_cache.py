"""Training a head on cached features: a frozen backbone computes each image's features once.

With the backbone frozen (BatchNorm in inference mode) and no augmentation that changes the pixels,
the backbone maps each training image to the same features every epoch; running it again each epoch
is most of the work (a MobileNetV2 forward pass against a dense layer). So the features are
computed once, kept in memory (pooled: 1,280 floats an image for MobileNetV2), and the head trains
on them: a model of its own that shares the head's layers with the full model, so the full model
holds the trained head and the run's checkpoints save the full model (`ForModel`).
"""
from __future__ import annotations

import logging
from typing import Optional, Sequence, Tuple

import keras
import numpy as np

from kerascnn.runtime.progress import Progress

log = logging.getLogger(__name__)

# The head's layers, first to last, as the builders and transfer_model name them; the cut is at the
# input of the first one present.
HEAD_CHAIN = ("head_dropout", "logits", "predictions")


def split_head(model: keras.Model) -> Optional[Tuple[keras.Model, keras.Model]]:
    """(backbone: the model's input -> the head's input, head: those features -> the model's output)
    sharing `model`'s layers, or None when the model does not end in a plain head chain (auxiliary
    outputs, a head of another shape)."""
    if len(model.outputs) != 1:
        return None
    names = {layer.name for layer in model.layers}
    chain = [n for n in HEAD_CHAIN if n in names]
    if chain[-2:] != ["logits", "predictions"] or model.layers[-1].name != "predictions":
        return None
    first = model.get_layer(chain[0])
    if len(model.layers) < len(chain) + 1 or [layer.name for layer in model.layers[-len(chain):]] != chain:
        return None  # the head's layers are not the last ones, in order: not a chain we can re-apply
    features = first.input
    backbone = keras.Model(model.input, features, name=f"{model.name}_features")
    inputs = keras.Input(shape=tuple(features.shape[1:]), name="features")
    x = inputs
    for name in chain:
        x = model.get_layer(name)(x)
    return backbone, keras.Model(inputs, x, name=f"{model.name}_head")


def compute_features(backbone: keras.Model, dataset, count: int, desc: str) -> Tuple[np.ndarray, np.ndarray]:
    """(features, labels) of every batch of `dataset`, in the order it yields them, with progress."""
    features, labels = [], []
    with Progress(count, desc) as bar:
        for x, y in dataset:
            features.append(np.asarray(backbone(x, training=False), np.float32))
            labels.append(np.asarray(y))
            bar.update(len(features[-1]))
    return np.concatenate(features), np.concatenate(labels)


def feature_dataset(features: np.ndarray, labels: np.ndarray, batch_size: int, seed: Optional[int]):
    """Batches of cached features: reshuffled every epoch (seeded) for training, in order otherwise."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((features, labels))
    if seed is not None:
        ds = ds.shuffle(len(features), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


class FeatureCache:
    """The frozen backbone's features of the train and val splits, computed on first use and kept for
    the run, and `head`, the model that trains on them (`split_head(model)`, which must not be None)."""

    def __init__(self, model: keras.Model, train, val, counts: dict, batch_size: int, seed: int):
        self.backbone, self.head = split_head(model)
        self.sources, self.counts = {"train": train, "val": val}, counts
        self.batch_size, self.seed = batch_size, seed
        self._arrays = {}

    def dataset(self, split: str):
        source = self.sources[split]
        if source is None:
            return None
        if split not in self._arrays:
            self._arrays[split] = compute_features(self.backbone, source, self.counts.get(split),
                                                   f"features of the {split} images (once)")
            log.info("cached the frozen backbone's features of %d %s images (%.1f MB)",
                     len(self._arrays[split][0]), split, self._arrays[split][0].nbytes / 2**20)
        return feature_dataset(*self._arrays[split], self.batch_size, self.seed if split == "train" else None)


_HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
          "on_train_batch_end", "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end")


class ForModel(keras.callbacks.Callback):
    """Runs `callbacks` against `model` whichever model `fit` is training.

    The head trained on cached features shares its layers with the full model, so checkpoints,
    history and best.keras must see the full model, not the head; a callback that stops training
    (early stopping, NaN) stops the head's fit too.
    """

    def __init__(self, callbacks: Sequence[keras.callbacks.Callback], model: keras.Model):
        super().__init__()
        self.callbacks, self.pinned, self.fitting = list(callbacks), model, None
        for cb in self.callbacks:
            cb.set_model(model)

    def set_model(self, model):
        self.fitting = model

    def set_params(self, params):
        for cb in self.callbacks:
            cb.set_params(params)

    def _forward(self, hook, *args, **kwargs):
        self.pinned.stop_training = False
        for cb in self.callbacks:
            getattr(cb, hook)(*args, **kwargs)
        if self.pinned.stop_training and self.fitting is not None:
            self.fitting.stop_training = True


def _make_hook(name):
    def hook(self, *args, **kwargs):
        self._forward(name, *args, **kwargs)
    hook.__name__ = name
    return hook


for _name in _HOOKS:
    setattr(ForModel, _name, _make_hook(_name))
