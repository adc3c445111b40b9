"""`fit`: the training harness behind `kerascnn fit` (and the apps that train).

config -> run folder -> strategy and precision -> data -> model, optimizer, callbacks -> model.fit
-> atomic exports. Resuming re-reads the run's config.json, restores the newest epoch backup
(weights and optimizer state, so the schedule continues where it stopped) and appends to history.
"""
from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple, Union

import keras

from kerascnn.config import FREEZE, TrainConfig, fields_of, override
from kerascnn.data.kinds import data_kind
from kerascnn.errors import UserError
from kerascnn.runtime.jobs import JobDir
from kerascnn.models.common import freeze_backbone
from kerascnn.models.refs import input_kind, resolve_model
from kerascnn.models.transfer import input_shape_for, is_backbone_ref, is_model_file, transfer_model
from kerascnn.settings import Resolved
from kerascnn.runtime import run_dir as rd
from kerascnn.runtime.progress import format_duration
from kerascnn.training.callbacks import (Checkpoints, EarlyStop, EpochTensorBoard, EtaReport, Exporter, HistoryWriter,
                                         PreciseBatchNorm, StreamedFailures, ValAccuracyByGroup, latest_backup,
                                         log_estimate, restore_backup)
from kerascnn.training.distribute import set_precision, setup_distribution
from kerascnn.training.feature_cache import FeatureCache, ForModel, split_head
from kerascnn.training.metrics import accuracy_metrics, classification_loss
from kerascnn.training.phases import plan, prepare, total_epochs
from kerascnn.training.optim import learning_rate
from kerascnn.runtime.plots import plot_curves

log = logging.getLogger(__name__)

AUX_PREFIX = "aux"


@dataclass
class FitResult:
    run_dir: Path
    model: keras.Model  # the exported model: auxiliary heads removed, float32 (what model.keras holds)
    history: List[dict]
    class_names: List[str]
    steps_per_epoch: int
    trained: keras.Model  # the model as trained: its precision, auxiliary heads and optimizer state
    val: object = None  # the validation split it was scored on (a tf.data.Dataset, or None)
    chief: bool = True  # this process wrote the run folder (one of several workers: only the chief)
    kept_epoch: Optional[int] = None  # early stopping went back to this epoch's weights (1-based)

    @property
    def final(self) -> dict:
        """The history row of the weights the model holds: the last epoch's, or the one early
        stopping went back to."""
        if self.kept_epoch is not None:
            for row in self.history:
                if int(row.get("epoch", -1)) == self.kept_epoch:
                    return row
        return self.history[-1] if self.history else {}


def fit(cfg: Union[TrainConfig, Resolved] = TrainConfig(), *, resume: Optional[os.PathLike] = None,
        epochs: Optional[int] = None, callbacks: Sequence[keras.callbacks.Callback] = (),
        verbose="auto", finishers: Sequence[Callable[[FitResult], object]] = ()) -> FitResult:
    """Train `cfg.model` on `cfg.data` and write a run folder; `resume=RUN_DIR` continues a run.

    This is the harness: it takes a complete configuration as it is. `kerascnn.fit("lenet5", epochs=10)`
    resolves the settings first (the model's recipe under the user's choices) and then calls it.

    Args:
        cfg: the resolved configuration, a TrainConfig or a `kerascnn.settings.Resolved` (whose
            sources then go into the run folder's settings.json); ignored when resuming: the run's
            own config.json is used.
        resume: a run folder written by an earlier, interrupted `fit`.
        epochs: with `resume`, a new total number of epochs (to train an ended run further).
        callbacks: extra Keras callbacks.
        verbose: Keras's verbosity (the progress bar by default).
        finishers: calls on the result once the run folder holds model.keras (on the chief only):
            the layers above hook in here (`kerascnn.fit` writes the run's report.html this way).
    """
    resolved = cfg if isinstance(cfg, Resolved) else None
    cfg = resolved.config if resolved is not None else cfg
    if resume is not None:
        run = Path(resume)
        cfg = override(rd.read_config(run), epochs=epochs)
        resolved = None
    previous_policy = keras.mixed_precision.global_policy()
    try:
        result = _fit(cfg, resume is not None and run or None, callbacks, verbose, resolved)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    if result.chief:
        for finish in finishers:
            finish(result)
    return result


def image_shape_of(cfg: TrainConfig) -> Tuple[int, int, int]:
    """The input the run's model takes: a saved --model's own, else --input-shape, else the model's."""
    return input_shape_for(cfg.model, cfg.input_shape)


def create(cfg: TrainConfig, image_shape, num_classes: int, data_args=None) -> keras.Model:
    """The run's network, weights loaded: the registered model, or a backbone under a new head
    (`head_dropout` set, or a .keras --model). `data_args`: builder arguments the training data
    supplies (DataBundle.model_args, e.g. a text model's vocabulary from the training split).
    Call it in the strategy's scope."""
    if cfg.finetune.head_dropout is not None or is_backbone_ref(cfg.model):
        return transfer_model(cfg.model, num_classes=num_classes, weights=cfg.weights,
                              dropout=cfg.finetune.head_dropout,
                              input_shape=None if is_model_file(cfg.model) else image_shape,
                              model_args=cfg.model_args, at=cfg.finetune.head_at)
    extra = {"embeddings": cfg.embeddings} if cfg.embeddings else {}
    return resolve_model(cfg.model, cfg.weights, input_shape=image_shape, num_classes=num_classes,
                         **{**dict(data_args or {}), **extra, **dict(cfg.model_args)})


def compile_model(model: keras.Model, cfg: TrainConfig, optimizer, steps_per_execution: int = 1) -> keras.Model:
    """Compile with the run's loss (label smoothing; auxiliary heads weighted `cfg.aux_weight`) and
    top-1 / top-5 metrics (no top-5 for 5 classes or fewer, where it is always 100%)."""
    outputs = list(model.output_names)
    num_classes = int(model.outputs[0].shape[-1])
    labels = data_kind(input_kind(cfg.model)).labels  # one-hot, or class indices (audio: one per sample)
    losses = {o: classification_loss(labels, cfg.label_smoothing) for o in outputs}
    metrics = accuracy_metrics(num_classes, labels)
    model.compile(
        optimizer=optimizer,
        loss=losses if len(outputs) > 1 else losses[outputs[0]],
        loss_weights={o: (cfg.aux_weight if o.startswith(AUX_PREFIX) else 1.0) for o in outputs}
        if len(outputs) > 1 else None,
        metrics={"predictions": metrics} if len(outputs) > 1 else metrics,
        steps_per_execution=steps_per_execution,
    )
    return model


def build_model(cfg: TrainConfig, image_shape, num_classes: int, optimizer, steps_per_execution: int = 1,
                data_args=None):
    """The compiled model of a single-phase run: built (weights loaded), frozen as `cfg.freeze` says
    (`compile_model`). Call it in the strategy's scope."""
    model = create(cfg, image_shape, num_classes, data_args)
    if cfg.freeze == "backbone":
        log.info("froze %d layers; training the classifier only", freeze_backbone(model))
    elif cfg.freeze != "none":
        raise UserError(f"--freeze must be one of {', '.join(FREEZE)}. Received: {cfg.freeze!r}")
    return compile_model(model, cfg, optimizer, steps_per_execution)


AUTO_MAX_STEPS = 8
AUTO_CALL_SECONDS = 0.5  # auto steps per call: about this long a call, so progress shows often


def auto_steps_per_execution(model, train, sample: int = 8) -> Tuple[int, float, bool]:
    """(steps per compiled call, estimated seconds per training step, whether that is an estimate
    rather than an upper bound) from a timed forward pass.

    A training step costs about three forward passes (forward, and a backward pass of about twice
    that), and a forward pass about its batch size times that of a few images: `sample` images are
    timed, so that the probe costs a fraction of one step even for a big network on a CPU. The first
    pass pays for tracing; when it alone is long, the step is long anyway and nothing more is timed.
    """
    x = next(iter(train))[0]
    # Any structure of inputs (an image+question model takes a dict): the batch is a leaf's length.
    n = len(keras.tree.flatten(x)[0])
    scale = n / min(n, sample)
    x = keras.tree.map_structure(lambda t: t[:sample], x)
    start = time.perf_counter()
    model.predict_on_batch(x)
    first = time.perf_counter() - start
    timed = first * scale < AUTO_CALL_SECONDS * 20  # else clearly one step per call; spare a second pass
    if timed:
        start = time.perf_counter()
        model.predict_on_batch(x)
        first = time.perf_counter() - start
    step = 3 * first * scale
    return max(1, min(AUTO_MAX_STEPS, int(AUTO_CALL_SECONDS / max(step, 1e-6)))), step, timed


def _apply_precision(cfg: TrainConfig, resolved: Optional[Resolved]):
    """Set the precision policy; the config (and its sources) record what "auto" chose."""
    chosen = set_precision(cfg.precision)
    if resolved is not None and chosen != cfg.precision:
        sources = {**resolved.sources, "precision": f"{resolved.sources['precision']} ({cfg.precision})"}
        resolved = Resolved(override(cfg, precision=chosen), sources, resolved.command)
    return override(cfg, precision=chosen), resolved


def _auto_steps(model, train, steps_per_epoch: int, epochs: int) -> None:
    """Choose the model's steps per call from a timed forward pass, and say at once if the run is long."""
    model.steps_per_execution, step_seconds, timed = auto_steps_per_execution(model, train)
    took = f"{step_seconds * 1000:.0f} ms" if step_seconds < 1 else format_duration(step_seconds)
    log.info("steps per compiled call: %d (a training step takes %s %s; --steps-per-execution N to choose)",
             model.steps_per_execution, "about" if timed else "up to", took)
    if step_seconds * steps_per_epoch * epochs > EtaReport.LONG:  # say so now, not after a step
        log_estimate(step_seconds, steps_per_epoch, epochs, "from a forward pass; timed again once training "
                     "runs", "about" if timed else "up to")


def _log_audit(cfg: TrainConfig, kind, input_shape) -> None:
    """The data kind's audit summary, when it has one (images: for a folder, `kerascnn audit`'s one
    line without the duplicate search, which decodes every file; the counts are those of the splits
    trained on, val held out of train as the pipeline does it)."""
    report = kind.audit(cfg.data, input_shape) if kind.audit is not None else None
    if report is not None:
        log.info("%s (`kerascnn audit %s` also finds duplicates)", report.summary(), cfg.data.spec)


def _fit(cfg: TrainConfig, resume_dir: Optional[Path], extra_callbacks, verbose,
         resolved: Optional[Resolved]) -> FitResult:
    keras.utils.set_random_seed(cfg.seed)
    cfg, resolved = _apply_precision(cfg, resolved)
    dist = setup_distribution(cfg.strategy, cfg.batch_size, learning_rate(cfg))
    # Only the chief writes the run folder. The other workers run the same callbacks (one that reads
    # a synchronised variable joins a collective, so all workers must run the same ones) but write to
    # a scratch folder, removed at the end; on resume they still READ the shared run folder's backup,
    # so every worker restarts from the same weights (the folder must be on a shared file system).
    shared = resume_dir or (rd.new_run_dir(cfg) if dist.chief else None)
    run = shared if dist.chief else Path(tempfile.mkdtemp(prefix="kerascnn-worker-"))
    if resume_dir is None and dist.chief:
        rd.write_config(run, cfg)
        JobDir(run).write_settings(resolved or Resolved(cfg, {k: "TrainConfig" for k, _ in fields_of(cfg)}, "fit"))
    elif dist.chief and (saved := rd.read_config(run)).epochs != cfg.epochs:
        # `--resume RUN --epochs N` trains the run further: its config says so from now on, so the run
        # folder (and a model shipped from it) names the epochs it trained, and a later plain resume keeps N.
        rd.write_config(run, override(saved, epochs=cfg.epochs))

    image_shape = image_shape_of(cfg)
    kind = data_kind(input_kind(cfg.model))  # the data steps of what the model takes
    bundle = kind.build(cfg.data, image_shape, cfg.batch_size, cfg.augment if kind.augment else None,
                        splits=("train", "val"))
    steps_per_epoch = max(1, math.ceil(bundle.counts["train"] / cfg.batch_size))
    log.info("data: %s", bundle.description)
    _log_audit(cfg, kind, image_shape)
    with dist.strategy.scope():
        model = create(cfg, image_shape, bundle.num_classes, bundle.model_args)
    outputs = list(model.output_names)
    train, val = bundle.train, bundle.val
    if len(outputs) > 1:  # auxiliary classifiers learn the same labels
        train, val = (d.map(lambda x, y: (x, {o: y for o in outputs})) if d is not None else None
                      for d in (train, val))
    monitor_acc = "val_predictions_accuracy" if len(outputs) > 1 else "val_accuracy"

    done, backup = 0, None
    if resume_dir is not None:
        done, backup = latest_backup(resume_dir / rd.BACKUP)
        if done >= total_epochs(cfg) and (resume_dir / rd.MODEL).exists():
            raise UserError(f"--resume {resume_dir}: this run already finished ({rd.MODEL} is there); "
                            f"pass --epochs N larger than {cfg.epochs} to train it further.")
    history = HistoryWriter(run / rd.HISTORY, HistoryWriter.read((shared or run) / rd.HISTORY, done))
    best = max((float(r[monitor_acc]) for r in history.rows if r.get(monitor_acc) not in (None, "")),
               default=-math.inf)  # resumed: best.keras holds the best epoch up to the backup's
    export = Exporter()
    checkpoints = Checkpoints(run / rd.BACKUP, run / rd.BEST, monitor_acc, export,
                              budget=dist.checkpoint_budget(cfg.checkpoint_budget), best=best)
    cbs = [checkpoints, history, keras.callbacks.TerminateOnNaN(), EpochTensorBoard(str(run / rd.TENSORBOARD))]
    groups = getattr(bundle, "type_groups", None)
    val_types = getattr(bundle, "question_types", {}).get("val")
    # One worker only: the others would each predict the whole split again, outside the strategy.
    if groups and val_types is not None and bundle.val is not None and len(outputs) == 1 and dist.num_workers == 1:
        cbs.insert(0, ValAccuracyByGroup(bundle.val, val_types, bundle.type_names, groups))  # before the loggers
    if cfg.precise_bn:  # first: the statistics are recomputed before anything reads the model
        if dist.num_replicas == 1:
            cbs.insert(0, PreciseBatchNorm(train, cfg.precise_bn))
        else:
            log.warning("--precise-bn works on one device only; this run keeps Keras's moving averages.")
    if bundle.streams and dist.num_workers == 1:  # with several workers each sees a shard only
        cbs.append(StreamedFailures(bundle.streams))
    if cfg.schedule == "plateau":
        cbs.append(keras.callbacks.ReduceLROnPlateau(factor=0.1, patience=cfg.plateau_patience, verbose=1))
    if cfg.early_stopping:
        # When it stops, the best epoch's weights come back, so model.keras is the model early
        # stopping chose (Kim's protocol), not one `patience` epochs past it.
        cbs.append(EarlyStop(monitor_acc if cfg.early_stopping_on == "val_accuracy" else "val_loss",
                             cfg.early_stopping))
    cbs.extend(extra_callbacks)

    data = _Data(dist.distribute(train), dist.distribute(val), bundle, steps_per_epoch,
                 class_weights(cfg, bundle, outputs))
    with warnings.catch_warnings():
        # A streamed split's length is unknown to Keras (a file may fail to decode), so every epoch
        # ends when the data does, which Keras 3 reports as "Your input ran out of data" each time.
        warnings.filterwarnings("ignore", message="Your input ran out of data", category=UserWarning)
        _train_phases(model, cfg, dist, data, (done, backup), cbs, history, verbose)
    kept = next((c.kept_epoch for c in cbs if isinstance(c, EarlyStop)), None)
    return _finish(model, export, run, shared, cfg, dist, bundle, history, steps_per_epoch, kept)


@dataclass
class _Data:
    train: object
    val: object
    bundle: object
    steps_per_epoch: int
    class_weight: Optional[dict]


def class_weights(cfg: TrainConfig, bundle, outputs: Sequence[str]) -> Optional[dict]:
    """{class index: weight} for --class-weight balanced (scikit-learn's rule), else None."""
    if cfg.class_weight == "none":
        return None
    if data_kind(input_kind(cfg.model)).labels == "sparse":
        raise UserError(f"--class-weight balanced weighs one label per example; --model {cfg.model}'s targets are a "
                        f"class per time step. Drop --class-weight.")
    if len(outputs) > 1:
        raise UserError("--class-weight balanced: Keras weighs classes for single-output models only; drop the "
                        "auxiliary classifiers (aux_logits=false) or the class weights.")
    from kerascnn.data.audit import balanced_class_weights

    if not bundle.class_counts:
        log.warning("--class-weight balanced: the class counts of --data %s are not known before reading it "
                    "(TFDS), so the classes are not weighted", cfg.data.spec)
        return None
    by_index = balanced_class_weights(dict(enumerate(bundle.class_counts)), digits=None)
    log.info("class weights (balanced): %s", ", ".join(f"{bundle.class_names[i]} {w:.2f}"
                                                        for i, w in by_index.items()))
    return by_index


def _train_phases(model, cfg: TrainConfig, dist, data: _Data, resume_state, cbs, history, verbose) -> None:
    """Train each phase of `cfg` (kerascnn.training.phases) that the resumed state has not finished.

    A backup taken in a phase is restored after the model is set up as in that phase (what trains and
    the phase's optimizer, whose state the backup holds); a phase's last epoch is always backed up,
    so a run resumed at the boundary starts phase 2 with a fresh optimizer, as an unbroken run does.
    """
    done, backup = resume_state
    phases = plan(cfg)
    steps_per_call = dist.steps_per_execution(cfg.steps_per_execution or 1)
    auto = cfg.steps_per_execution is None and dist.steps_per_execution(AUTO_MAX_STEPS) > 1
    cache = None
    for phase in phases:
        if done > phase.end:
            continue
        with dist.strategy.scope():
            compile_model(model, cfg, prepare(model, cfg, phase, data.steps_per_epoch), steps_per_call)
        if auto:
            _auto_steps(model, data.bundle.train, data.steps_per_epoch, total_epochs(cfg) - done)
            steps_per_call, auto = model.steps_per_execution, False
        if backup is not None and phase.start < done <= phase.end:
            with dist.strategy.scope():  # restoring builds the optimizer's variables: mirror them
                restore_backup(model, backup)
            log.info("resuming after epoch %d (phase %d of %d)", done, phase.number, len(phases))
        if done >= phase.end:
            continue
        history.phase = phase.number if len(phases) > 1 else None
        start = max(done, phase.start)
        fit_args = dict(epochs=phase.end, initial_epoch=start, verbose=verbose, shuffle=False,
                        class_weight=data.class_weight)
        eta = EtaReport(phase.end, start, data.steps_per_epoch)
        if phase.trains == "head" and cached_features_apply(cfg, model, dist):
            cache = cache or _feature_cache(model, cfg, data)
            head = compile_model(cache.head, cfg, model.optimizer, steps_per_call)
            head.fit(cache.dataset("train"), validation_data=cache.dataset("val"),
                     callbacks=[ForModel([eta, *cbs], model)], **fit_args)
        else:
            model.fit(data.train, validation_data=data.val, callbacks=[eta, *cbs], **fit_args)
        if history.rows and not math.isfinite(float(history.rows[-1].get("loss", 0.0))):
            break  # TerminateOnNaN stopped it: a later phase would start from broken weights


def cached_features_apply(cfg: TrainConfig, model: keras.Model, dist) -> bool:
    """Whether a head-only phase trains on cached backbone features: asked for (auto), no augmentation
    that changes the pixels, one worker (a cache is per process), and a head that splits off."""
    return (cfg.finetune.feature_cache == "auto" and not cfg.augment.enabled and dist.num_workers == 1
            and split_head(model) is not None)


def _feature_cache(model: keras.Model, cfg: TrainConfig, data: _Data) -> FeatureCache:
    cache = FeatureCache(model, data.bundle.train, data.bundle.val, data.bundle.counts, cfg.batch_size, cfg.seed)
    log.info("phase 1 trains the head on the frozen backbone's features, computed once "
             "(--feature-cache off runs the backbone every epoch)")
    return cache


def _finish(model, export: Exporter, run: Path, shared, cfg: TrainConfig, dist, bundle, history,
            steps_per_epoch: int, kept_epoch: Optional[int] = None) -> FitResult:
    """Export the trained model (model.keras, classes, curves) and hand back the result."""
    exported = export(model)
    for m in (model, exported):
        # Several steps per call are for training; Keras's predict then drops a last partial batch
        # (40 images gave 32 rows), so the models handed back predict one batch per call.
        m.steps_per_execution, m.predict_function = 1, None
    if dist.chief:
        rd.atomic_save(run / rd.MODEL, lambda p: exported.save(p))
        rd.write_classes(run, bundle.class_names)
        plot_curves(history.rows, run / rd.CURVES, title=f"{cfg.model} on {cfg.data.spec}", kept_epoch=kept_epoch)
    else:
        shutil.rmtree(run, ignore_errors=True)
        run = shared or (Path(cfg.out) if cfg.out else run)
    return FitResult(run, exported, history.rows, bundle.class_names, steps_per_epoch, model, bundle.val, dist.chief,
                     kept_epoch)

