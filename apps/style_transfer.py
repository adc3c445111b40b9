"""Style transfer by optimisation (Gatys, Ecker & Bethge, CVPR 2016): paint a photo in the style of
one or more images, at any size.

The picture is optimised so that its deep features match the photo's (content) and the Gram
matrices of its features match the style's (kerascnn.synthesis.stylization has the objective). What this app
adds to the paper's recipe, each because it is faster or because users asked for it in the issue
trackers of neural-style, fast-style-transfer and the keras-io example:

* L-BFGS (SciPy's L-BFGS-B, pixels kept in [0, 255] by its bounds) on TensorFlow gradients, the
  optimiser of the paper and of neural-style: no learning rate to tune, and a given loss in 1.5-2x
  fewer evaluations than Adam at its best fixed rate (bench/RESULTS.md); Adam too.
* coarse to fine: the picture is made at `start_size` first, then enlarged 2x at a time up to
  `size`, each scale starting from the last one's result, with half the evaluations of the next;
  the coarse scales settle the layout of large prints cheaply, the fine ones add brush strokes. No
  outside script is needed (neural-style's multires.sh). From 512 px by default: up to that size one
  scale reaches a given loss sooner (the upsampled picture lacks the texture the finer scale wants).
* bfloat16 features where the hardware has bfloat16 arithmetic (`precision`, auto): 1.6x faster an
  evaluation on an AVX512-BF16 CPU, the losses summed in float32.
* tiles: beyond `tile` pixels a side, features and gradients are computed in overlapping tiles whose
  grid moves at every scale (kerascnn.synthesis.tiles.Grid), so a 4000x3000 picture runs in bounded memory
  without seams.
* preserve colours (Gatys et al. 2017): transfer on luminance, then the photo's colours back.
* several styles blended by weight (`style_blend`), the style's scale (`style_scale`).
* quality figures, printed and written with every setting beside the output: the normalised Gram
  distance to the style and the content distance to the photo, next to the photo's own.

    from kerascnn.apps.style_transfer import stylize, stylize_file
    picture, report = stylize("photo.jpg", ["painting.jpg"], model="vgg16", weights="vgg16.weights.h5")
    stylize_file("photo.jpg", ["a.jpg", "b.jpg"], "out.jpg", style_blend="0.7,0.3", size=1024)
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from kerascnn.config import PRECISIONS, setting
from kerascnn.errors import SettingError
from kerascnn.settings import Resolved, resolve_settings
from kerascnn.synthesis.stylization import Weights

log = logging.getLogger("kerascnn.stylize")

APP = "stylize"
MIN_COARSE_EVALUATIONS = 20  # the fewest evaluations a coarser scale gets
NOISE_STD = 40.0  # --init noise: Gaussian pixels around mid-grey
FIRST_STEP = 8.0  # L-BFGS's first step, in pixels at most (see lbfgs)

Image = Union[str, os.PathLike, np.ndarray]


@dataclass(frozen=True)
class StylizeConfig:
    """`kerascnn stylize`: every setting of one picture (written beside it, so it can be redone)."""

    model: str = setting("vgg19", "The feature network: a registered model (`kerascnn models`), keras:NAME or a "
                                  ".keras file.")
    weights: Optional[str] = setting("imagenet", "none | imagenet | a .weights.h5 / .keras file (a .keras --model "
                                                 "brings its own).")
    content_layers: Optional[str] = setting(None, "Content layers with weights, block4_conv2:1.0; unset: the model's "
                                                  "content layers (`kerascnn models`).")
    style_layers: Optional[str] = setting(None, "Style layers with weights, block1_conv1:1,block2_conv1:1; unset: "
                                                "the model's style layers.")
    content_weight: float = setting(Weights.content, "Weight of the content loss (relative squared feature error).",
                                    lo=0.0)
    style_weight: float = setting(Weights.style, "Weight of the style loss (relative squared Gram error).", lo=0.0)
    tv_weight: float = setting(Weights.tv, "Weight of the total-variation loss (smoothness).", lo=0.0)
    optimizer: str = setting("lbfgs", "lbfgs (SciPy's L-BFGS-B, the paper's) or adam.", choices=("lbfgs", "adam"))
    learning_rate: float = setting(4.0, "Adam's step size, in pixels (0-255).", lo=0.0, lo_open=True)
    init: str = setting("content", "Start from the photo, the style image or noise.",
                        choices=("content", "style", "noise"))
    iterations: int = setting(300, "Loss evaluations at the output's size; each coarser scale gets half as many "
                                   f"as the next (at least {MIN_COARSE_EVALUATIONS}).", lo=1)
    size: int = setting(512, "The output's longest side, in pixels (no upper limit: large sizes run in tiles).",
                        lo=16)
    start_size: int = setting(512, "Coarse to fine: the first scale's longest side; the picture doubles from "
                                   "there up to --size (up to 512 px one scale is faster to a given loss).", lo=16)
    tile: int = setting(1024, "Beyond this many pixels a side, gradients are computed in tiles of it.", lo=32)
    halo: int = setting(96, "Context around each tile, in pixels (features near a tile edge see it).", lo=0)
    preserve_colors: bool = setting(False, "Keep the photo's colours: transfer on luminance only (Gatys et al. "
                                           "2017).")
    style_blend: Optional[str] = setting(None, "Weights of several styles, 0.7,0.3 (normalised); unset: equal.")
    style_scale: float = setting(1.0, "The style image's size relative to the output (larger: bigger brush "
                                      "strokes).", lo=0.05, hi=8.0)
    precision: str = setting("auto", "The feature network's arithmetic; auto: mixed_bfloat16 where the hardware "
                                     "computes bfloat16 natively (CPUs with AVX512-BF16 or AMX, recent GPUs: 1.6x "
                                     "faster an evaluation), else float32. Losses are summed in float32.",
                             choices=PRECISIONS)
    seed: int = setting(0, "Seeds the noise and the tile grid's shifts.")
    save_every: int = setting(0, "Also save the picture every N evaluations (OUT-0010.jpg ...); 0: never.", lo=0)


# ------------------------------------------------------------------------------------------------
# Settings


def resolve(settings: Mapping[str, Any], *, config_file: Optional[os.PathLike] = None, source: str = "argument",
            check_model: bool = True) -> Resolved:
    """The checked settings of a picture, each with its source (`kerascnn stylize --print-config`)."""
    from kerascnn.models.features import format_layer_weights, parse_layer_weights

    values = dict(settings)
    for key in ("content_layers", "style_layers"):
        if values.get(key) is not None and not isinstance(values[key], str):
            values[key] = format_layer_weights(values[key])
    if values.get("style_blend") is not None and not isinstance(values["style_blend"], str):
        values["style_blend"] = ",".join(repr(float(v)) for v in values["style_blend"])
    resolved = resolve_settings(StylizeConfig, values, config_file=config_file, source=source, command=APP)
    cfg = resolved.config
    parse_layer_weights(cfg.content_layers, "content_layers")
    parse_layer_weights(cfg.style_layers, "style_layers")
    blend_weights(cfg.style_blend, None)
    if check_model:
        from kerascnn.models.networks import check_network

        check_network(cfg.model, cfg.weights)
    return resolved


def blend_weights(text: Optional[str], count: Optional[int]) -> List[float]:
    """"0.7,0.3" -> [0.7, 0.3] (normalised); None -> equal weights for `count` styles."""
    if text is None:
        return [1.0 / count] * count if count else []
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SettingError("style_blend", f"expected weights such as 0.7,0.3. Received: {text!r}") from None
    if not values or min(values) < 0 or sum(values) <= 0:
        raise SettingError("style_blend", f"weights must be non-negative, not all zero. Received: {text!r}")
    if count is not None and len(values) != count:
        raise SettingError("style_blend", f"{len(values)} weights for {count} style images; give one per style. "
                                          f"Received: {text!r}")
    return [v / sum(values) for v in values]


def scale_sizes(size: int, start_size: int) -> List[int]:
    """The longest sides of the scales, coarsest first: `size` halved while it stays >= `start_size`."""
    sizes = [int(size)]
    while sizes[0] // 2 >= start_size:
        sizes.insert(0, sizes[0] // 2)
    return sizes


def scale_evaluations(iterations: int, scales: int) -> List[int]:
    """Evaluations per scale, coarsest first: `iterations` at the output's size, half as many at each
    coarser one (at least MIN_COARSE_EVALUATIONS, or `iterations` if fewer).

    The finest scale gets the most because it does most of the work: an upsampled picture lacks the
    fine texture the style's Gram matrices at the new size ask for, and on the GPU curves of
    bench/RESULTS.md a coarse start saves the fine scale few evaluations. The coarse scales are cheap
    (a quarter of the pixels a halving) and settle the layout of large pictures."""
    floor = min(MIN_COARSE_EVALUATIONS, iterations)
    return [max(floor, iterations >> (scales - 1 - i)) for i in range(scales)]


# ------------------------------------------------------------------------------------------------
# Optimisers: f(x) -> (loss, gradient) on float32 pixels, `evaluations` calls at most


def lbfgs(f: Callable, x0: np.ndarray, evaluations: int, memory: Optional[int] = None) -> np.ndarray:
    """SciPy's L-BFGS-B, pixels bounded to [0, 255]; returns the best picture it evaluated.

    With bounds, L-BFGS-B's first step is the gradient itself (its Hessian guess is the identity),
    and the loss's gradient is ~1e-6 a pixel: a step below float32's resolution, after which the
    line search gives up. So the loss is scaled, once, to make the first step `FIRST_STEP` pixels
    at most; the minimiser is the same, and later steps follow the measured curvature.
    """
    from scipy.optimize import Bounds, minimize

    shape = x0.shape
    best: Dict[str, Any] = {"loss": np.inf, "x": x0, "calls": 0}

    def fun(v):
        if best["calls"] >= evaluations:  # SciPy stops only once it has gone past maxfun
            raise _Budget
        best["calls"] += 1
        x = v.reshape(shape).astype(np.float32)
        loss, grad = f(x)
        if loss < best["loss"]:
            best.update(loss=loss, x=x)
        if "scale" not in best:
            best["scale"] = FIRST_STEP / (float(np.abs(grad).max()) + 1e-20)
        return loss * best["scale"], grad.ravel().astype(np.float64) * best["scale"]

    # The history of 10 steps costs 20 copies of the picture in float64: fewer for very large ones.
    memory = memory or (10 if x0.size <= 8_000_000 else 4)
    try:
        minimize(fun, x0.ravel().astype(np.float64), jac=True, method="L-BFGS-B", bounds=Bounds(0.0, 255.0),
                 options={"maxfun": evaluations, "maxiter": evaluations, "maxcor": memory, "ftol": 0.0,
                          "gtol": 0.0})
    except _Budget:
        pass
    return best["x"]


class _Budget(Exception):
    """The optimiser asked for more evaluations than it was given."""


def adam(f: Callable, x0: np.ndarray, evaluations: int, learning_rate: float) -> np.ndarray:
    """Keras's Adam on the pixels, clipped to [0, 255] after each step; returns the best picture seen."""
    import keras
    import tensorflow as tf

    x = tf.Variable(x0.astype(np.float32))
    opt = keras.optimizers.Adam(learning_rate)
    best_loss, best = np.inf, x0
    for _ in range(evaluations):
        loss, grad = f(x.numpy())
        if loss < best_loss:
            best_loss, best = loss, x.numpy()
        opt.apply_gradients([(tf.constant(grad), x)])
        x.assign(tf.clip_by_value(x, 0.0, 255.0))
    return best


# ------------------------------------------------------------------------------------------------
# The picture


def _read(image: Image, param: str, size: Optional[int] = None) -> np.ndarray:
    from kerascnn.data.imageio import load_image, resize_longest

    if isinstance(image, np.ndarray):
        pixels = np.asarray(image, np.float32)
        if pixels.ndim != 3 or pixels.shape[-1] != 3:
            raise SettingError(param, f"{param} must be (height, width, 3) pixels. Received: shape={pixels.shape}")
        return resize_longest(pixels, size) if size else pixels
    if not os.path.isfile(image):
        raise SettingError(param, f"Image {image} does not exist.")
    return load_image(image, size=size)


def _resize(image: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    import tensorflow as tf

    if tuple(image.shape[:2]) == tuple(shape):
        return image
    return np.clip(tf.image.resize(image, shape, method="bicubic", antialias=True).numpy(), 0.0, 255.0)


def build_objective(cfg: StylizeConfig, model=None):
    """The StyleObjective of `cfg` (on `model` if given, as it was built; else the network `cfg.model`
    names, built in `cfg.precision`)."""
    from kerascnn.models.features import parse_layer_weights
    from kerascnn.models.networks import network
    from kerascnn.synthesis.stylization import StyleObjective

    if model is None:
        from kerascnn.training.distribute import precision_scope

        with precision_scope(cfg.precision):
            model = network(cfg.model, cfg.weights, seed=cfg.seed)
    content = parse_layer_weights(cfg.content_layers, "content_layers") or {"content": 1.0}
    style = parse_layer_weights(cfg.style_layers, "style_layers") or {"style": 1.0}
    return StyleObjective(model, content, style, Weights(cfg.content_weight, cfg.style_weight, cfg.tv_weight),
                          tile=cfg.tile, halo=cfg.halo)


@dataclass
class Result:
    """A finished picture, with what `stylize_file` reports about it."""

    image: np.ndarray  # float32 (h, w, 3) in [0, 255]
    figures: Dict[str, Any]  # output / photo / style images: quality figures (see kerascnn.synthesis.stylization)
    scales: List[Dict[str, Any]]  # per scale: size, evaluations, loss, seconds
    seconds: float
    precision: str = "float32"  # the feature network's dtype policy


def run(resolved: Union[Resolved, StylizeConfig], content: Image, styles: Sequence[Image], *, model=None,
        progress: bool = True, on_frame: Optional[Callable[[int, np.ndarray], None]] = None) -> Result:
    """Stylize `content` (a path or (h, w, 3) pixels in [0, 255]) with `styles` under resolved settings.

    `model` reuses a built network (tests); `on_frame(evaluation, picture)` is called every
    `save_every` evaluations.
    """
    from kerascnn.synthesis.color import luminance, match_luminance, preserve_colors
    from kerascnn.runtime.progress import Progress

    cfg = resolved.config if isinstance(resolved, Resolved) else resolved
    if not styles:
        raise SettingError("style", "Give at least one style image.")
    blend = blend_weights(cfg.style_blend, len(styles))
    start = time.perf_counter()
    photo = _read(content, "content", cfg.size)
    style_images = [_read(s, "style") for s in styles]
    if cfg.preserve_colors:  # Gatys et al. 2017: luminance only, the style's matched to the photo's
        style_images = [match_luminance(s, photo) for s in style_images]
        target_photo = luminance(photo)
    else:
        target_photo = photo
    objective = build_objective(cfg, model)
    sizes = scale_sizes(max(photo.shape[:2]), min(cfg.start_size, max(photo.shape[:2])))
    evaluations = scale_evaluations(cfg.iterations, len(sizes))
    rng = np.random.default_rng(cfg.seed)
    scales, picture, targets, done = [], None, None, [0]
    with Progress(sum(evaluations), "stylize", unit="eval", disable=not progress) as bar:
        for side, count in zip(sizes, evaluations):
            t0 = time.perf_counter()
            photo_s = _resize(target_photo, _shape_for(target_photo.shape[:2], side))
            targets = objective.targets(photo_s, [_resize(s, _shape_for(s.shape[:2], side * cfg.style_scale))
                                                  for s in style_images], blend)
            x0 = _start(cfg, photo_s, style_images[0], rng) if picture is None else _resize(picture, photo_s.shape[:2])
            offset = tuple(int(v) for v in rng.integers(0, cfg.tile, size=2))
            best: Dict[str, Any] = {"loss": np.inf}
            f = _counted(objective, targets, offset, bar, done, best, cfg.save_every, on_frame,
                         photo if cfg.preserve_colors else None)
            picture = (lbfgs(f, x0, count) if cfg.optimizer == "lbfgs"
                       else adam(f, x0, count, cfg.learning_rate))
            scales.append({"size": list(photo_s.shape[:2]), "evaluations": count, **best,
                           "seconds": round(time.perf_counter() - t0, 2)})
    figures = _figures(objective, targets, picture, photo_s, style_images, cfg)
    if cfg.preserve_colors:
        picture = preserve_colors(picture, photo)
    return Result(picture.astype(np.float32), figures, scales, time.perf_counter() - start, objective.precision)


def _shape_for(shape: Tuple[int, int], side: float) -> Tuple[int, int]:
    h, w = shape
    s = side / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def _start(cfg: StylizeConfig, photo: np.ndarray, style: np.ndarray, rng) -> np.ndarray:
    if cfg.init == "content":
        return photo.copy()
    if cfg.init == "style":
        return _resize(style, photo.shape[:2]).astype(np.float32)
    return np.clip(rng.normal(127.5, NOISE_STD, photo.shape), 0.0, 255.0).astype(np.float32)


def _counted(objective, targets, offset, bar, done: List[int], best: Dict[str, Any], save_every: int, on_frame,
             colour_photo):
    """f(x) for the optimisers: the loss and gradient, counted, shown on the bar, saved every N; the
    lowest loss and its parts kept in `best` (the optimisers return the picture that scored it)."""
    from kerascnn.synthesis.color import preserve_colors

    def f(x: np.ndarray):
        loss, parts, grad = objective.loss_and_gradient(x, targets, offset)
        done[0] += 1
        if loss < best["loss"]:
            best.update(loss=loss, **parts)
        bar.update(loss=loss, content=parts["content"], style=parts["style"])
        if save_every and on_frame is not None and done[0] % save_every == 0:
            frame = x if colour_photo is None else preserve_colors(x, _resize(colour_photo, x.shape[:2]))
            on_frame(done[0], frame)
        return loss, grad

    return f


def _figures(objective, targets, picture, photo, style_images, cfg) -> Dict[str, Any]:
    """The output's quality figures next to the photo's, and each style image's content distance
    (at the output's size: what a picture with none of the photo's content scores)."""
    out = objective.figures(picture, targets)
    base = objective.figures(photo, targets)
    styles = [objective.figures(_resize(s, photo.shape[:2]), targets)["content_distance"] for s in style_images]
    return {"output": out, "photo": base, "style_images_content_distance": styles,
            "measured_on": "luminance" if cfg.preserve_colors else "rgb"}


def summary(figures: Mapping[str, Any]) -> str:
    """One line: the output's style and content distances next to the photo's."""
    out, photo = figures["output"], figures["photo"]
    styles = figures["style_images_content_distance"]
    return (f"style distance {out['style_distance']:.3f} (photo: {photo['style_distance']:.3f}), "
            f"content distance {out['content_distance']:.3f} (photo: {photo['content_distance']:.3f}, "
            f"style image{'s' if len(styles) > 1 else ''}: {', '.join(f'{v:.3f}' for v in styles)})")


def stylize(content: Image, styles: Union[Image, Sequence[Image]], *, config_file: Optional[os.PathLike] = None,
            model=None, progress: bool = True, **settings: Any) -> Tuple[np.ndarray, Dict[str, Any]]:
    """Paint `content` in the style of `styles` (paths or (h, w, 3) pixels in [0, 255]).

    Takes every StylizeConfig setting by name (model="vgg19", weights="imagenet",
    content_layers={"block4_conv2": 1.0}, style_weight=100.0, optimizer="lbfgs", size=512, ...);
    `model` may also be a built keras.Model. Returns (float32 pixels, quality figures).
    """
    styles = [styles] if isinstance(styles, (str, os.PathLike, np.ndarray)) else list(styles)
    if model is not None and not isinstance(model, (str, os.PathLike)):
        resolved = resolve({**settings, "model": model.name, "weights": "none"}, config_file=config_file,
                           check_model=False)
        result = run(resolved, content, styles, model=model, progress=progress)
    else:
        if model is not None:
            settings = {**settings, "model": os.fspath(model)}
        result = run(resolve(settings, config_file=config_file), content, styles, progress=progress)
    return result.image, result.figures


def stylize_file(content: Union[str, os.PathLike], styles: Sequence[Union[str, os.PathLike]], out: os.PathLike, *,
                 resolved: Optional[Resolved] = None, config_file: Optional[os.PathLike] = None,
                 progress: bool = True, **settings: Any) -> Tuple[Path, Dict[str, Any]]:
    """Stylize the file `content` and write `out` (.jpg/.png) and, beside it, `out` with .json: every
    resolved setting with its source, the input files, the scales and the quality figures, so that
    `kerascnn stylize CONTENT STYLE --config OUT.json` makes the same picture again.

    Returns:
        (the path written, the JSON record).
    """
    from kerascnn.data.imageio import SAVE_FORMATS, save_image
    from kerascnn.runtime.jobs import JobDir

    out = Path(out)
    if out.suffix.lower() not in SAVE_FORMATS:
        raise SettingError("out", f"{out}: the output must end in {', '.join(SAVE_FORMATS)}.")
    for i, path in enumerate([content, *styles]):
        if not os.path.isfile(path):
            raise SettingError("content" if i == 0 else "style", f"Image {path} does not exist.")
    if resolved is None:
        resolved = resolve(settings, config_file=config_file)

    def frame(n: int, picture: np.ndarray) -> None:
        save_image(out.with_name(f"{out.stem}-{n:04d}{out.suffix}"), picture)

    result = run(resolved, content, styles, progress=progress, on_frame=frame)
    save_image(out, result.image)
    record = {**resolved.to_json(), "content": os.fspath(content), "styles": [os.fspath(s) for s in styles],
              "output": os.fspath(out), "seconds": round(result.seconds, 2), "precision": result.precision,
              "scales": result.scales,
              "figures": result.figures}
    JobDir(out.parent).write_json(out.with_suffix(".json").name, record)
    return out, record


__all__ = ["StylizeConfig", "Result", "resolve", "run", "stylize", "stylize_file", "summary", "lbfgs", "adam",
           "scale_sizes", "scale_evaluations", "blend_weights", "build_objective"]
