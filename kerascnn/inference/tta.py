"""Test-time augmentation: the views of each test image whose predictions `evaluate --tta` averages.

The papers' evaluation protocols, for a network with a fixed input of h x w:

* `flip`: the image and its mirror.
* `10crop` (Krizhevsky et al. 2012): the image at the training scale (h / 0.875: 256 for a 224 input),
  its four corner crops and its centre crop of h x w, and the mirrors of those five.
* `multiscale` (after Simonyan & Zisserman 2014's multi-scale evaluation): centre crops of h x w from
  the image at three scales (1, 256/224 and 1.3 times the input) and their mirrors.

Images arrive at `base_shape` (the pipeline resizes them once); `views` cuts the batch into views.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

from kerascnn.config import TTA_MODES
CROP_FRACTION = 224 / 256  # the training crop of AlexNet / VGG: 224 of 256
SCALES = (1.0, 256 / 224, 1.3)  # multiscale: image sides relative to the input


def base_shape(mode: str, input_shape: Sequence[int]) -> Tuple[int, int, int]:
    """The size to load test images at for `mode` (the largest any view needs)."""
    h, w, c = (int(s) for s in input_shape)
    if mode == "10crop":
        return round(h / CROP_FRACTION), round(w / CROP_FRACTION), c
    if mode == "multiscale":
        return round(h * max(SCALES)), round(w * max(SCALES)), c
    return h, w, c


def view_count(mode: str) -> int:
    return {"none": 1, "flip": 2, "10crop": 10, "multiscale": 2 * len(SCALES)}[mode]


def views(batch, mode: str, input_hw: Tuple[int, int]) -> List:
    """The views (each a (B, h, w, C) tensor) of a batch loaded at `base_shape(mode, ...)`."""
    import tensorflow as tf

    from kerascnn.data.images import resize

    h, w = input_hw
    flip = tf.image.flip_left_right
    if mode == "none":
        return [batch]
    if mode == "flip":
        return [batch, flip(batch)]
    if mode == "10crop":
        big_h, big_w = int(batch.shape[1]), int(batch.shape[2])
        corners = [(0, 0), (0, big_w - w), (big_h - h, 0), (big_h - h, big_w - w),
                   ((big_h - h) // 2, (big_w - w) // 2)]
        crops = [tf.image.crop_to_bounding_box(batch, top, left, h, w) for top, left in corners]
        return crops + [flip(c) for c in crops]
    if mode == "multiscale":
        out = []
        for scale in SCALES:
            size = (round(h * scale), round(w * scale))
            scaled = batch if tuple(batch.shape[1:3]) == size else resize(batch, size)
            crop = tf.image.crop_to_bounding_box(scaled, (size[0] - h) // 2, (size[1] - w) // 2, h, w)
            out += [crop, flip(crop)]
        return out
    raise ValueError(f"tta must be one of {', '.join(TTA_MODES)}. Received: {mode!r}")
