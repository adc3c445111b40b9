"""DeepDream on real ImageNet features: the app's speed against a plain loop, and its peak memory.

    python bench/deep_dream.py                    # all three parts, ~5 min on 2 CPU cores
    python bench/deep_dream.py --parts images     # only the example pictures

Needs the offline feature weights in ../shared/weights (see its README.md) and scikit-image (for
its bundled photos: `pip install scikit-image`, a bench dependency, not the package's).

1. speed: VGG16 (ImageNet conv features) on skimage's astronaut at 512 px, 3 octaves of STEPS steps,
   (a) `kerascnn.apps.deep_dream.dream` (tiles, jitter, detail re-injection, progress) against (b) a
   plain loop: one tf.function per step on the whole image (no tiles, no roll), the same layers,
   objective, normalisation and octave sizes. One timed run each, tracing included for both, in
   alternating order in one process; the ratio (a)/(b) is the figure.
2. memory: one step on a 3000x2000 image (MobileNetV2 features; VGG16 at 6 Mpx would take minutes
   a step on 2 cores), each in a fresh subprocess, peak resident memory from /proc/self/status VmHWM
   (getrusage's maxrss is inherited from the parent across fork + exec on Linux, so it cannot go below
   the size of the process that starts the measurement):
   tiled (tile 512) and untiled (tile 4000: one tile). The untiled run is skipped when the untiled
   peak at 1500x1000 predicts more than MEMORY_LIMIT_GB at 4x the pixels (a shared machine).
3. images: dreams written to bench/outputs/dream/ (small JPEGs, committed), for a person to look at.
"""
from __future__ import annotations

import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

WEIGHTS = Path(os.environ.get("KERASCNN_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "weights"
VGG16 = WEIGHTS / "vgg16_hed_notop.weights.h5"
MOBILENET_V2 = WEIGHTS / "mobilenet_v2_imagenet_notop.weights.h5"
OUTPUTS = Path(__file__).resolve().parent / "outputs" / "dream"
STEPS = 10
MEMORY_LIMIT_GB = 12.0


def photo(name: str = "astronaut", side: int = 512) -> np.ndarray:
    import skimage.data

    from kerascnn.data.imageio import resize_longest

    return resize_longest(getattr(skimage.data, name)().astype(np.float32), side)


def plain_dream(extractor, image: np.ndarray, shapes, steps: int, step_size: float) -> np.ndarray:
    """The textbook loop: whole-image gradient each step, octaves by plain resizing (keras-io style)."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((None, None, 3), tf.float32)])
    def step(img):
        with tf.GradientTape() as tape:
            tape.watch(img)
            acts = extractor(img[None])
            acts = acts if isinstance(acts, (list, tuple)) else [acts]
            loss = tf.add_n([tf.reduce_mean(a) for a in acts])
        g = tape.gradient(loss, img)
        g /= tf.reduce_mean(tf.abs(g)) + 1e-8
        return tf.clip_by_value(img + g * step_size * 255.0, 0.0, 255.0)

    img = tf.constant(image)
    for shape in shapes:
        img = tf.image.resize(img, shape)
        for _ in range(steps):
            img = step(img)
    return img.numpy()


def speed(steps: int) -> None:
    import kerascnn
    from kerascnn.apps import deep_dream as dd

    model = kerascnn.create_model("vgg16", include_top=False, weights=str(VGG16))
    image = photo("astronaut", 512)
    settings = dict(layers="block4_conv3", octaves=3, steps=steps, step_size=0.006, tile=512)
    cfg = dd.resolve({**settings, "model": "vgg16", "weights": "none"}, check_model=False).config
    shapes = dd.octave_shapes(*image.shape[:2], cfg.octaves, cfg.octave_scale, 32)
    extractor = dd.build_objective(model, cfg, image).extractor
    small = photo("astronaut", 128)  # warm-up of both (first-call costs of TF, not of either loop)
    dd.dream(small, model=model, progress=False, **{**settings, "steps": 1, "octaves": 1})
    plain_dream(extractor, small, [small.shape[:2]], 1, cfg.step_size)
    times = {}
    for kind in ("app", "plain"):
        start = time.perf_counter()
        if kind == "app":
            out = dd.dream(image, model=model, progress=False, **settings)
            kerascnn.save_image(OUTPUTS / "astronaut_vgg16_block4_conv3.jpg", out)
        else:
            plain_dream(extractor, image, shapes, steps, cfg.step_size)
        times[kind] = time.perf_counter() - start
    print(f"speed: VGG16 block4_conv3, astronaut 512x512, octaves {shapes}, {steps} steps each")
    print(f"  app (tiles 512, jitter 32, detail re-injection): {times['app']:.1f} s")
    print(f"  plain untiled loop:                              {times['plain']:.1f} s")
    print(f"  ratio app / plain: {times['app'] / times['plain']:.3f}")


PEAK = """
import os, resource, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, kerascnn
from kerascnn.apps.deep_dream import dream
h, w, tile = (int(v) for v in sys.argv[1:4])
model = kerascnn.create_model("mobilenet_v2", include_top=False, weights=sys.argv[4])
img = np.random.default_rng(0).uniform(0, 255, (h, w, 3)).astype(np.float32)
t = time.perf_counter()
dream(img, model=model, tile=tile, octaves=1, steps=1, jitter=0, progress=False)
# VmHWM, not getrusage's maxrss: Linux carries maxrss over from the parent across fork + exec, so a
# child of a big process never reports less than its parent's size. VmHWM is this process's own peak.
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(int(hwm) / 2**20, time.perf_counter() - t)
"""


def peak(h: int, w: int, tile: int):
    r = subprocess.run([sys.executable, "-c", PEAK, str(h), str(w), str(tile), str(MOBILENET_V2)],
                       capture_output=True, text=True)
    if r.returncode:
        return None, r.stderr.strip().splitlines()[-1:]
    gb, secs = (float(v) for v in r.stdout.split()[-2:])
    return gb, secs


def memory() -> None:
    print("memory: one step, MobileNetV2 dream layers, peak resident memory (VmHWM) of a fresh process")
    for h, w, tile in ((2000, 3000, 512), (1000, 1500, 4000)):
        gb, secs = peak(h, w, tile)
        print(f"  {w}x{h} tile {tile:4d}: peak {gb:.2f} GB, step {secs:.1f} s")
    untiled_small = gb
    if untiled_small is not None and untiled_small * 4 <= MEMORY_LIMIT_GB:
        gb, secs = peak(2000, 3000, 4000)
        print(f"  3000x2000 tile 4000 (untiled): peak {gb:.2f} GB, step {secs:.1f} s")
    else:
        print(f"  3000x2000 untiled skipped: predicted > {MEMORY_LIMIT_GB} GB")


def images() -> None:
    import kerascnn
    from kerascnn.apps import deep_dream as dd

    mobilenet = kerascnn.create_model("mobilenet_v2", include_top=False, weights=str(MOBILENET_V2))
    cat = photo("chelsea", 400)
    runs = {
        "chelsea_mobilenet_v2.jpg": dict(model=mobilenet, image=cat),
        "chelsea_mobilenet_v2_preserve_colors.jpg": dict(model=mobilenet, image=cat, preserve_colors=True),
        "chelsea_mobilenet_v2_block_13_strongest4.jpg": dict(model=mobilenet, image=cat,
                                                             channels="block_13_expand_relu:strongest:4"),
        "chelsea_mobilenet_v2_guided_coffee.jpg": dict(model=mobilenet, image=cat, guide=str(_guide())),
    }
    for name, kw in runs.items():
        start = time.perf_counter()
        out = dd.dream(kw.pop("image"), progress=False, **kw)
        kerascnn.save_image(OUTPUTS / name, out)
        print(f"  {name}: {time.perf_counter() - start:.1f} s")


def _guide() -> Path:
    import kerascnn

    path = OUTPUTS / "guide_coffee.jpg"
    kerascnn.save_image(path, photo("coffee", 256))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["speed", "memory", "images"],
                        choices=["speed", "memory", "images"])
    parser.add_argument("--steps", type=int, default=STEPS)
    args = parser.parse_args()
    OUTPUTS.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    for part in args.parts:
        start = time.perf_counter()
        if part == "speed":
            speed(args.steps)
        elif part == "memory":
            memory()
        else:
            images()
        print(f"  ({part}: {time.perf_counter() - start:.0f} s)")
    print(f"this process's peak: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB")


if __name__ == "__main__":
    main()
