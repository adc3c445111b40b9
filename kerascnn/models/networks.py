"""The network an app reads features from: any model reference (kerascnn.models.refs) that takes RGB
images, built without its classifier unless asked. Style transfer and DeepDream tap its layers by
name (kerascnn.models.features).
"""
from __future__ import annotations

from typing import Optional

from kerascnn.models.refs import check_model, is_model_file, resolve_model


def check_network(ref: str, weights: Optional[str]) -> Optional[str]:
    """Check `ref` and `weights` before anything is built; returns the normalised weights (None, a
    weight name or a path). Raises SettingError (param "model" or "weights") or UnknownNameError."""
    return check_model(ref, weights, rgb=True)


def network(ref: str, weights: Optional[str] = "imagenet", *, include_top: bool = False,
            seed: Optional[int] = None):
    """The keras.Model `ref` names, its first layer taking raw [0, 255] pixels (preprocessing inside).

    Args:
        ref: a registered model, `keras:NAME`, or a `.keras` file.
        weights: "imagenet", None/"none" (random), or a weights file; ignored for a `.keras` file.
        include_top: keep the classifier (DeepDream's class visualisation); features only otherwise.
        seed: with random weights, the seed the caller asks for (Keras's global seed is set only
            then, so that runs repeat); None leaves the global random state alone.
    """
    if seed is not None and check_network(ref, weights) is None and not is_model_file(ref):
        import keras

        keras.utils.set_random_seed(seed)
    return resolve_model(ref, weights, include_top=include_top, rgb=True)


__all__ = ["check_network", "network"]
