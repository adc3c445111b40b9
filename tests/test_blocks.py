"""Backbone blocks, unfreezing the top ones, and layer-wise learning rates (kerascnn.models.blocks,
kerascnn.training.layerwise)."""
import contextlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerascnn.errors import SettingError, UnknownNameError
from kerascnn.models import create_model, get_spec, list_models
from kerascnn.models.blocks import HEAD_LAYERS, backbone_blocks, unfreeze
from kerascnn.models.transfer import transfer_model
from kerascnn.training.layerwise import layer_multipliers, with_lr_multipliers

BN = keras.layers.BatchNormalization

# Slower to build (2-8 s each at their smallest input): run with -m slow.
SLOW_MODELS = {"inception_resnet_v2", "inception_v4", "inception_v3", "resnet101", "resnet101_v2", "resnet110",
               "resnet152", "resnet152_v2", "resnet56", "resnet44"}

# Blocks by the architectures' own counts: stem unit(s) + residual / inception / bottleneck units (+ fc).
EXPECTED_BLOCKS = {
    "lenet5": 4,  # conv1, conv2, fc1, fc2
    "vgg16": 7,  # five conv stages, fc1, fc2
    "resnet20": 10,  # stem + 3 stages x 3 basic blocks
    "resnet50": 17,  # stem + 3 + 4 + 6 + 3 bottlenecks
    "mobilenet_v2": 19,  # Conv1 + 17 inverted residual bottlenecks (1+2+3+4+3+3+1) + Conv_1
    "googlenet": 11,  # conv1, conv2 (3x3 reduce + 3x3), 9 inception modules
    "xception": 14,  # Keras's block1 .. block14
    "inception_v3": 16,  # 5 stem convs + mixed0 .. mixed10
}


def _build(name):
    spec = get_spec(name)
    # a policy network has one class per board point
    classes = spec.min_input[0] * spec.min_input[1] if spec.family == "alphago" else 5
    return create_model(name, input_shape=spec.min_input, num_classes=classes, weights=None)


def _backbone_layers(model):
    return [layer.name for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)
            and layer.name not in HEAD_LAYERS and not layer.name.startswith("aux")]


def _mobilenet_v2(classes=3):
    keras.utils.set_random_seed(0)
    return transfer_model("mobilenet_v2", num_classes=classes, input_shape=(32, 32, 3), weights=None)


# ------------------------------------------------------------------------------------------------
# Blocks


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_MODELS else n
                                  for n in list_models()])
def test_blocks_partition_every_registry_backbone(name):
    model = _build(name)
    blocks = backbone_blocks(model)
    assert blocks
    # Every backbone layer in exactly one block, blocks bottom to top: together they are the model's
    # backbone layers in model order.
    assert [n for b in blocks for n in b.layers] == _backbone_layers(model)
    for block in blocks:
        layers = [model.get_layer(n) for n in block.layers]
        assert any(layer.weights and not isinstance(layer, BN) for layer in layers), block
    if name in EXPECTED_BLOCKS:
        assert len(blocks) == EXPECTED_BLOCKS[name], [b.name for b in blocks]


def test_mobilenet_v2_blocks_are_its_bottlenecks():
    model = create_model("mobilenet_v2", input_shape=(32, 32, 3), num_classes=5, weights=None)
    blocks = backbone_blocks(model)
    names = [b.name for b in blocks]
    assert names == ["Conv1", "expanded_conv"] + [f"block_{i}" for i in range(1, 17)] + ["Conv_1"]
    by_name = {b.name: b for b in blocks}
    # Each bottleneck, residual (block_N_add) or not (block_16), is one block of all its layers.
    for i in range(1, 17):
        mine = tuple(layer.name for layer in model.layers if layer.name.startswith(f"block_{i}_"))
        assert by_name[f"block_{i}"].layers == mine
    assert {n for n in (layer.name for layer in model.layers) if n.endswith("_add")} == \
        {f"block_{i}_add" for i in (2, 4, 5, 7, 8, 9, 11, 12, 14, 15)}
    assert blocks[-1].layers[:3] == ("Conv_1", "Conv_1_bn", "out_relu")
    assert blocks[0].layers == ("preprocess", "Conv1", "bn_Conv1", "Conv1_relu")


def test_auxiliary_heads_are_not_blocks_and_train_with_the_head():
    model = create_model("googlenet", input_shape=(65, 65, 3), num_classes=4, weights=None, aux_logits=True)
    blocks = backbone_blocks(model)
    assert len(blocks) == EXPECTED_BLOCKS["googlenet"]
    assert not any(n.startswith("aux") for b in blocks for n in b.layers)
    groups = unfreeze(model, 0)
    aux_weighted = {layer.name for layer in model.layers if layer.name.startswith("aux") and layer.weights}
    assert aux_weighted and aux_weighted <= set(groups[0]) and "logits" in groups[0]
    assert all(not model.get_layer(n).trainable for b in blocks for n in b.layers if model.get_layer(n).weights)


# ------------------------------------------------------------------------------------------------
# unfreeze


def _trainable(model):
    return {layer.name for layer in model.layers if layer.trainable_weights}


def _assert_bn_frozen(model):
    bns = [layer for layer in model.layers if isinstance(layer, BN)]
    assert bns and not any(layer.trainable or layer.trainable_weights for layer in bns)


def test_unfreeze_top_two_blocks_of_mobilenet_v2():
    model = _mobilenet_v2()
    model.trainable = False  # as after phase 1: unfreeze sets every flag itself
    groups = unfreeze(model, 2)
    block_16 = ("block_16_expand", "block_16_depthwise", "block_16_project")
    assert groups == [("logits",), ("Conv_1",), block_16]
    assert _trainable(model) == {"logits", "Conv_1", *block_16}
    _assert_bn_frozen(model)
    assert unfreeze(model, "2") == groups
    # Layer-wise rates: the head x1, Conv_1 x0.5, block_16 x0.25; BN has no trainable variables.
    rates = layer_multipliers(model, groups, 0.5)
    assert rates == {**{v.path: 1.0 for v in model.get_layer("logits").trainable_variables},
                     **{v.path: 0.5 for v in model.get_layer("Conv_1").trainable_variables},
                     **{v.path: 0.25 for n in block_16 for v in model.get_layer(n).trainable_variables}}
    assert len(rates) == len(model.trainable_variables)


def test_unfreeze_from_a_layer_all_and_the_head_only():
    model = _mobilenet_v2()
    groups = unfreeze(model, "from:block_15_expand")
    assert [g[0] for g in groups] == ["logits", "Conv_1", "block_16_expand", "block_15_expand"]
    assert unfreeze(model, "from:block_15_add") == groups  # any layer of the block
    assert _trainable(model) == {n for g in groups for n in g}
    _assert_bn_frozen(model)

    everything = unfreeze(model, "all")
    weighted = {layer.name for layer in model.layers if layer.weights and not isinstance(layer, BN)}
    assert _trainable(model) == weighted and len(everything) == 1 + 19
    _assert_bn_frozen(model)
    assert unfreeze(model, 100) == everything

    assert unfreeze(model, 0) == [("logits",)]
    assert _trainable(model) == {"logits"}


@pytest.mark.parametrize("which", [-1, "-1", "some", "from:", True, 1.5, None])
def test_unfreeze_rejects_bad_values(which):
    model = create_model("lenet5", input_shape=(16, 16, 1), num_classes=3, weights=None)
    with pytest.raises(SettingError) as e:
        unfreeze(model, which)
    assert e.value.param == "unfreeze"


def test_unfreeze_from_an_unknown_layer_names_close_matches():
    model = _mobilenet_v2()
    with pytest.raises(UnknownNameError, match="block_15_expand") as e:
        unfreeze(model, "from:block_15_expnd")
    assert e.value.param == "unfreeze"


def _calibrate_batchnorm(model, x):
    """Set every BN layer's moving statistics to its batch statistics on `x`, as pretrained weights
    would have them: with Keras's initial ones (mean 0, variance 1) a randomly initialised MobileNetV2
    in inference mode shrinks its activations to ~1e-12 by the top, and nothing there would learn."""
    bns = [layer for layer in model.layers if isinstance(layer, BN)]
    for layer in bns:
        layer.momentum = 0.0  # the moving statistics become this batch's
    model(x, training=True)
    for layer in bns:
        layer.momentum = 0.99


def test_fit_after_unfreezing_moves_only_the_top_block_and_no_batchnorm():
    model = _mobilenet_v2()
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    _calibrate_batchnorm(model, x)
    groups = unfreeze(model, 1)
    optimizer = with_lr_multipliers(keras.optimizers.SGD(0.05, momentum=0.9),
                                    layer_multipliers(model, groups, 0.5))
    model.compile(optimizer, "sparse_categorical_crossentropy", jit_compile=False)
    before = {v.path: v.numpy() for v in model.weights}
    model.fit(x, rng.integers(0, 3, 8), batch_size=4, epochs=1, verbose=0)
    moved = {v.path for v in model.weights if not np.array_equal(v.numpy(), before[v.path])}
    assert {"Conv_1/kernel", "logits/kernel", "logits/bias"} <= moved
    unfrozen = {"Conv_1", "logits"}
    assert {p.split("/")[0] for p in moved} == unfrozen  # nothing else: frozen layers, every BN
    bn_paths = [v.path for layer in model.layers if isinstance(layer, BN) for v in layer.weights]
    assert len(bn_paths) == 4 * 52 and not moved & set(bn_paths)  # gamma, beta, moving mean/variance


# ------------------------------------------------------------------------------------------------
# Layer-wise learning rates


def _two_dense(dtype="float32"):
    keras.utils.set_random_seed(1)
    inputs = keras.Input((4,), dtype=dtype)
    x = keras.layers.Dense(3, activation="tanh", name="d1", dtype=dtype)(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="d2", dtype=dtype)(x))


def _data(n=8, dtype="float32"):
    rng = np.random.default_rng(2)
    return rng.normal(size=(n, 4)).astype(dtype), rng.normal(size=(n, 2)).astype(dtype)


def _one_step(make_optimizer, multipliers=None, dtype="float64"):
    """Each weight's change after one full-batch step of fit."""
    model = _two_dense(dtype)
    optimizer = make_optimizer()
    if multipliers is not None:
        optimizer = with_lr_multipliers(optimizer, multipliers(model))
    model.compile(optimizer, "mse", jit_compile=False)
    before = [v.numpy() for v in model.weights]
    x, y = _data(dtype=dtype)
    model.fit(x, y, batch_size=len(x), epochs=1, verbose=0, shuffle=False)
    return {v.path: v.numpy() - b for v, b in zip(model.weights, before)}


def _d2_at(factor):
    return lambda model: {"d1/kernel": 1.0, "d1/bias": 1.0, **{v.path: factor for v in model.get_layer("d2").weights}}


@pytest.mark.parametrize("learning_rate", [
    lambda: 0.05,
    lambda: keras.optimizers.schedules.ExponentialDecay(0.05, decay_steps=1, decay_rate=0.5),
], ids=["constant", "schedule"])
def test_sgd_step_is_exactly_scaled(learning_rate):
    plain = _one_step(lambda: keras.optimizers.SGD(learning_rate()))
    scaled = _one_step(lambda: keras.optimizers.SGD(learning_rate()), _d2_at(0.1))
    for path in ("d1/kernel", "d1/bias"):
        np.testing.assert_array_equal(scaled[path], plain[path])
    for path in ("d2/kernel", "d2/bias"):
        assert np.abs(plain[path]).max() > 1e-4
        np.testing.assert_allclose(scaled[path], 0.1 * plain[path], rtol=1e-12, atol=0)


def test_adam_first_step_is_scaled():
    plain = _one_step(lambda: keras.optimizers.Adam(0.01))
    scaled = _one_step(lambda: keras.optimizers.Adam(0.01), _d2_at(0.1))
    np.testing.assert_array_equal(scaled["d1/kernel"], plain["d1/kernel"])
    np.testing.assert_allclose(np.abs(scaled["d2/kernel"]), 0.1 * np.abs(plain["d2/kernel"]), rtol=1e-12)


OPTIMIZERS = {
    "sgd_momentum": lambda: keras.optimizers.SGD(0.05, momentum=0.9),
    "sgd_nesterov": lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    "adam": lambda: keras.optimizers.Adam(0.01),
    # weight decay is applied outside update_step at the unscaled rate (see layerwise's docstring):
    # off here so that a x0 layer stays exactly still.
    "adamw": lambda: keras.optimizers.AdamW(0.01, weight_decay=0.0),
    "rmsprop": lambda: keras.optimizers.RMSprop(0.01, momentum=0.5),
}


def _fit_with_frozen_d1(make_optimizer, steps_per_execution=1, strategy=None):
    """Fit 8 steps with d1 at x0 and d2 at x1; which variables moved."""
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = _two_dense()
        optimizer = with_lr_multipliers(make_optimizer(), {v.path: 0.0 for v in model.get_layer("d1").weights})
        model.compile(optimizer, "mse", steps_per_execution=steps_per_execution, jit_compile=False)
    before = {v.path: v.numpy() for v in model.weights}
    x, y = _data(16)
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert int(model.optimizer.iterations.numpy()) == 8
    return {v.path for v in model.weights if not np.array_equal(v.numpy(), before[v.path])}


@pytest.mark.parametrize("steps_per_execution", [1, 4])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_multipliers_apply_inside_fit(optimizer, steps_per_execution):
    moved = _fit_with_frozen_d1(OPTIMIZERS[optimizer], steps_per_execution)
    assert moved == {"d2/kernel", "d2/bias"}


def test_multipliers_apply_under_mirrored_strategy():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    assert _fit_with_frozen_d1(OPTIMIZERS["sgd_momentum"], 2, strategy) == {"d2/kernel", "d2/bias"}


def _compiled(multipliers=True):
    model = _two_dense()
    optimizer = keras.optimizers.Adam(0.01)
    if multipliers:
        optimizer = with_lr_multipliers(optimizer, {v.path: 0.1 for v in model.get_layer("d1").weights})
    model.compile(optimizer, "mse", jit_compile=False)
    return model


def test_saved_model_loads_without_kerascnn_and_weights_restore_optimizer_state(tmp_path):
    model = _compiled()
    x, y = _data(16)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)

    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")  # safe_mode, nothing registered
    assert type(loaded.optimizer) is keras.optimizers.Adam
    assert [v.numpy().tolist() for v in loaded.optimizer.variables] == \
        [v.numpy().tolist() for v in model.optimizer.variables]

    model.save_weights(tmp_path / "x.weights.h5")
    restored = _compiled()
    restored.optimizer.build(restored.trainable_variables)
    restored.load_weights(tmp_path / "x.weights.h5")
    for a, b in zip(restored.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # Both continue identically: the restored state is the whole state.
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    restored.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(restored.weights, model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)


def test_with_lr_multipliers_checks_its_arguments():
    model = _two_dense()
    with pytest.raises(ValueError, match="finite"):
        with_lr_multipliers(keras.optimizers.SGD(0.1), {"d1/kernel": -1.0})
    built = keras.optimizers.SGD(0.1)
    built.build(model.trainable_variables)
    with pytest.raises(ValueError, match="not been built"):
        with_lr_multipliers(built, {})
    once = with_lr_multipliers(keras.optimizers.SGD(0.1, momentum=0.5), {"d1/kernel": 0.5})
    twice = with_lr_multipliers(once, {"d1/kernel": 0.25})
    assert type(twice) is type(once) and twice.get_config() == {**once.get_config(), "name": twice.name}
    with pytest.raises(ValueError, match="decay"):
        layer_multipliers(model, [["d2"], ["d1"]], 0.0)

