"""Every registered model, table-driven over the registry: a new model is tested for free.

Each model is built with weights=None at its smallest input (fast), checked for the naming
contract ("input", "preprocess", ..., "predictions"; unique, stable names) and trained one step.
Parameter counts are pinned against the papers / Keras in tests/test_models_counts.py.
"""
import re

import numpy as np
import pytest

from kerascnn.errors import ModelError
from kerascnn.models import create_model, get_spec, list_models

ALL_MODELS = list_models()
# Keras's own auto names ("conv2d_3", "batch_normalization", ...) change with build order.
AUTO_NAME = re.compile(r"^(conv2d|dense|batch_normalization|activation|max_pooling2d|average_pooling2d|"
                       r"dropout|flatten|concatenate|add|re_lu|zero_padding2d|global_average_pooling2d|"
                       r"input_layer|lambda|conv1d|embedding|text_vectorization|global_max_pooling1d)(_\d+)?$")
# keras.applications networks name some layers automatically (InceptionV3's conv2d_bn, MobileNet's
# pooling, ...); that is Keras's contract, not ours.
KERAS_AUTO_NAMED = {n for n in ALL_MODELS if get_spec(n).builder.__module__ == "kerascnn.models.keras_apps"}
KERAS_AUTO_NAMED |= {"inception_v3"}
# Deeper copies of an architecture whose no-top pooling is checked at its shallowest (resnet50,
# resnet50_v2, resnet20): the same builder and head, only more blocks, so they skip that check (every
# model, these included, builds and trains one step). Keras's largest wrapper runs with -m slow.
DEEPER_COPIES = {"resnet101", "resnet152", "resnet101_v2", "resnet152_v2", "resnet110"}
SLOW = {"inception_resnet_v2"}
# The image models (the pooling checks are about spatial feature maps; Kim's text CNN has its own
# tests in tests/test_kim_cnn.py).
IMAGE_MODELS = [n for n in ALL_MODELS if get_spec(n).inputs == "image"]
MODEL_PARAMS = [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in IMAGE_MODELS
                if n not in DEEPER_COPIES]
# The first two layers of each kind of input: the input and the model's own preprocessing of raw
# inputs (an image+question model's image input is "image", its question input "question").
FIRST_LAYERS = {"image": ["input", "preprocess"], "text": ["input", "vectorize"],
                "image+question": ["image", "preprocess"], "audio": ["audio", "input_embedding"]}


def _num_classes(spec) -> int:
    # AlphaGo's policy has one class per board point; everything else gets a small head.
    if spec.family == "alphago":
        return spec.min_input[0] * spec.min_input[1]
    return 3


def _batch(shape, n=2, seed=0, inputs="image"):
    if inputs == "text":
        return np.array(["a good film", "a bad film, sadly"][:n], dtype=object)
    if inputs == "image+question":
        return {"image": _batch(shape, n, seed), "question": _batch((), n, seed, "text")}
    if inputs == "audio":  # mu-law classes of a clip
        return {"audio": np.random.default_rng(seed).integers(0, 256, (n,) + tuple(shape)).astype("int32")}
    return np.random.default_rng(seed).uniform(0, 255, (n,) + tuple(shape)).astype("float32")


def test_registry_covers_the_lectures():
    expected = {
        "lenet5", "alexnet", "alexnet_lrn", "zfnet", "googlenet", "inception_v3", "inception_v4",
        "inception_resnet_v2", "xception", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
        "resnet50_v2", "resnet101_v2", "resnet152_v2", "resnet20", "resnet32", "resnet44", "resnet56",
        "resnet110", "alphago_policy", "mobilenet_v2",
        *(f"{v}{bn}" for v in ("vgg11", "vgg11_lrn", "vgg13", "vgg16c", "vgg16", "vgg19") for bn in ("", "_bn")),
    }
    assert expected <= set(ALL_MODELS)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_builds_names_and_trains_one_step(name):
    spec = get_spec(name)
    classes = _num_classes(spec)
    model = create_model(name, input_shape=spec.min_input, num_classes=classes)
    # An audio model predicts the next sample's 256 mu-law classes at every sample of the clip.
    audio = spec.inputs == "audio"
    assert model.output_shape == ((None, *spec.min_input, 256) if audio else (None, classes))
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names)), "duplicate layer names"
    assert names[:2] == FIRST_LAYERS[spec.inputs]
    assert names[-1] == "predictions" and "logits" in names
    if spec.inputs in ("image", "image+question"):
        assert model.get_layer("preprocess").mode == spec.preprocessing
    if name not in KERAS_AUTO_NAMED:
        # "flatten", "dropout" and "embedding" are names we give on purpose (Keras's VGG16 has "flatten" too).
        auto = [n for n in names if AUTO_NAME.match(n) and n not in ("flatten", "dropout", "embedding")]
        assert not auto, "layers left with Keras auto names"
    # One optimisation step on a tiny batch. Eager: for one step, tracing a 500-layer graph costs
    # ten times the step itself (graph mode is covered by test_graph_mode_train_step).
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", run_eagerly=True)
    labels = np.zeros((2, *spec.min_input), "int32") if audio else np.array([0, 1])
    loss = model.train_on_batch(_batch(spec.min_input, inputs=spec.inputs), labels)
    assert np.isfinite(loss)


@pytest.mark.parametrize("name", MODEL_PARAMS)
def test_include_top_false_pooling(name):
    spec = get_spec(name)
    model = create_model(name, input_shape=spec.min_input, include_top=False, pooling="avg")
    assert model.layers[-1].name == "avg_pool"
    features = model.layers[-1].input  # the feature map under the pooling
    assert len(features.shape) == 4 and features.shape[1] >= 1
    assert model.output_shape == (None, features.shape[-1])
    assert "predictions" not in [layer.name for layer in model.layers]


@pytest.mark.parametrize("pooling,rank", [(None, 4), ("max", 2)])
def test_pooling_modes(pooling, rank):
    model = create_model("resnet20", include_top=False, pooling=pooling)
    assert len(model.output_shape) == rank
    assert model.output_shape[-1] == 64


@pytest.mark.parametrize("name", ["resnet20", "alphago_policy", "vgg11_lrn"])
def test_graph_mode_train_step(name):
    """The custom layers (option-A shortcut, position bias, LRN) trace inside tf.function, and the traced
    steps compute what the same steps run eagerly compute: the losses and every weight after two updates."""
    import keras

    spec = get_spec(name)
    kwargs = {"filters": 8} if name == "alphago_policy" else {}
    x, y = _batch(spec.min_input), np.array([0, 1])
    runs = []
    for eager in (False, True):
        keras.utils.set_random_seed(0)  # the same initial weights and dropout seeds for both runs
        model = create_model(name, input_shape=spec.min_input, num_classes=_num_classes(spec), **kwargs)
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy",
                      run_eagerly=eager)
        initial = model.get_weights()
        losses = [float(model.train_on_batch(x, y)) for _ in range(2)]
        runs.append((losses, model.get_weights(), initial))
    (graph_losses, graph_weights, initial), (eager_losses, eager_weights, _) = runs
    assert np.isfinite(graph_losses).all() and graph_losses[1] != graph_losses[0]
    np.testing.assert_allclose(graph_losses, eager_losses, rtol=1e-4)
    for traced, eager, start in zip(graph_weights, eager_weights, initial):
        np.testing.assert_allclose(traced, eager, rtol=1e-4, atol=1e-6)
    assert all(not np.array_equal(w, w0) for w, w0 in zip(graph_weights, initial)), "a weight the step missed"


def test_too_small_input_is_a_model_error():
    spec = get_spec("alexnet")
    with pytest.raises(ModelError, match="too small"):
        create_model("alexnet", input_shape=(spec.min_input[0] - 1,) * 2 + (3,))


def test_unknown_model_lists_close_matches():
    with pytest.raises(ModelError, match="resnet50"):
        create_model("resnet5O")


def test_alphago_num_classes_must_match_board():
    with pytest.raises(ModelError, match="361"):
        create_model("alphago_policy", num_classes=1000, filters=4)


def test_cifar_resnet_depth_must_be_6n_plus_2():
    with pytest.raises(ValueError, match="6n\\+2"):
        create_model("resnet20", depth=21)


def test_variant_model_names():
    assert create_model("vgg11_bn", input_shape=(32, 32, 3), include_top=False).name == "vgg11_bn"
    assert create_model("resnet56", input_shape=(8, 8, 3)).name == "resnet56"
    assert create_model("resnet34", input_shape=(32, 32, 3), include_top=False).name == "resnet34"
