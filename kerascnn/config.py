"""Run configuration: a few frozen dataclasses and one override path.

Standard library only (the bottom of the dependency graph). The CLI builds these from its flags with
`override`, the training harness reads them, and the resolved config is written into the run folder
as JSON so that `kerascnn fit --resume RUN_DIR` rebuilds exactly the same run.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentation (applied to the training split only)."""

    hflip: bool = False  # random left-right flip; wrong for digits, right for photos
    vflip: bool = False  # random up-down flip; aerial or microscopy images
    crop: float = 0.0  # random crop keeping this fraction of each side lost (0.1: crop 90%, resize back)
    translate: float = 0.0  # random shift, as a fraction of height/width, zero-padded
    pca_jitter: float = 0.0  # AlexNet's PCA colour jitter, std of the eigen-coefficients (paper: 0.1)

    @property
    def enabled(self) -> bool:
        return bool(self.hflip or self.vflip or self.crop or self.translate or self.pca_jitter)


@dataclass(frozen=True)
class DataConfig:
    """What to read and how to split it."""

    spec: str = "digits"  # digits | mnist | fashion_mnist | cifar10 | cifar100 | tfds:NAME[:SPLIT] | idx:DIR | PATH
    data_dir: Optional[str] = None  # a prepared local TFDS directory (tfds: specs) or keras cache dir
    val_split: float = 0.1  # held-out fraction of the training data when the source has no validation split
    seed: int = 1337  # seeds the split and the shuffles, so runs are repeatable
    cache: str = "auto"  # auto (memory when the decoded split fits), memory, none
    max_decoded_bytes: int = 2 << 30  # the "auto" cache limit


@dataclass(frozen=True)
class TrainConfig:
    """The training harness: optimizer, schedule, regularisation, run bookkeeping."""

    model: str = "lenet5"
    model_args: Dict[str, Any] = field(default_factory=dict)  # extra builder kwargs (lrn=True, k=128 ...)
    input_shape: Optional[Tuple[int, int, int]] = None  # None: the model's default input
    weights: Optional[str] = None  # None | imagenet | PATH to a .weights.h5 / .keras file
    epochs: int = 30
    batch_size: int = 128
    optimizer: str = "adam"  # sgd (momentum, nesterov) | adam | adamw
    lr: Optional[float] = None  # None: the optimizer preset's default
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.0  # decoupled weight decay (sgd, adamw); AlexNet/VGG used 5e-4
    schedule: str = "cosine"  # constant | step | plateau | cosine
    warmup_epochs: float = 0.0  # linear warm-up before the cosine schedule
    step_epochs: int = 30  # step schedule: divide the LR by 10 every this many epochs
    label_smoothing: float = 0.0
    freeze: str = "none"  # none | backbone (train only the classifier: a linear probe on pretrained features)
    aux_weight: float = 0.3  # loss weight of auxiliary classifiers (GoogLeNet, Inception v3)
    plateau_patience: int = 5  # plateau schedule: epochs without val-loss progress before LR / 10
    early_stopping: int = 0  # patience in epochs on val loss; 0 disables
    # auto: mixed_bfloat16 where the hardware computes bfloat16 natively (AVX512-BF16/AMX CPUs,
    # GPUs of compute capability 8+), float32 elsewhere; see distribute.resolve_precision.
    precision: str = "auto"  # auto | float32 | mixed_float16 | mixed_bfloat16
    strategy: str = "auto"  # auto | default | mirrored | multiworker | tpu
    # Training steps per compiled call: the per-step Python work (callbacks, logs) is paid once per 8
    # steps; small networks gain ~20% on a CPU (bench/RESULTS.md). Per-batch callbacks then run
    # every 8 steps; every step still runs. Mirrored/multiworker runs use 1 (see distribute.py).
    steps_per_execution: int = 8
    # The most of the training time that the checkpoints (backup/ for --resume, best.keras) may
    # take: with short epochs they are written every few epochs instead of every epoch (always after
    # the first two and the last). 0: every epoch. See training/callbacks.Checkpoints.
    checkpoint_budget: float = 0.01
    seed: int = 1337
    out: Optional[str] = None  # run folder; None: runs/<model>-<data>-<time>
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    data: DataConfig = field(default_factory=DataConfig)


OPTIMIZER_DEFAULT_LR = {"sgd": 0.01, "adam": 1e-3, "adamw": 1e-3}
SCHEDULES = ("constant", "step", "plateau", "cosine")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
FREEZE = ("none", "backbone")
STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")


def override(cfg: Any, **changes: Any) -> Any:
    """Return a copy of `cfg` with `changes` applied; `None` values mean "keep the default".

    Dotted keys reach nested configs: `override(train, **{"data.spec": "mnist"})`. This is the one
    override path: CLI flags, the Python API and resume all go through it.
    """
    flat, nested = {}, {}
    for key, value in changes.items():
        if value is None:
            continue
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            flat[key] = value
    names = {f.name for f in dataclasses.fields(cfg)}
    unknown = sorted((set(flat) | set(nested)) - names)
    if unknown:
        raise ValueError(f"Unknown config field(s) for {type(cfg).__name__}: {', '.join(unknown)}")
    for head, sub in nested.items():
        flat[head] = override(getattr(cfg, head), **sub)
    return dataclasses.replace(cfg, **flat)


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def train_config_from_dict(d: dict) -> TrainConfig:
    """Inverse of `to_dict` for a TrainConfig read back from a run folder's config.json."""
    d = dict(d)
    d["augment"] = AugmentConfig(**d.get("augment", {}))
    d["data"] = DataConfig(**d.get("data", {}))
    if d.get("input_shape") is not None:
        d["input_shape"] = tuple(d["input_shape"])
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in d.items() if k in known})


def dumps(cfg: Any) -> str:
    return json.dumps(to_dict(cfg), indent=2, sort_keys=True)
