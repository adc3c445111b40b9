"""TensorFlow Datasets: `tfds:NAME[:SPLIT]`, read from a prepared local directory (--data-dir).

SPLIT (any TFDS split expression, e.g. `train[:10%]`) is the training split, "train" by default;
the dataset's own "validation" and "test" splits are used when it has them. A dataset prepared on
another machine and copied over loads by name from --data-dir, without its builder code.

Offline, `tfds.load` retries DNS for minutes before failing, so nothing is downloaded here before
a quick probe: an unprepared dataset with no network is an error within seconds that says how to
prepare it elsewhere.
"""
from __future__ import annotations

import difflib
import os
from typing import Optional, Tuple

from kerascnn.runtime.network import reachable
from kerascnn.data.sources import Source, TfdsSplit
from kerascnn.errors import DataError

PROBE_HOST = "storage.googleapis.com"  # where TFDS keeps its metadata and many of its downloads
VAL_SPLITS = ("validation", "val", "valid")


def _tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise DataError(f"tfds: specs need TensorFlow Datasets: pip install tensorflow-datasets "
                        f"importlib_resources ({e}).") from None
    return tfds


def default_data_dir() -> str:
    return os.path.expanduser(os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets"))


def _builder(tfds, name: str, data_dir: Optional[str], spec: str):
    try:
        return tfds.builder(name, data_dir=data_dir)
    except tfds.core.DatasetNotFoundError:
        close = difflib.get_close_matches(name.split("/")[0], tfds.list_builders(), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise DataError(f"--data {spec}: TFDS has no dataset {name!r} and none is prepared in "
                        f"{data_dir or default_data_dir()}.{hint}") from None
    except Exception as e:  # version or config mismatches surface as assorted errors
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise DataError(f"--data {spec}: cannot open TFDS dataset {name!r}: {first}") from None


def _prepare(builder, name: str, data_dir: Optional[str], spec: str) -> None:
    where = data_dir or default_data_dir()
    if not reachable(PROBE_HOST):
        raise DataError(
            f"--data {spec}: {name} is not prepared in {where} and there is no network (offline?). On a machine "
            f"with internet run `tfds build {name} --data_dir=DIR` (or `python -m "
            f"tensorflow_datasets.scripts.download_and_prepare --datasets={name} --data_dir=DIR`), copy DIR "
            f"here and pass --data-dir DIR.")
    builder.download_and_prepare()


def _feature_keys(tfds, features, spec: str) -> Tuple[str, str]:
    """The image and label feature names: "image" and "label" when present, else the first of each type."""
    items = dict(features.items())

    def first(preferred: str, kind):
        if isinstance(items.get(preferred), kind):
            return preferred
        return next((k for k, v in items.items() if isinstance(v, kind)), None)

    image_key, label_key = first("image", tfds.features.Image), first("label", tfds.features.ClassLabel)
    if image_key is None or label_key is None:
        raise DataError(f"--data {spec}: needs an Image and a ClassLabel feature; it has {', '.join(items)}.")
    return image_key, label_key


def load_tfds(name: str, split: Optional[str], data_dir: Optional[str], spec: str) -> Source:
    """A prepared TFDS dataset as a Source of TfdsSplits (preparing it first only when online)."""
    tfds = _tfds()
    data_dir = os.path.expanduser(data_dir) if data_dir else None
    builder = _builder(tfds, name, data_dir, spec)
    if not builder.is_prepared():
        _prepare(builder, name, data_dir, spec)
    info = builder.info
    image_key, label_key = _feature_keys(tfds, info.features, spec)
    available = list(info.splits.keys())
    train = split or "train"
    try:
        count = info.splits[train].num_examples
    except (KeyError, ValueError):
        raise DataError(f"--data {spec}: {name} has no split {train!r}; its splits are {', '.join(available)} "
                        f"(pass tfds:{name}:SPLIT).") from None
    splits = {"train": TfdsSplit(builder, train, count, image_key, label_key)}
    base = train.split("[")[0]
    for ours, theirs in (("val", VAL_SPLITS), ("test", ("test",))):
        found = next((s for s in theirs if s in available and s != base), None)
        if found:
            splits[ours] = TfdsSplit(builder, found, info.splits[found].num_examples, image_key, label_key)
    return Source(spec, "TFDS", splits, list(info.features[label_key].names))
