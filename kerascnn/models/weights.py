"""Which values `weights=` takes, and where the official ImageNet weights come from.

Every command takes `--weights`: `none`, a pretrained weight name the model lists in the registry
(`"imagenet"` for the keras.applications networks) or a path to a `.weights.h5` / `.h5` / `.keras`
file. `check_weights` checks that value up front, before any data or model is loaded, without
TensorFlow.

`weights="imagenet"` makes keras.applications fetch one file into its cache (`$KERAS_HOME/models/`,
by default `~/.keras/models/`) and read it from there afterwards. Offline, Keras only finds out
after building the network, and a resolver that hangs can take minutes to say so. So before Keras
is asked, `resolve_imagenet` works out the exact file Keras will look for (the names follow
keras/src/applications/*.py, Keras 3.15, and live with the other Keras internals in
kerascnn.runtime.compat; tests/test_weights.py checks them against Keras itself).
Cached: Keras loads it offline. Not cached: a connection probe of a few seconds; offline, a
ModelError names the file, the folder and the URL to fetch it from.
"""
from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

from kerascnn.errors import ModelError, SettingError
from kerascnn.runtime import compat
from kerascnn.runtime.compat import keras_cache_dir  # noqa: F401  (re-exported: where ImageNet files go)
from kerascnn.runtime.network import url_reachable

WEIGHT_SUFFIXES = (".weights.h5", ".h5", ".keras")  # what `load_weights` reads (".h5": Keras's legacy files)
NO_WEIGHTS = ("", "none")  # spellings of "no weights" on the command line

WEIGHTS_URL = compat.KERAS_WEIGHTS_URL
PROBE_TIMEOUT = 3.0  # seconds: a working network connects in well under a second


def check_weights(model: str, weights: Union[None, str, os.PathLike],
                  pretrained: Optional[Sequence[str]] = None) -> Optional[str]:
    """Check a `weights` value for `model` and return it normalised: None, a weight name, or a path.

    Cheap and without TensorFlow when `pretrained` is given; otherwise the registry entry supplies
    it, which imports the model zoo (and so Keras): pass `get_spec(model).pretrained` where the
    spec is at hand anyway.

    Args:
        model: the registered model name (for the message).
        weights: None, "none" or "" (no weights), a name from the model's `pretrained`, or a path
            to an existing `.weights.h5`, `.h5` or `.keras` file ("~" is expanded).
        pretrained: the weight names the model accepts (its registry entry's `pretrained`).

    Raises:
        SettingError: param "weights", one line saying what was given and what is accepted.
    """
    if weights is None or (isinstance(weights, str) and weights.strip().lower() in NO_WEIGHTS):
        return None
    if pretrained is None:
        from kerascnn.models.registry import get_spec  # imports the zoo, hence Keras

        pretrained = get_spec(model).pretrained
    if not isinstance(weights, (str, os.PathLike)):
        raise SettingError("weights", f"weights must be a name or a path. Received: weights={weights!r}")
    value = os.fspath(weights)
    if value.lower() in pretrained:
        return value.lower()
    names = f"{' or '.join(pretrained)}, " if pretrained else ""
    accepted = f"accepted: {names}a path to a {'/'.join(WEIGHT_SUFFIXES)} file, or none"
    path = os.path.expanduser(value)
    if os.path.isfile(path):
        if not path.endswith(WEIGHT_SUFFIXES):
            raise SettingError("weights", f"{value} is not a weights file (it does not end in "
                                          f"{', '.join(WEIGHT_SUFFIXES)}); {accepted}.")
        return path
    if os.path.isdir(path):
        raise SettingError("weights", f"{value} is a folder, not a weights file; {accepted}.")
    if os.sep in value or value.endswith(WEIGHT_SUFFIXES) or not value.isidentifier():
        raise SettingError("weights", f"no such weights file: {value}; {accepted}.")
    # A bare word: meant as a weight name.
    if pretrained:
        raise SettingError("weights", f"{model} has pretrained weights {' and '.join(map(repr, pretrained))} "
                                      f"only, not {value!r}; {accepted}.")
    raise SettingError("weights", f"{model} has no pretrained weights ({value!r} given); {accepted}.")


@dataclass(frozen=True)
class ImagenetFile:
    """The official weights file of a keras.applications network, as Keras's cache names it."""

    file_name: str  # e.g. "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
    url: str  # where Keras downloads it from
    cache_dir: str  # the folder Keras looks in first

    @property
    def path(self) -> str:
        return os.path.join(self.cache_dir, self.file_name)

    @property
    def cached(self) -> bool:
        return os.path.isfile(self.path)


def imagenet_file(application: str, include_top: bool = True,
                  input_shape: Optional[Tuple[int, ...]] = None, alpha: float = 1.0) -> Optional[ImagenetFile]:
    """The file `keras.applications.<application>(weights="imagenet", input_tensor=...)` loads.

    Args:
        application: the Keras class name ("MobileNetV2") or our model name ("mobilenet_v2").
        include_top: whether Keras builds its own classifier (the file with or without "notop").
        input_shape: (H, W, C) of the `input_tensor` the application is built on (how
            `build_application` calls it); only MobileNetV2 with its top picks a file by size.
        alpha: the MobileNets' width multiplier.

    Returns:
        The file, or None for a network this table does not know or an `alpha` without official
        weights (Keras then raises its own error).
    """
    found = compat.keras_applications_weights_file(application, include_top, input_shape, alpha)
    if found is None:
        return None
    folder, name = found
    return ImagenetFile(name, f"{WEIGHTS_URL}{folder}/{name}", compat.keras_cache_dir())


def imagenet_top(include_top: bool, num_classes: int, input_shape: Tuple[int, ...],
                 default_input: Tuple[int, ...]) -> bool:
    """Whether a keras.applications model with weights="imagenet" keeps Keras's own classifier, and
    so needs the file with the top: only for the 1000 ImageNet classes at the paper's input. Any
    other head is transfer learning (as in timm): the no-top backbone under a new classifier.
    `build_application` decides with this; callers that check the file up front use it too."""
    return bool(include_top) and num_classes == 1000 and tuple(input_shape) == tuple(default_input)


def is_online(url: str = WEIGHTS_URL, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether the weights host (or the HTTPS proxy urllib would use) answers within `timeout`
    seconds (kerascnn.runtime.network; tests replace this function to play offline)."""
    return url_reachable(url, timeout)


def resolve_imagenet(application: str, *, model: Optional[str] = None, include_top: bool = True,
                     input_shape: Optional[Tuple[int, ...]] = None, alpha: float = 1.0) -> Optional[ImagenetFile]:
    """Make sure keras.applications can get its ImageNet weights file, before it is asked to.

    Call it right before `keras.applications.<application>(weights="imagenet", ...)` (arguments as
    for `imagenet_file`). A cached file, or a network to fetch it over, returns the file; an
    unknown network returns None (nothing to check: Keras's own download errors remain).

    Raises:
        ModelError: (a UserError: exit 1) the file is not cached and the weights host cannot be
            reached, within about PROBE_TIMEOUT seconds; the message names the file, the cache
            folder, the URL and `--weights PATH`.
    """
    found = imagenet_file(application, include_top, input_shape, alpha)
    if found is None or found.cached or is_online(found.url):
        return found
    raise ModelError(
        f"{model or application}: the ImageNet weights file {found.file_name} is not in the Keras cache "
        f"{found.cache_dir} and {urllib.parse.urlsplit(found.url).hostname} cannot be reached (offline?). "
        f"Download {found.url} into {found.cache_dir}{os.sep}, or pass --weights PATH to a .weights.h5/.keras file."
    )


def check_imagenet_obtainable(model: str, input_shape: Optional[Tuple[int, ...]] = None, alpha: float = 1.0,
                              include_top: Optional[bool] = None) -> None:
    """Fail now, offline with an empty Keras cache, rather than after the data has loaded.

    Which file Keras will want depends on the data's class count, unknown before the data is read:
    the no-top file (a new classifier, the usual case) or, failing that, the full one must be
    cached or downloadable; `include_top` True or False asks for that one file only. Standard library only, so the CLI runs it before TensorFlow loads.

    Raises:
        ModelError: neither file is cached and the weights host cannot be reached (the no-top file's
            message: the file, the folder and the URL).
    """
    if include_top is not None:  # the caller knows which file: that one only
        resolve_imagenet(model, include_top=include_top, input_shape=input_shape, alpha=alpha)
        return
    try:
        resolve_imagenet(model, include_top=False, input_shape=input_shape, alpha=alpha)
    except ModelError as no_top:
        try:
            resolve_imagenet(model, include_top=True, input_shape=input_shape, alpha=alpha)
        except ModelError:
            raise no_top from None


__all__ = ["ImagenetFile", "NO_WEIGHTS", "PROBE_TIMEOUT", "WEIGHTS_URL", "WEIGHT_SUFFIXES", "check_imagenet_obtainable",
           "check_weights", "imagenet_file", "imagenet_top", "is_online", "resolve_imagenet"]
