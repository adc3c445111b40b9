"""MNIST-format IDX files (LeCun's format, also Fashion-MNIST, EMNIST, KMNIST): `idx:DIR`.

An IDX file is a magic number (two zero bytes, a type code, the number of dimensions), the
dimensions as big-endian uint32, then the data in C order. Read with numpy, checked against the
header so that a truncated download is an error rather than garbage.
"""
from __future__ import annotations

import gzip
import os
import re
from typing import Dict, List, Optional, Tuple

import numpy as np

from kerascnn.data import names
from kerascnn.data.sources import ArraySplit, Source
from kerascnn.errors import DataError

_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# "train-images-idx3-ubyte.gz", and the original MNIST's "train-images.idx3-ubyte".
_FILE = re.compile(r"^(train|t10k)-(images|labels)[-.]idx([13])-ubyte(\.gz)?$")


def read_idx(path: str) -> np.ndarray:
    """The array stored in one IDX file (gzip-compressed when the name ends in .gz)."""
    try:
        with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"Cannot read IDX file {path}: {e}. Is it complete? Re-copy it.") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number {data[:4].hex()}).")
    ndim = data[3]
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_DTYPES[data[2]])
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(data) - offset != expected:
        raise DataError(f"{path}: the header says {dims} ({expected} bytes) but the file holds "
                        f"{len(data) - offset} bytes of data; the file is truncated or corrupt, re-copy it.")
    return np.frombuffer(data, dtype, offset=offset).reshape(dims)


def find_idx_files(directory: str) -> Dict[Tuple[str, str], str]:
    """{("train" | "t10k", "images" | "labels"): path} for the IDX files in `directory`."""
    found = {}
    for name in sorted(os.listdir(directory)):
        match = _FILE.match(name)
        if match:
            # Prefer the uncompressed file when both are there: it is the one a user unpacked.
            found.setdefault((match.group(1), match.group(2)), os.path.join(directory, name))
    return found


def load_pair(images_path: str, labels_path: str) -> ArraySplit:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim not in (3, 4) or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{images_path} ({images.shape}) and {labels_path} ({labels.shape}) do not "
                        f"match: expected (N, rows, cols) images and N labels.")
    if images.ndim == 3:
        images = images[..., None]
    return ArraySplit(images, labels.astype(np.int64))


def class_names_for(directory: str, labels: np.ndarray) -> List[str]:
    """classes.txt (one name per line) if present; Fashion-MNIST's names for a fashion folder; else numbers."""
    listed = os.path.join(directory, "classes.txt")
    count = int(labels.max()) + 1 if len(labels) else 0
    if os.path.isfile(listed):
        with open(listed, encoding="utf-8") as f:
            class_names = [line.strip() for line in f if line.strip()]
        if len(class_names) < count:
            raise DataError(f"{listed} lists {len(class_names)} classes but the labels go up to {count - 1}.")
        return class_names
    if "fashion" in os.path.abspath(directory).lower() and count <= 10:
        return list(names.FASHION_MNIST)
    return [str(i) for i in range(count)]


def load_idx_dir(directory: str, spec: str) -> Source:
    """`idx:DIR`: train-* files are the training split, t10k-* (optional) the test split."""
    directory = os.path.expanduser(directory)
    if not os.path.isdir(directory):
        raise DataError(f"--data {spec}: {directory} is not a folder. Point idx: at the folder holding "
                        f"train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz].")
    files = find_idx_files(directory)
    splits: Dict[str, ArraySplit] = {}
    for prefix, split in (("train", "train"), ("t10k", "test")):
        images, labels = files.get((prefix, "images")), files.get((prefix, "labels"))
        if images and labels:
            splits[split] = load_pair(images, labels)
        elif images or labels:
            missing = f"{prefix}-{'labels-idx1' if images else 'images-idx3'}-ubyte[.gz]"
            raise DataError(f"--data {spec}: {directory} has {os.path.basename(images or labels)} but no {missing}.")
    if "train" not in splits:
        raise DataError(f"--data {spec}: no train-images-idx3-ubyte[.gz] / train-labels-idx1-ubyte[.gz] in "
                        f"{directory} (e.g. apt-get install dataset-fashion-mnist, then "
                        f"--data idx:/usr/share/datasets/fashion-mnist).")
    all_labels = np.concatenate([s.labels for s in splits.values()])
    return Source(spec, "IDX files", splits, class_names_for(directory, all_labels))


def idx_split(directory: str, prefix: str) -> Optional[ArraySplit]:
    """One IDX split (prefix "train" or "t10k") in `directory`, None when its files are missing."""
    files = find_idx_files(directory)
    if (prefix, "images") in files and (prefix, "labels") in files:
        return load_pair(files[(prefix, "images")], files[(prefix, "labels")])
    return None
