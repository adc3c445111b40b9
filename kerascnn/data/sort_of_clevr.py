"""Sort-of-CLEVR (Santoro et al. 2017, "A simple neural network module for relational reasoning",
supplement): 75x75 scenes of six coloured squares and circles, with 10 non-relational and 10
relational questions an image, generated in pure numpy and deterministic by seed.

    data = generate(100, seed=0)
    data.images                 # (100, 75, 75, 3) uint8, white background
    data.shapes, data.centres   # (100, 6): 0 square, 1 circle; (100, 6, 2): (x, y) pixel centres
    data.questions(0)           # 20 Question(text, type, relational, answer) about image 0

Object k of every image has colour k (COLORS: red, green, blue, orange, gray, yellow); each is a
filled square of side 10 or a filled disc of diameter 10, drawn without anti-aliasing.

Conventions the paper leaves open, fixed here:

* Geometry: pixel (row i, column j) is the unit square [j, j+1) x [i, i+1). An object occupies a
  10x10 box of pixels with top-left pixel (x0, y0), 0 <= x0, y0 <= 65, so it lies fully inside the
  image; its centre is (x0 + 5, y0 + 5), integer. A square fills the box (100 pixels); a circle is
  every pixel of the box whose centre lies strictly within 5 of the object's centre (80 pixels: no
  pixel centre lies exactly at distance 5, so the disc has no rounding choice). No two objects'
  boxes share a pixel.
* Left/right, top/bottom: of the image's centre lines at 37.5; centres are integers, so no object
  is ever on a line. "top" is the smaller row.
* Closest/furthest: Euclidean distance between centres, the object itself excluded. A layout in
  which some object has two others at the same smallest or the same largest distance is redrawn,
  so every relational question has one answer.
* Count: the objects of the same shape, the object itself counted (1 to 6).
* Which questions: the 18 (colour, non-relational template) pairs and the 18 (colour, relational
  template) pairs; each image asks 10 distinct pairs of each, drawn at random, the 10
  non-relational first. (Santoro's code draws colour and template with replacement; drawing
  without replacement asks no image the same question twice.)
* Seeds: image i of `generate(n, seed)` depends only on (seed, i), so `generate(k, seed)` is the
  first k images of `generate(n, seed)`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, NamedTuple

import numpy as np

SIZE = 75  # image side, pixels
SIDE = 10  # object box side (a square's side, a circle's diameter)
CENTRE_LINE = SIZE / 2  # 37.5: left of it is "left", above it is "top"
OBJECTS = 6
COLORS = (("red", (255, 0, 0)), ("green", (0, 255, 0)), ("blue", (0, 0, 255)), ("orange", (255, 156, 0)),
          ("gray", (128, 128, 128)), ("yellow", (255, 255, 0)))
COLOR_NAMES = tuple(name for name, _ in COLORS)
SHAPES = ("square", "circle")
# The answer vocabulary, fixed and ordered: a model's class k is ANSWERS[k].
ANSWERS = ("square", "circle", "left", "right", "top", "bottom", "1", "2", "3", "4", "5", "6")
QUESTION_TYPES = ("shape", "horizontal", "vertical", "closest", "furthest", "count")
NON_RELATIONAL = QUESTION_TYPES[:3]
RELATIONAL = QUESTION_TYPES[3:]
TEMPLATES = {
    "shape": "What is the shape of the {} object?",
    "horizontal": "Is the {} object on the left or on the right?",
    "vertical": "Is the {} object at the top or at the bottom?",
    "closest": "What is the shape of the object closest to the {} object?",
    "furthest": "What is the shape of the object furthest from the {} object?",
    "count": "How many objects have the same shape as the {} object?",
}
QUESTIONS_PER_KIND = 10  # non-relational, and as many relational, an image

_CELL = (np.arange(SIDE) + 0.5 - SIDE / 2) ** 2  # squared offsets of pixel centres from the box centre
MASKS = (np.ones((SIDE, SIDE), bool), _CELL[:, None] + _CELL[None, :] < (SIDE / 2) ** 2)  # square, circle


class Question(NamedTuple):
    text: str
    type: str  # one of QUESTION_TYPES
    relational: bool
    answer: str  # one of ANSWERS


@dataclass(frozen=True)
class SortOfClevr:
    """`n` generated scenes and their questions (Q = 2 * QUESTIONS_PER_KIND an image)."""

    images: np.ndarray  # (n, 75, 75, 3) uint8
    shapes: np.ndarray  # (n, 6) int: SHAPES index of object k (colour k)
    centres: np.ndarray  # (n, 6, 2) int: (x, y) of object k's centre
    colors: np.ndarray  # (n, Q) int: the colour (= object) each question names
    types: np.ndarray  # (n, Q) int: QUESTION_TYPES index
    answers: np.ndarray  # (n, Q) int: ANSWERS index

    def __len__(self) -> int:
        return len(self.images)

    def texts(self) -> np.ndarray:
        """(n, Q) object array of the questions in words (references to 36 shared strings)."""
        table = np.empty((len(QUESTION_TYPES), OBJECTS), object)
        for t, c in np.ndindex(table.shape):
            table[t, c] = question_text(t, c)
        return table[self.types, self.colors]

    def questions(self, i: int) -> List[Question]:
        """Image i's questions: text, type, relational flag, answer."""
        return [Question(question_text(int(t), int(c)), QUESTION_TYPES[t], QUESTION_TYPES[t] in RELATIONAL,
                         ANSWERS[a]) for t, c, a in zip(self.types[i], self.colors[i], self.answers[i])]


def question_text(qtype: int, color: int) -> str:
    return TEMPLATES[QUESTION_TYPES[qtype]].format(COLOR_NAMES[color])


_OFF_DIAGONAL = ~np.eye(OBJECTS, dtype=bool)


def _layout(rng: np.random.Generator) -> np.ndarray:
    """(6, 2) top-left pixels of six boxes that share no pixel, and in which every object's closest
    and furthest other object are each unique; whole layouts are redrawn until one is (about 4
    draws: uniform over such layouts)."""
    while True:
        corners = rng.integers(0, SIZE - SIDE + 1, size=(OBJECTS, 2))
        diff = corners[:, None, :] - corners[None, :, :]
        apart = np.abs(diff).max(-1) >= SIDE
        if not apart[_OFF_DIAGONAL].all():
            continue
        d2 = np.sort((diff ** 2).sum(-1)[_OFF_DIAGONAL].reshape(OBJECTS, OBJECTS - 1), axis=1)
        if (d2[:, 0] != d2[:, 1]).all() and (d2[:, -1] != d2[:, -2]).all():
            return corners


def answer_table(shapes: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(n, 6 types, 6 objects) ANSWERS indices: the answer of each question type about each object
    of n scenes (shapes (n, 6), centres (n, 6, 2)); vectorised over the scenes."""
    index = {a: i for i, a in enumerate(ANSWERS)}
    x, y = centres[..., 0], centres[..., 1]
    d2 = ((centres[:, :, None, :] - centres[:, None, :, :]) ** 2).sum(-1).astype(float)
    eye = np.eye(OBJECTS, dtype=bool)
    closest = np.argmin(np.where(eye, np.inf, d2), axis=2)  # unique: _layout redraws ties
    furthest = np.argmax(np.where(eye, -np.inf, d2), axis=2)
    count = (shapes[:, :, None] == shapes[:, None, :]).sum(2)
    other = lambda k: np.take_along_axis(shapes, k, axis=1)  # noqa: E731 (the shape of object k)
    table = {
        "shape": index["square"] + shapes,
        "horizontal": np.where(x < CENTRE_LINE, index["left"], index["right"]),
        "vertical": np.where(y < CENTRE_LINE, index["top"], index["bottom"]),
        "closest": index["square"] + other(closest),
        "furthest": index["square"] + other(furthest),
        "count": index["1"] + count - 1,
    }
    return np.stack([table[t] for t in QUESTION_TYPES], 1)


_NON_RELATIONAL_TYPES = np.asarray([QUESTION_TYPES.index(t) for t in NON_RELATIONAL])
_RELATIONAL_TYPES = np.asarray([QUESTION_TYPES.index(t) for t in RELATIONAL])


def _asked(rng: np.random.Generator) -> np.ndarray:
    """(Q, 2) (type, colour): QUESTIONS_PER_KIND distinct non-relational pairs, then as many relational."""
    picked = [rng.permutation(len(kinds) * OBJECTS)[:QUESTIONS_PER_KIND] for kinds in (NON_RELATIONAL, RELATIONAL)]
    types = np.concatenate([_NON_RELATIONAL_TYPES[picked[0] // OBJECTS], _RELATIONAL_TYPES[picked[1] // OBJECTS]])
    return np.stack([types, np.concatenate(picked) % OBJECTS], 1)


def _draw(images: np.ndarray, corners: np.ndarray, shapes: np.ndarray) -> None:
    """Paint object k of every scene (top-left pixels corners[:, k], shapes[:, k]) in colour k."""
    for k, (_, rgb) in enumerate(COLORS):
        for shape, mask in enumerate(MASKS):
            scenes = np.flatnonzero(shapes[:, k] == shape)[:, None]
            dy, dx = np.nonzero(mask)
            images[scenes, corners[scenes, k, 1] + dy, corners[scenes, k, 0] + dx] = rgb


def generate(n_images: int, seed: int = 0) -> SortOfClevr:
    """`n_images` scenes and their 20 questions each, the same for the same seed (see the module
    docstring for the conventions)."""
    n = int(n_images)
    if n < 0:
        raise ValueError(f"n_images must be >= 0. Received: n_images={n_images}")
    per = 2 * QUESTIONS_PER_KIND
    images = np.full((n, SIZE, SIZE, 3), 255, np.uint8)
    shapes = np.zeros((n, OBJECTS), np.int64)
    colors, types, answers = (np.zeros((n, per), np.int64) for _ in range(3))
    corners = np.zeros((n, OBJECTS, 2), np.int64)
    for i in range(n):
        rng = np.random.default_rng([int(seed), i])  # per image: a prefix of the set is the smaller set
        corners[i] = _layout(rng)
        shapes[i] = rng.integers(0, len(SHAPES), size=OBJECTS)
        types[i], colors[i] = _asked(rng).T
    _draw(images, corners, shapes)
    centres = corners + SIDE // 2
    if n:
        table = answer_table(shapes, centres)
        answers = table[np.arange(n)[:, None], types, colors]
    return SortOfClevr(images, shapes, centres, colors, types, answers)


__all__ = ["ANSWERS", "COLORS", "COLOR_NAMES", "NON_RELATIONAL", "QUESTION_TYPES", "Question", "RELATIONAL", "SHAPES",
           "SortOfClevr", "TEMPLATES", "answer_table", "generate", "question_text"]
