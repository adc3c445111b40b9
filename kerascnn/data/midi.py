"""A monophonic melody from a MIDI file: its highest voice, as a per-sample pitch track.

Read with mido (`pip install mido`): every note-on / note-off of every track (a note-on of velocity
0 is a note-off), tempo changes applied, into (start s, end s, key) notes. Where several keys sound
at once, the melody is the highest (a chorale's soprano); the track holds at each sample the key
of the highest note sounding, 0 where none is (the convention of kerascnn.data.notes' tracks).
"""
from __future__ import annotations

import math
from typing import List, Tuple

import numpy as np

from kerascnn.data.audio import SAMPLE_RATE
from kerascnn.errors import DataError

Note = Tuple[float, float, int]  # start and end in seconds, MIDI key


def _mido():
    try:
        import mido
    except ImportError:
        raise DataError("Reading MIDI files needs the mido package: pip install mido (or pip install kerascnn[audio]).") from None
    return mido


def read_notes(path: str) -> List[Note]:
    """Every note of the file, (start s, end s, key), sorted by start then key."""
    mido = _mido()
    try:
        midi = mido.MidiFile(path)
    except (OSError, EOFError, ValueError, KeyError, IndexError) as e:
        raise DataError(f"{path}: not a readable MIDI file ({type(e).__name__}: {e}).") from None
    notes, sounding, now = [], {}, 0.0
    for message in midi:  # merged tracks, message.time in seconds (tempo applied)
        now += message.time
        if message.type not in ("note_on", "note_off"):
            continue
        key = (message.channel, message.note)
        if message.type == "note_on" and message.velocity > 0:
            sounding.setdefault(key, now)
        elif key in sounding:
            start = sounding.pop(key)
            if now > start:
                notes.append((start, now, message.note))
    notes += [(start, now, note) for (_, note), start in sounding.items() if now > start]  # never released
    return sorted(notes, key=lambda n: (n[0], n[2]))


def pitch_track(notes: List[Note], rate: int = SAMPLE_RATE, seconds: float = None) -> np.ndarray:
    """(samples,) int32: the highest key sounding at each sample, 0 where none; `seconds` long, by
    default until the last note ends."""
    end = max((n[1] for n in notes), default=0.0) if seconds is None else float(seconds)
    track = np.zeros(int(math.ceil(end * rate)), np.int32)
    for start, stop, key in notes:
        a, b = int(round(start * rate)), min(int(round(stop * rate)), len(track))
        track[a:b] = np.maximum(track[a:b], key)
    return track


def melody_track(path: str, rate: int = SAMPLE_RATE, seconds: float = None) -> np.ndarray:
    """The file's highest voice as a per-sample pitch track (see `pitch_track`)."""
    notes = read_notes(path)
    if not notes:
        raise DataError(f"{path}: holds no notes.")
    return pitch_track(notes, rate, seconds)


__all__ = ["melody_track", "pitch_track", "read_notes"]
