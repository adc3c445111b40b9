"""The run folder and atomic file writes.

A run folder holds everything one `kerascnn fit` produced: config.json (the resolved config),
history.csv, curves.png, classes.json, tb/ (TensorBoard), backup/ (the resume checkpoint),
best.keras and model.keras. Every file is written to a temporary name in the same folder and then
renamed over the target, so a kill -9 at any moment leaves either the old file or the new one.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
from pathlib import Path
from typing import Callable, Optional

from kerascnn.config import TrainConfig, dumps, train_config_from_dict
from kerascnn.errors import UserError

CONFIG = "config.json"
CLASSES = "classes.json"
HISTORY = "history.csv"
CURVES = "curves.png"
MODEL = "model.keras"
BEST = "best.keras"
BACKUP = "backup"
TENSORBOARD = "tb"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", os.path.basename(text.rstrip("/\\")) or text).strip("_")[:40] or "data"


def new_run_dir(cfg: TrainConfig, root: str = "runs") -> Path:
    """`cfg.out`, or a fresh runs/<model>-<data>-<YYYYmmdd-HHMMSS> folder."""
    if cfg.out:
        path = Path(cfg.out)
    else:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = Path(root) / f"{cfg.model}-{_slug(cfg.data.spec)}-{stamp}"
        n = 1
        while path.exists():
            n += 1
            path = Path(root) / f"{cfg.model}-{_slug(cfg.data.spec)}-{stamp}-{n}"
    if (path / MODEL).exists() or (path / BACKUP).exists():
        raise UserError(f"--out {path} already holds a run; resume it with `kerascnn fit --resume {path}` "
                        f"or pick another --out.")
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_path(target: os.PathLike):
    """Yield a temporary path beside `target` (same suffix); rename it over `target` on success."""
    target = Path(target)
    suffix = "".join(target.suffixes[-2:]) if target.name.endswith(".weights.h5") else target.suffix
    tmp = target.with_name(f".{target.stem.split('.')[0]}.tmp-{os.getpid()}{suffix}")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(target: os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def atomic_save(target: os.PathLike, save: Callable[[str], None]) -> None:
    """`save(path)` writes the file (model.save, model.save_weights, fig.savefig ...), atomically."""
    with atomic_path(target) as tmp:
        save(str(tmp))


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
