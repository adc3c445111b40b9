"""Callbacks of the harness: resumable checkpoints and best model, history, TensorBoard, decode failures.

Keras's BackupAndRestore writes its weights and its epoch counter as two files, neither atomically;
a kill -9 between or during them resumes from a wrong or broken state. `Checkpoints` writes one
file per backed-up epoch, named by the epoch, atomically, so the newest complete file is the state.
"""
from __future__ import annotations

import csv
import io
import logging
import math
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

import keras

from kerascnn.runtime.compat import cache_keras_saving_skipsets
from kerascnn.data.folders import summarize_skipped
from kerascnn.models.common import float32_copy, strip_auxiliary
from kerascnn.runtime.run_dir import atomic_save, atomic_write_text, group_accuracy_key

if TYPE_CHECKING:
    from kerascnn.data.pipeline import StreamTracker

log = logging.getLogger(__name__)
_BACKUP_RE = re.compile(r"^epoch-(\d+)\.weights\.h5$")


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


class Exporter:
    """The model a run saves (best.keras, model.keras): auxiliary heads stripped, float32.

    The float32 copy is built once and then only gets new weights (a rebuild per better epoch costs
    as much as the save itself for a small network). A float32 run exports the trained model itself,
    until it must export weights the trained model no longer holds (a kept earlier best epoch): then
    it gets a copy of its own.
    """

    def __init__(self):
        self.copy: Optional[keras.Model] = None
        self.shares_weights = False

    @staticmethod
    def weights(trained: keras.Model) -> list:
        """The exported weights of `trained` now, as numpy arrays (to export later)."""
        return strip_auxiliary(trained).get_weights()

    def __call__(self, trained: keras.Model, weights: Optional[list] = None) -> keras.Model:
        stripped = strip_auxiliary(trained)
        if self.copy is None or (self.shares_weights and weights is not None):
            self.copy = float32_copy(stripped, always=weights is not None)
            self.shares_weights = self.copy is stripped
        if not self.shares_weights:
            self.copy.set_weights(stripped.get_weights() if weights is None else weights)
        return self.copy


class Checkpoints(keras.callbacks.Callback):
    """The run's checkpoints: backup/epoch-NNNN.weights.h5 (model + optimizer state, to resume) and
    best.keras (the exported model of the best `monitor` so far), both written atomically.

    Cadence. Writing both costs a fixed ~15-200 ms (Keras's HDF5 writer, ~0.4 ms per variable),
    which is most of an epoch on a small dataset (digits: ~0.2 s epochs). So they are written at the
    end of an epoch once the time since the last write is at least `last write's cost / budget`
    -- checkpoints then take at most `budget` of the training time -- and always after the first
    two epochs of a run (the first write is slow, so the second is the one timed), the last epoch,
    and when training stops early (early stopping, NaN). An epoch that
    improves `monitor` between writes keeps a copy of its weights in memory (a few ms) until the
    next write. A kill -9 therefore loses at most one write interval (or one epoch, when epochs are
    longer): `fit --resume` restarts from the newest backup, with best.keras as of that epoch.
    `budget=0` writes every epoch (what multi-worker runs use: the workers' save calls must match).

    The newest backup is kept after training ends too, so `fit --resume RUN --epochs N` can train a
    finished run further with its optimizer state.
    """

    def __init__(self, backup_dir: Path, best_path: Path, monitor: str = "val_accuracy", export=None,
                 budget: float = 0.01, best: float = -math.inf, keep: int = 1, clock=time.perf_counter):
        super().__init__()
        self.clock = clock
        self.backup_dir, self.best_path, self.monitor = Path(backup_dir), Path(best_path), monitor
        self.export = export or Exporter()
        self.budget, self.best, self.keep = budget, best, keep
        self.writes = 0  # how many times the checkpoints were written (tests, logs)
        self._finished = self._written = 0  # epochs finished / covered by the newest backup
        self._best_weights = None  # weights of a better epoch not yet in best.keras
        self._best_now = False  # this epoch is the best: best.keras can be saved from the live model
        self._cost = None  # seconds the last write took
        self._last_write = 0.0
        self._in_epoch = False

    def on_train_begin(self, logs=None):
        cache_keras_saving_skipsets()
        self._last_write = self.clock()

    def on_epoch_begin(self, epoch, logs=None):
        self._in_epoch = True

    def on_epoch_end(self, epoch, logs=None):
        self._in_epoch, self._finished = False, epoch + 1
        value = (logs or {}).get(self.monitor)
        self._best_now = False
        if value is not None and _is_number(value):
            value = float(value) if "acc" in self.monitor else -float(value)
            if value > self.best:
                self.best, self._best_now, self._best_weights = value, True, None
        last = self._finished >= (self.params or {}).get("epochs", math.inf)
        # The first write pays Keras's one-off saving set-up, so the cadence follows from the second.
        if self.writes < 2 or last or self.budget <= 0 or \
                (self.clock() - self._last_write) * self.budget >= self._cost:
            self._write(backup=True)
        elif self._best_now:  # keep this epoch's weights until the next write
            self._best_weights = self.export.weights(self.model)

    def on_train_end(self, logs=None):
        # Stopped early after a finished epoch: write what is not on disk yet. Stopped inside an epoch
        # (TerminateOnNaN): the live weights are not an epoch's, only a kept best is written.
        if self._finished > self._written or self._best_weights is not None:
            self._write(backup=not self._in_epoch and self._finished > self._written)

    def _write(self, backup: bool) -> None:
        t0 = self.clock()
        if backup:
            self.backup_dir.mkdir(parents=True, exist_ok=True)
            target = self.backup_dir / f"epoch-{self._finished:04d}.weights.h5"
            atomic_save(target, lambda p: self.model.save_weights(p))
            old = sorted(p for p in self.backup_dir.iterdir() if _BACKUP_RE.match(p.name))
            for p in old[: -self.keep]:
                p.unlink(missing_ok=True)
            self._written = self._finished
        if self._best_weights is not None or (self._best_now and backup):
            model = self.export(self.model, self._best_weights)
            atomic_save(self.best_path, lambda p: model.save(p))
            self._best_weights, self._best_now = None, False
        self.writes += 1
        self._last_write = self.clock()
        self._cost = self._last_write - t0


class StreamedFailures(keras.callbacks.Callback):
    """After each epoch, one warning per streamed split naming the files that failed to decode in it.

    `trackers`: DataBundle.streams of the splits fit trains and validates on (a file is reported once).
    """

    def __init__(self, trackers: Dict[str, "StreamTracker"]):
        super().__init__()
        self.trackers = dict(trackers)

    def on_epoch_end(self, epoch, logs=None):
        for name, tracker in self.trackers.items():
            failed = tracker.new_failures()
            if failed:
                log.warning("epoch %d, %s split: %s", epoch + 1, name, summarize_skipped(
                    failed, what="files that failed to decode"))


class ValAccuracyByGroup(keras.callbacks.Callback):
    """After each epoch, the validation accuracy of each group of question types (Sort-of-CLEVR's
    relational and non-relational: the curves Santoro et al. compare) added to the epoch's logs, so
    history.csv, curves.png and TensorBoard carry them. Must come before the callbacks that read the
    logs. The split is predicted once more (Keras's own validation pass reports the overall figure
    only); its batches come in the order `types` lists their questions.

    `val`: the unshuffled split's (inputs, labels) batches; `types`: each question's type index into
    `type_names`; `groups`: group -> type names (VqaBundle.type_groups).
    """

    def __init__(self, val, types, type_names, groups):
        super().__init__()
        self.val, self.types = val, types
        self.type_names, self.groups = list(type_names), dict(groups)

    def on_epoch_end(self, epoch, logs=None):
        import numpy as np

        from kerascnn.data.by_type import breakdown_of

        def labels(y):  # class indices, or one-hot rows (label smoothing's)
            y = np.asarray(y)
            return np.argmax(y, axis=-1) if y.ndim > 1 and y.shape[-1] > 1 else y.reshape(-1)

        correct = [np.argmax(np.asarray(self.model.predict_on_batch(x)), axis=-1) == labels(y) for x, y in self.val]
        scores = breakdown_of(np.concatenate(correct), self.types, self.type_names, self.groups)
        if scores is not None and logs is not None:
            logs.update({group_accuracy_key(g["group"]): g["accuracy"] for g in scores["by_group"]})


def batch_norm_layers(model) -> list:
    """Every BatchNormalization of `model`, those of nested models (a backbone) included."""
    found, stack = [], [model]
    while stack:
        layer = stack.pop()
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        stack.extend(reversed(getattr(layer, "layers", [])))
    return found


def recompute_batch_norm(model, batches) -> int:
    """Set the moving statistics of every trainable BatchNormalization of `model` to the mean of the
    statistics of `batches` (inputs, or (inputs, labels) pairs) in training mode, the weights as they
    are: PreciseBN (Wu & Johnson 2021, "Rethinking 'Batch' in BatchNorm"). Keras's moving averages
    trail weights that move fast (vqa.BN_MOMENTUM), and a network that sums over hundreds of cells,
    as the Relation Network does, magnifies what they miss. The k-th batch enters at momentum
    1 - 1/k, which makes the average exact. Frozen BNs keep theirs (Keras runs them in inference
    mode). Returns the number of batches used."""
    layers = [b for b in batch_norm_layers(model) if b.trainable]
    if not layers:
        return 0
    momenta = [b.momentum for b in layers]
    k = 0
    try:
        for k, batch in enumerate(batches, start=1):
            inputs = batch[0] if isinstance(batch, tuple) else batch
            for b in layers:
                b.momentum = 1.0 - 1.0 / k
            model(inputs, training=True)  # eager, so that each call reads the momentum just set
    finally:
        for b, m in zip(layers, momenta):
            b.momentum = m
    return k


class PreciseBatchNorm(keras.callbacks.Callback):
    """`recompute_batch_norm` from `batches` training batches after every epoch, before anything
    reads the model: before Keras's validation pass (on_test_begin), else at the epoch's end; so
    the validation figures, best.keras, the backup and model.keras all use the recomputed statistics.
    Must come first among the callbacks. `train`: the training split's batches (augmented as in
    training: the statistics are of what the network trains on)."""

    def __init__(self, train, batches: int):
        super().__init__()
        self.train, self.batches = train, int(batches)
        self._pending = False

    def _recompute(self):
        if self._pending:
            self._pending = False
            recompute_batch_norm(self.model, self.train.take(self.batches))

    def on_epoch_begin(self, epoch, logs=None):
        self._pending = True

    def on_test_begin(self, logs=None):
        self._recompute()

    def on_epoch_end(self, epoch, logs=None):
        self._recompute()


class HistoryWriter(keras.callbacks.Callback):
    """history.csv, rewritten atomically each epoch (epoch, metrics, learning rate, seconds)."""

    def __init__(self, path: Path, previous: Optional[List[dict]] = None):
        super().__init__()
        self.path = Path(path)
        self.rows: List[dict] = list(previous or [])
        self.phase: Optional[int] = None  # a two-phase run's phase, written as a column
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
        row = {"epoch": epoch + 1, **({"phase": self.phase} if self.phase is not None else {})}
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


class EarlyStop(keras.callbacks.EarlyStopping):
    """Keras's EarlyStopping that goes back to the best epoch's weights only when it stops the run.

    Keras 3 restores them at the end of every run; a run that trains all its epochs keeps its last
    weights here (Keras 2's rule), so --early-stopping never swaps a finished model for an earlier
    one that merely tied it (val accuracy saturates at 1.0 on easy data)."""

    def __init__(self, monitor: str, patience: int):
        super().__init__(monitor=monitor, patience=patience, verbose=1, restore_best_weights=True,
                         mode="min" if monitor.endswith("loss") else "max")

    @property
    def kept_epoch(self):
        """The epoch (1-based) whose weights the model got back, or None: it ran every epoch."""
        return self.best_epoch + 1 if self.stopped_epoch > 0 and self.best_weights is not None else None

    def on_train_end(self, logs=None):
        if self.stopped_epoch == 0:
            self.best_weights = None  # finished every epoch: keep the last weights
        super().on_train_end(logs)


class EtaReport(keras.callbacks.Callback):
    """Says early how long the run will take, and how to get a quicker one when that is long.

    Timed from the end of the first training call (which pays for tracing) over the next few seconds
    or steps; logged once per `fit`, in the first epoch (at its end at the latest).
    """

    LONG = 3600.0  # a run estimated longer than this gets the advice below
    MEASURE_SECONDS, MEASURE_STEPS = 3.0, 20

    def __init__(self, epochs: int, initial_epoch: int, steps_per_epoch: int, clock=time.perf_counter):
        super().__init__()
        self.epochs, self.initial_epoch, self.steps_per_epoch, self.clock = epochs, initial_epoch, steps_per_epoch, clock
        self.start: Optional[Tuple[float, int]] = None
        self.began: Optional[float] = None
        self.done = False

    def on_train_begin(self, logs=None):
        self.began = self.clock()

    def on_train_batch_end(self, batch, logs=None):
        if self.done:
            return
        # Keras reports the last step of each call; a call of 8 steps may pass the epoch's end
        now, steps = self.clock(), min(batch + 1, self.steps_per_epoch)
        if self.start is None:
            self.start = (now, steps)
            if self.began is not None and now - self.began > self.MEASURE_SECONDS:
                from kerascnn.runtime.progress import format_duration

                log.info("the first %d training step(s) took %s (with the set-up of the training function); "
                         "timing the next ones for an estimate", steps, format_duration(now - self.began))
            return
        seconds, counted = now - self.start[0], steps - self.start[1]
        if counted > 0 and (seconds >= self.MEASURE_SECONDS or counted >= self.MEASURE_STEPS):
            self._report(seconds / counted, counted)

    def on_epoch_end(self, epoch, logs=None):
        if not self.done and self.start is not None:  # a short epoch: time what there was
            counted = self.steps_per_epoch - self.start[1]
            if counted > 0:
                self._report((self.clock() - self.start[0]) / counted, counted)
        self.done = True

    def _report(self, per_step: float, counted: int) -> None:
        self.done = True
        log_estimate(per_step, self.steps_per_epoch, self.epochs - self.initial_epoch, f"timed over {counted} steps")


def log_estimate(per_step: float, steps_per_epoch: int, epochs: int, how: str, bound: str = "about") -> float:
    """Log the time per epoch and for `epochs` epochs at `per_step` seconds a step, with advice when
    that is long; returns the run's seconds."""
    from kerascnn.runtime.progress import format_duration

    epoch = per_step * steps_per_epoch
    remaining = epoch * epochs
    log.info("%s %s per epoch, %s for the %d epoch(s) of this run (%s)", bound, format_duration(epoch),
             format_duration(remaining), epochs, how)
    if remaining > EtaReport.LONG:
        # Generic: the harness trains images, texts and audio alike (an image's side is not every kind's).
        log.info("that is long; for a quick run: fewer --epochs, smaller inputs (for images a smaller "
                 "--input-shape: half the side is ~4x faster), or a machine with a GPU")
    return remaining


__all__ = ["Checkpoints", "EarlyStop", "EpochTensorBoard", "EtaReport", "Exporter", "HistoryWriter", "StreamedFailures",
           "PreciseBatchNorm", "ValAccuracyByGroup", "batch_norm_layers", "latest_backup", "log_estimate",
           "recompute_batch_norm", "restore_backup"]
