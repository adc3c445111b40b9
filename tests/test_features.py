"""The registry's use-layers (every model names layers it has; "cam" is its last feature map) and
`kerascnn.models.features`, checked against sub-models and layer calls computed independently: flat models,
keras.applications, nested backbones (two levels deep too), `.keras` round trips, mixed precision."""
import keras
import numpy as np
import pytest

from kerascnn.errors import SettingError, UnknownNameError
from kerascnn.models.features import LayerInfo, feature_extractor, list_layers
from kerascnn.models import create_model, get_spec, list_models
from kerascnn.models.registry import USES

# Built in more than ~3.5 s each at their smallest input (2 shared CPU cores): the rest of the file
# then takes about 50 s. Their names come from the same tables as resnet50 / inception_v3's.
SLOW = {"inception_resnet_v2", "inception_v4", "resnet101", "resnet101_v2", "resnet110", "resnet152", "resnet152_v2"}
POOLING = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D, keras.layers.GlobalAveragePooling2D,
           keras.layers.GlobalMaxPooling2D)
# 4-D layers that may follow "cam" without a pooling layer between: the AlphaGo policy's head is a
# 1x1 conv to one plane plus a bias per board point, the move logits, not features.
POOLING_FREE_HEADS = {"alphago_policy": {"conv13", "position_bias"}}


def _image_model(spec) -> bool:
    return spec.default_input[-1] in (1, 3)  # AlphaGo's 48 feature planes are no image


def _build_small(name: str) -> keras.Model:
    spec = get_spec(name)
    kwargs = {"num_classes": spec.min_input[0] * spec.min_input[1]} if spec.family == "alphago" else {}
    return create_model(name, input_shape=spec.min_input, **kwargs)


def test_every_model_declares_use_layers():
    for name in list_models():
        layers = get_spec(name).layers
        assert set(layers) <= set(USES), name
        spec = get_spec(name)
        # The uses are the image apps' (style, dream, Grad-CAM); a text or audio model declares none,
        # an image+question model Grad-CAM's map only.
        expected = {"text": set(), "audio": set(), "image+question": {"cam"}}[spec.inputs] if spec.inputs != "image" \
            else set(USES) if _image_model(spec) else {"cam"}
        assert set(layers) == expected, f"{name}: uses {sorted(layers)}"
        assert all(isinstance(n, str) for names in layers.values() for n in names) and all(layers.values())


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in list_models() if get_spec(n).inputs == "image"])
def test_use_layers_exist_and_cam_is_the_last_feature_map(name):
    """Every named layer exists in the model built at its smallest input, and "cam" has a 4-D output
    after which, in the model's (topological) layer order, every 4-D output comes from a pooling
    layer or from a layer after one (MobileNet's head keeps 1x1 maps: dropout, conv_preds), or is in
    the model's pooling-free head (POOLING_FREE_HEADS). So "cam" is the last spatial map the head sees;
    a block's sum before its ReLU, or a conv before its BN, would fail."""
    spec = get_spec(name)
    model = _build_small(name)
    names = [layer.name for layer in model.layers]
    for use, layers in spec.layers.items():
        missing = [n for n in layers if n not in names]
        assert not missing, f"{name}: {use} layers {missing} not in the model"
    (cam,) = spec.layers["cam"]
    assert len(model.get_layer(cam).output.shape) == 4
    pooled = False
    for layer in model.layers[names.index(cam) + 1:]:
        pooled = pooled or isinstance(layer, POOLING)
        if len(layer.output.shape) == 4 and not pooled:
            assert layer.name in POOLING_FREE_HEADS.get(name, ()), f"{name}: {layer.name} is a later feature map"
    # Every use resolves by the model's registry name, in the registry's order.
    extractor = feature_extractor(model, {use: 1.0 for use in spec.layers})
    assert extractor.layer_names == tuple(n for layers in spec.layers.values() for n in layers)


def _images(shape, n=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, *shape)).astype("float32")


def _as_list(outputs):
    return [np.asarray(o) for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]


def test_flat_model_matches_submodels():
    model = create_model("resnet20", input_shape=(16, 16, 3))
    layers = ["conv1_relu", "conv3_block1_0_pad", "conv4_block3_out", "avg_pool", "predictions"]
    extractor = feature_extractor(model, layers)
    x = _images((16, 16, 3))
    for layer, got in zip(layers, _as_list(extractor(x))):
        expected = keras.Model(model.input, model.get_layer(layer).output)(x)
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6, err_msg=layer)
    assert extractor.layer_names == tuple(layers) and extractor.layer_weights == (1.0,) * len(layers)
    assert extractor.name == "resnet20_features"
    # One layer: one tensor (Keras unpacks one-element outputs).
    single = feature_extractor(model, "conv2_block1_out", name="tap")
    assert single.name == "tap" and tuple(single(x).shape) == (2, 16, 16, 16)


def test_keras_application_by_registry_use():
    # keras.applications.VGG16 is named "vgg16", a registry name, and keeps Keras's layer names.
    model = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    extractor = feature_extractor(model, "style")
    assert extractor.layer_names == get_spec("vgg16").layers["style"]
    x = _images((32, 32, 3)) - 128
    for layer, got in zip(extractor.layer_names, extractor(x)):
        expected = keras.Model(model.input, model.get_layer(layer).output)(x)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5, err_msg=layer)


@pytest.fixture(scope="module")
def transfer_model():
    """A classifier on a nested MobileNetV2 backbone, the way transfer-learning code builds one."""
    inner = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(32, 32, 3))
    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1, name="scale")(inputs)
    x = inner(x, training=False)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(5, name="head")(x)
    return keras.Model(inputs, outputs, name="classifier"), inner


def test_nested_backbone_matches_the_inner_model_by_hand(transfer_model):
    outer, inner = transfer_model
    prefix = inner.name + "/"
    # A naive tap fails: the inner layer's output lives in the inner model's graph.
    with pytest.raises(ValueError):
        keras.Model(outer.input, inner.get_layer("block_1_expand").output)
    extractor = feature_extractor(outer, ["block_1_expand", prefix + "block_6_expand_relu", "out_relu", "gap"])
    assert extractor.layer_names == (prefix + "block_1_expand", prefix + "block_6_expand_relu",
                                     prefix + "out_relu", "gap")
    x = _images((32, 32, 3))
    got = _as_list(extractor(x))
    scaled = x / 127.5 - 1  # the outer model's Rescaling, by hand
    for layer, value in zip(["block_1_expand", "block_6_expand_relu", "out_relu"], got):
        expected = keras.Model(inner.input, inner.get_layer(layer).output)(scaled)
        np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-5, err_msg=layer)
    np.testing.assert_allclose(got[3], np.asarray(inner(scaled)).mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)


def test_two_levels_of_nesting_and_sequential():
    seq = keras.Sequential([keras.Input((6, 6, 4)), keras.layers.Conv2D(4, 3, padding="same", name="c1"),
                            keras.layers.Conv2D(3, 3, name="c2")], name="seq")
    mid_in = keras.Input((6, 6, 3), name="mid_in")
    mid = keras.Model(mid_in, seq(keras.layers.Conv2D(4, 1, name="proj")(mid_in)), name="mid")
    inputs = keras.Input((6, 6, 3), name="x")
    x = mid(keras.layers.Rescaling(0.5, name="half")(inputs))
    outer = keras.Model(inputs, keras.layers.Flatten(name="flat")(x))
    extractor = feature_extractor(outer, ["mid/seq/c1", "c2", "proj", "flat"])
    assert extractor.layer_names == ("mid/seq/c1", "mid/seq/c2", "mid/proj", "flat")
    x = np.random.default_rng(1).normal(size=(2, 6, 6, 3)).astype("float32")
    c1 = seq.get_layer("c1")(mid.get_layer("proj")(x * 0.5))  # the layers called one by one
    c2 = seq.get_layer("c2")(c1)
    for got, expected in zip(_as_list(extractor(x)), [c1, c2, mid.get_layer("proj")(x * 0.5), np.reshape(c2, (2, -1))]):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_mapping_keeps_its_order_and_weights():
    model = create_model("lenet5", input_shape=(16, 16, 1))
    extractor = feature_extractor(model, {"conv2": 0.5, "conv1": 2, "content": 3.0})
    assert extractor.layer_names == ("conv2", "conv1", "conv2")  # "content" is lenet5's conv2
    assert extractor.layer_weights == (0.5, 2.0, 3.0)
    shapes = [tuple(o.shape) for o in extractor(np.zeros((1, 16, 16, 1), "float32"))]
    assert shapes == [(1, 2, 2, 16), (1, 12, 12, 6), (1, 2, 2, 16)]
    with pytest.raises(SettingError, match="must be a number"):
        feature_extractor(model, {"conv1": "heavy"})


def test_unknown_name_lists_close_matches_among_nested_layers(transfer_model):
    outer, inner = transfer_model
    for wrong in ("block_1_expnd", inner.name + "/block_1_expnd"):
        with pytest.raises(UnknownNameError) as e:
            feature_extractor(outer, wrong)
        assert e.value.param == "layers" and "\n" not in str(e.value)
        assert f"Did you mean: {inner.name}/block_1_expand" in str(e.value)


def test_ambiguous_and_unusable_names():
    inputs = keras.Input((4, 4, 2))
    a = keras.Sequential([keras.Input((4, 4, 2)), keras.layers.Conv2D(2, 1, name="conv")], name="a")
    b = keras.Sequential([keras.Input((4, 4, 2)), keras.layers.Conv2D(2, 1, name="conv")], name="b")
    outer = keras.Model(inputs, keras.layers.Add(name="sum")([a(inputs), b(inputs)]), name="pair")
    with pytest.raises(SettingError, match=r"ambiguous .*a/conv, b/conv"):
        feature_extractor(outer, "conv")
    assert feature_extractor(outer, ["a/conv", "b/conv"]).layer_names == ("a/conv", "b/conv")
    with pytest.raises(SettingError, match="no registry model"):
        feature_extractor(outer, "style")
    with pytest.raises(SettingError, match="has no 'style' layers"):
        feature_extractor(create_model("alphago_policy", filters=2), "style")
    with pytest.raises(SettingError, match="No layers"):
        feature_extractor(outer, [])


def test_saved_and_reloaded_model_with_a_registry_backbone(tmp_path):
    backbone = create_model("resnet20", input_shape=(16, 16, 3), include_top=False)
    inputs = keras.Input((16, 16, 3), name="image")
    outputs = keras.layers.Dense(3, name="head")(keras.layers.GlobalAveragePooling2D(name="gap")(backbone(inputs)))
    keras.Model(inputs, outputs, name="finetuned").save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    extractor = feature_extractor(loaded, {"cam": 1.0, "resnet20/conv2_block1_out": 0.5})
    assert extractor.layer_names == ("resnet20/conv4_block3_out", "resnet20/conv2_block1_out")
    x = _images((16, 16, 3))
    for layer, got in zip(["conv4_block3_out", "conv2_block1_out"], extractor(x)):
        expected = keras.Model(backbone.input, backbone.get_layer(layer).output)(x)  # the original's weights
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5, err_msg=layer)


def test_mixed_precision_outputs_are_float32():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")  # conftest restores float32
    model = create_model("lenet5", input_shape=(16, 16, 1))
    extractor = feature_extractor(model, ["conv1", "predictions"])
    assert [o.dtype for o in extractor.outputs] == ["float32", "float32"]
    x = _images((16, 16, 1))
    conv1, _ = extractor(x)
    expected = keras.Model(model.input, model.get_layer("conv1").output)(x)
    assert expected.dtype == "bfloat16"
    np.testing.assert_array_equal(np.asarray(conv1), np.asarray(keras.ops.cast(expected, "float32")))


def test_registry_name_builds_the_model():
    extractor = feature_extractor("lenet5", "cam", input_shape=(16, 16, 1))
    assert extractor.layer_names == ("conv2",) and tuple(extractor.output.shape) == (None, 2, 2, 16)
    with pytest.raises(TypeError, match="registry name"):
        feature_extractor(create_model("lenet5"), "cam", input_shape=(16, 16, 1))


def test_list_layers_includes_nested_layers(transfer_model):
    outer, inner = transfer_model
    rows = list_layers(outer)
    assert len(rows) == len(outer.layers) + len(inner.layers)
    assert rows[:3] == [LayerInfo("image", "InputLayer", (None, 32, 32, 3)),
                        LayerInfo("scale", "Rescaling", (None, 32, 32, 3)),
                        LayerInfo(inner.name, "Functional", (None, 1, 1, 1280))]
    assert LayerInfo(f"{inner.name}/block_1_expand", "Conv2D", (None, 16, 16, 96)) in rows
    assert rows[-1] == LayerInfo("head", "Dense", (None, 5))
    # Every name it lists is one feature_extractor takes.
    sample = [r.name for r in rows[::25]]
    assert feature_extractor(outer, sample).layer_names == tuple(sample)
