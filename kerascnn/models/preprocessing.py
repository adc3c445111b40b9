"""Input preprocessing that travels with the model.

Every kerascnn model starts with a `Preprocess` layer, so it takes raw pixels in [0, 255] (RGB or
grayscale): a saved `model.keras` needs no side information to predict, and the data pipeline only
asks the model for its input size and channels. The modes are those of keras.applications'
`preprocess_input` functions.
"""
from __future__ import annotations

from typing import Tuple

import keras
import numpy as np
from keras import ops

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)

MODES = {
    "none": "identity (inputs already preprocessed)",
    "scale": "pixels / 255 -> [0, 1]",
    "tf": "pixels / 127.5 - 1 -> [-1, 1] (Inception, Xception, MobileNet, ResNet v2)",
    "caffe": "RGB -> BGR, minus the ImageNet mean (VGG, ResNet v1)",
    "torch": "pixels / 255, minus mean, over std (ImageNet statistics)",
}


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"Unknown preprocessing mode. Expected one of {sorted(MODES)}. Received: mode={mode!r}")
    return mode


def channel_stats(mode: str, channels: int) -> Tuple[np.ndarray, np.ndarray]:
    """(mean, std) per channel, in the order `preprocess` subtracts them, for "caffe" and "torch".

    Caffe's mean is in BGR order (it is subtracted after the flip). A grayscale input gets the mean
    of the three statistics as its one value, so a gray image preprocesses like the same image
    tiled to RGB would, on average, and the output keeps its one channel (as the layer declares).
    """
    if mode not in ("caffe", "torch"):
        raise ValueError(f"Only the caffe and torch modes have channel statistics. Received: mode={mode!r}")
    if channels not in (1, 3):
        raise ValueError(f"Preprocessing mode {mode!r} takes 1 or 3 channels. Received: channels={channels}")
    mean = np.asarray(CAFFE_MEAN_BGR if mode == "caffe" else TORCH_MEAN, np.float32)
    std = np.ones(3, np.float32) if mode == "caffe" else np.asarray(TORCH_STD, np.float32)
    if channels == 1:
        mean, std = mean.mean(keepdims=True), std.mean(keepdims=True)
    return mean, std


def preprocess(x, mode: str):
    """Raw [0, 255] pixels (RGB or grayscale) -> the model's input range (a backend tensor function)."""
    _check_mode(mode)
    if mode == "none":
        return x
    if mode == "scale":
        return x / 255.0
    if mode == "tf":
        return x / 127.5 - 1.0
    # An unknown channel count (None) is taken as RGB, as before grayscale was handled.
    mean, std = channel_stats(mode, 3 if x.shape[-1] is None else x.shape[-1])
    mean = ops.convert_to_tensor(mean, dtype=x.dtype)
    if mode == "caffe":
        # Caffe models were trained on BGR images with the per-channel mean removed.
        return ops.flip(x, axis=-1) - mean
    return (x / 255.0 - mean) / ops.convert_to_tensor(std, dtype=x.dtype)


def deprocess(x: np.ndarray, mode: str) -> np.ndarray:
    """Inverse of `preprocess` in numpy, back to [0, 255] RGB (grayscale stays one channel)."""
    _check_mode(mode)
    x = np.asarray(x, dtype=np.float32)
    if mode == "scale":
        x = x * 255.0
    elif mode == "tf":
        x = (x + 1.0) * 127.5
    elif mode == "caffe":
        mean, _ = channel_stats(mode, x.shape[-1])
        x = (x + mean)[..., ::-1]
    elif mode == "torch":
        mean, std = channel_stats(mode, x.shape[-1])
        x = (x * std + mean) * 255.0
    return x


@keras.saving.register_keras_serializable(package="kerascnn")
class Preprocess(keras.layers.Layer):
    """First layer of every kerascnn model: raw pixels -> the network's input range.

    Computed in float32 whatever the global precision policy, so mixed precision never quantises
    the raw pixels; the next layer casts to its compute dtype.
    """

    def __init__(self, mode: str = "scale", **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.mode = _check_mode(mode)

    def call(self, inputs):
        return preprocess(ops.cast(inputs, "float32"), self.mode)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
