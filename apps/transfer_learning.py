"""Transfer learning: a pretrained backbone, a new head for your classes, then the backbone's top.

The recipe of keras-io's transfer-learning guide and fastai's `fine_tune`, as `kerascnn finetune`:

1. A backbone: a registered network with pretrained weights (`weights="imagenet"`, or a weights
   file; offline, ../shared/weights has MobileNetV2's and VGG16's), or a saved `.keras` model with
   its head cut off (one trained with `kerascnn fit` on other classes). A new head: global average
   pooling, dropout, a dense layer for the folder's classes.
2. Phase 1 (`head_epochs`): only the head trains, on the frozen backbone. Without augmentation
   that changes the pixels, the backbone's features are computed once and the head trains on them.
3. Phase 2 (`epochs`): `unfreeze` (all, the top K blocks, from:LAYER) trains too, at `finetune_lr`
   (default lr / 10), with discriminative rates when `lr_decay` < 1, and every BatchNorm layer kept
   frozen, in inference mode (a small folder's batch statistics would wreck ImageNet's).

Built only on kerascnn's public API: the settings resolve like `kerascnn fit`'s, with this app's
defaults as a layer over the model's recipe, and the training is kerascnn's harness, so the run
folder (one for both phases), resume (in either phase), class weights, augmentation, `--strategy`
and precision work as for `kerascnn fit`, and the model works with `predict`, `evaluate` and
`export`.

    from kerascnn.apps.transfer_learning import finetune
    result = finetune("mobilenet_v2", weights="mobilenet_v2_imagenet_notop.weights.h5", data="photos/")
    baseline = finetune("mobilenet_v2", weights="none", data="photos/")   # same network, random init
    mine = finetune("runs/lenet5-fm04/model.keras", data="new_classes/")  # your own backbone
"""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence

from kerascnn.settings import Resolved

# TensorFlow loads on first use (inside the functions), so that the CLI can read FINETUNE_DEFAULTS
# for its help text without it.

APP = "finetune"
# Defaults for fine-tuning (a layer over the model's recipe; the user's settings file, flags and
# keywords override every one). keras-io's fine-tuning examples: dropout 0.2, Adam 1e-2 for the new
# head, then the backbone 100x (or more) lower. A head at 1e-3 barely moves in the few steps a small
# folder gives (bench/RESULTS.md: 31% against 72% from scratch at 5 images a class), hence 1e-2.
FINETUNE_DEFAULTS = {"model": "mobilenet_v2", "weights": "imagenet", "head_dropout": 0.2, "head_epochs": 5,
                     "epochs": 5, "unfreeze": "all", "optimizer": "adam", "lr": 1e-2, "finetune_lr": 1e-4,
                     "batch_size": 32, "class_weight": "balanced"}


# The dotted key of phase 1's epochs (TrainConfig.finetune); the flag and keyword stay head_epochs.
HEAD_EPOCHS = "finetune.head_epochs"


def resolve(settings: dict, *, config_file: Optional[os.PathLike] = None, source: str = "argument") -> Resolved:
    """The checked settings of a finetune run, each with its source (`kerascnn finetune --print-config`)."""
    from kerascnn.config import TrainConfig, override
    from kerascnn.models.refs import is_model_file
    from kerascnn.settings import layer_value
    from kerascnn.training.configure import resolve_train

    def defaults(user) -> dict:
        """FINETUNE_DEFAULTS, less what the user's choices make moot."""
        out = dict(FINETUNE_DEFAULTS)
        if is_model_file(layer_value(user, TrainConfig, "model") or ""):
            del out["weights"]  # a saved model brings its own
        asked = {key: layer_value(user, TrainConfig, key) for key in ("freeze", HEAD_EPOCHS)}
        if asked["freeze"] is not None and asked[HEAD_EPOCHS] is None:
            out["head_epochs"] = 0  # --freeze says what trains: one phase
        return out

    resolved = resolve_train(settings, config_file=config_file, source=source, app=APP, app_defaults=defaults,
                             command=APP)
    cfg, sources = resolved.config, resolved.sources
    pretrained = cfg.weights is not None or is_model_file(cfg.model)  # a saved model brings its weights
    head_epochs = cfg.finetune.head_epochs
    if not pretrained and sources[HEAD_EPOCHS] == f"app {APP}" and head_epochs:
        # The random-init baseline (weights none) trains its whole network from the start (a frozen
        # random backbone would be another experiment), by default for as many epochs as the two
        # phases together. Only the app's defaults give way; an explicit --head-epochs stays.
        note = f"app {APP} (weights none: one phase, all layers)"
        sources = {**sources, HEAD_EPOCHS: note}
        if sources["epochs"] == f"app {APP}":
            cfg, sources["epochs"] = override(cfg, epochs=head_epochs + cfg.epochs), note
        resolved = Resolved(override(cfg, **{HEAD_EPOCHS: 0}), sources, APP)
    return resolved


def finetune(model: Optional[str] = None, *, config_file: Optional[os.PathLike] = None,
             resume: Optional[os.PathLike] = None, callbacks: Sequence[Any] = (), verbose="auto", **settings: Any):
    """Fine-tune `model` (default mobilenet_v2; or a .keras file) from `weights` (default imagenet) on `data`.

    Takes every `kerascnn fit` setting by name (weights="none" trains the same network from random
    initialisation, the baseline; `resume=RUN_DIR` continues an interrupted run in whichever phase
    it stopped). Returns kerascnn's FitResult.
    """
    from kerascnn.api import check_resume, train

    if resume is not None:
        check_resume({**settings, "model": model}, config_file)
        return train(resume=resume, epochs=settings.get("epochs"), callbacks=callbacks, verbose=verbose)
    if model is not None:
        settings = {**settings, "model": model}
    return train(resolve(settings, config_file=config_file), callbacks=callbacks, verbose=verbose)
