"""General MIDI instruments: the 128 programs' names (GM Level 1, program numbers from 0) and the
short names `--data notes:...:programs=` takes for them."""
from __future__ import annotations

import difflib
import re
from typing import List, Tuple

from kerascnn.errors import DataError

GM_PROGRAMS = (
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano", "Electric Piano 1",
    "Electric Piano 2", "Harpsichord", "Clavinet", "Celesta", "Glockenspiel", "Music Box", "Vibraphone", "Marimba",
    "Xylophone", "Tubular Bells", "Dulcimer", "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ",
    "Reed Organ", "Accordion", "Harmonica", "Tango Accordion", "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)",
    "Electric Guitar (jazz)", "Electric Guitar (clean)", "Electric Guitar (muted)", "Overdriven Guitar",
    "Distortion Guitar", "Guitar Harmonics", "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)",
    "Fretless Bass", "Slap Bass 1", "Slap Bass 2", "Synth Bass 1", "Synth Bass 2", "Violin", "Viola", "Cello",
    "Contrabass", "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani", "String Ensemble 1",
    "String Ensemble 2", "Synth Strings 1", "Synth Strings 2", "Choir Aahs", "Voice Oohs", "Synth Voice",
    "Orchestra Hit", "Trumpet", "Trombone", "Tuba", "Muted Trumpet", "French Horn", "Brass Section", "Synth Brass 1",
    "Synth Brass 2", "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax", "Oboe", "English Horn", "Bassoon",
    "Clarinet", "Piccolo", "Flute", "Recorder", "Pan Flute", "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)", "Lead 5 (charang)",
    "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)", "Pad 1 (new age)", "Pad 2 (warm)",
    "Pad 3 (polysynth)", "Pad 4 (choir)", "Pad 5 (bowed)", "Pad 6 (metallic)", "Pad 7 (halo)", "Pad 8 (sweep)",
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)", "FX 5 (brightness)", "FX 6 (goblins)",
    "FX 7 (echoes)", "FX 8 (sci-fi)", "Sitar", "Banjo", "Shamisen", "Koto", "Kalimba", "Bagpipe", "Fiddle", "Shanai",
    "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock", "Taiko Drum", "Melodic Tom", "Synth Drum", "Reverse Cymbal",
    "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet", "Telephone Ring", "Helicopter", "Applause",
    "Gunshot",
)
# Family words -> the family's first (or most typical) program, for the names people say.
ALIASES = {"piano": 0, "grand_piano": 0, "electric_piano": 4, "organ": 16, "guitar": 24, "nylon_guitar": 24,
           "steel_guitar": 25, "electric_guitar": 27, "bass": 32, "electric_bass": 33, "strings": 48, "choir": 52,
           "voice": 52, "brass": 61, "horn": 60, "sax": 65, "saxophone": 65, "harp": 46, "synth_lead": 80, "lead": 80,
           "synth_pad": 88, "pad": 88, "drums": 114}


def slug(name: str) -> str:
    """"Acoustic Guitar (nylon)" -> "acoustic_guitar_nylon"."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


SLUGS = tuple(slug(n) for n in GM_PROGRAMS)


def resolve_program(word: str) -> Tuple[int, str]:
    """(program 0..127, class name) of a program number or an instrument name: a GM name (any case
    and punctuation: "acoustic guitar (nylon)", "acoustic_guitar_nylon"), a family word of ALIASES
    ("piano", "guitar"), or a word found in exactly one GM name ("nylon"). A number's class name is
    its GM name; a name's is the name as given (slugged).

    Raises:
        DataError: an unknown or ambiguous name, or a number outside 0..127.
    """
    text = word.strip()
    if re.fullmatch(r"\d+", text):
        program = int(text)
        if not 0 <= program <= 127:
            raise DataError(f"General MIDI programs are 0 to 127. Received: {text}")
        return program, SLUGS[program]
    key = slug(text)
    if key in ALIASES:
        return ALIASES[key], key
    if key in SLUGS:
        return SLUGS.index(key), key
    found = [i for i, s in enumerate(SLUGS) if key and re.search(rf"(^|_){re.escape(key)}(_|$)", s)]
    if len(found) == 1:
        return found[0], key
    if found:
        raise DataError(f"Instrument {text!r} is ambiguous: " + ", ".join(f"{SLUGS[i]} ({i})" for i in found[:6])
                        + "; give the program number or a longer name.")
    close = difflib.get_close_matches(key, list(SLUGS) + list(ALIASES), n=3)
    raise DataError(f"Unknown instrument {text!r}" + (f"; did you mean {' or '.join(close)}?" if close else
                                                      "; give a General MIDI program number 0-127 or its name."))


def resolve_programs(words: List[str]) -> Tuple[Tuple[int, ...], Tuple[str, ...]]:
    """`resolve_program` of each word: (programs, class names); DataError for a program named twice."""
    pairs = [resolve_program(w) for w in words]
    programs = [p for p, _ in pairs]
    twice = sorted({SLUGS[p] for p in programs if programs.count(p) > 1})
    if twice:
        raise DataError(f"Instrument(s) {', '.join(twice)} named twice in programs=.")
    return tuple(programs), tuple(n for _, n in pairs)


__all__ = ["ALIASES", "GM_PROGRAMS", "SLUGS", "resolve_program", "resolve_programs", "slug"]
