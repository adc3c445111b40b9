"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates for Training Neural Networks";
fastai's `lr_find`): train a few hundred steps while the learning rate grows exponentially from tiny
to huge, and look at the loss. Where it falls fastest is a good rate to train at; where it blows up,
the rate is too high.

The run is the same one `fit` would start (same settings, data, model, frozen layers, loss), only the
learning rate is driven by the sweep; nothing of it is kept but the curve. A job folder receives
settings.json, lr_find.csv and lr_find.png (the curve with the suggestion marked).

    result = lr_find(kerascnn.resolve_fit("lenet5"))
    result.suggestion     # the rate where the smoothed loss falls fastest
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Union

import keras
import numpy as np

from kerascnn.config import TrainConfig, override
from kerascnn.data.kinds import data_kind
from kerascnn.models.refs import input_kind
from kerascnn.errors import SettingError
from kerascnn.runtime.jobs import JobDir
from kerascnn.settings import Resolved

log = logging.getLogger(__name__)

SMOOTHING = 0.98  # exponential moving average of the loss, debiased (as fastai)
DIVERGED = 4.0  # stop once the smoothed loss is this many times its minimum


@dataclass
class LRFindResult:
    lrs: List[float]
    losses: List[float]  # per step, raw
    smoothed: List[float]
    suggestion: float  # steepest descent of the smoothed loss
    minimum: float  # the rate at the smoothed loss's minimum (divide by 10 for a conservative rate)
    job: Optional[JobDir] = None

    @property
    def png(self) -> Optional[Path]:
        return self.job / "lr_find.png" if self.job else None


class _Sweep(keras.callbacks.Callback):
    """Sets each step's learning rate and records that step's loss (the epoch mean is reset each step)."""

    def __init__(self, lrs: np.ndarray):
        super().__init__()
        self.lrs, self.losses, self.avg, self.best = lrs, [], 0.0, math.inf

    def on_train_batch_begin(self, batch, logs=None):
        self.model.reset_metrics()  # so that the logged loss is this batch's, not the running mean
        self.model.optimizer.learning_rate.assign(float(self.lrs[batch]))

    def on_train_batch_end(self, batch, logs=None):
        loss = float(logs["loss"])
        self.losses.append(loss)
        self.avg = SMOOTHING * self.avg + (1 - SMOOTHING) * loss
        smooth = self.avg / (1 - SMOOTHING ** len(self.losses))
        self.best = min(self.best, smooth)
        if not math.isfinite(loss) or (len(self.losses) > 10 and smooth > DIVERGED * self.best):
            self.model.stop_training = True


def lr_find(settings: Union[TrainConfig, Resolved], *, start_lr: float = 1e-7, end_lr: float = 10.0,
            steps: int = 100, out: Optional[str] = None, verbose=0) -> LRFindResult:
    """Run the range test for a run's settings; returns the curve and the suggested rate.

    Args:
        settings: the run's resolved settings (`kerascnn.resolve_fit(...)`, or finetune's `resolve`).
        start_lr, end_lr: the sweep's range (exponential steps between them).
        steps: training steps in the sweep (it stops early once the loss diverges).
        out: the job folder; default runs/lr-find-<model>-<time>/.
    """
    if not 0 < start_lr < end_lr:
        raise SettingError("start_lr", f"need 0 < start_lr < end_lr. Received: {start_lr}, {end_lr}")
    if steps < 10:
        raise SettingError("steps", f"steps must be >= 10 for a curve. Received: {steps}")
    from kerascnn.training.distribute import precision_scope
    from kerascnn.training.loop import build_model, image_shape_of
    from kerascnn.training.optim import make_optimizer

    resolved = settings if isinstance(settings, Resolved) else None
    cfg = resolved.config if resolved else settings
    keras.utils.set_random_seed(cfg.seed)
    with precision_scope(cfg.precision):
        shape = image_shape_of(cfg)
        kind = data_kind(input_kind(cfg.model))
        bundle = kind.build(cfg.data, shape, cfg.batch_size, cfg.augment if kind.augment else None,
                            splits=("train",))
        constant = override(cfg, schedule="constant", lr=start_lr)
        # a fine-tuning run: the rate sought is phase 1's, the head's on a frozen backbone
        if cfg.finetune.head_epochs:
            constant = override(constant, freeze="backbone")
        model = build_model(cfg, shape, bundle.num_classes, make_optimizer(constant, 1),
                            data_args=bundle.model_args)
        lrs = start_lr * (end_lr / start_lr) ** (np.arange(steps) / (steps - 1))
        sweep = _Sweep(lrs)
        # shuffle=False as in loop.fit: the pipeline shuffles itself, and Keras warns that its own
        # shuffle (on by default) cannot apply to a tf.data.Dataset.
        model.fit(bundle.train.repeat(), steps_per_epoch=steps, epochs=1, callbacks=[sweep], verbose=verbose,
                  shuffle=False)
    result = _analyse(lrs[:len(sweep.losses)], sweep.losses)
    job = JobDir.create("lr-find", cfg.model, out)
    if resolved is not None:
        job.write_settings(resolved)
    job.write_text("lr_find.csv", "lr,loss,smoothed\n" + "".join(
        f"{a:.6g},{b:.6g},{c:.6g}\n" for a, b, c in zip(result.lrs, result.losses, result.smoothed)))
    _plot(result, job / "lr_find.png", f"{cfg.model} on {cfg.data.spec}: learning-rate range test")
    result.job = job
    return result


def _analyse(lrs: np.ndarray, losses: List[float]) -> LRFindResult:
    raw = np.asarray(losses, np.float64)
    n = len(raw)
    if n < 5:
        raise SettingError("start_lr", f"the loss diverged after {n} steps; lower start_lr.")
    avg, smoothed = 0.0, np.empty(n)
    for i, loss in enumerate(raw):
        avg = SMOOTHING * avg + (1 - SMOOTHING) * (loss if math.isfinite(loss) else avg)
        smoothed[i] = avg / (1 - SMOOTHING ** (i + 1))
    lowest = int(np.nanargmin(smoothed))
    # Steepest descent of loss against log(lr), before the minimum (past it the loss is rising).
    upto = max(lowest, 2)
    slopes = np.gradient(smoothed[:upto + 1], np.log(lrs[:upto + 1]))
    steepest = int(np.nanargmin(slopes))
    return LRFindResult(list(map(float, lrs)), list(map(float, raw)), list(map(float, smoothed)),
                        float(lrs[steepest]), float(lrs[lowest]))


def _plot(result: LRFindResult, path: Path, title: str) -> None:
    from kerascnn.runtime.plots import figure, save_png

    fig, ax = figure(figsize=(7, 4.2))
    ax.plot(result.lrs, result.losses, color="0.8", lw=1, label="loss per step")
    ax.plot(result.lrs, result.smoothed, lw=2, label="smoothed")
    lo = min(result.smoothed)
    ax.set_ylim(lo - 0.1 * abs(lo), min(max(result.smoothed), DIVERGED * lo + 0.5))
    for lr, label, style in ((result.suggestion, f"steepest: {result.suggestion:.2g}", "--"),
                             (result.minimum / 10, f"minimum / 10: {result.minimum / 10:.2g}", ":")):
        ax.axvline(lr, color="C3", ls=style, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    save_png(fig, path)
