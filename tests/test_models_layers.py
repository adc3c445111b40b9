"""The building blocks against independent references (numpy, tf.nn), the auxiliary-head
plumbing and `.keras` round trips of models with custom layers."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from kerascnn.models.layers import LocalResponseNormalization, PositionBias, ShortcutA, inception_v1_module
from kerascnn.models import create_model, strip_auxiliary


def _lrn_numpy(a, k=2.0, n=5, alpha=1e-4, beta=0.75):
    """Krizhevsky et al. 2012, section 3.3, written out channel by channel."""
    out = np.empty_like(a)
    channels = a.shape[-1]
    for c in range(channels):
        lo, hi = max(0, c - n // 2), min(channels - 1, c + n // 2)
        out[..., c] = a[..., c] / (k + alpha * np.sum(a[..., lo:hi + 1] ** 2, axis=-1)) ** beta
    return out


def test_lrn_matches_numpy_and_tf():
    # Values around +-50 so that alpha * sum(a^2) (~0.4) is not negligible next to k = 2.
    a = np.random.default_rng(0).uniform(-50, 50, (2, 5, 5, 11)).astype("float32")
    ours = keras.ops.convert_to_numpy(LocalResponseNormalization()(a))
    np.testing.assert_allclose(ours, _lrn_numpy(a.astype("float64")), rtol=1e-5)
    tf_lrn = tf.nn.local_response_normalization(a, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75)
    np.testing.assert_allclose(ours, tf_lrn.numpy(), rtol=1e-5)


@pytest.mark.parametrize("size,channels,filters,strides", [(8, 16, 32, 2), (7, 3, 8, 2), (5, 4, 4, 1)])
def test_option_a_shortcut_matches_numpy(size, channels, filters, strides):
    x = np.random.default_rng(1).normal(size=(2, size, size, channels)).astype("float32")
    extra = filters - channels
    expected = np.pad(x[:, ::strides, ::strides, :], [(0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)])
    layer = ShortcutA(filters, strides)
    out = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_array_equal(out, expected)
    assert layer.compute_output_shape(x.shape) == out.shape
    assert layer.count_params() == 0


def test_position_bias_one_bias_per_point():
    model = create_model("alphago_policy", filters=4)
    bias = model.get_layer("position_bias")
    assert tuple(bias.bias.shape) == (19, 19, 1) and bias.count_params() == 361
    assert model.get_layer("conv13").bias is None  # the 1x1 conv has no bias of its own
    # With the 1x1 conv's weights at zero, the logits are exactly the 361 biases, in board order.
    model.get_layer("conv13").kernel.assign(np.zeros((1, 1, 4, 1), "float32"))
    bias.bias.assign(np.arange(361, dtype="float32").reshape(19, 19, 1))
    logits = keras.Model(model.input, model.get_layer("logits").output)
    np.testing.assert_array_equal(logits(np.ones((1, 19, 19, 48), "float32"))[0], np.arange(361))


def test_position_biases_learn_independently():
    # One SGD step (lr 1) from zero biases: each point's bias moves by its own cross-entropy gradient,
    # mean(onehot - softmax) over the batch, computed here in numpy from the model's own softmax.
    model = create_model("alphago_policy", filters=4)
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="sparse_categorical_crossentropy", run_eagerly=True)
    x = np.random.default_rng(2).integers(0, 2, (4, 19, 19, 48)).astype("float32")
    moves = np.array([0, 60, 180, 360])
    probs = keras.ops.convert_to_numpy(model(x))
    model.train_on_batch(x, moves)
    expected = (np.eye(361)[moves] - probs).mean(axis=0)
    np.testing.assert_allclose(model.get_layer("position_bias").bias.numpy().ravel(), expected, atol=1e-6)


@pytest.mark.parametrize("naive,channels,params", [(False, 256, 163_696), (True, 416, 387_296)])
def test_inception_v1_module(naive, channels, params):
    # GoogLeNet's 3a on 28x28x192: reduced 64+128+32+32 = 256 channels; the naive module passes the
    # 192 input channels through its pool branch: 64+128+32+192 = 416.
    inputs = keras.Input((28, 28, 192))
    model = keras.Model(inputs, inception_v1_module(inputs, (64, 96, 128, 16, 32, 32), "inception_3a", naive=naive))
    assert model.output_shape == (None, 28, 28, channels)
    assert model.count_params() == params
    names = {layer.name for layer in model.layers[1:]}
    assert {"inception_3a_1x1", "inception_3a_3x3", "inception_3a_5x5", "inception_3a_pool",
            "inception_3a_concat"} <= names
    assert ("inception_3a_3x3_reduce" in names) is not naive


def test_inception_v1_module_checks_filters():
    with pytest.raises(ValueError, match="filters"):
        inception_v1_module(keras.Input((8, 8, 4)), (1, 2, 3), "bad")


@pytest.mark.parametrize("name,shape,aux_names", [
    ("googlenet", (65, 65, 3), ["aux1_predictions", "aux2_predictions"]),
    ("inception_v3", (107, 107, 3), ["aux_predictions"]),
])
def test_strip_auxiliary(name, shape, aux_names):
    model = create_model(name, input_shape=shape, num_classes=5, aux_logits=True)
    assert model.output_names == ["predictions", *aux_names]
    # The harness weights the losses by output-name prefix: 1 for the main output, 0.3 for "aux*".
    losses = {n: "sparse_categorical_crossentropy" for n in model.output_names}
    weights = {n: 0.3 if n.startswith("aux") else 1.0 for n in model.output_names}
    model.compile(optimizer="sgd", loss=losses, loss_weights=weights, run_eagerly=True)
    x = np.random.default_rng(3).uniform(0, 255, (2,) + shape).astype("float32")
    y = np.array([0, 1])
    model.train_on_batch(x, {n: y for n in model.output_names})

    stripped = strip_auxiliary(model)
    assert stripped.output_names == ["predictions"] and stripped.output_shape == (None, 5)
    assert not [layer.name for layer in stripped.layers if layer.name.startswith("aux")]
    assert stripped.get_layer("logits") is model.get_layer("logits")  # shared, not copied
    np.testing.assert_allclose(stripped(x), model(x)[0], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name,kwargs,custom", [
    ("resnet20", {"input_shape": (16, 16, 3)}, "ShortcutA"),
    ("alphago_policy", {"filters": 8}, "PositionBias"),
    ("googlenet", {"input_shape": (32, 32, 3), "lrn": True, "num_classes": 5}, "LocalResponseNormalization"),
])
def test_keras_round_trip_safe_mode(tmp_path, name, kwargs, custom):
    model = create_model(name, **kwargs)
    assert custom in {type(layer).__name__ for layer in model.layers}
    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(4).uniform(0, 255, (2,) + tuple(model.input.shape[1:])).astype("float32")
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-4, atol=1e-6)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]


def test_custom_layers_serialise():
    for layer in (LocalResponseNormalization(depth_radius=3, alpha=2e-4), ShortcutA(32, 2), PositionBias()):
        clone = keras.layers.deserialize(keras.layers.serialize(layer))
        assert type(clone) is type(layer) and clone.get_config() == layer.get_config()


def _bn_pair(policy, epsilon=1e-3, shape=(16, 8, 8, 5)):
    """Keras's BatchNormalization and ours with the same random gamma/beta/statistics."""
    from kerascnn.models.layers import FusedBatchNormalization

    keras.mixed_precision.set_global_policy(policy)
    rng = np.random.default_rng(0)
    ref = keras.layers.BatchNormalization(momentum=0.9, epsilon=epsilon)
    fused = FusedBatchNormalization(momentum=0.9, epsilon=epsilon)
    for layer in (ref, fused):
        layer.build(shape)
    ref.set_weights([rng.uniform(0.5, 1.5, shape[-1]), rng.normal(size=shape[-1]), rng.normal(size=shape[-1]),
                     rng.uniform(0.5, 2.0, shape[-1])])
    fused.set_weights(ref.get_weights())
    return ref, fused, tf.constant(rng.normal(2.0, 3.0, shape).astype("float32"))


@pytest.mark.parametrize("policy,tol,channels", [("float32", 1e-4, 16), ("float32", 1e-4, 5),
                                                 ("mixed_bfloat16", 3e-2, 16), ("mixed_bfloat16", 3e-2, 5)])
def test_fused_batch_norm_matches_keras(policy, tol, channels):
    ref, fused, x = _bn_pair(policy, shape=(16, 8, 8, channels))
    # the fused kernel only at multiples of 16 channels (oneDNN's slow path otherwise); Keras's ops else
    assert fused._fusable(x, None) == (channels % 16 == 0)
    outs, grads = [], []
    for layer in (ref, fused):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 2 * tf.range(channels, dtype=tf.float32))
        outs.append(tf.cast(y, tf.float32).numpy())
        grads.append([g.numpy() for g in tape.gradient(loss, [x, layer.gamma, layer.beta])])
    assert outs[1].dtype == outs[0].dtype and fused(x).dtype == ref(x).dtype
    np.testing.assert_allclose(outs[1], outs[0], atol=tol, rtol=tol)
    for g_ref, g_fused in zip(*grads):
        np.testing.assert_allclose(g_fused, g_ref, atol=tol * 10, rtol=tol)
    # the same moving-statistics update (Keras's biased batch variance), then the same inference
    for a, b in zip(ref.get_weights()[2:], fused.get_weights()[2:]):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tf.cast(fused(x, training=False), tf.float32).numpy(),
                               tf.cast(ref(x, training=False), tf.float32).numpy(), atol=tol * 10, rtol=tol)


def test_fused_batch_norm_falls_back_where_the_kernel_would_differ():
    ref, fused, x = _bn_pair("float32", epsilon=1e-5, shape=(16, 8, 8, 16))  # below the kernel's epsilon floor
    assert not fused._fusable(x, None)
    np.testing.assert_allclose(fused(x, training=True).numpy(), ref(x, training=True).numpy(), rtol=1e-5, atol=1e-5)
    flat = tf.zeros((4, 16))
    assert not fused._fusable(flat, None)
    assert _bn_pair("float32", shape=(16, 8, 8, 16))[1]._fusable(x, None)


def test_models_use_the_fused_batch_norm_and_round_trip(tmp_path):
    from kerascnn.models.layers import FusedBatchNormalization

    model = create_model("resnet20", input_shape=(32, 32, 3), num_classes=10)
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns and all(isinstance(layer, FusedBatchNormalization) for layer in bns)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert isinstance(loaded.get_layer(bns[0].name), FusedBatchNormalization)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
