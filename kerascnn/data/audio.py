"""Audio data (the "audio" input kind): decoding any audio file to mono at one rate, 8-bit mu-law,
and folders of audio files (`--data audio:FOLDER`, or a folder of audio class folders).

Files are read with soundfile (libsndfile: WAV, FLAC, OGG/Vorbis, AIFF, and MP3 from libsndfile
1.1 on), mixed down to mono (the mean of the channels) and resampled to SAMPLE_RATE (16 kHz, as
WaveNet's and NSynth's data) with scipy's polyphase resampler. A file that does not decode, holds
no samples or holds NaN/inf is skipped with its reason and summarised in one line, as for images.

Folders follow the image folders' layouts (kerascnn.data.folders): PATH/<class>/... or
PATH/train/<class>/ with val/ (and test/); the class is the clip's global label (an instrument, a
speaker). A folder of audio files with no class folders is one class, named after the folder (data
for a model without global conditioning). soundfile is an optional dependency: `pip install
kerascnn[audio]`. Nothing here imports TensorFlow.

Mu-law (ITU-T G.711; WaveNet, van den Oord et al. 2016, section 2.2): f(x) = sign(x) ln(1 + mu|x|)
/ ln(1 + mu) on [-1, 1], quantised to mu + 1 = 256 classes, class k standing for 2k/mu - 1.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from kerascnn.data.folders import (check_split_filled, collect_files, folder_holds, list_files, split_layout,
                                   subfolders, summarize_skipped)
from kerascnn.data.images import has_image_extension
from kerascnn.data.sources import Source
from kerascnn.errors import DataError
from kerascnn.models import mulaw

log = logging.getLogger("kerascnn.data")

SAMPLE_RATE = 16_000
MU = mulaw.MU  # 8-bit mu-law: MU + 1 = 256 classes
CLASSES = MU + 1
AUDIO_EXTENSIONS = (".wav", ".wave", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".mp3")
INSTALL = "pip install kerascnn[audio]"  # what brings soundfile
Skipped = List[Tuple[str, str]]


# ---- mu-law -------------------------------------------------------------------------------------

def mu_law_encode(x, mu: int = MU) -> np.ndarray:
    """Waveform samples in [-1, 1] (clipped there) to int32 classes 0..mu: the companded value
    rounded to the nearest of the mu + 1 levels 2k/mu - 1."""
    return np.floor((mulaw.compand(x, mu) + 1.0) / 2.0 * mu + 0.5).astype(np.int32)


def mu_law_decode(classes, mu: int = MU) -> np.ndarray:
    """Classes 0..mu back to float32 samples in [-1, 1]: the inverse of the companding at each
    class's level. The round trip's error is at most (1 + mu|x|) ln(1 + mu) (1 + mu)^(1/mu) / mu^2:
    half a level (1/mu) times the expansion's slope."""
    return mulaw.expand(mulaw.level(classes, mu), mu).astype(np.float32)


# ---- decoding -----------------------------------------------------------------------------------

def soundfile_module():
    """The soundfile package; DataError saying how to install it when it is missing."""
    try:
        import soundfile
    except (ImportError, OSError) as e:  # OSError: the package is there but libsndfile is not
        raise DataError(f"Audio files need the soundfile package ({e}); {INSTALL}.") from None
    return soundfile


def has_audio_extension(name: str) -> bool:
    return name.lower().endswith(AUDIO_EXTENSIONS)


def to_mono(data: np.ndarray) -> np.ndarray:
    """(frames, channels) or (frames,) to (frames,): the mean of the channels."""
    data = np.asarray(data, np.float32)
    return data.mean(axis=1, dtype=np.float32) if data.ndim == 2 else data


def resample(wave: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """`wave` (mono) from `rate` to `target` Hz: scipy's polyphase resampler (a Kaiser-windowed
    low-pass at the lower Nyquist, so nothing above it folds back), float32."""
    if int(rate) == int(target):
        return np.asarray(wave, np.float32)
    from scipy.signal import resample_poly

    g = math.gcd(int(rate), int(target))
    return resample_poly(np.asarray(wave, np.float32), int(target) // g, int(rate) // g).astype(np.float32)


def read_audio(path: str, rate: int = SAMPLE_RATE) -> Union[np.ndarray, str]:
    """The file's samples, mono float32 at `rate`; or why it cannot be used (a short phrase)."""
    sf = soundfile_module()
    try:
        data, source_rate = sf.read(path, dtype="float32", always_2d=True)
    except OSError as e:
        return f"cannot read: {e.strerror or e}"
    except (RuntimeError, ValueError, TypeError) as e:  # libsndfile's errors are RuntimeErrors
        why = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        why = re.sub(r"^Error opening .*?: ", "", why).strip().rstrip(".")  # the path is said already
        return f"not a readable audio file ({why[:80]})"
    if data.shape[0] == 0:
        return "no audio samples"
    if not np.isfinite(data).all():
        return "holds NaN or infinite samples"
    return resample(to_mono(data), source_rate, rate)


def read_many(paths: Sequence[str], rate: int = SAMPLE_RATE) -> List[Union[np.ndarray, str]]:
    """`read_audio` of every path, in threads (libsndfile and the resampler release the GIL)."""
    soundfile_module()  # one clear error before the threads start
    with ThreadPoolExecutor(max_workers=min(8, 2 * (os.cpu_count() or 1))) as pool:
        return list(pool.map(lambda p: read_audio(p, rate), paths))


# ---- splits -------------------------------------------------------------------------------------

@dataclass
class AudioSplit:
    """Clips in memory: mono float32 waveforms (an object array of 1-D arrays, any lengths), their
    global labels (class or instrument index), where each came from, and optionally the pitch track
    of each clip (uint8 MIDI note held at each sample, 0 = none) and its note (-1: unknown)."""

    waves: np.ndarray
    labels: np.ndarray
    origins: np.ndarray
    pitch: Optional[np.ndarray] = None  # object array of uint8 (len(wave),) tracks, or None
    notes: Optional[np.ndarray] = None  # (N,) int, the note of each clip (-1: unknown), or None

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray) -> "AudioSplit":
        values = (getattr(self, f.name) for f in dataclasses.fields(self))
        return AudioSplit(*(None if v is None else v[index] for v in values))

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(w) for w in self.waves], np.int64)


def objects(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """An object array holding `arrays` as they are (np.array would stack equal-length ones)."""
    out = np.empty(len(arrays), object)
    for i, a in enumerate(arrays):  # one by one: a slice assignment would broadcast equal shapes
        out[i] = a
    return out


def audio_split(waves: Sequence[np.ndarray], labels: Sequence[int], origins: Sequence[str],
                pitch: Optional[Sequence[np.ndarray]] = None, notes: Optional[Sequence[int]] = None) -> AudioSplit:
    return AudioSplit(objects(waves), np.asarray(labels, np.int64), objects(list(origins)),
                      None if pitch is None else objects(pitch), None if notes is None else np.asarray(notes, np.int64))


def concat_audio(parts: Sequence[AudioSplit]) -> AudioSplit:
    def join(name):
        values = [getattr(p, name) for p in parts]
        return None if any(v is None for v in values) else np.concatenate(values)

    return AudioSplit(*(join(f.name) for f in dataclasses.fields(AudioSplit)))


@dataclass
class AudioSource(Source):
    """An audio spec's splits of AudioSplits; `pitched`: every clip has a pitch track (notes:)."""

    sample_rate: int = SAMPLE_RATE
    pitched: bool = False


# ---- folders ------------------------------------------------------------------------------------

def audio_folder_path(spec: str) -> Optional[str]:
    """The folder an audio-folder spec names (`audio:PATH`, or a bare folder of audio files); None
    when the spec is not one. Cheap: a glance at the folder, no decoding."""
    text = (spec or "").strip()
    if text.startswith("audio:"):
        return os.path.expanduser(text[len("audio:"):])
    return os.path.expanduser(text) if is_audio_folder(text) else None


def is_audio_folder(spec: str) -> bool:
    """An existing folder whose files (at the top, or in its class folders, under train/ when there
    is one) include audio files and no images or .txt files (folders.folder_holds)."""
    return folder_holds(spec, has_audio_extension,
                        lambda name: has_image_extension(name) or name.lower().endswith(".txt"), loose_files=True)


def _audio_files(folder: str, skipped: Skipped) -> List[str]:
    return list_files(folder, skipped, has_audio_extension, "not an audio file type")


def _read_split(folder: str, class_names: List[str], skipped: Skipped, rate: int, flat: bool) -> AudioSplit:
    files, labels = [], []
    for label, name in enumerate(class_names):
        where = folder if flat else os.path.join(folder, name)
        if os.path.isdir(where):
            found = _audio_files(where, skipped)
            files += found
            labels += [label] * len(found)
    read = read_many(files, rate)
    keep = [i for i, r in enumerate(read) if not isinstance(r, str)]
    skipped += [(files[i], r) for i, r in enumerate(read) if isinstance(r, str)]
    return audio_split([read[i] for i in keep], [labels[i] for i in keep], [os.path.abspath(files[i]) for i in keep])


def load_audio_folder(path: str, spec: str, rate: int = SAMPLE_RATE) -> AudioSource:
    """PATH/<class>/..., PATH/train/<class>/ with val/ (and test/), or PATH/*.wav (one class), each
    file decoded to mono at `rate` (see the module docstring)."""
    if not os.path.isdir(path):
        raise DataError(f"--data {spec}: {path} is not a folder.")
    found = split_layout(path, spec, "audio files")
    flat = False
    if found is not None:
        folders, class_names = found
    elif subfolders(path):
        folders, class_names = {"train": path}, subfolders(path)
    else:  # audio files and no class folders: one class
        flat = True
        folders, class_names = {"train": path}, [os.path.basename(os.path.abspath(path)) or "audio"]
    skipped: Skipped = []
    splits = {}
    for split, folder in folders.items():
        splits[split] = _read_split(folder, class_names, skipped, rate, flat)
        counts = np.bincount(splits[split].labels, minlength=len(class_names))
        why = f": {summarize_skipped(skipped, what='files')}" if skipped else ""
        check_split_filled(spec, split, folder, dict(zip(class_names, counts)), len(splits[split]), "audio files",
                           f" ({', '.join(AUDIO_EXTENSIONS)}){why}")
    return AudioSource(spec, "audio folder", splits, class_names, skipped, sample_rate=rate)


def load_audio_inputs(paths: Union[str, Sequence[str]], input_shape=None, rate: int = SAMPLE_RATE
                      ) -> Tuple[np.ndarray, List[str], Skipped]:
    """The audio kind's `load_inputs` (what `predict` and a model's priming read): every audio file
    named, or found under a named folder, as a mono float32 waveform at `rate`.

    Returns an object array of the waveforms (their lengths differ), the files they came from, and
    the (file, reason) of what was skipped.

    Raises:
        DataError: no usable audio in any of `paths`.
    """
    files, skipped = collect_files(paths, _audio_files)
    read = read_many(files, rate) if files else []
    skipped += [(f, r) for f, r in zip(files, read) if isinstance(r, str)]
    good = [(f, r) for f, r in zip(files, read) if not isinstance(r, str)]
    if not good:
        why = f": {summarize_skipped(skipped, what='inputs')}" if skipped else ""
        raise DataError(f"No usable audio in {', '.join(map(str, paths))}{why}")
    if skipped:
        log.warning(summarize_skipped(skipped, what="inputs"))
    return objects([w for _, w in good]), [f for f, _ in good], skipped


__all__ = ["AUDIO_EXTENSIONS", "AudioSource", "AudioSplit", "CLASSES", "INSTALL", "MU", "SAMPLE_RATE", "audio_folder_path",
           "audio_split", "concat_audio", "has_audio_extension", "is_audio_folder", "load_audio_folder",
           "load_audio_inputs", "mu_law_decode", "mu_law_encode", "objects", "read_audio", "read_many", "resample",
           "soundfile_module", "to_mono"]
