"""The accuracy metrics a run logs: top-1 always, top-5 only where it can tell models apart.

With 5 classes or fewer the true class is always among the 5 most probable ones, so top-5 accuracy
is 100% whatever the model does: a 2-class sentiment model would log a meaningless "top5: 1.0".
Such runs log no top5 column, and `evaluate` reports top5 as None (null in JSON).
"""
from __future__ import annotations

from typing import List

TOP_K = 5


def has_top5(num_classes: int) -> bool:
    """Whether top-5 accuracy means anything for `num_classes` classes (more than 5)."""
    return int(num_classes) > TOP_K


def accuracy_metrics(num_classes: int, labels: str = "one_hot") -> List:
    """Keras metrics: "accuracy" (top-1) and, past 5 classes, "top5", for one-hot labels or, with
    labels="sparse" (kerascnn.data.kinds.DataKind.labels), class indices over the last axis."""
    import keras

    sparse = labels == "sparse"
    metrics = [(keras.metrics.SparseCategoricalAccuracy if sparse else keras.metrics.CategoricalAccuracy)(
        name="accuracy")]
    if has_top5(num_classes):
        metrics.append((keras.metrics.SparseTopKCategoricalAccuracy if sparse else
                        keras.metrics.TopKCategoricalAccuracy)(k=TOP_K, name="top5"))
    return metrics


def classification_loss(labels: str = "one_hot", label_smoothing: float = 0.0):
    """The cross-entropy of the labels' form: categorical (with label smoothing) for one-hot labels,
    sparse categorical over the last axis for class indices (which Keras cannot smooth)."""
    import keras

    if labels == "sparse":
        if label_smoothing:
            from kerascnn.errors import SettingError

            raise SettingError("label_smoothing", f"this data's targets are class indices (sparse); Keras's sparse "
                                                  f"cross-entropy has no label smoothing. Received: {label_smoothing}")
        return keras.losses.SparseCategoricalCrossentropy()
    return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)


__all__ = ["TOP_K", "accuracy_metrics", "classification_loss", "has_top5"]
