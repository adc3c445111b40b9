"""build_datasets on the embedded digits: the bundle contract, splits, shuffling, caching, specs."""
import numpy as np
import pytest

from kerascnn.config import AugmentConfig, DataConfig
from kerascnn.data import SPECS, DataBundle, build_datasets, describe_spec
from kerascnn.data.build import default_eval_split
from kerascnn.data.sources import TfdsSplit, concat_splits, seeded_split
from kerascnn.data.specs import open_source, parse_spec, same_spec
from kerascnn.errors import DataError, UserError


def batches(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    return load_digits()


@pytest.fixture(scope="module")
def bundle():
    return build_datasets(DataConfig(), (32, 32, 1), 128, splits=("train", "val", "test", "eval"))


def test_digits_bundle_contract(bundle):
    assert isinstance(bundle, DataBundle)
    assert bundle.class_names == [str(i) for i in range(10)] and bundle.num_classes == 10
    assert bundle.test is None and bundle.eval_split == "val"  # digits has no test split
    assert bundle.counts == {"train": 1618, "val": 179, "eval": 179}  # 10% of each class, rounded
    assert "1,618 train / 179 val" in bundle.description and "32x32x1" in bundle.description
    x, y = next(iter(bundle.train))
    assert x.shape == (128, 32, 32, 1) and x.dtype.name == "float32"
    assert y.shape == (128, 10) and y.dtype.name == "float32"
    np.testing.assert_array_equal(y.numpy().sum(axis=1), 1.0)
    x, y = batches(bundle.val)
    assert x.shape == (179, 32, 32, 1) and 0.0 <= x.min() and x.max() == 255.0  # 16 -> 255
    assert len(list(bundle.train)) == 13  # ceil(1618 / 128): the last batch is kept, not dropped


def test_pipelines_run_without_the_tf_data_autotuner(bundle):
    # Its thread is joined whenever Keras drops an epoch's iterator: ~1 s stalls (pipeline.epoch_options).
    for ds in (bundle.train, bundle.val):
        assert ds.options().autotune.enabled is False
    from kerascnn.training.distribute import setup_distribution

    assert setup_distribution("default", 128).distribute(bundle.train).options().autotune.enabled is False


def bilinear(images, out_h, out_w):
    """Independent numpy bilinear resize: half-pixel centres, clamped at the edges (TF 2 / PIL convention)."""
    def axis(n_in, n_out):
        pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        low = np.floor(pos).astype(int)
        return low, np.minimum(low + 1, n_in - 1), pos - low

    y0, y1, wy = axis(images.shape[1], out_h)
    x0, x1, wx = axis(images.shape[2], out_w)
    rows = images[:, y0] * (1 - wy)[None, :, None] + images[:, y1] * wy[None, :, None]
    return rows[:, :, x0] * (1 - wx) + rows[:, :, x1] * wx


def test_digits_are_scaled_and_upsampled_bilinearly(digits):
    b = build_datasets(DataConfig(val_split=0.5, seed=0), (32, 24, 3), 4096, splits=("val",))
    _, held_out = seeded_split(digits.target, len(digits.target), 0.5, 0)
    x, y = batches(b.val)  # val is not shuffled: the held-out examples in order
    np.testing.assert_array_equal(y.argmax(1), digits.target[held_out])
    np.testing.assert_array_equal(x[..., 0], x[..., 2])  # grayscale -> RGB
    expected = bilinear(digits.images[held_out] * 255.0 / 16.0, 32, 24)
    np.testing.assert_allclose(x[..., 0], expected, atol=0.51)  # cached as uint8: rounding only


def test_seeded_split_is_stratified_reproducible_and_disjoint(digits):
    labels = digits.target
    train, held = seeded_split(labels, len(labels), 0.1, seed=7)
    again = seeded_split(labels, len(labels), 0.1, seed=7)[1]
    other = seeded_split(labels, len(labels), 0.1, seed=8)[1]
    np.testing.assert_array_equal(held, again)
    assert not np.array_equal(held, other)
    assert len(np.intersect1d(train, held)) == 0 and len(train) + len(held) == len(labels)
    per_class = np.bincount(labels[held], minlength=10)
    assert per_class.min() >= 17 and per_class.max() <= 19  # ~10% of each class's ~180


def test_eval_is_the_held_out_val_fit_did_not_train_on():
    cfg = DataConfig(val_split=0.2, seed=11)
    fit = build_datasets(cfg, (8, 8, 1), 512, splits=("train", "val"))
    evaluate = build_datasets(cfg, (8, 8, 1), 512, splits=("eval",))
    assert evaluate.train is None and evaluate.val is None
    ev, _ = batches(evaluate.eval)
    np.testing.assert_array_equal(ev, batches(fit.val)[0])
    train = {x.tobytes() for x in batches(fit.train)[0]}
    assert sum(x.tobytes() in train for x in ev) <= 5  # only the few duplicate digits in the data set


def test_training_split_reshuffles_each_epoch_repeatably():
    def orders(seed):
        b = build_datasets(DataConfig(seed=seed), (8, 8, 1), 64, splits=("train",))
        return [batches(b.train)[1].argmax(1) for _ in range(2)]

    first, second = orders(5)
    assert not np.array_equal(first, second)  # a new order every epoch
    assert np.bincount(first).tolist() == np.bincount(second).tolist()  # the same examples
    again = orders(5)
    np.testing.assert_array_equal(first, again[0])
    np.testing.assert_array_equal(second, again[1])
    assert not np.array_equal(first, orders(6)[0])


def test_large_splits_are_permuted_whole_each_epoch_repeatably():
    from kerascnn.data.pipeline import PERMUTE_FROM, array_dataset

    count = PERMUTE_FROM + 77  # the permutation path, with a last, smaller batch
    index = np.arange(count)
    images = np.stack([index // 256, index % 256], axis=-1).reshape(count, 1, 1, 2).astype(np.uint8)

    def epochs(seed, n=2):
        ds = array_dataset(images, index % 10, (1, 1, 2), 10, 1000, shuffle_seed=seed)
        out = []
        for _ in range(n):
            batches = [x.numpy().reshape(-1, 2) for x, _ in ds]
            out.append(([len(b) for b in batches], np.concatenate(batches) @ np.array([256, 1])))
        return out

    (sizes, first), (_, second) = epochs(5)
    assert sizes == [1000] * (count // 1000) + [count % 1000]
    assert sorted(first) == sorted(second) == list(range(count))  # every example once per epoch
    assert not np.array_equal(first, second) and not np.array_equal(first, index)  # shuffled, anew each epoch
    again = epochs(5)
    np.testing.assert_array_equal(first, again[0][1])
    np.testing.assert_array_equal(second, again[1][1])
    assert not np.array_equal(first, epochs(6, 1)[0][1])


def test_all_split_is_every_example_in_order_with_nothing_held_out(digits):
    b = build_datasets(DataConfig(), (8, 8, 1), 512, splits=("all",))
    assert b.counts == {"all": 1797} and b.train is None and b.val is None and b.eval is None
    x, y = batches(b.all)
    np.testing.assert_array_equal(np.argmax(y, axis=-1), digits.target)  # not shuffled
    np.testing.assert_allclose(x[..., 0], digits.images * (255.0 / 16.0), atol=0.5)  # cached as uint8


def test_all_split_concatenates_a_sources_splits(tmp_path):
    import data_helpers as h

    root, arrays = h.idx_dir(str(tmp_path / "idx"), n_train=30, n_test=10)
    b = build_datasets(DataConfig(spec=f"idx:{root}"), (6, 6, 1), 64, splits=("all", "test"))
    assert b.counts == {"all": 40, "test": 10}
    _, y = batches(b.all)
    np.testing.assert_array_equal(np.argmax(y, -1), np.concatenate([arrays["train"][1], arrays["t10k"][1]]))
    # TFDS splits concatenate by its own split arithmetic, read as one split
    both = concat_splits([TfdsSplit(None, "train[:50%]", 30, "image", "label"),
                          TfdsSplit(None, "test", 9, "image", "label")])
    assert (both.split, len(both)) == ("train[:50%]+test", 39)


def test_default_eval_split_scores_an_unseen_plain_folder_whole(tmp_path):
    import data_helpers as h

    plain = h.class_folder(str(tmp_path / "plain"), {"a": 2, "b": 2}, size=(4, 4))
    h.class_folder(str(tmp_path / "layout" / "train"), {"a": 2, "b": 2}, size=(4, 4))
    h.class_folder(str(tmp_path / "layout" / "val"), {"a": 1, "b": 1}, size=(4, 4))
    source = open_source(DataConfig(spec=plain))
    assert default_eval_split(source, trained_on=False) == "all"
    assert default_eval_split(source, trained_on=True) == "eval"  # fit's held-out images
    assert default_eval_split(open_source(DataConfig(spec=str(tmp_path / "layout"))), trained_on=False) == "eval"
    assert default_eval_split(open_source(DataConfig()), trained_on=False) == "eval"  # digits: held-out


def test_same_spec_compares_folders_by_real_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    assert same_spec("d", str(tmp_path / "d") + "/") and same_spec("Fashion-MNIST", "fashion_mnist")
    assert not same_spec("d", "digits") and not same_spec("mnist", "fashion_mnist")
    assert same_spec("/gone/folder", "/gone/folder") and not same_spec("/gone/a", "/gone/b")


def test_val_split_zero_gives_no_val_and_eval_then_fails():
    b = build_datasets(DataConfig(val_split=0.0), (8, 8, 1), 64)
    assert b.val is None and b.counts == {"train": 1797}
    with pytest.raises(DataError, match="--val-split"):
        build_datasets(DataConfig(val_split=0.0), (8, 8, 1), 64, splits=("eval",))


@pytest.mark.parametrize("cache, budget, cached", [("auto", 2 << 30, True), ("auto", 1000, False),
                                                   ("memory", 1, True), ("none", 2 << 30, False)])
def test_cache_modes_give_the_same_images(cache, budget, cached):
    cfg = DataConfig(cache=cache, max_decoded_bytes=budget)
    b = build_datasets(cfg, (20, 20, 3), 256, splits=("val",))
    assert ("cached in memory: val" in b.description) == cached
    reference = build_datasets(DataConfig(), (20, 20, 3), 256, splits=("val",))
    # Caches hold uint8 after resizing: within half a grey level of the per-batch resize.
    np.testing.assert_allclose(batches(b.val)[0], batches(reference.val)[0], atol=0.5)


def test_augmentation_applies_to_train_only():
    aug = AugmentConfig(hflip=True, translate=0.2, pca_jitter=0.5)
    plain = build_datasets(DataConfig(), (16, 16, 1), 4096, splits=("train", "val"))
    augmented = build_datasets(DataConfig(), (16, 16, 1), 4096, augment=aug, splits=("train", "val"))
    np.testing.assert_array_equal(batches(plain.val)[0], batches(augmented.val)[0])
    xa, ya = batches(augmented.train)
    xp, yp = batches(plain.train)
    np.testing.assert_array_equal(ya, yp)  # same seed: same order, only the pixels differ
    assert np.abs(xa - xp).mean() > 5.0 and 0.0 <= xa.min() and xa.max() <= 255.0


@pytest.mark.parametrize("bad, match", [
    (dict(cache="disk"), "--cache"), (dict(val_split=1.0), "--val-split"),
    (dict(spec="minst"), "Did you mean mnist"), (dict(spec="tfds:"), "name the TFDS dataset")])
def test_bad_config_is_a_one_line_data_error(bad, match):
    with pytest.raises(DataError, match=match) as info:
        build_datasets(DataConfig(**bad), (8, 8, 1), 8)
    assert "\n" not in str(info.value)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="image_shape"):
        build_datasets(DataConfig(), (8, 8, 2), 8)
    with pytest.raises(ValueError, match="splits"):
        build_datasets(DataConfig(), (8, 8, 1), 8, splits=("training",))
    with pytest.raises(UserError, match="crop"):
        build_datasets(DataConfig(), (8, 8, 1), 8, augment=AugmentConfig(crop=1.0))


def test_spec_parsing_and_descriptions(tmp_path):
    assert parse_spec("tfds:cifar10:train[:10%]").split == "train[:10%]"
    assert parse_spec("Fashion-MNIST").name == "fashion_mnist"
    assert parse_spec(str(tmp_path)).kind == "folder"
    assert parse_spec("idx:/x").name == "/x"
    assert "1,797" in describe_spec("digits") and "CIFAR-10" in describe_spec("cifar10")
    assert "train[:10%]" in describe_spec("tfds:mnist:train[:10%]")
    assert "not a known data set" in describe_spec("no/such/folder")
    for name in ("digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "tfds:", "idx:", "PATH"):
        assert name in SPECS
