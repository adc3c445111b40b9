"""Style transfer (kerascnn.apps.style_transfer, kerascnn.synthesis.stylization) and `kerascnn stylize`: on a tiny
random CNN, offline, in seconds."""
from __future__ import annotations

import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from click.testing import CliRunner  # noqa: E402

from kerascnn.apps import style_transfer as st  # noqa: E402
from kerascnn.cli import main  # noqa: E402
from kerascnn.synthesis.color import rgb_to_yuv  # noqa: E402
from kerascnn.errors import SettingError  # noqa: E402
from kerascnn.synthesis.perceptual import gram_matrix, gram_sum  # noqa: E402
from kerascnn.synthesis.stylization import StyleObjective, Weights  # noqa: E402

CONTENT = {"c3": 1.0}
STYLE = {"c1": 1.0, "c2": 1.0, "c3": 1.0}
LAYERS = dict(content_layers=CONTENT, style_layers=STYLE)
WEIGHTS = Weights(content=1.0, style=10.0, tv=1.0)


def tiny_cnn(downsample: str = "pool") -> "keras.Model":
    """Raw [0, 255] pixels in, like every kerascnn model; named 'same' convs, one 2x downsampling
    (a 2x2 max-pool, or a stride-2 'same' conv). Receptive field of c3: 12 px."""
    keras.utils.set_random_seed(7)
    inputs = keras.Input((None, None, 3), name="input")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(x)
    if downsample == "pool":
        x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c2")(x)
        x = keras.layers.MaxPooling2D(2, name="pool")(x)
    else:
        x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="c3")(x)
    return keras.Model(inputs, x, name="tiny")


@pytest.fixture(scope="module")
def model():
    return tiny_cnn()


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory, model):
    path = tmp_path_factory.mktemp("stylize") / "tiny.keras"
    model.save(path)
    return path


def pattern(h: int, w: int, amp: float = 70.0) -> np.ndarray:
    """A smooth coloured photo (mid-tones: 128 +- amp)."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([128 + amp * np.sin(x / 5.0), 128 + amp * np.cos(y / 7.0), 128 + 0.8 * amp * np.sin((x + y) / 9.0)],
                   -1)
    return img.astype(np.float32)


@pytest.fixture(scope="module")
def photo():
    return pattern(36, 48)


@pytest.fixture(scope="module")
def style():
    """Saturated, high-frequency colour noise: a style nothing like the photo (48 px: the app uses it
    at the output's size, 48, as it is)."""
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 255, (12, 12, 3))
    img = np.kron(base, np.ones((4, 4, 1))) * 0.6 + rng.uniform(0, 255, (48, 48, 3)) * 0.4
    img[..., 2] *= 0.3  # orange-ish: far from the photo's chroma
    return img.astype(np.float32)


@pytest.fixture(scope="module")
def files(tmp_path_factory, photo, style):
    from kerascnn.data.imageio import save_image

    d = tmp_path_factory.mktemp("images")
    stripes = np.zeros((40, 40, 3), np.float32)
    stripes[:, ::8] = stripes[:, 1::8] = stripes[:, 2::8] = 255.0
    stripes[..., 1] = 60.0
    return {"content": save_image(d / "content.jpg", pattern(30, 48)), "style": save_image(d / "style.jpg", style),
            "style2": save_image(d / "stripes.png", stripes)}


def cfg(**kw):
    """Resolved settings for the tiny model (layer dicts go through resolve's formatting)."""
    settings = {"model": "tiny", "weights": "none", **LAYERS, "size": 48, "start_size": 48, "iterations": 15, **kw}
    return st.resolve(settings, check_model=False).config


# ------------------------------------------------------------------------------------------------
# Gram matrices


def test_gram_matrix_and_gram_sum_match_numpy():
    f = np.random.default_rng(0).normal(size=(2, 5, 6, 7)).astype(np.float32)
    flat = f.reshape(2, 30, 7).astype(np.float64)
    expected_sum = np.stack([flat[b].T @ flat[b] for b in range(2)])
    got_sum = gram_sum(tf.constant(f)).numpy()
    got = gram_matrix(tf.constant(f)).numpy()
    assert got.shape == got_sum.shape == (2, 7, 7)
    np.testing.assert_allclose(got_sum, expected_sum, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got, expected_sum / 30.0, rtol=1e-5, atol=1e-6)
    # per sample: each batch item's Gram matrix is its own
    assert not np.allclose(got[0], got[1])
    np.testing.assert_allclose(got[1], gram_matrix(tf.constant(f[1:])).numpy()[0], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# The optimisation


def test_loss_falls_and_the_best_picture_is_returned(model, photo, style):
    frames = []
    c = cfg(save_every=1)
    result = st.run(c, photo, [style], model=model, progress=False, on_frame=lambda n, x: frames.append((n, x.copy())))
    assert [s["size"] for s in result.scales] == [[36, 48]]
    # An independent objective on the same model and layers scores the starting picture (the photo)
    objective = StyleObjective(model, CONTENT, STYLE, Weights(c.content_weight, c.style_weight, c.tv_weight),
                               tile=c.tile, halo=c.halo)
    targets = objective.targets(photo, [style], [1.0])
    first, first_parts, _ = objective.loss_and_gradient(photo, targets)
    assert first_parts["content"] < 1e-9 and first_parts["style"] > 0  # starts from the photo
    np.testing.assert_allclose(objective.loss_and_gradient(frames[0][1], targets)[0], first, rtol=1e-5)
    best = result.scales[0]["loss"]
    assert best < 0.5 * first, (first, result.scales)
    assert result.scales[0]["style"] < 0.2 * first_parts["style"]
    # The picture returned is the one that scored the best loss (not merely the last one evaluated)
    np.testing.assert_allclose(objective.loss_and_gradient(result.image, targets)[0], best, rtol=1e-4)
    losses = [objective.loss_and_gradient(x, targets)[0] for _, x in frames]
    assert [n for n, _ in frames] == list(range(1, len(frames) + 1)) and len(frames) >= 15
    np.testing.assert_allclose(min(losses), best, rtol=1e-4)
    assert min(losses[-5:]) < 0.5 * losses[0]
    assert result.image.shape == photo.shape and result.image.dtype == np.float32
    assert 0.0 <= result.image.min() and result.image.max() <= 255.0


def _fixed_case(model, photo, style):
    objective = StyleObjective(model, CONTENT, STYLE, WEIGHTS)
    return objective, objective.targets(photo, [style], [1.0])


def test_lbfgs_beats_adam_in_as_many_evaluations(model, photo, style):
    objective, targets = _fixed_case(model, photo, style)
    n = 12
    runs = {}
    for name in ("lbfgs", "adam"):
        losses = []

        def f(x):
            loss, _, grad = objective.loss_and_gradient(x, targets)
            losses.append(loss)
            return loss, grad

        x = st.lbfgs(f, photo.copy(), n) if name == "lbfgs" else st.adam(f, photo.copy(), n, 4.0)
        assert x.shape == photo.shape and 0.0 <= x.min() and x.max() <= 255.0
        runs[name] = losses
    # Same start, and only the first n evaluations count for either
    assert runs["lbfgs"][0] == runs["adam"][0] and len(runs["adam"]) == n
    lbfgs_best, adam_best = min(runs["lbfgs"][:n]), min(runs["adam"][:n])
    assert lbfgs_best < 0.8 * adam_best, (lbfgs_best, adam_best)
    # and through the app, the same figures
    a = st.run(cfg(optimizer="lbfgs", iterations=n), photo, [style], model=model, progress=False)
    b = st.run(cfg(optimizer="adam", iterations=n), photo, [style], model=model, progress=False)
    assert a.scales[0]["loss"] < b.scales[0]["loss"]


def test_lbfgs_stays_within_its_evaluations(model, photo, style):
    objective, targets = _fixed_case(model, photo, style)
    calls = []

    def f(x):
        loss, _, grad = objective.loss_and_gradient(x, targets)
        calls.append(loss)
        return loss, grad

    st.lbfgs(f, photo.copy(), 8)
    assert len(calls) <= 8, len(calls)


def test_preserve_colors_keeps_the_photos_chroma(model, style):
    photo = pattern(36, 48, amp=35.0)  # mid-tones: the photo's colours fit under any luminance nearby
    kw = dict(model=model, progress=False, **LAYERS, size=48, start_size=48, iterations=10)
    kept, fig = st.stylize(photo, [style], preserve_colors=True, **kw)
    plain, _ = st.stylize(photo, [style], **kw)
    uv = rgb_to_yuv(photo)[..., 1:]
    kept_err = np.abs(rgb_to_yuv(kept)[..., 1:] - uv)
    plain_err = np.abs(rgb_to_yuv(plain)[..., 1:] - uv)
    assert kept.shape == plain.shape == photo.shape
    assert kept_err.max() < 2e-3, kept_err.max()
    assert plain_err.mean() > 10 * max(kept_err.mean(), 1e-4), (plain_err.mean(), kept_err.mean())
    # the luminance did change: the style went somewhere
    assert np.abs(rgb_to_yuv(kept)[..., 0] - rgb_to_yuv(photo)[..., 0]).mean() > 1e-3
    assert fig["measured_on"] == "luminance"


# ------------------------------------------------------------------------------------------------
# Tiles


def _tiled_vs_whole(model, h, w, offset, seed=1):
    rng = np.random.default_rng(seed)
    image, photo = rng.uniform(0, 255, (2, h, w, 3)).astype(np.float32)
    style = rng.uniform(0, 255, (40, 40, 3)).astype(np.float32)
    whole = StyleObjective(model, {"c2": 0.5, "c3": 1.0}, STYLE, WEIGHTS, tile=1024, halo=16)
    tiled = StyleObjective(model, {"c2": 0.5, "c3": 1.0}, STYLE, WEIGHTS, tile=32, halo=16)
    assert whole.grid(h, w, offset).single and not tiled.grid(h, w, offset).single
    assert len(tiled.grid(h, w, offset)) >= 4
    targets = whole.targets(photo, [style], [1.0])
    return whole.loss_and_gradient(image, targets, offset), tiled.loss_and_gradient(image, targets, offset)


@pytest.mark.parametrize("offset", [(0, 0), (5, 13)])
def test_tiled_loss_and_gradient_equal_the_single_pass(model, offset):
    (l1, p1, g1), (l2, p2, g2) = _tiled_vs_whole(model, 64, 64, offset)
    assert abs(l1 - l2) < 1e-4 * l1, (l1, l2)
    for k in ("content", "style", "tv"):
        assert abs(p1[k] - p2[k]) <= 1e-4 * abs(p1[k]) + 1e-9, (k, p1, p2)
    assert np.linalg.norm(g1 - g2) < 1e-3 * np.linalg.norm(g1)
    assert np.abs(g1 - g2).max() < 1e-3 * np.abs(g1).max()


def test_tiled_gradient_on_odd_sizes_with_max_pool(model):
    (l1, _, g1), (l2, _, g2) = _tiled_vs_whole(model, 63, 57, (5, 13))
    assert abs(l1 - l2) < 1e-4 * l1
    assert np.linalg.norm(g1 - g2) < 1e-3 * np.linalg.norm(g1)


def test_tiled_gradient_on_odd_sizes_with_strided_conv():
    (l1, _, g1), (l2, _, g2) = _tiled_vs_whole(tiny_cnn("stride"), 63, 57, (0, 0))
    assert abs(l1 - l2) < 1e-4 * l1, (l1, l2)
    assert np.linalg.norm(g1 - g2) < 1e-3 * np.linalg.norm(g1)


# ------------------------------------------------------------------------------------------------
# Files and the command line


def test_stylize_file_writes_the_picture_its_settings_and_frames(tmp_path, files, keras_file):
    from PIL import Image

    from kerascnn.data.imageio import load_image

    out = tmp_path / "out.png"
    written, record = st.stylize_file(files["content"], [files["style"]], out, model=str(keras_file), weights="none",
                                      content_layers="c3:1", style_layers="c1:1,c2:1,c3:1", size=40, start_size=20,
                                      iterations=6, save_every=5, progress=False)
    assert written == out and out.is_file()
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == (40, 25)  # 48x30 photo: longest side 40, same aspect
    pixels = load_image(out)
    assert pixels.shape == (25, 40, 3) and 0 <= pixels.min() and pixels.max() <= 255 and pixels.std() > 1
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved == json.loads(json.dumps(record))
    assert saved["command"] == "stylize" and saved["settings"]["size"] == 40 and saved["settings"]["iterations"] == 6
    assert saved["settings"]["model"] == str(keras_file) and saved["sources"]["size"] == "argument"
    assert saved["content"] == str(files["content"]) and saved["styles"] == [str(files["style"])]
    assert [s["size"] for s in saved["scales"]] == [[12, 20], [25, 40]]
    assert [s["evaluations"] for s in saved["scales"]] == st.scale_evaluations(6, 2) == [6, 6]
    assert saved["precision"] == "float32"  # a saved model computes as it was saved
    fig = saved["figures"]
    assert fig["photo"]["content_distance"] < 1e-6
    assert fig["output"]["content_distance"] > 0
    assert fig["output"]["style_distance"] < fig["photo"]["style_distance"]
    assert len(fig["style_images_content_distance"]) == 1 and fig["measured_on"] == "rgb"
    frames = sorted(tmp_path.glob("out-*.png"))
    total = 6 + 6
    assert [f.name for f in frames][:total // 5] == [f"out-{n:04d}.png" for n in range(5, total + 1, 5)]
    assert load_image(frames[0]).shape == (12, 20, 3) and load_image(frames[-1]).shape == (25, 40, 3)
    assert "style distance" in st.summary(fig)
    with pytest.raises(SettingError, match="must end in"):
        st.stylize_file(files["content"], [files["style"]], tmp_path / "out.gif", model=str(keras_file))


def test_cli(tmp_path, files, keras_file):
    runner = CliRunner()
    out = tmp_path / "o.jpg"
    tail = ["--model", str(keras_file), "--weights", "none", "--content-layers", "c3:1", "--style-layers",
            "c1:1,c2:1,c3:1", "--size", "32", "--start-size", "32", "--iterations", "4"]
    r = runner.invoke(main, ["stylize", str(files["content"]), str(files["style"]), "-o", str(out)] + tail)
    assert r.exit_code == 0, r.output
    assert out.is_file() and out.with_suffix(".json").is_file()
    assert "Stylized:" in r.output and "style distance" in r.output and "content distance" in r.output

    missing = tmp_path / "missing.jpg"
    r = runner.invoke(main, ["stylize", str(files["content"]), str(missing), "-o", str(out)] + tail)
    assert r.exit_code != 0 and isinstance(r.exception, SystemExit)
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error") and "missing.jpg" in lines[0], r.output
    assert "Traceback" not in r.output

    r = runner.invoke(main, ["stylize", str(files["content"]), str(files["style"]), str(files["style2"]), "-o",
                             str(out), "--style-blend", "0.5,0.3,0.2"] + tail)
    assert r.exit_code == 2 and "--style-blend" in r.output and "3 weights for 2 style images" in r.output, r.output

    r = runner.invoke(main, ["stylize", "--print-config"] + tail + ["--style-blend", "0.7,0.3"])
    assert r.exit_code == 0, r.output
    assert "size = 32" in r.output and 'style_blend = "0.7,0.3"' in r.output and "# flag" in r.output
    r = runner.invoke(main, ["stylize", str(files["content"]), "-o", str(out)] + tail)
    assert r.exit_code == 2 and "STYLE" in r.output


# ------------------------------------------------------------------------------------------------
# Scales and blends


def test_blend_weights_scale_sizes_and_evaluations():
    assert st.blend_weights("0.7,0.3", 2) == pytest.approx([0.7, 0.3])
    assert st.blend_weights("3,1", None) == pytest.approx([0.75, 0.25])
    assert st.blend_weights("1,0", 2) == [1.0, 0.0]
    assert st.blend_weights(None, 4) == [0.25] * 4 and st.blend_weights(None, None) == []
    for bad in ("0,0", "-1,2", "a,b", ","):
        with pytest.raises(SettingError) as e:
            st.blend_weights(bad, None)
        assert e.value.param == "style_blend"
    with pytest.raises(SettingError, match="3 weights for 2"):
        st.blend_weights("1,1,1", 2)
    assert st.scale_sizes(512, 256) == [256, 512]
    assert st.scale_sizes(1024, 256) == [256, 512, 1024]
    assert st.scale_sizes(500, 256) == [500]
    assert st.scale_sizes(1000, 100) == [125, 250, 500, 1000]
    assert st.scale_sizes(64, 64) == [64]
    assert st.scale_evaluations(200, 3) == [50, 100, 200]
    assert st.scale_evaluations(200, 5) == [st.MIN_COARSE_EVALUATIONS, 25, 50, 100, 200]
    assert st.scale_evaluations(7, 1) == [7]
    assert st.scale_evaluations(30, 2) == [st.MIN_COARSE_EVALUATIONS, 30]
    assert st.scale_evaluations(6, 3) == [6, 6, 6]


def test_style_blend_picks_the_style(model, photo, style):
    stripes = np.zeros((40, 40, 3), np.float32)
    stripes[:, ::8] = 255.0
    stripes[..., 1] = 90.0
    kw = dict(model=model, progress=False, **LAYERS, size=48, start_size=48, iterations=15)
    a, fa = st.stylize(photo, [style, stripes], style_blend="1,0", **kw)
    b, fb = st.stylize(photo, [style, stripes], style_blend=[0.0, 1.0], **kw)
    assert np.abs(a - b).mean() > 1.0
    ea, eb = fa["output"]["style_distance_each"], fb["output"]["style_distance_each"]
    assert ea[0] < eb[0] and eb[1] < ea[1], (ea, eb)
    # blend 1,0 is the first style alone
    _, fs = st.stylize(photo, [style], **kw)
    np.testing.assert_allclose(fs["output"]["style_distance"], fa["output"]["style_distance"], rtol=1e-3)


def test_precision_builds_the_network_in_bfloat16_with_the_float32_loss(photo, style):
    """--precision mixed_bfloat16 builds the named network's layers in bfloat16 (the global policy is
    restored after), and its loss and gradient stay those of the float32 network to bfloat16's
    resolution; auto resolves to one of the two."""
    import keras

    settings = {"model": "vgg11", "weights": "none", "content_layers": "block3_conv1", "size": 32,
                "style_layers": "block1_conv1,block2_conv1,block3_conv1", "tile": 1024}
    objectives = {p: st.build_objective(st.resolve({**settings, "precision": p}).config)
                  for p in ("float32", "mixed_bfloat16", "auto")}
    assert keras.mixed_precision.global_policy().name == "float32"
    assert objectives["float32"].precision == "float32"
    assert objectives["mixed_bfloat16"].precision == "mixed_bfloat16"
    assert objectives["auto"].precision in ("float32", "mixed_bfloat16")
    conv = objectives["mixed_bfloat16"].extractor.get_layer("block1_conv1")
    assert conv.compute_dtype == "bfloat16" and conv.variable_dtype == "float32"
    x = pattern(32, 32)
    s = np.asarray(style[:32, :32], np.float32)
    results = {}
    for p in ("float32", "mixed_bfloat16"):
        o = objectives[p]
        targets = o.targets(x, [s], [1.0])
        results[p] = o.loss_and_gradient(np.clip(x + 30.0, 0, 255), targets)
    (l32, _, g32), (l16, _, g16) = results["float32"], results["mixed_bfloat16"]
    assert abs(l16 - l32) < 0.03 * l32
    cos = float(np.sum(g32 * g16) / np.linalg.norm(g32) / np.linalg.norm(g16))
    assert cos > 0.98, cos
