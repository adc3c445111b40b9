"""Image folders as real users have them: every awkward file kind, both layouts, load_images."""
import logging
import os
import warnings

import numpy as np
import pytest
from PIL import Image, ImageOps

import data_helpers as h
from kerascnn.config import AugmentConfig, DataConfig
from kerascnn.data import build_datasets, load_images
from kerascnn.data.images import MAX_PIXELS, inspect_image
from kerascnn.errors import DataError


def batches(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    """A folder with every awkward file kind, built once, with the warnings logged while loading it."""
    root = str(tmp_path_factory.mktemp("messy"))
    good, bad = h.good_images(root), h.bad_images(root)
    hidden = h.hidden_files(root)
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger("kerascnn.data")
    logger.addHandler(handler)
    try:
        bundle = build_datasets(DataConfig(spec=root, val_split=0.0), (16, 16, 3), 4, splits=("train",))
    finally:
        logger.removeHandler(handler)
    return root, good, bad, hidden, bundle, records


def test_messy_folder_keeps_every_good_image_and_skips_every_bad_one(messy):
    root, good, bad, hidden, bundle, records = messy
    assert bundle.class_names == ["cat", "dog"]  # hidden folders are not classes
    assert bundle.counts["train"] == len(good)
    skipped = {os.path.abspath(p) for p, _ in bundle.skipped}
    assert skipped == {os.path.abspath(p) for p in bad.values()}
    assert not skipped & {os.path.abspath(p) for p in hidden}
    # One warning for all of them, with the count and the first names.
    assert len(records) == 1 and f"Skipped {len(bad)} files" in records[0].getMessage()
    assert "notes.txt (not an image file type)" in records[0].getMessage()
    x, y = batches(bundle.train)
    assert x.shape == (len(good), 16, 16, 3) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 255.0
    assert y.sum(axis=0).tolist() == [6, 7]  # cat: 6 files incl. the nested one; dog: 7


@pytest.mark.parametrize("kind, reason", [
    ("empty", "empty file"), ("truncated_jpeg", "truncated"), ("truncated_png", "truncated"),
    ("truncated_header", "truncated"), ("text_as_jpeg", "not an image"), ("bomb", "pixel"),
    ("not_image_ext", "not an image file type"), ("broken_link", "cannot read"), ("latin1_name", "UTF-8")])
def test_each_bad_file_is_skipped_for_its_reason(messy, kind, reason):
    bad, bundle = messy[2], messy[4]
    reasons = {os.path.abspath(p): r for p, r in bundle.skipped}
    assert reason in reasons[os.path.abspath(bad[kind])]


def test_bomb_is_refused_from_its_header_and_the_limit_is_configurable(messy):
    good, bad = messy[1], messy[2]
    assert "pixel" in inspect_image(bad["bomb"])  # PIL never decodes the 1.6 G pixels
    assert inspect_image(good["rgb_jpeg"], max_pixels=24 * 32).height == 24
    assert "over the 767-pixel limit" in inspect_image(good["rgb_jpeg"], max_pixels=24 * 32 - 1)
    assert MAX_PIXELS == Image.MAX_IMAGE_PIXELS


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads chmod 000 files")
def test_unreadable_file_is_skipped(tmp_path):
    h.class_folder(str(tmp_path), {"a": 2, "b": 2})
    locked = tmp_path / "a" / "000.png"
    locked.chmod(0)
    try:
        bundle = build_datasets(DataConfig(spec=str(tmp_path), val_split=0.0), (8, 8, 3), 4, splits=("train",))
    finally:
        locked.chmod(0o644)
    assert [r for p, r in bundle.skipped] == ["cannot read: permission denied"]
    assert bundle.counts["train"] == 3


def test_every_format_decodes_like_pil(messy):
    """TF's decoders (and the PIL fallback) against PIL's own RGB conversion, per file kind."""
    good = messy[1]
    kinds = sorted(good)
    x, names, skipped = load_images([good[k] for k in kinds], (24, 32, 3))
    assert skipped == [] and names == [good[k] for k in kinds]
    for kind, image in zip(kinds, x):
        with Image.open(good[kind]) as im:
            if im.mode == "I;16":
                ref = np.repeat((np.asarray(im) / 257.0)[..., None], 3, axis=-1)
            else:
                ref = np.asarray(im.convert("RGB"), np.float64)
        lossy = kind.endswith("jpeg") or kind in ("upper_ext", "unicode_name")
        assert np.abs(image - ref).mean() < (2.0 if lossy else 0.51), kind


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pil_exif_transpose(tmp_path, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = h.save(str(tmp_path / "o.png"), h.pattern(6, 10), exif=exif)
    with Image.open(path) as im:
        ref = np.asarray(ImageOps.exif_transpose(im).convert("RGB"), np.float32)
    x, _, _ = load_images([path], ref.shape)
    np.testing.assert_array_equal(x[0], ref)


def test_channels_convert_both_ways(messy):
    good = messy[1]
    gray, _, _ = load_images([good["rgb_jpeg"]], (24, 32, 1))
    rgb, _, _ = load_images([good["gray_jpeg"]], (24, 32, 3))
    with Image.open(good["rgb_jpeg"]) as im:
        luma = np.asarray(im.convert("RGB"), np.float64) @ [0.2989, 0.587, 0.114]
    assert gray.shape == (1, 24, 32, 1) and np.abs(gray[0, ..., 0] - luma).mean() < 2.0
    assert rgb.shape == (1, 24, 32, 3)
    np.testing.assert_array_equal(rgb[0, ..., 0], rgb[0, ..., 2])


def test_load_images_takes_files_and_folders_recursively(tmp_path):
    h.class_folder(str(tmp_path / "f"), {"a": 2, "b": 1})
    single = h.save(str(tmp_path / "one.jpg"), h.pattern(10, 10))
    x, names, skipped = load_images([single, str(tmp_path / "f"), str(tmp_path / "missing.png")], (5, 7, 3))
    assert x.shape == (4, 5, 7, 3) and x.dtype == np.float32
    assert names[0] == single and [os.path.basename(n) for n in names[1:]] == ["000.png", "001.png", "000.png"]
    assert skipped == [(str(tmp_path / "missing.png"), "no such file or folder")]
    # b's images are filled with 30 (class index 1), a's with 10, but for the corner pixel.
    assert np.allclose(x[3, 1:, 1:], 30.0, atol=1.0) and np.allclose(x[1, 1:, 1:], 10.0, atol=1.0)


def test_load_images_with_nothing_usable_is_a_data_error(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"")
    with pytest.raises(DataError, match="No usable images.*bad.jpg \\(empty file\\)"):
        load_images([str(tmp_path / "bad.jpg")], (8, 8, 3))


def test_split_layout_keeps_class_indices_consistent(tmp_path):
    h.class_folder(str(tmp_path / "train"), {"ant": 3, "bee": 3, "cow": 3})
    h.class_folder(str(tmp_path / "val"), {"bee": 2, "cow": 1})  # no "ant" in val: labels must not shift
    h.class_folder(str(tmp_path / "test"), {"ant": 1, "cow": 2})
    bundle = build_datasets(DataConfig(spec=str(tmp_path)), (4, 4, 3), 8, splits=("train", "val", "test", "eval"))
    assert bundle.class_names == ["ant", "bee", "cow"]
    assert bundle.counts == {"train": 9, "val": 3, "test": 3, "eval": 3} and bundle.eval_split == "test"
    # class_folder fills the k-th of a split's own sorted folders with 20k+10: map pixels back to names.
    for ds, folders in ((bundle.train, ["ant", "bee", "cow"]), (bundle.val, ["bee", "cow"]),
                        (bundle.test, ["ant", "cow"])):
        x, y = batches(ds)
        assert y.shape[1] == 3
        by_pixel = [folders[int(v - 10) // 20] for v in x[:, 2, 2, 0]]
        assert by_pixel == [bundle.class_names[i] for i in y.argmax(1)]


def test_flat_layout_holds_out_a_stratified_seeded_val(tmp_path):
    h.class_folder(str(tmp_path), {"a": 10, "b": 10})
    cfg = DataConfig(spec=str(tmp_path), val_split=0.2, seed=3)
    shape = (20, 28, 3)  # full size: each file differs from its class mates in one pixel only
    first = build_datasets(cfg, shape, 64, splits=("val", "eval"))
    again = build_datasets(cfg, shape, 64, splits=("val",))
    other = build_datasets(DataConfig(spec=str(tmp_path), val_split=0.2, seed=4), shape, 64, splits=("val",))
    x1, y1 = batches(first.val)
    assert y1.sum(0).tolist() == [2, 2] and first.eval_split == "val"
    np.testing.assert_array_equal(x1, batches(again.val)[0])
    np.testing.assert_array_equal(x1, batches(first.eval)[0])
    assert not np.array_equal(x1, batches(other.val)[0])


@pytest.mark.parametrize("make, message", [
    (lambda p: (h.class_folder(p, {"a": 2}), os.makedirs(f"{p}/empty")), "empty.*no usable images"),
    (lambda p: h.save(f"{p}/loose.png", h.pattern(4, 4)), "has images but no class sub-folders"),
    (lambda p: (os.makedirs(f"{p}/a"), open(f"{p}/a/x.jpg", "wb").close()), "a.*no usable images"),
    (lambda p: (h.class_folder(f"{p}/train", {"a": 2}), h.class_folder(f"{p}/val", {"zz": 1})), "zz.*not in"),
])
def test_unusable_folders_are_clear_data_errors(tmp_path, make, message):
    make(str(tmp_path))
    with pytest.raises(DataError, match=message):
        build_datasets(DataConfig(spec=str(tmp_path)), (4, 4, 3), 4)


@pytest.mark.parametrize("cache", ["memory", "none"])
def test_a_file_that_fails_only_at_decode_does_not_stop_the_epoch(tmp_path, cache):
    h.class_folder(str(tmp_path), {"a": 3, "b": 3}, size=(40, 40))
    h.save(str(tmp_path / "b" / "noise.png"), np.random.default_rng(0).integers(0, 255, (40, 40, 3), np.uint8))
    bad = h.corrupt_middle(str(tmp_path / "b" / "noise.png"))  # header and IEND intact
    assert not isinstance(inspect_image(bad), str)  # the cheap scan lets it through...
    bundle = build_datasets(DataConfig(spec=str(tmp_path), val_split=0.0, cache=cache), (8, 8, 3), 2,
                            splits=("train",))
    for _ in range(2):  # ...and every epoch runs to the end without it
        x, y = batches(bundle.train)
        assert len(x) == 6
    failed = [(os.path.abspath(bad), "failed to decode")]
    if cache == "memory":
        assert bundle.skipped == failed
    else:  # streamed: named after the passes above, and only once
        assert bundle.skipped == [] and bundle.streams["train"].new_failures() == failed
        batches(bundle.train)
        assert bundle.streams["train"].new_failures() == []


def test_fit_and_evaluate_warn_about_streamed_files_that_fail_to_decode(tmp_path, caplog):
    from kerascnn.config import TrainConfig, override
    from kerascnn.inference.apply import evaluate
    from kerascnn.training import fit

    data = tmp_path / "data"
    h.class_folder(str(data / "train"), {"a": 4, "b": 4}, size=(40, 40))
    h.class_folder(str(data / "val"), {"a": 2, "b": 2}, size=(40, 40))
    h.save(str(data / "val" / "b" / "noise.png"), np.random.default_rng(0).integers(0, 255, (40, 40, 3), np.uint8))
    h.corrupt_middle(str(data / "val" / "b" / "noise.png"))
    cfg = override(TrainConfig(), model="lenet5", epochs=2, batch_size=4, out=str(tmp_path / "run"),
                   **{"data.spec": str(data), "data.cache": "none"})
    with caplog.at_level("WARNING", logger="kerascnn"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(cfg, verbose=0)
        # Keras's "Your input ran out of data" at the end of each streamed epoch is expected, not shown
        assert not [w for w in caught if "ran out of data" in str(w.message)]
        warned = [r.getMessage() for r in caplog.records if "failed to decode" in r.getMessage()]
        assert warned == ["epoch 1, val split: Skipped 1 files that failed to decode: noise.png (failed to decode)"]
        caplog.clear()
        result = evaluate(tmp_path / "run" / "model.keras", plot=False)
        assert result.count == 4
        assert [r.getMessage() for r in caplog.records if "failed to decode" in r.getMessage()] == \
            ["Skipped 1 files that failed to decode: noise.png (failed to decode)"]


def test_streamed_and_cached_folders_give_the_same_pixels(tmp_path):
    y, x = np.mgrid[0:300, 0:400]
    for i in range(5):  # smooth photos, big enough for the DCT-scaled JPEG decode
        smooth = np.stack([x * 0.6, y * 0.8, (x + y) * 0.35 + 10 * i], -1).clip(0, 255).astype(np.uint8)
        h.save(str(tmp_path / "c" / f"{i}.jpg"), smooth, quality=95)
    kwargs = dict(image_shape=(37, 50, 3), batch_size=8, splits=("val",))
    cached = build_datasets(DataConfig(spec=str(tmp_path), val_split=0.5, cache="memory"), **kwargs)
    streamed = build_datasets(DataConfig(spec=str(tmp_path), val_split=0.5, cache="none"), **kwargs)
    auto_small = build_datasets(DataConfig(spec=str(tmp_path), val_split=0.5, max_decoded_bytes=10), **kwargs)
    assert "cached in memory: val" in cached.description and "streamed: val" in streamed.description
    assert "streamed: val" in auto_small.description
    np.testing.assert_allclose(batches(cached.val)[0], batches(streamed.val)[0], atol=0.5)
    # The DCT-scaled JPEG decode (ratio 4 here) stays close to a full decode resized by PIL.
    with Image.open(tmp_path / "c" / "0.jpg") as im:
        ref = np.asarray(im.convert("RGB").resize((50, 37), Image.BILINEAR), np.float32)
    images, _, _ = load_images([str(tmp_path / "c" / "0.jpg")], (37, 50, 3))
    assert np.abs(images[0] - ref).mean() < 2.0


def test_streamed_training_images_get_their_geometry_while_resized(tmp_path):
    for i in range(6):
        h.save(str(tmp_path / "c" / f"{i}.png"), h.pattern(30, 40, seed=i))
    plain = build_datasets(DataConfig(spec=str(tmp_path), val_split=0.0, cache="none", seed=1), (15, 20, 3), 6,
                           splits=("train",))
    flipped = build_datasets(DataConfig(spec=str(tmp_path), val_split=0.0, cache="none", seed=1), (15, 20, 3), 6,
                             augment=AugmentConfig(hflip=True), splits=("train",))
    x, _ = batches(plain.train)
    seen = {"flipped": 0, "plain": 0}
    for _ in range(3):
        for image in batches(flipped.train)[0]:
            if any(np.allclose(image, p[:, ::-1], atol=1e-3) for p in x):
                seen["flipped"] += 1
            else:
                assert any(np.allclose(image, p, atol=1e-3) for p in x)
                seen["plain"] += 1
    assert seen["flipped"] > 2 and seen["plain"] > 2
