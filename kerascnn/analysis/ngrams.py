"""Which n-grams excite a sentence CNN's strongest filters (Kim 2014's filters, read off a data set).

A Conv1D filter of width w over the word vectors ("valid" padding, stride 1) has one output per
position t, computed from tokens t..t+w-1: the n-gram of that position. For each filter this lists
the distinct n-grams with the largest activations on a set of sentences (a run's validation split,
in `kerascnn visualize ngrams` and the run's report).

Which filters are "strongest": each filter's average push on the class scores, i.e. the mean over
the sentences of its max-over-time activation (the pooled feature "logits" sees; ReLU, so >= 0) times
the l2 norm of its row of "logits" weights. A filter that fires strongly but that the classifier
ignores, or that the classifier weighs heavily but that hardly fires, ranks low. Without a "logits"
layer that maps back to the filters, the weight factor is 1 (the mean max activation alone).

Windows that start inside the sentence are counted; where one runs past the sentence's end the
padding positions read "<pad>" (the model sees zero vectors there, so the activation is real).
Windows that start in the padding, and empty sentences, are skipped. Words are the model's own
vectorizer's tokens, cut at its sequence length; a word outside the vocabulary is "[UNK]", as the
filter sees it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from kerascnn.analysis.tokens import PADDING_ID, text_parts
from kerascnn.errors import ModelError, SettingError
from kerascnn.runtime.compat import keras_history, layer_call_nodes

PAD = "<pad>"


@dataclass(frozen=True)
class Ngram:
    words: Tuple[str, ...]
    activation: float  # the filter's largest activation on these words
    example: int  # the sentence (index into the texts) where it is largest


@dataclass(frozen=True)
class FilterNgrams:
    """One filter: `layer` (its Conv1D, e.g. "conv3") and `index` within it, its `width` in words,
    `strength` (mean max activation x the l2 norm of its "logits" row), `mean_max` (mean max-over-time
    activation), `favours` (the class whose logit it raises most relative to the mean of the others;
    None without "logits") and its top `ngrams`, largest activation first."""

    layer: str
    index: int
    width: int
    strength: float
    mean_max: float
    favours: Optional[int]
    ngrams: Tuple[Ngram, ...]


def filter_ngrams(model, texts: Sequence[str], filters: int = 10, top: int = 5,
                  batch_size: int = 256) -> List[FilterNgrams]:
    """The `top` distinct n-grams of each of the `filters` strongest filters on `texts` (see the module doc).

    Args:
        model: a text model taking raw strings whose convolutions are Conv1D layers over the word
            vectors (kim_cnn).
        texts: the sentences (str or UTF-8 bytes).
        filters: how many filters, strongest first, over all the model's Conv1D layers.
        top: n-grams per filter.
        batch_size: sentences per forward pass.

    Raises:
        ModelError: the model takes no strings or has no Conv1D layer; SettingError: filters or top < 1.
    """
    import keras

    if int(filters) < 1 or int(top) < 1:
        raise SettingError("filters" if int(filters) < 1 else "top", "filters and top must be at least 1.")
    parts = text_parts(model)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv1D)]
    if not convs:
        raise ModelError(f"{model.name} has no Conv1D layer over its word vectors: no filters to read n-grams from.")
    for layer in convs:
        if layer.padding != "valid" or tuple(layer.strides) != (1,) or tuple(layer.dilation_rate) != (1,):
            raise ModelError(f"{model.name}: {layer.name} is not a stride-1, undilated 'valid' convolution; its "
                             "positions do not map to n-grams one to one.")
    texts = [t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t) for t in texts]
    ids, acts = _activations(model, parts.vectorize, convs, texts, int(batch_size))
    vocab = [str(w) for w in parts.vectorize.get_vocabulary()]
    lengths = (ids != PADDING_ID).sum(axis=1)
    weights = _logit_rows(model, convs)
    ranked = []
    for layer, act in zip(convs, acts):
        pooled = act.max(axis=1).mean(axis=0) if len(texts) else np.zeros(act.shape[-1])
        rows = weights.get(layer.name)
        norms = np.linalg.norm(rows, axis=1) if rows is not None else np.ones_like(pooled)
        for f in range(act.shape[-1]):
            favours = None if rows is None else int(np.argmax(rows[f] - rows[f].mean()))
            ranked.append((float(pooled[f] * norms[f]), float(pooled[f]), favours, layer, f, act))
    ranked.sort(key=lambda r: -r[0])  # stable: ties keep layer, then filter order
    out = []
    for strength, mean_max, favours, layer, f, act in ranked[:int(filters)]:
        width = int(layer.kernel_size[0])
        grams = top_ngrams(act[..., f], ids, lengths, vocab, width, int(top))
        out.append(FilterNgrams(layer.name, f, width, strength, mean_max, favours, grams))
    return out


def _activations(model, vectorize, convs, texts: List[str], batch_size: int):
    """(token ids (N, L), [each conv's activations (N, L - w + 1, F)]) of the texts."""
    import keras
    import tensorflow as tf

    tap = keras.Model(model.inputs, [vectorize.output] + [layer.output for layer in convs])
    ids, acts = [], [[] for _ in convs]
    for start in range(0, len(texts), batch_size):
        outs = tap(tf.constant(texts[start:start + batch_size]), training=False)
        ids.append(np.asarray(outs[0]))
        for i, a in enumerate(outs[1:]):
            acts[i].append(np.asarray(a, dtype="float32"))
    if not ids:
        shapes = [tuple(layer.output.shape[1:]) for layer in convs]
        return (np.zeros((0, int(vectorize.output.shape[-1] or 0)), "int64"),
                [np.zeros((0,) + s, "float32") for s in shapes])
    return np.concatenate(ids), [np.concatenate(a) for a in acts]


def top_ngrams(act: np.ndarray, ids: np.ndarray, lengths: np.ndarray, vocab: Sequence[str], width: int,
               top: int) -> Tuple[Ngram, ...]:
    """The `top` distinct n-grams of one filter: act (N, T) its activations, ids (N, L) the token ids,
    lengths (N,) the sentences' token counts; windows starting past a sentence's end are skipped."""
    valid = np.arange(act.shape[1])[None, :] < lengths[:, None]
    rows, cols = np.nonzero(valid)
    order = np.argsort(-act[rows, cols], kind="stable")
    seen, out = set(), []
    for k in order:
        n, t = int(rows[k]), int(cols[k])
        words = tuple(vocab[int(i)] if i != PADDING_ID else PAD for i in ids[n, t:t + width])
        if words in seen:
            continue
        seen.add(words)
        out.append(Ngram(words, float(act[n, t]), n))
        if len(out) == top:
            break
    return tuple(out)


def _logit_rows(model, convs) -> dict:
    """{conv layer name: its filters' rows (F, C) of the "logits" kernel}, following "features"
    (the concatenation of the pooled maps, in its input order) back to each pool's convolution;
    {} when the model has no "logits" or its inputs do not map back."""
    names = {layer.name: layer for layer in model.layers}
    if "logits" not in names:
        return {}
    kernel = np.asarray(names["logits"].kernel, dtype="float64")
    try:
        if "features" in names:
            pooled = list(layer_call_nodes(names["features"])[0].input_tensors)
        else:
            pooled = [layer_call_nodes(names["logits"])[0].input_tensors[0]]
        order = [_source_conv(t, convs) for t in pooled]
    except (AttributeError, IndexError, TypeError):
        return {}
    if any(c is None for c in order) or sum(c.filters for c in order) != kernel.shape[0]:
        return {}
    rows, start = {}, 0
    for conv in order:
        rows[conv.name] = kernel[start:start + conv.filters]
        start += conv.filters
    return rows


def _source_conv(tensor, convs, depth: int = 4):
    """The Conv1D among `convs` that `tensor` comes from through single-input layers (pooling, dropout)."""
    for _ in range(depth):
        op = keras_history(tensor).operation
        if op in convs:
            return op
        tensor = layer_call_nodes(op)[0].input_tensors[0]
    return None


# ------------------------------------------------------------------------------------------------
# Showing them

def ngram_rows(found: Sequence[FilterNgrams], class_names: Optional[Sequence[str]] = None) -> List[tuple]:
    """One row per filter: (filter, width, favours, strength, "n-gram (activation); ...")."""
    def label(i):
        if i is None:
            return ""
        return str(class_names[i]) if class_names and i < len(class_names) else f"class {i}"

    return [(f"{f.layer} #{f.index}", str(f.width), label(f.favours), f"{f.strength:.3f}",
             "; ".join(f"{' '.join(g.words)} ({g.activation:.2f})" for g in f.ngrams)) for f in found]


def format_table(found: Sequence[FilterNgrams], class_names: Optional[Sequence[str]] = None) -> str:
    """A plain-text table: a header line, then one line per filter, its n-grams indented below it."""
    lines = []
    for (name, width, favours, strength, _), f in zip(ngram_rows(found, class_names), found):
        lines.append(f"{name:<12} width {width}  strength {strength:>8}  mean max {f.mean_max:.3f}"
                     + (f"  favours {favours}" if favours else ""))
        lines += [f"    {g.activation:8.3f}  {' '.join(g.words)}" for g in f.ngrams]
    return "\n".join(lines)


def to_json(found: Sequence[FilterNgrams], class_names: Optional[Sequence[str]] = None) -> list:
    """JSON-ready dicts, one per filter, strongest first."""
    return [{"layer": f.layer, "filter": f.index, "width": f.width, "strength": f.strength, "mean_max": f.mean_max,
             "favours": None if f.favours is None else (
                 str(class_names[f.favours]) if class_names and f.favours < len(class_names) else f.favours),
             "ngrams": [{"words": list(g.words), "activation": g.activation, "example": g.example}
                        for g in f.ngrams]} for f in found]


__all__ = ["FilterNgrams", "Ngram", "PAD", "filter_ngrams", "format_table", "ngram_rows", "to_json", "top_ngrams"]
