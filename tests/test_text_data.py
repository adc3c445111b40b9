"""Text data in the common pipeline (kerascnn.data.text): tsv:/csv: files and their column rules,
folders of .txt class folders, imdb and tfds:imdb_reviews offline, the seeded hold-out, the batches,
predict's inputs, the text audit, and the kind checks. Every file is a tiny one the test writes."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

import kerascnn
from kerascnn.cli import main
from kerascnn.config import DataConfig
from kerascnn.data import kinds
from kerascnn.data.build import resolve_splits
from kerascnn.data.text import load_text_lines, open_text_source
from kerascnn.data.text_audit import audit_text
from kerascnn.errors import DataError, SettingError

SENTIMENT = [("1", "2.5", "a fine warm film"), ("2", "-1.2", "dull and long"), ("3", "0", "a film"),
             ("4", "0.7", "quite good"), ("5", "-3", "awful, truly awful")]


def _write(path, lines, newline="\n", encoding="utf-8"):
    path.write_bytes(newline.join(lines).encode(encoding) + newline.encode())
    return str(path)


def _tsv(tmp_path, rows=SENTIMENT, name="s.tsv", **kw):
    return _write(tmp_path / name, ["\t".join(r) for r in rows], **kw)


def _open(spec, **settings):
    return open_text_source(DataConfig(spec=spec, **settings))


def _texts(source, split="train"):
    part = source.splits[split]
    return [(t, source.class_names[y]) for t, y in zip(part.texts, part.labels)]


def test_tsv_defaults_text_last_label_before_it_and_threshold_leaves_equal_ratings_out(tmp_path):
    path = _tsv(tmp_path, newline="\r\n")  # CRLF, as in the sentiment files
    source = _open(f"tsv:{path}", label_threshold=0.0)
    assert source.class_names == ["negative", "positive"]
    assert _texts(source) == [("a fine warm film", "positive"), ("dull and long", "negative"),
                              ("quite good", "positive"), ("awful, truly awful", "negative")]
    assert source.left_out == [f"{path}:3"] and source.skipped == []
    # A threshold of 0.7: the 0.7 row is left out, 0 is now below it.
    source = _open(f"tsv:{path}", label_threshold=0.7)
    assert dict(_texts(source))["a film"] == "negative" and "quite good" not in dict(_texts(source))
    assert source.left_out == [f"{path}:4"]


def test_without_a_threshold_the_label_values_are_the_classes(tmp_path):
    rows = [("pos", "loved it"), ("neg", "hated it"), ("pos", "great"), ("meh", "so so")]
    source = _open(f"tsv:{_tsv(tmp_path, rows)}")
    assert source.class_names == ["meh", "neg", "pos"]
    assert _texts(source)[1] == ("hated it", "neg")
    # Numeric class labels sort as numbers (2 before 10).
    numeric = [("10", "x y"), ("2", "z w"), ("10", "v u")]
    assert _open(f"tsv:{_tsv(tmp_path, numeric, 'n.tsv')}").class_names == ["2", "10"]


def test_columns_by_number_and_by_header_name(tmp_path):
    rows = [("loved it", "pos", "x"), ("hated it", "neg", "y"), ("fine", "pos", "z")]
    path = _tsv(tmp_path, rows)
    source = _open(f"tsv:{path}", text_column="1", label_column=2)  # a number as str (CLI) or int (Python)
    assert _texts(source) == [("loved it", "pos"), ("hated it", "neg"), ("fine", "pos")]
    # The text first and no label column named: the label is the column after it.
    assert _texts(_open(f"tsv:{path}", text_column=1)) == _texts(source)
    # CSV with a header, quoted commas and a line break inside a quoted field.
    csv_path = _write(tmp_path / "r.csv", ['id,review,sentiment', '1,"Good, really good",positive',
                                           '2,"Bad.', 'Very bad.",negative', '3,ok,positive'])
    source = _open(f"csv:{csv_path}", text_column="review", label_column="sentiment")
    assert _texts(source) == [("Good, really good", "positive"), ("Bad.\nVery bad.", "negative"),
                              ("ok", "positive")]
    assert list(source.splits["train"].origins) == [f"{csv_path}:2", f"{csv_path}:3", f"{csv_path}:5"]


def test_a_header_row_is_found_without_naming_a_column(tmp_path):
    rated = _open(f"tsv:{_tsv(tmp_path, [('id', 'rating', 'text')] + SENTIMENT)}", label_threshold=0)
    assert len(rated.splits["train"]) == 4 and rated.left_out[0].endswith(":4")
    named = _open(f"tsv:{_tsv(tmp_path, [('label', 'text'), ('a', 'x y'), ('b', 'z w')], 'h.tsv')}")
    assert named.class_names == ["a", "b"] and len(named.splits["train"]) == 2


@pytest.mark.parametrize("settings, param, message", [
    ({"text_column": "review"}, "text_column", r"has no column 'review' \(--text-column\); its columns are "
                                                r"'id', 'rating', 'text'"),
    ({"label_column": "4"}, "label_column", r"has no column 4 \(--label-column\); it has 3 column\(s\)"),
    ({"label_column": "3"}, "label_column", "both column 3"),
    ({"label_threshold": 0.0, "label_column": "3"}, "label_column", "both column 3"),
])
def test_a_column_that_is_not_there_is_a_one_line_setting_error(tmp_path, settings, param, message):
    path = _tsv(tmp_path, [("id", "rating", "text")] + SENTIMENT)
    with pytest.raises(SettingError, match=message) as e:
        _open(f"tsv:{path}", **settings)
    assert e.value.param == param and path in str(e.value) and "\n" not in str(e.value)


def test_a_rating_that_is_not_a_number_names_its_line(tmp_path):
    path = _tsv(tmp_path, SENTIMENT[:3] + [("9", "good", "eh")])
    with pytest.raises(SettingError, match=rf"line 4 of {path}: label column 2 holds 'good', not a number; "
                                           r"--label-threshold") as e:
        _open(f"tsv:{path}", label_threshold=0)
    assert e.value.param == "label_threshold"
    with pytest.raises(SettingError, match="pass --label-threshold") as e:  # many ratings, no threshold
        _open(f"tsv:{_tsv(tmp_path, [(str(i), f'{i / 7:.3f}', f'text {i}') for i in range(30)], 'r.tsv')}")


@pytest.mark.parametrize("content, message", [(b"", "is empty"), (b"\n \r\n\n", "is empty"),
                                              (b"\xff\xfe\tbad\n\xfa\t1\tx\n", "no rows that decode as UTF-8")])
def test_an_empty_or_undecodable_file_is_a_one_line_data_error(tmp_path, content, message):
    path = tmp_path / "e.tsv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as e:
        _open(f"tsv:{path}")
    assert str(path) in str(e.value)
    with pytest.raises(DataError, match=f"no such file {tmp_path / 'none.tsv'}"):
        _open(f"tsv:{tmp_path / 'none.tsv'}")


def test_lines_that_are_not_utf8_are_skipped_and_counted(tmp_path):
    path = tmp_path / "m.tsv"
    path.write_bytes(b"\xef\xbb\xbfpos\tgood \xc3\xa9t\xc3\xa9\nneg\tbad \xe9t\xe9\npos\tnice\nneg\t \nneg\tpoor\n")
    source = _open(f"tsv:{path}")
    assert _texts(source) == [("good été", "pos"), ("nice", "pos"), ("poor", "neg")]  # the BOM is not text
    assert source.skipped == [(f"{path}:2", "not valid UTF-8"), (f"{path}:4", "empty text")]
    report = audit_text(DataConfig(spec=f"tsv:{path}", val_split=0))
    assert report.undecodable == [f"{path}:2"] and report.empty == [f"{path}:4"]
    assert "1 lines or files not UTF-8 skipped" in report.summary()


def _text_folder(root, layout):
    """layout: {relative folder: [texts]}; each text a file."""
    for folder, texts in layout.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i, text in enumerate(texts):
            (root / folder / f"{i}.txt").write_text(text, encoding="utf-8")
    return str(root)


def test_a_folder_of_class_folders_of_txt_files(tmp_path):
    root = _text_folder(tmp_path / "flat", {"neg": ["bad", "awful"], "pos": ["good", "great", "fine"]})
    (tmp_path / "flat" / "pos" / "notes.md").write_text("x")
    (tmp_path / "flat" / "neg" / "2.txt").write_bytes(b"\xff\xfe")
    assert kinds.spec_kind(root) == "text"
    source = _open(root)
    assert source.class_names == ["neg", "pos"] and sorted(_texts(source)) == sorted(
        [("bad", "neg"), ("awful", "neg"), ("good", "pos"), ("great", "pos"), ("fine", "pos")])
    assert sorted(why for _, why in source.skipped) == ["not a .txt file", "not valid UTF-8"]
    split = _text_folder(tmp_path / "split", {"train/a": ["x1", "x2"], "train/b": ["y1", "y2"],
                                              "val/a": ["x3"], "val/b": ["y3"], "test/b": ["y4"]})
    source = _open(split)
    assert set(source.splits) == {"train", "val", "test"} and _texts(source, "test") == [("y4", "b")]
    assert resolve_splits(source, DataConfig(spec=split))["val"] is source.splits["val"]  # nothing held out
    with pytest.raises(DataError, match="class folder\\(s\\) c in .* are not in"):
        _open(_text_folder(tmp_path / "split", {"test/c": ["z"]}))


def test_spec_kinds(tmp_path):
    text_dir = _text_folder(tmp_path / "t", {"a": ["x"], "b": ["y"]})
    image_dir = tmp_path / "i"
    for c in ("a", "b"):
        (image_dir / c).mkdir(parents=True)
        (image_dir / c / "0.png").write_bytes(b"")
        (image_dir / c / "readme.txt").write_text("not a text example")
    expected = {"tsv:x.tsv": "text", "csv:/d/x.csv": "text", "imdb": "text", "tfds:imdb_reviews": "text",
                "tfds:imdb_reviews/plain_text:train[:10%]": "text", "tfds:ag_news_subset": "text",
                "tfds:mnist": "image", "digits": "image", "cifar10": "image", "idx:/x": "image",
                text_dir: "text", str(image_dir): "image", str(tmp_path / "missing"): "image"}
    assert {spec: kinds.spec_kind(spec) for spec in expected} == expected


def test_a_predicate_matcher_plugs_in(monkeypatch):
    monkeypatch.setitem(kinds._SPEC_KINDS, lambda spec: spec.endswith(".wav"), "audio")
    assert kinds.spec_kind("clips/x.wav") == "audio" and kinds.spec_kind("tsv:x.wav") == "text"


def test_the_seeded_hold_out_is_stratified_disjoint_and_repeatable(tmp_path):
    rows = [("pos" if i % 10 < 7 else "neg", f"text number {i}") for i in range(200)]
    spec = f"tsv:{_tsv(tmp_path, rows)}"
    cfg = DataConfig(spec=spec, val_split=0.2, seed=3)
    source = open_text_source(cfg)
    parts = resolve_splits(source, cfg)
    train, val = parts["train"], parts["val"]
    assert np.bincount(val.labels).tolist() == [12, 28]  # 20% of 60 neg and of 140 pos
    assert not set(train.texts) & set(val.texts)
    assert sorted(set(train.texts) | set(val.texts)) == sorted(t for _, t in rows)
    again = resolve_splits(open_text_source(cfg), cfg)["val"]
    assert list(again.origins) == list(val.origins)
    other = resolve_splits(source, DataConfig(spec=spec, val_split=0.2, seed=4))["val"]
    assert list(other.origins) != list(val.origins)


def test_build_gives_string_batches_and_one_hot_labels(tmp_path):
    import tensorflow as tf

    rows = [("pos" if i % 3 else "neg", f"Text, {i}!") for i in range(30)]
    cfg = DataConfig(spec=f"tsv:{_tsv(tmp_path, rows)}", val_split=0.2)
    bundle = kinds.data_kind("text").build(cfg, (), 4, None, splits=("train", "val", "eval", "all"))
    assert bundle.counts == {"train": 24, "val": 6, "eval": 6, "all": 30} and bundle.eval_split == "val"
    assert bundle.class_names == ["neg", "pos"] and bundle.class_counts == [8, 16]
    assert "2 classes" in bundle.description and "held out" in bundle.description
    x, y = next(iter(bundle.train))
    assert x.dtype == tf.string and x.shape == (4,) and y.shape == (4, 2) and y.dtype == tf.float32
    seen = {}
    for x, y in bundle.all:
        for text, onehot in zip(x.numpy(), y.numpy()):
            seen[text.decode()] = bundle.class_names[int(np.argmax(onehot))]
    assert seen == {t: c for c, t in rows}  # every text once, with its own label
    epoch = [t for x, _ in bundle.train for t in x.numpy()]
    assert len(epoch) == 24 and sorted(epoch) != epoch  # shuffled
    # The model's vocabulary: the training split's words only, lower case, punctuation stripped.
    vocabulary = bundle.model_args["vocabulary"]
    # "Text, 7!" -> text , 7 ! (kerascnn.models.tokenize: "," and "!" are tokens of their own)
    trained = {w.strip(",!") for t in epoch for w in t.decode().lower().split()} | {",", "!"}
    assert vocabulary[:3] == ["", "[UNK]", "text"] and set(vocabulary[2:]) == trained
    assert {f"{i}" for i in range(30)} - trained  # held-out numbers are not in it
    with pytest.raises(DataError, match="nothing to evaluate on"):
        kinds.data_kind("text").build(DataConfig(spec=cfg.spec, val_split=0), (), 4, splits=("eval",))


def test_load_inputs_reads_each_non_empty_line(tmp_path):
    a = tmp_path / "a.txt"
    a.write_bytes(b"first line\r\n\n  second line \n\xff bad\nthird")
    folder = _text_folder(tmp_path / "more", {"x": ["from a folder"]})
    texts, origins, skipped = kinds.data_kind("text").load_inputs([str(a), folder, str(tmp_path / "no")], ())
    assert list(texts) == ["first line", "second line", "third", "from a folder"]
    assert origins[:3] == [f"{a}:1", f"{a}:3", f"{a}:5"] and origins[3].endswith("x/0.txt:1")
    assert skipped == [(str(tmp_path / "no"), "no such file or folder"), (f"{a}:4", "not valid UTF-8")]
    with pytest.raises(DataError, match="No text in"):
        load_text_lines([str(tmp_path / "no")])


def test_text_audit_counts_lengths_and_duplicates(tmp_path):
    root = _text_folder(tmp_path / "d", {"train/a": ["one two three", "Same  text", "same text", "x"],
                                         "train/b": ["four five", "leaked text here"],
                                         "val/a": ["six"], "val/b": ["Leaked text here"]})
    report = audit_text(DataConfig(spec=root))
    assert report.counts == {"train": {"a": 4, "b": 2}, "val": {"a": 1, "b": 1}}
    words = [3, 2, 2, 1, 2, 3]
    assert report.lengths["train"] == {"min": 1.0, "median": float(np.median(words)), "max": 3.0}
    assert [len(g) for g in report.duplicates] == [2] and len(report.across_splits) == 1
    assert report.across_splits[0][0].startswith("train:") and report.across_splits[0][1].startswith("val:")
    assert abs(report.imbalance - 2.0) < 1e-9 and report.class_weights == {"a": 0.75, "b": 1.5}
    assert "1 duplicate texts; 1 texts in more than one split" in report.summary()
    assert json.loads(json.dumps(report.to_json()))["imbalance"] == 2.0
    # The kind's audit (fit logs its summary) counts fit's splits: val held out of a single file.
    path = _tsv(tmp_path, [("pos" if i % 2 else "neg", f"t {i}") for i in range(20)])
    fit_view = kinds.data_kind("text").audit(DataConfig(spec=f"tsv:{path}", val_split=0.2), ())
    assert fit_view.counts == {"train": {"neg": 8, "pos": 8}, "val": {"neg": 2, "pos": 2}}
    assert kinds.data_kind("text").audit(DataConfig(spec="imdb"), ()) is None


def test_audit_cli_on_text(tmp_path):
    path = _tsv(tmp_path)
    r = CliRunner().invoke(main, ["audit", f"tsv:{path}", "--label-threshold", "0"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "Text data" in r.output and "Ratings equal to --label-threshold (left out): 1" in r.output
    r = CliRunner().invoke(main, ["audit", f"tsv:{path}", "--text-column", "2", "--label-column", "1", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["counts"]["train"]["1"] == 1
    r = CliRunner().invoke(main, ["audit", f"tsv:{path}", "--label-column", "rating"])
    assert r.exit_code == 2 and "--label-column" in r.output


def test_the_text_settings_are_flags():
    r = CliRunner().invoke(main, ["fit", "--help"])
    assert all(flag in r.output for flag in ("--text-column", "--label-column", "--label-threshold"))


def test_imdb_offline_fails_fast_saying_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr("kerascnn.runtime.network.reachable", lambda *a, **k: False)
    with pytest.raises(DataError, match="imdb.npz and imdb_word_index.json are not in the Keras cache .* "
                                        "unreachable"):
        _open("imdb", data_dir=str(tmp_path))


def test_imdb_from_the_keras_cache_is_decoded_with_its_word_index(tmp_path):
    words = {"the": 1, "film": 2, "was": 3, "good": 4, "bad": 5}
    (tmp_path / "imdb_word_index.json").write_text(json.dumps(words))
    reviews = np.empty(3, object)
    reviews[:] = [[1, 2, 3, 4], [1, 2, 3, 5], [2, 99]]  # 99: beyond the index, dropped
    np.savez(tmp_path / "imdb.npz", x_train=reviews[:2], y_train=np.array([1, 0]), x_test=reviews[2:],
             y_test=np.array([1]))
    source = _open("imdb", data_dir=str(tmp_path))
    assert _texts(source) == [("the film was good", "positive"), ("the film was bad", "negative")]
    assert _texts(source, "test") == [("film", "positive")]


def test_tfds_text_offline_fails_fast_saying_how_to_prepare(tmp_path, monkeypatch):
    pytest.importorskip("tensorflow_datasets")
    monkeypatch.setattr("kerascnn.data.tfds_source.reachable", lambda *a, **k: False)
    with pytest.raises(DataError, match="imdb_reviews is not prepared in .* no network"):
        _open("tfds:imdb_reviews", data_dir=str(tmp_path))


def test_text_data_is_refused_for_an_image_model(tmp_path):
    path = _tsv(tmp_path)
    with pytest.raises(SettingError, match="lenet5 takes image inputs, but --data tsv:.* gives text inputs"):
        kerascnn.fit("lenet5", data=f"tsv:{path}", epochs=1, out=str(tmp_path / "run"), verbose=0)
    assert not (tmp_path / "run").exists()


def test_a_missing_table_file_is_a_setting_error_before_any_run_folder(tmp_path):
    """The text kind's check_spec runs with the settings checks: no run folder is made for nothing."""
    import kerascnn
    from kerascnn.errors import SettingError

    with pytest.raises(SettingError, match="no such file") as e:
        kerascnn.fit("kim_cnn", data=f"tsv:{tmp_path / 'missing.tsv'}", out=str(tmp_path / "run"), verbose=0)
    assert e.value.param == "data" and not (tmp_path / "run").exists()
