"""Perceptual statistics of feature maps (Gatys, Ecker & Bethge 2016; Johnson, Alahi & Fei-Fei 2016):
the Gram matrix of a layer's features (style), feature differences (content), total variation.

Every figure here is normalised so that it means the same whatever the network, layer or image size:
the Gram matrix is averaged over positions (not summed), and distances are relative,
||G - A|| / ||A|| and ||F - P|| / ||P|| (Frobenius norms). The style-transfer losses are their squares,
so a loss weight means the same for VGG19 as for a small network of one's own, and the quality
figures `kerascnn stylize` prints can be compared between runs.
"""
from __future__ import annotations


def gram_sum(features):
    """Sum over positions of the outer product of the feature vectors: (B, H, W, C) -> (B, C, C)."""
    import tensorflow as tf

    shape = tf.shape(features)
    flat = tf.reshape(features, (shape[0], shape[1] * shape[2], shape[3]))
    return tf.linalg.matmul(flat, flat, transpose_a=True)


def gram_matrix(features):
    """The Gram matrix averaged over positions: (B, H, W, C) -> (B, C, C), entry (i, j) the mean of
    F_i * F_j over the H * W positions."""
    import tensorflow as tf

    shape = tf.shape(features)
    return gram_sum(features) / tf.cast(shape[1] * shape[2], features.dtype)


def relative_sq(x, ref, axes=None):
    """||x - ref||^2 / ||ref||^2 (over `axes`, default all); 1e-12 keeps an all-zero ref finite."""
    import tensorflow as tf

    return tf.reduce_sum(tf.square(x - ref), axis=axes) / (tf.reduce_sum(tf.square(ref), axis=axes) + 1e-12)


def total_variation(images):
    """Mean squared difference of neighbouring pixels (pixels in [0, 255], reported in [0, 1] units):
    (B, H, W, C) -> (B,). Penalising it smooths the high-frequency noise the optimisation adds."""
    import tensorflow as tf

    x = images / 255.0
    dy = tf.reduce_mean(tf.square(x[:, 1:] - x[:, :-1]), axis=(1, 2, 3))
    dx = tf.reduce_mean(tf.square(x[:, :, 1:] - x[:, :, :-1]), axis=(1, 2, 3))
    return dy + dx


__all__ = ["gram_sum", "gram_matrix", "relative_sq", "total_variation"]
