r"""Evaluating the papers' way and shipping the result, on a real test set (issue 14, item 6).

    python bench/deploy.py --out /tmp/bdeploy        # LeNet-5 on the full Fashion-MNIST (Debian package)

1. Trains `--members` copies of `--model` with `kerascnn fit` (seeds 1, 2, ...; a member whose
   model.keras is already in --out is reused), each as `--fit-args` says.
2. Scores member 1 on the data's test split with `kerascnn.evaluate`: plain, `--tta flip` and
   `--tta 10crop`; then the ensemble of all members (the average of their probabilities).
3. Exports member 1 with `kerascnn.inference.export` to float TFLite and to int8 TFLite (calibrated on the
   training images) and measures each on the whole test split with TensorFlow Lite's interpreter:
   file size, top-1, and time per image (batch 1, median of `--latency` single-image calls, after a
   warm-up), next to the Keras model's own batch-1 time.
Prints a table; --json writes the figures.
"""
from __future__ import annotations

import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

FASHION = "/usr/share/datasets/fashion-mnist"


def train_members(args, out: Path) -> list:
    import kerascnn

    paths = []
    for seed in range(1, args.members + 1):
        run = out / f"member{seed}"
        if not (run / "model.keras").is_file():
            start = time.perf_counter()
            kerascnn.fit(args.model, data=args.data, seed=seed, out=str(run), verbose=2, **args.fit_args)
            print(f"member {seed}: trained in {time.perf_counter() - start:.0f} s", flush=True)
        paths.append(run / "model.keras")
    return paths


def test_images(model_path: Path, data: str):
    """(uint8 images at the model's input, labels) of the data's whole test split."""
    import numpy as np

    from kerascnn.config import DataConfig
    from kerascnn.data import build_datasets
    from kerascnn.models.loading import load_model, model_image_shape

    shape = model_image_shape(load_model(model_path))
    bundle = build_datasets(DataConfig(spec=data), shape, 256, splits=("test",))
    xs, ys = zip(*((np.asarray(x), np.argmax(np.asarray(y), -1)) for x, y in bundle.test))
    return np.clip(np.round(np.concatenate(xs)), 0, 255).astype(np.uint8), np.concatenate(ys)


def tflite_scores(path: Path, images, labels, latency: int) -> dict:
    """Top-1 over all `images` and the median seconds of one single-image call."""
    import numpy as np
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=os.cpu_count())
    inp, outp = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(inp["index"], (1, *images.shape[1:]))
    interpreter.allocate_tensors()

    def one(image):
        interpreter.set_tensor(inp["index"], image[None].astype(inp["dtype"]))
        interpreter.invoke()
        return interpreter.get_tensor(outp["index"])[0]

    predictions = np.array([np.argmax(one(image)) for image in images])
    times = []
    for image in images[:latency]:
        start = time.perf_counter()
        one(image)
        times.append(time.perf_counter() - start)
    return {"top1": float(np.mean(predictions == labels)), "seconds_per_image": statistics.median(times),
            "bytes": path.stat().st_size}


def keras_latency(model_path: Path, images, latency: int) -> float:
    from kerascnn.models.loading import load_model

    model = load_model(model_path)
    model.predict_on_batch(images[:1])  # trace once
    times = []
    for image in images[:latency]:
        start = time.perf_counter()
        model.predict_on_batch(image[None].astype("float32"))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="Work folder (members are reused from it).")
    parser.add_argument("--data", default=f"idx:{FASHION}")
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--fit-args", type=json.loads, default={"epochs": 20, "hflip": True},
                        help='kerascnn.fit keywords as JSON (default: {"epochs": 20, "hflip": true}).')
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--latency", type=int, default=500, help="Single-image calls timed per format.")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.data == f"idx:{FASHION}" and not Path(FASHION).is_dir():
        parser.exit(2, f"{FASHION} missing: apt-get install -y dataset-fashion-mnist\n")
    import kerascnn
    from kerascnn.inference.export import export

    args.out.mkdir(parents=True, exist_ok=True)
    members = train_members(args, args.out)
    figures = {}
    for tta in ("none", "flip", "10crop"):
        r = kerascnn.evaluate(members[0], data=args.data, split="test", tta=tta, plot=False)
        figures[f"member 1, tta {tta}"] = r.top1
    r = kerascnn.evaluate(members[0], data=args.data, split="test", ensemble=members[1:], plot=False)
    figures.update({f"member {i + 1} alone": m["top1"] for i, m in enumerate(r.members)})
    figures[f"ensemble of {len(members)}"] = r.top1
    for name, top1 in figures.items():
        print(f"{name:<28} test top-1 {top1:.2%}  ({r.count:,} images)")

    images, labels = test_images(members[0], args.data)
    deploy = {"keras": {"seconds_per_image": keras_latency(members[0], images, args.latency),
                        "bytes": members[0].stat().st_size, "top1": figures["member 1, tta none"]}}
    for fmt in ("tflite", "tflite-int8"):
        path = args.out / f"member1.{fmt}.tflite"
        export(members[0], path, format=fmt, calibration_data=args.data)
        deploy[fmt] = tflite_scores(path, images, labels, args.latency)
    print(f"\n{'format':<12} {'size':>10} {'top-1':>8} {'ms/image (batch 1)':>20}")
    for fmt, d in deploy.items():
        print(f"{fmt:<12} {d['bytes'] / 1024:>8.0f} KB {d['top1']:>8.2%} {d['seconds_per_image'] * 1000:>20.3f}")
    if args.json:
        args.json.write_text(json.dumps({"accuracy": figures, "deploy": deploy}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
