r"""The folder-of-JPEG input pipeline: decode speed alone, and what it costs training.

    python bench/pipeline.py                          # 64x64 JPEGs -> ResNet-20 at 32x32x3
    python bench/pipeline.py --size 500x375 --images 512 --val 128 --model mobilenet_v2 --input 224 \
        --batch 32 --rounds 4 --modes memory,streamed   # photos into a 224 network

Writes a folder of synthetic JPEGs (`--data PATH` layout: one sub-folder per class), then prints
  1. images/s of the streamed pipeline alone (read + decode + resize + augment + batch), iterated
     without a model: what the input side can deliver on this machine;
  2. training images/s of `kerascnn.training.fit` on the same images three ways (`--modes`), interleaved
     round by round in alternating order, each in a fresh subprocess:
       memory   the images as in-memory arrays (`--data idx:DIR`, the reference),
       cached   the JPEG folder with `--cache memory` (what `--cache auto` picks when the decoded
                split fits its budget): decoded once before training, then batches from memory,
       streamed the JPEG folder with `--cache none`: decoded every epoch, in parallel with training;
     and the slowdown of each against `memory` (goal <= 5%), plus the cached run's one-off decode.
Augmentation (random flip and crop) is on in every run: in memory it runs per batch on the cached
pixels, streamed it is fused into each image's resize.
"""
from __future__ import annotations

import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow loads: keep the table readable

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import (VAL_IMAGES, _keras_timer, in_round_order, machine_facts, rates, wait_quiet,  # noqa: E402
                        write_idx)

NUM_CLASSES = 10
MODEL = "resnet20"  # the defaults: tiny JPEGs for a tiny, fast network (the hardest case)
INPUT = 32
MODES = ("memory", "cached", "streamed")


def shape_of(args):
    return (args.input, args.input, 3)


def check_model(parser, args) -> None:
    """A bad --model or --input is a one-line usage error now, not a worker's traceback minutes later."""
    from kerascnn.errors import ModelError
    from kerascnn.models import get_spec

    try:
        spec = get_spec(args.model)
    except ModelError as e:
        parser.error(f"--model: {e}")
    if args.input < max(spec.min_input[:2]):
        parser.error(f"--input: {args.model} needs at least {max(spec.min_input[:2])} pixels. Received: {args.input}")


def make_jpegs(folder: Path, count: int, size, seed: int = 0):
    """`count` smooth random RGB images (quality-90 JPEGs, width x height `size`) in class folders."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    width, height = size
    for i in range(count):
        label = i % NUM_CLASSES
        # low-frequency colour blobs plus a little noise: compresses like a photo, unlike pure noise
        coarse = rng.integers(0, 256, (max(2, height // 16), max(2, width // 16), 3), dtype=np.uint8)
        img = Image.fromarray(coarse).resize((width, height), Image.BILINEAR)
        arr = np.clip(np.asarray(img, np.int16) + rng.integers(-12, 13, (height, width, 3)), 0, 255).astype(np.uint8)
        path = folder / f"class{label}" / f"img{i:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(path, quality=90)


def decode_only(args) -> dict:
    """Iterate the streamed training split of the folder without a model, twice (first warms up)."""
    from kerascnn.config import AugmentConfig, DataConfig
    from kerascnn.data import build_datasets

    augment = AugmentConfig(hflip=True, crop=0.1)
    cfg = DataConfig(spec=args.folder, cache="none", val_split=args.val / (args.images + args.val))
    bundle = build_datasets(cfg, shape_of(args), args.batch, augment, splits=("train",))
    rates_ = []
    for _ in range(3):
        t0, n = time.perf_counter(), 0
        for x, _ in bundle.train:
            n += int(x.shape[0])
        rates_.append(n / (time.perf_counter() - t0))
    return {"images": n, "img_s": rates_[1:]}


def train(args) -> dict:
    """One `kerascnn fit` run on the folder (cached / streamed) or on its in-memory copy."""
    from kerascnn.config import TrainConfig, override
    from kerascnn.data import build_datasets
    from kerascnn.training import fit

    spec = f"idx:{args.idx}" if args.mode == "memory" else args.folder
    cache = {"memory": "auto", "cached": "memory", "streamed": "none"}[args.mode]
    cfg = override(TrainConfig(), model=args.model, input_shape=shape_of(args), epochs=args.epochs,
                   batch_size=args.batch,
                   out=str(Path(args.tmp) / "run"),
                   **{"data.spec": spec, "data.cache": cache, "data.val_split": args.val / (args.images + args.val),
                      "augment.hflip": True, "augment.crop": 0.1})
    times, steps = [], []
    t0 = time.perf_counter()
    setup = {}

    import keras

    class Setup(keras.callbacks.Callback):  # seconds from fit() to the first step: data build, model
        def on_train_begin(self, logs=None):
            setup["seconds"] = time.perf_counter() - t0

    result = fit(cfg, verbose=0, callbacks=[Setup(), _keras_timer(times, steps)])
    count = build_datasets(cfg.data, shape_of(args), cfg.batch_size, splits=("train",)).counts["train"]
    return {"train_images": count, "times": times, "steps": steps,
            "images_per_call": args.batch * result.trained.steps_per_execution,
            "final_loss": result.history[-1]["loss"], "setup_s": setup["seconds"]}


def spawn(args, worker: str, **extra) -> dict:
    cmd = [sys.executable, __file__, "--worker", worker, "--folder", args.folder, "--idx", args.idx,
           "--images", str(args.images), "--val", str(args.val), "--model", args.model, "--input", str(args.input),
           "--epochs", str(args.epochs), "--batch", str(args.batch)]
    for k, v in extra.items():
        cmd += [f"--{k}", str(v)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    if args.wait_quiet:
        wait_quiet(args.wait_quiet)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise RuntimeError(f"{worker} {extra} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=4096, help="training images")
    p.add_argument("--val", type=int, default=VAL_IMAGES, help="held-out images, validated on after every epoch")
    p.add_argument("--modes", default=",".join(MODES), help="which of memory,cached,streamed to train with "
                   "(memory, the reference, must be among them)")
    p.add_argument("--size", default="64x64", help="JPEG width x height")
    p.add_argument("--model", default=MODEL, help="a registered model (kerascnn models)")
    p.add_argument("--input", type=int, default=INPUT, help="the model's input side in pixels")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=3, help="per training run; the first is warm-up")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                   help="before each run, wait up to this long for the CPU to be idle (shared machines)")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--worker", choices=("decode", "train"), help=argparse.SUPPRESS)
    p.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    p.add_argument("--folder", default="", help=argparse.SUPPRESS)
    p.add_argument("--idx", default="", help=argparse.SUPPRESS)
    p.add_argument("--tmp", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    modes = args.modes.split(",")
    if "memory" not in modes or not set(modes) <= set(MODES):
        p.error(f"--modes: a comma-separated subset of {','.join(MODES)} that includes memory")
    check_model(p, args)
    if args.worker:
        print(json.dumps(decode_only(args) if args.worker == "decode" else train(args)))
        return 0

    import numpy as np

    from kerascnn.data import load_images

    size = tuple(int(v) for v in args.size.lower().split("x"))
    facts = machine_facts()
    print(f"machine: {facts['cpu']}, {facts['nproc']} cores, load {facts['load_avg'][0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        args.folder, args.idx = str(Path(tmp) / "jpegs"), str(Path(tmp) / "idx")
        t = time.perf_counter()
        make_jpegs(Path(args.folder), args.images + args.val, size)
        print(f"{args.images + args.val} JPEGs of {size[0]}x{size[1]} written in {time.perf_counter() - t:.0f} s "
              f"({sum(f.stat().st_size for f in Path(args.folder).rglob('*.jpg')) / 2**20:.1f} MiB)")
        # the in-memory reference: the same pictures, decoded and resized once, as IDX arrays
        pixels, names, _ = load_images(args.folder, shape_of(args))
        labels = np.array([int(Path(n).parent.name[len("class"):]) for n in names])
        Path(args.idx).mkdir()
        write_idx(Path(args.idx) / "train-images-idx3-ubyte", np.clip(np.rint(pixels), 0, 255))
        write_idx(Path(args.idx) / "train-labels-idx1-ubyte", labels)

        decode = spawn(args, "decode")
        print(f"\n1. streamed pipeline alone ({size[0]}x{size[1]} JPEG -> decode -> resize to "
              f"{args.input}x{args.input} + flip + crop -> batches of {args.batch}): "
              f"{statistics.median(decode['img_s']):.0f} img/s "
              f"(epochs: {', '.join(f'{r:.0f}' for r in decode['img_s'])})")

        runs = {m: [] for m in modes}
        setups = {m: [] for m in modes}
        for r in range(args.rounds):
            for mode in in_round_order(modes, r):
                with tempfile.TemporaryDirectory(dir=tmp) as run_tmp:
                    res = spawn(args, "train", mode=mode, tmp=run_tmp)
                runs[mode].append(rates(res))
                setups[mode].append(res["setup_s"])
    med = {m: {k: statistics.median(r[k] for r in v) for k in ("steady", "train", "epoch")} for m, v in runs.items()}
    print(f"\n2. kerascnn fit, {args.model} at {args.input}x{args.input}, batch {args.batch}, {args.images} training "
          f"images, hflip + crop 0.1, {args.rounds} rounds x {args.epochs} epochs (first untimed)")
    print(f"  {'':9s} {'train img/s':>12s} {'epoch img/s':>12s} {'slowdown':>9s} {'setup s':>8s}   train img/s per round")
    for mode in runs:
        slow = 1 - med[mode]["train"] / med["memory"]["train"]
        print(f"  {mode:9s} {med[mode]['train']:12.0f} {med[mode]['epoch']:12.0f} {slow:9.1%} "
              f"{statistics.median(setups[mode]):8.1f}   " + " ".join(f"{r['train']:.0f}" for r in runs[mode]))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": facts, "decode": decode, "runs": runs, "setups": setups,
                                               "median": med, "settings": vars(args)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
