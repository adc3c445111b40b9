"""Options shared by the commands, made from the settings' own declarations (datasette style: decorators).

Each setting's flag, type, range, choices and help text come from its `setting()` field in
kerascnn/config.py, so the CLI cannot drift from the library: the help states the default that
really applies ("the model's recipe, else 128"; an app's own default), every flag defaults to None
(= not given, the layers below show through), and `--config FILE` / `--print-config` are on every
command that takes settings.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Mapping, Optional, Sequence

import click

from kerascnn.config import fields_of, setting_names

# Settings that stay off the command line (internal limits).
HIDDEN = ("max_decoded_bytes",)


def parse_shape(ctx, param, value: Optional[str]):
    if value is None:
        return None
    try:
        shape = tuple(int(v) for v in value.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise click.BadParameter(f"expected H,W,C such as 32,32,1; got {value!r}", ctx=ctx, param=param)
    return shape


def parse_model_args(ctx, param, values):
    """KEY=VALUE pairs -> {key: value} with true/false, integers and floats recognised; None if none."""
    out = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.isidentifier():
            raise click.BadParameter(f"expected KEY=VALUE such as lrn=true or filters=128; got {item!r}",
                                     ctx=ctx, param=param)
        out[key] = _scalar(raw)
    return out or None


def parse_fractions(ctx, param, value: Optional[str]):
    if value is None:
        return None
    try:
        return tuple(float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected fractions such as 0.5,0.75; got {value!r}", ctx=ctx, param=param) from None


def _scalar(raw: str) -> Any:
    low = raw.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


def _field(cls, key: str) -> dataclasses.Field:
    return dict(fields_of(cls))[key]


def _kind(f: dataclasses.Field) -> str:
    """bool, int, float or str, from the default (or the annotation when the default is None)."""
    if f.default is not dataclasses.MISSING and f.default is not None:
        return type(f.default).__name__
    text = str(f.type)
    return next((k for k in ("bool", "int", "float") if k in text), "str")


def _default_note(f: dataclasses.Field, name: str, app: Optional[str], app_defaults: Mapping[str, Any]) -> str:
    if name in app_defaults:
        return f"[default: {_show(app_defaults[name])} ({app})]"
    default = f.default if f.default is not dataclasses.MISSING else None
    if default is None or default == ():
        return ""
    shown = _show(default)
    if f.metadata.get("recipe"):
        return f"[default: the model's recipe, else {shown}]"
    return f"[default: {shown}]"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


# Flags whose form is not the generic one (a parser, a metavar, a repeatable option).
SPECIAL: Dict[str, dict] = {
    "model": {"param_decls": ("--model", "-m"), "metavar": "NAME"},
    "data": {"metavar": "SPEC"},
    "data_dir": {"type": click.Path(file_okay=False)},
    "input_shape": {"callback": parse_shape, "metavar": "H,W,C", "type": str},
    "model_args": {"param_decls": ("--model-arg", "model_args"), "multiple": True, "callback": parse_model_args,
                   "metavar": "KEY=VALUE", "type": str, "suffix": " Repeatable."},
    "weights": {"metavar": "none|imagenet|PATH"},
    "milestones": {"callback": parse_fractions, "metavar": "F1,F2", "type": str},
    "ensemble": {"multiple": True, "type": click.Path(dir_okay=False), "metavar": "MODEL.keras",
                 "callback": lambda ctx, param, value: tuple(value) or None, "suffix": " Repeatable."},
    "early_stopping": {"metavar": "PATIENCE"},
    "checkpoint_budget": {"metavar": "FRACTION"},
    "out": {"type": click.Path()},
}


def setting_option(cls, name: str, *, app: Optional[str] = None, app_defaults: Mapping[str, Any] = {}) -> Callable:
    """The click option of setting `name` of config class `cls` (default None: not given)."""
    key = setting_names(cls)[name][0]
    f = _field(cls, key)
    meta, special = f.metadata, dict(SPECIAL.get(name, {}))
    flag = "--" + name.replace("_", "-")
    decls = special.pop("param_decls", None)
    suffix = special.pop("suffix", "")
    kind = _kind(f)
    kwargs: Dict[str, Any] = {"default": None}
    if kind == "bool" and "type" not in special:
        decls = decls or (f"{flag}/--no-{name.replace('_', '-')}", name)
    elif meta.get("choices"):
        kwargs["type"] = click.Choice([str(c) for c in meta["choices"]])
    elif kind in ("int", "float") and "type" not in special:
        lo, hi = meta.get("lo"), meta.get("hi")
        if kind == "int":
            kwargs["type"] = click.IntRange(lo, hi) if (lo is not None or hi is not None) else click.INT
        else:
            kwargs["type"] = click.FloatRange(lo, hi, min_open=bool(meta.get("lo_open"))) \
                if (lo is not None or hi is not None) else click.FLOAT
    kwargs.update(special)
    note = _default_note(f, name, app, app_defaults)
    kwargs["help"] = " ".join(x for x in (meta.get("help", "") + suffix, note) if x)
    return click.option(*(decls or (flag, name)), **kwargs)


def settings_options(cls, names: Optional[Sequence[str]] = None, *, app: Optional[str] = None,
                     app_defaults: Mapping[str, Any] = {}) -> Callable:
    """Decorator: one option per setting of `cls` (all of them by default, in declaration order)."""
    names = [n for n in (names or setting_names(cls)) if n not in HIDDEN]
    order = {key: i for i, (key, _) in enumerate(fields_of(cls))}
    names.sort(key=lambda n: order[setting_names(cls)[n][0]])

    def decorate(fn):
        for name in reversed(names):
            fn = setting_option(cls, name, app=app, app_defaults=app_defaults)(fn)
        return fn

    return decorate


def config_options(fn):
    """--config FILE and --print-config, on every command that takes settings."""
    fn = click.option("--print-config", is_flag=True, default=False,
                      help="Print the resolved settings, each with where it came from (TOML, reusable with "
                           "--config), and exit.")(fn)
    fn = click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None, metavar="FILE",
                      help="A settings file (TOML or JSON; a run's settings.json works), applied under the flags.")(fn)
    return fn


def given(opts: Mapping[str, Any]) -> Dict[str, Any]:
    """The options the user actually gave (click passes None for the others)."""
    return {k: v for k, v in opts.items() if v is not None}


def imagenet_preflight(config_cls: Any, app_defaults: Optional[Mapping[str, Any]] = None, *,
                       include_top: Optional[bool] = None) -> Callable:
    """The one offline ImageNet-weights pre-check, a `needs_tensorflow` preflight of every command that
    builds a network (fit, finetune, lr-find, dream, stylize, visualize): with an empty Keras cache
    and no network, `--weights imagenet` fails before TensorFlow loads (seconds, not minutes), naming
    the file to put where; the full check runs again when the network is built.

    Args:
        config_cls: the command's settings class, or a function giving it (imported lazily).
        app_defaults: an app's own defaults under the file and flags (finetune: imagenet weights).
        include_top: which file the command needs: True the classifier's, False the no-top
            backbone's, None either (it depends on the data's classes, unknown until read).
    """

    def check(config_file=None, print_config=False, resume=None, **opts):
        if print_config or resume:
            return  # a resumed run keeps its weights; --print-config builds nothing
        from kerascnn.models.refs import wants_imagenet_file
        from kerascnn.models.weights import check_imagenet_obtainable
        from kerascnn.settings import Layer, layer_value, read_settings_file

        cls = config_cls if isinstance(config_cls, type) else config_cls()
        names = setting_names(cls)
        layers = [Layer("app", dict(app_defaults))] if app_defaults else []
        layers += [read_settings_file(config_file, cls)] if config_file else []
        layers.append(Layer("flag", {k: v for k, v in given(opts).items() if k in names}))  # not IMAGE, -o ...

        def value(name):
            return layer_value(layers, cls, name) if name in names else None

        model = value("model") or cls.model
        weights = value("weights")
        weights = cls.weights if weights is None else weights
        if wants_imagenet_file(model, weights):
            alpha = (value("model_args") or {}).get("alpha", 1.0)
            check_imagenet_obtainable(model, value("input_shape"), alpha, include_top=include_top)

    return check
