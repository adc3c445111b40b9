"""The other specs: keras.datasets from a (fake, tiny) Keras cache, TFDS from a prepared dir, idx:DIR.

Offline behaviour is tested with the network taken away (socket.create_connection fails), so the
tests give the same answer on a machine with internet.
"""
import os
import socket
import time

import numpy as np
import pytest

import data_helpers as h
from kerascnn.config import DataConfig
from kerascnn.data import build_datasets
from kerascnn.data.idx import read_idx
from kerascnn.errors import DataError


def batches(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


@pytest.fixture
def offline(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("Network is unreachable (test)")

    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    return str(home)


# keras.datasets ---------------------------------------------------------------------------------

def test_mnist_from_the_keras_cache(keras_home, offline):
    h.keras_cache_mnist(keras_home, n_train=40, n_test=20)
    b = build_datasets(DataConfig(spec="mnist"), (32, 32, 1), 16, splits=("train", "val", "eval"))
    assert b.class_names == [str(i) for i in range(10)] and b.eval_split == "test"
    assert b.counts == {"train": 30, "val": 10, "eval": 20}  # one held out per class (4 each)
    x, y = next(iter(b.eval))
    assert x.shape == (16, 32, 32, 1) and y.shape == (16, 10)
    with np.load(f"{keras_home}/datasets/mnist.npz") as f:
        raw, labels = f["x_test"], f["y_test"]
    x, y = batches(b.eval)
    np.testing.assert_array_equal(y.argmax(1), labels)  # test split: theirs, in order
    assert np.abs(x[..., 0].mean(axis=(1, 2)) - raw.mean(axis=(1, 2))).max() < 2.0


def test_fashion_mnist_from_the_keras_cache_has_its_class_names(keras_home, offline):
    h.keras_cache_fashion(keras_home)
    b = build_datasets(DataConfig(spec="fashion_mnist", val_split=0.0), (28, 28, 3), 8, splits=("train", "test"))
    assert b.class_names[:2] == ["T-shirt/top", "Trouser"] and b.class_names[-1] == "Ankle boot"
    assert b.counts == {"train": 20, "test": 10}
    x, y = batches(b.test)
    np.testing.assert_array_equal(x[:, 3, 3, 1], 25.0 * y.argmax(1))  # pixels = 25 * label


def test_cifar10_tarball_and_cifar100_extracted_layouts(tmp_path, offline):
    h.keras_cache_cifar10(str(tmp_path))
    h.keras_cache_cifar100(str(tmp_path))
    c10 = build_datasets(DataConfig(spec="cifar10", data_dir=str(tmp_path), val_split=0.0), (32, 32, 3), 64,
                         splits=("train", "test"))
    assert c10.counts == {"train": 20, "test": 4} and c10.class_names[0] == "airplane"
    c100 = build_datasets(DataConfig(spec="cifar100", data_dir=str(tmp_path), val_split=0.0), (32, 32, 3), 64,
                          splits=("test",))
    assert c100.num_classes == 100 and c100.class_names[7] == "name7"  # read from the archive's meta
    # Pixels come out HWC in RGB order, as keras.datasets.cifar10.load_data() gives them.
    import pickle
    import tarfile

    with tarfile.open(f"{tmp_path}/datasets/cifar-10-python.tar.gz") as tar:
        batch = pickle.load(tar.extractfile("cifar-10-batches-py/test_batch"), encoding="bytes")
    expected = np.asarray(batch[b"data"]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(batches(c10.test)[0], expected)


@pytest.mark.parametrize("name, fix", [
    ("mnist", "mnist.npz"), ("fashion_mnist", "apt-get install dataset-fashion-mnist"),
    ("cifar10", "cifar-10-python.tar.gz"), ("cifar100", "cifar-100-python.tar.gz")])
def test_keras_dataset_offline_fails_fast_saying_what_to_put_where(tmp_path, offline, name, fix):
    start = time.monotonic()
    with pytest.raises(DataError) as info:
        build_datasets(DataConfig(spec=name, data_dir=str(tmp_path)), (32, 32, 1), 8)
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert fix in message and str(tmp_path) in message and "\n" not in message


def test_corrupt_keras_cache_file_is_a_data_error(keras_home):
    os.makedirs(f"{keras_home}/datasets")
    with open(f"{keras_home}/datasets/mnist.npz", "wb") as f:
        f.write(b"not a zip")
    with pytest.raises(DataError, match="mnist.npz.*download it again"):
        build_datasets(DataConfig(spec="mnist"), (28, 28, 1), 8)


# tfds ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    return h.tiny_tfds(str(tmp_path_factory.mktemp("tfds")))


@pytest.mark.parametrize("cache", ["memory", "none"])
def test_tfds_prepared_dataset_loads_by_name_from_the_directory(tfds_dir, cache):
    cfg = DataConfig(spec="tfds:kerascnn_tiny", data_dir=tfds_dir, cache=cache)
    b = build_datasets(cfg, (8, 8, 3), 4, splits=("train", "val", "eval"))
    assert b.class_names == ["cat", "dog", "fish"] and b.eval_split == "test"
    assert b.counts == {"train": 27, "val": 3, "eval": 9}
    for ds in (b.train, b.val, b.eval):
        x, y = batches(ds)
        np.testing.assert_allclose(x[:, 4, 4, 0], 40.0 * y.argmax(1) + 30.0)  # each image holds its label
    val = batches(b.val)[0][:, 0, 0, 0]
    again = build_datasets(cfg, (8, 8, 3), 4, splits=("val",))
    np.testing.assert_array_equal(batches(again.val)[0][:, 0, 0, 0], val)  # the same held-out examples


def test_tfds_split_expression_and_validation_split(tmp_path):
    data_dir = h.tiny_tfds(str(tmp_path), with_validation=True)
    b = build_datasets(DataConfig(spec="tfds:kerascnn_tiny:train[:50%]", data_dir=data_dir), (8, 8, 1), 64,
                       splits=("train", "val"))
    assert b.counts == {"train": 15, "val": 6}  # its own validation split, no held-out
    assert "held out" not in b.description


def test_tfds_unprepared_offline_fails_fast_with_how_to_prepare(tmp_path, offline):
    start = time.monotonic()
    with pytest.raises(DataError) as info:
        build_datasets(DataConfig(spec="tfds:mnist", data_dir=str(tmp_path)), (28, 28, 1), 8)
    assert time.monotonic() - start < 15
    message = str(info.value)
    assert "tfds build mnist" in message and "--data-dir" in message and str(tmp_path) in message


def test_tfds_unknown_name_and_split(tfds_dir):
    with pytest.raises(DataError, match="Did you mean mnist"):
        build_datasets(DataConfig(spec="tfds:mnistt", data_dir=tfds_dir), (8, 8, 1), 8)
    with pytest.raises(DataError, match="no split 'training'.*train, test"):
        build_datasets(DataConfig(spec="tfds:kerascnn_tiny:training", data_dir=tfds_dir), (8, 8, 1), 8)


# idx -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False])
def test_idx_dir_with_and_without_gzip(tmp_path, gz):
    root, arrays = h.idx_dir(str(tmp_path / "digits-idx"), n_train=30, n_test=10, gz=gz)
    np.testing.assert_array_equal(read_idx(f"{root}/train-images-idx3-ubyte" + (".gz" if gz else "")),
                                  arrays["train"][0])
    b = build_datasets(DataConfig(spec=f"idx:{root}"), (6, 6, 1), 8, splits=("train", "val", "test"))
    assert b.class_names == [str(i) for i in range(10)]
    assert b.counts == {"train": 20, "val": 10, "test": 10}
    x, y = batches(b.test)
    np.testing.assert_array_equal(x[:, 2, 2, 0], 25.0 * arrays["t10k"][1])


def test_idx_class_names_from_fashion_path_or_classes_txt(tmp_path):
    fashion, _ = h.idx_dir(str(tmp_path / "fashion-mnist"), n_train=10, n_test=0)
    assert build_datasets(DataConfig(spec=f"idx:{fashion}", val_split=0.0), (6, 6, 1), 8,
                          splits=("train",)).class_names[0] == "T-shirt/top"
    listed, _ = h.idx_dir(str(tmp_path / "letters"), n_train=10, n_test=0)
    with open(f"{listed}/classes.txt", "w") as f:
        f.write("\n".join("abcdefghij") + "\n")
    assert build_datasets(DataConfig(spec=f"idx:{listed}", val_split=0.0), (6, 6, 1), 8,
                          splits=("train",)).class_names == list("abcdefghij")


def test_idx_errors_name_the_file(tmp_path):
    root, _ = h.idx_dir(str(tmp_path / "a"), gz=False)
    os.remove(f"{root}/train-labels-idx1-ubyte")
    with pytest.raises(DataError, match="no train-labels-idx1-ubyte"):
        build_datasets(DataConfig(spec=f"idx:{root}"), (6, 6, 1), 8)
    root, _ = h.idx_dir(str(tmp_path / "b"), gz=False)
    h.truncate(f"{root}/train-images-idx3-ubyte", keep=0.7)
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*truncated"):
        build_datasets(DataConfig(spec=f"idx:{root}"), (6, 6, 1), 8)
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        build_datasets(DataConfig(spec=f"idx:{tmp_path}"), (6, 6, 1), 8)
