"""`kerascnn export`: a trained model as a SavedModel, TFLite (float or int8) or ONNX file for serving.

Every export takes raw images, uint8 (batch, height, width, channels) as decoded from a file: the
model's own preprocessing is its first layer, so nothing else is needed to serve it. A text model's
SavedModel takes raw strings, an image+question model's (kerascnn.models.vqa) `images` and
`questions` (both carry their tokenizer, which only the SavedModel format can hold). Auxiliary
heads are dropped (the saved `model.keras` has none already), and the class names travel along: in
the SavedModel as a `class_names` signature and a `top_class` output, and for every format in a
`classes.json` beside the file.

Each export is checked on the spot against the Keras model on the same images: float formats must
agree within `FLOAT_TOLERANCE` (largest absolute difference of the probabilities); for int8 the top-1
accuracy of both on the calibration data is printed, and the drop between them.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from kerascnn.config import EXPORT_FORMATS
from kerascnn.errors import SettingError, UserError
from kerascnn.runtime.jobs import atomic_path, atomic_write_text

FORMATS = EXPORT_FORMATS  # savedmodel, tflite, tflite-int8, onnx
FLOAT_TOLERANCE = 1e-4
_VQA_FORMATS = ("{path} is an image+question model carrying its tokenizer, which {format} cannot hold; export "
                "it with --format savedmodel (it serves uint8 images and raw question strings).")
CHECK_IMAGES = 64  # images the float check compares (random ones without calibration data)
CALIBRATION_IMAGES = 200  # at most this many calibrate int8 and measure its accuracy


@dataclass
class ExportResult:
    path: Path
    format: str
    max_abs_diff: Optional[float] = None  # float formats: against the Keras model
    keras_top1: Optional[float] = None  # int8 (and any format given labelled data): on the check images
    export_top1: Optional[float] = None
    checked_images: int = 0
    notes: List[str] = field(default_factory=list)

    @property
    def top1_drop(self) -> Optional[float]:
        if self.keras_top1 is None or self.export_top1 is None:
            return None
        return self.keras_top1 - self.export_top1


def export(model_path: os.PathLike, out: os.PathLike, *, format: str = "savedmodel",
           calibration_data: Optional[str] = None, batch_size: int = 32) -> ExportResult:
    """Export the .keras model at `model_path` to `out` and check the export against it.

    Args:
        model_path: a .keras file (its classes.json beside it supplies the class names).
        out: the SavedModel folder, .tflite or .onnx file to write.
        format: savedmodel, tflite, tflite-int8 or onnx.
        calibration_data: a data spec (as for --data) whose images calibrate int8 and, with their
            labels, measure accuracy; required for tflite-int8, optional otherwise (random images
            are compared then).
        batch_size: images per batch while reading the calibration data.
    """
    from kerascnn.models.loading import load_model, model_image_shape
    from kerascnn.runtime import run_dir as rd

    if format not in FORMATS:
        raise SettingError("format", f"format must be one of {', '.join(FORMATS)}. Received: {format!r}")
    if format == "tflite-int8" and not calibration_data:
        raise SettingError("calibration_data", "tflite-int8 needs calibration_data: a data spec of images like "
                                               "the ones it will see (e.g. the training folder).")
    from kerascnn.models.refs import input_kind

    kind = input_kind(str(model_path))
    if kind == "image+question" and format != "savedmodel":
        raise SettingError("format", _VQA_FORMATS.format(path=model_path, format=format))
    if kind == "text" and format != "savedmodel":
        # The tokenizer (a TextVectorization string lookup) is part of the model; TFLite's builtin
        # ops and ONNX cannot hold it, and a model that took token ids would need it rebuilt outside.
        raise SettingError("format", f"{model_path} is a text model carrying its tokenizer, which {format} "
                                     f"cannot hold; export it with --format savedmodel (it serves raw strings).")
    if kind not in ("image", "text", "image+question"):
        raise SettingError("format", f"{model_path} takes {kind} inputs; export writes image, text and "
                                     f"image+question models.")
    if format == "onnx":
        _require("tf2onnx", "onnx")
    model = load_model(model_path)
    if isinstance(getattr(model, "input", None), dict):  # a model file without its run's config.json
        kind = "image+question"
        if format != "savedmodel":
            raise SettingError("format", _VQA_FORMATS.format(path=model_path, format=format))
    shape = model_image_shape(model) if kind == "image" else \
        tuple(model.input["image"].shape[1:]) if kind == "image+question" else ()
    names = rd.read_classes(model_path) or [str(i) for i in range(model.output_shape[-1])]
    check = {"image": _check_images, "text": _check_texts, "image+question": _check_pairs}[kind]
    images, labels = check(calibration_data, shape, batch_size, len(names), model)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    keras_inputs = {"image": images["images"].astype(np.float32), "question": images["questions"]} \
        if isinstance(images, dict) else images
    expected = np.asarray(model.predict(keras_inputs, batch_size=batch_size, verbose=0), np.float64)
    if format == "savedmodel":
        _write_savedmodel(model, names, shape, out)
        got = _run_savedmodel(out, images)
    elif format == "onnx":
        _write_onnx(model, shape, out)
        got = _run_onnx(out, images)
    else:
        _write_tflite(model, shape, out, images if format == "tflite-int8" else None)
        got = _run_tflite(out, images)
    # the class names: inside a SavedModel folder, beside a file
    atomic_write_text(out / "classes.json" if format == "savedmodel" else out.parent / f"{out.name}.classes.json",
                      json.dumps(names, indent=1, ensure_ascii=False))
    count = len(images["images"]) if isinstance(images, dict) else len(images)
    result = ExportResult(out, format, checked_images=count)
    if format != "tflite-int8":
        result.max_abs_diff = float(np.max(np.abs(got - expected)))
        if not result.max_abs_diff <= FLOAT_TOLERANCE:  # NaN fails too
            raise UserError(f"{out}: the {format} export disagrees with the Keras model by {result.max_abs_diff:.2g} "
                            f"(more than {FLOAT_TOLERANCE:g}); not usable.")
    if labels is not None:
        result.keras_top1 = float(np.mean(expected.argmax(-1) == labels))
        result.export_top1 = float(np.mean(got.argmax(-1) == labels))
    if calibration_data is None:
        result.notes.append(f"compared on {count} random images" + (" and questions" if isinstance(images, dict) else
                                                                     "; pass calibration_data for real ones"))
    return result


def _require(module: str, extra: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise UserError(f"export to {extra} needs {module}: pip install \"kerascnn[{extra}]\" (or pip install {module}).")


def _check_texts(spec: Optional[str], shape, batch_size: int, num_classes: int, model):
    """(texts, labels or None): up to CALIBRATION_IMAGES texts of `spec`, else seeded random sentences
    of the model's own vocabulary (words it knows, so the check exercises the embeddings)."""
    if spec is None:
        vocabulary = [w for w in model.get_layer("vectorize").get_vocabulary() if w and w != "[UNK]"] or ["a"]
        rng = np.random.default_rng(0)
        return np.asarray([" ".join(rng.choice(vocabulary, size=int(rng.integers(3, 20))))
                           for _ in range(CHECK_IMAGES)], dtype=object), None
    from kerascnn.config import DataConfig
    from kerascnn.data.kinds import check_data_for

    kind = check_data_for("the text model", "text", spec)
    bundle = kind.build(DataConfig(spec=spec, val_split=0.0), shape, batch_size, splits=("all",))
    if bundle.num_classes != num_classes:
        raise SettingError("calibration_data", f"{spec} has {bundle.num_classes} classes, the model {num_classes}.")
    xs, ys = [], []
    for x, y in bundle.all:
        xs += [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in np.asarray(x)]
        ys.append(np.argmax(np.asarray(y), -1))
        if len(xs) >= CALIBRATION_IMAGES:
            break
    return np.asarray(xs[:CALIBRATION_IMAGES], dtype=object), np.concatenate(ys)[:CALIBRATION_IMAGES]


def _check_pairs(spec: Optional[str], shape, batch_size: int, num_classes: int, model):
    """({"images": uint8, "questions": strings}, None): seeded random images, each with a random
    question of the model's own words (the check compares the export with Keras, not accuracy)."""
    if spec is not None:
        raise SettingError("calibration_data", "an image+question model is checked on random images and questions; "
                                               "calibration data applies to image and text models.")
    texts, _ = _check_texts(None, (), batch_size, num_classes, model)
    images, _ = _check_images(None, shape, batch_size, num_classes)
    return {"images": images, "questions": texts}, None


def _check_images(spec: Optional[str], shape, batch_size: int, num_classes: int, model=None):
    """(uint8 images, labels or None): up to CALIBRATION_IMAGES from `spec`, else seeded random ones."""
    if spec is None:
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, (CHECK_IMAGES, *shape)).astype(np.uint8), None
    from kerascnn.config import DataConfig
    from kerascnn.data import build_datasets

    bundle = build_datasets(DataConfig(spec=spec, val_split=0.0), shape, batch_size, splits=("all",))
    if bundle.num_classes != num_classes:
        raise SettingError("calibration_data", f"{spec} has {bundle.num_classes} classes, the model {num_classes}.")
    xs, ys = [], []
    for x, y in bundle.all:
        xs.append(np.asarray(x))
        ys.append(np.argmax(np.asarray(y), -1))
        if sum(len(a) for a in xs) >= CALIBRATION_IMAGES:
            break
    images = np.clip(np.round(np.concatenate(xs)[:CALIBRATION_IMAGES]), 0, 255).astype(np.uint8)
    return images, np.concatenate(ys)[:CALIBRATION_IMAGES]


def _serving_module(model, names: Sequence[str], shape, with_names: bool = True):
    """A tf.Module whose `serve` takes uint8 images (a text model: raw strings, `texts`; an
    image+question model: `images` and `questions`, a string each) and returns probabilities and
    (`with_names`) top_class, the class name."""
    import tensorflow as tf

    if isinstance(model.input, dict):  # image+question
        return _pair_serving_module(model, names, shape)
    text = model.inputs[0].dtype == "string"
    spec = tf.TensorSpec([None], tf.string, name="texts") if text else \
        tf.TensorSpec([None, *shape], tf.uint8, name="images")

    class Serving(tf.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.names = tf.constant(list(names))

        @tf.function(input_signature=[spec])
        def serve(self, inputs):
            inputs = inputs if text else tf.cast(inputs, tf.float32)
            probs = tf.cast(self.model(inputs, training=False), tf.float32)
            if not with_names:
                return {"probabilities": probs}
            return {"probabilities": probs, "top_class": tf.gather(self.names, tf.argmax(probs, axis=-1))}

        @tf.function(input_signature=[])
        def class_names(self):
            return {"class_names": self.names}

    return Serving()


def _pair_serving_module(model, names: Sequence[str], shape):
    """`_serving_module` of an image+question model: serve(images uint8, questions strings)."""
    import tensorflow as tf

    class Serving(tf.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.names = tf.constant(list(names))

        @tf.function(input_signature=[tf.TensorSpec([None, *shape], tf.uint8, name="images"),
                                      tf.TensorSpec([None], tf.string, name="questions")])
        def serve(self, images, questions):
            inputs = {"image": tf.cast(images, tf.float32), "question": questions}
            probs = tf.cast(self.model(inputs, training=False), tf.float32)
            return {"probabilities": probs, "top_class": tf.gather(self.names, tf.argmax(probs, axis=-1))}

        @tf.function(input_signature=[])
        def class_names(self):
            return {"class_names": self.names}

    return Serving()


def _write_savedmodel(model, names: Sequence[str], shape, out: Path) -> None:
    """A SavedModel with signatures `serving_default` (see `_serving_module`) and `class_names`."""
    import tensorflow as tf

    module = _serving_module(model, names, shape)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        tf.saved_model.save(module, str(tmp), signatures={"serving_default": module.serve,
                                                           "class_names": module.class_names})
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)  # a folder: renamed into place whole
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run_savedmodel(path: Path, images: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    if isinstance(images, dict):  # image+question
        n = len(images["images"])
        return np.concatenate([serve(images=tf.constant(images["images"][i:i + 32]),
                                     questions=tf.constant(list(images["questions"][i:i + 32])))["probabilities"]
                               .numpy() for i in range(0, n, 32)]).astype(np.float64)
    name = "texts" if images.dtype == object else "images"
    return np.concatenate([serve(**{name: tf.constant(list(images[i:i + 32]) if name == "texts" else images[i:i + 32])})
                           ["probabilities"].numpy() for i in range(0, len(images), 32)]).astype(np.float64)


def _write_tflite(model, shape, out: Path, calibration: Optional[np.ndarray]) -> None:
    import tensorflow as tf

    # Through Keras's own SavedModel export, which the converter freezes into the file (a tf.Module
    # holding Keras 3 variables converts to a graph that still reads them, empty in TFLite).
    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp, format="tf_saved_model", verbose=False,
                     input_signature=[tf.TensorSpec([None, *shape], tf.uint8, name="images")])
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        if calibration is not None:
            # Full-integer quantization: weights and activations int8, calibrated on real images; the
            # uint8 input needs no quantization of its own (scale 1), the probabilities stay float.
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([calibration[i:i + 1]] for i in range(len(calibration)))
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                                   tf.lite.OpsSet.TFLITE_BUILTINS]
        data = converter.convert()
    with atomic_path(out) as tmp_file:
        Path(tmp_file).write_bytes(data)


def _run_tflite(path: Path, images: np.ndarray) -> np.ndarray:
    import warnings

    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's notice that LiteRT replaces it
        interpreter = tf.lite.Interpreter(model_path=str(path))
    signature = interpreter.get_signature_list()["serving_default"]
    runner = interpreter.get_signature_runner("serving_default")
    name, output = signature["inputs"][0], signature["outputs"][0]
    return np.concatenate([runner(**{name: images[i:i + 1]})[output] for i in range(len(images))]).astype(np.float64)


def _write_onnx(model, shape, out: Path) -> None:  # pragma: no cover (needs the onnx extra)
    import tensorflow as tf
    import tf2onnx

    @tf.function(input_signature=[tf.TensorSpec([None, *shape], tf.uint8, name="images")])
    def serve(images):
        return {"probabilities": tf.cast(model(tf.cast(images, tf.float32), training=False), tf.float32)}

    with atomic_path(out) as tmp:
        tf2onnx.convert.from_function(serve, input_signature=serve.input_signature, output_path=str(tmp))


def _run_onnx(path: Path, images: np.ndarray) -> np.ndarray:  # pragma: no cover (needs the onnx extra)
    _require("onnxruntime", "onnx")
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.asarray(session.run(None, {name: images})[0], np.float64)
