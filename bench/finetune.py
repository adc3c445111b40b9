r"""Fine-tuning benchmarks: the feature cache's speed, and transfer learning proven on real data.

    python bench/finetune.py cache     # phase 1 with cached features vs running the frozen backbone
    python bench/finetune.py imagenet  # (a) MobileNetV2, ImageNet features vs random init, 5/10/25 per class
    python bench/finetune.py own       # (b) our own LeNet-5 (Fashion-MNIST 0-4) vs scratch on 5-9, <= 20 per class

The data are real Fashion-MNIST images written as PNG class folders by bench/fashion_folders.py
(Debian's dataset-fashion-mnist); (a) uses the ImageNet MobileNetV2 feature weights of
../shared/weights (see its README), (b) the backbone in saved_models/lenet5_fashion_0to4. Each
table row is one `kerascnn finetune` / `kerascnn fit` run through the Python API, scored with
`kerascnn.evaluate` on the folder's test split (the same test images for every row of a table).
Results and the commands go to bench/RESULTS.md by hand; --json writes the rows.
"""
from __future__ import annotations

import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WEIGHTS = ROOT.parent / "shared" / "weights" / "mobilenet_v2_imagenet_notop.weights.h5"
BACKBONE = ROOT / "saved_models" / "lenet5_fashion_0to4" / "model.keras"


def folders(out: Path, classes: str, per_class: int, test: str, seed: int = 0) -> Path:
    """Fashion-MNIST class folders (bench/fashion_folders.py), made once per setting."""
    path = out / f"fm_{classes.replace(',', '')}_{per_class}_{test}_{seed}"
    if not (path / "train").is_dir():
        subprocess.run([sys.executable, str(HERE / "fashion_folders.py"), "--classes", classes, "--per-class",
                        str(per_class), "--test-per-class", test, "--seed", str(seed), "--out", str(path)],
                       check=True, stdout=subprocess.DEVNULL)
    return path


def score(model_path: Path, data: Path) -> float:
    import kerascnn

    return kerascnn.evaluate(str(model_path), data=str(data), split="test").top1


def run(label: str, fn, data: Path, **settings) -> dict:
    start = time.perf_counter()
    result = fn(data=str(data), verbose=0, **settings)
    seconds = time.perf_counter() - start
    row = {"run": label, "seconds": round(seconds, 1), "test_top1": score(result.run_dir / "model.keras", data),
           "epoch_seconds": [float(r["seconds"]) for r in result.history], "run_dir": str(result.run_dir)}
    print(f"  {label:<44} test top-1 {row['test_top1']:.2%}  ({seconds:.0f} s)", flush=True)
    return row


def bench_cache(args, out: Path) -> list:
    """Phase 1 (head on the frozen MobileNetV2 at 224) with cached features and without, `--rounds`
    times in alternating order; per-epoch seconds after the first, and test accuracy."""
    from kerascnn.apps.transfer_learning import finetune

    data = folders(out, "0-9", args.per_class, "50")
    rows = []
    for r in range(args.rounds):
        for cache in (("auto", "off") if r % 2 == 0 else ("off", "auto")):
            rows.append(run(f"round {r + 1}, feature cache {cache}", finetune, data, weights=str(WEIGHTS),
                            freeze="backbone", head_epochs=0, epochs=args.epochs, feature_cache=cache,
                            out=str(out / f"cache-{cache}-{r}")) | {"cache": cache})
    summary = {}
    for cache in ("auto", "off"):
        mine = [row for row in rows if row["cache"] == cache]
        summary[cache] = {"epoch_s": statistics.median(s for row in mine for s in row["epoch_seconds"][1:]),
                          "run_s": statistics.median(row["seconds"] for row in mine),
                          "top1": statistics.mean(row["test_top1"] for row in mine)}
    ratio = summary["off"]["epoch_s"] / summary["auto"]["epoch_s"]
    print(f"\nper epoch after the first: cached {summary['auto']['epoch_s']:.3f} s, backbone every epoch "
          f"{summary['off']['epoch_s']:.2f} s: {ratio:.0f}x (goal >= 5x)")
    print(f"whole phase ({args.epochs} epochs, features included): cached {summary['auto']['run_s']:.0f} s, "
          f"uncached {summary['off']['run_s']:.0f} s; test top-1 {summary['auto']['top1']:.2%} vs "
          f"{summary['off']['top1']:.2%}")
    return rows


def bench_imagenet(args, out: Path) -> list:
    """(a): accuracy against examples per class, ImageNet MobileNetV2 features vs the same network
    and recipe from random initialisation."""
    from kerascnn.apps.transfer_learning import finetune

    rows = []
    for k in args.shots:
        data = folders(out, "0-9", k, "50")
        print(f"{k} images per class (10 classes), {data}", flush=True)
        for weights in (str(WEIGHTS), "none"):
            label = "imagenet" if weights != "none" else "random init"
            rows.append(run(f"mobilenet_v2 {label}", finetune, data, weights=weights, out=str(out / f"a-{k}-{label}"),
                            batch_size=min(32, 10 * k)) | {"shots": k, "weights": label})
    return rows


def bench_own(args, out: Path) -> list:
    """(b): our LeNet-5 trained on classes 0-4, fine-tuned on 5-9, against LeNet-5 from scratch."""
    import kerascnn
    from kerascnn.apps.transfer_learning import finetune

    rows = []
    for k in args.own_shots:
        data = folders(out, "5-9", k, "all")
        print(f"{k} images per class (classes 5-9), {data}", flush=True)
        batch = min(32, 5 * k)
        # Below its fully connected layers (which learned to tell 0-4 apart) and phase 2 at 1e-3: a
        # LeNet-5 is no ImageNet network, its conv features are what carries over.
        rows.append(run("lenet5 from saved_models (0-4), fine-tuned", finetune, data, model=str(BACKBONE),
                        head_at="flatten", finetune_lr=1e-3,
                        head_epochs=args.own_epochs // 2, epochs=args.own_epochs // 2, batch_size=batch,
                        out=str(out / f"b-{k}-tuned")) | {"shots": k, "backbone": "ours"})
        rows.append(run("lenet5 from scratch", kerascnn.fit, data, model="lenet5", epochs=args.own_epochs,
                        batch_size=batch, out=str(out / f"b-{k}-scratch")) | {"shots": k, "backbone": "scratch"})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=("cache", "imagenet", "own"))
    parser.add_argument("--out", type=Path, default=None, help="Work folder (default: a temporary one).")
    parser.add_argument("--per-class", type=int, default=30, help="cache: training images per class.")
    parser.add_argument("--epochs", type=int, default=4, help="cache: phase-1 epochs.")
    parser.add_argument("--rounds", type=int, default=2, help="cache: rounds, alternating the order.")
    parser.add_argument("--shots", type=lambda s: [int(v) for v in s.split(",")], default=[5, 10, 25])
    parser.add_argument("--own-shots", type=lambda s: [int(v) for v in s.split(",")], default=[5, 10, 20])
    parser.add_argument("--own-epochs", type=int, default=30, help="own: epochs of each run (fine-tuning: "
                                                                     "half head, half unfrozen).")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.which in ("cache", "imagenet") and not WEIGHTS.is_file():
        parser.exit(2, f"{WEIGHTS} missing: see ../shared/weights/README.md\n")
    if args.which == "own" and not BACKBONE.is_file():
        parser.exit(2, f"{BACKBONE} missing: see saved_models/README.md\n")
    out = args.out or Path(tempfile.mkdtemp(prefix="kerascnn-bench-finetune-"))
    out.mkdir(parents=True, exist_ok=True)
    rows = {"cache": bench_cache, "imagenet": bench_imagenet, "own": bench_own}[args.which](args, out)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
