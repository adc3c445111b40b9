"""Drawings of what kerascnn.analysis.visualize computes: filter grids, activation maps, Grad-CAM overlays.

Each `plot_*` returns a matplotlib Figure (the caller saves it, e.g. with `save_figure` into a
JobDir, atomically) (matplotlib's object API: no pyplot, no global backend or figure list is touched, no display needed).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from kerascnn.analysis.visualize import strongest_channels
from kerascnn.runtime.plots import colormap, figure, save_png


def save_figure(fig, path, dpi: int = 100) -> Path:
    """Write `fig` as a PNG atomically (`path`: a file path, or a (JobDir, name) pair) and close it."""
    from kerascnn.runtime.jobs import JobDir

    if isinstance(path, tuple):
        job, name = path
        out = JobDir(job).save(name, lambda p: fig.savefig(p, dpi=dpi, format="png", bbox_inches="tight"))
    else:
        out = save_png(fig, path, dpi=dpi, bbox_inches="tight")
    return out


def plot_filters(grid: np.ndarray, title: str = ""):
    """A `filter_grid` picture, pixels kept square and sharp."""
    h, w = grid.shape[:2]
    scale = 8.0 / max(h, w)
    fig, ax = figure(figsize=(max(w * scale, 3), max(h * scale, 3) + 0.4))
    ax.imshow(np.clip(grid, 0, 1), interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title, fontsize=10)
    return fig


def plot_activations(maps: np.ndarray, layer: str, max_channels: int = 32):
    """The strongest channels of one layer's (h, w, c) activations, strongest first, a grid of maps."""
    if maps.ndim == 1:  # a dense layer: a bar per unit
        fig, ax = figure(figsize=(8, 2.5))
        ax.bar(np.arange(len(maps)), maps)
        ax.set_title(f"{layer}  {tuple(maps.shape)}", fontsize=10)
        return fig
    order = strongest_channels(maps, max_channels)
    cols = min(8, len(order))
    rows = math.ceil(len(order) / cols)
    fig, axes = figure(rows, cols, figsize=(1.6 * cols, 1.6 * rows + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, c in zip(axes.flat, order):
        ax.imshow(maps[..., c], cmap="viridis")
        ax.set_title(f"#{c}", fontsize=7)
    shown = f", strongest {len(order)} of {maps.shape[-1]}" if len(order) < maps.shape[-1] else ""
    fig.suptitle(f"{layer}  {tuple(maps.shape)}{shown}", fontsize=10)
    fig.tight_layout()
    return fig


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """An (H, W, C) [0, 255] image with a [0, 1] heat map blended over it (jet), float (H, W, 3) in [0, 1]."""
    rgb = np.asarray(image, np.float32) / 255.0
    rgb = np.repeat(rgb, 3, -1) if rgb.shape[-1] == 1 else rgb[..., :3]
    heat = colormap("jet")(np.clip(heatmap, 0, 1))[..., :3]
    return np.clip((1 - alpha) * rgb + alpha * heat, 0, 1)


def _image(image: np.ndarray) -> np.ndarray:
    img = np.clip(np.asarray(image, np.float32) / 255.0, 0, 1)
    return np.repeat(img, 3, -1) if img.shape[-1] == 1 else img


def top_classes(probs: np.ndarray, class_names: Optional[Sequence[str]], k: int = 3) -> str:
    best = np.argsort(-probs)[:k]
    return ", ".join(f"{_name(class_names, i)} {probs[i]:.1%}" for i in best)


def _name(class_names: Optional[Sequence[str]], i: int) -> str:
    return str(class_names[i]) if class_names is not None and i < len(class_names) else str(int(i))


def plot_gradcam(image: np.ndarray, heatmaps: Sequence[np.ndarray], labels: Sequence[str], probs: np.ndarray,
                 class_names: Optional[Sequence[str]] = None, target: Optional[int] = None, title: str = ""):
    """One image, then one overlay per method (`labels`: "Grad-CAM", "Grad-CAM++"); the top classes
    and their probabilities in the title."""
    fig, axes = figure(1, 1 + len(heatmaps), figsize=(3.2 * (1 + len(heatmaps)), 3.6))
    axes[0].imshow(_image(image))
    axes[0].set_title("input", fontsize=9)
    for ax, heat, label in zip(axes[1:], heatmaps, labels):
        ax.imshow(overlay(image, heat))
        ax.set_title(label, fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    explained = int(np.argmax(probs)) if target is None else int(target)
    fig.suptitle(f"{title}\npredicted: {top_classes(probs, class_names)}\nexplained: "
                 f"{_name(class_names, explained)} ({probs[explained]:.1%})".strip(), fontsize=9)
    fig.tight_layout()
    return fig


def plot_image_grid(images: Sequence[np.ndarray], captions: Sequence[str], title: str = "", cols: int = 4,
                    heatmaps: Optional[Sequence[np.ndarray]] = None):
    """Images (with heat maps blended over them, if given) in a grid, a caption under each."""
    n = len(images)
    cols = max(1, min(cols, n))
    rows = max(1, math.ceil(n / cols))
    fig, axes = figure(rows, cols, figsize=(2.4 * cols, 2.6 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for i, (ax, img, cap) in enumerate(zip(axes.flat, images, captions)):
        ax.imshow(overlay(img, heatmaps[i]) if heatmaps is not None else _image(img))
        ax.set_title(cap, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
