"""bench/fashion_folders.py writes seeded, disjoint class folders from IDX files (a tiny fake set here)."""
import gzip
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "fashion_folders.py"
spec = importlib.util.spec_from_file_location("fashion_folders_under_test", SCRIPT)
ff = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ff)


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX by hand: two zero bytes, type 0x08 (uint8), ndim, big-endian uint32 dims, the data."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    data = header + array.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)


@pytest.fixture
def idx_dir(tmp_path):
    """12 training and 5 test images of each of the 10 labels; pixel (0, 0) is the image's index."""
    d = tmp_path / "idx"
    d.mkdir()
    for prefix, per_label in (("train", 12), ("t10k", 5)):
        labels = np.tile(np.arange(10), per_label)
        images = np.zeros((len(labels), 28, 28), np.uint8)
        images[:, 0, 0] = np.arange(len(labels)) % 256
        images[:, 5:20, 10] = 200  # something to look at
        write_idx(d / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(d / f"{prefix}-labels-idx1-ubyte", labels)  # uncompressed: both kinds are read
    return d


def layout(root: Path):
    return {split.name: {c.name: sorted(int(f.stem) for f in c.iterdir()) for c in split.iterdir()}
            for split in root.iterdir()}


def test_layout_counts_and_disjoint_train_val(idx_dir, tmp_path, capsys):
    out = tmp_path / "out"
    written = ff.main(["--idx", str(idx_dir), "--classes", "0,8-9", "--per-class", "4", "--val-per-class", "3",
                       "--test-per-class", "all", "--out", str(out)])
    names = ["T-shirt_top", "Bag", "Ankle_boot"]
    assert written == {"train": dict.fromkeys(names, 4), "val": dict.fromkeys(names, 3), "test": dict.fromkeys(names, 5)}
    found = layout(out)
    assert set(found) == {"train", "val", "test"} and all(set(found[s]) == set(names) for s in found)
    for label, name in zip((0, 8, 9), names):
        assert not set(found["train"][name]) & set(found["val"][name])
        assert all(i % 10 == label for s in found for i in found[s][name])  # labels are index % 10
    png = out / "train" / "Bag" / f"{found['train']['Bag'][0]}.png"
    with Image.open(png) as im:
        assert (im.mode, im.size) == ("L", (28, 28))
        assert np.asarray(im)[0, 0] == found["train"]["Bag"][0] % 256 and np.asarray(im)[10, 10] == 200
    assert "train: 12 images (T-shirt_top 4, Bag 4, Ankle_boot 4)" in capsys.readouterr().out


def test_defaults_take_every_training_image_and_write_no_val_or_test(idx_dir, tmp_path):
    assert ff.main(["--idx", str(idx_dir), "--classes", "0-4", "--out", str(tmp_path / "o")]) == {
        "train": {"T-shirt_top": 12, "Trouser": 12, "Pullover": 12, "Dress": 12, "Coat": 12}}
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["train"]


def test_same_seed_same_images_other_seed_others(idx_dir, tmp_path):
    def run(name, seed, classes="5-9"):
        ff.main(["--idx", str(idx_dir), "--classes", classes, "--per-class", "3", "--val-per-class", "2",
                 "--test-per-class", "2", "--seed", str(seed), "--out", str(tmp_path / name)])
        return layout(tmp_path / name)

    first = run("a", 1)
    assert run("b", 1) == first
    assert run("c", 2) != first
    assert run("d", 1, "7")["train"]["Sneaker"] == first["train"]["Sneaker"]  # a class's draw ignores the others


def test_refuses_a_non_empty_out_unless_forced(idx_dir, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "train").mkdir()
    (out / "train" / "stale.png").write_bytes(b"")
    with pytest.raises(SystemExit) as e:
        ff.main(["--idx", str(idx_dir), "--classes", "1", "--out", str(out)])
    assert e.value.code == 1 and "not empty; pass --force" in capsys.readouterr().err
    ff.main(["--idx", str(idx_dir), "--classes", "1", "--per-class", "2", "--out", str(out), "--force"])
    found = layout(out)  # stale.png went with the old train/
    assert list(found) == ["train"] and list(found["train"]) == ["Trouser"] and len(found["train"]["Trouser"]) == 2


@pytest.mark.parametrize("args, message", [
    (["--classes", "3-12"], "labels run from 0 to 9"),
    (["--classes", "shoes"], "not a label list"),
    (["--per-class", "-1"], "expected a number"),
    (["--val-per-class", "all"], "'all' would leave no training images"),
])
def test_bad_arguments_are_usage_errors(idx_dir, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as e:
        ff.main(["--idx", str(idx_dir), "--out", str(tmp_path / "o"), *args])
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_asking_for_more_images_than_a_class_has_is_one_line(idx_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        ff.main(["--idx", str(idx_dir), "--classes", "2", "--per-class", "10", "--val-per-class", "3",
                 "--out", str(tmp_path / "o")])
    assert e.value.code == 1
    assert "has 12 images of class 2 (Pullover); 13 were asked for" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing written before the plan is known to work
