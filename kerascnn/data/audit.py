"""`kerascnn audit FOLDER`: what is in an image folder before a network is trained on it.

The problems that quietly cost accuracy in folders from real life: unreadable or corrupt files, the
same image twice (a bigger weight for it, or worse, in both train/ and val/, where it inflates the
validation score), images far smaller than the network's input (upsampled to blur) or than the
folder's typical image (a thumbnail among photos: found without knowing the input), and classes of
very different sizes. The scan is the folder loader's own (kerascnn.data.folders: the same files
are used or skipped, for the same reasons); duplicates are found from a hash of the decoded pixels
(EXIF orientation applied), so the same picture saved as PNG and as BMP, or under two names, counts
as one. A JPEG re-encoding changes the pixels, so it is not an exact duplicate and is not reported.

    report = audit_folder("photos/", input_shape=(224, 224, 3))
    print(report.format()); report.to_json()
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

import numpy as np

from kerascnn.data.folders import load_folder, summarize_skipped
from kerascnn.data.images import MAX_PIXELS

if TYPE_CHECKING:
    from kerascnn.config import DataConfig

SMALL_FRACTION = 0.5  # an image is "far smaller" than the input when a side is under half the input's
# ... and than the folder's typical image when a side is under a quarter of the median side: photos
# of one folder vary in size, a thumbnail or an icon among them is several times smaller.
TYPICAL_FRACTION = 0.25
Sized = List[Tuple[str, int, int]]  # (file, height, width), smallest first


class CountsReport:
    """What every audit report shares: `counts` (split -> class -> examples), the training split's
    imbalance, and its JSON form."""

    counts: Dict[str, Dict[str, int]]

    @property
    def imbalance(self) -> float:
        """Largest over smallest class of the training split (1.0: balanced)."""
        train = [n for n in self.counts.get("train", {}).values() if n]
        return max(train) / min(train) if train else 1.0

    def to_json(self) -> dict:
        return {**asdict(self), "imbalance": self.imbalance}


@dataclass
class AuditReport(CountsReport):
    """What `audit_folder` found; `format()` for people, `to_json()` for programs."""

    folder: str
    classes: List[str]
    counts: Dict[str, Dict[str, int]]  # split -> class -> usable images
    skipped: List[Tuple[str, str]]  # (file, why): unreadable, corrupt, not images, too large
    duplicates: List[List[str]]  # groups of identical images within one split
    across_splits: List[List[str]]  # groups of identical images in more than one split (leakage)
    small: Sized  # far smaller than the input (none when the input is not known)
    input_shape: Optional[Tuple[int, int, int]]
    class_weights: Dict[str, float] = field(default_factory=dict)  # "balanced", from the train split
    median_size: Tuple[int, int] = (0, 0)  # (height, width): the median side of the usable images
    atypical: Sized = field(default_factory=list)  # far smaller than the median size
    held_out: float = 0.0  # the fraction of train/ counted as val (fit's hold-out), when there is no val/


    def summary(self) -> str:
        """One line, as `fit` logs it for folders."""
        sizes = " / ".join(f"{sum(c.values()):,} {s}" for s, c in self.counts.items())
        if self.held_out:
            sizes += f" (val: {self.held_out:.0%} of the images held out)"
        parts = [f"{len(self.classes)} classes", sizes, f"imbalance {self.imbalance:.1f}x"]
        for n, what in ((len(self.skipped), "unusable files skipped"),
                        (sum(len(g) - 1 for g in self.duplicates), "duplicate images"),
                        (len(self.across_splits), "images in more than one split"),
                        (len(self.small), f"images under half the {self._input()} input"),
                        (len(self.atypical), f"images under a quarter of the median {self._median()}")):
            if n:
                parts.append(f"{n} {what}")
        return f"audit {self.folder}: " + "; ".join(parts)

    def format(self) -> str:
        """A readable table per split and the findings, each with its files (a few of each)."""
        splits = list(self.counts)
        width = max([len("class")] + [len(c) for c in self.classes])
        lines = [f"Folder {self.folder}: {len(self.classes)} classes", "",
                 "  ".join(["class".ljust(width)] + [s.rjust(7) for s in splits] + ["weight".rjust(7)])]
        for c in self.classes:
            row = [c.ljust(width)] + [f"{self.counts[s].get(c, 0):7,}" for s in splits]
            row.append(f"{self.class_weights.get(c, float('nan')):7.2f}")
            lines.append("  ".join(row))
        lines.append("  ".join(["total".ljust(width)] + [f"{sum(self.counts[s].values()):7,}" for s in splits]))
        lines += ["", f"Class imbalance (largest / smallest training class): {self.imbalance:.2f}x"
                      + ("; train with the class weights above (balanced)" if self.imbalance >= 1.5 else "")]
        lines.append(f"Unusable files: {len(self.skipped)}" +
                     (f" ({summarize_skipped(self.skipped)})" if self.skipped else ""))
        lines += _groups("Duplicate images within a split", self.duplicates)
        lines += _groups("Images in more than one split (they inflate validation scores)", self.across_splits)
        if self.input_shape is None:
            lines.append("Images far smaller than the input: not checked (no input size given)")
        else:
            lines += _sized(f"Images with a side under half the {self._input()} input", self.small)
        lines += _sized(f"Images with a side under a quarter of the folder's median {self._median()}", self.atypical)
        return "\n".join(lines) + "\n"

    def _input(self) -> str:
        return f"{self.input_shape[0]}x{self.input_shape[1]}" if self.input_shape else "?"

    def _median(self) -> str:
        return f"{self.median_size[0]}x{self.median_size[1]}"


def _sized(title: str, files: Sized, shown: int = 5) -> List[str]:
    """Smallest first, each with its size: the worst cases lead, whatever their names."""
    lines = [f"{title}: {len(files)}"] + [f"  {f} ({h}x{w})" for f, h, w in files[:shown]]
    if len(files) > shown:
        lines.append(f"  ... and {len(files) - shown} more")
    return lines


def _groups(title: str, groups: List[List[str]], shown: int = 5) -> List[str]:
    lines = [f"{title}: {len(groups)} group(s)"]
    lines += ["  " + "  =  ".join(g) for g in groups[:shown]]
    if len(groups) > shown:
        lines.append(f"  ... and {len(groups) - shown} more")
    return lines


def pixel_hash(path: str) -> Optional[str]:
    """A hash of the decoded, oriented RGB pixels (and their size); None if the file does not decode."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as img:
            rgb = ImageOps.exif_transpose(img).convert("RGB")
            return hashlib.blake2b(rgb.tobytes() + repr(rgb.size).encode(), digest_size=16).hexdigest()
    except Exception:  # any decoder error: the loader skips such files too, so nothing to compare
        return None


def audit_folder(folder: str, input_shape: Optional[Sequence[int]] = (224, 224, 3), *, duplicates: bool = True,
                 max_pixels: int = MAX_PIXELS, workers: Optional[int] = None,
                 data: Optional[DataConfig] = None) -> AuditReport:
    """Scan `folder` (class sub-folders, or train/ val/ test/ of class folders) and report.

    Args:
        folder: the image folder, as for `--data`.
        input_shape: the network's input; images with a side under half of it are reported (None:
            not known; images far smaller than the folder's median are reported all the same).
        duplicates: look for duplicate images (decodes every file; `fit` skips it to start sooner).
        max_pixels: the decompression-bomb limit of the loader.
        workers: threads for decoding (PIL releases the GIL); default: the CPU count.
        data: `fit`'s data settings: a folder without val/ then has its val_split held out of train
            (the same images, by the same seed), so the counts are those of the splits fit uses.

    Raises:
        DataError: not a folder of class folders (the loader's own message).
    """
    source = load_folder(folder, folder, max_pixels)
    classes = list(source.class_names)
    splits = source.splits
    if data is not None:
        from kerascnn.data.build import resolve_splits

        splits = resolve_splits(source, data)
    held_out = data.val_split if "val" in splits and "val" not in source.splits else 0.0
    counts, files = {}, []  # files: (split, path, label index, height, width)
    for split, part in splits.items():
        per = np.bincount(part.labels, minlength=len(classes))
        counts[split] = dict(zip(classes, per.tolist()))
        files += [(split, str(p), int(y), int(s[0]), int(s[1]))
                  for p, y, s in zip(part.paths, part.labels, part.sizes)]
    hashes: List[Optional[str]] = [None] * len(files)
    if duplicates:
        with concurrent.futures.ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
            hashes = list(pool.map(pixel_hash, [f[1] for f in files]))
    groups: Dict[str, List[Tuple[str, str]]] = {}
    for (split, path, *_), digest in zip(files, hashes):
        if digest is not None:
            groups.setdefault(digest, []).append((split, path))
    same, across = [], []
    for members in groups.values():
        if len(members) < 2:
            continue
        if len({split for split, _ in members}) > 1:
            across.append([f"{split}:{path}" for split, path in members])
        else:
            same.append([path for _, path in members])
    sized = [(path, h, w) for _, path, _, h, w in files]
    shape = None if input_shape is None else (int(input_shape[0]), int(input_shape[1]), int(input_shape[2]))
    small = [] if shape is None else _smaller(sized, (SMALL_FRACTION * shape[0], SMALL_FRACTION * shape[1]))
    median = tuple(int(np.median([f[i] for f in sized])) for i in (1, 2)) if sized else (0, 0)
    atypical = _smaller(sized, (TYPICAL_FRACTION * median[0], TYPICAL_FRACTION * median[1]))
    return AuditReport(folder, classes, counts, list(source.skipped), same, across, small, shape,
                       balanced_class_weights(counts.get("train", {})), median, atypical, held_out)


def _smaller(files: Sized, limit: Tuple[float, float]) -> Sized:
    """The files with a side under `limit` (height, width), smallest (in pixels) first."""
    found = [f for f in files if f[1] < limit[0] or f[2] < limit[1]]
    return sorted(found, key=lambda f: (f[1] * f[2], f[0]))


def balanced_class_weights(counts: Dict[str, int], digits: Optional[int] = 4) -> Dict[str, float]:
    """scikit-learn's "balanced" weights, n_samples / (n_classes * n_c), for the classes present (the
    weights `fit --class-weight balanced` trains with), rounded to `digits` (None: not rounded)."""
    from sklearn.utils.class_weight import compute_class_weight

    present = [c for c, n in counts.items() if n]
    if not present:
        return {}
    labels = np.repeat(np.arange(len(present)), [counts[c] for c in present])
    weights = compute_class_weight("balanced", classes=np.arange(len(present)), y=labels)
    return {c: float(w) if digits is None else round(float(w), digits) for c, w in zip(present, weights)}
