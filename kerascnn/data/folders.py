"""Image folders (`--data PATH`) and the files given to `kerascnn predict`.

Two layouts: PATH/<class>/... (one sub-folder per class; a seeded split holds out the validation
images), or PATH/train/<class>/... with PATH/val/<class>/... and optionally PATH/test/<class>/....
Class names are the sorted class folder names, taken from train/ so that labels agree across the
splits. Class folders are searched recursively; hidden files and folders are ignored, and every
file that is not a usable image is skipped with its reason (see `images.inspect_image`).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from kerascnn.data.images import MAX_PIXELS, ImageInfo, has_image_extension, inspect_image, is_hidden
from kerascnn.data.sources import FileSplit, Source
from kerascnn.errors import DataError

SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "validation", "valid"), "test": ("test",)}
Skipped = List[Tuple[str, str]]


def subfolders(path: str) -> List[str]:
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError as e:
        raise DataError(f"Cannot list folder {path}: {e.strerror}.") from None
    return [e.name for e in entries if e.is_dir() and not is_hidden(e.name)]


def list_files(folder: str, skipped: Skipped, wanted: Callable[[str], bool], unwanted: str) -> List[str]:
    """The files under `folder` (recursive, sorted) whose name `wanted` accepts; other non-hidden
    files go to `skipped` with the reason `unwanted`, and so do names that are not UTF-8."""
    found = []
    for root, dirs, files in os.walk(folder, onerror=lambda e: skipped.append((e.filename, "cannot list folder"))):
        dirs[:] = sorted(d for d in dirs if not is_hidden(d))
        for name in sorted(files):
            if is_hidden(name):
                continue
            path = os.path.join(root, name)
            if not _utf8(path):  # TF takes paths as UTF-8 strings; a Latin-1 name from an old archive is not
                skipped.append((path, "file name is not valid UTF-8; rename it"))
            elif wanted(name):
                found.append(path)
            else:
                skipped.append((path, unwanted))
    return found


def list_images(folder: str, skipped: Skipped) -> List[str]:
    """Image-type files under `folder` (recursive, sorted); other non-hidden files go to `skipped`."""
    return list_files(folder, skipped, has_image_extension, "not an image file type")


def _utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def inspect_files(paths: Sequence[str], max_pixels: int = MAX_PIXELS) -> Tuple[List[Tuple[str, ImageInfo]], Skipped]:
    """Header-check every file; threads because the work is mostly waiting on the disk."""
    with ThreadPoolExecutor(max_workers=min(16, 4 * (os.cpu_count() or 1))) as pool:
        results = list(pool.map(lambda p: inspect_image(p, max_pixels), paths))
    good = [(p, r) for p, r in zip(paths, results) if isinstance(r, ImageInfo)]
    return good, [(p, r) for p, r in zip(paths, results) if isinstance(r, str)]


def file_split(good: List[Tuple[str, ImageInfo]], labels: Sequence[int]) -> FileSplit:
    return FileSplit(
        paths=np.array([os.path.abspath(p) for p, _ in good], dtype=object),
        labels=np.asarray(labels, np.int64),
        sizes=np.array([(i.height, i.width) for _, i in good], np.int64).reshape(-1, 2),
        kinds=np.array([i.kind for _, i in good], np.int32),
        orients=np.array([i.orient for _, i in good], np.int32),
    )


def _scan_split(root: str, class_names: List[str], max_pixels: int,
                skipped: Skipped) -> Tuple[FileSplit, Dict[str, int]]:
    paths, labels = [], []
    for label, name in enumerate(class_names):
        folder = os.path.join(root, name)
        if os.path.isdir(folder):
            found = list_images(folder, skipped)
            paths += found
            labels += [label] * len(found)
    good, bad = inspect_files(paths, max_pixels)
    skipped += bad
    bad_paths = {p for p, _ in bad}
    good_labels = [label for p, label in zip(paths, labels) if p not in bad_paths]
    counts = np.bincount(np.asarray(good_labels, np.int64), minlength=len(class_names))
    per_class = dict(zip(class_names, counts.tolist()))
    return file_split(good, good_labels), per_class


def split_layout(path: str, spec: str, what: str) -> Optional[Tuple[Dict[str, str], List[str]]]:
    """({split: folder}, class names) when `path` holds train/<class>/ (and val/, test/) folders of
    `what` ("images", "texts"); None when it does not. DataError for a class that has no training folder."""
    top = subfolders(path)
    splits = {s: os.path.join(path, next(n for n in names if n in top))
              for s, names in SPLIT_FOLDERS.items() if any(n in top for n in names)}
    if "train" not in splits or not subfolders(splits["train"]):
        return None
    class_names = subfolders(splits["train"])
    for folder in splits.values():
        extra = sorted(set(subfolders(folder)) - set(class_names))
        if extra:
            raise DataError(f"--data {spec}: class folder(s) {', '.join(extra)} in {folder} are not in "
                            f"{splits['train']}; every class needs training {what} (or remove them).")
    return splits, class_names


def _layout(path: str, spec: str) -> Tuple[Dict[str, str], List[str]]:
    """({split: folder}, class names) for either layout."""
    found = split_layout(path, spec, "images")
    if found is not None:
        return found
    top = subfolders(path)
    if not top:
        has_images = any(has_image_extension(n) for n in os.listdir(path))
        raise DataError(f"--data {spec}: {path} has {'images but ' if has_images else ''}no class sub-folders; "
                        f"put each class's images in {os.path.join(path, '<class>')}/ (or train/<class>/ and "
                        f"val/<class>/).")
    return {"train": path}, top


def load_folder(path: str, spec: str, max_pixels: int = MAX_PIXELS) -> Source:
    """Scan an image folder (either layout) into a Source of FileSplits."""
    path = os.path.expanduser(path)
    if not os.path.isdir(path):
        raise DataError(f"--data {spec}: {path} is not a folder (nor a known data set; see --help for --data).")
    folders, class_names = _layout(path, spec)
    skipped: Skipped = []
    splits = {}
    for split, folder in folders.items():
        splits[split], per_class = _scan_split(folder, class_names, max_pixels, skipped)
        check_split_filled(spec, split, folder, per_class, len(splits[split]), "images",
                           "; add images or remove the folder(s).")
    return Source(spec, "image folder", splits, class_names, skipped)


SCAN_CLASSES, SCAN_FILES = 50, 100  # how much of a folder `folder_holds` looks at


def folder_holds(spec: str, wanted: Callable[[str], bool], unwanted: Callable[[str], bool],
                 loose_files: bool = False) -> bool:
    """Whether `spec` is an existing folder of class folders (under train/ when there is one; with
    `loose_files` also files at its top) whose files include `wanted` ones and no `unwanted` ones:
    how a folder of texts or of audio is told from a folder of images without reading it all. Looks
    at up to SCAN_FILES entries of up to SCAN_CLASSES folders."""
    path = os.path.expanduser((spec or "").strip())
    if not path or not os.path.isdir(path):
        return False
    try:
        top = subfolders(path)
        train = next((os.path.join(path, n) for n in SPLIT_FOLDERS["train"] if n in top), None)
        base = train if train and subfolders(train) else path
        folders = ([base] if loose_files else []) + [os.path.join(base, n) for n in subfolders(base)[:SCAN_CLASSES]]
        seen = False
        for folder in folders:
            with os.scandir(folder) as entries:
                for i, entry in enumerate(entries):
                    if i >= SCAN_FILES:
                        break
                    if is_hidden(entry.name) or not entry.is_file():
                        continue
                    if unwanted(entry.name):
                        return False
                    seen = seen or wanted(entry.name)
        return seen
    except (OSError, DataError):
        return False


def check_split_filled(spec: str, split: str, folder: str, per_class: Dict[str, int], total: int, what: str,
                       fix: str) -> None:
    """A split folder read by any kind: every class of the training split has some usable `what`, and
    no split is empty.

    Raises:
        DataError: naming the empty class folders (up to 5) or the empty split folder; `fix` ends the
            first message (what to do).
    """
    empty = [name for name, n in per_class.items() if n == 0]
    if split == "train" and empty:
        raise DataError(f"--data {spec}: class folder(s) {', '.join(empty[:5])} in {folder} hold no usable "
                        f"{what}{fix}")
    if total == 0:
        raise DataError(f"--data {spec}: {folder} holds no usable {what}.")


def collect_files(paths, lister: Optional[Callable[[str, Skipped], List[str]]] = None
                  ) -> Tuple[List[str], Skipped]:
    """Files named directly (whatever their extension) plus the files `lister` finds under named
    folders (default: images, `list_images`); `paths` is one path or several. What predict reads for
    every kind of input."""
    lister = lister or list_images
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    files: List[str] = []
    skipped: Skipped = []
    for path in paths:
        full = os.path.expanduser(str(path))
        if os.path.isdir(full):
            files += lister(full, skipped)
        elif os.path.isfile(full) and _utf8(full):
            files.append(full)
        elif os.path.isfile(full):
            skipped.append((str(path), "file name is not valid UTF-8; rename it"))
        else:
            skipped.append((str(path), "no such file or folder"))
    return files, skipped


def summarize_skipped(skipped: Skipped, total: Optional[int] = None, shown: int = 3,
                      what: str = "files that are not usable images") -> str:
    """One line: how many files were skipped and the first few, with reasons."""
    first = "; ".join(f"{os.path.basename(p) or p} ({reason})" for p, reason in skipped[:shown])
    more = f"; and {len(skipped) - shown} more" if len(skipped) > shown else ""
    of = f" of {total:,}" if total else ""
    return f"Skipped {len(skipped):,}{of} {what}: {first}{more}"
