"""tf.data for image+question splits: batches of ({"image", "question"}, one-hot answers).

The in-memory shape of kerascnn.data.pipeline: the images sit in one uint8 tensor at the model's
size, the distinct questions in one string tensor, and each batch gathers both by index (many
questions share an image, and Sort-of-CLEVR's 196,000 training questions are 36 distinct strings).
Image files are decoded once into that tensor when they fit the cache budget (--cache,
max_decoded_bytes): `materialize`; otherwise each batch reads and decodes its images (streamed;
a file that fails to decode then stops the pass with TensorFlow's error).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from kerascnn.config import DataConfig
from kerascnn.data import images as img
from kerascnn.data import pipeline
from kerascnn.data.vqa_sources import VqaSplit

Shape = Tuple[int, int, int]


def _decode_one(shape: Shape):
    import tensorflow as tf

    def decode(path):
        data = tf.io.decode_image(tf.io.read_file(path), channels=shape[2], expand_animations=False)
        return img.to_shape(tf.ensure_shape(data, [None, None, shape[2]]), shape)

    return decode


def decode_files(paths: np.ndarray, shape: Shape) -> Tuple[np.ndarray, np.ndarray]:
    """Image files -> (uint8 (n, *shape) of those that decoded, the indices into `paths` they are)."""
    import tensorflow as tf

    decode = _decode_one(shape)

    def load(i, path):
        return i, tf.cast(tf.clip_by_value(tf.round(decode(path)), 0, 255), tf.uint8)

    ds = tf.data.Dataset.from_tensor_slices((np.arange(len(paths)), paths.astype(str)))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).ignore_errors().batch(pipeline.CHUNK)
    got = [(i.numpy(), x.numpy()) for i, x in ds]
    if not got:
        return np.zeros((0, *shape), np.uint8), np.zeros((0,), np.int64)
    return np.concatenate([x for _, x in got]), np.concatenate([i for i, _ in got]).astype(np.int64)


def materialize(parts: Dict[str, VqaSplit], shape: Shape, cfg: DataConfig
                ) -> Tuple[Dict[str, VqaSplit], List[Tuple[str, str]]]:
    """The splits with their image files decoded once (the files all splits use, together: held-out
    questions ask about training images too) into uint8 pixels at `shape`, when those fit the cache
    budget; questions whose image fails to decode dropped. Returns them and the failed (file, reason)."""
    files = {n: p for n, p in parts.items() if not p.in_memory}
    paths: Dict[str, int] = {}
    for part in files.values():
        for path in part.images[np.unique(part.image_index)]:
            paths.setdefault(path, len(paths))
    if not paths or not pipeline.fits_in_memory(cfg.cache, len(paths), shape, cfg.max_decoded_bytes):
        return parts, []
    names = np.empty(len(paths), object)
    names[:] = list(paths)
    images, ok = decode_files(names, shape)
    position = np.full(len(paths), -1, np.int64)
    position[ok] = np.arange(len(ok))
    out = dict(parts)
    for name, part in files.items():
        index = position[np.asarray([paths[p] for p in part.images], np.int64)][part.image_index]
        kept = np.flatnonzero(index >= 0)
        out[name] = VqaSplit(images, index[kept], part.questions[kept], part.labels[kept], part.types[kept])
    return out, [(str(p), "does not decode as an image") for p in np.delete(names, ok)]


def _images(split: VqaSplit, shape: Shape):
    """(pixels or file paths, the image of each question, streamed?)."""
    if not split.in_memory:
        used, inverse = np.unique(split.image_index, return_inverse=True)
        return split.images[used].astype(str), inverse, True
    if split.images.shape[1:] == tuple(shape) and split.images.dtype == np.uint8:
        return split.images, split.image_index, False
    used, inverse = np.unique(split.image_index, return_inverse=True)
    return pipeline.resize_array(split.images[used], shape), inverse, False


def vqa_dataset(split: VqaSplit, shape: Shape, num_classes: int, batch_size: int, shuffle_seed: Optional[int],
                ):
    """Batches of `split` in its order (shuffled each epoch with `shuffle_seed`); its images in
    memory (see `materialize`) or streamed from their files."""
    import tensorflow as tf

    images, image_index, streamed = _images(split, shape)
    table, question_index = np.unique(split.questions.astype(str), return_inverse=True)
    labels = split.labels.astype(np.int32)
    arrays = (images, image_index.astype(np.int32), table, question_index.astype(np.int32), labels)
    # One tensor handed to every batch (pipeline.array_dataset's way: no copy, out of the graph).
    data = tf.data.Dataset.from_tensors(arrays).repeat()
    decode = _decode_one(shape) if streamed else None

    def gather(index, arrays):
        pixels, image_index, table, question_index, labels = arrays
        picked = tf.gather(pixels, tf.gather(image_index, index))
        if streamed:
            picked = tf.map_fn(decode, picked, fn_output_signature=tf.TensorSpec(shape, tf.float32))
        else:
            picked = tf.cast(picked, tf.float32)
        inputs = {"image": picked, "question": tf.gather(table, tf.gather(question_index, index))}
        return inputs, pipeline._one_hot(tf.gather(labels, index), num_classes)

    indices = pipeline._index_batches(len(split), batch_size, shuffle_seed)
    ds = tf.data.Dataset.zip((indices, data)).map(gather, num_parallel_calls=tf.data.AUTOTUNE if streamed else None)
    ds = ds.with_options(pipeline.in_memory_options()).prefetch(tf.data.AUTOTUNE).with_options(pipeline.epoch_options())
    return ds


__all__ = ["decode_files", "materialize", "vqa_dataset"]
