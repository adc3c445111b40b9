"""Image+question data on disk (kerascnn.data.vqa_readers through the "image+question" kind):
easy-vqa's layout (and the installed package's real data when present), the VQA v2 and CLEVR JSON
layouts, each on tiny files the test writes; missing files, rare answers and broken JSON."""
import json
import os

import numpy as np
import pytest

from data_helpers import save
from kerascnn.config import DataConfig
from kerascnn.data import kinds, vqa_readers
from kerascnn.data.vqa import open_vqa_source, parse_vqa_spec
from kerascnn.errors import DataError

KIND = kinds.data_kind("image+question")


def _solid(rgb, side=16):
    return np.broadcast_to(np.asarray(rgb, np.uint8), (side, side, 3)).copy()


def _write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f)


def _build(spec, splits, shape=(16, 16, 3), **settings):
    return KIND.build(DataConfig(spec=spec, **settings), shape, 4, None, splits=splits)


def _all(ds):
    images, questions, labels = [], [], []
    for x, y in ds:
        images.append(x["image"].numpy())
        questions += [q.decode() for q in x["question"].numpy()]
        labels += list(y.numpy().argmax(1))
    return np.concatenate(images), questions, labels


# --- easy-vqa ---------------------------------------------------------------------------------

def _easy_vqa(root):
    colours = {0: (255, 0, 0), 1: (0, 0, 255)}
    for i, rgb in colours.items():
        save(str(root / "train" / "images" / f"{i}.png"), _solid(rgb))
    save(str(root / "test" / "images" / "0.png"), _solid((0, 255, 0)))
    (root / "answers.txt").write_text("circle\nred\nblue\ngreen\nyes\nno\n")
    _write_json(str(root / "train" / "questions.json"), [
        ["what color is the shape?", "red", 0], ["is there a circle?", "yes", 0],
        ["what color is the shape?", "blue", 1], ["what shape is it?", "circle", 1],
        ["is there a blue shape?", "no", 7]])  # image 7 does not exist
    _write_json(str(root / "test" / "questions.json"), [["what color is the shape?", "green", 0]])
    return colours


def test_easy_vqa_layout(tmp_path):
    colours = _easy_vqa(tmp_path)
    spec = f"easy_vqa:{tmp_path}"
    assert kinds.spec_kind(spec) == "image+question"
    source = open_vqa_source(DataConfig(spec=spec))
    assert source.class_names == ["circle", "red", "blue", "green", "yes", "no"]
    assert source.skipped == [(str(tmp_path / "train" / "images" / "7.png"), "no such image file")]
    train = source.splits["train"]
    assert list(train.questions) == ["what color is the shape?", "is there a circle?", "what color is the shape?",
                                     "what shape is it?"]
    assert [source.class_names[a] for a in train.labels] == ["red", "yes", "blue", "circle"]
    assert [source.type_names[t] for t in train.types] == ["color", "yes/no", "color", "shape"]
    bundle = _build(spec, ("train", "test"), val_split=0.0)
    images, questions, labels = _all(bundle.test)
    assert questions == ["what color is the shape?"] and labels == [3]
    assert np.array_equal(images[0], _solid((0, 255, 0)).astype(np.float32))
    images, questions, labels = _all(_build(spec, ("all",)).all)  # in order: each image with its questions
    expected = [colours[0]] * 2 + [colours[1]] * 2 + [(0, 255, 0)]
    assert np.array_equal(images, np.stack([_solid(c) for c in expected]).astype(np.float32))
    assert [bundle.type_names[t] for t in _build(spec, ("all",)).question_types["all"]] == [
        "color", "yes/no", "color", "shape", "color"]
    streamed = _all(_build(spec, ("all",), cache="none").all)  # decoded per batch, not cached: the same
    assert np.array_equal(streamed[0], images) and streamed[1:] == (questions, labels)


def test_easy_vqa_without_the_package_is_one_line(monkeypatch):
    monkeypatch.setattr(vqa_readers, "easy_vqa_dir", lambda: None)
    for check in (parse_vqa_spec, KIND.check_spec, lambda s: KIND.open_source(DataConfig(spec=s))):
        with pytest.raises(DataError, match="pip install easy-vqa") as info:
            check("easy_vqa")
        assert "\n" not in str(info.value)


@pytest.mark.skipif(vqa_readers.easy_vqa_dir() is None, reason="easy-vqa is not installed")
def test_the_installed_easy_vqa():
    source = open_vqa_source(DataConfig(spec="easy_vqa"))
    train, test = source.splits["train"], source.splits["test"]
    assert (len(train.images), len(test.images)) == (4000, 1000) and (len(train), len(test)) == (38_575, 9_673)
    assert len(source.class_names) == 13 and not source.skipped and source.left_out == 0


def test_a_folder_not_in_the_layout(tmp_path):
    with pytest.raises(DataError, match="easy-vqa's layout"):
        open_vqa_source(DataConfig(spec=f"easy_vqa:{tmp_path}"))
    (tmp_path / "answers.txt").write_text("yes\n")
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "questions.json").write_text("[[1, 2")
    with pytest.raises(DataError, match="cannot read") as info:
        open_vqa_source(DataConfig(spec=f"easy_vqa:{tmp_path}"))
    assert "\n" not in str(info.value)


# --- VQA v2 -----------------------------------------------------------------------------------

def _vqa(root, nested=False):
    images = {("train2014", 9): (255, 0, 0), ("train2014", 25): (0, 0, 255), ("val2014", 42): (0, 255, 0)}
    for (tag, image_id), rgb in images.items():
        folder = root / "images" / tag if nested else root / tag
        save(str(folder / f"COCO_{tag}_{image_id:012d}.jpg"), _solid(rgb), quality=100)
    rows = {"train2014": [(1, 9, "what color?", "red", "other"), (2, 9, "is it red?", "yes", "yes/no"),
                          (3, 25, "is it red?", "no", "yes/no"), (4, 25, "how many?", "1", "number"),
                          (5, 25, "is it blue?", "yes", "yes/no"), (6, 99, "is it?", "yes", "yes/no")],
            "val2014": [(7, 42, "is it green?", "yes", "yes/no"), (8, 42, "what color?", "green", "other")]}
    for tag, qs in rows.items():
        _write_json(str(root / f"v2_OpenEnded_mscoco_{tag}_questions.json"), {"questions": [
            {"image_id": i, "question": q, "question_id": qid} for qid, i, q, _, _ in qs]})
        _write_json(str(root / f"v2_mscoco_{tag}_annotations.json"), {"annotations": [
            {"question_id": qid, "image_id": i, "multiple_choice_answer": a, "answer_type": t,
             "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": 1}]} for qid, i, _, a, t in qs]})
    return images


@pytest.mark.parametrize("nested", [False, True])
def test_vqa_v2_layout(tmp_path, nested):
    images = _vqa(tmp_path, nested)
    spec = f"vqa:{tmp_path}"
    assert kinds.spec_kind(spec) == "image+question"
    source = open_vqa_source(DataConfig(spec=spec))
    # answers by training frequency (yes 3; then 1, no, red once each, by name); image 99 is missing
    assert source.class_names == ["yes", "1", "no", "red"] and source.type_names == ["yes/no", "number", "other"]
    assert [os.path.basename(f) for f, _ in source.skipped] == ["COCO_train2014_000000000099.jpg"]
    assert source.left_out == 1  # val's "green" is not a training answer
    bundle = _build(spec, ("train", "val"))
    assert bundle.counts == {"train": 5, "val": 1}
    pictures, questions, labels = _all(bundle.val)
    assert questions == ["is it green?"] and labels == [0]
    assert np.abs(pictures[0] - _solid(images[("val2014", 42)])).max() <= 3  # JPEG at quality 100
    assert [bundle.type_names[t] for t in bundle.question_types["val"]] == ["yes/no"]


def test_vqa_v2_answer_vocabulary_is_capped(tmp_path, monkeypatch):
    _vqa(tmp_path)
    monkeypatch.setattr(vqa_readers, "MAX_VQA_ANSWERS", 1)
    source = open_vqa_source(DataConfig(spec=f"vqa:{tmp_path}"))
    assert source.class_names == ["yes"] and len(source.splits["train"]) == 2 and source.left_out == 3 + 1


def test_vqa_v2_broken_layouts_are_one_line(tmp_path):
    with pytest.raises(DataError, match="v2_OpenEnded_mscoco_train2014_questions.json"):
        open_vqa_source(DataConfig(spec=f"vqa:{tmp_path}"))
    _vqa(tmp_path)
    _write_json(str(tmp_path / "v2_mscoco_train2014_annotations.json"), {"annotations": []})
    with pytest.raises(DataError, match="has no annotation") as info:
        open_vqa_source(DataConfig(spec=f"vqa:{tmp_path}"))
    assert "\n" not in str(info.value)
    _write_json(str(tmp_path / "v2_mscoco_train2014_annotations.json"), {"answers": []})
    with pytest.raises(DataError, match="'annotations'"):
        open_vqa_source(DataConfig(spec=f"vqa:{tmp_path}"))


# --- CLEVR ------------------------------------------------------------------------------------

def _program(last):
    return [{"function": "scene", "inputs": [], "value_inputs": []}, {"function": last, "inputs": [0]}]


def test_clevr_layout(tmp_path):
    for split, n in (("train", 2), ("val", 1)):
        for i in range(n):
            save(str(tmp_path / "images" / split / f"CLEVR_{split}_{i:06d}.png"), _solid((10 * i, 100, 200)))
    train = [("CLEVR_train_000000.png", "Are there any cubes?", "yes", "exist"),
             ("CLEVR_train_000000.png", "How many spheres are there?", "2", "count"),
             ("CLEVR_train_000001.png", "What color is the cube?", "red", "query_color"),
             ("CLEVR_train_000001.png", "Is the cube the same size as the ball?", "no", "equal_size"),
             ("CLEVR_train_000001.png", "Are there more cubes than balls?", "no", "greater_than")]
    val = [("CLEVR_val_000000.png", "What color is the ball?", "red", "query_color")]
    for split, rows in (("train", train), ("val", val)):
        _write_json(str(tmp_path / "questions" / f"CLEVR_{split}_questions.json"), {"questions": [
            {"image_filename": f, "question": q, "answer": a, "program": _program(last), "split": split,
             "image_index": 0, "question_index": k} for k, (f, q, a, last) in enumerate(rows)]})
    spec = f"clevr:{tmp_path}"
    source = open_vqa_source(DataConfig(spec=spec))
    assert source.class_names == ["2", "no", "red", "yes"]
    assert [source.type_names[t] for t in source.splits["train"].types] == [
        "exist", "count", "query_attribute", "compare_attribute", "compare_integer"]
    bundle = _build(spec, ("train", "eval"))
    assert bundle.counts == {"train": 5, "eval": 1} and bundle.eval_split == "val"
    pictures, questions, labels = _all(bundle.eval)
    assert questions == ["What color is the ball?"] and labels == [2]
    assert np.array_equal(pictures[0], _solid((0, 100, 200)).astype(np.float32))
    with pytest.raises(DataError, match="CLEVR_train_questions.json"):
        open_vqa_source(DataConfig(spec=f"clevr:{tmp_path / 'images'}"))


def test_an_image_that_does_not_decode_is_skipped(tmp_path):
    _easy_vqa(tmp_path)
    (tmp_path / "train" / "images" / "1.png").write_bytes(b"not a png at all")
    bundle = _build(f"easy_vqa:{tmp_path}", ("train",), val_split=0.0)
    assert bundle.counts == {"train": 2} and (str(tmp_path / "train" / "images" / "1.png"),
                                              "does not decode as an image") in bundle.skipped
