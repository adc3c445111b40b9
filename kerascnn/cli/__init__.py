"""The `kerascnn` command line: each command parses its flags, then calls one library function.

One module per command family (train.py: fit, finetune; infer.py: evaluate, predict; zoo.py:
models, summary), sharing the option decorators of options.py. TensorFlow is imported inside the
commands so that `kerascnn --help` answers at once.

Exit codes: 2 for a usage error, i.e. a bad flag or a bad value of one (click's own checks, and the
library's `SettingError`s: unknown model, data, weights or layer names, builder arguments, ranges,
all checked before any work starts); 1 for a failure while running (`UserError`: a download that
cannot happen offline, an unreadable file); one line each, no traceback unless `--debug`.
"""
from __future__ import annotations

import functools
import os
import sys
from typing import Optional

import click

from kerascnn import __version__
from kerascnn.errors import SettingError, UserError


def _quiet_tensorflow() -> None:
    # TensorFlow prints C++ start-up chatter (oneDNN, CUDA probes) that buries the real output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow with file descriptor 2 closed: its C++ start-up lines are written before
    absl reads TF_CPP_MIN_LOG_LEVEL, so only a redirect hides them (--debug keeps them)."""
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    import absl.logging

    # TFDS and TF report through absl's Python logger (e.g. "Variant folder ... has no
    # dataset_info.json"); kerascnn's own warnings go through `logging` and stay visible.
    absl.logging.set_verbosity(absl.logging.ERROR)


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
            preflight(**kwargs)
        if not click.get_current_context().meta.get("kerascnn.debug"):
            _import_tensorflow_quietly()
        return fn(*args, **kwargs)

    return wrapper


def flag_for(ctx: click.Context, param: Optional[str]) -> Optional[str]:
    """The command line's name for a library setting: a command's own hint (e.g. "MODEL.keras" for
    evaluate's model) or the flag ("batch_size" -> "--batch-size")."""
    from kerascnn.settings import param_hint

    hints = ctx.meta.get("kerascnn.param_hints", {})
    return hints.get(param) or param_hint(param)


class _Group(click.Group):
    """Library errors as one line: SettingError as a usage error (exit 2, naming the flag), other
    UserErrors as failures (exit 1); --debug shows the traceback instead."""

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

    if hints:
        click.get_current_context().meta.setdefault("kerascnn.param_hints", {}).update(hints)
    resolved = resolve(given(opts), config_file=config_file, source="flag")
    if print_config:
        print_settings(resolved)
        return None
    return resolved


# Commands register by explicit import (no scanning); each module adds its commands to `main`.
from kerascnn.cli import dream, infer, stylize, train, visualize, zoo  # noqa: E402,F401
from kerascnn.cli import data  # noqa: E402,F401  (kerascnn audit)
