"""Training throughput: `kerascnn fit` vs a plain Keras `model.fit` vs a PyTorch loop, side by side.

    python bench/throughput.py                       # LeNet-5 and ResNet-20, batch 128, 3 rounds
    python bench/throughput.py --models resnet20 --rounds 5 --precision float32

For each model, in one run, this prints the training images/s of
  (a) `kerascnn.training.fit` (the harness behind `kerascnn fit`: its data pipeline, callbacks,
      run folder, schedule) on in-memory data (synthetic IDX files, `--data idx:DIR`),
  (b) a plain `model.fit(x, y)` of the same Keras model (`create_model`) on the same numpy arrays,
  (c) an equivalent PyTorch network (written below: LeNet-5, ResNet-20 with option-A shortcuts),
      channels_last, torch.set_num_threads(cores), a hand-written loop over in-memory tensors, in
      PyTorch's default float32, and (c') the same loop under torch.autocast("cpu", bfloat16),
and the ratios (a)/(b), (a)/(c), and the achieved training GFLOP/s against a matmul peak measured
on the same machine.

Method. Every measurement runs in a fresh subprocess (no thread pool or allocator state carried
over; TensorFlow and PyTorch never share a process), and the kinds are interleaved round by
round, in alternating order (`in_round_order`), so that a load change or a drift of the machine's
speed hits all of them alike; `--wait-quiet` holds each run until
the CPU is idle (for shared machines). The first epoch (tracing, oneDNN kernel selection, warm-up)
is never timed. Three figures per run (see `rates`): "steady" img/s, from the 25th percentile of the
step-to-step intervals (the speed of the training step, robust to another process stealing the CPU
for a while); "train" img/s, over the timed epochs' training parts (epoch begin -> validation
begin); and "epoch" img/s, over the timed epochs whole: validation and end-of-epoch callbacks
(checkpoints, history, best model: the harness's own per-epoch cost) included, all images over all
seconds, so that a checkpoint written every few epochs counts in full (the harness always writes
one after the last epoch, which a short run pays for in full too). The table shows medians over rounds, and
the best round's steady img/s; ratios are given for both. (a) and (b) run at `--precision`, by
default what `kerascnn fit` picks on this machine (`--precision auto`: mixed_bfloat16 on CPUs with
AVX512-BF16/AMX), with the harness's default steps_per_execution, so (a)/(b) measures the harness
alone and (a)/(c) what a user gets against PyTorch's defaults.

FLOPs convention: forward multiply-adds (MACs) from `kerascnn.analysis.summary` (convolutions and
dense layers), training FLOPs per image = 3 x 2 x MACs (a MAC is 2 FLOPs; backward ~ 2 x forward).
BN, ReLU, pooling and the optimizer are not counted, so the percentage of peak is a lower bound.
"""
from __future__ import annotations

import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow loads: keep the table readable

import argparse
import importlib.util
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

BATCH = 128
MODELS = {"lenet5": (32, 32, 1), "resnet20": (32, 32, 3)}
TRAIN_IMAGES = {"lenet5": 32768, "resnet20": 4096}  # about 2-10 s per epoch on a 2-core CPU
VAL_IMAGES = 1024
NUM_CLASSES = 10
KINDS = ("kerascnn", "keras", "torch", "torch-bf16")
TORCH_KINDS = ("torch", "torch-bf16")  # need PyTorch, an optional dependency (the "bench" extra)
LETTER = {"kerascnn": "a", "keras": "b", "torch": "c", "torch-bf16": "c'"}


# ---------------------------------------------------------------------------------------------
# Synthetic data, shared by the three kinds: uint8 pixels, as IDX files (what `--data idx:` reads).

def write_idx(path: Path, array) -> None:
    import numpy as np

    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.tobytes())


def make_data(folder: Path, model: str, train: int) -> None:
    """train + VAL_IMAGES random images in folder/{train-images,train-labels}-idx*-ubyte."""
    import numpy as np

    rng = np.random.default_rng(0)
    n = train + VAL_IMAGES
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / "train-images-idx3-ubyte", rng.integers(0, 256, (n, *MODELS[model]), dtype=np.uint8))
    write_idx(folder / "train-labels-idx1-ubyte", rng.integers(0, NUM_CLASSES, n, dtype=np.uint8))


def load_split(folder: Path, train: int):
    """(x_train, y_train, x_val, y_val): float32 [0, 255] images and int labels, train first."""
    from kerascnn.data.idx import read_idx

    x = read_idx(str(folder / "train-images-idx3-ubyte")).astype("float32")
    y = read_idx(str(folder / "train-labels-idx1-ubyte")).astype("int64")
    return x[:train], y[:train], x[train:], y[train:]


# ---------------------------------------------------------------------------------------------
# Workers: one measurement each, in its own process; print one JSON line.

def _keras_timer(times: list, steps: list):
    import keras

    class EpochTimer(keras.callbacks.Callback):
        """Per epoch (train seconds, whole-epoch seconds), and the seconds between successive
        training calls (each `steps_per_execution` steps). Appended last, so the epoch time includes
        the other callbacks' end-of-epoch work."""

        def on_epoch_begin(self, epoch, logs=None):
            self.t0, self.t_train, self.last = time.perf_counter(), None, None
            steps.append([])

        def on_train_batch_begin(self, batch, logs=None):
            t = time.perf_counter()
            if self.last is not None:
                steps[-1].append(t - self.last)
            self.last = t

        def on_test_begin(self, logs=None):
            self.t_train = self.t_train or time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            t = time.perf_counter()
            times.append(((self.t_train or t) - self.t0, t - self.t0))

    return EpochTimer()


def run_kerascnn(args) -> dict:
    from kerascnn.config import TrainConfig, override
    from kerascnn.training import fit

    times, steps = [], []
    val_split = VAL_IMAGES / (args.images + VAL_IMAGES)
    cfg = override(TrainConfig(), model=args.model, epochs=args.epochs, batch_size=args.batch,
                   precision=args.precision, steps_per_execution=args.spe, out=str(Path(args.tmp) / "run"),
                   **{"data.spec": f"idx:{args.data}", "data.val_split": val_split})
    result = fit(cfg, verbose=0, callbacks=[_keras_timer(times, steps)])
    return {"train_images": _train_count(cfg), "times": times, "steps": steps, "images_per_call": args.batch * args.spe,
            "final_loss": result.history[-1]["loss"]}


def _train_count(cfg) -> int:
    from kerascnn.data import build_datasets

    return build_datasets(cfg.data, MODELS[cfg.model], cfg.batch_size, splits=("train",)).counts["train"]


def run_keras(args) -> dict:
    import keras

    from kerascnn.models import create_model

    keras.utils.set_random_seed(1337)
    keras.mixed_precision.set_global_policy(args.precision)
    x, y, xv, yv = load_split(Path(args.data), args.images)
    y, yv = keras.utils.to_categorical(y, NUM_CLASSES), keras.utils.to_categorical(yv, NUM_CLASSES)
    model = create_model(args.model, input_shape=MODELS[args.model], num_classes=NUM_CLASSES)
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.CategoricalCrossentropy(), metrics=["accuracy"],
                  steps_per_execution=args.spe)
    times, steps = [], []
    hist = model.fit(x, y, batch_size=args.batch, epochs=args.epochs, validation_data=(xv, yv),
                     callbacks=[_keras_timer(times, steps)], verbose=0)
    return {"train_images": len(x), "times": times, "steps": steps, "images_per_call": args.batch * args.spe,
            "final_loss": hist.history["loss"][-1]}


def torch_model(name: str):
    """LeNet-5 or ResNet-20 (option-A shortcuts), layer for layer the Keras models of kerascnn."""
    import torch
    from torch import nn
    import torch.nn.functional as F

    class LeNet5(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5)
            self.fc1, self.fc2, self.logits = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, NUM_CLASSES)

        def forward(self, x):
            x = x / 255.0
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = torch.flatten(x.permute(0, 2, 3, 1), 1)  # NHWC flatten order, as Keras
            return self.logits(F.relu(self.fc2(F.relu(self.fc1(x)))))

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.stride, self.pad = stride, cout - cin

        def forward(self, x):
            y = F.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            s = x[:, :, ::self.stride, ::self.stride] if self.stride > 1 else x
            if self.pad:  # option A: zero-pad the new channels, half before, half after
                s = F.pad(s, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
            return F.relu(s + y)

    class ResNet20(nn.Module):
        def __init__(self, n=3):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16)
            blocks, cin = [], 16
            for stage, cout in enumerate((16, 32, 64)):
                for i in range(n):
                    blocks.append(Block(cin, cout, 2 if stage and i == 0 else 1))
                    cin = cout
            self.blocks = nn.Sequential(*blocks)
            self.logits = nn.Linear(64, NUM_CLASSES)

        def forward(self, x):
            x = F.relu(self.bn1(self.conv1(x / 255.0)))
            x = self.blocks(x)
            return self.logits(x.mean((2, 3)))

    return {"lenet5": LeNet5, "resnet20": ResNet20}[name]()


def run_torch(args) -> dict:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(1337)
    x, y, xv, yv = load_split(Path(args.data), args.images)
    to_nchw = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    x, xv, y, yv = to_nchw(x), to_nchw(xv), torch.from_numpy(y), torch.from_numpy(yv)
    model = torch_model(args.model).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    bf16 = args.worker == "torch-bf16"  # (c) is PyTorch's default float32, (c') autocast to bfloat16
    times, steps, loss = [], [], float("nan")
    for _ in range(args.epochs):
        t0, last = time.perf_counter(), None
        steps.append([])
        model.train()
        for idx in torch.randperm(len(x)).split(args.batch):
            t = time.perf_counter()
            if last is not None:  # seconds from one step's start to the next's, as for Keras
                steps[-1].append(t - last)
            last = t
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = model(x[idx])
            loss = loss_fn(out.float(), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        t_train = time.perf_counter()
        model.eval()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            correct = sum(int((model(xb).argmax(1) == yb).sum()) for xb, yb in zip(xv.split(512), yv.split(512)))
        times.append((t_train - t0, time.perf_counter() - t0))
    return {"train_images": len(x), "times": times, "steps": steps, "images_per_call": args.batch,
            "final_loss": float(loss.detach()), "val_correct": correct}


def run_peak(args) -> dict:
    """Best GFLOP/s of an n x n matmul (float32 and bfloat16), TensorFlow's oneDNN kernels."""
    import tensorflow as tf

    out = {}
    for dtype in (tf.float32, tf.bfloat16):
        n = 4096
        a = tf.cast(tf.random.normal((n, n)), dtype)
        b = tf.cast(tf.random.normal((n, n)), dtype)
        mm = tf.function(tf.linalg.matmul)
        mm(a, b).numpy()
        best = 0.0
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(3):
                c = mm(a, b)
            c.numpy()
            best = max(best, 2 * n**3 * 3 / (time.perf_counter() - t) / 1e9)
        out[dtype.name] = best
    return out


WORKERS = {"kerascnn": run_kerascnn, "keras": run_keras, "torch": run_torch, "torch-bf16": run_torch,
           "peak": run_peak}


# ---------------------------------------------------------------------------------------------
# The driver.

def machine_facts() -> dict:
    flags = ""
    try:
        flags = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        pass
    model = next((line.split(":", 1)[1].strip() for line in flags.splitlines() if line.startswith("Model name")), "?")
    flag_line = next((line for line in flags.splitlines() if line.startswith("Flags")), "")
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")
    return {"cpu": model, "nproc": os.cpu_count(), "flags": [f for f in wanted if f" {f}" in flag_line],
            "python": platform.python_version(), "load_avg": os.getloadavg()}


def cpu_busy(seconds: float = 1.0) -> float:
    """Fraction of the machine's CPU time not idle over `seconds` (Linux /proc/stat)."""
    def sample():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:8]]
        return sum(values), values[3]

    (t1, i1), _, (t2, i2) = sample(), time.sleep(seconds), sample()
    return 1 - (i2 - i1) / max(1, t2 - t1)


def wait_quiet(limit: float) -> float:
    """Wait (at most `limit` seconds) until other processes leave the CPU idle; the busy fraction seen."""
    end, busy = time.monotonic() + limit, 1.0
    while time.monotonic() < end:
        busy = cpu_busy()
        if busy < 0.1:
            break
    return busy


def in_round_order(kinds, round_index: int):
    """The kinds in alternating order, round by round (a b c, c b a, a b c, ...).

    This machine's speed drifts by tens of percent within minutes (a shared host); a fixed order would
    hand whatever ran second in every round a steady advantage or handicap. Alternating cancels a
    linear drift over each pair of rounds, so use an even number of rounds for ratios.
    """
    return list(kinds) if round_index % 2 == 0 else list(kinds)[::-1]


def spawn(kind: str, args, model: str = "", data: str = "", tmp: str = "") -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--model", model or "lenet5", "--data", data,
           "--tmp", tmp, "--images", str(args.images_for(model)) if model else "0", "--epochs", str(args.epochs),
           "--batch", str(args.batch), "--precision", args.precision, "--spe", str(args.spe)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    busy = wait_quiet(args.wait_quiet) if args.wait_quiet else None
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise RuntimeError(f"{kind} {model} failed:\n{proc.stderr[-4000:]}")
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "busy_before": busy}


def rates(result: dict) -> dict:
    """Images/s of one run, from its measured (not the first) epochs:
    steady: images per training call over the 25th percentile of the call-to-call intervals, the
        speed of the training step itself, robust to other processes stealing the CPU now and then;
    train: the measured epochs' training parts, all images over all seconds;
    epoch: the measured epochs whole (validation and the end-of-epoch callbacks included), all images
        over all seconds, so that work done every few epochs (the harness's checkpoints) counts in full."""
    n = result["train_images"]
    measured = result["times"][1:]
    intervals = sorted(t for epoch in result["steps"][1:] for t in epoch)
    p25 = intervals[len(intervals) // 4]
    return {"steady": result["images_per_call"] / p25, "train": n * len(measured) / sum(t for t, _ in measured),
            "epoch": n * len(measured) / sum(e for _, e in measured), "loss": result["final_loss"],
            "busy_before": result.get("busy_before")}


def select_kinds(requested: Optional[str]) -> List[str]:
    """The kinds to measure: `--kinds` as given, or all of KINDS when it was not given.

    Checked before anything is built or measured (a missing PyTorch used to surface as a traceback
    from the first torch run, minutes in). Without PyTorch, the default leaves the torch kinds out
    with a note; asking for them by name is an error.

    Raises:
        ValueError: one line, for an unknown kind or a torch kind without PyTorch installed.
    """
    kinds = [k.strip() for k in (requested or ",".join(KINDS)).split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"--kinds: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(KINDS)}")
    missing = [k for k in kinds if k in TORCH_KINDS]
    if missing and importlib.util.find_spec("torch") is None:  # find_spec: no import just to check
        if requested is not None:
            raise ValueError(f"--kinds {','.join(missing)} needs PyTorch, which is not installed: "
                             f'pip install -e ".[bench]" (or leave {",".join(missing)} out of --kinds)')
        print(f"note: PyTorch is not installed, so {', '.join(missing)} are skipped "
              f'(pip install -e ".[bench]" to measure them)', file=sys.stderr)
        kinds = [k for k in kinds if k not in TORCH_KINDS]
    return kinds


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="lenet5,resnet20")
    p.add_argument("--kinds", default=None, help=f"comma-separated, of {', '.join(KINDS)} (default: all; the "
                   f"torch ones need PyTorch: pip install -e \".[bench]\")")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=6, help="per run; the first is warm-up")
    p.add_argument("--batch", type=int, default=BATCH)
    p.add_argument("--images", type=int, default=0, help="training images per epoch (0: per-model default)")
    p.add_argument("--precision", default="auto", choices=("auto", "float32", "mixed_bfloat16"),
                   help="for (a) and (b); auto: what `kerascnn fit` picks on this machine")
    p.add_argument("--spe", type=int, default=0, help="steps_per_execution for (a) and (b); 0: the harness default")
    p.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                   help="before each run, wait up to this long for the CPU to be idle (shared machines)")
    p.add_argument("--json", help="also write the results here")
    # internal: one measurement
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--model", default="lenet5", help=argparse.SUPPRESS)
    p.add_argument("--data", default="", help=argparse.SUPPRESS)
    p.add_argument("--tmp", default="", help=argparse.SUPPRESS)
    return p


def measure_model(args, model: str, kinds, peak_used: float) -> dict:
    """All rounds of every kind for one model, printed as a table with the ratios; returns them."""
    from kerascnn.analysis.summary import summary_for

    flops = 6 * summary_for(model, MODELS[model], num_classes=NUM_CLASSES).totals.macs
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        make_data(data, model, args.images_for(model))
        runs = {k: [] for k in kinds}
        for r in range(args.rounds):
            for kind in in_round_order(kinds, r):
                with tempfile.TemporaryDirectory(dir=tmp) as run_tmp:
                    runs[kind].append(rates(spawn(kind, args, model, str(data), run_tmp)))
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("steady", "train", "epoch")}
           for k, v in runs.items()}
    for k, v in runs.items():
        med[k]["best"] = max(r["steady"] for r in v)
    print(f"\n{model} ({MODELS[model][0]}x{MODELS[model][1]}x{MODELS[model][2]}, "
          f"{args.images_for(model)} train images/epoch, {flops / 1e6:.1f} MFLOP/image for training)")
    print(f"  {'':12s} {'steady':>7s} {'train':>7s} {'epoch':>7s} {'GFLOP/s':>8s} {'of peak':>8s} {'best':>6s}"
          f"   steady img/s of each round")
    for kind in kinds:
        m = med[kind]
        gf = m["steady"] * flops / 1e9
        label = f"({LETTER[kind]}) {kind}"[:12]
        print(f"  {label:12s} {m['steady']:7.0f} {m['train']:7.0f} {m['epoch']:7.0f} {gf:8.1f} "
              f"{gf / peak_used:8.0%} {m['best']:6.0f}   " + " ".join(f"{r['steady']:.0f}" for r in runs[kind]))
    ratios = {}
    for x, y in (("kerascnn", "keras"), ("kerascnn", "torch"), ("keras", "torch"), ("kerascnn", "torch-bf16")):
        if x in med and y in med:
            tag = f"{LETTER[x]}/{LETTER[y]}"
            ratios[f"{tag} steady"] = med[x]["steady"] / med[y]["steady"]
            ratios[f"{tag} epoch"] = med[x]["epoch"] / med[y]["epoch"]
            ratios[f"{tag} best"] = med[x]["best"] / med[y]["best"]
    print("  ratios: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    return {"mflop_per_image": flops / 1e6, "median": med, "runs": runs, "ratios": ratios}


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if not args.worker:
        try:  # before anything slow: TensorFlow loads below
            args.kinds = select_kinds(args.kinds)
            unknown = [m for m in args.models.split(",") if m not in MODELS]
            if unknown:
                raise ValueError(f"--models: unknown {', '.join(unknown)}; choose from {', '.join(MODELS)}")
        except ValueError as e:
            print(f"{Path(__file__).name}: error: {e}", file=sys.stderr)
            return 2
    if args.spe == 0:
        from kerascnn.config import TrainConfig

        args.spe = TrainConfig().steps_per_execution or 8  # unset (auto) picks 8 for these small networks
    args.images_for = lambda m: args.images or TRAIN_IMAGES[m]
    if args.precision == "auto" and not args.worker:
        from kerascnn.training.distribute import resolve_precision

        args.precision = resolve_precision("auto")
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return 0

    facts = machine_facts()
    print(f"machine: {facts['cpu']}, {facts['nproc']} cores, flags {' '.join(facts['flags'])}, "
          f"load {facts['load_avg'][0]:.2f}")
    peak = spawn("peak", args)
    print(f"matmul peak (TF, 4096^2): float32 {peak['float32']:.0f} GFLOP/s, bfloat16 {peak['bfloat16']:.0f} GFLOP/s")
    peak_used = peak["bfloat16" if args.precision == "mixed_bfloat16" else "float32"]
    print(f"batch {args.batch}, precision {args.precision}, steps_per_execution {args.spe}, "
          f"{args.rounds} rounds x {args.epochs} epochs (first epoch untimed)")
    kinds = args.kinds
    report = {"machine": facts, "peak": peak, "settings": {k: v for k, v in vars(args).items()
                                                          if k not in ("images_for", "worker", "model", "data", "tmp")},
              "models": {}}
    for model in args.models.split(","):
        report["models"][model] = measure_model(args, model, kinds, peak_used)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
