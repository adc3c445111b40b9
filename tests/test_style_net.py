"""The multi-style transformation network (Dumoulin et al. 2017): its layers against numpy, its
shapes and layer names, `.keras` round trips and style selection / blending."""
import keras
import numpy as np
import pytest

from kerascnn.errors import SettingError
# importing kerascnn.models.layers registers the custom layers, before any load_model
from kerascnn.models.layers import ConditionalInstanceNormalization, ReflectionPadding2D, StyleWeights
from kerascnn.models.style_net import (cin_layers, pad_to_multiple, style_names_of, style_network,
                                       style_vector)

NAMES = ["starry", "scream", "wave"]
SMALL = dict(filters=(4, 8, 16), residual_blocks=1)


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _cin_numpy(x, weights, gamma_table, beta_table, epsilon=1e-5):
    """Instance norm over H, W per sample and channel, then the weight-mixed per-style affine."""
    x = x.astype("float64")
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = ((x - mean) ** 2).mean(axis=(1, 2), keepdims=True)
    normalized = (x - mean) / np.sqrt(var + epsilon)
    out = np.empty_like(normalized)
    for b, row in enumerate(weights.astype("float64")):
        gamma = sum(w * g for w, g in zip(row, gamma_table))
        beta = sum(w * t for w, t in zip(row, beta_table))
        out[b] = normalized[b] * gamma + beta
    return out


def _images(h, w, batch=1, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch, h, w, 3)).astype("float32")


def _randomize_tables(model, seed=0):
    """Distinct gamma/beta per style in every CIN layer (they start as ones/zeros for all)."""
    rng = np.random.default_rng(seed)
    for layer in cin_layers(model):
        shape = tuple(layer.gamma_table.shape)
        layer.gamma_table.assign((1.0 + 0.5 * rng.normal(size=shape)).astype("float32"))
        layer.beta_table.assign((0.5 * rng.normal(size=shape)).astype("float32"))


# ----------------------------------------------------------------------------------------------
# Layers


def test_cin_matches_numpy_for_one_hot_and_mixed_rows():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (2, 5, 6, 4)).astype("float32")
    weights = np.array([[0, 1, 0], [0.5, 0, 0.5]], "float32")
    layer = ConditionalInstanceNormalization(3)
    layer.build([x.shape, weights.shape])
    gamma = rng.normal(1.0, 0.5, (3, 4)).astype("float32")
    beta = rng.normal(0.0, 1.0, (3, 4)).astype("float32")
    layer.gamma_table.assign(gamma)
    layer.beta_table.assign(beta)
    out = _np(layer([x, weights]))
    np.testing.assert_allclose(out, _cin_numpy(x, weights, gamma, beta), rtol=1e-4, atol=1e-4)
    # the one-hot row uses style 1's parameters alone
    norm = (x[0] - x[0].mean(axis=(0, 1))) / np.sqrt(x[0].var(axis=(0, 1)) + 1e-5)
    np.testing.assert_allclose(out[0], norm * gamma[1] + beta[1], rtol=1e-4, atol=1e-4)
    assert layer.compute_output_shape([x.shape, weights.shape]) == x.shape
    assert layer.count_params() == 2 * 3 * 4


def test_cin_initial_tables_are_plain_instance_norm_and_float32_under_mixed_precision():
    x = np.random.default_rng(1).normal(10.0, 3.0, (2, 8, 8, 5)).astype("float32")
    weights = np.array([[1, 0], [0.3, 0.7]], "float32")
    expected = _cin_numpy(x, weights, np.ones((2, 5)), np.zeros((2, 5)))
    np.testing.assert_allclose(_np(ConditionalInstanceNormalization(2)([x, weights])), expected,
                               rtol=1e-4, atol=1e-4)
    keras.mixed_precision.set_global_policy("mixed_float16")
    layer = ConditionalInstanceNormalization(2)
    out = layer([x, weights])
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    assert layer.gamma_table.dtype == "float32"
    np.testing.assert_allclose(_np(out).astype("float32"), expected, atol=2e-2)


def test_reflection_padding_matches_numpy():
    x = np.random.default_rng(2).normal(size=(2, 5, 6, 3)).astype("float32")
    for p in (1, 2, 4):
        layer = ReflectionPadding2D(p)
        out = _np(layer(x))
        np.testing.assert_array_equal(out, np.pad(x, [(0, 0), (p, p), (p, p), (0, 0)], mode="reflect"))
        assert layer.compute_output_shape(x.shape) == out.shape
    assert ReflectionPadding2D(4).compute_output_shape((None, None, 7, 3)) == (None, None, 15, 3)
    assert ReflectionPadding2D.from_config(ReflectionPadding2D(3).get_config()).padding == 3


def test_style_weights_normalise_rows_and_keep_names():
    layer = StyleWeights(["a", "b"])
    out = _np(layer(np.array([[1, 3], [0, 0], [2, 2], [0, 5]], "float32")))
    np.testing.assert_allclose(out, [[0.25, 0.75], [0, 0], [0.5, 0.5], [0, 1]], rtol=1e-6)
    assert StyleWeights.from_config(layer.get_config()).style_names == ["a", "b"]


# ----------------------------------------------------------------------------------------------
# The network


@pytest.mark.parametrize("size", [32, 36])
def test_output_shape_equals_input_and_pixels_in_range(size):
    model = style_network(NAMES, **SMALL)
    _randomize_tables(model)
    x = _images(size, size, batch=2)
    out = _np(model([x, np.stack([style_vector(NAMES, 0), style_vector(NAMES, {1: 1, 2: 1})])]))
    assert out.shape == x.shape
    assert out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 255.0
    assert out.std() > 1.0  # a real image, not a constant


def test_pad_to_multiple_then_crop_gives_the_original_size():
    image = _images(30, 34)[0]
    padded, (h, w) = pad_to_multiple(image)
    assert padded.shape == (32, 36, 3) and (h, w) == (30, 34)
    np.testing.assert_array_equal(padded, np.pad(image, [(0, 2), (0, 2), (0, 0)], mode="reflect"))
    model = style_network(NAMES, **SMALL)
    out = _np(model([padded[None], style_vector(NAMES, "wave")[None]]))[0, :h, :w]
    assert out.shape == image.shape
    # already a multiple: unchanged; batches pad their H, W axes
    same, size = pad_to_multiple(_images(8, 12)[0])
    assert same.shape == (8, 12, 3) and size == (8, 12)
    assert pad_to_multiple(_images(5, 7, batch=2), multiple=8)[0].shape == (2, 8, 8, 3)


def test_no_transposed_convolutions_or_lambdas_and_stable_names():
    model = style_network(NAMES, **SMALL)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert "Conv2DTranspose" not in kinds and "Lambda" not in kinds
    names = {layer.name for layer in model.layers}
    for expected in ("rescale", "style_weights", "conv1_pad", "conv1_conv", "conv1_cin", "conv3_relu",
                     "res1_pad1", "res1_conv1", "res1_cin1", "res1_relu", "res1_conv2", "res1_cin2",
                     "res1_add", "up1_upsample", "up1_conv", "up2_cin", "out_pad", "out_conv",
                     "out_cin", "out_sigmoid", "out_scale", "stylized"):
        assert expected in names, expected
    assert "res2_conv1" not in names  # residual_blocks=1
    assert len(cin_layers(model)) == 3 + 2 + 2 + 1
    assert model.get_layer("up1_upsample").interpolation == "nearest"
    assert model.get_layer("conv1_conv").kernel_size == (9, 9)
    assert model.get_layer("out_conv").filters == 3
    assert model.get_layer("conv2_conv").strides == (2, 2)
    assert [i.name for i in model.inputs] == ["image", "style"]


def test_residual_block_adds_its_branch_to_the_identity():
    # With the second CIN of res1 at gamma = beta = 0 the branch is 0, so the network must equal
    # one without residual blocks that has the same other weights.
    model = style_network(NAMES, **SMALL)
    _randomize_tables(model, seed=7)
    cin2 = model.get_layer("res1_cin2")
    cin2.gamma_table.assign(np.zeros(cin2.gamma_table.shape, "float32"))
    cin2.beta_table.assign(np.zeros(cin2.beta_table.shape, "float32"))
    plain = style_network(NAMES, filters=SMALL["filters"], residual_blocks=0)
    for layer in plain.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    x, styles = _images(32, 32, seed=8), style_vector(NAMES, 2)[None]
    np.testing.assert_allclose(_np(model([x, styles])), _np(plain([x, styles])), atol=1e-4)


def test_keras_round_trip_with_safe_mode(tmp_path):
    model = style_network(NAMES, **SMALL)
    _randomize_tables(model, seed=3)
    path = tmp_path / "style.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = _images(32, 32, batch=2, seed=4)
    styles = np.stack([style_vector(NAMES, "scream"), style_vector(NAMES, {"starry": 1, "wave": 3})])
    np.testing.assert_array_equal(_np(loaded([x, styles])), _np(model([x, styles])))
    assert style_names_of(loaded) == NAMES
    assert style_names_of(model) == NAMES
    assert len(cin_layers(loaded)) == len(cin_layers(model))


def test_one_hot_styles_differ_and_a_half_half_mix_interpolates_parameters():
    model = style_network(["a", "b"], **SMALL)
    _randomize_tables(model, seed=5)
    x = _images(32, 32, seed=6)
    a = _np(model([x, style_vector(["a", "b"], "a")[None]]))
    b = _np(model([x, style_vector(["a", "b"], "b")[None]]))
    assert np.abs(a - b).mean() > 1.0
    mixed = _np(model([x, np.array([[0.5, 0.5]], "float32")]))
    # the style input is normalised inside the model: 1:1 is 0.5/0.5
    np.testing.assert_allclose(_np(model([x, np.array([[1.0, 1.0]], "float32")])), mixed, atol=1e-4)
    # An independent one-style network with the same convolutions and averaged CIN tables.
    single = style_network(["avg"], **SMALL)
    for layer in single.layers:
        source = model.get_layer(layer.name)
        if isinstance(layer, ConditionalInstanceNormalization):
            layer.gamma_table.assign(_np(source.gamma_table).mean(axis=0, keepdims=True))
            layer.beta_table.assign(_np(source.beta_table).mean(axis=0, keepdims=True))
        elif layer.weights:
            layer.set_weights(source.get_weights())
    averaged = _np(single([x, np.ones((1, 1), "float32")]))
    np.testing.assert_allclose(mixed, averaged, atol=1e-3)
    assert np.abs(mixed - a).mean() > 0.5 and np.abs(mixed - b).mean() > 0.5


# ----------------------------------------------------------------------------------------------
# Style selection


def test_style_vector_index_name_and_blends():
    for blend in (1, "scream", np.int64(1), {"scream": 4.0}):
        v = style_vector(NAMES, blend)
        assert v.dtype == np.float32 and v.shape == (3,)
        np.testing.assert_array_equal(v, [0, 1, 0])
    np.testing.assert_allclose(style_vector(NAMES, {"wave": 3, 0: 1}), [0.25, 0, 0.75], rtol=1e-6)
    np.testing.assert_allclose(style_vector(NAMES, {0: 1, "starry": 1, 1: 2}), [0.5, 0.5, 0], rtol=1e-6)
    assert style_vector(NAMES, {0: 0.2, 1: 0.3, 2: 0.5}).sum() == pytest.approx(1.0)


def test_style_vector_errors_name_the_known_styles():
    with pytest.raises(SettingError, match="monet") as err:
        style_vector(NAMES, "monet")
    assert err.value.param == "style"
    assert all(name in str(err.value) for name in NAMES)
    with pytest.raises(SettingError, match="out of range"):
        style_vector(NAMES, 3)
    with pytest.raises(SettingError, match="starry"):
        style_vector(NAMES, {"monet": 1.0})
    with pytest.raises(SettingError, match="sum to 0"):
        style_vector(NAMES, {0: 0.0})
    with pytest.raises(SettingError, match=">= 0"):
        style_vector(NAMES, {0: -1.0, 1: 2.0})
