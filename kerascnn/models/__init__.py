"""The model zoo. Importing this package registers every family (explicit imports, no scanning)."""
from kerascnn.models import (alexnet, alphago, googlenet, inception, keras_apps, lenet,  # noqa: F401
                             resnet, vgg)  # (registration)
from kerascnn.models.common import strip_auxiliary
from kerascnn.models.registry import ModelSpec, create_model, get_spec, list_models, register_model

__all__ = ["ModelSpec", "create_model", "get_spec", "list_models", "register_model", "strip_auxiliary"]
