"""Receptive fields along a Keras graph (Araujo, Norris & Sim 2019, "Computing Receptive Fields of
Convolutional Neural Networks", Distill).

Every tensor carries, per spatial axis, the size r of its receptive field (how many input pixels can
affect one unit) and the jump j (how many input pixels apart two neighbouring units are: the product
of the strides so far). A window of size k, stride s and dilation d maps

    r_out = r_in + (k - 1) * d * j_in,        j_out = j_in * s.

Padding moves the field but leaves its size alone. A layer with several inputs (Add, Concatenate)
takes the largest field of its inputs. Sizes are the theoretical fields: they may exceed the image
(the rest is padding) and say nothing of how strongly each pixel counts.

Layers are read by their attributes (`kernel_size` or `pool_size`, `strides`, `dilation_rate`), so
custom layers that use the Keras names (e.g. `kerascnn.models.layers.ShortcutA`, a 1x1 window with a stride)
are handled too; only the few layers that change resolution differently have their own rule below.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Dict, Optional, Sequence, Tuple

Shape = Tuple[Optional[int], ...]  # with the batch axis, as Keras reports it


@dataclass(frozen=True)
class Field:
    """Receptive field `size` and `jump` per spatial axis (empty for non-image inputs)."""

    size: Tuple[int, ...]
    jump: Tuple[Fraction, ...]  # a Fraction: transposed convolutions and up-sampling divide it

    @classmethod
    def pixel(cls, ndim: int) -> "Field":
        """The field of an input pixel: itself."""
        return cls((1,) * ndim, (Fraction(1),) * ndim)

    def window(self, kernel: Sequence[int], strides: Sequence[int], dilation: Sequence[int]) -> "Field":
        size = tuple(r + (k - 1) * d * j for r, k, d, j in zip(self.size, kernel, dilation, self.jump))
        return Field(tuple(int(r) for r in size), tuple(j * s for j, s in zip(self.jump, strides)))


def merge(fields: Sequence[Field]) -> Field:
    """The field of a layer joining several tensors: the largest along each axis (a 1x3 and a 3x1
    branch joined see 3x3). Their jumps agree wherever the joined tensors have the same resolution;
    where they do not (an up-sampled path), the coarser jump is kept."""
    if len(fields) == 1 or len({len(f.size) for f in fields}) > 1:
        return fields[0]
    return Field(tuple(max(s) for s in zip(*(f.size for f in fields))),
                 tuple(max(j) for j in zip(*(f.jump for f in fields))))


def layer_field(layer, fields: Sequence[Field], in_shapes: Sequence[Shape], out_shapes: Sequence[Shape]) -> Field:
    """The receptive field of `layer`'s outputs, given those of its inputs."""
    field = merge(fields)
    n = len(field.size)
    in_shape, out_shape = in_shapes[0], out_shapes[0]
    if n == 0 or len(in_shape) != n + 2:
        return field  # no image axes left (after Flatten / global pooling): nothing changes
    rule = rule_for(_RULES, layer)
    if rule is not None:
        return rule(layer, field, in_shape)
    if len(out_shape) < len(in_shape):
        return _whole_map(layer, field, in_shape)  # Flatten, Reshape to vectors: one unit sees everything
    kernel = _per_axis(getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None) or 1, n)
    strides = _per_axis(getattr(layer, "strides", None) or 1, n)
    dilation = _per_axis(getattr(layer, "dilation_rate", None) or 1, n)
    if None in (kernel, strides, dilation):
        return field  # a window over other axes (Conv1D over an image's rows...): not a spatial op
    return field.window(kernel, strides, dilation)


def _per_axis(value, n: int) -> Optional[Tuple[int, ...]]:
    values = (value,) * n if isinstance(value, int) else tuple(value)
    return tuple(int(v) for v in values) if len(values) == n else None


def spatial_axes(shape: Shape, data_format: Optional[str] = None) -> Shape:
    """The spatial sizes of a batched shape (channels last unless the layer says otherwise)."""
    return tuple(shape[2:]) if data_format == "channels_first" else tuple(shape[1:-1])


def _whole_map(layer, field: Field, in_shape: Shape) -> Field:
    # Global pooling is a window as large as its input map, with stride 1.
    sizes = spatial_axes(in_shape, getattr(layer, "data_format", None))
    return field.window(sizes, (1,) * len(sizes), (1,) * len(sizes))


def _transposed(layer, field: Field, in_shape: Shape) -> Field:
    # An output unit of a stride-s transposed convolution sees ceil(k_eff / s) neighbouring inputs
    # (the largest count over the s output phases), and neighbouring outputs are j/s apart.
    n = len(field.size)
    kernel, strides = _per_axis(layer.kernel_size, n), _per_axis(layer.strides, n)
    dilation = _per_axis(getattr(layer, "dilation_rate", 1), n)
    taps = [math.ceil(((k - 1) * d + 1) / s) for k, s, d in zip(kernel, strides, dilation)]
    size = tuple(int(r + (t - 1) * j) for r, t, j in zip(field.size, taps, field.jump))
    return Field(size, tuple(j / s for j, s in zip(field.jump, strides)))


def _upsampling(layer, field: Field, in_shape: Shape) -> Field:
    # Nearest neighbour copies one input unit; bilinear mixes two neighbours per axis.
    n = len(field.size)
    factors = _per_axis(layer.size, n)
    extra = 0 if getattr(layer, "interpolation", "nearest") == "nearest" else 1
    size = tuple(int(r + extra * j) for r, j in zip(field.size, field.jump))
    return Field(size, tuple(j / f for j, f in zip(field.jump, factors)))


# Layers whose effect on resolution their attributes do not describe, by class name (the first
# match along the class's MRO, so subclasses inherit the rule).
_RULES: Dict[str, Callable] = {
    "Conv1DTranspose": _transposed,
    "Conv2DTranspose": _transposed,
    "Conv3DTranspose": _transposed,
    "UpSampling1D": _upsampling,
    "UpSampling2D": _upsampling,
    "UpSampling3D": _upsampling,
    "GlobalAveragePooling1D": _whole_map,
    "GlobalAveragePooling2D": _whole_map,
    "GlobalAveragePooling3D": _whole_map,
    "GlobalMaxPooling1D": _whole_map,
    "GlobalMaxPooling2D": _whole_map,
    "GlobalMaxPooling3D": _whole_map,
}


def rule_for(table: Dict[str, Callable], layer) -> Optional[Callable]:
    """The entry of `table` for the first class name along `layer`'s MRO, or None."""
    for cls in type(layer).__mro__:
        if cls.__name__ in table:
            return table[cls.__name__]
    return None
