"""K-fold cross-validation (Kim 2014's protocol for data without a test split): the folds that
`resolve_splits` cuts (disjoint, stratified, every example once, seeded) for image arrays and texts;
`cross_validate` end to end on a tiny TSV with kim_cnn, its mean and std against numpy's of the
folds' own `evaluate`; `kerascnn evaluate --cv`'s one-line errors."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from kerascnn.cli import main
from kerascnn.config import DataConfig, TrainConfig, override
from kerascnn.data.build import resolve_splits
from kerascnn.data.sources import ArraySplit, Source, kfold_split
from kerascnn.data.text_sources import TextSource, text_split
from kerascnn.errors import DataError

LABELS = np.repeat([0, 1, 2], [23, 11, 7])  # unbalanced, none a multiple of K


def image_source(labels=LABELS, **extra) -> Source:
    """Arrays whose first pixel is the example's index, so every split says which examples it took."""
    images = np.zeros((len(labels), 2, 2, 1), np.int64)
    images[:, 0, 0, 0] = np.arange(len(labels))
    return Source("arrays", "test arrays", {"train": ArraySplit(images, labels), **extra}, ["a", "b", "c"])


def text_source(labels=LABELS) -> TextSource:
    split = text_split([str(i) for i in range(len(labels))], labels, [f"t.tsv:{i + 1}" for i in range(len(labels))])
    return TextSource("tsv:t.tsv", "tsv", {"train": split}, ["a", "b", "c"])


def ids(split) -> np.ndarray:
    if isinstance(split, ArraySplit):
        return split.images[:, 0, 0, 0].astype(int)
    return np.array([int(t) for t in split.texts])


@pytest.mark.parametrize("make", [image_source, text_source], ids=["images", "texts"])
@pytest.mark.parametrize("k", [3, 5])
def test_folds_are_disjoint_stratified_and_cover_every_example_once(make, k):
    source, n = make(), len(LABELS)
    tests = []
    for i in range(k):
        parts = resolve_splits(source, DataConfig(spec="x", folds=k, fold=i, val_split=0.2, seed=3))
        test, train, val = ids(parts["test"]), ids(parts["train"]), ids(parts["val"])
        # test, train and the held-out val partition the source's training data
        np.testing.assert_array_equal(np.sort(np.concatenate([test, train, val])), np.arange(n))
        np.testing.assert_array_equal(LABELS[test], parts["test"].labels)
        tests.append(test)
        # stratified: each class's share of the fold is its count / k, rounded either way
        per_class = np.bincount(LABELS[test], minlength=3)
        assert np.all(np.abs(per_class - np.bincount(LABELS) / k) < 1), per_class
    everything = np.concatenate(tests)
    np.testing.assert_array_equal(np.sort(everything), np.arange(n))  # every example in exactly one fold
    # seeded: the same seed cuts the same folds, another seed others
    again = resolve_splits(make(), DataConfig(spec="x", folds=k, fold=1, val_split=0.2, seed=3))["test"]
    other = resolve_splits(make(), DataConfig(spec="x", folds=k, fold=1, val_split=0.2, seed=4))["test"]
    np.testing.assert_array_equal(ids(again), tests[1])
    assert not np.array_equal(ids(other), tests[1])


def test_without_folds_nothing_changes_and_unlabelled_records_get_plain_folds():
    parts = resolve_splits(image_source(), DataConfig(spec="x", val_split=0.0))
    assert set(parts) == {"train"} and len(parts["train"]) == len(LABELS)
    held = [kfold_split(None, 10, 4, i, seed=0)[1] for i in range(4)]  # TFDS records: labels unknown
    np.testing.assert_array_equal(np.sort(np.concatenate(held)), np.arange(10))
    assert sorted(map(len, held)) == [2, 2, 3, 3]


@pytest.mark.parametrize("cfg, match", [
    (DataConfig(spec="x", folds=1), "K >= 2"),
    (DataConfig(spec="x", folds=3, fold=3), r"--fold in \[0, K-1\]"),
    (DataConfig(spec="x", folds=50), "cannot make 50 cross-validation folds"),
])
def test_fold_settings_out_of_range_are_one_line(cfg, match):
    with pytest.raises(DataError, match=match):
        resolve_splits(image_source(), cfg)


def test_data_with_its_own_test_split_is_refused():
    source = image_source(test=ArraySplit(np.zeros((4, 2, 2, 1)), np.arange(4) % 3))
    with pytest.raises(DataError, match="has a test split of its own; cross-validation"):
        resolve_splits(source, DataConfig(spec="x", folds=3))


def write_tsv(path, n=60):
    """Rated sentences whose class a keyword decides: a fold's model can learn it in one epoch."""
    lines = [f"{i}\t{1.5 if i % 2 else -1.5}\t{'a fine warm film' if i % 2 else 'a dull cold mess'} {i}"
             for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return f"tsv:{path}"


def tiny_text_config(tmp_path, out="run") -> TrainConfig:
    return override(TrainConfig(), model="kim_cnn", epochs=1, batch_size=16, precision="float32", schedule="constant",
                    steps_per_execution=1, out=str(tmp_path / out),
                    model_args={"sequence_length": 8, "filters": 4, "embedding_dim": 8},
                    **{"data.spec": write_tsv(tmp_path / "rated.tsv"), "data.label_threshold": 0.0})


def test_cross_validate_trains_a_fresh_model_per_fold_and_averages_their_test_scores(tmp_path):
    from kerascnn.inference.apply import evaluate
    from kerascnn.inference.cv import cross_validate
    from kerascnn.runtime import run_dir as rd

    r = cross_validate(tiny_text_config(tmp_path), 3, out=tmp_path / "cv", verbose=0)
    assert [f.fold for f in r.folds] == [0, 1, 2] and sum(f.examples for f in r.folds) == 60
    labels = np.arange(60) % 2
    top1 = []
    for f in r.folds:
        cfg = rd.read_config(f.run_dir)
        assert (cfg.data.folds, cfg.data.fold) == (3, f.fold)
        again = evaluate(f"{f.run_dir}/model.keras", split="test", plot=False)  # independently re-scored
        assert again.count == f.examples == len(kfold_split(labels, 60, 3, f.fold, cfg.data.seed)[1])
        assert again.top1 == pytest.approx(f.top1)
        top1.append(again.top1)
    assert r.mean == pytest.approx(np.mean(top1)) and r.std == pytest.approx(np.std(top1))
    # a fresh model per fold: each one's vocabulary is learnt from its own training folds, so the
    # number ending each of its test sentences is a word it has never seen
    from kerascnn.models.loading import load_model

    for f in r.folds:
        vocabulary = set(load_model(f"{f.run_dir}/model.keras").get_layer("vectorize").get_vocabulary())
        held = kfold_split(labels, 60, 3, f.fold, rd.read_config(f.run_dir).data.seed)[1]
        assert not vocabulary & {str(i) for i in held}
        assert len(vocabulary & {str(i) for i in range(60)}) >= 30  # its training folds' numbers
    saved = json.loads((tmp_path / "cv" / "cv.json").read_text())
    assert saved["k"] == 3 and saved["mean"] == pytest.approx(r.mean)


def test_evaluate_cv_prints_each_fold_and_the_mean(tmp_path):
    from kerascnn.training import fit

    run = fit(tiny_text_config(tmp_path), verbose=0)
    cli = CliRunner().invoke(main, ["evaluate", str(run.run_dir / "model.keras"), "--cv", "2", "--epochs", "1",
                                    "--out", str(tmp_path / "cv"), "--json"])
    assert cli.exit_code == 0, cli.output
    result = json.loads(cli.output[cli.output.index("{"):])
    assert result["k"] == 2 and len(result["folds"]) == 2
    assert result["mean"] == pytest.approx(np.mean([f["top1"] for f in result["folds"]]))
    assert sum(f["examples"] for f in result["folds"]) == 60


@pytest.mark.parametrize("args, match", [
    (["--cv", "1"], "--cv K needs K >= 2"),
    (["--cv", "3"], "no config.json beside it"),
    (["--epochs", "2"], "--epochs is for --cv K"),
])
def test_evaluate_cv_errors_are_one_line(tmp_path, args, match):
    model = tmp_path / "m.keras"
    model.write_bytes(b"never loaded")
    r = CliRunner().invoke(main, ["evaluate", str(model), *args])
    assert r.exit_code in (1, 2) and match in r.output and "Traceback" not in r.output, r.output


def test_evaluate_cv_refuses_data_with_a_test_split(tmp_path):
    from kerascnn.runtime import run_dir as rd

    root = tmp_path / "texts"
    for split in ("train", "test"):
        for c in ("neg", "pos"):
            (root / split / c).mkdir(parents=True)
            for i in range(3):
                (root / split / c / f"{i}.txt").write_text(f"{c} text {i}")
    run = tmp_path / "run"
    run.mkdir()
    rd.write_config(run, override(tiny_text_config(tmp_path), **{"data.spec": str(root), "data.label_threshold": None}))
    (run / "model.keras").write_bytes(b"never loaded")
    r = CliRunner().invoke(main, ["evaluate", str(run / "model.keras"), "--cv", "3"])
    assert r.exit_code == 1 and "has a test split of its own; cross-validation" in r.output, r.output
