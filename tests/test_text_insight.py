"""Seeing inside a text model (issue 22 item 5): the n-grams that excite kim_cnn's strongest filters
(kerascnn.analysis.ngrams, `kerascnn visualize ngrams`) against a numpy convolution of the same word
vectors and kernels, a hand-planted filter, and the text sections of a run's report.html."""
import json
import re
import shutil
from html.parser import HTMLParser

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from kerascnn.analysis.ngrams import PAD, filter_ngrams, ngram_rows
from kerascnn.analysis.report import write_report
from kerascnn.cli import main
from kerascnn.config import TrainConfig, override
from kerascnn.models import create_model

VOCAB = ["the", "movie", "was", "superb", "dull", "plot", "a", "fine", "cold", "story", "and", "it"]
TEXTS = ["the movie was superb", "a dull plot and a cold story", "it was fine", "superb",
         "the plot was dull and the movie was cold and long", "a zebra story", "", "fine fine fine superb story"]
SMALL = dict(vocabulary=VOCAB, variant="rand", embedding_dim=8, filters=4, sequence_length=8)


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    return create_model("kim_cnn", **SMALL)


def _reference(model, texts):
    """Every filter's (strength, layer, index, {n-gram: largest activation}) by numpy from the word
    vectors and the kernels: act[t] = relu(sum_k,d E[t+k, d] K[k, d, f] + b[f]) over windows starting
    inside the sentence; strength = mean over sentences of the max over all positions x ||logits row||."""
    ids = np.asarray(model.get_layer("vectorize")(tf.constant(texts)))
    vectors = np.asarray(keras.Model(model.input, model.get_layer("embedding").output)(tf.constant(texts)), "float64")
    vocab = model.get_layer("vectorize").get_vocabulary()
    logits = model.get_layer("logits").get_weights()[0].astype("float64")
    out, row = [], 0
    for name in ("conv3", "conv4", "conv5"):  # kim_cnn concatenates the pooled maps in this order
        kernel, bias = (w.astype("float64") for w in model.get_layer(name).get_weights())
        width, steps = kernel.shape[0], ids.shape[1] - kernel.shape[0] + 1
        for f in range(kernel.shape[2]):
            best, pooled = {}, []
            for n in range(len(texts)):
                acts = [max(0.0, float(np.sum(vectors[n, t:t + width] * kernel[:, :, f]) + bias[f]))
                        for t in range(steps)]
                pooled.append(max(acts))
                for t in range(min(int(np.count_nonzero(ids[n])), steps)):
                    words = tuple(vocab[i] if i else PAD for i in ids[n, t:t + width])
                    best[words] = max(best.get(words, -1.0), acts[t])
            out.append((np.mean(pooled) * np.linalg.norm(logits[row + f]), name, f, best))
        row += kernel.shape[2]
    return sorted(out, key=lambda r: -r[0])


def test_ngrams_match_a_numpy_convolution_of_the_word_vectors():
    model = _model()
    found = filter_ngrams(model, TEXTS, filters=12, top=3)
    reference = _reference(model, TEXTS)
    assert [(f.layer, f.index) for f in found] == [(r[1], r[2]) for r in reference]
    for f, (strength, _, _, best) in zip(found, reference):
        assert f.strength == pytest.approx(strength, rel=1e-4, abs=1e-6)
        expected = sorted(best.items(), key=lambda kv: -kv[1])[:3]
        assert [g.words for g in f.ngrams] == [w for w, _ in expected], (f.layer, f.index)
        np.testing.assert_allclose([g.activation for g in f.ngrams], [a for _, a in expected], rtol=1e-4, atol=1e-5)
        assert all(len(g.words) == f.width for g in f.ngrams)
        for g in f.ngrams:  # the example named holds the n-gram (up to padding and unknown words)
            seen = [w for w in g.words if w not in (PAD, "[UNK]")]
            assert " ".join(seen) in TEXTS[g.example]
    # 4 + 4 + 4 filters; asking for more lists each once
    assert len(filter_ngrams(model, TEXTS, filters=50, top=1)) == 12


def test_a_planted_filter_finds_the_ngrams_ending_in_its_word():
    """conv3 filter 2 responds to "superb" in its last position only, every other filter is off, and
    its logits row favours class 1 while every other row favours class 0."""
    model = _model(1)
    vocab = model.get_layer("vectorize").get_vocabulary()
    table = model.get_layer("embedding").get_weights()[0]
    table[:, 0] = 0.0
    table[vocab.index("superb"), 0] = 1.0  # only "superb" has a first component
    model.get_layer("embedding").set_weights([table])
    for name in ("conv3", "conv4", "conv5"):
        kernel, bias = model.get_layer(name).get_weights()
        kernel[:] = 0.0
        bias[:] = 0.0
        if name == "conv3":
            kernel[2, 0, 2] = 5.0
        model.get_layer(name).set_weights([kernel, bias])
    weights, b = model.get_layer("logits").get_weights()
    weights[:] = [1.0, 0.0]
    weights[2] = [0.0, 1.0]  # conv3's 4 filters come first in "features", then conv4's and conv5's
    model.get_layer("logits").set_weights([weights, b])

    texts = TEXTS + ["it was a superb plot", "superb and superb", "the story was superb and fine"]
    found = filter_ngrams(model, texts, filters=3, top=4)
    top = found[0]
    assert (top.layer, top.index, top.width, top.favours) == ("conv3", 2, 3, 1)
    assert top.strength > 0 and all(f.strength == 0 for f in found[1:])
    assert len(top.ngrams) == 4
    assert all(g.words[-1] == "superb" and g.activation == pytest.approx(5.0) for g in top.ngrams)
    assert {g.words for g in top.ngrams} <= {("movie", "was", "superb"), ("was", "a", "superb"),
                                             ("story", "was", "superb"), ("fine", "fine", "superb"),
                                             ("superb", "and", "superb")}


def test_one_word_sentences_and_padding_are_marked():
    found = filter_ngrams(_model(), ["superb", "", "it was"], filters=12, top=5)
    for f in found:
        # "" has no window; "superb" and "it was" one each per start inside the sentence
        assert {g.example for g in f.ngrams} <= {0, 2}
        assert all(g.words[-1] == PAD for g in f.ngrams)
        assert len(f.ngrams) == 3  # superb ...; it was ...; was ...


# ------------------------------------------------------------------------------------------------
# The run: `kerascnn fit` on a TSV this test writes, its report and `visualize ngrams`


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    from kerascnn.api import train

    tmp = tmp_path_factory.mktemp("insight")
    lines = [f"{i}\t{1.5 if i % 2 else -1.5}\t{'a fine warm film' if i % 2 else 'a dull cold mess'} {i}"
             for i in range(60)]
    (tmp / "rated.tsv").write_text("\n".join(lines) + "\n")
    cfg = override(TrainConfig(), model="kim_cnn", epochs=2, batch_size=16, precision="float32",
                   schedule="constant", steps_per_execution=1, out=str(tmp / "run"), optimizer="adam", lr=0.01,
                   model_args={"sequence_length": 8, "filters": 4, "embedding_dim": 8},
                   **{"data.spec": f"tsv:{tmp / 'rated.tsv'}", "data.label_threshold": 0.0, "data.val_split": 0.2})
    return train(cfg, verbose=0)


class _Sections(HTMLParser):
    """Section ids, and per section its h3 headings, token-snippet captions and table cells."""

    def __init__(self):
        super().__init__()
        self.ids, self.parts, self._tag, self._cls = [], {}, None, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.ids.append(attrs["id"])
            self.parts[attrs["id"]] = {"h3": [], "captions": [], "cells": [], "snippets": []}
        self._tag = tag
        if tag == "div" and attrs.get("class") == "kerascnn-tokens" and self.ids:
            self.parts[self.ids[-1]]["snippets"].append([])
        self._style = attrs.get("style", "")

    def handle_data(self, data):
        if not self.ids:
            return
        part = self.parts[self.ids[-1]]
        if self._tag == "h3":
            part["h3"].append(data)
        elif self._tag == "div" and "13px" in self._style:
            part["captions"].append(data)
        elif self._tag == "td":
            part["cells"].append(data)
        elif self._tag == "span" and part["snippets"]:
            part["snippets"][-1].append(data)

    def handle_endtag(self, tag):
        self._tag = None


def _sections(path) -> _Sections:
    page = _Sections()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def test_fit_report_has_the_sentences_and_the_ngrams(text_run):
    page = _sections(text_run.run_dir / "report.html")
    assert page.ids == ["settings", "training", "validation", "sentences", "filter-n-grams"]
    heads = page.parts["sentences"]["h3"]
    assert [h.split(" (")[0] for h in heads] == ["Right", "Wrong"]
    assert "12 validation texts" in (text_run.run_dir / "report.html").read_text()
    assert page.parts["filter-n-grams"]["cells"], "a table of filters"


def test_report_sentences_are_the_most_confident_right_and_wrong_escaped(text_run, tmp_path):
    model = text_run.model
    texts = ["a fine warm film", "a dull cold mess", "fine warm", "dull cold", "a film", "a mess", "warm film 3",
             "cold mess 4", "fine", "dull", "a", "film mess"]
    probs = np.asarray(model(tf.constant(texts), training=False), "float64")
    pred = probs.argmax(-1)
    labels = np.array([1, 0, 1, 0, 1, 0, 0, 1, 0, 1, 1, 0])  # some of them wrong on purpose
    right, wrong = np.flatnonzero(pred == labels), np.flatnonzero(pred != labels)
    assert len(right) and len(wrong)
    names = ["neg <b>&", "pos"]
    data = [(tf.constant(texts[:5]), np.eye(2)[labels[:5]]), (tf.constant(texts[5:]), np.eye(2)[labels[5:]])]
    out = write_report(text_run.run_dir, model=model, dataset=data, class_names=names, out=tmp_path / "r.html",
                       sentences=3, ngram_filters=5)
    raw = out.read_text(encoding="utf-8")
    assert "neg <b>&" not in raw and "neg &lt;b&gt;&amp;" in raw
    part = _sections(out).parts["sentences"]
    assert part["h3"] == [f"Right ({len(right)})", f"Wrong ({len(wrong)})"]

    def expected(chosen):
        conf = probs[chosen, pred[chosen]]
        return [chosen[i] for i in np.argsort(-conf, kind="stable")][:3]

    shown = expected(right) + expected(wrong)
    assert [" ".join(s) for s in part["snippets"]] == [texts[i] for i in shown]
    assert part["captions"] == [f"true {names[labels[i]]}, predicted {names[pred[i]]} (p = {probs[i, pred[i]]:.3f})"
                                for i in shown]
    cells = _sections(out).parts["filter-n-grams"]["cells"]
    rows = ngram_rows(filter_ngrams(model, texts, filters=5, top=5), names)
    assert cells == [c for name, width, favours, strength, grams in rows
                     for c in (name, grams, favours, strength, width)]


def test_an_image_run_report_has_no_text_sections(text_run, tmp_path):
    run = tmp_path / "image_run"
    shutil.copytree(text_run.run_dir, run, ignore=shutil.ignore_patterns("*.keras", "report.html"))
    config = json.loads((run / "config.json").read_text())
    config["model"] = "lenet5"
    (run / "config.json").write_text(json.dumps(config))
    (run / "classes.json").write_text(json.dumps([str(i) for i in range(10)]))
    x = np.random.default_rng(0).uniform(0, 255, (6, 32, 32, 1)).astype("float32")
    out = write_report(run, model=create_model("lenet5"), dataset=[(x, np.eye(10)[:6])], cam_images=2,
                       out=tmp_path / "image.html")
    ids = _sections(out).ids
    assert "sentences" not in ids and "filter-n-grams" not in ids
    assert ids[:3] == ["settings", "training", "validation"] and "grad-cam" in ids


def _split_texts(text_run):
    from kerascnn.data.kinds import data_kind
    from kerascnn.runtime import run_dir as rd

    cfg = rd.read_config(text_run.run_dir)
    val = data_kind("text").build(cfg.data, None, 64, splits=("val",)).val
    return [t.decode() for x, _ in val for t in np.asarray(x).tolist()]


def test_cli_ngrams_table_json_and_errors(text_run, tmp_path):
    model = str(text_run.run_dir / "model.keras")
    runner = CliRunner()
    r = runner.invoke(main, ["visualize", "ngrams", model, "--filters", "3", "--top", "2", "--json",
                             "--out", str(tmp_path / "j")])
    assert r.exit_code == 0, r.output
    record = json.loads(r.output)
    texts = _split_texts(text_run)
    assert record["split"] == "val" and record["sentences"] == len(texts) == 12
    found = filter_ngrams(text_run.model, texts, filters=3, top=2)
    assert [(f["layer"], f["filter"], [g["words"] for g in f["ngrams"]]) for f in record["filters"]] == \
        [(f.layer, f.index, [list(g.words) for g in f.ngrams]) for f in found]
    assert record["filters"][0]["favours"] in ("negative", "positive")
    assert json.loads((tmp_path / "j" / "ngrams.json").read_text()) == record

    r = runner.invoke(main, ["visualize", "ngrams", model, "--filters", "2", "--split", "train",
                             "--out", str(tmp_path / "t")])
    assert r.exit_code == 0, r.output
    assert re.search(r"^48 sentences of tsv:.* \(train split\); the 2 strongest filters:$", r.output, re.M)
    assert len(re.findall(r"^conv\d #\d+ +width \d", r.output, re.M)) == 2

    r = runner.invoke(main, ["visualize", "ngrams", model, "--split", "test"])
    assert r.exit_code != 0 and "has no test split" in r.output and "Traceback" not in r.output
    r = runner.invoke(main, ["visualize", "ngrams", "lenet5", "--data", "digits"])
    assert r.exit_code != 0 and "takes image inputs" in r.output and "Traceback" not in r.output
    r = runner.invoke(main, ["visualize", "ngrams", "kim_cnn"])
    assert r.exit_code != 0 and "pass --data" in r.output
    r = runner.invoke(main, ["report", str(text_run.run_dir), "--out", str(tmp_path / "r.html"),
                             "--sentences", "0", "--ngram-filters", "0"])
    assert r.exit_code == 0, r.output
    assert _sections(tmp_path / "r.html").ids == ["settings", "training", "validation"]
