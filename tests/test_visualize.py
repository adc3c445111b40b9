"""kerascnn.analysis.visualize and `kerascnn visualize`: filters, activations, Grad-CAM, maximisation.

Grad-CAM is checked against a hand computation (a 1x1 conv under global pooling, where the class
score's gradient is the dense weight over the map's area), against itself on a nested backbone with
the same weights, and on a tiny CNN trained for a few steps to tell images with a bright square from
images without: the heat map must peak inside the square, on the plain and the nested model alike.
"""
import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from kerascnn.analysis.visualize import (activations, cam_model, filter_grid, filters, gradcam, maximize,
                                         parse_channels, strongest_channels)
from kerascnn.cli import main
from kerascnn.errors import SettingError, UnknownNameError
from data_helpers import tiny_cnn

SIZE = 32
SQUARE = 8


def _plain(num_classes: int = 2) -> keras.Model:
    """Conv features at 16x16 under global pooling, then a softmax layer: Grad-CAM's home ground."""
    return tiny_cnn(num_classes, pool=True, softmax=True)


def _nested(plain: keras.Model) -> keras.Model:
    """The same network as a fine-tuned classifier: a backbone model called as one layer, then the head."""
    backbone = keras.Model(plain.input, plain.get_layer("c2").output, name="backbone")
    inp = keras.Input((SIZE, SIZE, 3), name="image")
    x = backbone(inp, training=False)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(2, name="logits")(x)
    outer = keras.Model(inp, keras.layers.Activation("softmax", name="predictions")(x), name="classifier")
    outer.get_layer("logits").set_weights(plain.get_layer("logits").get_weights())
    return outer


def _squares(n: int, seed: int):
    """Dark noise; odd examples carry a bright square (class 1). Returns images, labels, square corners."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 60, (n, SIZE, SIZE, 3)).astype(np.float32)
    y = np.arange(n) % 2
    corners = rng.integers(0, SIZE - SQUARE + 1, (n, 2))
    for i in np.flatnonzero(y):
        r, c = corners[i]
        x[i, r:r + SQUARE, c:c + SQUARE] = 255.0
    return x, y, corners


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    model = _plain()
    x, y, _ = _squares(256, seed=1)
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=32, epochs=4, verbose=0)
    return model


def _assert_peaks_in_squares(model, layer=None):
    x, y, corners = _squares(8, seed=7)
    pos = np.flatnonzero(y)
    heat, probs = gradcam(model, x[pos], class_index=1, layer=layer)
    assert heat.shape == (len(pos), SIZE, SIZE) and probs.shape == (len(pos), 2)
    assert heat.min() >= 0 and np.allclose(heat.max(axis=(1, 2)), 1.0)
    assert probs[:, 1].min() > 0.9  # the model has learnt the task
    for h, (r, c) in zip(heat, corners[pos]):
        pr, pc = np.unravel_index(np.argmax(h), h.shape)
        assert r - 1 <= pr <= r + SQUARE and c - 1 <= pc <= c + SQUARE, (pr, pc, r, c)


def test_gradcam_peaks_on_the_object_plain_and_nested(trained):
    _assert_peaks_in_squares(trained, layer="c2")
    nested = _nested(trained)
    assert cam_model(nested, "c2").layer_name == "backbone/c2"
    _assert_peaks_in_squares(nested, layer="c2")
    # The same weights give the same maps, through the nested graph or not, for both methods.
    x, _, _ = _squares(4, seed=3)
    for method in ("gradcam", "gradcam++"):
        a, pa = gradcam(trained, x, layer="c2", method=method)
        b, pb = gradcam(nested, x, layer="backbone/c2", method=method)
        np.testing.assert_allclose(a, b, atol=1e-5)
        np.testing.assert_allclose(pa, pb, atol=1e-6)


def test_gradcam_matches_a_hand_computation():
    """1x1 conv (linear) -> global average pooling -> dense logits -> softmax: d logit_c / d A[h, w, k]
    = W[k, c] / (H W) everywhere, so Grad-CAM = relu(sum_k W[k, c] / (H W) A_k), and Grad-CAM++'s
    alphas are g^2 / (2 g^2 + sum(A_k) g^3)."""
    keras.utils.set_random_seed(3)
    inp = keras.Input((4, 4, 2))
    a = keras.layers.Conv2D(3, 1, name="conv")(inp)
    x = keras.layers.GlobalAveragePooling2D()(a)
    x = keras.layers.Dense(2, name="logits")(x)
    model = keras.Model(inp, keras.layers.Activation("softmax", name="predictions")(x))
    img = np.random.default_rng(0).uniform(0, 255, (1, 4, 4, 2)).astype(np.float32)
    wc, bc = model.get_layer("conv").get_weights()
    wd, bd = model.get_layer("logits").get_weights()
    acts = img[0] @ wc[0, 0] + bc  # (4, 4, 3)
    logits = acts.mean((0, 1)) @ wd + bd
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    for c in (0, 1):
        g = np.broadcast_to(wd[:, c] / 16.0, acts.shape)
        expected = {"gradcam": np.maximum(acts @ (wd[:, c] / 16.0), 0)}
        alpha = g ** 2 / (2 * g ** 2 + acts.sum((0, 1)) * g ** 3)
        expected["gradcam++"] = np.maximum(acts @ (alpha * np.maximum(g, 0)).sum((0, 1)), 0)
        for method, cam in expected.items():
            heat, p = gradcam(model, img, class_index=c, layer="conv", method=method)
            want = cam / cam.max() if cam.max() > 0 else cam
            np.testing.assert_allclose(heat[0], want, atol=1e-5, err_msg=method)
            np.testing.assert_allclose(p[0], probs, rtol=1e-5)


def test_gradcam_default_layer_and_errors():
    from kerascnn.models import create_model

    lenet = create_model("lenet5", num_classes=10)
    assert cam_model(lenet).layer_name == "conv2"  # the registry's "cam" layer
    assert cam_model(_plain()).layer_name == "c2"  # no registry model: the last spatial map
    with pytest.raises(UnknownNameError):
        gradcam(lenet, np.zeros((32, 32, 1)), layer="conv9")
    with pytest.raises(SettingError):
        gradcam(lenet, np.zeros((32, 32, 1)), class_index=10)
    with pytest.raises(SettingError):
        gradcam(lenet, np.zeros((32, 32, 1)), layer="fc1")  # not a spatial map


def test_filters_and_grid():
    model = _plain()
    kernels, path = filters(model)
    assert path == "c1" and kernels.shape == (3, 3, 3, 8)
    grid = filter_grid(kernels)  # RGB tiles, 3x3 grid of 3x3 tiles with 1-pixel gaps
    assert grid.shape == (13, 13, 3) and grid.min() >= 0 and grid.max() <= 1
    tile = grid[1:4, 1:4]
    np.testing.assert_allclose(tile, 0.5 + 0.5 * kernels[..., 0] / np.abs(kernels[..., 0]).max(), atol=1e-6)
    # Per kernel every tile reaches the full range; globally only the strongest kernel does.
    reach = [np.abs(filter_grid(kernels[..., i:i + 1]) - 0.5).max() for i in range(8)]
    assert np.allclose(reach, 0.5)
    g = filter_grid(kernels, "global")
    strongest = int(np.argmax(np.abs(kernels).max(axis=(0, 1, 2))))
    assert np.isclose(np.abs(g - 0.5).max(), 0.5) and strongest >= 0
    k2, path2 = filters(model, "c2")  # 8 input channels: gray tiles, a row per filter
    assert path2 == "c2" and filter_grid(k2, max_filters=4).shape == (4 * 4 + 1, 8 * 4 + 1, 3)
    with pytest.raises(SettingError):
        filters(model, "avg_pool")
    with pytest.raises(SettingError):
        filter_grid(kernels, "weird")


def test_activations_and_strongest_channels():
    model = _plain()
    maps = activations(model, np.full((20, 24, 3), 128.0), ["c1", "c2"])  # resized to 32x32
    assert list(maps) == ["c1", "c2"]
    assert maps["c1"].shape == (32, 32, 8) and maps["c2"].shape == (16, 16, 16)
    m = np.zeros((2, 2, 4))
    m[..., 2], m[..., 0] = 3.0, 1.0
    assert list(strongest_channels(m, 2)) == [2, 0]


def test_maximize_raises_the_objective():
    from kerascnn.models.features import feature_extractor

    keras.utils.set_random_seed(5)
    model = _plain()
    ext = feature_extractor(model, "c2")
    noise = 128.0 + 8.0 * np.random.default_rng(0).standard_normal((1, SIZE, SIZE, 3))
    start = np.asarray(ext(noise.astype(np.float32)))[0].mean((0, 1))
    alive = [int(c) for c in np.flatnonzero(start > 0)[:2]]  # a ReLU channel dead everywhere has no gradient
    out = maximize(model, "c2", alive, steps=12, lr=20.0, progress=False)
    assert out.shape == (2, SIZE, SIZE, 3) and out.min() >= 0 and out.max() <= 255
    after = np.asarray(ext(out)).mean((1, 2))
    assert after[0, alive[0]] > 1.5 * start[alive[0]] and after[1, alive[1]] > 1.5 * start[alive[1]]
    assert parse_channels("0-2,7") == [0, 1, 2, 7]
    with pytest.raises(SettingError):
        maximize(model, "c2", [16], steps=1, progress=False)
    with pytest.raises(SettingError):
        parse_channels("a-b")


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    """The trained square detector as a `kerascnn fit`-style file: model.keras and classes.json."""
    folder = tmp_path_factory.mktemp("run")
    _nested(trained).save(folder / "model.keras")
    (folder / "classes.json").write_text(json.dumps(["plain", "square"]))
    from PIL import Image

    x, _, _ = _squares(2, seed=11)
    Image.fromarray(x[1].astype(np.uint8)).save(folder / "square.png")
    return folder


def test_cli_visualize_commands(saved, tmp_path):
    runner = CliRunner()
    model, image = str(saved / "model.keras"), str(saved / "square.png")
    r = runner.invoke(main, ["visualize", "gradcam", model, image, "--class", "square", "--out", str(tmp_path / "g")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "g" / "gradcam_square.png").is_file()
    settings = json.loads((tmp_path / "g" / "settings.json").read_text())
    assert settings["command"] == "visualize gradcam" and settings["settings"]["target_class"] == "square"
    r = runner.invoke(main, ["visualize", "filters", model, "--out", str(tmp_path / "f")])
    assert r.exit_code == 0 and (tmp_path / "f" / "filters_backbone_c1.png").is_file(), r.output
    r = runner.invoke(main, ["visualize", "activations", model, image, "--layers", "c1,backbone/c2",
                             "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "a").glob("*.png")) == [
        "activations_square_backbone_c1.png", "activations_square_backbone_c2.png"]
    r = runner.invoke(main, ["visualize", "maximize", model, "--layer", "c2", "--channels", "0-1", "--steps", "2",
                             "--out", str(tmp_path / "m")])
    assert r.exit_code == 0 and (tmp_path / "m" / "maximize_backbone_c2.png").is_file(), r.output


def test_cli_visualize_errors_and_print_config(saved, tmp_path):
    runner = CliRunner()
    model, image = str(saved / "model.keras"), str(saved / "square.png")
    r = runner.invoke(main, ["visualize", "gradcam", model, image, "--layer", "c9"])
    assert r.exit_code == 2 and "--layer" in r.output and "c9" in r.output
    r = runner.invoke(main, ["visualize", "gradcam", model, image, "--class", "circle"])
    assert r.exit_code == 2 and "--class" in r.output and "square" in r.output
    r = runner.invoke(main, ["visualize", "filters", "lenet6"])
    assert r.exit_code == 2 and "lenet5" in r.output
    r = runner.invoke(main, ["visualize", "maximize", model, "--layer", "c2", "--steps", "3", "--print-config"])
    assert r.exit_code == 0 and "steps = 3" in r.output and "# flag" in r.output
    (tmp_path / "m.toml").write_text("steps = 2\nchannels = \"0\"\n")
    r = runner.invoke(main, ["visualize", "maximize", model, "--layer", "c2", "--config", str(tmp_path / "m.toml"),
                             "--print-config"])
    assert r.exit_code == 0 and "steps = 2" in r.output and "# file" in r.output


def test_gradcam_on_a_keras_applications_network_and_its_saved_file(tmp_path):
    """keras.applications' own model (softmax inside its Dense, so the class probability is the score),
    built directly and loaded back from a .keras file: both give the maps of a hand computation on the
    network's last spatial map ("out_relu", 2x2 at 64 px) and the network's own probabilities."""
    import keras
    import tensorflow as tf

    from kerascnn.analysis import gradcam
    from kerascnn.models.loading import load_model

    keras.utils.set_random_seed(0)
    net = keras.applications.MobileNetV2(input_shape=(64, 64, 3), alpha=0.35, weights=None, classes=3)
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    # Independent reference: Selvaraju et al.'s Grad-CAM by hand, for each image's predicted class.
    tap = keras.Model(net.input, [net.get_layer("out_relu").output, net.output])
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        feature, out = tap(x, training=False)
        score = tf.reduce_sum(out * tf.one_hot(tf.argmax(out, axis=-1), 3), axis=-1)
    weights = tf.reduce_mean(tape.gradient(score, feature), axis=(1, 2))
    cam = tf.nn.relu(tf.einsum("nhwc,nc->nhw", feature, weights))
    big = tf.nn.relu(tf.image.resize(cam[..., None], (64, 64))[..., 0]).numpy()
    expected = big / np.maximum(big.max(axis=(1, 2), keepdims=True), 1e-30)
    assert expected.max() == 1 and np.ptp(expected) > 0.1
    path = tmp_path / "mnv2.keras"
    net.save(path)
    for model in (net, load_model(path)):
        maps, probs = gradcam(model, images)
        assert maps.shape == (2, 64, 64) and probs.shape == (2, 3)
        np.testing.assert_allclose(probs, out.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(maps, expected, atol=1e-4)
