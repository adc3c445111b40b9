"""The `kerascnn` command line: each command parses its flags, then calls one library function.

One module per command family (train.py: fit, finetune; infer.py: evaluate, predict; zoo.py:
models, summary), sharing the option decorators of options.py; a command's module is imported when
the command is looked up. TensorFlow is imported inside the commands so that `kerascnn --help`
answers at once, and its C++ start-up lines are hidden unless `--debug` (quiet.py).

Exit codes: 2 for a usage error, i.e. a bad flag or a bad value of one (click's own checks, and the
library's `SettingError`s: unknown model, data, weights or layer names, builder arguments, ranges,
all checked before any work starts); 1 for a failure while running (`UserError`: a download that
cannot happen offline, an unreadable file); one line each, no traceback unless `--debug`.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import os
import sys
from typing import Mapping, Optional

import click

from kerascnn import __version__
from kerascnn.cli.quiet import decoder_messages_hidden, native_stderr_hidden
from kerascnn.errors import SettingError, UserError


def _quiet_tensorflow() -> None:
    # TensorFlow prints C++ start-up chatter (oneDNN, CUDA probes) that buries the real output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _debug(ctx: Optional[click.Context] = None) -> bool:
    """Whether --debug was given; known once the group's options are parsed (before its callback)."""
    ctx = ctx or click.get_current_context(silent=True)
    if ctx is None:
        return False
    root = ctx.find_root()
    return bool(root.meta.get("kerascnn.debug") or root.params.get("debug"))


@contextlib.contextmanager
def _tensorflow_start_up_hidden():
    """Around whatever may import TensorFlow first (a preflight, a command's module, the command):
    TF_CPP_MIN_LOG_LEVEL alone does not hide absl's pre-init lines, so descriptor 2 is pointed away
    until TensorFlow is loaded (Python's own messages still show). --debug keeps everything."""
    if _debug() or "tensorflow" in sys.modules:
        yield
        return
    _quiet_tensorflow()
    with native_stderr_hidden():
        yield


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow, its C++ start-up lines hidden (--debug keeps them)."""
    with _tensorflow_start_up_hidden():
        import tensorflow  # noqa: F401
    import absl.logging

    # TFDS and TF report through absl's Python logger (e.g. "Variant folder ... has no
    # dataset_info.json"); kerascnn's own warnings go through `logging` and stay visible.
    absl.logging.set_verbosity(absl.logging.ERROR)


@contextlib.contextmanager
def decoding_quietly():
    """Around reading user images: libjpeg's and Pillow's messages about damaged files hidden
    (the command summarises the skipped files itself), unless --debug."""
    if _debug():
        yield
        return
    with decoder_messages_hidden():
        yield


def needs_tensorflow(fn=None, *, preflight=None):
    """Decorator for commands that run TensorFlow: quiet import unless --debug.

    `preflight(**kwargs)`, if given, runs with the command's arguments BEFORE TensorFlow loads (which
    alone takes seconds): checks that can fail fast without it, e.g. ImageNet weights offline.
    """
    if fn is None:
        return lambda f: needs_tensorflow(f, preflight=preflight)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if preflight is not None:
            with _tensorflow_start_up_hidden():  # a preflight may import TensorFlow (kerascnn.models)
                preflight(**kwargs)
        if not _debug():
            _import_tensorflow_quietly()
        return fn(*args, **kwargs)

    return wrapper


def inputs_first(check_weights, usage: str, given, hints: Mapping[str, str], images=(), folders=()):
    """A preflight: the command's own arguments before the network's ImageNet weights, so that
    offline a missing photo is not answered about the VGG19 weights file. `given(**kwargs)` is
    False when an argument is missing (a usage error, `usage`); every path in the arguments named
    by `images` (files) and `folders` must exist (a SettingError naming the argument by `hints`)."""

    def preflight(**kwargs):
        if not kwargs.get("print_config"):
            if not given(**kwargs):
                raise click.UsageError(usage)
            _add_hints(hints)
            for names, exists, what in ((images, os.path.isfile, "Image {} does not exist."),
                                        (folders, os.path.isdir, "{} is not a folder.")):
                for name in names:
                    value = kwargs.get(name)
                    for path in [value] if isinstance(value, str) else value or ():
                        if not exists(path):
                            raise SettingError(name, what.format(path))
        check_weights(**kwargs)

    return preflight


def _add_hints(hints: Optional[Mapping[str, str]]) -> None:
    if hints:
        click.get_current_context().meta.setdefault("kerascnn.param_hints", {}).update(hints)


def flag_for(ctx: click.Context, param: Optional[str]) -> Optional[str]:
    """The command line's name for a library setting: a command's own hint (e.g. "MODEL.keras" for
    evaluate's model) or the flag ("batch_size" -> "--batch-size")."""
    from kerascnn.settings import param_hint

    hints = ctx.meta.get("kerascnn.param_hints", {})
    return hints.get(param) or param_hint(param)


# The module that defines each command. A command's module is imported when that command is looked
# up (all of them for `kerascnn --help`), i.e. after --debug is parsed: so `kerascnn fit` never loads
# the other commands' modules, and one that needs TensorFlow to build its flags (dream: its app reads
# kerascnn.models) can load it quietly. tests/test_cli.py checks this table against the commands.
_COMMAND_MODULES = {
    "fit": "train", "finetune": "train", "lr-find": "train",
    "evaluate": "infer", "predict": "infer", "export": "infer",
    "dream": "dream", "dream-zoom": "dream",
    "stylize": "stylize", "stylize-train": "stylize", "stylize-apply": "stylize",
    "visualize": "visualize", "report": "visualize",
    "models": "zoo", "summary": "zoo", "recipes": "zoo",
    "audit": "data",
    "vqa": "vqa",
    "wavenet": "wavenet",
}


def _load_commands(*modules: str) -> None:
    with _tensorflow_start_up_hidden():  # dream's flags come from its app, which loads TensorFlow
        for module in modules:
            importlib.import_module(f"kerascnn.cli.{module}")


class _Group(click.Group):
    """Library errors as one line: SettingError as a usage error (exit 2, naming the flag), other
    UserErrors as failures (exit 1); --debug shows the traceback instead. Commands load on demand."""

    def get_command(self, ctx: click.Context, cmd_name: str):
        if cmd_name in _COMMAND_MODULES:
            _load_commands(_COMMAND_MODULES[cmd_name])
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context):
        _load_commands(*sorted(set(_COMMAND_MODULES.values())))
        return super().list_commands(ctx)

    # Two-word commands of the issues' spelling, e.g. `kerascnn dream zoom IMAGE` for `dream-zoom`
    # (unless a file of that name is meant, `kerascnn dream zoom -o out.jpg` on a file named "zoom").
    SUBCOMMANDS = {("dream", "zoom"): "dream-zoom", ("stylize", "train"): "stylize-train",
                   ("stylize", "apply"): "stylize-apply"}

    def resolve_command(self, ctx: click.Context, args):
        if len(args) >= 2 and tuple(args[:2]) in self.SUBCOMMANDS and not os.path.exists(args[1]):
            name = self.SUBCOMMANDS[tuple(args[:2])]
            return name, self.get_command(ctx, name), args[2:]
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SettingError as e:
            if ctx.meta.get("kerascnn.debug"):
                raise
            hint = flag_for(ctx, e.param)
            raise click.BadParameter(str(e), param_hint=f"'{hint}'" if hint else None) from None
        except UserError as e:
            if ctx.meta.get("kerascnn.debug"):
                raise
            raise click.ClickException(str(e)) from None
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--debug", is_flag=True, help="Show full tracebacks and TensorFlow logs.")
@click.version_option(__version__, prog_name="kerascnn")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Train, inspect and apply the classic CNN case studies (LeNet-5 to ResNet)."""
    ctx.meta["kerascnn.debug"] = debug
    if not debug:
        _quiet_tensorflow()
    _show_progress_messages(debug)


def _show_progress_messages(debug: bool) -> None:
    """kerascnn's own log lines (data summary, skipped files, resume point, replicas) on stderr."""
    import logging

    logger = logging.getLogger("kerascnn")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s" if debug else "%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.INFO)


def verbosity() -> int:
    # The live progress bar where a person watches; one line per epoch in logs and CI.
    return 1 if sys.stdout.isatty() else 2


def print_settings(resolved) -> None:
    click.echo(resolved.format(), nl=False)


def resolve_flags(resolve, opts, config_file, print_config: bool, hints=None):
    """A settings command's start: its flags (and --config file) resolved by the app's `resolve`,
    `hints` naming the arguments in its errors. Returns the Resolved, or None once --print-config
    has printed it (the command then stops)."""
    from kerascnn.cli.options import given

    _add_hints(hints)
    resolved = resolve(given(opts), config_file=config_file, source="flag")
    if print_config:
        print_settings(resolved)
        return None
    return resolved
