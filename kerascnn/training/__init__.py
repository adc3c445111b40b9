"""The training harness: `fit` and the config it runs (`make_config`).

Applying a trained model (evaluate, predict, load_model) lives in `kerascnn.inference`.
"""
from kerascnn.training.configure import make_config
from kerascnn.training.loop import FitResult, fit

__all__ = ["FitResult", "fit", "make_config"]
