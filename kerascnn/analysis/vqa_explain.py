"""Which image cells and which object pairs a VQA model's answer came from (`kerascnn visualize vqa`).

    e = explain_vqa("runs/vqa/model.keras", "scene.png", "What is the shape of the red object?")
    e.answer, e.probability, e.pairs[0], e.heat      # the top pair, the (rows, cols) cell map
    fig = plot_vqa(e, image)                          # a matplotlib Figure

* CNN + RN (kerascnn.models.vqa.vqa_cnn_rn): the RN sums g over every ordered pair of objects (the
  cells of the CNN's last map), so each pair's share of the answer is its g output. A pair's score is
  (score="norm", the default) the l2 norm of g's last layer output for it: how much the pair puts
  into the sum, whatever the answer; or (score="logit") its contribution to the chosen answer's logit
  to first order through f, g_p . d logit / d relations (gradient x input; the gradient is the same
  for every pair, since the sum is linear). With f linear (no hidden layers) the contributions add up
  to the logit less its bias exactly. The top `pairs` pairs are drawn as arrows between the cells'
  centres (from o_i to o_j: the RN's pairs are ordered; (i, i) as a ring), and each cell's heat is
  the sum of the (positive) scores of the pairs it takes part in, over the largest.
* CNN + MLP (vqa_cnn_mlp): Grad-CAM of the chosen answer at the model's "cam" layer (the map the
  objects come from), per cell.

Cells are the feature map's: with a map of rows x cols over an H x W image, cell (r, c) is drawn over
the image's [c W / cols, (c + 1) W / cols) x [r H / rows, (r + 1) H / rows) (its receptive field is
wider; this is its share of the grid that ObjectCoordinates tags in [-1, 1]).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple, Union

import numpy as np

from kerascnn.errors import ModelError, SettingError

if TYPE_CHECKING:  # TensorFlow loads when a function runs, not on import
    import keras

SCORES = ("norm", "logit")
OBJECTS, RELATIONS = "objects", "relations"  # kerascnn.models.vqa's layer names


@dataclass(frozen=True)
class Pair:
    """One ordered pair of objects (cells, row by row) and its score."""

    first: int
    second: int
    first_cell: Tuple[int, int]  # (row, col)
    second_cell: Tuple[int, int]
    score: float

    def to_json(self) -> dict:
        return {"first": self.first, "second": self.second, "first_cell": list(self.first_cell),
                "second_cell": list(self.second_cell), "score": round(self.score, 6)}


@dataclass(frozen=True)
class VqaExplanation:
    """An answer and where it came from; see the module docstring for the scores."""

    question: str
    answer: str
    answer_index: int
    probability: float
    method: str  # "relations" (CNN + RN) or "gradcam" (CNN + MLP)
    score: str  # "norm" or "logit" (relations), "gradcam"
    layer: str  # the layer read: g's last, or the Grad-CAM map
    grid: Tuple[int, int]  # (rows, cols) of cells
    heat: np.ndarray  # float32 (rows, cols) in [0, 1]
    pairs: Tuple[Pair, ...]  # the top pairs, strongest first (relations only)
    pair_scores: Optional[np.ndarray] = None  # float32 (rows * cols) ** 2, pair (i, j) at i * N + j
    image: Optional[np.ndarray] = None  # float32 (H, W, C) [0, 255]: the pixels the model saw

    def to_json(self) -> dict:
        return {"question": self.question, "answer": self.answer, "probability": round(self.probability, 6),
                "method": self.method, "score": self.score, "layer": self.layer, "grid": list(self.grid),
                "pairs": [p.to_json() for p in self.pairs],
                "heat": np.round(self.heat.astype(np.float64), 4).tolist()}


def is_relational(model: "keras.Model") -> bool:
    """Whether `model` is an image+question model with a Relation Network (else: CNN + MLP).

    Raises:
        SettingError: (param "model") a model that does not take {"image", "question"}.
    """
    from kerascnn.inference.ask import IMAGE, QUESTION

    inputs = getattr(model, "input", None)
    if not isinstance(inputs, dict) or set(inputs) != {IMAGE, QUESTION}:
        raise SettingError("model", f"{model.name} does not take an image and a question; `visualize vqa` is for "
                                    f"image+question models (vqa_cnn_rn, vqa_cnn_mlp).")
    names = {layer.name for layer in model.layers}
    return OBJECTS in names and RELATIONS in names


def _g_output(model) -> str:
    """The name of g's last layer: the one whose output the RN sums."""
    from kerascnn.runtime.compat import producer_node

    node = producer_node(model.get_layer(RELATIONS).input)
    return node.operation.name


def pair_scores(model: "keras.Model", inputs: dict, score: str = "norm",
                class_index: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray, str]:
    """Every ordered pair's score for one example of a CNN + RN (see the module docstring).

    Args:
        inputs: {"image": (1, H, W, C) float32 [0, 255], "question": (1,) strings}.
        class_index: the answer the "logit" score is for; None: the predicted one.

    Returns:
        scores float32 (N * N,), pair (i, j) at i * N + j; probs float32 (answers,); g's last layer.
    """
    import tensorflow as tf

    from kerascnn.analysis.visualize import cam_model

    if score not in SCORES:
        raise SettingError("score", f"score must be one of {', '.join(SCORES)}. Received: {score!r}")
    layer = _g_output(model)
    tap = cam_model(model, layer)  # [g's output (1, N*N, U), the logits, the probabilities]
    x = {k: tf.constant(v) for k, v in inputs.items()}
    with tf.GradientTape() as tape:
        g, logits, probs = tap(x, training=False)
        g = tf.cast(g, tf.float32)
        chosen = int(np.argmax(np.asarray(probs)[0])) if class_index is None else int(class_index)
        target = tf.cast(logits, tf.float32)[0, chosen]
    g_np = g.numpy()[0]
    if score == "norm":
        scores = np.linalg.norm(g_np, axis=-1)
    else:
        grad = tape.gradient(target, g)
        if grad is None:
            raise ModelError(f"{model.name}: the answer does not depend on {layer!r}.")
        scores = (g_np * grad.numpy()[0]).sum(-1)
    return scores.astype(np.float32), np.asarray(probs, np.float32)[0], layer


def cell_heat(scores: np.ndarray, n: int) -> np.ndarray:
    """(N,): each object's part in the pairs, the sum of the positive scores of the pairs (i, j) with
    i or j the object ((i, i) counted once), divided by the largest (zeros stay zeros)."""
    s = np.maximum(np.asarray(scores, np.float64).reshape(n, n), 0.0)
    heat = s.sum(axis=1) + s.sum(axis=0) - np.diag(s)
    top = heat.max()
    return (heat / top if top > 0 else heat).astype(np.float32)


def top_pairs(scores: np.ndarray, grid: Tuple[int, int], k: int) -> Tuple[Pair, ...]:
    """The `k` ordered pairs with the largest scores, largest first (ties: the lower index first)."""
    rows, cols = grid
    n = rows * cols
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")[:max(int(k), 0)]
    return tuple(Pair(int(p // n), int(p % n), divmod(int(p // n), cols), divmod(int(p % n), cols),
                      float(scores[p])) for p in order)


def explain_vqa(model: Union[str, os.PathLike, "keras.Model"], image: Union[str, os.PathLike, np.ndarray],
                question: str, *, pairs: int = 5, score: str = "norm",
                class_names: Optional[Sequence[str]] = None) -> VqaExplanation:
    """The answer of an image+question model to `question` about `image`, and where it came from.

    Args:
        model: a keras.Model or a .keras file (its classes.json names the answers).
        image: an image file or (H, W, C) pixels in [0, 255] (resized to the model's input).
        pairs: CNN + RN: how many top pairs to keep (K).
        score: CNN + RN: "norm" (g's output norm per pair) or "logit" (contribution to the answer's logit).
        class_names: the answers' names; None: the model file's classes.json, else indices.

    Raises:
        SettingError: a model that takes no image and question, words outside its vocabulary, a bad
            score or pairs; UserError: an unreadable model or image.
    """
    from kerascnn.inference.ask import IMAGE, QUESTION, read_image, unknown_words
    from kerascnn.models.loading import load_model, model_input_shape

    path = None if hasattr(model, "layers") else model
    model = load_model(model) if path is not None else model
    relational = is_relational(model)
    if int(pairs) < 1:
        raise SettingError("pairs", f"pairs must be at least 1. Received: {pairs}")
    if not str(question).strip():
        raise SettingError("question", "No question given.")
    unknown = unknown_words(model, [question])
    if unknown:
        raise SettingError("question", f"words outside {path or model.name}'s vocabulary: {', '.join(unknown)}.")
    shape = model_input_shape(model)[IMAGE]
    if isinstance(image, np.ndarray):
        from kerascnn.analysis.visualize import prepare_images

        pixels = prepare_images(image, shape)[0]
    else:
        pixels = read_image(image, shape)
    inputs = {IMAGE: pixels[None], QUESTION: np.array([str(question)], dtype=object)}
    if class_names is None and path is not None:
        from kerascnn.runtime import run_dir as rd

        class_names = rd.read_classes(path)
    if relational:
        grid = tuple(int(s) for s in model.get_layer(OBJECTS).input.shape[1:3])
        scores, probs, layer = pair_scores(model, inputs, score)
        heat = cell_heat(scores, grid[0] * grid[1]).reshape(grid)
        found, method = top_pairs(scores, grid, pairs), "relations"
    else:
        from kerascnn.analysis.visualize import cam_maps, cam_model

        cam = cam_model(model)
        maps, probs = cam_maps(cam, inputs, None)
        heat, probs, layer, scores = maps[0], probs[0], cam.layer_name, None
        heat = (heat / heat.max() if heat.max() > 0 else heat).astype(np.float32)
        grid, found, method, score = heat.shape, (), "gradcam", "gradcam"
    best = int(np.argmax(probs))
    names = list(class_names or [])
    return VqaExplanation(str(question), names[best] if best < len(names) else str(best), best, float(probs[best]),
                          method, score, layer, tuple(grid), heat, found, scores, pixels)


def explain_command(resolved):
    """`visualize vqa`: (JobDir, [the PNG, vqa.json], the VqaExplanation)."""
    import json
    from pathlib import Path

    from kerascnn.analysis.figures import save_figure
    from kerascnn.runtime.jobs import JobDir, slug

    cfg = resolved.config
    if not cfg.model:
        raise SettingError("model", "No model given: pass a .keras file of an image+question model.")
    if not cfg.image:
        raise SettingError("image", "No image given.")
    found = explain_vqa(cfg.model, cfg.image, cfg.question, pairs=cfg.pairs, score=cfg.score)
    fig = plot_vqa(found, found.image, title="/".join(Path(cfg.model).parts[-2:]))
    job = JobDir.create("visualize", f"vqa-{slug(cfg.model)}", cfg.out)
    job.write_settings(resolved)
    png = save_figure(fig, (job, f"vqa_{slug(Path(cfg.image).stem)}.png"))
    record = {"model": str(cfg.model), "image": str(cfg.image), **found.to_json()}
    data = job.write_text("vqa.json", json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    return job, [png, data], found


def _centre(cell: Tuple[int, int], grid: Tuple[int, int], size: Tuple[int, int]) -> Tuple[float, float]:
    """(x, y) in imshow's pixel coordinates (pixel centres at integers) of a cell's centre."""
    (r, c), (rows, cols), (h, w) = cell, grid, size
    return (c + 0.5) * w / cols - 0.5, (r + 0.5) * h / rows - 0.5


def plot_vqa(found: VqaExplanation, image: np.ndarray, title: str = ""):
    """The image upscaled with the top pairs as numbered arrows between cells (CNN + RN), beside the
    cells' heat over it; the question, the answer and its probability in the title."""
    from kerascnn.runtime.plots import colormap, figure

    img = np.clip(np.asarray(image, np.float32) / 255.0, 0, 1)
    img = np.repeat(img, 3, -1) if img.shape[-1] == 1 else img[..., :3]
    h, w = img.shape[:2]
    fig, axes = figure(1, 2, figsize=(9, 5.2))
    extent = (-0.5, w - 0.5, h - 0.5, -0.5)
    for ax in axes:
        ax.imshow(img, interpolation="nearest", extent=extent)
        ax.set_axis_off()
    axes[1].imshow(found.heat, cmap="jet", alpha=0.5, interpolation="nearest", extent=extent, vmin=0, vmax=1)
    colours = colormap("autumn")
    for rank, p in reversed(list(enumerate(found.pairs, start=1))):
        colour = colours((rank - 1) / max(len(found.pairs) - 1, 1))
        a, b = _centre(p.first_cell, found.grid, (h, w)), _centre(p.second_cell, found.grid, (h, w))
        width = 1.0 + 3.0 * (len(found.pairs) - rank + 1) / len(found.pairs)
        if p.first == p.second:
            ring = 0.3 * min(h / found.grid[0], w / found.grid[1])
            axes[0].add_patch(_circle(a, ring, colour, width))
        else:
            axes[0].annotate("", xy=b, xytext=a, arrowprops=dict(arrowstyle="->", color=colour, lw=width))
        axes[0].text(a[0], a[1], str(rank), color="black", fontsize=9, ha="center", va="center",
                     bbox=dict(boxstyle="circle,pad=0.15", fc=colour, ec="none", alpha=0.9))
    if found.method == "relations":
        axes[0].set_title(f"top {len(found.pairs)} pairs of {found.grid[0] * found.grid[1]} objects "
                          f"({'g output norm' if found.score == 'norm' else 'logit contribution'})", fontsize=9)
        axes[1].set_title(f"cells' part in the pairs ({found.grid[0]}x{found.grid[1]})", fontsize=9)
    else:
        axes[0].set_title("input", fontsize=9)
        axes[1].set_title(f"Grad-CAM at {found.layer} ({found.grid[0]}x{found.grid[1]})", fontsize=9)
    head = f"{title}\n" if title else ""
    fig.suptitle(f"{head}Q: {found.question}\nA: {found.answer} ({found.probability:.1%})", fontsize=10)
    fig.tight_layout()
    return fig


def _circle(centre, radius: float, colour, width: float):
    from matplotlib.patches import Circle

    return Circle(centre, radius, fill=False, edgecolor=colour, linewidth=width)


__all__: List[str] = ["Pair", "SCORES", "VqaExplanation", "cell_heat", "explain_command", "explain_vqa",
                      "is_relational", "pair_scores", "plot_vqa", "top_pairs"]
