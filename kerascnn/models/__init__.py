"""The model zoo, model references and everything a model is made of.

Importing this package is light (no Keras), so its light modules (`refs`, `weights`, `registry`)
serve the commands' checks before TensorFlow loads. The families register on first use of the
registry (`create_model`, `get_spec`, `list_models`) by the explicit imports in `load_families`,
which also registers kerascnn's serializable layers (what loading a `.keras` file needs).
"""
from kerascnn.models.registry import ModelSpec, create_model, get_spec, list_models, register_model

__all__ = ["ModelSpec", "create_model", "get_spec", "list_models", "load_families", "register_model",
           "strip_auxiliary"]


def load_families() -> None:
    """Register every model family and kerascnn's Keras layers (explicit imports, no scanning)."""
    from kerascnn.models import (alexnet, alphago, googlenet, inception, keras_apps, kim_cnn,  # noqa: F401
                                 lenet, resnet, vgg, vqa, wavenet)  # (registration)


def __getattr__(name):
    if name == "strip_auxiliary":
        from kerascnn.models.common import strip_auxiliary

        return strip_auxiliary
    raise AttributeError(f"module 'kerascnn.models' has no attribute {name!r}")
