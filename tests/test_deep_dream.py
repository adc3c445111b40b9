"""DeepDream app (kerascnn.apps.deep_dream) and `kerascnn dream`: on a tiny random CNN, offline, in seconds."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from click.testing import CliRunner  # noqa: E402

from kerascnn.apps import deep_dream as dd  # noqa: E402
from kerascnn.cli import main  # noqa: E402
from kerascnn.errors import SettingError, UnknownNameError  # noqa: E402
from data_helpers import tiny_cnn  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return tiny_cnn(seed=7)


@pytest.fixture(scope="module")
def photo():
    # A smooth image with structure (no model can tell it from noise otherwise at this size).
    y, x = np.mgrid[0:48, 0:64]
    img = np.stack([128 + 80 * np.sin(x / 5.0), 128 + 80 * np.cos(y / 7.0), 128 + 60 * np.sin((x + y) / 9.0)], -1)
    return img.astype(np.float32)


def cfg(**kw):
    return dd.resolve({"model": "tiny", "weights": "none", "tile": 64, "octaves": 1, "steps": 3, **kw},
                      check_model=False).config


class Bar:
    def __init__(self):
        self.objective = []

    def update(self, n=1, objective=None):
        self.objective.append(objective)


def test_objective_rises_step_after_step(model, photo):
    c = cfg(layers="c2", steps=6, jitter=0, step_size=0.005)
    obj = dd.build_objective(model, c, photo)
    bar = Bar()
    dd.ascend(dd.make_tile_gradient(obj), photo, c, np.random.default_rng(0), bar)
    assert len(bar.objective) == 6
    assert all(b > a for a, b in zip(bar.objective, bar.objective[1:])), bar.objective


def test_tiled_gradient_equals_untiled_in_one_tile(model, photo):
    c = cfg(layers="c1:0.5,c2:2.0")
    obj = dd.build_objective(model, c, photo)
    loss, grad = dd.gradient(dd.make_tile_gradient(obj), photo, tile=64)
    # Independent reference: one tape over the whole image, the weighted layer means.
    x = tf.constant(photo)
    sub = keras.Model(model.input, [model.get_layer("c1").output, model.get_layer("c2").output])
    sub.input_spec = None
    with tf.GradientTape() as tape:
        tape.watch(x)
        a1, a2 = sub(x[None])
        ref = 0.5 * tf.reduce_mean(a1) + 2.0 * tf.reduce_mean(a2)
    np.testing.assert_allclose(loss, float(ref), rtol=1e-5)
    np.testing.assert_allclose(grad, tape.gradient(ref, x).numpy(), rtol=1e-4, atol=1e-9)


def test_tiled_gradient_equals_untiled_away_from_tile_edges(model):
    """Each tile's mean is weighted by its share of the image, so several tiles give the whole
    image's gradient wherever a tile edge is out of reach (two 3x3 convs and their ReLUs: 4 px)."""
    img = np.random.default_rng(3).uniform(0, 255, (96, 96, 3)).astype(np.float32)
    tile_gradient = dd.make_tile_gradient(dd.build_objective(model, cfg(layers="c2"), img))
    whole_loss, whole = dd.gradient(tile_gradient, img, tile=96)
    tiled_loss, tiled = dd.gradient(tile_gradient, img, tile=64, shift=(5, 9))  # 2x2 tiles of 48, rolled
    np.testing.assert_allclose(tiled_loss, whole_loss, rtol=0.05)
    # The tile edges, at 0 and 48 of the rolled image, are rows 43 and 91 and columns 39 and 87 of the
    # image; rolled, its own borders (zero-padded when whole) meet each other inside a tile.
    inside = np.ones((96, 96), bool)
    for r in (0, 43, 91, 96):
        inside[max(r - 5, 0):r + 5] = False
    for c in (0, 39, 87, 96):
        inside[:, max(c - 5, 0):c + 5] = False
    scale = np.abs(whole).max()
    np.testing.assert_allclose(tiled[inside] / scale, whole[inside] / scale, atol=1e-3)
    assert np.abs(tiled[~inside] - whole[~inside]).max() > 1e-3 * scale  # the edges do differ


def test_tiles_cut_any_size_into_pieces_of_half_a_tile_or_more():
    assert dd.splits(100, 512) == [(0, 100)]
    for size in (513, 1000, 3000, 2000):
        pieces = dd.splits(size, 512)
        assert pieces[0][0] == 0 and pieces[-1][1] == size
        assert all(256 <= b - a <= 512 for a, b in pieces)


def test_large_image_runs_in_small_tiles(model, monkeypatch):
    from kerascnn.synthesis.ascent import Gradient

    seen = []  # (tile height, tile width, fraction) of every call the model gets

    class Spy(Gradient):
        def __call__(self, images, fraction=1.0):
            seen.append((*images.shape[-3:-1], float(fraction)))
            return super().__call__(images, fraction)

    real = dd.make_tile_gradient
    monkeypatch.setattr(dd, "make_tile_gradient", lambda obj: Spy(real(obj).objective))
    img = np.random.default_rng(0).uniform(0, 255, (150, 210, 3)).astype(np.float32)
    out = dd.dream(img, model=model, layers="c2", tile=64, octaves=2, steps=2, progress=False)
    assert out.shape == img.shape and out.dtype == np.float32
    # Tiles of 32 to 64 px a side only; each step's tiles cover its image once (2 octaves x 2 steps),
    # the last octave's (the image's own size) in 3 x 4 tiles a step.
    assert all(32 <= h <= 64 and 32 <= w <= 64 for h, w, _ in seen), seen
    np.testing.assert_allclose(sum(f for _, _, f in seen), 2 * 2, rtol=1e-5)
    last = seen[-2 * 12:]
    assert sum(h * w for h, w, _ in last) == 2 * 150 * 210 and len(seen) > len(last)
    assert 0 <= out.min() and out.max() <= 255 and np.abs(out - img).mean() > 0.1


def test_channel_choice_changes_the_dream(model, photo):
    kw = dict(model=model, tile=64, octaves=1, steps=3, progress=False)
    a = dd.dream(photo, channels="c2:0", **kw)
    b = dd.dream(photo, channels="c2:5", **kw)
    strongest = dd.dream(photo, channels="c2:strongest:2", **kw)
    assert np.abs(a - b).mean() > 0.5 and np.abs(strongest - photo).mean() > 0.1
    with pytest.raises(SettingError, match="16 channels"):
        dd.dream(photo, channels="c2:99", **kw)


def test_octaves_clamped_to_the_model_and_too_small_images_refused(caplog):
    with caplog.at_level(logging.INFO, logger="kerascnn.dream"):
        shapes = dd.octave_shapes(40, 60, 4, 1.3, 32)
    assert shapes == [(40, 60)] and "1 octaves instead of 4" in caplog.text
    assert dd.octave_shapes(100, 100, 3, 1.3, 32) == [(59, 59), (77, 77), (100, 100)]
    with pytest.raises(SettingError, match="at least 32 px") as e:
        dd.octave_shapes(20, 60, 2, 1.3, 32)
    assert e.value.param == "image"


def test_tiles_below_twice_the_models_input_are_refused(model, photo):
    with pytest.raises(SettingError, match="tile must be at least 64 px") as e:
        dd.dream(photo, model=model, layers="c2", tile=32, progress=False)
    assert e.value.param == "tile"


def test_bad_layer_names_list_valid_ones(model, photo):
    with pytest.raises(UnknownNameError, match="Its layers: input, preprocess, c1, c2"):
        dd.dream(photo, model=model, layers="c3", tile=64, progress=False)
    with pytest.raises(SettingError, match="not a number"):
        dd.resolve({"layers": "c2:x"})


def test_preserve_colors_keeps_the_photos_chrominance(model, photo):
    out = dd.dream(photo, model=model, layers="c2", tile=64, octaves=1, steps=3, preserve_colors=True,
                   progress=False)
    uv = lambda im: tf.image.rgb_to_yuv(np.clip(im, 0, 255) / 255.0).numpy()[..., 1:]  # noqa: E731
    plain = dd.dream(photo, model=model, layers="c2", tile=64, octaves=1, steps=3, progress=False)
    assert np.abs(uv(out) - uv(photo)).mean() < 0.5 * np.abs(uv(plain) - uv(photo)).mean()


def test_guided_and_class_dreams(tmp_path, model, photo):
    from kerascnn.data.imageio import save_image

    guide = save_image(tmp_path / "guide.png", np.random.default_rng(1).uniform(0, 255, (40, 40, 3)))
    kw = dict(tile=64, octaves=1, steps=3, progress=False)
    guided = dd.dream(photo, model=model, layers="c2", guide=str(guide), **kw)
    assert np.abs(guided - dd.dream(photo, model=model, layers="c2", **kw)).mean() > 0.1
    classifier = tiny_cnn(classes=1000, seed=7)
    c = cfg(class_="tabby", steps=4, jitter=0, step_size=0.005)
    obj = dd.build_objective(classifier, c, photo)
    assert obj.class_index == 281
    bar = Bar()
    dd.ascend(dd.make_tile_gradient(obj), photo, c, np.random.default_rng(0), bar)
    assert bar.objective[-1] > bar.objective[0]


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory, model):
    path = tmp_path_factory.mktemp("dream") / "tiny.keras"
    model.save(path)
    return path


def test_json_beside_the_output_makes_the_same_picture(tmp_path, keras_file, photo):
    from kerascnn.data.imageio import load_image, save_image

    src = save_image(tmp_path / "photo.png", photo)
    out = dd.dream_file(src, tmp_path / "out.png", model=str(keras_file), layers="c2", tile=64, octaves=2,
                        steps=2, seed=5, progress=False)
    record = json.loads((tmp_path / "out.json").read_text())
    assert record["settings"]["seed"] == 5 and record["image"] == str(src) and record["sources"]["seed"] == "argument"
    again = dd.dream_file(src, tmp_path / "again.png", config_file=tmp_path / "out.json", progress=False)
    np.testing.assert_array_equal(load_image(out), load_image(again))
    other = dd.dream_file(src, tmp_path / "other.png", config_file=tmp_path / "out.json", seed=6, progress=False)
    assert not np.array_equal(load_image(out), load_image(other))


def test_cli(tmp_path, keras_file, photo):
    from kerascnn.data.imageio import save_image

    src = save_image(tmp_path / "photo.png", photo)
    runner = CliRunner()
    base = ["dream", str(src), "--model", str(keras_file), "--tile", "64", "--octaves", "1", "--steps", "2"]
    r = runner.invoke(main, base + ["-o", str(tmp_path / "o.jpg"), "--layers", "c2", "--channels", "c2:1,2"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o.jpg").is_file() and (tmp_path / "o.json").is_file()
    r = runner.invoke(main, base + ["-o", str(tmp_path / "o.jpg"), "--layers", "c9"])
    assert r.exit_code == 2 and "Unknown layer 'c9'" in r.output
    r = runner.invoke(main, base + ["--print-config", "--class", "tabby"])
    assert r.exit_code == 0 and 'class_ = "tabby"' in r.output
    r = runner.invoke(main, ["dream", "--model", "vgg16", "--weights", "none", "--tile", "40", "--print-config"])
    assert r.exit_code == 2 and "'--tile'" in r.output
    r = runner.invoke(main, base + ["--list-layers"])
    assert r.exit_code == 0 and "c2" in r.output and "Conv2D" in r.output
    r = runner.invoke(main, ["dream", str(tmp_path / "missing.jpg"), "-o", str(tmp_path / "x.jpg"), "--model",
                             str(keras_file)])
    assert r.exit_code == 2 and "IMAGE" in r.output


PEAK_SCRIPT = textwrap.dedent("""
    import sys, numpy as np
    from kerascnn.apps.deep_dream import dream
    import kerascnn
    model = kerascnn.create_model("mobilenet_v2", include_top=False, weights=None)
    img = np.random.default_rng(0).uniform(0, 255, (2000, 3000, 3)).astype(np.float32)
    dream(img, model=model, tile=int(sys.argv[1]), octaves=1, steps=1, progress=False)
    # This process's own peak (maxrss would carry the pytest parent's size over fork + exec).
    print(int([l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]) // 1024)
""")


@pytest.mark.slow
def test_3000x2000_peak_memory_bounded_by_tiles():
    """Peak resident memory (VmHWM, MiB, in a fresh process) of one step on 3000x2000 px."""
    def peak(tile):
        r = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(tile)], capture_output=True, text=True, check=True)
        return int(r.stdout.split()[-1])

    tiled = peak(512)
    assert tiled < 4096, tiled


def test_zoom_animation(tmp_path, keras_file, photo):
    from PIL import Image

    from kerascnn.apps.deep_dream_zoom import zoom_in
    from kerascnn.data.imageio import save_image

    src = save_image(tmp_path / "photo.png", photo)
    r = CliRunner().invoke(main, ["dream-zoom", str(src), "-o", str(tmp_path / "z.gif"), "--frames-dir",
                                  str(tmp_path / "frames"), "--model", str(keras_file), "--layers", "c2",
                                  "--tile", "64", "--frames", "3", "--octaves", "1", "--steps", "2"])
    assert r.exit_code == 0, r.output
    with Image.open(tmp_path / "z.gif") as gif:
        assert gif.n_frames == 3 and gif.size == (64, 48)
    assert len(list((tmp_path / "frames").glob("frame_*.jpg"))) == 3
    assert json.loads((tmp_path / "z.json").read_text())["settings"]["frames"] == 3
    assert zoom_in(photo, 1.0).shape == photo.shape
    np.testing.assert_allclose(zoom_in(photo, 1.0), photo, atol=1e-3)
