"""CNN+RN against CNN+MLP on Sort-of-CLEVR (Santoro et al. 2017) on a lent GPU machine without TensorFlow,
then the trained models assembled into `.keras` files and scored here, with TensorFlow.

    KERAS_BACKEND=jax python bench/vqa_gpu.py --budget 480 --out $OUT/vqa     # on the GPU machine
    python bench/vqa_gpu.py assemble DIR                                      # here (TensorFlow)

The GPU machines have JAX and Keras 3 but no TensorFlow (bench/recipe_gpu.py says why), and the VQA
models tokenize their questions with a TextVectorization layer, which is TensorFlow's. So the GPU
side builds the same models over token ids (`question_input="tokens"`: every layer but "vectorize",
under the same names) and tokenizes in Python exactly as that layer would (kerascnn.models.tokenize:
`learn_vocabulary_py` is what `adapt` learns, `token_ids` what the layer gives; the test
tests/test_vqa_gpu_path.py checks both against TensorFlow). The data is the package's own
`--data sort_of_clevr[:N]` (kerascnn.data.vqa.load_sort_of_clevr, numpy): N images of seed 0, the last
2% the validation split (9,800 / 200 at the paper's 10,000), a test split of N // 10 images of seed 1.

Training is Santoro's recipe (SANTORO2017_RECIPE: Adam at 1e-4, batches of 64, through the harness's
`make_config` / `make_optimizer`) in a jitted JAX step (`model.stateless_call`, the optimizer's
`stateless_apply`): the images sit on the device once as uint8 and each step gathers its batch by
index inside the jitted function, so no pixels cross the bus per step; no layer of these models turns
XLA off (recipe_gpu.py's RandomTranslation problem; there is no augmentation here: flips and shifts
would change the answers). Each epoch is a fresh permutation of the training questions in full
batches (the last partial batch dropped: one compiled shape), and after it the recipe's PreciseBN: the
BN statistics set to their mean over its first `precise_bn` batches (`Trainer.precise_bn`, stateless;
the same figures as the harness's `recompute_batch_norm`, to 2e-7).

The budget (seconds, from the script's start) is shared out by a probe: each model's step is timed
from the same initial weights (which training then starts from again), and both models train the
same number of epochs, as many as fit, alternating an epoch of each (same data, same passes; the RN's
epochs cost several of the MLP's, so it gets most of the time). An epoch that would overrun the
deadline is not started. After every epoch: validation accuracy per question type and group
(relational / non-relational) into DIR/record.json, and each model's weights into
DIR/<model>.weights.h5, so a run cut short still leaves its last epoch. At the end both are scored on
the test split (in JAX, to cross-check `assemble`).

`assemble DIR` (TensorFlow): learns the vocabulary with the model's own TextVectorization on the same
questions (it must equal the record's), builds the full models, moves the weights over by layer name,
saves each as a run folder would hold it, DIR/vqa_cnn_rn/ and DIR/vqa_cnn_mlp/: model.keras, its
config.json (what `evaluate` reads the data from) and classes.json (`kerascnn vqa ask` names the
answers), loads it back with safe mode, scores it on the test split with kerascnn.evaluate (per question
type; confusion.png beside), and writes DIR/learning_curves.png and DIR/results.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout, not installed

import numpy as np  # noqa: E402

MODELS = ("vqa_cnn_rn", "vqa_cnn_mlp")
RECORD, CURVES, RESULTS = "record.json", "learning_curves.png", "results.json"
GOALS = {"vqa_cnn_rn": {"relational": 0.94, "non-relational": 0.94}, "vqa_cnn_mlp": {"relational": 0.63}}
PAPER = {"vqa_cnn_rn": {"relational": 0.94, "non-relational": 0.94},  # "over 94%" on both
         "vqa_cnn_mlp": {"relational": 0.63, "non-relational": 0.94}}
EVAL_BATCH = 500
TEST_RATIO = 0.1 / 0.02  # the test split's questions per validation question (kerascnn.data.vqa)
PROBE_STEPS = 30


def weights_file(out: Path, name: str) -> Path:
    return Path(out) / f"{name}.weights.h5"


def model_kwargs(name: str, record: dict) -> dict:
    """The builder's arguments for `name` as the record trained it (g_* only for the RN)."""
    args = {k: v for k, v in record.get("model_args", {}).items() if name == "vqa_cnn_rn" or not k.startswith("g_")}
    return {**args, "vocabulary": record["vocabulary"], "question_length": record["question_length"]}


# --------------------------------------------------------------------------------------------------
# The GPU side (JAX)


def sort_of_clevr_data(n_images: int, length: int):
    """The package's sort_of_clevr:n_images splits as arrays, questions as token ids, and the vocabulary."""
    from kerascnn.data.vqa import load_sort_of_clevr
    from kerascnn.models.tokenize import learn_vocabulary_py, token_ids

    source = load_sort_of_clevr(n_images, f"sort_of_clevr:{n_images}")
    # What the harness's question_vocabulary learns: the training split's distinct questions.
    vocab = learn_vocabulary_py(np.unique(source.splits["train"].questions.astype(str)))
    splits = {}
    for name, part in source.splits.items():
        table, index = np.unique(part.questions.astype(str), return_inverse=True)
        splits[name] = {"images": part.images, "image_index": part.image_index.astype(np.int32),
                        "tokens": token_ids(list(table), vocab, length), "question_index": index.astype(np.int32),
                        "labels": part.labels.astype(np.int32), "types": part.types}
    return source, vocab, splits


def on_device(split: dict):
    import jax.numpy as jnp

    return tuple(jnp.asarray(split[k]) for k in ("images", "image_index", "tokens", "question_index", "labels"))


def _batch(data, idx):
    import jax.numpy as jnp

    images, image_index, tokens, question_index, labels = data
    pixels = jnp.take(images, jnp.take(image_index, idx), axis=0).astype("float32")
    return {"image": pixels, "question": jnp.take(tokens, jnp.take(question_index, idx), axis=0)}, \
        jnp.take(labels, idx)


class Trainer:
    """One model (ending in logits: classifier_activation=None), its optimizer and jitted train /
    predict steps over device-resident data.

    The loss is the cross-entropy of the logits. On TensorFlow, Keras computes a softmax model's
    cross-entropy from the logits too (the softmax output remembers them); on JAX it would take the
    clipped probabilities, whose gradient is zero wherever the right answer's probability is below
    1e-7, and a saturated model starts there (the RN's sum over 625 pairs made large logits with
    Glorot's initialisation, a cross-entropy of 5-15; kerascnn.models.vqa.mlp_init now starts it near
    ln(12), but the logits stay the safer loss)."""

    def __init__(self, name: str, model, optimizer):
        import jax
        import keras

        from kerascnn.training.callbacks import batch_norm_layers

        self.name, self.model, self.optimizer = name, model, optimizer
        optimizer.build(model.trainable_variables)
        self.initial = ([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables],
                        [v.value for v in optimizer.variables])
        self.state = self.initial

        def loss_fn(trainable, non_trainable, x, y):
            logits, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
            loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
            hits = keras.ops.sum(keras.ops.cast(keras.ops.argmax(logits, -1) == y, "float32"))
            return loss, (non_trainable, hits)

        grad = jax.value_and_grad(loss_fn, has_aux=True)

        def step(state, data, order, i):
            trainable, non_trainable, opt = state
            x, y = _batch(data, order[i])
            (loss, (non_trainable, hits)), grads = grad(trainable, non_trainable, x, y)
            trainable, opt = optimizer.stateless_apply(opt, grads, trainable)
            return (trainable, non_trainable, opt), loss, hits

        def predict(state, data, idx):
            trainable, non_trainable, _ = state
            x, _ = _batch(data, idx)
            logits, _ = model.stateless_call(trainable, non_trainable, x, training=False)
            return keras.ops.argmax(logits, -1)

        def batch_stats(trainable, non_trainable, x):  # traced with every BN's momentum at 0 (precise_bn)
            return model.stateless_call(trainable, non_trainable, x, training=True)[1]

        self._step, self._predict, self._batch_stats = jax.jit(step), jax.jit(predict), jax.jit(batch_stats)
        bns = batch_norm_layers(model)
        moving = {id(v) for b in bns for v in (b.moving_mean, b.moving_variance)}
        self._bns = bns
        self._moving = [i for i, v in enumerate(model.non_trainable_variables) if id(v) in moving]

    def epoch(self, data, order: np.ndarray, deadline: float = float("inf"), steps=None):
        """A pass over `order` ((steps, batch) question indices; the same shape every call: one
        compiled step), or its first `steps` batches; (mean loss, train accuracy, steps done): stops
        early at `deadline` (perf_counter seconds)."""
        import jax
        import jax.numpy as jnp

        order = jnp.asarray(order)
        loss = loss_sum = hits_sum = 0.0
        done = 0
        for i in range(len(order) if steps is None else min(steps, len(order))):
            # Every 100 steps wait for the device (dispatch runs ahead of it), then look at the clock.
            if i % 100 == 0 and i and float(jax.block_until_ready(loss)) >= 0 and time.perf_counter() > deadline:
                break
            self.state, loss, hits = self._step(self.state, data, order, jnp.int32(i))
            loss_sum, hits_sum, done = loss_sum + loss, hits_sum + hits, i + 1
        jax.block_until_ready(self.state)
        return float(loss_sum) / max(done, 1), float(hits_sum) / max(done * order.shape[1], 1), done

    def precise_bn(self, data, order: np.ndarray) -> None:
        """The harness's PreciseBN (kerascnn.training.callbacks.recompute_batch_norm), stateless: every
        BN's moving statistics set to the mean of its statistics over the batches of `order` in
        training mode, the weights as they are."""
        import jax.numpy as jnp

        if not self._moving or not len(order):
            return
        trainable, non_trainable, opt = self.state
        momenta = [b.momentum for b in self._bns]
        try:
            for b in self._bns:
                b.momentum = 0.0  # read when batch_stats is traced: the update returns the batch's statistics
            sums = None
            for idx in order:
                x, _ = _batch(data, jnp.asarray(idx))
                got = self._batch_stats(trainable, non_trainable, x)
                sums = [got[i] for i in self._moving] if sums is None else [a + got[i] for a, i in
                                                                             zip(sums, self._moving)]
        finally:
            for b, m in zip(self._bns, momenta):
                b.momentum = m
        non_trainable = list(non_trainable)
        for i, total in zip(self._moving, sums):
            non_trainable[i] = total / len(order)
        self.state = (trainable, non_trainable, opt)

    def answers(self, data, count: int) -> np.ndarray:
        """The predicted answer of questions 0 .. count-1 (fixed-size batches, the last padded)."""
        idx = np.arange(-(-count // EVAL_BATCH) * EVAL_BATCH) % max(count, 1)
        out = [np.asarray(self._predict(self.state, data, idx[i:i + EVAL_BATCH]))
               for i in range(0, len(idx), EVAL_BATCH)]
        return np.concatenate(out)[:count]

    def time_steps(self, data, order: np.ndarray, steps: int) -> float:
        """Seconds a step from the initial weights (compiled first); training then starts afresh."""
        import jax

        self.epoch(data, order, steps=2)  # compile
        t = time.perf_counter()
        self.epoch(data, order, steps=steps)
        seconds = (time.perf_counter() - t) / steps
        self.state = self.initial
        jax.block_until_ready(self.state)
        return seconds

    def save(self, path: Path) -> None:
        from kerascnn.runtime.jobs import atomic_save

        trainable, non_trainable, _ = self.state
        for variable, value in zip(self.model.trainable_variables, trainable):
            variable.assign(value)
        for variable, value in zip(self.model.non_trainable_variables, non_trainable):
            variable.assign(value)
        atomic_save(path, self.model.save_weights)


def scores(correct: np.ndarray, types: np.ndarray, source) -> dict:
    from kerascnn.data.by_type import accuracy_by_group, accuracy_by_type

    by_type = accuracy_by_type(correct, types, source.type_names)
    return {"top1": float(np.mean(correct)), "by_type": by_type, "by_group": accuracy_by_group(by_type,
                                                                                              source.type_groups)}


def group_line(s: dict) -> str:
    return ", ".join(f"{g['group']} {g['accuracy']:.4f}" for g in s["by_group"])


def orders(n: int, batch: int, seed: int, epoch: int) -> np.ndarray:
    """Epoch `epoch`'s shuffle of n questions as (steps, batch), the last partial batch dropped."""
    steps = n // batch
    return np.random.default_rng([seed, epoch]).permutation(n)[:steps * batch].reshape(steps, batch).astype(np.int32)


def build_trainers(args, record: dict, source, n_train: int, out: Path) -> dict:
    """A Trainer per model of --models, its settings in record["models"]."""
    import keras

    from kerascnn.models import create_model
    from kerascnn.training.configure import make_config
    from kerascnn.training.optim import make_optimizer

    trainers = {}
    for name in args.models.split(","):
        cfg = make_config(name, data=record["data"], input_shape=(75, 75, 3), seed=args.seed)
        keras.utils.set_random_seed(args.seed)
        model = create_model(name, input_shape=(75, 75, 3), num_classes=len(source.class_names),
                             question_input="tokens", classifier_activation=None, **model_kwargs(name, record))
        batch = int(cfg.batch_size)
        trainers[name] = Trainer(name, model, make_optimizer(cfg, n_train // batch))
        record["models"][name] = {"optimizer": cfg.optimizer, "lr": cfg.lr, "batch_size": batch,
                                  "steps_per_epoch": n_train // batch, "params": int(model.count_params()),
                                  "weights": weights_file(out, name).name, "curve": []}
    return trainers


def plan_epochs(args, record: dict, trainers: dict, train_data, val_data, n_train: int, n_val: int,
                seconds_left: float):
    """Time each model's step (from its initial weights) and its validation, and fit whole epoch pairs
    into the budget, keeping back the test (TEST_RATIO x val). Returns (epochs, seconds kept back)."""
    for name, tr in trainers.items():
        rec = record["models"][name]
        probe = orders(n_train, rec["batch_size"], args.seed, 0)  # epochs count from 1
        rec["step_ms"] = 1e3 * tr.time_steps(train_data, probe, min(PROBE_STEPS, len(probe) - 2))
        tr.answers(val_data, n_val)  # compiles the predict step
        t = time.perf_counter()
        tr.answers(val_data, n_val)
        rec["val_s"] = time.perf_counter() - t
    # An epoch pair: both models' steps, validation and saving.
    per_epoch = sum(r["step_ms"] / 1e3 * r["steps_per_epoch"] + r["val_s"] + 1.0 for r in record["models"].values())
    reserve = 10.0 + sum(r["val_s"] for r in record["models"].values()) * TEST_RATIO
    left = seconds_left() - reserve
    planned = max(0, min(args.max_epochs, int(left / per_epoch)))
    record["plan"] = {"epochs": planned, "seconds_per_epoch_pair": round(per_epoch, 2)}
    for name, rec in record["models"].items():
        share = rec["step_ms"] / 1e3 * rec["steps_per_epoch"] / per_epoch
        print(f"{name}: {rec['step_ms']:.2f} ms a step, {rec['steps_per_epoch']} steps an epoch "
              f"({rec['step_ms'] * rec['steps_per_epoch'] / 1e3:.1f} s), {share:.0%} of the training time", flush=True)
    none = " (none fits: raise --budget)" if not planned else ""
    print(f"plan: {planned} epochs each{none} (budget {args.budget:.0f} s, {left:.0f} s left after the probe; "
          f"device {record['device']})", flush=True)
    return planned, reserve


def fit_epochs(args, record: dict, trainers: dict, splits: dict, source, train_data, val_data, planned: int,
               stop: float, out: Path) -> None:
    """Both models epoch by epoch (the same shuffle each epoch) until `planned` or the deadline `stop`;
    validated, saved and recorded after every epoch."""
    from kerascnn.runtime.jobs import atomic_write_json

    n_train, n_val = len(splits["train"]["labels"]), len(splits["val"]["labels"])
    for epoch in range(1, planned + 1):
        for name, tr in trainers.items():
            rec = record["models"][name]
            if time.perf_counter() + rec["step_ms"] / 1e3 * rec["steps_per_epoch"] > stop:
                rec.setdefault("stopped", f"the deadline came before epoch {epoch}")
                continue
            order = orders(n_train, rec["batch_size"], args.seed, epoch)
            t = time.perf_counter()
            loss, acc, done = tr.epoch(train_data, order, stop)
            seconds = time.perf_counter() - t
            tr.precise_bn(train_data, order[:record["recipe"].get("precise_bn", 0)])
            val = scores(tr.answers(val_data, n_val) == splits["val"]["labels"], splits["val"]["types"], source)
            rec["curve"].append({"epoch": epoch, "steps": done, "loss": loss, "train_acc": acc, "seconds": seconds,
                                 "val_top1": val["top1"], "val_by_group": {g["group"]: g["accuracy"]
                                                                          for g in val["by_group"]},
                                 "val_by_type": {r["type"]: r["accuracy"] for r in val["by_type"]}})
            rec["epochs"] = epoch if done == len(order) else epoch - 1 + done / len(order)
            tr.save(weights_file(out, name))
            print(f"{name} epoch {epoch}: loss {loss:.4f}, train {acc:.4f}, val {val['top1']:.4f} "
                  f"({group_line(val)}), {seconds:.1f} s", flush=True)
            atomic_write_json(out / RECORD, record)


def score_test_split(record: dict, trainers: dict, splits: dict, source, out: Path) -> None:
    """Every model saved (also when no epoch fitted: assemble still has a model to check) and scored on
    the test split of another seed."""
    test_data = on_device(splits["test"])
    n_test = len(splits["test"]["labels"])
    for name, tr in trainers.items():
        rec = record["models"][name]
        tr.save(weights_file(out, name))
        test = scores(tr.answers(test_data, n_test) == splits["test"]["labels"], splits["test"]["types"], source)
        rec["test"] = test
        done = [r["seconds"] for r in rec["curve"] if r["steps"] == rec["steps_per_epoch"]]
        rec["seconds_per_epoch"] = round(float(np.mean(done)), 2) if done else None
        print(f"{name} test ({n_test} questions): {test['top1']:.4f} ({group_line(test)})", flush=True)


def train(args) -> int:
    import jax
    import keras

    from kerascnn.models.vqa import SANTORO2017_RECIPE
    from kerascnn.runtime.jobs import atomic_write_json

    start = time.perf_counter()
    deadline = start + args.budget
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    source, vocab, splits = sort_of_clevr_data(args.images, args.question_length)
    train_data, val_data = on_device(splits["train"]), on_device(splits["val"])
    n_train, n_val = len(splits["train"]["labels"]), len(splits["val"]["labels"])
    model_args = json.loads(args.model_args) if args.model_args else {}
    # float32 (the paper's) by default; mixed_bfloat16 is faster on an H100 (float32 master weights, the
    # RN's sum and the logits in float32: kerascnn.models.vqa.SumPairs, common.classifier).
    keras.config.set_dtype_policy(args.precision)
    record = {"data": f"sort_of_clevr:{args.images}", "images": args.images,
              "questions": {k: int(len(v["labels"])) for k, v in splits.items()}, "vocabulary": vocab,
              "question_length": args.question_length, "model_args": model_args, "recipe": SANTORO2017_RECIPE,
              "seed": args.seed, "budget_s": args.budget, "precision": args.precision,
              "backend": keras.backend.backend(), "keras": keras.__version__, "jax": jax.__version__,
              "device": str(jax.devices()[0]),
              "class_names": list(source.class_names), "models": {}}
    trainers = build_trainers(args, record, source, n_train, out)
    planned, reserve = plan_epochs(args, record, trainers, train_data, val_data, n_train, n_val,
                                   lambda: deadline - time.perf_counter())
    record["plan"]["probe_done_s"] = round(time.perf_counter() - start, 1)
    atomic_write_json(out / RECORD, record)
    fit_epochs(args, record, trainers, splits, source, train_data, val_data, planned, deadline - reserve, out)
    score_test_split(record, trainers, splits, source, out)
    record["total_s"] = round(time.perf_counter() - start, 1)
    atomic_write_json(out / RECORD, record)
    print(f"done in {record['total_s']:.0f} s; {out}", flush=True)
    return 0


# --------------------------------------------------------------------------------------------------
# The CPU side (TensorFlow)


def transfer_by_name(source, target) -> list:
    """Copy the weights of every layer of `source` into the layer of the same name in `target`;
    returns the names copied. Every weighted layer of each must have its counterpart (the
    vectorize layer holds no weights, only its vocabulary, which the builder sets)."""
    mine = {layer.name: layer for layer in source.layers if layer.weights}
    theirs = {layer.name: layer for layer in target.layers if layer.weights}
    if set(mine) != set(theirs):
        raise ValueError(f"the layers with weights differ: only in the source {sorted(set(mine) - set(theirs))}, "
                         f"only in the target {sorted(set(theirs) - set(mine))}")
    for name, layer in theirs.items():
        layer.set_weights(mine[name].get_weights())
    return sorted(mine)


def assembled(name: str, record: dict, weights: Path):
    """The full model `name` (questions as strings) with the weights trained over token ids."""
    from kerascnn.models import create_model

    kwargs = dict(input_shape=(75, 75, 3), num_classes=len(record["class_names"]), **model_kwargs(name, record))
    tokens = create_model(name, question_input="tokens", **kwargs)
    tokens.load_weights(str(weights))
    full = create_model(name, **kwargs)
    transfer_by_name(tokens, full)
    return full, tokens


def check_same_answers(full, tokens, record: dict, source, n: int = 256) -> float:
    """Max |difference| of the probabilities of the full model (strings) and the token-id model on
    the first n validation questions; the two must agree."""
    from kerascnn.models.tokenize import token_ids

    part = source.splits["val"]
    idx = np.arange(min(n, len(part)))
    images = part.images[part.image_index[idx]].astype("float32")
    texts = part.questions[idx]  # an object array of str, as the data pipeline's strings
    ids = token_ids(list(texts), record["vocabulary"], record["question_length"])
    gap = 0.0
    for i in range(0, len(idx), 64):
        a = full.predict_on_batch({"image": images[i:i + 64], "question": texts[i:i + 64]})
        b = tokens.predict_on_batch({"image": images[i:i + 64], "question": ids[i:i + 64]})
        gap = max(gap, float(np.abs(np.asarray(a) - np.asarray(b)).max()))
    return gap


def plot_learning_curves(record: dict, path: Path) -> None:
    from kerascnn.runtime.plots import plot_group_curves
    from kerascnn.runtime.run_dir import group_accuracy_key

    labels = {"vqa_cnn_rn": "CNN+RN", "vqa_cnn_mlp": "CNN+MLP"}
    runs = {labels.get(name, name): [{"epoch": r["epoch"], **{group_accuracy_key(g): a for g, a in
                                                             r["val_by_group"].items()}} for r in rec["curve"]]
            for name, rec in record["models"].items()}
    plot_group_curves(runs, path, title=f"Sort-of-CLEVR ({record['data']}): validation accuracy per question group",
                      marks=(0.94, 0.63))


def assemble(args) -> int:
    from kerascnn.data.vqa import load_sort_of_clevr, question_vocabulary
    from kerascnn.inference.apply import evaluate
    from kerascnn.models.loading import load_model
    from kerascnn.runtime import run_dir as rd
    from kerascnn.runtime.jobs import atomic_save, atomic_write_json
    from kerascnn.training.configure import make_config

    out = Path(args.dir)
    record = json.loads((out / RECORD).read_text())
    source = load_sort_of_clevr(record["images"], record["data"])
    vocab = question_vocabulary(source.splits["train"].questions)  # TextVectorization.adapt, as `fit` does
    if vocab != record["vocabulary"]:
        raise SystemExit(f"the vocabulary TextVectorization learns differs from the record's: {vocab} against "
                         f"{record['vocabulary']}")
    results = {"data": record["data"], "device": record["device"], "backend": record["backend"], "models": {}}
    for name, rec in record["models"].items():
        weights = out / rec["weights"]
        if not weights.is_file():
            print(f"{name}: no weights ({weights}); skipped", flush=True)
            continue
        full, tokens = assembled(name, record, weights)
        gap = check_same_answers(full, tokens, record, source)
        folder = out / name  # a run folder's layout (saved_models/): model.keras, config.json, classes.json
        folder.mkdir(exist_ok=True)
        path = folder / rd.MODEL
        atomic_save(path, full.save)
        load_model(path)  # safe mode
        rd.write_classes(folder, record["class_names"])  # `kerascnn vqa ask` names the answers
        model_args = {k: v for k, v in model_kwargs(name, record).items() if k != "vocabulary"}  # the data's
        rd.write_config(folder, make_config(name, data=record["data"], input_shape=(75, 75, 3), seed=record["seed"],
                                            epochs=max(1, int(np.ceil(rec.get("epochs") or 1))), out=str(folder),
                                            model_args=model_args))
        res = evaluate(path, split="test")  # the run's data (config.json), its test split; confusion.png beside
        by_group = {g["group"]: g["accuracy"] for g in res.by_group}
        results["models"][name] = {
            "model": str(path.relative_to(out)), "epochs": rec.get("epochs"), "step_ms_device": rec.get("step_ms"),
            "seconds_per_epoch_device": rec.get("seconds_per_epoch"), "params": rec.get("params"),
            "test_examples": res.count, "test_top1": res.top1, "test_loss": res.loss, "test_by_group": by_group,
            "test_by_type": {r["type"]: r["accuracy"] for r in res.by_type},
            "jax_test_by_group": {g["group"]: g["accuracy"] for g in rec.get("test", {}).get("by_group", [])},
            "strings_vs_tokens_max_abs_diff": gap,
            "goals": {g: {"goal": v, "met": by_group.get(g, 0.0) >= v} for g, v in GOALS.get(name, {}).items()},
            "paper": PAPER.get(name, {}),
            "best_val_by_group": {g: max(r["val_by_group"].get(g, 0.0) for r in rec["curve"])
                                  for g in ("relational", "non-relational")} if rec["curve"] else {},
        }
        print(f"{name}: test {res.top1:.4f} ({', '.join(f'{g} {a:.4f}' for g, a in by_group.items())}) over "
              f"{res.count} questions; JAX said {results['models'][name]['jax_test_by_group']}; "
              f"strings vs token ids differ by {gap:.2e}", flush=True)
    plot_learning_curves(record, out / CURVES)
    atomic_write_json(out / RESULTS, results)
    print(f"wrote {out / RESULTS} and {out / CURVES}", flush=True)
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["assemble"]:
        p = argparse.ArgumentParser(description="assemble and score the GPU run's models (TensorFlow)")
        p.add_argument("dir")
        return assemble(p.parse_args(argv[1:]))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=480.0, help="seconds from start to the last epoch's end")
    p.add_argument("--out", required=True)
    p.add_argument("--images", type=int, default=10_000, help="sort_of_clevr:N (the paper's 10,000)")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--max-epochs", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1, help="initial weights and shuffling (the data's seeds are fixed)")
    p.add_argument("--question-length", type=int, default=24, help="the builders' default")
    p.add_argument("--precision", default="float32", choices=("float32", "mixed_bfloat16"))
    p.add_argument("--model-args", default=None, help='JSON builder overrides, e.g. {"g_units": 32} (smoke tests)')
    return train(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
