"""`kerascnn summary` through click's CliRunner: every format, the blocks, --out, and the errors."""
import csv
import io
import json

import pytest
from click.testing import CliRunner

from kerascnn.cli import main

LENET = ["summary", "--model", "lenet5", "--num-classes", "10"]


def run(args):
    return CliRunner().invoke(main, args)


def test_table():
    r = run(LENET)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("lenet5 (input 32x32x1)")
    assert "Total params: 61,706" in r.stdout and "Total multiply-adds: 416,520" in r.stdout


def test_json_parses_and_totals_match_the_rows():
    r = run(LENET + ["--format", "json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["totals"]["params"] == sum(row["params"] for row in data["rows"]) == 61_706
    assert data["totals"]["macs"] == sum(row["macs"] for row in data["rows"]) == 416_520


def test_csv_and_markdown():
    r = run(LENET + ["--format", "csv", "--input-shape", "28,28,1"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert rows[0]["output_shape"] == "28x28x1" and rows[2]["output_shape"] == "24x24x6"
    r = run(LENET + ["--format", "markdown"])
    assert r.exit_code == 0 and "| Layer | Type | Output | Params | MACs | RF | Jump |" in r.stdout


def test_blocks_and_out_file(tmp_path):
    out = tmp_path / "reduced.json"
    r = run(["summary", "--block", "inception-reduced", "--format", "json", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert r.stdout == ""
    data = json.loads(out.read_text())
    assert data["totals"]["macs"] == 271_351_808 and len(data["groups"]) == 4
    r = run(["summary", "--block", "inception-naive"])
    assert r.exit_code == 0 and "854,196,224 (854 M)" in r.stdout and "Branch" in r.stdout


@pytest.mark.parametrize("args, flag", [
    (["--model", "lenet5", "--input-shape", "32,32"], "--input-shape"),
    (["--model", "lenet5", "--input-shape", "a,b,c"], "--input-shape"),
    (["--model", "lenet5", "--format", "xml"], "--format"),
    (["--model", "lenet5", "--num-classes", "0"], "--num-classes"),
    (["--block", "inception-v9"], "--block"),
    (["--model", "lenet5", "--block", "inception-naive"], "exactly one"),
    ([], "exactly one"),
    (["--block", "inception-naive", "--input-shape", "32,32,3"], "--model only"),
])
def test_bad_flags_exit_2(args, flag):
    r = run(["summary", *args])
    assert r.exit_code == 2, r.output
    assert flag in r.output


def test_unknown_model_is_one_line():
    r = run(["summary", "--model", "lenet7"])
    assert r.exit_code == 2  # a bad value of a flag: a usage error
    assert len([line for line in r.output.splitlines() if line.startswith("Error")]) == 1
    assert "Traceback" not in r.output and "'--model'" in r.output
    assert "Unknown model 'lenet7'" in r.output and "lenet5" in r.output
