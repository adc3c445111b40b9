"""Accuracy benchmarks of the foundation issue, run as a user would (the CLI, default flags).

    python bench/accuracy.py digits     # kerascnn fit --model lenet5: >= 99.0% val top-1 in < 1 min
    python bench/accuracy.py fashion    # LeNet-5 on the full Fashion-MNIST (idx:): >= 90.5% test top-1

Fashion-MNIST comes from Debian's package: apt-get install -y dataset-fashion-mnist.
Prints wall time, seconds per epoch and accuracy; records nothing by itself (copy the lines into
bench/RESULTS.md with the command).
"""
from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FASHION = "/usr/share/datasets/fashion-mnist"


def _run(args):
    t = time.perf_counter()
    # the CLI of the Python running this script, whether or not its bin/ is on PATH
    proc = subprocess.run([sys.executable, "-m", "kerascnn", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"kerascnn {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t, proc.stdout


def _history(run: Path):
    with open(run / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def bench(name: str, fit_args, evaluate_data=None, goal=None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        wall, _ = _run(["fit", *fit_args, "--out", str(run)])
        rows = _history(run)
        per_epoch = sum(float(r["seconds"]) for r in rows) / len(rows)
        line = (f"{name}: `kerascnn fit {' '.join(fit_args)}`: {len(rows)} epochs, wall {wall:.1f} s "
                f"(process start and data loading included), {per_epoch:.2f} s/epoch, "
                f"final val top-1 {float(rows[-1]['val_accuracy']):.2%}, best {max(float(r['val_accuracy']) for r in rows):.2%}")
        if evaluate_data:
            _, out = _run(["evaluate", str(run / "model.keras"), "--data", evaluate_data])
            line += f"; evaluate on the test split: {out.splitlines()[0].strip()}"
        print(line + (f"  [goal: {goal}]" if goal else ""))


if __name__ == "__main__":
    which = sys.argv[1:] or ["digits", "fashion"]
    if "digits" in which:
        bench("LeNet-5 / digits", ["--model", "lenet5"], goal=">= 99.0% val top-1 in < 60 s")
    if "fashion" in which:
        if not Path(FASHION).is_dir():
            sys.exit(f"{FASHION} missing: apt-get install -y dataset-fashion-mnist")
        bench("LeNet-5 / Fashion-MNIST", ["--model", "lenet5", "--data", f"idx:{FASHION}", "--epochs", "20", "--hflip"],
              evaluate_data=f"idx:{FASHION}", goal=">= 90.5% test top-1")
