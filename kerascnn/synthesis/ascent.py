"""Normalised gradient ascent on an image: DeepDream's and activation maximisation's one loop.

Both make an image excite a network more, step after step (Mordvintsev et al.'s DeepDream; Erhan et
al. 2009 and Yosinski et al. 2015's feature visualisation). One step:

1. jitter: roll the image by a random shift of up to `jitter` pixels (the objective then holds for
   the image's translations too, which keeps high-frequency noise down); with tiles, also move the
   tile grid by a random offset, so that no tile edge stays in one place long enough to show;
2. the gradient of the objective with respect to the pixels, in tiles of at most `tile` pixels a
   side when given (kerascnn.synthesis.tiles.gradient: bounded memory at any size), rolled back;
3. normalise it per image (by its mean absolute value, Google's deepdream, or by its standard
   deviation, Yosinski et al.'s), so that `step_size` means the same pixel change on any layer;
4. step, clip to the pixel range, and apply a regulariser (a blur, say) where one is given.

Octaves (DeepDream): the ascent runs at each of several sizes, smallest first; the dream made so
far (its difference from the shrunk start image) is enlarged onto the start image at the next size,
so the image's own fine detail, lost by the shrinking, comes back while patterns grow at every size.

The objective is a function of a float32 batch (N, h, w, C) of raw pixels to a scalar, written in
TensorFlow: the sum of each image's own objective (so each image's gradient is its own), a mean over
positions where tiles are used (a tile's value, weighted by its share of the image, then adds up to
the whole image's). `Gradient` compiles it once; pass one to several `ascend` calls to trace once.

    from kerascnn.synthesis.ascent import Gradient, ascend
    grad = Gradient(lambda x: tf.reduce_mean(extractor(x)))
    image = ascend(grad, photo, steps=20, step_size=0.8, jitter=32, tile=512,
                   octaves=[(180, 240), (240, 320)], rng=np.random.default_rng(0))
"""
from __future__ import annotations

from functools import partial
from typing import Callable, Optional, Sequence, Tuple, Union

import numpy as np

from kerascnn.synthesis.tiles import gradient as tiled_gradient

NORMALIZE = ("mean_abs", "std")
EPSILON = 1e-8  # keeps a flat gradient (a dead channel) from dividing by zero


class Gradient:
    """An objective (images (N, h, w, C) -> scalar, TensorFlow) and its compiled gradient.

    Called with images (N, h, w, C), or one image (h, w, C), and the share `fraction` of the whole
    image they are (1 for the whole, a tile's area share in tiles): returns (objective * fraction,
    its gradient with respect to the pixels, shaped as the images), as tensors.
    """

    def __init__(self, objective: Callable):
        self.objective = objective
        self._compiled = None

    def _build(self, channels: int):
        import tensorflow as tf

        # One trace for every image and tile size (DeepDream's octaves and tiles have many sizes).
        @tf.function(input_signature=[tf.TensorSpec((None, None, None, channels), tf.float32),
                                      tf.TensorSpec((), tf.float32)])
        def value_and_gradient(images, fraction):
            with tf.GradientTape() as tape:
                tape.watch(images)
                value = self.objective(images) * fraction
            return value, tape.gradient(value, images)

        return value_and_gradient

    def __call__(self, images, fraction=1.0):
        import tensorflow as tf

        x = tf.convert_to_tensor(images, tf.float32)
        if self._compiled is None:
            self._compiled = self._build(int(x.shape[-1]))
        fraction = tf.constant(fraction, tf.float32)
        if x.shape.rank == 3:
            value, grad = self._compiled(x[None], fraction)
            return value, grad[0]
        return self._compiled(x, fraction)


def ascend(objective: Union[Gradient, Callable], image: np.ndarray, *, steps: int, step_size: float,
           normalize: str = "mean_abs", jitter: int = 0, tile: Optional[int] = None,
           octaves: Optional[Sequence[Tuple[int, int]]] = None, rng: Optional[np.random.Generator] = None,
           clip: Tuple[float, float] = (0.0, 255.0),
           regularize: Optional[Callable[[np.ndarray, int], np.ndarray]] = None,
           on_step: Optional[Callable[[float], None]] = None) -> np.ndarray:
    """Normalised gradient ascent of `objective` from `image`; returns the image (float32, its shape).

    Args:
        objective: a `Gradient`, or an objective function (compiled here, for this call only).
        image: the start, float (h, w, C) or a batch (N, h, w, C), in the `clip` range.
        steps: ascent steps (per octave).
        step_size: the length of a step, in pixel levels, of the normalised gradient.
        normalize: "mean_abs" (the gradient divided by its mean absolute value) or "std" (by its
            standard deviation); per image.
        jitter: a random shift of the image of up to this many pixels each step (0: none).
        tile: compute gradients in tiles of at most this many pixels a side (None: whole images);
            an image larger than a tile also gets a random tile-grid offset each step.
        octaves: the (h, w) sizes to ascend at, smallest first, the last the image's own; None: the
            image's size only.
        rng: draws the shifts (a fresh unseeded one by default).
        clip: the pixel range every step stays in.
        regularize: `regularize(images (N, h, w, C), step index) -> images`, after each step's clip.
        on_step: called with the objective's value (before the step) after each step.
    """
    if normalize not in NORMALIZE:
        raise ValueError(f"normalize must be one of {', '.join(NORMALIZE)}. Received: normalize={normalize!r}")
    if steps < 0 or step_size < 0 or jitter < 0 or (tile is not None and tile < 1):
        raise ValueError(f"steps, step_size and jitter must be >= 0 and tile >= 1. Received: steps={steps}, "
                         f"step_size={step_size}, jitter={jitter}, tile={tile}")
    gradient = objective if isinstance(objective, Gradient) else Gradient(objective)
    rng = rng if rng is not None else np.random.default_rng()
    image = np.asarray(image, np.float32)
    single = image.ndim == 3
    batch = image[None] if single else image
    if batch.ndim != 4:
        raise ValueError(f"image must be (h, w, C) or (N, h, w, C). Received: shape={image.shape}")
    run = partial(_ascend, gradient=gradient, steps=steps, step_size=step_size, normalize=normalize,
                  jitter=jitter, tile=tile, rng=rng, clip=clip, regularize=regularize, on_step=on_step)
    out = run(batch) if octaves is None else _octaves(run, batch, octaves, clip)
    return out[0] if single else out


def _octaves(run, batch: np.ndarray, octaves: Sequence[Tuple[int, int]], clip) -> np.ndarray:
    """The octave loop (Google's deepdream notebook): `run(start)` ascends at each size."""
    import tensorflow as tf

    sizes = [tuple(int(s) for s in size) for size in octaves]
    if not sizes or sizes[-1] != batch.shape[1:3]:
        raise ValueError(f"octaves must end at the image's size {batch.shape[1:3]}. Received: {list(octaves)}")
    detail = None  # what the ascent has added, at the last octave's size
    for size in sizes:
        base = tf.image.resize(batch, size, method="bilinear", antialias=True).numpy()
        start = base
        if detail is not None:
            start = np.clip(base + tf.image.resize(detail, size, method="bilinear").numpy(), *clip)
        dreamed = run(start)
        detail = dreamed - base
    return dreamed  # the last octave is the image's own size


def _ascend(batch, *, gradient, steps, step_size, normalize, jitter, tile, rng, clip, regularize, on_step):
    """`steps` steps from `batch` (N, h, w, C) at its size."""
    batch = batch.astype(np.float32, copy=True)
    h, w = batch.shape[1:3]
    tiled = tile is not None and (h > tile or w > tile)
    for i in range(steps):
        dy, dx = (int(v) for v in rng.integers(-jitter, jitter + 1, size=2)) if jitter else (0, 0)
        if tiled:  # move the tile grid everywhere, so its edges never stay in one place
            dy, dx = dy + int(rng.integers(0, tile)), dx + int(rng.integers(0, tile))
        value, grad = _gradient(gradient, batch, tile if tiled else None, (dy % h, dx % w))
        for g in grad:  # each image its own scale: the step means the same whatever the layer's
            g /= (np.abs(g).mean() if normalize == "mean_abs" else g.std()) + EPSILON
        batch += grad * step_size
        np.clip(batch, *clip, out=batch)
        if regularize is not None:
            batch = np.asarray(regularize(batch, i), np.float32)
        if on_step is not None:
            on_step(value)
    return batch


def _gradient(gradient: Gradient, batch: np.ndarray, tile: Optional[int], shift: Tuple[int, int]):
    """(objective, gradient (N, h, w, C) as numpy) on `batch` rolled by `shift`, rolled back."""
    if tile is not None:  # image by image, tile by tile
        parts = [tiled_gradient(gradient, image, tile, shift) for image in batch]
        return sum(v for v, _ in parts), np.stack([g for _, g in parts])
    rolled = np.roll(batch, shift, axis=(1, 2)) if any(shift) else batch
    value, grad = gradient(rolled)
    grad = np.array(grad)  # a writable copy: it is normalised in place
    if any(shift):
        grad = np.roll(grad, (-shift[0], -shift[1]), axis=(1, 2))
    return float(value), grad


__all__ = ["Gradient", "ascend", "NORMALIZE"]
