"""The run folder and atomic file writes.

A run folder holds everything one `kerascnn fit` produced: config.json (the resolved config),
history.csv, curves.png, classes.json, tb/ (TensorBoard), backup/ (the resume checkpoint),
best.keras and model.keras. Every file is written to a temporary name in the same folder and then
renamed over the target, so a kill -9 at any moment leaves either the old file or the new one.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Optional

from kerascnn.config import TrainConfig, dumps, train_config_from_dict
from kerascnn.errors import UserError
from kerascnn.runtime.jobs import atomic_path, atomic_save, atomic_write_text, new_job_path  # noqa: F401  (re-exported)

CONFIG = "config.json"
CLASSES = "classes.json"
HISTORY = "history.csv"
# history.csv's column of a group of question types' validation accuracy (VQA): this prefix + the
# group's name; never a Keras metric's column (Keras's end in the metric's name).
GROUP_ACCURACY = "val_accuracy_"
CURVES = "curves.png"
MODEL = "model.keras"
BEST = "best.keras"
BACKUP = "backup"
TENSORBOARD = "tb"


def new_run_dir(cfg: TrainConfig, root: str = "runs") -> Path:
    """`cfg.out`, or a fresh runs/<model>-<data>-<YYYYmmdd-HHMMSS> folder."""
    path = new_job_path(cfg.model, cfg.data.spec, cfg.out, root)
    if (path / MODEL).exists() or (path / BACKUP).exists():
        raise UserError(f"--out {path} already holds a run; resume it with `kerascnn fit --resume {path}` "
                        f"or pick another --out.")
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_config(run_dir: Path, cfg: TrainConfig) -> None:
    atomic_write_text(run_dir / CONFIG, dumps(cfg))


def read_config(run_dir: os.PathLike) -> TrainConfig:
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise UserError(f"--resume {run_dir}: no {CONFIG} there; is it a kerascnn run folder?")
    try:
        return train_config_from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError) as e:
        raise UserError(f"{path} is not a valid kerascnn config ({e}).") from None


def write_classes(run_dir: Path, class_names) -> None:
    atomic_write_text(run_dir / CLASSES, json.dumps(list(class_names), indent=1, ensure_ascii=False))


def read_classes(model_path: os.PathLike) -> Optional[list]:
    """The class names saved beside a model file, if any."""
    path = Path(model_path).parent / CLASSES
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return None


def group_accuracy_key(group: str) -> str:
    """The history column of a group's validation accuracy ("non-relational" -> "val_accuracy_non_relational")."""
    return GROUP_ACCURACY + re.sub(r"[^0-9a-zA-Z]+", "_", str(group)).strip("_").lower()
