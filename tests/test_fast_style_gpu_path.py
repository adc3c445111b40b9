"""bench/fast_style_gpu.py, the GPU path of `kerascnn stylize train`: its keras.ops loss is the app's PerceptualLoss
(TensorFlow); its JAX train step has the app's train step's loss, gradients and Adam update on the same network,
weights and batch (where JAX is installed); its photo stream is a function of the sample's number; `assemble`
writes a model that `kerascnn stylize apply` reads. Tiny random networks, seconds."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("fast_style_gpu", ROOT / "bench" / "fast_style_gpu.py")
gpu = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu)

from apps.fast_style import FastStyleConfig, PerceptualLoss, _build, _trainer_class  # noqa: E402  (as gpu imports it)
from test_fast_style import tiny_cnn  # noqa: E402  (the fast-style tests' loss network)

# Unequal layer weights and loss weights, so that a normalisation or a weight mixed up shows.
CFG = dict(content_layers="c2:1", style_layers="c1:1,c2:3", content_weight=0.7, style_weight=10.0, tv_weight=0.5,
           image_size=32, style_size=40, batch_size=3, width=4, residual_blocks=1, learning_rate=0.01,
           checkpoint_every=2, steps=4)
NAMES = ["stripes", "dots"]



@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(0)
    styles = [rng.uniform(0, 255, (24, 32, 3)).astype(np.float32), rng.uniform(0, 255, (40, 28, 3)).astype(np.float32)]
    photos = rng.uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    return {"cfg": FastStyleConfig(**CFG), "net": tiny_cnn(), "styles": styles, "photos": photos,
            "styled": rng.uniform(0, 255, (3, 32, 32, 3)).astype(np.float32), "index": np.array([1, 0, 1])}


def test_the_keras_ops_loss_is_the_apps_loss(case):
    cfg, net = case["cfg"], case["net"]
    app = [float(v) for v in PerceptualLoss(net, cfg, case["styles"])(case["photos"], case["styled"], case["index"])]
    ours = gpu.Perceptual(net, cfg)
    grams = ours.style_grams(case["styles"])
    mine = [float(v) for v in ours(case["photos"], case["styled"], case["index"], grams)]
    np.testing.assert_allclose(mine, app, rtol=2e-5)
    assert all(v > 0 for v in app)
    # the comparison tells a sample's style apart: the other style for each sample is another loss
    swapped = [float(v) for v in ours(case["photos"], case["styled"], 1 - case["index"], grams)]
    assert abs(swapped[2] - app[2]) > 1e-3 * app[2]


def test_the_photo_stream_is_a_function_of_the_sample_number():
    sizes = np.array([[40, 52], [41, 40], [60, 45], [40, 40], [45, 70]])
    whole = gpu.photo_plan(sizes, 7, 3, 40, 0, 6, 2)
    parts = [gpu.photo_plan(sizes, 7, 3, 40, 0, 2, 2), gpu.photo_plan(sizes, 7, 3, 40, 2, 4, 2)]
    for key in whole:
        np.testing.assert_array_equal(whole[key], np.concatenate([p[key] for p in parts]))
    k = np.arange(18).reshape(6, 3)
    np.testing.assert_array_equal(whole["styles"], k % 2)
    idx = whole["idx"].ravel()
    for start in (0, 5, 10):  # each pass shows every photo once
        assert sorted(idx[start:start + 5]) == list(range(5))
    assert np.all(whole["oy"] >= 0) and np.all(whole["oy"] + 40 <= sizes[whole["idx"], 0])
    assert np.all(whole["ox"] >= 0) and np.all(whole["ox"] + 40 <= sizes[whole["idx"], 1])
    assert whole["ox"].max() > 0 and whole["flip"].any() and not whole["flip"].all()
    assert not np.array_equal(gpu.photo_plan(sizes, 8, 3, 40, 0, 6, 2)["idx"], whole["idx"])


JAX_SIDE = r'''
import importlib.abc, json, sys
class NoTensorFlow(importlib.abc.MetaPathFinder):  # as on the GPU machine
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "tensorflow":
            raise ImportError("no tensorflow here")
sys.meta_path.insert(0, NoTensorFlow())
import importlib.util
import numpy as np
spec = importlib.util.spec_from_file_location("fast_style_gpu", sys.argv[1])
gpu = importlib.util.module_from_spec(spec); spec.loader.exec_module(gpu)
import jax, keras
from apps.fast_style import FastStyleConfig
folder = sys.argv[2]
case = np.load(folder + "/case.npz")
cfg = FastStyleConfig(**json.load(open(folder + "/cfg.json")))
trainer = gpu.Trainer(["stripes", "dots"], cfg, keras.saving.load_model(folder + "/tiny.keras"))
saved = np.load(folder + "/start.npz")
gpu.assign(trainer.net.trainable_variables, gpu.from_path(trainer.net.trainable_variables, saved, "start"))
trainable, non_trainable, opt = trainer.state()
lossvars = trainer.perceptual.variables()
grams = trainer.perceptual.style_grams([case["style0"], case["style1"]], lossvars)
(new, _, _), values, grads = jax.jit(trainer.step_and_grads)((trainable, non_trainable, opt), lossvars, grams,
                                                             case["photos"], case["index"])
np.savez(folder + "/jax.npz", values=np.asarray(values),
         **{"grad:" + k: v for k, v in gpu.by_path(trainer.net.trainable_variables, grads).items()},
         **{"new:" + k: v for k, v in gpu.by_path(trainer.net.trainable_variables, new).items()})
print(keras.backend.backend())
'''


def test_the_jax_step_is_the_apps_train_step(case, tmp_path):
    """The same weights and batch through the app's loss and gradient (TensorFlow) and the GPU script's jitted
    step (JAX, TensorFlow unimportable): the four losses, every gradient, and Adam's update of the weights."""
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed (pip install 'jax[cpu]' to run this check)")
    cfg, net = case["cfg"], case["net"]
    keras.utils.set_random_seed(1)
    stylenet = _build(NAMES, cfg)
    start = gpu.by_path(stylenet.trainable_variables)
    np.savez(tmp_path / "start.npz", **start)
    net.save(tmp_path / "tiny.keras")
    (tmp_path / "cfg.json").write_text(json.dumps({k: getattr(cfg, k) for k in CFG}))
    np.savez(tmp_path / "case.npz", photos=case["photos"], index=case["index"], style0=case["styles"][0],
             style1=case["styles"][1])
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", JAX_SIDE, str(ROOT / "bench" / "fast_style_gpu.py"), str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "jax"
    jx = np.load(tmp_path / "jax.npz")

    loss = PerceptualLoss(net, cfg, case["styles"])
    photos, index = tf.constant(case["photos"]), tf.constant(case["index"])
    with tf.GradientTape() as tape:
        styled = stylenet([photos, tf.one_hot(index, len(NAMES))], training=True)
        values = loss(photos, styled, index)
    grads = tape.gradient(values[0], stylenet.trainable_variables)
    np.testing.assert_allclose(jx["values"], [float(v) for v in values], rtol=1e-4)
    total = np.sqrt(sum(float(np.sum(np.square(g))) for g in grads))
    for v, g in zip(stylenet.trainable_variables, grads):
        # (a CIN's beta before an instance norm has a gradient of 0 up to rounding: hence the share of the total)
        g, theirs = g.numpy(), jx["grad:" + v.path]
        assert np.linalg.norm(theirs - g) <= 1e-3 * np.linalg.norm(g) + 1e-6 * total, v.path

    # Keras's Adam on TensorFlow, as the app's train step applies it, given the JAX step's gradients, lands where
    # the JAX step did (its first step is about lr * sign(g): every weight moves; compared on the same gradients,
    # since where g is near Adam's epsilon the step hangs on g's last digits).
    trainer = _trainer_class()[0](stylenet, loss)
    trainer.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), jit_compile=False)
    variables = stylenet.trainable_variables
    trainer.optimizer.apply([tf.constant(jx["grad:" + v.path]) for v in variables], variables)
    for v in variables:
        np.testing.assert_allclose(jx["new:" + v.path], v.numpy(), rtol=0, atol=1e-7, err_msg=v.path)
    assert max(float(np.abs(v.numpy() - start[v.path]).max()) for v in variables) > 0.9 * cfg.learning_rate


def test_assemble_writes_the_apps_model(case, tmp_path):
    """prepare's inputs (a .keras loss network, two styles, photos of several sizes) -> weights as train saves
    them -> assemble: the .keras, styles.json and styles/NAME.jpg that `kerascnn stylize apply` reads."""
    from click.testing import CliRunner

    from kerascnn.cli import main as cli
    from kerascnn.data.imageio import load_image, save_image

    data, rng = tmp_path / "data", np.random.default_rng(2)
    for i, name in enumerate(NAMES):
        save_image(data / "styles" / f"{name}.jpg", rng.uniform(0, 255, (30 + 10 * i, 50, 3)))
    for i in range(3):
        y, x = np.mgrid[0:36 + 8 * i, 0:60 - 8 * i]  # smooth, as photos are (JPEG keeps them within a few levels)
        picture = [128 + 80 * np.sin(x / (3.0 + i)), 128 + 80 * np.cos(y / 4.0), 128 + 60 * np.sin((x + y) / 6.0)]
        save_image(data / "photos" / f"p{i}.png", np.stack(picture, -1))
    case["net"].save(tmp_path / "tiny.keras")
    inputs, lossw = tmp_path / "in.npz", tmp_path / "w.npz"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in CFG.items()]
    assert gpu.main(["prepare", "--data", str(data), "--styles", ",".join(NAMES), "--photos", "photos",
                     "--inputs", str(inputs), "--loss-weights", str(lossw), "--model", str(tmp_path / "tiny.keras"),
                     "--weights", "none", *flags]) == 0
    arrays, meta = gpu.read_inputs(inputs)
    assert meta["styles"] == NAMES and len(meta["photos"]) == 3 and meta["jpeg_mean_abs_error"] < 3
    styles = gpu.style_images(arrays)
    assert max(styles[1].shape[:2]) == CFG["style_size"] and styles[0].dtype == np.uint8
    np.testing.assert_array_equal(styles[1], np.round(load_image(data / "styles" / "dots.jpg", size=CFG["style_size"])))
    photos = gpu.Photos(arrays)
    assert photos.sizes.min() == round(1.25 * CFG["image_size"])  # the app's shorter side
    assert sorted(np.load(lossw)) == ["c1/0", "c1/1", "c2/0", "c2/1"]

    keras.utils.set_random_seed(5)
    trained = _build(NAMES, gpu.config_of(meta))
    run = tmp_path / "run"
    run.mkdir()
    np.savez(run / "weights.npz", **gpu.by_path(trained.variables))
    record = {**gpu.new_record(meta, None), "step": 4, "history": [{"step": 4, "loss": 1.0, "content": 0.5,
                                                                     "style": 0.05, "tv": 0.01}]}
    (run / "record.json").write_text(json.dumps(record))
    out = tmp_path / "model" / "styles.keras"
    assert gpu.main(["assemble", "--inputs", str(inputs), "--run", str(run), "--out", str(out)]) == 0
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["styles"] == NAMES and saved["steps"] == 4 and saved["settings"]["style_weight"] == 10.0
    assert load_image(out.parent / "styles" / "dots.jpg").shape == styles[1].shape
    runner = CliRunner()
    r = runner.invoke(cli, ["stylize", "apply", str(out), "--list-styles"])
    assert r.exit_code == 0 and "stripes" in r.output and "dots" in r.output, r.output
    r = runner.invoke(cli, ["stylize", "apply", str(out), str(data / "photos" / "p1.png"), "--style", "dots",
                            "-o", str(tmp_path / "o.png")])
    assert r.exit_code == 0, r.output
    painted = load_image(tmp_path / "o.png")
    photo = load_image(data / "photos" / "p1.png")
    want = trained([photo[None], np.array([[0.0, 1.0]], np.float32)]).numpy()[0]
    assert painted.shape == photo.shape and np.abs(painted - np.clip(want, 0, 255)).max() <= 1.0
