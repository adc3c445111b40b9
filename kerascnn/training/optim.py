"""Optimizer presets and learning-rate schedules.

Schedules that depend only on the step count are `LearningRateSchedule`s (step, cosine), so they
resume exactly from the optimizer's restored iteration counter; reduce-on-plateau needs validation
results and is a callback.
"""
from __future__ import annotations

import math

import keras

from kerascnn.config import OPTIMIZER_DEFAULT_LR, SCHEDULES, TrainConfig
from kerascnn.errors import UserError


def learning_rate(cfg: TrainConfig) -> float:
    return cfg.lr if cfg.lr is not None else OPTIMIZER_DEFAULT_LR[cfg.optimizer]


def make_schedule(cfg: TrainConfig, steps_per_epoch: int):
    """The learning rate as a float (constant, plateau) or a step-driven schedule (step, cosine)."""
    if cfg.schedule not in SCHEDULES:
        raise UserError(f"--schedule must be one of {', '.join(SCHEDULES)}. Received: {cfg.schedule!r}")
    lr = learning_rate(cfg)
    total = max(1, cfg.epochs * steps_per_epoch)
    if cfg.schedule in ("constant", "plateau"):
        return lr
    if cfg.schedule == "multistep":
        # /10 after each milestone fraction of training (ResNet on CIFAR: 50% and 75%); Keras switches
        # values after a boundary step, hence -1.
        boundaries = sorted({max(0, int(round(m * total)) - 1) for m in cfg.milestones})
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            boundaries, [lr / 10**k for k in range(len(boundaries) + 1)]) if boundaries else lr
    if cfg.schedule == "exponential":
        # x decay_rate every decay_epochs, in steps (Inception v3: 0.94 every 2 epochs)
        return keras.optimizers.schedules.ExponentialDecay(
            lr, decay_steps=max(1, int(round(cfg.decay_epochs * steps_per_epoch))), decay_rate=cfg.decay_rate,
            staircase=True)
    if cfg.schedule == "step":
        # Divide by 10 every `step_epochs` epochs (AlexNet / VGG / ResNet style).
        drops = max(0, math.ceil(cfg.epochs / cfg.step_epochs) - 1)
        # Keras switches values *after* a boundary step: -1 makes the drop start the epoch.
        boundaries = [k * cfg.step_epochs * steps_per_epoch - 1 for k in range(1, drops + 1)]
        if not boundaries:
            return lr
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, [lr / 10**k for k in range(drops + 1)])
    warmup = min(total - 1, int(round(cfg.warmup_epochs * steps_per_epoch)))
    if warmup <= 0:
        return keras.optimizers.schedules.CosineDecay(lr, decay_steps=total)
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=total - warmup, warmup_target=lr, warmup_steps=warmup)


def make_optimizer(cfg: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """SGD with (Nesterov) momentum, Adam, AdamW or RMSProp; weight decay is decoupled (applied by the
    optimizer); `clip_norm` clips the gradients' global norm."""
    schedule = make_schedule(cfg, steps_per_epoch)
    common = {"weight_decay": cfg.weight_decay or None, "global_clipnorm": cfg.clip_norm}
    eps = {"epsilon": cfg.epsilon} if cfg.epsilon is not None else {}
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(schedule, momentum=cfg.momentum, nesterov=cfg.momentum > 0, **common)
    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(schedule, **eps, **common)
    if cfg.optimizer == "adamw":
        return keras.optimizers.AdamW(schedule, **eps, **{**common, "weight_decay": cfg.weight_decay or 1e-4})
    if cfg.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(schedule, rho=cfg.rho, **eps, **common)
    raise UserError(f"--optimizer must be one of {', '.join(OPTIMIZER_DEFAULT_LR)}. Received: {cfg.optimizer!r}")
