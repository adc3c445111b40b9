"""Weights: Keras's VGG files load into our VGG (same names and shapes), `weights="imagenet"` reads the
Keras cache, and offline it fails fast with a ModelError; weights files (.weights.h5, .keras, no-top
backbones) load into our builders. No test downloads anything (see also tests/test_weights.py)."""
import h5py
import keras
import numpy as np
import pytest
from keras.src.applications import vgg16 as keras_vgg16
from keras.src.legacy.saving import legacy_h5_format

from kerascnn.models import weights as kw
from kerascnn.errors import ModelError
from kerascnn.models import create_model


def test_keras_vgg16_weights_file_loads_into_ours(tmp_path):
    theirs = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    path = str(tmp_path / "vgg16_notop.weights.h5")
    theirs.save_weights(path)
    ours = create_model("vgg16", input_shape=(32, 32, 3), include_top=False, weights=path)
    for layer in theirs.layers[1:]:
        for a, b in zip(layer.get_weights(), ours.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(a, b)


def _cached_vgg16_notop(tmp_path, monkeypatch):
    """Keras's cache holding a stand-in for vgg16_..._notop.h5 (legacy h5 format, random values),
    which get_file returns (its hash would not match, so the real get_file would download)."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    source = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    path = str(tmp_path / "models" / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, source)
    monkeypatch.setattr(kw, "is_online", lambda *a, **k: pytest.fail("probed the network for a cached file"))
    return source, path


def test_imagenet_weights_come_from_the_keras_cache(tmp_path, monkeypatch):
    source, path = _cached_vgg16_notop(tmp_path, monkeypatch)
    monkeypatch.setattr(keras_vgg16.file_utils, "get_file", lambda *args, **kwargs: path)
    model = create_model("vgg16", input_shape=(32, 32, 3), include_top=False, pooling="avg", weights="imagenet")
    assert model.get_layer("preprocess").mode == "caffe"
    np.testing.assert_array_equal(model.get_layer("block5_conv3").get_weights()[0],
                                  source.get_layer("block5_conv3").get_weights()[0])


def test_imagenet_weights_with_other_classes_get_a_new_head(tmp_path, monkeypatch):
    """Transfer learning as in timm: pretrained backbone, global average pooling, a new classifier."""
    source, path = _cached_vgg16_notop(tmp_path, monkeypatch)
    asked = []
    monkeypatch.setattr(keras_vgg16.file_utils, "get_file", lambda fname, *a, **k: asked.append(fname) or path)
    model = create_model("vgg16", input_shape=(32, 32, 3), num_classes=5, weights="imagenet")
    assert asked and asked[0].endswith("_notop.h5"), "the no-top file is the one needed"
    assert model.output_shape == (None, 5)
    assert [layer.name for layer in model.layers[-3:]] == ["avg_pool", "logits", "predictions"]
    np.testing.assert_array_equal(model.get_layer("block1_conv1").get_weights()[0],
                                  source.get_layer("block1_conv1").get_weights()[0])


def test_imagenet_weights_offline_is_a_model_error(tmp_path, monkeypatch):
    """The probe said online, then Keras's download failed anyway (the network dropped)."""
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -3] "
                        "Temporary failure in name resolution")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(kw, "is_online", lambda *a, **k: True)
    monkeypatch.setattr(keras_vgg16.file_utils, "get_file", offline)
    with pytest.raises(ModelError, match=r"Offline, download https://\S+/vgg16_weights_tf_dim_ordering_tf_"
                                         r"kernels_notop.h5 into "):
        create_model("vgg16", input_shape=(32, 32, 3), include_top=False, weights="imagenet")


@pytest.mark.parametrize("name", ["vgg16_bn", "vgg11", "alexnet"])
def test_no_imagenet_weights_for_own_builders(name):
    with pytest.raises(ModelError):
        create_model(name, input_shape=(67, 67, 3), include_top=False, weights="imagenet")


def test_weights_file_round_trip_for_own_builder(tmp_path):
    model = create_model("resnet20", input_shape=(16, 16, 3))
    path = str(tmp_path / "r20.weights.h5")
    model.save_weights(path)
    again = create_model("resnet20", input_shape=(16, 16, 3), weights=path)
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_keras_model_file_loads(tmp_path):
    model = create_model("lenet5", input_shape=(32, 32, 1), num_classes=10)
    path = str(tmp_path / "lenet5.keras")
    model.save(path)
    again = create_model("lenet5", input_shape=(32, 32, 1), num_classes=10, weights=path)
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("suffix", [".weights.h5", ".keras"])
def test_a_backbone_file_loads_under_a_new_classifier(tmp_path, suffix):
    """A no-top file (a backbone) into a model with its classifier: all but "logits" load."""
    backbone = create_model("resnet20", input_shape=(16, 16, 3), include_top=False, pooling="avg")
    path = str(tmp_path / f"backbone{suffix}")
    backbone.save_weights(path) if suffix == ".weights.h5" else backbone.save(path)
    model = create_model("resnet20", input_shape=(16, 16, 3), num_classes=7, weights=path)
    assert model.output_shape == (None, 7)
    for layer in backbone.layers:
        for a, b in zip(layer.get_weights(), model.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(a, b)


def test_a_file_of_another_network_is_a_model_error(tmp_path):
    path = str(tmp_path / "lenet5.weights.h5")
    create_model("lenet5", input_shape=(32, 32, 1), num_classes=10).save_weights(path)
    with pytest.raises(ModelError, match="lenet5.weights.h5"):
        create_model("resnet20", input_shape=(16, 16, 3), weights=path)
