"""A generated note set, NSynth-style: `--data notes[:SOUNDFONT[:KEY=VALUE...]]` renders single notes of
chosen General MIDI instruments from a SoundFont, with the pitch track of every clip.

NSynth (Engel et al. 2017) rendered every note of ~1,000 instruments at 16 kHz for 4 s, the key held
for 3 s, at five velocities. This renders the same way, shorter by default for CPU training: each
clip is `seconds` long (default 1.0) with the key held for `hold` (0.75) and then released, so the
release tail is in the clip. The pitch track is the key held down at each sample, as a MIDI
piano roll has it: the note number while held, 0 from the release on (the model hears the tail and
learns that a released note decays; a melody's note-offs condition it the same way).

Options (after the soundfont, `:`-separated; lists take commas and ranges `48-84`):

    programs=piano,guitar,violin,flute   General MIDI programs, numbers 0-127 or names (notes_programs)
    pitches=48-84                         MIDI notes (C3-C6)
    velocities=100                        key velocities 1-127 (NSynth: 25,50,75,100,127)
    seconds=1.0  hold=0.75  rate=16000    clip length, how long the key is held, samples per second
    test_pitches=                         notes rendered into a test split (never trained on)

The soundfont is a .sf2/.sf3 file or a name: timgm6mb (Debian's timgm6mb-soundfont, 6 MB, the
default), fluidr3_gm (fluid-soundfont-gm, 148 MB). Rendering uses the tinysoundfont package (pip
install --no-deps tinysoundfont: its pyaudio dependency is for live playback only, not needed here).
The set is cached after its first render as one .npz in `--data-dir`/notes, else
$XDG_CACHE_HOME/kerascnn/notes (~/.cache/kerascnn/notes), keyed by the soundfont's path, size and
modification time and every option: a change to any renders again. Clips the soundfont leaves
silent (no sample for that key) are skipped and summarised.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from kerascnn.config import DataConfig
from kerascnn.data.audio import SAMPLE_RATE, AudioSource, audio_split
from kerascnn.data.notes_programs import resolve_programs
from kerascnn.errors import DataError

log = logging.getLogger("kerascnn.data")

PREFIX = "notes"
# name -> (file, the Debian package that installs it)
SOUNDFONTS = {"timgm6mb": ("/usr/share/sounds/sf2/TimGM6mb.sf2", "timgm6mb-soundfont"),
              "fluidr3_gm": ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "fluid-soundfont-gm"),
              "default_gm": ("/usr/share/sounds/sf2/default-GM.sf2", "timgm6mb-soundfont or fluid-soundfont-gm")}
DEFAULT_SOUNDFONT = "timgm6mb"
DEFAULTS = {"programs": "piano,guitar,violin,flute", "pitches": "48-84", "velocities": "100", "seconds": "1.0",
            "hold": "0.75", "rate": str(SAMPLE_RATE), "test_pitches": ""}
RENDERER_INSTALL = "pip install --no-deps tinysoundfont"
SILENT = 1e-4  # a clip whose peak stays below this is the soundfont's silence (no sample for the key)
FORMAT = 2  # the cache file's layout; bump it to render every cached set again


@dataclass(frozen=True)
class NoteSet:
    """What to render: a resolved `notes:` spec."""

    soundfont: str  # the .sf2/.sf3 file
    programs: Tuple[int, ...]
    names: Tuple[str, ...]  # class names, one per program
    pitches: Tuple[int, ...]
    velocities: Tuple[int, ...]
    seconds: float = 1.0
    hold: float = 0.75
    rate: int = SAMPLE_RATE
    test_pitches: Tuple[int, ...] = ()

    @property
    def samples(self) -> int:
        return int(round(self.seconds * self.rate))

    @property
    def held(self) -> int:
        return int(round(self.hold * self.rate))


def is_notes_spec(spec: str) -> bool:
    text = (spec or "").strip()
    return text == PREFIX or text.startswith(PREFIX + ":")


def _numbers(key: str, text: str, lo: int, hi: int) -> Tuple[int, ...]:
    """"48-52,60" -> (48, 49, 50, 51, 52, 60), each in [lo, hi], in the order given, no repeats."""
    out: List[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m or (m.group(2) and int(m.group(2)) < int(m.group(1))):
            raise DataError(f"--data notes: {key}= takes numbers and ranges like 48-84,90. Received: {text!r}")
        for n in range(int(m.group(1)), int(m.group(2) or m.group(1)) + 1):
            if not lo <= n <= hi:
                raise DataError(f"--data notes: {key}= takes values from {lo} to {hi}. Received: {n}")
            if n not in out:
                out.append(n)
    return tuple(out)


def _number(key: str, text: str, lo: float, hi: float) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not lo < value <= hi:
        raise DataError(f"--data notes: {key}= takes a number in ({lo:g}, {hi:g}]. Received: {text!r}")
    return value


def soundfont_path(name: str) -> str:
    """The file a soundfont name or path stands for; DataError (what to install) when it is missing."""
    key = name.strip().lower().replace("-", "_")
    if key in SOUNDFONTS:
        path, package = SOUNDFONTS[key]
        if not os.path.isfile(path):
            raise DataError(f"--data notes:{name}: {path} is missing; install it with apt-get install "
                            f"{package} (or give a .sf2/.sf3 file).")
        return path
    path = os.path.expanduser(name.strip())
    if not os.path.isfile(path):
        raise DataError(f"--data notes:{name}: no such soundfont file; give a .sf2/.sf3 file or one of "
                        f"{', '.join(SOUNDFONTS)}.")
    return path


def parse_notes_spec(spec: str) -> NoteSet:
    """The note set `spec` names (see the module docstring); DataError (one line) for a malformed
    spec or a missing soundfont. Cheap: nothing is rendered."""
    text = (spec or "").strip()
    if not is_notes_spec(text):
        raise DataError(f"--data {spec}: not a note set; give notes[:SOUNDFONT[:KEY=VALUE...]].")
    parts = text.split(":")[1:]
    font = parts[0] if parts and "=" not in parts[0] and parts[0] else DEFAULT_SOUNDFONT
    options = dict(DEFAULTS)
    for part in parts[1:] if parts and "=" not in parts[0] else parts:
        key, eq, value = part.partition("=")
        key = {"instruments": "programs"}.get(key.strip().lower(), key.strip().lower())
        if not eq or key not in DEFAULTS:
            raise DataError(f"--data {spec}: {part!r} is not an option; options are "
                            f"{', '.join(k + '=' for k in DEFAULTS)} (and the soundfont first).")
        options[key] = value.strip()
    programs, names = resolve_programs([w for w in options["programs"].split(",") if w.strip()])
    if not programs:
        raise DataError(f"--data {spec}: programs= names no instrument.")
    pitches = _numbers("pitches", options["pitches"], 1, 127)  # 0 is the pitch track's "no key held"
    velocities = _numbers("velocities", options["velocities"], 1, 127)
    if not pitches or not velocities:
        raise DataError(f"--data {spec}: pitches= and velocities= need at least one value each.")
    seconds = _number("seconds", options["seconds"], 0, 30)
    hold = _number("hold", options["hold"], 0, seconds)
    rate = int(_number("rate", options["rate"], 3999, 48000))
    test = _numbers("test_pitches", options["test_pitches"], 1, 127)
    if set(test) - set(pitches) or (test and set(pitches) <= set(test)):
        raise DataError(f"--data {spec}: test_pitches= must be some (not all) of the pitches.")
    return NoteSet(soundfont_path(font), programs, names, pitches, velocities, seconds, hold, rate, test)


def _tinysoundfont():
    try:
        import tinysoundfont
    except ImportError:
        raise DataError(f"Rendering --data notes: needs the tinysoundfont package: {RENDERER_INSTALL}.") from None
    return tinysoundfont


def check_notes_spec(spec: str) -> None:
    """The kind's `check_spec`: a malformed spec, a missing soundfont or renderer is a DataError."""
    parse_notes_spec(spec)
    _tinysoundfont()


def cache_key(notes: NoteSet) -> str:
    """A hash of everything the rendered audio depends on: the soundfont file (path, size,
    modification time), every option, the renderer's version and this cache's FORMAT."""
    tsf = _tinysoundfont()
    stat = os.stat(notes.soundfont)
    what = {"format": FORMAT, "renderer": f"tinysoundfont {getattr(tsf, '__version__', '?')}",
            "soundfont": [os.path.realpath(notes.soundfont), stat.st_size, stat.st_mtime_ns], **asdict(notes)}
    for split_only in ("test_pitches", "names"):  # not audio: the same render serves any of these
        what.pop(split_only)
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def cache_dir(data_dir: Optional[str] = None) -> str:
    if data_dir:
        return os.path.join(os.path.expanduser(data_dir), "notes")
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "kerascnn", "notes")


def cache_file(notes: NoteSet, data_dir: Optional[str] = None) -> str:
    stem = re.sub(r"[^A-Za-z0-9]+", "_", os.path.splitext(os.path.basename(notes.soundfont))[0]).strip("_")
    return os.path.join(cache_dir(data_dir), f"notes-{stem or 'soundfont'}-{cache_key(notes)}.npz")


def render_notes(notes: NoteSet) -> Dict[str, np.ndarray]:
    """Every (program, pitch, velocity) of `notes`, in that nesting order, as arrays: "audio" (N, L)
    float32 (the synthesiser's stereo mixed down), "pitch" (N, L) uint8, "instrument" (index into
    notes.programs), "note", "velocity" (N,) int, "silent" (N,) bool (left out when loading)."""
    tsf = _tinysoundfont()
    synth = tsf.Synth(samplerate=notes.rate)
    try:
        font = synth.sfload(notes.soundfont)
    except Exception as e:  # the binding raises its own exception types for a bad file
        raise DataError(f"--data notes: {notes.soundfont} is not a readable soundfont ({e}).") from None
    missing = [p for p in notes.programs if synth.sfpreset_name(font, 0, p) is None]
    if missing:
        raise DataError(f"--data notes: {notes.soundfont} has no program(s) {', '.join(map(str, missing))} in "
                        f"bank 0; choose others with programs=.")
    combos = [(i, n, v) for i in range(len(notes.programs)) for n in notes.pitches for v in notes.velocities]
    audio = np.zeros((len(combos), notes.samples), np.float32)
    for row, (i, note, velocity) in enumerate(combos):
        synth.program_select(0, font, 0, notes.programs[i])
        synth.noteon(0, note, velocity)
        held = np.frombuffer(synth.generate(notes.held), np.float32)
        synth.noteoff(0, note)
        tail = np.frombuffer(synth.generate(notes.samples - notes.held), np.float32)
        synth.sounds_off()  # cut the tail, and let its short fade-out pass unheard: every clip starts
        synth.generate(notes.rate // 10)  # from silence, the same whatever was rendered before it
        audio[row] = np.concatenate([held, tail]).reshape(-1, 2).mean(axis=1)
    pitch = np.zeros(audio.shape, np.uint8)
    pitch[:, :notes.held] = np.array([n for _, n, _ in combos], np.uint8)[:, None]
    return {"audio": audio, "pitch": pitch, "instrument": np.array([c[0] for c in combos], np.int64),
            "note": np.array([c[1] for c in combos], np.int64), "velocity": np.array([c[2] for c in combos], np.int64),
            "silent": np.abs(audio).max(axis=1) < SILENT}


def _read_cache(path: str) -> Optional[Dict[str, np.ndarray]]:
    try:
        with np.load(path) as f:
            return {k: f[k] for k in ("audio", "pitch", "instrument", "note", "velocity", "silent")}
    except (OSError, KeyError, ValueError, EOFError):  # missing, or cut short by a crash: render again
        return None


def rendered(notes: NoteSet, data_dir: Optional[str] = None) -> Tuple[Dict[str, np.ndarray], str, bool]:
    """(the rendered arrays, the cache file, whether they came from the cache): rendered and saved
    (atomically) on the first call, read back from then on."""
    from kerascnn.runtime.jobs import atomic_path

    path = cache_file(notes, data_dir)
    arrays = _read_cache(path) if os.path.isfile(path) else None
    if arrays is not None:
        return arrays, path, True
    start = time.perf_counter()
    arrays = render_notes(notes)
    took = time.perf_counter() - start
    log.info("Rendered %d notes in %.2f s (%.2f ms a note) into %s", len(arrays["note"]), took,
             1000 * took / max(1, len(arrays["note"])), path)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:  # a file object: np.savez would add .npz to a path
                np.savez(f, **arrays)
    except OSError as e:  # a read-only cache costs a render each time, nothing else
        log.warning("Could not cache the rendered notes in %s (%s); they will be rendered again next time.",
                    path, e.strerror or e)
    return arrays, path, False


def load_notes(cfg: DataConfig) -> AudioSource:
    """The note set `cfg.spec` names, rendered or from the cache, as an AudioSource: "train" (and
    "test": the test_pitches), the instruments as the class names, every clip with its pitch track."""
    notes = parse_notes_spec(cfg.spec)
    arrays, path, cached = rendered(notes, cfg.data_dir)
    names = list(notes.names)
    origin = [f"{names[i]} note {n} velocity {v}" for i, n, v in zip(arrays["instrument"], arrays["note"],
                                                                     arrays["velocity"])]
    silent = arrays["silent"]
    skipped = [(origin[k], "silent: the soundfont has no sound for this key") for k in np.flatnonzero(silent)]
    test = np.isin(arrays["note"], notes.test_pitches) & ~silent
    splits = {}
    for name, keep in (("train", ~silent & ~test), ("test", test)):
        rows = np.flatnonzero(keep)
        if name == "test" and not len(rows):
            continue
        splits[name] = audio_split(list(arrays["audio"][rows]), arrays["instrument"][rows], [origin[k] for k in rows],
                                   pitch=list(arrays["pitch"][rows]), notes=arrays["note"][rows])
    if not len(splits["train"]):
        raise DataError(f"--data {cfg.spec}: every note rendered silent; choose other programs= or pitches=.")
    counts = np.bincount(splits["train"].labels, minlength=len(names))
    if (counts == 0).any():
        empty = [n for n, c in zip(names, counts) if c == 0]
        raise DataError(f"--data {cfg.spec}: instrument(s) {', '.join(empty)} rendered no audible training note.")
    kind = f"notes of {os.path.basename(notes.soundfont)}, {'cached' if cached else 'rendered'}"
    return AudioSource(cfg.spec, kind, splits, names, skipped, sample_rate=notes.rate, pitched=True)


__all__ = ["DEFAULTS", "DEFAULT_SOUNDFONT", "NoteSet", "SOUNDFONTS", "cache_dir", "cache_file", "cache_key",
           "check_notes_spec", "is_notes_spec", "load_notes", "parse_notes_spec", "render_notes", "rendered",
           "soundfont_path"]
