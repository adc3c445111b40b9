"""kerascnn: the classic CNN case studies as fast, practical Keras 3 software.

    import kerascnn
    model = kerascnn.create_model("lenet5", num_classes=10)
    kerascnn.list_models()
"""
__version__ = "0.1.0"

from kerascnn.models.registry import create_model, get_spec, list_models  # noqa: E402

__all__ = ["__version__", "create_model", "get_spec", "list_models"]
