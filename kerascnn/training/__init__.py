"""The training harness and the evaluation / prediction entry points."""
from kerascnn.training.evaluate import EvalResult, Prediction, evaluate, load_model, predict
from kerascnn.training.configure import make_config
from kerascnn.training.loop import FitResult, fit

__all__ = ["EvalResult", "FitResult", "Prediction", "evaluate", "fit", "load_model", "make_config", "predict"]
