"""Job folders and atomic writes: where every command (training runs, apps) puts what it makes.

A job folder holds one command's outputs and `settings.json`, the resolved settings with the layer
each value came from, so any output can be made again. Every file is written to a temporary name in
the same folder and then renamed over the target, so a kill -9 at any moment leaves either the old
file or the new one, never half of one.

    job = JobDir.create("dream", name="photo", out=None)      # runs/dream-photo-20261203-101500/
    job.write_settings(resolved)                               # a kerascnn.settings.Resolved
    job.save("dream.png", lambda p: image.save(p))             # atomic
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Optional

SETTINGS = "settings.json"


@contextlib.contextmanager
def atomic_path(target: os.PathLike):
    """Yield a temporary path beside `target` (same suffix); rename it over `target` on success."""
    target = Path(target)
    suffix = "".join(target.suffixes[-2:]) if target.name.endswith(".weights.h5") else target.suffix
    tmp = target.with_name(f".{target.stem.split('.')[0]}.tmp-{os.getpid()}{suffix}")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(target: os.PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `target` atomically: a reader sees the old file or the new, never half."""
    with atomic_path(target) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_json(target: os.PathLike, obj: Any) -> None:
    atomic_write_text(target, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n")


def atomic_save(target: os.PathLike, save: Callable[[str], None]) -> None:
    """`save(path)` writes the file (model.save, model.save_weights, fig.savefig ...), atomically."""
    with atomic_path(target) as tmp:
        save(str(tmp))


def slug(text: str) -> str:
    """A short file-name-safe form of a model name, data spec or file path (its last part)."""
    return re.sub(r"[^A-Za-z0-9]+", "_", os.path.basename(str(text).rstrip("/\\")) or str(text)).strip("_")[:40] or "job"


def new_job_path(kind: str, name: str, out: Optional[os.PathLike] = None, root: os.PathLike = "runs") -> Path:
    """`out`, or a fresh `root/<kind>-<name>-<YYYYmmdd-HHMMSS>[-N]` that does not exist yet (not created)."""
    if out:
        return Path(out)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = f"{slug(kind)}-{slug(name)}-{stamp}" if kind else f"{slug(name)}-{stamp}"
    path, n = Path(root) / base, 1
    while path.exists():
        n += 1
        path = Path(root) / f"{base}-{n}"
    return path


class JobDir:
    """One command's output folder: resolved settings plus outputs, every write atomic."""

    def __init__(self, path: os.PathLike):
        self.path = Path(path)

    @classmethod
    def create(cls, kind: str, name: str, out: Optional[os.PathLike] = None, root: os.PathLike = "runs") -> "JobDir":
        """A new job folder: `out` if given (created if missing), else runs/<kind>-<name>-<time>/."""
        job = cls(new_job_path(kind, name, out, root))
        job.path.mkdir(parents=True, exist_ok=True)
        return job

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __fspath__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"JobDir({str(self.path)!r})"

    def write_settings(self, resolved) -> Path:
        """settings.json: every resolved value and where it came from (`kerascnn.settings.Resolved`)."""
        target = self.path / SETTINGS
        atomic_write_json(target, resolved.to_json())
        return target

    def write_text(self, name: str, text: str) -> Path:
        atomic_write_text(self.path / name, text)
        return self.path / name

    def write_json(self, name: str, obj: Any) -> Path:
        atomic_write_json(self.path / name, obj)
        return self.path / name

    def save(self, name: str, save: Callable[[str], None]) -> Path:
        """Write `name` with `save(tmp_path)` (an image, a figure, a model), atomically."""
        atomic_save(self.path / name, save)
        return self.path / name


__all__ = ["JobDir", "SETTINGS", "atomic_path", "atomic_save", "atomic_write_json", "atomic_write_text", "new_job_path",
           "slug"]
