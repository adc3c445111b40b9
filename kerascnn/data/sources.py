"""What every data spec resolves to: a `Source` of splits, before any tf.data.

Three kinds of split cover every spec: arrays already in memory (digits, keras.datasets, IDX),
image files on disk (folders) and records of a prepared TFDS dataset. Each knows its size, and can
`take` a subset of its examples, which is all the seeded train/val split needs.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np


@dataclass
class ArraySplit:
    """Images in memory: (N, h, w, c) raw pixels in [0, 255] (any dtype), integer labels (N,)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray) -> "ArraySplit":
        return ArraySplit(self.images[index], self.labels[index])


@dataclass
class FileSplit:
    """Image files that passed the scan-time checks (see `images.inspect_image`)."""

    paths: np.ndarray  # str, absolute
    labels: np.ndarray  # int
    sizes: np.ndarray  # (N, 2) int: height, width after EXIF orientation
    kinds: np.ndarray  # int: images.JPEG / images.NATIVE / images.PIL decoding path
    orients: np.ndarray  # int: EXIF orientation 1..8

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray) -> "FileSplit":
        return FileSplit(*(getattr(self, f.name)[index] for f in dataclasses.fields(self)))


@dataclass
class TfdsSplit:
    """A split of a prepared TFDS dataset; `keep` selects examples (in file order) for seeded splits."""

    builder: Any
    split: str
    count: int
    image_key: str
    label_key: str
    keep: Optional[np.ndarray] = None  # bool mask over the split's examples, None: all

    def __len__(self) -> int:
        return self.count if self.keep is None else int(self.keep.sum())

    def take(self, index: np.ndarray) -> "TfdsSplit":
        positions = np.flatnonzero(self.keep) if self.keep is not None else np.arange(self.count)
        keep = np.zeros(self.count, bool)
        keep[positions[index]] = True
        return dataclasses.replace(self, keep=keep)


Split = Union[ArraySplit, FileSplit, TfdsSplit]


@dataclass
class Source:
    """A resolved spec: its splits ("train", and "val"/"test" where the source has them)."""

    spec: str
    kind: str  # a few words for the description: "keras.datasets", "image folder", ...
    splits: Dict[str, Split]
    class_names: List[str]
    skipped: List[Tuple[str, str]] = field(default_factory=list)


def concat_splits(parts: Sequence[Split]) -> Split:
    """Every example of `parts` (the splits of one source, so all of one kind), in order, as one split."""
    parts = list(parts)
    if len(parts) == 1:
        return parts[0]
    if all(isinstance(p, ArraySplit) for p in parts):
        return ArraySplit(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]))
    if all(isinstance(p, FileSplit) for p in parts):
        return FileSplit(*(np.concatenate([getattr(p, f.name) for p in parts])
                           for f in dataclasses.fields(FileSplit)))
    if all(isinstance(p, TfdsSplit) and p.keep is None for p in parts):
        # TFDS reads "train+test" as one split: its split expressions concatenate.
        return dataclasses.replace(parts[0], split="+".join(p.split for p in parts),
                                   count=sum(p.count for p in parts))
    raise ValueError(f"Cannot concatenate splits of kinds {sorted({type(p).__name__ for p in parts})}.")


def seeded_split(labels: Optional[np.ndarray], count: int, fraction: float,
                 seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Indices (train, held_out) holding out `fraction` of the examples, per class when `labels` are known.

    Stratified so that a small held-out set still has every class in proportion; the same seed
    always holds out the same examples, which is how `evaluate` finds the examples `fit` did not see.
    """
    rng = np.random.default_rng(seed)
    if fraction <= 0:
        return np.arange(count), np.arange(0)
    if labels is None:
        order = rng.permutation(count)
        n_out = max(1, int(round(count * fraction)))
        return np.sort(order[n_out:]), np.sort(order[:n_out])
    held_out = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        # Every class with two or more examples gets at least one held out, so that a small val set
        # still checks every class; a single example stays in training (it cannot be both).
        n_out = min(len(members) - 1, max(1, int(round(len(members) * fraction))))
        held_out.append(members[:n_out])
    out = np.sort(np.concatenate(held_out)) if held_out else np.arange(0)
    return np.setdiff1d(np.arange(count), out), out


def kfold_split(labels: Optional[np.ndarray], count: int, folds: int, fold: int,
                seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Indices (rest, fold `fold`) of a seeded K-fold of `count` examples, stratified when `labels` are known.

    scikit-learn's (Stratified)KFold, shuffled with `seed`: the K folds are disjoint and together hold
    every example once, and the same seed always cuts the same folds, so each fold's run and its
    evaluation agree on its test examples. Raises ValueError when the examples cannot make K folds.
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    if not 0 <= fold < folds:
        raise ValueError(f"fold must be in [0, {folds}). Received: fold={fold}")
    if count < folds:
        raise ValueError(f"{count} examples cannot make {folds} folds")
    if labels is None:
        splitter = KFold(folds, shuffle=True, random_state=seed % 2**32)
    else:
        # Every class is spread over the folds in proportion; scikit-learn refuses only when no
        # class has K examples, and warns when some class has fewer (a fold then lacks it).
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed % 2**32)
    rest, held = list(splitter.split(np.zeros((count, 1)), labels))[fold]
    return np.sort(rest), np.sort(held)


def split_labels(split: Split) -> Optional[np.ndarray]:
    """Labels known without reading the data (None for TFDS records)."""
    return None if isinstance(split, TfdsSplit) else split.labels
