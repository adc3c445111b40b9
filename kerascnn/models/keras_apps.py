"""Networks that keras.applications ships with official ImageNet weights, wrapped to the kerascnn
builder signature.

The application is built on the output of our `Preprocess` layer (`input_tensor=`), so its layers
sit flat in the model under Keras's own names ("block5_conv2", "mixed4", ...) and `weights="imagenet"`
loads the official file (downloaded when online, from ~/.keras/models otherwise).
"""
from __future__ import annotations

import inspect
import os
from typing import Callable, Dict, Optional, Sequence, Tuple

import keras

from kerascnn.errors import ModelError
from kerascnn.models.common import (check_common_args, classifier, load_weights, model_input,
                                    resolve_input_shape)
from kerascnn.models.registry import register_model
from kerascnn.models.weights import ImagenetFile, imagenet_top, keras_cache_dir, resolve_imagenet


def _offline_hint(name: str, error: Exception, file: Optional[ImagenetFile]) -> ModelError:
    """A download Keras tried and failed although `resolve_imagenet` let it go ahead (a network that
    drops mid-way, a proxy that refuses, an incomplete file in the cache)."""
    where = (f"download {file.url} into {file.cache_dir}{os.sep}" if file is not None
             else f"copy the Keras weights file into {keras_cache_dir()}{os.sep}")
    return ModelError(
        f"{name}: could not download the official ImageNet weights ({str(error).splitlines()[0][:160]}). "
        f"Offline, {where} or pass --weights PATH to a weights file."
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
    keras_top = include_top and (weights != "imagenet" or imagenet_top(include_top, num_classes, shape, default_input))
    new_head = include_top and not keras_top
    # Before Keras builds the network: offline without the cached file, fail now, naming the file.
    file = resolve_imagenet(app.__name__, model=name, include_top=keras_top, input_shape=shape,
                            alpha=app_kwargs.get("alpha", 1.0)) if weights == "imagenet" else None
    inputs, x = model_input(shape, preprocessing)
    try:
        base = app(include_top=keras_top, weights="imagenet" if weights == "imagenet" else None,
                   input_tensor=x, pooling="avg" if new_head else (None if include_top else pooling),
                   classes=num_classes, classifier_activation=None, **app_kwargs)
    except Exception as e:
        # keras.utils.get_file: "URL fetch failure on URL: ..." (no network, HTTP errors) and
        # "Incomplete or corrupted file detected" (hash mismatch after a download).
        if weights == "imagenet" and ("URL fetch failure" in str(e) or "corrupted file" in str(e)):
            raise _offline_hint(name, e, file) from None
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



def resnet_layers(blocks: Sequence[int], stem: str = "conv1_relu", top: Optional[str] = None
                  ) -> Dict[str, Tuple[str, ...]]:
    """The use-layers (registry.USES) of a ResNet with `blocks` per stage, by Keras's names.

    Stage outputs are `conv{stage}_block{n}_out` (stage 2 first, n its last block). `stem` is the
    first activated map; `top` the last one where it is not the last stage's output (ResNet v2 is
    pre-activation: its blocks add un-normalised maps, and "post_relu" is the map the head sees).
    Style takes the stem and every stage, content and dream the stages before the last.
    """
    ends = [f"conv{stage}_block{n}_out" for stage, n in enumerate(blocks, start=2)]
    top = top or ends[-1]
    return {"content": (ends[-2],), "style": (stem, *ends[:-1], top), "dream": tuple(ends[-3:-1]),
            "cam": (top,)}


_V2 = {"stem": "conv2_block1_preact_relu", "top": "post_relu"}  # ResNet v2's first and last activations
# The apps' layers for each network above (registry.USES), by Keras's layer names: style spread from
# the first named activation to the last stage, content and dream in the second-to-last stage (where
# keras-io dreams with Inception v3's mixed4..mixed7), cam the last feature map before pooling.
APPLICATION_LAYERS = {
    "resnet50": resnet_layers((3, 4, 6, 3)),
    "resnet101": resnet_layers((3, 4, 23, 3)),
    "resnet152": resnet_layers((3, 8, 36, 3)),
    "resnet50_v2": resnet_layers((3, 4, 6, 3), **_V2),
    "resnet101_v2": resnet_layers((3, 4, 23, 3), **_V2),
    "resnet152_v2": resnet_layers((3, 8, 36, 3), **_V2),
    # Keras leaves the stem convs unnamed ("conv2d_3"), so the choice is among the named blocks.
    "inception_resnet_v2": {
        "content": ("block17_10_ac",),
        "style": ("mixed_5b", "block35_10_ac", "block17_10_ac", "block17_20_ac", "block8_9_ac"),
        "dream": ("block17_5_ac", "block17_10_ac", "block17_15_ac", "block17_20_ac"),
        "cam": ("conv_7b_ac",)},
    # block{k}_sepconv1_act is the ReLU of block k-1's output (the residual sums are auto-named).
    "xception": {
        "content": ("block9_sepconv1_act",),
        "style": ("block1_conv2_act", "block3_sepconv1_act", "block4_sepconv1_act", "block5_sepconv1_act",
                  "block14_sepconv1_act"),
        "dream": ("block6_sepconv1_act", "block8_sepconv1_act", "block10_sepconv1_act", "block12_sepconv1_act"),
        "cam": ("block14_sepconv2_act",)},  # keras-io's Grad-CAM layer
    "mobilenet": {
        "content": ("conv_pw_9_relu",),
        "style": ("conv_pw_1_relu", "conv_pw_3_relu", "conv_pw_5_relu", "conv_pw_11_relu", "conv_pw_13_relu"),
        "dream": ("conv_pw_7_relu", "conv_pw_9_relu", "conv_pw_11_relu"),
        "cam": ("conv_pw_13_relu",)},
    # The expansions' ReLUs, where TensorFlow's segmentation tutorial taps MobileNetV2.
    "mobilenet_v2": {
        "content": ("block_10_expand_relu",),
        "style": ("block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu", "block_13_expand_relu",
                  "out_relu"),
        "dream": ("block_7_expand_relu", "block_10_expand_relu", "block_13_expand_relu"),
        "cam": ("out_relu",)},
}


# keras.applications arguments that build_application sets itself.
_SET_BY_US = ("include_top", "weights", "input_tensor", "input_shape", "pooling", "classes",
              "classifier_activation", "name")


def _signature_with_app_kwargs(builder: Callable, app: Callable) -> inspect.Signature:
    """The builder's signature with the application's own extra arguments (alpha, depth_multiplier ...)
    in place of **app_kwargs, so that `--model-arg` keys can be checked against it up front."""
    own = [p for p in inspect.signature(builder).parameters.values() if p.kind != p.VAR_KEYWORD]
    extra = [p.replace(kind=p.KEYWORD_ONLY) for name, p in inspect.signature(app).parameters.items()
             if name not in _SET_BY_US and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return inspect.Signature(own + extra)


def _register_application(key: str, app: Callable, default_input, min_input, paper: str, family: str,
                          preprocessing: str) -> None:
    def builder(input_shape=None, num_classes=1000, include_top=True, weights=None, pooling=None,
                classifier_activation="softmax", name=key, **app_kwargs):
        return build_application(
            app, name=name, preprocessing=preprocessing, default_input=default_input, min_input=min_input,
            input_shape=input_shape, num_classes=num_classes, include_top=include_top, weights=weights,
            pooling=pooling, classifier_activation=classifier_activation, **app_kwargs)

    builder.__name__ = builder.__qualname__ = key
    builder.__signature__ = _signature_with_app_kwargs(builder, app)
    builder.__doc__ = (f"{key} ({paper}): keras.applications.{app.__name__} with kerascnn's input, "
                       f"preprocessing ({preprocessing}) and head; extra kwargs (e.g. alpha) go to Keras.")
    register_model(key, default_input=default_input, min_input=min_input, paper=paper, family=family,
                   pretrained=("imagenet",), preprocessing=preprocessing, layers=APPLICATION_LAYERS[key])(builder)


for _key, _row in _APPLICATIONS.items():
    _register_application(_key, *_row)
