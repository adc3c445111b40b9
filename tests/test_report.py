"""kerascnn.analysis.report: the run's report.html (written at the end of every fit, and by `kerascnn report`).

The page must parse, embed every image as a data: URI (nothing to fetch: it opens offline and can be
mailed alone), and its per-class figures must be scikit-learn's on the same predictions.
"""
import dataclasses
import json
import logging
from html.parser import HTMLParser

import numpy as np
import pytest
from click.testing import CliRunner

from kerascnn.cli import main
from kerascnn.config import TrainConfig, override
from kerascnn.errors import UserError
from kerascnn.analysis.report import write_run_report, write_report
from kerascnn.api import train as fit  # the harness with the report step

TINY = dict(model="lenet5", epochs=1, batch_size=64, **{"data.spec": "digits", "data.val_split": 0.2})


class _Page(HTMLParser):
    """Collects every src/href, the section ids and the table cells."""

    def __init__(self):
        super().__init__()
        self.links, self.ids, self.cells, self._cell = [], [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.links += [(tag, k, v) for k, v in attrs.items() if k in ("src", "href")]
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "td":
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.cells.append(self._cell)
            self._cell = None


def _parse(path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One epoch of LeNet-5 on the digits: the report is written at the end of fit."""
    out = tmp_path_factory.mktemp("fit") / "run"
    return fit(override(TrainConfig(), out=str(out), **TINY), verbose=0)


def test_fit_writes_a_self_contained_report(run):
    report = run.run_dir / "report.html"
    assert report.is_file()
    page = _parse(report)
    assert page.ids == ["settings", "training", "validation", "top-losses", "grad-cam"]
    srcs = [v for tag, k, v in page.links if k == "src"]
    assert len(srcs) >= 1 + 8  # curves, Grad-CAM on 8 images (and the top losses, if any)
    assert all(v.startswith("data:image/png;base64,") for v in srcs)
    assert all(v.startswith("#") for tag, k, v in page.links if k == "href"), "no external links"
    text = report.read_text(encoding="utf-8")
    assert "<link" not in text and "<script" not in text and "url(" not in text
    assert 'name="viewport"' in text and "@media" in text  # reads on a phone
    assert "conv2" in text  # the Grad-CAM layer: LeNet-5's registry "cam" layer


def test_report_figures_match_scikit_learn(run, tmp_path):
    """Per-class precision / recall / F1 on a batch we choose, against sklearn on the same predictions."""
    from sklearn.metrics import precision_recall_fscore_support

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (40, 32, 32, 1)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[np.arange(40) % 10]
    out = write_report(run.run_dir, model=run.model, dataset=[(x[:25], y[:25]), (x[25:], y[25:])],
                       out=tmp_path / "r.html", cam_images=2, top_losses=3)
    pred = np.argmax(np.asarray(run.model(x, training=False)), -1)
    p, r, f, s = precision_recall_fscore_support(np.arange(40) % 10, pred, labels=list(range(10)), zero_division=0)
    cells = _parse(out).cells
    for i in range(10):
        row = [f"{p[i]:.3f}", f"{r[i]:.3f}", f"{f[i]:.3f}", str(int(s[i]))]
        assert any(cells[j:j + 5] == [str(i), *row] for j in range(len(cells))), (i, row)
    assert "40 validation images" in out.read_text()


def test_cli_report_and_failures(run, tmp_path, caplog):
    r = CliRunner().invoke(main, ["report", str(run.run_dir), "--out", str(tmp_path / "again.html"),
                                  "--cam-images", "0", "--top-losses", "0"])
    assert r.exit_code == 0, r.output
    page = _parse(tmp_path / "again.html")
    assert "grad-cam" not in page.ids and "validation" in page.ids
    r = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert r.exit_code == 1 and "not a kerascnn run folder" in r.output
    with pytest.raises(UserError):
        write_report(tmp_path)
    # A run from before settings.json: its config.json's values, without sources.
    old = tmp_path / "old"
    old.mkdir()
    for name in ("config.json", "history.csv", "classes.json"):
        (old / name).write_bytes((run.run_dir / name).read_bytes())
    x = np.zeros((2, 32, 32, 1), np.float32)
    out = write_report(old, model=run.model, dataset=[(x, np.eye(10, dtype=np.float32)[:2])], cam_images=1)
    assert "predates settings.json" in out.read_text() and "grad-cam" in _parse(out).ids
    # In fit, a failing report is a warning, never a failed run.
    (tmp_path / "settings.json").write_text(json.dumps({"command": "fit", "settings": {}, "sources": {}}))
    with caplog.at_level(logging.WARNING, logger="kerascnn"):
        broken = dataclasses.replace(run, run_dir=tmp_path, val=[("not", "images")], class_names=["0"])
        assert write_run_report(broken) is None
    assert "report.html not written" in caplog.text
