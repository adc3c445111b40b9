"""The model catalogue behind `kerascnn models`: registry facts plus parameter counts.

Counting parameters means building the model (Keras allocates every weight), which takes seconds
for the 100 M-parameter nets, so counts are cached per kerascnn version in the user's cache folder.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

from kerascnn.models.registry import get_spec, list_models


@dataclass(frozen=True)
class CatalogRow:
    name: str
    family: str
    params: int  # total parameters at the default input with the default classes (a text model: its
    # placeholder vocabulary and vector size)
    classes: int  # the builder's default number of classes (1000 for ImageNet nets, 10 for LeNet-5 ...)
    default_input: str
    paper: str
    pretrained: str


def _cache_path() -> Path:
    from kerascnn import __version__

    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "kerascnn" / f"catalog-{__version__}.json"


def count_params(name: str) -> list:
    """[total parameters, classes] of `name` built with its defaults (weights=None)."""
    # No keras.backend.clear_session() here: it would reset the caller's own Keras state (layer name
    # counters, a notebook's models). Dropping the only reference frees the model's memory.
    model = get_spec(name).build()
    n = [int(model.count_params()), int(model.output_shape[-1])]
    del model
    return n


def catalog(names: Optional[List[str]] = None, progress: Optional[Callable[[str], None]] = None) -> List[CatalogRow]:
    """One row per model; parameter counts come from the cache or are computed (and cached)."""
    names = names or list_models()
    path = _cache_path()
    try:
        cache: Dict[str, list] = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    rows = []
    for name in names:
        spec = get_spec(name)
        if name not in cache:
            if progress:
                progress(name)
            cache[name] = count_params(name)
            _write_cache(path, cache)
        params, classes = cache[name]
        # A text model takes one string, no (H, W, C): its input column names the kind ("text").
        shown = "x".join(map(str, spec.default_input)) or spec.inputs
        rows.append(CatalogRow(name, spec.family, params, classes, shown, spec.paper,
                               ", ".join(spec.pretrained) or "-"))
    return rows


def _write_cache(path: Path, cache: Dict[str, list]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home only costs recomputation


def as_dicts(rows: List[CatalogRow]) -> List[dict]:
    return [asdict(r) for r in rows]
