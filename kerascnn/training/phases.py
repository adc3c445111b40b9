"""A run's training phases: one, or two for fine-tuning (`finetune.head_epochs` > 0).

Phase 1 trains the head on the frozen backbone at `lr`; phase 2 unfreezes `unfreeze` (all, the top
K blocks, from a layer) at `finetune_lr` (default lr / 10), each block down from the head at
`lr_decay` times the rate of the one above (discriminative rates), with every BatchNorm layer still
frozen: in inference mode, so a small folder's batch statistics never replace ImageNet's (the
"93% training, 25% evaluation" BatchNorm trap of fine-tuning). Each phase has its own optimizer and
schedule over its own epochs; the epochs are numbered through both, so one history, one set of
curves and one backup folder cover the run, and a backup says which phase to resume in.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import List

from kerascnn.config import TrainConfig, override
from kerascnn.errors import SettingError

# Keras loads in `prepare` only: the settings are checked (`check`) before TensorFlow is imported.

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Phase:
    number: int
    start: int  # epochs finished before it
    end: int  # epochs finished after it
    trains: str  # "head" (backbone frozen), "unfrozen" (phase 2) or "all"

    @property
    def epochs(self) -> int:
        return self.end - self.start


def plan(cfg: TrainConfig) -> List[Phase]:
    """The phases of `cfg`: [head, unfrozen] with head_epochs, else one as --freeze says."""
    head_epochs = cfg.finetune.head_epochs
    if head_epochs:
        if cfg.freeze != "none":
            raise SettingError("freeze", f"--freeze {cfg.freeze} and --head-epochs {head_epochs} both say what "
                                         f"trains; with --head-epochs, phase 1 trains the head and --unfreeze says "
                                         f"what phase 2 trains.")
        return [Phase(1, 0, head_epochs, "head"), Phase(2, head_epochs, head_epochs + cfg.epochs, "unfrozen")]
    return [Phase(1, 0, cfg.epochs, "head" if cfg.freeze == "backbone" else "all")]


def total_epochs(cfg: TrainConfig) -> int:
    return cfg.finetune.head_epochs + cfg.epochs


def phase_config(cfg: TrainConfig, phase: Phase) -> TrainConfig:
    """`cfg` as the phase's optimizer and schedule see it: its own epochs, phase 2's rate."""
    if phase.trains != "unfrozen":
        return override(cfg, epochs=phase.epochs)
    from kerascnn.training.optim import learning_rate

    return override(cfg, epochs=phase.epochs, lr=cfg.finetune.finetune_lr or learning_rate(cfg) / 10)


def prepare(model, cfg: TrainConfig, phase: Phase, steps_per_epoch: int):
    """Set what trains in `phase` and return the phase's optimizer (compile the model with it)."""
    from kerascnn.models.blocks import unfreeze
    from kerascnn.models.common import freeze_backbone
    from kerascnn.training.layerwise import layer_multipliers, with_lr_multipliers
    from kerascnn.training.optim import make_optimizer

    pcfg, ft = phase_config(cfg, phase), cfg.finetune
    optimizer = make_optimizer(pcfg, steps_per_epoch)
    if phase.trains == "head":
        log.info("phase %d: froze %d layers; training the head only", phase.number, freeze_backbone(model))
    elif phase.trains == "unfrozen":
        groups = unfreeze(model, ft.unfreeze)
        trainable = sum(len(g) for g in groups)
        rates = f"learning rate {pcfg.lr:g}" + (f", x{ft.lr_decay:g} per block down" if ft.lr_decay < 1 else "")
        log.info("phase %d: unfroze %s (%d layers with weights, %d blocks, BatchNorm kept frozen); %s",
                 phase.number, ft.unfreeze, trainable, len(groups) - 1, rates)
        if ft.lr_decay < 1:
            optimizer = with_lr_multipliers(optimizer, layer_multipliers(model, groups, ft.lr_decay))
    return optimizer


def check(cfg: TrainConfig) -> None:
    """The phase settings that can be checked before anything loads."""
    plan(cfg)
    which = str(cfg.finetune.unfreeze)
    if not (which == "all" or which.isdigit() or (which.startswith("from:") and len(which) > 5)):
        raise SettingError("unfreeze", f"unfreeze must be all, a number of blocks K, or from:LAYER. "
                                       f"Received: {cfg.finetune.unfreeze!r}")

