"""What `kerascnn wavenet generate | play | continue` do with a trained WaveNet: a note, a MIDI
melody or the continuation of a clip, each written as WAV + spectrogram PNG + settings JSON.

    generate_note("runs/wn/model.keras", "note.wav", pitch=60, seconds=1, instrument="flute:0.5,piano:0.5")

An instrument is a class name or index of the model's run (classes.json beside the model), or a mix
"NAME:WEIGHT,NAME:WEIGHT" whose embedding is the weighted mean of theirs (NSynth's interpolation).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from kerascnn.data.audio import SAMPLE_RATE, mu_law_encode, read_audio
from kerascnn.errors import SettingError, UserError
from kerascnn.synthesis.wavenet_generate import Net, generate, mix_instruments
from kerascnn.synthesis.wavenet_outputs import decode, write_outputs


def load_wavenet(path) -> Tuple[Net, Sequence[str]]:
    """(the model's weights for generation, its instrument names: classes.json beside it, else indices)."""
    from kerascnn.models.loading import load_model
    from kerascnn.runtime.run_dir import read_classes

    net = Net.from_model(load_model(path))
    count = 0 if net.instrument_embedding is None else len(net.instrument_embedding)
    names = read_classes(path) or []
    return net, (list(names) if len(names) == count else [str(i) for i in range(count)])


def instrument_index(text: str, names: Sequence[str]) -> int:
    """A name (any case) or an index of `names`; SettingError listing them otherwise."""
    text = text.strip()
    lowered = [n.lower() for n in names]
    if text.isdigit() and int(text) < len(names):
        return int(text)
    if text.lower() in lowered:
        return lowered.index(text.lower())
    raise SettingError("instrument", f"unknown instrument {text!r}; the model plays: "
                                     f"{', '.join(f'{i} {n}' for i, n in enumerate(names)) or 'none'}.")


def parse_instrument(text: Optional[str], net: Net, names: Sequence[str]):
    """(what `generate` takes: None, [index] or a (1, E) mix of embeddings, the setting as recorded)."""
    if text is None or not text.strip():
        return None, None
    if net.instrument_embedding is None:
        raise SettingError("instrument", "this WaveNet was trained without instruments; drop --instrument.")
    if ":" not in text:
        index = instrument_index(text, names)
        return [index], {"instrument": names[index], "index": index}
    weights: Dict[int, float] = {}
    for part in text.split(","):
        name, _, value = part.rpartition(":")
        try:
            weights[instrument_index(name, names)] = weights.get(instrument_index(name, names), 0.0) + float(value)
        except ValueError:
            raise SettingError("instrument", f"a mix is NAME:WEIGHT,NAME:WEIGHT. Received: {text!r}") from None
    mix = mix_instruments(net, weights)[None, :]
    return mix, {"mix": {names[i]: w for i, w in weights.items()}}


def _write(out, classes: np.ndarray, settings: dict, rate: int) -> Dict[str, Path]:
    return write_outputs(Path(out), decode(classes), rate, settings)


def _common(model, temperature: float, seed: int, fast: bool) -> dict:
    return {"model": str(model), "temperature": float(temperature), "seed": int(seed),
            "algorithm": "fast (queued)" if fast else "plain"}


def generate_note(model, out, *, pitch: int = 60, seconds: float = 1.0, instrument: Optional[str] = None,
                  temperature: float = 1.0, seed: int = 0, fast: bool = True, rate: int = SAMPLE_RATE,
                  hold: Optional[float] = None) -> Dict[str, Path]:
    """One note of MIDI key `pitch`, `seconds` long (the key held `hold` s, default 3/4 of it, as
    the training notes); files as `write_outputs`."""
    net, names = load_wavenet(model)
    length = max(1, int(round(seconds * rate)))
    held = int(round((0.75 * seconds if hold is None else hold) * rate))
    track = np.where(np.arange(length) < held, int(pitch), 0)[None, :] if net.pitched else None
    chosen, recorded = parse_instrument(instrument, net, names)
    classes = generate(net, length, instrument=chosen, pitch=track, temperature=temperature, seed=seed, fast=fast)
    settings = {"command": "wavenet generate", **_common(model, temperature, seed, fast), "pitch": int(pitch),
                "hold_seconds": held / rate, **(recorded or {}), "title": f"pitch {pitch}" +
                (f", {instrument}" if instrument else "")}
    return _write(out, classes[0], settings, rate)


def play_melody(model, midi, out, *, instrument: Optional[str] = None, temperature: float = 1.0, seed: int = 0,
                fast: bool = True, rate: int = SAMPLE_RATE, seconds: Optional[float] = None) -> Dict[str, Path]:
    """The highest voice of a MIDI file, played by the model (a pitched one)."""
    from kerascnn.data.midi import melody_track

    net, names = load_wavenet(model)
    if not net.pitched:
        raise UserError(f"{model} was trained without pitch tracks; it cannot follow a melody.")
    track = melody_track(str(midi), rate, seconds)
    chosen, recorded = parse_instrument(instrument, net, names)
    classes = generate(net, len(track), instrument=chosen, pitch=track[None, :], temperature=temperature,
                       seed=seed, fast=fast)
    settings = {"command": "wavenet play", **_common(model, temperature, seed, fast), "midi": str(midi),
                "notes_keys": sorted({int(k) for k in np.unique(track) if k}), **(recorded or {}),
                "title": f"{Path(str(midi)).name}" + (f", {instrument}" if instrument else "")}
    return _write(out, classes[0], settings, rate)


def continue_clip(model, prime, out, *, seconds: float = 4.0, temperature: float = 1.0, seed: int = 0,
                  fast: bool = True, rate: int = SAMPLE_RATE, instrument: Optional[str] = None) -> Dict[str, Path]:
    """The clip `prime` (any audio file) and `seconds` more generated after it, in one WAV."""
    net, names = load_wavenet(model)
    if net.pitched:
        raise UserError(f"{model} plays pitch tracks; continue needs a model trained without them (audio folders).")
    wave = read_audio(str(prime), rate)
    if isinstance(wave, str):
        raise UserError(f"--prime {prime}: {wave}.")
    start = mu_law_encode(wave)[None, :]
    chosen, recorded = parse_instrument(instrument, net, names)
    classes = generate(net, max(1, int(round(seconds * rate))), prime=start, instrument=chosen,
                       temperature=temperature, seed=seed, fast=fast)
    settings = {"command": "wavenet continue", **_common(model, temperature, seed, fast), "prime": str(prime),
                "prime_samples": int(start.shape[1]), **(recorded or {}), "title": f"{Path(str(prime)).name} continued"}
    return _write(out, np.concatenate([start[0], classes[0]]), settings, rate)


__all__ = ["continue_clip", "generate_note", "instrument_index", "load_wavenet", "parse_instrument", "play_melody"]
