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


def accuracy_metrics(num_classes: int) -> List:
    """Keras metrics for one-hot labels: "accuracy" (top-1) and, past 5 classes, "top5"."""
    import keras

    metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
    if has_top5(num_classes):
        metrics.append(keras.metrics.TopKCategoricalAccuracy(k=TOP_K, name="top5"))
    return metrics


__all__ = ["TOP_K", "accuracy_metrics", "has_top5"]
