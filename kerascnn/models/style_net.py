"""The multi-style image-transformation network of Dumoulin, Shlens & Kudlur, "A Learned
Representation for Artistic Style" (ICLR 2017).

One feed-forward network paints N styles: every normalisation is a conditional instance
normalisation (CIN) whose scale and shift are picked (one-hot) or interpolated (a mix) from
per-style tables by the "style" input, so a style costs only 2*C parameters per CIN layer and
styles can be blended at inference time. The convolutional body is Johnson et al.'s (2016):
9x9 conv, two stride-2 downsamplings, residual blocks, two upsamplings, 9x9 conv to RGB, with
reflection padding everywhere and upsample-then-convolve instead of transposed convolutions
(Dumoulin et al., section 2; Odena et al. 2016: no checkerboard artefacts).

Inputs: "image" (B, H, W, 3) raw pixels in [0, 255] and "style" (B, N) non-negative weights.
Output: "stylized" (B, H, W, 3) pixels in [0, 255] when H and W are multiples of 4; pad other
sizes with `pad_to_multiple` and crop back.
"""
from __future__ import annotations

import numbers
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import keras
import numpy as np

from kerascnn.errors import SettingError
from kerascnn.models.layers import ConditionalInstanceNormalization, ReflectionPadding2D, StyleWeights

STYLE_WEIGHTS_LAYER = "style_weights"

Blend = Union[int, str, Mapping[Union[int, str], float]]


def _conv_cin(x, weights, filters: int, kernel_size: int, name: str, num_styles: int,
              strides: int = 1, activation: bool = True, pad_name: Optional[str] = None,
              conv_name: Optional[str] = None, cin_name: Optional[str] = None,
              relu_name: Optional[str] = None):
    """Reflection pad (kernel_size // 2) -> 'valid' conv -> CIN [-> ReLU].

    The explicit reflection padding keeps H, W (stride 1) or halves them (stride 2, even sizes)
    like 'same' would, without zero borders. No conv bias: CIN's beta replaces it.
    """
    x = ReflectionPadding2D(kernel_size // 2, name=pad_name or f"{name}_pad")(x)
    x = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="valid", use_bias=False,
                            name=conv_name or f"{name}_conv")(x)
    x = ConditionalInstanceNormalization(num_styles, name=cin_name or f"{name}_cin")([x, weights])
    if activation:
        x = keras.layers.Activation("relu", name=relu_name or f"{name}_relu")(x)
    return x


def style_network(style_names: Sequence[str], *, filters: Tuple[int, int, int] = (32, 64, 128),
                  residual_blocks: int = 5, name: str = "style_net") -> keras.Model:
    """Builds the N-style transformation network (N = len(style_names)).

    Layers: conv1..conv3 `_pad/_conv/_cin/_relu`; res{i} `_pad1/_conv1/_cin1/_relu/_pad2/_conv2/
    _cin2/_add`; up1, up2 `_upsample/_pad/_conv/_cin/_relu`; out `_pad/_conv/_cin/_sigmoid/_scale`
    and the float32 output layer "stylized". The style names are stored in the "style_weights"
    layer's config (read them back with `style_names_of`).
    """
    style_names = [str(s) for s in style_names]
    if not style_names:
        raise SettingError("style", "style_network needs at least one style name.")
    if len(set(style_names)) != len(style_names):
        raise SettingError("style", f"Style names must be unique. Received: {style_names}")
    if len(filters) != 3 or any(int(f) < 1 for f in filters):
        raise SettingError("filters", f"filters must be three positive channel counts. Received: {filters}")
    if int(residual_blocks) < 0:
        raise SettingError("residual_blocks", f"residual_blocks must be >= 0. Received: {residual_blocks}")
    f1, f2, f3 = (int(f) for f in filters)
    n = len(style_names)

    image = keras.Input((None, None, 3), name="image")
    style = keras.Input((n,), name="style")
    weights = StyleWeights(style_names, name=STYLE_WEIGHTS_LAYER)(style)

    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(image)
    x = _conv_cin(x, weights, f1, 9, "conv1", n)
    x = _conv_cin(x, weights, f2, 3, "conv2", n, strides=2)
    x = _conv_cin(x, weights, f3, 3, "conv3", n, strides=2)

    for i in range(1, int(residual_blocks) + 1):
        p = f"res{i}"
        y = _conv_cin(x, weights, f3, 3, p, n, pad_name=f"{p}_pad1", conv_name=f"{p}_conv1",
                      cin_name=f"{p}_cin1", relu_name=f"{p}_relu")
        y = _conv_cin(y, weights, f3, 3, p, n, activation=False, pad_name=f"{p}_pad2",
                      conv_name=f"{p}_conv2", cin_name=f"{p}_cin2")
        x = keras.layers.Add(name=f"{p}_add")([x, y])

    # Upsample-then-convolve (nearest neighbour + 3x3 conv) rather than Conv2DTranspose, whose
    # uneven kernel overlap paints checkerboard artefacts (Dumoulin et al., section 2).
    for i, f in ((1, f2), (2, f1)):
        x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"up{i}_upsample")(x)
        x = _conv_cin(x, weights, f, 3, f"up{i}", n)

    x = _conv_cin(x, weights, 3, 9, "out", n, activation=False)
    x = keras.layers.Activation("sigmoid", name="out_sigmoid")(x)
    x = keras.layers.Rescaling(255.0, name="out_scale")(x)
    # float32 pixels even under mixed precision (the convention of the other models' heads).
    x = keras.layers.Activation("linear", dtype="float32", name="stylized")(x)
    return keras.Model([image, style], x, name=name)


def pad_to_multiple(image: np.ndarray, multiple: int = 4) -> Tuple[np.ndarray, Tuple[int, int]]:
    """Reflect-pads H and W at the bottom/right up to multiples of `multiple`.

    The network halves H and W twice and doubles them back, so only multiples of 4 come out at
    their input size. `image` is (H, W), (H, W, C) or (B, H, W, C); returns (padded, (h, w)) with
    the original size, to crop the output back with `out[..., :h, :w, :]`.
    """
    image = np.asarray(image)
    if image.ndim < 2:
        raise ValueError(f"pad_to_multiple needs an image of 2 or more dimensions. Received shape {image.shape}")
    multiple = int(multiple)
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1. Received: multiple={multiple}")
    h_axis, w_axis = (0, 1) if image.ndim == 2 else (image.ndim - 3, image.ndim - 2)
    h, w = image.shape[h_axis], image.shape[w_axis]
    pad = [(0, 0)] * image.ndim
    pad[h_axis] = (0, -h % multiple)
    pad[w_axis] = (0, -w % multiple)
    if not any(after for _, after in pad):
        return image, (h, w)
    # "reflect" cannot mirror a single row/column; "edge" gives the same result there.
    mode = "reflect" if min(h, w) > 1 else "edge"
    return np.pad(image, pad, mode=mode), (h, w)


def style_names_of(model: keras.Model) -> List[str]:
    """The style names of a style network (from its StyleWeights layer's config)."""
    layers = [layer for layer in model.layers if isinstance(layer, StyleWeights)]
    if not layers:
        raise SettingError("model", f"Model {model.name!r} has no StyleWeights layer: not a style network.")
    return list(layers[0].get_config()["style_names"])


def cin_layers(model: keras.Model) -> List[ConditionalInstanceNormalization]:
    """The conditional instance normalisation layers of `model`, in graph order."""
    return [layer for layer in model.layers if isinstance(layer, ConditionalInstanceNormalization)]


def _style_index(style_names: Sequence[str], key) -> int:
    n = len(style_names)
    listing = ", ".join(f"{i}={s!r}" for i, s in enumerate(style_names))
    if isinstance(key, numbers.Integral) and not isinstance(key, bool):
        if 0 <= int(key) < n:
            return int(key)
        raise SettingError("style", f"Style index {int(key)} is out of range: the network has {n} "
                                    f"styles ({listing}).")
    if isinstance(key, str):
        if key in style_names:
            return list(style_names).index(key)
        raise SettingError("style", f"Unknown style {key!r}. Known styles: {listing}.")
    raise SettingError("style", f"A style is an index or a name, not {key!r}. Known styles: {listing}.")


def style_vector(style_names: Sequence[str], blend: Blend) -> np.ndarray:
    """The (N,) float32 style input for one style or a blend of styles, summing to 1.

    `blend` is an index (0..N-1), a style name, or a dict {index-or-name: weight} of non-negative
    weights (at least one positive), e.g. {"starry": 2, "scream": 1} -> 2/3, 1/3. Keys naming the
    same style add up.
    """
    style_names = [str(s) for s in style_names]
    vector = np.zeros(len(style_names), dtype=np.float64)
    if isinstance(blend, Mapping):
        if not blend:
            raise SettingError("style", "An empty style blend: give at least one style and weight.")
        parts: Dict[int, float] = {}
        for key, weight in blend.items():
            index = _style_index(style_names, key)
            try:
                weight = float(weight)
            except (TypeError, ValueError):
                raise SettingError("style", f"The weight of style {key!r} must be a number. "
                                            f"Received: {weight!r}") from None
            if not np.isfinite(weight) or weight < 0:
                raise SettingError("style", f"Style weights must be finite and >= 0. Received "
                                            f"{weight} for {key!r}.")
            parts[index] = parts.get(index, 0.0) + weight
        for index, weight in parts.items():
            vector[index] = weight
        total = vector.sum()
        if total <= 0:
            raise SettingError("style", f"The style weights sum to 0: {dict(blend)}. Give one a positive weight.")
        vector /= total
    else:
        vector[_style_index(style_names, blend)] = 1.0
    return vector.astype(np.float32)


__all__ = ["Blend", "STYLE_WEIGHTS_LAYER", "cin_layers", "pad_to_multiple", "style_names_of", "style_network",
           "style_vector"]
