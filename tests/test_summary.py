"""`kerascnn.analysis.summarize`: output volumes, parameters, multiply-adds and receptive fields,
pinned against the papers' tables, hand formulas, TensorFlow's own FLOP counter, a numpy convolution
and the gradient of one output unit (which is non-zero exactly inside its receptive field)."""
import csv
import io
import json
import math
import subprocess
import sys

import numpy as np
import pytest

import keras
from kerascnn import create_model, get_spec, list_models
from kerascnn.analysis import (BLOCKS, block_summary, format_summary, summarize, summary_for)
from kerascnn.analysis.formats import human


def conv_macs(h, w, c_out, k, c_in, groups=1):
    """The papers' count: every output element is a k x k x C_in/groups dot product."""
    return h * w * c_out * k * k * c_in // groups


# ----------------------------------------------------------------------------------------------
# The lectures' models


def test_lenet5_rows_match_hand_counts():
    s = summary_for("lenet5", num_classes=10)
    expected = {  # name: (output, params, MACs), each from the formula
        "conv1": ((28, 28, 6), 5 * 5 * 1 * 6 + 6, conv_macs(28, 28, 6, 5, 1)),
        "pool1": ((14, 14, 6), 0, 0),
        "conv2": ((10, 10, 16), 5 * 5 * 6 * 16 + 16, conv_macs(10, 10, 16, 5, 6)),
        "pool2": ((5, 5, 16), 0, 0),
        "fc1": ((120,), 400 * 120 + 120, 400 * 120),
        "fc2": ((84,), 120 * 84 + 84, 120 * 84),
        "logits": ((10,), 84 * 10 + 10, 84 * 10),
    }
    for name, (shape, params, macs) in expected.items():
        row = s.row(name)
        assert (row.output_shape, row.params, row.macs) == (shape, params, macs), name
    assert s.totals.params == s.totals.trainable_params == 61_706
    assert s.totals.macs == sum(m for _, _, m in expected.values()) == 416_520


def test_lenet5_receptive_fields_by_hand():
    s = summary_for("lenet5", num_classes=10)
    # r_out = r_in + (k - 1) * j_in, j_out = j_in * s: conv1 5/1, pool1 6/2, conv2 14/2, pool2 16/4.
    got = {n: (s.row(n).rf, s.row(n).jump) for n in ("conv1", "pool1", "conv2", "pool2")}
    assert got == {"conv1": ((5, 5), (1, 1)), "pool1": ((6, 6), (2, 2)),
                   "conv2": ((14, 14), (2, 2)), "pool2": ((16, 16), (4, 4))}
    assert s.row("fc1").rf == (32, 32)  # after Flatten every unit sees the whole 5x5 map: 16 + 4 * 4


def test_alexnet_conv1_and_pool1():
    s = summary_for("alexnet", include_top=False)
    conv1, pool1 = s.row("conv1"), s.row("pool1")
    assert (conv1.output_shape, conv1.params) == ((55, 55, 96), 11 * 11 * 3 * 96 + 96) == ((55, 55, 96), 34_944)
    assert conv1.macs == conv_macs(55, 55, 96, 11, 3) == 105_415_200
    assert (conv1.rf, conv1.jump) == ((11, 11), (4, 4))
    assert (pool1.output_shape, pool1.params, pool1.macs) == ((27, 27, 96), 0, 0)
    assert (pool1.rf, pool1.jump) == ((19, 19), (8, 8))


def test_alexnet_totals():
    s = summary_for("alexnet")
    convs = [(55, 96, 11, 3), (27, 256, 5, 96), (13, 384, 3, 256), (13, 384, 3, 384), (13, 256, 3, 384)]
    fcs = [(6 * 6 * 256, 4096), (4096, 4096), (4096, 1000)]
    assert s.totals.macs == sum(conv_macs(h, h, c, k, ci) for h, c, k, ci in convs) + sum(a * b for a, b in fcs)
    assert s.totals.params == 62_378_344


# Table 1 of Szegedy et al. 2014, copied here independently of the builder: module -> (input
# channels, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj).
TABLE1 = {
    "3a": (192, 64, 96, 128, 16, 32, 32), "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64), "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64), "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128), "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}


def _module_params(cin, c1, c3r, c3, c5r, c5, pp):
    weights = cin * c1 + cin * c3r + 9 * c3r * c3 + cin * c5r + 25 * c5r * c5 + cin * pp
    return weights + c1 + c3r + c3 + c5r + c5 + pp


@pytest.fixture(scope="module")
def googlenet():
    return summary_for("googlenet")


def test_googlenet_table1_output_sizes(googlenet):
    table1 = [
        ("conv1_7x7", (112, 112, 64)), ("pool1", (56, 56, 64)), ("conv2_3x3", (56, 56, 192)),
        ("pool2", (28, 28, 192)), ("inception_3a_concat", (28, 28, 256)), ("inception_3b_concat", (28, 28, 480)),
        ("pool3", (14, 14, 480)), ("inception_4a_concat", (14, 14, 512)), ("inception_4b_concat", (14, 14, 512)),
        ("inception_4c_concat", (14, 14, 512)), ("inception_4d_concat", (14, 14, 528)),
        ("inception_4e_concat", (14, 14, 832)), ("pool4", (7, 7, 832)), ("inception_5a_concat", (7, 7, 832)),
        ("inception_5b_concat", (7, 7, 1024)),
        ("avg_pool", (1024,)),  # Table 1's 1x1x1024: the builder's global average pool drops the 1x1
        ("logits", (1000,)),
    ]
    assert [(name, googlenet.row(name).output_shape) for name, _ in table1] == table1


def test_googlenet_params_and_macs_from_table1(googlenet):
    stem = (7 * 7 * 3 * 64 + 64) + (64 * 64 + 64) + (9 * 64 * 192 + 192)
    modules = sum(_module_params(*f) for f in TABLE1.values())
    assert googlenet.totals.params == stem + modules + 1024 * 1000 + 1000 == 6_998_552
    rows_3a = [r for r in googlenet.rows if r.name.startswith("inception_3a_")]
    assert sum(r.params for r in rows_3a) == _module_params(*TABLE1["3a"]) == 163_696
    cin, c1, c3r, c3, c5r, c5, pp = TABLE1["3a"]
    assert sum(r.macs for r in rows_3a) == 28 * 28 * (cin * (c1 + c3r + c5r + pp) + 9 * c3r * c3 + 25 * c5r * c5)
    assert 1.5e9 < googlenet.totals.macs < 1.6e9  # the paper: "1.5 billion multiply-adds"


def test_googlenet_auxiliary_heads_are_walked():
    model = create_model("googlenet", aux_logits=True)
    s = summarize(model)
    assert s.totals.params == model.count_params() == 6_998_552 + 3_188_840 + 3_190_888
    assert s.row("aux1_logits").output_shape == (1000,)


# VGG16 (configuration D): per block (input size, convs as (C_in, C_out)).
VGG16 = [(224, [(3, 64), (64, 64)]), (112, [(64, 128), (128, 128)]), (56, [(128, 256), (256, 256), (256, 256)]),
         (28, [(256, 512), (512, 512), (512, 512)]), (14, [(512, 512), (512, 512), (512, 512)])]


def test_vgg16_conv_macs():
    s = summary_for("vgg16", include_top=False)
    assert s.totals.macs == sum(conv_macs(h, h, co, 3, ci) for h, convs in VGG16 for ci, co in convs)
    assert s.totals.macs == 15_346_630_656  # + 123,633,664 in the three FC layers = 15.47 G


def test_vgg16_receptive_fields_on_keras_applications():
    # keras.applications' own VGG16, any input size: the field does not depend on it.
    model = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    s = summarize(model)
    pools = {f"block{i}_pool": (s.row(f"block{i}_pool").rf[0], s.row(f"block{i}_pool").jump[0]) for i in range(1, 6)}
    assert pools == {"block1_pool": (6, 2), "block2_pool": (16, 4), "block3_pool": (44, 8),
                     "block4_pool": (100, 16), "block5_pool": (212, 32)}
    assert s.totals.params == model.count_params() == 14_714_688


def test_mobilenet_v2_matches_paper():
    model = create_model("mobilenet_v2")
    s = summarize(model)
    assert (s.totals.params, s.totals.trainable_params) == (model.count_params(), 3_504_872)
    assert abs(s.totals.macs / 300e6 - 1) < 0.01  # Sandler et al. 2018, Table 4: 300 M multiply-adds


# Deeper copies of an architecture summarized here at its shallowest (resnet20, resnet18, resnet50,
# resnet50_v2, vgg11/vgg11_bn, vgg16c): the same layer kinds, only more of them.
DEEPER_COPIES = {"resnet32", "resnet44", "resnet56", "resnet110", "resnet34", "resnet101", "resnet152",
                 "resnet101_v2", "resnet152_v2", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"}


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in list_models() if n not in DEEPER_COPIES])
def test_every_registered_model_summarizes(name):
    spec = get_spec(name)
    model = create_model(name, input_shape=spec.min_input, include_top=False)
    s = summarize(model)
    assert s.totals.params == model.count_params()
    assert s.totals.trainable_params == sum(math.prod(w.shape) for w in model.trainable_weights)
    assert s.totals.macs > 0 and not s.uncounted


# ----------------------------------------------------------------------------------------------
# The lecture's Inception blocks


def test_inception_naive_block():
    s = block_summary("inception-naive")
    assert s.totals.macs == 28 * 28 * (128 * 256 + 192 * 9 * 256 + 96 * 25 * 256) == 854_196_224
    assert s.row("inception_concat").output_shape == (28, 28, 128 + 192 + 96 + 256)
    assert [t.macs for t in s.groups.values()] == [28 * 28 * 128 * 256, 28 * 28 * 192 * 9 * 256,
                                                    28 * 28 * 96 * 25 * 256, 0]
    assert "agrees" in s.notes[-1]


def test_inception_reduced_block_is_271m_not_the_slides_358m():
    s = block_summary("inception-reduced")
    terms = [64 * 256, 64 * 256, 128 * 256, 192 * 9 * 64, 96 * 25 * 64, 64 * 256]  # the slide's six
    assert s.totals.macs == 28 * 28 * sum(terms) == 271_351_808
    assert s.row("inception_concat").output_shape == (28, 28, 480)
    branches = {label: t.macs for label, t in s.groups.items()}
    assert branches == {"1x1 conv @128": 28 * 28 * 128 * 256,
                        "1x1 @64 -> 3x3 conv @192": 28 * 28 * (64 * 256 + 192 * 9 * 64),
                        "1x1 @64 -> 5x5 conv @96": 28 * 28 * (64 * 256 + 96 * 25 * 64),
                        "3x3 max pool -> 1x1 @64": 28 * 28 * 64 * 256}
    assert "358 M" in s.notes[-1] and "slip" in s.notes[-1]
    assert "271,351,808 (271 M)" in format_summary(s)


def test_block_registry():
    assert sorted(BLOCKS) == ["inception-naive", "inception-reduced"]
    from kerascnn.errors import ModelError

    with pytest.raises(ModelError, match="inception-naive"):
        block_summary("inception-v9")


# ----------------------------------------------------------------------------------------------
# Multiply-adds against independent counters


def _tf_flops(model, shape):
    """TensorFlow's profiler on the traced graph: 2 FLOPs per multiply-add."""
    import tensorflow as tf

    graph = tf.function(model).get_concrete_function(tf.TensorSpec((1, *shape), tf.float32)).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(graph, options=options).total_float_ops


@pytest.mark.parametrize("layer, shape", [
    (lambda: keras.layers.Conv2D(12, 3, strides=2, padding="same", use_bias=False), (17, 19, 6)),
    (lambda: keras.layers.Conv2D(8, 5, dilation_rate=2, use_bias=False), (20, 20, 4)),
    (lambda: keras.layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2, use_bias=False), (11, 11, 4)),
    (lambda: keras.layers.SeparableConv2D(7, 3, use_bias=False), (10, 12, 4)),
    (lambda: keras.layers.Dense(9, use_bias=False), (13,)),
], ids=["conv-strided", "conv-dilated", "depthwise", "separable", "dense"])
def test_macs_match_tensorflow_profiler(layer, shape):
    inputs = keras.Input(shape)
    model = keras.Model(inputs, layer()(inputs))
    assert 2 * summarize(model).totals.macs == _tf_flops(model, shape)


def _numpy_conv(x, kernel, strides, dilation, groups):
    """A direct grouped convolution ('valid') that counts its multiply-adds as it goes."""
    kh, kw, cin_g, cout = kernel.shape
    cout_g = cout // groups
    span_h, span_w = (kh - 1) * dilation + 1, (kw - 1) * dilation + 1
    oh, ow = (x.shape[0] - span_h) // strides + 1, (x.shape[1] - span_w) // strides + 1
    out, macs = np.zeros((oh, ow, cout)), 0
    for i in range(oh):
        for j in range(ow):
            for g in range(groups):
                patch = x[i * strides:i * strides + span_h:dilation, j * strides:j * strides + span_w:dilation,
                          g * cin_g:(g + 1) * cin_g]
                k = kernel[..., g * cout_g:(g + 1) * cout_g]
                out[i, j, g * cout_g:(g + 1) * cout_g] = np.tensordot(patch, k, axes=3)
                macs += patch.size * cout_g
    return out, macs


@pytest.mark.parametrize("strides, dilation, groups", [(2, 1, 3), (1, 2, 2), (1, 1, 1)])
def test_grouped_conv_macs_match_a_numpy_convolution(strides, dilation, groups):
    inputs = keras.Input((13, 11, 6))
    conv = keras.layers.Conv2D(12, 3, strides=strides, dilation_rate=dilation, groups=groups, use_bias=False)
    model = keras.Model(inputs, conv(inputs))
    x = np.random.default_rng(0).normal(size=(13, 11, 6)).astype("float32")
    expected, macs = _numpy_conv(x, conv.kernel.numpy(), strides, dilation, groups)
    np.testing.assert_allclose(model(x[None]).numpy()[0], expected, rtol=1e-4, atol=1e-4)
    assert summarize(model).totals.macs == macs


def test_transposed_conv_macs():
    inputs = keras.Input((6, 5, 4))
    model = keras.Model(inputs, keras.layers.Conv2DTranspose(7, 3, strides=2)(inputs))
    assert summarize(model).totals.macs == 6 * 5 * 4 * 3 * 3 * 7  # each input scattered into 3x3x7


# ----------------------------------------------------------------------------------------------
# Receptive fields against gradients


def _gradient_box(model, unit):
    """Rows/cols of the input that reach output unit (i, j): where the gradient is non-zero."""
    import tensorflow as tf

    x = tf.random.uniform((1, *model.input.shape[1:]))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = model(x)
        target = tf.reduce_sum(y[0, unit[0], unit[1]])
    g = np.abs(tape.gradient(target, x).numpy()[0]).sum(-1)
    rows, cols = np.nonzero(g.sum(1))[0], np.nonzero(g.sum(0))[0]
    return (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1), (rows.min(), cols.min())


def _check_fields_by_gradient(model, layer_names):
    # Positive weights and linear layers: no cancellation, so the non-zero gradient is exactly
    # the field; two neighbouring units' fields start one jump apart.
    model.set_weights([np.abs(w) + 0.1 for w in model.get_weights()])
    s = summarize(model)
    for name in layer_names:
        sub = keras.Model(model.input, model.get_layer(name).output)
        h, w = sub.output.shape[1:3]
        size, start = _gradient_box(sub, (h // 2, w // 2))
        _, below = _gradient_box(sub, (h // 2 + 1, w // 2))
        _, right = _gradient_box(sub, (h // 2, w // 2 + 1))
        jump = (below[0] - start[0], right[1] - start[1])
        assert (tuple(size), jump) == (s.row(name).rf, s.row(name).jump), name


def test_receptive_fields_match_gradients_on_a_conv_stack():
    L = keras.layers
    inputs = keras.Input((96, 96, 1))
    x = L.Conv2D(2, 3, name="c1")(inputs)
    x = L.Conv2D(2, 3, strides=2, name="c2")(x)
    x = L.AveragePooling2D(2, name="p1")(x)
    x = L.Conv2D(2, 3, dilation_rate=2, name="c3")(x)
    x = L.Conv2D(2, (1, 5), name="c4")(x)  # wider than tall
    x = L.DepthwiseConv2D(3, strides=2, name="d5")(x)
    model = keras.Model(inputs, x)
    _check_fields_by_gradient(model, ["c1", "c2", "p1", "c3", "c4", "d5"])
    # By hand: c1 3/1, c2 3+2*1=5/2, p1 5+1*2=7/4, c3 7+2*2*4=23/4, c4 23 x (23+4*4=39).
    assert summarize(model).row("c4").rf == (23, 39)


def test_receptive_fields_match_gradients_across_branches():
    L = keras.layers
    inputs = keras.Input((64, 64, 1))
    a = L.Conv2D(2, (1, 3), padding="same", name="a")(inputs)
    b = L.Conv2D(2, (5, 1), padding="same", name="b")(inputs)
    x = L.Concatenate(name="cat")([a, b])  # the branches together see 5x3
    x = L.Conv2D(2, 3, strides=2, name="c")(x)
    model = keras.Model(inputs, x)
    _check_fields_by_gradient(model, ["cat", "c"])
    assert summarize(model).row("cat").rf == (5, 3)


def test_receptive_fields_match_gradients_on_lenet5():
    model = create_model("lenet5", num_classes=10, include_top=False, activation="linear", subsample="avg")
    _check_fields_by_gradient(model, ["conv1", "pool1", "conv2"])


# ----------------------------------------------------------------------------------------------
# Graphs: nested, shared, Sequential, sizes given at summary time


def test_nested_model_with_free_input_size_is_walked_at_the_outer_size():
    L = keras.layers
    inner = keras.Sequential([keras.Input((None, None, 3)), L.Conv2D(4, 3, name="ic"), L.MaxPooling2D(name="ip")],
                             name="inner")
    inputs = keras.Input((16, 16, 3), name="image")
    shared = L.Conv2D(4, 1, name="shared")
    x = shared(inner(inputs))
    x = shared(L.Conv2D(4, 3, padding="same", name="mid")(x))  # the same layer again
    model = keras.Model(inputs, x)
    s = summarize(model)
    assert [r.name for r in s.rows] == ["image", "inner/ic", "inner/ip", "shared", "mid", "shared#2"]
    assert s.row("inner/ic").output_shape == (14, 14, 4)
    assert s.row("inner/ic").macs == conv_macs(14, 14, 4, 3, 3)
    assert s.row("shared#2").params == 0 and s.row("shared#2").macs == s.row("shared").macs == 7 * 7 * 4 * 4
    assert s.totals.params == model.count_params()
    assert s.row("mid").rf == (4 + 2 * 2, 4 + 2 * 2)


def test_frozen_keras_application_nested_as_a_layer():
    base = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    base.trainable = False  # the transfer-learning set-up: only the new head trains
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D(name="gap")(base(inputs))
    model = keras.Model(inputs, keras.layers.Dense(5, name="head")(x))
    s = summarize(model)
    assert (s.totals.params, s.totals.trainable_params) == (model.count_params(), 1280 * 5 + 5)
    assert s.totals.macs == summarize(base).totals.macs + 1280 * 5
    assert s.row(f"{base.name}/Conv1").output_shape == (16, 16, 32)


def test_input_shape_at_summary_time():
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(8, 3, strides=2, padding="same")(inputs))
    with pytest.raises(ValueError, match="input_shape"):
        summarize(model)
    s = summarize(model, input_shape=(32, 40, 3))
    assert s.rows[-1].output_shape == (16, 20, 8) and s.totals.macs == conv_macs(16, 20, 8, 3, 3)


def test_subclassed_model_is_refused():
    class Net(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="needs a functional model"):
        summarize(Net())


def test_batch_norm_counts_params_not_macs():
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.BatchNormalization()(inputs))
    s = summarize(model)
    assert (s.totals.params, s.totals.trainable_params, s.totals.macs) == (12, 6, 0)


# ----------------------------------------------------------------------------------------------
# Formats


def test_formats():
    s = summary_for("lenet5", num_classes=10)
    table = format_summary(s, "table")
    assert "61,706" in table and "416,520 (417 K)" in table and "28x28x6" in table
    md = format_summary(s, "markdown")
    assert md.startswith("### lenet5") and "| conv1 | Conv2D | 28x28x6 | 156 | 117,600 | 5 | 1 |" in md
    data = json.loads(format_summary(s, "json"))
    assert data["totals"] == {"params": 61_706, "trainable_params": 61_706, "non_trainable_params": 0, "macs": 416_520}
    assert data["rows"][2]["rf"] == [5, 5]
    rows = list(csv.DictReader(io.StringIO(format_summary(s, "csv"))))
    assert sum(int(r["macs"]) for r in rows) == 416_520 and rows[4]["rf"] == "14x14"
    with pytest.raises(ValueError, match="Unknown summary format"):
        format_summary(s, "xml")


def test_human_numbers():
    assert [human(n) for n in (999, 61_706, 6_998_552, 854_196_224, 271_351_808, 15_470_264_320)] == \
        ["999", "61.7 K", "7.00 M", "854 M", "271 M", "15.5 G"]


def test_importing_the_analysis_package_needs_no_tensorflow():
    code = "import sys, kerascnn.analysis, kerascnn.cli; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
