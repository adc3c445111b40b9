"""Settings: a few frozen dataclasses, the one override path, and the checks, in one place.

Standard library only (the bottom of the dependency graph). Each field is declared with `setting()`,
which holds its default, help text, allowed choices or range, and whether a model's recipe may set
it: the CLI builds its options and help from these, `check` validates any config against them
before work starts, and `kerascnn.settings` resolves the layers (defaults, the model's recipe, an
app's defaults, a config file, flags or keyword arguments) through `override` and records where
each value came from. The resolved config is written into the run folder as JSON so that
`kerascnn fit --resume RUN_DIR` rebuilds exactly the same run.
"""
from __future__ import annotations

import dataclasses
import json
import numbers
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, Optional, Tuple

from kerascnn.errors import SettingError
from kerascnn.recipes import RECIPES


def setting(default: Any = None, help: str = "", *, choices: Optional[Tuple[Any, ...]] = None,
            lo: Optional[float] = None, hi: Optional[float] = None, lo_open: bool = False,
            recipe: bool = False, factory: Any = None) -> Any:
    """A config field with what the rest of the package needs to know about it, in one place: its
    default, help text, allowed choices or range (checked by `check` before any work starts) and
    whether a model's recipe may set it (help texts then say "the model's recipe, else DEFAULT")."""
    meta = {"help": help, "choices": choices, "lo": lo, "hi": hi, "lo_open": lo_open, "recipe": recipe}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentation (applied to the training split only)."""

    hflip: bool = setting(False, "Augment: random left-right flips (wrong for digits, right for photos).")
    vflip: bool = setting(False, "Augment: random up-down flips (aerial or microscopy images).")
    crop: float = setting(0.0, "Augment: random crop losing up to this fraction of each side, resized back.",
                          lo=0.0, hi=0.9)
    translate: float = setting(0.0, "Augment: random shift up to this fraction of the size, zero-padded.",
                               lo=0.0, hi=0.5)
    pca_jitter: float = setting(0.0, "Augment: AlexNet's PCA colour jitter, std of the eigen-coefficients "
                                     "(paper: 0.1).", lo=0.0, hi=1.0)

    @property
    def enabled(self) -> bool:
        return bool(self.hflip or self.vflip or self.crop or self.translate or self.pca_jitter)


CACHE_MODES = ("auto", "memory", "none")
DATA_SPECS_HELP = ("digits (embedded) | mnist | fashion_mnist | cifar10 | cifar100 | tfds:NAME[:SPLIT] | "
                   "idx:DIR | a folder of class sub-folders | texts: tsv:FILE | csv:FILE | imdb | a folder of "
                   ".txt class folders | image + question: sort_of_clevr[:N] | easy_vqa | vqa:DIR | clevr:DIR | "
                   "audio: notes[:SOUNDFONT[:KEY=VALUE...]] | audio:DIR | a folder of audio class folders")


@dataclass(frozen=True)
class DataConfig:
    """What to read and how to split it."""

    spec: str = setting("digits", DATA_SPECS_HELP + ".")
    data_dir: Optional[str] = setting(None, "A prepared local TFDS directory (tfds: specs) or Keras cache folder.")
    val_split: float = setting(0.1, "Held-out fraction of the training data when the source has no validation "
                                    "split.", lo=0.0, hi=0.9)
    seed: int = setting(1337, "Seeds the split and the shuffles, so runs are repeatable.")
    # K-fold cross-validation (Kim 2014's protocol for data without a test split): the test split
    # becomes one fold of a seeded stratified K-fold over the training data (kerascnn.data.build).
    folds: int = setting(0, "Cross-validation for data without a test split: the test split is fold --fold of "
                            "this many seeded stratified folds of the training data, the rest trains (--val-split "
                            "then holds out of that); 0: none.", lo=0)
    fold: int = setting(0, "With --folds K: which fold (0 to K-1) is the test split.", lo=0)
    cache: str = setting("auto", "Decoded images in memory: auto (when the split fits), memory, none.",
                         choices=CACHE_MODES)
    max_decoded_bytes: int = setting(2 << 30, "The auto cache's limit in bytes.", lo=0)
    text_column: Optional[str] = setting(None, "tsv:/csv: data: the column holding the texts, a 1-based number (as "
                                               "in cut -f) or a header name; unset: the last column.")
    label_column: Optional[str] = setting(None, "tsv:/csv: data: the column holding the labels, a 1-based number "
                                                "or a header name; unset: the column before the text column (the "
                                                "one after it when the text comes first).")
    label_threshold: Optional[float] = setting(None, "tsv:/csv: data: the label column holds numeric ratings; "
                                                     "below this value is class negative, above it positive, equal "
                                                     "left out. Unset: the label values are the class names.")


OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adadelta")
# Adadelta: 1.0, Zeiler's update without a rate (Kim 2014); Keras's own default 1e-3 barely moves.
OPTIMIZER_DEFAULT_LR = {"sgd": 0.01, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3, "adadelta": 1.0}
# An unset weight decay: AdamW's is 1e-4 (its decay is what makes it AdamW), the others' none.
OPTIMIZER_DEFAULT_WEIGHT_DECAY = {"adamw": 1e-4}
SCHEDULES = ("constant", "step", "multistep", "exponential", "plateau", "cosine")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
FREEZE = ("none", "backbone")
CLASS_WEIGHTS = ("none", "balanced")
# What early stopping watches. val_accuracy is Kim's "early stopping on dev sets": with Adadelta at
# 1.0 the dev loss of his sentence CNN rises from epoch 2 while the accuracy still climbs for ~10.
EARLY_STOPPING_ON = ("val_loss", "val_accuracy")
STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")
FEATURE_CACHE = ("auto", "off")


@dataclass(frozen=True)
class FinetuneConfig:
    """Transfer learning (`kerascnn finetune` sets these): a new head, then two phases.

    Phase 1 trains the head on the frozen backbone (on cached features when the pixels are not
    augmented), phase 2 unfreezes the top of the backbone at a lower rate with BatchNorm kept in
    inference mode: the recipe of keras-io's transfer-learning guide and fastai's fine_tune. The
    flags and keywords keep their flat names (--head-epochs, `head_epochs=`); run folders from
    before this group keep them flat in config.json (`train_config_from_dict` folds them in).
    """

    head_dropout: Optional[float] = setting(None, "A new classifier head: global average pooling, dropout of this "
                                                  "rate, a dense layer for the data's classes; unset: the model's "
                                                  "own classifier (a .keras --model always gets a new head).",
                                            lo=0.0, hi=0.9)
    head_at: Optional[str] = setting(None, "A .keras --model's layer whose output feeds the new head (e.g. flatten: "
                                           "below its fully connected layers); unset: the input of its logits.")
    head_epochs: int = setting(0, "Phase 1: epochs training only the head, on the frozen backbone, before --epochs "
                                  "more with the --unfreeze layers (phase 2); 0: one phase, as --freeze says.", lo=0)
    unfreeze: str = setting("all", "Phase 2: what trains besides the head: all | K (the backbone's top K blocks) "
                                   "| from:LAYER (that layer's block and all above). BatchNorm layers stay frozen, "
                                   "in inference mode.")
    finetune_lr: Optional[float] = setting(None, "Phase 2's learning rate (the top); unset: --lr / 10.", lo=0.0,
                                           lo_open=True)
    lr_decay: float = setting(1.0, "Phase 2: discriminative learning rates, each block down from the head at this "
                                   "factor of the one above (fastai's slice; e.g. 0.5); 1: one rate.", lo=0.0,
                              hi=1.0, lo_open=True)
    feature_cache: str = setting("auto", "Phase 1 (or --freeze backbone) without pixel augmentation: auto computes "
                                         "the frozen backbone's features once and trains the head on them; off "
                                         "runs the backbone every epoch.", choices=FEATURE_CACHE)


def _per_optimizer(defaults: Dict[str, float]) -> str:
    """{"sgd": 0.01, "adam": 1e-3, ...} -> "sgd 0.01, adam 0.001, ..." (for help texts)."""
    return ", ".join(f"{name} {value:g}" for name, value in defaults.items())


@dataclass(frozen=True)
class TrainConfig:
    """The training harness: optimizer, schedule, regularisation, run bookkeeping."""

    model: str = setting("lenet5", "A registered model (see `kerascnn models`), or a .keras file whose backbone "
                                   "gets a new head (a model trained with `kerascnn fit`, say).")
    recipe: Optional[str] = setting(None, "A paper's training recipe, as a layer of settings under the flags "
                                          "(see `kerascnn recipes`).", choices=tuple(RECIPES))
    model_args: Dict[str, Any] = setting(help="Extra builder arguments, e.g. lrn=true, batch_norm=true, "
                                              "aux_logits=true, filters=128.", factory=dict)
    input_shape: Optional[Tuple[int, int, int]] = setting(None, "Input (height, width, channels); unset: the "
                                                                "model's own.")
    weights: Optional[str] = setting(None, "Start from pretrained weights: none, imagenet, or a .weights.h5 / "
                                           ".keras file.", recipe=True)
    embeddings: Optional[str] = setting(None, "Pretrained word vectors for a text model (kim_cnn): a GloVe .txt, "
                                              "word2vec .bin or .npy (+ word list) file, or a name such as "
                                              "glove.6B.300d (downloaded when online).")
    epochs: int = setting(30, "Epochs to train (with --head-epochs: phase 2's, after the head's).", lo=1,
                          recipe=True)
    batch_size: int = setting(128, "Global batch size (over all devices).", lo=1, recipe=True)
    optimizer: str = setting("adam", "sgd (momentum, Nesterov) | adam | adamw | rmsprop | adadelta.",
                             choices=OPTIMIZERS, recipe=True)
    lr: Optional[float] = setting(None, f"Peak learning rate; unset: the optimizer's "
                                        f"({_per_optimizer(OPTIMIZER_DEFAULT_LR)}).", lo=0.0, lo_open=True,
                                  recipe=True)
    momentum: float = setting(0.9, "SGD momentum (Nesterov).", lo=0.0, hi=0.999, recipe=True)
    rho: float = setting(0.9, "RMSProp's and Adadelta's decay of the squared-gradient average.", lo=0.0, hi=0.999,
                         recipe=True)
    epsilon: Optional[float] = setting(None, "The optimizer's epsilon (Adam, RMSProp, Adadelta); unset: Keras's "
                                             "1e-7. Inception v3: 1.0.", lo=0.0, lo_open=True, recipe=True)
    clip_norm: Optional[float] = setting(None, "Clip the gradients' global norm to this; unset: no clipping.",
                                         lo=0.0, lo_open=True, recipe=True)
    weight_decay: Optional[float] = setting(None, f"Decoupled weight decay (AlexNet/VGG: 5e-4); 0: none; unset: "
                                                  f"{_per_optimizer(OPTIMIZER_DEFAULT_WEIGHT_DECAY)}, others none.",
                                            lo=0.0, recipe=True)
    schedule: str = setting("cosine", "Learning-rate schedule: step = /10 every step_epochs; multistep = /10 at "
                                      "the milestones; exponential = x decay_rate every decay_epochs; plateau = "
                                      "/10 when val loss stalls; cosine.", choices=SCHEDULES, recipe=True)
    warmup_epochs: float = setting(0.0, "Linear warm-up from 0 to the schedule's learning rate over these epochs "
                                        "(every schedule but plateau).", lo=0.0, recipe=True)
    step_epochs: int = setting(30, "Epochs between /10 drops (step schedule).", lo=1, recipe=True)
    milestones: Tuple[float, ...] = setting((0.5, 0.75), "Multistep schedule: the fractions of training after "
                                                         "which the learning rate drops /10.", recipe=True)
    decay_rate: float = setting(0.94, "Exponential schedule: the learning rate's factor every decay_epochs.",
                                lo=0.0, hi=1.0, lo_open=True, recipe=True)
    decay_epochs: float = setting(2.0, "Exponential schedule: epochs between decays.", lo=0.0, lo_open=True,
                                  recipe=True)
    label_smoothing: float = setting(0.0, "Label smoothing of the cross-entropy.", lo=0.0, hi=0.5, recipe=True)
    freeze: str = setting("none", "backbone: train only the classifier on pretrained features.", choices=FREEZE,
                          recipe=True)
    finetune: FinetuneConfig = setting(help="Transfer learning (kerascnn finetune): the new head, the two phases.",
                                       factory=FinetuneConfig)
    class_weight: str = setting("none", "balanced: weigh each class's loss by n / (classes x its count), "
                                        "scikit-learn's rule, for imbalanced data.", choices=CLASS_WEIGHTS)
    aux_weight: float = setting(0.3, "Loss weight of auxiliary classifiers (GoogLeNet, Inception v3 with "
                                     "aux_logits=true).", lo=0.0, recipe=True)
    plateau_patience: int = setting(5, "Plateau schedule: epochs without val-loss progress before LR / 10.",
                                    lo=1, recipe=True)
    early_stopping: int = setting(0, "Stop after this many epochs without progress on --early-stopping-on, then go "
                                     "back to the best epoch's weights; 0 = off.", lo=0, recipe=True)
    early_stopping_on: str = setting("val_loss", "What early stopping watches: the validation loss or accuracy.",
                                     choices=EARLY_STOPPING_ON, recipe=True)
    precise_bn: int = setting(0, "Before each validation, set the BatchNorm statistics to the mean over this "
                                 "many training batches, the weights as they are (PreciseBN); 0: Keras's moving "
                                 "averages.", lo=0, recipe=True)
    # auto: mixed_bfloat16 where the hardware computes bfloat16 natively (AVX512-BF16/AMX CPUs,
    # GPUs of compute capability 8+), float32 elsewhere; see distribute.resolve_precision.
    precision: str = setting("auto", "Training arithmetic; auto = mixed_bfloat16 where the hardware computes "
                                     "bfloat16 natively (AVX512-BF16/AMX CPUs, GPUs of compute capability 8+), "
                                     "else float32. The saved model is float32 either way.", choices=PRECISIONS)
    strategy: str = setting("auto", "tf.distribute strategy; auto picks from the machine (TF_CONFIG, GPUs).",
                            choices=STRATEGIES)
    # Training steps per compiled call: the per-step Python work (callbacks, logs) is paid once per
    # call; small networks gain ~20% on a CPU from 8 (bench/RESULTS.md). But progress shows only once
    # per call, so unset (auto) measures a forward pass first: 8 for fast steps, down to 1 where a
    # step takes long (Inception v3 at 299 on a CPU), so the first update comes within seconds.
    steps_per_execution: Optional[int] = setting(None, "Training steps per compiled call; unset: auto, as many "
                                                       "(up to 8) as take about half a second, measured before "
                                                       "training (1 under mirrored/multiworker).", lo=1)
    # The most of the training time that the checkpoints (backup/ for --resume, best.keras) may
    # take: with short epochs they are written every few epochs instead of every epoch (always after
    # the first two and the last). 0: every epoch. See training/callbacks.Checkpoints.
    checkpoint_budget: float = setting(0.01, "Most of the training time the checkpoints (backup for resume, "
                                             "best.keras) may take; with short epochs they are then written every "
                                             "few epochs, always after the first two and the last. 0 = every "
                                             "epoch.", lo=0.0, hi=1.0)
    seed: int = setting(1337, "Seeds initialisation, the data split and order, and augmentation.")
    out: Optional[str] = setting(None, "Run folder; unset: runs/<model>-<data>-<time>.")
    augment: AugmentConfig = setting(help="Training-time augmentation.", factory=AugmentConfig)
    data: DataConfig = setting(help="The data set and its split.", factory=DataConfig)


EVAL_SPLITS = ("train", "val", "test", "all")
# Test-time augmentation (kerascnn/inference/tta.py cuts the views) and export formats
# (kerascnn/inference/export.py): declared here, the bottom layer, for the settings and the CLI.
TTA_MODES = ("none", "flip", "10crop", "multiscale")
EXPORT_FORMATS = ("savedmodel", "tflite", "tflite-int8", "onnx")


# The tsv:/csv: column settings of a command that reads a trained model's data (evaluate, visualize
# ngrams): unset, they are the model's run's.
RUN_TABLE_HELP = {
    "text_column": "tsv:/csv: data: the text column (a 1-based number or a header name); unset: the run's, else "
                   "the last column.",
    "label_column": "tsv:/csv: data: the label column; unset: the run's, else the one next to the text column.",
    "label_threshold": "tsv:/csv: data: numeric ratings below this value are negative, above it positive; unset: "
                       "the run's.",
}


@dataclass(frozen=True)
class EvaluateConfig:
    """`kerascnn evaluate`: score saved models on a data set."""

    model: str = setting("", "A .keras model file.")
    data: Optional[str] = setting(None, "The data to score on: " + DATA_SPECS_HELP + "; unset: the data of the "
                                        "model's run (its config.json), else digits.")
    data_dir: Optional[str] = setting(None, "A prepared local TFDS directory (tfds: specs) or Keras cache folder.")
    split: Optional[str] = setting(None, "Which split: train | val | test | all; unset: on the model's own data, "
                                         "its test split, else the examples the run held out; on another folder, "
                                         "its test/, else val/, else all of it. ", choices=EVAL_SPLITS)
    batch_size: int = setting(128, "Images per batch.", lo=1)
    ignore_class_names: bool = setting(False, "Score even when the data's class names differ from the model's.")
    tta: str = setting("none", "Test-time augmentation, averaging each image's views: none | flip | 10crop (corners "
                               "and centre at the training scale, and mirrors: AlexNet) | multiscale (centre crops "
                               "at 3 scales, and mirrors).", choices=TTA_MODES)
    ensemble: Tuple[str, ...] = setting((), "More .keras models whose probabilities are averaged with the model's; "
                                            "each member's scores are reported too.")
    text_column: Optional[str] = setting(None, RUN_TABLE_HELP["text_column"])
    label_column: Optional[str] = setting(None, RUN_TABLE_HELP["label_column"])
    label_threshold: Optional[float] = setting(None, RUN_TABLE_HELP["label_threshold"])
    out: Optional[str] = setting(None, "Confusion-matrix PNG; unset: confusion.png beside the model.")


@dataclass(frozen=True)
class PredictConfig:
    """`kerascnn predict`: top-k classes for image files and folders."""

    model: str = setting("", "A .keras model file.")
    top_k: int = setting(5, "Classes to show per image.", lo=1)
    batch_size: int = setting(64, "Images per batch.", lo=1)


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


def fields_of(cfg_or_cls: Any, prefix: str = "") -> Iterator[Tuple[str, dataclasses.Field]]:
    """Every leaf field of a config (class or instance), with its dotted key ("data.spec")."""
    for f in dataclasses.fields(cfg_or_cls):
        nested = f.default_factory if f.default_factory is not dataclasses.MISSING else None
        if nested is not None and dataclasses.is_dataclass(nested):
            yield from fields_of(nested, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f


# Flat setting names (the CLI's flags and the Python API's keywords) that do not follow the rule
# "a nested field goes by its own name": `data` is the data spec, and `seed` seeds everything.
_ALIASES = {"TrainConfig": {"data": ("data.spec",), "seed": ("seed", "data.seed")}}


def setting_names(cls: Any) -> Dict[str, Tuple[str, ...]]:
    """Flat setting name -> the dotted keys it sets: `hflip` -> ("augment.hflip",), `data` -> ("data.spec",)."""
    cls = cls if isinstance(cls, type) else type(cls)
    aliases = _ALIASES.get(cls.__name__, {})
    taken = {key for keys in aliases.values() for key in keys}
    names: Dict[str, Tuple[str, ...]] = dict(aliases)
    for key, _ in fields_of(cls):
        if key in taken:
            continue
        short = key.rpartition(".")[2]
        if short in names:
            raise ValueError(f"{cls.__name__}: setting name {short!r} is ambiguous; add it to _ALIASES.")
        names[short] = (key,)
    return names


def name_of(cls: Any, key: str) -> str:
    """The flat setting name of a dotted key (for messages and flags): "data.spec" -> "data"."""
    for name, keys in setting_names(cls).items():
        if key in keys:
            return name
    return key


def get(cfg: Any, key: str) -> Any:
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


def check(cfg: Any) -> Any:
    """Check every value of `cfg` against its field's type, choices and range; returns `cfg`.

    Raises:
        SettingError: naming the setting (its flat name, e.g. "batch_size") and what it accepts.
    """
    for key, f in fields_of(cfg):
        value, meta, name = get(cfg, key), f.metadata, name_of(cfg, key)
        if value is None:
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        _check_type(name, value, default)
        choices = meta.get("choices")
        if choices and value not in choices:
            raise SettingError(name, f"{name} must be one of {', '.join(map(str, choices))}. Received: {value!r}")
        lo, hi = meta.get("lo"), meta.get("hi")
        if lo is not None and (value < lo or (meta.get("lo_open") and value == lo)):
            rel = ">" if meta.get("lo_open") else ">="
            raise SettingError(name, f"{name} must be {rel} {lo}. Received: {value!r}")
        if hi is not None and value > hi:
            raise SettingError(name, f"{name} must be <= {hi}. Received: {value!r}")
    return cfg


def _check_type(name: str, value: Any, default: Any) -> None:
    if default is None:
        return
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise SettingError(name, f"{name} must be a {type(default).__name__}. Received: {value!r}")


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def train_config_from_dict(d: dict) -> TrainConfig:
    """Inverse of `to_dict` for a TrainConfig read back from a run folder's config.json."""
    d = dict(d)
    d["augment"] = AugmentConfig(**d.get("augment", {}))
    d["data"] = DataConfig(**d.get("data", {}))
    # Runs from before the finetune group have its settings flat at the top: fold them in (a
    # nested value, should both be there, wins).
    moved = {f.name: d.pop(f.name) for f in dataclasses.fields(FinetuneConfig) if f.name in d}
    d["finetune"] = FinetuneConfig(**{**moved, **d.get("finetune", {})})
    if d.get("input_shape") is not None:
        d["input_shape"] = tuple(d["input_shape"])
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in d.items() if k in known})


def dumps(cfg: Any) -> str:
    return json.dumps(to_dict(cfg), indent=2, sort_keys=True)


__all__ = ["AugmentConfig", "CACHE_MODES", "CLASS_WEIGHTS", "DATA_SPECS_HELP", "DataConfig", "EVAL_SPLITS",
           "EXPORT_FORMATS", "EvaluateConfig", "FEATURE_CACHE", "FREEZE", "FinetuneConfig", "OPTIMIZERS",
           "OPTIMIZER_DEFAULT_LR", "OPTIMIZER_DEFAULT_WEIGHT_DECAY", "PRECISIONS", "PredictConfig",
           "SCHEDULES", "STRATEGIES", "TTA_MODES", "TrainConfig", "check", "dumps", "fields_of", "get",
           "name_of", "override", "setting", "setting_names", "to_dict", "train_config_from_dict"]
