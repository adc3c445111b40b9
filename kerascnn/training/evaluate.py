"""`evaluate` and `predict`: apply a saved model to a data spec or to image files.

Models are loaded with Keras's safe_mode on (a .keras file can never run code here); kerascnn's
own layers are registered serializables, so no custom_objects are needed.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from kerascnn.config import DataConfig, override
from kerascnn.data.folders import summarize_skipped
from kerascnn.errors import UserError
from kerascnn.training import run_dir as rd
from kerascnn.training.plots import plot_confusion

log = logging.getLogger(__name__)


def load_model(path: os.PathLike):
    """Load a `.keras` model safely (safe_mode=True), with a one-line error for bad files."""
    import keras

    import kerascnn.models  # noqa: F401  (registers kerascnn's serializable layers)

    path = Path(path)
    if not path.is_file():
        raise UserError(f"Model file {path} does not exist; pass a .keras file written by `kerascnn fit`.")
    if path.suffix != ".keras":
        raise UserError(f"{path}: expected a .keras model file (Keras 3 format).")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise UserError(f"Cannot load model {path}: {first}") from None


def model_image_shape(model) -> Tuple[int, int, int]:
    shape = tuple(model.input_shape[1:])
    if len(shape) != 3 or any(s is None for s in shape):
        raise UserError(f"Model {model.name} takes input {model.input_shape}; kerascnn needs a fixed H, W, C.")
    return shape


@dataclass
class EvalResult:
    loss: float
    top1: float
    top5: float
    count: int
    confusion: np.ndarray
    class_names: List[str]
    confusion_png: Optional[Path]


def evaluate(model_path: os.PathLike, data: Optional[str] = None, *, data_dir: Optional[str] = None,
             batch_size: int = 128, out: Optional[os.PathLike] = None, plot: bool = True) -> EvalResult:
    """Loss, top-1, top-5 and a confusion matrix of a saved model on a data spec's evaluation split.

    The evaluation split is the source's test split, else the held-out validation split; the run's
    own config.json (beside the model) supplies the seed and fraction, so a model trained on
    `digits` is scored on exactly the images it never trained on.
    """
    from kerascnn.data import build_datasets

    model = load_model(model_path)
    run_cfg = _run_config(model_path)
    cfg = run_cfg.data if run_cfg is not None else DataConfig()
    cfg = override(cfg, spec=data, data_dir=data_dir)
    bundle = build_datasets(cfg, model_image_shape(model), batch_size, splits=("eval",))
    names = rd.read_classes(model_path) or bundle.class_names
    n_out = model.output_shape[-1]
    if n_out != bundle.num_classes:
        raise UserError(f"--data {cfg.spec} has {bundle.num_classes} classes but the model predicts {n_out}.")

    labels, probs = [], []
    for x, y in bundle.eval:
        probs.append(np.asarray(model.predict_on_batch(x), dtype=np.float64))
        labels.append(np.argmax(np.asarray(y), axis=-1))
    for tracker in bundle.streams.values():  # streamed: files that failed to decode are not scored
        failed = tracker.new_failures()
        if failed:
            log.warning(summarize_skipped(failed, what="files that failed to decode"))
    if not probs:
        raise UserError(f"--data {cfg.spec}: the evaluation split is empty.")
    p, y = np.concatenate(probs), np.concatenate(labels)
    loss = float(np.mean(-np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1.0))))
    top1 = float(np.mean(np.argmax(p, axis=-1) == y))
    k = min(5, p.shape[1])
    top5 = float(np.mean(np.any(np.argsort(-p, axis=-1)[:, :k] == y[:, None], axis=-1)))
    cm = np.zeros((n_out, n_out), dtype=np.int64)
    np.add.at(cm, (y, np.argmax(p, axis=-1)), 1)
    png = None
    if plot:
        png = Path(out) if out else Path(model_path).parent / "confusion.png"
        png.parent.mkdir(parents=True, exist_ok=True)
        plot_confusion(cm, names, png, title=f"{Path(model_path).name} on {cfg.spec}: top-1 {top1:.2%}")
    return EvalResult(loss, top1, top5, len(y), cm, list(names), png)


def _run_config(model_path: os.PathLike):
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


def predict(model_path: os.PathLike, paths: Sequence[str], *, top_k: int = 5,
            batch_size: int = 64, classes: Optional[Sequence[str]] = None) -> Tuple[List[Prediction], list]:
    """Top-k classes for image files and folders; returns (predictions, skipped files with reasons)."""
    from kerascnn.data import load_images

    model = load_model(model_path)
    images, files, skipped = load_images(list(paths), model_image_shape(model))
    if len(files) == 0:
        raise UserError("No readable images among the given paths" +
                        (f" (skipped {len(skipped)}: {skipped[0][0]}: {skipped[0][1]} ...)." if skipped else "."))
    names = list(classes or rd.read_classes(model_path) or [])
    probs = model.predict(images, batch_size=batch_size, verbose=0)
    k = min(top_k, probs.shape[-1])
    out = []
    for f, p in zip(files, probs):
        best = np.argsort(-p)[:k]
        out.append(Prediction(f, [(names[i] if i < len(names) else str(i), float(p[i])) for i in best]))
    return out, skipped
