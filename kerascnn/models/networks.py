"""The network an app reads features from, named as every command names one: a registered model
("vgg19"), any keras.applications network ("keras:VGG19"), or a saved `.keras` file (loaded with
Keras's safe mode on). Style transfer and DeepDream tap its layers by name (kerascnn.models.features).
"""
from __future__ import annotations

import os
from typing import Optional

from kerascnn.errors import SettingError


def check_network(ref: str, weights: Optional[str]) -> Optional[str]:
    """Check `ref` and `weights` before anything is built; returns the normalised weights (None, a
    weight name or a path). Raises SettingError (param "model" or "weights") or UnknownNameError."""
    from kerascnn.models import transfer
    from kerascnn.models.weights import check_weights

    if transfer.is_model_file(ref):
        if not os.path.isfile(ref):
            raise SettingError("model", f"Model file {ref} does not exist.")
        return None  # a saved model brings its own weights
    if transfer.is_application(ref):
        transfer.application(ref)  # UnknownNameError with close matches
        return check_weights(ref, weights, ("imagenet",))
    from kerascnn.models.registry import get_spec

    spec = get_spec(ref)  # UnknownNameError with close matches
    if spec.default_input[-1] != 3:
        raise SettingError("model", f"{ref} does not take RGB images; pick an image model.")
    return check_weights(ref, weights, spec.pretrained)


def network(ref: str, weights: Optional[str] = "imagenet", *, include_top: bool = False, seed: int = 0):
    """The keras.Model `ref` names, its first layer taking raw [0, 255] pixels (preprocessing inside).

    Args:
        ref: a registered model, `keras:NAME`, or a `.keras` file.
        weights: "imagenet", None/"none" (random, seeded by `seed` so that runs repeat), or a weights
            file; ignored for a `.keras` file.
        include_top: keep the classifier (DeepDream's class visualisation); features only otherwise.
    """
    import keras

    from kerascnn.models import transfer

    weights = check_network(ref, weights)
    if transfer.is_model_file(ref):
        from kerascnn.models.loading import load_model

        return load_model(ref)
    if weights is None:
        keras.utils.set_random_seed(seed)
    if transfer.is_application(ref):
        from kerascnn.models.keras_apps import build_application

        constructor, mode = transfer.application(ref)
        file = None if weights in (None, "imagenet") else weights
        model = build_application(constructor, name=ref[len(transfer.KERAS_PREFIX):].lower(), preprocessing=mode,
                                  default_input=transfer.DEFAULT_INPUT, min_input=(32, 32, 3),
                                  include_top=include_top, weights="imagenet" if weights == "imagenet" else None)
        from kerascnn.models.common import load_weights

        return load_weights(model, file, ref)
    from kerascnn.models.registry import create_model

    return create_model(ref, include_top=include_top, weights=weights)


__all__ = ["check_network", "network"]
