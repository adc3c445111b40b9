"""Networks that keras.applications ships with official ImageNet weights, wrapped to the kerascnn
builder signature.

The application is built on the output of our `Preprocess` layer (`input_tensor=`), so its layers
sit flat in the model under Keras's own names ("block5_conv2", "mixed4", ...) and `weights="imagenet"`
loads the official file (downloaded when online, from ~/.keras/models otherwise).
"""
from __future__ import annotations

import os
from typing import Callable

import keras

from kerascnn.errors import ModelError
from kerascnn.models.common import (check_common_args, classifier, load_weights, model_input,
                                    resolve_input_shape)
from kerascnn.models.registry import register_model


def _offline_hint(name: str, error: Exception) -> ModelError:
    cache = os.path.join(os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")), "models")
    return ModelError(
        f"{name}: could not download the official ImageNet weights ({str(error).splitlines()[0][:160]}). "
        f"Offline, copy the Keras weights file into {cache}/ or pass --weights PATH to a weights file."
    )


def build_application(app: Callable, *, name: str, preprocessing: str, default_input, min_input,
                      input_shape=None, num_classes=1000, include_top=True, weights=None, pooling=None,
                      classifier_activation="softmax", **app_kwargs) -> keras.Model:
    """Build keras.applications' `app` inside a kerascnn model (see the module docstring)."""
    check_common_args(name, num_classes, include_top, pooling)
    shape = resolve_input_shape(input_shape, default_input, min_input, name)
    if weights == "imagenet":
        if shape[-1] != 3:
            raise ModelError(f"{name}: ImageNet weights need 3-channel input. Received: input_shape={shape}")
    # ImageNet weights with another number of classes (or another input size) is transfer learning,
    # as in timm: the pretrained backbone, global average pooling and a new classifier.
    new_head = weights == "imagenet" and include_top and (num_classes != 1000 or shape != tuple(default_input))
    keras_top = include_top and not new_head
    inputs, x = model_input(shape, preprocessing)
    try:
        base = app(include_top=keras_top, weights="imagenet" if weights == "imagenet" else None,
                   input_tensor=x, pooling="avg" if new_head else (None if include_top else pooling),
                   classes=num_classes, classifier_activation=None, **app_kwargs)
    except Exception as e:
        if "URL fetch failure" in str(e) or "Name or service not known" in str(e):
            raise _offline_hint(name, e) from None
        raise
    x = base.output
    if new_head:
        base.layers[-1].name = "avg_pool"
        x = classifier(x, num_classes, classifier_activation)
    elif not include_top and pooling:
        # Keras leaves some of these auto-named ("global_average_pooling2d"); ours are stable and the
        # same as every kerascnn model's (see common.pool_features).
        base.layers[-1].name = f"{pooling}_pool"
    elif include_top:
        # Keras names its classifier Dense "predictions"; ours is "logits" followed by a float32
        # activation called "predictions", the same two layers as every other kerascnn model.
        base.layers[-1].name = "logits"
        x = keras.layers.Activation(classifier_activation or "linear", dtype="float32", name="predictions")(x)
    model = keras.Model(inputs, x, name=name)
    if weights in (None, "imagenet"):
        return model
    return load_weights(model, weights, name)


# The keras.applications networks of the lectures, as data: (application, paper input, smallest
# input, paper, family, Keras's own preprocess_input mode: "caffe" for ResNet v1, "tf" for ResNet
# v2, Inception-ResNet, Xception and MobileNet). VGG16/19 and Inception v3 have builders of their
# own (vgg.py, inception.py) that load these same official weights.
_APPLICATIONS = {
    "resnet50": (keras.applications.ResNet50, (224, 224, 3), (32, 32, 3), "He et al. 2015", "resnet", "caffe"),
    "resnet101": (keras.applications.ResNet101, (224, 224, 3), (32, 32, 3), "He et al. 2015", "resnet", "caffe"),
    "resnet152": (keras.applications.ResNet152, (224, 224, 3), (32, 32, 3), "He et al. 2015", "resnet", "caffe"),
    "resnet50_v2": (keras.applications.ResNet50V2, (224, 224, 3), (32, 32, 3), "He et al. 2016", "resnet", "tf"),
    "resnet101_v2": (keras.applications.ResNet101V2, (224, 224, 3), (32, 32, 3), "He et al. 2016", "resnet", "tf"),
    "resnet152_v2": (keras.applications.ResNet152V2, (224, 224, 3), (32, 32, 3), "He et al. 2016", "resnet", "tf"),
    "inception_resnet_v2": (keras.applications.InceptionResNetV2, (299, 299, 3), (75, 75, 3),
                            "Szegedy et al. 2016", "inception", "tf"),
    "xception": (keras.applications.Xception, (299, 299, 3), (71, 71, 3), "Chollet 2017", "inception", "tf"),
    "mobilenet": (keras.applications.MobileNet, (224, 224, 3), (32, 32, 3), "Howard et al. 2017", "mobilenet", "tf"),
    "mobilenet_v2": (keras.applications.MobileNetV2, (224, 224, 3), (32, 32, 3), "Sandler et al. 2018",
                     "mobilenet", "tf"),
}


def _register_application(key: str, app: Callable, default_input, min_input, paper: str, family: str,
                          preprocessing: str) -> None:
    def builder(input_shape=None, num_classes=1000, include_top=True, weights=None, pooling=None,
                classifier_activation="softmax", name=key, **app_kwargs):
        return build_application(
            app, name=name, preprocessing=preprocessing, default_input=default_input, min_input=min_input,
            input_shape=input_shape, num_classes=num_classes, include_top=include_top, weights=weights,
            pooling=pooling, classifier_activation=classifier_activation, **app_kwargs)

    builder.__name__ = builder.__qualname__ = key
    builder.__doc__ = (f"{key} ({paper}): keras.applications.{app.__name__} with kerascnn's input, "
                       f"preprocessing ({preprocessing}) and head; extra kwargs (e.g. alpha) go to Keras.")
    register_model(key, default_input=default_input, min_input=min_input, paper=paper, family=family,
                   pretrained=("imagenet",), preprocessing=preprocessing)(builder)


for _key, _row in _APPLICATIONS.items():
    _register_application(_key, *_row)
