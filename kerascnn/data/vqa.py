"""Image + question data (the "image+question" input kind): `--data sort_of_clevr[:N_IMAGES]`,
`easy_vqa[:FOLDER]`, `vqa:FOLDER` (VQA v2) and `clevr:FOLDER` (CLEVR), as (image, question) inputs
and their answers.

A batch is ({"image": (B, H, W, C) float32 [0, 255] at the model's image shape, "question": (B,)
tf.string}, one-hot answers (B, K)): the model tokenizes the questions itself, as a text model does
(kerascnn.data.text). The bundle (`VqaBundle`) adds what scoring per question type needs:
`question_types[split]`, the type of each question in the order the (unshuffled) split yields them,
an index into `type_names`, and `type_groups` (Sort-of-CLEVR: "non-relational", "relational").
With "train" built, `model_args` holds {"vocabulary": ...}, the training questions' words
(`question_vocabulary`), for the model's question encoder.

Sort-of-CLEVR (kerascnn.data.sort_of_clevr) is generated on the fly, deterministic: N images
(default 10,000, the paper's) from seed DATA_SEED, the last 2% (at least one) the validation split
(9,800 / 200 by default), and a test split of N // 10 images (at least one) from seed TEST_SEED; 20
questions an image. The data seeds are fixed, like a published data set's: --seed only shuffles.
Generating 10,000 images takes about 1.5 s on a 2-core machine, so nothing is cached on disk.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from kerascnn.config import DataConfig
from kerascnn.data import sort_of_clevr as soc
from kerascnn.data.build import DataBundle, check_build_args
from kerascnn.data.vqa_sources import VqaSource, VqaSplit, concat_vqa, vqa_split
from kerascnn.errors import DataError, SettingError

log = logging.getLogger("kerascnn.data")

SORT_OF_CLEVR = "sort_of_clevr"
DEFAULT_IMAGES = 10_000
MAX_IMAGES = 100_000  # 1.7 GB of uint8 pixels
VAL_FRACTION = 0.02  # 9,800 / 200 of 10,000, as the paper
TEST_FRACTION = 0.1
DATA_SEED, TEST_SEED = 0, 1
PREFIXES = ("sort_of_clevr", "easy_vqa", "vqa:", "clevr:")
SPECS = ("sort_of_clevr[:N_IMAGES]: Sort-of-CLEVR generated (default 10,000 images, 20 questions each); "
         "easy_vqa[:FOLDER]: the easy-vqa package's data (pip install easy-vqa); vqa:FOLDER: VQA v2 JSON and "
         "COCO images; clevr:FOLDER: CLEVR v1.0")


@dataclass(frozen=True)
class VqaSpec:
    kind: str  # sort_of_clevr | easy_vqa | vqa | clevr
    path: Optional[str] = None  # the folder (easy_vqa: None for the installed package's)
    images: int = DEFAULT_IMAGES  # sort_of_clevr only


def is_vqa_spec(spec: str) -> bool:
    text = (spec or "").strip()
    return any(text == p or text.startswith(p) for p in PREFIXES)


def parse_vqa_spec(spec: str) -> VqaSpec:
    """The image+question spec `spec` names; DataError (one line) for a malformed one. Cheap: no
    data is read, only a folder's existence checked."""
    text = (spec or "").strip()
    if text == SORT_OF_CLEVR or text.startswith(SORT_OF_CLEVR + ":"):
        count = text[len(SORT_OF_CLEVR) + 1:] if ":" in text else str(DEFAULT_IMAGES)
        try:
            n = int(count.replace(",", "").replace("_", ""))
        except ValueError:
            n = -1
        if not 2 <= n <= MAX_IMAGES:
            raise DataError(f"--data {spec}: sort_of_clevr:N_IMAGES takes a whole number of images from 2 to "
                            f"{MAX_IMAGES:,} (default {DEFAULT_IMAGES:,}). Received: {count!r}")
        return VqaSpec("sort_of_clevr", images=n)
    if text == "easy_vqa" or text.startswith("easy_vqa:"):
        folder = os.path.expanduser(text[len("easy_vqa:"):]) if ":" in text else None
        return _checked(spec, VqaSpec("easy_vqa", folder))
    for prefix in ("vqa:", "clevr:"):
        if text.startswith(prefix):
            return _checked(spec, VqaSpec(prefix[:-1], os.path.expanduser(text[len(prefix):])))
    raise DataError(f"--data {spec}: not image+question data; give {SPECS}.")


def _checked(spec: str, parsed: VqaSpec) -> VqaSpec:
    if parsed.path is not None and not os.path.isdir(parsed.path):
        raise DataError(f"--data {spec}: no such folder {parsed.path or '(empty)'}.")
    if parsed.kind == "easy_vqa" and parsed.path is None:
        from kerascnn.data.vqa_readers import easy_vqa_dir

        if easy_vqa_dir() is None:
            raise DataError(f"--data {spec}: the easy-vqa package is not installed; pip install easy-vqa.")
    return parsed


def check_vqa_spec(spec: str) -> None:
    """The kind's `check_spec`: a malformed spec, a missing folder or package is a DataError."""
    parse_vqa_spec(spec)


def sort_of_clevr_split(data: soc.SortOfClevr) -> VqaSplit:
    """Every question of `data`, image by image, in the generator's order."""
    per = data.types.shape[1]
    return vqa_split(data.images, np.repeat(np.arange(len(data)), per), data.texts().ravel(), data.answers.ravel(),
                     data.types.ravel())


def sort_of_clevr_sizes(n_images: int) -> Dict[str, int]:
    """Images per split of sort_of_clevr:n_images."""
    val = max(1, int(round(n_images * VAL_FRACTION)))
    return {"train": n_images - val, "val": val, "test": max(1, n_images // int(round(1 / TEST_FRACTION)))}


def load_sort_of_clevr(n_images: int, spec: str = SORT_OF_CLEVR) -> VqaSource:
    """sort_of_clevr:n_images generated: train and val from DATA_SEED, test from TEST_SEED."""
    sizes = sort_of_clevr_sizes(n_images)
    data = soc.generate(n_images, DATA_SEED)
    everything = sort_of_clevr_split(data)
    per = data.types.shape[1]
    cut = sizes["train"] * per
    splits = {"train": everything.take(np.arange(cut)), "val": everything.take(np.arange(cut, len(everything))),
              "test": sort_of_clevr_split(soc.generate(sizes["test"], TEST_SEED))}
    groups = {"non-relational": list(soc.NON_RELATIONAL), "relational": list(soc.RELATIONAL)}
    return VqaSource(spec, "Sort-of-CLEVR, generated", splits, list(soc.ANSWERS), type_names=list(soc.QUESTION_TYPES),
                     type_groups=groups, image_shape=(soc.SIZE, soc.SIZE, 3))


def open_vqa_source(cfg: DataConfig) -> VqaSource:
    """Resolve an image+question `cfg.spec` to its splits (see the module docstring)."""
    parsed = parse_vqa_spec(cfg.spec)
    if parsed.kind == "sort_of_clevr":
        return load_sort_of_clevr(parsed.images, cfg.spec)
    from kerascnn.data import vqa_readers

    read = {"easy_vqa": vqa_readers.read_easy_vqa, "vqa": vqa_readers.read_vqa, "clevr": vqa_readers.read_clevr}
    return read[parsed.kind](parsed.path, cfg.spec)


@dataclass
class VqaBundle(DataBundle):
    """A DataBundle with the question types of every built split (see the module docstring)."""

    question_types: Dict[str, np.ndarray] = field(default_factory=dict)  # split -> (E,) int, split order
    type_names: List[str] = field(default_factory=list)
    type_groups: Dict[str, List[str]] = field(default_factory=dict)


def image_shape_for(input_shape: Any, source: VqaSource):
    """The (h, w, c) images are delivered at: the model's image input (a 3-tuple, or a dict's
    "image"; None entries and None: the images' own size), RGB by default."""
    if isinstance(input_shape, dict):
        input_shape = input_shape.get("image")
    native = source.image_shape
    if input_shape is None:
        if native is None:
            raise SettingError("input_shape", f"--data {source.spec}: its images differ in size; give the model's "
                                              f"image input shape (e.g. --input-shape 128,128,3).")
        return tuple(native)
    shape = tuple(input_shape)
    if len(shape) != 3:
        raise SettingError("input_shape", f"an image+question model's image input is (height, width, channels). "
                                          f"Received: {input_shape}")
    filled = tuple(s if s is not None else (native[i] if native else None) for i, s in enumerate(shape))
    if None in filled or filled[2] not in (1, 3):
        raise SettingError("input_shape", f"--data {source.spec}: cannot deliver images as {input_shape}.")
    return tuple(int(s) for s in filled)


def build_vqa(cfg: DataConfig, input_shape: Any = None, batch_size: int = 32, augment: Any = None,
              splits: Sequence[str] = ("train", "val"), source: Optional[VqaSource] = None) -> VqaBundle:
    """The image+question kind's `build`: batched tf.data splits of `cfg.spec` (see
    kerascnn.data.build.build_datasets for `splits`: "eval" is test, else the held-out val; "all"
    every question, nothing held out), images at `input_shape` (`image_shape_for`).

    Raises:
        DataError: the spec cannot be read, or "eval" is asked of data with nothing held out.
    """
    from kerascnn.data.build import split_parts
    from kerascnn.data.folders import summarize_skipped
    from kerascnn.data.vqa_pipeline import materialize, vqa_dataset

    # Flips and crops change the answers (left/right, top/bottom, closest): not label-preserving here.
    check_build_args(cfg, batch_size, splits, augment,
                     "augmentation would change the answers of image+question data (left/right, top/bottom); "
                     "leave it off.")
    source = source if source is not None else open_vqa_source(cfg)
    shape = image_shape_for(input_shape, source)
    parts, eval_name = split_parts(source, cfg, splits, concat_vqa)
    bundle = VqaBundle(class_names=list(source.class_names), skipped=list(source.skipped), image_shape=shape,
                       eval_split=eval_name if "eval" in splits else None, type_names=list(source.type_names),
                       type_groups=dict(source.type_groups))
    if "train" in parts:
        bundle.class_counts = np.bincount(parts["train"].labels, minlength=bundle.num_classes).tolist()
    if "train" in splits and "train" in parts and len(parts["train"]):
        bundle.model_args = {"vocabulary": question_vocabulary(parts["train"].questions)}
    wanted = [n for n in ("train", "val", "test", "all")
              if n in parts and (n in splits or (n == eval_name and "eval" in splits))]
    built, failed = materialize({n: parts[n] for n in wanted}, shape, cfg)
    bundle.skipped += failed
    for name in wanted:
        part = built[name]
        if len(part) == 0:
            raise DataError(f"--data {cfg.spec}: the {name} split has no questions.")
        ds = vqa_dataset(part, shape, bundle.num_classes, int(batch_size), cfg.seed if name == "train" else None)
        for alias in [name] * (name in splits) + ["eval"] * (name == eval_name and "eval" in splits):
            setattr(bundle, alias, ds)
            bundle.counts[alias], bundle.question_types[alias] = len(part), part.types
    bundle.description = describe_vqa(cfg, source, parts, shape)
    if bundle.skipped:
        log.warning("%s (see DataBundle.skipped)", summarize_skipped(bundle.skipped, what="images"))
    return bundle


def question_vocabulary(questions: np.ndarray) -> List[str]:
    """The words of the distinct questions as Keras's TextVectorization finds them (kerascnn.data.text's
    `learn_vocabulary`): what the model's question encoder tokenizes with. Distinct questions only:
    the same words, and Sort-of-CLEVR's 196,000 training questions (36 distinct) take 0.4 s, not 2.8 s;
    the order (most frequent first) is then over the distinct questions."""
    from kerascnn.data.text import learn_vocabulary

    return learn_vocabulary(np.unique(questions.astype(str)))


def describe_vqa(cfg: DataConfig, source: VqaSource, parts, shape) -> str:
    sizes = " / ".join(f"{len(parts[n]):,} {n}" for n in ("train", "val", "test") if n in parts)
    held = "val" in parts and "val" not in source.splits
    held_out = f" (val: {cfg.val_split:.0%} held out, seed {cfg.seed})" if held else ""
    left = f"; {source.left_out:,} questions with a rarer answer left out" if source.left_out else ""
    h, w, c = shape
    return (f"{cfg.spec} ({source.kind}): {sizes} questions{held_out}; {len(source.class_names)} answers, "
            f"{len(source.type_names)} question types{left}; images as {h}x{w}x{c}, questions as strings")


def load_vqa_inputs(paths, input_shape=None):
    """The kind's `load_inputs` (what `predict` feeds a model): an image+question model needs a
    question with each image, which files alone do not give."""
    raise DataError("An image+question model answers questions about an image; use `kerascnn vqa ask MODEL IMAGE "
                    "\"QUESTION\"` instead of predict.")


__all__ = ["DATA_SEED", "DEFAULT_IMAGES", "PREFIXES", "SPECS", "TEST_SEED", "VqaBundle", "VqaSpec", "build_vqa",
           "check_vqa_spec", "is_vqa_spec", "load_sort_of_clevr", "load_vqa_inputs", "open_vqa_source",
           "parse_vqa_spec", "sort_of_clevr_sizes", "sort_of_clevr_split"]
