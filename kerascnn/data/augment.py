"""Training-time augmentation of whole batches: flips, random crop, translation, PCA colour jitter.

Every op is a vectorised TF function of a batch (B, H, W, C) of float32 [0, 255] pixels and an
explicit stateless seed, so that runs repeat exactly. `augment_dataset` gives each batch its own
seed from `tf.data.Dataset.random(rerandomize_each_iteration=True)`: new draws every epoch, the
same sequence for the same seed.

PCA colour jitter is AlexNet's (Krizhevsky, Sutskever & Hinton 2012, section 4.1): eigen-decompose
the RGB covariance of the training pixels, then add `eigvecs @ (alpha * eigvals)` to every pixel
of an image, alpha ~ N(0, std) drawn per image. As in the common ImageNet implementations
(fb.resnet.torch's eigenvalues 0.2175, 0.0188, 0.0045), the covariance is of pixels scaled to
[0, 1]; on [0, 255] values the literal eigenvalues (~3000) would shift colours by hundreds of levels.
Grayscale images get the same with a 1x1 covariance: a random brightness shift.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from kerascnn.config import AugmentConfig
from kerascnn.errors import UserError

PcaStats = Tuple[np.ndarray, np.ndarray]  # eigvals (C,) descending, eigvecs (C, C) as columns


def check_augment(cfg: AugmentConfig) -> None:
    for name in ("crop", "translate"):
        value = getattr(cfg, name)
        if not 0.0 <= value < 1.0:
            raise UserError(f"augment {name} must be a fraction in [0, 1) of the image side. Received: {name}={value}")
    if cfg.pca_jitter < 0:
        raise UserError(f"augment pca_jitter is a standard deviation and must be >= 0. Received: pca_jitter={cfg.pca_jitter}")


def pca_stats(images: np.ndarray, max_pixels: int = 1_000_000, seed: int = 0) -> PcaStats:
    """Eigenvalues and eigenvectors of the channel covariance of `images` ([0, 255]) scaled to [0, 1]."""
    pixels = np.asarray(images).reshape(-1, np.shape(images)[-1])
    if len(pixels) > max_pixels:  # a sample is enough for a 3x3 covariance
        pixels = pixels[np.random.default_rng(seed).choice(len(pixels), max_pixels, replace=False)]
    cov = np.atleast_2d(np.cov(pixels.astype(np.float64) / 255.0, rowvar=False))
    eigvals, eigvecs = np.linalg.eigh(cov)
    order = np.argsort(eigvals)[::-1]
    return np.clip(eigvals[order], 0, None).astype(np.float32), eigvecs[:, order].astype(np.float32)


def random_flip(images, seed, axis: int):
    """Flip each image along `axis` (2: left-right, 1: up-down) with probability 1/2."""
    import tensorflow as tf

    flip = tf.random.stateless_uniform(tf.shape(images)[:1], seed) < 0.5
    return tf.where(flip[:, None, None, None], tf.reverse(images, [axis]), images)


def random_crop(images, seed, fraction: float):
    """Crop a random window with sides (1 - fraction) of the image's, and resize it back (bilinear)."""
    import tensorflow as tf

    height, width = images.shape[1], images.shape[2]
    batch = tf.shape(images)[0]
    crop_h, crop_w = max(1, round((1 - fraction) * height)), max(1, round((1 - fraction) * width))
    seed_y, seed_x = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    top = tf.random.stateless_uniform([batch], seed_y, 0, height - crop_h + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([batch], seed_x, 0, width - crop_w + 1, dtype=tf.int32)
    # crop_and_resize's boxes are in units of (size - 1): box corners land on pixel centres.
    top, left = tf.cast(top, tf.float32), tf.cast(left, tf.float32)
    sy, sx = float(max(height - 1, 1)), float(max(width - 1, 1))
    boxes = tf.stack([top / sy, left / sx, (top + crop_h - 1) / sy, (left + crop_w - 1) / sx], axis=1)
    return tf.image.crop_and_resize(images, boxes, tf.range(batch), [height, width], method="bilinear")


def random_translate(images, seed, fraction: float):
    """Shift each image by whole pixels, up to `fraction` of its height/width, filling with zeros."""
    import tensorflow as tf

    height, width = images.shape[1], images.shape[2]
    batch = tf.shape(images)[0]
    max_dy, max_dx = int(fraction * height), int(fraction * width)
    seed_y, seed_x = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    dy = tf.random.stateless_uniform([batch], seed_y, -max_dy, max_dy + 1, dtype=tf.int32)
    dx = tf.random.stateless_uniform([batch], seed_x, -max_dx, max_dx + 1, dtype=tf.int32)
    dy, dx = tf.cast(dy, tf.float32), tf.cast(dx, tf.float32)
    ones, zeros = tf.ones_like(dx), tf.zeros_like(dx)
    # Each row maps an output pixel (x, y) to the input pixel (x - dx, y - dy).
    transforms = tf.stack([ones, zeros, -dx, zeros, ones, -dy, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=[height, width], fill_value=0.0,
        interpolation="NEAREST", fill_mode="CONSTANT")


def pca_jitter(images, seed, std: float, eigvals: np.ndarray, eigvecs: np.ndarray):
    """Add `eigvecs @ (alpha * eigvals)` (x 255: the stats are in [0, 1] units) to every pixel, per image."""
    import tensorflow as tf

    channels = images.shape[-1]
    alpha = tf.random.stateless_normal([tf.shape(images)[0], channels], seed, stddev=std)
    offset = tf.matmul(alpha * eigvals, tf.constant(eigvecs), transpose_b=True) * 255.0
    return tf.clip_by_value(images + offset[:, None, None, :], 0.0, 255.0)


def augment_batch(images, seed, cfg: AugmentConfig, pca: Optional[PcaStats] = None):
    """All the enabled ops of `cfg`, each with its own seed derived from `seed` (shape (2,))."""
    import tensorflow as tf

    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 5))
    if cfg.crop:
        images = random_crop(images, seeds[0], cfg.crop)
    if cfg.translate:
        images = random_translate(images, seeds[1], cfg.translate)
    if cfg.hflip:
        images = random_flip(images, seeds[2], axis=2)
    if cfg.vflip:
        images = random_flip(images, seeds[3], axis=1)
    if cfg.pca_jitter and pca is not None:
        images = pca_jitter(images, seeds[4], cfg.pca_jitter, *pca)
    return images


def augment_dataset(dataset, cfg: AugmentConfig, seed: int, pca: Optional[PcaStats] = None):
    """Augment the images of a batched (images, labels) dataset, with fresh per-batch seeds each epoch."""
    import tensorflow as tf

    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def apply(batch, batch_seed):
        images, labels = batch
        return augment_batch(images, batch_seed, cfg, pca), labels

    return tf.data.Dataset.zip((dataset, seeds)).map(apply, num_parallel_calls=tf.data.AUTOTUNE)
