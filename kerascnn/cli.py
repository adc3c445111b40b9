"""The `kerascnn` command line: each command parses its flags, then calls one library function.

TensorFlow is imported inside the commands so that `kerascnn --help` answers at once. Errors the
user can fix (`kerascnn.errors.UserError`) print one line and exit 1; bad flags exit 2 (click);
`--debug` shows the full traceback of anything.
"""
from __future__ import annotations

import functools
import os
import sys
from typing import Optional

import click

from kerascnn import __version__
from kerascnn.errors import UserError


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


def needs_tensorflow(fn):
    """Decorator for commands that run TensorFlow: quiet import unless --debug."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if not click.get_current_context().meta.get("kerascnn.debug"):
            _import_tensorflow_quietly()
        return fn(*args, **kwargs)

    return wrapper


class _Group(click.Group):
    """Turns UserError into a one-line message (exit 1) unless --debug is on."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
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


# --- shared option groups (datasette style: options as decorators) ---

def _parse_shape(ctx, param, value: Optional[str]):
    if value is None:
        return None
    try:
        shape = tuple(int(v) for v in value.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise click.BadParameter(f"expected H,W,C such as 32,32,1; got {value!r}", ctx=ctx, param=param)
    return shape


def _parse_model_args(ctx, param, values):
    out = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.isidentifier():
            raise click.BadParameter(f"expected KEY=VALUE such as lrn=true or k=128; got {item!r}", ctx=ctx, param=param)
        low = raw.lower()
        if low in ("true", "false"):
            out[key] = low == "true"
        else:
            try:
                out[key] = int(raw)
            except ValueError:
                try:
                    out[key] = float(raw)
                except ValueError:
                    out[key] = raw
    return out


def _fraction(lo: float = 0.0, hi: float = 1.0):
    return click.FloatRange(lo, hi)


def data_options(fn):
    """--data / --data-dir, shared by every command that reads a data set."""
    from kerascnn.config import DataConfig

    d = DataConfig()
    fn = click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                      help="A prepared local TFDS directory (for tfds: specs).")(fn)
    fn = click.option("--data", "data", default=None, metavar="SPEC",
                      help=f"digits (default, embedded) | mnist | fashion_mnist | cifar10 | cifar100 | "
                           f"tfds:NAME[:SPLIT] | idx:DIR | a folder of class sub-folders.  [default: {d.spec}]")(fn)
    return fn


def _show(field: str):
    from kerascnn.config import TrainConfig

    return str(getattr(TrainConfig(), field))


TRAIN_OPTIONS = [
    # Order = order in --help.
    click.option("--model", "-m", default=None, help="A registered model (see `kerascnn models`).  [default: lenet5; finetune: mobilenet_v2]"),
    data_options,
    click.option("--val-split", type=_fraction(0.0, 0.9), default=None, help="Held-out fraction when the data has no validation split.  [default: 0.1]"),
    click.option("--input-shape", callback=_parse_shape, default=None, metavar="H,W,C", help="Input size; default: the model's own."),
    click.option("--weights", default=None, metavar="imagenet|PATH", help="Start from pretrained weights (a name or a .weights.h5/.keras file)."),
    click.option("--freeze", type=click.Choice(["none", "backbone"]), default=None, help="backbone: train only the classifier on top of pretrained features.  [default: none; finetune: backbone]"),
    click.option("--model-arg", "model_args", multiple=True, callback=_parse_model_args, metavar="KEY=VALUE", help="Extra builder argument, e.g. lrn=true, batch_norm=true, aux_logits=true, k=128 (repeatable)."),
    click.option("--epochs", type=click.IntRange(1), default=None, help=f"[default: {_show('epochs')}]"),
    click.option("--batch-size", type=click.IntRange(1), default=None, help=f"Global batch size.  [default: {_show('batch_size')}]"),
    click.option("--optimizer", type=click.Choice(["sgd", "adam", "adamw"]), default=None, help=f"[default: {_show('optimizer')}]"),
    click.option("--lr", type=click.FloatRange(0, min_open=True), default=None, help="Peak learning rate; default per optimizer (sgd 0.01, adam/adamw 1e-3)."),
    click.option("--momentum", type=_fraction(0.0, 0.999), default=None, help="SGD momentum (Nesterov).  [default: 0.9]"),
    click.option("--weight-decay", type=click.FloatRange(0), default=None, help="Decoupled weight decay (AlexNet/VGG: 5e-4).  [default: 0]"),
    click.option("--schedule", type=click.Choice(["constant", "step", "plateau", "cosine"]), default=None, help=f"LR schedule: step = /10 every --step-epochs; plateau = /10 when val loss stalls.  [default: {_show('schedule')}]"),
    click.option("--warmup-epochs", type=click.FloatRange(0), default=None, help="Linear warm-up before cosine decay.  [default: 0]"),
    click.option("--step-epochs", type=click.IntRange(1), default=None, help="Epochs between /10 drops (step schedule).  [default: 30]"),
    click.option("--label-smoothing", type=_fraction(0.0, 0.5), default=None, help="[default: 0]"),
    click.option("--early-stopping", type=click.IntRange(0), default=None, metavar="PATIENCE", help="Stop after this many epochs without val-loss progress; 0 = off.  [default: 0]"),
    click.option("--aux-weight", type=click.FloatRange(0), default=None, help="Loss weight of auxiliary classifiers (GoogLeNet/Inception v3 with aux_logits=true).  [default: 0.3]"),
    click.option("--hflip", is_flag=True, default=None, help="Augment: random left-right flips."),
    click.option("--vflip", is_flag=True, default=None, help="Augment: random up-down flips."),
    click.option("--crop", type=_fraction(0.0, 0.9), default=None, help="Augment: random crop losing up to this fraction of each side, resized back."),
    click.option("--translate", type=_fraction(0.0, 0.5), default=None, help="Augment: random shift up to this fraction of the size."),
    click.option("--pca-jitter", type=_fraction(0.0, 1.0), default=None, help="Augment: AlexNet PCA colour jitter std (paper: 0.1)."),
    click.option("--precision", type=click.Choice(["auto", "float32", "mixed_float16", "mixed_bfloat16"]), default=None, help="Training arithmetic; auto = mixed_bfloat16 where the hardware computes bfloat16 natively (AVX512-BF16/AMX CPUs, GPUs of compute capability 8+), else float32. The saved model is float32 either way.  [default: auto]"),
    click.option("--strategy", type=click.Choice(["auto", "default", "mirrored", "multiworker", "tpu"]), default=None, help="tf.distribute strategy; auto picks from the machine (TF_CONFIG, GPUs).  [default: auto]"),
    click.option("--steps-per-execution", type=click.IntRange(1), default=None, help=f"Training steps per compiled call (1 under mirrored/multiworker).  [default: {_show('steps_per_execution')}]"),
    click.option("--checkpoint-budget", type=_fraction(0.0, 1.0), default=None, metavar="FRACTION", help=f"Most of the training time the checkpoints (backup for --resume, best.keras) may take; with short epochs they are then written every few epochs, always after the first two and the last. 0 = every epoch.  [default: {_show('checkpoint_budget')}]"),
    click.option("--cache", type=click.Choice(["auto", "memory", "none"]), default=None, help="Cache decoded images in memory.  [default: auto]"),
    click.option("--seed", type=int, default=None, help="[default: 1337]"),
    click.option("--out", type=click.Path(file_okay=False), default=None, help="Run folder; default runs/<model>-<data>-<time>."),
]


def train_options(fn):
    """The training flags shared by `fit` and `finetune` (None = keep the configured default)."""
    for option in reversed(TRAIN_OPTIONS):
        fn = option(fn)
    return fn


@main.command()
@train_options
@click.option("--resume", type=click.Path(exists=True, file_okay=False), default=None, metavar="RUN_DIR", help="Continue an interrupted run from its last finished epoch (with --epochs: train further).")
@click.pass_context
@needs_tensorflow
def fit(ctx: click.Context, resume, **opts):
    """Train a model; writes a run folder (config, history, curves, checkpoints, model.keras)."""
    from kerascnn.config import TrainConfig

    if resume:
        extra = [k for k, v in opts.items() if v not in (None, {}, ()) and k != "epochs"]
        if extra:
            flags = ", ".join("--" + k.replace("_", "-") for k in extra)
            raise click.UsageError(f"--resume takes the run's own config; drop {flags} (only --epochs may change).")
        cfg = None
    else:
        from kerascnn.training.configure import make_config

        changes = _config_changes(opts)
        cfg = make_config(changes.pop("model", None) or TrainConfig.model, **changes)
    from kerascnn.training import fit as run_fit

    result = run_fit(cfg or TrainConfig(), resume=resume, epochs=opts.get("epochs") if resume else None,
                     verbose=_verbosity())
    _report(result)


def _config_changes(opts: dict) -> dict:
    """CLI option values -> `override` keys of TrainConfig (dotted for the nested data/augment)."""
    opts = dict(opts)
    data_keys = {"data": "spec", "data_dir": "data_dir", "val_split": "val_split", "cache": "cache", "seed": "seed"}
    aug_keys = ("hflip", "vflip", "crop", "translate", "pca_jitter")
    changes = {f"data.{v}": opts.pop(k) if k != "seed" else opts.get("seed") for k, v in data_keys.items()}
    changes.update({f"augment.{k}": opts.pop(k) for k in aug_keys})
    changes.update({k: v for k, v in opts.items() if v not in ({}, ())})
    return changes


def _verbosity() -> int:
    # The live progress bar where a person watches; one line per epoch in logs and CI.
    return 1 if sys.stdout.isatty() else 2


def _report(result) -> None:
    final = result.final
    acc = final.get("val_accuracy", final.get("val_predictions_accuracy"))
    click.echo(f"Run folder: {result.run_dir}" + (f"  (val top-1 {float(acc):.2%})" if acc is not None else ""))


@main.command()
@train_options
@needs_tensorflow
def finetune(**opts):
    """Transfer learning: a pretrained backbone (--weights) and a new classifier for your --data.

    By default only the classifier trains (--freeze backbone); --freeze none trains everything.
    Example, offline: --model mobilenet_v2 --weights mobilenet_v2_imagenet_notop.weights.h5 --data FOLDER
    """
    from apps.transfer_learning import finetune as run_finetune

    if not opts.get("weights"):
        raise click.UsageError("finetune needs --weights imagenet or --weights PATH (a pretrained backbone).")
    changes = _config_changes(opts)
    result = run_finetune(changes.pop("model", None) or "mobilenet_v2", changes.pop("weights"),
                          verbose=_verbosity(), **changes)
    _report(result)


@main.command()
@click.argument("model_path", type=click.Path(dir_okay=False), metavar="MODEL.keras")
@data_options
@click.option("--batch-size", type=click.IntRange(1), default=128, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Confusion-matrix PNG; default: confusion.png beside the model.")
@needs_tensorflow
def evaluate(model_path, data, data_dir, batch_size, out):
    """Loss, top-1 and top-5 of a saved model; writes a confusion-matrix PNG."""
    from kerascnn.training import evaluate as run_evaluate

    r = run_evaluate(model_path, data, data_dir=data_dir, batch_size=batch_size, out=out)
    click.echo(f"examples {r.count}   loss {r.loss:.4f}   top-1 {r.top1:.2%}   top-5 {r.top5:.2%}")
    click.echo(f"Confusion matrix: {r.confusion_png}")


@main.command()
@click.argument("model_path", type=click.Path(dir_okay=False), metavar="MODEL.keras")
@click.argument("paths", nargs=-1, required=True, metavar="IMAGE_OR_FOLDER...")
@click.option("--top-k", "-k", type=click.IntRange(1), default=5, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@needs_tensorflow
def predict(model_path, paths, top_k, fmt):
    """Top-k classes (with names) for image files and folders."""
    import json

    from kerascnn.training import predict as run_predict

    preds, skipped = run_predict(model_path, paths, top_k=top_k)
    if fmt == "json":
        click.echo(json.dumps([{"file": p.file, "top": [{"class": c, "probability": round(q, 6)} for c, q in p.top]}
                               for p in preds], indent=1, ensure_ascii=False))
    else:
        for p in preds:
            click.echo(f"{p.file}: " + ", ".join(f"{c} {q:.1%}" for c, q in p.top))
    if skipped:
        click.echo(f"skipped {len(skipped)} file(s): " + "; ".join(f"{f} ({why})" for f, why in skipped[:5]), err=True)


@main.command()
@click.option("--family", default=None, help="Only this family (lenet, vgg, resnet, inception, ...).")
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "json"]), default="table", show_default=True)
@needs_tensorflow
def models(family, fmt):
    """List every registered model: parameters, default input, paper, pretrained weights."""
    import json

    from kerascnn.models import list_models
    from kerascnn.models.catalog import as_dicts, catalog

    names = list_models(family)
    if not names:
        raise click.BadParameter(f"no model of family {family!r}", param_hint="--family")
    rows = catalog(names, progress=lambda n: click.echo(f"counting parameters of {n} ...", err=True))
    if fmt == "json":
        click.echo(json.dumps(as_dicts(rows), indent=1))
        return
    header = ("model", "family", "params", "classes", "input", "paper", "pretrained")
    table = [(r.name, r.family, f"{r.params:,}", str(r.classes), r.default_input, r.paper, r.pretrained)
             for r in rows]
    if fmt == "markdown":
        click.echo("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
        for t in table:
            click.echo("| " + " | ".join(t) + " |")
        return
    widths = [max(len(str(x)) for x in col) for col in zip(header, *table)]
    for t in [header, *table]:
        click.echo("  ".join(str(x).rjust(w) if i in (2, 3) else str(x).ljust(w)
                             for i, (x, w) in enumerate(zip(t, widths))).rstrip())


# --- summary command (analysis) ---

def _summary_choices(what: str):
    # The names live in kerascnn.analysis, which imports no TensorFlow until it builds a model.
    from kerascnn.analysis import BLOCKS, FORMATS

    return list({"blocks": BLOCKS, "formats": FORMATS}[what])


@main.command()
@click.option("--model", "model_name", default=None, metavar="NAME", help="A registered model (see `kerascnn models`).")
@click.option("--block", type=click.Choice(_summary_choices("blocks")), default=None,
              help="One of the lectures' Inception blocks on 28x28x256, instead of a model.")
@click.option("--input-shape", callback=_parse_shape, default=None, metavar="H,W,C", help="Input size; default: the model's own.")
@click.option("--num-classes", type=click.IntRange(min=1), default=None, help="Classifier outputs; default: 1000.")
@click.option("--format", "fmt", type=click.Choice(_summary_choices("formats")), default="table", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, writable=True), default=None, help="Write to FILE, not stdout.")
@needs_tensorflow
def summary(model_name, block, input_shape, num_classes, fmt, out):
    """Per layer: output volume, parameters, multiply-adds and receptive field; then the totals."""
    if (model_name is None) == (block is None):
        raise click.UsageError("Give exactly one of --model NAME or --block NAME.")
    if block and (input_shape or num_classes):
        raise click.UsageError("--input-shape and --num-classes apply to --model only; blocks have a fixed input.")
    from kerascnn.analysis import block_summary, format_summary, summary_for

    result = block_summary(block) if block else summary_for(model_name, input_shape, num_classes)
    text = format_summary(result, fmt)
    if out is None:
        click.echo(text, nl=False)
        return
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    click.echo(f"Wrote {out}", err=True)
