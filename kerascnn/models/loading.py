"""Loading a saved model: a `.keras` file, always with Keras's safe_mode on (a file can never run code here).

kerascnn's own layers are registered serializables (importing kerascnn.models registers them), so no
custom_objects are needed.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Tuple, Union

from kerascnn.errors import SettingError, UserError


def load_model(path: os.PathLike):
    """Load a `.keras` model safely (safe_mode=True), with a one-line error for bad files."""
    import keras

    import kerascnn.models

    kerascnn.models.load_families()  # registers kerascnn's serializable layers

    path = Path(path)
    # A path that names no model file is a bad argument (usage, exit 2); one that cannot be read as
    # a model is a failure (exit 1).
    if not path.is_file():
        raise SettingError("model", f"Model file {path} does not exist; pass a .keras file that kerascnn "
                                    f"wrote (`kerascnn fit`, `finetune`, `stylize train`).")
    if path.suffix != ".keras":
        raise SettingError("model", f"{path}: expected a .keras model file (Keras 3 format).")
    import zipfile

    if not zipfile.is_zipfile(path):  # Keras would say "File not found" of a file that is there
        raise UserError(f"Cannot load model {path}: not a .keras archive (a zip file); it may be cut short or "
                        f"another format: save it again with kerascnn or Keras 3.")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise UserError(f"Cannot load model {path}: {first}") from None


def model_input_shape(model) -> Union[Tuple[int, ...], Dict[str, Tuple[int, ...]]]:
    """The shape of one example a model takes (no batch axis); for a model of named inputs (a dict,
    e.g. an image+question model's {"image", "question"}), {name: shape}. UserError when any side
    is not fixed."""
    struct = getattr(model, "input", None) if getattr(model, "built", True) else None
    if isinstance(struct, dict):
        shape = {str(k): tuple(v.shape[1:]) for k, v in struct.items()}
        sides = [s for v in shape.values() for s in v]
    else:
        shape = tuple(model.input_shape[1:])
        sides = list(shape)
    if any(s is None for s in sides):
        raise UserError(f"Model {model.name} takes input {model.input_shape}; kerascnn needs a fixed input shape.")
    return shape


def model_image_shape(model) -> Tuple[int, int, int]:
    """The (height, width, channels) a model takes; UserError when any of them is not fixed."""
    shape = tuple(model.input_shape[1:])
    if len(shape) != 3 or any(s is None for s in shape):
        raise UserError(f"Model {model.name} takes input {model.input_shape}; kerascnn needs a fixed H, W, C.")
    return shape


__all__ = ["load_model", "model_image_shape", "model_input_shape"]
