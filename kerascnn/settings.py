"""One source of settings: layers applied in one documented order, and where each value came from.

Every command's settings are one frozen dataclass from `kerascnn.config` (TrainConfig, EvaluateConfig,
...) or an app's module. Their values come from layers, applied in this order, each over the ones
before it through the one override path (`kerascnn.config.override`):

    1. default   the dataclass field's default (kerascnn/config.py, or the app's config class)
    2. recipe    the model's training recipe from the registry (e.g. LeNet-5: batch 32, smoothing 0.1)
    3. app       an app's own defaults (e.g. finetune: freeze the backbone, 10 epochs)
    4. recipe    a paper's recipe asked for by name (`--recipe alexnet2012`; kerascnn/recipes.py)
    5. file      a settings file (`--config FILE` / `config_file=`): TOML or JSON, flat names or tables
    6. flag      the command line's flags, or `argument`: the Python API's keyword arguments

`resolve` returns a `Resolved`: the checked config and, per setting, the layer it came from. Run and
job folders store it as settings.json; `--print-config` prints it as TOML that `--config` reads back.
Standard library only.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

from kerascnn.config import check, fields_of, get, name_of, override, setting_names, to_dict
from kerascnn.errors import SettingError

# "argument" (Python keywords) ranks as "flag"; the model's recipe and a named one are both "recipe"
ORDER = ("default", "model recipe", "app", "recipe", "file", "flag")


@dataclass(frozen=True)
class Layer:
    """One layer of settings: where they come from ("recipe lenet5", "flag" ...) and their values."""

    source: str
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Resolved:
    """A checked config and, for each dotted key, the layer its value came from."""

    config: Any
    sources: Dict[str, str]
    command: str = ""

    def source(self, key: str) -> str:
        return self.sources[key]

    def to_json(self) -> dict:
        return {"command": self.command, "settings": to_dict(self.config), "sources": dict(self.sources)}

    def format(self) -> str:
        """TOML: every setting with its source as a comment; `--config` reads it back."""
        width = 34
        lines = [f"# kerascnn {self.command}: resolved settings, each with where it came from".rstrip(),
                 f"# (layers, later ones win: {' < '.join(ORDER)}). Reuse with --config FILE."]
        tables: Dict[str, list] = {}
        for key, _ in fields_of(self.config):
            head, _, leaf = key.rpartition(".")
            value, src = get(self.config, key), self.sources.get(key, "default")
            line = f"# {leaf} unset" if value is None else f"{leaf} = {_toml(value)}"
            tables.setdefault(head, []).append(f"{line.ljust(width)} # {src}")
        lines += tables.pop("", [])
        for head, rows in tables.items():
            lines += ["", f"[{head}]", *rows]
        return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value))


def expand(cls: Any, values: Mapping[str, Any], source: str = "") -> Dict[str, Any]:
    """Flat setting names ("hflip", "data") or dotted keys ("augment.hflip") -> dotted keys.

    Raises:
        SettingError: an unknown name, listing close matches.
    """
    names = setting_names(cls)
    keys = {key for key, _ in fields_of(cls)}
    out: Dict[str, Any] = {}
    for name, value in values.items():
        name = name.replace("-", "_")
        if name in names:
            targets = names[name]
        elif name in keys:
            targets = (name,)
        else:
            close = difflib.get_close_matches(name, list(names), n=3, cutoff=0.6)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            where = f" (in {source})" if source else ""
            raise SettingError(name, f"Unknown setting {name!r}{where}.{hint}")
        for key in targets:
            out[key] = value
    return out


def resolve(cls: Any, layers: Sequence[Layer], command: str = "", *, base: Any = None) -> Resolved:
    """Apply `layers` in order over `cls()` (or `base`), check the result, record each value's source.

    A value of None in a layer means "not set here" (the layer below shows through).
    """
    cfg = base if base is not None else cls()
    sources = {key: "default" for key, _ in fields_of(cfg)}
    for layer in layers:
        # TOML and JSON have lists where the configs have tuples (input_shape, milestones)
        changes = {k: tuple(v) if isinstance(v, list) else v
                   for k, v in expand(cls, layer.values, layer.source).items() if v is not None}
        if not changes:
            continue
        try:
            cfg = override(cfg, **changes)
        except (TypeError, ValueError) as e:  # a value that does not fit the field (e.g. a table for a number)
            raise SettingError(None, f"{layer.source}: {e}") from None
        for key in changes:
            sources[key] = layer.source
    return Resolved(check(cfg), sources, command)


def user_layers(cls: Any, settings: Mapping[str, Any], config_file: Optional[os.PathLike] = None,
                source: str = "argument") -> List[Layer]:
    """The user's layers: the settings file (if any), then `settings` (flags or keyword arguments)."""
    layers = [read_settings_file(config_file, cls)] if config_file is not None else []
    return layers + [Layer(source, dict(settings))]


# The layers under the user's, or a function of the user's layers giving them (a model's recipe
# depends on the model the user picked).
Below = Union[Sequence[Layer], Callable[[List[Layer]], Sequence[Layer]]]


def resolve_settings(cls: Any, settings: Mapping[str, Any], *, config_file: Optional[os.PathLike] = None,
                     source: str = "argument", command: str = "", app_layers: Below = (),
                     base: Any = None) -> Resolved:
    """Every command's resolve: `app_layers` (a model's recipe, an app's defaults), then the settings
    file, then `settings`, over `cls()` (or `base`); the checked config and each value's source.

    Args:
        cls: the command's settings dataclass.
        settings: the user's settings by flat name or dotted key (None values: not set).
        config_file: a TOML/JSON settings file (`--config`), applied under `settings`.
        source: how `settings` came: "flag" from the CLI, "argument" from Python.
        command: the command name recorded with the settings (`--print-config`, settings.json).
        app_layers: the layers under the user's, or a function of the user's layers that returns them.

    Raises:
        SettingError: an unknown name, an unreadable file, a value out of range or choices.
    """
    user = user_layers(cls, settings, config_file, source)
    below = app_layers(user) if callable(app_layers) else app_layers
    return resolve(cls, [*below, *user], command, base=base)


def layer_value(layers: Sequence[Layer], cls: Any, key: str) -> Any:
    """The value the last layer that sets `key` gives it (None if none does): e.g. the model name,
    needed to pick the model's recipe layer before the rest is resolved."""
    value = None
    for layer in layers:
        v = expand(cls, layer.values, layer.source).get(key)
        if v is not None:
            value = v
    return value


def read_settings_file(path: os.PathLike, cls: Any) -> Layer:
    """A settings file as a layer: TOML (.toml) or JSON; flat names, dotted keys or tables ([augment]).

    A job folder's settings.json (and `--print-config` output saved to a file) reads back as it is.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise SettingError("config", f"Cannot read settings file {path}: {(e.strerror or str(e)).lower()}.") from None
    try:
        if path.endswith(".json"):
            data = json.loads(raw.decode("utf-8"))
        else:
            data = _toml_loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise SettingError("config", f"{path} is not valid {'JSON' if path.endswith('.json') else 'TOML'}: "
                                     f"{str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise SettingError("config", f"{path}: expected a table of settings, got {type(data).__name__}.")
    if isinstance(data.get("settings"), dict):  # a job folder's settings.json
        data = data["settings"]
    nested = {f.name for f in dataclasses.fields(cls)
              if f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(f.default_factory)}
    flat: Dict[str, Any] = {}
    for name, value in data.items():
        if name in nested and isinstance(value, dict):
            flat.update({f"{name}.{k}": v for k, v in value.items()})
        else:
            flat[name] = value
    return Layer(f"file {path}", flat)


def _toml_loads(text: str) -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover (Python 3.10)
        import tomli as tomllib
    return tomllib.loads(text)


def param_hint(name: Optional[str]) -> Optional[str]:
    """The CLI flag of a library setting name: "batch_size" -> "--batch-size", "model_args" -> "--model-arg"."""
    if not name:
        return None
    return "--" + {"model_args": "model-arg"}.get(name, name.replace("_", "-"))


def settings_of(cfg: Any) -> Dict[str, Any]:
    """The values of `cfg` that differ from its class's defaults, as dotted keys (a TrainConfig
    built by hand, read as the settings a user chose; the model's recipe then fills the rest)."""
    default = type(cfg)()
    return {key: get(cfg, key) for key, _ in fields_of(cfg) if get(cfg, key) != get(default, key)}


__all__ = ["ORDER", "Layer", "Resolved", "expand", "layer_value", "name_of", "param_hint", "read_settings_file",
           "resolve", "resolve_settings", "settings_of", "user_layers"]
