"""Time-to-quality curves of Gatys style transfer on a lent GPU machine (JAX), to choose the app's defaults.

    python bench/stylize_gpu.py prepare --out .gpu/stylize_inputs.npz        # here, with TensorFlow
    KERAS_BACKEND=jax python bench/stylize_gpu.py curves --inputs .gpu/stylize_inputs.npz \
        --json $OUT/curves.json     # on the GPU machine

The GPU machines lent to this project have JAX but no TensorFlow, so the objective is written here
again in jax.numpy on Keras's JAX backend: the same network (kerascnn's VGG16 with the ImageNet feature
weights), layers, layer weights and loss as kerascnn.synthesis.stylization.StyleObjective (untiled), and the
app's own optimiser (apps.style_transfer.lbfgs, SciPy's L-BFGS-B) or Keras's Adam rule in numpy.
The photo and style image are resized here with the app's resizing (`prepare`), so both machines
optimise the same pictures.

Cost is counted in evaluations at the output size: an evaluation at a scale with a quarter of the
pixels counts a quarter (the network's work is proportional to the pixels). The CPU bench
(bench/stylize.py gatys) measures the chosen defaults in seconds; this one says which to choose.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

SIZES = (64, 128, 256, 512)


def prepare(args) -> None:
    """The photo and style image at every size, resized as the app resizes them (TensorFlow)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import stylize as bench
    from kerascnn.apps.style_transfer import _read, _resize, _shape_for

    style = _read(str(bench.STYLE), "style")
    arrays = {}
    for side in SIZES:
        photo = _read(bench.photo(args.photo), "content", side)
        arrays[f"photo{side}"] = photo
        arrays[f"style{side}"] = _resize(style, _shape_for(style.shape[:2], side))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    # The network's weights up to the deepest tapped layer (the whole file does not fit a carry).
    from kerascnn.models.networks import network
    from kerascnn.synthesis.stylization import expand_layers

    net = network("vgg16", str(bench.WEIGHTS))
    tapped = set(expand_layers(net, {"content": 1.0, "style": 1.0}, "layers"))
    last = max(i for i, layer in enumerate(net.layers) if layer.name in tapped)
    weights = {f"{layer.name}/{j}": w for layer in net.layers[:last + 1] for j, w in enumerate(layer.get_weights())}
    np.savez(Path(args.out).with_name("vgg16_features.npz"), **weights)
    np.savez_compressed(args.out, **{k: v.astype(np.float16) for k, v in arrays.items()})  # fits a carry
    print({k: v.shape for k, v in arrays.items()})


class Objective:
    """kerascnn.synthesis.stylization.StyleObjective's untiled loss in jax.numpy on the Keras network, jitted per
    shape."""

    def __init__(self, weights_file: str):
        import jax

        from apps.style_transfer import StylizeConfig
        from kerascnn.models.features import any_size, feature_extractor
        from kerascnn.models.networks import network
        from kerascnn.synthesis.stylization import expand_layers, normalised

        net = network("vgg16", "none", seed=0)
        saved = np.load(weights_file)
        for layer in net.layers:
            if f"{layer.name}/0" in saved:
                layer.set_weights([saved[f"{layer.name}/{j}"] for j in range(len(layer.get_weights()))])
        content = normalised(expand_layers(net, {"content": 1.0}, "content_layers"), "content_layers")
        style = normalised(expand_layers(net, {"style": 1.0}, "style_layers"), "style_layers")
        self.extractor = any_size(feature_extractor(net, list(content) + list(style)))
        self.cw, self.sw, self.nc = list(content.values()), list(style.values()), len(content)
        cfg = StylizeConfig()  # the app's loss weights
        self.w = (cfg.content_weight, cfg.style_weight, cfg.tv_weight)
        self._vg = jax.jit(jax.value_and_grad(self._loss, has_aux=True))
        self._stats = jax.jit(self._statistics)

    def _statistics(self, image):
        import jax.numpy as jnp

        h, w = image.shape[:2]  # reflect-padded to a multiple of the largest stride, as StyleObjective.pad
        image = jnp.pad(image, ((0, -h % 16), (0, -w % 16), (0, 0)), mode="reflect")
        feats = self.extractor(image[None])
        feats = list(feats) if isinstance(feats, (list, tuple)) else [feats]
        grams = []
        for f in feats[self.nc:]:
            flat = jnp.reshape(f, (-1, f.shape[-1]))
            grams.append(flat.T @ flat / flat.shape[0])
        return feats[:self.nc], grams

    def _loss(self, image, content, grams):
        import jax.numpy as jnp

        def rel(x, ref):
            return jnp.sum(jnp.square(x - ref)) / (jnp.sum(jnp.square(ref)) + 1e-12)

        c_feats, g = self._statistics(image)
        c = sum(w * rel(f, p) for w, f, p in zip(self.cw, c_feats, content))
        s = sum(w * rel(a, b) for w, a, b in zip(self.sw, g, grams))
        x = image[None] / 255.0
        t = jnp.mean(jnp.square(x[:, 1:] - x[:, :-1])) + jnp.mean(jnp.square(x[:, :, 1:] - x[:, :, :-1]))
        return self.w[0] * c + self.w[1] * s + self.w[2] * t, (c, s, t)

    def targets(self, photo, style):
        content, _ = self._stats(photo)
        _, grams = self._stats(style)
        return content, grams

    def __call__(self, image, targets):
        (loss, parts), grad = self._vg(image, *targets)
        return float(loss), np.asarray(grad, np.float32)


def adam(f, x0, evaluations, lr, beta1=0.9, beta2=0.999, eps=1e-7):
    """Keras's Adam rule on the pixels, clipped to [0, 255] after each step (the bench's plain loop)."""
    x = x0.astype(np.float32).copy()
    m, v = np.zeros_like(x), np.zeros_like(x)
    for t in range(1, evaluations + 1):
        _, g = f(x)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        step = lr * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
        x = np.clip(x - step * m / (np.sqrt(v) + eps), 0.0, 255.0)
    return x


def upsample(picture, shape):
    """The app's step between scales (bicubic, clipped to [0, 255])."""
    import jax

    return np.clip(np.asarray(jax.image.resize(picture, tuple(shape) + (3,), "bicubic")), 0.0, 255.0)


def traced(objective, targets, trace, cost):
    """f for the optimisers, appending (cumulative cost, loss) to `trace`; `cost` is one evaluation's."""
    def f(x):
        loss, grad = objective(x, targets)
        trace.append((round((trace[-1][0] if trace else 0.0) + cost, 4), round(loss, 6)))
        return loss, grad
    return f


def schedule(objective, data, sides, evaluations, fine, memory=10):
    """Coarse to fine over `sides` (longest sides, coarsest first) with `evaluations` at each coarser
    scale and `fine` at the last; returns the last scale's trace: (cost so far, loss) per evaluation."""
    from apps.style_transfer import lbfgs

    out = sides[-1]
    picture, spent = None, 0.0
    for i, side in enumerate(sides):
        photo, style = data[f"photo{side}"], data[f"style{side}"]
        targets = objective.targets(photo, style)
        x0 = photo.copy() if picture is None else upsample(picture, photo.shape[:2])
        cost = (photo.shape[0] * photo.shape[1]) / np.prod(data[f"photo{out}"].shape[:2])
        trace = [(spent, None)] if spent else []
        n = evaluations[i] if i < len(sides) - 1 else fine
        picture = lbfgs(traced(objective, targets, trace, cost), x0, n, memory=memory)
        spent = trace[-1][0]
    return [t for t in trace if t[1] is not None]


def schedules(text, out):
    """"128,256:200;64,128,256:100,50" -> [([128, 256, out], [200]), ...]; None: a grid of start sizes
    (64, 128, 256) and first-scale evaluations (50-400), halved or quartered at each finer scale."""
    if text:
        for item in text.split(";"):
            sides, _, evaluations = item.partition(":")
            yield [int(v) for v in sides.split(",")] + [out], [int(v) for v in evaluations.split(",")]
        return
    for start in (64, 128, 256):
        sides = [s for s in SIZES if start <= s <= out]
        if len(sides) < 2:
            continue
        seen = set()
        for first in (50, 100, 200, 400):
            for decay in (2, 4):
                evaluations = [max(20, first // decay ** i) for i in range(len(sides) - 1)]
                if tuple(evaluations) not in seen:
                    seen.add(tuple(evaluations))
                    yield sides, evaluations


def curves(args) -> dict:
    data = {k: v.astype(np.float32) for k, v in np.load(args.inputs).items()}
    objective = Objective(args.weights)
    result = {"backend": "jax", "runs": []}
    deadline = time.perf_counter() + args.deadline

    def record(**run):
        run["seconds"] = round(time.perf_counter() - t0, 2)
        result["runs"].append(run)
        tr = run["trace"]
        print(json.dumps({k: v for k, v in run.items() if k != "trace"}), "final", tr[-1], flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(result))

    for out in [int(s) for s in args.sizes.split(",")]:
        photo, style = data[f"photo{out}"], data[f"style{out}"]
        targets = objective.targets(photo, style)
        for lr in [float(v) for v in args.lrs.split(",")]:
            if time.perf_counter() > deadline:
                continue
            t0 = time.perf_counter()
            trace = []
            adam(traced(objective, targets, trace, 1.0), photo, args.adam, lr)
            record(size=out, method="adam", lr=lr, trace=trace[::1])
        for memory in (10, 30):
            if time.perf_counter() > deadline:
                continue
            t0 = time.perf_counter()
            record(size=out, method="lbfgs", memory=memory, sides=[out], evaluations=[],
                   trace=schedule(objective, data, [out], [], args.fine, memory))
        for sides, evaluations in schedules(args.schedules, out):
            if time.perf_counter() > deadline:
                continue
            t0 = time.perf_counter()
            record(size=out, method="lbfgs", memory=10, sides=sides, evaluations=evaluations,
                   trace=schedule(objective, data, sides, evaluations, args.fine))
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("section", choices=("prepare", "curves"))
    p.add_argument("--photo", default="chelsea")
    p.add_argument("--out", default=".gpu/stylize_inputs.npz")
    p.add_argument("--inputs", default=".gpu/stylize_inputs.npz")
    p.add_argument("--weights", default=".gpu/vgg16_features.npz", help="written by prepare")
    p.add_argument("--json", default=None)
    p.add_argument("--sizes", default="256,512")
    p.add_argument("--lrs", default="1,2,4,8,16")
    p.add_argument("--adam", type=int, default=2000, help="Adam evaluations per learning rate")
    p.add_argument("--schedules", default=None, help="coarser scales and their evaluations: 128,256:200,100;...")
    p.add_argument("--deadline", type=float, default=1e9, help="start no run after this many seconds")
    p.add_argument("--fine", type=int, default=600, help="L-BFGS evaluations at the output size")
    args = p.parse_args(argv)
    if args.section == "prepare":
        prepare(args)
    else:
        curves(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
