"""The model registry: `register_model`, `create_model(name, **overrides)`, `list_models()`.

Every builder has one signature (keras.applications'):

    builder(input_shape=None, num_classes=1000, include_top=True, weights=None, pooling=None,
            classifier_activation="softmax", name=...) -> keras.Model

and is registered with the facts the rest of the package needs without building it: its default
and smallest input, the paper, which pretrained weights exist and how inputs are preprocessed
(preprocessing lives inside the model as its first layer, so a saved model takes raw pixels), and
the layers the apps pick by name for each use (USES). Families register by explicit import in
`kerascnn/models/__init__.py`.
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from kerascnn.errors import UnknownNameError

Shape = Tuple[int, int, int]

# What the apps select layers for, by the layer names the builders give (`ModelSpec.layers`):
USES = {
    "content": "content-loss layer(s) of style transfer (VGG: block4_conv2, Gatys et al.'s conv4_2)",
    "style": "style layers, spread over depth (VGG: block1_conv1 .. block5_conv1)",
    "dream": "DeepDream layers, mid-to-deep (Inception v3: mixed4 .. mixed7, as keras-io)",
    "cam": "the last spatial feature map, for Grad-CAM / class activation maps",
}


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about a model before building it."""

    name: str
    builder: Callable
    default_input: Shape  # the paper's input (H, W, C)
    min_input: Shape  # the smallest input the architecture allows (tests build at this size)
    paper: str  # short reference, e.g. "LeCun et al. 1998"
    family: str
    pretrained: Tuple[str, ...] = ()  # weight names `weights=` accepts besides None / a path
    preprocessing: str = "scale"  # see kerascnn.models.preprocessing.MODES
    defaults: Dict[str, object] = field(default_factory=dict)  # builder kwargs this entry fixes
    # Training defaults that suit this model (TrainConfig field -> value), applied under the user's
    # flags: the recipe a user of timm or fastai would expect `fit --model NAME` to start from.
    recipe: Dict[str, object] = field(default_factory=dict)
    # Use (a key of USES) -> layer names, in the order an app should use them. Every model has
    # "cam"; image models have all four (kerascnn.models.features.feature_extractor(model, "style")).
    layers: Dict[str, Tuple[str, ...]] = field(default_factory=dict)
    # What the model takes (kerascnn.data.kinds.INPUT_KINDS): the harness picks the data steps of
    # that kind (its pipeline; for images also augmentation, TTA, Grad-CAM and the folder audit).
    inputs: str = "image"

    def build(self, **kwargs):
        return self.builder(**{**self.defaults, **kwargs})


_REGISTRY: Dict[str, ModelSpec] = {}


def register_model(
    name: Optional[str] = None,
    /,
    *,
    default_input: Shape,
    min_input: Optional[Shape] = None,
    paper: str,
    family: str,
    pretrained: Tuple[str, ...] = (),
    preprocessing: str = "scale",
    recipe: Optional[Dict[str, object]] = None,
    layers: Optional[Mapping[str, Union[str, Sequence[str]]]] = None,
    inputs: str = "image",
    **defaults,
) -> Callable[[Callable], Callable]:
    """Decorator: register a builder under `name` (default: the function's name).

    Extra keyword arguments become fixed builder arguments of this entry, so one builder serves
    several variants (`vgg16` and `vgg16_bn` differ by `batch_norm=True`). `name` is positional-only
    so that the builder's own `name=` (the Keras model name) can be one of them. `layers` maps a use
    (a key of USES) to the names of the layers that suit it (so no builder may take `layers=`), and
    `inputs` says what the model takes ("image", "text", "audio", "image+question").
    """

    def decorator(fn: Callable) -> Callable:
        key = name or fn.__name__
        if key in _REGISTRY:
            raise ValueError(f"Model {key!r} is registered twice.")
        _REGISTRY[key] = ModelSpec(
            name=key,
            builder=fn,
            default_input=tuple(default_input),
            min_input=tuple(min_input or default_input),
            paper=paper,
            family=family,
            pretrained=tuple(pretrained),
            preprocessing=preprocessing,
            defaults=dict(defaults),
            recipe=dict(recipe or {}),
            layers=_use_layers(key, layers),
            inputs=inputs,
        )
        return fn

    return decorator


def register_variant(name: str, base: str, /, *,
                     layers: Optional[Mapping[str, Union[str, Sequence[str]]]] = None, **defaults) -> None:
    """Register `name` as `base` with some builder arguments fixed (e.g. batch norm on; `name=`
    among them sets the Keras model name). The variant inherits `base`'s use-layers; `layers`
    replaces those of the uses it names (a deeper ResNet ends in another block)."""
    spec = _REGISTRY[base]
    _REGISTRY[name] = dataclasses.replace(spec, name=name, defaults={**spec.defaults, **defaults},
                                          layers={**spec.layers, **_use_layers(name, layers)})


def _use_layers(model: str, layers: Optional[Mapping[str, Union[str, Sequence[str]]]]) -> Dict[str, Tuple[str, ...]]:
    """`layers` checked (known uses, non-empty) with every value a tuple of names."""
    checked = {}
    for use, names in (layers or {}).items():
        if use not in USES:
            raise ValueError(f"{model}: unknown use {use!r} in layers; the uses are {sorted(USES)}.")
        names = (names,) if isinstance(names, str) else tuple(names)
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"{model}: layers[{use!r}] must be one or more layer names. Received: {names!r}")
        checked[use] = names
    return checked


def _ensure_loaded() -> None:
    # The package face imports every family once (explicit imports, see models/__init__.py).
    import kerascnn.models

    kerascnn.models.load_families()


def list_models(family: Optional[str] = None) -> List[str]:
    """Names of all registered models, sorted; optionally one family only."""
    _ensure_loaded()
    return sorted(n for n, s in _REGISTRY.items() if family is None or s.family == family)


def get_spec(name: str) -> ModelSpec:
    """The registry entry for `name`; an unknown name raises UnknownNameError (param "model", a
    ModelError too) listing close matches."""
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=4, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UnknownNameError(
            "model", f"Unknown model {name!r}.{hint} Run `kerascnn models` for the full list."
        ) from None


def create_model(name: str, **overrides):
    """Build a registered model: `create_model("resnet18", num_classes=10, input_shape=(64, 64, 3))`."""
    return get_spec(name).build(**overrides)


__all__ = ["ModelSpec", "USES", "create_model", "get_spec", "list_models", "register_model", "register_variant"]
