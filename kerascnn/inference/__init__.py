"""Applying a trained model: evaluate on a data spec, predict image files, test-time augmentation (tta)
and export to other formats (export).

    from kerascnn.inference import evaluate, predict, load_model
"""
from kerascnn.inference.apply import EvalResult, Prediction, evaluate, predict
from kerascnn.models.loading import load_model, model_image_shape

__all__ = ["EvalResult", "Prediction", "evaluate", "load_model", "model_image_shape", "predict"]
