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
        raise UserError(f"augment pca_jitter is a standard deviation and must be >= 0. "
                        f"Received: pca_jitter={cfg.pca_jitter}")


def pca_stats(images: np.ndarray, max_pixels: int = 1_000_000, seed: int = 0) -> PcaStats:
    """Eigenvalues and eigenvectors of the channel covariance of `images` ([0, 255]) scaled to [0, 1]."""
    pixels = np.asarray(images).reshape(-1, np.shape(images)[-1])
    if len(pixels) > max_pixels:  # a sample is enough for a 3x3 covariance
        pixels = pixels[np.random.default_rng(seed).choice(len(pixels), max_pixels, replace=False)]
    cov = np.atleast_2d(np.cov(pixels.astype(np.float64) / 255.0, rowvar=False))
    eigvals, eigvecs = np.linalg.eigh(cov)
    order = np.argsort(eigvals)[::-1]
    return np.clip(eigvals[order], 0, None).astype(np.float32), eigvecs[:, order].astype(np.float32)


def has_geometry(cfg: AugmentConfig) -> bool:
    return bool(cfg.crop or cfg.translate or cfg.hflip or cfg.vflip)


def sample_boxes(seed, batch, height: int, width: int, cfg: AugmentConfig):
    """Per-image sampling boxes (top, left, bottom, right), each (batch,), in output pixel units.

    A box's corners are the pixel centres that the output's corner pixels sample: the full image
    is (0, 0, height - 1, width - 1). A crop shrinks the box to (1 - crop) of each side at a random
    whole-pixel offset, a translation by (dy, dx) output pixels moves it the other way, and a flip
    swaps two corners. Resampling the box back to full size applies all of them in one pass.
    """
    import tensorflow as tf

    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 6))

    def uniform_int(seed, low, high):  # inclusive bounds, one per image
        return tf.cast(tf.random.stateless_uniform([batch], seed, low, high + 1, dtype=tf.int32), tf.float32)

    crop_h, crop_w = max(1, round((1 - cfg.crop) * height)), max(1, round((1 - cfg.crop) * width))
    top, left = uniform_int(seeds[0], 0, height - crop_h), uniform_int(seeds[1], 0, width - crop_w)
    bottom, right = top + (crop_h - 1), left + (crop_w - 1)
    if cfg.translate:
        max_dy, max_dx = int(cfg.translate * height), int(cfg.translate * width)
        dy = uniform_int(seeds[2], -max_dy, max_dy) * ((crop_h - 1) / max(height - 1, 1))
        dx = uniform_int(seeds[3], -max_dx, max_dx) * ((crop_w - 1) / max(width - 1, 1))
        top, bottom, left, right = top - dy, bottom - dy, left - dx, right - dx
    if cfg.hflip:
        flip = tf.random.stateless_uniform([batch], seeds[4]) < 0.5
        left, right = tf.where(flip, right, left), tf.where(flip, left, right)
    if cfg.vflip:
        flip = tf.random.stateless_uniform([batch], seeds[5]) < 0.5
        top, bottom = tf.where(flip, bottom, top), tf.where(flip, top, bottom)
    return top, left, bottom, right


def geometric(images, seed, cfg: AugmentConfig):
    """The random crop, translation and flips of `cfg` on a batch, in ONE bilinear resampling pass.

    One `crop_and_resize` costs about what a single flip costs done on its own. The batch is
    zero-padded first, so that translated-in pixels are exactly 0 and float rounding at the image
    border never tips a sample outside the image (crop_and_resize would fill it with 0).
    """
    import tensorflow as tf

    images = tf.cast(images, tf.float32)
    height, width = images.shape[1], images.shape[2]
    batch = tf.shape(images)[0]
    top, left, bottom, right = sample_boxes(seed, batch, height, width, cfg)
    pad_y, pad_x = int(cfg.translate * height) + 1, int(cfg.translate * width) + 1
    padded = tf.pad(images, [[0, 0], [pad_y, pad_y], [pad_x, pad_x], [0, 0]])
    # crop_and_resize's boxes are fractions of (size - 1) of the padded image.
    span_y, span_x = float(height + 2 * pad_y - 1), float(width + 2 * pad_x - 1)
    boxes = tf.stack([(top + pad_y) / span_y, (left + pad_x) / span_x,
                      (bottom + pad_y) / span_y, (right + pad_x) / span_x], axis=1)
    return tf.image.crop_and_resize(padded, boxes, tf.range(batch), [height, width], method="bilinear")


def resample_image(image, seed, size: Tuple[int, int], cfg: AugmentConfig):
    """One decoded image of any size -> float32 `size` with `cfg`'s random geometry, as it is resized.

    For streamed splits, where every image is resized anyway: the random crop is a slice of the
    decoded image before the resize (a whole-pixel window, (1 - crop) of each side), and flips and
    translation act on the small resized image. That costs little more than the plain resize,
    where a second resampling of the batch would cost as much again (measured on 500x375 JPEGs).
    """
    import tensorflow as tf

    from kerascnn.data.images import resize

    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 6))
    if cfg.crop:
        dims = tf.shape(image)
        crop_h = tf.maximum(1, tf.cast(tf.round((1 - cfg.crop) * tf.cast(dims[0], tf.float32)), tf.int32))
        crop_w = tf.maximum(1, tf.cast(tf.round((1 - cfg.crop) * tf.cast(dims[1], tf.float32)), tf.int32))
        top = tf.random.stateless_uniform([], seeds[0], 0, dims[0] - crop_h + 1, dtype=tf.int32)
        left = tf.random.stateless_uniform([], seeds[1], 0, dims[1] - crop_w + 1, dtype=tf.int32)
        image = image[top:top + crop_h, left:left + crop_w]
    image = resize(tf.cast(image, tf.float32), size)
    for axis, enabled, flip_seed in ((1, cfg.hflip, seeds[2]), (0, cfg.vflip, seeds[3])):
        if enabled:
            flip = tf.random.stateless_uniform([], flip_seed) < 0.5
            image = tf.cond(flip, lambda: tf.reverse(image, [axis]), lambda: image)
    if cfg.translate:
        max_dy, max_dx = int(cfg.translate * size[0]), int(cfg.translate * size[1])
        dy = tf.random.stateless_uniform([], seeds[4], -max_dy, max_dy + 1, dtype=tf.int32)
        dx = tf.random.stateless_uniform([], seeds[5], -max_dx, max_dx + 1, dtype=tf.int32)
        padded = tf.pad(image, [[max_dy, max_dy], [max_dx, max_dx], [0, 0]])
        image = padded[max_dy - dy:max_dy - dy + size[0], max_dx - dx:max_dx - dx + size[1]]
    image.set_shape([size[0], size[1], None])
    return image


def random_flip(images, seed, axis: int):
    """Flip each image along `axis` (2: left-right, 1: up-down) with probability 1/2."""
    return geometric(images, seed, AugmentConfig(hflip=axis == 2, vflip=axis == 1))


def random_crop(images, seed, fraction: float):
    """Crop a random window with sides (1 - fraction) of the image's, and resize it back (bilinear)."""
    return geometric(images, seed, AugmentConfig(crop=fraction))


def random_translate(images, seed, fraction: float):
    """Shift each image by whole pixels, up to `fraction` of its height/width, filling with zeros."""
    return geometric(images, seed, AugmentConfig(translate=fraction))


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

    geometry, colour = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    if has_geometry(cfg):
        images = geometric(images, geometry, cfg)
    else:
        images = tf.cast(images, tf.float32)
    if cfg.pca_jitter and pca is not None:
        images = pca_jitter(images, colour, cfg.pca_jitter, *pca)
    return images


def augment_dataset(dataset, cfg: AugmentConfig, seed: int, pca: Optional[PcaStats] = None):
    """Augment the images of a batched (images, labels) dataset, with fresh per-batch seeds each epoch."""
    import tensorflow as tf

    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def apply(batch, batch_seed):
        images, labels = batch
        return augment_batch(images, batch_seed, cfg, pca), labels

    return tf.data.Dataset.zip((dataset, seeds)).map(apply, num_parallel_calls=tf.data.AUTOTUNE)
