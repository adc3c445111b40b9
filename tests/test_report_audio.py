"""The report's audio section for a WaveNet run (kerascnn.analysis.audio_section): validation notes,
real and generated, as embedded spectrograms and WAV players. Tiny models, a few short clips."""
import base64
import io
import re

import numpy as np
import pytest

keras = pytest.importorskip("keras")
sf = pytest.importorskip("soundfile")

from kerascnn.analysis.report import write_report  # noqa: E402
from kerascnn.api import fit  # noqa: E402
from kerascnn.models import create_model  # noqa: E402
from kerascnn.synthesis.wavenet_generate import Net, generate  # noqa: E402
from kerascnn.synthesis.wavenet_outputs import decode  # noqa: E402

TINY = dict(layers_per_stack=2, stacks=1, residual_channels=4, dilation_channels=4, skip_channels=8, embedding_dim=4)
PLAYER = re.compile(r'<audio [^>]*src="data:audio/wav;base64,([^"]+)"')
SPECTROGRAM = re.compile(r'<img src="data:image/png;base64,([^"]+)" alt="(real|generated) spectrogram"')


def _wavs(page):
    """Every embedded WAV of the page, decoded: [(samples, rate)]."""
    return [sf.read(io.BytesIO(base64.b64decode(data))) for data in PLAYER.findall(page)]


def _spectrograms(page):
    return [(base64.b64decode(data), label) for data, label in SPECTROGRAM.findall(page)]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny WaveNet trained one epoch on an audio folder: train/ and val/ with two classes of 0.15 s
    tones (a val clip is one 4,096-sample crop, padded with silence)."""
    root = tmp_path_factory.mktemp("tones")
    t = np.arange(2400) / 16000
    for part, count in (("train", 2), ("val", 1)):
        for name, hz in (("low", 330.0), ("high", 880.0)):
            (root / part / name).mkdir(parents=True)
            for i in range(count):
                sf.write(root / part / name / f"{i}.wav", (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32), 16000)
    keras.utils.set_random_seed(0)
    return fit("wavenet", data=f"audio:{root}", epochs=1, batch_size=2, precision="float32", model_args=TINY,
               out=str(tmp_path_factory.mktemp("fit") / "run"), verbose=0)


def test_fit_report_plays_real_and_generated_validation_notes(run, tmp_path):
    page = (run.run_dir / "report.html").read_text(encoding="utf-8")
    assert 'id="audio"' in page and "bits per step" in page
    wavs = _wavs(page)
    assert len(wavs) == 4  # two val clips (one per class), each real and generated
    for samples, rate in wavs:
        assert rate == 16000 and samples.shape == (4096,)  # the whole crop: shorter than 0.5 s
    pictures = _spectrograms(page)
    assert [label for _, label in pictures] == ["real", "generated"] * 2
    assert all(png[:8] == b"\x89PNG\r\n\x1a\n" for png, _ in pictures)
    assert "<b>high</b>" in page and "<b>low</b>" in page and "MIDI pitch" not in page  # no pitch tracks
    # `kerascnn report` on the folder (its saved model, its data rebuilt) plays the very same notes.
    again = write_report(run.run_dir, out=tmp_path / "again.html").read_text(encoding="utf-8")
    assert PLAYER.findall(again) == PLAYER.findall(page)


def _pitched_batches(rng, length=300):
    """Two batches of crops of instruments [0, 0, 1] and [2, 1], keys 60 .. 64 held for 200 samples."""
    batches, key = [], 60
    for instruments in ([0, 0, 1], [2, 1]):
        n = len(instruments)
        pitch = np.zeros((n, length), np.int32)
        for i in range(n):
            pitch[i, :200] = key
            key += 1
        x = {"audio": rng.integers(0, 256, (n, length)).astype(np.int32),
             "instrument": np.array(instruments, np.int32), "pitch": pitch}
        batches.append((x, rng.integers(0, 256, (n, length)).astype(np.int32)))
    return batches


def test_generated_notes_are_the_models_for_the_same_instrument_pitch_and_seed(run, tmp_path):
    keras.utils.set_random_seed(1)
    model = create_model("wavenet", num_instruments=3, pitch_classes=128, **TINY)
    batches = _pitched_batches(np.random.default_rng(0))
    page = write_report(run.run_dir, model=model, dataset=batches, class_names=["piano", "flute", "organ"],
                        out=tmp_path / "r.html", audio_clips=4, audio_seconds=0.01).read_text(encoding="utf-8")
    # The first crop of each instrument, then the next ones in order: crops 0, 2, 3 and 1.
    order = [0, 2, 3, 1]
    captions = re.findall(r"<figcaption><b>(\w+)</b>, MIDI pitch (\d+)</figcaption>", page)
    assert captions == [("piano", "60"), ("flute", "62"), ("organ", "63"), ("piano", "61")]
    audio = np.concatenate([y for _, y in batches])
    pitch = np.concatenate([x["pitch"] for x, _ in batches])
    expected = decode(generate(Net.from_model(model), 160, instrument=np.array([0, 1, 2, 0]), pitch=pitch[order, :160],
                               seed=0, progress=False))
    wavs = _wavs(page)
    assert len(wavs) == 8 and len(_spectrograms(page)) == 8
    real, made = np.stack([w for w, _ in wavs[0::2]]), np.stack([w for w, _ in wavs[1::2]])
    assert {rate for _, rate in wavs} == {16000} and real.shape == made.shape == (4, 160)
    # 16-bit PCM: within one quantisation step of the decoded mu-law classes.
    np.testing.assert_allclose(real, decode(audio[order, :160]), atol=1 / 16384)
    np.testing.assert_allclose(made, expected, atol=1 / 16384)
    other = decode(generate(Net.from_model(model), 160, instrument=np.array([0, 1, 2, 0]), pitch=pitch[order, :160],
                            seed=1, progress=False))
    assert np.abs(made - other).max() > 0.01  # another seed draws other notes: the check can fail


def test_a_model_that_is_no_wavenet_shows_the_real_notes_only(run, tmp_path):
    inputs = keras.Input((None,), dtype="int32", name="audio")
    outputs = keras.layers.Dense(256, activation="softmax")(keras.layers.Embedding(256, 4)(inputs))
    model = keras.Model(inputs, outputs, name="not_wavenet")
    rng = np.random.default_rng(2)
    batches = [({"audio": rng.integers(0, 256, (3, 100)).astype(np.int32)},
                rng.integers(0, 256, (3, 100)).astype(np.int32))]
    page = write_report(run.run_dir, model=model, dataset=batches, out=tmp_path / "r.html",
                        audio_clips=2).read_text(encoding="utf-8")
    assert "No generated notes: not_wavenet is not a kerascnn wavenet" in page
    wavs = _wavs(page)
    assert len(wavs) == 2 and all(w.shape == (100,) for w, _ in wavs)  # a crop shorter than 0.5 s: all of it
    assert [label for _, label in _spectrograms(page)] == ["real", "real"]
