"""What a text spec resolves to: splits of texts in memory (`TextSplit`) in a `TextSource`.

Kept apart from kerascnn.data.text so that the table reader (text_table) and the text specs
share them without importing each other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

from kerascnn.data.sources import Source

Skipped = List[Tuple[str, str]]  # (file or FILE:LINE, why it was not used)


@dataclass
class TextSplit:
    """Texts in memory (an object array of str), integer labels, and where each text came from
    ("FILE:LINE" for tables, the file for folders)."""

    texts: np.ndarray
    labels: np.ndarray
    origins: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray) -> "TextSplit":
        return TextSplit(self.texts[index], self.labels[index], self.origins[index])


def text_split(texts: Sequence[str], labels: Sequence[int], origins: Sequence[str]) -> TextSplit:
    objects = np.empty(len(texts), object)  # object, not '<U': a fixed-width array pads every text to the longest
    objects[:] = list(texts)
    where = np.empty(len(origins), object)
    where[:] = list(origins)
    return TextSplit(objects, np.asarray(labels, np.int64), where)


def concat_text(parts: Sequence[TextSplit]) -> TextSplit:
    return TextSplit(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("texts", "labels", "origins")))


@dataclass
class TextSource(Source):
    """A text spec's splits; `left_out`: rows whose rating equals --label-threshold (not errors)."""

    left_out: List[str] = field(default_factory=list)


def decode_text(data: bytes) -> Optional[str]:
    """UTF-8 bytes (a BOM dropped) as str; None when they do not decode."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


__all__ = ["Skipped", "TextSource", "TextSplit", "concat_text", "decode_text", "text_split"]
