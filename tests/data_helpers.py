"""Tiny on-disk data for the data tests: images of every awkward kind, IDX files, a Keras cache, a TFDS dir;
and the tests' tiny CNN (`tiny_cnn`).

Everything is written into a test's tmp_path, so the tests need no network and no shared data.
"""
from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import tarfile
import zlib
from typing import Dict, List, Optional, Tuple

import numpy as np
from PIL import Image


def pattern(h: int, w: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    """A smooth, asymmetric uint8 image (JPEG-friendly, so decoders agree closely)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    rng = np.random.default_rng(seed)
    planes = [(np.sin(x / (3 + 2 * rng.random()) + c) * 60 + y * 120 / max(h - 1, 1) + 40) for c in range(channels)]
    img = np.clip(np.stack(planes, axis=-1), 0, 255).astype(np.uint8)
    return img[..., 0] if channels == 1 else img


def save(path: str, array: np.ndarray, mode: str = None, fmt: str = None, **kwargs) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = Image.fromarray(array)
    if mode:
        image = image.convert(mode)
    image.save(path, format=fmt, **kwargs)
    return path


def bomb_png(path: str, side: int = 40000) -> str:
    """A valid 1-bit PNG that decodes to side x side pixels, a few hundred KB on disk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(1)
    body = b"".join(compressor.compress(row * 1000) for _ in range(side // 1000)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def truncate(path: str, keep: float = 0.5) -> str:
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: int(len(data) * keep)])
    return path


def corrupt_middle(path: str) -> str:
    """Flip bytes in the middle: header and tail intact, the pixel data broken."""
    data = bytearray(open(path, "rb").read())
    for i in range(len(data) // 2, len(data) // 2 + 8):
        data[i] ^= 0xFF
    open(path, "wb").write(bytes(data))
    return path


def good_images(root: str) -> Dict[str, str]:
    """One usable file of every awkward kind, spread over classes "cat" and "dog"; {kind: path}."""
    img = pattern(24, 32)
    return {
        "rgb_jpeg": save(f"{root}/cat/a.jpg", img, quality=95),
        "upper_ext": save(f"{root}/cat/B.JPG", img, fmt="JPEG"),
        "gray_jpeg": save(f"{root}/cat/gray.jpeg", img, mode="L"),
        "cmyk_jpeg": save(f"{root}/cat/cmyk.jpg", img, mode="CMYK"),
        "tiff": save(f"{root}/cat/scan.tif", img),
        "nested": save(f"{root}/cat/more/deeper.png", img),
        "palette_png": save(f"{root}/dog/pal.png", img, mode="P"),
        "rgba_png": save(f"{root}/dog/rgba.PNG", np.dstack([img, np.full(img.shape[:2], 128, np.uint8)]), fmt="PNG"),
        "png16": save(f"{root}/dog/g16.png", img[..., 0].astype(np.uint16) * 257),
        "webp": save(f"{root}/dog/x.webp", img, lossless=True),
        "gif": save(f"{root}/dog/anim.gif", img),
        "bmp": save(f"{root}/dog/x.bmp", img),
        "unicode_name": save(f"{root}/dog/name with spaces ñ ü 猫.jpg", img),
    }


def bad_images(root: str) -> Dict[str, str]:
    """Files that must be skipped, with the class folders they sit in; {kind: path}."""
    os.makedirs(f"{root}/cat", exist_ok=True)
    os.makedirs(f"{root}/dog", exist_ok=True)
    paths = {
        "empty": f"{root}/cat/empty.jpg",
        # Cut in the pixel data (the header reads fine), and cut inside the header.
        "truncated_jpeg": truncate(save(f"{root}/cat/cut.jpg", pattern(256, 256))),
        "truncated_png": truncate(save(f"{root}/dog/cut.png", pattern(64, 64))),
        "truncated_header": truncate(save(f"{root}/dog/stub.jpg", pattern(64, 64)), keep=0.1),
        "text_as_jpeg": f"{root}/dog/readme.jpg",
        "bomb": bomb_png(f"{root}/cat/bomb.png"),
        "not_image_ext": f"{root}/cat/notes.txt",
    }
    # A Latin-1 file name (as unzipped from an old archive): not valid UTF-8, so TF cannot open it.
    latin1 = os.path.join(os.fsencode(f"{root}/dog"), b"caf\xe9.jpg")
    with open(latin1, "wb") as f:
        f.write(open(save(f"{root}/tmp.jpg", pattern(8, 8)), "rb").read())
    os.remove(f"{root}/tmp.jpg")
    paths["latin1_name"] = os.fsdecode(latin1)
    paths["broken_link"] = f"{root}/dog/gone.jpg"
    os.symlink(f"{root}/dog/deleted-since.jpg", paths["broken_link"])
    open(paths["empty"], "wb").close()
    with open(paths["text_as_jpeg"], "w") as f:
        f.write("this is not a picture\n" * 20)
    with open(paths["not_image_ext"], "w") as f:
        f.write("labels were collected by hand\n")
    return paths


def hidden_files(root: str) -> List[str]:
    """macOS / Windows litter that must be ignored silently (not even listed as skipped)."""
    paths = [f"{root}/cat/.DS_Store", f"{root}/cat/Thumbs.db", f"{root}/dog/._name.jpg", f"{root}/.hidden/x.jpg",
             f"{root}/__MACOSX/cat/._a.jpg"]
    for p in paths:
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(b"\x00\x05\x16\x07 AppleDouble junk")
    return paths


def class_folder(root: str, classes: Dict[str, int], size: Tuple[int, int] = (20, 28), seed: int = 0) -> str:
    """root/<class>/<i>.png with `classes[name]` images each; class k's images are filled with 20*k+10."""
    for k, (name, count) in enumerate(sorted(classes.items())):
        for i in range(count):
            value = np.full((*size, 3), 20 * k + 10, np.uint8)
            value[0, 0] = i  # distinct files
            save(f"{root}/{name}/{i:03d}.png", value)
    return root


def write_idx(path: str, array: np.ndarray) -> str:
    """An IDX file (ubyte), gzip-compressed when `path` ends in .gz."""
    array = np.asarray(array, np.uint8)
    data = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    with (gzip.open if path.endswith(".gz") else open)(path, "wb") as f:
        f.write(data)
    return path


def idx_dir(root: str, n_train: int = 30, n_test: int = 10, gz: bool = True, side: int = 6) -> Tuple[str, dict]:
    """train-*/t10k-* IDX files of tiny images whose pixels all equal 25 * label."""
    os.makedirs(root, exist_ok=True)
    ext = ".gz" if gz else ""
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = np.repeat(labels[:, None, None] * 25, side, 1).repeat(side, 2).astype(np.uint8)
        write_idx(f"{root}/{prefix}-images-idx3-ubyte{ext}", images)
        write_idx(f"{root}/{prefix}-labels-idx1-ubyte{ext}", labels)
        arrays[prefix] = (images, labels)
    return root, arrays


def keras_cache_mnist(keras_home: str, n_train: int = 40, n_test: int = 20) -> str:
    """$KERAS_HOME/datasets/mnist.npz in keras.datasets.mnist's format (uint8 (N, 28, 28), labels (N,))."""
    os.makedirs(f"{keras_home}/datasets", exist_ok=True)
    rng = np.random.default_rng(0)
    path = f"{keras_home}/datasets/mnist.npz"
    np.savez(path, x_train=rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
             y_train=(np.arange(n_train) % 10).astype(np.uint8),
             x_test=rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
             y_test=(np.arange(n_test) % 10).astype(np.uint8))
    return path


def keras_cache_fashion(keras_home: str) -> str:
    root, _ = idx_dir(f"{keras_home}/datasets/fashion-mnist", n_train=20, n_test=10, gz=True, side=28)
    return root


def _cifar_batch(n: int, label_key: str, num_classes: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    batch = {b"batch_label": b"test", label_key.encode(): [int(i % num_classes) for i in range(n)],
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             b"filenames": [f"img_{i}.png".encode() for i in range(n)]}
    return pickle.dumps(batch, protocol=2)  # the real files are Python 2 era pickles


def keras_cache_cifar10(keras_home: str, per_batch: int = 4) -> str:
    """$KERAS_HOME/datasets/cifar-10-python.tar.gz: the archive as downloaded from Toronto, in miniature."""
    members = {f"cifar-10-batches-py/data_batch_{i}": _cifar_batch(per_batch, "labels", 10, i) for i in range(1, 6)}
    members["cifar-10-batches-py/test_batch"] = _cifar_batch(per_batch, "labels", 10, 9)
    members["cifar-10-batches-py/batches.meta"] = pickle.dumps(
        {b"label_names": [n.encode() for n in ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                                "horse", "ship", "truck")]}, protocol=2)
    return _tar(f"{keras_home}/datasets/cifar-10-python.tar.gz", members)


def keras_cache_cifar100(keras_home: str, n: int = 6) -> str:
    """The extracted layout keras 3 leaves: datasets/cifar-100-python-target/cifar-100-python/{train,test,meta}."""
    root = f"{keras_home}/datasets/cifar-100-python-target/cifar-100-python"
    os.makedirs(root, exist_ok=True)
    for name, seed in (("train", 1), ("test", 2)):
        with open(f"{root}/{name}", "wb") as f:
            f.write(_cifar_batch(n, "fine_labels", 100, seed))
    with open(f"{root}/meta", "wb") as f:
        f.write(pickle.dumps({b"fine_label_names": [f"name{i}".encode() for i in range(100)]}, protocol=2))
    return root


def _tar(path: str, members: Dict[str, bytes]) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def tiny_tfds(data_dir: str, with_validation: bool = False) -> str:
    """Prepare a tiny real TFDS dataset "kerascnn_tiny" (3 classes) in `data_dir`, as `tfds build` would.

    The builder class is not registered: the tests then load it by name from the directory alone,
    as a user does with a dataset prepared on another machine and copied over.
    """
    import tensorflow_datasets as tfds

    with tfds.core.registered.skip_registration():
        class KerascnnTiny(tfds.core.GeneratorBasedBuilder):
            VERSION = tfds.core.Version("1.0.0")

            def _info(self):
                return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                    "image": tfds.features.Image(shape=(None, None, 3)),
                    "label": tfds.features.ClassLabel(names=["cat", "dog", "fish"])}))

            def _split_generators(self, dl_manager):
                splits = {"train": self._generate_examples(30, 0), "test": self._generate_examples(9, 1)}
                if with_validation:
                    splits["validation"] = self._generate_examples(6, 2)
                return splits

            def _generate_examples(self, n, seed):
                for i in range(n):
                    label = i % 3
                    image = np.full((10 + seed, 12, 3), 40 * label + 30, np.uint8)
                    yield f"{seed}-{i}", {"image": image, "label": label}

    KerascnnTiny(data_dir=data_dir).download_and_prepare()
    return data_dir


def tiny_cnn(classes: int = 0, *, pool: bool = False, softmax: bool = False, seed: Optional[int] = None):
    """The tests' tiny CNN: raw [0, 255] pixels (32x32x3) in, like every kerascnn model; two named 3x3 'same'
    ReLU convs, "c1" (8 channels) and "c2" (16), with a 2x2 max-pool ("pool") between them when `pool`
    (c2 then 16x16: Grad-CAM's home ground); with `classes`, global average pooling ("avg_pool") and
    "logits", and a separate "predictions" softmax when `softmax`. `seed` seeds the weights (None: the
    caller's random state)."""
    import keras

    if seed is not None:
        keras.utils.set_random_seed(seed)
    inputs = keras.Input((32, 32, 3), name="input")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(x)
    if pool:
        x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="c2")(x)
    if classes:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dense(classes, name="logits")(x)
        if softmax:
            x = keras.layers.Activation("softmax", name="predictions")(x)
    return keras.Model(inputs, x, name="tiny")


def load_bench_script(name: str):
    """bench/NAME.py as a module (the bench folder is no package), for tests of the benchmark scripts."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(f"{name}_under_test",
                                                  Path(__file__).resolve().parents[1] / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
