"""Write the offline style-transfer data this project's demos and benchmarks use into one folder.

    python bench/style_data.py /tmp/style_data     # -> photos/ (training photos), styles/, test/

photos/: Debian's mate-backgrounds nature photos (apt-get install mate-backgrounds) but Dune.jpg,
scikit-image's coffee and rocket, scikit-learn's china and flower: 15 photos of 427-2560 px.
styles/: Elephants (the mate-backgrounds painting), hubble (scikit-image's Hubble deep field), dune
(mate-backgrounds' Dune.jpg: grass strokes). test/: photos never trained on (scikit-image's
astronaut and chelsea).
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

MATE = Path("/usr/share/backgrounds/mate")


def main(argv=None) -> int:
    import numpy as np
    import skimage.data
    from PIL import Image
    from sklearn.datasets import load_sample_images

    out = Path((argv or sys.argv[1:] or ["/tmp/style_data"])[0])
    if not (MATE / "abstract" / "Elephants.jpg").is_file():
        print("apt-get install mate-backgrounds first", file=sys.stderr)
        return 1
    for sub in ("photos", "styles", "test"):
        (out / sub).mkdir(parents=True, exist_ok=True)

    def save(array, path):
        Image.fromarray(np.asarray(array, np.uint8)).save(path, quality=95)

    for f in sorted((MATE / "nature").glob("*.jpg")):
        if f.name != "Dune.jpg":
            shutil.copy(f, out / "photos" / f.name)
    for name in ("coffee", "rocket"):
        save(getattr(skimage.data, name)(), out / "photos" / f"{name}.jpg")
    for name, image in zip(("china", "flower"), load_sample_images().images):
        save(image, out / "photos" / f"{name}.jpg")
    shutil.copy(MATE / "abstract" / "Elephants.jpg", out / "styles" / "elephants.jpg")
    shutil.copy(MATE / "nature" / "Dune.jpg", out / "styles" / "dune.jpg")
    save(skimage.data.hubble_deep_field(), out / "styles" / "hubble.jpg")
    for name in ("astronaut", "chelsea"):
        save(getattr(skimage.data, name)(), out / "test" / f"{name}.jpg")
    print(f"{out}: {len(list((out / 'photos').iterdir()))} photos, 3 styles, 2 test photos")
    return 0


if __name__ == "__main__":
    sys.exit(main())
