r"""WaveNet (issue 24): generation speed, training throughput, likelihood against baselines, and
whether generated notes sound at the pitch asked for.

    python bench/wavenet.py speed                       # fast (queued) against plain generation
    python bench/wavenet.py throughput                  # training samples per second on this machine
    python bench/wavenet.py quality MODEL.keras         # test NLL + pitch accuracy of generated notes
    python bench/wavenet.py periodicity                 # what one period back predicts (PeriodTaps' case)
    python bench/wavenet.py demos MODEL.keras -o DIR    # the README's WAVs, through the CLI commands

speed: random-weight WaveNets of the default width (32 residual / 32 dilation / 64 skip channels,
4 instruments, pitched) with receptive fields of 1,024 (dilations 1..256, 2 stacks) and 4,094
samples (1..512, 4 stacks), and the shipped 2,048; the plain algorithm recomputes the receptive
field for every sample (what a naive sampler does), the fast one (Paine et al. 2016) keeps queues.
Both run the same float64 numpy arithmetic and draw identical samples (checked here, and in
tests/test_wavenet_generate.py); a batch of notes shares each step's matrix products.

throughput: `train_on_batch` steps of the default model on batches of 16 crops of 4,096 samples,
float32 and mixed_bfloat16 (the harness's `--precision auto` on a CPU with bf16 units), after two
warm-up steps.

quality (on the run's data, its config.json; the test split holds the pitches never trained on):
- negative log-likelihood of the test clips' mu-law classes in bits per sample, every sample of
  every clip with the context before it, against (a) the training clips' class histogram (the
  entropy a model with no context reaches) and (b) linear prediction: an order-p least-squares
  predictor of the next sample from the p before it, fitted on the training clips, its residual a
  Gaussian (sigma from the training residuals) integrated over each class's interval, in the
  linear and the mu-law-companded domain;
- pitch accuracy: every instrument at every MIDI key of the data (training and held-out pitches)
  generated for `--seconds` with the key held, the fundamental measured by YIN (de Cheveigne &
  Kawahara 2002) on 40 ms frames from 0.1 s on, their median; a note counts when within 50 cents
  of the key. The same measurement on the real rendered notes checks the estimator itself.
demos: a note per instrument, a morph of two instruments and a Bach chorale's soprano line (music21's
corpus, `pip install music21`) through `kerascnn wavenet generate | play`.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

CENTS = 50.0  # a note is on pitch within this many cents of the key
FRAME_S, HOP_S, FROM_S = 0.04, 0.02, 0.1  # YIN frames, their hop, and where measuring starts


# ---- speed ----------------------------------------------------------------------------------------

def _net(layers_per_stack: int, stacks: int, seed: int = 0):
    import keras

    from kerascnn.models.wavenet import wavenet
    from kerascnn.synthesis.wavenet_generate import Net

    keras.utils.set_random_seed(seed)
    model = wavenet(num_instruments=4, pitch_classes=128, layers_per_stack=layers_per_stack, stacks=stacks)
    return Net.from_model(model)


def speed(args) -> Dict:
    from kerascnn.synthesis.wavenet_generate import generate

    rows = []
    for layers, stacks in ((9, 2), (10, 2), (10, 4)):
        net = _net(layers, stacks)
        for batch in args.batches:
            inst = np.arange(batch) % 4
            # Fast: its cost a sample is the same at every t, so time it from silence.
            start = time.perf_counter()
            generate(net, args.fast_samples, instrument=inst, pitch=np.full((batch, args.fast_samples), 60), seed=1,
                     progress=False)
            fast_s = time.perf_counter() - start
            # Plain: after a prime of a whole receptive field, so every sample recomputes a full
            # window (from silence its first windows would be short); the prime is not timed work.
            prime = np.random.default_rng(0).integers(0, 256, (batch, net.receptive_field))
            kw = dict(instrument=inst, pitch=np.full((batch, args.plain_samples), 60), prime=prime, seed=1,
                      progress=False)
            start = time.perf_counter()
            plain = generate(net, args.plain_samples, fast=False, **kw)
            plain_s = time.perf_counter() - start
            same = bool(np.array_equal(generate(net, args.plain_samples, fast=True, **kw), plain))
            row = {"receptive_field": net.receptive_field, "layers": len(net.layers), "batch": batch,
                   "fast_samples_per_s": batch * args.fast_samples / fast_s,
                   "plain_samples_per_s": batch * args.plain_samples / plain_s, "identical": same}
            row["ratio"] = row["fast_samples_per_s"] / row["plain_samples_per_s"]
            rows.append(row)
            print(f"field {row['receptive_field']:5d} ({row['layers']} layers), batch {batch:3d}: fast "
                  f"{row['fast_samples_per_s']:9.0f} samples/s, plain {row['plain_samples_per_s']:8.1f} samples/s, "
                  f"x{row['ratio']:.0f}, identical samples: {same}", flush=True)
    return {"speed": rows}


# ---- throughput -----------------------------------------------------------------------------------

def throughput(args) -> Dict:
    import keras

    from kerascnn.models.wavenet import wavenet

    rng = np.random.default_rng(0)
    batch, length = args.batch_size, args.crop
    x = {"audio": rng.integers(0, 256, (batch, length)).astype("int32"),
         "instrument": rng.integers(0, 4, (batch,)).astype("int32"),
         "pitch": rng.integers(48, 85, (batch, length)).astype("int32")}
    y = rng.integers(0, 256, (batch, length)).astype("int32")
    rows = []
    for policy in ("float32", "mixed_bfloat16"):
        keras.mixed_precision.set_global_policy(policy)
        model = wavenet(num_instruments=4, pitch_classes=128)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        for _ in range(2):
            model.train_on_batch(x, y)
        start = time.perf_counter()
        for _ in range(args.steps):
            model.train_on_batch(x, y)
        took = (time.perf_counter() - start) / args.steps
        rows.append({"precision": policy, "seconds_per_step": took, "samples_per_s": batch * length / took})
        print(f"{policy:15s}: {took:.2f} s a step of {batch} x {length} samples, {batch * length / took:,.0f} "
              f"samples/s", flush=True)
    keras.mixed_precision.set_global_policy("float32")
    return {"throughput": rows}


# ---- quality --------------------------------------------------------------------------------------

def _bin_edges() -> np.ndarray:
    """The 257 edges of the mu-law classes in the companded domain: class k covers
    [(2k - 1)/255 - 1, (2k + 1)/255 - 1], the outer ones open-ended."""
    edges = (2 * np.arange(257) - 1) / 255.0 - 1.0
    edges[0], edges[-1] = -np.inf, np.inf
    return edges




def _lagged(waves: List[np.ndarray], order: int, rows: int, rng) -> tuple:
    """(contexts (N, order), next samples (N,)) at random positions of `waves` (zeros before a clip)."""
    xs, ys = [], []
    per = max(1, rows // len(waves))
    for w in waves:
        padded = np.concatenate([np.zeros(order), w])
        at = rng.integers(0, len(w), per)
        xs.append(np.stack([padded[at + k] for k in range(order)], axis=1))
        ys.append(w[at])
    return np.concatenate(xs), np.concatenate(ys)


def _gaussian_bits(mean: np.ndarray, sigma: float, target: np.ndarray, companded: bool) -> float:
    """Mean -log2 P(class) when the next value is N(mean, sigma^2) in the linear or companded domain,
    with 0.1% of the mass spread uniformly (so a surprise costs at most ~18 bits)."""
    from scipy.special import ndtr

    from kerascnn.models import mulaw

    edges = _bin_edges()
    lo, hi = edges[target], edges[target + 1]
    if not companded:
        lo, hi = mulaw.expand(np.clip(lo, -1, 1)), mulaw.expand(np.clip(hi, -1, 1))
        lo[target == 0], hi[target == 255] = -np.inf, np.inf
    p = ndtr((hi - mean) / sigma) - ndtr((lo - mean) / sigma)
    p = 0.999 * p + 0.001 / 256
    return float(-np.log2(p).mean())


def linear_prediction_bits(train: List[np.ndarray], test: List[np.ndarray], test_classes: List[np.ndarray],
                           order: int, companded: bool, rows: int = 200_000, seed: int = 0) -> float:
    from kerascnn.models import mulaw

    f = mulaw.compand if companded else (lambda v: v)
    rng = np.random.default_rng(seed)
    x, y = _lagged([f(w) for w in train], order, rows, rng)
    coef, *_ = np.linalg.lstsq(np.c_[x, np.ones(len(x))], y, rcond=None)
    sigma = float(np.std(y - np.c_[x, np.ones(len(x))] @ coef))
    bits = []
    for w, c in zip(test, test_classes):
        v = f(w)
        padded = np.concatenate([np.zeros(order), v])
        ctx = np.stack([padded[k: k + len(v)] for k in range(order)], axis=1)
        bits.append(_gaussian_bits(np.c_[ctx, np.ones(len(ctx))] @ coef, sigma, c, companded) * len(v))
    return float(sum(bits) / sum(len(w) for w in test))


def wavenet_bits(model, split, batch: int = 2) -> float:
    """The model's mean -log2 P(class of sample t+1 | samples 0..t) over every sample of every clip
    (the first one predicted from silence, as the generator starts)."""
    from kerascnn.data.audio import mu_law_encode

    total, count = 0.0, 0
    for i in range(0, len(split), batch):
        waves = [np.asarray(w) for w in split.waves[i: i + batch]]
        length = max(len(w) for w in waves)
        classes = np.full((len(waves), length + 1), 128, np.int32)
        pitch = np.zeros((len(waves), length), np.int32)
        for r, w in enumerate(waves):
            classes[r, 1: len(w) + 1] = mu_law_encode(w)
            pitch[r, : len(w)] = np.asarray(split.pitch[i + r])
        inputs = {"audio": classes[:, :-1], "pitch": pitch}
        if "instrument" in model.input:
            inputs["instrument"] = np.asarray(split.labels[i: i + batch], np.int32)
        probs = np.asarray(model.predict_on_batch(inputs), np.float64)
        chosen = np.take_along_axis(probs, classes[:, 1:, None], axis=-1)[..., 0]
        for r, w in enumerate(waves):
            total -= float(np.log2(np.maximum(chosen[r, : len(w)], 1e-12)).sum())
            count += len(w)
    return total / count


def yin_f0(wave: np.ndarray, rate: int, fmin: float = 60.0, fmax: float = 1500.0, threshold: float = 0.15) -> float:
    """The median YIN fundamental (Hz) of 40 ms frames from 0.1 s on; nan when none is voiced."""
    frame, hop = int(FRAME_S * rate), int(HOP_S * rate)
    lo, hi = int(rate / fmax), int(rate / fmin)
    estimates = []
    for start in range(int(FROM_S * rate), len(wave) - frame - hi, hop):
        x = wave[start: start + frame + hi].astype(np.float64)
        if np.sqrt(np.mean(x ** 2)) < 1e-3:
            continue
        base = x[:frame]
        d = np.array([np.sum((base - x[tau: tau + frame]) ** 2) for tau in range(hi + 1)])
        cmnd = np.ones_like(d)
        cmnd[1:] = d[1:] * np.arange(1, hi + 1) / np.maximum(np.cumsum(d[1:]), 1e-12)
        below = np.flatnonzero(cmnd[lo: hi] < threshold)
        if len(below):
            tau = lo + below[0]
            while tau + 1 < hi and cmnd[tau + 1] < cmnd[tau]:
                tau += 1  # the dip's bottom
        else:
            tau = lo + int(np.argmin(cmnd[lo: hi]))
        a, b, c = cmnd[tau - 1], cmnd[tau], cmnd[min(tau + 1, hi)]
        shift = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) > 0 else 0.0
        estimates.append(rate / (tau + shift))
    return float(np.median(estimates)) if estimates else float("nan")


def cents_off(f0: float, key: int) -> float:
    return float("inf") if not np.isfinite(f0) else abs(1200 * math.log2(f0 / (440.0 * 2 ** ((key - 69) / 12))))


def _pitch_table(names, keys, instruments, errors, test_pitches) -> Dict:
    ok = np.asarray(errors) <= CENTS
    out = {"all": float(ok.mean()), "notes": len(ok)}
    held = np.isin(keys, test_pitches)
    if held.any():
        out["held_out_pitches"] = float(ok[held].mean())
        out["training_pitches"] = float(ok[~held].mean())
    out["per_instrument"] = {n: float(ok[np.asarray(instruments) == i].mean()) for i, n in enumerate(names)}
    return out


def quality(args) -> Dict:
    from kerascnn.config import DataConfig
    from kerascnn.data.audio import mu_law_decode, mu_law_encode
    from kerascnn.data.notes import load_notes, parse_notes_spec
    from kerascnn.models.loading import load_model
    from kerascnn.synthesis.wavenet_generate import Net, generate

    run = Path(args.model).parent
    spec = args.data or json.loads((run / "config.json").read_text())["data"]["spec"]
    notes = parse_notes_spec(spec)
    source = load_notes(DataConfig(spec=spec))
    train, test = source.splits["train"], source.splits.get("test")
    model = load_model(args.model)
    rate = source.sample_rate
    result: Dict = {"model": str(args.model), "data": spec}

    # likelihood of the held-out pitches' clips
    if test is not None:
        train_waves = [np.asarray(w, np.float64) for w in train.waves]
        test_waves = [np.asarray(w, np.float64) for w in test.waves]
        test_classes = [mu_law_encode(w).astype(np.int64) for w in test_waves]
        counts = np.bincount(np.concatenate([mu_law_encode(w) for w in train_waves]), minlength=256) + 1.0
        p = counts / counts.sum()
        nll = {"histogram_entropy_train": float(-(p * np.log2(p)).sum()),
               "histogram": float(-np.log2(p[np.concatenate(test_classes)]).mean())}
        for order in args.orders:
            for companded in (False, True):
                key = f"linear_prediction_p{order}_{'mulaw' if companded else 'linear'}"
                nll[key] = linear_prediction_bits(train_waves, test_waves, test_classes, order, companded)
        start = time.perf_counter()
        nll["wavenet"] = wavenet_bits(model, test)
        nll["wavenet_seconds"] = time.perf_counter() - start
        result["test_nll_bits_per_sample"] = nll
        for k, v in nll.items():
            print(f"test NLL {k:36s} {v:.3f}", flush=True)

    # pitch accuracy: real notes (the estimator's check) and generated ones
    keys_all = np.array(notes.pitches)
    names = list(notes.names)
    both = [s for s in (train, test) if s is not None]
    real_keys = np.concatenate([s.notes for s in both])
    real_inst = np.concatenate([s.labels for s in both])
    real_err = [cents_off(yin_f0(np.asarray(w, np.float64)[: notes.held], rate), k)
                for s in both for w, k in zip(s.waves, s.notes)]
    result["real_notes_on_pitch"] = _pitch_table(names, real_keys, real_inst, real_err, notes.test_pitches)
    print("real notes on pitch:", json.dumps(result["real_notes_on_pitch"]), flush=True)

    net = Net.from_model(model)
    inst = np.repeat(np.arange(len(names)), len(keys_all))
    keys = np.tile(keys_all, len(names))
    length = int(args.seconds * rate)
    start = time.perf_counter()
    classes = generate(net, length, instrument=inst, pitch=np.repeat(keys[:, None], length, axis=1),
                       temperature=args.temperature, seed=args.seed)
    took = time.perf_counter() - start
    waves = mu_law_decode(classes).astype(np.float64)
    f0 = [yin_f0(w, rate) for w in waves]
    errors = [cents_off(f, k) for f, k in zip(f0, keys)]
    table = _pitch_table(names, keys, inst, errors, notes.test_pitches)
    table.update({"temperature": args.temperature, "seconds": args.seconds, "generation_seconds": took,
                  "generated_samples_per_s": len(keys) * length / took,
                  "median_cents_off": float(np.median(np.minimum(errors, 1e9))),
                  "silent": int(sum(not np.isfinite(f) for f in f0))})
    result["generated_notes_on_pitch"] = table
    print("generated notes on pitch:", json.dumps(table), flush=True)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        _pitch_figure(out / "pitch_accuracy.png", names, keys, inst, errors, notes.test_pitches)
        np.savez_compressed(out / "generated_notes.npz", classes=classes.astype(np.uint8), keys=keys, instruments=inst)
    return result


def _residual_fraction(target: np.ndarray, predictor: np.ndarray) -> float:
    """Variance of target - g * predictor (g least squares) over the target's: what the predictor leaves."""
    gain = float(predictor @ target) / max(float(predictor @ predictor), 1e-30)
    return float(np.var(target - gain * predictor) / max(np.var(target), 1e-30))


def periodicity(args) -> Dict:
    """How much of each rendered note its own past one period back predicts (what PeriodTaps feed a
    WaveNet), against the previous sample: the variance each leaves, the median per instrument."""
    from kerascnn.config import DataConfig
    from kerascnn.data.notes import load_notes, parse_notes_spec

    notes = parse_notes_spec(args.data)
    source = load_notes(DataConfig(spec=args.data))
    rate = source.sample_rate
    rows: Dict[str, Dict[str, list]] = {}
    for split in source.splits.values():
        for wave, key, label in zip(split.waves, split.notes, split.labels):
            x = np.asarray(wave, np.float64)[: notes.held]
            n = np.arange(rate // 50, len(x))  # from 20 ms on: past the attack's first periods
            back = rate / (440.0 * 2.0 ** ((key - 69) / 12.0))  # the tap for sample n is at n - back
            lo = np.floor(n - back).astype(np.int64)
            later = (n - back) - lo
            tap = (1.0 - later) * x[lo] + later * x[lo + 1]
            row = rows.setdefault(notes.names[int(label)], {"period_back": [], "previous_sample": []})
            row["period_back"].append(_residual_fraction(x[n], tap))
            row["previous_sample"].append(_residual_fraction(x[n], x[n - 1]))
    table = {name: {k: float(np.median(v)) for k, v in row.items()} | {"notes": len(row["period_back"])}
             for name, row in rows.items()}
    for name, row in table.items():
        print(f"{name:10s} {row['notes']:3d} notes: variance left by the sample one period back "
              f"{row['period_back']:.4f}, by the previous sample {row['previous_sample']:.4f}", flush=True)
    return {"data": args.data, "median_residual_variance_fraction": table}


def _pitch_figure(path: Path, names, keys, inst, errors, test_pitches) -> None:
    from kerascnn.runtime.plots import figure, save_png

    fig, ax = figure(figsize=(9, 3.5))
    errors = np.clip(np.asarray(errors, np.float64), 1.0, 1200.0)  # log axis: 1 cent at best
    for i, n in enumerate(names):
        rows = np.asarray(inst) == i
        ax.plot(np.asarray(keys)[rows], errors[rows], "o-", ms=3, label=n)
    for k in test_pitches:
        ax.axvline(k, color="0.8", lw=4, zorder=0)
    ax.axhline(CENTS, color="k", ls="--", lw=1)
    ax.set_yscale("log")
    ax.set_ylim(0.8, 1500)
    ax.set_xlabel("MIDI key (grey: never trained on)")
    ax.set_ylabel("|cents off| (1200: an octave or more, or silent)")
    ax.set_title("Generated notes: measured fundamental against the key asked for")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path)


# ---- demos ----------------------------------------------------------------------------------------

def chorale_soprano(path: Path, name: str = "bach/bwv66.6") -> Path:
    """A Bach chorale's soprano part as a MIDI file (music21's corpus)."""
    from music21 import corpus

    score = corpus.parse(name)
    score.parts[0].write("midi", fp=str(path))
    return path


def demos(args) -> Dict:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = json.loads((Path(args.model).parent / "classes.json").read_text())
    cmd = [sys.executable, "-m", "kerascnn", "wavenet"]
    runs = [[*cmd, "generate", args.model, "--pitch", "60", "--seconds", "1", "--instrument", n, "--seed", "0",
             "-o", str(out / f"note60_{n}.wav")] for n in names]
    a, b = args.morph.split(",")
    runs.append([*cmd, "generate", args.model, "--pitch", "60", "--seconds", "1", "--instrument", f"{a}:0.5,{b}:0.5",
                 "--seed", "0", "-o", str(out / f"morph60_{a}_{b}.wav")])
    midi = chorale_soprano(out / "bwv66.6_soprano.mid")
    runs.append([*cmd, "play", args.model, str(midi), "--instrument", args.melody_instrument, "--seconds",
                 str(args.melody_seconds), "--seed", "0", "-o", str(out / f"bwv66.6_soprano_{args.melody_instrument}.wav")])
    timings = []
    for run in runs:
        start = time.perf_counter()
        subprocess.run(run, check=True)
        timings.append({"command": "kerascnn " + " ".join(run[3:]), "seconds": time.perf_counter() - start})
        print(f"{timings[-1]['seconds']:6.1f} s  {timings[-1]['command']}", flush=True)
    return {"demos": timings}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("speed")
    p.add_argument("--fast-samples", type=int, default=2000)
    p.add_argument("--plain-samples", type=int, default=20)
    p.add_argument("--batches", type=lambda s: [int(v) for v in s.split(",")], default=[1, 16])
    p = sub.add_parser("throughput")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--crop", type=int, default=4096)
    p = sub.add_parser("quality")
    p.add_argument("model")
    p.add_argument("--data", default=None, help="a notes: spec; default: the run's (config.json beside the model)")
    p.add_argument("--seconds", type=float, default=0.5)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--orders", type=lambda s: [int(v) for v in s.split(",")], default=[16, 128])
    p.add_argument("-o", "--out", default=None, help="a folder for the pitch figure and the generated notes")
    p = sub.add_parser("periodicity")
    p.add_argument("--data", default="notes:timgm6mb:test_pitches=50,61,73,82")
    p = sub.add_parser("demos")
    p.add_argument("model")
    p.add_argument("-o", "--out", required=True)
    p.add_argument("--morph", default="flute,violin")
    p.add_argument("--melody-instrument", default="flute")
    p.add_argument("--melody-seconds", type=float, default=8.0)
    for p in sub.choices.values():
        p.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    result = {"speed": speed, "throughput": throughput, "quality": quality, "periodicity": periodicity,
              "demos": demos}[args.command](args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
