"""Where training runs: the tf.distribute strategy, the batch and data split across replicas, and the
numeric precision policy.

`setup_distribution` is the one entry point every training command uses (`fit` today, `finetune`
and the apps tomorrow): it picks the strategy, works out the per-replica batch, decides how the
input is sharded across workers and which worker writes files, and logs all of it. The model,
optimizer and metrics are then created inside `dist.strategy.scope()` by the caller, and every
dataset goes through `dist.distribute(ds)` before `model.fit`.

Three rules make a run's result independent of how many devices it runs on:

* `--batch-size` is the GLOBAL batch: one optimizer step sees that many images whatever the number
  of replicas; each replica gets `batch_size / replicas` of them and Keras sums the gradients
  (every replica's loss is divided by the replica count, `keras.losses.scale_loss_for_distribution`).
* The learning rate is the rate FOR THE GLOBAL BATCH and is never scaled behind the user's back:
  the same config trains the same model on 1 GPU or 8 (tests/test_distribute.py checks this
  to 1e-5). To use more devices for a larger batch, raise `--batch-size` and `--lr` together
  (the linear scaling rule of Goyal et al. 2017, "Accurate, Large Minibatch SGD", with
  `--warmup-epochs` for large batches); `scaled_learning_rate` computes it.
* Every worker runs the same input pipeline (same seed, same shuffle order) and keeps its part of
  each global batch (auto-shard policy DATA, see `SHARD_POLICY`).

The precision policy is global in Keras, so it is set before any model is built and reset
afterwards by whoever set it.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from typing import Optional

import keras
import tensorflow as tf

from kerascnn.runtime.compat import multiworker_fixes
from kerascnn.config import PRECISIONS, STRATEGIES
from kerascnn.errors import UserError

log = logging.getLogger(__name__)

# Why DATA and never FILE/AUTO: FILE sharding hands whole input files to workers and only works when
# the pipeline starts from a file reader (TFRecordDataset ...) with at least as many files as workers.
# kerascnn's pipelines start from in-memory arrays (from_tensor_slices) or from a shuffled list of
# image paths decoded in a map, so there are no files to hand out; AUTO would try FILE, fail and
# fall back to DATA with a warning on every run. DATA makes each worker run the whole pipeline
# (same seed, so the same order) and keep every N-th element of each global batch: correct for any
# source, and free for in-memory data. The cost is decoding images the worker then drops, which
# matters only for folder-of-JPEG data on many workers (bench/RESULTS.md measures decode speed).
SHARD_POLICY = tf.data.experimental.AutoShardPolicy.DATA


@dataclass(frozen=True)
class Distribution:
    """The strategy and the facts derived from it, as `setup_distribution` resolved them."""

    strategy: tf.distribute.Strategy
    name: str  # the resolved strategy: default | mirrored | multiworker | tpu
    num_replicas: int  # devices that each run a copy of the model, over all workers
    num_workers: int  # processes (machines) in the cluster; 1 unless multiworker
    worker_index: int  # this process's index among the workers
    chief: bool  # this process writes the run folder
    global_batch: int  # images per optimizer step, all replicas together (= --batch-size)

    @property
    def per_replica_batch(self) -> int:
        return self.global_batch // self.num_replicas

    def distribute(self, dataset: Optional[tf.data.Dataset]) -> Optional[tf.data.Dataset]:
        """Attach the auto-shard policy; Keras's `fit` then splits each batch across replicas."""
        if dataset is None:
            return None
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = SHARD_POLICY
        return dataset.with_options(options)

    def steps_per_execution(self, requested: int) -> int:
        """The `steps_per_execution` to compile with: `requested`, or 1 under mirrored/multiworker.

        Keras 3.15's several-steps-per-call loop (a tf.while_loop around each step) fails under
        MirroredStrategy and MultiWorkerMirroredStrategy: "You must feed a value for placeholder
        tensor 'while/cond/Placeholder'" (a cross-replica merge inside the while loop; reproduced
        here with two logical CPUs). One step per call is always correct, and on several devices
        the per-call Python cost is small next to a step. TPUStrategy gets what was asked.
        """
        if self.name in ("mirrored", "multiworker") and requested > 1:
            log.info("steps_per_execution %d -> 1: Keras runs one step per call under the %s strategy",
                     requested, self.name)
            return 1
        return requested

    def checkpoint_budget(self, requested: float) -> float:
        """The checkpoint time budget to train with: `requested`, or 0 (every epoch) on several workers.

        Every worker runs the same save calls (a save reads synchronised variables, which joins a
        collective), so whether to save must not depend on each worker's own clock.
        """
        if self.num_workers > 1 and requested > 0:
            log.info("checkpoint budget %g -> 0: with %d workers the checkpoints are written every epoch",
                     requested, self.num_workers)
            return 0.0
        return requested

    def describe(self) -> str:
        return (f"strategy {self.name}: {self.num_replicas} replica(s) on {self.num_workers} worker(s) "
                f"(this is worker {self.worker_index}{', the chief' if self.chief else ''}); "
                f"global batch {self.global_batch} = {self.per_replica_batch} per replica; "
                f"input sharding {SHARD_POLICY.name}")


def setup_distribution(strategy: str, global_batch: int, learning_rate: Optional[float] = None) -> Distribution:
    """Make the strategy for `--strategy` and log how the batch, LR and data are split.

    Call it once per process, before building the model, and build the model, optimizer and metrics
    inside `dist.strategy.scope()`.

    Args:
        strategy: one of `kerascnn.config.STRATEGIES`.
        global_batch: the batch of one optimizer step over all replicas (`--batch-size`).
        learning_rate: the configured rate, only to log that it applies to the global batch.
    """
    if global_batch < 1:
        raise UserError(f"--batch-size must be positive. Received: {global_batch}")
    strat = make_strategy(strategy)
    resolver = getattr(strat, "cluster_resolver", None)
    multi = _tf_config_has_cluster() and resolver is not None and resolver.cluster_spec().as_dict()
    num_workers = sum(len(v) for k, v in multi.items() if k in ("chief", "worker")) if multi else 1
    dist = Distribution(
        strategy=strat,
        name=_resolved_name(strat),
        num_replicas=strat.num_replicas_in_sync,
        num_workers=num_workers,
        worker_index=_worker_index(resolver) if multi else 0,
        chief=is_chief(strat),
        global_batch=global_batch,
    )
    log.info(dist.describe())
    if global_batch % dist.num_replicas:
        log.warning("global batch %d is not a multiple of %d replicas: replicas get unequal batches; "
                    "pick a multiple for full speed.", global_batch, dist.num_replicas)
    if learning_rate is not None and dist.num_replicas > 1:
        log.info("learning rate %g is for the global batch of %d and is not scaled with the %d replicas "
                 "(raise --lr with --batch-size to scale: linear rule)", learning_rate, global_batch,
                 dist.num_replicas)
    return dist


def scaled_learning_rate(base_lr: float, base_batch: int, batch: int) -> float:
    """The linear scaling rule (Goyal et al. 2017): the LR grows with the batch, `base_lr` being
    right for `base_batch`. For moving a recipe to a bigger global batch on more devices."""
    return base_lr * batch / base_batch


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """`auto`: MultiWorkerMirrored when TF_CONFIG names a cluster, Mirrored when several GPUs are
    visible, else the default (one-device) strategy."""
    if name not in STRATEGIES:
        raise UserError(f"--strategy must be one of {', '.join(STRATEGIES)}. Received: {name!r}")
    if name == "auto":
        if _tf_config_has_cluster():
            name = "multiworker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        # All GPUs; without GPUs, all logical CPU devices. MirroredStrategy() alone would take only
        # /cpu:0 then, while the tests (and a laptop rehearsal of a GPU run) split the CPU into
        # several logical devices with tf.config.set_logical_device_configuration.
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multiworker":
        if not _tf_config_has_cluster():
            raise UserError("--strategy multiworker needs TF_CONFIG to describe the cluster "
                            '(e.g. {"cluster": {"worker": [...]}, "task": {"type": "worker", "index": 0}}).')
        # Keras 3's fit needs two fixes under this strategy (see kerascnn.runtime.compat.multiworker_fixes).
        return multiworker_fixes(tf.distribute.MultiWorkerMirroredStrategy())
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.NotFoundError) as e:
        raise UserError(f"--strategy tpu: no TPU found ({str(e).splitlines()[0]}). Run on a TPU VM.") from None
    return tf.distribute.TPUStrategy(resolver)


def _resolved_name(strategy: tf.distribute.Strategy) -> str:
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "multiworker"
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return "mirrored"
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "tpu"
    return "default"


def _tf_config_has_cluster() -> bool:
    try:
        return bool(json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster"))
    except json.JSONDecodeError:
        raise UserError("TF_CONFIG is not valid JSON; see docs/training.md, \"Scaling out\".") from None


def _worker_index(resolver) -> int:
    """Position of this task among chief + workers (the chief, if any, is 0)."""
    spec = resolver.cluster_spec().as_dict()
    has_chief = "chief" in spec
    if resolver.task_type == "chief":
        return 0
    return (resolver.task_id or 0) + (1 if has_chief else 0)


def set_precision(policy: str) -> str:
    """Set the global Keras dtype policy for `--precision` and return the one set (auto resolved).

    Classifier outputs stay float32 whatever the policy: builders give the final activation
    dtype="float32" (see kerascnn.models.common.classifier).
    """
    resolved = resolve_precision(policy)
    if resolved == "mixed_float16" and not tf.config.list_physical_devices("GPU"):
        log.warning("mixed_float16 on a CPU is emulated and slow; mixed_bfloat16 is the fast path on CPUs "
                    "with AVX512-BF16 or AMX.")
    keras.mixed_precision.set_global_policy(resolved)
    return resolved


@contextlib.contextmanager
def precision_scope(policy: str):
    """Build models under `policy` (auto resolved; yields the resolved name), then restore the global
    policy: Keras layers take the policy in force when they are built (apps' feature networks)."""
    previous = keras.mixed_precision.global_policy()
    try:
        yield set_precision(policy)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def resolve_precision(policy: str) -> str:
    """`auto` -> the fastest safe policy for this machine; any other name is checked and returned.

    bfloat16 keeps float32's exponent range, so mixed_bfloat16 needs no loss scaling and trains
    the zoo's networks to the same accuracy (bench/RESULTS.md); Keras keeps float32 master
    weights. It is only fast where the hardware has bfloat16 arithmetic: CPUs with AVX512-BF16 or
    AMX (ResNet-20 trains 1.5x faster than float32 on a 2-core AVX512-BF16 CPU) and GPUs of
    compute capability 8.0 and up. Everywhere else bfloat16 is emulated, so auto means float32.
    """
    if policy not in PRECISIONS:
        raise UserError(f"--precision must be one of {', '.join(PRECISIONS)}. Received: {policy!r}")
    if policy != "auto":
        return policy
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        ok = all(tf.config.experimental.get_device_details(g).get("compute_capability", (0, 0)) >= (8, 0)
                 for g in gpus)
        reason = "GPUs of compute capability 8+" if ok else "a GPU older than compute capability 8"
    else:
        flags = cpu_bfloat16_flags()
        ok = bool(flags)
        reason = f"CPU with {'/'.join(flags)}" if ok else "CPU without bfloat16 arithmetic"
    resolved = "mixed_bfloat16" if ok else "float32"
    log.info("precision auto -> %s (%s)", resolved, reason)
    return resolved


def cpu_bfloat16_flags(cpuinfo: str = "/proc/cpuinfo") -> list:
    """The CPU flags that give native bfloat16 arithmetic (Linux; empty elsewhere)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            line = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return []
    have = set(line.split(":", 1)[-1].split())
    return [flag for flag in ("avx512_bf16", "amx_bf16") if flag in have]


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Only the chief worker writes the run folder (the others write to throw-away folders)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not _tf_config_has_cluster():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type in (None, "chief") or (task_type == "worker" and task_id == 0 and
                                             "chief" not in resolver.cluster_spec().as_dict())


__all__ = ["Distribution", "SHARD_POLICY", "cpu_bfloat16_flags", "is_chief", "make_strategy", "precision_scope",
           "resolve_precision", "scaled_learning_rate", "set_precision", "setup_distribution"]
