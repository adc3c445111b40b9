"""WaveNet generation (kerascnn.synthesis.wavenet_generate): the numpy network is the Keras model,
and fast (queued) generation draws exactly the samples of the plain algorithm."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from kerascnn.errors import UserError  # noqa: E402
from kerascnn.models import create_model  # noqa: E402
from kerascnn.models.wavenet import receptive_field  # noqa: E402
from kerascnn.synthesis.wavenet_generate import Net, draw, generate, mix_instruments  # noqa: E402

TINY = dict(layers_per_stack=3, stacks=2, residual_channels=8, dilation_channels=8, skip_channels=16, embedding_dim=4)


def tiny(**kwargs):
    """A tiny random WaveNet whose logits spread over several units (a fresh model's are ~0.01, a
    nearly uniform softmax under which a wrong logit would rarely change a draw)."""
    keras.utils.set_random_seed(1)
    model = create_model("wavenet", **{**TINY, **kwargs})
    kernel, bias = model.get_layer("logits").get_weights()
    model.get_layer("logits").set_weights([kernel * 300.0, bias])
    return model


@pytest.mark.parametrize("kwargs", [{}, {"num_instruments": 3, "pitch_classes": 128, "kernel_size": 3},
                                    {"num_instruments": 3, "pitch_classes": 128, "pitch_conditioning": "embedding"},
                                    {"num_instruments": 3, "pitch_classes": 128, "period_taps": 2}])
def test_numpy_network_is_the_keras_model(kwargs):
    model = tiny(**kwargs)
    net = Net.from_model(model)
    assert net.receptive_field == receptive_field(model)
    rng = np.random.default_rng(0)
    x = {"audio": rng.integers(0, 256, (2, 40)).astype("int32")}
    if kwargs:
        x["instrument"] = np.array([0, 2], "int32")
        x["pitch"] = rng.integers(0, 128, (2, 40)).astype("int32")
        if "period_taps" in kwargs:  # high keys: periods of a few samples, so the taps read inside the clip
            x["pitch"] = rng.integers(90, 128, (2, 40)).astype("int32")
    logits = keras.Model(model.inputs, model.get_layer("logits").output).predict_on_batch(x)
    mine = net.logits(x["audio"], net.instrument_embedding[x["instrument"]] if kwargs else None, x.get("pitch"))
    assert np.abs(logits).max() > 2
    np.testing.assert_allclose(mine, logits, atol=3e-3, rtol=1e-4)  # float32 (oneDNN) against float64


@pytest.mark.parametrize("temperature,how", [(1.0, "features"), (0.5, "embedding"), (0.0, "features")])
def test_fast_and_plain_generation_draw_identical_samples(temperature, how):
    net = Net.from_model(tiny(num_instruments=3, pitch_classes=128, pitch_conditioning=how))
    pitch = np.stack([np.full(60, 60), np.r_[np.full(30, 62), np.zeros(30, int)]])
    runs = [generate(net, 60, instrument=[0, 2], pitch=pitch, temperature=temperature, seed=7, fast=fast,
                     progress=False) for fast in (True, False)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert runs[0].shape == (2, 60) and runs[0].min() >= 0 and runs[0].max() <= 255
    if temperature:  # not a constant: the draws differ per sample (a random model is close to uniform)
        assert len(np.unique(runs[0])) > 10
        other = generate(net, 60, instrument=[0, 2], pitch=pitch, temperature=temperature, seed=8, progress=False)
        assert not np.array_equal(other, runs[0])


def test_fast_and_plain_draw_identical_samples_with_period_taps():
    net = Net.from_model(tiny(num_instruments=3, pitch_classes=128, period_taps=2))
    assert net.period_dense is not None
    # C6 then A6 (periods of 15.3 and 9.1 samples at 16 kHz), a silence, and a held C5 past the field of 16.
    pitch = np.stack([np.r_[np.full(30, 84), np.full(30, 93)], np.r_[np.zeros(10, int), np.full(50, 72)]])
    runs = [generate(net, 60, instrument=[0, 2], pitch=pitch, temperature=1.0, seed=3, fast=fast, progress=False)
            for fast in (True, False)]
    np.testing.assert_array_equal(runs[0], runs[1])
    # The taps matter: the same net without them draws other samples.
    bare = Net(**{**net.__dict__, "period_dense": None, "period_args": None})
    assert not np.array_equal(generate(bare, 60, instrument=[0, 2], pitch=pitch, seed=3, progress=False), runs[0])


def test_fast_equals_plain_from_a_prime_and_past_the_receptive_field():
    net = Net.from_model(tiny())  # unconditioned (continue); field 16, prime 25 samples
    prime = np.random.default_rng(3).integers(0, 256, (2, 25))
    fast, plain = (generate(net, 40, prime=prime, seed=2, fast=f, progress=False) for f in (True, False))
    np.testing.assert_array_equal(fast, plain)


def test_draw_follows_the_softmax():
    logits = np.log(np.array([[0.1, 0.6, 0.3]] * 20000))
    drawn = draw(logits, 1.0, np.random.default_rng(0))
    np.testing.assert_allclose(np.bincount(drawn, minlength=3) / 20000, [0.1, 0.6, 0.3], atol=0.015)
    assert (draw(logits, 0.0, np.random.default_rng(0)) == 1).all()


def test_instrument_mix_and_conditioning_errors():
    net = Net.from_model(tiny(num_instruments=3, pitch_classes=128))
    mix = mix_instruments(net, {0: 0.5, 2: 1.5})
    np.testing.assert_allclose(mix, 0.25 * net.instrument_embedding[0] + 0.75 * net.instrument_embedding[2])
    with pytest.raises(UserError, match="instrument"):
        generate(net, 5, pitch=np.full((1, 5), 60), progress=False)
    with pytest.raises(UserError, match="pitch"):
        generate(net, 5, instrument=[0], progress=False)
    with pytest.raises(UserError, match="without instruments"):
        generate(Net.from_model(tiny()), 5, instrument=[0], progress=False)


def test_outputs_wav_spectrogram_and_settings(tmp_path):
    import json

    import soundfile

    from kerascnn.synthesis.wavenet_outputs import decode, write_outputs

    net = Net.from_model(tiny())
    classes = generate(net, 800, seed=1, progress=False)[0]
    paths = write_outputs(tmp_path / "out" / "note.wav", decode(classes), 16000, {"seed": 1, "temperature": 1.0})
    data, rate = soundfile.read(paths["wav"])
    assert rate == 16000 and data.shape == (800,)
    np.testing.assert_allclose(data, decode(classes), atol=1 / 32767 + 1e-6)  # 16-bit PCM
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"
    record = json.loads(paths["json"].read_text())
    assert record["seed"] == 1 and record["samples"] == 800 and record["seconds"] == 0.05
