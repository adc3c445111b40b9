"""K-fold cross-validation: `cross_validate` a run's settings on data without a test split.

Kim (2014) reports the sentence data sets that have no standard test split (MR, Subj, CR, MPQA) as
the mean test accuracy of 10-fold cross-validation. Each fold here is a fresh model trained by the
harness (`kerascnn.training.fit`, one new model per call) with the run's settings and
`data.folds = K, data.fold = i`: the data pipeline then makes fold i the test split and trains on
the other K-1 folds (its --val-split hold-out comes out of those). The fold's own run folder
records that, so `evaluate(split="test")` on its model scores exactly fold i.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Union

import numpy as np

from kerascnn.config import TrainConfig, override
from kerascnn.data.build import resolve_splits
from kerascnn.data.kinds import check_data_for
from kerascnn.errors import SettingError, UserError
from kerascnn.inference.apply import evaluate
from kerascnn.models.refs import input_kind
from kerascnn.runtime import run_dir as rd
from kerascnn.runtime.jobs import atomic_write_text, new_job_path

log = logging.getLogger(__name__)

CV_JSON = "cv.json"


@dataclass
class FoldResult:
    fold: int
    examples: int  # the fold's test examples
    loss: float
    top1: float
    top5: Optional[float]  # None with 5 classes or fewer (kerascnn.training.metrics)
    seconds: float  # training and scoring
    run_dir: str  # the fold's run folder (its model.keras, config.json with data.fold)


@dataclass
class CVResult:
    """The folds' test top-1: `mean` and `std` (numpy's, ddof=0) over `folds`."""

    mean: float
    std: float
    folds: List[FoldResult] = field(default_factory=list)
    seconds_per_fold: float = 0.0
    data: str = ""
    model: str = ""
    out: str = ""  # the parent folder of the fold run folders

    def to_json(self) -> dict:
        return {"k": len(self.folds), "mean": self.mean, "std": self.std, "data": self.data, "model": self.model,
                "out": self.out, "seconds_per_fold": self.seconds_per_fold,
                "folds": [vars(f) for f in self.folds]}


def run_settings(model: Union[os.PathLike, str, TrainConfig]) -> TrainConfig:
    """The settings to retrain: a TrainConfig as it is, else the config.json beside a model file."""
    if isinstance(model, TrainConfig):
        return model
    config = Path(model).parent / rd.CONFIG
    if not config.is_file():
        raise UserError(f"{model}: no {rd.CONFIG} beside it; cross-validation retrains the settings of the model's "
                        f"run, so give a model.keras from a `kerascnn fit` run folder.")
    return rd.read_config(config.parent)


def cross_validate(model: Union[os.PathLike, str, TrainConfig], k: int = 10, *, data: Optional[str] = None,
                   data_dir: Optional[str] = None, epochs: Optional[int] = None, out: Optional[os.PathLike] = None, batch_size: int = 128,
                   verbose="auto") -> CVResult:
    """Mean and standard deviation of the test top-1 over K folds, each a fresh model trained on the others.

    Args:
        model: a model file from a `kerascnn fit` run (its run's config.json gives the settings to
            retrain; its weights are not used), or a TrainConfig.
        k: the number of folds, at least 2 (Kim 2014: 10).
        data: a data spec instead of the run's (it must have no test split); None: the run's.
        data_dir: a prepared TFDS directory or Keras cache folder; None: the run's.
        epochs: each fold's training epochs; None: the run's.
        out: the parent folder of the fold run folders (fold0, fold1, ...) and cv.json; None: a
            fresh runs/cvK-<model>-<data>-<time>.
        batch_size: examples per batch when scoring.
        verbose: Keras's verbosity while training each fold.

    Raises:
        SettingError: k < 2 ("cv").
        UserError: no run config beside the model file; the data has a test split of its own, or
            too few examples for k folds (DataError).
    """
    if int(k) < 2:
        raise SettingError("cv", f"--cv K needs K >= 2 folds. Received: {k}")
    k = int(k)
    cfg = override(run_settings(model), epochs=epochs, **{"data.spec": data, "data.data_dir": data_dir, "data.folds": k, "data.fold": 0})
    # Check the data before any training: it opens, has no test split and makes k folds.
    kind = check_data_for(str(cfg.model), input_kind(cfg.model), cfg.data.spec)
    resolve_splits(kind.open_source(cfg.data), cfg.data)
    parent = new_job_path(f"cv{k}", f"{Path(str(cfg.model)).stem}-{cfg.data.spec}", out)
    parent.mkdir(parents=True, exist_ok=True)
    from kerascnn.training import fit  # the harness: a fresh model each call

    folds: List[FoldResult] = []
    for i in range(k):
        start = time.perf_counter()
        run = fit(override(cfg, out=str(parent / f"fold{i}"), **{"data.fold": i}), verbose=verbose)
        r = evaluate(run.run_dir / rd.MODEL, split="test", batch_size=batch_size, plot=False)
        folds.append(FoldResult(i, r.count, r.loss, r.top1, r.top5, time.perf_counter() - start, str(run.run_dir)))
        log.info("fold %d/%d: %d test examples, loss %.4f, top-1 %.2f%% (%.0f s)", i + 1, k, r.count, r.loss,
                 100 * r.top1, folds[-1].seconds)
    top1 = np.array([f.top1 for f in folds])
    result = CVResult(float(top1.mean()), float(top1.std()), folds, float(np.mean([f.seconds for f in folds])),
                      cfg.data.spec, str(cfg.model), str(parent))
    atomic_write_text(parent / CV_JSON, json.dumps(result.to_json(), indent=1, ensure_ascii=False))
    log.info("%d-fold accuracy %.2f%% +- %.2f%%", k, 100 * result.mean, 100 * result.std)
    return result
