"""Feature extraction: a keras.Model from a network's input to the activations of named layers, the
tap that style transfer, DeepDream, Grad-CAM and layer visualisation read.

Layers are named as `list_layers` shows them: plainly ("block_1_expand", found at any depth) or by
their path through the nested models that hold them, joined by "/" ("mobilenetv2_1.00_32/block_1_expand";
Keras forbids "/" in layer names, so a path cannot be misread). A use of the registry ("content",
"style", "dream", "cam"; `kerascnn.models.registry.USES`) stands for that model's layers when the
model, or a model nested in it, is a registry model (its Keras name is its registry name).

Layers inside a nested model (a backbone called as one layer of a classifier, as transfer learning
builds it) cannot be reached from the outer model's input: in Keras 3 their outputs belong to the inner
model's own graph, and `keras.Model(outer.input, inner_layer.output)` fails as disconnected. So the
extractor builds a multi-output view of the inner model (the same layers and weights) and calls it on
the outer tensor that feeds the inner model, with the same call arguments (`training=False` stays),
recursively for deeper nesting.
"""
from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Dict, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from kerascnn.errors import SettingError, UnknownNameError

if TYPE_CHECKING:  # TensorFlow loads when a function runs, not on import
    import keras

SEP = "/"  # joins the names on a path through nested models

Layers = Union[str, Sequence[str], Mapping[str, float]]


class LayerInfo(NamedTuple):
    """One row of `list_layers`."""

    name: str  # path through nested models, "/"-joined; a top-level layer's is its own name
    class_name: str  # "Conv2D", "Functional" (a nested model) ...
    output_shape: tuple  # as in its own graph, batch dimension None; a tuple of shapes for several outputs


def list_layers(model: keras.Model) -> List[LayerInfo]:
    """Every layer of `model`, nested models' layers included (after the nested model's own row).

    Returns:
        `LayerInfo(name, class_name, output_shape)` tuples in graph order; `name` is what
        `feature_extractor` takes.
    """
    rows = []
    for path, layer, owner in _walk(model):
        outputs = _node(owner, layer, path).outputs
        shapes = tuple(tuple(t.shape) for t in outputs)
        rows.append(LayerInfo(path, type(layer).__name__, shapes[0] if len(shapes) == 1 else shapes))
    return rows


def feature_extractor(model: Union[keras.Model, str], layers: Layers, *, name: Optional[str] = None,
                      **create_kwargs) -> keras.Model:
    """A model from `model`'s input to the outputs of `layers`, sharing `model`'s weights.

    Args:
        model: a keras.Model (a kerascnn model, a keras.applications network, a loaded .keras file,
            a classifier with a nested backbone), or a registry name, built with
            `create_model(model, **create_kwargs)` (weights=None unless given).
        layers: a layer name, a list of names, or a `{name: weight}` mapping (the loss weights of
            style transfer or DeepDream, kept on the result). A name is looked up first as a path
            ("inner/block_1_expand"; a top-level layer is its own path), then as the last part of a
            path at any depth, which must be unique. A registry use ("style", "dream", ...) expands to
            the registry model's layers for it, each with the use's weight.
        name: the extractor's name; default `f"{model.name}_features"`.

    Returns:
        A keras.Model whose call returns the layers' activations in the order given: one tensor for
        one layer, a list otherwise (as Keras does for one-output models). Outputs are float32 even under
        mixed precision (a float32 cast is added where a layer computes in float16/bfloat16), so apps
        compute their losses in float32. It carries `layer_names` (the resolved paths) and
        `layer_weights` (1.0 each unless a mapping gave them), tuples in output order.

    Raises:
        UnknownNameError: (param "layers") a name no layer has, with close matches.
        SettingError: (param "layers") an ambiguous name, a use the model has no layers for, a bad weight.
    """
    import keras

    if isinstance(model, str):
        from kerascnn.models.registry import create_model

        model = create_model(model, **create_kwargs)
    elif create_kwargs:
        raise TypeError(f"create_model arguments {sorted(create_kwargs)} only apply when model is a "
                        f"registry name. Received: model={getattr(model, 'name', model)!r}")
    requested = _requested(layers)
    index = {path: layer for path, layer, _ in _walk(model)}
    names, weights = [], []
    for item, weight in requested:
        for path in _resolve(model, index, item):
            names.append(path)
            weights.append(weight)
    tensors = _outputs(model, [tuple(p.split(SEP)) for p in names])
    casts = {path: _float32(t, path) for path, t in zip(names, tensors)}  # one per layer, asked twice or not
    outputs = [casts[path] for path in names]
    inputs = model.inputs if len(model.inputs) > 1 else model.inputs[0]
    extractor = keras.Model(inputs, outputs if len(outputs) > 1 else outputs[0],
                            name=name or f"{model.name}_features")
    extractor.layer_names = tuple(names)
    extractor.layer_weights = tuple(weights)
    return extractor


def compute_policy(model: keras.Model) -> str:
    """The dtype policy a model computes in: its first layer with weights' ("mixed_bfloat16" ...). A
    loaded model's own policy is the global one at load time, not what its layers compute in."""
    for _, layer, _ in _walk(model):
        if layer.weights and not _has_graph(layer):
            return layer.dtype_policy.name
    return "float32"


def any_size(extractor: keras.Model) -> keras.Model:
    """`extractor`, callable on images of any size. A Keras model checks its calls against the input
    shape it was built with; convolutional layers take any size, so the check (the public
    `input_spec`) is dropped. A layer that does need its size (a Flatten before a Dense) still fails
    when called on another."""
    extractor.input_spec = None
    return extractor


def parse_layer_weights(text: Optional[str], param: str = "layers") -> Optional[Dict[str, float]]:
    """"mixed3:1.0,mixed5:1.5" (or "mixed3,mixed5") -> {"mixed3": 1.0, "mixed5": 1.5}; None -> None.

    Raises:
        SettingError: (param `param`) a weight that is not a number, or no names.
    """
    if text is None:
        return None
    out: Dict[str, float] = {}
    example = "LAYER[:WEIGHT],... such as block4_conv2:1.0,block5_conv2:0.5"
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, _, weight = item.partition(":")
        try:
            out[name.strip()] = float(weight) if weight else 1.0
        except ValueError:
            raise SettingError(param, f"expected {example}; {weight!r} is not a number. Received: {text!r}") from None
    if not out or not all(out):
        raise SettingError(param, f"expected {example}. Received: {text!r}")
    return out


def format_layer_weights(layers: Union[str, Sequence[str], Mapping[str, float]]) -> str:
    """The inverse of `parse_layer_weights` (a mapping or list of names -> "a:1.0,b:0.5")."""
    if isinstance(layers, str):
        return layers
    if isinstance(layers, Mapping):
        return ",".join(f"{k}:{float(v)!r}" for k, v in layers.items())
    return ",".join(layers)


# ------------------------------------------------------------------------------------------------
# Names


def _requested(layers: Layers) -> List[Tuple[str, float]]:
    """`layers` as (name, weight) pairs, checked."""
    if isinstance(layers, str):
        pairs = [(layers, 1.0)]
    elif isinstance(layers, Mapping):
        pairs = []
        for key, weight in layers.items():
            try:
                pairs.append((key, float(weight)))
            except (TypeError, ValueError):
                raise SettingError("layers", f"The weight of layer {key!r} must be a number. "
                                   f"Received: {weight!r}") from None
    else:
        try:
            pairs = [(n, 1.0) for n in layers]
        except TypeError:
            raise SettingError("layers", f"layers must be a name, a list of names or a {{name: weight}} "
                               f"mapping. Received: {layers!r}") from None
    if not pairs:
        raise SettingError("layers", "No layers given: pass a layer name, a list or a {name: weight} mapping.")
    for n, _ in pairs:
        if not isinstance(n, str) or not n:
            raise SettingError("layers", f"Layer names must be non-empty strings. Received: {n!r}")
    return pairs


def _resolve(model, index: Dict[str, object], name: str) -> List[str]:
    """The path(s) `name` stands for: itself, the one path ending in it, or a registry use's layers."""
    if name in index:
        return [name]
    ending = [p for p in index if p.rsplit(SEP, 1)[-1] == name]
    if len(ending) == 1:
        return ending
    if len(ending) > 1:
        raise SettingError("layers", f"Layer name {name!r} is ambiguous in model {model.name!r}: "
                           f"{', '.join(ending)}. Pass one of these paths.")
    registry_model, uses = _registry_uses(model)
    if name in uses:
        return _resolve_use(model, index, name, uses[name])
    _check_use(name, model, registry_model, uses)
    candidates = {}  # what `name` is compared with -> what the message suggests
    for path in index:
        candidates.setdefault(path if SEP in name else path.rsplit(SEP, 1)[-1], path)
    candidates.update({use: use for use in uses})
    close = difflib.get_close_matches(name, list(candidates), n=4, cutoff=0.6)
    hint = f" Did you mean: {', '.join(candidates[c] for c in close)}?" if close else ""
    raise UnknownNameError("layers", f"Unknown layer {name!r} in model {model.name!r}.{hint} "
                           f"kerascnn.models.features.list_layers(model) lists its {len(index)} layers.")


def _registry_uses(model) -> Tuple[Optional[str], Dict[str, Tuple[str, ...]]]:
    """The first registry model among `model` and the models nested in it (outermost first), and
    its use -> layer paths; (None, {}) when there is none."""
    from kerascnn.models.registry import get_spec, list_models

    registered = set(list_models())
    for prefix, m in [("", model)] + [(p + SEP, layer) for p, layer, _ in _walk(model) if _has_graph(layer)]:
        if m.name in registered:
            return m.name, {use: tuple(prefix + n for n in names) for use, names in get_spec(m.name).layers.items()}
    return None, {}


def _check_use(name: str, model, registry_model: Optional[str], uses: Dict[str, Tuple[str, ...]]) -> None:
    """A registry use that cannot be resolved is a SettingError that says why, not an unknown layer."""
    from kerascnn.models.registry import USES

    if name not in USES:
        return
    if registry_model is None:
        raise SettingError("layers", f"{name!r} is a registry use, but model {model.name!r} is no registry "
                           f"model and holds none; name its layers instead (see list_layers).")
    raise SettingError("layers", f"Registry model {registry_model!r} has no {name!r} layers (it has: "
                       f"{', '.join(uses)}); name its layers instead (see list_layers).")


def _resolve_use(model, index: Dict[str, object], use: str, paths: Tuple[str, ...]) -> List[str]:
    missing = [p for p in paths if p not in index]
    if missing:
        # A registry name on a model built otherwise (another depth, include_top=False cut early).
        raise SettingError("layers", f"Model {model.name!r} lacks the registry's {use!r} layers "
                           f"{', '.join(missing)}; name its layers instead (see list_layers).")
    return list(paths)


def _float32(tensor, path: str):
    """`tensor`, cast to float32 if it is a float16/bfloat16 activation (mixed precision): by an
    identity Activation with a float32 policy, as the classifiers keep their softmax in float32."""
    import keras

    if tensor.dtype == "float32" or "float" not in str(tensor.dtype):
        return tensor
    return keras.layers.Activation("linear", dtype="float32", name=f"{path.replace(SEP, '.')}_float32")(tensor)


# ------------------------------------------------------------------------------------------------
# Graph


def _has_graph(layer) -> bool:
    """Whether `layer` is a model with a graph of layers (Functional, Sequential), not a subclassed one."""
    import keras

    if not isinstance(layer, keras.Model):
        return False
    try:
        return bool(layer.inputs) and bool(layer.outputs)
    except (AttributeError, ValueError):  # subclassed or unbuilt models have no symbolic inputs
        return False


def _walk(model, prefix: str = "") -> Iterator[Tuple[str, object, object]]:
    """(path, layer, the model whose graph it sits in) for every layer, depth first."""
    for layer in model.layers:
        path = prefix + layer.name
        yield path, layer, model
        if _has_graph(layer):
            yield from _walk(layer, path + SEP)


def _node(owner, layer, path: str):
    """The node where `layer` is called in `owner`'s graph (a layer may also be called elsewhere)."""
    from kerascnn.runtime.compat import call_in_graph, layer_call_nodes, sequential_graph

    nodes = layer_call_nodes(layer)
    if len(nodes) == 1:
        return nodes[0]
    graph = sequential_graph(owner) or owner  # a Sequential keeps its graph in a Functional
    mine = [n for i, n in enumerate(nodes) if call_in_graph(graph, layer, i)]
    if len(mine) != 1:
        raise SettingError("layers", f"Layer {path!r} is called {len(mine) or len(nodes)} times in model "
                           f"{owner.name!r}; cannot tell which call to tap.")
    return mine[0]


def _outputs(owner, paths: List[Tuple[str, ...]]) -> list:
    """The symbolic outputs, in `owner`'s graph, of the layers at `paths` (relative to `owner`)."""
    import keras
    from keras import tree

    results: list = [None] * len(paths)
    nested: Dict[str, List[int]] = {}
    for i, path in enumerate(paths):
        if len(path) > 1:
            nested.setdefault(path[0], []).append(i)
            continue
        outputs = _node(owner, owner.get_layer(path[0]), path[0]).outputs
        if len(outputs) != 1:
            raise SettingError("layers", f"Layer {path[0]!r} of {owner.name!r} has {len(outputs)} outputs; "
                               f"name one of the layers that make them.")
        results[i] = outputs[0]
    for inner_name, items in nested.items():
        inner = owner.get_layer(inner_name)
        inner_outputs = _outputs(inner, [paths[i][1:] for i in items])
        # The inner model's own layers and weights, called where `owner` calls the inner model.
        view = keras.Model(inner.inputs, inner_outputs, name=f"{inner.name}_features")
        node = _node(owner, inner, inner_name)
        called = tree.flatten(view(*node.arguments.args, **node.arguments.kwargs))
        for i, t in zip(items, called):
            results[i] = t
    return results


__all__ = ["LayerInfo", "Layers", "SEP", "any_size", "compute_policy", "feature_extractor", "format_layer_weights",
           "list_layers", "parse_layer_weights"]
