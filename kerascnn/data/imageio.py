"""Image files in and out for the apps (style transfer, DeepDream, Grad-CAM), and ImageNet class names.

One image is read the way the folder loader reads thousands (kerascnn.data.images): the header is
checked first (decompression bombs, truncated files and non-images are refused before a pixel is
decoded), then TF's decoders produce RGB with the EXIF orientation applied, whatever the file holds
(alpha, CMYK, palette, 16-bit). An app therefore sees a photo exactly as `kerascnn predict` and
training do. Outputs are written atomically (kerascnn.runtime.jobs), so a killed run never leaves half a PNG.

    image = load_image("photo.jpg", size=512)      # float32 (h, w, 3) in [0, 255], longest side 512
    save_image("runs/dream/out.png", image)
    decode_predictions(model.predict(batch))       # [[(207, "golden retriever", 0.93), ...], ...]

The ImageNet-1000 class names are bundled (resources/imagenet_classes.json, in the index order of
every Keras ImageNet model), so nothing is downloaded. Each entry is the WordNet synset's synonyms,
"tench, Tinca tinca"; the first synonym is the short name shown in predictions.
"""
from __future__ import annotations

import difflib
import functools
import importlib.resources
import json
import os
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from kerascnn.data import images
from kerascnn.data.images import MAX_PIXELS
from kerascnn.errors import UnknownNameError, UserError
from kerascnn.runtime.jobs import atomic_save

NUM_IMAGENET_CLASSES = 1000
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
JPEG_QUALITY = 95


def load_image(path: os.PathLike, *, size: Optional[int] = None, max_side: Optional[int] = None,
               channels: int = 3, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read one image file as float32 (height, width, channels) pixels in [0, 255], as displayed.

    Any format the folder loader takes (JPEG, PNG, GIF, WebP, BMP, TIFF); the EXIF orientation is
    applied, alpha dropped, CMYK / palette / 16-bit converted to 8-bit RGB (then to luma for
    `channels=1`).

    Args:
        path: the image file.
        size: resize so the longest side is exactly `size` (enlarging or shrinking), keeping the
            aspect ratio; see `resize_longest`.
        max_side: shrink so the longest side is at most `max_side`; smaller images are left as they
            are. At most one of `size` and `max_side`.
        channels: 3 (RGB) or 1 (grayscale).
        max_pixels: refuse images with more pixels than this (decompression bombs).

    Returns:
        float32 array (height, width, channels), values in [0, 255].

    Raises:
        UserError: the file is missing, unreadable, not an image, truncated or too large; the
            message names the file and the reason.
        ValueError: bad arguments.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3. Received: channels={channels}")
    if size is not None and max_side is not None:
        raise ValueError(f"Pass size or max_side, not both. Received: size={size}, max_side={max_side}")
    side = size if size is not None else max_side
    if side is not None and int(side) < 1:
        which = "size" if size is not None else "max_side"
        raise ValueError(f"{which} must be a positive integer. Received: {which}={side}")
    path = os.fspath(path)
    info = images.inspect_image(path, max_pixels)
    if isinstance(info, str):
        raise UserError(f"{path}: {info}")
    longest = max(info.height, info.width)
    if side is not None and (size is not None or longest > side):
        target = _longest_to(info.height, info.width, int(side))
    else:
        target = (info.height, info.width)
    image = images.to_channels(_decode(path, info, target), channels)
    if channels == 1:
        # Luma rounded as an 8-bit grayscale file holds it: a gray PNG then loads exactly (TF's
        # luma weights sum to 0.9999, so 40 would come back as 39.996).
        image = np.round(image)
    # A large JPEG arrives DCT-scaled (up to 8x smaller, still >= target): resize from its own shape.
    return np.asarray(_resize_to(image, target), np.float32)


def _decode(path: str, info: images.ImageInfo, target: Tuple[int, int]):
    """float32 (h, w, 3) tensor, oriented. A large JPEG is DCT-scaled towards `target` while decoding."""
    import tensorflow as tf

    branch = int(images.jpeg_branches(np.array([[info.height, info.width]]), np.array([info.kind]), target)[0])
    with open(path, "rb") as f:  # Python reads any file name; tf.io.read_file needs valid UTF-8
        data = tf.constant(f.read())
    try:
        # One branch only: called eagerly, so nothing else is traced or run.
        image = images.decode_image(data, branch, tf.constant(info.orient), branches=(branch,),
                                    oriented=info.orient != 1)
    except (tf.errors.OpError, ValueError) as e:
        # The header and tail looked fine but the pixel data does not decode.
        detail = str(getattr(e, "message", e)).strip().splitlines()[0]
        detail = re.sub(r"\{\{.*?\}\}\s*", "", detail)[:120]  # TF's "{{function_node ...}}" prefix
        raise UserError(f"{path}: truncated or corrupt ({detail})") from None
    return tf.cast(image, tf.float32)


def _longest_to(height: int, width: int, side: int) -> Tuple[int, int]:
    scale = side / max(height, width)
    # The longest side is exactly `side`; the other is rounded, never below one pixel.
    if height >= width:
        return side, max(1, round(width * scale))
    return max(1, round(height * scale)), side


def resize_longest(image, side: int) -> np.ndarray:
    """Resize (h, w, c) or (B, h, w, c) pixels so the longest side is exactly `side`, keeping the aspect ratio.

    Shrinking low-pass filters first (an antialiased bilinear filter whose support grows with the
    scale), so fine texture does not alias into moiré; enlarging is plain bilinear. The folder
    loader's `images.resize` is tuned for throughput instead (bilinear up to 3x), which aliases
    visibly between 1.5x and 3x; one image for an app can afford the better filter.

    Returns:
        float32 numpy array.
    """
    import tensorflow as tf

    side = int(side)
    if side < 1:
        raise ValueError(f"side must be a positive integer. Received: side={side}")
    image = tf.convert_to_tensor(image)
    if image.shape.rank not in (3, 4):
        raise ValueError(f"image must be (height, width, channels) or a batch of them. Received: shape={image.shape}")
    return _resize_to(image, _longest_to(int(image.shape[-3]), int(image.shape[-2]), side)).numpy()


def _resize_to(image, target: Tuple[int, int]):
    """float32 tensor at `target` (height, width): antialiased when shrinking, bilinear when enlarging."""
    import tensorflow as tf

    image = tf.cast(image, tf.float32)
    height, width = int(image.shape[-3]), int(image.shape[-2])
    if (height, width) == tuple(target):
        return image
    shrinking = target[0] < height or target[1] < width
    return tf.image.resize(image, target, method="bilinear", antialias=shrinking)


def save_image(path: os.PathLike, image) -> Path:
    """Write (h, w), (h, w, 1) or (h, w, 3) pixels in [0, 255] as PNG or JPEG (by the extension), atomically.

    Values are clipped to [0, 255] and rounded to uint8; JPEG at quality 95, 4:4:4. The parent folder is
    created if missing.

    Returns:
        The path written.

    Raises:
        UserError: the extension is not .png, .jpg or .jpeg, or the file cannot be written there.
        ValueError: the array is not an image or holds NaN / infinity.
    """
    from PIL import Image

    path = Path(path)
    fmt = SAVE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"{path}: cannot save an image as {path.suffix or 'a file without an extension'!r}; "
                        f"use one of {', '.join(SAVE_FORMATS)}")
    pixels = np.asarray(image, dtype=np.float64)
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[-1] != 3) or 0 in pixels.shape:
        raise ValueError(f"image must be (height, width), (height, width, 1) or (height, width, 3). "
                         f"Received: shape={np.shape(image)}")
    if not np.isfinite(pixels).all():
        # An optimisation that diverged; clipping would save a plausible-looking but meaningless image.
        raise ValueError(f"image holds NaN or infinite values; not saving {path}")
    pil = Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8))
    # Full-resolution colour (4:4:4): 4:2:0 would halve it and smear the saturated edges of
    # stylised or dreamed images.
    options = {"quality": JPEG_QUALITY, "subsampling": 0} if fmt == "JPEG" else {}
    try:  # the user's output path: a parent that is a file, or a folder we may not write in, is one line
        path.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(path.parent, os.W_OK):
            raise PermissionError(13, "not a writable folder")
    except OSError as e:
        raise UserError(f"{path}: cannot write the image there ({e.strerror or e}); "
                        f"give another output path.") from None
    atomic_save(path, lambda tmp: pil.save(tmp, format=fmt, **options))
    return path


@functools.lru_cache(maxsize=None)
def imagenet_classes() -> Tuple[str, ...]:
    """The 1000 ImageNet class descriptions in model index order ("tench, Tinca tinca", ...), bundled."""
    text = importlib.resources.files("kerascnn").joinpath("resources/imagenet_classes.json").read_text("utf-8")
    names = tuple(json.loads(text))
    if len(names) != NUM_IMAGENET_CLASSES:  # a broken install, not a user error
        raise RuntimeError(f"kerascnn/resources/imagenet_classes.json holds {len(names)} names, not 1000")
    return names


def imagenet_class_name(index: int) -> str:
    """The short name of ImageNet class `index` (its first synonym: 207 -> "golden retriever")."""
    return imagenet_classes()[index].split(", ")[0]


def decode_predictions(probs, top: int = 5) -> List[List[Tuple[int, str, float]]]:
    """The `top` classes of each ImageNet-1000 prediction, most probable first.

    Args:
        probs: (N, 1000) scores (probabilities or logits; the order is the same), numpy or a tensor.
        top: how many classes per image.

    Returns:
        For each image, a list of (class index, short class name, score).
    """
    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[1] != NUM_IMAGENET_CLASSES:
        raise ValueError(f"probs must be (batch, {NUM_IMAGENET_CLASSES}) ImageNet scores. "
                         f"Received: shape={probs.shape}")
    if not 1 <= int(top) <= NUM_IMAGENET_CLASSES:
        raise ValueError(f"top must be in [1, {NUM_IMAGENET_CLASSES}]. Received: top={top}")
    # Stable, so equal scores keep index order.
    order = np.argsort(-probs.astype(np.float64), axis=1, kind="stable")[:, : int(top)]
    return [[(int(i), imagenet_class_name(int(i)), float(row[i])) for i in idx] for row, idx in zip(probs, order)]


def _normalize(name: str) -> str:
    # Keras' class index spells names with underscores ("golden_retriever").
    return " ".join(name.replace("_", " ").lower().split())


@functools.lru_cache(maxsize=None)
def _synonyms() -> Tuple[Dict[str, List[int]], Dict[str, List[int]]]:
    """({first synonym: indices}, {any synonym: indices}), normalized; "crane (bird)" is also "crane"."""
    first: Dict[str, List[int]] = {}
    anyname: Dict[str, List[int]] = {}
    for i, entry in enumerate(imagenet_classes()):
        for k, synonym in enumerate(entry.split(", ")):
            bare = re.sub(r"\s*\(.*\)$", "", synonym)
            for key in {_normalize(synonym), _normalize(bare)}:
                if k == 0:
                    first.setdefault(key, []).append(i)
                if i not in anyname.setdefault(key, []):
                    anyname[key].append(i)
    return first, anyname


def imagenet_class_index(name: str) -> int:
    """The ImageNet class index of `name`: any synonym ("tabby", "Egyptian cat", "golden_retriever"),
    the full description, or the index itself ("207"). Case-insensitive.

    A first synonym wins over a later one ("missile" is 657, not 744 "projectile, missile").

    Raises:
        UnknownNameError: (param "class") no class has that name, listing close matches, or the
            name is ambiguous ("crane": 134 bird or 517 machine), listing the candidates.
    """
    text = str(name).strip()
    if text.isdigit() and int(text) < NUM_IMAGENET_CLASSES:
        return int(text)
    key = _normalize(text)
    full = [i for i, entry in enumerate(imagenet_classes()) if _normalize(entry) == key]
    first, anyname = _synonyms()
    for found in (full, first.get(key, []), anyname.get(key, [])):
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            choices = "; ".join(f"{i} ({imagenet_classes()[i]})" for i in found)
            raise UnknownNameError("class", f"ImageNet class {name!r} is ambiguous: {choices}. "
                                            f"Pass the index or a longer name.")
    close = difflib.get_close_matches(key, list(anyname), n=4, cutoff=0.6)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UnknownNameError("class", f"Unknown ImageNet class {name!r}.{hint} Pass a class name or an index 0-999.")


__all__ = ["JPEG_QUALITY", "NUM_IMAGENET_CLASSES", "SAVE_FORMATS", "decode_predictions", "imagenet_class_index",
           "imagenet_class_name", "imagenet_classes", "load_image", "resize_longest", "save_image"]
