"""One self-contained HTML page per training run: `kerascnn report RUN_DIR`, and the end of every `fit`.

The page (report.html in the run folder) holds the resolved settings (settings.json), the training
curves, the final metrics, the validation confusion matrix, per-class precision / recall / F1
(scikit-learn), the top losses (the validation images the model got most wrong, predicted and true
labels) and Grad-CAM on a few validation images. For a text model (kim_cnn) the galleries give way
to a few validation sentences it got right and wrong, each word coloured by its gradient x input
(kerascnn.analysis.tokens), and to the n-grams that excite its strongest filters most on the
validation split (kerascnn.analysis.ngrams, Kim 2014). Every image is embedded as a base64 data: URI and
the CSS is inline, so the file opens anywhere, offline, and can be mailed on its own; the layout is
one column on a phone and wider on a desktop.

    from kerascnn.analysis.report import write_report
    write_report("runs/lenet5-digits-20261203-101500")      # -> .../report.html
"""
from __future__ import annotations

import base64
import csv
import html
import io
import json
import logging
import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from kerascnn.errors import UserError

log = logging.getLogger(__name__)

REPORT = "report.html"
MAX_EXAMPLES = 2000  # validation images scored for the report (enough for stable per-class figures)
NGRAMS_SHOWN = 5  # n-grams per filter in a text run's report


def write_run_report(result) -> Optional[Path]:
    """A finished fit's report.html (a `finishers=` step of the harness's `fit`). A report is a
    convenience: if it fails, the run has still succeeded, so the failure is a logged warning."""
    try:
        return write_report(result.run_dir, model=result.model, dataset=result.val if result.val is not None else [],
                            class_names=result.class_names)
    except Exception as e:  # noqa: BLE001  (any failure: the trained model is already saved)
        log.warning("report.html not written: %s: %s (kerascnn report %s retries)", type(e).__name__, e,
                    result.run_dir)
        return None


def write_report(run_dir: os.PathLike, *, model=None, dataset=None, class_names: Optional[Sequence[str]] = None,
                 out: Optional[os.PathLike] = None, cam_images: int = 8, top_losses: int = 12,
                 max_examples: int = MAX_EXAMPLES, sentences: int = 4, ngram_filters: int = 10) -> Path:
    """Write the run's HTML report and return its path.

    Args:
        run_dir: a run folder written by `kerascnn fit` / `finetune`.
        model: the trained model; None: the folder's model.keras (else best.keras).
        dataset: batches of (images [0, 255], one-hot labels) to score; None: the run's validation
            split, rebuilt from its config.json (same seed, so the same held-out examples).
        class_names: None: the folder's classes.json.
        out: the HTML file; None: report.html in the run folder.
        cam_images: validation images shown with Grad-CAM (0: none).
        top_losses: misclassified images shown, largest loss first.
        max_examples: at most this many validation images are scored.
        sentences: a text model: validation sentences shown with their token saliency, this many
            right and this many wrong, the most confident first (0: none).
        ngram_filters: a text model: filters shown with the n-grams that excite them most (0: none).

    Raises:
        UserError: `run_dir` is no run folder.
    """
    from kerascnn.runtime.jobs import atomic_write_text
    from kerascnn.runtime import run_dir as rd

    run = Path(run_dir)
    if not (run / rd.CONFIG).is_file() and not (run / "settings.json").is_file():
        raise UserError(f"{run} is not a kerascnn run folder (no {rd.CONFIG} or settings.json).")
    settings = _read_json(run / "settings.json")
    if settings is None and (run / rd.CONFIG).is_file():  # a run from before settings.json: values only
        settings = {"command": "fit", "settings": _read_json(run / rd.CONFIG) or {}, "sources": {}}
    history = _read_history(run / rd.HISTORY)
    names = list(class_names or rd.read_classes(run / rd.MODEL) or [])
    sections = [_settings_section(settings), _curves_section(run / rd.CURVES, history)]
    if model is None:
        model = _load_run_model(run)
    if model is not None:
        kind = _run_kind(run)
        bundle = None  # the run's own validation data: its examples' types, if it has them
        if dataset is None:
            bundle = _validation_bundle(run, model, kind)
            dataset = bundle.val
        if dataset is not None and kind.labels == "sparse":  # a class per time step: no confusion matrix
            sections.append(_sequence_section(model, dataset, max_examples))
        elif dataset is not None:
            if not kind.pictures:  # galleries of inputs: top losses and Grad-CAM are image steps
                top_losses = 0
            if not kind.explain:
                cam_images = 0
            if kind.name != "text":  # token saliency and filter n-grams: text steps
                sentences = ngram_filters = 0
            sections += _evaluation_sections(model, dataset, names, cam_images, top_losses, max_examples,
                                             sentences, ngram_filters, kind.name == "text", bundle)
    title = f"{run.name}"
    page = _page(title, _subtitle(settings), sections)
    target = Path(out) if out else run / REPORT
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, page)
    return target


# ------------------------------------------------------------------------------------------------
# Inputs


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, json.JSONDecodeError):
        return None


def _read_history(path: Path) -> List[dict]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _load_run_model(run: Path):
    from kerascnn.models.loading import load_model
    from kerascnn.runtime import run_dir as rd

    for name in (rd.MODEL, rd.BEST):
        if (run / name).is_file():
            return load_model(run / name)
    return None


def _run_kind(run: Path):
    """The data steps of what the run's model takes (kerascnn.data.kinds; images for an old run)."""
    from kerascnn.data.kinds import data_kind
    from kerascnn.models.refs import input_kind
    from kerascnn.runtime import run_dir as rd

    try:
        return data_kind(input_kind(rd.read_config(run).model))
    except UserError:  # no readable config.json, or a model this kerascnn does not know
        return data_kind("image")


def _validation_bundle(run: Path, model, kind):
    """The run's data with its validation split (`.val`, None when it has none), rebuilt from its
    config.json."""
    from kerascnn.models.loading import model_image_shape, model_input_shape
    from kerascnn.runtime import run_dir as rd

    cfg = rd.read_config(run)
    # A model with a class per time step takes sequences of any length: the kind's own crop length.
    shape = (model_image_shape(model) if kind.name == "image" else () if kind.labels == "sparse"
             else model_input_shape(model))
    return kind.build(cfg.data, shape, min(cfg.batch_size, 256), splits=("val",))


def _collect(model, dataset, limit: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images, true labels, probabilities) of up to `limit` examples. The inputs keep their
    structure (an image+question model's are a dict of arrays)."""
    import keras

    images, labels, probs, n = [], [], [], 0
    for x, y in dataset:
        x = keras.tree.map_structure(lambda t: np.asarray(t)[:limit - n], x)
        y = np.asarray(y)[:limit - n]
        p = model.predict_on_batch(x)
        p = np.asarray(p[0] if isinstance(p, (list, tuple)) else p, np.float32)  # the main head's
        images.append(x)
        labels.append(np.argmax(y, axis=-1) if y.ndim > 1 else y.astype(np.int64))
        probs.append(p)
        n += len(y)
        if n >= limit:
            break
    if not images:
        return np.zeros((0,)), np.zeros((0,), np.int64), np.zeros((0, 0))
    inputs = keras.tree.map_structure(lambda *parts: np.concatenate(parts), *images)
    return inputs, np.concatenate(labels), np.concatenate(probs)


# ------------------------------------------------------------------------------------------------
# Sections: (heading, html body)


def _settings_section(settings) -> Tuple[str, str]:
    if not settings:
        return "Settings", "<p>No settings.json in this run folder (written by runs since settings resolution).</p>"
    rows = []
    sources = settings.get("sources", {})

    def walk(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict) and k != "model_args":
                walk(v, f"{prefix}{k}.")
            else:
                key = prefix + k
                rows.append((key, json.dumps(v, ensure_ascii=False), sources.get(key, "")))

    walk(settings.get("settings", {}))
    cmd = html.escape(str(settings.get("command", "")))
    if not sources:  # a run from before settings.json: its config.json, values without sources
        return "Settings", (f"<p>Command: <code>kerascnn {cmd}</code>; this run predates settings.json, so "
                            f"its config.json shows the values without their sources.</p><details><summary>"
                            f"{len(rows)} settings</summary>" + _table(["setting", "value"], [r[:2] for r in rows])
                            + "</details>")
    chosen = [r for r in rows if r[2] and r[2] != "default"]
    rest = [r for r in rows if r not in chosen]
    body = f"<p>Command: <code>kerascnn {cmd}</code>; each value with the layer it came from.</p>"
    if chosen:
        body += _table(["setting", "value", "source"], chosen)
    if rest:
        body += (f"<details{'' if chosen else ' open'}><summary>{len(rest)} settings at their defaults</summary>"
                 + _table(["setting", "value", "source"], rest) + "</details>")
    return "Settings", body


def _curves_section(curves: Path, history: List[dict]) -> Tuple[str, str]:
    body = ""
    if curves.is_file():
        # Three panels side by side: on a phone they scroll sideways rather than shrink past reading.
        body += '<div class="scroll">' + _img(curves.read_bytes(), "training curves", "wide") + "</div>"
    if history:
        last = history[-1]
        keys = [k for k in last if k != "epoch" and last[k] not in (None, "")]
        rows = [(k, _fmt(last[k])) for k in keys]
        epoch = html.escape(str(last.get("epoch", "?")))
        body += f"<h3>Final metrics (epoch {epoch})</h3>" + _table(["metric", "value"], rows)
    return "Training", body or "<p>No history.csv in this run folder.</p>"


def _evaluation_sections(model, dataset, names: List[str], cam_images: int, top_losses: int,
                         max_examples: int, sentences: int = 0, ngram_filters: int = 0,
                         text: bool = False, bundle=None) -> List[Tuple[str, str]]:
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    images, labels, probs = _collect(model, dataset, max_examples)
    what = "texts" if text else "images"
    if len(labels) == 0:
        return [("Validation", f"<p>No validation {what}: this run held none out.</p>")]
    k = probs.shape[-1]
    names = names if len(names) == k else [str(i) for i in range(k)]
    pred = np.argmax(probs, axis=-1)
    cm = confusion_matrix(labels, pred, labels=list(range(k)))
    p, r, f, s = precision_recall_fscore_support(labels, pred, labels=list(range(k)), zero_division=0)
    acc = float(np.mean(pred == labels))
    sections = [("Validation", f"<p>{len(labels):,} validation {what}; top-1 accuracy <b>{acc:.2%}</b>.</p>"
                 + _confusion(cm, names, acc)
                 + "<h3>Per class</h3>"
                 + _table(["class", "precision", "recall", "F1", "support"],
                          [(names[i], f"{p[i]:.3f}", f"{r[i]:.3f}", f"{f[i]:.3f}", str(int(s[i]))) for i in range(k)]))]
    from kerascnn.inference.by_type import breakdown

    types = breakdown(bundle, "val", pred == labels) if bundle is not None else None
    if types and types["by_type"]:  # data whose examples have types (VQA's question templates)
        sections.append(("Question types", _types_table(types)))
    if top_losses:
        sections.append(("Top losses", _top_losses(images, labels, probs, names, top_losses)))
    if cam_images:
        sections.append(("Grad-CAM", _gradcam_section(model, images[:cam_images], labels[:cam_images], names)))
    if sentences or ngram_filters:
        texts = [t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t) for t in images.tolist()]
        if sentences:
            sections.append(("Sentences", _sentences_section(model, texts, labels, probs, names, sentences)))
        if ngram_filters:
            sections.append(("Filter n-grams", _ngrams_section(model, texts, names, ngram_filters)))
    return sections


def _sequence_section(model, dataset, max_examples: int) -> Tuple[str, str]:
    """Scores of a model with a class per time step (kerascnn.data.kinds.DataKind.labels "sparse",
    e.g. WaveNet's next sample): top-1 accuracy and the negative log-likelihood in bits per step, over
    at most `max_examples` validation examples (crops)."""
    hits = steps = examples = 0
    bits = 0.0
    for x, y in dataset:
        probs = np.asarray(model.predict_on_batch(x), np.float64)
        y = np.asarray(y).astype(np.int64)
        chosen = np.take_along_axis(probs, y[..., None], axis=-1)[..., 0]
        bits -= float(np.log2(np.maximum(chosen, 1e-12)).sum())
        hits += int((np.argmax(probs, axis=-1) == y).sum())
        steps += y.size
        examples += len(y)
        if examples >= max_examples:
            break
    if not steps:
        return "Validation", "<p>No validation examples: this run held none out.</p>"
    return "Validation", (f"<p>{examples:,} validation examples, {steps:,} predicted steps: top-1 accuracy "
                          f"<b>{hits / steps:.2%}</b>, negative log-likelihood <b>{bits / steps:.3f}</b> bits per "
                          f"step (a uniform guess over {probs.shape[-1]} classes: {np.log2(probs.shape[-1]):.0f} "
                          f"bits).</p>")


def _types_table(types) -> str:
    group_of = {t: g["group"] for g in types["by_group"] for t in g["types"]}
    rows = [(r["type"], group_of.get(r["type"], ""), f"{r['examples']:,}", f"{r['accuracy']:.2%}")
            for r in types["by_type"]]
    rows += [(f"all {g['group']}", "", f"{g['examples']:,}", f"{g['accuracy']:.2%}") for g in types["by_group"]]
    return ("<p>Top-1 accuracy per question type and group on the validation split.</p>"
            + _table(["question type", "group", "examples", "accuracy"], rows))


def _top_losses(images, labels, probs, names, count: int) -> str:
    loss = -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0))
    wrong = np.flatnonzero(np.argmax(probs, -1) != labels)
    if len(wrong) == 0:
        return "<p>No validation image is misclassified.</p>"
    worst = wrong[np.argsort(-loss[wrong], kind="stable")][:count]
    cells = [(images[i], f"predicted <b>{html.escape(str(names[int(np.argmax(probs[i]))]))}</b> "
                         f"{probs[i].max():.0%}<br>true {html.escape(str(names[labels[i]]))}, "
                         f"loss {loss[i]:.2f}") for i in worst]
    return (f"<p>{len(wrong):,} misclassified; the {len(worst)} with the largest loss, worst first.</p>"
            + _gallery(cells))


def _gradcam_section(model, images, labels, names) -> str:
    from kerascnn.analysis.figures import overlay
    from kerascnn.analysis.visualize import _gradcam, cam_model

    try:
        cam = cam_model(model)
        heat, probs = _gradcam(cam, np.asarray(images, np.float32), None, "gradcam")
    except Exception as e:  # a model Grad-CAM cannot tap (no spatial map): say so, keep the report
        return f"<p>Grad-CAM not available for this model: {html.escape(str(e))}</p>"
    cells = [(overlay(img, h) * 255.0, f"predicted <b>{html.escape(str(names[int(np.argmax(q))]))}</b> "
                                       f"{q.max():.0%}<br>true {html.escape(str(names[t]))}")
             for img, h, q, t in zip(images, heat, probs, labels)]
    return (f"<p>Grad-CAM of the predicted class on the first validation images (layer "
            f"<code>{html.escape(cam.layer_name)}</code>): red where the evidence for it lies.</p>"
            + _gallery(cells))


def _sentences_section(model, texts: List[str], labels, probs, names, count: int) -> str:
    """The `count` most confident right and wrong validation sentences, each token coloured by its
    gradient x input for the predicted class (the text counterpart of the Grad-CAM gallery)."""
    from kerascnn.analysis.tokens import html_snippet, token_saliency

    pred = np.argmax(probs, axis=-1)
    conf = probs[np.arange(len(pred)), pred]
    body = (f"<p>Validation sentences the model got right and wrong, the {count} most confident of each first; "
            "each word as the model reads it, coloured by its gradient x input for the predicted class: red "
            "for it, blue against (hover for the score).</p>")
    for title, mask in (("Right", pred == labels), ("Wrong", pred != labels)):
        chosen = np.flatnonzero(mask)
        chosen = chosen[np.argsort(-conf[chosen], kind="stable")][:count]
        body += f"<h3>{title} ({int(mask.sum()):,})</h3>"
        if len(chosen) == 0:
            body += "<p>None.</p>"
        for i in chosen:
            try:
                tokens, scores, _ = token_saliency(model, texts[i], int(pred[i]))
            except Exception as e:  # a model the saliency cannot cut at its word vectors: say so, keep the report
                return f"<p>Token saliency not available for this model: {html.escape(str(e))}</p>"
            caption = (f"true {names[labels[i]]}, predicted {names[pred[i]]} (p = {conf[i]:.3f})")
            body += html_snippet(tokens, scores, caption)
    return body


def _ngrams_section(model, texts: List[str], names, count: int) -> str:
    from kerascnn.analysis.ngrams import filter_ngrams, ngram_rows

    try:
        found = filter_ngrams(model, texts, filters=count, top=NGRAMS_SHOWN)
    except Exception as e:  # a model without Conv1D filters over word vectors: say so, keep the report
        return f"<p>Filter n-grams not available for this model: {html.escape(str(e))}</p>"
    rows = [(name, grams, favours, strength, width) for name, width, favours, strength, grams
            in ngram_rows(found, names)]
    return (f"<p>The {len(found)} strongest filters (mean max-over-time activation on these {len(texts):,} "
            "validation sentences times the l2 norm of the filter's logits weights) and the distinct n-grams "
            "(windows of the filter's width) that excite each most; &lt;pad&gt; marks a window running past "
            "the sentence's end, [UNK] a word outside the vocabulary. <i>Favours</i>: the class whose score "
            "the filter raises most.</p>"
            + _table(["filter", f"top {NGRAMS_SHOWN} n-grams (activation)", "favours", "strength", "width"], rows))


def _gallery(cells) -> str:
    """Images with captions in a CSS grid that reflows from one phone column to many desktop ones."""
    figs = "".join(f"<figure>{_img(_array_png(img), 'example')}<figcaption>{cap}</figcaption></figure>"
                   for img, cap in cells)
    return f'<div class="gallery">{figs}</div>'


def _array_png(image: np.ndarray, longest: int = 192) -> bytes:
    """An (H, W, C) [0, 255] image as PNG bytes, shrunk to `longest` pixels (Pillow comes with matplotlib)."""
    from PIL import Image

    img = np.clip(np.asarray(image, np.float32), 0, 255).astype(np.uint8)
    pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img[..., :3])
    if max(pil.size) > longest:
        pil.thumbnail((longest, longest))
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def _confusion(cm: np.ndarray, names: List[str], acc: float) -> str:
    """The confusion matrix as an HTML table shaded by row-normalised counts (sharp at any width and
    cheap); a matplotlib picture for more classes than a table can show."""
    if len(names) > 30:
        return _img(_confusion_png(cm, names, acc), "confusion matrix", "narrow")
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    head = "<tr><th>true \\ predicted</th>" + "".join(f"<th>{html.escape(str(n))}</th>" for n in names) + "</tr>"
    rows = []
    for i, name in enumerate(names):
        tds = "".join(f'<td style="background:rgba(31,119,180,{v:.2f});{"color:#fff;" if v > 0.5 else ""}">'
                      f'{int(n) or ""}</td>' for v, n in zip(norm[i], cm[i]))
        rows.append(f"<tr><th>{html.escape(str(name))}</th>{tds}</tr>")
    return (f'<h3>Confusion matrix</h3><div class="scroll"><table class="cm"><thead>{head}</thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _confusion_png(cm: np.ndarray, names: List[str], acc: float) -> bytes:
    import tempfile

    from kerascnn.runtime.plots import plot_confusion

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "confusion.png"
        plot_confusion(cm, names, path, title=f"validation: top-1 {acc:.2%}")
        return path.read_bytes()


# ------------------------------------------------------------------------------------------------
# HTML


def _img(png: bytes, alt: str, cls: str = "") -> str:
    data = base64.b64encode(png).decode("ascii")
    klass = f' class="{cls}"' if cls else ""
    return f'<img{klass} src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _fmt(value) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return html.escape(str(value))
    return f"{v:.4g}"


def _table(head: Sequence[str], rows) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>'


def _subtitle(settings) -> str:
    s = (settings or {}).get("settings", {})
    data = s.get("data", {}).get("spec") if isinstance(s.get("data"), dict) else s.get("data")
    parts = [f"model {s['model']}" if s.get("model") else "", f"data {data}" if data else "",
             f"{s['epochs']} epochs" if s.get("epochs") else ""]
    return ", ".join(p for p in parts if p)


CSS = """
:root { color-scheme: light dark; --fg: #1d1f21; --bg: #fff; --muted: #666; --line: #ddd; --head: #f3f4f6; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e6e6; --bg: #16181a; --muted: #9aa; --line: #333;
  --head: #23262a; } img { background: #fff; } }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  background: var(--bg); }
main { max-width: 1100px; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; margin: .5rem 0 0; word-break: break-word; }
.sub { color: var(--muted); margin: 0 0 1rem; }
nav { display: flex; flex-wrap: wrap; gap: .4rem 1rem; margin-bottom: 1rem; font-size: .95rem; }
section { margin: 1.5rem 0; padding-top: .5rem; border-top: 1px solid var(--line); }
h2 { font-size: 1.25rem; margin: .25rem 0 .75rem; }
img { display: block; max-width: 100%; height: auto; margin: .5rem 0; border-radius: 4px; }
img.narrow { max-width: min(100%, 560px); }
img.wide { min-width: 720px; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; }
table { border-collapse: collapse; font-size: .9rem; min-width: 60%; }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { background: var(--head); position: sticky; top: 0; }
td:nth-child(2) { white-space: normal; overflow-wrap: anywhere; }
summary { cursor: pointer; color: var(--muted); margin: .5rem 0; }
code { font-size: .9em; overflow-wrap: anywhere; }
table.cm { min-width: 0; }
table.cm td { text-align: center; min-width: 2.2em; color: inherit; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(120px, 1fr)); gap: .75rem; }
.gallery figure { margin: 0; }
.gallery img { width: 100%; image-rendering: pixelated; margin: 0 0 .25rem; }
figcaption { font-size: .8rem; line-height: 1.3; color: var(--muted); }
@media (max-width: 600px) { main { padding: .6rem; } body { font-size: 15px; } th, td { padding: .25rem .4rem; }
  .gallery { grid-template-columns: repeat(3, 1fr); gap: .5rem; } }
"""


def _page(title: str, subtitle: str, sections: List[Tuple[str, str]]) -> str:
    from kerascnn import __version__

    anchors = [(h, h.lower().replace(" ", "-").replace("+", "")) for h, _ in sections]
    nav = "".join(f'<a href="#{a}">{html.escape(h)}</a>' for h, a in anchors)
    body = "".join(f'<section id="{a}"><h2>{html.escape(h)}</h2>{b}</section>'
                   for (h, a), (_, b) in zip(anchors, sections))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)} - kerascnn report</title><style>{CSS}</style></head>"
            f"<body><main><h1>{html.escape(title)}</h1><p class=\"sub\">{html.escape(subtitle)}"
            f"{' - ' if subtitle else ''}kerascnn {__version__}</p><nav>{nav}</nav>{body}</main></body></html>\n")
