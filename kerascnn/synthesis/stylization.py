"""The style-transfer objective (Gatys, Ecker & Bethge, "Image Style Transfer Using Convolutional
Neural Networks", CVPR 2016) on any network, at any image size, and the quality figures that compare
results: what `kerascnn stylize` optimises and what the fast network's training and reports measure.

    loss = content_weight * sum_l c_l ||F_l - P_l||^2 / ||P_l||^2        (content layers, weights c_l)
         + style_weight   * sum_l s_l ||G_l - A_l||^2 / ||A_l||^2        (style layers, weights s_l)
         + tv_weight      * total variation

F are the image's features, P the photo's, G the Gram matrices of F (averaged over positions, see
kerascnn.synthesis.perceptual) and A the style's: one style image's, or several blended with weights. The
layer weights are normalised to sum 1, so every term is a relative squared error and the loss
weights mean the same for every network. The quality figures are the square roots, unweighted by
the loss weights: `style_distance` ||G - A|| / ||A|| and `content_distance` ||F - P|| / ||P||.

Large images: features and gradients are computed in overlapping tiles (kerascnn.synthesis.tiles.Grid). The
Gram matrices are global, so the gradient takes two passes: the first sums every tile's Gram matrix
(forward only), the second differentiates each tile's share with the global Gram error held fixed:
d loss / d tile = <d loss / d G, d G_tile / d tile>, the exact gradient of the whole image's loss up to
the features that a tile's halo does not keep as they are in the whole image. The image is
reflect-padded at the bottom and right to a multiple of the network's largest stride first, tiled or
not (`StyleObjective.pad`), so that every tile samples the whole image's grid; the gradient of the
padding is folded back onto the pixels it copies.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np

from kerascnn.errors import SettingError

log = logging.getLogger("kerascnn.synthesis.stylization")

PROBE_SIDE = 256  # the strides of the tapped layers are read on an image of this side


@dataclass(frozen=True)
class Weights:
    """The three loss weights; the defaults are `kerascnn stylize`'s and `stylize train`'s (their
    settings read them from here)."""

    content: float = 1.0
    style: float = 10.0
    tv: float = 1.0


@dataclass
class Targets:
    """What the image is pulled towards at one size: the photo's content features (full maps, one per
    content layer) and the style's Gram matrices (one per style layer), with their squared norms."""

    content: List[np.ndarray]
    grams: List[np.ndarray]
    style_grams: List[List[np.ndarray]]  # per style image, per style layer (for the per-style figures)


def expand_layers(model, layers: Mapping[str, float], param: str) -> Dict[str, float]:
    """{name or registry use: weight} -> {layer name: weight}: a use ("style") expands to the model's
    layers for it, each with the use's weight. SettingError (param `param`) for an unknown name."""
    from kerascnn.models.features import feature_extractor

    out: Dict[str, float] = {}
    for name, w in layers.items():
        try:
            names = feature_extractor(model, {name: w}).layer_names
        except SettingError as e:
            raise type(e)(param, str(e)) from None
        for n in names:
            out[n] = out.get(n, 0.0) + float(w)
    return out


def normalised(layers: Mapping[str, float], param: str) -> Dict[str, float]:
    """Layer weights scaled to sum to 1 (SettingError on `param` for negative or all-zero weights)."""
    total = sum(layers.values())
    if not layers or total <= 0 or min(layers.values()) < 0:
        raise SettingError(param, f"layer weights must be non-negative and not all zero. Received: "
                                  f"{dict(layers)}")
    return {k: v / total for k, v in layers.items()}


class StyleObjective:
    """The loss, its gradient and the quality figures for one network and choice of layers.

    Args:
        model: a keras.Model taking raw [0, 255] pixels (every kerascnn model does).
        content_layers, style_layers: {layer name: weight}; names as kerascnn.models.features takes them
            (registry uses "content" / "style" expand to the model's layers).
        weights: the loss weights.
        tile: images with a side above this are computed in tiles of this size (cores).
        halo: context pixels around each tile.
    """

    def __init__(self, model, content_layers: Mapping[str, float], style_layers: Mapping[str, float],
                 weights: Weights = Weights(), *, tile: int = 1024, halo: int = 96):
        from kerascnn.models.features import any_size, compute_policy, feature_extractor

        content = expand_layers(model, content_layers, "content_layers")
        style = expand_layers(model, style_layers, "style_layers")
        self.content_weights = list(normalised(content, "content_layers").values())
        self.style_weights = list(normalised(style, "style_layers").values())
        self.extractor = any_size(feature_extractor(model, list(content) + list(style), name="style_features"))
        self.content_names, self.style_names = list(content), list(style)
        self.nc = len(content)
        self.precision = compute_policy(model)
        self.weights = weights
        self.tile, self.halo = int(tile), int(halo)
        self.strides = self._strides()
        self.align = max(self.strides)
        self._shape_cache: Dict[Tuple[int, int], List[Tuple[int, int]]] = {}
        self._compile()

    def _outputs(self, x) -> list:
        out = self.extractor(x, training=False)
        return list(out) if isinstance(out, (list, tuple)) else [out]

    def _strides(self) -> List[int]:
        import tensorflow as tf

        feats = self._outputs(tf.zeros((1, PROBE_SIDE, PROBE_SIDE, 3)))
        strides = [max(1, round(PROBE_SIDE / int(f.shape[1]))) for f in feats]
        for n, f, s in zip(self.extractor.layer_names, feats, strides):
            if PROBE_SIDE % s or int(f.shape[1]) * s != PROBE_SIDE:
                log.warning("stylize: layer %s maps %d px to %d cells (not a 'same'-padded stride); tiled "
                            "gradients will be approximate for it.", n, PROBE_SIDE, int(f.shape[1]))
        return strides

    # -- compiled pieces ---------------------------------------------------------------------------

    def _compile(self) -> None:
        import tensorflow as tf

        from kerascnn.synthesis.perceptual import gram_matrix, gram_sum, relative_sq, total_variation

        nc = self.nc
        cw = [tf.constant(w) for w in self.content_weights]
        sw = [tf.constant(w) for w in self.style_weights]
        image_spec = tf.TensorSpec((None, None, 3), tf.float32)

        def crop(f, box):
            return f[:, box[0]:box[1], box[2]:box[3], :]

        @tf.function(reduce_retracing=True)
        def whole(image, content, grams, w):
            """One pass over the whole image: (content, style, tv) and the gradient of the loss."""
            with tf.GradientTape() as tape:
                tape.watch(image)
                feats = self._outputs(image[None])
                c = tf.add_n([cw[i] * relative_sq(feats[i], content[i]) for i in range(nc)])
                s = tf.add_n([sw[j] * relative_sq(gram_matrix(f)[0], grams[j]) for j, f in enumerate(feats[nc:])])
                t = total_variation(image[None])[0]
                loss = w[0] * c + w[1] * s + w[2] * t
            return c, s, t, tape.gradient(loss, image)

        @tf.function(reduce_retracing=True)
        def forward(tile, boxes):
            """A tile's core: its content features, and the Gram sums of its style features."""
            feats = self._outputs(tile[None])
            content = [crop(feats[i], boxes[i]) for i in range(nc)]
            grams = [gram_sum(crop(f, boxes[nc + j]))[0] for j, f in enumerate(feats[nc:])]
            return content, grams

        @tf.function(reduce_retracing=True)
        def backward(tile, boxes, content, content_norms, dgrams, w):
            """The gradient of a tile's share of the loss, the global Gram error held fixed (dgrams)."""
            with tf.GradientTape() as tape:
                tape.watch(tile)
                feats = self._outputs(tile[None])
                c = tf.add_n([cw[i] * tf.reduce_sum(tf.square(crop(feats[i], boxes[i]) - content[i]))
                              / content_norms[i] for i in range(nc)])
                s = tf.add_n([tf.reduce_sum(dgrams[j] * gram_sum(crop(f, boxes[nc + j]))[0])
                              for j, f in enumerate(feats[nc:])])
                share = w[0] * c + w[1] * s
            return tape.gradient(share, tile)

        @tf.function(input_signature=[image_spec])
        def tv(image):
            with tf.GradientTape() as tape:
                tape.watch(image)
                t = total_variation(image[None])[0]
            return t, tape.gradient(t, image)

        self._whole, self._forward, self._backward, self._tv = whole, forward, backward, tv

    # -- tiles -------------------------------------------------------------------------------------

    def grid(self, height: int, width: int, offset: Tuple[int, int] = (0, 0)):
        from kerascnn.synthesis.tiles import Grid

        return Grid(height, width, self.tile, self.halo, self.align, offset)

    def _boxes(self, tile, outer_feats_shapes) -> np.ndarray:
        from kerascnn.synthesis.tiles import feature_box

        return np.array([feature_box(tile, shape, s) for shape, s in zip(outer_feats_shapes, self.strides)], np.int32)

    def _feature_shapes(self, h: int, w: int) -> List[Tuple[int, int]]:
        """The (height, width) of each tapped layer's map for an h x w image (as the network computes
        them: 'same' convs round up, 'valid' pools down)."""
        key = (int(h), int(w))
        if key not in self._shape_cache:
            shapes = self.extractor.compute_output_shape((1, key[0], key[1], 3))
            shapes = shapes if isinstance(shapes, list) else [shapes]
            self._shape_cache[key] = [(int(s[1]), int(s[2])) for s in shapes]
        return self._shape_cache[key]

    def _tiles(self, image: np.ndarray, grid):
        """(tile, its pixels, its boxes) for every tile of `grid`."""
        for t in grid:
            y0, y1, x0, x1 = t.outer
            yield t, image[y0:y1, x0:x1], self._boxes(t, self._feature_shapes(y1 - y0, x1 - x0))

    def pad(self, image: np.ndarray) -> np.ndarray:
        """`image` reflect-padded at the bottom and right to a multiple of the largest stride.

        The objective is defined on this padded image, tiled or not. A stride-2 'same' layer pads an
        odd side before its first pixel and an even one not, so a tile whose size has the other parity
        than the image would sample a grid one pixel off; on sides that are multiples of every
        stride, each tile (cores aligned to the stride too) samples exactly the whole image's grid."""
        h, w = image.shape[:2]
        ph, pw = -h % self.align, -w % self.align
        return np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="reflect") if ph or pw else image

    @staticmethod
    def fold(grad: np.ndarray, h: int, w: int) -> np.ndarray:
        """The gradient on the padded image -> on the image: each reflected pixel's gradient is added
        to the pixel it copies (the exact gradient of the padding)."""
        if grad.shape[:2] == (h, w):
            return grad
        rows = np.pad(np.arange(h), (0, grad.shape[0] - h), mode="reflect")
        cols = np.pad(np.arange(w), (0, grad.shape[1] - w), mode="reflect")
        out = np.zeros((h, grad.shape[1], grad.shape[2]), grad.dtype)
        np.add.at(out, rows, grad)
        folded = np.zeros((h, w, grad.shape[2]), grad.dtype)
        np.add.at(folded, (slice(None), cols), out)
        return folded

    def statistics(self, image: np.ndarray) -> Tuple[List[np.ndarray], List[np.ndarray]]:
        """The content layers' full feature maps and the style layers' Gram matrices of `image`
        (float (h, w, 3) in [0, 255]; padded as `pad` says), computed tile by tile."""
        padded = self.pad(np.asarray(image, np.float32))
        return self._statistics(padded, self.grid(*padded.shape[:2]))

    def _statistics(self, image: np.ndarray, grid) -> Tuple[List[np.ndarray], List[np.ndarray]]:
        import tensorflow as tf

        h, w = image.shape[:2]
        shapes = self._feature_shapes(h, w)
        content = [None] * self.nc
        sums = [0.0] * len(self.style_names)
        for t, pixels, boxes in self._tiles(np.asarray(image, np.float32), grid):
            cs, gs = self._forward(tf.constant(pixels), tf.constant(boxes))
            for i, c in enumerate(cs):
                c = c.numpy()[0]
                if content[i] is None:
                    content[i] = np.zeros(shapes[i] + (c.shape[-1],), np.float32)
                fy, fx = t.core[0] // self.strides[i], t.core[2] // self.strides[i]
                content[i][fy:fy + c.shape[0], fx:fx + c.shape[1]] = c
            sums = [a + g.numpy() for a, g in zip(sums, gs)]
        n = [shapes[self.nc + j][0] * shapes[self.nc + j][1] for j in range(len(sums))]
        return content, [s / k for s, k in zip(sums, n)]

    # -- targets, loss, figures --------------------------------------------------------------------

    def targets(self, photo: np.ndarray, styles: Sequence[np.ndarray], blend: Sequence[float]) -> Targets:
        """The targets at `photo`'s size: its content features; the style images' Gram matrices mixed
        by `blend` (weights, normalised to sum 1)."""
        blend = np.asarray(blend, np.float64) / np.sum(blend)
        content, _ = self.statistics(photo)
        per_style = [self.statistics(s)[1] for s in styles]
        grams = [sum(b * g[j] for b, g in zip(blend, per_style)).astype(np.float32)
                 for j in range(len(self.style_names))]
        return Targets(content, grams, per_style)

    def loss_and_gradient(self, image: np.ndarray, targets: Targets, offset: Tuple[int, int] = (0, 0)):
        """(loss, {"content", "style", "tv"}, gradient) of `image` (float32 (h, w, 3) in [0, 255]):
        one pass when it fits in one tile, two passes over tiles otherwise."""
        import tensorflow as tf

        w = tf.constant([self.weights.content, self.weights.style, self.weights.tv], tf.float32)
        h0, w0 = image.shape[:2]
        image = self.pad(np.asarray(image, np.float32))
        h, wd = image.shape[:2]
        grid = self.grid(h, wd, offset)
        x = tf.constant(image, tf.float32)
        if grid.single:
            c, s, t, g = self._whole(x, [tf.constant(p[None]) for p in targets.content],
                                     [tf.constant(a) for a in targets.grams], w)
            parts = {"content": float(c), "style": float(s), "tv": float(t)}
            return self._total(parts), parts, self.fold(g.numpy(), h0, w0)
        content, grams = self._statistics(image, grid)
        norms = [float(np.sum(np.square(p))) + 1e-12 for p in targets.content]
        c = sum(cw * float(np.sum(np.square(f - p))) / n
                for cw, f, p, n in zip(self.content_weights, content, targets.content, norms))
        s = sum(sw * _rel_sq(g, a) for sw, g, a in zip(self.style_weights, grams, targets.grams))
        shapes = self._feature_shapes(h, wd)
        dgrams = [tf.constant(2.0 * sw * (g - a) / (float(np.sum(np.square(a))) + 1e-12)
                              / (shapes[self.nc + j][0] * shapes[self.nc + j][1]))
                  for j, (sw, g, a) in enumerate(zip(self.style_weights, grams, targets.grams))]
        norms_t = [tf.constant(n, tf.float32) for n in norms]
        t_value, grad = self._tv(x)
        grad = grad.numpy() * self.weights.tv
        for tile, pixels, boxes in self._tiles(image, grid):
            ref = [tf.constant(p[None, tile.core[0] // st:, tile.core[2] // st:][:, :b[1] - b[0], :b[3] - b[2]])
                   for p, st, b in zip(targets.content, self.strides, boxes)]
            g = self._backward(tf.constant(pixels), tf.constant(boxes), ref, norms_t, dgrams, w).numpy()
            y0, y1, x0, x1 = tile.outer
            grad[y0:y1, x0:x1] += g
        parts = {"content": c, "style": s, "tv": float(t_value)}
        return self._total(parts), parts, self.fold(grad, h0, w0)

    def _total(self, parts: Mapping[str, float]) -> float:
        return (self.weights.content * parts["content"] + self.weights.style * parts["style"]
                + self.weights.tv * parts["tv"])

    def figures(self, image: np.ndarray, targets: Targets) -> Dict[str, object]:
        """The quality figures of `image`: content and (blended) style distance, the per-layer ones,
        and the distance to each style image alone."""
        content, grams = self.statistics(image)
        c_layers = {n: float(np.sqrt(_rel_sq(f, p))) for n, f, p in zip(self.content_names, content, targets.content)}
        s_layers = {n: float(np.sqrt(_rel_sq(g, a))) for n, g, a in zip(self.style_names, grams, targets.grams)}
        per_style = [float(sum(sw * np.sqrt(_rel_sq(g, a)) for sw, g, a in zip(self.style_weights, grams, gs)))
                     for gs in targets.style_grams]
        return {
            "content_distance": float(sum(w * v for w, v in zip(self.content_weights, c_layers.values()))),
            "style_distance": float(sum(w * v for w, v in zip(self.style_weights, s_layers.values()))),
            "style_distance_each": per_style,
            "content_layers": c_layers,
            "style_layers": s_layers,
        }


def _rel_sq(x: np.ndarray, ref: np.ndarray) -> float:
    return float(np.sum(np.square(x - ref)) / (np.sum(np.square(ref)) + 1e-12))


__all__ = ["StyleObjective", "Targets", "Weights", "expand_layers", "normalised"]
