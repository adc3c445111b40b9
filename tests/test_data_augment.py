"""Augmentation ops against numpy on small arrays: each output must be an exact, checkable transform."""
import numpy as np
import pytest
import tensorflow as tf

from kerascnn.config import AugmentConfig
from kerascnn.data import augment


def images(batch=32, h=6, w=7, c=3, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch, h, w, c)).astype(np.float32)


SEED = tf.constant([3, 4], tf.int64)


@pytest.mark.parametrize("axis", [1, 2])
def test_random_flip_is_np_flip_on_about_half_the_images(axis):
    x = images(64)
    out = augment.random_flip(tf.constant(x), SEED, axis).numpy()
    # Resampled at exact pixel centres: equal up to float rounding of the sample positions.
    flipped = [np.allclose(o, np.flip(i, axis=axis - 1), atol=1e-3) for o, i in zip(out, x)]
    kept = [np.allclose(o, i, atol=1e-3) for o, i in zip(out, x)]
    assert all(f != k for f, k in zip(flipped, kept))  # each image is exactly one of the two
    assert 16 <= sum(flipped) <= 48
    np.testing.assert_array_equal(out, augment.random_flip(tf.constant(x), SEED, axis).numpy())  # seeded


def test_random_translate_is_a_zero_filled_integer_shift():
    x = images(40, 8, 8) + 1.0  # no zeros inside, so the fill is visible (and must be exactly 0)
    out = augment.random_translate(tf.constant(x), SEED, 0.25).numpy()
    shifts = set()
    for o, i in zip(out, x):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if np.allclose(o, shift(i, dy, dx), atol=1e-3)]
        assert len(matches) == 1
        shifts.add(matches[0])
    assert len(shifts) > 5  # random per image, within +-25% of 8 pixels


def shift(image, dy, dx):
    out = np.zeros_like(image)
    h, w = image.shape[:2]
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = image[max(-dy, 0):h - max(dy, 0),
                                                                      max(-dx, 0):w - max(dx, 0)]
    return out


def test_random_crop_of_a_linear_ramp_is_a_shallower_ramp():
    """Bilinear resampling maps a linear ramp to a linear ramp: a crop keeping 5 of 9 pixels, resized back
    to 9, rises 4/8 as fast, and starts somewhere in the first 4 pixels."""
    h = w = 9
    ramp = np.tile((np.arange(w, dtype=np.float32) * 10)[None, :, None], (h, 1, 1))
    x = np.repeat(ramp[None], 50, axis=0)
    out = augment.random_crop(tf.constant(x), SEED, fraction=4 / 9).numpy()
    np.testing.assert_allclose(np.diff(out[..., 0], axis=2), 10 * 4 / 8, atol=1e-4)
    starts = out[:, 0, 0, 0] / 10
    np.testing.assert_allclose(starts, np.round(starts), atol=1e-4)  # whole-pixel offsets
    assert set(np.round(starts).astype(int)) == {0, 1, 2, 3, 4}


def test_pca_stats_and_jitter_move_colours_along_the_principal_axes():
    # Training pixels that vary only along one colour direction: a rank-1 covariance.
    direction = np.array([0.6, 0.8, 0.0], np.float32)
    t = np.random.default_rng(1).uniform(0, 200, (20, 4, 4, 1)).astype(np.float32)
    train = 20 + t * direction
    eigvals, eigvecs = augment.pca_stats(train)
    assert eigvals[0] > 0 and np.allclose(eigvals[1:], 0, atol=1e-6)
    np.testing.assert_allclose(np.abs(eigvecs[:, 0]), direction, atol=1e-5)
    np.testing.assert_allclose(eigvals[0], np.var(t / 255.0, ddof=1), rtol=1e-4)

    x = np.full((400, 5, 5, 3), 128.0, np.float32)
    out = augment.pca_jitter(tf.constant(x), SEED, 0.1, eigvals, eigvecs).numpy()
    offsets = out - x
    np.testing.assert_allclose(offsets, offsets[:, :1, :1, :].repeat(5, 1).repeat(5, 2), atol=1e-4)  # per image
    per_image = offsets[:, 0, 0, :]
    along = per_image @ eigvecs[:, 0]
    np.testing.assert_allclose(per_image, along[:, None] * eigvecs[:, 0], atol=1e-3)  # in the span
    # alpha ~ N(0, 0.1), times the eigenvalue, in [0, 1] units -> x 255 for pixels.
    np.testing.assert_allclose(along.std(), 0.1 * eigvals[0] * 255, rtol=0.15)


def test_pca_jitter_on_grayscale_is_a_brightness_shift():
    gray = np.random.default_rng(2).uniform(0, 255, (10, 4, 4, 1)).astype(np.float32)
    eigvals, eigvecs = augment.pca_stats(gray)
    assert eigvals.shape == (1,) and eigvecs.shape == (1, 1)
    out = augment.pca_jitter(tf.constant(np.full((8, 3, 3, 1), 100.0, np.float32)), SEED, 0.5, eigvals, eigvecs)
    assert len(np.unique(out.numpy()[:, 0, 0, 0])) == 8


def test_augment_batch_seeds_and_disabled_ops():
    x = tf.constant(images(8))
    off = augment.augment_batch(x, SEED, AugmentConfig())
    np.testing.assert_array_equal(off.numpy(), x.numpy())
    cfg = AugmentConfig(hflip=True, vflip=True, crop=0.2, translate=0.1)
    a = augment.augment_batch(x, SEED, cfg).numpy()
    np.testing.assert_array_equal(a, augment.augment_batch(x, SEED, cfg).numpy())
    assert not np.array_equal(a, augment.augment_batch(x, SEED + 1, cfg).numpy())


def test_augment_dataset_draws_new_seeds_each_epoch_repeatably():
    x = images(16)
    ds = tf.data.Dataset.from_tensor_slices((x, np.zeros(16))).batch(4)
    cfg = AugmentConfig(translate=0.3)

    def two_epochs(seed):
        out = augment.augment_dataset(ds, cfg, seed)
        return [np.concatenate([b.numpy() for b, _ in out]) for _ in range(2)]

    first, second = two_epochs(7)
    assert not np.array_equal(first, second)
    again = two_epochs(7)
    np.testing.assert_array_equal(first, again[0])
    np.testing.assert_array_equal(second, again[1])


def test_combined_ops_resample_once_and_stay_in_range():
    x = np.full((16, 10, 12, 3), 200.0, np.float32)
    cfg = AugmentConfig(hflip=True, vflip=True, crop=0.3)  # no translation: nothing is filled in
    out = augment.augment_batch(tf.constant(x.astype(np.uint8)), SEED, cfg).numpy()
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, 200.0, atol=1e-2)  # a constant image stays constant, borders too


def test_resample_image_flips_and_shifts_the_resized_image():
    """The streamed path: the same ops, on one image as it is resized (here to its own size)."""
    x = images(1, 6, 7)[0] + 1.0
    flips = {"none": 0, "flip": 0}
    for i in range(40):
        out = augment.resample_image(tf.constant(x), tf.constant([i, 1], tf.int64), (6, 7),
                                     AugmentConfig(hflip=True)).numpy()
        flips["flip" if np.allclose(out, x[:, ::-1], atol=1e-4) else "none"] += 1
        if not np.allclose(out, x[:, ::-1], atol=1e-4):
            np.testing.assert_allclose(out, x, atol=1e-4)
    assert flips["flip"] > 5 and flips["none"] > 5
    out = augment.resample_image(tf.constant(x), SEED, (6, 7), AugmentConfig(translate=0.34)).numpy()
    assert any(np.array_equal(out, shift(x, dy, dx)) for dy in range(-2, 3) for dx in range(-2, 3))


def test_resample_image_crops_a_whole_pixel_window_then_resizes():
    ramp = np.tile((np.arange(40, dtype=np.float32) * 2)[None, :, None], (30, 1, 3))
    starts = set()
    for i in range(30):
        out = augment.resample_image(tf.constant(ramp), tf.constant([i, 2], tf.int64), (15, 16),
                                     AugmentConfig(crop=0.5)).numpy()
        assert out.shape == (15, 16, 3)
        # A 20-pixel window resized to 16 (half-pixel bilinear): slope 2 * 20 / 16 inside.
        np.testing.assert_allclose(np.diff(out[0, 1:-1, 0]), 2 * 20 / 16, atol=1e-3)
        starts.add(round(float(out[0, 1, 0] - 2 * (1.5 * 20 / 16 - 0.5)) / 2))
    assert starts <= set(range(21)) and len(starts) > 5  # random whole-pixel offsets 0..20
