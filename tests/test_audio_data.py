"""Audio data (kerascnn.data.audio, audio_pipeline, notes): mu-law against its closed form in numpy,
decoding WAV/FLAC/OGG at other rates and channel counts to 16 kHz mono (the sine's frequency and
the channels' mean survive), bad files skipped and summarised, class folders as labels, the crops'
alignment (inputs, next-sample targets, pitch track), and a tiny render of real notes from
Debian's TimGM6mb soundfont (skipped where it or tinysoundfont is not installed) with its cache.
"""
import logging
import os
import sys

import numpy as np
import pytest

from kerascnn.config import DataConfig
from kerascnn.errors import DataError

sf = pytest.importorskip("soundfile", reason="audio tests need soundfile: pip install kerascnn[audio]")

from kerascnn.data import audio, audio_pipeline, kinds, notes  # noqa: E402  (after the skip)

MU = 255
TIMGM6MB = "/usr/share/sounds/sf2/TimGM6mb.sf2"


def _mu_law_reference(x):
    """G.711 / WaveNet mu-law, written out independently: compand, then the nearest of 256 levels."""
    x = np.clip(x, -1, 1)
    f = np.where(x >= 0, 1.0, -1.0) * np.log(1.0 + MU * np.abs(x)) / np.log(1.0 + MU)
    return np.round((f + 1) * MU / 2 + 1e-9).astype(int)  # the levels never fall on a .5 tie here


def _mu_law_inverse_reference(k):
    y = 2.0 * np.asarray(k) / MU - 1.0
    return np.where(y >= 0, 1.0, -1.0) * ((1.0 + MU) ** np.abs(y) - 1.0) / MU


def test_mu_law_matches_the_closed_form_and_round_trips_within_half_a_level():
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(-1, 1, 20001), rng.uniform(-1, 1, 5000), rng.normal(0, 0.01, 5000), [0.0]])
    classes = audio.mu_law_encode(x)
    np.testing.assert_array_equal(classes, _mu_law_reference(x))
    assert classes.dtype == np.int32 and classes.min() == 0 and classes.max() == 255
    assert len(np.unique(classes)) == 256  # every class is reachable
    assert audio.mu_law_encode(0.0) == 128 and audio.mu_law_encode(-1.0) == 0 and audio.mu_law_encode(1.0) == 255
    assert audio.mu_law_encode(3.0) == 255 and audio.mu_law_encode(-3.0) == 0  # clipped
    levels = np.arange(256)
    np.testing.assert_allclose(audio.mu_law_decode(levels), _mu_law_inverse_reference(levels), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(audio.mu_law_encode(audio.mu_law_decode(levels)), levels)  # a level is a fixed point
    # Round trip: half a level (1/MU) times the expansion's slope at |x| (and half a level above it).
    error = np.abs(audio.mu_law_decode(classes) - x)
    bound = (1 + MU * np.abs(x)) * np.log1p(MU) * (1 + MU) ** (1 / MU) / MU ** 2
    assert (error <= bound + 1e-6).all()
    assert (error / bound).max() > 0.9  # the bound is tight: a coarser quantiser would break it


def _write_sine(path, rate, frequency=440.0, seconds=0.5, amplitudes=(0.6, 0.2), **kwargs):
    t = np.arange(int(rate * seconds)) / rate
    data = np.stack([a * np.sin(2 * np.pi * frequency * t) for a in amplitudes], axis=1)
    sf.write(path, data.astype(np.float32), rate, **kwargs)


def _peak_hz(wave, rate=16_000, pad=16):
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave)), pad * len(wave)))
    return np.fft.rfftfreq(pad * len(wave), 1 / rate)[spectrum.argmax()]


@pytest.mark.parametrize("suffix,rate,lossy", [(".wav", 44_100, False), (".flac", 22_050, False),
                                               (".ogg", 44_100, True)])
def test_files_are_resampled_to_16_khz_and_mixed_down_to_the_channel_mean(tmp_path, suffix, rate, lossy):
    path = str(tmp_path / f"sine{suffix}")
    _write_sine(path, rate, 440.0, 0.5, (0.6, 0.2))
    wave = audio.read_audio(path)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - 8000) <= 1
    assert abs(_peak_hz(wave) - 440.0) < 2.0
    # The mixdown is the mean of the channels: a 0.4 sine, in phase with the written one.
    middle = slice(1000, 7000)  # away from the resampler's edges (and Vorbis's start)
    t = np.arange(len(wave)) / 16_000
    if lossy:  # Vorbis keeps the tone, not the exact samples
        assert abs(np.sqrt(2) * wave[middle].std() - 0.4) < 0.02
    else:
        np.testing.assert_allclose(wave[middle], 0.4 * np.sin(2 * np.pi * 440 * t[middle]), atol=2e-3)


def test_mixdown_keeps_both_channels(tmp_path):
    rate = 22_050
    t = np.arange(rate // 2) / rate
    sf.write(str(tmp_path / "two.wav"), np.stack([0.5 * np.sin(2 * np.pi * 300 * t),
                                                  0.3 * np.sin(2 * np.pi * 1000 * t)], 1), rate)
    wave = audio.read_audio(str(tmp_path / "two.wav"))
    t16 = np.arange(1000, 7000) / 16_000
    basis = np.stack([fn(2 * np.pi * f * t16) for f in (300, 1000) for fn in (np.sin, np.cos)], 1)
    coef = np.linalg.lstsq(basis, wave[1000:7000], rcond=None)[0]
    # Half of each channel's amplitude, in phase: 0.25 at 300 Hz, 0.15 at 1 kHz.
    np.testing.assert_allclose(coef, [0.25, 0.0, 0.15, 0.0], atol=2e-3)


def _audio_tree(root, layout="flat"):
    """Class folders a/ (WAV at 44.1 kHz) and b/ (FLAC at 22.05 kHz, OGG), a corrupt file, a text file."""
    parts = {"flat": [""], "split": ["train", "val"]}[layout]
    for part in parts:
        for cls, (suffix, rate, f) in {"a": (".wav", 44_100, 330.0), "b": (".flac", 22_050, 880.0)}.items():
            folder = root / part / cls
            folder.mkdir(parents=True)
            for i in range(3 if part != "val" else 1):
                _write_sine(str(folder / f"{cls}{i}{suffix}"), rate, f, 0.25)
        _write_sine(str(root / part / "b" / "extra.ogg"), 44_100, 880.0, 0.25)
    (root / parts[0] / "a" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really")
    (root / parts[0] / "a" / "notes.md").write_text("not audio")
    return root


def test_class_folders_give_labels_and_bad_files_are_skipped_and_summarised(tmp_path, caplog):
    root = _audio_tree(tmp_path / "set")
    spec = f"audio:{root}"
    assert kinds.spec_kind(spec) == "audio"
    with caplog.at_level(logging.WARNING, logger="kerascnn.data"):
        bundle = kinds.data_kind("audio").build(DataConfig(spec=spec, val_split=0.25), None, 2, None,
                                                ("train", "val", "all"), clip_samples=512)
    assert bundle.class_names == ["a", "b"]
    everything = bundle.clips["all"]
    assert len(everything) == 7
    for origin, label in zip(everything.origins, everything.labels):
        assert os.path.basename(os.path.dirname(origin)) == bundle.class_names[label]
    for wave, label in zip(everything.waves, everything.labels):  # each class's tone, at 16 kHz
        assert abs(_peak_hz(wave[500:3500]) - (330.0, 880.0)[label]) < 5
    skipped = dict((os.path.basename(p), why) for p, why in bundle.skipped)
    assert skipped["broken.wav"].startswith("not a readable audio file")
    assert skipped["notes.md"] == "not an audio file type"
    summary = [r.message for r in caplog.records if "Skipped" in r.message]
    assert len(summary) == 1 and "Skipped 2 clips" in summary[0] and "broken.wav" in summary[0]
    assert bundle.model_args == {"num_instruments": 2, "pitch_classes": 0}
    assert len(bundle.clips["val"]) == 2 and sorted(bundle.clips["val"].labels) == [0, 1]  # stratified


def test_train_val_folders_and_a_folder_without_classes(tmp_path):
    root = _audio_tree(tmp_path / "split", "split")
    source = audio_pipeline.open_audio_source(DataConfig(spec=f"audio:{root}"))
    assert source.class_names == ["a", "b"] and set(source.splits) == {"train", "val"}
    assert len(source.splits["val"]) == 3 and sorted(source.splits["val"].labels) == [0, 1, 1]
    assert sorted(os.path.basename(p) for p, _ in source.skipped) == ["broken.wav", "notes.md"]
    flat = tmp_path / "clips"
    flat.mkdir()
    for i in range(2):
        _write_sine(str(flat / f"{i}.wav"), 16_000, 500.0, 0.1, (0.5,))
    assert kinds.spec_kind(str(flat)) == "audio" and kinds.spec_kind(str(root)) == "audio"
    one = audio_pipeline.open_audio_source(DataConfig(spec=str(flat)))
    assert one.class_names == ["clips"] and len(one.splits["train"]) == 2
    (tmp_path / "texts" / "pos").mkdir(parents=True)
    (tmp_path / "texts" / "pos" / "1.txt").write_text("good")
    assert kinds.spec_kind(str(tmp_path / "texts")) == "text"


def _synthetic_source(lengths=(5000, 3000, 300), pitched=True):
    """Clips whose pitch track counts samples (t % 97 + 1): a crop's pitch says where it was cut."""
    rng = np.random.default_rng(1)
    waves = [np.clip(rng.normal(0, 0.3, n), -1, 1).astype(np.float32) for n in lengths]
    tracks = [(np.arange(n) % 97 + 1).astype(np.uint8) for n in lengths]
    split = audio.audio_split(waves, np.arange(len(lengths)) % 2, [f"clip{i}" for i in range(len(lengths))],
                              pitch=tracks if pitched else None)
    return audio.AudioSource("synthetic", "synthetic", {"train": split}, ["x", "y"], sample_rate=16_000,
                             pitched=pitched)


def _check_crop(wave, audio_in, pitch_in, target, clip):
    """Find where the crop starts from its pitch track and check every sample against the clip."""
    encoded = audio.mu_law_encode(wave)
    track = np.arange(len(wave)) % 97 + 1
    # pitch_in[t] is the key of sample start + t + 1, the one target[t] predicts
    for start in np.flatnonzero(track[1:] == int(pitch_in[0])):
        window = np.full(clip + 1, 128)
        pitch = np.zeros(clip + 1, int)
        n = max(0, min(clip + 1, len(wave) - start))
        window[:n], pitch[:n] = encoded[start:start + n], track[start:start + n]
        if (np.array_equal(window[:-1], audio_in) and np.array_equal(window[1:], target)
                and np.array_equal(pitch[1:], pitch_in)):
            return start
    raise AssertionError("a crop that is no window of its clip")


def test_crops_are_windows_with_next_sample_targets_and_aligned_pitch():
    source = _synthetic_source()
    clip = 1000
    parts_lengths = source.splits["train"].lengths
    clip_of, starts, room = audio_pipeline.crop_plan(parts_lengths, clip)
    assert list(np.bincount(clip_of)) == [5, 3, 1]  # ceil(length / clip) crops a clip
    assert list(starts[:5]) == [0, 999, 1999, 2999, 3999] and list(room) == [3999, 1999, 0]
    split = source.splits["train"]
    ds = audio_pipeline.audio_dataset(split, clip, 4, shuffle_seed=None, pitched=True)
    seen = []
    for inputs, target in ds:
        assert set(inputs) == {"audio", "instrument", "pitch"}
        assert inputs["audio"].dtype.name == "int32" and target.shape == inputs["audio"].shape
        for b in range(target.shape[0]):
            label = int(inputs["instrument"][b])
            # find the clip: the fixed plan's order is clip by clip
            k = len(seen)
            c = clip_of[k]
            assert label == split.labels[c]
            start = _check_crop(split.waves[c], inputs["audio"][b].numpy(), inputs["pitch"][b].numpy(),
                                target[b].numpy(), clip)
            assert start == starts[k]
            seen.append(start)
    assert len(seen) == 9
    # The short clip (300 samples) is padded with silence and no key.
    assert (target[-1].numpy()[299:] == 128).all() and (inputs["pitch"][-1].numpy()[299:] == 0).all()


def test_training_crops_start_anywhere_and_change_each_epoch():
    source = _synthetic_source(lengths=(4000,), pitched=True)
    split = source.splits["train"]
    ds = audio_pipeline.audio_dataset(split, 500, 8, shuffle_seed=3, pitched=True)
    epochs = []
    for _ in range(2):
        starts = []
        for inputs, target in ds:
            for b in range(target.shape[0]):
                starts.append(_check_crop(split.waves[0], inputs["audio"][b].numpy(), inputs["pitch"][b].numpy(),
                                          target[b].numpy(), 500))
        epochs.append(sorted(starts))
    assert len(epochs[0]) == 8 and all(0 <= s <= 4000 - 501 for s in epochs[0] + epochs[1])
    assert epochs[0] != epochs[1]
    again = [sorted(_check_crop(split.waves[0], i["audio"][b].numpy(), i["pitch"][b].numpy(), t[b].numpy(), 500)
                    for i, t in audio_pipeline.audio_dataset(split, 500, 8, 3, True) for b in range(t.shape[0]))]
    assert again[0] == epochs[0]  # the same seed draws the same crops


def test_clip_length_and_refusals():
    assert audio_pipeline.clip_length(None, None) == audio_pipeline.DEFAULT_CLIP_SAMPLES
    assert audio_pipeline.clip_length(None, {"audio": (2048,)}) == 2048
    assert audio_pipeline.clip_length(None, (None, 1)) == audio_pipeline.DEFAULT_CLIP_SAMPLES
    assert audio_pipeline.clip_length(300, (2048,)) == 300
    source = _synthetic_source(pitched=False)
    bundle = audio_pipeline.build_audio(DataConfig(spec="synthetic", val_split=0.0), None, 2, None, ("train",),
                                        source=source, clip_samples=256)
    inputs, _ = next(iter(bundle.train))
    assert set(inputs) == {"audio", "instrument"} and bundle.counts["train"] == 20 + 12 + 2
    from kerascnn.config import AugmentConfig
    from kerascnn.errors import SettingError

    with pytest.raises(SettingError, match="augmentation"):
        audio_pipeline.build_audio(DataConfig(spec="x"), None, 2, AugmentConfig(hflip=True), source=source)


def test_load_inputs_reads_files_and_folders_and_skips_bad_ones(tmp_path):
    _write_sine(str(tmp_path / "a.flac"), 48_000, 440.0, 0.2)
    (tmp_path / "b.wav").write_bytes(b"nothing")
    waves, files, skipped = kinds.data_kind("audio").load_inputs([str(tmp_path), str(tmp_path / "gone.wav")], None)
    assert [os.path.basename(f) for f in files] == ["a.flac"] and len(waves[0]) == 3200
    assert {os.path.basename(p) for p, _ in skipped} == {"b.wav", "gone.wav"}
    with pytest.raises(DataError, match="No usable audio"):
        audio.load_audio_inputs([str(tmp_path / "b.wav")])


def test_missing_soundfile_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "soundfile", None)
    with pytest.raises(DataError, match=r"pip install kerascnn\[audio\]"):
        audio.read_audio("x.wav")


def test_notes_specs_parse(tmp_path):
    font = tmp_path / "my.sf2"
    font.write_bytes(b"RIFF")
    parsed = notes.parse_notes_spec(f"notes:{font}:programs=piano,24,violin:pitches=60-62,70:velocities=50,100"
                                    f":seconds=0.5:hold=0.25:test_pitches=70")
    assert parsed.programs == (0, 24, 40) and parsed.names == ("piano", "acoustic_guitar_nylon", "violin")
    assert parsed.pitches == (60, 61, 62, 70) and parsed.velocities == (50, 100) and parsed.test_pitches == (70,)
    assert (parsed.samples, parsed.held, parsed.rate) == (8000, 4000, 16_000)
    for spec in ("notes", "notes:timgm6mb", f"notes:{font}:pitches=60"):
        assert kinds.spec_kind(spec) == "audio"
    assert kinds.spec_kind("notes_folder") == "image"  # a name that only starts like the prefix
    for bad, words in ((f"notes:{font}:color=red", "not an option"), (f"notes:{font}:programs=sax,flute,fiddle,zzzz",
                                                                       "Unknown instrument"),
                       (f"notes:{font}:programs=bass guitar", "Unknown|ambiguous"), (f"notes:{font}:pitches=90-80", "ranges"),
                       (f"notes:{font}:hold=2", r"\(0, 1\]"), (f"notes:{font}:test_pitches=48-84", "some"),
                       (f"notes:{tmp_path}/none.sf2", "no such soundfont"), (f"notes:{font}:programs=128", "0 to 127")):
        with pytest.raises(DataError, match=words):
            notes.parse_notes_spec(bad)
    if not os.path.isfile(notes.SOUNDFONTS["fluidr3_gm"][0]):
        with pytest.raises(DataError, match="apt-get install fluid-soundfont-gm"):
            notes.parse_notes_spec("notes:fluidr3_gm")


def test_missing_renderer_is_one_line_saying_what_to_install(monkeypatch, tmp_path):
    font = tmp_path / "my.sf2"
    font.write_bytes(b"RIFF")
    monkeypatch.setitem(sys.modules, "tinysoundfont", None)
    with pytest.raises(DataError, match="pip install --no-deps tinysoundfont"):
        kinds.data_kind("audio").check_spec(f"notes:{font}")


@pytest.fixture
def renderer():
    pytest.importorskip("tinysoundfont", reason="rendering notes needs tinysoundfont: pip install --no-deps "
                                                "tinysoundfont")
    if not os.path.isfile(TIMGM6MB):
        pytest.skip("rendering notes needs Debian's soundfont: apt-get install timgm6mb-soundfont")


def test_rendered_notes_sound_at_their_pitch_and_are_cached(renderer, tmp_path, monkeypatch):
    spec = "notes:timgm6mb:programs=violin:pitches=57,69:seconds=0.25:hold=0.2"
    cfg = DataConfig(spec=spec, data_dir=str(tmp_path), val_split=0.0)
    source = kinds.data_kind("audio").open_source(cfg)
    assert source.pitched and source.class_names == ["violin"] and "rendered" in source.kind
    clips = source.splits["train"]
    assert list(clips.notes) == [57, 69] and all(len(w) == 4000 for w in clips.waves)
    for wave, track, note in zip(clips.waves, clips.pitch, clips.notes):
        expected = 440.0 * 2 ** ((note - 69) / 12)
        measured = _peak_hz(wave[400:3200])
        assert abs(12 * np.log2(measured / expected)) < 1.0  # within a semitone
        assert (track[:3200] == note).all() and (track[3200:] == 0).all()
        assert np.abs(wave[:3200]).max() > 0.01
    files = os.listdir(tmp_path / "notes")
    assert len(files) == 1 and files[0].startswith("notes-TimGM6mb-") and files[0].endswith(".npz")

    def no_render(*args):
        raise AssertionError("rendered again despite the cache")

    monkeypatch.setattr(notes, "render_notes", no_render)
    again = kinds.data_kind("audio").open_source(cfg)
    assert "cached" in again.kind
    for a, b in zip(again.splits["train"].waves, clips.waves):
        np.testing.assert_array_equal(a, b)
    # Another option is another render (and another cache file).
    with pytest.raises(AssertionError, match="rendered again"):
        kinds.data_kind("audio").open_source(DataConfig(spec=spec + ":velocities=60", data_dir=str(tmp_path)))


def test_a_rendered_note_does_not_depend_on_the_notes_before_it(renderer):
    first = notes.render_notes(notes.parse_notes_spec("notes:timgm6mb:programs=piano:pitches=60,69:seconds=0.3"
                                                      ":hold=0.25"))
    second = notes.render_notes(notes.parse_notes_spec("notes:timgm6mb:programs=piano:pitches=69,60:seconds=0.3"
                                                       ":hold=0.25"))
    np.testing.assert_array_equal(first["audio"], second["audio"][::-1])
    assert list(first["note"]) == [60, 69] and not first["silent"].any()


def test_rendered_notes_batches(renderer, tmp_path):
    spec = "notes:timgm6mb:programs=flute,violin:pitches=60,64,67:seconds=0.25:hold=0.2:test_pitches=64"
    bundle = kinds.data_kind("audio").build(DataConfig(spec=spec, data_dir=str(tmp_path), val_split=0.0), None, 4,
                                            None, ("train", "eval"), clip_samples=1000)
    assert bundle.class_names == ["flute", "violin"] and bundle.eval_split == "test"
    assert sorted(bundle.clips["eval"].notes) == [64, 64] and set(bundle.clips["train"].notes) == {60, 67}
    assert bundle.model_args == {"num_instruments": 2, "pitch_classes": 128, "sample_rate": 16000}
    assert bundle.counts["train"] == 4 * 4
    for inputs, target in bundle.eval:
        pitch = inputs["pitch"].numpy()
        assert set(np.unique(pitch)) <= {0, 64}
        assert (inputs["audio"].numpy()[:, 1:] == target.numpy()[:, :-1]).all()
