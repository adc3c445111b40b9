"""Sort-of-CLEVR (kerascnn.data.sort_of_clevr) and its `--data sort_of_clevr[:N]` spec.

The generator's scenes are checked from their pixels alone: every object is found by its exact
colour, its shape told by its pixel pattern (a full 10x10 square, or a disc of diameter 10 computed
here independently), its centre by the centre of mass of its pixels; every question's type and
colour are read back from its words by the six templates, and its answer recomputed from those
pixel-found objects by brute force. Nothing reuses the generator's own geometry.
"""
import math
import re

import numpy as np
import pytest

from kerascnn.config import AugmentConfig, DataConfig
from kerascnn.data import kinds
from kerascnn.data import sort_of_clevr as soc
from kerascnn.data.vqa import DATA_SEED, TEST_SEED, parse_vqa_spec, sort_of_clevr_sizes
from kerascnn.errors import DataError, SettingError

N, SEED = 24, 7
WHITE = (255, 255, 255)
RGB = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "orange": (255, 156, 0),
       "gray": (128, 128, 128), "yellow": (255, 255, 0)}  # the colours, typed again
COLOR = r"(red|green|blue|orange|gray|yellow)"
TEMPLATES = {  # the six templates, typed again, as regexes
    "shape": rf"What is the shape of the {COLOR} object\?",
    "horizontal": rf"Is the {COLOR} object on the left or on the right\?",
    "vertical": rf"Is the {COLOR} object at the top or at the bottom\?",
    "closest": rf"What is the shape of the object closest to the {COLOR} object\?",
    "furthest": rf"What is the shape of the object furthest from the {COLOR} object\?",
    "count": rf"How many objects have the same shape as the {COLOR} object\?",
}
RELATIONAL = {"closest", "furthest", "count"}


def _disc(diameter=10):
    """Pixels whose centre is within diameter/2 of the box centre (no pixel centre lies exactly on it)."""
    centres = np.arange(diameter) + 0.5
    return np.hypot(centres[None, :] - diameter / 2, centres[:, None] - diameter / 2) <= diameter / 2


@pytest.fixture(scope="module")
def data():
    return soc.generate(N, SEED)


def _objects(image):
    """{colour: (shape, (x, y) centre of mass)} found from the pixels alone; asserts each is exact."""
    found = {}
    for name, rgb in RGB.items():
        mask = np.all(image == rgb, axis=-1)
        ys, xs = np.nonzero(mask)
        assert len(ys), f"no {name} pixels"
        y0, x0 = ys.min(), xs.min()
        box = mask[y0:y0 + 10, x0:x0 + 10]
        assert ys.max() - y0 == xs.max() - x0 == 9, f"{name} does not span 10x10 pixels"
        if mask.sum() == 100:
            shape = "square"
        else:
            assert np.array_equal(box, _disc()), f"{name} is neither a 10x10 square nor a disc of diameter 10"
            shape = "circle"
        found[name] = (shape, (xs.mean() + 0.5, ys.mean() + 0.5))
    return found


def _answer(qtype, color, objects):
    shape, (x, y) = objects[color]
    if qtype == "shape":
        return shape
    if qtype == "horizontal":
        return "left" if x < 75 / 2 else "right"
    if qtype == "vertical":
        return "top" if y < 75 / 2 else "bottom"
    if qtype == "count":
        return str(sum(s == shape for s, _ in objects.values()))
    others = sorted((math.dist((x, y), c), s) for name, (s, c) in objects.items() if name != color)
    assert others[0][0] != others[1][0] and others[-1][0] != others[-2][0], "a tie: the answer would be ambiguous"
    return others[0][1] if qtype == "closest" else others[-1][1]


def _parse(text):
    """(type, colour) of a question by the templates; fails on any other wording."""
    hits = [(t, m.group(1)) for t, pattern in TEMPLATES.items() for m in [re.fullmatch(pattern, text)] if m]
    assert len(hits) == 1, f"not one of the six templates: {text!r}"
    return hits[0]


def test_same_seed_same_bytes_other_seed_differs(data):
    again = soc.generate(N, SEED)
    for field in ("images", "shapes", "centres", "colors", "types", "answers"):
        assert np.array_equal(getattr(data, field), getattr(again, field)), field
    assert data.images.dtype == np.uint8 and data.images.shape == (N, 75, 75, 3)
    other = soc.generate(N, SEED + 1)
    assert not np.array_equal(other.images, data.images)
    prefix = soc.generate(5, SEED)  # image i depends on (seed, i) only
    assert np.array_equal(prefix.images, data.images[:5]) and np.array_equal(prefix.answers, data.answers[:5])


def test_images_hold_exactly_six_objects_of_the_given_colours_and_sizes(data):
    for i, image in enumerate(data.images):
        colours = {tuple(c) for c in image.reshape(-1, 3)}
        assert colours == {WHITE, *RGB.values()}, f"image {i}: colours {colours - {WHITE, *RGB.values()}}"
        objects = _objects(image)  # exact pixel patterns: an overlap would have painted over one
        assert sum(np.all(image == rgb, axis=-1).sum() for rgb in RGB.values()) == sum(
            100 if s == "square" else _disc().sum() for s, _ in objects.values())
        for k, name in enumerate(RGB):  # the generator's object list describes the same scene
            shape, centre = objects[name]
            assert soc.SHAPES[data.shapes[i, k]] == shape
            assert np.allclose(centre, data.centres[i, k])
            assert 5 <= centre[0] <= 70 and 5 <= centre[1] <= 70  # fully inside
    assert _disc().sum() == 80 and set(data.shapes.ravel()) == {0, 1}


def test_every_answer_recomputed_from_the_pixels(data):
    seen = set()
    for i in range(N):
        objects = _objects(data.images[i])
        questions = data.questions(i)
        assert len(questions) == 20 and len({q.text for q in questions}) == 20
        assert [q.relational for q in questions] == [False] * 10 + [True] * 10
        for q in questions:
            qtype, colour = _parse(q.text)
            assert q.type == qtype and q.relational == (qtype in RELATIONAL)
            assert q.answer == _answer(qtype, colour, objects), (i, q)
            seen.add(q.answer)
    assert {"square", "circle", "left", "right", "top", "bottom"} <= seen
    assert soc.ANSWERS == ("square", "circle", "left", "right", "top", "bottom", "1", "2", "3", "4", "5", "6")


def _build(spec="sort_of_clevr:20", shape=(75, 75, 3), splits=("train", "val", "test"), **kw):
    return kinds.data_kind(kinds.spec_kind(spec)).build(DataConfig(spec=spec), shape, 16, None, splits=splits, **kw)


def _batches(ds):
    images, questions, answers = [], [], []
    for x, y in ds:
        images.append(x["image"].numpy())
        questions += [q.decode() for q in x["question"].numpy()]
        answers.append(y.numpy())
    return np.concatenate(images), questions, np.concatenate(answers)


def test_the_kind_builds_splits_of_image_question_answer():
    assert kinds.spec_kind("sort_of_clevr") == kinds.spec_kind("sort_of_clevr:20") == "image+question"
    bundle = _build(splits=("train", "val", "test", "eval"))
    sizes = sort_of_clevr_sizes(20)
    assert sizes == {"train": 19, "val": 1, "test": 2} and sort_of_clevr_sizes(10_000) == {
        "train": 9_800, "val": 200, "test": 1_000}
    assert bundle.counts == {"train": 380, "val": 20, "test": 40, "eval": 40} and bundle.eval_split == "test"
    assert bundle.class_names == list(soc.ANSWERS) and bundle.type_names == list(soc.QUESTION_TYPES)
    assert bundle.type_groups == {"non-relational": ["shape", "horizontal", "vertical"],
                                  "relational": ["closest", "furthest", "count"]}
    assert {"closest", "furthest", "orange"} <= set(bundle.model_args["vocabulary"])
    x, y = next(iter(bundle.train))
    assert x["image"].dtype.name == "float32" and x["image"].shape == (16, 75, 75, 3)
    assert x["question"].dtype.name == "string" and y.shape == (16, 12) and y.dtype.name == "float32"
    # val: the last image of the 20 of DATA_SEED; test: 2 images of TEST_SEED; in order, types aligned
    for split, data in (("val", soc.generate(20, DATA_SEED)), ("test", soc.generate(2, TEST_SEED))):
        first = 19 if split == "val" else 0
        images, questions, answers = _batches(getattr(bundle, split))
        per_image = [q for i in range(first, len(data)) for q in data.questions(i)]
        assert questions == [q.text for q in per_image]
        assert [soc.ANSWERS[a] for a in answers.argmax(1)] == [q.answer for q in per_image]
        assert np.array_equal(images, np.repeat(data.images[first:], 20, axis=0).astype(np.float32))
        assert [soc.QUESTION_TYPES[t] for t in bundle.question_types[split]] == [_parse(q)[0] for q in questions]
    assert np.array_equal(bundle.question_types["eval"], bundle.question_types["test"])
    assert not np.array_equal(soc.generate(2, TEST_SEED).images, soc.generate(2, DATA_SEED).images)


def test_images_at_the_models_shape_and_all_split():
    bundle = _build(shape=(32, 32, 1), splits=("all",))
    x, _ = next(iter(bundle.all))
    assert x["image"].shape == (16, 32, 32, 1) and bundle.counts == {"all": 440}
    assert bundle.question_types["all"].shape == (440,)


@pytest.mark.parametrize("spec, match", [
    ("sort_of_clevr:abc", "whole number of images"),
    ("sort_of_clevr:1", "from 2 to"),
    ("sort_of_clevr:10000000", "from 2 to"),
    ("sort_of_clevrx", "not image\\+question data"),
    ("vqa:/no/such/folder", "no such folder"),
    ("clevr:", "no such folder"),
])
def test_spec_errors_are_one_line(spec, match):
    assert kinds.spec_kind(spec) == "image+question"
    for check in (parse_vqa_spec, kinds.data_kind("image+question").check_spec):
        with pytest.raises(DataError, match=match) as info:
            check(spec)
        assert "\n" not in str(info.value)


def test_predict_inputs_and_augmentation_are_refused():
    kind = kinds.data_kind("image+question")
    with pytest.raises(DataError, match="vqa ask"):
        kind.load_inputs(["x.png"], (75, 75, 3))
    with pytest.raises(SettingError, match="augmentation"):
        kind.build(DataConfig(spec="sort_of_clevr:4"), None, 8, AugmentConfig(hflip=True))
    assert parse_vqa_spec("sort_of_clevr").images == 10_000 and parse_vqa_spec("sort_of_clevr:1,000").images == 1000
