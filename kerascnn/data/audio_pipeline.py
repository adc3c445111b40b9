"""The audio kind's batches: random fixed-length crops of mu-law audio for next-sample prediction
(WaveNet), with the clip's global label and, for rendered notes, its pitch track.

A batch is (inputs, targets):

    inputs = {"audio":      (B, T) int32, mu-law classes 0..255 of samples t = 0..T-1 of a crop,
              "instrument": (B,)   int32, the clip's global label (class folder or instrument index),
              "pitch":      (B, T) int32, the MIDI key held at each target sample (0: none); notes only}
    targets = (B, T) int32, the class of the next sample: targets[:, t] = the class of sample t + 1

so position t of a causal model's output, which has seen samples 0..t, is scored against sample
t + 1, and the local conditioning at position t is the key held when that sample sounds (a
generator knows the whole pitch track in advance, so it feeds pitch[t + 1] when drawing sample
t + 1 the same way). T is the crop length (`clip_samples`, default DEFAULT_CLIP_SAMPLES); a crop
reaching past the end of a shorter clip is padded with silence (class 128, pitch 0).

An epoch takes ceil(length / T) crops of every clip, so it sees about every sample once: at random
starts (drawn anew each epoch from --seed) in the training split, and at fixed starts spread evenly
over the clip in the others, so validation losses compare across epochs.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence

import numpy as np

from kerascnn.config import DataConfig
from kerascnn.data.audio import (CLASSES, AudioSource, AudioSplit, audio_folder_path, concat_audio, load_audio_folder,
                                 mu_law_encode)
from kerascnn.data.build import DataBundle
from kerascnn.data.notes import is_notes_spec, load_notes
from kerascnn.errors import DataError, SettingError

log = logging.getLogger("kerascnn.data")

DEFAULT_CLIP_SAMPLES = 4096  # 256 ms at 16 kHz: longer than a 3-stack 1..512 WaveNet's 3,070-sample field
SILENCE = int(mu_law_encode(0.0))  # 128
SPECS = ("notes[:SOUNDFONT[:KEY=VALUE...]]: single notes rendered from a soundfont (default timgm6mb); "
         "audio:FOLDER or a folder of audio class folders (WAV, FLAC, OGG)")


def is_audio_spec(spec: str) -> bool:
    """notes[:...], audio:FOLDER, or an existing folder of audio files (cheap: no decoding, no TensorFlow)."""
    text = (spec or "").strip()
    return is_notes_spec(text) or text.startswith("audio:") or audio_folder_path(text) is not None


def check_audio_spec(spec: str) -> None:
    """The kind's `check_spec`: a malformed notes: spec, a missing soundfont, renderer or folder."""
    from kerascnn.data.audio import soundfile_module
    from kerascnn.data.notes import check_notes_spec

    if is_notes_spec(spec):
        check_notes_spec(spec)
        return
    path = audio_folder_path(spec)
    if path is not None and not os.path.isdir(path):
        raise DataError(f"--data {spec}: no such folder {path or '(empty)'}.")
    soundfile_module()


def open_audio_source(cfg: DataConfig) -> AudioSource:
    """Resolve an audio `cfg.spec` to its splits of clips (notes rendered or cached, or a folder decoded)."""
    if is_notes_spec(cfg.spec):
        return load_notes(cfg)
    path = audio_folder_path(cfg.spec)
    if path is None:
        raise DataError(f"--data {cfg.spec}: not audio data; give {SPECS}.")
    return load_audio_folder(path, cfg.spec)


@dataclass
class AudioBundle(DataBundle):
    """A DataBundle of audio crops (see the module docstring); `clips`: each built split's whole
    clips, unshuffled (for listening to and plotting real examples)."""

    sample_rate: int = 16_000
    clip_samples: int = DEFAULT_CLIP_SAMPLES
    pitched: bool = False
    clips: Dict[str, AudioSplit] = field(default_factory=dict)


def crop_plan(lengths: np.ndarray, clip: int):
    """(clip index of every crop, the fixed start of every crop, the last start of every clip):
    ceil(length / clip) crops a clip, their fixed starts spread evenly from 0 to the last start."""
    lengths = np.asarray(lengths, np.int64)
    crops = np.maximum(1, -(-lengths // clip))
    clip_of = np.repeat(np.arange(len(lengths)), crops)
    k = np.arange(len(clip_of)) - np.repeat(np.cumsum(crops) - crops, crops)
    room = np.maximum(0, lengths - (clip + 1))  # a crop holds clip + 1 samples: inputs and the next one
    starts = (k * room[clip_of]) // np.maximum(1, crops[clip_of] - 1)
    return clip_of, starts.astype(np.int64), room


def audio_dataset(split: AudioSplit, clip: int, batch_size: int, shuffle_seed: Optional[int] = None,
                  pitched: bool = False):
    """Batches of crops of `split` (see the module docstring); random starts when `shuffle_seed` is
    given (the training split), fixed ones otherwise. The audio stays one flat uint8 tensor fed
    through from_tensors(...).repeat() (pipeline.array_dataset's way: out of the graph)."""
    import tensorflow as tf

    from kerascnn.data import pipeline

    lengths = split.lengths
    flat = mu_law_encode(np.concatenate(list(split.waves))).astype(np.uint8)
    track = (np.concatenate(list(split.pitch)).astype(np.uint8) if pitched else np.zeros(1, np.uint8))
    base = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    clip_of, starts, room = crop_plan(lengths, clip)
    arrays = (flat, track, base, lengths, split.labels.astype(np.int32), clip_of, starts, room)
    data = tf.data.Dataset.from_tensors(arrays).repeat()
    total = len(flat)

    def crop(index, seed, arrays):
        flat, track, base, lengths, labels, clip_of, starts, room = arrays
        clips = tf.gather(clip_of, index)
        if shuffle_seed is None:
            start = tf.gather(starts, index)
        else:  # a uniform start in [0, room]: stateless, from the epoch's seeded stream of batch seeds
            u = tf.random.stateless_uniform(tf.shape(index), tf.stack([seed, tf.constant(0x5EED, tf.int64)]), dtype=tf.float64)
            last = tf.gather(room, clips)
            start = tf.minimum(tf.cast(u * tf.cast(last + 1, tf.float64), tf.int64), last)
        pos = start[:, None] + tf.range(clip + 1, dtype=tf.int64)[None, :]
        valid = pos < tf.gather(lengths, clips)[:, None]
        at = tf.minimum(tf.gather(base, clips)[:, None] + pos, total - 1)
        window = tf.where(valid, tf.cast(tf.gather(flat, at), tf.int32), SILENCE)
        inputs = {"audio": window[:, :-1], "instrument": tf.gather(labels, clips)}
        if pitched:
            inputs["pitch"] = tf.where(valid, tf.cast(tf.gather(track, at), tf.int32), 0)[:, 1:]
        return inputs, window[:, 1:]

    indices = pipeline._index_batches(len(clip_of), batch_size, shuffle_seed)
    seeds = tf.data.Dataset.random(seed=shuffle_seed or 0, rerandomize_each_iteration=True)
    ds = tf.data.Dataset.zip((indices, seeds, data)).map(crop)
    return ds.with_options(pipeline.in_memory_options()).prefetch(tf.data.AUTOTUNE).with_options(
        pipeline.epoch_options())


def clip_length(clip_samples: Optional[int], input_shape: Any) -> int:
    """The crop length: `clip_samples` when given, else the model's fixed time length (input_shape
    (T,), (T, 1) or {"audio": (T, ...)}), else DEFAULT_CLIP_SAMPLES."""
    if clip_samples is None:
        shape = input_shape.get("audio") if isinstance(input_shape, dict) else input_shape
        first = shape[0] if isinstance(shape, (tuple, list)) and shape else None
        clip_samples = first if isinstance(first, (int, np.integer)) else DEFAULT_CLIP_SAMPLES
    if int(clip_samples) < 1:
        raise SettingError("clip_samples", f"audio crops need at least one sample. Received: {clip_samples}")
    return int(clip_samples)


def build_audio(cfg: DataConfig, input_shape: Any = None, batch_size: int = 16, augment: Any = None,
                splits: Sequence[str] = ("train", "val"), source: Optional[AudioSource] = None,
                clip_samples: Optional[int] = None) -> AudioBundle:
    """The audio kind's `build`: batched tf.data splits of crops of `cfg.spec` (see the module
    docstring; `splits` as kerascnn.data.build.build_datasets: "eval" is test, else the seeded
    held-out val, stratified by label; "all" every clip). `model_args` gets {"num_instruments": the
    number of global labels, "pitch_classes": 128 with a pitch track, else 0, and with a pitch track
    "sample_rate"} for the model's builder.

    Raises:
        DataError: the spec cannot be read, or "eval" is asked of data with nothing held out.
    """
    from kerascnn.data.build import check_build_args, split_parts
    from kerascnn.data.folders import summarize_skipped

    check_build_args(cfg, batch_size, splits, augment, "augmentation applies to images, not audio.")
    clip = clip_length(clip_samples, input_shape)
    source = source if source is not None else open_audio_source(cfg)
    parts, eval_name = split_parts(source, cfg, splits, concat_audio)
    bundle = AudioBundle(class_names=list(source.class_names), skipped=list(source.skipped),
                         eval_split=eval_name if "eval" in splits else None, sample_rate=source.sample_rate,
                         clip_samples=clip, pitched=source.pitched)
    bundle.model_args = {"num_instruments": len(source.class_names), "pitch_classes": 128 if source.pitched else 0}
    if source.pitched:  # the pitch features' carrier runs at the audio's rate
        bundle.model_args["sample_rate"] = int(source.sample_rate)
    if "train" in parts:
        bundle.class_counts = np.bincount(parts["train"].labels, minlength=bundle.num_classes).tolist()
    for name in ("train", "val", "test", "all"):
        aliases = [name] * (name in splits) + ["eval"] * (name == eval_name and "eval" in splits)
        if name not in parts or not aliases:
            continue
        if len(parts[name]) == 0:
            raise DataError(f"--data {cfg.spec}: the {name} split has no clips.")
        ds = audio_dataset(parts[name], clip, int(batch_size), cfg.seed if name == "train" else None, source.pitched)
        for alias in aliases:
            setattr(bundle, alias, ds)
            bundle.counts[alias] = len(crop_plan(parts[name].lengths, clip)[0])
            bundle.clips[alias] = parts[name]
    bundle.description = describe_audio(cfg, source, parts, clip)
    if bundle.skipped:
        log.warning("%s (see DataBundle.skipped)", summarize_skipped(bundle.skipped, what="clips"))
    return bundle


def describe_audio(cfg: DataConfig, source: AudioSource, parts, clip: int) -> str:
    sizes = " / ".join(f"{len(parts[n]):,} {n}" for n in ("train", "val", "test") if n in parts)
    held = "val" in parts and "val" not in source.splits
    held_out = f" (val: {cfg.val_split:.0%} held out, seed {cfg.seed})" if held else ""
    seconds = sum(int(parts[n].lengths.sum()) for n in ("train", "val", "test") if n in parts) / source.sample_rate
    pitch = ", with pitch tracks" if source.pitched else ""
    return (f"{cfg.spec} ({source.kind}): {sizes} clips{held_out}; {len(source.class_names)} "
            f"{'instruments' if source.pitched else 'classes'}; {seconds:,.1f} s of audio at {source.sample_rate:,} Hz"
            f"{pitch}; crops of {clip:,} samples ({1000 * clip / source.sample_rate:,.0f} ms) as {CLASSES} mu-law "
            f"classes, the next sample the target")


__all__ = ["AudioBundle", "DEFAULT_CLIP_SAMPLES", "SILENCE", "SPECS", "audio_dataset", "build_audio",
           "check_audio_spec", "clip_length", "crop_plan", "describe_audio", "is_audio_spec", "open_audio_source"]
