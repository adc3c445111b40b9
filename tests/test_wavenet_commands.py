"""`kerascnn wavenet train | generate | play | continue` on tiny models, and the MIDI melody reader."""
import json
import os

import numpy as np
import pytest

keras = pytest.importorskip("keras")
sf = pytest.importorskip("soundfile")
from click.testing import CliRunner  # noqa: E402

from kerascnn.cli import main  # noqa: E402
from kerascnn.models import create_model  # noqa: E402

TINY = dict(layers_per_stack=2, stacks=1, residual_channels=4, dilation_channels=4, skip_channels=8, embedding_dim=4)
TIMGM6MB = "/usr/share/sounds/sf2/TimGM6mb.sf2"


def _saved(tmp_path, names=("piano", "flute"), **kwargs):
    keras.utils.set_random_seed(0)
    model = create_model("wavenet", **{**TINY, **kwargs})
    folder = tmp_path / "run"
    folder.mkdir(exist_ok=True)
    model.save(folder / "model.keras")
    (folder / "classes.json").write_text(json.dumps(list(names)))
    return folder / "model.keras"


def _run(args):
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r


def _check_outputs(wav, samples):
    data, rate = sf.read(wav)
    assert rate == 16000 and data.shape == (samples,)
    assert wav.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    return json.loads(wav.with_suffix(".json").read_text())


def test_generate_a_note_and_a_morph(tmp_path):
    model = _saved(tmp_path, num_instruments=2, pitch_classes=128)
    _run(["wavenet", "generate", str(model), "--pitch", "62", "--seconds", "0.05", "--instrument", "flute",
          "--seed", "3", "-o", str(tmp_path / "note.wav")])
    record = _check_outputs(tmp_path / "note.wav", 800)
    assert record["pitch"] == 62 and record["instrument"] == "flute" and record["seed"] == 3
    _run(["wavenet", "generate", str(model), "--seconds", "0.02", "--instrument", "piano:1,flute:3",
          "-o", str(tmp_path / "morph.wav")])
    assert _check_outputs(tmp_path / "morph.wav", 320)["mix"] == {"piano": 1.0, "flute": 3.0}
    r = CliRunner().invoke(main, ["wavenet", "generate", str(model), "--instrument", "oboe", "-o",
                                  str(tmp_path / "x.wav")])
    assert r.exit_code == 2 and "unknown instrument 'oboe'" in r.output


def test_play_a_midi_melody(tmp_path):
    mido = pytest.importorskip("mido")
    path = tmp_path / "melody.mid"
    _write_midi(mido, path)
    model = _saved(tmp_path, num_instruments=2, pitch_classes=128)
    _run(["wavenet", "play", str(model), str(path), "--instrument", "0", "-o", str(tmp_path / "out.wav")])
    record = _check_outputs(tmp_path / "out.wav", 16000 * 3 // 4)  # the last note ends at 0.75 s
    assert record["notes_keys"] == [60, 62, 64]  # 67 lasts no time


def test_continue_a_clip(tmp_path):
    model = _saved(tmp_path, names=("clips",))
    prime = tmp_path / "prime.wav"
    sf.write(prime, 0.3 * np.sin(2 * np.pi * 440 * np.arange(1600) / 16000), 16000)
    _run(["wavenet", "continue", str(model), "--prime", str(prime), "--seconds", "0.05", "-o", str(tmp_path / "c.wav")])
    record = _check_outputs(tmp_path / "c.wav", 1600 + 800)
    assert record["prime_samples"] == 1600


def _write_midi(mido, path):
    """Two voices at 120 bpm (480 ticks a beat = 0.5 s): a low 60 held under 62, 64 above it, then 67."""
    midi = mido.MidiFile(ticks_per_beat=480)
    low, high = mido.MidiTrack(), mido.MidiTrack()
    midi.tracks += [low, high]
    low += [mido.Message("note_on", note=60, velocity=80, time=0), mido.Message("note_off", note=60, time=720)]
    high += [mido.Message("note_on", note=62, velocity=80, time=120), mido.Message("note_off", note=62, time=240),
             mido.Message("note_on", note=64, velocity=80, time=0), mido.Message("note_on", note=64, velocity=0, time=240),
             mido.Message("note_on", note=67, velocity=80, time=120), mido.Message("note_off", note=67, time=0)]
    midi.save(path)


def test_midi_highest_voice_track(tmp_path):
    mido = pytest.importorskip("mido")
    from kerascnn.data.midi import melody_track, read_notes

    path = tmp_path / "m.mid"
    _write_midi(mido, path)
    assert [(round(a, 4), round(b, 4), k) for a, b, k in read_notes(str(path))] == [
        (0.0, 0.75, 60), (0.125, 0.375, 62), (0.375, 0.625, 64)]  # the zero-length 67 sounds for no time
    track = melody_track(str(path), rate=1000)
    expected = np.zeros(750, int)
    expected[:125], expected[125:375], expected[375:625], expected[625:750] = 60, 62, 64, 60
    np.testing.assert_array_equal(track, expected)


@pytest.mark.skipif(not os.path.isfile(TIMGM6MB), reason="needs Debian's timgm6mb-soundfont")
def test_wavenet_train_evaluate_and_report_through_the_harness(tmp_path):
    pytest.importorskip("tinysoundfont")
    args = [f"--model-arg={k}={v}" for k, v in TINY.items()]
    _run(["wavenet", "train", "--data", "notes:timgm6mb:programs=0,24:pitches=60-61:seconds=0.3:hold=0.2", "--epochs", "1",
          "--batch-size", "4", "--precision", "float32", "--data-dir", str(tmp_path / "cache"), *args,
          "-o", str(tmp_path / "run")])
    run = tmp_path / "run"
    history = (run / "history.csv").read_text()
    assert "val_accuracy" in history and (run / "model.keras").is_file()
    assert "bits per step" in (run / "report.html").read_text()
    r = _run(["evaluate", str(run / "model.keras"), "--json"])
    scores = json.loads(r.output[r.output.index("{"):])
    assert 0 <= scores["top1"] <= 1 and scores["loss"] > 0
    _run(["wavenet", "generate", str(run / "model.keras"), "--instrument", "1", "--seconds", "0.01",
          "-o", str(tmp_path / "n.wav")])
    _check_outputs(tmp_path / "n.wav", 160)
