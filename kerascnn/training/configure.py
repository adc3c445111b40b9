"""Resolving a training run's settings, and checking them before any data or model is loaded.

The layers of `kerascnn.settings` for training: TrainConfig's defaults < the model's recipe (from the
registry) < an app's defaults (finetune) < a settings file < flags or keyword arguments. The CLI
(`kerascnn fit`), the Python API (`kerascnn.fit("lenet5", epochs=10)`) and the apps all resolve
through `resolve_train`, so the same settings give the same run, whichever door they come in by.
"""
from __future__ import annotations

import dataclasses
import difflib
import inspect
import numbers
import os
from typing import Any, Callable, List, Mapping, Optional, Union

from kerascnn.config import TrainConfig
from kerascnn.errors import DataError, SettingError
from kerascnn.models.registry import ModelSpec, get_spec
from kerascnn.models.transfer import check_model_file, is_application, is_backbone_ref, is_model_file
from kerascnn.settings import Layer, Resolved, layer_value, resolve_settings

# Builder arguments every model takes and the harness sets itself; not for --model-arg.
HARNESS_ARGS = ("input_shape", "num_classes", "include_top", "weights", "pooling", "classifier_activation", "name")

# An app's defaults: a mapping, or a function of the user's layers that returns one.
AppDefaults = Union[Mapping[str, Any], Callable[[List[Layer]], Mapping[str, Any]]]


def resolve_train(settings: Mapping[str, Any], *, config_file: Optional[os.PathLike] = None, source: str = "argument",
                  app: Optional[str] = None, app_defaults: Optional[AppDefaults] = None,
                  command: str = "fit") -> Resolved:
    """The checked TrainConfig for `settings` (flat names such as `epochs`, `data`, `hflip`, or dotted
    keys), with the source of every value.

    Args:
        settings: the user's settings (None values: not set).
        config_file: a TOML/JSON settings file, applied under `settings`.
        source: how the user's settings came ("flag" from the CLI, "argument" from Python).
        app, app_defaults: an app's name and its defaults, applied over the model's recipe; the
            defaults may be a function of the user's layers (finetune's depend on what was asked).
        command: the command name recorded with the settings.

    Raises:
        SettingError: any bad value (unknown model, data or weights name, builder argument, range).
    """
    def below(user: List[Layer]) -> List[Layer]:
        defaults = app_defaults(user) if callable(app_defaults) else app_defaults
        app_layers = [Layer(f"app {app}", dict(defaults))] if defaults else []
        model = layer_value(app_layers + user, TrainConfig, "model") or TrainConfig.model
        spec = None if is_backbone_ref(model) else get_spec(model)  # no recipe of its own
        named = layer_value(app_layers + user, TrainConfig, "recipe")
        recipe = [Layer(f"recipe {named}", recipe_settings(named))] if named else []
        model_recipe = [Layer(f"recipe {model}", spec.recipe)] if spec is not None else []
        return [*model_recipe, *app_layers, *recipe]

    resolved = resolve_settings(TrainConfig, settings, config_file=config_file, source=source, command=command,
                                app_layers=below)
    cfg = check_train(resolved.config)
    return Resolved(cfg, resolved.sources, command) if cfg is not resolved.config else resolved


def recipe_settings(name: str) -> dict:
    """The settings of the paper's recipe `name` (kerascnn/recipes.py); an unknown name lists them."""
    from kerascnn.recipes import RECIPES

    if name not in RECIPES:
        close = difflib.get_close_matches(str(name), list(RECIPES), n=2, cutoff=0.5)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise SettingError("recipe", f"Unknown recipe {name!r}.{hint} Known: {', '.join(RECIPES)} "
                                     f"(`kerascnn recipes`).")
    return dict(RECIPES[name].settings)


def check_train(cfg: TrainConfig, spec: Optional[ModelSpec] = None) -> TrainConfig:
    """Everything that can be checked without loading data or building the model; returns `cfg`
    with its weights setting normalised ("none" -> None)."""
    from kerascnn.training.phases import check as check_phases
    from kerascnn.training.optim import check_warmup
    from kerascnn.models.weights import check_imagenet_obtainable, check_weights

    check_phases(cfg)
    check_warmup(cfg)
    check_data_kind(cfg)
    if is_model_file(cfg.model):
        return _check_model_file(cfg)
    if is_application(cfg.model):
        return _check_application(cfg)
    spec = spec or get_spec(cfg.model)
    check_model_args(spec, cfg.model_args)
    check_embeddings(spec, cfg.embeddings)
    check_input_shape(spec, cfg.input_shape)
    if not cfg.milestones or any(not 0 < m < 1 for m in cfg.milestones):
        raise SettingError("milestones", f"milestones are fractions of training in (0, 1), such as 0.5,0.75. "
                                         f"Received: {cfg.milestones}")
    check_data_spec(cfg.data.spec, "data")
    weights = check_weights(spec.name, cfg.weights, spec.pretrained)
    if weights == "imagenet":
        check_imagenet_obtainable(spec.name, cfg.input_shape, cfg.model_args.get("alpha", 1.0))
    return cfg if weights == cfg.weights else dataclasses.replace(cfg, weights=weights)


def _check_model_file(cfg: TrainConfig) -> TrainConfig:
    """A saved model as --model: it must exist, and brings its own weights, input and architecture."""
    check_model_file(cfg.model)
    weights = None if str(cfg.weights).lower() == "none" else cfg.weights
    for name, value in (("weights", weights), ("model_args", cfg.model_args), ("input_shape", cfg.input_shape),
                        ("embeddings", cfg.embeddings)):
        if value:
            raise SettingError(name, f"--model {cfg.model} is a saved model: it brings its own weights, input "
                                     f"size and architecture; drop --{name.replace('_', '-')}.")
    check_data_spec(cfg.data.spec, "data")
    return cfg if weights == cfg.weights else dataclasses.replace(cfg, weights=None)


def _check_application(cfg: TrainConfig) -> TrainConfig:
    """--model keras:NAME: a known network, its weights (none, imagenet or a file) and input size."""
    from kerascnn.models.transfer import application
    from kerascnn.models.weights import check_weights

    application(cfg.model)  # UnknownNameError with close matches
    if cfg.embeddings:
        raise SettingError("embeddings", f"{cfg.model} takes images, not word vectors; --embeddings is for text "
                                         f"models such as kim_cnn.")
    shape = cfg.input_shape
    if shape is not None and (len(shape) != 3 or shape[0] < 32 or shape[1] < 32):
        raise SettingError("input_shape", f"{cfg.model} needs (height, width, channels) of at least 32x32. "
                                          f"Received: {tuple(shape)}")
    check_data_spec(cfg.data.spec, "data")
    weights = check_weights(cfg.model, cfg.weights, ("imagenet",))
    return cfg if weights == cfg.weights else dataclasses.replace(cfg, weights=weights)


def check_embeddings(spec: ModelSpec, embeddings: Optional[str]) -> None:
    """--embeddings: a model that takes word vectors, and a vectors file that is there (a known name
    offline fails in seconds, naming the file; kerascnn.models.embeddings.resolve_embeddings)."""
    if not embeddings:
        return
    if "embeddings" not in inspect.signature(spec.builder).parameters:
        raise SettingError("embeddings", f"{spec.name} takes no word vectors; --embeddings is for text models such "
                                         f"as kim_cnn.")
    from kerascnn.errors import ModelError
    from kerascnn.models.embeddings import resolve_embeddings

    try:
        resolve_embeddings(embeddings)
    except ModelError as e:
        raise SettingError("embeddings", str(e)) from None


def check_model_args(spec: ModelSpec, model_args: Mapping[str, Any]) -> None:
    """`model_args` against the builder's signature: known keys, and values of the defaults' types."""
    params = {name: p for name, p in inspect.signature(spec.builder).parameters.items()
              if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
              and name not in HARNESS_ARGS and name not in spec.defaults}
    valid = ", ".join(sorted(params)) or "none"
    for key, value in model_args.items():
        if key in HARNESS_ARGS:
            raise SettingError("model_args", f"model_args {key!r} is set by kerascnn itself; use its own setting "
                                             f"(e.g. input_shape, weights) instead.")
        if key not in params:
            raise SettingError("model_args", f"{spec.name} takes no builder argument {key!r}; valid: {valid}.")
        default = params[key].default
        if not _same_kind(value, default):
            raise SettingError("model_args", f"{spec.name}: builder argument {key} takes a "
                                             f"{type(default).__name__} (default {default!r}). Received: {value!r}")


def _same_kind(value: Any, default: Any) -> bool:
    if default is inspect.Parameter.empty or default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, numbers.Integral):
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if isinstance(default, numbers.Real):
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if isinstance(default, (tuple, list)):
        return isinstance(value, (tuple, list))
    return isinstance(value, type(default))


def check_input_shape(spec: ModelSpec, shape) -> None:
    if shape is None:
        return
    shape = tuple(shape)
    if len(shape) != 3 or any(not isinstance(s, numbers.Integral) or s < 1 for s in shape):
        raise SettingError("input_shape", f"input_shape must be (height, width, channels) such as 32,32,1. "
                                          f"Received: {shape}")
    low = spec.min_input
    if shape[0] < low[0] or shape[1] < low[1]:
        raise SettingError("input_shape", f"{spec.name} needs an input of at least {low[0]}x{low[1]}. "
                                          f"Received: {shape[0]}x{shape[1]}")


def check_data_kind(cfg: TrainConfig) -> None:
    """The data must be of the kind the model takes, and the pixel augmentations apply to images only."""
    from kerascnn.config import AugmentConfig
    from kerascnn.data.kinds import check_data_for
    from kerascnn.models.refs import input_kind

    kind = check_data_for(cfg.model, input_kind(cfg.model), cfg.data.spec)
    if not kind.augment and cfg.augment != AugmentConfig():
        changed = [k for k, v in vars(cfg.augment).items() if v != getattr(AugmentConfig(), k)]
        raise SettingError(changed[0], f"augmentation ({', '.join(changed)}) applies to images; --model "
                                       f"{cfg.model} takes {kind.name} inputs.")


def check_data_spec(spec: str, param: str = "data") -> None:
    """A data spec that names nothing known (and no folder) is a bad setting, found before loading.
    (Image specs are parsed here; another kind's spec is checked by its own `check_spec`.)"""
    from kerascnn.data.kinds import data_kind, spec_kind
    from kerascnn.data.specs import parse_spec

    kind = spec_kind(spec)
    try:
        if kind == "image":
            parse_spec(spec)
        elif data_kind(kind).check_spec is not None:
            data_kind(kind).check_spec(spec)
    except DataError as e:
        raise SettingError(param, str(e)) from None


def make_config(model: str = TrainConfig.model, **changes: Any) -> TrainConfig:
    """`make_config("lenet5", epochs=10, data="mnist")`: the resolved TrainConfig (see `resolve_train`)."""
    return resolve_train({**changes, "model": model}).config


__all__ = ["AppDefaults", "HARNESS_ARGS", "check_data_kind", "check_data_spec", "check_embeddings",
           "check_input_shape", "check_model_args", "check_train", "make_config", "recipe_settings", "resolve_train"]
