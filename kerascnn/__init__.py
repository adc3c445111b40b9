"""kerascnn: the classic CNN case studies as fast, practical Keras 3 software.

    import kerascnn
    model = kerascnn.create_model("lenet5", num_classes=10)
    kerascnn.list_models()
    result = kerascnn.fit("lenet5", data="fashion_mnist", epochs=10)   # = kerascnn fit --model lenet5 ...
    scores = kerascnn.evaluate(result.run_dir / "model.keras")

Heavy imports (TensorFlow) happen on first use, so `kerascnn --help` and `import kerascnn` are instant.
"""
__version__ = "0.1.0"

# One entry per public name: where it lives. `finetune` is the transfer-learning app's, exposed here
# as the Python twin of `kerascnn finetune` (the core's modules never import the apps).
_LAZY = {
    "create_model": "kerascnn.models.registry",
    "get_spec": "kerascnn.models.registry",
    "list_models": "kerascnn.models.registry",
    "fit": "kerascnn.api",
    "resolve_fit": "kerascnn.api",
    "finetune": "kerascnn.apps.transfer_learning",
    "dream": "kerascnn.apps.deep_dream",
    "evaluate": "kerascnn.inference",
    "predict": "kerascnn.inference",
    "cross_validate": "kerascnn.inference.cv",
    "load_model": "kerascnn.models.loading",
    "make_config": "kerascnn.training",
    "TrainConfig": "kerascnn.config",
    "DataConfig": "kerascnn.config",
    "AugmentConfig": "kerascnn.config",
    "EvaluateConfig": "kerascnn.config",
    "PredictConfig": "kerascnn.config",
    "JobDir": "kerascnn.runtime.jobs",
    "Progress": "kerascnn.runtime.progress",
    "track": "kerascnn.runtime.progress",
    "feature_extractor": "kerascnn.models.features",
    "list_layers": "kerascnn.models.features",
    "LayerInfo": "kerascnn.models.features",
    "load_image": "kerascnn.data.imageio",
    "save_image": "kerascnn.data.imageio",
    "resize_longest": "kerascnn.data.imageio",
    "decode_predictions": "kerascnn.data.imageio",
    "imagenet_class_index": "kerascnn.data.imageio",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kerascnn' has no attribute {name!r}")
