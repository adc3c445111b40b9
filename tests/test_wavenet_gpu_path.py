"""The path bench/wavenet_gpu.py takes to train the notes WaveNet on JAX without TensorFlow: its crops
against the audio pipeline's (kerascnn.data.audio_pipeline, the reference), its loss against Keras's, and
its saved weights in the harness's softmax model, as `assemble` builds it (TensorFlow here).
"""
import json
import math
import os

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from data_helpers import load_bench_script  # noqa: E402
from kerascnn.data.audio import audio_split, mu_law_encode  # noqa: E402
from kerascnn.data.audio_pipeline import SILENCE, audio_dataset, crop_plan  # noqa: E402

TINY = dict(layers_per_stack=2, stacks=1, residual_channels=4, dilation_channels=4, skip_channels=8, embedding_dim=4)
CLIP = 32
LENGTHS = (100, 70, 33, 20)  # several crops with interior starts; room 0 (start 0 only); shorter than a crop


@pytest.fixture(scope="module")
def bench():
    return load_bench_script("wavenet_gpu")


@pytest.fixture(scope="module")
def split():
    rng = np.random.default_rng(0)
    waves = [np.sin(np.arange(n) * 0.3 * (i + 1)) * 0.8 + rng.normal(0, 0.05, n) for i, n in enumerate(LENGTHS)]
    pitch = [rng.integers(0, 128, n).astype(np.uint8) for n in LENGTHS]
    return audio_split([w.astype(np.float32) for w in waves], np.arange(len(LENGTHS)), [f"clip{i}" for i in
                                                                                         range(len(LENGTHS))],
                       pitch=pitch, notes=[60] * len(LENGTHS))


def test_crops_equal_the_audio_pipelines(bench, split):
    """The pipeline's fixed-start crops (one batch of all of them) against the script's at the same starts."""
    count = len(crop_plan(split.lengths, CLIP)[0])
    inputs, targets = next(iter(audio_dataset(split, CLIP, count, shuffle_seed=None, pitched=True)))
    arrays = bench.split_arrays(split)
    clips, starts, mask = bench.fixed_plan(arrays["lengths"], CLIP, 64)
    assert clips.shape == (1, 64) and mask.sum() == count
    x, y = bench.crop_batch(arrays, clips[0][:count], starts[0][:count], CLIP)
    for key in ("audio", "instrument", "pitch"):
        np.testing.assert_array_equal(np.asarray(x[key]), inputs[key].numpy(), err_msg=key)
    np.testing.assert_array_equal(np.asarray(y), targets.numpy())
    # and the alignment itself, from the waves: targets are the next sample, pitch is the target's key
    c, s = int(clips[0][1]), int(starts[0][1])  # clip 0's second crop, an interior start
    classes = mu_law_encode(split.waves[c])
    assert 0 < s and np.array_equal(np.asarray(x["audio"])[1], classes[s:s + CLIP])
    assert np.array_equal(np.asarray(y)[1], classes[s + 1:s + CLIP + 1])
    assert np.array_equal(np.asarray(x["pitch"])[1], split.pitch[c][s + 1:s + CLIP + 1])
    short = count - 1  # the 20-sample clip: silence and no key past its end
    assert np.all(np.asarray(y)[short, 19:] == SILENCE) and np.all(np.asarray(x["pitch"])[short, 19:] == 0)


def test_training_plan_covers_every_crop_at_starts_in_range(bench, split):
    lengths = split.lengths
    clip_of, _, room = crop_plan(lengths, CLIP)
    batch = 2
    clips, starts = bench.epoch_plan(lengths, CLIP, batch, seed=3, epoch=5)
    assert clips.shape == starts.shape == (len(clip_of) // batch, batch)
    np.testing.assert_array_equal(np.sort(clips.ravel()), np.sort(clip_of)[:clips.size])  # 7 crops: 6 taken
    assert np.all(starts >= 0) and np.all(starts <= room[clips])
    again, other = bench.epoch_plan(lengths, CLIP, batch, 3, 5), bench.epoch_plan(lengths, CLIP, batch, 3, 6)
    assert np.array_equal(again[1], starts) and not np.array_equal(other[1], starts)
    many = bench.epoch_plan(np.array([5000]), CLIP, 8, 0, 0)[1].ravel()  # uniform over [0, room]
    assert many.min() < 0.1 * 4967 and many.max() > 0.9 * 4967


def _record():
    return {"class_names": ["a", "b", "c", "d"], "sample_rate": 16000, "model_args": TINY}


def test_assembled_model_predicts_as_the_trained_one(bench, split, tmp_path):
    """Weights saved from the logits model the GPU trains, loaded by `assembled` into the harness's
    softmax model: the same distributions; the script's loss equals Keras's on the softmax output."""
    keras.utils.set_random_seed(1)
    trained = bench.build_model(_record())
    assert trained.get_layer("predictions").activation is keras.activations.linear
    for v in trained.trainable_variables:  # away from the initial weights, as training leaves them
        v.assign(v + np.random.default_rng(2).normal(0, 0.1, v.shape).astype("float32"))
    trained.save_weights(str(tmp_path / "w.weights.h5"))
    keras.utils.set_random_seed(7)  # a different initialisation, which the load must overwrite
    full = bench.assembled(_record(), tmp_path / "w.weights.h5")
    arrays = bench.split_arrays(split)
    x, y = bench.crop_batch(arrays, np.array([0, 1, 3]), np.array([0, 5, 0]), CLIP)
    logits = np.asarray(trained(x))
    probs = np.asarray(full(x))
    want = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(probs, want / want.sum(-1, keepdims=True), atol=1e-6)
    ours = float(np.mean(np.asarray(bench.nll(logits, y))))
    keras_loss = float(keras.losses.SparseCategoricalCrossentropy()(y, full(x)))
    reference = float(-np.mean(np.log(np.take_along_axis(probs, np.asarray(y)[..., None], -1))))
    assert ours == pytest.approx(keras_loss, rel=1e-5) and ours == pytest.approx(reference, rel=1e-4)
    assert bench.keras_val_bits(full, {"val": arrays}) == pytest.approx(
        _bits_by_numpy(full, bench, arrays), rel=1e-5)


def _bits_by_numpy(model, bench, arrays) -> float:
    clip_of, starts, _ = crop_plan(arrays["lengths"], bench.CLIP)
    x, y = bench.crop_batch(arrays, clip_of, starts, bench.CLIP)
    p = np.asarray(model(x))
    return float(-np.mean(np.log(np.take_along_axis(p, np.asarray(y)[..., None], -1))) / math.log(2))


@pytest.mark.skipif(not os.path.isfile("/usr/share/sounds/sf2/TimGM6mb.sf2"), reason="needs timgm6mb-soundfont")
def test_assemble_writes_a_run_folder_the_tools_read(bench, tmp_path):
    pytest.importorskip("tinysoundfont")
    from kerascnn.models.loading import load_model
    from kerascnn.runtime.run_dir import read_classes, read_config

    keras.utils.set_random_seed(1)
    record = {**_record(), "class_names": ["piano", "guitar", "violin", "flute"], "data": bench.SPEC, "seed": 0,
              "batch_size": 32, "epochs": 3, "precision": "float32", "step": 45, "backend": "jax",
              "clip_samples": 4096, "curve": [{"step": 45, "train_bits": 7.0, "val_bits": 6.5}], "test_bits": 6.6}
    run = tmp_path / "run"
    run.mkdir()
    (run / bench.RECORD).write_text(json.dumps(record))
    trained = bench.build_model(record)
    trained.save_weights(str(run / bench.WEIGHTS))
    assert bench.main(["assemble", str(run), "--out", str(tmp_path / "folder"), "--inputs", "missing.npz"]) == 0
    model = load_model(tmp_path / "folder" / "model.keras")  # safe mode
    assert read_classes(tmp_path / "folder" / "model.keras") == record["class_names"]
    cfg = read_config(tmp_path / "folder")
    assert cfg.data.spec == bench.SPEC and cfg.data.seed == 0 and cfg.model_args == TINY
    assert (tmp_path / "folder" / "curves.png").stat().st_size > 0
    x = {"audio": np.zeros((1, 64), np.int32), "instrument": np.array([3], np.int32), "pitch": np.full((1, 64), 60)}
    np.testing.assert_allclose(np.asarray(model(x)), tf.nn.softmax(trained(x)).numpy(), atol=1e-6)
