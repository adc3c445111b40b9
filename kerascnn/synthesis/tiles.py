"""Gradients of an image objective in tiles, so that any image size runs in bounded memory.

Two ways, for two kinds of objective:

* `gradient` (DeepDream's): the objective is a sum over positions, so each tile's gradient is its
  share of the whole. The image is rolled by a random shift before it is cut, a new shift every step
  (the TensorFlow DeepDream tutorial's trick), so no tile edge stays in one place long enough to show.
* `Grid` (style transfer's): the objective also holds global statistics (Gram matrices summed over
  every position), and an optimiser such as L-BFGS needs the same value for the same image. Tiles
  overlap: each has a core, and a halo of context around it that keeps the features of the core as
  they are in the whole image (a feature near a tile edge sees zero padding, not its neighbours).
  Only core features count, so the cores add up to the image exactly once; the gradient flows into
  the halo pixels too. Edges are aligned to the network's largest stride, so core pixels map to whole
  feature cells. The grid's origin is a random shift, drawn anew by whoever wants seams to move.
"""
from __future__ import annotations

import math
from typing import Iterator, List, NamedTuple, Tuple

import numpy as np


def splits(size: int, tile: int) -> List[Tuple[int, int]]:
    """[start, stop) ranges cutting `size` pixels into ceil(size / tile) near-equal pieces (each
    at least tile / 2, so no sliver smaller than the model's input)."""
    n = max(1, math.ceil(size / tile))
    bounds = [round(i * size / n) for i in range(n + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def gradient(tile_gradient, image: np.ndarray, tile: int, shift: Tuple[int, int] = (0, 0)) -> Tuple[float, np.ndarray]:
    """The objective and its gradient over `image`, computed tile by tile on the image rolled by
    `shift` (the roll is undone on the gradient).

    `tile_gradient(tile, fraction) -> (value, gradient)` scores one tile, `fraction` being its share
    of the image's area (so that per-tile means add up to the image's mean).
    """
    import tensorflow as tf

    h, w = image.shape[:2]
    rolled = np.roll(image, shift, axis=(0, 1)) if any(shift) else image
    grad = np.empty_like(image)
    total = 0.0
    for y0, y1 in splits(h, tile):
        for x0, x1 in splits(w, tile):
            fraction = (y1 - y0) * (x1 - x0) / (h * w)
            loss, g = tile_gradient(tf.constant(rolled[y0:y1, x0:x1]), tf.constant(fraction, tf.float32))
            grad[y0:y1, x0:x1] = g.numpy()
            total += float(loss)
    if any(shift):
        grad = np.roll(grad, (-shift[0], -shift[1]), axis=(0, 1))
    return total, grad


class Tile(NamedTuple):
    """One tile of a `Grid`: the pixels read (`outer`, core plus halo) and the pixels it owns (`core`),
    as (y0, y1, x0, x1) in image coordinates; `core_in_outer` is the core relative to the outer box."""

    outer: Tuple[int, int, int, int]
    core: Tuple[int, int, int, int]

    @property
    def core_in_outer(self) -> Tuple[int, int, int, int]:
        oy, _, ox, _ = self.outer
        y0, y1, x0, x1 = self.core
        return y0 - oy, y1 - oy, x0 - ox, x1 - ox


def _edges(size: int, tile: int, align: int, offset: int) -> List[int]:
    """Core edges along one axis: multiples of `align`, `tile` apart, shifted by `offset`; a core
    thinner than a quarter tile (where the shift or the image's end cut one) joins its neighbour."""
    step = max(align, tile // align * align)
    first = (offset // align * align) % step
    least = max(align, step // 4)
    edges = [0]
    for e in range(first, size, step):
        if e - edges[-1] >= least and size - e >= least:
            edges.append(e)
    return edges + [size]


class Grid:
    """Overlapping tiles over an (height, width) image: cores about `tile` pixels a side that cover it
    exactly once, each read with `halo` pixels of context (fewer at the image border).

    Args:
        height, width: the image size.
        tile: the cores' side in pixels (a multiple of `align`, rounded down).
        halo: context on each side of a core, in pixels (rounded up to a multiple of `align`).
        align: core edges fall on multiples of this (the network's largest stride, so that a core maps
            onto whole feature cells).
        offset: (dy, dx) shift of the grid's origin; a random one moves the seams between calls.
    """

    def __init__(self, height: int, width: int, tile: int, halo: int = 0, align: int = 1,
                 offset: Tuple[int, int] = (0, 0)):
        if tile < align:
            raise ValueError(f"tile must be at least align={align}. Received: tile={tile}")
        self.height, self.width, self.align = int(height), int(width), int(align)
        self.halo = math.ceil(halo / align) * align
        self.ys = _edges(self.height, tile, align, offset[0])
        self.xs = _edges(self.width, tile, align, offset[1])

    @property
    def single(self) -> bool:
        """Whether one tile covers the image (no tiling needed)."""
        return len(self.ys) == 2 and len(self.xs) == 2

    def __len__(self) -> int:
        return (len(self.ys) - 1) * (len(self.xs) - 1)

    def __iter__(self) -> Iterator[Tile]:
        h = self.halo
        for y0, y1 in zip(self.ys[:-1], self.ys[1:]):
            for x0, x1 in zip(self.xs[:-1], self.xs[1:]):
                outer = (max(0, y0 - h), min(self.height, y1 + h), max(0, x0 - h), min(self.width, x1 + h))
                yield Tile(outer, (y0, y1, x0, x1))


def feature_box(tile: Tile, feature_shape: Tuple[int, int], stride: int) -> Tuple[int, int, int, int]:
    """The core of `tile` in the feature map of its outer box, (fy0, fy1, fx0, fx1), for a layer of
    `stride` (a divisor of the grid's `align`) whose map of the outer box is `feature_shape` cells.
    A core edge at the outer box's far edge maps to the map's far edge (whether the network rounds
    the last partial cell up or down)."""
    cy0, cy1, cx0, cx1 = tile.core_in_outer
    oy0, oy1, ox0, ox1 = tile.outer
    fh, fw = feature_shape

    def cell(p: int, outer: int, cells: int) -> int:
        return cells if p >= outer else p // stride

    return cell(cy0, oy1 - oy0, fh), cell(cy1, oy1 - oy0, fh), cell(cx0, ox1 - ox0, fw), cell(cx1, ox1 - ox0, fw)


__all__ = ["splits", "gradient", "Grid", "Tile", "feature_box"]
