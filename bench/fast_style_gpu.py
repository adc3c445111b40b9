r"""Train the fast multi-style network (`kerascnn stylize train`) on a lent GPU machine that has JAX and no
TensorFlow, in sessions of minutes that resume one another; then turn the weights into the app's model.

    # 1. here (TensorFlow): the style and photo sets (bench/paintings.py, bench/photos.py), then the inputs
    python bench/paintings.py /tmp/style_data && python bench/photos.py /tmp/style_data
    echo /.gpu/ >> .git/info/exclude       # once: .gpu/ is ignored, so it travels only as a carry
    python bench/fast_style_gpu.py prepare --data /tmp/style_data   # -> .gpu/fast_style_{inputs,vgg16}.npz
    # the Keras wheels the GPU image lacks (.whl/ is already ignored), once:
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 -d .whl \
        keras==3.15.1 namex==0.1.0 optree==0.20.0

    # 2. the GPU machine, a first session: one call of the device tool, carry [".gpu", ".whl"], timeout_s 580
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .whl/*.whl && export PYTHONPATH=/tmp/site || exit; set -o pipefail; KERAS_BACKEND=jax PYTHONUNBUFFERED=1 \
    python3 bench/fast_style_gpu.py train --budget 520 --out $OUT 2>&1 | tee $OUT/log.txt

    # a later session goes on from the last: here, copy what came back into .gpu/resume/
    mkdir -p .gpu/resume && cp FILES_AT/{record.json,weights.npz,adam.npz} .gpu/resume/
    # then two calls back to back (the machine stays warm 30 s and keeps what the first one left): everything in
    # one would be ~77 MiB, over the 64 MiB a call carries. First: carry [".gpu/fast_style_vgg16.npz", ".whl"],
    # timeout_s 120:
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .whl/*.whl && ls -l .gpu /tmp/site
    # second: carry [".gpu/fast_style_inputs.npz", ".gpu/resume"], timeout_s 580:
    export PYTHONPATH=/tmp/site; set -o pipefail; KERAS_BACKEND=jax PYTHONUNBUFFERED=1 python3 \
    bench/fast_style_gpu.py train --budget 520 --resume .gpu/resume --out $OUT 2>&1 | tee $OUT/log.txt

    # 3. here (TensorFlow): the app's model from the weights that came back
    python bench/fast_style_gpu.py assemble --run FILES_AT --out saved_models/paintings8/styles.keras
    kerascnn stylize apply saved_models/paintings8/styles.keras --list-styles

Timing: --budget counts from the script's start (imports, building, compiling included) and no chunk starts
that would end after it; 520 s and timeout_s 580 leave a 15-minute device budget room for the machine's
start (1-2 min) and, if the call fails early, a rerun at once on the warm machine (give it --budget of what
status's budget_left_s leaves, less 60). A call cut at its timeout still returns its last checkpoint.

The run is the recommended long run of bench/RESULTS.md ("Why the fast style network streaks"): 8 paintings,
`--model vgg16 --weights ../shared/weights/vgg16_hed_notop.weights.h5 --image-size 256 --style-size 512
--batch-size 4 --steps 20000 --width 32 --residual-blocks 5 --learning-rate 0.001 --style-weight 2
--checkpoint-every 200` (prepare's defaults; its flags change any of them, and `train --steps` the total).
What travels (prepare prints what a first session's call would send, repository included; 57 MiB on
2026-12-06 with the 64 MiB limit):
- `.gpu/fast_style_inputs.npz` (14 MB, uint8 arrays): the style images at the style size, as
  `load_image(size=style_size)` gives them rounded to uint8, as PNG bytes (lossless); the photos resized as the
  app's `photo_dataset` resizes them (shorter side 1.25 crop sides, TensorFlow's antialiased resize), as JPEG
  bytes (quality 90, 4:4:4: the 217 photos at 320 px would be ~100 MB as pixels; the mean error, 1.7 levels
  of 255, is in the file's metadata; `--jpeg-quality` trades size for it); the resolved settings (the app's
  settings record) as JSON.
- `.gpu/fast_style_vgg16.npz` (18.5 MB): the loss network's weights up to its deepest tapped layer
  (block5_conv1) in float16, compressed (40 MB in float32 would not fit beside the repository);
  `prepare --check-weights` measures what that changes: the app's loss of a batch moves by 4e-4 (relative).
- `.whl/` (2.9 MB): Keras 3.15.1, namex, optree (the image has JAX, h5py, ml-dtypes, rich, absl, Pillow).
- `.gpu/resume/` (20 MB, later sessions): the last session's weights and Adam state, float32.

The GPU side is the app's own code on Keras's JAX backend: the network from `apps.fast_style._build`
(kerascnn.models.style_net), the loss network from kerascnn.models.networks with the layers, layer weights and
normalisation of kerascnn.synthesis.stylization (`expand_layers`, `normalised`), the settings from
`apps.fast_style.FastStyleConfig`, and the loss of `apps.fast_style.PerceptualLoss`, which is TensorFlow code,
written again in keras.ops (`Perceptual` here; tests/test_fast_style_gpu_path.py checks it against the app's
on TensorFlow, and the JAX step's loss, gradients and update against the app's train step's). Training is
Keras's Adam (the app's optimizer) applied statelessly in a jitted step; `--chunk` steps run in one
`lax.scan`, the crops cut on the device from the photos held there. The photo stream is the app's in kind: each
pass a new seeded order of the photos, a seeded random square crop and left-right flip of each, sample k in
style k mod N; it is a function of the sample's number, so a resumed run is the unbroken run (on this CPU, 10
steps then 10 resumed gave the weights of 20 unbroken, bit for bit). On the GPU, JAX's default precision may
compute float32 convolutions in TF32 (not checked here), as TensorFlow does on such GPUs by default.

Outputs (in --out, each under the 16 MB a file may come back with): `weights.npz` (the style network's
variables by Keras path, 6.8 MB), `adam.npz` (the optimizer's, 13.6 MB), `record.json` (settings, the app's
history rows: mean losses per checkpoint interval; a row per session with its device, start-up and compile
time and ms a step), rewritten atomically every `checkpoint_every` steps and at the end.
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import json
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout, not installed

import numpy as np  # noqa: E402

T0 = time.perf_counter()  # --budget counts from here: imports and compilation are part of a session's time

PAINTINGS = ("starry_night", "great_wave", "composition_viii", "night_cafe", "cafe_terrace", "harvest_la_crau",
             "moulin_de_la_galette", "ejiri_suruga")
# The recommended long run (bench/RESULTS.md); prepare's flags default to these.
RECOMMENDED = dict(model="vgg16", weights="../shared/weights/vgg16_hed_notop.weights.h5", image_size=256,
                   style_size=512, batch_size=4, steps=20000, width=32, residual_blocks=5, learning_rate=1e-3,
                   style_weight=2.0, checkpoint_every=200)
INPUTS = ".gpu/fast_style_inputs.npz"
RUN_FILES = ("record.json", "weights.npz", "adam.npz")  # what train writes and --resume reads
WEIGHTS = ".gpu/fast_style_vgg16.npz"
JPEG_QUALITY = 90  # the photos' re-encoding (4:4:4): what keeps a call's carry inside 64 MiB


# ------------------------------------------------------------------------------------------------
# The loss, in keras.ops: runs on TensorFlow (tests, here) and on JAX (the GPU machine)


def loss_layers(lossnet, cfg):
    """(content {layer: weight}, style {layer: weight}) as the app's PerceptualLoss chooses them: the settings'
    layers, else the network's registered uses, expanded and normalised to sum 1."""
    from kerascnn.models.features import parse_layer_weights
    from kerascnn.synthesis.stylization import expand_layers, normalised

    content = expand_layers(lossnet, parse_layer_weights(cfg.content_layers, "content_layers")
                            or {"content": 1.0}, "content_layers")
    style = expand_layers(lossnet, parse_layer_weights(cfg.style_layers, "style_layers")
                          or {"style": 1.0}, "style_layers")
    return normalised(content, "content_layers"), normalised(style, "style_layers")


def gram(features):
    """kerascnn.synthesis.perceptual.gram_matrix in keras.ops: (B, H, W, C) -> (B, C, C), averaged over positions."""
    from keras import ops

    b, h, w, c = ops.shape(features)
    flat = ops.reshape(features, (b, h * w, c))
    return ops.einsum("bnc,bnd->bcd", flat, flat) / ops.cast(h * w, features.dtype)


def relative_sq(x, ref, axes):
    from keras import ops

    return ops.sum(ops.square(x - ref), axis=axes) / (ops.sum(ops.square(ref), axis=axes) + 1e-12)


def total_variation(images):
    from keras import ops

    x = images / 255.0
    dy = ops.mean(ops.square(x[:, 1:] - x[:, :-1]), axis=(1, 2, 3))
    dx = ops.mean(ops.square(x[:, :, 1:] - x[:, :, :-1]), axis=(1, 2, 3))
    return dy + dx


class Perceptual:
    """apps.fast_style.PerceptualLoss in keras.ops: each sample's relative content error to its photo, relative
    Gram error to its style's Gram matrices, total variation; averaged over the batch. `variables` (the
    extractor's (trainable, non-trainable) values) makes the feature pass a stateless call, for jax.jit."""

    def __init__(self, lossnet, cfg):
        from kerascnn.models.features import any_size, feature_extractor

        content, style = loss_layers(lossnet, cfg)
        self.nc = len(content)
        self.content_weights, self.style_weights = list(content.values()), list(style.values())
        self.extractor = any_size(feature_extractor(lossnet, list(content) + list(style), name="loss_features"))
        self.extractor.trainable = False
        self.weights = (cfg.content_weight, cfg.style_weight, cfg.tv_weight)

    def variables(self):
        return ([v.value for v in self.extractor.trainable_variables],
                [v.value for v in self.extractor.non_trainable_variables])

    def features(self, x, variables=None) -> list:
        if variables is None:
            out = self.extractor(x, training=False)
        else:
            out, _ = self.extractor.stateless_call(variables[0], variables[1], x, training=False)
        return list(out) if isinstance(out, (list, tuple)) else [out]

    def style_grams(self, images, variables=None) -> list:
        """Per style layer, the (N, C, C) Gram matrices of the style images (float (h, w, 3), any sizes)."""
        from keras import ops

        per_image = []
        for im in images:
            feats = self.features(ops.convert_to_tensor(im[None], "float32"), variables)
            per_image.append([gram(f)[0] for f in feats[self.nc:]])
        return [ops.stack([g[j] for g in per_image]) for j in range(len(self.style_weights))]

    def __call__(self, photos, styled, styles, grams, variables=None):
        """(total, content, style, tv) for a batch: photos and styled images (B, H, W, 3) in 0-255, each
        sample's style index (B,), `style_grams`'s matrices."""
        from keras import ops

        target = [ops.stop_gradient(f) for f in self.features(photos, variables)[:self.nc]]
        feats = self.features(styled, variables)
        c = sum(w * ops.mean(relative_sq(f, p, (1, 2, 3)))
                for w, f, p in zip(self.content_weights, feats[:self.nc], target))
        s = sum(w * ops.mean(relative_sq(gram(f), ops.take(a, styles, axis=0), (1, 2)))
                for w, f, a in zip(self.style_weights, feats[self.nc:], grams))
        t = ops.mean(total_variation(styled))
        wc, ws, wt = self.weights
        return wc * c + ws * s + wt * t, c, s, t


# ------------------------------------------------------------------------------------------------
# Variables by Keras path (checkpoints, and the bridge between the backends)


def by_path(variables, values=None) -> dict:
    values = [v.value for v in variables] if values is None else values
    out = {v.path: np.asarray(x) for v, x in zip(variables, values)}
    if len(out) != len(variables):
        raise RuntimeError("two variables share a path; checkpoints would mix them up")
    return out


def from_path(variables, saved, what: str) -> list:
    """The values of `variables` from a {path: array} mapping (a one-line error for a checkpoint of another
    network)."""
    from kerascnn.errors import UserError

    missing = [v.path for v in variables if v.path not in saved]
    wrong = [v.path for v in variables if v.path in saved and tuple(saved[v.path].shape) != tuple(v.shape)]
    if missing or wrong:
        raise UserError(f"{what} does not fit this network (missing {missing[:3]}, other shapes {wrong[:3]}).")
    return [np.asarray(saved[v.path], v.dtype) for v in variables]


def assign(variables, values) -> None:
    for v, x in zip(variables, values):
        v.assign(x)


# ------------------------------------------------------------------------------------------------
# prepare (here, TensorFlow)


def resolved_settings(args):
    from apps.fast_style import resolve

    given = {k: getattr(args, k) for k in RECOMMENDED}
    given.update(seed=args.seed, content_weight=args.content_weight, tv_weight=args.tv_weight,
                 content_layers=args.content_layers, style_layers=args.style_layers)
    return resolve({k: v for k, v in given.items() if v is not None}, source="flag")


def resized_photo(path: str, side: int):
    """The app's photo_dataset `load`: shorter side round(1.25 * side) (at least), antialiased, uint8."""
    import tensorflow as tf

    short = int(round(1.25 * side))
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    hw = tf.cast(tf.shape(image)[:2], tf.float32)
    size = tf.maximum(tf.cast(tf.round(hw * (short / tf.reduce_min(hw))), tf.int32), short)
    return tf.cast(tf.clip_by_value(tf.image.resize(image, size, antialias=True), 0, 255), tf.uint8).numpy()


def encoded(pixels: np.ndarray, quality=None) -> np.ndarray:
    """uint8 (h, w, 3) -> its JPEG (at `quality`, 4:4:4) or, without a quality, lossless PNG bytes, as uint8."""
    from PIL import Image

    buf = io.BytesIO()
    if quality:
        Image.fromarray(pixels).save(buf, format="JPEG", quality=int(quality), subsampling=0)
    else:
        Image.fromarray(pixels).save(buf, format="PNG", optimize=True)
    return np.frombuffer(buf.getvalue(), np.uint8)


def decoded(data) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(bytes(data))).convert("RGB"))


def packed(images, quality=None) -> tuple:
    """Images -> (their encodings end to end, offsets): two arrays for an npz."""
    blobs = [encoded(im, quality) for im in images]
    return np.concatenate(blobs), np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)


def unpacked(arrays, key: str) -> list:
    blob, offsets = arrays[f"{key}_bytes"], arrays[f"{key}_offsets"]
    return [decoded(blob[offsets[i]:offsets[i + 1]]) for i in range(len(offsets) - 1)]


def style_images(arrays) -> list:
    """The style images of an inputs file, uint8 (h, w, 3) at the style size."""
    return unpacked(arrays, "style")


def travelling_mib(*carry) -> float:
    """What a device call would send: the repository's tracked and untracked-not-ignored files, and `carry`."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root, capture_output=True,
                           check=True).stdout.decode().split("\0")
    files = [root / n for n in names if n] + [f for c in carry for f in Path(c).rglob("*")]
    return sum(f.stat().st_size for f in files if f.is_file()) / 2 ** 20


def loss_network_weights(cfg, dtype: str) -> dict:
    """The loss network's weights up to its deepest tapped layer, {"LAYER/j": array} (stylize_gpu's format)."""
    from kerascnn.models.networks import network

    net = network(cfg.model, cfg.weights, seed=cfg.seed)
    content, style = loss_layers(net, cfg)
    tapped = {name.split("/")[-1] for name in list(content) + list(style)}
    last = max(i for i, layer in enumerate(net.layers) if layer.name in tapped)
    return {f"{layer.name}/{j}": w.astype(dtype) for layer in net.layers[:last + 1]
            for j, w in enumerate(layer.get_weights())}


def prepare(args) -> dict:
    import logging

    from apps.fast_style import _check_inputs, photo_files
    from kerascnn.data.imageio import load_image

    resolved = resolved_settings(args)
    cfg = resolved.config
    data = Path(args.data)
    style_files = [str(data / "styles" / f"{n}.jpg") for n in args.styles.split(",")]
    names = _check_inputs(style_files, Path("x.keras"))
    content_dir = data / args.photos
    arrays = {}
    styles = [np.clip(np.round(load_image(f, size=cfg.style_size)), 0, 255).astype(np.uint8) for f in style_files]
    arrays["style_bytes"], arrays["style_offsets"] = packed(styles)  # lossless
    pictures, errors, kept = [], [], []
    for f in photo_files(content_dir)[:args.limit]:
        try:
            pixels = resized_photo(f, cfg.image_size)
        except Exception as e:  # the app's pipeline skips what it cannot decode (ignore_errors)
            logging.warning("skipping %s: %s", f, e)
            continue
        errors.append(float(np.mean(np.abs(decoded(encoded(pixels, args.jpeg_quality)).astype(np.float32) - pixels))))
        pictures.append(pixels)
        kept.append(os.path.relpath(f, content_dir))
    arrays["photo_bytes"], arrays["photo_offsets"] = packed(pictures, args.jpeg_quality)
    meta = {"resolved": resolved.to_json(), "styles": names, "style_files": style_files,
            "content_dir": os.fspath(content_dir), "photos": kept, "jpeg_quality": args.jpeg_quality,
            "jpeg_mean_abs_error": round(float(np.mean(errors)), 3), "weights_dtype": args.weights_dtype}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    out = Path(args.inputs)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    weights = loss_network_weights(cfg, args.weights_dtype)
    np.savez_compressed(args.loss_weights, **weights)
    summary = {"styles": names, "photos": len(kept), "inputs_MB": round(out.stat().st_size / 1e6, 1),
               "weights_MB": round(Path(args.loss_weights).stat().st_size / 1e6, 1),
               "jpeg_mean_abs_error": meta["jpeg_mean_abs_error"],
               "a_call_with_these_carries_MiB": round(travelling_mib(out.parent, ".whl"), 1)}
    if args.check_weights:
        summary["loss_with_stored_weights"] = check_weights(cfg, weights, arrays, len(names))
    print(json.dumps(summary), flush=True)
    return summary


def check_weights(cfg, stored: dict, arrays: dict, num_styles: int) -> dict:
    """The app's loss of an untrained network's batch with the loss network's own weights and with the stored
    (float16) ones: how much the stored weights change the objective."""
    import keras

    from apps.fast_style import PerceptualLoss, _build
    from kerascnn.models.networks import network

    net = network(cfg.model, cfg.weights)
    styles = [im.astype(np.float32) for im in style_images(arrays)]
    keras.utils.set_random_seed(0)
    photos = batch_from(arrays, cfg, num_styles)
    stylenet = _build([str(i) for i in range(num_styles)], cfg)
    idx = np.arange(len(photos)) % num_styles
    styled = stylenet([photos, np.eye(num_styles, dtype=np.float32)[idx]]).numpy()
    exact = [float(v) for v in PerceptualLoss(net, cfg, styles)(photos, styled, idx)]
    for layer in net.layers:
        if f"{layer.name}/0" in stored:
            layer.set_weights([stored[f"{layer.name}/{j}"].astype(np.float32) for j in range(len(layer.weights))])
    rounded = [float(v) for v in PerceptualLoss(net, cfg, styles)(photos, styled, idx)]
    return {"float32": exact, "stored": rounded,
            "relative_difference": [abs(a - b) / abs(a) for a, b in zip(exact, rounded)]}


def batch_from(arrays: dict, cfg, num_styles: int) -> np.ndarray:
    """The first batch of the photo stream (host side, for checks)."""
    photos = Photos(arrays)
    plan = photo_plan(photos.sizes, cfg.seed, cfg.batch_size, cfg.image_size, 0, 1, num_styles)
    return np.stack([photos.crop(i, y, x, f, cfg.image_size) for i, y, x, f in
                     zip(plan["idx"][0], plan["oy"][0], plan["ox"][0], plan["flip"][0])]).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# The photo stream


class Photos:
    """The photos of an inputs file, decoded, in one zero-padded uint8 array (P, Hmax, Wmax, 3) with their sizes."""

    def __init__(self, arrays):
        images = unpacked(arrays, "photo")
        self.sizes = np.array([im.shape[:2] for im in images], np.int64)
        h, w = self.sizes.max(axis=0)
        self.pixels = np.zeros((len(images), h, w, 3), np.uint8)
        for i, im in enumerate(images):
            self.pixels[i, :im.shape[0], :im.shape[1]] = im

    def crop(self, i, y, x, flip, side) -> np.ndarray:
        patch = self.pixels[i, y:y + side, x:x + side]
        return patch[:, ::-1] if flip else patch


def photo_plan(sizes: np.ndarray, seed: int, batch: int, side: int, start: int, steps: int, num_styles: int) -> dict:
    """Which photo, crop offset, flip and style each sample of steps [start, start + steps) gets: arrays
    (steps, batch). Sample k (k = step * batch + b) is photo perm_e[k mod P] of pass e = k div P (perm_e a
    permutation seeded by (seed, e)), cropped at offsets and flipped as seeded by (seed, k), in style k mod N:
    a function of k alone, so any stretch of steps is the same wherever a run was cut."""
    n = len(sizes)
    k = np.arange(start * batch, (start + steps) * batch, dtype=np.int64)
    perms = {e: np.random.default_rng([seed, int(e)]).permutation(n) for e in np.unique(k // n)}
    idx = np.array([perms[e][r] for e, r in zip(k // n, k % n)], np.int64)
    draws = np.array([np.random.default_rng([seed, int(j), 1]).random(3) for j in k]).reshape(len(k), 3)
    room = sizes[idx] - side + 1  # offsets 0 .. size - side, as tf.image.stateless_random_crop
    oy = np.minimum((draws[:, 0] * room[:, 0]).astype(np.int64), room[:, 0] - 1)
    ox = np.minimum((draws[:, 1] * room[:, 1]).astype(np.int64), room[:, 1] - 1)
    plan = {"idx": idx, "oy": oy, "ox": ox, "flip": draws[:, 2] < 0.5, "styles": k % num_styles}
    return {key: v.reshape(steps, batch).astype(np.int32 if key != "flip" else bool) for key, v in plan.items()}


# ------------------------------------------------------------------------------------------------
# train (the GPU machine, Keras on JAX)


def read_inputs(path) -> tuple:
    arrays = dict(np.load(path))
    meta = json.loads(bytes(arrays["meta"]).decode())
    return arrays, meta


def config_of(meta, steps=None):
    from apps.fast_style import FastStyleConfig

    cfg = FastStyleConfig(**meta["resolved"]["settings"])
    return dataclasses.replace(cfg, steps=int(steps)) if steps else cfg


def load_loss_network(cfg, weights_file):
    """The loss network with the stored weights (no file of the original's needed: it is built from the registry)."""
    from kerascnn.models.networks import network

    net = network(cfg.model, "none")  # seed None: the global seed, set for the style network, is left alone
    saved = np.load(weights_file)
    for layer in net.layers:
        if f"{layer.name}/0" in saved:
            layer.set_weights([saved[f"{layer.name}/{j}"].astype(np.float32) for j in range(len(layer.weights))])
    return net


class Trainer:
    """The style network, the loss and Keras's Adam as pure functions of their variables' values."""

    def __init__(self, names, cfg, lossnet):
        import keras

        from apps.fast_style import _build

        keras.utils.set_random_seed(cfg.seed)
        self.cfg, self.names = cfg, list(names)
        self.net = _build(self.names, cfg)
        self.perceptual = Perceptual(lossnet, cfg)
        self.optimizer = keras.optimizers.Adam(cfg.learning_rate)  # the app's optimizer, Keras's defaults
        self.optimizer.build(self.net.trainable_variables)

    def state(self):
        return ([v.value for v in self.net.trainable_variables], [v.value for v in self.net.non_trainable_variables],
                [v.value for v in self.optimizer.variables])

    def loss(self, trainable, non_trainable, lossvars, grams, photos, styles):
        from keras import ops

        styled, non_trainable = self.net.stateless_call(
            trainable, non_trainable, [photos, ops.one_hot(styles, len(self.names))], training=True)
        values = self.perceptual(photos, styled, styles, grams, lossvars)
        return values[0], (ops.stack(values), non_trainable)

    def loss_and_grads(self, trainable, non_trainable, lossvars, grams, photos, styles):
        """((loss, ((total, content, style, tv), non-trainable)), gradients)."""
        import jax

        return jax.value_and_grad(self.loss, has_aux=True)(trainable, non_trainable, lossvars, grams, photos, styles)

    def step_and_grads(self, state, lossvars, grams, photos, styles):
        """One training step of apps.fast_style's StyleTrainer: (new state, (total, content, style, tv), gradients)."""
        trainable, non_trainable, opt = state
        (_, (values, non_trainable)), grads = self.loss_and_grads(trainable, non_trainable, lossvars, grams,
                                                                   photos, styles)
        trainable, opt = self.optimizer.stateless_apply(opt, grads, trainable)
        return (trainable, non_trainable, opt), values, grads

    def step(self, state, lossvars, grams, photos, styles):
        """(new state, (total, content, style, tv)): the gradients left out (XLA drops them)."""
        state, values, _ = self.step_and_grads(state, lossvars, grams, photos, styles)
        return state, values

    def chunk_fn(self, side: int):
        """jit(state, lossvars, grams, photos (P, H, W, 3) uint8, plan {key: (K, B)}) -> (state, values (K, 4)):
        K steps in one lax.scan, each cutting its batch from the photos on the device."""
        import jax
        import jax.numpy as jnp

        def crop(photos, i, y, x, flip):
            patch = jax.lax.dynamic_slice(photos, (i, y, x, 0), (1, side, side, 3))[0]
            return jnp.where(flip, patch[:, ::-1], patch).astype(jnp.float32)

        def run(state, lossvars, grams, photos, plan):
            def body(state, p):
                batch = jax.vmap(crop, in_axes=(None, 0, 0, 0, 0))(photos, p["idx"], p["oy"], p["ox"], p["flip"])
                return self.step(state, lossvars, grams, batch, p["styles"])
            return jax.lax.scan(body, state, plan)

        return jax.jit(run, donate_argnums=(0,))

    def save(self, folder: Path, state, record: dict) -> None:
        from kerascnn.runtime.jobs import atomic_path, atomic_write_json

        trainable, non_trainable, opt = state
        weights = {**by_path(self.net.trainable_variables, trainable),
                   **by_path(self.net.non_trainable_variables, non_trainable)}
        for name, arrays in (("weights.npz", weights), ("adam.npz", by_path(self.optimizer.variables, opt))):
            with atomic_path(folder / name) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, **arrays)
        atomic_write_json(folder / "record.json", record)

    def restore(self, folder: Path):
        weights, opt = np.load(folder / "weights.npz"), np.load(folder / "adam.npz")
        return (from_path(self.net.trainable_variables, weights, folder / "weights.npz"),
                from_path(self.net.non_trainable_variables, weights, folder / "weights.npz"),
                from_path(self.optimizer.variables, opt, folder / "adam.npz"))


def new_record(meta, cfg) -> dict:
    return {"settings": meta["resolved"], "styles": meta["styles"], "style_files": meta["style_files"],
            "content_dir": meta["content_dir"], "photos": len(meta["photos"]), "step": 0, "history": [],
            "sessions": []}


def resumed_record(folder: Path, meta) -> dict:
    from kerascnn.errors import UserError

    record = json.loads((folder / "record.json").read_text())
    same = lambda s: {k: v for k, v in s["settings"].items() if k != "steps"}  # noqa: E731
    if same(record["settings"]) != same(meta["resolved"]) or record["styles"] != meta["styles"]:
        raise UserError(f"{folder} holds a run of other settings or styles than these inputs.")
    return record


def train(args) -> dict:
    import jax
    import keras

    from kerascnn.errors import UserError

    needed = [args.inputs, args.loss_weights] + [os.path.join(args.resume, f) for f in RUN_FILES if args.resume]
    missing = [f for f in needed if not os.path.isfile(f)]
    if missing:  # a call whose carry (or a first call's leftovers) lacked a file ends in a second, not minutes
        raise UserError(f"missing {', '.join(missing)} (see the carries in this script's docstring)")
    arrays, meta = read_inputs(args.inputs)
    cfg = config_of(meta, args.steps)
    names = meta["styles"]
    trainer = Trainer(names, cfg, load_loss_network(cfg, args.loss_weights))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = new_record(meta, cfg)
    state = trainer.state()
    if args.resume:
        record = resumed_record(Path(args.resume), meta)
        state = trainer.restore(Path(args.resume))
    paths = [v.path for v in trainer.optimizer.variables]
    step = int(np.asarray(state[2][paths.index(trainer.optimizer.iterations.path)]))
    if args.resume and step != record["step"]:
        raise RuntimeError(f"{args.resume}: the optimizer is at step {step}, the record at {record['step']}")
    lossvars = trainer.perceptual.variables()
    t = time.perf_counter()
    grams = trainer.perceptual.style_grams([im.astype(np.float32) for im in style_images(arrays)],
                                           lossvars)
    photos = Photos(arrays)
    device_photos = jax.device_put(photos.pixels)
    setup_s = time.perf_counter() - t
    chunk = math.gcd(args.chunk, cfg.checkpoint_every)
    run = trainer.chunk_fn(cfg.image_size)
    session = {"backend": keras.backend.backend(), "device": str(jax.devices()[0].device_kind),
               "jax": jax.__version__, "keras": keras.__version__, "start_step": step, "chunk": chunk,
               "setup_seconds": round(setup_s, 1), "startup_seconds": round(time.perf_counter() - T0, 1)}
    print(json.dumps({"start": session, "target_steps": cfg.steps, "photos": len(photos.sizes)}), flush=True)
    interval, times, t_train = [], [], time.perf_counter()  # times: each chunk's seconds (the first compiles)
    while step < cfg.steps:
        k = min(chunk, cfg.steps - step)
        if times and time.perf_counter() - T0 + 1.5 * times[-1] + 5 > args.budget:
            break
        plan = photo_plan(photos.sizes, cfg.seed, cfg.batch_size, cfg.image_size, step, k, len(names))
        t = time.perf_counter()
        state, values = run(state, lossvars, grams, device_photos, plan)
        values = np.asarray(values)  # waits for the chunk
        if not np.all(np.isfinite(values)):
            raise FloatingPointError(f"a non-finite loss in steps {step}..{step + k}")
        elapsed = time.perf_counter() - t
        times.append(elapsed)
        step += k
        interval.append(values)
        print(json.dumps({"step": step, "loss": round(float(values[:, 0].mean()), 5),
                          "ms_per_step": round(1e3 * elapsed / k, 2)}), flush=True)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            record = checkpoint(trainer, out, state, record, session, interval, step, chunk, times,
                                time.perf_counter() - t_train)
            interval = []
    if interval or not record["sessions"] or record["sessions"][-1] is not session:
        record = checkpoint(trainer, out, state, record, session, interval, step, chunk, times,
                            time.perf_counter() - t_train)
    print(json.dumps({"done": session}), flush=True)
    return record


def checkpoint(trainer, out, state, record, session, interval, step, chunk, times, seconds) -> dict:
    """Appends the interval's mean losses to the history (the app's rows), updates the session's row, saves."""
    if interval:
        values = np.concatenate(interval)
        record["history"].append({"step": step, **{k: float(v) for k, v in
                                                   zip(("loss", "content", "style", "tv"), values.mean(axis=0))}})
    session.update(end_step=step, train_seconds=round(seconds, 1),
                   first_chunk_seconds=round(times[0], 1) if times else None,  # compilation included
                   ms_per_step=round(1e3 * float(np.median(times[1:])) / chunk, 2) if len(times) > 1 else None)
    if not record["sessions"] or record["sessions"][-1] is not session:
        record["sessions"].append(session)
    record["step"] = step
    trainer.save(out, state, record)
    return record


# ------------------------------------------------------------------------------------------------
# assemble (here, TensorFlow)


def assemble(args) -> dict:
    from apps.fast_style import Stylizer, _build
    from kerascnn.data.imageio import save_image
    from kerascnn.runtime.jobs import atomic_save, atomic_write_text

    arrays, meta = read_inputs(args.inputs)
    run = Path(args.run)
    record = resumed_record(run, meta)
    cfg = config_of(meta)
    names = meta["styles"]
    net = _build(names, cfg)
    saved = np.load(run / "weights.npz")
    assign(net.trainable_variables, from_path(net.trainable_variables, saved, run / "weights.npz"))
    assign(net.non_trainable_variables, from_path(net.non_trainable_variables, saved, run / "weights.npz"))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_save(out, lambda p: net.save(p))
    sessions = record["sessions"]
    app_record = {**meta["resolved"], "styles": names, "style_files": meta["style_files"],
                  "content_dir": meta["content_dir"], "photos": len(meta["photos"]), "steps": record["step"],
                  "resumed_at_step": sessions[-1]["start_step"] if sessions else 0,
                  "seconds": round(sum(s.get("train_seconds", 0.0) for s in sessions), 1),
                  "history": record["history"],
                  "trained_by": {"script": "bench/fast_style_gpu.py", "sessions": sessions,
                                 "photos_jpeg_quality": meta["jpeg_quality"],
                                 "loss_weights_dtype": meta["weights_dtype"]}}
    atomic_write_text(out.with_suffix(".json"), json.dumps(app_record, indent=1))
    for name, image in zip(names, style_images(arrays)):
        save_image(out.parent / "styles" / f"{name}.jpg", image)
    # The saved file paints as the network in memory did (loaded with safe mode on, by the app's own loader).
    painter = Stylizer(out)
    probe = batch_from(arrays, cfg, len(names))[0]
    for i in range(len(names)):
        vec = painter.vector(i)
        want = np.clip(net([probe[None], vec[None]]).numpy()[0], 0, 255)
        if painter.names != names or not np.allclose(painter(probe, vec), want, atol=0.5):
            raise RuntimeError(f"{out} does not paint as the trained network does")
    summary = {"model": os.fspath(out), "styles": names, "steps": record["step"]}
    print(json.dumps(summary), flush=True)
    return summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("section", choices=("prepare", "train", "assemble"))
    p.add_argument("--inputs", default=INPUTS, help="the inputs file (prepare writes it, train and assemble read it)")
    p.add_argument("--loss-weights", default=WEIGHTS, help="the loss network's stored weights (prepare writes "
                                                           "them, train reads them)")
    p.add_argument("--out", default=None, help="train: the output folder; assemble: the .keras file")
    # prepare
    p.add_argument("--data", default="/tmp/style_data", help="the folder of bench/paintings.py and bench/photos.py")
    p.add_argument("--styles", default=",".join(PAINTINGS), help="style names (files DATA/styles/NAME.jpg)")
    p.add_argument("--photos", default="photos_640", help="the photo folder under --data")
    p.add_argument("--limit", type=int, default=None, help="the first N photos only (a smoke test)")
    p.add_argument("--weights-dtype", default="float16", choices=("float16", "float32"))
    p.add_argument("--jpeg-quality", type=int, default=JPEG_QUALITY, help="the photos' JPEG quality")
    p.add_argument("--check-weights", action="store_true", help="the app's loss with the stored weights against "
                                                                "the original ones")
    for key, value in RECOMMENDED.items():
        p.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=value if key != "steps" else None)
    for key in ("seed", "content_weight", "tv_weight", "content_layers", "style_layers"):  # the app's defaults
        p.add_argument(f"--{key.replace('_', '-')}", type={"seed": int, "content_weight": float,
                                                           "tv_weight": float}.get(key, str), default=None)
    # train
    p.add_argument("--budget", type=float, default=1e9, help="seconds from start after which no chunk starts")
    p.add_argument("--chunk", type=int, default=50, help="steps in one jitted scan (made to divide checkpoint_every)")
    p.add_argument("--resume", default=None, help="a previous train --out (record.json, weights.npz, adam.npz)")
    # assemble
    p.add_argument("--run", default=None, help="train's output folder (assemble)")
    args = p.parse_args(argv)
    from kerascnn.errors import UserError

    try:
        if args.section != "prepare" and (args.out is None or (args.section == "assemble" and args.run is None)):
            raise UserError(f"{args.section} needs --out" + (" and --run" if args.section == "assemble" else ""))
        if args.section == "prepare":
            if args.steps is None:
                args.steps = RECOMMENDED["steps"]
            prepare(args)
        elif args.section == "train":
            train(args)
        else:
            assemble(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
