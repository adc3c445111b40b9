"""What every WaveNet command writes: the WAV, its spectrogram beside it (NAME.png) and a JSON with
every setting (NAME.json), each saved atomically.

    paths = write_outputs("note.wav", waveform, 16000, {"model": ..., "pitch": 60, "seed": 0})
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict

import numpy as np

from kerascnn.data.audio import mu_law_decode, soundfile_module
from kerascnn.runtime.jobs import atomic_save
from kerascnn.runtime.plots import colormap, figure, save_png

SPECTROGRAM_FFT = 512  # 32 ms windows at 16 kHz: a 31 Hz resolution, enough to read a note's partials


def decode(classes: np.ndarray) -> np.ndarray:
    """Mu-law classes to float32 samples in [-1, 1]."""
    return mu_law_decode(np.asarray(classes))


def write_wav(path: Path, waveform: np.ndarray, rate: int) -> Path:
    """16-bit PCM WAV (soundfile), mono."""
    soundfile = soundfile_module()
    data = np.clip(np.asarray(waveform, np.float32), -1.0, 1.0)
    atomic_save(path, lambda p: soundfile.write(p, data, int(rate), subtype="PCM_16", format="WAV"))
    return Path(path)


def plot_spectrogram(path: Path, waveform: np.ndarray, rate: int, title: str = "") -> Path:
    """The waveform's spectrogram (dB), time across, frequency up to Nyquist (matplotlib object API)."""
    fig, ax = figure(figsize=(8, 3.5))
    wave = np.asarray(waveform, np.float64)
    nfft = min(SPECTROGRAM_FFT, max(16, len(wave) // 2))
    if len(wave) >= 2:
        ax.specgram(wave + 1e-9, NFFT=nfft, Fs=rate, noverlap=nfft * 3 // 4, cmap=colormap("magma"))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    ax.set_title(title or Path(path).stem)
    fig.tight_layout()
    return save_png(fig, path)


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


__all__ = ["decode", "plot_spectrogram", "write_outputs", "write_wav"]
