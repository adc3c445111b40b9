"""Colour for the apps: luminance and chrominance (YUV, BT.601, as tf.image.rgb_to_yuv), and keeping
a photo's colours under a picture made from it.

Gatys, Ecker, Bethge, Hertzmann & Shechtman, "Controlling Perceptual Factors in Neural Style
Transfer" (CVPR 2017), section 5: to transfer a style without its colours, transfer on luminance only
(the style's luminance first matched to the photo's mean and spread, Hertzmann et al.'s luminance
remapping), then put the photo's chrominance back. DeepDream uses the last step alone.
All functions take and return float pixels in [0, 255], (height, width, 3), numpy.
"""
from __future__ import annotations

import numpy as np

# RGB in [0, 1] -> YUV, the matrix of tf.image.rgb_to_yuv; its inverse goes back.
RGB_TO_YUV = np.array([[0.299, -0.14714119, 0.61497538],
                       [0.587, -0.28886916, -0.51496512],
                       [0.114, 0.43601035, -0.10001026]], np.float64)
YUV_TO_RGB = np.linalg.inv(RGB_TO_YUV)


def rgb_to_yuv(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) pixels in [0, 255] -> YUV with Y in [0, 1]."""
    return (np.asarray(rgb, np.float64) / 255.0) @ RGB_TO_YUV


def yuv_to_rgb(yuv: np.ndarray) -> np.ndarray:
    """YUV -> float32 pixels in [0, 255] (clipped)."""
    return np.clip(np.asarray(yuv, np.float64) @ YUV_TO_RGB * 255.0, 0.0, 255.0).astype(np.float32)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """The luminance, as a grey picture: (height, width, 3) with Y * 255 in every channel."""
    y = rgb_to_yuv(rgb)[..., :1] * 255.0
    return np.repeat(y, 3, axis=-1).astype(np.float32)


def match_luminance(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """`source`'s luminance picture, its mean and standard deviation moved to `target`'s
    (luminance remapping: a dark style painted onto a bright photo keeps the photo's brightness)."""
    s, t = luminance(source)[..., 0], luminance(target)[..., 0]
    y = (s - s.mean()) * (t.std() / (s.std() + 1e-6)) + t.mean()
    return np.repeat(np.clip(y, 0.0, 255.0)[..., None], 3, axis=-1).astype(np.float32)


def preserve_colors(picture: np.ndarray, photo: np.ndarray) -> np.ndarray:
    """`picture`'s luminance with `photo`'s chrominance (same size): the picture in the photo's colours."""
    yuv = rgb_to_yuv(photo)
    yuv[..., 0] = rgb_to_yuv(picture)[..., 0]
    return yuv_to_rgb(yuv)


__all__ = ["rgb_to_yuv", "yuv_to_rgb", "luminance", "match_luminance", "preserve_colors"]
