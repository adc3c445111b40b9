"""Transfer learning: a network pretrained on ImageNet, a new classifier for your own classes.

The recipe of keras-io's transfer-learning guide and fastai's `fine_tune` first stage: load the
pretrained backbone (`weights="imagenet"` or a weights file; a no-top file loads under the new head),
freeze it, and train the classifier on your data at a moderate learning rate. Built only on
kerascnn's public API: `make_config` + `fit`, so the run folder, resume, `--strategy` and
precision work as for `kerascnn fit`.

    from apps.transfer_learning import finetune
    result = finetune("mobilenet_v2", "mobilenet_v2_imagenet_notop.weights.h5", **{"data.spec": "photos/"})
"""
from __future__ import annotations

from typing import Any

import kerascnn

# Defaults for training a classifier on frozen features (the user's flags override every one).
FINETUNE_DEFAULTS = {"freeze": "backbone", "epochs": 10, "optimizer": "adam", "lr": 1e-3, "batch_size": 32}


def finetune(model: str, weights: str, *, verbose="auto", **changes: Any):
    """Fine-tune `model` from `weights` on `changes["data.spec"]`; returns kerascnn's FitResult."""
    settings = {**FINETUNE_DEFAULTS, **{k: v for k, v in changes.items() if v is not None}}
    cfg = kerascnn.make_config(model, weights=weights, **settings)
    return kerascnn.fit(cfg, verbose=verbose)
