"""The `--data` spec: one string naming a data set, a TFDS dataset, IDX files or an image folder."""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from typing import Optional

from kerascnn.config import DataConfig
from kerascnn.data.images import MAX_PIXELS
from kerascnn.data.sources import Source
from kerascnn.errors import DataError

KERAS_NAMES = ("mnist", "fashion_mnist", "cifar10", "cifar100")
ALIASES = {"fashion-mnist": "fashion_mnist", "fashionmnist": "fashion_mnist", "cifar-10": "cifar10",
           "cifar-100": "cifar100"}

SPECS = (
    "digits: scikit-learn's 1,797 real 8x8 handwritten digits, embedded, works offline (the default). "
    "mnist | fashion_mnist | cifar10 | cifar100: keras.datasets, read from the Keras cache "
    "(~/.keras/datasets, $KERAS_HOME or --data-dir), downloaded when online. "
    "tfds:NAME[:SPLIT]: a TensorFlow Datasets dataset prepared in --data-dir (default ~/tensorflow_datasets); "
    "SPLIT (e.g. train[:50%]) is the training split. "
    "idx:DIR: MNIST-format IDX files (train-images-idx3-ubyte[.gz], ...), e.g. "
    "idx:/usr/share/datasets/fashion-mnist. "
    "PATH: an image folder with one sub-folder per class, or train/ and val/ (and test/) sub-folders of "
    "class folders."
)

_DESCRIPTIONS = {
    "digits": "scikit-learn's 1,797 real 8x8 handwritten digits (embedded, offline)",
    "mnist": "MNIST, 70,000 28x28 handwritten digits (keras.datasets)",
    "fashion_mnist": "Fashion-MNIST, 70,000 28x28 clothing images in 10 classes (keras.datasets)",
    "cifar10": "CIFAR-10, 60,000 32x32 colour photos in 10 classes (keras.datasets)",
    "cifar100": "CIFAR-100, 60,000 32x32 colour photos in 100 classes (keras.datasets)",
}


@dataclass(frozen=True)
class Spec:
    kind: str  # digits | keras | tfds | idx | folder
    name: str  # the data set name, TFDS name, or the path
    split: Optional[str] = None  # tfds only


def parse_spec(spec: str) -> Spec:
    """Classify a --data string; an unknown name that is not a folder is a DataError with suggestions."""
    text = (spec or "").strip()
    lowered = ALIASES.get(text.lower(), text.lower())
    if lowered == "digits":
        return Spec("digits", "digits")
    if lowered in KERAS_NAMES:
        return Spec("keras", lowered)
    if text.startswith("tfds:"):
        name, _, split = text[len("tfds:"):].partition(":")  # split expressions may hold ':' themselves
        if not name:
            raise DataError(f"--data {spec}: name the TFDS dataset, e.g. tfds:mnist or tfds:cifar10:train[:50%].")
        return Spec("tfds", name, split or None)
    if text.startswith("idx:"):
        return Spec("idx", text[len("idx:"):] or ".")
    path = os.path.expanduser(text)
    if os.path.isdir(path):
        return Spec("folder", path)
    if os.path.exists(path):
        raise DataError(f"--data {spec}: a file, not a folder; pass the folder holding the class sub-folders.")
    close = difflib.get_close_matches(lowered, ("digits",) + KERAS_NAMES, n=2)
    hint = f"Did you mean {' or '.join(close)}? " if close else ""
    raise DataError(f"--data {spec}: not a known data set nor an existing folder. {hint}"
                    f"Known: digits, {', '.join(KERAS_NAMES)}, tfds:NAME, idx:DIR, or a folder path.")


def same_spec(a: str, b: str) -> bool:
    """Whether two --data specs name the same data (folders and IDX directories by their real path)."""
    try:
        pa, pb = parse_spec(a), parse_spec(b)
    except DataError:  # e.g. a run's folder that has since moved: compare the text
        return (a or "").strip() == (b or "").strip()
    if pa.kind != pb.kind:
        return False
    if pa.kind in ("folder", "idx"):
        return os.path.realpath(os.path.expanduser(pa.name)) == os.path.realpath(os.path.expanduser(pb.name))
    return pa == pb


def describe_spec(spec: str) -> str:
    """A one-line description of a --data spec, without loading anything (never raises)."""
    try:
        parsed = parse_spec(spec)
    except DataError as e:
        return str(e)
    if parsed.kind in ("digits", "keras"):
        return f"{parsed.name}: {_DESCRIPTIONS[parsed.name]}"
    if parsed.kind == "tfds":
        split = f", training split {parsed.split}" if parsed.split else ""
        return f"{spec}: TensorFlow Datasets {parsed.name!r}{split}, from a prepared local directory"
    if parsed.kind == "idx":
        return f"{spec}: MNIST-format IDX files in {os.path.expanduser(parsed.name)}"
    return f"{spec}: image folder {parsed.name} (class sub-folders, or train/ val/ [test/] of class folders)"


def open_source(cfg: DataConfig, max_pixels: int = MAX_PIXELS) -> Source:
    """Resolve `cfg.spec` to its splits (arrays in memory, file lists or TFDS records; nothing decoded yet)."""
    parsed = parse_spec(cfg.spec)
    if parsed.kind == "digits":
        from kerascnn.data.builtin import load_digits

        return load_digits(cfg.spec)
    if parsed.kind == "keras":
        from kerascnn.data.builtin import load_keras_dataset

        return load_keras_dataset(parsed.name, cfg.spec, cfg.data_dir)
    if parsed.kind == "tfds":
        from kerascnn.data.tfds_source import load_tfds

        return load_tfds(parsed.name, parsed.split, cfg.data_dir, cfg.spec)
    if parsed.kind == "idx":
        from kerascnn.data.idx import load_idx_dir

        return load_idx_dir(parsed.name, cfg.spec)
    from kerascnn.data.folders import load_folder

    return load_folder(parsed.name, cfg.spec, max_pixels)
