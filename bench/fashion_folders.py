"""Write Fashion-MNIST images as PNG class folders, the layout `kerascnn --data FOLDER` reads.

The transfer-learning proof trains a backbone on some Fashion-MNIST classes and fine-tunes it on a
small folder of the others; this script makes both folders from the IDX files, seeded and
repeatable (the same arguments write the same images):

    OUT/train/<class>/<index>.png      from the IDX training set
    OUT/val/<class>/<index>.png        from the training set too, disjoint from train (--val-per-class)
    OUT/test/<class>/<index>.png       from the t10k set (--test-per-class)

<index> is the image's position in its IDX file; <class> is Fashion-MNIST's name made safe for a
file system ("T-shirt/top" -> "T-shirt_top", "Ankle boot" -> "Ankle_boot").
kerascnn numbers the classes in the sorted order of these names, not by Fashion-MNIST label.

    python bench/fashion_folders.py --classes 0-4 --val-per-class 500 --test-per-class all --out /tmp/fm04
    python bench/fashion_folders.py --classes 5-9 --per-class 20 --test-per-class all --out /tmp/fm59_20

Fashion-MNIST comes from Debian's package: apt-get install -y dataset-fashion-mnist.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np
from PIL import Image

from kerascnn.data.idx import idx_split
from kerascnn.data.names import FASHION_MNIST
from kerascnn.errors import DataError

DEBIAN_IDX = "/usr/share/datasets/fashion-mnist"
SPLITS = ("train", "val", "test")


def parse_classes(text: str) -> List[int]:
    """The labels of "0-4", "5,6,7,8,9" or "0-2,7": sorted, distinct, in 0..9."""
    labels = set()
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match:
            raise argparse.ArgumentTypeError(f"not a label list like 0-4 or 5,6,7: {text!r}")
        low, high = int(match.group(1)), int(match.group(2) or match.group(1))
        if not 0 <= low <= high < len(FASHION_MNIST):
            raise argparse.ArgumentTypeError(f"labels run from 0 to {len(FASHION_MNIST) - 1}: {text!r}")
        labels.update(range(low, high + 1))
    return sorted(labels)


def count(text: str) -> Optional[int]:
    """A number of images per class; "all" -> None."""
    if text == "all":
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a number >= 0 or 'all': {text!r}")
    return int(text)


def folder_name(label: int) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", FASHION_MNIST[label])


def pick(labels: np.ndarray, label: int, seed: int, sizes: Sequence[Optional[int]], where: str) -> List[np.ndarray]:
    """Disjoint seeded draws of `sizes` indices of `label` (None: all the rest), in index order.

    Each class has its own generator, so a class gets the same images whichever other classes are asked for.
    """
    pool = np.random.default_rng([seed, label]).permutation(np.flatnonzero(labels == label))
    wanted = sum(n for n in sizes if n is not None)
    if wanted > len(pool):
        raise DataError(f"{where} has {len(pool)} images of class {label} ({FASHION_MNIST[label]}); "
                        f"{wanted} were asked for.")
    draws, start = [], 0
    for n in sizes:
        end = len(pool) if n is None else start + n
        draws.append(np.sort(pool[start:end]))
        start = end
    return draws


def write_pngs(images: np.ndarray, indices: np.ndarray, folder: str) -> None:
    os.makedirs(folder, exist_ok=True)
    for i in indices:
        Image.fromarray(np.asarray(images[i, :, :, 0], np.uint8)).save(os.path.join(folder, f"{i}.png"))


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, int]]:
    """Write the folders; returns {split: {class folder: images written}}."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--idx", default=DEBIAN_IDX, help=f"folder of the IDX files (default {DEBIAN_IDX})")
    p.add_argument("--classes", type=parse_classes, default=parse_classes("0-9"), help="labels, e.g. 0-4 or 5,6,7,8,9")
    p.add_argument("--per-class", type=count, default=None, help="train images per class (default all the rest)")
    p.add_argument("--val-per-class", type=count, default=0, help="val images per class, from train too (0: no val/)")
    p.add_argument("--test-per-class", type=count, default=0, help="test images per class from t10k, or all (0: none)")
    p.add_argument("--seed", type=int, default=0, help="seeds which images are taken (default 0)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--force", action="store_true", help="write into an existing OUT, replacing its train/ val/ test/")
    args = p.parse_args(argv)
    if args.val_per_class is None:
        p.error("--val-per-class takes a number: 'all' would leave no training images")
    if os.path.isdir(args.out) and os.listdir(args.out) and not args.force:
        p.exit(1, f"{args.out} exists and is not empty; pass --force to replace its train/ val/ test/.\n")
    try:
        train = idx_split(args.idx, "train")
        test = idx_split(args.idx, "t10k") if args.test_per_class != 0 else None
        if train is None or (args.test_per_class != 0 and test is None):
            raise DataError(f"{args.idx}: no train-*/t10k-* IDX files (apt-get install dataset-fashion-mnist).")
        plan = {}  # (split, label) -> indices, all drawn before anything is written
        for label in args.classes:
            val_idx, train_idx = pick(train.labels, label, args.seed, [args.val_per_class, args.per_class], args.idx)
            plan["train", label], plan["val", label] = train_idx, val_idx
            if test is not None:
                plan["test", label] = pick(test.labels, label, args.seed, [args.test_per_class], f"{args.idx} (t10k)")[0]
    except DataError as e:
        p.exit(1, f"{e}\n")
    for split in SPLITS:  # --force: no stale images from an earlier run may survive
        shutil.rmtree(os.path.join(args.out, split), ignore_errors=True)
    written: Dict[str, Dict[str, int]] = {}
    for (split, label), indices in plan.items():
        if len(indices):
            folder = os.path.join(args.out, split, folder_name(label))
            write_pngs((test if split == "test" else train).images, indices, folder)
            written.setdefault(split, {})[folder_name(label)] = len(indices)
    for split, per_class in sorted(written.items(), key=lambda kv: SPLITS.index(kv[0])):
        print(f"{split}: {sum(per_class.values())} images ({', '.join(f'{k} {v}' for k, v in per_class.items())})")
    print(f"wrote {os.path.abspath(args.out)}")
    return written


if __name__ == "__main__":
    main(sys.argv[1:])
