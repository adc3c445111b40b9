"""tf.data pipelines: batched (float32 [0, 255] images at the model's size, one-hot labels).

Two shapes of pipeline cover every source:

* In memory: the images sit in one tensor (uint8 at the model's size when cached; the raw arrays
  otherwise) and each batch is one `tf.gather` of a slice of a per-epoch permutation. This is how
  Keras itself feeds `model.fit(x, y)` numpy arrays, so it is at least as fast: there is no
  per-example tf.data work, and resizing happens once, not every epoch. Files and TFDS records that
  fit the cache budget are decoded once into this form (`materialize`).
* Streamed: file names (or encoded TFDS records) are shuffled, then read, decoded and resized in a
  parallel map; memory stays bounded by the prefetch buffers, whatever the data size.

Decoded caches are kept as uint8 (rounded after resizing): a quarter of the float32 memory, and a
rounding error of at most half a grey level.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from kerascnn.data import images as img
from kerascnn.data.sources import ArraySplit, FileSplit, Split, TfdsSplit

Shape = Tuple[int, int, int]
CHUNK = 1024  # images resized or decoded per step when building a cache


def fits_in_memory(cache: str, count: int, shape: Shape, max_bytes: int) -> bool:
    """The cache decision: "memory" always, "none" never, "auto" when the decoded uint8 split fits."""
    if cache == "auto":
        return count * int(np.prod(shape)) <= max_bytes
    return cache == "memory"


def resize_array(images: np.ndarray, shape: Shape) -> np.ndarray:
    """Raw (N, h, w, c) pixels -> uint8 (N, *shape), resized once, in chunks to bound the float32 peak."""
    if images.shape[1:] == tuple(shape) and images.dtype == np.uint8:
        return images
    out = np.empty((len(images), *shape), np.uint8)
    for start in range(0, len(images), CHUNK):
        resized = img.to_shape(images[start:start + CHUNK], shape).numpy()
        out[start:start + CHUNK] = np.clip(np.rint(resized), 0, 255)
    return out


def _one_hot(labels, num_classes: int):
    import tensorflow as tf

    return tf.one_hot(tf.cast(labels, tf.int32), num_classes, dtype=tf.float32)


def _index_batches(count: int, batch_size: int, shuffle_seed: Optional[int]):
    """A dataset of index vectors, one per batch; a fresh seeded permutation each epoch when shuffling."""
    import tensorflow as tf

    full = count // batch_size * batch_size

    def batches(order):  # as Keras does: whole batches by one reshape, then the remainder
        ds = tf.data.Dataset.from_tensor_slices(tf.reshape(order[:full], [-1, batch_size]))
        return ds.concatenate(tf.data.Dataset.from_tensors(order[full:])) if full < count else ds

    if shuffle_seed is None:
        return batches(tf.range(count, dtype=tf.int64))
    seeds = tf.data.Dataset.random(seed=shuffle_seed, rerandomize_each_iteration=True).batch(2).take(1)
    orders = seeds.map(lambda s: tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64), s))
    return orders.prefetch(1).flat_map(batches)


def array_dataset(images: np.ndarray, labels: np.ndarray, shape: Shape, num_classes: int, batch_size: int,
                  shuffle_seed: Optional[int] = None):
    """Batches gathered from in-memory arrays; images not yet at `shape` are resized per batch."""
    import tensorflow as tf

    at_shape = images.shape[1:] == tuple(shape)
    # from_tensors(...).repeat() hands the same tensor to every batch without copying it, and keeps
    # it out of the graph (a captured constant would hit the 2 GB GraphDef limit).
    data = tf.data.Dataset.from_tensors((images, labels.astype(np.int32))).repeat()

    def gather(index, arrays):
        batch = tf.gather(arrays[0], index)
        batch = tf.cast(batch, tf.float32) if at_shape else img.to_shape(batch, shape)
        return batch, _one_hot(tf.gather(arrays[1], index), num_classes)

    indices = _index_batches(len(labels), batch_size, shuffle_seed)
    ds = tf.data.Dataset.zip((indices, data)).map(gather, num_parallel_calls=tf.data.AUTOTUNE)
    # A known length lets Keras size its epochs and progress bar from the first epoch.
    ds = ds.apply(tf.data.experimental.assert_cardinality(-(-len(labels) // batch_size)))
    return ds.with_options(in_memory_options())


def in_memory_options():
    """What Keras sets for its own numpy-array datasets: tf.data's default graph rewrites serialise the
    whole pipeline, image tensor included, every time an epoch's iterator is made, so skip them."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return options


def _file_elements(split: FileSplit, shape: Shape, shuffle_seed: Optional[int]):
    """(image float32 at `shape`, label, index) per readable file; a file that fails to decode is dropped.

    The scan already refused empty, truncated, non-image and oversized files by their headers and
    tails; `ignore_errors` is the last net for what only a full decode finds (a corrupt JPEG scan
    in the middle of a file), so that one bad file never stops an epoch.
    """
    import tensorflow as tf

    branches = img.jpeg_branches(split.sizes, split.kinds, shape[:2])
    ds = tf.data.Dataset.from_tensor_slices((split.paths.astype(str), branches, split.orients.astype(np.int32),
                                             split.labels.astype(np.int32), np.arange(len(split))))
    if shuffle_seed is not None:  # shuffle names, not decoded images: the buffer stays small
        ds = ds.shuffle(len(split), seed=shuffle_seed, reshuffle_each_iteration=True)

    decode = img.decoder(tuple(shape))
    return ds.map(lambda path, branch, orient, label, index: (decode(path, branch, orient), label, index),
                  num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()


def _tfds_elements(split: TfdsSplit, shape: Shape, shuffle_seed: Optional[int]):
    """(image, label, index) per record of a TFDS split, decoded from its encoded bytes in a parallel map."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    read_config = tfds.ReadConfig(shuffle_seed=shuffle_seed, try_autocache=False)
    ds = split.builder.as_dataset(split=split.split, decoders={split.image_key: tfds.decode.SkipDecoding()},
                                  shuffle_files=shuffle_seed is not None and split.keep is None,
                                  read_config=read_config)
    ds = ds.map(lambda ex: (ex[split.image_key], ex[split.label_key]))
    if split.keep is not None:
        keep = tf.constant(split.keep)
        ds = ds.enumerate().filter(lambda i, ex: tf.gather(keep, i)).map(lambda i, ex: ex)
    ds = ds.enumerate().map(lambda i, ex: (ex[0], ex[1], i))  # i: position within the (kept) split
    if shuffle_seed is not None:  # encoded records are small; the buffer bounds memory
        ds = ds.shuffle(min(len(split), 10_000), seed=shuffle_seed, reshuffle_each_iteration=True)

    decode = img.decoder(tuple(shape), from_path=False)
    return ds.map(lambda data, label, index: (decode(data, img.NATIVE_BRANCH, 1), label, index),
                  num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()


def elements(split: Split, shape: Shape, shuffle_seed: Optional[int] = None):
    """Unbatched (image float32 at `shape`, label, index) for a file or TFDS split."""
    if isinstance(split, FileSplit):
        return _file_elements(split, shape, shuffle_seed)
    return _tfds_elements(split, shape, shuffle_seed)


def stream_dataset(split: Split, shape: Shape, num_classes: int, batch_size: int,
                   shuffle_seed: Optional[int] = None):
    """Batches decoded on the fly (parallel map), for splits larger than the cache budget."""
    import tensorflow as tf

    ds = elements(split, shape, shuffle_seed).batch(batch_size)
    return ds.map(lambda x, y, i: (x, _one_hot(y, num_classes)), num_parallel_calls=tf.data.AUTOTUNE)


def materialize(split: Split, shape: Shape, rounded: bool = True) -> Tuple[ArraySplit, np.ndarray]:
    """Decode a file or TFDS split once into memory.

    Returns the images at `shape` (uint8, or float32 when not `rounded`) with their labels, and the
    index of each row in `split`: the examples missing from it failed to decode.
    """
    count = len(split)
    out = np.empty((count, *shape), np.uint8 if rounded else np.float32)
    labels = np.empty(count, np.int64)
    order = np.empty(count, np.int64)
    position = 0
    for batch, label, index in elements(split, shape).batch(CHUNK).as_numpy_iterator():
        n = len(index)
        out[position:position + n] = np.clip(np.rint(batch), 0, 255) if rounded else batch
        labels[position:position + n] = label
        order[position:position + n] = index
        position += n
    return ArraySplit(out[:position], labels[:position]), order[:position]


def sample_for_stats(split: Split, shape: Shape, seed: int, count: int = 1024) -> np.ndarray:
    """Up to `count` training images at `shape` (for PCA colour statistics), a seeded random sample."""
    rng = np.random.default_rng(seed)
    if isinstance(split, TfdsSplit) and split.keep is None:
        return np.concatenate([b for b, _, _ in elements(split, shape).take(count).batch(CHUNK).as_numpy_iterator()])
    pick = np.sort(rng.choice(len(split), min(count, len(split)), replace=False))
    if isinstance(split, ArraySplit) and split.images.shape[1:] == tuple(shape):
        return split.images[pick]
    subset = split.take(pick)
    if isinstance(subset, ArraySplit):
        return resize_array(subset.images, shape)
    return materialize(subset, shape)[0].images


def failed_examples(split: Split, decoded: np.ndarray) -> List[Tuple[str, str]]:
    """(name, reason) for the examples of `split` whose index is not in `decoded`."""
    failed = np.setdiff1d(np.arange(len(split)), decoded)
    if isinstance(split, FileSplit):
        return [(str(split.paths[i]), "failed to decode") for i in failed]
    return [(f"{getattr(split, 'split', 'example')}[{i}]", "failed to decode") for i in failed]
