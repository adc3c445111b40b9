"""Preprocess / deprocess: against keras.applications and numpy, grayscale kept grayscale, exact inverse."""
import numpy as np
import pytest

from kerascnn.models.preprocessing import MODES, Preprocess, channel_stats, deprocess, preprocess

RNG = np.random.default_rng(0)
RGB = RNG.uniform(0, 255, (2, 4, 5, 3)).astype(np.float32)
GRAY = RNG.uniform(0, 255, (2, 4, 5, 1)).astype(np.float32)


def _run(x, mode):
    """The layer's output, computed eagerly (a model.predict per case costs a second of tracing)."""
    return np.asarray(Preprocess(mode)(x))


def test_rgb_matches_keras_applications():
    from keras.applications import imagenet_utils, vgg16

    # keras' numpy path edits its argument in place: give it copies.
    references = {
        "caffe": vgg16.preprocess_input(RGB.copy()),
        "torch": imagenet_utils.preprocess_input(RGB.copy(), mode="torch"),
        "tf": imagenet_utils.preprocess_input(RGB.copy(), mode="tf"),
    }
    for mode, expected in references.items():
        np.testing.assert_allclose(_run(RGB, mode), expected, rtol=1e-5, atol=1e-4, err_msg=mode)


def test_grayscale_uses_mean_statistics():
    expected = {
        "caffe": GRAY - np.mean([103.939, 116.779, 123.68]),
        "torch": (GRAY / 255.0 - np.mean([0.485, 0.456, 0.406])) / np.mean([0.229, 0.224, 0.225]),
        "tf": GRAY / 127.5 - 1.0,
        "scale": GRAY / 255.0,
        "none": GRAY,
    }
    for mode, reference in expected.items():
        np.testing.assert_allclose(_run(GRAY, mode), reference, rtol=1e-5, atol=1e-4, err_msg=mode)


def test_output_shape_is_declared_shape_and_deprocess_inverts():
    import keras

    # One test, not 10 parametrized ones: conftest's per-test clear_session costs ~0.8 s each.
    for mode in sorted(MODES):
        for x in (GRAY, RGB):
            channels = x.shape[-1]
            layer = Preprocess(mode)
            out = np.asarray(layer(x))
            declared = layer.compute_output_shape((None, 4, 5, channels))
            assert out.shape[1:] == tuple(declared[1:]) == x.shape[1:], (mode, channels)
            assert tuple(layer(keras.Input((4, 5, channels))).shape) == tuple(declared)
            np.testing.assert_allclose(deprocess(out, mode), x, rtol=1e-5, atol=1e-3, err_msg=f"{mode} {channels}")


def test_tiled_gray_preprocesses_like_gray_on_average():
    # The grayscale statistics are the channel averages: a gray image tiled to RGB, preprocessed,
    # and averaged over its channels gives the grayscale result (torch mode only up to the std spread).
    tiled = np.repeat(GRAY, 3, axis=-1)
    rgb = np.asarray(preprocess(tiled, "caffe")).mean(axis=-1, keepdims=True)
    np.testing.assert_allclose(rgb, np.asarray(preprocess(GRAY, "caffe")), atol=1e-3)


def test_channel_stats_rejects_other_channel_counts():
    mean, std = channel_stats("torch", 1)
    assert mean.shape == std.shape == (1,)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        channel_stats("caffe", 4)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        _run(RNG.uniform(0, 255, (1, 4, 5, 2)).astype(np.float32), "torch")
