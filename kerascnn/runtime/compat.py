"""Every use of Keras / TensorFlow private internals, in one place.

The rest of kerascnn uses public APIs only (`grep -rn "keras.src\\|_keras_history\\|\\._reduce_to"
kerascnn` finds nothing outside this module). Each entry here says which Keras versions need it,
checks `KERAS_VERSION`, and names the test that fails when Keras changes, which is when to revisit
it: a work-around Keras no longer needs is deleted, an accessor whose attribute moved is updated.

Importing this module imports neither Keras nor TensorFlow (the versions come from the installed
package metadata), so light modules may import it; each function imports Keras on use.
"""
from __future__ import annotations

import importlib.metadata
import logging
import os
import re
import tempfile
from typing import Any, NamedTuple, Optional, Tuple

log = logging.getLogger(__name__)


def _version(package: str) -> Tuple[int, ...]:
    """(major, minor, patch) of an installed package; () when it is not installed."""
    try:
        text = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return ()
    return tuple(int(p) for p in re.findall(r"\d+", text.split("+")[0])[:3])


KERAS_VERSION: Tuple[int, ...] = _version("keras")  # e.g. (3, 15, 1)
# Everything below was written against Keras 3 (3.15.1 with TF 2.21); Keras 4 is untested.
_KERAS_3 = (3,) <= KERAS_VERSION < (4,)


# ---------------------------------------------------------------------------------------------
# Saving: the attribute skip-set cache

def cache_keras_saving_skipsets() -> None:
    """Work around a Keras 3 cache that never hits, which makes every save ~2x slower than needed.

    Keras's saving walk asks `get_attr_skipset(kind)` which attributes of a Layer, Functional,
    Optimizer ... to skip; it computes them by constructing throwaway Layer/Optimizer objects and
    caches the result under "saving_attr_skipset_<kind>", but looks the cache up under
    "saving_attr_skiplist_<kind>", so it rebuilds them on every save and load: 16 of the 37 ms of a
    LeNet-5 `save_weights`, per epoch. Storing the computed sets under the key it reads makes the
    cache work; the sets are exactly what Keras computes. `keras.backend.clear_session()` drops the
    entries, so callers re-run this at the start of training.

    Needed by: Keras 3 releases with `saving_lib.get_attr_skipset` (3.15.1 here; the older
    `get_attr_skiplist` wrote and read the same key, and this is then a no-op).
    Detected by: tests/test_training.py::test_saving_does_not_rebuild_keras_skipsets_every_time,
    which fails ("cache_keras_saving_skipsets can go") once Keras caches the sets itself.
    """
    if not _KERAS_3:
        return
    try:
        from keras.src.backend.common import global_state
        from keras.src.saving import saving_lib
    except ImportError:
        return
    if not hasattr(saving_lib, "get_attr_skipset"):
        return
    for kind in ("Operation", "Layer", "Functional", "Sequential", "Metric", "Optimizer", "Loss"):
        key = f"saving_attr_skiplist_{kind}"
        try:
            if global_state.get_global_attribute(key, None) is None:
                global_state.set_global_attribute(key, saving_lib.get_attr_skipset(kind))
        except (AttributeError, ValueError, TypeError):
            return


# ---------------------------------------------------------------------------------------------
# MultiWorkerMirroredStrategy under Keras 3's fit

def multiworker_fixes(strategy):
    """Make MultiWorkerMirroredStrategy work with Keras 3's `fit`, on this strategy object only.

    Keras 3 fails in two places under MultiWorkerMirroredStrategy
    (https://github.com/keras-team/keras/issues/20585, open):

    * `fit` and `evaluate` start by reducing one (x, y) batch to build the model
      (`Trainer._maybe_symbolic_build`), and this strategy's private `_reduce_to`, unlike
      MirroredStrategy's, takes a single value only: "Attempt to convert a value (PerReplica ...)
      with an unsupported type". Fix: map the reduction over the structure, as MirroredStrategy does.
    * every step reduces the per-replica metric results with `strategy.reduce("MEAN", v, axis=0)`
      (`reduce_per_replica`), and metric results are scalars: "Invalid reduction dimension 0 for
      input with 0 dimensions". Fix: a scalar has no axis 0, so reduce it across replicas only
      (axis=None), which is what the single-machine branch of `reduce_per_replica` computes.

    Both are plain bug fixes of code paths Keras never reached with this strategy; the gradient
    all-reduce itself is untouched.

    Needed by: Keras 3 with the TensorFlow backend (3.15.1 with TF 2.21 here).
    Detected by: tests/test_compat.py::test_multiworker_scalar_reduction_still_needs_the_fix (slow:
    fails once an unpatched one-worker strategy reduces a scalar over axis 0), and
    tests/test_distribute_multiworker.py (slow), which trains two workers through both fixes;
    the first fix shows only with two processes: remove it and run that test.
    """
    if not _KERAS_3:
        log.warning("Keras %s: the Keras 3 MultiWorkerMirroredStrategy fixes are not applied",
                    ".".join(map(str, KERAS_VERSION)))
        return strategy
    import tensorflow as tf

    extended = strategy.extended
    reduce_one = extended._reduce_to  # noqa: SLF001 (private, but the seam that needs the fix)

    def reduce_to(reduce_op, value, destinations, options):
        return tf.nest.map_structure(lambda v: reduce_one(reduce_op, v, destinations, options), value)

    extended._reduce_to = reduce_to
    reduce = strategy.reduce

    def reduce_scalars_across_replicas(reduce_op, value, axis=None):
        if axis is not None and all(getattr(v, "shape", None) is not None and v.shape.rank == 0
                                    for v in strategy.experimental_local_results(value)):
            axis = None
        return reduce(reduce_op, value, axis=axis)

    strategy.reduce = reduce_scalars_across_replicas
    return strategy


# ---------------------------------------------------------------------------------------------
# The functional graph: which layer call made a tensor

class KerasHistory(NamedTuple):
    operation: Any  # the layer (or op) whose call produced the tensor
    node_index: int  # which call of it (a layer called twice has two nodes)
    tensor_index: int  # which of that call's outputs


def keras_history(tensor) -> KerasHistory:
    """The layer call that produced a symbolic tensor of a functional model.

    Keras keeps it in the private `KerasTensor._keras_history`; no public API exposes a tensor's
    producer, which walking a graph branch by branch (kerascnn.analysis.summary) needs.

    Needed by: Keras 3 (the attribute exists since Keras 2; Keras 3 made it a namedtuple).
    Detected by: tests/test_compat.py::test_keras_history_names_the_producing_layer_call, and
    every test of tests/test_summary.py.
    """
    try:
        operation, node_index, tensor_index = tensor._keras_history  # noqa: SLF001
    except (AttributeError, TypeError, ValueError):
        raise TypeError(f"Keras {'.'.join(map(str, KERAS_VERSION))}: no layer history on {tensor!r}; "
                        f"kerascnn.runtime.compat.keras_history needs updating for this Keras") from None
    return KerasHistory(operation, node_index, tensor_index)


def producer_node(tensor):
    """The graph node (a `keras.src.ops.node.Node`: `.operation`, `.input_tensors`, ...) whose call
    produced `tensor`: the `node_index`-th of its operation's private `_inbound_nodes`.

    Needed by / detected by: as `keras_history`.
    """
    history = keras_history(tensor)
    return history.operation._inbound_nodes[history.node_index]  # noqa: SLF001


def sequential_graph(model) -> Optional[Any]:
    """The functional graph Keras 3 builds inside a Sequential model (its private `_functional`),
    or None while the model is not built (no Input yet).

    Needed by: Keras 3 (a Sequential model is not a Functional one there, but wraps one).
    Detected by: tests/test_compat.py::test_sequential_graph_is_functional.
    """
    return getattr(model, "_functional", None)


def layer_call_nodes(layer) -> list:
    """Every node where `layer` has been called (its private `_inbound_nodes`, in call order): a
    layer or model used in two graphs, or twice in one, has several.

    Needed by: Keras 3 (no public accessor for a layer's calls).
    Detected by: tests/test_features.py (the nested-model extractor taps the right call).
    """
    return list(layer._inbound_nodes)  # noqa: SLF001


def call_in_graph(graph, layer, index: int) -> bool:
    """Whether `layer`'s `index`-th call belongs to `graph` (a Functional model): Keras keys a graph's
    nodes as f"{id(layer)}_ib-{index}" (keras.src.ops.function.make_node_key) in its private `_nodes`.

    Needed by / detected by: as `layer_call_nodes`.
    """
    return f"{id(layer)}_ib-{index}" in getattr(graph, "_nodes", set())


# ---------------------------------------------------------------------------------------------
# keras.applications' ImageNet weight files: their names, URLs and cache folder
# (keras/src/applications/*.py and keras/src/utils/file_utils.py, Keras 3.15; tests/test_weights.py
# checks them against Keras itself). kerascnn.models.weights uses them to fail fast offline.

KERAS_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"

# keras.applications network -> (folder under KERAS_WEIGHTS_URL, file stem) for the files named
# "{stem}_weights_tf_dim_ordering_tf_kernels[_notop].h5". Keys are normalised (lower case, no "_"),
# so the Keras class name ("ResNet50V2") and our model name ("resnet50_v2") both find the entry.
_STANDARD_FILES = {
    "vgg16": ("vgg16", "vgg16"),
    "vgg19": ("vgg19", "vgg19"),
    "inceptionv3": ("inception_v3", "inception_v3"),
    "inceptionresnetv2": ("inception_resnet_v2", "inception_resnet_v2"),
    "xception": ("xception", "xception"),
    **{f"resnet{depth}{v}": ("resnet", f"resnet{depth}{v}") for depth in (50, 101, 152) for v in ("", "v2")},
}
# MobileNet v1 names its files by width multiplier: "mobilenet_{alpha_text}_{rows}_tf[_no_top].h5".
_MOBILENET_ALPHA = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0", 0.25: "2_5"}
_MOBILENET_V2_ALPHA = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
_MOBILENET_V2_SIZES = (96, 128, 160, 192, 224)


def keras_cache_dir() -> str:
    """The folder keras.utils.get_file keeps `cache_subdir="models"` files in.

    `$KERAS_HOME` when set, else `~/.keras` (or `/tmp/.keras` when the home folder is read-only),
    the rule of keras/src/backend/config.py. Keras reads KERAS_HOME once, when it is imported; this
    reads it now, so the two differ only if the variable changes within a process.
    """
    home = os.environ.get("KERAS_HOME")
    if home is None:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    home = os.path.expanduser(home)
    if os.path.exists(home) and not os.access(home, os.W_OK):  # get_file falls back the same way
        home = os.path.join("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(), ".keras")
    return os.path.join(home, "models")


def keras_applications_weights_file(application: str, include_top: bool = True,
                                    input_shape: Optional[Tuple[int, ...]] = None,
                                    alpha: float = 1.0) -> Optional[Tuple[str, str]]:
    """(folder under KERAS_WEIGHTS_URL, file name) of the ImageNet file keras.applications'
    `application` loads (arguments: kerascnn.models.weights.imagenet_file's); None when unknown."""
    key = application.lower().replace("_", "")
    if key in _STANDARD_FILES:
        folder, stem = _STANDARD_FILES[key]
        name = f"{stem}_weights_tf_dim_ordering_tf_kernels{'' if include_top else '_notop'}.h5"
    elif key == "mobilenet":
        if float(alpha) not in _MOBILENET_ALPHA:
            return None
        # Given only an input_tensor, MobileNet v1 sees input_shape=None and always loads the 224 file.
        folder = "mobilenet"
        name = f"mobilenet_{_MOBILENET_ALPHA[float(alpha)]}_224_tf{'' if include_top else '_no_top'}.h5"
    elif key == "mobilenetv2":
        if float(alpha) not in _MOBILENET_V2_ALPHA:
            return None
        # With a top, MobileNetV2 takes the size from the input tensor when it has weights for it;
        # without one its input shape has no size and it falls back to 224.
        rows = 224
        if include_top and input_shape is not None and input_shape[0] == input_shape[1] \
                and input_shape[0] in _MOBILENET_V2_SIZES:
            rows = int(input_shape[0])
        folder = "mobilenet_v2"
        name = (f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}"
                f"{'' if include_top else '_no_top'}.h5")
    else:
        return None
    return folder, name


# ---------------------------------------------------------------------------------------------
# Saving a subclass under its base class's name

def serialize_as(cls: type, base: type) -> type:
    """Make Keras save instances of `cls` (a subclass adding behaviour only) as `base`.

    A `.keras` file then names "keras.optimizers" / "Adam", which the loader resolves to
    keras.optimizers.Adam, so loading needs nothing from kerascnn. Keras's serializer looks a
    class's public name up from its `__module__`/`__name__` (keras/src/saving/serialization_lib.py
    `serialize_keras_object`, Keras 3.15), so a subclass is otherwise saved under its own module.

    Needed by: kerascnn.training.layerwise (per-layer learning rates). Detected by: tests/test_blocks.py
    test_saved_model_loads_without_kerascnn_and_weights_restore_optimizer_state.
    """
    import keras

    cls.__name__ = base.__name__
    cls.__qualname__ = base.__qualname__
    public = getattr(keras.optimizers, base.__name__, None) is base
    cls.__module__ = "keras.optimizers" if public else base.__module__
    return cls
