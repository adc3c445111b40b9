"""What an image+question spec resolves to: (image, question, answer) examples in a `VqaSource`.

Kept apart from kerascnn.data.vqa so that the file-layout readers (vqa_readers) and the specs
share them without importing each other. Nothing here imports TensorFlow.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from kerascnn.data.sources import Source


@dataclass
class VqaSplit:
    """Questions about images. The images are shared by the questions that ask about them: either
    pixels in memory, (M, h, w, c) uint8, or (M,) image file paths (an object array)."""

    images: np.ndarray
    image_index: np.ndarray  # (E,) int: the image each question is about
    questions: np.ndarray  # (E,) object array of str
    labels: np.ndarray  # (E,) int: the answer, an index into the source's class names
    types: np.ndarray  # (E,) int: the question type, an index into the source's type names

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def in_memory(self) -> bool:
        return self.images.dtype != object

    def take(self, index: np.ndarray) -> "VqaSplit":
        """The questions `index` (the images stay shared: a held-out question may ask about an image
        that training questions ask about too, as in VQA's own splits of questions)."""
        return VqaSplit(self.images, self.image_index[index], self.questions[index], self.labels[index],
                        self.types[index])


def vqa_split(images: np.ndarray, image_index: Sequence[int], questions: Sequence[str], labels: Sequence[int],
              types: Sequence[int]) -> VqaSplit:
    texts = np.empty(len(questions), object)  # object, not '<U': no padding to the longest question
    texts[:] = list(questions)
    return VqaSplit(images, np.asarray(image_index, np.int64), texts, np.asarray(labels, np.int64),
                    np.asarray(types, np.int64))


def concat_vqa(parts: Sequence[VqaSplit]) -> VqaSplit:
    """Every question of `parts` in order, their images stacked and re-indexed."""
    parts = list(parts)
    if len(parts) == 1:
        return parts[0]
    offsets = np.cumsum([0] + [len(p.images) for p in parts[:-1]])
    return VqaSplit(np.concatenate([p.images for p in parts]),
                    np.concatenate([p.image_index + o for p, o in zip(parts, offsets)]),
                    *(np.concatenate([getattr(p, f) for p in parts]) for f in ("questions", "labels", "types")))


@dataclass
class VqaSource(Source):
    """An image+question spec's splits; class_names are the answers.

    type_names: the question types (`VqaSplit.types` indexes them); type_groups: named groups of
    types scored together (Sort-of-CLEVR: "non-relational", "relational"); image_shape: the images'
    own (h, w, c) when they all share it (None for files of mixed sizes); left_out: how many
    questions were not used because their answer is outside the answer vocabulary (VQA v2's rare
    answers; not errors, so not in `skipped`)."""

    type_names: List[str] = field(default_factory=list)
    type_groups: Dict[str, List[str]] = field(default_factory=dict)
    image_shape: Optional[Tuple[int, int, int]] = None
    left_out: int = 0


__all__ = ["VqaSource", "VqaSplit", "concat_vqa", "vqa_split"]
