"""Pictures people would rather look at than read: training curves and confusion matrices."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import List, Mapping, Optional, Sequence

import numpy as np

from kerascnn.runtime.jobs import atomic_save
from kerascnn.runtime.run_dir import GROUP_ACCURACY


def figure(nrows: int = 1, ncols: int = 1, **kwargs):
    """A new (Figure, axes) through matplotlib's object API, as pyplot's `subplots` returns them.

    Never pyplot: a Figure made directly has its own canvas and saves to files without any GUI
    backend, and nothing global changes (a notebook's backend and open figures stay as they are).
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=kwargs.pop("figsize", None))
    return fig, fig.subplots(nrows, ncols, **kwargs)


def save_png(fig, path: Path, dpi: int = 100, **kwargs) -> Path:
    """Write `fig` as a PNG atomically (write, then rename)."""
    atomic_save(Path(path), lambda p: fig.savefig(p, dpi=dpi, format="png", **kwargs))
    return Path(path)


def colormap(name: str):
    """A matplotlib colormap by name (no pyplot)."""
    import matplotlib

    return matplotlib.colormaps[name]


def plot_curves(rows: List[dict], path: Path, title: str = "", kept_epoch: Optional[int] = None) -> List[List[str]]:
    """Loss and accuracy per epoch, train vs validation, plus the learning rate; `kept_epoch`: the
    epoch early stopping went back to (its weights are the model's), marked on each panel. Returns
    each panel's line labels (none written for no rows)."""
    if not rows:
        return []
    epochs = [int(r["epoch"]) for r in rows]
    panels = [("loss", "loss"), ("accuracy", "top-1 accuracy"), ("learning_rate", "learning rate")]
    fig, axes = figure(1, 3, figsize=(13, 3.6))
    for ax, (key, label) in zip(axes, panels):
        for prefix, style in (("", "-"), ("val_", "--")):
            ys = [_value(r, prefix, key) for r in rows]
            if not np.all(np.isnan(ys)):
                ax.plot(epochs, ys, style, marker="o", ms=2, label=("val " if prefix else "train ") + label)
        if key == "accuracy":  # per group of question types (VQA: relational, non-relational)
            for column in dict.fromkeys(k for r in rows for k in r if k.startswith(GROUP_ACCURACY)):
                ys = [float(r[column]) if r.get(column) not in (None, "") else np.nan for r in rows]
                ax.plot(epochs, ys, ":", marker="o", ms=2, label="val " + column[len(GROUP_ACCURACY):].replace("_", "-"))
        for boundary in _phase_starts(rows):  # two-phase fine-tuning: where the backbone was unfrozen
            ax.axvline(boundary - 0.5, color="grey", ls=":", lw=1)
            if key == "loss":
                ax.annotate(" unfrozen", (boundary - 0.5, 1.0), xycoords=("data", "axes fraction"), va="top",
                            fontsize=8, color="grey")
        if kept_epoch is not None:
            ax.axvline(kept_epoch, color="black", alpha=0.6, ls="-.", lw=1, label=f"kept (epoch {kept_epoch})")
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)  # no epoch 1.2
        ax.set_title(label)
        ax.grid(alpha=0.3)
        if key != "learning_rate" and ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, path)
    return [ax.get_legend_handles_labels()[1] for ax in axes]


def plot_group_curves(runs: Mapping[str, List[dict]], path: Path, title: str = "",
                      marks: Sequence[float] = ()) -> List[str]:
    """Several runs' validation accuracy per group of question types against the epoch, in one plot:
    history.csv rows with `val_accuracy_<group>` columns (VQA: relational, non-relational), a colour
    a run, a line style a group; `marks`: horizontal guides (e.g. a paper's figures). Returns the
    lines' labels ("RUN, GROUP"), in the legend's order."""
    fig, ax = figure(figsize=(7, 4.5))
    styles = ("-", "--", ":", "-.")
    for color, (label, rows) in zip(_COLORS, runs.items()):
        columns = list(dict.fromkeys(k for r in rows for k in r if k.startswith(GROUP_ACCURACY)))
        for style, column in zip(styles * 8, sorted(columns, key=lambda c: ("non" not in c, c))):
            points = [(int(r["epoch"]), float(r[column])) for r in rows if r.get(column) not in (None, "")]
            if points:
                ax.plot(*zip(*points), style, marker=".", color=color,
                        label=f"{label}, {column[len(GROUP_ACCURACY):].replace('_', '-')}")
    for y in marks:
        ax.axhline(y, color="gray", lw=0.8, ls=":")
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.set_title(title)
    ax.xaxis.get_major_locator().set_params(integer=True)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    save_png(fig, path)
    return ax.get_legend_handles_labels()[1]


_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def _phase_starts(rows: List[dict]) -> List[int]:
    """The epochs (as plotted) at which a new training phase began, from the rows' "phase" column."""
    phases = [(int(r["epoch"]), r.get("phase")) for r in rows if r.get("phase") not in (None, "")]
    return [e for (e, p), (_, before) in zip(phases[1:], phases) if str(p) != str(before)]


def _value(row: dict, prefix: str, key: str) -> float:
    # Models with auxiliary heads log their main output's metrics as "predictions_<metric>".
    for name in (prefix + key, prefix + "predictions_" + key):
        if row.get(name) not in (None, ""):
            return float(row[name])
    return np.nan


def plot_confusion(cm: np.ndarray, class_names: Sequence[str], path: Path, title: str = "") -> None:
    """Row-normalised confusion matrix; counts in the cells when the matrix is small enough to read."""
    n = len(class_names)
    size = min(4 + 0.45 * n, 24)
    fig, ax = figure(figsize=(size, size))
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    if n <= 40:
        ax.set_xticks(range(n), class_names, rotation=90)
        ax.set_yticks(range(n), class_names)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    # Wrapped to the figure's width: a title naming a model file and a data path runs long.
    ax.set_title("\n".join(textwrap.fill(line, int(size * 9)) for line in title.splitlines()), fontsize=10)
    fig.tight_layout()
    save_png(fig, path)
