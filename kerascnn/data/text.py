"""Text data: `--data tsv:FILE`, `csv:FILE`, a folder of class folders of .txt files, `imdb` and
`tfds:imdb_reviews` (and a few other TFDS text sets), as texts and their classes.

The pipeline hands the model raw strings, a (B,) string tensor with one-hot labels: a text model
tokenizes inside itself (as an image model preprocesses its own pixels), so the data side only has
to find the texts, their labels and the splits.

Tables (tsv:, csv:) are read line by line as UTF-8 (a BOM and CRLF line ends are fine); a line
that does not decode is skipped and counted, like an unreadable image. Columns:

* --text-column: the texts; a 1-based number (as `cut -f`) or a header name; unset: the last column.
* --label-column: the labels; unset: the column before the text column (the one after it when the
  text is the first column), so both `label<TAB>text` and `id<TAB>rating<TAB>text` work as they are.
* --label-threshold T: the labels are numeric ratings: below T is class "negative", above T
  "positive", and a rating equal to T is left out. Unset: the label values are the class names.

The first row is a header when a column is chosen by name, or when it does not look like data:
its label is a word where the other rows' labels are numbers, or a word (like its text) that no
other row has as its label.

Folders follow Keras's `text_dataset_from_directory`: PATH/<class>/*.txt, or PATH/train/<class>/
with val/ (and test/) beside it; one file is one text. `imdb` is keras.datasets.imdb's word
indices decoded back with its word index (lower case, no punctuation: the cleaner original text is
`tfds:imdb_reviews`). Nothing here imports TensorFlow at module level.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np

from kerascnn.config import DataConfig
from kerascnn.data.folders import (check_split_filled, collect_files, folder_holds, list_files, split_layout,
                                   subfolders, summarize_skipped)
from kerascnn.data.images import has_image_extension
from kerascnn.data.text_sources import Skipped, TextSource, TextSplit, concat_text, decode_text, text_split
from kerascnn.errors import DataError

log = logging.getLogger("kerascnn.data")

TABLES = {"tsv:": "\t", "csv:": ","}
# TFDS text classification sets recognised by name (their configs too: imdb_reviews/plain_text).
TFDS_TEXT = ("imdb_reviews", "yelp_polarity_reviews", "ag_news_subset", "glue/sst2", "glue/cola")
TEXT_KEYS = ("text", "sentence", "review", "description", "content")  # a TFDS set's text feature, preferred
IMDB_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
IMDB_HOST = "storage.googleapis.com"
IMDB_CLASSES = ["negative", "positive"]


@dataclass(frozen=True)
class TextSpec:
    kind: str  # tsv | csv | folder | imdb | tfds
    name: str  # the file or folder, or the TFDS name
    split: Optional[str] = None  # tfds only


def parse_text_spec(spec: str) -> Optional[TextSpec]:
    """The text spec `spec` names, or None when it is not one (cheap: no TensorFlow, a glance at folders)."""
    text = (spec or "").strip()
    for prefix in TABLES:
        if text.lower().startswith(prefix):
            return TextSpec(prefix[:-1], os.path.expanduser(text[len(prefix):]))
    if text.lower() == "imdb":
        return TextSpec("imdb", "imdb")
    if text.startswith("tfds:"):
        name, _, split = text[len("tfds:"):].partition(":")
        known = name in TFDS_TEXT or name.split("/")[0] in TFDS_TEXT
        return TextSpec("tfds", name, split or None) if known else None
    return TextSpec("folder", os.path.expanduser(text)) if is_text_folder(text) else None


def is_text_spec(spec: str) -> bool:
    return parse_text_spec(spec) is not None


def is_text_folder(spec: str) -> bool:
    """An existing folder whose class folders (under train/ when there is one) hold .txt files and no
    images (folders.folder_holds)."""
    return folder_holds(spec, lambda name: name.lower().endswith(".txt"), has_image_extension)


def open_text_source(cfg: DataConfig) -> TextSource:
    """Resolve a text `cfg.spec` to its splits of texts (see the module docstring for each spec)."""
    parsed = parse_text_spec(cfg.spec)
    if parsed is None:
        raise DataError(f"--data {cfg.spec}: not text data; give tsv:FILE, csv:FILE, a folder of class folders "
                        f"of .txt files, imdb or tfds:imdb_reviews.")
    if parsed.kind in ("tsv", "csv"):
        from kerascnn.data.text_table import read_table

        return read_table(parsed.name, TABLES[parsed.kind + ":"], cfg)
    if parsed.kind == "folder":
        return load_text_folder(parsed.name, cfg.spec)
    if parsed.kind == "imdb":
        return load_imdb(cfg.spec, cfg.data_dir)
    return load_tfds_text(parsed.name, parsed.split, cfg.data_dir, cfg.spec)


def _read_file(path: str) -> Union[str, Tuple[str, str]]:
    """A .txt file's text, or (path, why it is skipped)."""
    try:
        with open(path, "rb") as f:
            text = decode_text(f.read())
    except OSError as e:
        return path, f"cannot read: {e.strerror}"
    if text is None:
        return path, "not valid UTF-8"
    return text.strip() or (path, "empty text")


def _text_files(folder: str, skipped: Skipped) -> List[str]:
    return list_files(folder, skipped, lambda name: name.lower().endswith(".txt"), "not a .txt file")


def _read_split(folder: str, class_names: List[str], skipped: Skipped) -> TextSplit:
    from concurrent.futures import ThreadPoolExecutor

    files, labels = [], []
    for label, name in enumerate(class_names):
        if os.path.isdir(os.path.join(folder, name)):
            found = _text_files(os.path.join(folder, name), skipped)
            files += found
            labels += [label] * len(found)
    with ThreadPoolExecutor(max_workers=min(16, 4 * (os.cpu_count() or 1))) as pool:  # mostly disk waits
        read = list(pool.map(_read_file, files))
    keep = [i for i, r in enumerate(read) if isinstance(r, str)]
    skipped += [r for r in read if not isinstance(r, str)]
    return text_split([read[i] for i in keep], [labels[i] for i in keep], [os.path.abspath(files[i]) for i in keep])


def load_text_folder(path: str, spec: str) -> TextSource:
    """PATH/<class>/*.txt, or PATH/train/<class>/ with val/ (and test/): one file is one text."""
    found = split_layout(path, spec, "texts")
    folders, class_names = found if found is not None else ({"train": path}, subfolders(path))
    if len(class_names) < 2:
        raise DataError(f"--data {spec}: {path} needs a sub-folder of .txt files per class (two or more); "
                        f"it has {', '.join(class_names) or 'none'}.")
    skipped: Skipped = []
    splits = {}
    for split, folder in folders.items():
        splits[split] = _read_split(folder, class_names, skipped)
        counts = np.bincount(splits[split].labels, minlength=len(class_names))
        check_split_filled(spec, split, folder, dict(zip(class_names, counts)), len(splits[split]), ".txt files",
                           "; add texts or remove the folder(s).")
    return TextSource(spec, "text folder", splits, class_names, skipped)


def _find_imdb(roots: Sequence[str]):
    import json

    for root in roots:
        npz, index = os.path.join(root, "imdb.npz"), os.path.join(root, "imdb_word_index.json")
        if not (os.path.isfile(npz) and os.path.isfile(index)):
            continue
        try:
            with open(index, encoding="utf-8") as f:
                words = json.load(f)
            # The reviews are ragged lists of word indices, stored as pickled object arrays: Keras's
            # own loader reads them with allow_pickle=True too (the file is its cache's).
            with np.load(npz, allow_pickle=True) as f:
                arrays = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
        except (OSError, KeyError, ValueError) as e:
            raise DataError(f"{npz} or {index} is not readable ({e}); delete them and download again.") from None
        return arrays, words
    return None


def _decode_reviews(sequences, words: dict) -> List[str]:
    """Word indices back to words: the raw file's indices are word_index's ranks (Keras adds its
    `index_from` offset only when loading)."""
    vocab = [""] * (max(words.values()) + 1)
    for word, i in words.items():
        vocab[i] = word
    return [" ".join(vocab[i] for i in seq if 0 < i < len(vocab)) for seq in sequences]


def load_imdb(spec: str, data_dir: Optional[str] = None) -> TextSource:
    """keras.datasets.imdb (25,000 train and 25,000 test reviews) from the Keras cache, decoded to text."""
    from kerascnn.data.builtin import keras_cache_roots
    from kerascnn.runtime.network import reachable

    roots = keras_cache_roots(data_dir)
    found = _find_imdb(roots)
    if found is None:
        if not reachable(IMDB_HOST):
            raise DataError(f"--data {spec}: imdb.npz and imdb_word_index.json are not in the Keras cache "
                            f"({roots[0]}) and {IMDB_HOST} is unreachable (offline?): download {IMDB_URL}imdb.npz "
                            f"and {IMDB_URL}imdb_word_index.json elsewhere and copy them to {roots[0]}/, or use "
                            f"--data tsv:FILE or a folder of .txt files.")
        import keras

        keras.datasets.imdb.load_data()  # both download into Keras' own cache
        keras.datasets.imdb.get_word_index()
        found = _find_imdb(keras_cache_roots())
        if found is None:
            raise DataError(f"--data {spec}: keras.datasets.imdb downloaded, but its files are not in "
                            f"{keras_cache_roots()[0]}; set KERAS_HOME to where Keras keeps them.")
    arrays, words = found
    splits = {}
    for ours, key in (("train", "train"), ("test", "test")):
        texts = _decode_reviews(arrays[f"x_{key}"], words)
        splits[ours] = text_split(texts, arrays[f"y_{key}"].astype(np.int64),
                                  [f"imdb {key} #{i}" for i in range(len(texts))])
    return TextSource(spec, "keras.datasets imdb, decoded", splits, list(IMDB_CLASSES))


def _tfds_keys(tfds, features, spec: str) -> Tuple[str, str]:
    items = dict(features.items())
    texts = [k for k, v in items.items() if isinstance(v, tfds.features.Text)]
    labels = [k for k, v in items.items() if isinstance(v, tfds.features.ClassLabel)]
    if not texts or not labels:
        raise DataError(f"--data {spec}: needs a Text and a ClassLabel feature; it has {', '.join(items)}.")
    text_key = next((k for k in TEXT_KEYS if k in texts), texts[0])
    return text_key, "label" if "label" in labels else labels[0]


def _tfds_split(tfds, builder, split: str, keys: Tuple[str, str], skipped: Skipped) -> TextSplit:
    texts, labels, origins = [], [], []
    for i, example in enumerate(tfds.as_numpy(builder.as_dataset(split=split))):
        label = int(example[keys[1]])
        if label < 0:  # unlabelled (GLUE's test splits)
            continue
        text = decode_text(example[keys[0]])
        if text is None or not text.strip():
            skipped.append((f"{split} #{i}", "not valid UTF-8" if text is None else "empty text"))
            continue
        texts.append(text.strip())
        labels.append(label)
        origins.append(f"{split} #{i}")
    return text_split(texts, labels, origins)


def load_tfds_text(name: str, split: Optional[str], data_dir: Optional[str], spec: str) -> TextSource:
    """A TFDS text set, prepared in --data-dir (preparing it first only when online), read into memory."""
    from kerascnn.data import tfds_source as ts

    tfds = ts._tfds()
    data_dir = os.path.expanduser(data_dir) if data_dir else None
    builder = ts._builder(tfds, name, data_dir, spec)
    if not builder.is_prepared():
        ts._prepare(builder, name, data_dir, spec)  # offline: a one-line DataError saying how to prepare it
    info = builder.info
    keys = _tfds_keys(tfds, info.features, spec)
    available = list(info.splits.keys())
    train = split or "train"
    if train.split("[")[0] not in available:
        raise DataError(f"--data {spec}: {name} has no split {train!r}; its splits are {', '.join(available)} "
                        f"(pass tfds:{name}:SPLIT).")
    names = {"train": train}
    for ours, theirs in (("val", ts.VAL_SPLITS), ("test", ("test",))):
        found = next((s for s in theirs if s in available and s != train.split("[")[0]), None)
        if found:
            names[ours] = found
    skipped: Skipped = []
    splits = {ours: _tfds_split(tfds, builder, theirs, keys, skipped) for ours, theirs in names.items()}
    splits = {k: v for k, v in splits.items() if len(v) or k == "train"}
    return TextSource(spec, "TFDS", splits, list(info.features[keys[1]].names), skipped)


def text_dataset(split: TextSplit, num_classes: int, batch_size: int, shuffle_seed: Optional[int] = None):
    """Batches of (texts (B,) tf.string, one-hot labels (B, K) float32), in a new seeded order each
    epoch when shuffling; the texts stay one tensor gathered per batch (pipeline.array_dataset's way:
    no copy per batch, and out of the graph, whatever the corpus' size)."""
    import tensorflow as tf

    from kerascnn.data import pipeline

    texts = tf.constant(split.texts, tf.string)  # from the object array: no fixed-width '<U' copy
    data = tf.data.Dataset.from_tensors((texts, split.labels.astype(np.int32))).repeat()

    def gather(index, arrays):
        return tf.gather(arrays[0], index), pipeline._one_hot(tf.gather(arrays[1], index), num_classes)

    indices = pipeline._index_batches(len(split), batch_size, shuffle_seed)
    ds = tf.data.Dataset.zip((indices, data)).map(gather)
    return ds.with_options(pipeline.in_memory_options()).prefetch(tf.data.AUTOTUNE).with_options(
        pipeline.epoch_options())


def learn_vocabulary(texts: np.ndarray) -> List[str]:
    """The words of `texts` as the text models' TextVectorization finds them
    (kerascnn.models.tokenize: most frequent first, "" and "[UNK]" leading): what a text model built
    over `vocabulary=` (kim_cnn) tokenizes with, so data and model agree on every token."""
    import tensorflow as tf

    from kerascnn.models.tokenize import text_vectorizer

    vectorize = text_vectorizer()
    vectorize.adapt(tf.data.Dataset.from_tensor_slices(tf.constant(texts, tf.string)).batch(1024))
    return [str(w) for w in vectorize.get_vocabulary()]


def build_text(cfg: DataConfig, input_shape: Any = None, batch_size: int = 32, augment: Any = None,
               splits: Sequence[str] = ("train", "val"), source: Optional[TextSource] = None):
    """The text kind's `build`: batched tf.data splits of `cfg.spec` (see kerascnn.data.build.build_datasets
    for `splits`: "eval" is test, else the seeded held-out val; "all" every example, nothing held out).

    `input_shape` is the model's and unused: the model tokenizes the strings itself. With "train"
    built, `model_args` holds {"vocabulary": ...} learnt from the training split only (the held-out
    texts' words stay unknown, as they would be for new data), for the model's builder.

    Raises:
        DataError: the spec cannot be read, or "eval" is asked of data with nothing held out.
    """
    from kerascnn.data.build import DataBundle, check_build_args, split_parts

    check_build_args(cfg, batch_size, splits, augment, "augmentation applies to images, not texts.")
    source = source if source is not None else open_text_source(cfg)
    parts, eval_name = split_parts(source, cfg, splits, concat_text)
    bundle = DataBundle(class_names=list(source.class_names), skipped=list(source.skipped),
                        eval_split=eval_name if "eval" in splits else None)
    if "train" in parts:
        bundle.class_counts = np.bincount(parts["train"].labels, minlength=bundle.num_classes).tolist()
    if "train" in splits and "train" in parts and len(parts["train"]):
        bundle.model_args = {"vocabulary": learn_vocabulary(parts["train"].texts)}
    wanted = [n for n in ("train", "val", "test", "all") if n in splits or (n == eval_name and "eval" in splits)]
    for name in wanted:
        if name not in parts:
            continue
        if len(parts[name]) == 0:
            raise DataError(f"--data {cfg.spec}: the {name} split has no texts.")
        ds = text_dataset(parts[name], bundle.num_classes, int(batch_size), cfg.seed if name == "train" else None)
        if name in splits:
            setattr(bundle, name, ds)
            bundle.counts[name] = len(parts[name])
        if name == eval_name and "eval" in splits:
            bundle.eval, bundle.counts["eval"] = ds, len(parts[name])
    bundle.description = describe_text(cfg, source, parts)
    if "vocabulary" in bundle.model_args:
        bundle.description += f"; a vocabulary of {len(bundle.model_args['vocabulary']) - 2:,} words from train"
    if bundle.skipped:
        log.warning("%s (see DataBundle.skipped)", summarize_skipped(bundle.skipped, what="texts"))
    return bundle


def describe_text(cfg: DataConfig, source: TextSource, parts) -> str:
    sizes = " / ".join(f"{len(parts[n]):,} {n}" for n in ("train", "val", "test") if n in parts)
    held = "val" in parts and "val" not in source.splits
    held_out = f" (val: {cfg.val_split:.0%} held out, seed {cfg.seed})" if held else ""
    tokens = [len(t.split()) for t in parts["train"].texts] if "train" in parts else []
    length = f"; median {int(np.median(tokens))} words a text" if tokens else ""
    left = (f"; {len(source.left_out):,} rated exactly {cfg.label_threshold:g} left out"
            if getattr(source, "left_out", None) else "")
    return (f"{cfg.spec} ({source.kind}): {sizes}{held_out}; {len(source.class_names)} classes"
            f"{length}{left}; texts as strings")


def load_text_lines(paths: Union[str, Sequence[str]], input_shape: Any = None
                    ) -> Tuple[np.ndarray, List[str], Skipped]:
    """`predict`'s inputs: every non-empty line of each file (folders: their .txt files) is one text.

    Returns the texts (an object array of str), where each came from ("FILE:LINE"), and the
    (FILE[:LINE], reason) of what was skipped (missing files, lines that are not UTF-8).

    Raises:
        DataError: no text in any of `paths`.
    """
    files, skipped = collect_files(paths, _text_files)
    texts, origins = [], []
    for path in files:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            skipped.append((path, f"cannot read: {e.strerror}"))
            continue
        for n, raw in enumerate(data.split(b"\n"), 1):
            text = decode_text(raw)
            if text is None:
                skipped.append((f"{path}:{n}", "not valid UTF-8"))
            elif text.strip():
                texts.append(text.strip())
                origins.append(f"{path}:{n}")
    if not texts:
        why = f": {summarize_skipped(skipped, what='inputs')}" if skipped else ""
        raise DataError(f"No text in {', '.join(map(str, paths))}{why}")
    if skipped:
        log.warning(summarize_skipped(skipped, what="inputs"))
    return text_split(texts, np.zeros(len(texts)), origins).texts, origins, skipped


__all__ = ["TABLES", "TFDS_TEXT", "TextSource", "TextSpec", "TextSplit", "concat_text", "decode_text",
           "is_text_folder", "is_text_spec", "learn_vocabulary", "load_imdb", "load_text_folder", "load_text_lines", "load_tfds_text",
           "open_text_source", "parse_text_spec", "text_split"]
