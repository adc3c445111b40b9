"""Model references: the one place that turns whatever names a model into a keras.Model with its weights.

Every command names its model the same way: a registered name ("vgg19"), any keras.applications
network ("keras:VGG19"), a saved `.keras` file (loaded with Keras's safe mode on), or, from Python, a
built keras.Model. `check_model` checks a reference and its `weights` before anything is built (no
TensorFlow for a registry name); `resolve_model` builds or loads it. The predicates at the top
import nothing heavy, so a command's pre-checks can run before TensorFlow loads.
"""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence

from kerascnn.errors import SettingError

KERAS_PREFIX = "keras:"  # --model keras:EfficientNetB0: any keras.applications network
DEFAULT_INPUT = (224, 224, 3)  # a keras.applications network's input unless an input shape is given

# keras.applications' preprocess_input of each module, as kerascnn.models.preprocessing modes ("none": the
# network rescales inside itself, EfficientNet, ConvNeXt and MobileNetV3's include_preprocessing).
APPLICATION_PREPROCESSING = {
    "convnext": "none", "efficientnet": "none", "efficientnet_v2": "none", "mobilenet_v3": "none",
    "densenet": "torch", "resnet": "caffe", "vgg16": "caffe", "vgg19": "caffe",
    "resnet_v2": "tf", "inception_v3": "tf", "inception_resnet_v2": "tf", "xception": "tf", "mobilenet": "tf",
    "mobilenet_v2": "tf", "nasnet": "tf",
}


def application(ref: str):
    """(the keras.applications constructor named by `keras:NAME`, its preprocessing mode)."""
    import keras

    name = str(ref)[len(KERAS_PREFIX):]
    known = sorted(n for n in dir(keras.applications) if n[:1].isupper() and callable(getattr(keras.applications, n))
                   and getattr(keras.applications, n).__module__.rsplit(".", 1)[-1] in APPLICATION_PREPROCESSING)
    if name not in known:
        import difflib

        from kerascnn.errors import UnknownNameError

        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        raise UnknownNameError("model", f"keras.applications has no network {name!r}"
                                        + (f"; did you mean {' or '.join(KERAS_PREFIX + c for c in close)}?" if close
                                           else f"; known: {', '.join(known)}."))
    constructor = getattr(keras.applications, name)
    return constructor, APPLICATION_PREPROCESSING[constructor.__module__.rsplit(".", 1)[-1]]


def is_model_file(ref: Any) -> bool:
    """Whether a --model value names a saved model rather than a registered one."""
    return str(ref).endswith(".keras")


def is_application(ref: Any) -> bool:
    """Whether a --model value names a keras.applications network (`keras:NAME`)."""
    return str(ref).startswith(KERAS_PREFIX)


def is_backbone_ref(ref: Any) -> bool:
    """A --model that is not a registry name: a saved model or a keras.applications network."""
    return is_model_file(ref) or is_application(ref)


def input_kind(ref: Any) -> str:
    """What a model reference takes (kerascnn.data.kinds.INPUT_KINDS): a registry entry says; a
    keras.applications network takes images; a saved model or a built one takes what its run's model
    took (its run's config.json beside it, else the model named inside the .keras archive: a model
    file copied on its own, else images)."""
    if isinstance(ref, str) and not is_backbone_ref(ref):
        from kerascnn.models.registry import get_spec

        return get_spec(ref).inputs
    if isinstance(ref, str) and is_model_file(ref):
        import json

        config = os.path.join(os.path.dirname(os.path.abspath(ref)), "config.json")
        try:
            with open(config, encoding="utf-8") as f:
                model = json.load(f).get("model")
        except (OSError, ValueError, AttributeError):
            model = None
        if not isinstance(model, str) or is_backbone_ref(model):
            model = _archive_model_name(ref)
        if isinstance(model, str) and not is_backbone_ref(model):
            from kerascnn.errors import UnknownNameError
            from kerascnn.models.registry import get_spec

            try:
                return get_spec(model).inputs
            except UnknownNameError:  # a model of a newer kerascnn: its inputs are unknown here
                return "image"
    return "image"


def _archive_model_name(path: str) -> Optional[str]:
    """The top model's name in a .keras archive's config.json (builders name their model after its
    registry entry), read as JSON without loading anything; None for an unreadable file."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            name = json.loads(archive.read("config.json")).get("config", {}).get("name")
    except (OSError, ValueError, KeyError, AttributeError, zipfile.BadZipFile):
        return None
    return name if isinstance(name, str) else None


def wants_imagenet_file(ref: Any, weights: Any) -> bool:
    """Whether building `ref` with `weights` needs an official ImageNet weights file (the Keras cache
    or a download): what the commands' offline pre-checks look for."""
    return isinstance(weights, str) and weights.strip().lower() == "imagenet" and not is_model_file(ref)


def check_model(ref: Any, weights: Any = None, *, rgb: bool = False) -> Optional[str]:
    """Check a model reference and its weights before anything is built; returns the normalised
    weights (None, a weight name or a path). `rgb=True`: the model must take 3-channel images.

    Raises:
        SettingError: param "model" (a missing file, a model that does not take RGB) or "weights";
            UnknownNameError with close matches for an unknown name.
    """
    from kerascnn.models.weights import check_weights

    if not isinstance(ref, str):
        return None  # a built model: nothing to check
    if is_model_file(ref):
        if not os.path.isfile(ref):
            raise SettingError("model", f"Model file {ref} does not exist; pass a .keras file that kerascnn "
                                        f"wrote (`kerascnn fit`, `finetune`), a registered name or keras:NAME.")
        return None  # a saved model brings its own weights
    if is_application(ref):
        application(ref)  # UnknownNameError with close matches
        return check_weights(ref, weights, ("imagenet",))
    from kerascnn.models.registry import get_spec

    spec = get_spec(ref)  # UnknownNameError with close matches
    if rgb and spec.default_input[-1] != 3:
        raise SettingError("model", f"{ref} does not take RGB images; pick an image model.")
    return check_weights(ref, weights, spec.pretrained)


def resolve_model(ref: Any, weights: Any = None, *, include_top: bool = True,
                  input_shape: Optional[Sequence[int]] = None, rgb: bool = False, **build_args):
    """The keras.Model a reference names, with its weights.

    Args:
        ref: a registered name, `keras:NAME`, a `.keras` file, or a keras.Model (returned as it is).
        weights: "imagenet", None/"none" (random initialisation: seed it with
            `keras.utils.set_random_seed` first if runs must repeat), or a weights file; a `.keras`
            file brings its own.
        include_top: keep the classifier; False gives the feature network.
        input_shape: (H, W, C) to build at; None: the model's default.
        rgb: refuse models that do not take 3-channel images (the image-synthesis apps).
        **build_args: more builder arguments (pooling, a family's own: alpha, depth, ...); not for
            a `.keras` file.

    Raises:
        SettingError / UnknownNameError as `check_model`; ModelError when it cannot be built.
    """
    if not isinstance(ref, str):
        return ref
    weights = check_model(ref, weights, rgb=rgb)
    shape = {"input_shape": tuple(input_shape)} if input_shape else {}
    if is_model_file(ref):
        if build_args:
            raise SettingError("model_args", f"--model {ref} is a saved model; builder arguments do not apply.")
        from kerascnn.models.loading import load_model

        return load_model(ref)
    if is_application(ref):
        from kerascnn.models.keras_apps import build_application

        constructor, mode = application(ref)
        try:
            return build_application(constructor, name=model_name(ref[len(KERAS_PREFIX):].lower()),
                                     preprocessing=mode, default_input=DEFAULT_INPUT, min_input=(32, 32, 3),
                                     include_top=include_top, weights=weights, **shape, **build_args)
        except (ValueError, TypeError) as e:  # Keras's own argument checks (NASNet's fixed ImageNet input, ...)
            from kerascnn.errors import ModelError

            raise ModelError(f"--model {ref}: {str(e).splitlines()[0][:300]}") from None
    from kerascnn.models.registry import create_model

    return create_model(ref, include_top=include_top, weights=weights, **shape, **build_args)


def model_name(name: str) -> str:
    """A Keras model name from any text: Keras model names become file and scope names, so they are
    kept to [A-Za-z0-9_.-]."""
    return "".join(c if c.isalnum() or c in "_.-" else "_" for c in name) or "model"


__all__ = ["APPLICATION_PREPROCESSING", "DEFAULT_INPUT", "KERAS_PREFIX", "application", "check_model", "input_kind", "is_application", "is_backbone_ref",
           "is_model_file", "model_name", "resolve_model", "wants_imagenet_file"]
