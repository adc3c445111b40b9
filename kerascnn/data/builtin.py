"""The named data sets: `digits` (embedded) and keras.datasets' mnist, fashion_mnist, cifar10, cifar100.

The keras.datasets files are read straight from the Keras cache ($KERAS_HOME/datasets, default
~/.keras/datasets, or --data-dir) in exactly the layout `keras.datasets.*.load_data()` leaves there.
Reading them ourselves, rather than calling `load_data()` every time, is what makes a copied cache
work offline: `load_data()` re-checks the file hash (and re-downloads on a mismatch) and re-extracts
the CIFAR archives on every call. `load_data()` is still what downloads, when the files are missing
and the network is up; offline we fail in seconds saying which file to put where.
"""
from __future__ import annotations

import io
import os
import pickle
import tarfile
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import numpy as np

from kerascnn.data import names
from kerascnn.data.idx import idx_split
from kerascnn.runtime.network import reachable
from kerascnn.data.sources import ArraySplit, Source
from kerascnn.errors import DataError

Found = Tuple[ArraySplit, ArraySplit, List[str]]  # train, test, class names


def load_digits(spec: str = "digits") -> Source:
    """scikit-learn's 1,797 real 8x8 handwritten digits (UCI), values 0..16 scaled to 0..255."""
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    images = (digits.images * (255.0 / 16.0)).astype(np.float32)[..., None]
    return Source(spec, "scikit-learn digits", {"train": ArraySplit(images, digits.target.astype(np.int64))},
                  list(names.DIGITS))


def _find_mnist(root: str) -> Optional[Found]:
    path = os.path.join(root, "mnist.npz")
    if not os.path.isfile(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            train = ArraySplit(f["x_train"][..., None], f["y_train"].astype(np.int64))
            test = ArraySplit(f["x_test"][..., None], f["y_test"].astype(np.int64))
    except (OSError, KeyError, ValueError) as e:
        raise DataError(f"{path} is not a readable mnist.npz ({e}); delete it and download it again.") from None
    return train, test, list(names.DIGITS)


def _find_fashion(root: str) -> Optional[Found]:
    folder = os.path.join(root, "fashion-mnist")
    if not os.path.isdir(folder):
        return None
    train, test = idx_split(folder, "train"), idx_split(folder, "t10k")
    if train is None or test is None:
        return None
    return train, test, list(names.FASHION_MNIST)


class _CifarUnpickler(pickle.Unpickler):
    """CIFAR batches are pickles; allow only what they contain (numpy arrays), never arbitrary code."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
                ("numpy", "ndarray"), ("numpy", "dtype"),
                ("_codecs", "encode")}  # how protocol-2 pickles written by Python 3 store raw bytes

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch file")


def _cifar_reader(root: str, folder: str, archives: Tuple[str, ...]) -> Optional[Callable[[str], dict]]:
    """A function reading one pickled CIFAR member, from an extracted folder or straight from the tarball."""
    for extracted in (os.path.join(root, f"{folder}-target", folder), os.path.join(root, folder)):
        if os.path.isdir(extracted):
            def read_file(member: str, base: str = extracted) -> dict:
                with open(os.path.join(base, member), "rb") as f:
                    return _CifarUnpickler(f, encoding="bytes").load()
            return read_file
    for archive in archives:
        path = os.path.join(root, archive)
        if os.path.isfile(path):
            def read_member(member: str, path: str = path) -> dict:
                with tarfile.open(path, "r:*") as tar:
                    data = tar.extractfile(f"{folder}/{member}").read()
                return _CifarUnpickler(io.BytesIO(data), encoding="bytes").load()
            return read_member
    return None


def _cifar_batch(batch: dict, label_key: bytes) -> ArraySplit:
    images = np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return ArraySplit(images, np.asarray(batch[label_key], np.int64))


def _read_cifar(read: Callable[[str], dict], where: str, members: List[str], test: str, label_key: bytes,
                meta: str, names_key: bytes) -> Found:
    try:
        parts = [_cifar_batch(read(m), label_key) for m in members]
        train = ArraySplit(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]))
        test_split = _cifar_batch(read(test), label_key)
        class_names = [n.decode() for n in read(meta)[names_key]]
    except (OSError, KeyError, EOFError, ValueError, pickle.UnpicklingError, tarfile.TarError) as e:
        raise DataError(f"The CIFAR files under {where} are incomplete or corrupt ({e}); delete them and "
                        f"download again.") from None
    return train, test_split, class_names


def _find_cifar10(root: str) -> Optional[Found]:
    read = _cifar_reader(root, "cifar-10-batches-py", ("cifar-10-batches-py-target_archive",
                                                      "cifar-10-python.tar.gz", "cifar-10-batches-py.tar.gz"))
    if read is None:
        return None
    return _read_cifar(read, root, [f"data_batch_{i}" for i in range(1, 6)], "test_batch", b"labels",
                       "batches.meta", b"label_names")


def _find_cifar100(root: str) -> Optional[Found]:
    read = _cifar_reader(root, "cifar-100-python", ("cifar-100-python-target_archive", "cifar-100-python.tar.gz"))
    if read is None:
        return None
    # Fine labels; their 100 published names come with the archive, in its "meta" file.
    return _read_cifar(read, root, ["train"], "test", b"fine_labels", "meta", b"fine_label_names")


@dataclass(frozen=True)
class KerasDataset:
    find: Callable[[str], Optional[Found]]
    host: str  # probed before `load_data()` tries to download
    fix: str  # what to do offline; {dir} is the cache folder


KERAS_DATASETS = {
    "mnist": KerasDataset(_find_mnist, "storage.googleapis.com",
                          "download https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz on a "
                          "machine with internet and copy it to {dir}/mnist.npz"),
    "fashion_mnist": KerasDataset(_find_fashion, "storage.googleapis.com",
                                  "apt-get install dataset-fashion-mnist, then copy the 4 IDX .gz files from "
                                  "/usr/share/datasets/fashion-mnist/ to {dir}/fashion-mnist/, or use "
                                  "--data idx:/usr/share/datasets/fashion-mnist"),
    "cifar10": KerasDataset(_find_cifar10, "www.cs.toronto.edu",
                            "download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz on a machine with "
                            "internet and copy it to {dir}/cifar-10-python.tar.gz"),
    "cifar100": KerasDataset(_find_cifar100, "www.cs.toronto.edu",
                             "download https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz on a machine "
                             "with internet and copy it to {dir}/cifar-100-python.tar.gz"),
}


def keras_cache_roots(data_dir: Optional[str] = None) -> List[str]:
    """Folders searched for keras.datasets files: --data-dir (itself or its datasets/), else the Keras cache."""
    if data_dir:
        base = os.path.expanduser(data_dir)
        return [base, os.path.join(base, "datasets")]
    homes = [os.environ.get("KERAS_HOME"), os.path.join(os.path.expanduser("~"), ".keras"),
             os.path.join("/tmp", ".keras")]  # Keras falls back to /tmp/.keras when ~ is read-only
    return list(dict.fromkeys(os.path.join(h, "datasets") for h in homes if h))


def _search(dataset: KerasDataset, roots: List[str]) -> Optional[Found]:
    for root in roots:
        found = dataset.find(root)
        if found is not None:
            return found
    return None


def load_keras_dataset(name: str, spec: str, data_dir: Optional[str] = None) -> Source:
    """keras.datasets `name` from the cache; downloads through `load_data()` only when online."""
    dataset = KERAS_DATASETS[name]
    roots = keras_cache_roots(data_dir)
    found = _search(dataset, roots)
    if found is None:
        if not reachable(dataset.host):
            where = roots[0]
            raise DataError(f"--data {spec}: not in the Keras cache ({where}) and {dataset.host} is unreachable "
                            f"(offline?): {dataset.fix.format(dir=where)}.")
        import keras

        getattr(keras.datasets, name).load_data()  # downloads into Keras' own cache
        found = _search(dataset, keras_cache_roots())
        if found is None:
            raise DataError(f"--data {spec}: keras.datasets.{name}.load_data() succeeded but its files are not "
                            f"in {keras_cache_roots()[0]}; set KERAS_HOME to where Keras keeps them.")
    train, test, class_names = found
    return Source(spec, "keras.datasets", {"train": train, "test": test}, class_names)
