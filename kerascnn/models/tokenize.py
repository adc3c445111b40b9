"""How a sentence becomes tokens for the text models: one standardisation for the vocabulary the
data learns and for the TextVectorization inside the model, so the two agree on every token.

Keras's default ("lower_and_strip_punctuation") deletes every punctuation mark, so "doesn't"
becomes "doesnt" (no such word in GloVe or word2vec) and "!" and "?" vanish: in sentiment the
negations and exclamations carry much of the signal. `sentence_standardize` follows the cleaning of
Kim's code instead (the tokenisation of his word2vec runs and of GloVe's corpus): lower case;
letters, digits and ( ) , ! ? ' ` kept, anything else a space; quote marks at either end of a
word dropped ("''conan''" -> "conan"); the clitics n't 's 've 're 'd 'll 'm
split off as their own tokens ("doesn't" -> "does n't"); ( ) , ! ? made tokens of their own. It is a
registered Keras function, so a saved model names it and loads with safe mode on (no Lambda).
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, List, Optional, Sequence

import keras
import numpy as np

from kerascnn.errors import ModelError

PADDING, OOV = "", "[UNK]"  # rows 0 and 1 of a Keras TextVectorization vocabulary
# What TextVectorization splits on after standardising: runs of whitespace.
SPLIT = "whitespace"


@keras.saving.register_keras_serializable(package="kerascnn")
def sentence_standardize(text):
    """Kim-style sentence cleaning of a string tensor (see the module doc); tf.strings ops only, so
    it runs inside the model, in tf.data and in an exported SavedModel."""
    import tensorflow as tf

    text = tf.strings.lower(text, encoding="utf-8")
    text = tf.strings.regex_replace(text, r"[^\pL\pN(),!?'`]+", " ")
    # Quote marks that open or close a word are quotes ("''conan''", "kids'"), not clitics: dropped.
    text = tf.strings.regex_replace(text, r"(^|\s)['`]+", " ")
    text = tf.strings.regex_replace(text, r"['`]+(\s|$)", " ")
    text = tf.strings.regex_replace(text, r"n't\b", " n't")
    text = tf.strings.regex_replace(text, r"'(s|ve|re|d|ll|m)\b", " '\\1")
    text = tf.strings.regex_replace(text, r"([(),!?])", " \\1 ")
    return tf.strings.strip(tf.strings.regex_replace(text, r"\s+", " "))


def full_vocabulary(vocabulary: Optional[Sequence[str]], size: int, name: str = "model") -> list:
    """The vocabulary as TextVectorization.get_vocabulary() lists it ("" and "[UNK]" first); None:
    `size` placeholder tokens (summaries, `kerascnn models`: the parameter count of a real
    vocabulary of that size, meaningless predictions).

    Raises:
        ModelError: "" or "[UNK]" elsewhere than as the first two tokens (`name` the model's).
    """
    if vocabulary is None:
        return [PADDING, OOV] + [f"word{i}" for i in range(2, max(int(size), 3))]
    words = [str(w) for w in vocabulary]
    if words[:2] == [PADDING, OOV]:
        return words
    if PADDING in words or OOV in words:
        raise ModelError(f'{name}: the vocabulary may hold "" and "[UNK]" only as its first two tokens (as '
                         f"TextVectorization.get_vocabulary() lists them).")
    return [PADDING, OOV] + words


def text_vectorizer(vocabulary: Optional[Sequence[str]] = None, sequence_length: Optional[int] = None,
                    name: Optional[str] = None) -> keras.layers.TextVectorization:
    """A TextVectorization with the text models' standardisation: over `vocabulary` (the model's), or
    without one, to `adapt` (the data's vocabulary learner)."""
    return keras.layers.TextVectorization(vocabulary=None if vocabulary is None else list(vocabulary),
                                          standardize=sentence_standardize, split=SPLIT,
                                          output_sequence_length=None if sequence_length is None
                                          else int(sequence_length), name=name)


# The same cleaning in Python's `re`, for a backend without TensorFlow (JAX): `sentence_standardize`'s
# RE2 patterns, with \pL\pN as Python's \w less "_" and RE2's ASCII \b and \s (re.ASCII). It agrees
# with the TensorFlow one on ASCII text (tests/test_vqa_gpu_path.py checks); Unicode lower-casing
# may differ in rare letters (str.lower against RE2's).
_DROP = re.compile(r"(?:[^\w(),!?'`]|_)+")
_OPEN_QUOTE, _CLOSE_QUOTE = re.compile(r"(^|\s)['`]+", re.ASCII), re.compile(r"['`]+(\s|$)", re.ASCII)
_NOT = re.compile(r"n't\b", re.ASCII)
_CLITIC = re.compile(r"'(s|ve|re|d|ll|m)\b", re.ASCII)
_MARK = re.compile(r"([(),!?])")
_SPACES = re.compile(r"\s+", re.ASCII)


def standardize_text(text: str) -> str:
    """`sentence_standardize` of one Python string, without TensorFlow."""
    text = _DROP.sub(" ", str(text).lower())
    text = _CLOSE_QUOTE.sub(" ", _OPEN_QUOTE.sub(" ", text))
    text = _CLITIC.sub(" '\\1", _NOT.sub(" n't", text))
    return _SPACES.sub(" ", _MARK.sub(" \\1 ", text)).strip(" ")


def words_of(text: str) -> List[str]:
    """The tokens the text models' TextVectorization splits `text` into (no TensorFlow)."""
    return standardize_text(text).split()


def learn_vocabulary_py(texts: Iterable[str]) -> List[str]:
    """The vocabulary `text_vectorizer().adapt(texts)` learns, without TensorFlow: "" and "[UNK]",
    then every token by descending count, ties by descending UTF-8 bytes (Keras's IndexLookup:
    np.lexsort((tokens, counts))[::-1])."""
    counts = Counter(w for text in texts for w in words_of(text))
    for special in (PADDING, OOV):
        counts.pop(special, None)
    ordered = sorted(counts, key=lambda w: (counts[w], w.encode("utf-8")), reverse=True)
    return [PADDING, OOV] + ordered


def token_ids(texts: Sequence[str], vocabulary: Sequence[str], sequence_length: int) -> np.ndarray:
    """(len(texts), sequence_length) int32: what `text_vectorizer(vocabulary, sequence_length)` gives
    for `texts` (a full vocabulary, "" and "[UNK]" first): each token's row, 1 for an unknown one,
    cut after `sequence_length` tokens, padded with 0; without TensorFlow."""
    vocab = full_vocabulary(vocabulary, 0)
    index = {w: i for i, w in enumerate(vocab) if i >= 2}
    out = np.zeros((len(texts), int(sequence_length)), np.int32)
    for row, text in enumerate(texts):
        ids = [index.get(w, 1) for w in words_of(text)][:int(sequence_length)]
        out[row, :len(ids)] = ids
    return out


__all__ = ["OOV", "PADDING", "SPLIT", "full_vocabulary", "learn_vocabulary_py", "sentence_standardize",
           "standardize_text", "text_vectorizer", "token_ids", "words_of"]
