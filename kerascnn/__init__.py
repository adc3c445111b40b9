"""kerascnn: the classic CNN case studies as fast, practical Keras 3 software.

    import kerascnn
    model = kerascnn.create_model("lenet5", num_classes=10)
    kerascnn.list_models()
    result = kerascnn.fit(kerascnn.make_config("lenet5", epochs=10))

Heavy imports (TensorFlow) happen on first use, so `kerascnn --help` and `import kerascnn` are instant.
"""
__version__ = "0.1.0"

_LAZY = {
    "create_model": "kerascnn.models.registry",
    "get_spec": "kerascnn.models.registry",
    "list_models": "kerascnn.models.registry",
    "fit": "kerascnn.training",
    "make_config": "kerascnn.training",
    "evaluate": "kerascnn.training",
    "predict": "kerascnn.training",
    "load_model": "kerascnn.training",
    "TrainConfig": "kerascnn.config",
    "DataConfig": "kerascnn.config",
    "AugmentConfig": "kerascnn.config",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kerascnn' has no attribute {name!r}")
