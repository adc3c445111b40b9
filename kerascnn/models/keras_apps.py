"""Networks that keras.applications ships with official ImageNet weights, wrapped to the kerascnn
builder signature.

The application is built on the output of our `Preprocess` layer (`input_tensor=`), so its layers
sit flat in the model under Keras's own names ("block5_conv2", "mixed4", ...) and `weights="imagenet"`
loads the official file (downloaded when online, from ~/.keras/models otherwise).
"""
from __future__ import annotations

import os
from typing import Callable, Optional

import keras

from kerascnn.errors import ModelError
from kerascnn.models.common import check_common_args, load_weights, model_input, resolve_input_shape
from kerascnn.models.registry import get_spec, register_model


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
        if include_top and num_classes != 1000:
            raise ModelError(f"{name}: the ImageNet classifier has 1000 classes; use include_top=False "
                             f"(or `kerascnn finetune`) for {num_classes}.")
    inputs, x = model_input(shape, preprocessing)
    try:
        base = app(include_top=include_top, weights="imagenet" if weights == "imagenet" else None,
                   input_tensor=x, pooling=None if include_top else pooling, classes=num_classes,
                   classifier_activation=None, **app_kwargs)
    except Exception as e:
        if "URL fetch failure" in str(e) or "Name or service not known" in str(e):
            raise _offline_hint(name, e) from None
        raise
    x = base.output
    if not include_top and pooling:
        # Keras leaves some of these auto-named ("global_average_pooling2d"); ours are stable and the
        # same as every kerascnn model's (see common.pool_features).
        base.layers[-1].name = f"{pooling}_pool"
    if include_top:
        # Keras names its classifier Dense "predictions"; ours is "logits" followed by a float32
        # activation called "predictions", the same two layers as every other kerascnn model.
        base.layers[-1].name = "logits"
        x = keras.layers.Activation(classifier_activation or "linear", dtype="float32", name="predictions")(x)
    model = keras.Model(inputs, x, name=name)
    if weights in (None, "imagenet"):
        return model
    return load_weights(model, weights, name)


@register_model(default_input=(224, 224, 3), min_input=(32, 32, 3), paper="Sandler et al. 2018",
                family="mobilenet", pretrained=("imagenet",), preprocessing="tf")
def mobilenet_v2(input_shape=None, num_classes=1000, include_top=True, weights=None, pooling=None,
                 classifier_activation="softmax", name="mobilenet_v2", alpha=1.0):
    """MobileNetV2 (Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear Bottlenecks")."""
    return build_application(
        keras.applications.MobileNetV2, name=name, preprocessing="tf", default_input=(224, 224, 3),
        min_input=(32, 32, 3), input_shape=input_shape, num_classes=num_classes, include_top=include_top,
        weights=weights, pooling=pooling, classifier_activation=classifier_activation, alpha=alpha)


# The other keras.applications networks of the lectures. Each entry point only names the
# application; sizes and preprocessing come from its registry entry (Keras's own preprocess_input
# mode: "caffe" for ResNet v1, "tf" for ResNet v2, Inception, Xception and MobileNet).
IMAGENET = ("imagenet",)


def _wrap(app: Callable, key: str, args: dict, **app_kwargs) -> keras.Model:
    spec = get_spec(key)
    return build_application(app, preprocessing=spec.preprocessing, default_input=spec.default_input,
                             min_input=spec.min_input, **args, **app_kwargs)


def _args(input_shape, num_classes, include_top, weights, pooling, classifier_activation, name) -> dict:
    return dict(input_shape=input_shape, num_classes=num_classes, include_top=include_top,
                weights=weights, pooling=pooling, classifier_activation=classifier_activation, name=name)


_RESNET = dict(default_input=(224, 224, 3), min_input=(32, 32, 3), paper="He et al. 2015",
               family="resnet", pretrained=IMAGENET, preprocessing="caffe")
_RESNET_V2 = dict(_RESNET, paper="He et al. 2016", preprocessing="tf")


@register_model(**_RESNET)
def resnet50(input_shape=None, num_classes=1000, include_top=True, weights=None, pooling=None,
             classifier_activation="softmax", name="resnet50"):
    """ResNet-50 (He et al. 2015, "Deep Residual Learning for Image Recognition"): 25,636,712 params."""
    return _wrap(keras.applications.ResNet50, "resnet50", _args(input_shape, num_classes, include_top,
                 weights, pooling, classifier_activation, name))


@register_model(**_RESNET)
def resnet101(input_shape=None, num_classes=1000, include_top=True, weights=None, pooling=None,
              classifier_activation="softmax", name="resnet101"):
    """ResNet-101 (He et al. 2015, "Deep Residual Learning for Image Recognition")."""
    return _wrap(keras.applications.ResNet101, "resnet101", _args(input_shape, num_classes, include_top,
                 weights, pooling, classifier_activation, name))


@register_model(**_RESNET)
def resnet152(input_shape=None, num_classes=1000, include_top=True, weights=None, pooling=None,
              classifier_activation="softmax", name="resnet152"):
    """ResNet-152 (He et al. 2015, "Deep Residual Learning for Image Recognition")."""
    return _wrap(keras.applications.ResNet152, "resnet152", _args(input_shape, num_classes, include_top,
                 weights, pooling, classifier_activation, name))


@register_model(**_RESNET_V2)
def resnet50_v2(input_shape=None, num_classes=1000, include_top=True, weights=None, pooling=None,
                classifier_activation="softmax", name="resnet50_v2"):
    """ResNet-50 v2, pre-activation (He et al. 2016, "Identity Mappings in Deep Residual Networks")."""
    return _wrap(keras.applications.ResNet50V2, "resnet50_v2", _args(input_shape, num_classes, include_top,
                 weights, pooling, classifier_activation, name))


@register_model(**_RESNET_V2)
def resnet101_v2(input_shape=None, num_classes=1000, include_top=True, weights=None, pooling=None,
                 classifier_activation="softmax", name="resnet101_v2"):
    """ResNet-101 v2, pre-activation (He et al. 2016, "Identity Mappings in Deep Residual Networks")."""
    return _wrap(keras.applications.ResNet101V2, "resnet101_v2", _args(input_shape, num_classes, include_top,
                 weights, pooling, classifier_activation, name))


@register_model(**_RESNET_V2)
def resnet152_v2(input_shape=None, num_classes=1000, include_top=True, weights=None, pooling=None,
                 classifier_activation="softmax", name="resnet152_v2"):
    """ResNet-152 v2, pre-activation (He et al. 2016, "Identity Mappings in Deep Residual Networks")."""
    return _wrap(keras.applications.ResNet152V2, "resnet152_v2", _args(input_shape, num_classes, include_top,
                 weights, pooling, classifier_activation, name))


@register_model(default_input=(299, 299, 3), min_input=(75, 75, 3), paper="Szegedy et al. 2016",
                family="inception", pretrained=IMAGENET, preprocessing="tf")
def inception_resnet_v2(input_shape=None, num_classes=1000, include_top=True, weights=None, pooling=None,
                        classifier_activation="softmax", name="inception_resnet_v2"):
    """Inception-ResNet-v2 (Szegedy et al. 2016, "Inception-v4, Inception-ResNet and the Impact of
    Residual Connections on Learning")."""
    return _wrap(keras.applications.InceptionResNetV2, "inception_resnet_v2", _args(
        input_shape, num_classes, include_top, weights, pooling, classifier_activation, name))


@register_model(default_input=(299, 299, 3), min_input=(71, 71, 3), paper="Chollet 2017",
                family="inception", pretrained=IMAGENET, preprocessing="tf")
def xception(input_shape=None, num_classes=1000, include_top=True, weights=None, pooling=None,
             classifier_activation="softmax", name="xception"):
    """Xception (Chollet 2017, "Xception: Deep Learning with Depthwise Separable Convolutions")."""
    return _wrap(keras.applications.Xception, "xception", _args(input_shape, num_classes, include_top,
                 weights, pooling, classifier_activation, name))


@register_model(default_input=(224, 224, 3), min_input=(32, 32, 3), paper="Howard et al. 2017",
                family="mobilenet", pretrained=IMAGENET, preprocessing="tf")
def mobilenet(input_shape=None, num_classes=1000, include_top=True, weights=None, pooling=None,
              classifier_activation="softmax", name="mobilenet", alpha=1.0):
    """MobileNet v1 (Howard et al. 2017, "MobileNets: Efficient Convolutional Neural Networks for
    Mobile Vision Applications")."""
    return _wrap(keras.applications.MobileNet, "mobilenet", _args(input_shape, num_classes, include_top,
                 weights, pooling, classifier_activation, name), alpha=alpha)
