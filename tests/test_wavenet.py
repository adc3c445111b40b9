"""WaveNet (kerascnn.models.wavenet): causality, the receptive field against an impulse, the layer
names, conditioning, and the summary's receptive-field line. Tiny models (a few thousand weights)."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from kerascnn.models import create_model  # noqa: E402
from kerascnn.models.wavenet import dilations, receptive_field  # noqa: E402

TINY = dict(layers_per_stack=3, stacks=2, residual_channels=8, dilation_channels=8, skip_channels=16, embedding_dim=4)


def tiny(**kwargs):
    keras.utils.set_random_seed(0)
    return create_model("wavenet", **{**TINY, **kwargs})


def _logits(model):
    return keras.Model(model.inputs, model.get_layer("logits").output)


def _batch(length, rng, instruments=0, pitched=False):
    x = {"audio": rng.integers(0, 256, (1, length)).astype("int32")}
    if instruments:
        x["instrument"] = np.array([1], "int32")
    if pitched:
        x["pitch"] = rng.integers(0, 128, (1, length)).astype("int32")
    return x


def _changed(model, x, key, at, value):
    """Output positions whose logits change when input `key` at position `at` changes."""
    y = {k: v.copy() for k, v in x.items()}
    y[key][(0, at) if y[key].ndim == 2 else 0] = value
    a, b = (np.asarray(model.predict_on_batch(v)) for v in (x, y))
    return np.flatnonzero(np.abs(a - b).max(axis=-1)[0] > 1e-6)


def test_impulse_reaches_exactly_the_receptive_field():
    model = _logits(tiny())
    field = 2 + sum(dilations(3, 2))  # the causal conv's 2 samples + (k - 1) * d per dilated layer
    assert field == 16 == receptive_field(model)
    x = _batch(60, np.random.default_rng(0))
    changed = _changed(model, x, "audio", 20, (int(x["audio"][0, 20]) + 100) % 256)
    # Causal (nothing before the impulse changes) and every output within the field does.
    np.testing.assert_array_equal(changed, np.arange(20, 20 + field))


def test_kernel_3_field_from_the_layers():
    model = _logits(tiny(kernel_size=3, stacks=1))
    assert receptive_field(model) == 1 + 2 + 2 * (1 + 2 + 4)
    x = _batch(40, np.random.default_rng(1))
    changed = _changed(model, x, "audio", 5, (int(x["audio"][0, 5]) + 7) % 256)
    np.testing.assert_array_equal(changed, np.arange(5, 5 + receptive_field(model)))


@pytest.mark.parametrize("how", ["features", "embedding"])
def test_conditioning_local_is_causal_and_global_reaches_everything(how):
    model = _logits(tiny(num_instruments=3, pitch_classes=128, pitch_conditioning=how))
    assert [t.name for t in model.inputs] == ["audio", "instrument", "pitch"]
    x = _batch(40, np.random.default_rng(2), instruments=3, pitched=True)
    # The pitch at t is added inside every gate at t: it reaches t and what comes after, never before.
    changed = _changed(model, x, "pitch", 10, (int(x["pitch"][0, 10]) + 5) % 128)
    if how == "embedding":  # a row per key: only the outputs whose gates' fields hold position 10 (the
        # key enters the gates, after the input's causal convolution: the field less its 2 samples)
        np.testing.assert_array_equal(changed, np.arange(10, 10 + receptive_field(model) - 2))
    else:  # the carrier's phase accumulates: every later output hears the changed key
        np.testing.assert_array_equal(changed, np.arange(10, 40))
    assert len(_changed(model, x, "instrument", 0, 2)) == 40


def test_pitch_features_against_numpy():
    """The carrier is a sinusoid at each key's frequency: its phase advances f / rate cycles a
    sample (checked against an independent sum), continuous across a key change, 0 where no key is."""
    from kerascnn.models.wavenet import PitchFeatures, pitch_features

    keys = np.r_[np.full(300, 69), np.full(200, 81), np.zeros(50), np.full(100, 48)].astype("int32")[None]
    ours = np.asarray(PitchFeatures(sample_rate=8000, harmonics=2)(keys))[0]
    np.testing.assert_allclose(ours, pitch_features(keys, 8000, 2)[0], atol=1e-3)  # float32 against float64
    freq = np.where(keys[0] > 0, 440.0 * 2.0 ** ((keys[0] - 69) / 12.0), 0.0)
    phase = 2 * np.pi * np.cumsum(freq) / 8000
    on = keys[0] > 0
    np.testing.assert_allclose(ours[:, 0], on)
    np.testing.assert_allclose(ours[:, 1], np.where(on, (keys[0] - 69) / 12.0, 0), atol=1e-6)
    np.testing.assert_allclose(ours[:, 2], np.where(on, np.sin(phase), 0), atol=1e-3)
    np.testing.assert_allclose(ours[:, 5], np.where(on, np.cos(2 * phase), 0), atol=1e-3)
    # A4 at 8 kHz: 440 cycles a second, so the sine repeats every 8000 / 440 samples.
    assert abs(ours[0, 2] - np.sin(2 * np.pi * 440 / 8000)) < 1e-5


def test_period_taps_read_the_waveform_one_and_two_periods_back():
    """Against the analytic sinusoid: on a held key's sine, tap j at position t is the sine at t + 1 -
    j P (companded), within mu-law quantisation and interpolation; 0 before the start and with no key."""
    from kerascnn.data.audio import mu_law_encode
    from kerascnn.models.wavenet import PeriodTaps, period_taps_np

    rate, key = 8000, 62  # 293.66 Hz: 27.24 samples a period, a fractional one
    f = 440.0 * 2.0 ** ((key - 69) / 12.0)
    n = np.arange(400)
    wave = 0.5 * np.sin(2 * np.pi * f * n / rate + 0.3)
    audio = mu_law_encode(wave)[None].astype("int32")
    keys = np.r_[np.full(350, key), np.zeros(50)].astype("int32")[None]
    ours = np.asarray(PeriodTaps(sample_rate=rate, taps=2)([audio, keys]))[0]
    np.testing.assert_allclose(ours, period_taps_np(audio, keys, n, rate, 2)[0], atol=1e-5)
    period = rate / f
    for j in (1, 2):
        at = n + 1 - j * period
        expected = 0.5 * np.sin(2 * np.pi * f * at / rate + 0.3)
        companded = np.sign(expected) * np.log1p(255 * np.abs(expected)) / np.log1p(255)
        inside = (at >= 1) & (n < 350)
        np.testing.assert_allclose(ours[inside, j - 1], companded[inside], atol=0.03)
        assert np.all(ours[at < -1, j - 1] == 0) and np.all(ours[350:, j - 1] == 0)
    # The tap reads a fractional period: the sample a whole period back (27) is several times further off.
    compand = lambda v: np.sign(v) * np.log1p(255 * np.abs(v)) / np.log1p(255)  # noqa: E731
    inside = (n + 1 - period >= 1) & (n < 350)
    exact = compand(0.5 * np.sin(2 * np.pi * f * (n + 1 - period) / rate + 0.3))[inside]
    whole = compand(0.5 * np.sin(2 * np.pi * f * (n + 1 - 27) / rate + 0.3))[inside]
    assert np.abs(whole - exact).mean() > 4 * np.abs(ours[inside, 0] - exact).mean()


def test_period_taps_are_causal_and_need_a_pitch_track():
    from kerascnn.errors import ModelError

    model = _logits(tiny(num_instruments=3, pitch_classes=128, period_taps=2))
    assert "period_taps" in {layer.name for layer in model.layers}
    x = _batch(60, np.random.default_rng(4), instruments=3, pitched=True)
    x["pitch"][:] = 84  # C6: a period of 7.6 samples at 16 kHz, so taps reach inside the clip
    changed = _changed(model, x, "audio", 20, (int(x["audio"][0, 20]) + 100) % 256)
    assert changed.min() == 20 and changed.max() > 20 + receptive_field(model)  # past the field: the taps
    with pytest.raises(ModelError, match="period_taps"):
        tiny(period_taps=2)


def test_pitch_conditioning_is_checked():
    from kerascnn.errors import ModelError

    with pytest.raises(ModelError, match="pitch_conditioning"):
        tiny(pitch_classes=128, pitch_conditioning="onehot")


def test_layer_names_and_output():
    model = tiny(num_instruments=2, pitch_classes=128)
    names = {layer.name for layer in model.layers}
    for prefix in ("stack0_d1", "stack0_d4", "stack1_d2"):
        for part in ("filter", "gate", "gated", "skip", "res", "add", "filter_global", "gate_global",
                     "filter_local", "gate_local"):
            assert f"{prefix}_{part}" in names
    assert "stack1_d4_res" not in names  # the last layer's residual branch is unused
    assert {"input_embedding", "causal_conv", "instrument_embedding", "pitch_embedding", "skip_sum", "logits",
            "predictions"} <= names
    # num_classes is the data's class count (instruments); the output stays the 256 mu-law classes.
    assert tiny(num_classes=3).output.shape[-1] == 256
    assert tiny(include_top=False).output.shape[-1] == 16


def test_save_and_load(tmp_path):
    from kerascnn.models.loading import load_model

    model = tiny(num_instruments=2, pitch_classes=128)
    x = _batch(30, np.random.default_rng(3), instruments=2, pitched=True)
    model.save(tmp_path / "w.keras")
    again = load_model(tmp_path / "w.keras")
    np.testing.assert_allclose(again.predict_on_batch(x), model.predict_on_batch(x), atol=1e-6)


def test_summary_prints_the_receptive_field():
    from kerascnn.analysis import format_summary, summary_for

    summary = summary_for("wavenet", **{k: v for k, v in TINY.items() if k != "embedding_dim"})
    assert summary.rows[-1].rf == (16,)
    assert summary.example == "clip of 4,096 samples"
    assert "Receptive field: 16 samples (1.0 ms at 16 kHz)" in format_summary(summary, "table")
    default = summary_for("wavenet")
    assert default.rows[-1].rf == (2048,)


def test_sparse_targets_compile_with_sparse_loss_and_metrics():
    from kerascnn.config import TrainConfig
    from kerascnn.training.loop import compile_model

    model = compile_model(tiny(), TrainConfig(model="wavenet"), "sgd")
    assert type(model.loss).__name__ == "SparseCategoricalCrossentropy"
    x = {"audio": np.random.default_rng(0).integers(0, 256, (2, 24)).astype("int32")}
    y = np.roll(x["audio"], -1, axis=1)
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    probs = np.asarray(model.predict_on_batch(x), np.float64)
    chosen = np.take_along_axis(probs, y[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(logs["loss"], -np.log(chosen).mean(), rtol=1e-4)
    np.testing.assert_allclose(logs["accuracy"], (probs.argmax(-1) == y).mean(), atol=1e-6)
    np.testing.assert_allclose(logs["top5"], (np.argsort(-probs, -1)[..., :5] == y[..., None]).any(-1).mean(),
                               atol=1e-6)
