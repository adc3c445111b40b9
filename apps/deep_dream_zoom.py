"""DeepDream zoom animations (`kerascnn dream-zoom`): dream, zoom in a little, dream again.

The infinite-zoom videos of the DeepDream notebook: each frame is the previous one, its centre
enlarged by `zoom`, dreamed again with a few steps (the network keeps finding new things in what it
painted), blended with the zoomed frame so the motion stays smooth. The model and the objective are
built once; frames go to an animated GIF (Pillow) and/or numbered JPEGs.

    from kerascnn.apps.deep_dream_zoom import zoom_file
    zoom_file("photo.jpg", "zoom.gif", model="mobilenet_v2", weights="...notop.weights.h5", frames=30)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Mapping, Optional, Union

import numpy as np

from kerascnn.apps.deep_dream import (DreamConfig, read_photo, build_model, build_objective, dream_octaves,
                                      make_tile_gradient, resolve)
from kerascnn.config import setting
from kerascnn.errors import SettingError
from kerascnn.settings import Resolved


@dataclass(frozen=True)
class ZoomConfig(DreamConfig):
    """`kerascnn dream-zoom`: a dream, zoomed into frame after frame, each frame dreamed again."""

    frames: int = setting(30, "Frames of the animation.", lo=1)
    zoom: float = setting(1.05, "Zoom from one frame to the next (1.05: 5% closer).", lo=1.0, hi=2.0)
    blend: float = setting(0.3, "Share of the zoomed previous frame kept in each new frame (smoother motion).",
                           lo=0.0, hi=0.95)
    duration: int = setting(100, "Milliseconds per frame of the GIF.", lo=10)


# The first frame is a full dream; later ones only refresh a dream already there, so fewer steps.
ZOOM_DEFAULTS = {"octaves": 2, "steps": 8}


def zoom_in(image: np.ndarray, zoom: float) -> np.ndarray:
    """The centre 1/zoom of `image`, enlarged back to its size."""
    import tensorflow as tf

    h, w = image.shape[:2]
    ch, cw = max(1, round(h / zoom)), max(1, round(w / zoom))
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return tf.image.resize(image[y0:y0 + ch, x0:x0 + cw], (h, w), method="bicubic").numpy().clip(0, 255)


def zoom_frames(resolved: Resolved, image, *, model=None, progress: bool = True):
    """Yield the frames (float32 (h, w, 3)) of a zoom: dream, zoom in, dream again (the previous frame
    blended in), with the model and objective built once."""
    from kerascnn.runtime.progress import Progress

    cfg = resolved.config
    frame = read_photo(image, cfg)
    model = model if model is not None else build_model(cfg)
    obj = build_objective(model, cfg, frame)
    tile_gradient = make_tile_gradient(obj)
    rng = np.random.default_rng(cfg.seed)
    with Progress(cfg.frames, "dream-zoom", unit="frame", disable=not progress) as bar:
        for i in range(cfg.frames):
            start = frame if i == 0 else zoom_in(frame, cfg.zoom)
            dreamed = dream_octaves(start, cfg, obj, tile_gradient, rng)
            frame = dreamed if i == 0 else (1 - cfg.blend) * dreamed + cfg.blend * start
            bar.update()
            yield frame.astype(np.float32)


def resolve_zoom(settings: Mapping[str, Any], *, config_file: Optional[os.PathLike] = None,
                 source: str = "argument") -> Resolved:
    """The checked settings of a zoom animation (ZOOM_DEFAULTS as the app layer)."""
    return resolve(settings, config_file=config_file, source=source, cls=ZoomConfig, command="dream-zoom",
                   app_defaults=ZOOM_DEFAULTS)


def zoom_file(image: Union[os.PathLike, str], out: Optional[os.PathLike] = None, *,
              frames_dir: Optional[os.PathLike] = None, resolved: Optional[Resolved] = None,
              config_file: Optional[os.PathLike] = None, progress: bool = True, **settings: Any) -> List[Path]:
    """Write a zoom animation as a GIF `out` and/or numbered JPEGs in `frames_dir`, and the settings
    as JSON beside the GIF (or in `frames_dir`/settings.json). Returns the paths written."""
    from PIL import Image

    from kerascnn.data.imageio import save_image
    from kerascnn.runtime.jobs import JobDir, atomic_save

    if out is None and frames_dir is None:
        raise SettingError("out", "Give an output GIF, a frames folder, or both.")
    if out is not None and Path(out).suffix.lower() != ".gif":
        raise SettingError("out", f"{out}: the animation is written as a .gif (or use a frames folder).")
    if not os.path.isfile(image):
        raise SettingError("image", f"Image {image} does not exist.")
    resolved = resolved or resolve_zoom(settings, config_file=config_file)
    written, gif = [], []
    for i, frame in enumerate(zoom_frames(resolved, image, progress=progress)):
        if frames_dir is not None:
            written.append(save_image(Path(frames_dir) / f"frame_{i:04d}.jpg", frame))
        if out is not None:
            gif.append(Image.fromarray(np.clip(np.round(frame), 0, 255).astype(np.uint8)))
    record = {**resolved.to_json(), "image": os.fspath(image)}
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_save(out, lambda tmp: gif[0].save(tmp, format="GIF", save_all=True, append_images=gif[1:],
                                                 duration=resolved.config.duration, loop=0))
        JobDir(out.parent).write_json(out.with_suffix(".json").name, record)
        written.insert(0, out)
    else:
        JobDir(frames_dir).write_json("settings.json", record)
    return written


__all__ = ["ZoomConfig", "ZOOM_DEFAULTS", "resolve_zoom", "zoom_in", "zoom_frames", "zoom_file"]
