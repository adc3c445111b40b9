"""Which words drove a text model's prediction: gradient x input per token, and occlusion as a check.

The text counterpart of Grad-CAM, for models that take raw strings (kim_cnn: "vectorize" ->
"embedding", or "embedding_static" + "embedding_tuned" joined in "channels" -> convolutions ->
"logits" -> "predictions"). The string -> token ids step is a lookup, not differentiable, so the
gradient is taken through sub-models of the model's own graph (the same layers and weights, no copy):
token ids -> word vectors, and word vectors -> logits and probabilities.

* `token_saliency`: each token's gradient x input (Simonyan et al. 2014; Shrikumar et al. 2017's
  "gradient * input") of the class's logit at the word vectors, summed over the vector axis (both
  channels of a multichannel model, since "channels" concatenates them). Positive: the word pushes
  towards the class. Padding rows are zero vectors, so padding positions would score zero; they
  are dropped.
* `occlusion`: the drop in the class's probability when a token's id is replaced by the padding id
  (a zero vector, as if the word were not there), one forward pass per token: a model-independent
  check of the ranking.
"""
from __future__ import annotations

import html
from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from kerascnn.errors import ModelError, SettingError

PADDING_ID = 0  # TextVectorization's padding index ("" in its vocabulary)
OOV = "[UNK]"


class TextParts(NamedTuple):
    """A text model cut at its word vectors: `vectorize` (strings -> ids), `embed` (ids -> vectors),
    `head` (vectors -> [class scores, probabilities]); `logits` is False when the head's first output
    is the probabilities themselves (no "logits" layer)."""

    vectorize: object
    embed: object
    head: object
    logits: bool


def text_parts(model) -> TextParts:
    """`model` cut at its word vectors (see TextParts); a ModelError for a model that takes no strings."""
    import keras

    vectorize = _vectorize_layer(model)
    if vectorize is None:
        kind = "image" if len(model.inputs) == 1 and len(model.inputs[0].shape) == 4 else "non-text"
        raise ModelError(f"{model.name} takes {kind} inputs; token saliency and filter n-grams are for text models "
                         "that take raw strings (such as kim_cnn).")
    embedded = _embedded(model)
    names = {layer.name for layer in model.layers}
    score = model.get_layer("logits").output if "logits" in names else model.output
    embed = keras.Model(vectorize.output, embedded, name=f"{model.name}_embed")
    head = keras.Model(embedded, [score, model.output], name=f"{model.name}_head")
    return TextParts(vectorize, embed, head, "logits" in names)


def _vectorize_layer(model):
    import keras

    names = {layer.name: layer for layer in model.layers}
    layer = names.get("vectorize")
    if isinstance(layer, keras.layers.TextVectorization):
        return layer
    found = [layer for layer in model.layers if isinstance(layer, keras.layers.TextVectorization)]
    return found[0] if len(found) == 1 else None


def _embedded(model):
    """The word vectors the convolutions see: "channels" (both of multichannel's), else the embedding."""
    import keras

    names = {layer.name: layer for layer in model.layers}
    for name in ("channels", "embedding"):
        if name in names:
            return names[name].output
    found = [layer for layer in model.layers if isinstance(layer, keras.layers.Embedding)]
    if len(found) != 1:
        raise ModelError(f"{model.name}: expected one Embedding layer (or kim_cnn's \"channels\") after its "
                         f"TextVectorization; found {len(found)}.")
    return found[0].output


def _ids_and_tokens(parts: TextParts, text: str) -> Tuple[np.ndarray, List[int], List[str]]:
    """(the token ids (1, L), the non-padding positions, their tokens as the vectorizer sees them)."""
    import tensorflow as tf

    if not isinstance(text, str):
        raise SettingError("text", f"Expected one string; received {type(text).__name__}.")
    ids = np.asarray(parts.vectorize(tf.constant([text])))
    vocab = parts.vectorize.get_vocabulary()
    positions = [i for i, t in enumerate(ids[0]) if t != PADDING_ID]
    tokens = [str(vocab[int(ids[0, i])]) for i in positions]
    words = _words(parts.vectorize, text)
    # An out-of-vocabulary id shows the word it stands for, when the vectorizer's own split lines up.
    if words is not None and len(words) >= len(positions) and all(
            t == OOV or t == w for t, w in zip(tokens, words[:len(positions)])) and positions == list(
            range(len(positions))):
        tokens = [w if t == OOV else t for t, w in zip(tokens, words)]
    return ids, positions, tokens


def _words(vectorize, text: str) -> Optional[List[str]]:
    """The standardized, split words of `text` (TextVectorization's own preprocessing); None if that
    private step is unavailable (a later Keras): the OOV tokens then read "[UNK]"."""
    import tensorflow as tf

    try:
        split = vectorize._preprocess(tf.constant([text]))
        row = split[0].numpy() if hasattr(split[0], "numpy") else np.asarray(split[0])
        return [w.decode("utf-8") if isinstance(w, bytes) else str(w) for w in row]
    except Exception:  # noqa: BLE001 - display only: fall back to "[UNK]"
        return None


def _class(index: Optional[int], probabilities: np.ndarray) -> int:
    n = probabilities.shape[-1]
    if index is None:
        return int(np.argmax(probabilities))
    if not 0 <= int(index) < n:
        raise SettingError("target_class", f"Class {index} is out of range; the model has {n} classes.")
    return int(index)


def token_saliency(model, text: str, class_index: Optional[int] = None
                   ) -> Tuple[List[str], np.ndarray, np.ndarray]:
    """Per-token gradient x input of one text's prediction.

    Args:
        model: a text model taking raw strings (kim_cnn, from the registry or a .keras file).
        text: one string.
        class_index: the class explained; None: the predicted one.

    Returns:
        (tokens, scores, probabilities): the non-padding tokens as the vectorizer sees them
        (lower-cased, punctuation stripped, cut at the model's sequence length; a word outside the
        vocabulary as itself), each one's sum over the word-vector axis of d(class logit)/d(vector) x
        vector (float64, (T,)), and the model's class probabilities (C,).
    """
    import tensorflow as tf

    parts = text_parts(model)
    ids, positions, tokens = _ids_and_tokens(parts, text)
    vectors = tf.convert_to_tensor(parts.embed(ids, training=False))
    with tf.GradientTape() as tape:
        tape.watch(vectors)
        score, probs = parts.head(vectors, training=False)
        index = _class(class_index, np.asarray(probs)[0])
        target = score[:, index]
    grads = tape.gradient(target, vectors)
    saliency = tf.reduce_sum(tf.cast(grads, "float64") * tf.cast(vectors, "float64"), axis=-1).numpy()[0]
    return tokens, saliency[positions], np.asarray(probs, dtype="float64")[0]


def occlusion(model, text: str, class_index: Optional[int] = None) -> Tuple[List[str], np.ndarray]:
    """The drop in the class's probability when each token is replaced by padding (its id by 0, a zero
    word vector), all other tokens in place: (tokens, drops (T,)), positive where the word helped.
    class_index None: the predicted class."""
    parts = text_parts(model)
    ids, positions, tokens = _ids_and_tokens(parts, text)
    batch = np.repeat(ids, len(positions) + 1, axis=0)
    for row, i in enumerate(positions, start=1):
        batch[row, i] = PADDING_ID
    _, probs = parts.head(parts.embed(batch, training=False), training=False)
    probs = np.asarray(probs, dtype="float64")
    index = _class(class_index, probs[0])
    return tokens, probs[0, index] - probs[1:, index]


# ------------------------------------------------------------------------------------------------
# Showing them

def _scaled(scores: Sequence[float]) -> np.ndarray:
    scores = np.asarray(scores, dtype="float64")
    top = np.abs(scores).max() if scores.size else 0.0
    return scores / top if top > 0 else np.zeros_like(scores)


def terminal_line(tokens: Sequence[str], scores: Sequence[float], color: bool) -> str:
    """The tokens in order: coloured by score on a terminal (red positive, blue negative, bold for the
    strongest half), else plain `word(+0.12)`."""
    if not color:
        return " ".join(f"{t}({s:+.2f})" for t, s in zip(tokens, scores))
    out = []
    for t, s, r in zip(tokens, scores, _scaled(scores)):
        if abs(r) < 0.05:
            out.append(t)
        else:
            code = ("31" if s > 0 else "34") + (";1" if abs(r) >= 0.5 else "")  # ANSI red / blue, bold
            out.append(f"\x1b[{code}m{t}\x1b[0m")
    return " ".join(out)


def html_snippet(tokens: Sequence[str], scores: Sequence[float], title: str = "") -> str:
    """An HTML fragment (inline styles only, so it pastes into any page): each token's background red
    for positive, blue for negative scores, its opacity |score| / max |score|, the score on hover."""
    spans = []
    for t, s, r in zip(tokens, scores, _scaled(scores)):
        rgb = "220,40,40" if s > 0 else "40,90,220"
        spans.append(f'<span title="{s:+.4f}" style="background:rgba({rgb},{abs(r):.3f});padding:1px 3px;'
                     f'border-radius:3px">{html.escape(t)}</span>')
    head = f'<div style="font:13px sans-serif;color:#555">{html.escape(title)}</div>' if title else ""
    return (f'<div class="kerascnn-tokens" style="font:16px/1.9 sans-serif">{head}'
            f'<div>{" ".join(spans)}</div></div>\n')


__all__ = ["TextParts", "html_snippet", "occlusion", "terminal_line", "text_parts", "token_saliency"]
