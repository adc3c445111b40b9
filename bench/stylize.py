"""Style transfer benchmarks (issue 11), on real ImageNet features and real photos.

    python bench/stylize.py gatys --sizes 256,512 --out bench/outputs     # app defaults vs a plain Adam loop
    python bench/stylize.py fast --model saved_models/cin_styles/styles.keras
    python bench/stylize.py large --size 4000 --evaluations 2               # 4000x3000, peak memory

Feature network: VGG16 with `../shared/weights/vgg16_hed_notop.weights.h5` (ImageNet features; VGG19's
ImageNet file cannot be downloaded here), content photo scikit-image's `chelsea`, style Debian's
mate-backgrounds painting `Elephants.jpg` (`apt-get install mate-backgrounds`).

gatys: `kerascnn stylize` at its defaults (L-BFGS, content init, coarse to fine from 128 px, bfloat16
where the CPU has it) against a plain loop written without the app's refinements: content init,
Keras's Adam at a fixed learning rate (the one that gets there soonest on the GPU curves of
bench/stylize_gpu.py), one scale, float32, on the same objective (same network, layers and loss
weights). Quality is the objective's loss at the output size in float32 (the weighted sum of the
relative content, style and TV terms), and the printed figures (style and content distance). The
plain loop runs until its loss is at most the app's final loss, or for `--cap` times the app's
time; the ratio is app time / plain time (< 1/cap when the plain loop never gets there). Peak
memory is each section's maximum RSS.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WEIGHTS = Path(__file__).resolve().parents[2] / "shared" / "weights" / "vgg16_hed_notop.weights.h5"
STYLE = Path("/usr/share/backgrounds/mate/abstract/Elephants.jpg")


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def photo(name: str = "chelsea"):
    import numpy as np
    import skimage.data

    return np.asarray(getattr(skimage.data, name)(), np.float32)


def plain_learning_rate(curves: str, size: int, loss: float, default: float) -> float:
    """The fixed Adam learning rate that reaches `loss` in the fewest evaluations in the GPU curves
    (bench/stylize_gpu.py; the most favourable choice for the plain loop), else `default`."""
    if not curves or not Path(curves).is_file():
        return default
    best = (float("inf"), default)
    for run in json.loads(Path(curves).read_text())["runs"]:
        if run["method"] == "adam" and run["size"] == size:
            reached = next((c for c, v in run["trace"] if v <= loss), None)
            if reached is not None and reached < best[0]:
                best = (reached, run["lr"])
    return best[1]


def gatys(args) -> dict:
    import keras
    import numpy as np

    from kerascnn.apps.style_transfer import StylizeConfig, _read, _resize, _shape_for, build_objective, run
    from kerascnn.data.imageio import save_image
    from kerascnn.models.networks import network
    from kerascnn.training.distribute import precision_scope

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    net = network("vgg16", str(args.weights))  # the plain loop's, and the quality figures': float32
    with precision_scope(args.precision) as precision:  # the app's, as `kerascnn stylize` builds it
        app_net = network("vgg16", str(args.weights))
    results = {}
    for size in [int(s) for s in args.sizes.split(",")]:
        cfg = StylizeConfig(model="vgg16", weights="none", size=size, precision=precision)
        content = photo(args.photo)
        t0 = time.perf_counter()
        result = run(cfg, content, [str(args.style)], model=app_net, progress=False)
        app_s = time.perf_counter() - t0
        objective = build_objective(cfg, net)
        target_photo = _read(content, "content", size)
        style = _read(str(args.style), "style")
        targets = objective.targets(target_photo, [_resize(style, _shape_for(style.shape[:2], size))], [1.0])
        app_loss, app_parts, _ = objective.loss_and_gradient(result.image, targets)
        app_fig = objective.figures(result.image, targets)
        save_image(out / f"stylize_{size}_app.jpg", result.image)

        # The plain loop: content init, Adam at a fixed rate, one scale, float32.
        lr = plain_learning_rate(args.curves, size, app_loss, args.plain_lr)
        x = keras.Variable(target_photo.copy())
        opt = keras.optimizers.Adam(lr)
        trace, reached, t0 = [], None, time.perf_counter()
        best = (np.inf, None)
        while time.perf_counter() - t0 < args.cap * app_s:
            loss, parts, grad = objective.loss_and_gradient(np.asarray(x.numpy()), targets)
            trace.append((round(time.perf_counter() - t0, 2), loss))
            if loss < best[0]:
                best = (loss, x.numpy().copy())
            if loss <= app_loss:
                reached = time.perf_counter() - t0
                break
            opt.apply([keras.ops.convert_to_tensor(grad)], [x])
            x.assign(keras.ops.clip(x, 0.0, 255.0))
        plain_img = best[1]
        plain_fig = objective.figures(plain_img, targets)
        save_image(out / f"stylize_{size}_plain.jpg", plain_img)
        results[size] = {
            "app_seconds": round(app_s, 1), "app_evaluations": sum(s["evaluations"] for s in result.scales),
            "app_precision": result.precision,
            "app_loss": round(app_loss, 4), "app_style_distance": round(app_fig["style_distance"], 4),
            "app_content_distance": round(app_fig["content_distance"], 4),
            "plain_seconds": round(reached if reached is not None else trace[-1][0], 1),
            "plain_reached": reached is not None, "plain_evaluations": len(trace),
            "plain_best_loss": round(float(best[0]), 4), "plain_style_distance": round(plain_fig["style_distance"], 4),
            "plain_content_distance": round(plain_fig["content_distance"], 4),
            "ratio_app_over_plain": round(app_s / (reached if reached is not None else trace[-1][0]), 3),
            "photo_style_distance": round(result.figures["photo"]["style_distance"], 4),
            "plain_lr": lr, "cap": args.cap,
            "plain_trace": trace[:: max(1, len(trace) // 40)],
        }
        print(json.dumps({k: v for k, v in results[size].items() if k != "plain_trace"}), flush=True)
    return results


def fast(args) -> dict:
    import numpy as np

    from kerascnn.apps.fast_style import Stylizer
    from kerascnn.data.imageio import save_image

    painter = Stylizer(args.model)
    w = painter.vector(0)
    res = {}
    for name, shape in (("512px", (384, 512)), ("1080p", (1080, 1920))):
        img = np.asarray(photo("astronaut"), np.float32)
        import tensorflow as tf

        img = np.clip(tf.image.resize(img, shape, antialias=True).numpy(), 0, 255)
        painter(img, w)  # trace and warm up
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            y = painter(img, w)
            times.append(time.perf_counter() - t0)
        res[name] = {"shape": list(shape), "median_seconds": round(float(np.median(times)), 3),
                     "min_seconds": round(min(times), 3)}
        save_image(Path(args.out) / f"fast_{name}.jpg", y)
        print(name, res[name], flush=True)
    res["peak_rss_mib"] = round(peak_mib())
    return res


def large(args) -> dict:
    import numpy as np
    import tensorflow as tf

    from kerascnn.apps.style_transfer import StylizeConfig, run
    from kerascnn.data.imageio import save_image
    from kerascnn.models.networks import network
    from kerascnn.training.distribute import precision_scope

    with precision_scope(args.precision) as precision:
        net = network("vgg16", str(args.weights))
    h, w = int(args.size * 3 / 4), args.size
    content = np.clip(tf.image.resize(photo("chelsea"), (h, w), method="bicubic").numpy(), 0, 255)
    cfg = StylizeConfig(model="vgg16", weights="none", size=args.size, start_size=args.size,
                        iterations=args.evaluations, tile=args.tile, precision=precision)
    t0 = time.perf_counter()
    result = run(cfg, content, [str(args.style)], model=net, progress=True)
    seconds = time.perf_counter() - t0
    save_image(Path(args.out) / f"large_{w}x{h}.jpg", result.image)
    res = {"shape": list(result.image.shape), "evaluations": args.evaluations, "seconds": round(seconds, 1),
           "seconds_per_evaluation": round(result.scales[-1]["seconds"] / args.evaluations, 1),
           "peak_rss_mib": round(peak_mib()), "tile": cfg.tile, "halo": cfg.halo, "precision": result.precision}
    print(res, flush=True)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("section", choices=("gatys", "fast", "large"))
    p.add_argument("--weights", default=str(WEIGHTS))
    p.add_argument("--style", default=str(STYLE))
    p.add_argument("--photo", default="chelsea")
    p.add_argument("--sizes", default="256,512")
    p.add_argument("--plain-lr", type=float, default=4.0, help="without --curves")
    p.add_argument("--curves", default="bench/outputs/stylize/gpu_curves.json",
                   help="GPU curves (bench/stylize_gpu.py): the plain loop's learning rate is the one that "
                        "reaches the app's loss soonest there")
    p.add_argument("--precision", default="auto", help="the app's (as `kerascnn stylize --precision`)")
    p.add_argument("--cap", type=float, default=6.0)
    p.add_argument("--model", default="saved_models/cin_styles/styles.keras")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--size", type=int, default=4000)
    p.add_argument("--evaluations", type=int, default=2)
    p.add_argument("--tile", type=int, default=1024, help="large: the tile side (the app's default 1024)")
    p.add_argument("--out", default="bench/outputs")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    result = {"gatys": gatys, "fast": fast, "large": large}[args.section](args)
    result = {"section": args.section, "result": result, "peak_rss_mib": round(peak_mib())}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
