"""Applying a saved model: `evaluate` it on a data spec, `predict` the classes of image files.

Models are loaded with Keras's safe_mode on (a .keras file can never run code here); kerascnn's
own layers are registered serializables, so no custom_objects are needed. A model from `kerascnn
fit` has its run's config.json and classes.json beside it: `evaluate` takes the run's data (and its
seeded held-out split) as the default, and refuses data whose class names differ from the model's.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from kerascnn.config import EVAL_SPLITS, DataConfig, TrainConfig, override
from kerascnn.data.build import default_eval_split, resolve_splits
from kerascnn.data.kinds import check_data_for, data_kind
from kerascnn.data.folders import summarize_skipped
from kerascnn.data.specs import same_spec
from kerascnn.errors import SettingError, UserError
from kerascnn.runtime.plots import plot_confusion
from kerascnn.runtime import run_dir as rd
from kerascnn.data.by_type import breakdown
from kerascnn.inference.tta import TTA_MODES, base_shape, views
from kerascnn.models.loading import load_model, model_image_shape, model_input_shape
from kerascnn.models.refs import input_kind
from kerascnn.training.metrics import TOP_K, has_top5

log = logging.getLogger(__name__)


@dataclass
class EvalResult:
    loss: float
    top1: float
    top5: Optional[float]  # None with 5 classes or fewer, where top-5 is always 100% (training.metrics)
    count: int
    confusion: np.ndarray  # (true, predicted) counts
    class_names: List[str]
    confusion_png: Optional[Path]
    data: str = ""  # the data spec scored
    split: str = ""  # which of its splits: "test", "val", "train" or "all"
    tta: str = "none"  # the test-time augmentation (kerascnn.inference.tta)
    # With an ensemble, each member alone: {"model", "loss", "top1", "top5"}; the fields above are
    # then the ensemble's (the average of the members' probabilities).
    members: List[dict] = field(default_factory=list)
    # Data whose examples have types (image+question: the question templates): top-1 per type
    # {"type", "examples", "correct", "accuracy"} and per group of types (kerascnn.data.by_type).
    by_type: List[dict] = field(default_factory=list)
    by_group: List[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        out = {"data": self.data, "split": self.split, "tta": self.tta, "examples": self.count, "loss": self.loss,
               "top1": self.top1, "top5": self.top5, "members": self.members, "class_names": self.class_names,
               "confusion": self.confusion.tolist(),
               "confusion_png": str(self.confusion_png) if self.confusion_png else None}
        if self.by_type:
            out.update(by_type=self.by_type, by_group=self.by_group)
        return out


def evaluate(model_path: os.PathLike, data: Optional[str] = None, *, data_dir: Optional[str] = None,
             split: Optional[str] = None, batch_size: int = 128, out: Optional[os.PathLike] = None,
             plot: bool = True, ignore_class_names: bool = False, tta: str = "none",
             ensemble: Sequence[os.PathLike] = (), text_column: Optional[str] = None,
             label_column: Optional[str] = None, label_threshold: Optional[float] = None) -> EvalResult:
    """Loss, top-1, top-5 (None for 5 classes or fewer) and a confusion matrix of a saved model on
    one split of a data spec.

    Args:
        model_path: a .keras file; the run's config.json and classes.json beside it are used if there.
        data: a data spec (see `kerascnn.data.SPECS`); None: the data the model's run trained on
            (its config.json), else digits.
        data_dir: a prepared TFDS directory or Keras cache folder; None: the run's.
        split: "train", "val", "test" or "all" (every example, nothing held out). None: the
            examples the model never trained on. On the run's own data that is its test split, else
            its validation split (a folder's val/, or the one `fit` held out, same seed and
            fraction); an image folder it did not train on is the user's test set: its test/, else
            val/, else all of it; digits, keras.datasets, IDX and TFDS: test, else held-out val.
        batch_size: images per batch.
        out: the confusion-matrix PNG; None: confusion.png beside the model.
        plot: write the PNG.
        ignore_class_names: score even when the data's class names differ from the model's.
        tta: test-time augmentation, averaging the probabilities of several views of each image:
            none, flip, 10crop or multiscale (see kerascnn.inference.tta).
        ensemble: more .keras models (same input size and classes) whose probabilities are averaged
            with this one's; the result is the ensemble's, and `members` holds each model alone.
        text_column, label_column, label_threshold: for tsv:/csv: data, as for `fit`; None: the
            run's (another file of the same layout needs none).

    Raises:
        SettingError: `split` is not one of EVAL_SPLITS or the data has no such split ("split");
            the data's classes differ from the model's, in number or, unless `ignore_class_names`,
            in name ("data").
        UserError: the model cannot be loaded, the data cannot be read.
    """
    if split is not None and split not in EVAL_SPLITS:
        raise SettingError("split", f"split must be one of {', '.join(EVAL_SPLITS)}. Received: {split!r}")
    if tta not in TTA_MODES:
        raise SettingError("tta", f"tta must be one of {', '.join(TTA_MODES)}. Received: {tta!r}")
    model = load_model(model_path)
    members = [(Path(model_path), model)] + [(Path(p), load_model(p)) for p in ensemble]
    run_cfg = _run_config(model_path)
    cfg = override(run_cfg.data if run_cfg is not None else DataConfig(), spec=data, data_dir=data_dir,
                   text_column=text_column, label_column=label_column, label_threshold=label_threshold)
    kind = _data_kind(model_path, cfg.spec, tta)
    trained_on = run_cfg is not None and same_spec(cfg.spec, run_cfg.data.spec)
    source = kind.open_source(cfg)
    if kind.labels == "sparse":  # a class per time step (audio's next sample): no classes to check or confuse
        return _evaluate_steps(members, kind, cfg, source, split or default_eval_split(source, trained_on), batch_size)
    names = check_class_names(model, model_path, source.class_names, cfg.spec, ignore_class_names)
    shape = model_image_shape(model) if kind.name == "image" else model_input_shape(model)
    _check_members(members, shape, source.class_names, cfg.spec, ignore_class_names)
    name = split or default_eval_split(source, trained_on)
    available = sorted(set(resolve_splits(source, cfg)) | {"all"})
    if split is not None and split not in available:
        raise SettingError("split", f"{cfg.spec} has no {name} split; it has {', '.join(available)}.")
    bundle = kind.build(cfg, base_shape(tta, shape) if kind.tta else shape, batch_size, splits=(name,),
                        source=source)
    scored = bundle.eval_split if name == "eval" else name

    tallies = _score([m for _, m in members], getattr(bundle, name), len(names), tta,
                     shape[:2] if kind.tta else None)
    scores = [t.result() for t in tallies]
    cm, loss, top1, top5 = scores[-1]
    types = breakdown(bundle, name, tallies[-1].correct()) or {}
    member_scores = [{"model": str(path), "loss": s[1], "top1": s[2], "top5": s[3]}
                     for (path, _), s in zip(members, scores)] if len(members) > 1 else []
    for tracker in bundle.streams.values():  # streamed: files that failed to decode are not scored
        failed = tracker.new_failures()
        if failed:
            log.warning(summarize_skipped(failed, what="files that failed to decode"))
    count = int(cm.sum())
    if count == 0:
        raise UserError(f"{cfg.spec}: the {scored} split is empty.")
    png = None
    if plot:
        png = Path(out) if out else Path(model_path).parent / "confusion.png"
        _plot(png, cm, names, members, cfg.spec, scored, tta, top1, "images" if kind.pictures else "examples")
    return EvalResult(loss, top1, top5, count, cm, list(names), png, cfg.spec, scored, tta, member_scores,
                      types.get("by_type", []), types.get("by_group", []))


def _check_members(members, shape, class_names, spec: str, ignore_class_names: bool) -> None:
    """An ensemble's other members have the first one's classes and input."""
    first = members[0][0]
    for path, member in members[1:]:
        check_class_names(member, path, class_names, spec, ignore_class_names)
        if model_input_shape(member) != shape:
            raise SettingError("ensemble", f"{path} takes {model_input_shape(member)} inputs, {first} "
                                           f"{shape}; an ensemble's members must take the same input.")


def _plot(png: Path, cm: np.ndarray, names, members, spec: str, scored: str, tta: str, top1: float,
          what: str) -> None:
    """The confusion-matrix PNG, titled with the model (or ensemble), the data and the split."""
    png.parent.mkdir(parents=True, exist_ok=True)
    first = members[0][0]
    model_name = first.parent.name + "/" + first.name
    if len(members) > 1:
        model_name = f"ensemble of {len(members)} ({model_name}, ...)"
    count = int(cm.sum())
    split = f"all {count:,} {what}" if scored == "all" else f"{scored} split, {count:,} {what}"
    how = f", {tta} TTA" if tta != "none" else ""
    plot_confusion(cm, names, png, title=f"{model_name} on {spec}\n{split}{how}: top-1 {top1:.2%}")


def _evaluate_steps(members, kind, cfg, source, name: str, batch_size: int) -> EvalResult:
    """evaluate() for models with a class per time step (DataKind.labels "sparse"): the mean loss,
    top-1 and top-5 over every step of the split (its crops at fixed starts); no confusion matrix."""
    if len(members) > 1:
        raise SettingError("ensemble", f"{kind.name} models are scored one at a time.")
    available = sorted(set(resolve_splits(source, cfg)) | {"all"})
    if name not in available and name != "eval":
        raise SettingError("split", f"{cfg.spec} has no {name} split; it has {', '.join(available)}.")
    bundle = kind.build(cfg, (), batch_size, splits=(name,), source=source)
    model = members[0][1]
    loss = hits = top5 = steps = 0.0
    for x, y in getattr(bundle, name):
        p = np.asarray(model.predict_on_batch(x), np.float64).reshape(-1, int(model.outputs[0].shape[-1]))
        y = np.asarray(y).reshape(-1).astype(np.int64)
        loss += float(np.sum(-np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1.0))))
        hits += int((np.argmax(p, axis=-1) == y).sum())
        top5 += int((np.argsort(-p, axis=-1)[:, :TOP_K] == y[:, None]).any(axis=-1).sum())
        steps += len(y)
    if not steps:
        raise UserError(f"{cfg.spec}: the {name} split is empty.")
    n = int(steps)
    return EvalResult(loss / n, hits / n, top5 / n, n, np.zeros((0, 0), np.int64), [], None, cfg.spec,
                      bundle.eval_split if name == "eval" else name, "none", [])


def _data_kind(model_path: os.PathLike, spec: str, tta: str):
    """The data steps of what the model takes; SettingError for data of another kind, or TTA views
    (an image step) on a model of another kind of input."""
    kind = check_data_for(str(model_path), input_kind(str(model_path)), spec)
    if tta != "none" and not kind.tta:
        raise SettingError("tta", f"test-time augmentation views are for images; {model_path} takes "
                                  f"{kind.name} inputs (use tta='none').")
    return kind


def _score(models, dataset, num_classes: int, tta: str = "none", input_hw=None) -> List["_Tally"]:
    """The tally (`.result()`: confusion matrix, mean loss, top-1, top-5 or None) of each model and,
    last, of their average (the ensemble; the one model itself when alone), over the (inputs,
    one-hot) batches. Each model's probabilities are the mean over the `tta` views of each image."""
    tallies = [_Tally(num_classes) for _ in range(len(models) + (len(models) > 1))]
    for x, y in dataset:
        batch_views = views(x, tta, input_hw) if input_hw is not None else [x]
        y = np.argmax(np.asarray(y), axis=-1)
        probs = [np.mean([np.asarray(m.predict_on_batch(v), dtype=np.float64) for v in batch_views], axis=0)
                 for m in models]
        if len(models) > 1:
            probs.append(np.mean(probs, axis=0))
        for tally, p in zip(tallies, probs):
            tally.add(p, y)
    return tallies


class _Tally:
    """Running confusion matrix, summed loss and top-5 hits (past 5 classes only)."""

    def __init__(self, num_classes: int):
        self.cm = np.zeros((num_classes, num_classes), dtype=np.int64)
        self.loss_sum, self.top5_hits, self.top5 = 0.0, 0, has_top5(num_classes)
        self._correct: List[np.ndarray] = []  # top-1 right or wrong, example by example

    def add(self, p: np.ndarray, y: np.ndarray) -> None:
        from sklearn.metrics import confusion_matrix, top_k_accuracy_score

        labels = np.arange(len(self.cm))
        # Cross-entropy as Keras computes it (probabilities clipped to [1e-7, 1]), summed per batch.
        self.loss_sum += float(np.sum(-np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1.0))))
        if self.top5:
            self.top5_hits += int(top_k_accuracy_score(y, p, k=TOP_K, labels=labels, normalize=False))
        self.cm += confusion_matrix(y, np.argmax(p, axis=-1), labels=labels)
        self._correct.append(np.argmax(p, axis=-1) == y)

    def correct(self) -> np.ndarray:
        """Whether each example scored so far was right (top-1), in the order scored."""
        return np.concatenate(self._correct) if self._correct else np.zeros((0,), bool)

    def result(self) -> tuple:
        n = max(int(self.cm.sum()), 1)
        return self.cm, self.loss_sum / n, float(np.trace(self.cm)) / n, self.top5_hits / n if self.top5 else None


def check_class_names(model, model_path: os.PathLike, data_names: Sequence[str], spec: str,
                      ignore_class_names: bool = False) -> List[str]:
    """The class names to report: the model's (classes.json beside it), else the data's.

    Labels are indices: scoring a model on data whose classes are other things, or the same
    names in another order, gives a meaningless figure under the wrong names. So different names
    are refused unless `ignore_class_names`; a different number of classes always is.
    """
    model_names = rd.read_classes(model_path)
    n_out = model.output_shape[-1]
    if len(data_names) != n_out:
        raise SettingError("data", f"{spec} has {len(data_names)} classes but the model predicts {n_out}.")
    if model_names is None or ignore_class_names:
        return list(model_names or data_names)
    if list(model_names) != list(data_names):
        order = " (the same names in another order)" if sorted(model_names) == sorted(data_names) else ""
        raise SettingError("data", f"{spec} has classes {_shorten(data_names)} but the model was trained on "
                                   f"{_shorten(model_names)} ({Path(model_path).parent / rd.CLASSES}){order}; "
                                   f"score it on data with its classes, or pass ignore_class_names=True (--ignore-class-names) to score it anyway.")
    return list(model_names)


def _shorten(names: Sequence[str], shown: int = 12) -> str:
    names = [str(n) for n in names]
    if len(names) <= shown + 1:
        return "[" + ", ".join(names) + "]"
    return "[" + ", ".join(names[:shown - 1]) + f", ... {names[-1]}] ({len(names)})"


def _run_config(model_path: os.PathLike) -> Optional[TrainConfig]:
    config = Path(model_path).parent / rd.CONFIG
    if config.is_file():
        try:
            return rd.read_config(config.parent)
        except UserError:
            return None
    return None


@dataclass
class Prediction:
    file: str
    top: List[Tuple[str, float]]  # (class name, probability), best first


def predict(model_path: os.PathLike, paths: Sequence[str] = (), *, texts: Sequence[str] = (), top_k: int = 5,
            batch_size: int = 64, classes: Optional[Sequence[str]] = None) -> Tuple[List[Prediction], list]:
    """Top-k classes for files and folders (images, or what the model's kind of input reads) and, for
    a text model, for `texts` given directly; returns (predictions, skipped files with reasons)."""
    model = load_model(model_path)
    kind = data_kind(input_kind(str(model_path)))
    if texts and kind.name != "text":
        raise SettingError("text", f"texts are inputs of text models; {model_path} takes {kind.name} inputs.")
    if not paths and not texts:
        raise SettingError("paths", "give the files to predict" + (" or --text" if kind.name == "text" else "") + ".")
    shape = model_image_shape(model) if kind.name == "image" else model_input_shape(model)
    images, files, skipped = kind.load_inputs(list(paths), shape) if paths else (np.zeros((0,), object), [], [])
    if texts:
        images = np.concatenate([np.asarray(images, dtype=object), np.asarray(list(texts), dtype=object)])
        files = list(files) + list(texts)
    if len(files) == 0:
        raise UserError(f"No readable {'images' if kind.name == 'image' else kind.name + ' inputs'} among the "
                        f"given paths" +
                        (f" (skipped {len(skipped)}: {skipped[0][0]}: {skipped[0][1]} ...)." if skipped else "."))
    names = list(classes or rd.read_classes(model_path) or [])
    probs = model.predict(images, batch_size=batch_size, verbose=0)
    k = min(top_k, probs.shape[-1])
    out = []
    for f, p in zip(files, probs):
        best = np.argsort(-p)[:k]
        out.append(Prediction(f, [(names[i] if i < len(names) else str(i), float(p[i])) for i in best]))
    return out, skipped
