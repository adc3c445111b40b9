"""kerascnn.synthesis.ascent: the gradient ascent DeepDream and `visualize maximize` share, checked on
linear objectives, whose gradient is known by hand (numpy) and whose optimum in the pixel box is a
corner: 255 where the weight is positive, 0 where it is negative."""
from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from kerascnn.synthesis.ascent import Gradient, ascend  # noqa: E402

H, W = 12, 16


def weights(shape, seed=0) -> np.ndarray:
    """Weights bounded away from 0, of both signs (every pixel has a definite optimum)."""
    rng = np.random.default_rng(seed)
    return (rng.choice([-1.0, 1.0], shape) * rng.uniform(0.5, 2.0, shape)).astype(np.float32)


def linear(w: np.ndarray):
    """sum(w * x): its gradient with respect to x is w everywhere."""
    return lambda x: tf.reduce_sum(tf.constant(w) * x)


def test_steps_follow_the_normalised_gradient_and_reach_the_box_corner():
    w = weights((H, W, 3))
    start = np.random.default_rng(1).uniform(100, 150, (H, W, 3)).astype(np.float32)
    values = []
    out = ascend(linear(w), start, steps=3, step_size=2.0, on_step=values.append)
    ref = start.copy()
    for _ in range(3):  # by hand: the gradient is w, divided by its mean absolute value
        ref = np.clip(ref + 2.0 * w / (np.abs(w).mean() + 1e-8), 0, 255)
    np.testing.assert_allclose(out, ref, rtol=1e-6)
    np.testing.assert_allclose(values[0], float((w * start).sum()), rtol=1e-5)
    assert all(b > a for a, b in zip(values, values[1:]))  # a linear objective rises every step
    best = ascend(linear(w), start, steps=40, step_size=10.0)  # 40 steps of >= 5 levels cross the box
    np.testing.assert_array_equal(best, np.where(w > 0, 255.0, 0.0))


def test_each_image_of_a_batch_is_normalised_on_its_own():
    w = weights((2, H, W, 3))
    w[1] *= 100.0  # a hundred times steeper: the same step anyway
    start = np.full((2, H, W, 3), 128.0, np.float32)
    out = ascend(linear(w), start, steps=2, step_size=3.0, normalize="std")
    ref = start.copy()
    for _ in range(2):
        ref = np.clip(ref + 3.0 * w / (w.std(axis=(1, 2, 3), keepdims=True) + 1e-8), 0, 255)
    np.testing.assert_allclose(out, ref, rtol=1e-5)
    np.testing.assert_allclose(np.abs(out[1] - 128.0).mean(), np.abs(out[0] - 128.0).mean() * np.abs(
        w[1]).mean() / w[1].std() / (np.abs(w[0]).mean() / w[0].std()), rtol=1e-4)


def test_jitter_rolls_the_image_and_the_gradient_back():
    """sum(w * roll(x, s)) has the gradient roll(w, -s): each step moves by w rolled back."""
    w = weights((H, W, 3), seed=2)
    start = np.full((H, W, 3), 128.0, np.float32)
    out = ascend(linear(w), start, steps=4, step_size=1.5, jitter=3, rng=np.random.default_rng(7))
    rng, ref = np.random.default_rng(7), start.copy()
    for _ in range(4):
        dy, dx = rng.integers(-3, 4, size=2)
        g = np.roll(w, (-dy, -dx), axis=(0, 1))
        ref = np.clip(ref + 1.5 * g / (np.abs(g).mean() + 1e-8), 0, 255)
    np.testing.assert_allclose(out, ref, rtol=1e-6)
    assert not np.allclose(out, ascend(linear(w), start, steps=4, step_size=1.5))  # the shifts did act


def test_tiles_add_up_to_the_whole_image():
    """A mean over positions: each tile's share of the image weighs its mean, so tiled = whole."""
    c = np.array([0.5, -1.0, 2.0], np.float32)
    objective = Gradient(lambda x: tf.reduce_mean(x * tf.constant(c)))  # per pixel: c / (H * W)
    start = np.random.default_rng(3).uniform(50, 200, (H, W, 3)).astype(np.float32)
    values = []
    tiled = ascend(objective, start, steps=3, step_size=4.0, tile=5, rng=np.random.default_rng(0),
                   on_step=values.append)
    ref = start.copy()
    for _ in range(3):
        ref = np.clip(ref + 4.0 * c / np.abs(c).mean(), 0, 255)
    np.testing.assert_allclose(tiled, ref, rtol=1e-5)
    np.testing.assert_allclose(values[0], float((start * c).mean()), rtol=1e-4)


def test_octaves_ascend_each_size_smallest_first_and_end_at_the_optimum():
    w = weights((H, W, 3), seed=4)
    sizes = []

    def objective(x):  # at every size: the weights resized to it
        return tf.reduce_sum(tf.image.resize(tf.constant(w)[None], tf.shape(x)[1:3], method="nearest") * x)

    def record(x, i):
        sizes.append(x.shape[1:3])
        return x

    out = ascend(objective, np.full((H, W, 3), 128.0, np.float32), steps=30, step_size=25.0,  # >= 10 levels a step
                 octaves=[(6, 8), (9, 12), (H, W)], regularize=record)
    assert sizes == [(6, 8)] * 30 + [(9, 12)] * 30 + [(H, W)] * 30
    np.testing.assert_array_equal(out, np.where(w > 0, 255.0, 0.0))
    with pytest.raises(ValueError, match="image's size"):
        ascend(objective, np.zeros((H, W, 3), np.float32), steps=1, step_size=1.0, octaves=[(6, 8)])
    with pytest.raises(ValueError, match="normalize"):
        ascend(objective, np.zeros((H, W, 3), np.float32), steps=1, step_size=1.0, normalize="l2")
