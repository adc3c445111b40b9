"""Fast multi-style transfer (Dumoulin, Shlens & Kudlur, "A Learned Representation for Artistic
Style", ICLR 2017; perceptual losses as in Johnson, Alahi & Fei-Fei 2016): train one feed-forward
network that paints N styles, then apply it to any photo in one pass.

The network (kerascnn.models.style_net) shares every convolution between the styles; each style is
only its conditional instance normalisation (CIN) parameters, so blending styles interpolates them.
What this app adds, each a gap users meet in magenta's image_stylization, fast-style-transfer and
the keras-io example:

* trains from any folder of the user's photos (tf.data straight from the files: no TFRecords);
* upsample-then-convolve decoder: no checkerboard artefacts (no transposed convolutions);
* the same normalised losses as `kerascnn stylize` (kerascnn.synthesis.stylization), so the weights of one
  mean the same in the other, on any feature network;
* trains with Keras's `fit` (a small keras.Model with its own `train_step`) and the training
  harness's callbacks (kerascnn.training.callbacks): a checkpoint every `checkpoint_every` steps,
  written atomically, and an interrupted run resumes from the newest one to the same network;
* the saved model knows its style names and loads with Keras's safe mode on; apply by name or index,
  blend several (`3:0.5,7:0.5`), keep the photo's colours, any size, a whole folder at once.

    from kerascnn.apps.fast_style import train, apply_file
    train(["a.jpg", "b.jpg"], "photos/", "styles.keras", model="vgg16", weights="vgg16.weights.h5")
    apply_file("styles.keras", "photo.jpg", "out.jpg", style="b")
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from kerascnn.config import PRECISIONS, setting
from kerascnn.errors import SettingError, UserError
from kerascnn.settings import Resolved, resolve_settings
from kerascnn.synthesis.stylization import Weights

log = logging.getLogger("kerascnn.stylize")

APP = "stylize-train"
CACHE_LIMIT = 4000  # folders up to this many photos are decoded once and kept in memory (resized)


@dataclass(frozen=True)
class FastStyleConfig:
    """`kerascnn stylize train`: the style network, its losses and its training."""

    model: str = setting("vgg19", "The loss network: a registered model, keras:NAME or a .keras file.")
    weights: Optional[str] = setting("imagenet", "none | imagenet | a .weights.h5 / .keras file.")
    content_layers: Optional[str] = setting(None, "Content layers with weights; unset: the model's content layers.")
    style_layers: Optional[str] = setting(None, "Style layers with weights; unset: the model's style layers.")
    content_weight: float = setting(Weights.content, "Weight of the content loss (relative squared feature error).",
                                    lo=0.0)
    style_weight: float = setting(Weights.style, "Weight of the style loss (relative squared Gram error).", lo=0.0)
    tv_weight: float = setting(Weights.tv, "Weight of the total-variation loss.", lo=0.0)
    image_size: int = setting(256, "Side of the square training crops of the photos.", lo=32)
    style_size: int = setting(256, "Longest side the style images are seen at (larger: bigger strokes).", lo=32)
    batch_size: int = setting(4, "Photos per step (the styles take turns within a batch).", lo=1)
    steps: int = setting(4000, "Training steps.", lo=1)
    learning_rate: float = setting(1e-3, "Adam's learning rate.", lo=0.0, lo_open=True)
    width: int = setting(32, "Filters of the first convolution, doubled at each of the two downsamplings.", lo=1)
    residual_blocks: int = setting(5, "Residual blocks at the lowest resolution.", lo=0)
    checkpoint_every: int = setting(200, "Steps between checkpoints (an interrupted run resumes from the last).",
                                    lo=1)
    precision: str = setting("auto", "The training's arithmetic (both networks); auto: mixed_bfloat16 where the "
                                     "hardware computes bfloat16 natively (CPUs with AVX512-BF16 or AMX, recent GPUs: "
                                     "2.6x faster a step), else float32. Weights, normalisation statistics and losses "
                                     "stay float32; the saved network computes in float32.",
                             choices=PRECISIONS)
    seed: int = setting(0, "Seeds the network's initialisation and the photos' order and crops.")
    init: Optional[str] = setting(None, "Start from this trained network (a `stylize train` .keras of the same "
                                        "styles, width and blocks) instead of a fresh one: train it further with "
                                        "other loss weights, sizes or photos. Adam starts afresh; --steps counts "
                                        "the new steps.")


def resolve(settings: Mapping[str, Any], *, config_file: Optional[os.PathLike] = None,
            source: str = "argument", check_model: bool = True) -> Resolved:
    """The checked settings of a training run, each with its source."""
    from kerascnn.models.features import format_layer_weights, parse_layer_weights

    values = dict(settings)
    for key in ("content_layers", "style_layers"):
        if values.get(key) is not None and not isinstance(values[key], str):
            values[key] = format_layer_weights(values[key])
    resolved = resolve_settings(FastStyleConfig, values, config_file=config_file, source=source, command=APP)
    cfg = resolved.config
    parse_layer_weights(cfg.content_layers, "content_layers")
    parse_layer_weights(cfg.style_layers, "style_layers")
    if cfg.init is not None and not os.path.isfile(cfg.init):
        raise SettingError("init", f"{cfg.init} does not exist: give a .keras file written by `stylize train`.")
    if check_model:
        from kerascnn.models.networks import check_network

        check_network(cfg.model, cfg.weights)
    return resolved


# ------------------------------------------------------------------------------------------------
# Data: the photos as random square crops, the style each one is painted in


def photo_files(content_dir: Union[str, os.PathLike]) -> List[str]:
    """The image files under `content_dir` (recursively, sorted)."""
    from kerascnn.data.images import IMAGE_EXTENSIONS

    if not os.path.isdir(content_dir):
        raise SettingError("content_dir", f"{content_dir} is not a folder of photos.")
    files = sorted(os.path.join(root, f) for root, _, names in os.walk(content_dir) for f in names
                   if f.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
        raise SettingError("content_dir", f"{content_dir} holds no images ({', '.join(IMAGE_EXTENSIONS)}).")
    return files


def photo_dataset(files: Sequence[str], cfg: FastStyleConfig, num_styles: int, start_step: int = 0):
    """Batches of (crops (B, S, S, 3) float 0-255, style indices (B,)), endless.

    Each photo is resized so that its shorter side is 1.25 crop sides (a crop then keeps most of the
    picture), decoded once and kept in memory for folders of up to CACHE_LIMIT photos; crops and
    flips are random, seeded by (seed, position in the stream), and the photos' order is seeded too,
    so a run resumed at `start_step` continues the stream of an uninterrupted run: the same photos,
    crops and flips. The styles take turns: sample k is painted in style k mod N.
    """
    import tensorflow as tf

    side = cfg.image_size
    short = int(round(1.25 * side))

    def load(path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        hw = tf.cast(tf.shape(image)[:2], tf.float32)
        scale = short / tf.reduce_min(hw)
        size = tf.maximum(tf.cast(tf.round(hw * scale), tf.int32), short)
        return tf.cast(tf.clip_by_value(tf.image.resize(image, size, antialias=True), 0, 255), tf.uint8)

    def decode(ds):
        ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
        return ds.ignore_errors(log_warning=True)

    # The seeded shuffle deals the same orders in every run, so skipping the photos a resumed run's
    # checkpoint has seen continues the stream of an uninterrupted run.
    first = start_step * cfg.batch_size
    names = tf.data.Dataset.from_tensor_slices(list(files))
    if len(files) <= CACHE_LIMIT:  # decoded once and kept; skipping runs over pictures in memory
        ds = decode(names).cache().shuffle(min(len(files), 1000), seed=cfg.seed, reshuffle_each_iteration=True)
        ds = ds.repeat().skip(first)
    else:  # shuffled as file names, so that the skip decodes nothing
        ds = decode(names.shuffle(len(files), seed=cfg.seed, reshuffle_each_iteration=True).repeat().skip(first))
    counter = tf.data.Dataset.counter(first)

    def crop(image, k):
        seed = tf.stack([tf.cast(cfg.seed, tf.int64), k])
        patch = tf.image.stateless_random_crop(image, (side, side, 3), seed)
        patch = tf.image.stateless_random_flip_left_right(patch, seed + 1)
        return tf.cast(patch, tf.float32), tf.cast(k % num_styles, tf.int32)

    ds = tf.data.Dataset.zip((ds, counter)).map(crop, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(cfg.batch_size, drop_remainder=True).prefetch(2)


# ------------------------------------------------------------------------------------------------
# Training


class PerceptualLoss:
    """Johnson et al.'s perceptual losses with kerascnn.synthesis.stylization's normalisation, batched: each
    sample's relative content error to its photo, relative Gram error to its style, and total
    variation, averaged over the batch."""

    def __init__(self, network, cfg: FastStyleConfig, style_images: Sequence[np.ndarray]):
        import tensorflow as tf

        from kerascnn.models.features import any_size, feature_extractor, parse_layer_weights
        from kerascnn.synthesis.perceptual import gram_matrix
        from kerascnn.synthesis.stylization import expand_layers, normalised

        content = expand_layers(network, parse_layer_weights(cfg.content_layers, "content_layers")
                                or {"content": 1.0}, "content_layers")
        style = expand_layers(network, parse_layer_weights(cfg.style_layers, "style_layers")
                              or {"style": 1.0}, "style_layers")
        self.nc = len(content)
        self.content_weights = list(normalised(content, "content_layers").values())
        self.style_weights = list(normalised(style, "style_layers").values())
        self.layers = list(content) + list(style)
        self.network = network
        self.extractor = any_size(feature_extractor(network, self.layers, name="loss_features"))
        self.extractor.trainable = False
        self.weights = (cfg.content_weight, cfg.style_weight, cfg.tv_weight)
        grams: List[List[np.ndarray]] = []
        for image in style_images:
            feats = self._features(tf.constant(image[None], tf.float32))
            grams.append([gram_matrix(f)[0].numpy() for f in feats[self.nc:]])
        # per style layer: (N, C, C), gathered by each sample's style index
        self.grams = [tf.constant(np.stack([g[j] for g in grams])) for j in range(len(style))]

    def _features(self, x) -> list:
        out = self.extractor(x, training=False)
        return list(out) if isinstance(out, (list, tuple)) else [out]

    def __call__(self, photos, styled, styles):
        """(total, content, style, tv) for a batch: photos and styled images (B, H, W, 3) in 0-255,
        the style index of each sample (B,)."""
        import tensorflow as tf

        from kerascnn.synthesis.perceptual import gram_matrix, relative_sq, total_variation

        target = [tf.stop_gradient(f) for f in self._features(photos)[:self.nc]]
        feats = self._features(styled)
        c = tf.add_n([w * tf.reduce_mean(relative_sq(f, p, axes=(1, 2, 3)))
                      for w, f, p in zip(self.content_weights, feats[:self.nc], target)])
        s = tf.add_n([w * tf.reduce_mean(relative_sq(gram_matrix(f), tf.gather(a, styles), axes=(1, 2)))
                      for w, f, a in zip(self.style_weights, feats[self.nc:], self.grams)])
        t = tf.reduce_mean(total_variation(styled))
        wc, ws, wt = self.weights
        return wc * c + ws * s + wt * t, c, s, t


def style_name(path: Union[str, os.PathLike]) -> str:
    return Path(path).stem


def run_dir(out: Path) -> Path:
    """Where the run keeps its checkpoints and settings: OUT.run/ beside OUT."""
    return out.with_name(out.name + ".run")


def _check_inputs(styles, out: Path) -> List[str]:
    """The style names (file stems), after the checks of `train`'s file arguments."""
    if out.suffix != ".keras":
        raise SettingError("out", f"{out}: the trained network is saved as a .keras file.")
    if not styles:
        raise SettingError("styles", "Give at least one style image.")
    for s in styles:
        if not os.path.isfile(s):
            raise SettingError("styles", f"Style image {s} does not exist.")
    names = [style_name(s) for s in styles]
    if len(set(names)) != len(names):
        raise SettingError("styles", f"Two style images share a name ({', '.join(names)}); the model names its "
                                     "styles by file name, so rename one.")
    return names


def _open_run(folder: Path, resolved: Resolved, styles, content_dir):
    """(finished rounds, newest checkpoint or None) of the run in `folder`, after checking that its
    checkpoints are of this run's settings and images (`steps` may differ: a finished run trains
    further with more steps, as `fit --resume` does); writes the run's settings.json."""
    from kerascnn.runtime.jobs import atomic_write_text
    from kerascnn.training.callbacks import latest_backup

    same = {k: v for k, v in resolved.to_json()["settings"].items() if k != "steps"}
    run_settings = json.loads(json.dumps({"settings": same, "styles": [os.fspath(s) for s in styles],
                                          "content_dir": os.fspath(content_dir)}))
    done_rounds, latest = latest_backup(folder / "backup")
    settings_file = folder / "settings.json"
    if latest is not None:
        previous = json.loads(settings_file.read_text()) if settings_file.is_file() else None
        if previous is not None:  # a setting added since that run was written: its default is what it ran with
            defaults = {f.name: f.default for f in dataclasses.fields(FastStyleConfig)}
            previous["settings"] = {**{k: v for k, v in run_settings["settings"].items()
                                       if k not in previous["settings"] and v == defaults.get(k)},
                                    **previous["settings"]}
        if previous != run_settings:
            raise UserError(f"{folder} holds checkpoints of a run with other settings or images; delete it or "
                            f"choose another -o to start afresh.")
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(settings_file, json.dumps(run_settings, indent=1))
    return done_rounds, latest


def _build(names: Sequence[str], cfg: FastStyleConfig):
    from kerascnn.models.style_net import style_network

    return style_network(names, filters=(cfg.width, 2 * cfg.width, 4 * cfg.width), residual_blocks=cfg.residual_blocks)


LOSSES = ("loss", "content", "style", "tv")  # what each step reports (the epoch's mean in the logs)


@functools.lru_cache(maxsize=None)
def _trainer_class():
    """StyleTrainer, defined on first use: Keras loads only when a network trains."""
    import keras
    import tensorflow as tf

    class StyleTrainer(keras.Model):
        """The style network with its training step, for Keras's `fit`: each step paints a batch of
        photos, each in its style, and follows the perceptual losses' gradient.

        Its weights (`save_weights`, the harness's checkpoints) are the style network's, the
        optimizer's state and the running losses: the loss network is held by `perceptual`, a
        plain object, so that its frozen weights (80 MB for VGG19) stay out of every checkpoint.
        """

        def __init__(self, net, perceptual: PerceptualLoss):
            super().__init__(name="style_trainer")
            self.net, self.perceptual = net, perceptual
            self.num_styles = int(net.input_shape[1][-1])
            self.trackers = [keras.metrics.Mean(name=n) for n in LOSSES]
            self.built = True  # its parts are built; nothing to trace before training

        @property
        def metrics(self):  # reset by Keras at each epoch: the logs hold each epoch's mean
            return self.trackers

        def call(self, inputs, training=False):
            return self.net(inputs, training=training)

        def train_step(self, data):
            photos, styles = data
            with tf.GradientTape() as tape:
                styled = self.net([photos, tf.one_hot(styles, self.num_styles)], training=True)
                values = self.perceptual(photos, styled, styles)
            variables = self.trainable_variables  # the style network's (the loss network is not tracked)
            self.optimizer.apply(tape.gradient(values[0], variables), variables)
            for tracker, value in zip(self.trackers, values):
                tracker.update_state(value)
            return {t.name: t.result() for t in self.trackers}

    class StopAt(keras.callbacks.Callback):
        """Ends training at the optimizer's step `steps` (the last checkpoint interval may be short)."""

        def __init__(self, steps: int):
            super().__init__()
            self.steps = steps

        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.optimizer.iterations) >= self.steps:
                self.model.stop_training = True

    return StyleTrainer, StopAt


def _history_writer(path: Path, done: int):
    """The harness's HistoryWriter (history.csv, rows of an interrupted run up to its checkpoint
    kept), with each row's optimizer step."""
    from kerascnn.training.callbacks import HistoryWriter

    class StepHistory(HistoryWriter):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, {**(logs or {}), "step": int(self.model.optimizer.iterations)})

    return StepHistory(path, HistoryWriter.read(path, done))


def _fit(trainer, data, cfg: FastStyleConfig, folder: Path, done: int, progress: bool) -> List[Dict[str, float]]:
    """Train from the optimizer's step to `cfg.steps` with Keras's `fit`: an "epoch" is
    `checkpoint_every` steps, after each one the harness's Checkpoints writes the weights and Adam's
    state atomically (backup/epoch-NNNN.weights.h5, the newest kept) and HistoryWriter the losses.
    Returns the history rows: step and the mean losses of each checkpoint interval."""
    import math

    from kerascnn.training.callbacks import Checkpoints

    StopAt = _trainer_class()[1]
    history = _history_writer(folder / "history.csv", done)
    remaining = cfg.steps - int(trainer.optimizer.iterations)
    if remaining > 0:
        # No best model (monitor=None): the losses on training crops select nothing. budget=0: every
        # interval is written, so an interruption loses at most `checkpoint_every` steps.
        checkpoints = Checkpoints(folder / "backup", folder / "best.keras", monitor=None, budget=0)
        trainer.fit(data, epochs=done + math.ceil(remaining / cfg.checkpoint_every), initial_epoch=done,
                    steps_per_epoch=cfg.checkpoint_every, callbacks=[StopAt(cfg.steps), history, checkpoints],
                    verbose=1 if progress else 0, shuffle=False)
    return [{"step": int(float(r["step"])), **{k: float(r[k]) for k in LOSSES}} for r in history.rows]


def _restore(trainer, latest: Path, folder: Path) -> None:
    from kerascnn.training.callbacks import restore_backup

    try:
        restore_backup(trainer, latest)
    except (ValueError, KeyError) as e:  # a checkpoint of another network, or of an older kerascnn
        log.debug("restoring %s: %s", latest, e)
        raise UserError(f"{latest} does not fit this run's network (written by an older kerascnn?); delete "
                        f"{folder} to start afresh.") from None


def _start_weights(path: str, names: Sequence[str], cfg: "FastStyleConfig") -> list:
    """The weights of the trained network `path` (loaded with safe mode on), checked against this
    run's network: the same styles in the same order, the same layers and shapes (--width,
    --residual-blocks). Checked before the loss network is built or the run folder written, so a
    wrong --init costs a second and leaves nothing behind."""
    from kerascnn.models.loading import load_model
    from kerascnn.models.style_net import style_names_of

    start = load_model(path)
    known = style_names_of(start)
    if known != list(names):
        raise SettingError("init", f"{path} knows the styles {', '.join(known)}, not "
                                   f"{', '.join(names)}: give the same style images in the same order.")
    weights = start.get_weights()
    if [w.shape for w in weights] != [tuple(w.shape) for w in _build(names, cfg).get_weights()]:
        raise SettingError("init", f"{path} is a network of another --width or --residual-blocks; give the "
                                   "settings it was trained with.")
    return weights


def build_trainer(styles: Sequence[Union[str, os.PathLike]], cfg: FastStyleConfig, network=None):
    """The compiled StyleTrainer of `cfg` for the style images `styles`: a fresh style network (seeded)
    and the loss network `cfg.model`, both built in `cfg.precision` (or `network`, as it was built)."""
    import keras

    from kerascnn.data.imageio import load_image
    from kerascnn.models.networks import network as build_network
    from kerascnn.training.distribute import precision_scope

    keras.utils.set_random_seed(cfg.seed)
    # Both networks compute in cfg.precision (bfloat16 where the hardware has it); their weights,
    # the CIN statistics, the output and the losses stay float32, and the network that is saved is
    # built afresh in float32.
    with precision_scope(cfg.precision):
        net = _build([style_name(s) for s in styles], cfg)
        if network is None:
            network = build_network(cfg.model, cfg.weights, seed=cfg.seed)
    loss_fn = PerceptualLoss(network, cfg, [load_image(s, size=cfg.style_size) for s in styles])
    trainer = _trainer_class()[0](net, loss_fn)
    trainer.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), jit_compile=False)
    return trainer


def train(styles: Sequence[Union[str, os.PathLike]], content_dir: Union[str, os.PathLike], out: os.PathLike, *,
          resolved: Optional[Resolved] = None, config_file: Optional[os.PathLike] = None, network=None,
          progress: bool = True, **settings: Any) -> Dict[str, Any]:
    """Train one network for the style images `styles` on the photos under `content_dir`, and save it
    as `out` (.keras) with `out`.json beside it (settings, styles, losses, time).

    Checkpoints go to OUT.run/backup/ every `checkpoint_every` steps; run the same command again
    after an interruption and it resumes from the newest one (the settings must be the same), with
    the photos' stream where it stopped: the same network as an uninterrupted run.
    `network` reuses a built loss network (tests). Returns the JSON record.
    """
    from kerascnn.models.features import compute_policy
    from kerascnn.runtime.jobs import atomic_save, atomic_write_text

    out = Path(out)
    names = _check_inputs(styles, out)
    files = photo_files(content_dir)
    if resolved is None:
        resolved = resolve(settings, config_file=config_file, check_model=network is None)
    cfg: FastStyleConfig = resolved.config
    start = _start_weights(cfg.init, names, cfg) if cfg.init else None
    folder = run_dir(out)
    done_rounds, latest = _open_run(folder, resolved, styles, content_dir)

    trainer = build_trainer(styles, cfg, network)
    net, lossnet = trainer.net, trainer.perceptual.network
    if latest is None and start is not None:
        net.set_weights(start)
    if latest is not None:
        _restore(trainer, latest, folder)
        log.info("stylize train: resuming from %s (step %d of %d)", latest, int(trainer.optimizer.iterations),
                 cfg.steps)
    start_step = min(cfg.steps, int(trainer.optimizer.iterations))
    t0 = time.perf_counter()
    history = _fit(trainer, photo_dataset(files, cfg, len(names), start_step), cfg, folder, done_rounds, progress)
    seconds = time.perf_counter() - t0
    final = _build(names, cfg)  # the saved network: a clean copy (no optimizer), loadable with safe mode on
    final.set_weights(net.get_weights())
    atomic_save(out, lambda p: final.save(p))
    record = {**resolved.to_json(), "styles": names, "style_files": [os.fspath(s) for s in styles],
              "content_dir": os.fspath(content_dir), "photos": len(files), "steps": cfg.steps,
              "resumed_at_step": start_step, "seconds": round(seconds, 1), "precision": compute_policy(lossnet),
              "history": history}
    atomic_write_text(out.with_suffix(".json"), json.dumps(record, indent=1))
    return record


# ------------------------------------------------------------------------------------------------
# Applying a trained network


@dataclass(frozen=True)
class ApplyConfig:
    """`kerascnn stylize apply`: which style(s), colours, size."""

    style: Optional[str] = setting(None, "The style: its name or index (`--list-styles`); unset: the first.")
    blend: Optional[str] = setting(None, "Several styles mixed, INDEX|NAME:WEIGHT,... such as 3:0.5,7:0.5 "
                                         "(weights normalised); overrides --style.")
    preserve_colors: bool = setting(False, "Keep the photo's colours (the style's luminance only).")
    size: Optional[int] = setting(None, "Resize each photo so its longest side is this; unset: as it is.", lo=16)


def resolve_apply(settings: Mapping[str, Any], *, config_file: Optional[os.PathLike] = None,
                  source: str = "argument") -> Resolved:
    """The checked settings of `kerascnn stylize apply`, each with its source."""
    return resolve_settings(ApplyConfig, settings, config_file=config_file, source=source, command="stylize-apply")


def parse_blend(text: Optional[str]) -> Optional[Dict[Union[int, str], float]]:
    """"3:0.5,starry:0.5" -> {3: 0.5, "starry": 0.5}; None -> None."""
    if text is None:
        return None
    out: Dict[Union[int, str], float] = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, sep, weight = item.rpartition(":")
        if not sep or not key:
            raise SettingError("blend", f"expected INDEX|NAME:WEIGHT,... such as 3:0.5,7:0.5. Received: {text!r}")
        try:
            w = float(weight)
        except ValueError:
            raise SettingError("blend", f"{weight!r} is not a weight in {text!r}.") from None
        out[int(key) if key.isdigit() else key] = out.get(int(key) if key.isdigit() else key, 0.0) + w
    return out


class Stylizer:
    """A trained style network, ready to paint photos of any size."""

    def __init__(self, model: Union[str, os.PathLike, Any]):
        import tensorflow as tf

        from kerascnn.models.style_net import style_names_of

        if isinstance(model, (str, os.PathLike)):
            from kerascnn.models.loading import load_model

            model = load_model(model)
        self.model = model
        self.names = style_names_of(model)
        self._run = tf.function(lambda x, w: model([x, w], training=False), reduce_retracing=True)

    def vector(self, style: Union[None, int, str] = None, blend: Optional[Mapping] = None) -> np.ndarray:
        from kerascnn.models.style_net import style_vector

        if blend:
            return style_vector(self.names, dict(blend))
        if isinstance(style, str) and style.isdigit():
            style = int(style)
        return style_vector(self.names, 0 if style is None else style)

    def __call__(self, photo: np.ndarray, weights: np.ndarray, preserve_colors: bool = False) -> np.ndarray:
        """Paint `photo` (h, w, 3) in [0, 255] with the style `weights` (N,); the same size back."""
        import tensorflow as tf

        from kerascnn.synthesis.color import preserve_colors as keep_colors
        from kerascnn.models.style_net import pad_to_multiple

        padded, (h, w) = pad_to_multiple(np.asarray(photo, np.float32), 4)
        out = self._run(tf.constant(padded[None]), tf.constant(weights[None], tf.float32))[0].numpy()[:h, :w]
        out = np.clip(out, 0.0, 255.0)
        return keep_colors(out, photo) if preserve_colors else out


def apply(model, photo, *, style: Union[None, int, str] = None, blend: Optional[Mapping] = None,
          preserve_colors: bool = False, size: Optional[int] = None) -> np.ndarray:
    """Paint one photo (a path or (h, w, 3) pixels) with a trained network (a path or a loaded model)."""
    from kerascnn.data.imageio import load_image, resize_longest

    painter = model if isinstance(model, Stylizer) else Stylizer(model)
    if isinstance(photo, np.ndarray):
        pixels = resize_longest(np.asarray(photo, np.float32), size) if size else np.asarray(photo, np.float32)
    else:
        pixels = load_image(photo, size=size)
    return painter(pixels, painter.vector(style, blend), preserve_colors)


def apply_files(model, inputs: Union[str, os.PathLike], out: Union[str, os.PathLike], *,
                resolved: Optional[Resolved] = None, progress: bool = True, **settings: Any) -> List[Path]:
    """`kerascnn stylize apply`: a photo to a file, or a folder of photos to a folder (same names,
    the output folder's format: .jpg unless `out` is a file name). Returns the files written."""
    from kerascnn.data.imageio import SAVE_FORMATS, load_image, save_image
    from kerascnn.runtime.progress import Progress

    cfg: ApplyConfig = (resolved or resolve_apply(settings)).config
    painter = model if isinstance(model, Stylizer) else Stylizer(model)
    weights = painter.vector(cfg.style, parse_blend(cfg.blend))
    inputs, out = Path(inputs), Path(out)
    if inputs.is_dir():
        pairs = [(Path(f), out / (Path(f).stem + ".jpg")) for f in photo_files(inputs)]
    elif inputs.is_file():
        if out.suffix.lower() not in SAVE_FORMATS:
            raise SettingError("out", f"{out}: the output must end in {', '.join(SAVE_FORMATS)}.")
        pairs = [(inputs, out)]
    else:
        raise SettingError("photo", f"{inputs} is neither an image nor a folder of images.")
    written = []
    with Progress(len(pairs), "stylize apply", unit="photo", disable=not progress or len(pairs) < 2) as bar:
        for src, dst in pairs:
            pixels = load_image(src, size=cfg.size)
            written.append(save_image(dst, painter(pixels, weights, cfg.preserve_colors)))
            bar.update()
    return written


__all__ = ["FastStyleConfig", "ApplyConfig", "PerceptualLoss", "Stylizer", "apply", "apply_files", "parse_blend",
           "photo_files", "photo_dataset", "resolve", "resolve_apply", "run_dir", "train"]
