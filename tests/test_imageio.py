"""kerascnn.data.imageio: loading odd files as PIL shows them, refusing bad ones, atomic saving, ImageNet names."""
import os

import numpy as np
import pytest
from PIL import Image, ImageOps

from data_helpers import bomb_png, corrupt_middle, pattern, save, truncate
from kerascnn.errors import UnknownNameError, UserError
from kerascnn.data.imageio import (decode_predictions, imagenet_class_index, imagenet_class_name, imagenet_classes,
                              load_image, resize_longest, save_image)


def _with_orientation(path: str, image: np.ndarray, orientation: int, **kwargs) -> str:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(image).save(path, exif=exif.tobytes(), **kwargs)
    return path


def _pil_view(path: str) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(ImageOps.exif_transpose(img).convert("RGB"), np.float32)


def test_exif_orientation_applied_as_pil_does(tmp_path):
    img = pattern(30, 40)  # asymmetric: a wrong flip or turn would not match
    for orientation in range(1, 9):  # PNG: lossless, so exactly PIL's pixels
        path = _with_orientation(str(tmp_path / f"o{orientation}.png"), img, orientation)
        loaded = load_image(path)
        assert loaded.shape == ((40, 30, 3) if orientation >= 5 else (30, 40, 3)), orientation
        np.testing.assert_array_equal(loaded, _pil_view(path), err_msg=f"orientation {orientation}")
    path = _with_orientation(str(tmp_path / "phone.jpg"), img, 6, quality=95)  # a phone photo held upright
    loaded = load_image(path)
    assert loaded.shape == (40, 30, 3) and loaded.dtype == np.float32
    # TF's and PIL's JPEG decoders upsample chroma differently: close, not equal.
    assert np.abs(loaded - _pil_view(path)).mean() < 3


def test_alpha_16bit_and_cmyk(tmp_path):
    img = pattern(24, 32)
    rgba = save(str(tmp_path / "rgba.png"), np.dstack([img, np.full(img.shape[:2], 7, np.uint8)]))
    np.testing.assert_array_equal(load_image(rgba), img)  # alpha dropped, colour untouched
    g16 = save(str(tmp_path / "g16.png"), img[..., 0].astype(np.uint16) * 257)
    assert Image.open(g16).mode == "I;16"
    np.testing.assert_array_equal(load_image(g16), np.repeat(img[..., :1], 3, -1))  # scaled, not clipped at 255
    np.testing.assert_array_equal(load_image(g16, channels=1), img[..., :1])
    # A Latin-1 file name from an old archive: not UTF-8, which tf.io.read_file would need.
    latin1 = os.path.join(os.fsencode(tmp_path), b"caf\xe9.png")
    os.rename(save(str(tmp_path / "cafe.png"), img), latin1)
    np.testing.assert_array_equal(load_image(os.fsdecode(latin1)), img)
    cmyk = save(str(tmp_path / "cmyk.jpg"), img, mode="CMYK")
    assert np.abs(load_image(cmyk) - _pil_view(cmyk)).max() <= 2


def test_bad_files_refused_with_the_file_and_reason(tmp_path):
    bomb = bomb_png(str(tmp_path / "bomb.png"), side=10000)  # 10^8 pixels claimed by a tiny file
    with pytest.raises(UserError, match=r"bomb\.png: .*pixel.*decompression bomb"):
        load_image(bomb)
    small = save(str(tmp_path / "ok.png"), pattern(20, 20))
    with pytest.raises(UserError, match="over the 100-pixel limit"):
        load_image(small, max_pixels=100)
    cut = truncate(save(str(tmp_path / "cut.jpg"), pattern(128, 128)))
    with pytest.raises(UserError, match=r"^.*cut\.jpg: truncated or corrupt"):
        load_image(cut)
    broken = corrupt_middle(save(str(tmp_path / "broken.png"), pattern(64, 64)))  # header and tail intact
    with pytest.raises(UserError, match=r"broken\.png: truncated or corrupt \(Invalid PNG data"):
        load_image(broken)
    with pytest.raises(UserError, match=r"missing\.jpg: cannot read: no such file"):
        load_image(tmp_path / "missing.jpg")
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(UserError, match=r"notes\.png: not an image"):
        load_image(tmp_path / "notes.png")
    with pytest.raises(ValueError, match="not both"):
        load_image(small, size=10, max_side=10)


def test_resize_longest_and_load_sizes(tmp_path):
    assert resize_longest(np.zeros((300, 200, 3)), 150).shape == (150, 100, 3)
    assert resize_longest(np.zeros((2, 200, 300, 1)), 450).shape == (2, 300, 450, 1)  # enlarges too
    assert resize_longest(np.zeros((5, 1000, 3)), 100).shape == (1, 100, 3)  # never below one pixel
    # Shrinking 2.5x filters first: a one-pixel checkerboard becomes flat grey, not an aliased pattern.
    checker = (np.indices((200, 200)).sum(0) % 2 * 255.0)[..., None]
    assert resize_longest(checker, 80).std() < 5
    path = save(str(tmp_path / "a.jpg"), pattern(300, 200), quality=95)
    assert load_image(path, size=150).shape == (150, 100, 3)
    assert load_image(path, size=600).shape == (600, 400, 3)
    assert load_image(path, max_side=600).shape == (300, 200, 3)  # max_side never enlarges
    assert load_image(path, max_side=100, channels=1).shape == (100, 67, 1)
    # A large JPEG is DCT-scaled while decoding: close to decoding in full, then resizing.
    smooth = np.asarray(Image.fromarray(pattern(40, 20)).resize((800, 1600), Image.BILINEAR))
    big = save(str(tmp_path / "big.jpg"), smooth, quality=95)
    fast = load_image(big, size=160)
    assert fast.shape == (160, 80, 3)
    assert np.abs(fast - resize_longest(load_image(big), 160)).mean() < 2


def test_save_round_trip_and_atomic(tmp_path, monkeypatch):
    img = pattern(20, 30).astype(np.float32)
    png = save_image(tmp_path / "new" / "dir" / "out.png", img)  # parent folders created
    np.testing.assert_array_equal(load_image(png), img)
    jpg = save_image(tmp_path / "out.JPEG", img)
    assert Image.open(jpg).format == "JPEG"
    assert np.abs(load_image(jpg) - img).mean() < 2
    save_image(tmp_path / "clip.png", np.array([[-5.0, 127.6, 300.0]]))  # clipped, rounded, grayscale
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "clip.png")), [[0, 128, 255]])
    assert sorted(os.listdir(tmp_path / "new" / "dir")) == ["out.png"]  # no temporary left

    def fail_midway(self, fp, *args, **kwargs):
        with open(fp, "wb") as f:
            f.write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", fail_midway)
    with pytest.raises(OSError, match="disk full"):
        save_image(png, np.zeros((4, 4, 3)))
    monkeypatch.undo()
    np.testing.assert_array_equal(load_image(png), img)  # the old file, whole
    assert sorted(os.listdir(png.parent)) == ["out.png"]


def test_save_refuses_bad_extension_and_values(tmp_path):
    with pytest.raises(UserError, match=r"out\.bmp: .*\.png, \.jpg, \.jpeg"):
        save_image(tmp_path / "out.bmp", np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="NaN"):
        save_image(tmp_path / "nan.png", np.full((4, 4, 3), np.nan))
    with pytest.raises(ValueError, match=r"shape=\(4, 4, 2\)"):
        save_image(tmp_path / "two.png", np.zeros((4, 4, 2)))
    assert os.listdir(tmp_path) == []
    (tmp_path / "a_file").write_text("")  # an output path under a file: one line naming it, no OSError
    with pytest.raises(UserError, match=r"a_file/out\.png: cannot write the image there"):
        save_image(tmp_path / "a_file" / "out.png", np.zeros((4, 4, 3)))


def test_bundled_imagenet_names():
    names = imagenet_classes()
    assert len(names) == len(set(names)) == 1000
    # Known indices of Keras' imagenet_class_index.json.
    known = {0: "tench", 1: "goldfish", 207: "golden retriever", 281: "tabby", 285: "Egyptian cat",
             340: "zebra", 409: "analog clock", 817: "sports car", 999: "toilet tissue"}
    assert {i: imagenet_class_name(i) for i in known} == known
    assert imagenet_class_index("Golden_Retriever") == 207  # Keras' spelling
    assert imagenet_class_index("tabby cat") == 281  # a later synonym
    assert imagenet_class_index("207") == 207
    assert imagenet_class_index("missile") == 657  # first synonym of 657 beats a later one of 744
    assert imagenet_class_index("maillot") == 638  # the full description of 638 (639 is "maillot, tank suit")
    with pytest.raises(UnknownNameError, match=r"ambiguous: 134 .*517") as err:
        imagenet_class_index("crane")
    assert err.value.param == "class"
    with pytest.raises(UnknownNameError, match="Did you mean: goldfish"):
        imagenet_class_index("goldfsh")


def test_decode_predictions_matches_argsort():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(1000), size=3).astype(np.float32)
    decoded = decode_predictions(probs, top=4)
    assert len(decoded) == 3
    for row, top in zip(probs, decoded):
        expected = np.argsort(row)[::-1][:4]
        assert [i for i, _, _ in top] == list(expected)
        assert [name for _, name, _ in top] == [imagenet_class_name(i) for i in expected]
        np.testing.assert_allclose([p for _, _, p in top], row[expected])
    with pytest.raises(ValueError, match=r"shape=\(2, 10\)"):
        decode_predictions(np.zeros((2, 10)))
    with pytest.raises(ValueError, match=r"shape=\(1000,\)"):
        decode_predictions(np.zeros(1000))
