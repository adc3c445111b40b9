r"""Train the notes WaveNet (issue 24) on a lent GPU machine with Keras on JAX and no TensorFlow, then turn
the weights into a run folder here, with TensorFlow, that `bench/wavenet.py quality` and `kerascnn wavenet
generate` take.

    # 1. here (TensorFlow, tinysoundfont): the note set as one compact file (1.4 MiB), and the Keras wheels
    echo /.gpu/ >> .git/info/exclude       # once: .gpu/ is ignored, so it travels only as a carry
    python bench/wavenet_gpu.py prepare    # -> .gpu/wavenet_notes.npz
    # .whl/ (ignored) must hold keras-3.15.1, namex-0.1.0 and optree-0.20.0 (cp312) wheels: see
    # bench/fast_style_gpu.py for the `pip download` line.

    # 2. the GPU machine: one call of the device tool, carry [".gpu/wavenet_notes.npz", ".whl"], timeout_s 570
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .whl/*.whl && export PYTHONPATH=/tmp/site || exit; set -o pipefail; KERAS_BACKEND=jax PYTHONUNBUFFERED=1 \
    python3 bench/wavenet_gpu.py train --inputs .gpu/wavenet_notes.npz --budget 480 --out $OUT/wavenet 2>&1 \
    | tee $OUT/wavenet_log.txt
    # (480 s of training and timeout_s 570 leave the machine's start, 1-2 min, inside the 15 minutes; if the
    # call fails early, rerun it at once on the warm machine with --budget of status's budget_left_s less 90.
    # Back come $OUT/wavenet/{record.json,wavenet.weights.h5,optimizer.npz} (~3 MB) and the log.)

    # a later session goes on from the last: copy what came back (record.json, wavenet.weights.h5,
    # optimizer.npz) into .gpu/wavenet_resume/, carry that too, and add `--resume .gpu/wavenet_resume`
    # (a first session's schedule ends with its budget; give the first one `--steps N`, N the total over
    # all sessions, for a cosine that spans them).

    # 3. here (TensorFlow): the run folder, then the usual tools on it
    python bench/wavenet_gpu.py assemble FILES_AT/wavenet --out runs/wavenet_gpu
    python bench/wavenet.py quality runs/wavenet_gpu/model.keras
    kerascnn wavenet generate runs/wavenet_gpu/model.keras --instrument flute --pitch 60 -o /tmp/flute.wav

What is the same as `kerascnn wavenet train --data notes:timgm6mb:test_pitches=50,61,73,82 --seed 0`:
- the data: `prepare` loads the note set through the package (kerascnn.data.notes.load_notes) and splits
  it as the harness does (kerascnn.data.build.resolve_splits: the 10% held-out validation clips,
  stratified by instrument, chosen by the data seed; the test split holds the pitches never trained on),
  stored as mu-law classes (uint8) and pitch tracks (uint8);
- the crops: `crop_batch` cuts them as kerascnn.data.audio_pipeline does (4,096 samples; inputs the
  classes of samples t, targets those of t + 1, the pitch held at each target sample, silence (class 128,
  pitch 0) past a clip's end; an epoch takes ceil(length / 4,096) crops of every clip, at uniform random
  starts in training and at the pipeline's fixed starts (`crop_plan`) for validation and test;
  tests/test_wavenet_gpu_path.py checks the crops against the pipeline's). Unlike the pipeline, an epoch
  drops its last partial batch (one compiled shape) and draws its order and starts from numpy
  (a function of --seed and the epoch, so a resumed run is the unbroken one);
- the model: the registry's `create_model("wavenet", num_instruments=4, pitch_classes=128,
  sample_rate=16000)` at the default size, with classifier_activation=None: the "predictions" layer is
  linear, so the step gets logits, the weights are the same (that layer has none), and `assemble`
  loads them into the default softmax model;
- the loss: the sparse cross-entropy of every sample from the logits, which is what Keras computes for
  the harness's softmax output on TensorFlow (it takes the logits the softmax remembers; on JAX it would
  take clipped probabilities, whose gradient vanishes below 1e-7);
- the optimizer: the harness's (`make_config` in prepare, as `kerascnn wavenet train` resolves it:
  Adam at 1e-3, cosine decay over the run's steps; `make_optimizer` here with the run's epochs and
  steps per epoch), applied statelessly in a jitted step;
- the precision: --precision auto is the harness's: mixed_bfloat16 on a GPU of compute capability 8+
  (the H100 and H200), float32 elsewhere (PitchFeatures and the logits stay float32 either way).

Batch size: 32 by default (the CPU runs used 16). The default model has 32-64 channels, so a batch of 16
crops is ~65,000 positions of small matrix products and a step is launch-bound on a GPU; doubling the
batch should cost well under twice the time (not measured here: this task had no GPU), and Adam at
1e-3 is stable at 32 (WaveNet implementations train at 16-32 crops). --batch-size changes it.

Checked on this CPU (JAX 0.10.2 CPU wheels, TensorFlow made unimportable; no GPU was lent to this task, so
nothing here is timed on one): the default model's probe and planned run, float32 and mixed_bfloat16, a
run cut by --session-steps and resumed ends with the weights and Adam state of the unbroken run bit for
bit, `assemble`'s model gives the JAX validation NLL to 1e-4 bits, and `kerascnn evaluate --split val` of
the assembled folder gives the same loss (the harness's own val split and crops), then `kerascnn wavenet
generate` and `bench/wavenet.py quality` read the folder.

Budget: counts from the script's start. A first session probes: compiles the step (with a provisional
schedule), times PROBE_STEPS steps and one validation pass, then plans as many whole epochs as fit
(printed; --steps N fixes the total instead), compiles again with the real schedule and trains from the
same initial weights. Every --save-every seconds, and at the end: the validation NLL in bits per sample
(the fixed crops, every sample) into record.json's curve with the mean training loss since the last row,
and the weights (wavenet.weights.h5) and Adam's state (optimizer.npz) saved atomically, so a run cut at
its timeout leaves its last save. At the end, the NLL of the held-out pitches' clips (fixed crops).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout, not installed

import numpy as np  # noqa: E402

T0 = time.perf_counter()  # --budget counts from here: imports and compiling are part of a session's time

SPEC = "notes:timgm6mb:test_pitches=50,61,73,82"
INPUTS = ".gpu/wavenet_notes.npz"
RECORD, WEIGHTS, OPTIMIZER = "record.json", "wavenet.weights.h5", "optimizer.npz"
SPLITS = ("train", "val", "test")
CLIP = 4096  # kerascnn.data.audio_pipeline.DEFAULT_CLIP_SAMPLES
PROBE_STEPS = 30
EVAL_BATCH = 16
CHECK_EVERY = 50  # steps between looks at the clock (each waits for the device)
LN2 = math.log(2.0)


# --------------------------------------------------------------------------------------------------
# The data: prepare (here) writes it, train reads it; both sides cut crops the same way


def split_arrays(part, pitched: bool = True) -> dict:
    """An AudioSplit as flat arrays: "audio" (all clips' mu-law classes, uint8, end to end), "pitch"
    (their pitch tracks, uint8), "lengths", "labels" and "notes" per clip."""
    from kerascnn.data.audio import mu_law_encode

    lengths = part.lengths
    return {"audio": mu_law_encode(np.concatenate(list(part.waves))).astype(np.uint8),
            "pitch": (np.concatenate(list(part.pitch)).astype(np.uint8) if pitched
                      else np.zeros(int(lengths.sum()), np.uint8)),
            "lengths": lengths.astype(np.int64), "labels": np.asarray(part.labels, np.int64),
            "notes": (np.asarray(part.notes, np.int64) if part.notes is not None
                      else np.full(len(lengths), -1, np.int64))}


def crop_batch(arrays, clips, starts, clip: int):
    """(inputs, targets) of the crops of clips `clips` starting at `starts` ((B,) int), in keras.ops (so
    the same code runs in the jitted JAX step and, in the test, on TensorFlow against the pipeline):
    audio_pipeline.audio_dataset's `crop`, from `split_arrays` (audio, pitch, lengths, labels)."""
    from keras import ops

    from kerascnn.data.audio_pipeline import SILENCE

    audio, pitch, lengths, labels = (arrays[k] for k in ("audio", "pitch", "lengths", "labels"))
    base = ops.cumsum(lengths) - lengths
    pos = ops.cast(starts, "int32")[:, None] + ops.arange(clip + 1, dtype="int32")[None, :]
    valid = pos < ops.cast(ops.take(lengths, clips), "int32")[:, None]
    at = ops.minimum(ops.cast(ops.take(base, clips), "int32")[:, None] + pos, ops.shape(audio)[0] - 1)
    window = ops.where(valid, ops.cast(ops.take(audio, at), "int32"), SILENCE)
    inputs = {"audio": window[:, :-1], "instrument": ops.cast(ops.take(labels, clips), "int32"),
              "pitch": ops.where(valid, ops.cast(ops.take(pitch, at), "int32"), 0)[:, 1:]}
    return inputs, window[:, 1:]


def epoch_plan(lengths: np.ndarray, clip: int, batch: int, seed: int, epoch: int):
    """Epoch `epoch`'s training crops as ((steps, batch) clip indices, (steps, batch) starts): the
    pipeline's ceil(length / clip) crops of every clip in a seeded order, each at a uniform start in
    [0, length - clip - 1] (0 for a shorter clip), the last partial batch dropped."""
    from kerascnn.data.audio_pipeline import crop_plan

    clip_of, _, room = crop_plan(lengths, clip)
    steps = len(clip_of) // batch
    rng = np.random.default_rng([seed, epoch])
    clips = clip_of[rng.permutation(len(clip_of))[:steps * batch]].reshape(steps, batch)
    last = room[clips]
    starts = np.minimum(np.floor(rng.random(clips.shape) * (last + 1)), last)
    return clips.astype(np.int32), starts.astype(np.int32)


def fixed_plan(lengths: np.ndarray, clip: int, batch: int):
    """The validation / test crops (the pipeline's fixed starts) in (n, batch) rows, the last padded
    with repeats of crop 0, and a (n, batch) weight that is 0 on the padding."""
    from kerascnn.data.audio_pipeline import crop_plan

    clip_of, starts, _ = crop_plan(lengths, clip)
    n = -(-len(clip_of) // batch) * batch
    mask = (np.arange(n) < len(clip_of)).astype(np.float32)
    idx = np.where(mask > 0, np.arange(n), 0)
    return (clip_of[idx].reshape(-1, batch).astype(np.int32), starts[idx].reshape(-1, batch).astype(np.int32),
            mask.reshape(-1, batch))


def nll(logits, targets):
    """The cross-entropy of each sample in nats, float32, from the logits (B, T, 256)."""
    import keras

    return keras.losses.sparse_categorical_crossentropy(targets, keras.ops.cast(logits, "float32"), from_logits=True)


def load_inputs(path) -> tuple:
    """(meta, {split: arrays}) from a `prepare` file."""
    with np.load(path) as f:
        meta = json.loads(str(f["meta"]))
        splits = {s: {k: f[f"{s}_{k}"] for k in ("audio", "pitch", "lengths", "labels", "notes")}
                  for s in SPLITS if f"{s}_audio" in f}
    return meta, splits


def prepare(args) -> int:
    import subprocess

    from kerascnn.config import to_dict
    from kerascnn.data.build import resolve_splits
    from kerascnn.data.notes import load_notes
    from kerascnn.runtime.jobs import atomic_path
    from kerascnn.training.configure import make_config

    cfg = make_config("wavenet", data=args.data, seed=args.seed)  # as `kerascnn wavenet train` resolves it
    source = load_notes(cfg.data)
    parts = resolve_splits(source, cfg.data)  # the harness's held-out val (cfg.data.val_split, stratified, seeded)
    arrays = {f"{s}_{k}": v for s in SPLITS if s in parts for k, v in split_arrays(parts[s]).items()}
    meta = {"spec": cfg.data.spec, "sample_rate": int(source.sample_rate), "class_names": list(source.class_names),
            "config": to_dict(cfg), "val_split": cfg.data.val_split, "data_seed": cfg.data.seed,
            "clips": {s: int(len(parts[s])) for s in SPLITS if s in parts},
            "origins": {s: [str(o) for o in parts[s].origins] for s in SPLITS if s in parts}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, meta=np.array(json.dumps(meta)), **arrays)
    ignored = subprocess.run(["git", "check-ignore", "-q", str(out)], cwd=Path(__file__).resolve().parents[1]).returncode
    print(f"{out}: {out.stat().st_size / 2**20:.1f} MiB; {meta['clips']} clips of {meta['class_names']} at "
          f"{meta['sample_rate']} Hz ({cfg.data.val_split:.0%} val held out, data seed {cfg.data.seed})"
          + ("" if ignored == 0 else "; NOT ignored by git: `echo /.gpu/ >> .git/info/exclude`, then carry it"),
          flush=True)
    return 0


# --------------------------------------------------------------------------------------------------
# The GPU side (Keras on JAX)


def resolve_precision(name: str) -> str:
    """The harness's --precision auto on JAX: mixed_bfloat16 on a GPU of compute capability 8+."""
    import jax

    if name != "auto":
        return name
    device = jax.devices()[0]
    capability = float(getattr(device, "compute_capability", 0) or 0)
    return "mixed_bfloat16" if device.platform == "gpu" and capability >= 8.0 else "float32"


def build_model(record: dict):
    """The registry's WaveNet of the record, ending in logits (see the module docstring)."""
    from kerascnn.models import create_model

    n = len(record["class_names"])
    return create_model("wavenet", num_classes=n, num_instruments=n, pitch_classes=128,
                        sample_rate=record["sample_rate"], classifier_activation=None, **record["model_args"])


def harness_optimizer(record: dict, epochs: int):
    """`make_optimizer` of the prepared config at the run's batch size and length."""
    from kerascnn.config import train_config_from_dict
    from kerascnn.training.optim import make_optimizer

    cfg = dataclasses.replace(train_config_from_dict(record["config"]), batch_size=record["batch_size"],
                              epochs=int(epochs))
    return make_optimizer(cfg, record["steps_per_epoch"])


class Trainer:
    """The model's state (trainable, non-trainable, optimizer variables) and its jitted train and
    evaluation steps over the device-resident splits."""

    def __init__(self, model, optimizer, clip: int, initial=None):
        import jax
        import keras

        self.model, self.optimizer, self.clip = model, optimizer, clip
        optimizer.build(model.trainable_variables)
        weights = initial or ([v.value for v in model.trainable_variables],
                              [v.value for v in model.non_trainable_variables])
        self.state = (*weights, [v.value for v in optimizer.variables])

        def loss_fn(trainable, non_trainable, x, y):
            logits, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
            return keras.ops.mean(nll(logits, y)), non_trainable

        grad = jax.value_and_grad(loss_fn, has_aux=True)

        def step(state, data, clips, starts, i):
            trainable, non_trainable, opt = state
            x, y = crop_batch(data, clips[i], starts[i], clip)
            (loss, non_trainable), grads = grad(trainable, non_trainable, x, y)
            trainable, opt = optimizer.stateless_apply(opt, grads, trainable)
            return (trainable, non_trainable, opt), loss

        def evaluate(state, data, clips, starts, mask):
            trainable, non_trainable, _ = state
            x, y = crop_batch(data, clips, starts, clip)
            logits, _ = model.stateless_call(trainable, non_trainable, x, training=False)
            per_crop = keras.ops.sum(nll(logits, y), axis=-1)
            return keras.ops.sum(per_crop * mask), keras.ops.sum(mask) * clip

        self._step, self._evaluate = jax.jit(step), jax.jit(evaluate)

    def steps(self, data, clips, starts, first: int, count: int):
        """Steps first .. first + count - 1 of an epoch's plan (on the device); their summed loss."""
        import jax.numpy as jnp

        total = 0.0
        for i in range(first, first + count):
            self.state, loss = self._step(self.state, data, clips, starts, jnp.int32(i))
            total = total + loss
        return total

    def bits(self, data, plan) -> float:
        """Mean NLL in bits per sample over the fixed crops of `plan` (fixed_plan's)."""
        nats = count = 0.0
        for c, s, m in zip(*plan):
            a, b = self._evaluate(self.state, data, c, s, m)
            nats, count = nats + float(a), count + float(b)
        return nats / max(count, 1.0) / LN2

    def save(self, out: Path) -> None:
        from kerascnn.runtime.jobs import atomic_path, atomic_save

        trainable, non_trainable, opt = self.state
        for variable, value in zip(self.model.trainable_variables, trainable):
            variable.assign(value)
        for variable, value in zip(self.model.non_trainable_variables, non_trainable):
            variable.assign(value)
        atomic_save(out / WEIGHTS, self.model.save_weights)
        values = {f"{i:04d}|{v.path}": np.asarray(x) for i, (v, x) in enumerate(zip(self.optimizer.variables, opt))}
        with atomic_path(out / OPTIMIZER) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **values)

    def load(self, folder: Path) -> None:
        """The weights and optimizer state `save` left in `folder`."""
        self.model.load_weights(str(folder / WEIGHTS))
        with np.load(folder / OPTIMIZER) as f:
            saved = {int(k.split("|")[0]): (k.split("|", 1)[1], f[k]) for k in f.files}
        names = [v.path for v in self.optimizer.variables]
        if [saved[i][0] for i in range(len(saved))] != names:
            raise SystemExit(f"{folder / OPTIMIZER} holds another optimizer's state")
        self.state = ([v.value for v in self.model.trainable_variables],
                      [v.value for v in self.model.non_trainable_variables],
                      [saved[i][1] for i in range(len(names))])


def new_record(args, meta: dict, n_crops: int) -> dict:
    import jax
    import keras

    batch = int(args.batch_size)
    if n_crops < batch:
        raise SystemExit(f"--batch-size {batch} is more than the {n_crops} training crops of an epoch")
    return {"data": meta["spec"], "sample_rate": meta["sample_rate"], "class_names": meta["class_names"],
            "clips": meta["clips"], "config": meta["config"], "model_args": json.loads(args.model_args or "{}"),
            "clip_samples": CLIP, "batch_size": batch, "steps_per_epoch": n_crops // batch,
            "seed": int(args.seed), "precision": resolve_precision(args.precision), "step": 0,
            "backend": keras.backend.backend(), "keras": keras.__version__, "jax": jax.__version__,
            "curve": [], "sessions": []}


def plan_epochs(args, record: dict, trainer_for, data, val_plan, deadline: float) -> int:
    """The run's length in epochs: --steps, else what fits the budget by a probe (printed)."""
    spe = record["steps_per_epoch"]
    if args.steps:
        return max(1, -(-int(args.steps) // spe))
    probe = trainer_for(1000)  # a provisional schedule; the real one is compiled after
    clips, starts = epoch_plan(np.asarray(data["lengths"]), CLIP, record["batch_size"], record["seed"], 0)
    t = time.perf_counter()
    float(probe.steps(data, clips, starts, 0, 2))
    probe.bits(data, val_plan)
    compile_s = time.perf_counter() - t
    n = min(PROBE_STEPS, len(clips))
    t = time.perf_counter()
    float(probe.steps(data, clips, starts, 0, n))
    step_s = (time.perf_counter() - t) / n
    t = time.perf_counter()
    probe.bits(data, val_plan)
    val_s = time.perf_counter() - t
    # Left: the second compile, a validation and a save every --save-every s, the end's val and test.
    left = deadline - time.perf_counter() - compile_s - 4 * val_s - 10.0
    left -= (val_s + 2.0) * left / args.save_every
    epochs = max(1, int(0.95 * left / (step_s * spe)))
    record["probe"] = {"step_ms": round(1e3 * step_s, 2), "val_s": round(val_s, 2), "compile_s": round(compile_s, 1),
                       "samples_per_s": round(record["batch_size"] * CLIP / step_s)}
    print(f"probe: {1e3 * step_s:.1f} ms a step of {record['batch_size']} x {CLIP} samples "
          f"({record['probe']['samples_per_s']:,} samples/s), validation {val_s:.1f} s, compiling {compile_s:.0f} s; "
          f"planned {epochs} epochs of {spe} steps = {epochs * spe} steps", flush=True)
    return epochs


def run_steps(trainer: Trainer, record: dict, data: dict, plans: dict, session: dict, args, deadline: float) -> None:
    """Train from record["step"] to the planned end (or --session-steps more), validating and saving every
    --save-every seconds and at the end; stops early where the next stretch would overrun the budget."""
    import jax
    import jax.numpy as jnp

    from kerascnn.runtime.jobs import atomic_write_json

    out, lengths = Path(args.out), np.asarray(data["train"]["lengths"])
    spe, total = record["steps_per_epoch"], record["epochs"] * record["steps_per_epoch"]
    stop_at = min(total, record["step"] + args.session_steps) if args.session_steps else total

    def checkpoint(loss_sum, steps_since: int, at: float) -> None:
        val = trainer.bits(data["val"], plans["val"])
        schedule = trainer.optimizer._learning_rate  # the rate of the last step taken
        lr = float(schedule(max(record["step"] - 1, 0)) if callable(schedule) else schedule)
        record["curve"].append({"step": record["step"], "epoch": round(record["step"] / spe, 2),
                                "train_bits": float(loss_sum) / max(steps_since, 1) / LN2, "val_bits": val,
                                "lr": lr, "seconds": round(at - T0, 1)})
        trainer.save(out)
        session.update(to_step=record["step"], seconds=round(time.perf_counter() - T0, 1))
        atomic_write_json(out / RECORD, record)
        print(f"step {record['step']} (epoch {record['step'] / spe:.1f}): train {record['curve'][-1]['train_bits']:.3f}"
              f", val {val:.3f} bits/sample, lr {lr:.2e}; {time.perf_counter() - T0:.0f} s", flush=True)

    reserve = 4 * record.get("probe", {}).get("val_s", 2.0) + 10.0
    step_s = record.get("probe", {}).get("step_ms", 50.0) / 1e3  # then measured as it goes
    loss_sum, since, last_save, plan_epoch = 0.0, 0, time.perf_counter(), None
    last_check, steps_checked, warm = time.perf_counter(), 0, False  # the first stretch compiles
    while record["step"] < stop_at:
        epoch, i = divmod(record["step"], spe)
        if epoch != plan_epoch:
            clips, starts = (jnp.asarray(a) for a in epoch_plan(lengths, CLIP, record["batch_size"], record["seed"],
                                                                 epoch))
            plan_epoch = epoch
        count = min(CHECK_EVERY - record["step"] % CHECK_EVERY, spe - i, stop_at - record["step"])
        loss_sum = loss_sum + trainer.steps(data["train"], clips, starts, i, count)
        record["step"], since, steps_checked = record["step"] + count, since + count, steps_checked + count
        if record["step"] % CHECK_EVERY == 0 or record["step"] == stop_at:
            jax.block_until_ready(trainer.state)  # dispatch runs ahead of the device
            now = time.perf_counter()
            if steps_checked == CHECK_EVERY and warm:  # a full stretch, with no compiling or saving in it
                step_s = (now - last_check) / steps_checked
            warm = True
            if now - last_save >= args.save_every:
                checkpoint(loss_sum, since, now)
                loss_sum, since, last_save = 0.0, 0, time.perf_counter()
            last_check, steps_checked = time.perf_counter(), 0
            if time.perf_counter() + CHECK_EVERY * step_s + reserve > deadline:
                record["stopped"] = f"the budget ended at step {record['step']} of {total}"
                print(record["stopped"], flush=True)
                break
    if since or not record["curve"]:
        checkpoint(loss_sum, since, time.perf_counter())


def train(args) -> int:
    import jax
    import jax.numpy as jnp
    import keras

    from kerascnn.data.audio_pipeline import crop_plan
    from kerascnn.runtime.jobs import atomic_write_json

    deadline = T0 + args.budget
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta, splits = load_inputs(args.inputs)
    lengths = splits["train"]["lengths"]
    if args.resume:
        record = json.loads((Path(args.resume) / RECORD).read_text())
        if record["data"] != meta["spec"] or record["clips"] != meta["clips"]:
            raise SystemExit(f"--resume {args.resume} trained on {record['data']} {record['clips']}, not {args.inputs}")
    else:
        record = new_record(args, meta, len(crop_plan(lengths, CLIP)[0]))
    record.pop("stopped", None)  # the last session's
    session = {"device": str(jax.devices()[0]), "budget_s": args.budget, "from_step": record["step"]}
    record["sessions"].append(session)
    keras.config.set_dtype_policy(record["precision"])
    keras.utils.set_random_seed(record["seed"])
    model = build_model(record)
    data = {s: {k: jnp.asarray(v) for k, v in a.items() if k != "notes"} for s, a in splits.items()}
    plans = {s: fixed_plan(a["lengths"], CLIP, EVAL_BATCH) for s, a in splits.items() if s != "train"}
    initial = ([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables])

    def trainer_for(epochs: int) -> Trainer:
        return Trainer(model, harness_optimizer(record, epochs), CLIP, initial)

    if args.resume:
        record["epochs"] = max(1, -(-int(args.steps) // record["steps_per_epoch"])) if args.steps else record["epochs"]
    else:
        record["epochs"] = plan_epochs(args, record, trainer_for, data["train"], plans["val"], deadline)
    total = record["epochs"] * record["steps_per_epoch"]
    trainer = Trainer(model, harness_optimizer(record, record["epochs"]), CLIP, initial)
    if args.resume:
        trainer.load(Path(args.resume))
    print(f"wavenet {model.count_params():,} parameters, {record['precision']}, batch {record['batch_size']}; "
          f"steps {record['step']} -> {total} (cosine over {total}); device {session['device']}", flush=True)

    run_steps(trainer, record, data, plans, session, args, deadline)
    if "test" in data:
        record["test_bits"] = trainer.bits(data["test"], plans["test"])
        print(f"test (held-out pitches, fixed crops): {record['test_bits']:.3f} bits/sample", flush=True)
    session.update(to_step=record["step"], seconds=round(time.perf_counter() - T0, 1))
    atomic_write_json(out / RECORD, record)
    print(f"done: step {record['step']} of {total} in {time.perf_counter() - T0:.0f} s; {out}", flush=True)
    return 0


# --------------------------------------------------------------------------------------------------
# The CPU side (TensorFlow)


def assembled(record: dict, weights: Path):
    """The harness's WaveNet (softmax output) of the record with the trained weights."""
    from kerascnn.models import create_model

    n = len(record["class_names"])
    model = create_model("wavenet", num_classes=n, num_instruments=n, pitch_classes=128,
                         sample_rate=record["sample_rate"], **record["model_args"])
    model.load_weights(str(weights))
    return model


def keras_val_bits(model, splits: dict, split: str = "val") -> float:
    """The NLL in bits per sample of the softmax model over the fixed crops, as Keras's loss computes it
    (TensorFlow: from the logits behind the softmax) - against the record's JAX figure."""
    import keras

    arrays = splits[split]
    clips, starts, mask = fixed_plan(arrays["lengths"], CLIP, EVAL_BATCH)
    loss = keras.losses.SparseCategoricalCrossentropy(reduction="none")
    nats = count = 0.0
    for c, s, m in zip(clips, starts, mask):
        x, y = crop_batch(arrays, c, s, CLIP)
        per = np.asarray(loss(y, model(x, training=False))).sum(axis=-1)
        nats, count = nats + float((per * m).sum()), count + float(m.sum()) * CLIP
    return nats / count / LN2


def plot_record(record: dict, path: Path) -> None:
    from kerascnn.runtime.plots import figure, save_png

    rows = record["curve"]
    fig, ax = figure(figsize=(7, 4.2))
    steps = [r["step"] for r in rows]
    ax.plot(steps, [r["train_bits"] for r in rows], "-", marker=".", label="train (mean since the last point)")
    ax.plot(steps, [r["val_bits"] for r in rows], "--", marker=".", label="validation (fixed crops)")
    if record.get("test_bits") is not None:
        ax.axhline(record["test_bits"], color="gray", lw=0.8, ls=":", label="test, held-out pitches (end)")
    ax.set_xlabel(f"step (batch {record['batch_size']} x {record['clip_samples']} samples)")
    ax.set_ylabel("NLL, bits per sample")
    ax.set_title(f"WaveNet on {record['data']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_png(fig, path)


def assemble(args) -> int:
    from kerascnn.models.loading import load_model
    from kerascnn.runtime import run_dir as rd
    from kerascnn.runtime.jobs import atomic_save, atomic_write_json
    from kerascnn.training.configure import make_config

    run = Path(args.dir)
    record = json.loads((run / RECORD).read_text())
    folder = Path(args.out) if args.out else run / "model"
    folder.mkdir(parents=True, exist_ok=True)
    model = assembled(record, run / WEIGHTS)
    path = folder / rd.MODEL
    atomic_save(path, model.save)
    loaded = load_model(path)  # safe mode
    rd.write_classes(folder, record["class_names"])  # kerascnn wavenet generate --instrument NAME
    cfg = make_config("wavenet", data=record["data"], seed=record["seed"], batch_size=record["batch_size"],
                      epochs=int(record["epochs"]), out=str(folder), model_args=record["model_args"],
                      precision=record["precision"])
    rd.write_config(folder, cfg)  # bench/wavenet.py quality reads the data spec there
    atomic_write_json(folder / RECORD, record)
    plot_record(record, folder / rd.CURVES)
    line = f"wrote {path} (+ {rd.CLASSES}, {rd.CONFIG}, {rd.CURVES}, {RECORD}) at step {record['step']}"
    if Path(args.inputs).is_file() and record["curve"]:
        meta, splits = load_inputs(args.inputs)
        bits = keras_val_bits(loaded, splits)
        line += f"; val {bits:.4f} bits/sample with TensorFlow, {record['curve'][-1]['val_bits']:.4f} on {record['backend']}"
    print(line, flush=True)
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    pre = sub.add_parser("prepare", help="the note set as one file for the GPU machine (here)")
    pre.add_argument("--data", default=SPEC)
    pre.add_argument("--seed", type=int, default=0, help="the data seed: which clips are held out (the CPU run's 0)")
    pre.add_argument("--out", default=INPUTS)
    tr = sub.add_parser("train", help="train on Keras's JAX backend (the GPU machine)")
    tr.add_argument("--inputs", default=INPUTS)
    tr.add_argument("--out", required=True)
    tr.add_argument("--budget", type=float, default=480.0, help="seconds from the script's start")
    tr.add_argument("--batch-size", type=int, default=32, help="crops of 4,096 samples a step")
    tr.add_argument("--steps", type=int, default=None, help="the schedule's total steps, rounded up to whole epochs (default: what the budget fits)")
    tr.add_argument("--session-steps", type=int, default=None, help="stop this session after N steps (checks)")
    tr.add_argument("--save-every", type=float, default=60.0, help="seconds between validations and saves")
    tr.add_argument("--seed", type=int, default=0, help="initial weights, crop order and starts")
    tr.add_argument("--precision", default="auto", choices=("auto", "float32", "mixed_bfloat16"))
    tr.add_argument("--model-args", default=None, help='JSON builder overrides, e.g. {"stacks": 1} (smoke tests)')
    tr.add_argument("--resume", default=None, metavar="DIR", help="a folder with a run's record, weights, optimizer")
    asm = sub.add_parser("assemble", help="a run folder from the weights (here, TensorFlow)")
    asm.add_argument("dir")
    asm.add_argument("--out", default=None, help="the run folder (default DIR/model)")
    asm.add_argument("--inputs", default=INPUTS, help="to check the validation NLL with TensorFlow, if present")
    args = p.parse_args(argv)
    return {"prepare": prepare, "train": train, "assemble": assemble}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
