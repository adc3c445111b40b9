"""`kerascnn evaluate` and `kerascnn predict`: apply saved models to data sets and image files."""
from __future__ import annotations

import click

from kerascnn.cli import decoding_quietly, main, needs_tensorflow, print_settings
from kerascnn.cli.options import config_options, given, settings_options
from kerascnn.config import EXPORT_FORMATS, EvaluateConfig, PredictConfig


def _settings(ctx: click.Context, cls, model: str, config_file, print_config: bool, opts):
    """The command's resolved settings (file < flags), or None once --print-config has printed them."""
    from kerascnn.settings import Layer, read_settings_file, resolve

    # Errors name the positional argument by its metavar ("MODEL.keras"), not as a flag.
    ctx.meta.setdefault("kerascnn.param_hints", {}).update(model="MODEL.keras")
    layers = ([read_settings_file(config_file, cls)] if config_file else []) + \
        [Layer("flag", {**given(opts), "model": model})]
    resolved = resolve(cls, layers, ctx.command.name)
    if print_config:
        print_settings(resolved)
        return None
    return resolved.config


@main.command()
@click.argument("model", type=click.Path(dir_okay=False), metavar="MODEL.keras")
@settings_options(EvaluateConfig, ["data", "data_dir", "split", "batch_size", "ignore_class_names", "tta", "ensemble",
                                   "text_column", "label_column", "label_threshold", "out"])
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
@click.option("--cv", type=int, default=None, metavar="K",
              help="K-fold cross-validation instead (data without a test split; Kim 2014): K fresh models, each "
                   "trained with the model's run settings (its config.json) on K-1 folds and scored on the "
                   "fold left out; prints each fold and the mean +- std. The fold runs go under --out (a folder), "
                   "else runs/cvK-<model>-<data>-<time>.")
@click.option("--epochs", type=int, default=None, metavar="N",
              help="With --cv: each fold's training epochs. [default: the run's]")
@config_options
@click.pass_context
@needs_tensorflow
def evaluate(ctx, model, as_json, cv, epochs, config_file, print_config, **opts):
    """Loss, top-1 and top-5 (past 5 classes) of a saved model; writes a confusion-matrix PNG.

    Without --data, the model's own data (its run's config.json, else digits): its test split, else
    the examples the run held out. Another folder given with --data is your test set: all of it is
    scored (its test/ sub-folder, else val/, when it has train/ val/ test/ sub-folders). The model's
    class names (classes.json beside it) must match the data's (--ignore-class-names to score anyway).
    """
    from kerascnn.inference.apply import evaluate as run_evaluate

    cfg = _settings(ctx, EvaluateConfig, model, config_file, print_config, opts)
    if cfg is None:
        return
    if cv is not None or epochs is not None:
        return _cross_validate(cfg, cv, epochs, as_json)
    r = run_evaluate(cfg.model, cfg.data, data_dir=cfg.data_dir, split=cfg.split, batch_size=cfg.batch_size,
                     out=cfg.out, ignore_class_names=cfg.ignore_class_names, tta=cfg.tta, ensemble=cfg.ensemble,
                     text_column=cfg.text_column, label_column=cfg.label_column,
                     label_threshold=cfg.label_threshold)
    if as_json:
        import json

        click.echo(json.dumps(r.to_json(), indent=1, ensure_ascii=False))
        return
    for m in r.members:
        click.echo(f"  {m['model']}: loss {m['loss']:.4f}   top-1 {m['top1']:.2%}{_top5(m['top5'])}")
    if r.members:
        click.echo(f"ensemble of {len(r.members)}" + (f", {r.tta} TTA" if r.tta != "none" else "") + ":")
    elif r.tta != "none":
        click.echo(f"{r.tta} TTA:")
    click.echo(f"{r.data} ({r.split} split): examples {r.count}   loss {r.loss:.4f}   top-1 {r.top1:.2%}"
               f"{_top5(r.top5)}")
    if r.by_type:  # data with question types (image+question): top-1 per type and group
        from kerascnn.data.by_type import format_breakdown

        click.echo(format_breakdown(r.by_type, r.by_group))
    if r.confusion_png or r.class_names:  # none for a class per time step (audio's next sample)
        click.echo(f"Confusion matrix: {r.confusion_png}")


def _top5(value) -> str:
    # None: 5 classes or fewer, where top-5 is always 100% and says nothing.
    return "" if value is None else f"   top-5 {value:.2%}"


def _cross_validate(cfg: EvaluateConfig, k, epochs, as_json: bool) -> None:
    """`evaluate --cv K`: the folds' scores and their mean +- std (kerascnn.inference.cv)."""
    from kerascnn.errors import SettingError
    from kerascnn.inference.cv import cross_validate

    if k is None:
        raise SettingError("epochs", "--epochs is for --cv K (each fold's training); evaluate alone trains nothing.")
    unused = [f"--{n.replace('_', '-')}" for n in ("split", "tta", "ensemble", "ignore_class_names")
              if getattr(cfg, n) not in (None, (), False, "none")]
    if unused:
        raise SettingError("cv", f"--cv scores each fold's own test split with its own model; it takes no "
                                 f"{', '.join(unused)}.")
    r = cross_validate(cfg.model, k, data=cfg.data, data_dir=cfg.data_dir, epochs=epochs, out=cfg.out,
                       batch_size=cfg.batch_size)
    if as_json:
        import json

        click.echo(json.dumps(r.to_json(), indent=1, ensure_ascii=False))
        return
    for f in r.folds:
        click.echo(f"fold {f.fold}: examples {f.examples}   loss {f.loss:.4f}   top-1 {f.top1:.2%}   "
                   f"({f.seconds:.0f} s, {f.run_dir})")
    click.echo(f"{r.data}: {len(r.folds)}-fold accuracy {r.mean:.2%} +- {r.std:.2%}")


@main.command()
@click.argument("model", type=click.Path(dir_okay=False), metavar="MODEL.keras")
@click.argument("paths", nargs=-1, metavar="IMAGE_OR_FOLDER...")
@settings_options(PredictConfig, ["top_k", "batch_size"])
@click.option("--text", "texts", multiple=True, metavar="TEXT",
              help="A text to classify (text models; repeatable). FILE.txt arguments give one text a line.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@config_options
@click.pass_context
@needs_tensorflow
def predict(ctx, model, paths, texts, fmt, config_file, print_config, **opts):
    """Top-k classes (with names) for image files and folders, or for texts (a text model: --text, or
    FILE.txt with one text a line)."""
    import json

    from kerascnn.inference.apply import predict as run_predict

    cfg = _settings(ctx, PredictConfig, model, config_file, print_config, opts)
    if cfg is None:
        return
    with decoding_quietly():  # the library logs one summary of the skipped files
        preds, _ = run_predict(cfg.model, paths, texts=texts, top_k=cfg.top_k, batch_size=cfg.batch_size)
    if fmt == "json":
        click.echo(json.dumps([{"file": p.file, "top": [{"class": c, "probability": round(q, 6)} for c, q in p.top]}
                               for p in preds], indent=1, ensure_ascii=False))
    else:
        for p in preds:
            click.echo(f"{p.file}: " + ", ".join(f"{c} {q:.1%}" for c, q in p.top))


@main.command("export")
@click.argument("model", type=click.Path(dir_okay=False), metavar="MODEL.keras")
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS),
              default="savedmodel", show_default=True)
@click.option("--calibration-data", default=None, metavar="SPEC",
              help="Images (a --data spec) that calibrate int8 and measure the accuracy of the export against "
                   "the Keras model; needed for tflite-int8. [default: random images, for the float check]")
@click.option("-o", "--out", required=True, type=click.Path(), help="The SavedModel folder, .tflite or .onnx file.")
@click.pass_context
@needs_tensorflow
def export_model(ctx, model, fmt, calibration_data, out):
    """A model for serving: it takes raw uint8 images (preprocessing inside), class names travel along,
    and the export is checked against the Keras model on the spot."""
    from kerascnn.inference.export import FLOAT_TOLERANCE, export

    ctx.meta.setdefault("kerascnn.param_hints", {}).update(model="MODEL.keras")
    r = export(model, out, format=fmt, calibration_data=calibration_data)
    click.echo(f"Wrote {r.path} ({r.format})")
    if r.max_abs_diff is not None:
        click.echo(f"check: largest difference from the Keras model's probabilities {r.max_abs_diff:.2g} on "
                   f"{r.checked_images} images (tolerance {FLOAT_TOLERANCE:g})")
    if r.top1_drop is not None:
        click.echo(f"top-1 on {r.checked_images} calibration images: Keras {r.keras_top1:.2%}, {r.format} "
                   f"{r.export_top1:.2%} (drop {r.top1_drop:+.2%})")
    for note in r.notes:
        click.echo(f"note: {note}")
