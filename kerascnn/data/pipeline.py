"""tf.data pipelines: batched (float32 [0, 255] images at the model's size, one-hot labels).

Two shapes of pipeline cover every source:

* In memory: the images sit in one tensor (uint8 at the model's size when cached; the raw arrays
  otherwise) and each batch is one `tf.gather` of a batch of shuffled indices. This is how Keras
  itself feeds `model.fit(x, y)` numpy arrays, with a cheaper per-epoch iterator: training on it
  measured 1.08-1.12x the images/s of `model.fit` on the same numpy arrays (LeNet-5, digits and
  Fashion-MNIST, 2 CPU cores). Resizing happens once, not every epoch. Files and TFDS records that
  fit the cache budget are decoded once into this form (`materialize`).
* Streamed: file names (or encoded TFDS records) are shuffled, then read, decoded and resized in a
  parallel map; memory stays bounded by the prefetch buffers, whatever the data size.

Decoded caches are kept as uint8 (rounded after resizing): a quarter of the float32 memory, and a
rounding error of at most half a grey level.
"""
from __future__ import annotations

import functools
from typing import List, Optional, Tuple

import numpy as np

from kerascnn.config import AugmentConfig
from kerascnn.data import images as img
from kerascnn.data.augment import resample_image
from kerascnn.data.sources import ArraySplit, FileSplit, Split, TfdsSplit

Shape = Tuple[int, int, int]
CHUNK = 256  # images resized or decoded per step when building a cache


def fits_in_memory(cache: str, count: int, shape: Shape, max_bytes: int) -> bool:
    """The cache decision: "memory" always, "none" never, "auto" when the decoded uint8 split fits."""
    if cache == "auto":
        return count * int(np.prod(shape)) <= max_bytes
    return cache == "memory"


def resize_array(images: np.ndarray, shape: Shape) -> np.ndarray:
    """Raw (N, h, w, c) pixels -> uint8 (N, *shape), resized once, in chunks to bound the float32 peak."""
    if images.shape[1:] == tuple(shape) and images.dtype == np.uint8:
        return images
    import tensorflow as tf

    out = np.empty((len(images), *shape), np.uint8)
    for start in range(0, len(images), CHUNK):
        resized = img.to_shape(images[start:start + CHUNK], shape)
        out[start:start + CHUNK] = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8).numpy()
    return out


def _one_hot(labels, num_classes: int):
    import tensorflow as tf

    return tf.one_hot(tf.cast(labels, tf.int32), num_classes, dtype=tf.float32)


PERMUTE_FROM = 8192  # examples; from here on an epoch's order is one permutation op, not a shuffle buffer


def _index_batches(count: int, batch_size: int, shuffle_seed: Optional[int]):
    """A dataset of index vectors, one per batch; in a new seeded order each epoch when shuffling.

    Small splits shuffle the int64 indices element by element (~1 us each), whose iterator is the
    cheapest to create (8.5 ms per epoch of the 1,618 training digits, where a permutation op costs
    14 ms and Keras's own numpy pipeline ~13 ms). From PERMUTE_FROM examples on, the buffer fill
    stalls every epoch's first batch and the per-element work adds up (32,768 images: first batch
    20 ms, 86 ms of pipeline work per epoch), so one stateless permutation per epoch (seeded from a
    per-epoch random seed) is cut into batches instead (12 ms, 52 ms).
    """
    import tensorflow as tf

    if shuffle_seed is not None and count < PERMUTE_FROM:
        indices = tf.data.Dataset.range(count).shuffle(count, seed=shuffle_seed, reshuffle_each_iteration=True)
        return indices.batch(batch_size)
    full = count // batch_size * batch_size

    def cut(order):
        batches = tf.data.Dataset.from_tensor_slices(tf.reshape(order[:full], [-1, batch_size]))
        return batches.concatenate(tf.data.Dataset.from_tensors(order[full:])) if full < count else batches

    if shuffle_seed is None:
        return cut(np.arange(count, dtype=np.int64))
    seeds = tf.data.Dataset.random(seed=shuffle_seed, rerandomize_each_iteration=True).take(1)
    return seeds.flat_map(lambda s: cut(tf.random.experimental.stateless_shuffle(
        tf.range(count, dtype=tf.int64), seed=tf.stack([s, s]))))


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
    # A gather is too quick to gain from parallel calls (the final prefetch already overlaps it with
    # training); a per-batch resize is not.
    parallel = None if at_shape else tf.data.AUTOTUNE
    ds = tf.data.Dataset.zip((indices, data)).map(gather, num_parallel_calls=parallel)
    return ds.with_options(in_memory_options())


def in_memory_options():
    """What Keras sets for its own numpy-array datasets: tf.data's default graph rewrites serialise the
    whole pipeline, image tensor included, every time an epoch's iterator is made, so skip them."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return options


def epoch_options():
    """tf.data's autotuner off, for every training and validation pipeline.

    Keras makes a new iterator for each epoch's training and validation pass, and destroying an
    iterator joins its autotuner thread: at random epoch boundaries that join waited ~1 s (TF 2.21;
    0 to 5 of 8 LeNet-5 epochs of 1.3 s each, in every run; bench/RESULTS.md). These pipelines need
    no tuning model: without it an AUTOTUNE map runs as many parallel calls as there are cores, and
    prefetch(AUTOTUNE) still grows its buffer while the consumer waits.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def _file_records(split: FileSplit, shape: Shape, shuffle_seed: Optional[int]):
    """(path, decode branch, orientation, label, index) per file; the branches in use; any rotated?"""
    import tensorflow as tf

    branches = img.jpeg_branches(split.sizes, split.kinds, shape[:2])
    ds = tf.data.Dataset.from_tensor_slices((split.paths.astype(str), branches, split.orients.astype(np.int32),
                                             split.labels.astype(np.int32), np.arange(len(split))))
    if shuffle_seed is not None:  # shuffle names, not decoded images: the buffer stays small
        ds = ds.shuffle(len(split), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds, tuple(np.unique(branches).tolist()), bool((split.orients != 1).any())


def _tfds_records(split: TfdsSplit, shuffle_seed: Optional[int]):
    """(encoded image, branch, orientation, label, index) per record of a TFDS split."""
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
    # i: the position within the (kept) split.
    ds = ds.enumerate().map(lambda i, ex: (ex[0], img.NATIVE_BRANCH, 1, tf.cast(ex[1], tf.int32), i))
    if shuffle_seed is not None:  # encoded records are small; the buffer bounds memory
        ds = ds.shuffle(min(len(split), 10_000), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds, (img.NATIVE_BRANCH,), False


@functools.lru_cache(maxsize=None)
def _augmenting_decoder(shape: Shape, from_path: bool, branches: Tuple[int, ...], oriented: bool,
                        geometry: AugmentConfig):
    """Like `images.decoder`, but the resize to `shape` is `augment.resample_image`'s random box."""
    import tensorflow as tf

    def decode(source, branch, orient, seed):
        data = tf.io.read_file(source) if from_path else source
        image = img.decode_image(data, branch, orient, branches, oriented)
        return img.to_channels(resample_image(image, seed, shape[:2], geometry), shape[2])

    spec = [tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32),
            tf.TensorSpec([2], tf.int64)]
    return tf.function(decode, input_signature=spec, autograph=False)


def elements(split: Split, shape: Shape, shuffle_seed: Optional[int] = None,
             geometry: Optional[AugmentConfig] = None, augment_seed: int = 0):
    """Unbatched (image float32 at `shape`, label, index) for a file or TFDS split, decoded in a parallel map.

    With `geometry` (training only), each image's random crop/translation/flips happen in the same
    resampling pass as its resize, with per-image seeds new every epoch.

    The scan already refused empty, truncated, non-image and oversized files by their headers and
    tails; `ignore_errors` is the last net for what only a full decode finds (a corrupt scan in the
    middle of a file), so that one bad file never stops an epoch.
    """
    import tensorflow as tf

    if isinstance(split, FileSplit):
        records, branches, oriented = _file_records(split, shape, shuffle_seed)
    else:
        records, branches, oriented = _tfds_records(split, shuffle_seed)
    from_path = isinstance(split, FileSplit)
    if geometry is None:
        decode = img.decoder(tuple(shape), from_path, branches, oriented)
        ds = records.map(lambda source, branch, orient, label, index: (decode(source, branch, orient), label, index),
                         num_parallel_calls=tf.data.AUTOTUNE)
    else:
        decode = _augmenting_decoder(tuple(shape), from_path, branches, oriented, geometry)
        seeds = tf.data.Dataset.random(seed=augment_seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((records, seeds)).map(
            lambda r, seed: (decode(r[0], r[1], r[2], seed), r[3], r[4]), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.ignore_errors()


class StreamTracker:
    """Which examples of a streamed split its passes delivered, to name those that failed to decode.

    The header scan refuses almost every bad file before training; what only a full decode finds is
    dropped by `ignore_errors` in the middle of an epoch. Each batch's example indices are marked
    here (one `tf.numpy_function` call per batch), and `new_failures()`, called after a complete
    pass, names the examples the pass missed that were not reported before.
    """

    def __init__(self, split: Split):
        self.split = split
        self._seen = np.zeros(len(split), bool)
        self._reported = np.zeros(len(split), bool)

    def mark(self, index: np.ndarray) -> np.int64:
        self._seen[index] = True
        return np.int64(len(index))

    def new_failures(self) -> List[Tuple[str, str]]:
        """(name, reason) of the examples missing from the pass since the last call; starts a new pass."""
        missing = ~self._seen & ~self._reported
        self._reported |= missing
        self._seen[:] = False
        if not missing.any():
            return []
        return failed_examples(self.split, np.flatnonzero(~missing))


def stream_dataset(split: Split, shape: Shape, num_classes: int, batch_size: int,
                   shuffle_seed: Optional[int] = None, geometry: Optional[AugmentConfig] = None,
                   augment_seed: int = 0, tracker: Optional[StreamTracker] = None):
    """Batches decoded on the fly (parallel map), for splits larger than the cache budget."""
    import tensorflow as tf

    ds = elements(split, shape, shuffle_seed, geometry, augment_seed).batch(batch_size)

    def batch(x, y, index):
        if tracker is not None:
            marked = tf.numpy_function(tracker.mark, [index], tf.int64, stateful=True)
            with tf.control_dependencies([marked]):
                x = tf.identity(x)
        return x, _one_hot(y, num_classes)

    return ds.map(batch, num_parallel_calls=tf.data.AUTOTUNE)


def materialize(split: Split, shape: Shape, rounded: bool = True) -> Tuple[ArraySplit, np.ndarray]:
    """Decode a file or TFDS split once into memory.

    Returns the images at `shape` (uint8, or float32 when not `rounded`) with their labels, and the
    index of each row in `split`: the examples missing from it failed to decode.
    """
    import tensorflow as tf

    count = len(split)
    out = np.empty((count, *shape), np.uint8 if rounded else np.float32)
    labels = np.empty(count, np.int64)
    order = np.empty(count, np.int64)
    position = 0
    ds = elements(split, shape)
    if rounded:  # in the parallel map, not in numpy afterwards (single-threaded, 4x the bytes)
        ds = ds.map(lambda x, y, i: (tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8), y, i),
                    num_parallel_calls=tf.data.AUTOTUNE)
    for batch, label, index in ds.batch(CHUNK).prefetch(1).as_numpy_iterator():
        n = len(index)
        out[position:position + n] = batch
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
