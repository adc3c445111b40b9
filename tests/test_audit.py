"""`kerascnn audit`: a folder built here with known problems, and what the audit reports about it."""
import json
import os

import numpy as np
from click.testing import CliRunner

import data_helpers as h
from kerascnn.cli import main
from kerascnn.data.audit import audit_folder


def _folder(root):
    """train/ and val/ of classes a (6 images) and b (2): one image copied within a/ as BMP (the same
    pixels in another format), one train image also in val/, a corrupt file and a tiny image."""
    train, val = os.path.join(root, "train"), os.path.join(root, "val")
    for i in range(6):
        h.save(os.path.join(train, "a", f"a{i}.png"), h.pattern(40, 40, seed=i))
    for i in range(2):
        h.save(os.path.join(train, "b", f"b{i}.png"), h.pattern(40, 40, seed=10 + i))
        h.save(os.path.join(val, "b", f"vb{i}.png"), h.pattern(40, 40, seed=20 + i))
    h.save(os.path.join(val, "a", "va0.png"), h.pattern(40, 40, seed=30))
    h.save(os.path.join(train, "a", "copy_of_a0.bmp"), h.pattern(40, 40, seed=0), fmt="BMP")
    h.save(os.path.join(val, "a", "leaked_a1.png"), h.pattern(40, 40, seed=1))
    h.save(os.path.join(train, "b", "tiny.png"), h.pattern(8, 8, seed=40))
    with open(os.path.join(train, "a", "broken.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


def test_audit_finds_duplicates_leaks_corrupt_and_small_images_and_the_class_weights(tmp_path):
    root = _folder(str(tmp_path / "photos"))
    r = audit_folder(root, (32, 32, 3))
    assert r.classes == ["a", "b"]
    assert r.counts == {"train": {"a": 7, "b": 3}, "val": {"a": 2, "b": 2}}
    assert [os.path.basename(f) for f, _ in r.skipped] == ["broken.jpg"]
    assert [sorted(os.path.basename(p) for p in g) for g in r.duplicates] == [["a0.png", "copy_of_a0.bmp"]]
    assert [sorted(p.split(":")[0] + ":" + os.path.basename(p) for p in g) for g in r.across_splits] == \
        [["train:a1.png", "val:leaked_a1.png"]]
    assert [(os.path.basename(f), hh, ww) for f, hh, ww in r.small] == [("tiny.png", 8, 8)]
    # scikit-learn's "balanced": n / (classes * n_c) = 10 / (2 * 7) and 10 / (2 * 3)
    assert r.class_weights == {"a": round(10 / 14, 4), "b": round(10 / 6, 4)}
    assert abs(r.imbalance - 7 / 3) < 1e-9
    text = r.format()
    assert "copy_of_a0.bmp" in text and "leaked_a1.png" in text and "tiny.png (8x8)" in text
    assert "2.33x" in text


def test_audit_cli_table_and_json(tmp_path):
    root = _folder(str(tmp_path / "photos"))
    r = CliRunner().invoke(main, ["audit", root, "--input-shape", "32,32,3"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "Duplicate images within a split: 1 group(s)" in r.output
    r = CliRunner().invoke(main, ["audit", root, "--model", "lenet5", "--json"], catch_exceptions=False)
    data = json.loads(r.output)
    assert data["input_shape"] == [32, 32, 1] and len(data["across_splits"]) == 1
    r = CliRunner().invoke(main, ["audit", root, "--model", "lenet"])
    assert r.exit_code == 2 and "lenet5" in r.output
    r = CliRunner().invoke(main, ["audit", str(tmp_path / "nope")])
    assert r.exit_code == 2


def test_without_the_duplicate_search_nothing_is_decoded(tmp_path, monkeypatch):
    import kerascnn.data.audit as audit

    root = _folder(str(tmp_path / "photos"))
    monkeypatch.setattr(audit, "pixel_hash", lambda p: (_ for _ in ()).throw(AssertionError("decoded")))
    r = audit.audit_folder(root, (32, 32, 3), duplicates=False)
    assert r.duplicates == [] and r.across_splits == [] and len(r.small) == 1
    assert r.summary().startswith(f"audit {root}: 2 classes; 10 train / 4 val; imbalance 2.3x; 1 unusable")
    assert np.isclose(r.imbalance, 7 / 3)


def test_fit_logs_the_audit_summary_for_folders_only(tmp_path, caplog):
    import logging

    from kerascnn.config import TrainConfig, override
    from kerascnn.data.kinds import IMAGE
    from kerascnn.training.loop import _log_audit

    root = _folder(str(tmp_path / "photos"))
    with caplog.at_level(logging.INFO, logger="kerascnn"):
        _log_audit(override(TrainConfig(), data=None, **{"data.spec": root}), IMAGE, (32, 32, 3))
        _log_audit(TrainConfig(), IMAGE, (32, 32, 1))  # digits: no folder, no audit
    lines = [r.getMessage() for r in caplog.records if "audit" in r.getMessage()]
    assert len(lines) == 1 and "imbalance 2.3x" in lines[0] and f"kerascnn audit {root}" in lines[0]


def _photos_and_a_thumbnail(root):
    """34 photos of 96 px (two classes) and one 6x6 thumbnail whose name sorts last."""
    for i in range(34):
        h.save(os.path.join(root, "ab"[i % 2], f"p{i:02d}.png"), h.pattern(96, 96 - i % 3, seed=i))
    h.save(os.path.join(root, "b", "zz_thumb.png"), h.pattern(6, 6, seed=99))
    return root


def test_the_smallest_images_come_first_with_their_sizes(tmp_path):
    root = _photos_and_a_thumbnail(str(tmp_path / "photos"))
    r = audit_folder(root, (224, 224, 3), duplicates=False)
    assert len(r.small) == 35  # every image is under half of 224
    areas = [hh * ww for _, hh, ww in r.small]
    assert (os.path.basename(r.small[0][0]), r.small[0][1:]) == ("zz_thumb.png", (6, 6))
    assert areas == sorted(areas)
    shown = r.format().split("Images with a side under half the 224x224 input: 35\n")[1].splitlines()[:6]
    assert shown[0].endswith("zz_thumb.png (6x6)") and shown[-1] == "  ... and 30 more"


def test_a_thumbnail_among_photos_is_flagged_without_the_input_size(tmp_path):
    root = _photos_and_a_thumbnail(str(tmp_path / "photos"))
    for shape in (None, (32, 32, 3)):  # unknown, or an input the photos are all big enough for
        r = audit_folder(root, shape, duplicates=False)
        assert r.median_size == (96, int(np.median([96 - i % 3 for i in range(34)] + [6])))
        assert [(os.path.basename(f), hh, ww) for f, hh, ww in r.atypical] == [("zz_thumb.png", 6, 6)]
        assert [os.path.basename(f) for f, *_ in r.small] == ([] if shape is None else ["zz_thumb.png"])
        assert "1 images under a quarter of the median 96x95" in r.summary()
        assert "zz_thumb.png (6x6)" in r.format()
    assert "not checked (no input size given)" in audit_folder(root, None, duplicates=False).format()
    assert json.loads(json.dumps(r.to_json()))["atypical"][0][1:] == [6, 6]


def test_fits_audit_line_counts_the_splits_fit_trains_and_validates_on(tmp_path, caplog):
    import logging

    from kerascnn.config import TrainConfig, override
    from kerascnn.data.build import build_datasets
    from kerascnn.data.kinds import IMAGE
    from kerascnn.training.loop import _log_audit

    root = str(tmp_path / "photos")  # class folders only: fit holds val_split of them out
    for i in range(12):
        h.save(os.path.join(root, "ab"[i % 3 == 0], f"{i:02d}.png"), h.pattern(40, 40, seed=i))
    cfg = override(TrainConfig(), data=None, **{"data.spec": root, "data.val_split": 0.25})
    trained = build_datasets(cfg.data, (32, 32, 3), 4).counts  # what fit builds
    assert trained["train"] + trained["val"] == 12 and trained["val"] > 0
    with caplog.at_level(logging.INFO, logger="kerascnn"):
        _log_audit(cfg, IMAGE, (32, 32, 3))
    [line] = [r.getMessage() for r in caplog.records if "audit" in r.getMessage()]
    assert f"{trained['train']} train / {trained['val']} val (val: 25% of the images held out)" in line, line
