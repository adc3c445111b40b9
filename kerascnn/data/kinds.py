"""Kinds of input: what a model takes (its registry entry's `inputs`), what a `--data` spec produces,
and the steps that belong to one kind rather than to the harness.

The harness (fit, evaluate, predict, export, report) asks the model's kind for its data and for the
kind's own steps, instead of assuming pixels:

    kind = data_kind("image")
    bundle = kind.build(DataConfig(spec="digits"), (32, 32, 1), 64, AugmentConfig(), ("train", "val"))
    if kind.audit: ...           # the image-folder audit before training
    kind.tta, kind.explain       # test-time augmentation views, Grad-CAM: image steps

Images, texts (kerascnn.data.text), images with questions (kerascnn.data.vqa) and audio
(kerascnn.data.audio, kerascnn.data.notes) are the kinds the package ships today; another kind
registers its own `DataKind` (its `build` and `load_inputs`) and its specs (`register_spec`: a
prefix, or a predicate on the spec), and the harness runs it unchanged.
Nothing here imports TensorFlow, and `spec_kind` never does.
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Union

from kerascnn.errors import DataError, SettingError, UnknownNameError

# What a model can take. A registry entry names one (`register_model(..., inputs="text")`).
INPUT_KINDS = ("image", "text", "audio", "image+question")


@dataclass(frozen=True)
class DataKind:
    """The data steps of one kind of input.

    Attributes:
        name: one of INPUT_KINDS (or a kind a test or an extension adds).
        open_source: (DataConfig) -> kerascnn.data.sources.Source: the spec's splits and class
            names, nothing decoded yet.
        build: (DataConfig, input_shape, batch_size, AugmentConfig or None, splits, **kwargs) ->
            kerascnn.data.DataBundle: batched tf.data splits of (inputs, one-hot labels); takes
            `source=` (what open_source gave) to avoid opening the spec twice.
        load_inputs: (paths, input_shape) -> (inputs, the files they came from, [(file, reason)
            skipped]): what `predict` feeds the model.
        audit: (DataConfig, input_shape) -> a report with `.summary()` (or None when the spec
            has nothing to audit), logged before training; None: the kind has no audit.
        augment: whether the augmentation settings (AugmentConfig) apply to this kind.
        tta: whether test-time augmentation views (flip, crops) apply.
        explain: whether Grad-CAM heat maps apply (a spatial feature map over the input).
        pictures: whether an input can be shown as a picture (the report's galleries).
        check_spec: (spec) -> None, DataError for a spec that names nothing (a missing file), run
            with the settings checks before any run folder is made; None: nothing cheap to check.
        labels: what the targets are: "one_hot" class vectors, one per example (the harness's
            categorical cross-entropy, top-1/top-5 and class weights), or "sparse" class indices
            over the output's last axis, e.g. one per sample of a clip (sparse cross-entropy and
            sparse accuracy; no class weights, confusion matrix or per-class report).
    """

    name: str
    open_source: Callable[..., Any]
    build: Callable[..., Any]
    load_inputs: Callable[..., Any]
    audit: Optional[Callable[..., Any]] = None
    augment: bool = False
    tta: bool = False
    explain: bool = False
    pictures: bool = False
    check_spec: Optional[Callable[[str], None]] = None
    labels: str = "one_hot"


def _image_source(cfg):
    from kerascnn.data.specs import open_source

    return open_source(cfg)


def _image_build(*args, **kwargs):
    from kerascnn.data.build import build_datasets

    return build_datasets(*args, **kwargs)


def _image_inputs(paths, input_shape):
    from kerascnn.data.build import load_images

    return load_images(paths, input_shape)


def _image_audit(cfg, input_shape):
    """`kerascnn audit`'s findings on an image folder, counted on the splits `fit` trains and
    validates on (cfg: the DataConfig); None for other specs (nothing on disk to look at)."""
    from kerascnn.data.audit import audit_folder
    from kerascnn.data.specs import parse_spec

    if parse_spec(cfg.spec).kind != "folder":
        return None
    return audit_folder(cfg.spec, input_shape, duplicates=False, data=cfg)


IMAGE = DataKind("image", open_source=_image_source, build=_image_build, load_inputs=_image_inputs, audit=_image_audit, augment=True,
                 tta=True, explain=True, pictures=True)



def _text_source(cfg):
    from kerascnn.data.text import open_text_source

    return open_text_source(cfg)


def _text_build(*args, **kwargs):
    from kerascnn.data.text import build_text

    return build_text(*args, **kwargs)


def _text_inputs(paths, input_shape):
    from kerascnn.data.text import load_text_lines

    return load_text_lines(paths, input_shape)


def _text_audit(cfg, input_shape):
    """The text audit of a local file or folder (counts of the splits fit uses, lengths, duplicates,
    lines that failed to decode); None for imdb and tfds: (reading them again only to count)."""
    from kerascnn.data.text import parse_text_spec
    from kerascnn.data.text_audit import audit_text

    parsed = parse_text_spec(cfg.spec)
    return audit_text(cfg) if parsed is not None and parsed.kind in ("tsv", "csv", "folder") else None


def _text_check(spec: str) -> None:
    """A tsv:/csv: spec must name an existing file (the rest is read when the data is)."""
    from kerascnn.data.text import parse_text_spec

    parsed = parse_text_spec(spec)
    if parsed is not None and parsed.kind in ("tsv", "csv") and not os.path.isfile(parsed.name):
        raise DataError(f"--data {spec}: no such file {parsed.name}.")


def _is_text_spec(spec: str) -> bool:
    """imdb, the TFDS text sets, and folders of class folders of .txt files (no TensorFlow)."""
    from kerascnn.data.text import is_text_spec

    return is_text_spec(spec)


TEXT = DataKind("text", open_source=_text_source, build=_text_build, load_inputs=_text_inputs, audit=_text_audit,
                check_spec=_text_check)


def _vqa_source(cfg):
    from kerascnn.data.vqa import open_vqa_source

    return open_vqa_source(cfg)


def _vqa_build(*args, **kwargs):
    from kerascnn.data.vqa import build_vqa

    return build_vqa(*args, **kwargs)


def _vqa_inputs(paths, input_shape):
    from kerascnn.data.vqa import load_vqa_inputs

    return load_vqa_inputs(paths, input_shape)


def _vqa_check(spec: str) -> None:
    from kerascnn.data.vqa import check_vqa_spec

    check_vqa_spec(spec)


# Image + question -> answer data (kerascnn.data.vqa): sort_of_clevr[:N], easy_vqa, vqa:DIR, clevr:DIR.
IMAGE_QUESTION = DataKind("image+question", open_source=_vqa_source, build=_vqa_build, load_inputs=_vqa_inputs,
                          check_spec=_vqa_check)

def _audio_source(cfg):
    from kerascnn.data.audio_pipeline import open_audio_source

    return open_audio_source(cfg)


def _audio_build(*args, **kwargs):
    from kerascnn.data.audio_pipeline import build_audio

    return build_audio(*args, **kwargs)


def _audio_inputs(paths, input_shape):
    from kerascnn.data.audio import load_audio_inputs

    return load_audio_inputs(paths, input_shape)


def _audio_check(spec: str) -> None:
    from kerascnn.data.audio_pipeline import check_audio_spec

    check_audio_spec(spec)


def _is_audio_spec(spec: str) -> bool:
    """`notes` alone and folders of audio files (no TensorFlow, no decoding)."""
    from kerascnn.data.audio_pipeline import is_audio_spec

    return is_audio_spec(spec)


# Audio -> next-sample data (kerascnn.data.audio, notes): notes[:SOUNDFONT[:...]], audio:DIR, audio folders.
AUDIO = DataKind("audio", open_source=_audio_source, build=_audio_build, load_inputs=_audio_inputs,
                 check_spec=_audio_check, labels="sparse")

_KINDS: Dict[str, DataKind] = {"image": IMAGE, "text": TEXT, "image+question": IMAGE_QUESTION, "audio": AUDIO}
# What a --data spec matches -> the kind of input it produces: a prefix or name (e.g. "tsv:",
# "sort_of_clevr"), or a predicate on the spec (a text folder, tfds:imdb_reviews). Every spec
# matched by none is an image spec (digits, keras.datasets, tfds:, idx:, image folders).
SpecMatcher = Union[str, Callable[[str], bool]]
_SPEC_KINDS: Dict[SpecMatcher, str] = {"tsv:": "text", "csv:": "text", _is_text_spec: "text",
                                       "sort_of_clevr": "image+question", "easy_vqa": "image+question",
                                       "vqa:": "image+question", "clevr:": "image+question",
                                       "notes:": "audio", "audio:": "audio", _is_audio_spec: "audio"}


def register_kind(kind: DataKind) -> DataKind:
    """Add a kind of input (its data steps); returns it."""
    if kind.name in _KINDS:
        raise ValueError(f"Input kind {kind.name!r} is registered twice.")
    _KINDS[kind.name] = kind
    return kind


def register_spec(matcher: SpecMatcher, kind: str) -> None:
    """Make `--data` specs produce the input kind `kind`: those starting with `matcher` (a str), or
    those for which `matcher(spec)` is true (a callable; keep it cheap: it runs on every spec that
    no prefix claims, and must not import TensorFlow)."""
    if matcher in _SPEC_KINDS:
        raise ValueError(f"--data matcher {matcher!r} is registered twice.")
    _SPEC_KINDS[matcher] = kind


def data_kind(name: str) -> DataKind:
    """The DataKind named `name`; UnknownNameError (a SettingError on "data") for one with no data steps."""
    if name not in _KINDS:
        close = difflib.get_close_matches(name, list(_KINDS), n=2)
        raise UnknownNameError("data", f"no data pipeline for {name} inputs yet"
                                       + (f"; did you mean {' or '.join(close)}?" if close else
                                          f" (known: {', '.join(sorted(_KINDS))})."))
    return _KINDS[name]


def spec_kind(spec: str) -> str:
    """The kind of input a --data spec produces: the longest registered prefix's, else the first
    matching predicate's, else "image"."""
    text = (spec or "").strip()
    matches = [p for p in _SPEC_KINDS if isinstance(p, str) and (text == p or text.startswith(p))]
    if matches:
        return _SPEC_KINDS[max(matches, key=len)]
    return next((kind for m, kind in _SPEC_KINDS.items() if callable(m) and m(text)), "image")


def check_data_for(model: str, model_kind: str, spec: str) -> DataKind:
    """The DataKind to train or score `model` with on `spec`: SettingError (on "data") when the spec
    produces another kind of input than the model takes."""
    produced = spec_kind(spec)
    if produced != model_kind:
        raise SettingError("data", f"--model {model} takes {model_kind} inputs, but --data {spec} gives "
                                   f"{produced} inputs; pick data of that kind.")
    return data_kind(model_kind)


__all__ = ["AUDIO", "DataKind", "IMAGE", "IMAGE_QUESTION", "INPUT_KINDS", "TEXT", "check_data_for", "data_kind", "register_kind",
           "register_spec", "spec_kind"]
