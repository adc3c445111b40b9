"""What every WaveNet command writes: the WAV, its spectrogram beside it (NAME.png) and a JSON with
every setting (NAME.json), each saved atomically; and the same WAV and spectrogram as bytes
(`wav_bytes`, `spectrogram_png`) for pages that embed them (the run report's audio section).

    paths = write_outputs("note.wav", waveform, 16000, {"model": ..., "pitch": 60, "seed": 0})
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Dict, Tuple

import numpy as np

from kerascnn.data.audio import mu_law_decode, soundfile_module
from kerascnn.runtime.jobs import atomic_save
from kerascnn.runtime.plots import colormap, figure, save_png

DYNAMIC_RANGE_DB = 100.0  # shown below the loudest bin (8-bit mu-law's own range is ~48 dB near full scale)
SPECTROGRAM_FFT = 512  # 32 ms windows at 16 kHz: a 31 Hz resolution, enough to read a note's partials


def decode(classes: np.ndarray) -> np.ndarray:
    """Mu-law classes to float32 samples in [-1, 1]."""
    return mu_law_decode(np.asarray(classes))


def wav_bytes(waveform: np.ndarray, rate: int) -> bytes:
    """A mono 16-bit PCM WAV file's bytes (soundfile), samples clipped to [-1, 1]."""
    soundfile = soundfile_module()
    buf = io.BytesIO()
    soundfile.write(buf, np.clip(np.asarray(waveform, np.float32), -1.0, 1.0), int(rate), subtype="PCM_16",
                    format="WAV")
    return buf.getvalue()


def write_wav(path: Path, waveform: np.ndarray, rate: int) -> Path:
    """16-bit PCM WAV (`wav_bytes`), mono."""
    data = wav_bytes(waveform, rate)
    atomic_save(path, lambda p: Path(p).write_bytes(data))
    return Path(path)


def _spectrogram_figure(waveform: np.ndarray, rate: int, title: str, figsize: Tuple[float, float]):
    fig, ax = figure(figsize=figsize)
    wave = np.asarray(waveform, np.float64)
    nfft = min(SPECTROGRAM_FFT, max(16, len(wave) // 2))
    if len(wave) >= 2:
        cmap = colormap("magma")
        with np.errstate(divide="ignore"):  # silent stretches have zero power: -inf dB, drawn darkest
            spec, _, _, image = ax.specgram(wave, NFFT=nfft, Fs=rate, noverlap=nfft * 3 // 4,
                                            cmap=cmap.with_extremes(bad=cmap(0.0), under=cmap(0.0)))
        if np.any(spec > 0):  # the top DYNAMIC_RANGE_DB below the loudest bin, as audio editors show it
            top = 10 * np.log10(spec.max())
            image.set_clim(top - DYNAMIC_RANGE_DB, top)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_spectrogram(path: Path, waveform: np.ndarray, rate: int, title: str = "") -> Path:
    """The waveform's spectrogram (dB), time across, frequency up to Nyquist (matplotlib object API)."""
    return save_png(_spectrogram_figure(waveform, rate, title or Path(path).stem, (8, 3.5)), path)


def spectrogram_png(waveform: np.ndarray, rate: int, title: str = "",
                    figsize: Tuple[float, float] = (8, 3.5), dpi: int = 100) -> bytes:
    """`plot_spectrogram`'s picture as PNG bytes (`figsize` in inches at `dpi`)."""
    buf = io.BytesIO()
    _spectrogram_figure(waveform, rate, title, figsize).savefig(buf, dpi=dpi, format="png")
    return buf.getvalue()


def write_outputs(wav: Path, waveform: np.ndarray, rate: int, settings: Dict) -> Dict[str, Path]:
    """WAV + spectrogram PNG + settings JSON beside it: {"wav", "png", "json"} paths."""
    wav = Path(wav)
    if wav.suffix.lower() != ".wav":
        wav = wav.with_suffix(".wav")
    wav.parent.mkdir(parents=True, exist_ok=True)
    paths = {"wav": write_wav(wav, waveform, rate),
             "png": plot_spectrogram(wav.with_suffix(".png"), waveform, rate, title=settings.get("title", "")),
             "json": wav.with_suffix(".json")}
    record = {**settings, "sample_rate": int(rate), "samples": int(len(waveform)),
              "seconds": round(len(waveform) / rate, 6), "wav": str(paths["wav"]), "spectrogram": str(paths["png"])}
    text = json.dumps(record, indent=2, ensure_ascii=False, default=_plain) + "\n"
    atomic_save(paths["json"], lambda p: Path(p).write_text(text, encoding="utf-8"))
    return paths


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


__all__ = ["decode", "plot_spectrogram", "spectrogram_png", "wav_bytes", "write_outputs", "write_wav"]
