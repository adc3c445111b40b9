"""Train case-study networks with a paper's recipe on a lent GPU machine that has no TensorFlow.

    KERAS_BACKEND=jax python bench/recipe_gpu.py --budget 400 --seed 1 --out /tmp/m1
    kerascnn evaluate /tmp/m1/model.keras --data idx:/usr/share/datasets/fashion-mnist --split test

The GPU machines lent to this project carry PyTorch and JAX but no TensorFlow, and cannot install it
(no network; TensorFlow's wheel is ten times the 64 MiB a call may carry). Keras 3 runs the same
kerascnn code on JAX: the registry's builder (`create_model`), the recipe as resolved by the one
settings system (`make_config(..., recipe=...)`), the harness's optimizer and schedule
(`make_optimizer`). Only the input pipeline differs, because tf.data is TensorFlow's: the images are
numpy arrays and the recipe's augmentation is Keras's backend-neutral layers in front of the network
(a random shift by whole pixels with zero fill, as `--translate`; RandomFlip, as `--hflip`).
The saved `.keras` holds the network alone and is evaluated by `kerascnn evaluate` with TensorFlow.

The recipe's length is in epochs; a GPU session has minutes, so `--budget` shortens it: a probe of a
few hundred steps times the step, and the run gets as many epochs as fit (at most the recipe's), the
schedule's milestones staying at their fractions of the run.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout, not installed

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerascnn.models import create_model  # noqa: E402
from kerascnn.training.configure import make_config  # noqa: E402
from kerascnn.training.optim import make_optimizer  # noqa: E402


def fashion_mnist():
    """Keras's loader reads the IDX files from $KERAS_HOME/datasets/fashion-mnist/ without a download."""
    (x, y), (xt, yt) = keras.datasets.fashion_mnist.load_data()
    return x[..., None].astype("float32"), y.astype("int32"), xt[..., None].astype("float32"), yt.astype("int32")


class RandomShift(keras.layers.Layer):
    """A random shift of each image by whole pixels, at most `max_dy`, `max_dx`, zero fill (the recipe's
    `--translate`, as kerascnn.data.augment does it). Keras's RandomTranslation would do, but it turns
    XLA off for the whole train step (supports_jit = False), which costs more than the network on JAX.
    The shift is a product with 0/1 shift matrices: exact, and cheap at these sizes."""

    def __init__(self, max_dy: int, max_dx: int, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.max_dy, self.max_dx = max_dy, max_dx
        self.generator = keras.random.SeedGenerator(seed)

    def _matrices(self, batch, size: int, limit: int):
        shift = keras.random.randint((batch,), -limit, limit + 1, seed=self.generator)
        rows = keras.ops.arange(size)[None, :, None]
        cols = keras.ops.arange(size)[None, None, :]
        return keras.ops.cast(keras.ops.equal(cols, rows - shift[:, None, None]), self.compute_dtype)

    def call(self, images, training=None):
        if not training:
            return images
        batch, height, width = keras.ops.shape(images)[0], images.shape[1], images.shape[2]
        sy, sx = self._matrices(batch, height, self.max_dy), self._matrices(batch, width, self.max_dx)
        images = keras.ops.einsum("bij,bjwc->biwc", sy, images)
        return keras.ops.einsum("bkw,biwc->bikc", sx, images)


def trainer(cfg, net, height: int, width: int) -> keras.Model:
    """The network behind the recipe's augmentation (active in training only)."""
    layers = [keras.Input(net.input_shape[1:])]
    aug = cfg.augment
    if aug.hflip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=cfg.seed))
    if aug.translate:
        layers.append(RandomShift(int(aug.translate * height), int(aug.translate * width), seed=cfg.seed))
    return keras.Sequential(layers + [net])


def compiled(cfg, x, steps_per_epoch: int):
    keras.utils.set_random_seed(cfg.seed)
    net = create_model(cfg.model, input_shape=tuple(cfg.input_shape), num_classes=10, **dict(cfg.model_args))
    model = trainer(cfg, net, *x.shape[1:3])
    model.compile(optimizer=make_optimizer(cfg, steps_per_epoch),
                  loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"], jit_compile=True)
    return net, model


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet20")
    p.add_argument("--recipe", default="resnet_cifar")
    p.add_argument("--budget", type=float, default=400.0, help="seconds of training (probe included)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--eval-every", type=int, default=10)
    p.add_argument("--limit", type=int, default=None, help="train on the first N images only (a smoke test)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    x, y, xt, yt = fashion_mnist()
    x, y = x[:args.limit], y[:args.limit]
    base = make_config(args.model, recipe=args.recipe, input_shape=x.shape[1:], seed=args.seed)
    steps = int(np.ceil(len(x) / base.batch_size))

    # Probe: compile, then time 200 steps, with a throwaway copy of the model.
    _, probe = compiled(base, x, steps)
    n = 200 * base.batch_size
    probe.fit(x[:n], y[:n], batch_size=base.batch_size, epochs=1, steps_per_epoch=20, verbose=0)
    t = time.perf_counter()
    probe.fit(x[:n], y[:n], batch_size=base.batch_size, epochs=1, verbose=0)
    step_s = (time.perf_counter() - t) / -(-min(n, len(x)) // base.batch_size)
    left = args.budget - (time.perf_counter() - start)
    epochs = max(2, min(base.epochs, int(0.9 * left / (step_s * steps + 0.5))))
    cfg = make_config(args.model, recipe=args.recipe, input_shape=x.shape[1:], seed=args.seed, epochs=epochs)
    print(f"{args.model} {args.recipe} seed {args.seed}: {step_s * 1e3:.1f} ms a step, {steps} steps an epoch;"
          f" {epochs} of the recipe's {base.epochs} epochs fit in the budget", flush=True)

    net, model = compiled(cfg, x, steps)
    curve = []

    class Log(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            row = {"epoch": epoch + 1, "loss": float(logs["loss"]), "train_acc": float(logs["accuracy"]),
                   "seconds": round(time.perf_counter() - t0, 1)}
            if (epoch + 1) % args.eval_every == 0 or epoch + 1 == epochs:
                row["test_acc"] = float(np.mean(np.argmax(net.predict(xt, batch_size=1000, verbose=0), -1) == yt))
            curve.append(row)
            print(json.dumps(row), flush=True)

    t0 = time.perf_counter()
    model.fit(x, y, batch_size=cfg.batch_size, epochs=epochs, shuffle=True, verbose=0, callbacks=[Log()])
    train_s = time.perf_counter() - t0
    probs = net.predict(xt, batch_size=1000, verbose=0)
    record = {
        "model": args.model, "recipe": args.recipe, "seed": args.seed, "epochs": epochs,
        "recipe_epochs": base.epochs, "milestones": list(cfg.milestones), "batch_size": cfg.batch_size,
        "lr": cfg.lr, "weight_decay": cfg.weight_decay, "translate": cfg.augment.translate, "hflip": cfg.augment.hflip,
        "backend": keras.backend.backend(), "keras": keras.__version__, "train_seconds": round(train_s, 1),
        "seconds_per_epoch": round(train_s / epochs, 2), "test_top1": float(np.mean(np.argmax(probs, -1) == yt)),
        "curve": curve,
    }
    net.save(out / "model.keras")
    (out / "record.json").write_text(json.dumps(record, indent=1))
    print(f"test top-1 {record['test_top1']:.4f} after {epochs} epochs, {train_s:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
