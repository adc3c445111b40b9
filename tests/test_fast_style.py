"""The fast multi-style network (kerascnn.apps.fast_style) and `kerascnn stylize train` / `apply`:
trained for a few steps on a tiny random loss network and synthetic photos, offline, in seconds."""
from __future__ import annotations

import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from click.testing import CliRunner  # noqa: E402

from kerascnn.apps import fast_style as fs  # noqa: E402
from kerascnn.cli import main  # noqa: E402
from kerascnn.synthesis.color import rgb_to_yuv  # noqa: E402
from kerascnn.errors import SettingError, UserError  # noqa: E402
from kerascnn.data.imageio import load_image, save_image  # noqa: E402

TRAIN = dict(content_layers="c2:1", style_layers="c1:1,c2:1", image_size=32, style_size=32, batch_size=2,
             width=4, residual_blocks=1, learning_rate=0.02, checkpoint_every=10, style_weight=10.0, tv_weight=0.1)


def tiny_cnn() -> "keras.Model":
    """Raw [0, 255] pixels in; two named convs, one 2x downsampling."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((None, None, 3), name="input")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(x)
    x = keras.layers.Conv2D(12, 3, strides=2, padding="same", activation="relu", name="c2")(x)
    return keras.Model(inputs, x, name="tiny")


def photo(h: int, w: int, k: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([128 + 80 * np.sin(x / (3.0 + k)), 128 + 80 * np.cos(y / (4.0 + k)),
                     128 + 60 * np.sin((x + y) / 6.0)], -1).astype(np.float32)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("fast_style")
    photos = root / "photos" / "sub"
    photos.mkdir(parents=True)
    for k in range(5):
        save_image(photos / f"p{k}.png", photo(40 + 4 * k, 48, k))
    rng = np.random.default_rng(0)
    stripes = np.zeros((48, 48, 3), np.float32)
    stripes[:, ::6] = [255, 40, 0]
    stripes[:, 1::6] = [255, 40, 0]
    save_image(root / "stripes.png", stripes)
    save_image(root / "dots.png", np.kron(rng.uniform(0, 255, (12, 12, 3)), np.ones((4, 4, 1))) * [0.2, 0.6, 1.0])
    model = tiny_cnn()
    model.save(root / "tiny.keras")
    return {"root": root, "photos": root / "photos", "styles": [root / "stripes.png", root / "dots.png"],
            "model": model, "keras": root / "tiny.keras"}


@pytest.fixture(scope="module")
def trained(files):
    out = files["root"] / "net" / "styles.keras"
    record = fs.train(files["styles"], files["photos"], out, network=files["model"], progress=False, steps=40,
                      **TRAIN)
    return out, record


def test_training_records_and_lowers_the_loss(trained):
    out, record = trained
    assert record["styles"] == ["stripes", "dots"] and record["photos"] == 5
    assert [h["step"] for h in record["history"]] == [10, 20, 30, 40]
    assert record["history"][-1]["style"] < 0.8 * record["history"][0]["style"]
    on_disk = json.loads(out.with_suffix(".json").read_text())
    assert on_disk["settings"]["steps"] == 40 and on_disk["sources"]["steps"] == "argument"
    # one checkpoint kept, named as the harness names its backups
    assert [p.name for p in (fs.run_dir(out) / "backup").iterdir()] == ["epoch-0004.weights.h5"]


def test_saved_network_loads_safely_and_knows_its_styles(trained):
    from kerascnn.models.loading import load_model
    from kerascnn.models.style_net import style_names_of

    model = load_model(trained[0])  # safe_mode=True
    assert style_names_of(model) == ["stripes", "dots"]
    assert not any(isinstance(layer, keras.layers.Conv2DTranspose) for layer in model.layers)


def test_two_styles_differ_and_a_blend_lies_between(trained):
    painter = fs.Stylizer(trained[0])
    x = photo(36, 44, 1)
    a = painter(x, painter.vector("stripes"))
    b = painter(x, painter.vector(1))
    mix = painter(x, painter.vector(blend={0: 0.5, "dots": 0.5}))
    assert a.shape == b.shape == mix.shape == x.shape
    d_ab = np.linalg.norm(a - b)
    assert np.mean(np.abs(a - b)) > 1.0  # the two styles paint differently
    assert np.linalg.norm(mix - a) < d_ab and np.linalg.norm(mix - b) < d_ab
    # "between": the mix is not one of the ends
    assert np.linalg.norm(mix - a) > 0.1 * d_ab and np.linalg.norm(mix - b) > 0.1 * d_ab


def test_any_size_and_preserved_colours(trained):
    painter = fs.Stylizer(trained[0])
    x = photo(37, 29, 2)
    y = painter(x, painter.vector(0))
    assert y.shape == x.shape and 0.0 <= y.min() and y.max() <= 255.0
    kept = painter(x, painter.vector(0), preserve_colors=True)
    uv = lambda img: rgb_to_yuv(img)[..., 1:]  # noqa: E731
    assert np.abs(uv(kept) - uv(x)).mean() < 0.1 * np.abs(uv(y) - uv(x)).mean()


def test_an_interrupted_run_resumes_and_settings_must_match(files, tmp_path):
    out = tmp_path / "r.keras"
    fs.train(files["styles"], files["photos"], out, network=files["model"], progress=False, steps=20, **TRAIN)
    out.unlink()  # as if killed before the final save; the checkpoint of step 20 is on disk
    record = fs.train(files["styles"], files["photos"], out, network=files["model"], progress=False, steps=30,
                      **TRAIN)
    assert record["resumed_at_step"] == 20
    assert [h["step"] for h in record["history"]] == [10, 20, 30]
    with pytest.raises(UserError, match="other settings"):
        fs.train(files["styles"], files["photos"], out, network=files["model"], progress=False, steps=30,
                 **{**TRAIN, "style_weight": 3.0})


@pytest.mark.parametrize("cache_limit", [fs.CACHE_LIMIT, 2])  # photos kept in memory / read at each pass
def test_the_photo_stream_resumed_at_a_step_is_the_rest_of_the_unbroken_stream(files, monkeypatch, cache_limit):
    monkeypatch.setattr(fs, "CACHE_LIMIT", cache_limit)
    cfg = fs.resolve({**TRAIN, "steps": 10}, check_model=False).config
    paths = fs.photo_files(files["photos"])
    whole = [(p.numpy(), s.numpy()) for p, s in fs.photo_dataset(paths, cfg, 2).take(9)]  # 18 crops of 5 photos
    later = [(p.numpy(), s.numpy()) for p, s in fs.photo_dataset(paths, cfg, 2, start_step=6).take(3)]
    for (a, i), (b, j) in zip(whole[6:], later):
        np.testing.assert_array_equal(b, a)
        np.testing.assert_array_equal(j, i)
    assert not np.array_equal(whole[0][0], later[0][0])


class Killed(Exception):
    pass


def test_a_run_killed_between_checkpoints_resumes_to_the_network_of_an_unbroken_run(files, tmp_path, monkeypatch):
    from kerascnn.models.loading import load_model

    kw = dict(network=files["model"], progress=False, steps=30, **TRAIN)
    whole = fs.train(files["styles"], files["photos"], tmp_path / "whole.keras", **kw)
    stop_at = fs._trainer_class()[1]  # the callback that sees every step
    original = stop_at.on_train_batch_end

    def killed_at_25(self, batch, logs=None):
        if int(self.model.optimizer.iterations) == 25:  # 5 steps after the checkpoint of step 20
            raise Killed
        original(self, batch, logs)

    out = tmp_path / "broken.keras"
    with monkeypatch.context() as m:
        m.setattr(stop_at, "on_train_batch_end", killed_at_25)
        with pytest.raises(Killed):
            fs.train(files["styles"], files["photos"], out, **kw)
    assert not out.exists() and [p.name for p in (fs.run_dir(out) / "backup").iterdir()] == ["epoch-0002.weights.h5"]
    resumed = fs.train(files["styles"], files["photos"], out, **kw)
    assert resumed["resumed_at_step"] == 20
    assert [h["step"] for h in resumed["history"]] == [h["step"] for h in whole["history"]] == [10, 20, 30]
    for a, b in zip(whole["history"], resumed["history"]):  # the same losses: the same photos and crops
        assert a == pytest.approx(b, rel=1e-5)
    for a, b in zip(load_model(tmp_path / "whole.keras").get_weights(), load_model(out).get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_bad_inputs_fail_clearly(files, tmp_path):
    with pytest.raises(SettingError, match="no images"):
        fs.train(files["styles"], tmp_path, tmp_path / "x.keras", network=files["model"], **TRAIN)
    with pytest.raises(SettingError, match="does not exist"):
        fs.train([tmp_path / "nope.jpg"], files["photos"], tmp_path / "x.keras", network=files["model"], **TRAIN)
    with pytest.raises(SettingError, match=".keras"):
        fs.train(files["styles"], files["photos"], tmp_path / "x.h5", network=files["model"], **TRAIN)
    with pytest.raises(SettingError, match="INDEX"):
        fs.parse_blend("0.5,0.5")
    assert fs.parse_blend("3:0.5,starry:0.25,3:0.25") == {3: 0.75, "starry": 0.25}


def test_apply_a_folder(trained, files, tmp_path):
    written = fs.apply_files(trained[0], files["photos"], tmp_path / "out", style="dots", progress=False)
    assert sorted(p.name for p in written) == [f"p{k}.jpg" for k in range(5)]
    for k, p in enumerate(sorted(written)):
        assert load_image(p).shape == (40 + 4 * k, 48, 3)


def test_cli_train_then_apply(files, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli.keras"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TRAIN.items()]
    r = runner.invoke(main, ["stylize", "train", "--styles", *map(str, files["styles"]), "--content-dir",
                             str(files["photos"]), "-o", str(out), "--model", str(files["keras"]), "--weights",
                             "none", "--steps", "4", *flags])
    assert r.exit_code == 0, r.output
    assert "2 styles: stripes, dots" in r.output and out.is_file()
    r = runner.invoke(main, ["stylize", "apply", str(out), "--list-styles"])
    assert r.exit_code == 0 and "stripes" in r.output and "dots" in r.output
    src = files["photos"] / "sub" / "p1.png"
    r = runner.invoke(main, ["stylize", "apply", str(out), str(src), "--blend", "0:0.5,1:0.5", "--preserve-colors",
                             "-o", str(tmp_path / "o.png")])
    assert r.exit_code == 0, r.output
    assert load_image(tmp_path / "o.png").shape == (44, 48, 3)
    r = runner.invoke(main, ["stylize", "apply", str(out), str(src), "--style", "starry", "-o", str(tmp_path / "x.png")])
    assert r.exit_code == 2 and "starry" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) <= 3



def test_the_loss_network_computes_in_the_precision_asked_for(files, tmp_path):
    """`--precision` trains the style network and a registered loss network in that policy; the saved
    network's weights and arithmetic stay float32, and the first step's losses (before any update) agree
    with float32's to bfloat16's precision (features are cast to float32 before the losses)."""
    from kerascnn.models.features import compute_policy
    from kerascnn.models.loading import load_model

    records = {}
    for precision in ("float32", "mixed_bfloat16"):
        out = tmp_path / f"{precision}.keras"
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in TRAIN.items()
                 if not k.endswith("_layers") and k != "checkpoint_every"]
        r = CliRunner().invoke(main, ["stylize", "train", *map(str, files["styles"]), "--content-dir",
                                      str(files["photos"]), "-o", str(out), "--model", "vgg11", "--weights", "none",
                                      "--content-layers", "block2_conv1", "--style-layers",
                                      "block1_conv1,block2_conv1", "--steps", "1", "--checkpoint-every", "1",
                                      "--precision", precision, *flags])
        assert r.exit_code == 0, r.output
        records[precision] = json.loads(out.with_suffix(".json").read_text())
        assert records[precision]["precision"] == precision
        assert records[precision]["settings"]["precision"] == precision
        saved = load_model(out)
        assert all(w.dtype == np.float32 for w in saved.get_weights()) and compute_policy(saved) == "float32"
    first, reference = records["mixed_bfloat16"]["history"][0], records["float32"]["history"][0]
    for key in ("content", "style"):
        assert first[key] == pytest.approx(reference[key], rel=0.05)
        assert first[key] != reference[key]  # computed in another precision, not the same numbers


def test_init_starts_from_a_trained_network_and_refuses_another(trained, files, tmp_path):
    """--init: a new run (other loss weights) starts from the trained network's weights, exactly; Adam
    and the step count start afresh; a network of other styles or sizes is a one-line error."""
    from kerascnn.models.loading import load_model

    start, _ = trained
    kw = dict(network=files["model"], progress=False, **{**TRAIN, "style_weight": 30.0})
    weights = fs._start_weights(str(start), ["stripes", "dots"],
                                fs.resolve({**TRAIN, "steps": 1}, check_model=False).config)
    for a, b in zip(weights, load_model(start).get_weights()):
        np.testing.assert_array_equal(a, b)
    record = fs.train(files["styles"], files["photos"], tmp_path / "more.keras", steps=10, init=str(start), **kw)
    assert record["settings"]["init"] == str(start) and [h["step"] for h in record["history"]] == [10]
    fresh = fs.train(files["styles"], files["photos"], tmp_path / "fresh.keras", steps=10, **kw)
    # from the trained network the style loss starts (and stays) far below a fresh network's
    assert record["history"][0]["style"] < 0.8 * fresh["history"][0]["style"]
    with pytest.raises(SettingError, match="knows the styles stripes, dots"):
        fs.train(files["styles"][::-1], files["photos"], tmp_path / "x.keras", steps=1, init=str(start), **kw)
    with pytest.raises(SettingError, match="width"):
        fs.train(files["styles"], files["photos"], tmp_path / "y.keras", steps=1, init=str(start),
                 **{**kw, "width": 6})
    with pytest.raises(SettingError, match="does not exist"):
        fs.train(files["styles"], files["photos"], tmp_path / "z.keras", steps=1, init=str(tmp_path / "no.keras"),
                 **kw)
    # a refused --init is found before anything is written: no run folder is left behind
    assert not any(fs.run_dir(tmp_path / f"{n}.keras").exists() for n in "xyz")


def test_a_run_written_before_a_setting_existed_resumes_with_its_default(files, tmp_path):
    """A run's settings.json from before a setting was added (here `init`) still resumes when the new
    setting is at its default; any other difference is still refused."""
    kw = dict(network=files["model"], progress=False, **TRAIN)
    out = tmp_path / "old.keras"
    fs.train(files["styles"], files["photos"], out, steps=10, **kw)
    settings = fs.run_dir(out) / "settings.json"
    record = json.loads(settings.read_text())
    del record["settings"]["init"]
    settings.write_text(json.dumps(record))
    assert fs.train(files["styles"], files["photos"], out, steps=20, **kw)["resumed_at_step"] == 10
    with pytest.raises(UserError, match="other settings"):
        fs.train(files["styles"], files["photos"], out, steps=30, **{**kw, "tv_weight": 0.2})
    with pytest.raises(UserError, match="other settings"):
        fs.train(files["styles"], files["photos"], out, steps=30, init=str(out), **kw)
