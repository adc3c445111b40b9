"""Asking a saved image+question model (kerascnn.models.vqa) questions about one image file:
`kerascnn vqa ask MODEL IMAGE "QUESTION"`.

The model carries its tokenizer ("vectorize"), so the questions go in as strings; words outside its
vocabulary would silently become [UNK], so they are refused, named, before anything is answered.
The answers' names are the run's classes.json beside the model (else the answer indices).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Sequence

import numpy as np

from kerascnn.errors import DataError, SettingError, UserError
from kerascnn.models.loading import load_model, model_input_shape
from kerascnn.runtime import run_dir as rd

IMAGE, QUESTION = "image", "question"  # the input names of kerascnn's image+question models
VECTORIZE = "vectorize"  # their TextVectorization layer


@dataclass(frozen=True)
class Answer:
    """One question's answer: the most probable class and its probability."""

    question: str
    answer: str
    probability: float

    def to_json(self) -> dict:
        return {"question": self.question, "answer": self.answer, "probability": round(self.probability, 6)}


def unknown_words(model, questions: Sequence[str]) -> List[str]:
    """The words of `questions` (as the model's tokenizer splits them) that its vocabulary lacks,
    each once, in order of appearance."""
    import tensorflow as tf

    layer = model.get_layer(VECTORIZE)
    vocabulary = set(layer.get_vocabulary())
    standardize = layer.get_config().get("standardize")
    if callable(standardize):
        text = standardize(tf.constant(list(questions)))
    else:  # a Keras standardisation named by a string: the layer's own
        from kerascnn.models.tokenize import sentence_standardize

        text = sentence_standardize(tf.constant(list(questions)))
    seen: List[str] = []
    for words in tf.strings.split(text).to_list():
        for w in (w.decode("utf-8", "replace") for w in words):
            if w not in vocabulary and w not in seen:
                seen.append(w)
    return seen


def ask(model_path: os.PathLike, image: os.PathLike, questions: Sequence[str]) -> List[Answer]:
    """The answers of a saved image+question model to `questions` about the image file `image`.

    Raises:
        SettingError: no question, or words the model does not know (param "question"); a model
            that does not take an image and a question (param "model").
        UserError: the model or the image cannot be read.
    """
    questions = [str(q) for q in questions]
    if not questions or not all(q.strip() for q in questions):
        raise SettingError("question", "give a question (and more with --question).")
    model = load_model(model_path)
    shape = model_input_shape(model)
    if not isinstance(shape, dict) or set(shape) != {IMAGE, QUESTION}:
        raise SettingError("model", f"{model_path} does not take an image and a question; `kerascnn vqa ask` is "
                                    f"for image+question models (vqa_cnn_rn, vqa_cnn_mlp).")
    unknown = unknown_words(model, questions)
    if unknown:
        raise SettingError("question", f"words outside {model_path}'s vocabulary: {', '.join(unknown)}.")
    pixels = read_image(image, shape[IMAGE])
    probs = np.asarray(model.predict_on_batch({IMAGE: np.repeat(pixels[None], len(questions), axis=0),
                                               QUESTION: np.array(questions, dtype=object)}), np.float64)
    names = list(rd.read_classes(model_path) or [])
    best = np.argmax(probs, axis=-1)
    return [Answer(q, names[i] if i < len(names) else str(i), float(p[i])) for q, i, p in zip(questions, best, probs)]


def read_image(path: os.PathLike, shape) -> np.ndarray:
    """One image file as float32 (H, W, C) [0, 255] at `shape`; UserError (one line) if it is not one."""
    from kerascnn.data.build import load_images

    if not os.path.isfile(path):
        raise UserError(f"{path}: no such image file.")
    try:
        images, _, _ = load_images([str(path)], shape)
    except DataError:
        images = np.zeros((0,))
    if len(images) == 0:
        raise UserError(f"{path}: cannot read it as an image.")
    return images[0]


__all__ = ["Answer", "ask", "read_image", "unknown_words"]
