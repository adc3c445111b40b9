"""Building blocks shared by the model families: blocks as functions, small layers as classes.

Blocks are pure functions `block(x, ..., name) -> x` that name every layer from `name`, so layer
names stay stable whatever order models are built in (they are the contract with the apps and with
saved weights). Operations Keras lacks (LRN, the option-A shortcut, a per-position bias,
reflection padding, conditional instance normalisation) are registered Layer subclasses, never
Lambda layers, so `.keras` files load with `safe_mode=True`.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import keras
from keras import ops

# ----------------------------------------------------------------------------------------------
# Layers


@keras.saving.register_keras_serializable(package="kerascnn")
class LocalResponseNormalization(keras.layers.Layer):
    """Cross-channel local response normalisation (Krizhevsky et al. 2012, section 3.3).

        b[c] = a[c] / (k + alpha * sum_{c' = c - n//2}^{c + n//2} a[c']^2) ** beta

    with AlexNet's k=2, n=5, alpha=1e-4, beta=0.75. `alpha` multiplies the plain sum, as in the
    paper (Caffe divides alpha by n; pass alpha=n*1e-4 to match it). Channels last.
    """

    def __init__(self, depth_radius: int = 2, bias: float = 2.0, alpha: float = 1e-4,
                 beta: float = 0.75, **kwargs):
        super().__init__(**kwargs)
        if depth_radius < 0:
            raise ValueError(f"depth_radius must be >= 0. Received: depth_radius={depth_radius}")
        self.depth_radius = int(depth_radius)
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def call(self, inputs):
        # Sum of squares over a window of 2r+1 channels: pad the channel axis with zeros and add
        # shifted slices (a few adds; no Lambda, works in every backend and under mixed precision).
        r = self.depth_radius
        squared = ops.square(inputs)
        channels = ops.shape(inputs)[-1]
        padded = ops.pad(squared, [[0, 0]] * (len(inputs.shape) - 1) + [[r, r]])
        total = squared * 0
        for offset in range(2 * r + 1):
            total = total + padded[..., offset:offset + channels]
        return inputs / ops.power(self.bias + self.alpha * total, self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "depth_radius": self.depth_radius, "bias": self.bias,
                "alpha": self.alpha, "beta": self.beta}


@keras.saving.register_keras_serializable(package="kerascnn")
class ShortcutA(keras.layers.Layer):
    """The parameter-free "option A" shortcut of He et al. 2015 (section 4.2, CIFAR ResNets).

    Subsamples by `strides` (takes every strides-th pixel, the 1x1 stride-2 identity) and zero-pads
    the channels up to `filters`, half the new channels before and half after (as the reference
    implementations do). With strides=1 and equal channels it is the identity.
    """

    def __init__(self, filters: int, strides: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)

    def call(self, inputs):
        x = inputs[:, ::self.strides, ::self.strides, :] if self.strides > 1 else inputs
        extra = self.filters - inputs.shape[-1]
        if extra < 0:
            raise ValueError(f"{self.name}: cannot shrink {inputs.shape[-1]} channels to {self.filters}.")
        if extra:
            x = ops.pad(x, [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]])
        return x

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        s = self.strides
        h = None if h is None else -(-h // s)
        w = None if w is None else -(-w // s)
        return (n, h, w, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}


@keras.saving.register_keras_serializable(package="kerascnn")
class PositionBias(keras.layers.Layer):
    """A separate learned bias for every spatial position (and channel) of its input.

    The AlphaGo policy network ends with a 1x1 convolution without bias followed by one bias per
    board point (Silver et al. 2016, "Methods"): 361 biases on a 19x19x1 map.
    """

    def build(self, input_shape):
        self.bias = self.add_weight(name="bias", shape=tuple(input_shape[1:]), initializer="zeros")

    def call(self, inputs):
        return inputs + ops.cast(self.bias, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="kerascnn")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization computed by TensorFlow's fused kernel; the same numbers.

    Keras 3 normalises with separate tensor ops (moments, subtract, scale, ...: several passes over
    every activation, forward and backward) and, under mixed precision, casts every activation to
    float32 for the moments. TensorFlow's FusedBatchNormV3 (oneDNN on CPU, cuDNN on GPU) does one
    pass with float32 statistics on bfloat16/float16 activations: ResNet-20 trains much faster on a
    CPU (bench/RESULTS.md). Same variables, names and config as the Keras layer, so weights files
    load either way, and the same training update of the moving statistics (the biased batch
    variance, as Keras; the kernel returns the unbiased one, rescaled here). Anything the fused
    kernel cannot do exactly falls back to the Keras computation: other backends, not 4-D
    channels-last, masks, synchronised BN, renorm, epsilon below the kernel's floor of 1.001e-5.
    So does a channel count that is not a multiple of 16: oneDNN's blocked kernel then drops to a slow
    path, in bfloat16 1.6-10x slower than Keras's ops, in float32 1.1-1.5x (forward + backward on a
    2-core AMX Xeon, `python bench/batchnorm.py`: 8, 24, 40, 200, 728 channels against 16, 32, 48, 64,
    96, 128, 192, where the fused kernel is 1.4-2.5x faster); the Relation Network's 24-map CNN spent
    3/4 of its training step there.
    """

    def _fusable(self, inputs, mask) -> bool:
        channels = inputs.shape[-1]
        blocked = channels is not None and channels % 16 == 0
        return (keras.backend.backend() == "tensorflow" and mask is None and not self.synchronized
                and not self.renorm and len(inputs.shape) == 4 and self.axis in (-1, 3) and blocked
                and self.epsilon >= 1.001e-5 and self.compute_dtype in ("float32", "bfloat16", "float16"))

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        inputs = tf.cast(inputs, self.compute_dtype)
        channels = inputs.shape[-1]
        gamma = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones([channels])
        beta = tf.cast(self.beta, tf.float32) if self.center else tf.zeros([channels])
        if training and self.trainable:
            # exponential_avg_factor=1: the kernel returns this batch's mean and unbiased variance
            y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, mean=tf.zeros([channels]), variance=tf.ones([channels]),
                epsilon=self.epsilon, is_training=True, exponential_avg_factor=1.0)
            n = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), tf.float32)
            variance = variance * (n - 1.0) / tf.maximum(n, 1.0)  # biased, as Keras's moments
            for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
                moving.assign(moving * self.momentum + tf.cast(batch, moving.dtype) * (1.0 - self.momentum))
            return y
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(
            inputs, gamma, beta, mean=tf.cast(self.moving_mean, tf.float32),
            variance=tf.cast(self.moving_variance, tf.float32), epsilon=self.epsilon, is_training=False)
        return y


@keras.saving.register_keras_serializable(package="kerascnn")
class ReflectionPadding2D(keras.layers.Layer):
    """Pads height and width by `padding` pixels on every side, mirroring the image (channels last).

    The style network (Johnson et al. 2016; Dumoulin et al. 2017) pads by reflection instead of
    with zeros: zero borders show up as dark frames in the painted image. Reflection needs
    `padding` < the padded dimension (keras.ops.pad / np.pad "reflect" excludes the edge pixel).
    """

    def __init__(self, padding: int = 1, **kwargs):
        super().__init__(**kwargs)
        if int(padding) < 0:
            raise ValueError(f"padding must be >= 0. Received: padding={padding}")
        self.padding = int(padding)

    def call(self, inputs):
        p = self.padding
        if not p:
            return inputs
        return ops.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        p = 2 * self.padding
        return (n, None if h is None else h + p, None if w is None else w + p, c)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


@keras.saving.register_keras_serializable(package="kerascnn")
class StyleWeights(keras.layers.Layer):
    """Normalises a (B, N) batch of non-negative style weights so that every row sums to 1.

    Inside the model rather than in the caller so that any weighting (one-hot, 2:1, a 4-way mix)
    feeds conditional instance normalisation a convex combination, which is what the paper's style
    blending interpolates. The sum is floored at 1e-8 so an all-zero row gives zeros, not NaN.
    `style_names` is not used in the computation: it lives in the config so that a saved `.keras`
    file knows which style each column is (kerascnn.models.style_net.style_names_of).
    """

    def __init__(self, style_names: Sequence[str] = (), **kwargs):
        super().__init__(**kwargs)
        self.style_names = [str(s) for s in style_names]

    def call(self, inputs):
        total = ops.sum(inputs, axis=-1, keepdims=True)
        return inputs / ops.maximum(total, ops.cast(1e-8, inputs.dtype))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "style_names": list(self.style_names)}


@keras.saving.register_keras_serializable(package="kerascnn")
class ZeroFirstRow(keras.constraints.Constraint):
    """Keeps the first `rows` rows of an embedding matrix at zero: row 0 is the padding token's
    vector (Kim 2014's code resets it after every update), so padded positions add nothing to a
    convolution however long training runs; with rows=2 also row 1, TextVectorization's "[UNK]".
    A registered constraint, so `.keras` files keep it and load with safe_mode=True."""

    def __init__(self, rows: int = 1):
        self.rows = int(rows)

    def __call__(self, w):
        mask = ops.concatenate([ops.zeros_like(w[:self.rows]), ops.ones_like(w[self.rows:])], axis=0)
        return w * mask

    def get_config(self):
        return {"rows": self.rows}


@keras.saving.register_keras_serializable(package="kerascnn")
class ConditionalInstanceNormalization(keras.layers.Layer):
    """Conditional instance normalisation (Dumoulin, Shlens & Kudlur 2017, equation 5).

    Called on `[x, weights]`, x (B, H, W, C) and weights (B, N):

        y = gamma * (x - mean_hw(x)) / sqrt(var_hw(x) + epsilon) + beta,
        gamma = weights @ gamma_table,   beta = weights @ beta_table      (tables: N x C)

    The statistics are per sample and channel (instance normalisation), so they do not depend on
    the batch and the layer behaves the same in training and inference. A one-hot row selects one
    style's (gamma, beta); a convex mix interpolates them, the paper's style blending. The
    statistics and the affine transform run in float32 whatever the compute dtype: the variance of
    float16 activations overflows/underflows easily, and the tables are read without autocasting.
    """

    def __init__(self, num_styles: int, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        if int(num_styles) < 1:
            raise ValueError(f"num_styles must be >= 1. Received: num_styles={num_styles}")
        self.num_styles = int(num_styles)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        x_shape, w_shape = input_shape
        if w_shape[-1] is not None and w_shape[-1] != self.num_styles:
            raise ValueError(f"{self.name}: weights have {w_shape[-1]} columns, expected "
                             f"num_styles={self.num_styles}.")
        channels = x_shape[-1]
        if channels is None:
            raise ValueError(f"{self.name}: the channel dimension of x must be known.")
        # autocast=False: keep the float32 tables float32 under mixed precision (see call).
        self.gamma_table = self.add_weight(name="gamma_table", shape=(self.num_styles, channels),
                                           initializer="ones", autocast=False)
        self.beta_table = self.add_weight(name="beta_table", shape=(self.num_styles, channels),
                                          initializer="zeros", autocast=False)

    def call(self, inputs):
        x, weights = inputs
        x = ops.cast(x, "float32")
        weights = ops.cast(weights, "float32")
        mean, variance = ops.moments(x, axes=(1, 2), keepdims=True)
        normalized = (x - mean) * ops.rsqrt(variance + self.epsilon)
        # (B, N) @ (N, C) -> (B, C) -> (B, 1, 1, C), broadcast over H and W
        gamma = ops.matmul(weights, ops.cast(self.gamma_table, "float32"))[:, None, None, :]
        beta = ops.matmul(weights, ops.cast(self.beta_table, "float32"))[:, None, None, :]
        return ops.cast(normalized * gamma + beta, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        return {**super().get_config(), "num_styles": self.num_styles, "epsilon": self.epsilon}


# ----------------------------------------------------------------------------------------------
# Blocks


def conv_bn_act(x, filters: int, kernel_size, name: str, strides=1, padding: str = "same",
                activation: Optional[str] = "relu", batch_norm: bool = True,
                use_bias: Optional[bool] = None, bn_epsilon: float = 1e-3, bn_scale: bool = True,
                bn_momentum: float = 0.99):
    """Conv2D -> [BatchNormalization] -> [activation], named `{name}_conv`, `{name}_bn`,
    `{name}_relu` (`{name}_{activation}` in general). The conv has no bias when BN follows.
    `bn_momentum`: the moving statistics' decay (Keras's 0.99 by default; PyTorch's 0.1 is 0.9 here)."""
    if use_bias is None:
        use_bias = not batch_norm
    x = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding=padding,
                            use_bias=use_bias, name=f"{name}_conv")(x)
    if batch_norm:
        x = FusedBatchNormalization(epsilon=bn_epsilon, scale=bn_scale, momentum=bn_momentum, name=f"{name}_bn")(x)
    if activation:
        x = keras.layers.Activation(activation, name=f"{name}_{activation}")(x)
    return x


def conv_relu(x, filters: int, kernel_size, name: str, strides=1, padding: str = "same"):
    """A single Conv2D with a fused ReLU named exactly `name` (Caffe-era nets: AlexNet, GoogLeNet)."""
    return keras.layers.Conv2D(filters, kernel_size, strides=strides, padding=padding,
                               activation="relu", name=name)(x)


def inception_v1_module(x, filters: Tuple[int, int, int, int, int, int], name: str, naive: bool = False):
    """The Inception module of GoogLeNet (Szegedy et al. 2014, Figure 2).

    Args:
        x: input tensor (channels last).
        filters: (c1, c3_reduce, c3, c5_reduce, c5, pool_proj), the columns "#1x1", "#3x3 reduce",
            "#3x3", "#5x5 reduce", "#5x5", "pool proj" of Table 1.
        name: layer-name prefix, e.g. "inception_3a".
        naive: Figure 2(a): 1x1@c1, 3x3@c3 and 5x5@c5 convolutions and a 3x3/1 max-pool straight on
            the input (c3_reduce, c5_reduce, pool_proj are ignored), so the pool branch carries all
            input channels through. False: Figure 2(b) with the 1x1 reductions and pool projection.

    Layers: `{name}_1x1`, `{name}_3x3_reduce`, `{name}_3x3`, `{name}_5x5_reduce`, `{name}_5x5`,
    `{name}_pool`, `{name}_pool_proj`, `{name}_concat`; every conv has a ReLU.
    """
    if len(filters) != 6:
        raise ValueError(f"{name}: filters must be (c1, c3_reduce, c3, c5_reduce, c5, pool_proj). "
                         f"Received: filters={filters}")
    c1, c3r, c3, c5r, c5, pp = (int(f) for f in filters)
    b1 = conv_relu(x, c1, 1, f"{name}_1x1")
    b3 = x if naive else conv_relu(x, c3r, 1, f"{name}_3x3_reduce")
    b3 = conv_relu(b3, c3, 3, f"{name}_3x3")
    b5 = x if naive else conv_relu(x, c5r, 1, f"{name}_5x5_reduce")
    b5 = conv_relu(b5, c5, 5, f"{name}_5x5")
    bp = keras.layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    if not naive:
        bp = conv_relu(bp, pp, 1, f"{name}_pool_proj")
    return keras.layers.Concatenate(axis=-1, name=f"{name}_concat")([b1, b3, b5, bp])


def basic_block(x, filters: int, name: str, strides: int = 1, shortcut: str = "conv",
                bn_epsilon: float = 1.001e-5):
    """ResNet basic block (He et al. 2015, Figure 2): 3x3 -> BN -> ReLU -> 3x3 -> BN, + shortcut, ReLU.

    Names follow keras.applications.ResNet: `{name}_1_conv`, `{name}_1_bn`, `{name}_1_relu`,
    `{name}_2_conv`, `{name}_2_bn`, `{name}_0_conv`/`{name}_0_bn` (projection) or `{name}_0_pad`
    (option A), `{name}_add`, `{name}_out`.

    shortcut: "conv" projects with a 1x1 conv + BN (option B) when the shape changes; "A" subsamples
    and zero-pads channels (option A, parameter-free). An unchanged shape is always the identity.
    """
    if shortcut not in ("conv", "A"):
        raise ValueError(f"{name}: shortcut must be 'conv' or 'A'. Received: shortcut={shortcut!r}")
    changes = strides != 1 or x.shape[-1] != filters
    if not changes:
        residual = x
    elif shortcut == "conv":
        residual = conv_bn_act(x, filters, 1, f"{name}_0", strides=strides, activation=None,
                               bn_epsilon=bn_epsilon)
    else:
        residual = ShortcutA(filters, strides, name=f"{name}_0_pad")(x)
    y = conv_bn_act(x, filters, 3, f"{name}_1", strides=strides, bn_epsilon=bn_epsilon)
    y = conv_bn_act(y, filters, 3, f"{name}_2", activation=None, bn_epsilon=bn_epsilon)
    y = keras.layers.Add(name=f"{name}_add")([residual, y])
    return keras.layers.Activation("relu", name=f"{name}_out")(y)


def basic_stack(x, filters: int, blocks: int, name: str, strides: int = 2, shortcut: str = "conv"):
    """`blocks` basic blocks, the first with `strides`: `{name}_block1` ... `{name}_block{blocks}`."""
    for i in range(1, blocks + 1):
        x = basic_block(x, filters, f"{name}_block{i}", strides=strides if i == 1 else 1,
                        shortcut=shortcut)
    return x


def conv_stack(x, specs: Sequence[Tuple[int, int]], name: str, **conv_kwargs):
    """Consecutive `conv_bn_act` with (filters, kernel) per entry, named `{name}_{i}`."""
    for i, (filters, kernel) in enumerate(specs, start=1):
        x = conv_bn_act(x, filters, kernel, f"{name}_{i}", **conv_kwargs)
    return x
