"""Optimizer presets and learning-rate schedules.

Schedules that depend only on the step count are `LearningRateSchedule`s (step, cosine), so they
resume exactly from the optimizer's restored iteration counter; reduce-on-plateau needs validation
results and is a callback. `warmup_epochs` puts a linear warm-up in front of any of them but
plateau (whose rate the callback sets, which a step-driven warm-up would not let it do).
"""
from __future__ import annotations

import math
from typing import Optional

import keras

from kerascnn.config import OPTIMIZER_DEFAULT_LR, OPTIMIZER_DEFAULT_WEIGHT_DECAY, OPTIMIZERS, SCHEDULES, TrainConfig
from kerascnn.errors import SettingError, UserError


def learning_rate(cfg: TrainConfig) -> float:
    return cfg.lr if cfg.lr is not None else OPTIMIZER_DEFAULT_LR[cfg.optimizer]


def weight_decay(cfg: TrainConfig) -> Optional[float]:
    """The decoupled weight decay: the setting's (0 means none), or, unset, the optimizer's default."""
    if cfg.weight_decay is not None:
        return cfg.weight_decay
    return OPTIMIZER_DEFAULT_WEIGHT_DECAY.get(cfg.optimizer)


@keras.saving.register_keras_serializable(package="kerascnn")
class Warmup(keras.optimizers.schedules.LearningRateSchedule):
    """A linear warm-up in front of a schedule: step s < `warmup_steps` gets s / warmup_steps of the
    schedule's value at s (from 0 up to it), later steps the schedule's own value.

    Args:
        schedule: a `LearningRateSchedule`, or a float (a constant rate).
        warmup_steps: the length of the warm-up, in steps (> 0).
    """

    def __init__(self, schedule, warmup_steps: int):
        self.schedule = schedule
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        value = self.schedule(step) if callable(self.schedule) else self.schedule
        ramp = keras.ops.minimum(1.0, step / float(self.warmup_steps))
        return keras.ops.multiply(keras.ops.cast(value, "float32"), ramp)

    def get_config(self) -> dict:
        inner = self.schedule
        if isinstance(inner, keras.optimizers.schedules.LearningRateSchedule):
            inner = keras.optimizers.schedules.serialize(inner)
        return {"schedule": inner, "warmup_steps": self.warmup_steps}

    @classmethod
    def from_config(cls, config: dict) -> "Warmup":
        inner = config["schedule"]
        if isinstance(inner, dict):
            inner = keras.optimizers.schedules.deserialize(inner)
        return cls(inner, config["warmup_steps"])


def make_schedule(cfg: TrainConfig, steps_per_epoch: int):
    """The learning rate as a float (constant, plateau) or a step-driven schedule (step, cosine),
    behind a linear warm-up of `warmup_epochs` (every schedule but plateau)."""
    if cfg.schedule not in SCHEDULES:
        raise UserError(f"--schedule must be one of {', '.join(SCHEDULES)}. Received: {cfg.schedule!r}")
    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = min(total - 1, int(round(cfg.warmup_epochs * steps_per_epoch)))
    if cfg.schedule == "cosine":
        return _cosine(learning_rate(cfg), total, warmup)  # Keras's own warm-up, over total - warmup steps
    check_warmup(cfg)
    schedule = _decay(cfg, steps_per_epoch, total)
    return Warmup(schedule, warmup) if warmup > 0 else schedule


def check_warmup(cfg: TrainConfig) -> None:
    """A warm-up needs a step-driven schedule: plateau's rate is set by a callback as the run goes."""
    if cfg.warmup_epochs > 0 and cfg.schedule == "plateau":
        raise SettingError("warmup_epochs", "--warmup-epochs works with every schedule but plateau (whose rate "
                                            "the validation loss sets); pick another --schedule or drop it.")


def _cosine(lr: float, total: int, warmup: int):
    if warmup <= 0:
        return keras.optimizers.schedules.CosineDecay(lr, decay_steps=total)
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=total - warmup, warmup_target=lr, warmup_steps=warmup)


def _decay(cfg: TrainConfig, steps_per_epoch: int, total: int):
    """The schedule without warm-up: a float (constant, plateau) or a step-driven schedule."""
    lr = learning_rate(cfg)
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
    raise UserError(f"--schedule must be one of {', '.join(SCHEDULES)}. Received: {cfg.schedule!r}")


def make_optimizer(cfg: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """SGD with (Nesterov) momentum, Adam, AdamW, RMSProp or Adadelta; weight decay is decoupled (applied by the
    optimizer); `clip_norm` clips the gradients' global norm."""
    schedule = make_schedule(cfg, steps_per_epoch)
    decay = weight_decay(cfg)
    # Keras skips the decay step for None; AdamW requires a number (0.0: no decay)
    common = {"weight_decay": decay or None, "global_clipnorm": cfg.clip_norm}
    eps = {"epsilon": cfg.epsilon} if cfg.epsilon is not None else {}
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(schedule, momentum=cfg.momentum, nesterov=cfg.momentum > 0, **common)
    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(schedule, **eps, **common)
    if cfg.optimizer == "adamw":
        return keras.optimizers.AdamW(schedule, **eps, **{**common, "weight_decay": decay or 0.0})
    if cfg.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(schedule, rho=cfg.rho, **eps, **common)
    if cfg.optimizer == "adadelta":
        return keras.optimizers.Adadelta(schedule, rho=cfg.rho, **eps, **common)
    raise UserError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}. Received: {cfg.optimizer!r}")
