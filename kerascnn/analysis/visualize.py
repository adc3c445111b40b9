"""Seeing inside a network: first-layer filters, activation maps, Grad-CAM and feature visualisation.

Each function takes a keras.Model (a kerascnn model, a keras.applications network, a loaded .keras
file, a classifier with a nested backbone) and returns arrays; `kerascnn.analysis.figures` draws
them and `kerascnn visualize ...` saves the drawings. Layers are named as `kerascnn.list_layers`
shows them ("block1_conv1", "mobilenetv2_1.00_224/out_relu") or by a registry use ("cam").

    kernels, name = filters(model)                         # (kh, kw, c_in, c_out), the first conv
    maps = activations(model, image, ["conv1", "conv2"])   # {layer: (h, w, channels)}
    heat, probs = gradcam(model, images)                   # (N, H, W) in [0, 1], (N, classes)
    pictures = maximize(model, "block3_conv1", [0, 1, 2])  # (3, H, W, C) pixels in [0, 255]

Grad-CAM (Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization") weighs each channel of a conv feature map by the spatial mean of the
class score's gradient and keeps the positive part of the sum; Grad-CAM++ (Chattopadhay et al.
2018) weighs the positive gradients per position with closed-form alphas. The class score is the
logit (the input of a final softmax) when the model has one, as the paper prescribes, else the output.

A nested backbone's inner layers live in the inner model's own graph (see kerascnn.models.features), so the
Grad-CAM model is built level by level: a view of the inner model that outputs both the tapped map
and the inner model's own output, then the outer model's layers after the backbone re-applied to
that output. The class score then really depends on the tapped map, and the gradient reaches it.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from kerascnn.errors import SettingError, UserError

if TYPE_CHECKING:  # TensorFlow loads when a function runs, not on import
    import keras

NORMALIZE = ("kernel", "global")
METHODS = ("gradcam", "gradcam++")


# ------------------------------------------------------------------------------------------------
# Models and layers


def resolve_model(model: Union[str, "keras.Model"], weights: Optional[str] = None,
                  size: Optional[int] = None) -> "keras.Model":
    """A keras.Model from any model reference (kerascnn.models.refs: a registry name, keras:NAME, a
    .keras file, or a model returned as it is), built at `size` x `size` when given. A weights file
    that fits only the network without its classifier (a backbone's) builds it without one: the
    features are what filters, activations and maximize look at."""
    import os

    from kerascnn.errors import ModelError
    from kerascnn.models import refs

    if not isinstance(model, str):
        return model
    if refs.is_model_file(model) or "/" in model or "\\" in model:
        if weights:
            raise SettingError("weights", f"weights apply to registry names only; {model} carries its own.")
        if not refs.is_model_file(model):
            raise SettingError("model", f"{model}: expected a .keras model file (Keras 3 format).")
        return refs.resolve_model(model)
    checked = refs.check_model(model, weights)  # before anything is built
    shape = None
    if size:
        if refs.is_application(model):
            channels = refs.DEFAULT_INPUT[2]
        else:
            from kerascnn.models.registry import get_spec

            channels = get_spec(model).default_input[2]
        shape = (size, size, channels)
    try:
        return refs.resolve_model(model, checked, input_shape=shape)
    except ModelError:
        if checked is None or not os.path.isfile(checked):
            raise
        return refs.resolve_model(model, checked, include_top=False, input_shape=shape)


def layer_path(model: "keras.Model", layer: str) -> str:
    """The "/"-joined path `layer` (a name, a path or a registry use with one layer) stands for.

    Raises:
        UnknownNameError / SettingError: (param "layer") as `feature_extractor` does.
    """
    from kerascnn.errors import UnknownNameError
    from kerascnn.models.features import feature_extractor

    try:
        return feature_extractor(model, layer).layer_names[0]
    except UnknownNameError as e:
        raise UnknownNameError("layer", str(e)) from None
    except SettingError as e:
        raise SettingError("layer", str(e)) from None


def _layer(model, path: str):
    from kerascnn.models.features import _walk

    return {p: layer for p, layer, _ in _walk(model)}[path]


def default_cam_layer(model: "keras.Model") -> str:
    """The registry's "cam" layer when the model (or a model nested in it) is a registry model, else
    the last layer whose output is a spatial map (batch, h, w, c)."""
    from kerascnn.models.features import list_layers

    try:
        return layer_path(model, "cam")
    except SettingError:
        pass
    spatial = [r.name for r in list_layers(model)
               if isinstance(r.output_shape, tuple) and len(r.output_shape) == 4
               and r.class_name not in ("InputLayer", "Functional", "Sequential")]
    if not spatial:
        raise SettingError("layer", f"Model {model.name!r} has no spatial feature map for Grad-CAM; "
                                    f"name a layer with --layer.")
    return spatial[-1]


def input_size(model: "keras.Model", size: int = 224) -> Tuple[int, int, int]:
    """(H, W, C) the model takes; `size` for the free dimensions of a fully convolutional model."""
    h, w, c = tuple(model.input_shape[1:4])
    return (h or size, w or size, c or 3)


def prepare_images(images, shape: Tuple[int, int, int]) -> np.ndarray:
    """Images (one (h, w, c) array, a list of them, or a batch) as float32 (N, H, W, C) in [0, 255]
    at `shape`, resized bilinearly and converted between gray and RGB."""
    import tensorflow as tf

    batch = [images] if isinstance(images, np.ndarray) and images.ndim == 3 else list(images)
    out = []
    for img in batch:
        img = np.asarray(img, np.float32)
        img = img[..., None] if img.ndim == 2 else img
        if img.shape[-1] != shape[2]:
            img = img.mean(-1, keepdims=True) if shape[2] == 1 else np.repeat(img[..., :1], 3, -1)
        if img.shape[:2] != shape[:2]:
            img = tf.image.resize(img, shape[:2]).numpy()
        out.append(img)
    return np.stack(out).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# Filters and activations


def filters(model: "keras.Model", layer: Optional[str] = None) -> Tuple[np.ndarray, str]:
    """The kernels of a conv layer (default: the first one), float32 (kh, kw, c_in, c_out), and its path."""
    from kerascnn.models.features import _walk

    if layer is None:
        convs = [p for p, l, _ in _walk(model) if _kernel(l) is not None]
        if not convs:
            raise SettingError("layer", f"Model {model.name!r} has no convolution layer.")
        path = convs[0]
    else:
        path = layer_path(model, layer)
    kernel = _kernel(_layer(model, path))
    if kernel is None:
        raise SettingError("layer", f"Layer {path!r} has no 2-D convolution kernel (kh, kw, c_in, c_out).")
    return kernel, path


def _kernel(layer) -> Optional[np.ndarray]:
    k = getattr(layer, "depthwise_kernel", None)
    k = getattr(layer, "kernel", None) if k is None else k
    if k is None or len(k.shape) != 4:
        return None
    return np.asarray(k.numpy() if hasattr(k, "numpy") else k, np.float32)


def filter_grid(kernels: np.ndarray, normalize: str = "kernel", max_filters: int = 64,
                max_inputs: int = 16, pad: int = 1) -> np.ndarray:
    """Kernels as one picture, float32 (H, W, 3) in [0, 1], zero shown mid-grey.

    Three-input-channel kernels are RGB tiles in a square grid (AlexNet's Figure 3); other kernels
    one grayscale tile per input channel, a row per filter. Each value v becomes 0.5 + 0.5 v / s,
    with s the largest |v| of its kernel (normalize="kernel": every filter uses the full range) or
    of the whole layer (normalize="global": strong and weak filters compare).
    """
    if normalize not in NORMALIZE:
        raise SettingError("normalize", f"normalize must be one of {', '.join(NORMALIZE)}. Received: {normalize!r}")
    k = np.moveaxis(np.asarray(kernels, np.float32), -1, 0)[:max_filters]  # (n, kh, kw, c_in)
    axes = (1, 2, 3) if normalize == "kernel" else (0, 1, 2, 3)
    scale = np.maximum(np.abs(k).max(axis=axes, keepdims=True), 1e-12)
    k = 0.5 + 0.5 * k / scale
    n, kh, kw, cin = k.shape
    if cin == 3:
        cols = math.ceil(math.sqrt(n))
        rows = math.ceil(n / cols)
        tiles = [k[i] for i in range(n)]
    else:
        cols, rows = min(cin, max_inputs), n
        tiles = [np.repeat(k[i, :, :, j:j + 1], 3, -1) for i in range(n) for j in range(cols)]
    grid = np.ones((rows * (kh + pad) + pad, cols * (kw + pad) + pad, 3), np.float32)
    for t, tile in enumerate(tiles):
        r, c = divmod(t, cols)
        grid[pad + r * (kh + pad):pad + r * (kh + pad) + kh, pad + c * (kw + pad):pad + c * (kw + pad) + kw] = tile
    return grid


def activations(model: "keras.Model", image, layers: Union[str, Sequence[str]]) -> Dict[str, np.ndarray]:
    """The activations of `layers` for one image (h, w, c pixels in [0, 255], resized to the model's
    input): {layer path: array without the batch dimension}, in the order given."""
    from kerascnn.models.features import feature_extractor

    names = [layers] if isinstance(layers, str) else list(layers)
    paths = [layer_path(model, n) for n in names]
    extractor = feature_extractor(model, paths)
    batch = prepare_images(image, input_size(model, max(np.asarray(image).shape[:2])))
    outs = extractor(batch, training=False)
    outs = [outs] if len(paths) == 1 else outs
    return {p: np.asarray(o)[0] for p, o in zip(paths, outs)}


def strongest_channels(maps: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` channels of an (h, w, c) map with the largest mean activation, strongest first."""
    strength = np.abs(maps).reshape(-1, maps.shape[-1]).mean(0)
    return np.argsort(-strength, kind="stable")[:count]


# ------------------------------------------------------------------------------------------------
# Grad-CAM


def cam_model(model: "keras.Model", layer: Optional[str] = None) -> "keras.Model":
    """A model from `model`'s input to [the feature map of `layer`, the class scores, the outputs]
    (scores: the logits before a final softmax, else the outputs), sharing `model`'s weights.
    Works through nested models; `layer` defaults to `default_cam_layer(model)`."""
    import keras

    path = layer_path(model, layer) if layer is not None else default_cam_layer(model)
    feature, scores, probs = _tap(model, path.split("/"))
    inputs = model.inputs if len(model.inputs) > 1 else model.inputs[0]
    cam = keras.Model(inputs, [feature, scores, probs], name=f"{model.name}_cam")
    cam.layer_name = path
    return cam


def _scores(owner) -> Tuple[object, object]:
    """(scores, outputs) of `owner`'s graph: the logits feeding a final softmax, else the outputs."""
    from kerascnn.runtime.compat import producer_node

    if len(owner.outputs) != 1:
        raise SettingError("layer", f"Model {owner.name!r} has {len(owner.outputs)} outputs; Grad-CAM needs one.")
    out = owner.outputs[0]
    node = producer_node(out)
    kind = type(node.operation).__name__
    softmax = getattr(getattr(node.operation, "activation", None), "__name__", "") == "softmax"
    # Only a separate softmax layer leaves its logits in the graph (a Dense with a softmax
    # activation does not): then the score is the class's probability, as in keras-io's example.
    if kind == "Softmax" or (kind == "Activation" and softmax):
        args = node.arguments.args
        if args and hasattr(args[0], "shape"):
            return args[0], out
    return out, out


def _tap(owner, parts: List[str]):
    """(feature map, scores, outputs) as tensors of `owner`'s graph, recursing into nested models."""
    import keras
    from kerascnn.models.features import _node

    scores, probs = _scores(owner)
    if len(parts) == 1:
        return _node(owner, owner.get_layer(parts[0]), parts[0]).outputs[0], scores, probs
    inner = owner.get_layer(parts[0])
    feature, _, inner_out = _tap(inner, parts[1:])
    view = keras.Model(inner.inputs, [feature, inner_out], name=f"{inner.name}_cam_view")
    node = _node(owner, inner, parts[0])
    feature, new_out = view(*node.arguments.args, **node.arguments.kwargs)
    try:  # the outer layers after the backbone, applied to the view's output
        head = keras.Model(node.outputs[0], [scores, probs], name=f"{owner.name}_head")
    except ValueError as e:
        raise SettingError("layer", f"Model {owner.name!r} uses tensors besides {inner.name!r}'s output after "
                                    f"it; cannot tap {'/'.join(parts)} for Grad-CAM ({e}).") from None
    scores, probs = head(new_out)
    return feature, scores, probs


def gradcam(model: "keras.Model", images, class_index: Union[None, int, Sequence[int]] = None,
            layer: Optional[str] = None, method: str = "gradcam") -> Tuple[np.ndarray, np.ndarray]:
    """Grad-CAM heat maps of `images` for a class, and the model's probabilities.

    Args:
        model: a classifier (a keras.Model; see `resolve_model` for names and files).
        images: (h, w, c) pixel arrays in [0, 255] or a batch; resized to the model's input.
        class_index: the class to explain, one for all images or one per image; None: each image's
            predicted class.
        layer: the feature map; None: the registry's "cam" layer, else the last spatial map.
        method: "gradcam" or "gradcam++".

    Returns:
        heatmaps float32 (N, H, W) in [0, 1] at the model's input size (each divided by its
        maximum; all zeros where no position speaks for the class), probs float32 (N, classes).
    """
    cam = cam_model(model, layer)
    batch = prepare_images(images, input_size(model))
    heat, probs = _gradcam(cam, batch, class_index, method)
    return heat, probs


def _gradcam(cam, batch: np.ndarray, class_index, method: str) -> Tuple[np.ndarray, np.ndarray]:
    maps, probs = cam_maps(cam, batch, class_index, method)
    return upsample(maps, batch.shape[1:3]), probs


def cam_maps(cam, inputs, class_index, method: str = "gradcam") -> Tuple[np.ndarray, np.ndarray]:
    """Grad-CAM maps at the tapped layer's own resolution, float32 (N, h, w) >= 0, not normalised, and
    the probabilities: `cam` a `cam_model`, `inputs` its input (a batch, or a dict of named inputs)."""
    import tensorflow as tf

    if method not in METHODS:
        raise SettingError("method", f"method must be one of {', '.join(METHODS)}. Received: {method!r}")
    x = {k: tf.constant(v) for k, v in inputs.items()} if isinstance(inputs, dict) else tf.constant(inputs)
    with tf.GradientTape() as tape:
        feature, scores, probs = cam(x, training=False)
        feature = tf.cast(feature, tf.float32)
        scores = tf.cast(scores, tf.float32)
        n_classes = int(scores.shape[-1])
        chosen = _classes(class_index, np.asarray(probs), n_classes)
        score = tf.reduce_sum(scores * tf.one_hot(chosen, n_classes), axis=-1)
    grads = tape.gradient(score, feature)
    if grads is None:
        raise UserError(f"The class score does not depend on layer {cam.layer_name!r}; pick a layer before the head.")
    a, g = feature.numpy(), grads.numpy()
    if a.ndim != 4:
        raise SettingError("layer", f"Layer {cam.layer_name!r} outputs {tuple(a.shape)}; Grad-CAM needs a spatial "
                                    f"map (batch, h, w, channels).")
    if method == "gradcam":
        weights = g.mean(axis=(1, 2))
    else:  # Grad-CAM++: alpha = g^2 / (2 g^2 + sum(A) g^3) (the exponential-score closed form)
        g2, g3 = g ** 2, g ** 3
        denom = 2.0 * g2 + a.sum(axis=(1, 2), keepdims=True) * g3
        alpha = g2 / np.where(denom != 0.0, denom, 1.0)
        weights = (alpha * np.maximum(g, 0.0)).sum(axis=(1, 2))
    maps = np.maximum(np.einsum("nhwc,nc->nhw", a, weights), 0.0)
    return maps.astype(np.float32), np.asarray(probs, np.float32)


def _classes(class_index, probs: np.ndarray, n_classes: int) -> np.ndarray:
    if class_index is None:
        return np.argmax(probs, axis=-1).astype(np.int32)
    chosen = np.broadcast_to(np.asarray(class_index, np.int64), (len(probs),)).astype(np.int32)
    bad = [int(c) for c in chosen if not 0 <= c < n_classes]
    if bad:
        raise SettingError("target_class", f"Class index {bad[0]} is out of range; the model has {n_classes} classes.")
    return chosen


def upsample(maps: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """(N, h, w) maps resized bilinearly to (N, *size), each divided by its maximum (zeros stay zeros)."""
    import tensorflow as tf

    big = tf.image.resize(np.asarray(maps, np.float32)[..., None], size).numpy()[..., 0]
    big = np.maximum(big, 0.0)
    top = big.reshape(len(big), -1).max(axis=1)
    return (big / np.where(top > 0, top, 1.0)[:, None, None]).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# Activation maximisation


def maximize(model: "keras.Model", layer: str, channels: Sequence[int], *, size: int = 128, steps: int = 64,
             lr: float = 4.0, jitter: int = 4, blur_sigma: float = 0.8, blur_every: int = 4, seed: int = 0,
             progress: bool = True) -> np.ndarray:
    """Images that excite channels of `layer` most (Erhan et al. 2009; Yosinski et al. 2015's regularisers).

    Gradient ascent (kerascnn.synthesis.ascent) from mid-grey noise on the mean activation of each
    channel, all channels as one batch: each step follows the gradient normalised to unit standard
    deviation, `lr` pixel levels long, on an image rolled by a random offset of up to `jitter` pixels
    (robustness to translation); every `blur_every` steps a Gaussian blur of `blur_sigma` pixels
    damps the high frequencies that plain ascent fills with noise.

    Returns:
        float32 (len(channels), H, W, C) pixels in [0, 255], at the model's input size (`size` for
        free dimensions).
    """
    import tensorflow as tf

    from kerascnn.models.features import feature_extractor
    from kerascnn.runtime.progress import Progress
    from kerascnn.synthesis.ascent import ascend

    path = layer_path(model, layer)
    extractor = feature_extractor(model, path)
    depth = int(extractor.output_shape[-1])
    chans = [int(c) for c in channels]
    bad = [c for c in chans if not 0 <= c < depth]
    if not chans or bad:
        raise SettingError("channels", f"Layer {path!r} has channels 0..{depth - 1}. Received: {list(channels)}")
    shape = input_size(model, size)
    rng = np.random.default_rng(seed)
    start = 128.0 + 8.0 * rng.standard_normal((len(chans), *shape)).astype(np.float32)
    select = tf.one_hot(chans, depth)  # (n, depth): image k excites channel chans[k]
    kernel = _gaussian(blur_sigma, shape[2])

    def objective(x):
        act = tf.cast(extractor(x, training=False), tf.float32)
        act = tf.reduce_mean(act, axis=list(range(1, len(act.shape) - 1))) if len(act.shape) > 2 else act
        return tf.reduce_sum(act * select)

    def blur(x, i):
        if kernel is None or not blur_every or (i + 1) % blur_every:
            return x
        r = kernel.shape[0] // 2  # reflected borders: zero padding would darken the edges
        padded = tf.pad(x, [[0, 0], [r, r], [r, r], [0, 0]], mode="REFLECT")
        return tf.nn.depthwise_conv2d(padded, kernel, [1, 1, 1, 1], "VALID").numpy()

    with Progress(steps, f"maximize {path}", disable=not progress) as bar:
        return ascend(objective, start, steps=steps, step_size=lr, normalize="std", jitter=jitter, rng=rng,
                      regularize=blur, on_step=lambda _: bar.update())


def _gaussian(sigma: float, channels: int):
    if sigma <= 0:
        return None
    r = max(1, int(math.ceil(2 * sigma)))
    t = np.arange(-r, r + 1, dtype=np.float32)
    g = np.exp(-t ** 2 / (2 * sigma ** 2))
    k = np.outer(g, g) / np.outer(g, g).sum()
    return np.tile(k[:, :, None, None], (1, 1, channels, 1)).astype(np.float32)


def parse_channels(text: str) -> List[int]:
    """ "0-7" / "3,5,9" / "0-3,10" -> [0, 1, 2, 3, 10]."""
    out: List[int] = []
    try:
        for part in filter(None, (p.strip() for p in str(text).split(","))):
            lo, sep, hi = part.partition("-")
            out += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
    except ValueError:
        raise SettingError("channels", f"channels must be like 0-7 or 3,5,9. Received: {text!r}") from None
    if not out:
        raise SettingError("channels", f"No channels given. Received: {text!r}")
    return out
