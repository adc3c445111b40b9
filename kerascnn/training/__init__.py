"""The training harness: `fit` and the config it runs (`make_config`).

Applying a trained model (evaluate, predict, load_model) lives in `kerascnn.inference.apply`.
`fit` is imported on first use: the harness needs TensorFlow (tf.data, distribution), while its
settings, optimizers and schedules (`configure`, `optim`) run on any Keras backend
(bench/recipe_gpu.py uses them on JAX).
"""
from kerascnn.training.configure import make_config

__all__ = ["FitResult", "fit", "make_config"]


def __getattr__(name):
    if name in ("FitResult", "fit"):
        from kerascnn.training import loop
        return getattr(loop, name)
    raise AttributeError(f"module 'kerascnn.training' has no attribute {name!r}")
