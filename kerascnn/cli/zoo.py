"""`kerascnn models` and `kerascnn summary`: the zoo and what each network computes."""
from __future__ import annotations

import click

from kerascnn.cli import main, needs_tensorflow
from kerascnn.cli.options import parse_model_args, parse_shape


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
    else:
        widths = [max(len(str(x)) for x in col) for col in zip(header, *table)]
        for t in [header, *table]:
            click.echo("  ".join(str(x).rjust(w) if i in (2, 3) else str(x).ljust(w)
                                 for i, (x, w) in enumerate(zip(t, widths))).rstrip())
    for r in rows:
        if r.default_input == "text":
            click.echo("\n" + _text_params_note(r.name))


def _text_params_note(name: str) -> str:
    """What a text model's count in the table is: its placeholder vocabulary's (the real one comes
    from the training data), and how to count for another vocabulary and vector size."""
    import inspect

    from kerascnn.models.registry import get_spec

    params = inspect.signature(get_spec(name).builder).parameters
    size = params["vocabulary_size"].default if "vocabulary_size" in params else None
    at = f" of {size:,} tokens" if isinstance(size, int) else ""
    return (f"{name}: parameters at a placeholder vocabulary{at}; for yours: kerascnn summary --model {name} "
            f"--model-arg vocabulary_size=V --model-arg embedding_dim=D")


# --- summary command (analysis) ---

def _summary_choices(what: str):
    # The names live in kerascnn.analysis, which imports no TensorFlow until it builds a model.
    from kerascnn.analysis import BLOCKS, FORMATS

    return list({"blocks": BLOCKS, "formats": FORMATS}[what])


@main.command()
@click.option("--model", "model_name", default=None, metavar="NAME", help="A registered model (see `kerascnn models`).")
@click.option("--block", type=click.Choice(_summary_choices("blocks")), default=None,
              help="One of the lectures' Inception blocks on 28x28x256, instead of a model.")
@click.option("--input-shape", callback=parse_shape, default=None, metavar="H,W,C", help="Input size; default: the model's own.")
@click.option("--num-classes", type=click.IntRange(min=1), default=None,
              help="Classifier outputs; default: the model's (1000 for ImageNet nets).")
@click.option("--model-arg", "model_args", multiple=True, callback=parse_model_args, metavar="KEY=VALUE",
              help="Extra builder arguments, e.g. batch_norm=true; for kim_cnn vocabulary_size=18767 "
                   "embedding_dim=300 variant=multichannel. Repeatable.")
@click.option("--format", "fmt", type=click.Choice(_summary_choices("formats")), default="table", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, writable=True), default=None, help="Write to FILE, not stdout.")
@needs_tensorflow
def summary(model_name, block, input_shape, num_classes, model_args, fmt, out):
    """Per layer: output volume, parameters, multiply-adds and receptive field; then the totals (for
    one image, or for a text model one sentence of its sequence_length tokens)."""
    if (model_name is None) == (block is None):
        raise click.UsageError("Give exactly one of --model NAME or --block NAME.")
    if block and (input_shape or num_classes or model_args):
        raise click.UsageError("--input-shape, --num-classes and --model-arg apply to --model only; blocks have a "
                               "fixed input.")
    from kerascnn.analysis import block_summary, format_summary, summary_for

    if model_args:
        from kerascnn.models.registry import get_spec
        from kerascnn.training.configure import check_model_args

        check_model_args(get_spec(model_name), model_args)  # one line for an unknown key, not a TypeError
    result = block_summary(block) if block else summary_for(model_name, input_shape, num_classes,
                                                            **(model_args or {}))
    text = format_summary(result, fmt)
    if out is None:
        click.echo(text, nl=False)
        return
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    click.echo(f"Wrote {out}", err=True)


@main.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def recipes(fmt):
    """The papers' training recipes that `fit --recipe NAME` applies (any value can be overridden by a flag)."""
    import json

    from kerascnn.recipes import RECIPES

    if fmt == "json":
        click.echo(json.dumps({n: {"paper": r.paper, "settings": dict(r.settings), "notes": list(r.notes)}
                               for n, r in RECIPES.items()}, indent=1))
        return
    for r in RECIPES.values():
        click.echo(f"{r.name}  ({r.paper})")
        click.echo("  " + ", ".join(f"{k}={_show(v)}" for k, v in r.settings.items()))
        for note in r.notes:
            click.echo(f"  - {note}")


def _show(value) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return str(value).lower() if isinstance(value, bool) else str(value)
