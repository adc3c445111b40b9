"""`kerascnn fit` and `kerascnn finetune`: training runs, with every TrainConfig setting as a flag."""
from __future__ import annotations

import click

from kerascnn.cli import main, needs_tensorflow, print_settings, resolve_flags, verbosity
from kerascnn.cli.options import config_options, given, imagenet_preflight, settings_options
from kerascnn.config import TrainConfig
from kerascnn.errors import SettingError


def _report(result) -> None:
    final = result.final
    acc = final.get("val_accuracy", final.get("val_predictions_accuracy"))
    click.echo(f"Run folder: {result.run_dir}" + (f"  (val top-1 {float(acc):.2%})" if acc is not None else ""))


def _resume(resume, config_file, print_config, settings, command: str) -> None:
    """`--resume RUN_DIR`: the run's own settings, only --epochs may change."""
    from kerascnn.api import check_resume, train

    try:
        check_resume(settings, config_file, flags=True)
    except SettingError as e:
        raise click.UsageError(str(e)) from None
    if print_config:
        from kerascnn.settings import Resolved
        from kerascnn.runtime.run_dir import read_config

        print_settings(Resolved(read_config(resume), {}, f"{command} --resume"))
        return
    _report(train(resume=resume, epochs=settings.get("epochs"), verbose=verbosity()))


_RESUME = click.option("--resume", type=click.Path(exists=True, file_okay=False), default=None, metavar="RUN_DIR",
                       help="Continue an interrupted run from its last finished epoch (with --epochs: train "
                            "further).")


@main.command()
@settings_options(TrainConfig)
@_RESUME
@config_options
@needs_tensorflow(preflight=imagenet_preflight(TrainConfig))
def fit(resume, config_file, print_config, **opts):
    """Train a model; writes a run folder (settings, history, curves, checkpoints, model.keras).

    Settings come in layers, each over the ones before: defaults < the model's recipe < --config FILE
    < flags. --print-config shows the result and where each value came from.
    """
    from kerascnn.api import train

    settings = given(opts)
    if resume:
        _resume(resume, config_file, print_config, settings, "fit")
        return
    from kerascnn.training.configure import resolve_train

    resolved = resolve_flags(resolve_train, opts, config_file, print_config)
    if resolved is None:
        return
    _report(train(resolved, verbose=verbosity()))


def _finetune_defaults():
    from kerascnn.apps.transfer_learning import APP, FINETUNE_DEFAULTS

    return APP, FINETUNE_DEFAULTS


@main.command()
@settings_options(TrainConfig, app=_finetune_defaults()[0], app_defaults=_finetune_defaults()[1])
@_RESUME
@config_options
@needs_tensorflow(preflight=imagenet_preflight(TrainConfig, _finetune_defaults()[1]))
def finetune(resume, config_file, print_config, **opts):
    """Transfer learning in two phases: a pretrained backbone (--weights, or --model FILE.keras) under
    a new head for your --data's classes.

    Phase 1 (--head-epochs) trains the head on the frozen backbone (on features computed once when
    nothing augments the pixels); phase 2 (--epochs) also trains --unfreeze (all, the top K blocks,
    from:LAYER) at --finetune-lr (default --lr / 10; --lr-decay for discriminative rates), with the
    BatchNorm layers kept frozen. One run folder; --resume continues either phase. --weights none
    trains the same network from random initialisation (the baseline).
    Example, offline: --model mobilenet_v2 --weights mobilenet_v2_imagenet_notop.weights.h5 --data FOLDER
    """
    from kerascnn.api import train
    from kerascnn.apps.transfer_learning import resolve

    if resume:
        _resume(resume, config_file, print_config, given(opts), "finetune")
        return
    resolved = resolve_flags(resolve, opts, config_file, print_config)
    if resolved is None:
        return
    _report(train(resolved, verbose=verbosity()))


@main.command("lr-find")
@settings_options(TrainConfig)
@click.option("--finetune", "for_finetune", is_flag=True,
              help="With finetune's defaults (a pretrained backbone, frozen): the rate for its classifier.")
@click.option("--start-lr", type=click.FloatRange(0, min_open=True), default=1e-7, show_default=True)
@click.option("--end-lr", type=click.FloatRange(0, min_open=True), default=10.0, show_default=True)
@click.option("--steps", type=click.IntRange(10), default=100, show_default=True,
              help="Training steps in the sweep (it stops early when the loss diverges).")
@config_options
@needs_tensorflow(preflight=imagenet_preflight(TrainConfig))
def lr_find(for_finetune, start_lr, end_lr, steps, config_file, print_config, **opts):
    """The learning-rate range test (Smith 2017, fastai's lr_find): loss against an exponentially
    growing learning rate over one short sweep of the run `fit` (or, with --finetune, `finetune`)
    would start; writes the curve as a PNG and prints the suggested rate (steepest descent)."""
    from kerascnn.training.lr_find import lr_find as run_lr_find

    settings = given(opts)
    out = settings.pop("out", None)
    if for_finetune:
        from kerascnn.apps.transfer_learning import resolve

        resolved = resolve(settings, config_file=config_file, source="flag")
    else:
        from kerascnn.training.configure import resolve_train

        resolved = resolve_train(settings, config_file=config_file, source="flag", command="lr-find")
    if print_config:
        print_settings(resolved)
        return
    r = run_lr_find(resolved, start_lr=start_lr, end_lr=end_lr, steps=steps, out=out)
    click.echo(f"suggested learning rate {r.suggestion:.3g} (steepest descent); minimum loss at {r.minimum:.3g}, "
               f"so {r.minimum / 10:.3g} is a cautious choice")
    click.echo(f"Curve: {r.png}")
