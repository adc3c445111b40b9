"""Readers of visual question answering data on disk, each to a `VqaSource` of image file paths,
questions, answers and question types (the images are decoded when the splits are built):

* easy_vqa: the `easy-vqa` package's data (Zhou 2020: 4,000 train and 1,000 test 64x64 images of
  one coloured shape, 38,575 + 9,673 questions, 13 answers), or a folder in its layout:
  answers.txt (one answer a line, the class order), train/questions.json and test/questions.json
  (a list of [question, answer, image id]), train/images/ID.png and test/images/ID.png. Question
  types, from the answer: yes/no, shape, color.
* VQA v2 (Goyal et al. 2017), a folder holding v2_OpenEnded_mscoco_{train,val}2014_questions.json
  ({"questions": [{"image_id", "question", "question_id"}]}), v2_mscoco_{train,val}2014_annotations.json
  ({"annotations": [{"question_id", "multiple_choice_answer", "answer_type"}]}) and the COCO images
  in {train,val}2014/ (or images/{train,val}2014/) as COCO_train2014_000000000009.jpg. train2014 is
  "train", val2014 "val". The answers are the MAX_VQA_ANSWERS most frequent training answers (the
  usual open-ended-as-classification setup); questions answered otherwise are left out and counted.
  Question types: the annotations' answer_type (yes/no, number, other).
* CLEVR (Johnson et al. 2017), a folder (CLEVR_v1.0/) holding questions/CLEVR_{train,val}_questions.json
  ({"questions": [{"image_filename", "question", "answer", "program"}]}) and images/{train,val}/.
  The answers are the training answers, sorted; question types from the program's last function
  (exist, count, compare_integer, query_attribute, compare_attribute).

A question whose image file is missing is skipped and reported (the file, "no such image file").
Nothing here imports TensorFlow.
"""
from __future__ import annotations

import importlib.util
import json
import os
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from kerascnn.data.vqa_sources import VqaSource, VqaSplit, vqa_split
from kerascnn.errors import DataError

MAX_VQA_ANSWERS = 1000
EASY_VQA_TYPES = ("yes/no", "shape", "color")
EASY_VQA_SHAPES = ("circle", "rectangle", "triangle")
VQA_TYPES = ("yes/no", "number", "other")
VQA_SPLITS = {"train": "train2014", "val": "val2014"}
CLEVR_TYPES = ("exist", "count", "compare_integer", "query_attribute", "compare_attribute", "other")
CLEVR_SPLITS = ("train", "val")  # CLEVR's test questions carry no answers

Example = Tuple[str, str, str, str]  # (image file, question, answer, question type)


def _load_json(path: str, spec: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DataError(f"--data {spec}: cannot read {path} ({e}).") from None


def _field(record, key: str, path: str, spec: str):
    try:
        return record[key]
    except (KeyError, TypeError, IndexError):
        raise DataError(f"--data {spec}: {path} is not in the expected layout (an entry lacks {key!r}).") from None


def assemble(spec: str, kind: str, examples: Dict[str, List[Example]], class_names: Sequence[str],
             type_names: Sequence[str]) -> VqaSource:
    """The examples of each split as VqaSplits of image paths; questions whose answer is not a class
    are left out (counted), those whose image file is missing skipped (reported once per file)."""
    answer_index = {a: i for i, a in enumerate(class_names)}
    type_index = {t: i for i, t in enumerate(type_names)}
    skipped, left_out, exists = [], 0, {}
    splits: Dict[str, VqaSplit] = {}
    for name, rows in examples.items():
        files: Dict[str, int] = {}
        image_index, questions, labels, types = [], [], [], []
        for path, question, answer, qtype in rows:
            if answer not in answer_index:
                left_out += 1
                continue
            if path not in exists:
                exists[path] = os.path.isfile(path)
                if not exists[path]:
                    skipped.append((path, "no such image file"))
            if not exists[path]:
                continue
            image_index.append(files.setdefault(path, len(files)))
            questions.append(str(question).strip())
            labels.append(answer_index[answer])
            types.append(type_index.get(qtype, len(type_names) - 1))
        paths = np.empty(len(files), object)
        paths[:] = list(files)
        splits[name] = vqa_split(paths, image_index, questions, labels, types)
    if "train" not in splits or len(splits["train"]) == 0:
        raise DataError(f"--data {spec}: no usable training questions (all {sum(map(len, examples.values())):,} "
                        f"left out or without an image file).")
    return VqaSource(spec, kind, splits, list(class_names), skipped, type_names=list(type_names), left_out=left_out)


# --- easy_vqa ---------------------------------------------------------------------------------

def easy_vqa_dir() -> Optional[str]:
    """The installed easy-vqa package's data folder (found without importing it), or None."""
    found = importlib.util.find_spec("easy_vqa")
    if found is None or not found.submodule_search_locations:
        return None
    return os.path.join(list(found.submodule_search_locations)[0], "data")


def easy_vqa_type(answer: str) -> str:
    return "yes/no" if answer in ("yes", "no") else "shape" if answer in EASY_VQA_SHAPES else "color"


def read_easy_vqa(folder: Optional[str], spec: str) -> VqaSource:
    """easy-vqa's data (folder None: the installed package's) or a folder in its layout."""
    if folder is None:
        folder = easy_vqa_dir()
        if folder is None:
            raise DataError(f"--data {spec}: the easy-vqa package is not installed; pip install easy-vqa.")
    answers_file = os.path.join(folder, "answers.txt")
    if not os.path.isfile(answers_file) or not os.path.isfile(os.path.join(folder, "train", "questions.json")):
        raise DataError(f"--data {spec}: {folder} is not in easy-vqa's layout (answers.txt, train/questions.json, "
                        f"train/images/ID.png, test/...).")
    with open(answers_file, encoding="utf-8") as f:
        class_names = [line.strip() for line in f if line.strip()]
    examples = {}
    for name in ("train", "test"):
        path = os.path.join(folder, name, "questions.json")
        if name == "test" and not os.path.isfile(path):
            continue
        rows = _load_json(path, spec)
        if not isinstance(rows, list) or any(not isinstance(r, list) or len(r) < 3 for r in rows):
            raise DataError(f"--data {spec}: {path} is not a list of [question, answer, image id].")
        images = os.path.join(folder, name, "images")
        examples[name] = [(os.path.join(images, f"{r[2]}.png"), r[0], str(r[1]), easy_vqa_type(str(r[1]))) for r in rows]
    return assemble(spec, "easy-vqa", examples, class_names, EASY_VQA_TYPES)


# --- VQA v2 -----------------------------------------------------------------------------------

def vqa_files(folder: str, tag: str) -> Tuple[str, str]:
    return (os.path.join(folder, f"v2_OpenEnded_mscoco_{tag}_questions.json"),
            os.path.join(folder, f"v2_mscoco_{tag}_annotations.json"))


def _vqa_image_dir(folder: str, tag: str) -> str:
    nested = os.path.join(folder, "images", tag)
    return nested if os.path.isdir(nested) else os.path.join(folder, tag)


def _read_vqa_split(folder: str, tag: str, spec: str) -> List[Example]:
    q_path, a_path = vqa_files(folder, tag)
    questions = _field(_load_json(q_path, spec), "questions", q_path, spec)
    annotations = _field(_load_json(a_path, spec), "annotations", a_path, spec)
    by_id = {_field(a, "question_id", a_path, spec): a for a in annotations}
    images = _vqa_image_dir(folder, tag)
    rows = []
    for q in questions:
        qid = _field(q, "question_id", q_path, spec)
        if qid not in by_id:
            raise DataError(f"--data {spec}: question {qid} of {q_path} has no annotation in {a_path}.")
        a = by_id[qid]
        file = os.path.join(images, f"COCO_{tag}_{int(_field(q, 'image_id', q_path, spec)):012d}.jpg")
        rows.append((file, _field(q, "question", q_path, spec), str(_field(a, "multiple_choice_answer", a_path, spec)),
                     a.get("answer_type", "other")))
    return rows


def read_vqa(folder: str, spec: str) -> VqaSource:
    """VQA v2's questions and annotations JSON beside the COCO image folders (see the module docstring)."""
    if not all(os.path.isfile(p) for p in vqa_files(folder, VQA_SPLITS["train"])):
        names = " or ".join(os.path.basename(p) for p in vqa_files(folder, VQA_SPLITS["train"]))
        raise DataError(f"--data {spec}: {folder} lacks {names} (the VQA v2 layout: those two JSON files and the "
                        f"images in train2014/).")
    examples = {name: _read_vqa_split(folder, tag, spec) for name, tag in VQA_SPLITS.items()
                if all(os.path.isfile(p) for p in vqa_files(folder, tag))}
    counts = Counter(answer for _, _, answer, _ in examples["train"])
    class_names = [a for a, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:MAX_VQA_ANSWERS]]
    return assemble(spec, "VQA v2", examples, class_names, VQA_TYPES)


# --- CLEVR ------------------------------------------------------------------------------------

def clevr_type(program) -> str:
    """A CLEVR question's type from its program's last function (v1.0 writes "function", later
    releases "type")."""
    if not isinstance(program, list) or not program or not isinstance(program[-1], dict):
        return "other"
    last = str(program[-1].get("function", program[-1].get("type", "")))
    if last in ("exist", "count"):
        return last
    if last in ("equal_integer", "less_than", "greater_than"):
        return "compare_integer"
    if last.startswith("query_"):
        return "query_attribute"
    if last.startswith("equal_"):
        return "compare_attribute"
    return "other"


def clevr_file(folder: str, split: str) -> str:
    return os.path.join(folder, "questions", f"CLEVR_{split}_questions.json")


def read_clevr(folder: str, spec: str) -> VqaSource:
    """CLEVR's questions JSON beside its image folders (see the module docstring)."""
    if not os.path.isfile(clevr_file(folder, "train")):
        raise DataError(f"--data {spec}: {folder} lacks questions/CLEVR_train_questions.json (the CLEVR layout: "
                        f"questions/CLEVR_train_questions.json and images/train/).")
    examples = {}
    for split in CLEVR_SPLITS:
        path = clevr_file(folder, split)
        if not os.path.isfile(path):
            continue
        questions = _field(_load_json(path, spec), "questions", path, spec)
        images = os.path.join(folder, "images", split)
        examples[split] = [(os.path.join(images, _field(q, "image_filename", path, spec)),
                            _field(q, "question", path, spec), str(_field(q, "answer", path, spec)),
                            clevr_type(q.get("program"))) for q in questions]
    class_names = sorted({answer for _, _, answer, _ in examples["train"]})
    return assemble(spec, "CLEVR", examples, class_names, CLEVR_TYPES)


__all__ = ["CLEVR_TYPES", "EASY_VQA_TYPES", "MAX_VQA_ANSWERS", "VQA_TYPES", "assemble", "clevr_type", "easy_vqa_dir",
           "read_clevr", "read_easy_vqa", "read_vqa"]
