"""Transfer learning: a network pretrained on ImageNet, a new classifier for your own classes.

The recipe of keras-io's transfer-learning guide and fastai's `fine_tune` first stage: load the
pretrained backbone (`weights="imagenet"` or a weights file; a no-top file loads under the new head),
freeze it, and train the classifier on your data at a moderate learning rate. Built only on
kerascnn's public API: the settings resolve like `kerascnn fit`'s, with this app's defaults as a
layer over the model's recipe, and the training is kerascnn's harness, so the run folder, resume,
`--strategy` and precision work as for `kerascnn fit`.

    from kerascnn.apps.transfer_learning import finetune
    result = finetune("mobilenet_v2", weights="mobilenet_v2_imagenet_notop.weights.h5", data="photos/")
    baseline = finetune("mobilenet_v2", weights="none", data="photos/")   # same recipe, random init
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Optional, Sequence

from kerascnn.settings import Resolved

# TensorFlow loads on first use (inside the functions), so that the CLI can read FINETUNE_DEFAULTS
# for its help text without it.

APP = "finetune"
# Defaults for training a classifier on pretrained features (a layer over the model's recipe; the
# user's settings file, flags and keywords override every one).
FINETUNE_DEFAULTS = {"model": "mobilenet_v2", "weights": "imagenet", "freeze": "backbone", "epochs": 10,
                     "optimizer": "adam", "lr": 1e-3, "batch_size": 32}


def resolve(settings: dict, *, config_file: Optional[os.PathLike] = None, source: str = "argument") -> Resolved:
    """The checked settings of a finetune run, each with its source (`kerascnn finetune --print-config`)."""
    from kerascnn.training.configure import resolve_train

    resolved = resolve_train(settings, config_file=config_file, source=source, app=APP,
                             app_defaults=FINETUNE_DEFAULTS, command=APP)
    cfg = resolved.config
    if cfg.weights is None and resolved.sources["freeze"] == f"app {APP}":
        # The random-init baseline (weights none) must train its backbone: a frozen random network
        # would be a different experiment. Only the app's default gives way; an explicit freeze stays.
        cfg = dataclasses.replace(cfg, freeze="none")
        resolved = Resolved(cfg, {**resolved.sources, "freeze": f"app {APP} (weights none)"}, APP)
    return resolved


def finetune(model: Optional[str] = None, *, config_file: Optional[os.PathLike] = None,
             callbacks: Sequence[Any] = (), verbose="auto", **settings: Any):
    """Fine-tune `model` (default mobilenet_v2) from `weights` (default imagenet) on `data`.

    Takes every `kerascnn fit` setting by name (weights="none" trains the same network from random
    initialisation, the baseline). Returns kerascnn's FitResult.
    """
    from kerascnn.training import fit

    if model is not None:
        settings = {**settings, "model": model}
    return fit(resolve(settings, config_file=config_file), callbacks=callbacks, verbose=verbose)
