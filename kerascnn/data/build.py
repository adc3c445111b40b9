"""`build_datasets`: a --data spec to batched tf.data splits; `load_images`: files to an array for predict.

Flow: spec -> Source (splits as arrays, file lists or TFDS records) -> seeded held-out split when
the source has no validation split -> per split, cache in memory or stream -> batches of float32
[0, 255] images at the model's input shape with one-hot labels. The model does its own
preprocessing (kerascnn.models.preprocessing), so the pipeline only needs the input shape.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from kerascnn.config import CACHE_MODES, AugmentConfig, DataConfig
from kerascnn.data import pipeline
from kerascnn.data.augment import augment_dataset, check_augment, has_geometry, pca_stats
from kerascnn.data.folders import collect_files, file_split, inspect_files, summarize_skipped
from kerascnn.data.images import MAX_PIXELS
from kerascnn.data.sources import ArraySplit, Source, Split, concat_splits, kfold_split, seeded_split, split_labels
from kerascnn.data.specs import open_source, parse_spec
from kerascnn.errors import DataError, SettingError

log = logging.getLogger("kerascnn.data")

SPLITS = ("train", "val", "test", "eval", "all")


@dataclass
class DataBundle:
    """The built splits (None when not requested or not available) and what they hold."""

    train: Any = None  # tf.data.Dataset of (images (B, H, W, C) float32 [0, 255], one-hot labels (B, K))
    val: Any = None
    test: Any = None
    eval: Any = None  # the examples `fit` never trained on: test when the source has one, else val
    all: Any = None  # every example of the source, nothing held out (data the model never saw)
    class_names: List[str] = field(default_factory=list)
    counts: Dict[str, int] = field(default_factory=dict)  # examples per built split
    class_counts: List[int] = field(default_factory=list)  # the train split's examples per class
    skipped: List[Tuple[str, str]] = field(default_factory=list)  # (file, reason)
    description: str = ""
    eval_split: Optional[str] = None  # "test" or "val": which split `eval` is
    image_shape: Optional[Tuple[int, int, int]] = None
    # streamed splits: which examples each pass delivered (files that fail to decode mid-epoch)
    streams: Dict[str, pipeline.StreamTracker] = field(default_factory=dict)
    # Builder arguments the training data supplies (kerascnn.data.kinds): a text model's vocabulary,
    # learnt from the training split only. Images need none.
    model_args: Dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def check_shape(image_shape: Sequence[int]) -> Tuple[int, int, int]:
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or min(shape) < 1 or shape[2] not in (1, 3):
        raise ValueError(f"image_shape must be (height, width, 1 or 3). Received: image_shape={image_shape}")
    return shape


def _check_config(cfg: DataConfig, batch_size: int, splits: Sequence[str]) -> None:
    if cfg.cache not in CACHE_MODES:
        raise DataError(f"--cache must be one of {', '.join(CACHE_MODES)}. Received: {cfg.cache!r}")
    check_build_args(cfg, batch_size, splits)


def check_build_args(cfg: DataConfig, batch_size: int, splits: Sequence[str], augment: Any = None,
                     no_augment: Optional[str] = None) -> None:
    """The checks every kind's `build` makes of its arguments: the held-out fraction, the batch size,
    the split names, and, for a kind that cannot augment (`no_augment`: why, for the message),
    augmentation switched on.

    Raises:
        SettingError: augmentation asked of a kind that cannot ("augment").
        DataError: --val-split outside [0, 1).
        ValueError: a batch size below 1 or an unknown split name (a caller's mistake).
    """
    if no_augment is not None and augment is not None and getattr(augment, "enabled", False):
        raise SettingError("augment", f"--data {cfg.spec}: {no_augment}")
    if not 0.0 <= cfg.val_split < 1.0:
        raise DataError(f"--val-split is the held-out fraction of the training data, in [0, 1). "
                        f"Received: {cfg.val_split}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer. Received: batch_size={batch_size}")
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown:
        raise ValueError(f"splits must be among {SPLITS}. Received: splits={tuple(splits)}")


def resolve_splits(source: Source, cfg: DataConfig) -> Dict[str, Split]:
    """The source's splits, plus a seeded held-out "val" from "train" when the source has no validation split.

    With `cfg.folds` K > 1 (cross-validation), "test" is fold `cfg.fold` of a seeded stratified K-fold
    of the source's train split and "train" the other folds; the held-out "val" then comes out of
    that "train". A source with its own test split is refused: its results are quoted on that split.
    """
    parts = dict(source.splits)
    if cfg.folds == 1 or (cfg.folds > 1 and not 0 <= cfg.fold < cfg.folds):
        raise DataError(f"--folds K needs K >= 2 and --fold in [0, K-1] (0 folds: no cross-validation). "
                        f"Received: --folds {cfg.folds} --fold {cfg.fold}")
    if cfg.folds > 1:
        if "test" in parts:
            raise DataError(f"--data {cfg.spec} has a test split of its own; cross-validation (--folds) is for "
                            f"data without one.")
        train = parts["train"]
        try:
            rest, fold = kfold_split(split_labels(train), len(train), cfg.folds, cfg.fold, cfg.seed)
        except ValueError as e:
            raise DataError(f"--data {cfg.spec}: {len(train):,} training examples cannot make {cfg.folds} "
                            f"cross-validation folds ({e}).") from None
        parts["train"], parts["test"] = train.take(rest), train.take(fold)
    if "val" not in parts and cfg.val_split > 0:
        train = parts["train"]
        keep, held = seeded_split(split_labels(train), len(train), cfg.val_split, cfg.seed)
        if len(held):
            parts["train"], parts["val"] = train.take(keep), train.take(held)
    return parts


def default_eval_split(source: Source, trained_on: bool) -> str:
    """The split `evaluate` scores when none is named: "eval" or "all".

    Data the model was trained on: "eval", the examples `fit` never trained on (the test split, else
    the validation split: the source's own, or the one `fit` held out with the same seed). An image
    folder the model did not train on is the user's test set: its test/, else val/ ("eval"), else
    all of it ("all"). The named data sets, IDX and TFDS keep "eval": their test split is the one
    results are quoted on, and digits, which has none, is scored on the held-out split.
    """
    if trained_on or {"val", "test"} & set(source.splits):
        return "eval"
    try:
        return "all" if parse_spec(source.spec).kind == "folder" else "eval"
    except DataError:  # another kind's spec (tsv:FILE, a text folder): the user's own data, like a folder
        return "all"


def _pca(images: Optional[np.ndarray], split: Split, shape, seed: int):
    """PCA colour statistics of the training images, from a seeded sample (a 3x3 covariance needs few)."""
    if images is not None:  # already decoded: sample the cache
        rng = np.random.default_rng(seed)
        return pca_stats(images[np.sort(rng.choice(len(images), min(len(images), 1024), replace=False))])
    # Otherwise decode 256 images, small: resizing barely changes the colour covariance.
    small = (min(shape[0], 64), min(shape[1], 64), shape[2])
    return pca_stats(pipeline.sample_for_stats(split, small, seed, count=256))


def _build_split(split: Split, training: bool, shape, num_classes: int, batch_size: int, cfg: DataConfig,
                 augment: AugmentConfig):
    """(dataset, example count, cached?, skipped, stream tracker or None) for one split."""
    import tensorflow as tf

    cached = pipeline.fits_in_memory(cfg.cache, len(split), shape, cfg.max_decoded_bytes)
    seed = cfg.seed if training else None
    images, skipped, tracker = None, [], None
    if isinstance(split, ArraySplit):
        # Arrays are in memory anyway; "cached" means resized once instead of per batch.
        images = pipeline.resize_array(split.images, shape) if cached else split.images
        ds = pipeline.array_dataset(images, split.labels, shape, num_classes, batch_size, seed)
        count = len(split)
    elif cached:
        decoded, order = pipeline.materialize(split, shape)
        skipped = pipeline.failed_examples(split, order)
        images, count = decoded.images, len(decoded)
        ds = pipeline.array_dataset(images, decoded.labels, shape, num_classes, batch_size, seed)
    else:
        # Streamed training images get their random geometry while being resized (one resampling
        # pass per image); only the colour jitter is left to do on the batch.
        geometry = augment if training and has_geometry(augment) else None
        tracker = pipeline.StreamTracker(split)
        ds = pipeline.stream_dataset(split, shape, num_classes, batch_size, seed, geometry, cfg.seed + 2, tracker)
        augment = dataclasses.replace(augment, crop=0.0, translate=0.0, hflip=False, vflip=False)
        count = len(split)
    if count == 0:
        raise DataError(f"--data {cfg.spec}: a split has no usable examples left after decoding.")
    if training and augment.enabled:
        pca = None
        if augment.pca_jitter:
            at_shape = images is not None and images.shape[1:] == tuple(shape)
            pca = _pca(images if at_shape else None, split, shape, cfg.seed)
        ds = augment_dataset(ds, augment, cfg.seed + 1, pca)
    return ds.prefetch(tf.data.AUTOTUNE).with_options(pipeline.epoch_options()), count, cached, skipped, tracker


def build_datasets(cfg: DataConfig, image_shape: Sequence[int], batch_size: int,
                   augment: AugmentConfig = AugmentConfig(),
                   splits: Sequence[str] = ("train", "val"), source: Optional[Source] = None) -> DataBundle:
    """Build the requested splits of `cfg.spec` for a model taking `image_shape` inputs.

    Args:
        cfg: what to read (spec, data_dir), how to split it (val_split, seed) and cache it.
        image_shape: the model's input (height, width, channels); images are resized (bilinear) and
            converted between grayscale and RGB to match.
        batch_size: examples per batch; the last batch may be smaller.
        augment: training-time augmentation, applied to the train split only.
        splits: any of "train", "val", "test", "eval" ("eval": test if the source has one, else the
            seeded val split, i.e. the same examples `fit` held out) and "all" (every example of the
            source, its splits concatenated, nothing held out).
        source: `open_source(cfg)` when the caller has already opened it (to look at its class
            names first), so the data is not read twice.

    Returns:
        A DataBundle; splits not requested, or that the source lacks, are None.

    Raises:
        DataError: the spec cannot be read (missing files, no network, empty folders).
    """
    shape = check_shape(image_shape)
    _check_config(cfg, batch_size, splits)
    check_augment(augment)
    source = source if source is not None else open_source(cfg)
    parts, eval_name = split_parts(source, cfg, splits, concat_splits)
    wanted = set(splits) | ({eval_name} if "eval" in splits else set())
    needed = [n for n in ("train", "val", "test", "all") if n in parts and n in wanted]
    bundle = DataBundle(class_names=list(source.class_names), skipped=list(source.skipped), image_shape=shape,
                        eval_split=eval_name if "eval" in splits else None)
    labels = split_labels(parts["train"]) if "train" in parts else None
    if labels is not None:  # TFDS records' labels are not known until read
        bundle.class_counts = np.bincount(labels, minlength=bundle.num_classes).tolist()
    built, cached, counts = {}, {}, {}
    for name in needed:
        ds, count, cached[name], skipped, tracker = _build_split(parts[name], name == "train", shape,
                                                                 bundle.num_classes, int(batch_size), cfg, augment)
        built[name], counts[name] = ds, count
        bundle.skipped += skipped
        if tracker is not None:
            bundle.streams[name] = tracker
    for name in ("train", "val", "test", "all"):
        if name in splits:
            setattr(bundle, name, built.get(name))
            if name in counts:
                bundle.counts[name] = counts[name]
    if "eval" in splits:
        bundle.eval, bundle.counts["eval"] = built[eval_name], counts[eval_name]
    bundle.description = _describe(cfg, source, parts, bundle, cached)
    if bundle.skipped:
        log.warning("%s (see DataBundle.skipped)", summarize_skipped(bundle.skipped))
    return bundle


def split_parts(source: Source, cfg: DataConfig, splits: Sequence[str], concat) -> Tuple[Dict[str, Any], str]:
    """The source's splits after the held-out one (`resolve_splits`), with "all" (every split, joined
    by `concat`) when asked, and the name "eval" stands for ("test", else "val"); shared by every kind.

    Raises:
        DataError: "eval" is asked of data with no test split and nothing held out.
    """
    parts = resolve_splits(source, cfg)
    if "all" in splits:
        parts["all"] = concat([source.splits[n] for n in ("train", "val", "test") if n in source.splits])
    eval_name = "test" if "test" in parts else "val"
    if "eval" in splits and eval_name not in parts:
        raise DataError(f"--data {cfg.spec} has no test split and --val-split {cfg.val_split} holds nothing out, "
                        f"so there is nothing to evaluate on; pass --val-split > 0 (the same value and --seed as "
                        f"for fit).")
    return parts, eval_name


def _describe(cfg: DataConfig, source: Source, parts: Dict[str, Split], bundle: DataBundle,
              cached: Dict[str, bool]) -> str:
    sizes = " / ".join(f"{len(parts[n]):,} {n}" for n in ("train", "val", "test") if n in parts)
    held = "val" in parts and "val" not in source.splits
    held_out = f" (val: {cfg.val_split:.0%} held out, seed {cfg.seed})" if held else ""
    h, w, c = bundle.image_shape
    memory = [n for n, m in cached.items() if m]
    where = f"; cached in memory: {', '.join(memory)}" if memory else ""
    streamed = [n for n, m in cached.items() if not m]
    where += f"; streamed: {', '.join(streamed)}" if streamed else ""
    return (f"{cfg.spec} ({source.kind}): {sizes}{held_out}; {bundle.num_classes} classes; "
            f"images as {h}x{w}x{c}{where}")


def load_images(paths: Union[str, Sequence[str]], image_shape: Sequence[int],
                max_pixels: int = MAX_PIXELS) -> Tuple[np.ndarray, List[str], List[Tuple[str, str]]]:
    """Image files and folders (searched recursively) -> float32 (N, H, W, C) [0, 255], for predict.

    Returns the images, the files they came from (in order), and the (file, reason) of every file
    skipped. Decoding is the same as for folders: header checks first, TF's decoders, EXIF orientation.

    Raises:
        DataError: none of `paths` holds a usable image.
    """
    shape = check_shape(image_shape)
    paths = [paths] if isinstance(paths, str) else list(paths)
    files, skipped = collect_files(paths)
    total = len(files) + len(skipped)
    good, bad = inspect_files(files, max_pixels)
    skipped += bad
    images = np.zeros((0, *shape), np.float32)
    names: List[str] = []
    if good:
        split = file_split(good, np.zeros(len(good), np.int64))
        decoded, order = pipeline.materialize(split, shape, rounded=False)
        skipped += pipeline.failed_examples(split, order)
        images, names = decoded.images, [good[i][0] for i in order]
    if not names:
        why = f": {summarize_skipped(skipped)}" if skipped else ""
        raise DataError(f"No usable images in {', '.join(map(str, paths))}{why}")
    if skipped:
        log.warning(summarize_skipped(skipped, total))
    return images, names, skipped
