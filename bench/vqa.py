"""The Relation Network's cost on a CPU (TensorFlow): its factored first g layer against the plain pairwise
one, and the time of an epoch of CNN+RN and CNN+MLP through the harness.

    python bench/vqa.py pairwise       # factored (PairwiseDense) vs plain pairs, forward and forward+backward
    python bench/vqa.py epoch          # a few training steps of each model, as seconds per epoch
    python bench/vqa.py compare --rn RUN --mlp RUN --out DIR   # two `kerascnn fit` runs side by side
    python bench/vqa.py probe MODEL.keras [--weights RUN/backup/epoch-N.weights.h5]   # colour kept?
    python bench/vqa.py shortcuts MODEL.keras [--weights ...]   # relational answers from the scene, not the object?

`pairwise`: g over every ordered pair of objects with the question, at the paper's sizes (25 objects
of 24 + 2 coordinates, a 128-d question, batch 64, g 4 x 256, summed over the 625 pairs). The plain
RN concatenates [o_i, o_j, q] for every pair and applies a Dense to the (B, 625, 180) tensor; the
factored one (kerascnn.models.vqa.PairwiseDense) multiplies each object and the question once and adds
per pair. Both get the same weights; the script checks that their outputs agree, then times each in
a tf.function: g's first layer alone, and the whole g with its sum (what the RN computes), forward and
forward+backward (gradients of every weight), in milliseconds a batch (the median of --repeats).

`epoch`: the models as `kerascnn fit --model vqa_cnn_rn --data sort_of_clevr` builds and compiles
them (the harness's make_config, build_model, make_optimizer; the data pipeline's tf.data batches;
--precision as fit's, auto by default), --steps timed training steps after a warm-up (median),
times the paper's 3,062 steps an epoch (9,800 images x 20 questions / 64).

`compare`: the CPU reproduction, two run folders of `kerascnn fit --model vqa_cnn_rn|vqa_cnn_mlp --data
sort_of_clevr` (same data, same recipe, same epochs): each model scored on the test split of another seed
with `kerascnn.evaluate` (accuracy per question type and group; confusion.png beside each model), the
validation accuracy per group at every epoch (history.csv's `val_accuracy_<group>`, ValAccuracyByGroup's)
plotted for both in DIR/learning_curves.png, the seconds an epoch from history.csv, and DIR/results.json;
prints a Markdown table for bench/RESULTS.md. The goals: CNN+RN at least 94% on both groups, CNN+MLP's
relational figure near the paper's 63%.

`probe`: what the objects carry. A logistic regression (scikit-learn) on the features of the
"image_features" cell holding each object's centre, fitted on 3/4 of --scenes generated scenes and
scored on the rest: how well the cells tell each object's colour (chance 1/6) and shape (1/2). The
CNN must keep colour for any question to find its object; the first CPU run's CNN lost most of it within two
epochs (46% untrained, 22% at epoch 14, shape 97%: bench/RESULTS.md). The model's BN statistics are
recomputed first (PreciseBN, from generated scenes), so a backup's weights are judged as trained.

`shortcuts`: where the relational answers come from. On --scenes scenes of seed 777, per relational
type: the model's accuracy; the accuracy of a shortcut that never ties the question to its object
(closest/furthest: the majority shape of the other five objects; count: the larger shape group's size,
max(k, 6 - k)), and how often the model answers as the shortcut does; count's accuracy per true answer
(the shortcut is right for 3-6 and never for 1-2); closest/furthest's accuracy by the margin between
the answer object's distance and the runner-up's (a model that binds but sees positions coarsely
fails at small margins only).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout, not installed

import numpy as np  # noqa: E402

PAPER_STEPS = 9_800 * 20 // 64  # an epoch of Sort-of-CLEVR at batch 64 (the last partial batch dropped)


def _pairs_layer():
    import keras

    class AllPairs(keras.layers.Layer):
        """[objects (B, N, D), question (B, Q)] -> (B, N*N, 2D + Q): [o_i, o_j, q] at i*N + j (the plain RN)."""

        def call(self, inputs):
            objects, question = inputs
            n = objects.shape[1]
            left = keras.ops.repeat(objects[:, :, None, :], n, axis=2)
            right = keras.ops.repeat(objects[:, None, :, :], n, axis=1)
            q = keras.ops.broadcast_to(question[:, None, None, :], (keras.ops.shape(objects)[0], n, n,
                                                                     question.shape[-1]))
            return keras.ops.reshape(keras.ops.concatenate([left, right, q], -1), (-1, n * n, 2 * objects.shape[-1]
                                                                                   + question.shape[-1]))

    return AllPairs


def g_models(objects: int, object_dim: int, question_dim: int, units: int, layers: int, summed: bool):
    """(factored, plain) Keras models of g with the same weights: [objects, question] -> (B, N*N, units)
    pair outputs, or with `summed` their sum (B, units)."""
    import keras

    from kerascnn.models.vqa import PairwiseDense, SumPairs

    def build(factored: bool):
        o = keras.Input((objects, object_dim), name="objects")
        q = keras.Input((question_dim,), name="question")
        if factored:
            x = PairwiseDense(units, activation="relu", name="g1")([o, q])
        else:
            x = keras.layers.Dense(units, activation="relu", name="g1")(_pairs_layer()(name="pairs")([o, q]))
        for i in range(2, layers + 1):
            x = keras.layers.Dense(units, activation="relu", name=f"g{i}")(x)
        if summed:
            x = SumPairs(name="relations")(x)
        return keras.Model([o, q], x, name="factored" if factored else "plain")

    factored, plain = build(True), build(False)
    for layer in factored.layers:
        if layer.weights:
            plain.get_layer(layer.name).set_weights(layer.get_weights())
    return factored, plain


def _median_ms(fn, repeats: int, warmup: int) -> float:
    from bench.timing import call_times

    return 1e3 * float(np.median(call_times(fn, repeats, warmup)))


def time_pair(factored, plain, inputs, repeats: int, warmup: int) -> dict:
    """Agreement and ms a batch of both models, forward and forward+backward."""
    import tensorflow as tf

    x = [tf.constant(a) for a in inputs]
    row = {}
    a, b = np.asarray(factored(x), np.float32), np.asarray(plain(x), np.float32)
    row["max_abs_diff"] = float(np.abs(a - b).max())
    row["max_abs_output"] = float(np.abs(b).max())
    for name, model in (("factored", factored), ("plain", plain)):
        forward = tf.function(lambda m=model: m(x, training=False))

        @tf.function
        def backward(m=model):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.cast(m(x, training=True), tf.float32))
            return tape.gradient(loss, m.trainable_variables)

        row[f"{name}_forward_ms"] = _median_ms(lambda: forward().numpy(), repeats, warmup)
        row[f"{name}_forward_backward_ms"] = _median_ms(lambda: [g.numpy() for g in backward()], repeats, warmup)
    row["speedup_forward"] = row["plain_forward_ms"] / row["factored_forward_ms"]
    row["speedup_forward_backward"] = row["plain_forward_backward_ms"] / row["factored_forward_backward_ms"]
    return row


def pairwise(args) -> dict:
    import keras

    from kerascnn.training.distribute import precision_scope

    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(args.batch, args.objects, args.object_dim)).astype("float32"),
              rng.normal(size=(args.batch, args.question_dim)).astype("float32")]
    result = {"section": "pairwise", "batch": args.batch, "objects": args.objects, "object_dim": args.object_dim,
              "question_dim": args.question_dim, "units": args.units, "layers": args.layers, "rows": []}
    with precision_scope(args.precision) as policy:
        result["precision"] = policy
        tolerance = 1e-4 if policy == "float32" else 5e-2  # relative to the outputs' largest magnitude
        for what, layers, summed in (("g1", 1, False), ("g", args.layers, True)):
            keras.utils.set_random_seed(0)
            factored, plain = g_models(args.objects, args.object_dim, args.question_dim, args.units, layers, summed)
            row = {"what": what, **time_pair(factored, plain, inputs, args.repeats, args.warmup)}
            row["agree"] = row["max_abs_diff"] <= tolerance * max(1.0, row["max_abs_output"])
            result["rows"].append(row)
            label = "g's first layer" if what == "g1" else f"g ({layers} layers, summed)"
            print(f"{label}: forward {row['factored_forward_ms']:.1f} ms factored, {row['plain_forward_ms']:.1f} ms "
                  f"plain ({row['speedup_forward']:.2f}x); forward+backward {row['factored_forward_backward_ms']:.1f}"
                  f" ms against {row['plain_forward_backward_ms']:.1f} ms ({row['speedup_forward_backward']:.2f}x);"
                  f" outputs differ by {row['max_abs_diff']:.2e} (largest {row['max_abs_output']:.2e}): "
                  f"{'agree' if row['agree'] else 'DISAGREE'}", flush=True)
    if not all(r["agree"] for r in result["rows"]):
        raise SystemExit("the factored and plain pairwise layers disagree")
    return result


class _StepTimes:
    def __init__(self):
        import keras

        outer = self

        class Callback(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                outer.start = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                outer.times.append(time.perf_counter() - outer.start)

        self.times, self.start, self.callback = [], 0.0, Callback()


def epoch(args) -> dict:
    from kerascnn.config import DataConfig
    from kerascnn.data.vqa import build_vqa
    from kerascnn.training.configure import make_config
    from kerascnn.training.distribute import precision_scope
    from kerascnn.training.loop import build_model
    from kerascnn.training.optim import make_optimizer

    spec = f"sort_of_clevr:{args.images}"
    result = {"section": "epoch", "data": spec, "paper_steps_per_epoch": PAPER_STEPS, "models": {}}
    for name in args.models.split(","):
        cfg = make_config(name, data=spec, input_shape=(75, 75, 3), precision=args.precision)
        bundle = build_vqa(DataConfig(spec=spec), (75, 75, 3), cfg.batch_size, splits=("train",))
        with precision_scope(cfg.precision) as policy:
            model = build_model(cfg, (75, 75, 3), bundle.num_classes, make_optimizer(cfg, PAPER_STEPS),
                                data_args=bundle.model_args)
            timer = _StepTimes()
            model.fit(bundle.train, epochs=1, steps_per_epoch=args.warmup + args.steps, verbose=0, shuffle=False,
                      callbacks=[timer.callback])
        step = float(np.median(timer.times[args.warmup:]))
        result["models"][name] = {"precision": policy, "batch_size": cfg.batch_size, "step_ms": 1e3 * step,
                                  "seconds_per_epoch": step * PAPER_STEPS, "steps_timed": args.steps}
        print(f"{name} ({policy}, batch {cfg.batch_size}): {1e3 * step:.0f} ms a step -> "
              f"{step * PAPER_STEPS / 60:.1f} min an epoch of {PAPER_STEPS} steps", flush=True)
    return result


GOALS = {"CNN+RN": {"relational": 0.94, "non-relational": 0.94}, "CNN+MLP": {}}
PAPER = {"CNN+RN": {"relational": "> 94%", "non-relational": "> 94%"},
         "CNN+MLP": {"relational": "~63%", "non-relational": "> 94%"}}


def _history(run: Path) -> list:
    import csv

    with open(run / "history.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def compare(args) -> dict:
    from kerascnn.inference.apply import evaluate
    from kerascnn.runtime.plots import plot_group_curves

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    curves, result = {}, {"models": {}}
    for label, run in (("CNN+RN", Path(args.rn)), ("CNN+MLP", Path(args.mlp))):
        rows = _history(run)
        curves[label] = rows
        seconds = [float(r["seconds"]) for r in rows if r.get("seconds")]
        res = evaluate(run / "model.keras", split="test")
        groups = {g["group"]: g["accuracy"] for g in res.by_group}
        result["models"][label] = {
            "run": str(run), "epochs": len(rows), "seconds_per_epoch": float(np.median(seconds)) if seconds else None,
            "train_hours": sum(seconds) / 3600, "test_questions": res.count, "test_top1": res.top1,
            "test_by_group": groups, "test_by_type": {r["type"]: r["accuracy"] for r in res.by_type},
            "goals": {g: {"goal": v, "met": groups.get(g, 0.0) >= v} for g, v in GOALS[label].items()},
            "paper": PAPER[label]}
    plot_group_curves(curves, out / "learning_curves.png", marks=(0.94, 0.63),
                      title="Sort-of-CLEVR: validation accuracy per question group (2 CPU cores)")
    types = list(next(iter(result["models"].values()))["test_by_type"])
    print("| model | epochs | min an epoch | " + " | ".join(types) + " | non-relational | relational | paper |")
    print("|---" * (len(types) + 6) + "|")
    for label, m in result["models"].items():
        cells = [f"{m['test_by_type'][t]:.2%}" for t in types]
        cells += [f"{m['test_by_group'].get(g, float('nan')):.2%}" for g in ("non-relational", "relational")]
        paper = ", ".join(f"{g} {v}" for g, v in m["paper"].items())
        print(f"| {label} | {m['epochs']} | {(m['seconds_per_epoch'] or 0) / 60:.1f} | " + " | ".join(cells)
              + f" | {paper} |")
    print(f"wrote {out / 'learning_curves.png'}")
    return result


def cell_probe(maps: np.ndarray, centres: np.ndarray, shapes: np.ndarray, image_size: int) -> dict:
    """Colour and shape decodability of the objects' cells: maps (scenes, h, w, c) channels-last,
    centres (scenes, 6, 2) (x, y) pixels, shapes (scenes, 6); a logistic regression fitted on the first
    3/4 of the scenes, scored on the rest. NumPy and scikit-learn only (bench/vqa_reference.py uses it
    where kerascnn is not installed)."""
    from sklearn.linear_model import LogisticRegression

    h, w = maps.shape[1:3]
    rows = np.clip(centres[..., 1] * h // image_size, 0, h - 1)
    cols = np.clip(centres[..., 0] * w // image_size, 0, w - 1)
    cells = maps[np.arange(len(maps))[:, None], rows, cols]  # (scenes, objects, channels)
    fit = len(maps) * 3 // 4
    result = {}
    for name, labels in (("colour", np.tile(np.arange(centres.shape[1]), (len(maps), 1))), ("shape", shapes)):
        clf = LogisticRegression(max_iter=3000).fit(cells[:fit].reshape(-1, cells.shape[-1]), labels[:fit].ravel())
        result[name] = float(clf.score(cells[fit:].reshape(-1, cells.shape[-1]), labels[fit:].ravel()))
    return result


def _loaded(args, section: str):
    """The vqa_cnn_rn / vqa_cnn_mlp model of `args.model` (with `args.weights`, a run's backup, if given),
    its BN statistics recomputed from generated scenes (PreciseBN), so a backup's weights are judged
    as trained. Exits with a one-line message for a file that is not such a model."""
    from kerascnn.data import sort_of_clevr as soc
    from kerascnn.errors import UserError
    from kerascnn.models.loading import load_model
    from kerascnn.models.vqa import FEATURES
    from kerascnn.training.callbacks import recompute_batch_norm

    try:
        model = load_model(args.model)
    except UserError as e:
        sys.exit(f"bench/vqa.py {section}: {e}")
    inputs = model.input if isinstance(model.input, dict) else {}
    if set(inputs) != {"image", "question"} or FEATURES not in [layer.name for layer in model.layers]:
        sys.exit(f"bench/vqa.py {section}: {args.model} is not a vqa_cnn_rn or vqa_cnn_mlp model (it needs the "
                 f"inputs image and question and a layer {FEATURES!r}).")
    if args.weights:
        try:
            model.load_weights(args.weights)
        except (OSError, ValueError) as e:
            sys.exit(f"bench/vqa.py {section}: --weights {args.weights} does not load into {args.model}: {e}")
    calibration = soc.generate(640, seed=991)
    recompute_batch_norm(model, [{"image": calibration.images[i:i + 64].astype("float32"),
                                  "question": calibration.texts()[i:i + 64, 0]} for i in range(0, 640, 64)])
    return model


def probe(args) -> dict:
    import keras

    from kerascnn.data import sort_of_clevr as soc
    from kerascnn.models.vqa import FEATURES

    model = _loaded(args, "probe")
    features = keras.Model(model.input["image"], model.get_layer(FEATURES).output)
    scenes = soc.generate(args.scenes, seed=4242)
    maps = np.asarray(features.predict(scenes.images.astype("float32"), batch_size=200, verbose=0), "float32")
    result = {"model": str(args.model), "weights": args.weights, "scenes": args.scenes,
              **cell_probe(maps, scenes.centres, scenes.shapes, soc.SIZE)}
    print(f"the cells tell colour {result['colour']:.1%} (chance 16.7%), shape {result['shape']:.1%} (chance 50%)")
    return result


MARGINS = (0, 2, 5, 10, 20, 1000)  # pixels between the answer object's distance and the runner-up's


def shortcut_answers(shapes: np.ndarray, centres: np.ndarray, types: np.ndarray, colors: np.ndarray) -> dict:
    """For relational questions (scene-aligned arrays: shapes (n, 6), centres (n, 6, 2); per question
    its scene's row of types/colors, all (q,)), what a model answers that never ties the question to
    its object: closest/furthest -> the majority shape of the other five objects (3-2 at least),
    count -> the size of the larger shape group, max(k, 6 - k). Also the margin (pixels) of each
    closest/furthest question: the runner-up's distance minus the answer's (furthest: reversed).
    Returns {"answer": (q,) ANSWERS index or -1 for non-relational, "margin": (q,) float}."""
    from kerascnn.data import sort_of_clevr as soc

    own = shapes[np.arange(len(shapes)), colors]
    others_square = (shapes == 0).sum(1) - (own == 0)
    majority = np.where(others_square >= 3, 0, 1)
    same = (shapes == own[:, None]).sum(1)
    d = np.sqrt(((centres[np.arange(len(centres)), colors][:, None] - centres) ** 2).sum(-1))
    d[np.arange(len(d)), colors] = np.nan
    ordered = np.sort(d, 1)[:, :5]  # nan (the object itself) sorts last
    kind = np.asarray(soc.QUESTION_TYPES)[types]
    answer = np.where(np.isin(kind, ["closest", "furthest"]), soc.ANSWERS.index("square") + majority,
                      np.where(kind == "count", soc.ANSWERS.index("1") + np.maximum(same, 6 - same) - 1, -1))
    margin = np.where(kind == "closest", ordered[:, 1] - ordered[:, 0], ordered[:, 4] - ordered[:, 3])
    return {"answer": answer, "margin": margin}


def shortcuts(args) -> dict:
    """Do the relational answers come from the named object, or from the scene as a whole?"""
    from kerascnn.data import sort_of_clevr as soc

    model = _loaded(args, "shortcuts")
    data = soc.generate(args.scenes, seed=777)
    per = data.types.shape[1]
    scene = np.repeat(np.arange(len(data)), per)
    types, colors, answers = data.types.ravel(), data.colors.ravel(), data.answers.ravel()
    texts = np.asarray([soc.question_text(t, c) for t, c in zip(types, colors)], dtype=object)
    probs = model.predict({"image": data.images[scene].astype("float32"), "question": texts}, batch_size=256,
                          verbose=0)
    pred = np.asarray(probs).argmax(1)
    cut = shortcut_answers(data.shapes[scene], data.centres[scene], types, colors)
    result = {"model": str(args.model), "weights": args.weights, "scenes": args.scenes, "types": {}}
    for name in soc.RELATIONAL:
        sel = types == soc.QUESTION_TYPES.index(name)
        ok = pred[sel] == answers[sel]
        row = {"questions": int(sel.sum()), "accuracy": float(ok.mean()),
               "shortcut_accuracy": float(np.mean(cut["answer"][sel] == answers[sel])),
               "answers_as_the_shortcut": float(np.mean(pred[sel] == cut["answer"][sel]))}
        if name == "count":
            row["accuracy_by_answer"] = {a: float(ok[answers[sel] == soc.ANSWERS.index(a)].mean())
                                         for a in "123456" if np.any(answers[sel] == soc.ANSWERS.index(a))}
        else:
            m = cut["margin"][sel]
            row["accuracy_by_margin"] = {f"{lo}-{hi}px": float(ok[(m >= lo) & (m < hi)].mean())
                                         for lo, hi in zip(MARGINS[:-1], MARGINS[1:]) if np.any((m >= lo) & (m < hi))}
        result["types"][name] = row
        print(name, json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()
                                if not isinstance(v, dict)}),
              json.dumps({k: round(v, 3) for d in row.values() if isinstance(d, dict) for k, v in d.items()}))
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="section", required=True)
    pw = sub.add_parser("pairwise", help="factored vs plain pairwise g")
    pw.add_argument("--batch", type=int, default=64)
    pw.add_argument("--objects", type=int, default=25, help="5x5 cells of the CNN's last map")
    pw.add_argument("--object-dim", type=int, default=26, help="24 maps + (x, y)")
    pw.add_argument("--question-dim", type=int, default=128, help="the LSTM's units")
    pw.add_argument("--units", type=int, default=256)
    pw.add_argument("--layers", type=int, default=4)
    pw.add_argument("--repeats", type=int, default=5)
    pw.add_argument("--warmup", type=int, default=2)
    pw.add_argument("--precision", default="float32", help="float32 (default), mixed_bfloat16 or auto")
    ep = sub.add_parser("epoch", help="seconds per epoch of CNN+RN and CNN+MLP through the harness")
    ep.add_argument("--models", default="vqa_cnn_rn,vqa_cnn_mlp")
    ep.add_argument("--images", type=int, default=200, help="sort_of_clevr:N to draw the timed batches from")
    ep.add_argument("--steps", type=int, default=5)
    ep.add_argument("--warmup", type=int, default=2)
    ep.add_argument("--precision", default="auto", help="as fit's --precision")
    cp = sub.add_parser("compare", help="two fit runs (CNN+RN, CNN+MLP): test accuracy per type, curves")
    cp.add_argument("--rn", required=True, help="the vqa_cnn_rn run folder")
    cp.add_argument("--mlp", required=True, help="the vqa_cnn_mlp run folder")
    cp.add_argument("--out", required=True, help="learning_curves.png and results.json go here")
    pr = sub.add_parser("probe", help="can the objects' cells tell their colour and shape?")
    pr.add_argument("model", help="a vqa_cnn_rn or vqa_cnn_mlp .keras file")
    pr.add_argument("--weights", default=None, help="a .weights.h5 of the same model (a run's backup)")
    pr.add_argument("--scenes", type=int, default=1200)
    sc = sub.add_parser("shortcuts", help="relational answers: from the named object or the whole scene?")
    sc.add_argument("model", help="a vqa_cnn_rn or vqa_cnn_mlp .keras file")
    sc.add_argument("--weights", default=None, help="a .weights.h5 of the same model (a run's backup)")
    sc.add_argument("--scenes", type=int, default=300)
    for sp in (pw, ep, cp, pr, sc):
        sp.add_argument("--json", default=None, help="also write the figures here")
    args = p.parse_args(argv)
    result = {"pairwise": pairwise, "epoch": epoch, "compare": compare, "probe": probe,
              "shortcuts": shortcuts}[args.section](args)
    if args.section == "compare":
        Path(args.out, "results.json").write_text(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
