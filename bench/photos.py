"""Write a training photo set for fast style networks: a few hundred varied photos from Debian packages
and the Python libraries' samples, resized so the longest side is 640 px, as JPEGs in one folder.

    apt-get install gcompris-qt-data opencv-doc mate-backgrounds plasma-workspace-wallpapers \
        lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 ukui-wallpapers palapeli-data
    pip install scikit-image            # (scikit-learn is already a dependency)
    python bench/photos.py /tmp/style_data        # -> photos_640/NAME.jpg, photos_640.json

Sources, in this order (a later near-duplicate of an earlier photo is dropped):
1. GCompris's photo activities (Qt resource bundles read by bench/qt_resources.py): erase,
   explore_farm_animals, explore_monuments, explore_world_animals and explore_world_music (animals,
   monuments, musicians: all photos), and the details activity's backgrounds that its README
   credits to "a photo by" someone (its Van Gogh paintings are styles: bench/paintings.py).
2. scikit-image's coffee and rocket, scikit-learn's china and flower.
3. mate-backgrounds' nature/ folder (photos by the package's own sorting), then the packages that
   mix photos with drawn art (the other wallpaper packages above, palapeli-data's puzzle photos,
   opencv-doc's example images): a file from these is kept only if it passes the photo rule below.
Left out on purpose: the style images (mate-backgrounds' Elephants and Dune, opencv-doc's
starry_night) and the test photos (scikit-image's astronaut and chelsea), which must stay unseen.

The photo rule (for source 3), measured on the picture shrunk to 512 px: shortest side at least
256 px and no transparent pixels (not an icon or cut-out); colour (mean |R-G| + |G-B| at least 12:
greyscale calibration shots and masks are out); grain (the 75th percentile of the absolute
4-neighbour Laplacian of the grey image at least 5 levels: vector art and smooth gradients are
flat between their edges, photos are not); and fewer than 30% of 8x8 blocks perfectly flat
(standard deviation under 1). Checked by eye on every photo it kept: the drawn art it let through
(10 files: fine-textured wallpapers, two synthetic test images, a map screenshot) is listed in
KNOWN_ART and left out by name; it also drops some soft-focus photos, a price paid for a rule
that needs no list of photos.
Near-duplicates: a 64-bit difference hash within 4 bits of an earlier photo's (the same wallpaper
at several resolutions, stereo pairs).
"""
from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # runs from a checkout: bench/ is not a package
from qt_resources import Bundle  # noqa: E402

RCC = Path("/usr/share/gcompris-qt/rcc")
PHOTO_BUNDLES = ("erase", "explore_farm_animals", "explore_monuments", "explore_world_animals", "explore_world_music")
MIXED = ("mate-backgrounds", "plasma-workspace-wallpapers", "lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04",
         "ukui-wallpapers", "palapeli-data", "opencv-doc")
PACKAGES = ("gcompris-qt-data",) + MIXED
KEEP_UNDER = ("/usr/share/backgrounds/", "/usr/share/wallpapers/", "/usr/share/palapeli/collection/",
              "/usr/share/doc/opencv-doc/examples/")
LEFT_OUT = re.compile(r"Elephants|/Dune\.jpg$|starry_night")  # style images
# Drawn art that passes the photo rule, found by eye (mate-backgrounds sorts its own art into
# abstract/ and desktop/); listed so that the set is the same for every user.
KNOWN_ART = re.compile(r"/mate/(abstract|desktop)/|/wallpapers/(SafeLanding|Opal|Patak|Autumn)/|analogpattern|"
                       r"Infinite-Sea|/string\.jpg$|/data/pic\d\.png$|/stanford\.png$")
LONGEST = 640


def installed_files(package: str) -> list[str] | None:
    """The files a Debian package installed, or None if it is not installed."""
    proc = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True)
    return proc.stdout.splitlines() if proc.returncode == 0 else None


def photo_rule(image) -> str:
    """'' if `image` (PIL) looks like a photo by the module's rule, else why not."""
    import numpy as np

    if min(image.size) < 256:
        return "smaller than 256 px"
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        if np.asarray(image.convert("RGBA"))[..., 3].min() < 255:
            return "transparent pixels"
    small = image.convert("RGB")
    small.thumbnail((512, 512))
    rgb = np.asarray(small).astype(np.float32)
    if np.abs(rgb[..., 0] - rgb[..., 1]).mean() + np.abs(rgb[..., 1] - rgb[..., 2]).mean() < 12:
        return "greyscale"
    grey = np.asarray(small.convert("L")).astype(np.float32)
    laplacian = np.abs(4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:])
    if np.percentile(laplacian, 75) < 5:
        return "no grain (drawn art or a smooth gradient)"
    h, w = grey.shape[0] // 8 * 8, grey.shape[1] // 8 * 8
    blocks = grey[:h, :w].reshape(h // 8, 8, w // 8, 8).std(axis=(1, 3))
    if (blocks < 1).mean() >= 0.3:
        return "large flat areas"
    return ""


def difference_hash(image) -> int:
    """64-bit dHash: is each of 8x9 grey cells brighter than its right neighbour."""
    import numpy as np

    cells = np.asarray(image.convert("L").resize((9, 8)), np.int16)
    return int("".join("1" if bit else "0" for bit in (cells[:, 1:] > cells[:, :-1]).ravel()), 2)


def candidates(owned: dict):
    """(name, package, source, opener, trusted) in the module's order; opener() -> PIL image."""
    from PIL import Image

    for stem in PHOTO_BUNDLES:
        bundle = Bundle.open(RCC / f"{stem}.rcc")
        for path in bundle.paths():
            if path.lower().endswith((".webp", ".jpg", ".jpeg", ".png")):
                yield (f"{stem}_{Path(path).stem}", "gcompris-qt-data", f"{RCC / stem}.rcc:{path}",
                       lambda b=bundle, p=path: Image.open(io.BytesIO(b.read(p))), True)
    details = Bundle.open(RCC / "details.rcc")
    root = "gcompris/src/activities/details/resource/image/"
    for block in details.read(root + "README").decode("utf-8").split("\n\n"):
        if "a photo by" in block:
            for name in re.findall(r"^(\S+_background\.webp)$", block, re.M):
                yield (f"details_{name[:-len('_background.webp')]}", "gcompris-qt-data",
                       f"{RCC}/details.rcc:{root}{name}", lambda p=root + name: Image.open(io.BytesIO(details.read(p))),
                       True)
    yield from library_photos()
    for package in MIXED:
        files = [f for f in owned[package] if f.startswith(KEEP_UNDER) and not LEFT_OUT.search(f)
                 and not KNOWN_ART.search(f)
                 and f.lower().endswith((".jpg", ".jpeg", ".png", ".webp")) and Path(f).is_file()]
        # Largest first, so that of one wallpaper at several resolutions the largest is kept.
        files.sort(key=lambda f: -_pixels(f))
        for f in files:
            label = Path(f).parents[2].name if "/contents/images/" in f else Path(f).stem
            trusted = "/mate/nature/" in f  # the package's own folder of photos
            yield (f"{package.split('-')[0]}_{label}", package, f, lambda f=f: Image.open(f), trusted)


def _pixels(path: str) -> int:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.width * image.height
    except OSError:
        return 0


def library_photos():
    import numpy as np
    import skimage.data
    from PIL import Image
    from sklearn.datasets import load_sample_images

    for name in ("coffee", "rocket"):
        yield (f"skimage_{name}", "scikit-image", f"skimage.data.{name}()",
               lambda n=name: Image.fromarray(np.asarray(getattr(skimage.data, n)(), np.uint8)), True)
    samples = load_sample_images()
    for name, array in zip(("china", "flower"), samples.images):
        yield (f"sklearn_{name}", "scikit-learn", f"load_sample_images() {name}.jpg",
               lambda a=array: Image.fromarray(a), True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", nargs="?", default="/tmp/style_data")
    parser.add_argument("--longest", type=int, default=LONGEST, help="longest side of the written JPEGs (px)")
    args = parser.parse_args(argv)
    owned = {package: installed_files(package) for package in PACKAGES}
    missing = [package for package, files in owned.items() if files is None]
    try:
        import skimage  # noqa: F401
    except ImportError:
        missing.append("pip:scikit-image")
    if missing:
        for package in missing:
            print(f"pip install {package[4:]}" if package.startswith("pip:") else f"apt-get install {package}",
                  file=sys.stderr)
        return 1
    from PIL import Image

    folder = Path(args.out) / f"photos_{args.longest}"
    folder.mkdir(parents=True, exist_ok=True)
    kept, skipped, hashes, counts = [], [], [], {}
    for name, package, source, opener, trusted in candidates(owned):
        try:
            image = opener()
            image.load()
        except OSError as error:
            skipped.append({"file": source, "why": f"unreadable: {error}"})
            continue
        why = ("smaller than 256 px" if min(image.size) < 256 else "") if trusted else photo_rule(image)
        if not why:
            code = difference_hash(image)
            if any(bin(code ^ other).count("1") <= 10 for other in hashes):
                why = "near-duplicate of an earlier photo"
        if why:
            skipped.append({"file": source, "why": why})
            continue
        hashes.append(code)
        rgb = image.convert("RGB")
        size = list(rgb.size)
        rgb.thumbnail((args.longest, args.longest), Image.LANCZOS)
        name = re.sub(r"[^A-Za-z0-9_]+", "_", name)
        while (folder / f"{name}.jpg").name in {k["name"] + ".jpg" for k in kept}:
            name += "_"
        rgb.save(folder / f"{name}.jpg", quality=92)
        kept.append({"name": name, "package": package, "file": source, "original_size": size, "size": list(rgb.size)})
        counts[package] = counts.get(package, 0) + 1
    report = {"longest_side": args.longest, "kept": kept, "skipped": skipped}
    (Path(args.out) / f"photos_{args.longest}.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    for package, count in counts.items():
        print(f"{count:4d}  {package}")
    print(f"{folder}: {len(kept)} photos ({len(skipped)} candidates skipped, reasons in {folder}.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
