"""DeepDream: gradient ascent on a photo, so that it excites chosen layers of a network more and more.

Mordvintsev, Olah and Tyka, "Inceptionism" (Google Research blog, 2015) and their deepdream notebook;
the TensorFlow tutorial's tiled gradients; keras-io's `deep_dream.py`. Each step makes the image a
little more what the chosen layers respond to: the gradient of their mean activation with respect to
the pixels, divided by its mean absolute value (so the step size means the same for every layer and
model), added to the image. Built only on kerascnn's public API:

* octaves: the ascent runs on the image shrunk by `octave_scale` `octaves - 1` times, smallest first;
  at each larger scale the dream made so far (its difference from the shrunk photo) is enlarged and
  added to the photo at that scale, so the photo's own fine detail, lost by the shrinking, comes
  back while patterns grow at every size. The smallest octave is never below the model's smallest
  input (`spec.min_input`): the number of octaves is clamped, with a logged note.
* tiles: gradients are computed in tiles of at most `tile` pixels, after rolling the image by a
  random shift that moves the tile grid every step (then rolled back), so any image size runs in
  bounded memory and no seam stays in one place long enough to show (the TF tutorial's trick).
* objectives: the mean (weighted) activation of layers, of chosen channels (by index, or the k most
  strongly activated on the photo), the dot product with a guide image's mean features ("guided
  dreaming"), or one ImageNet class's logit (class visualisation).

Every kerascnn model takes raw [0, 255] pixels (its first layer preprocesses), so the ascent runs on
raw pixels and the model's own preprocessing stays in the gradient.

    from kerascnn.apps.deep_dream import dream, dream_file
    image = dream("photo.jpg", model="vgg16", weights="vgg16_notop.weights.h5", octaves=3)
    dream_file("photo.jpg", "out.jpg", model="vgg16", weights=..., seed=1)   # + out.json: every setting
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from kerascnn.config import setting
from kerascnn.synthesis.color import preserve_colors
from kerascnn.models.features import any_size, format_layer_weights, parse_layer_weights
from kerascnn.errors import SettingError
from kerascnn.settings import Layer, Resolved, resolve_settings
from kerascnn.synthesis import ascent
from kerascnn.synthesis.ascent import Gradient
from kerascnn.synthesis.tiles import gradient, splits

log = logging.getLogger("kerascnn.dream")

APP = "dream"
DEFAULT_MIN_SIDE = 32  # the smallest input assumed for a .keras model the registry does not know
STRONGEST = "strongest"
GUIDE_SIDE = 512  # the guide image's longest side when its features are read


@dataclass(frozen=True)
class DreamConfig:
    """`kerascnn dream`: every setting of one dream (written beside the output, so it can be redone)."""

    model: str = setting("inception_v3", "A registered model (see `kerascnn models`) or a .keras file.")
    weights: Optional[str] = setting("imagenet", "none | imagenet | a .weights.h5 / .keras file (a registry "
                                                 "model's; a .keras --model brings its own).")
    layers: Optional[str] = setting(None, "Layers to excite, with weights: mixed3:1.0,mixed5:1.5; unset: the "
                                          "model's dream layers (`kerascnn models`), or the --channels layers.")
    channels: Optional[str] = setting(None, "Only these channels of a layer: LAYER:12,40 or LAYER:strongest:8 "
                                            "(the 8 most active on the photo); several joined by ';'.")
    octaves: int = setting(4, "Scales, each octave_scale times the last, smallest first (clamped so the "
                              "smallest fits the model).", lo=1, hi=12)
    octave_scale: float = setting(1.3, "Size ratio between octaves.", lo=1.0, hi=3.0, lo_open=True)
    steps: int = setting(20, "Gradient-ascent steps per octave.", lo=1)
    step_size: float = setting(0.003, "Step, as a fraction of the pixel range [0, 255], of the gradient "
                                     "divided by its mean absolute value.", lo=0.0, hi=1.0, lo_open=True)
    tile: int = setting(512, "Gradients in tiles of at most this many pixels a side (bounded memory at any "
                             "image size).", lo=32)
    jitter: int = setting(32, "Random shift of the image at each step, in pixels (0: none).", lo=0)
    guide: Optional[str] = setting(None, "Guided dream: an image whose features the dream moves towards.")
    class_: Optional[str] = setting(None, "Class visualisation: an ImageNet class (index or name) whose logit "
                                          "the dream raises, instead of layer activations.")
    preserve_colors: bool = setting(False, "Keep the photo's colours: the dream's luminance, the photo's "
                                           "chrominance (YUV).")
    size: Optional[int] = setting(None, "Resize the photo so its longest side is this many pixels; unset: "
                                        "as it is.", lo=8)
    seed: int = setting(0, "Seeds the random shifts: the same seed and settings make the same image.")


# ------------------------------------------------------------------------------------------------
# Settings


def resolve(settings: Mapping[str, Any], *, config_file: Optional[os.PathLike] = None,
            source: str = "argument", check_model: bool = True, cls: Any = None, command: str = APP,
            app_defaults: Optional[Mapping[str, Any]] = None) -> Resolved:
    """The checked settings of a dream, each with its source (`kerascnn dream --print-config`).

    Layers, channels, class and weights are parsed and checked here, before any model is built;
    that the layers and channels exist in the model is checked when it is built. `check_model=False`
    skips the checks of `model` and `weights` (a built keras.Model is passed instead).
    """
    cls = cls or DreamConfig
    values = dict(settings)
    if "class" in values:  # the CLI's and a JSON file's spelling
        values["class_"] = values.pop("class")
    for key in ("layers", "channels"):
        if values.get(key) is not None and not isinstance(values[key], str):
            values[key] = (format_layer_weights if key == "layers" else format_channels)(values[key])
    if values.get("class_") is not None:
        values["class_"] = str(values["class_"])
    app_layers = [Layer(f"app {command}", dict(app_defaults))] if app_defaults else []
    resolved = resolve_settings(cls, values, config_file=config_file, source=source, command=command,
                                app_layers=app_layers)
    cfg = resolved.config
    parse_layers(cfg.layers)
    parse_channels(cfg.channels)
    if cfg.class_ is not None:
        from kerascnn.data.imageio import imagenet_class_index

        imagenet_class_index(cfg.class_)  # UnknownNameError (param "class") with close matches
    if cfg.guide is not None and not os.path.isfile(cfg.guide):
        raise SettingError("guide", f"Guide image {cfg.guide} does not exist.")
    if cfg.guide is not None and cfg.class_ is not None:
        raise SettingError("guide", "Pass either a guide image or a class, not both.")
    if not check_model:
        return resolved
    from kerascnn.models.networks import check_network
    from kerascnn.models.refs import is_backbone_ref

    check_network(cfg.model, cfg.weights)  # a file, keras:NAME or registry name, its weights, RGB input
    if not is_backbone_ref(cfg.model):
        from kerascnn.models.registry import get_spec

        min_side = min(get_spec(cfg.model).min_input[:2])
        if cfg.tile < 2 * min_side:
            raise SettingError("tile", f"tile must be at least {2 * min_side} px for {cfg.model} (tiles may be "
                                       f"half the tile size; its smallest input is {min_side} px). "
                                       f"Received: {cfg.tile}")
    return resolved


def parse_layers(text: Optional[str]) -> Optional[Dict[str, float]]:
    """"mixed3:1.0,mixed5:1.5" (or "mixed3,mixed5") -> {"mixed3": 1.0, "mixed5": 1.5}; None -> None."""
    return parse_layer_weights(text, "layers")


def parse_channels(text: Optional[str]) -> Dict[str, Union[Tuple[int, ...], int]]:
    """"a:12,40;b:strongest:8" -> {"a": (12, 40), "b": 8}: a tuple picks those channels, an int the
    k strongest on the photo."""
    out: Dict[str, Union[Tuple[int, ...], int]] = {}
    for item in filter(None, (s.strip() for s in (text or "").split(";"))):
        name, _, rest = item.partition(":")
        try:
            if rest.startswith(STRONGEST + ":"):
                k = int(rest[len(STRONGEST) + 1:])
                if k < 1:
                    raise ValueError
                out[name.strip()] = k
            else:
                idx = tuple(int(c) for c in rest.split(","))
                if not idx or min(idx) < 0:
                    raise ValueError
                out[name.strip()] = idx
        except ValueError:
            raise SettingError("channels", f"expected LAYER:12,40 or LAYER:strongest:8 (several joined by ';'). "
                                           f"Received: {item!r}") from None
        if not name.strip():
            raise SettingError("channels", f"a layer name is missing. Received: {item!r}")
    return out


def format_channels(channels: Mapping[str, Union[Sequence[int], int]]) -> str:
    if isinstance(channels, str):
        return channels
    return ";".join(f"{k}:{STRONGEST}:{v}" if isinstance(v, int) else f"{k}:{','.join(map(str, v))}"
                    for k, v in channels.items())


# ------------------------------------------------------------------------------------------------
# The model and the objective


class Objective(NamedTuple):
    """What one dream maximises: an extractor, and how to score its outputs."""

    extractor: Any  # keras.Model, input raw pixels, outputs the chosen layers (or the logits)
    weights: Tuple[float, ...]
    channels: Tuple[Optional[Tuple[int, ...]], ...]  # per output: channel indices, or None for all
    guides: Tuple[Optional[np.ndarray], ...]  # per output: unit guide feature vector, or None
    class_index: Optional[int]
    fixed_input: Optional[Tuple[int, int]]  # a head that needs this input size (tiles are resized to it)
    min_side: int  # the smallest image side the model takes


def build_model(cfg: DreamConfig):
    """The network the dream reads: a registry model (its logits kept only for class visualisation)
    or a .keras file."""
    from kerascnn.models.networks import network

    return network(cfg.model, cfg.weights, include_top=cfg.class_ is not None, seed=cfg.seed)


def _min_side(model) -> int:
    from kerascnn.models.registry import get_spec, list_models

    if model.name in list_models():
        return min(get_spec(model.name).min_input[:2])
    return DEFAULT_MIN_SIDE


def build_objective(model, cfg: DreamConfig, photo: np.ndarray) -> Objective:
    """The extractor and per-layer weights, channels and guide vectors for `cfg` on `model`."""
    from kerascnn.models.features import feature_extractor

    channels = parse_channels(cfg.channels)
    if cfg.class_ is not None:
        from kerascnn.data.imageio import imagenet_class_index

        index = imagenet_class_index(cfg.class_)
        extractor = any_size(feature_extractor(model, "logits"))
        if int(extractor.output.shape[-1]) <= index:
            raise SettingError("class", f"Model {model.name} has {extractor.output.shape[-1]} classes; "
                                        f"class {cfg.class_!r} is index {index}.")
        return Objective(extractor, (1.0,), (None,), (None,), index, _fixed_input(extractor, model),
                         _min_side(model))
    layers = parse_layers(cfg.layers) or ({name: 1.0 for name in channels} if channels else "dream")
    if isinstance(layers, dict):
        layers = {**layers, **{n: 1.0 for n in channels if n not in layers}}
    min_side = _min_side(model)
    if cfg.tile < 2 * min_side:  # tiles may be half the tile size; none may be below the model's input
        raise SettingError("tile", f"tile must be at least {2 * min_side} px for {model.name} (its smallest input "
                                   f"is {min_side} px). Received: {cfg.tile}")
    extractor = any_size(_extractor(model, layers))
    picked = _pick_channels(extractor, channels, photo, cfg.tile)
    guides = _guides(extractor, picked, cfg.guide) if cfg.guide else (None,) * len(picked)
    return Objective(extractor, tuple(extractor.layer_weights), picked, guides, None, None, min_side)


def _extractor(model, layers):
    """feature_extractor, whose unknown-name error also lists the layers (a few) or says how to see them."""
    from kerascnn.errors import UnknownNameError
    from kerascnn.models.features import feature_extractor, list_layers

    try:
        return feature_extractor(model, layers)
    except UnknownNameError as e:
        names = [row.name for row in list_layers(model)]
        more = (f" Its layers: {', '.join(names)}." if len(names) <= 30 else
                f" `kerascnn dream --model {model.name} --list-layers` lists them.")
        raise UnknownNameError(e.param, str(e) + more) from None


def _fixed_input(extractor, model) -> Optional[Tuple[int, int]]:
    """The input size a classifier head needs (VGG's Flatten) or None when it pools any size."""
    import tensorflow as tf

    h, w = (int(s) for s in model.input_shape[1:3])
    try:  # one forward pass at 1.5x the size, which changes what a Flatten passes on
        extractor(tf.zeros((1, h * 3 // 2, w * 3 // 2, 3)))
        return None
    except Exception:  # noqa: BLE001 (Keras raises ValueError or TF InvalidArgumentError)
        return h, w


def _outputs(extractor, x) -> list:
    out = extractor(x, training=False)
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _pick_channels(extractor, channels, photo, tile) -> Tuple[Optional[Tuple[int, ...]], ...]:
    """Per output, the channel indices to excite (None: all), the k strongest read on the photo."""
    from kerascnn.data.imageio import resize_longest

    names = extractor.layer_names
    for name in channels:
        if not any(n == name or n.rsplit("/", 1)[-1] == name for n in names):
            raise SettingError("channels", f"Layer {name!r} is not among the dream layers {', '.join(names)}.")
    acts = None
    if any(isinstance(v, int) for v in channels.values()):
        small = resize_longest(photo, min(tile, max(photo.shape[:2])))
        acts = [np.asarray(a)[0].mean(axis=(0, 1)) for a in _outputs(extractor, small[None])]
    picked = []
    for i, name in enumerate(names):
        want = next((v for k, v in channels.items() if name == k or name.rsplit("/", 1)[-1] == k), None)
        depth = int(extractor.outputs[i].shape[-1])
        if want is None:
            picked.append(None)
        elif isinstance(want, int):
            order = np.argsort(-acts[i], kind="stable")[:want]
            picked.append(tuple(int(c) for c in order))
            log.info("%s: the %d most active channels on the photo: %s", name, want, ",".join(map(str, order)))
        else:
            if max(want) >= depth:
                raise SettingError("channels", f"Layer {name} has {depth} channels (0-{depth - 1}). "
                                               f"Received: {','.join(map(str, want))}")
            picked.append(tuple(want))
    return tuple(picked)


def _guides(extractor, picked, guide_path) -> Tuple[np.ndarray, ...]:
    """Per output, the guide image's mean feature vector (over positions), of unit length."""
    from kerascnn.data.imageio import load_image

    guide = load_image(guide_path, max_side=GUIDE_SIDE)
    vectors = []
    for a, idx in zip(_outputs(extractor, guide[None]), picked):
        v = np.asarray(a)[0].mean(axis=(0, 1))
        v = v[list(idx)] if idx is not None else v
        vectors.append((v / (np.linalg.norm(v) + 1e-8)).astype(np.float32))
    return tuple(vectors)


def make_tile_gradient(obj: Objective) -> Gradient:
    """The objective of `obj`, compiled with its gradient: (tile (h, w, 3), area fraction) ->
    (objective, d objective / d pixels), as kerascnn.synthesis.tiles.gradient calls it."""
    import tensorflow as tf

    def score(x):
        if obj.fixed_input is not None:
            x = tf.image.resize(x, obj.fixed_input)
        outputs = _outputs(obj.extractor, x)
        if obj.class_index is not None:
            return outputs[0][0, obj.class_index]
        total = tf.constant(0.0)
        for a, w, idx, g in zip(outputs, obj.weights, obj.channels, obj.guides):
            if idx is not None:
                a = tf.gather(a, list(idx), axis=-1)
            if g is not None:  # guided: the features' agreement with the guide's, at every position
                a = tf.reduce_sum(a * tf.constant(g), axis=-1)
            total += w * tf.reduce_mean(a)
        return total

    # Each tile's mean is weighted by its share of the image (Gradient's `fraction`): the sum over
    # tiles is the whole image's mean (exactly so for one tile).
    return Gradient(score)


# ------------------------------------------------------------------------------------------------
# The ascent


def _ascent(cfg: DreamConfig, rng: np.random.Generator, bar=None) -> Dict[str, Any]:
    """kerascnn.synthesis.ascent.ascend's settings for a dream: Google's normalisation (the gradient
    over its mean absolute value, so the step means the same whatever the layer's scale), a step of
    `step_size` of the pixel range, a random shift and tile-grid offset every step."""
    return dict(steps=cfg.steps, step_size=cfg.step_size * 255.0, normalize="mean_abs", jitter=cfg.jitter,
                tile=cfg.tile, rng=rng, on_step=None if bar is None else (lambda v: bar.update(objective=v)))


def ascend(tile_gradient: Gradient, image: np.ndarray, cfg: DreamConfig, rng: np.random.Generator,
           bar=None) -> np.ndarray:
    """`cfg.steps` steps of normalised gradient ascent on `image` (float32 (h, w, 3) in [0, 255])."""
    return ascent.ascend(tile_gradient, image, **_ascent(cfg, rng, bar))


def octave_shapes(height: int, width: int, octaves: int, scale: float, min_side: int) -> List[Tuple[int, int]]:
    """The image sizes of the octaves, smallest first, the last the photo's own; fewer than
    `octaves` (with a logged note) where a smaller one would go below `min_side`.

    Raises:
        SettingError: (param "image") the photo itself is smaller than the model takes.
    """
    if min(height, width) < min_side:
        raise SettingError("image", f"The image is {height}x{width} px; the model needs at least {min_side} px "
                                    f"a side. Pass a larger image (or --size).")
    shapes = []
    for i in range(octaves - 1, -1, -1):
        shape = (round(height / scale ** i), round(width / scale ** i))
        if min(shape) >= min_side:
            shapes.append(shape)
    if len(shapes) < octaves:
        log.info("dream: %d octaves instead of %d: a smaller one would go below the model's %d px on "
                 "the image's %dx%d.", len(shapes), octaves, min_side, height, width)
    return shapes


def read_photo(image, cfg: DreamConfig) -> np.ndarray:
    """The photo to dream on: a file (load_image), or pixels; resized to `cfg.size` if set."""
    from kerascnn.data.imageio import load_image, resize_longest

    if isinstance(image, np.ndarray):
        photo = np.asarray(image, np.float32)
        if photo.ndim != 3 or photo.shape[-1] != 3:
            raise SettingError("image", f"image must be (height, width, 3) pixels. Received: shape={photo.shape}")
        return resize_longest(photo, cfg.size) if cfg.size else photo
    return load_image(image, size=cfg.size)


def dream_octaves(photo: np.ndarray, cfg: DreamConfig, obj: Objective, tile_gradient: Gradient,
                  rng: np.random.Generator, bar=None) -> np.ndarray:
    """The ascent at each octave's size, smallest first (kerascnn.synthesis.ascent: the dream made so
    far is enlarged onto the photo at the next size), then the photo's colours if asked."""
    shapes = octave_shapes(*photo.shape[:2], cfg.octaves, cfg.octave_scale, obj.min_side)
    out = ascent.ascend(tile_gradient, photo, octaves=shapes, **_ascent(cfg, rng, bar))
    if cfg.preserve_colors:
        out = preserve_colors(out, photo)
    return out.astype(np.float32)


def run(resolved: Union[Resolved, DreamConfig], image: Union[os.PathLike, str, np.ndarray], *,
        model=None, progress: bool = True) -> np.ndarray:
    """Dream on `image` (a path, or float (h, w, 3) pixels in [0, 255]) with resolved settings.

    `model` reuses a built network (tests, animations); by default `cfg.model` is built.
    Returns float32 (h, w, 3) pixels in [0, 255].
    """
    from kerascnn.runtime.progress import Progress

    cfg = resolved.config if isinstance(resolved, Resolved) else resolved
    photo = read_photo(image, cfg)
    model = model if model is not None else build_model(cfg)
    obj = build_objective(model, cfg, photo)
    shapes = octave_shapes(*photo.shape[:2], cfg.octaves, cfg.octave_scale, obj.min_side)
    with Progress(cfg.steps * len(shapes), "dream", unit="step", disable=not progress) as bar:
        return dream_octaves(photo, cfg, obj, make_tile_gradient(obj), np.random.default_rng(cfg.seed), bar)


def dream(image: Union[os.PathLike, str, np.ndarray], *, config_file: Optional[os.PathLike] = None,
          model=None, progress: bool = True, **settings: Any) -> np.ndarray:
    """DeepDream `image` (a file or (h, w, 3) pixels in [0, 255]); returns float32 pixels in [0, 255].

    Takes every DreamConfig setting by name: model="inception_v3", weights="imagenet",
    layers={"mixed3": 1.0, "mixed5": 1.5} (or "mixed3:1.0,mixed5:1.5"), channels={"mixed4": (12, 40)}
    or {"mixed4": 8} (the 8 strongest), octaves=4, octave_scale=1.3, steps=20, step_size=0.003,
    tile=512, jitter=32, guide="guide.jpg", class_="tabby" (or 281), preserve_colors=False, size=None,
    seed=0. `model` may also be a built keras.Model (then `weights` is not used).

    Raises:
        SettingError: a bad setting (named by `e.param`), before any model is built where possible.
    """
    if model is not None and not isinstance(model, (str, os.PathLike)):
        built = model
        resolved = resolve({**settings, "model": model.name, "weights": "none"}, config_file=config_file,
                           check_model=False)
    else:
        built = None
        if model is not None:
            settings = {**settings, "model": os.fspath(model)}
        resolved = resolve(settings, config_file=config_file)
    return run(resolved, image, model=built, progress=progress)


def dream_file(image: Union[os.PathLike, str], out: os.PathLike, *, resolved: Optional[Resolved] = None,
               config_file: Optional[os.PathLike] = None, progress: bool = True, **settings: Any) -> Path:
    """Dream on the image file `image` and write `out` (.jpg/.png) and, beside it, `out` with .json:
    every resolved setting (seed included) with its source, and the image it was made from, so that
    `kerascnn dream IMAGE --config OUT.json` makes the same picture again. `resolved` (from `resolve`)
    replaces `settings` and `config_file`.

    Returns:
        The path of the image written.
    """
    from kerascnn.data.imageio import SAVE_FORMATS, save_image
    from kerascnn.runtime.jobs import JobDir

    out = Path(out)
    if not os.path.isfile(image):
        raise SettingError("image", f"Image {image} does not exist.")
    if out.suffix.lower() not in SAVE_FORMATS:
        raise SettingError("out", f"{out}: the output must end in {', '.join(SAVE_FORMATS)}.")
    if resolved is None:
        resolved = resolve(settings, config_file=config_file)
    pixels = run(resolved, image, progress=progress)
    save_image(out, pixels)
    record = {**resolved.to_json(), "image": os.fspath(image), "output": os.fspath(out)}
    JobDir(out.parent).write_json(out.with_suffix(".json").name, record)
    return out


def settings_path(out: os.PathLike) -> Path:
    """Where `dream_file` writes the settings of `out`: out.jpg -> out.json."""
    return Path(out).with_suffix(".json")


__all__ = ["DreamConfig", "dream", "dream_file", "resolve", "run", "dream_octaves", "octave_shapes", "parse_layers",
           "parse_channels", "splits", "gradient", "make_tile_gradient", "build_model", "build_objective",
           "preserve_colors", "settings_path"]
