"""Parameter counts and shapes pinned against independent references: the papers' tables,
torchvision's / TF-slim's counts and keras.applications itself.

Counts that depend on the input (AlexNet's and VGG's fully connected layers) are built at the paper's
input; the others are the same at any size and are built small.
"""
import keras
import numpy as np
import pytest

from kerascnn.models import create_model, get_spec


def _trainable(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


# name -> (build kwargs, total params, trainable params); 1000 classes unless stated.
PINNED = {
    "alexnet": ({}, 62_378_344, 62_378_344),  # the lectures' single-tower count
    "alexnet_lrn": ({}, 62_378_344, 62_378_344),  # LRN has no parameters
    "zfnet": ({}, 107_627_624, 107_627_624),
    # Simonyan & Zisserman Table 2: A, A-LRN 133 M, B 133 M, C 134 M, D 138 M, E 144 M.
    "vgg11": ({}, 132_863_336, 132_863_336),
    "vgg11_lrn": ({}, 132_863_336, 132_863_336),
    "vgg13": ({}, 133_047_848, 133_047_848),
    "vgg16c": ({}, 133_638_952, 133_638_952),
    "vgg16": ({}, 138_357_544, 138_357_544),
    "vgg19": ({}, 143_667_240, 143_667_240),
    "vgg16_bn": ({}, 138_374_440, 138_365_992),  # torchvision vgg16_bn: 138,365,992
    "googlenet": ({"input_shape": (32, 32, 3)}, 6_998_552, 6_998_552),
    "inception_v4": ({"input_shape": (75, 75, 3), "num_classes": 1001}, 42_712_937, 42_649_769),
    "resnet18": ({"input_shape": (32, 32, 3)}, 11_699_112, 11_689_512),  # torchvision: 11,689,512
    "resnet34": ({"input_shape": (32, 32, 3)}, 21_814_696, 21_797_672),  # torchvision: 21,797,672
    "resnet50": ({"input_shape": (32, 32, 3)}, 25_636_712, 25_583_592),  # Keras: 25,636,712
    "resnet20": ({}, 271_098, 269_722),  # He et al. 2015 Table 6: 0.27 M
    "resnet56": ({}, 857_082, 853_018),  # 0.85 M
    "resnet110": ({}, 1_736_058, 1_727_962),  # 1.7 M
    "alphago_policy": ({}, 3_882_793, 3_882_793),
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_parameter_counts(name):
    kwargs, total, trainable = PINNED[name]
    model = create_model(name, **kwargs)
    assert (model.count_params(), _trainable(model)) == (total, trainable)


def test_googlenet_with_auxiliary_heads():
    model = create_model("googlenet", input_shape=(224, 224, 3), aux_logits=True)
    # Each aux head: 1x1 conv (512 or 528 -> 128), FC 2048 -> 1024, FC 1024 -> 1000.
    assert model.count_params() == 6_998_552 + 3_188_840 + 3_190_888
    assert model.output_names == ["predictions", "aux1_predictions", "aux2_predictions"]
    assert model.get_layer("aux1_pool").output.shape[1:] == (4, 4, 512)
    assert model.get_layer("aux2_pool").output.shape[1:] == (4, 4, 528)


GOOGLENET_TABLE1 = {  # Szegedy et al. 2014, Table 1 "output size"
    "conv1_7x7": (112, 112, 64), "pool1": (56, 56, 64), "conv2_3x3": (56, 56, 192), "pool2": (28, 28, 192),
    "inception_3a_concat": (28, 28, 256), "inception_3b_concat": (28, 28, 480), "pool3": (14, 14, 480),
    "inception_4a_concat": (14, 14, 512), "inception_4b_concat": (14, 14, 512),
    "inception_4c_concat": (14, 14, 512), "inception_4d_concat": (14, 14, 528),
    "inception_4e_concat": (14, 14, 832), "pool4": (7, 7, 832), "inception_5a_concat": (7, 7, 832),
    "inception_5b_concat": (7, 7, 1024),
}


def test_googlenet_table1_output_sizes():
    model = create_model("googlenet")
    assert {n: tuple(model.get_layer(n).output.shape[1:]) for n in GOOGLENET_TABLE1} == GOOGLENET_TABLE1


def test_alexnet_and_zfnet_feature_sizes():
    alex = create_model("alexnet", lrn=True)
    assert [tuple(alex.get_layer(n).output.shape[1:]) for n in ("conv1", "pool1", "lrn1", "pool2", "pool5")] == [
        (55, 55, 96), (27, 27, 96), (27, 27, 96), (13, 13, 256), (6, 6, 256)]
    zf = create_model("zfnet")  # Zeiler & Fergus Figure 3: 110, 55, 26, 13, 6
    assert [tuple(zf.get_layer(n).output.shape[1:]) for n in ("conv1", "pool1", "conv2", "pool2", "pool5")] == [
        (110, 110, 96), (55, 55, 96), (26, 26, 256), (13, 13, 256), (6, 6, 512)]


def _weight_layers(model):
    # Keras names its classifier "predictions", ours "logits" (+ a float32 activation "predictions").
    rename = {"predictions": "logits"}
    return [(rename.get(layer.name, layer.name), [tuple(w.shape) for w in layer.weights])
            for layer in model.layers if layer.weights]


@pytest.mark.parametrize("name,app", [("vgg16", keras.applications.VGG16), ("vgg19", keras.applications.VGG19)])
def test_vgg_matches_keras_applications(name, app):
    # At 32x32 (fc1 512 -> 4096) to stay fast; the 224x224 counts are pinned in PINNED.
    ours = create_model(name, input_shape=(32, 32, 3))
    theirs = app(weights=None, input_shape=(32, 32, 3))
    assert ours.count_params() == theirs.count_params()
    assert _weight_layers(ours) == _weight_layers(theirs)
    # Every Keras layer name exists in ours (ours only adds the input, preprocess and dropouts).
    ours_names = {layer.name for layer in ours.layers}
    assert {layer.name for layer in theirs.layers[1:]} <= ours_names


def test_resnet18_uses_keras_resnet_names():
    names = [layer.name for layer in create_model("resnet18", input_shape=(32, 32, 3)).layers]
    assert names[2:8] == ["conv1_pad", "conv1_conv", "conv1_bn", "conv1_relu", "pool1_pad", "pool1_pool"]
    for layer in ("conv2_block1_1_conv", "conv2_block2_out", "conv3_block1_0_conv", "conv5_block2_out", "avg_pool"):
        assert layer in names
    keras_names = {layer.name for layer in keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3)).layers}
    assert {"conv1_conv", "conv3_block1_0_conv", "conv3_block1_1_relu", "conv5_block2_out"} <= keras_names


@pytest.mark.parametrize("name,app,shape", [
    ("resnet50", keras.applications.ResNet50, (32, 32, 3)),
    ("inception_v3", keras.applications.InceptionV3, (75, 75, 3)),
])
def test_wrappers_match_keras_applications(name, app, shape):
    ours = create_model(name, input_shape=shape)
    ours_count, ours_layers = ours.count_params(), _weight_layers(ours)
    keras.backend.clear_session()  # InceptionV3 names layers automatically: restart the counters
    theirs = app(weights=None, input_shape=shape)
    assert ours_count == theirs.count_params()
    assert ours_layers == _weight_layers(theirs)


def test_registry_inputs_are_the_papers():
    assert get_spec("alexnet").default_input == (227, 227, 3)
    assert get_spec("inception_v4").default_input == (299, 299, 3)
    assert get_spec("alphago_policy").default_input == (19, 19, 48)
    assert get_spec("resnet56").default_input == (32, 32, 3)
