"""Callbacks of the harness: resumable checkpoints, history, best model, plots.

Keras's BackupAndRestore writes its weights and its epoch counter as two files, neither atomically;
a kill -9 between or during them resumes from a wrong or broken state. `EpochBackup` writes one
file per finished epoch, named by the epoch, atomically, so the newest complete file is the state.
"""
from __future__ import annotations

import csv
import io
import logging
import math
import re
import time
from pathlib import Path
from typing import List, Optional, Tuple

import keras

from kerascnn.training.run_dir import atomic_save, atomic_write_text

log = logging.getLogger(__name__)
_BACKUP_RE = re.compile(r"^epoch-(\d+)\.weights\.h5$")


def cache_keras_saving_skipsets() -> None:
    """Work around a Keras 3 cache that never hits, which makes every save ~2x slower than needed.

    Keras's saving walk asks `get_attr_skipset(kind)` which attributes of a Layer, Functional,
    Optimizer ... to skip; it computes them by constructing throwaway Layer/Optimizer objects and
    caches the result under "saving_attr_skipset_<kind>", but looks the cache up under
    "saving_attr_skiplist_<kind>" (Keras 3.15), so it rebuilds them on every save and load: 16 of
    the 37 ms of a LeNet-5 `save_weights`, per epoch. Storing the computed sets under the key it
    reads makes the cache work; the sets are exactly what Keras computes. A no-op where Keras
    differs (fixed, renamed); `keras.backend.clear_session()` drops the entries, so callers
    re-run this at the start of training.
    """
    try:
        from keras.src.backend.common import global_state
        from keras.src.saving import saving_lib
    except ImportError:
        return
    for kind in ("Operation", "Layer", "Functional", "Sequential", "Metric", "Optimizer", "Loss"):
        key = f"saving_attr_skiplist_{kind}"
        try:
            if global_state.get_global_attribute(key, None) is None:
                global_state.set_global_attribute(key, saving_lib.get_attr_skipset(kind))
        except (AttributeError, ValueError, TypeError):
            return


def latest_backup(backup_dir: Path) -> Tuple[int, Optional[Path]]:
    """(number of finished epochs, path of their weights) of the newest complete backup, or (0, None)."""
    found = []
    if backup_dir.is_dir():
        for p in backup_dir.iterdir():
            m = _BACKUP_RE.match(p.name)
            if m:
                found.append((int(m.group(1)), p))
    return max(found) if found else (0, None)


def restore_backup(model: keras.Model, path: Path) -> None:
    """Load weights and optimizer state (iterations, moments) saved by EpochBackup."""
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(str(path))


class EpochBackup(keras.callbacks.Callback):
    """Saves model + optimizer state after every epoch as backup/epoch-NNNN.weights.h5 (atomic).

    The newest file is kept after training ends too, so `fit --resume RUN --epochs N` can train a
    finished run further with its optimizer state.
    """

    def __init__(self, backup_dir: Path, keep: int = 1):
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.keep = keep

    def on_train_begin(self, logs=None):
        cache_keras_saving_skipsets()

    def on_epoch_end(self, epoch, logs=None):
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        target = self.backup_dir / f"epoch-{epoch + 1:04d}.weights.h5"
        atomic_save(target, lambda p: self.model.save_weights(p))
        old = sorted(p for p in self.backup_dir.iterdir() if _BACKUP_RE.match(p.name))
        for p in old[: -self.keep]:
            p.unlink(missing_ok=True)


class HistoryWriter(keras.callbacks.Callback):
    """history.csv, rewritten atomically each epoch (epoch, metrics, learning rate, seconds)."""

    def __init__(self, path: Path, previous: Optional[List[dict]] = None):
        super().__init__()
        self.path = Path(path)
        self.rows: List[dict] = list(previous or [])
        self._t0 = 0.0

    @staticmethod
    def read(path: Path, before_epoch: int) -> List[dict]:
        """Rows of an earlier (interrupted) run, up to the epoch training resumes from."""
        if not Path(path).is_file():
            return []
        with open(path, newline="", encoding="utf-8") as f:
            return [r for r in csv.DictReader(f) if int(r["epoch"]) <= before_epoch]

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1}
        row.update({k: float(v) for k, v in (logs or {}).items() if _is_number(v)})
        row["learning_rate"] = _current_lr(self.model.optimizer)
        row["seconds"] = round(time.perf_counter() - self._t0, 3)
        self.rows.append(row)
        keys = list(dict.fromkeys(k for r in self.rows for k in r))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys)
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.path, buf.getvalue())


class BestModel(keras.callbacks.Callback):
    """Keeps best.keras: the model with the best `monitor` so far (atomic save)."""

    def __init__(self, path: Path, monitor: str = "val_accuracy", export=None):
        super().__init__()
        self.path, self.monitor, self.export = Path(path), monitor, export or (lambda m: m)
        self.best = -math.inf

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not _is_number(value):
            return
        value = float(value) if "acc" in self.monitor else -float(value)
        if value > self.best:
            self.best = value
            model = self.export(self.model)
            atomic_save(self.path, lambda p: model.save(p))


class EpochTensorBoard(keras.callbacks.TensorBoard):
    """TensorBoard logs written once per epoch, and no per-batch hooks at all.

    Keras's TensorBoard runs its per-batch hooks even with update_freq="epoch": a writer push/pop and
    a `tf.summary.scalar` call per metric, about 180 us per step here, 3% of a LeNet-5 step on a
    2-core CPU. The base class's no-op hooks instead; the epoch summaries are unchanged.
    """

    on_train_batch_begin = keras.callbacks.Callback.on_train_batch_begin
    on_train_batch_end = keras.callbacks.Callback.on_train_batch_end
    on_test_batch_begin = keras.callbacks.Callback.on_test_batch_begin
    on_test_batch_end = keras.callbacks.Callback.on_test_batch_end

    def __init__(self, log_dir):
        super().__init__(log_dir, update_freq="epoch", profile_batch=0, write_graph=False)


def _current_lr(optimizer) -> float:
    lr = optimizer.learning_rate
    try:
        return float(keras.ops.convert_to_numpy(lr))
    except (TypeError, ValueError):
        return float("nan")


def _is_number(v) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False
