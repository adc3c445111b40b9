"""`kerascnn visualize filters|activations|gradcam|maximize|tokens|ngrams|vqa` and `kerascnn report`: see inside
a model."""
from __future__ import annotations

import click

from kerascnn.analysis.configs import (ActivationsConfig, FiltersConfig, GradcamConfig, MaximizeConfig,
                                       NgramsConfig, ReportConfig, TokensConfig, VqaConfig)
from kerascnn.cli import main, needs_tensorflow, print_settings
from kerascnn.cli.options import config_options, given, imagenet_preflight, settings_options

MODEL_ARG = dict(metavar="MODEL")


def _resolve(ctx: click.Context, command: str, config_file, positional: dict, opts: dict, hints: dict):
    """The resolved settings (file < flags, positional arguments included); None once --print-config printed."""
    from kerascnn.analysis.commands import resolve_settings

    ctx.meta.setdefault("kerascnn.param_hints", {}).update(hints)
    resolved = resolve_settings(command, {**given(opts), **positional}, config_file, source="flag")
    return resolved


def _run(ctx, command, config_file, print_config, positional, opts, hints=None):
    from kerascnn.analysis.commands import run

    resolved = _resolve(ctx, command, config_file, positional, opts, {"model": "MODEL", **(hints or {})})
    if print_config:
        print_settings(resolved)
        return
    job, files = run(resolved)
    for f in files:
        click.echo(str(f))


@main.group()
def visualize():
    """See inside a model: filters, activation maps, Grad-CAM, feature visualisation, token saliency, n-grams, VQA.

    MODEL is a registry name (with --weights) or a .keras file. PNGs go to --out (default
    runs/visualize-...), with the resolved settings beside them (settings.json).
    """


@visualize.command()
@click.argument("model", **MODEL_ARG)
@settings_options(FiltersConfig, ["weights", "layer", "normalize", "max_filters", "out"])
@config_options
@click.pass_context
@needs_tensorflow(preflight=imagenet_preflight(FiltersConfig, include_top=True))
def filters(ctx, model, config_file, print_config, **opts):
    """A conv layer's kernels as tiles (the first conv layer by default), as in AlexNet's Figure 3.

    Three-channel kernels are RGB tiles; others one gray tile per input channel, a row per filter.
    """
    _run(ctx, "filters", config_file, print_config, {"model": model}, opts)


@visualize.command()
@click.argument("model", **MODEL_ARG)
@click.argument("image", type=click.Path(dir_okay=False), metavar="IMAGE")
@settings_options(ActivationsConfig, ["weights", "layers", "max_channels", "out"])
@config_options
@click.pass_context
@needs_tensorflow(preflight=imagenet_preflight(ActivationsConfig, include_top=True))
def activations(ctx, model, image, config_file, print_config, **opts):
    """The activation maps of --layers for IMAGE: one PNG per layer, strongest channels first."""
    _run(ctx, "activations", config_file, print_config, {"model": model, "image": image}, opts,
         {"image": "IMAGE"})


@visualize.command()
@click.argument("model", **MODEL_ARG)
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False), metavar="IMAGE...")
@click.option("--class", "target_class", default=None, metavar="N|NAME",
              help="The class to explain, an index or a name. [default: each image's predicted class]")
@settings_options(GradcamConfig, ["weights", "layer", "out"])
@config_options
@click.pass_context
@needs_tensorflow(preflight=imagenet_preflight(GradcamConfig, include_top=True))
def gradcam(ctx, model, images, config_file, print_config, **opts):
    """Grad-CAM and Grad-CAM++ heat maps over each IMAGE, with the predicted classes in the title.

    Works on registry models, keras.applications networks, models trained with `kerascnn fit` or
    `finetune` (nested backbones included) and any .keras file. Default layer: the model's registry
    "cam" layer (its last conv), else its last spatial feature map.
    """
    _run(ctx, "gradcam", config_file, print_config, {"model": model, "images": tuple(images)}, opts,
         {"images": "IMAGE...", "target_class": "--class"})


@visualize.command()
@click.argument("model", **MODEL_ARG)
@settings_options(MaximizeConfig, ["weights", "layer", "channels", "size", "steps", "lr", "jitter", "blur_sigma",
                                   "blur_every", "seed", "out"])
@config_options
@click.pass_context
@needs_tensorflow(preflight=imagenet_preflight(MaximizeConfig, include_top=False))
def maximize(ctx, model, config_file, print_config, **opts):
    """Feature visualisation: images that excite --channels of --layer most, as a grid.

    Gradient ascent on the input with jitter and blur as regularisers.
    """
    _run(ctx, "maximize", config_file, print_config, {"model": model}, opts)


@visualize.command()
@click.argument("model", **MODEL_ARG)
@click.argument("text", metavar="TEXT")
@click.option("--class", "target_class", default=None, metavar="N|NAME",
              help="The class to explain, an index or a name. [default: the predicted class]")
@settings_options(TokensConfig, ["weights", "out"])
@config_options
@click.pass_context
@needs_tensorflow
def tokens(ctx, model, text, config_file, print_config, **opts):
    """Which words of TEXT drove a text model's prediction (kim_cnn): gradient x input per token.

    Prints the tokens as the model's vectorizer sees them, red for the class and blue against on a
    terminal (else `word(+0.12)`), and writes tokens.html, the same as an HTML snippet.
    """
    import sys

    from kerascnn.analysis.commands import explain_tokens
    from kerascnn.analysis.tokens import terminal_line

    resolved = _resolve(ctx, "tokens", config_file, {"model": model, "text": text}, opts,
                        {"model": "MODEL", "text": "TEXT", "target_class": "--class"})
    if print_config:
        print_settings(resolved)
        return
    job, files, (words, scores, probs, target, names) = explain_tokens(resolved)

    def label(i):
        return names[i] if names and i < len(names) else f"class {i}"

    best = int(probs.argmax())
    click.echo(f"predicted {label(best)} (p = {probs[best]:.3f}); gradient x input for {label(target)} "
               f"(p = {probs[target]:.3f}):")
    color = sys.stdout.isatty()
    click.echo(terminal_line(words, scores, color), color=color)
    for f in files:
        click.echo(str(f))


@visualize.command()
@click.argument("model", **MODEL_ARG)
@settings_options(NgramsConfig, ["weights", "data", "split", "text_column", "label_column", "label_threshold",
                                 "filters", "top", "max_examples", "out"])
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of the table.")
@config_options
@click.pass_context
@needs_tensorflow
def ngrams(ctx, model, config_file, print_config, as_json, **opts):
    """The n-grams that excite a text model's strongest filters most (kim_cnn; Kim 2014).

    Reads --split of --data (unset: the model's run's data and its validation split); ranks every
    filter by its mean max activation times the l2 norm of its logits weights; prints each of the
    strongest --filters with its --top distinct n-grams (a window of the filter's width), and
    writes them to ngrams.json.
    """
    import json

    from kerascnn.analysis.commands import find_ngrams
    from kerascnn.analysis.ngrams import format_table

    resolved = _resolve(ctx, "ngrams", config_file, {"model": model}, opts, {"model": "MODEL"})
    if print_config:
        print_settings(resolved)
        return
    job, files, (found, names, record) = find_ngrams(resolved)
    if as_json:
        click.echo(json.dumps(record, indent=2, ensure_ascii=False))
        return
    click.echo(f"{record['sentences']:,} sentences of {record['data']} ({record['split']} split); the "
               f"{len(found)} strongest filters:")
    click.echo(format_table(found, names))
    for f in files:
        click.echo(str(f))


@visualize.command()
@click.argument("model", type=click.Path(dir_okay=False), metavar="MODEL.keras")
@click.argument("image", type=click.Path(dir_okay=False), metavar="IMAGE")
@click.argument("question", metavar="QUESTION")
@settings_options(VqaConfig, ["pairs", "score", "out"])
@click.option("--json", "as_json", is_flag=True, help="Print the answer, the pairs and the cells' heat as JSON.")
@config_options
@click.pass_context
@needs_tensorflow
def vqa(ctx, model, image, question, config_file, print_config, as_json, **opts):
    """Which image cells and object pairs the answer of an image+question model came from.

    CNN + RN (vqa_cnn_rn): the --pairs ordered object pairs with the largest g output (--score norm)
    or contribution to the answer's logit (--score logit), drawn as numbered arrows between the
    cells, and each cell's part in the pairs as a heat map; CNN + MLP (vqa_cnn_mlp): Grad-CAM of the
    answer. Writes a PNG (the question, answer and probability in its title) and vqa.json.

    \b
    kerascnn visualize vqa runs/vqa_cnn_rn/model.keras scene.png "What is the shape of the red object?"
    """
    import json

    from kerascnn.analysis.vqa_explain import explain_command

    resolved = _resolve(ctx, "vqa", config_file, {"model": model, "image": image, "question": question}, opts,
                        {"model": "MODEL.keras", "image": "IMAGE", "question": "QUESTION"})
    if print_config:
        print_settings(resolved)
        return
    job, files, found = explain_command(resolved)
    if as_json:
        click.echo(json.dumps({"files": [str(f) for f in files], **found.to_json()}, indent=1, ensure_ascii=False))
        return
    click.echo(f"{found.question} -> {found.answer} ({found.probability:.1%})")
    for rank, p in enumerate(found.pairs, start=1):
        click.echo(f"  {rank}. object {p.first} (row {p.first_cell[0]}, col {p.first_cell[1]}) -> object "
                   f"{p.second} (row {p.second_cell[0]}, col {p.second_cell[1]}): {p.score:.4g}")
    for f in files:
        click.echo(str(f))


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False), metavar="RUN_DIR")
@settings_options(ReportConfig, ["cam_images", "top_losses", "max_examples", "sentences", "ngram_filters", "out"])
@config_options
@click.pass_context
@needs_tensorflow
def report(ctx, run_dir, config_file, print_config, **opts):
    """One self-contained HTML page for a training run (fit and finetune also write it at the end).

    Settings, training curves, final metrics, confusion matrix, per-class precision / recall / F1, the
    top losses and Grad-CAM on validation images (a text model: validation sentences right and wrong
    with their token saliency, and its strongest filters' n-grams); images embedded, no network needed.
    """
    from kerascnn.analysis.report import write_report
    from kerascnn.settings import Layer, read_settings_file, resolve

    ctx.meta.setdefault("kerascnn.param_hints", {}).update(run_dir="RUN_DIR")
    layers = ([read_settings_file(config_file, ReportConfig)] if config_file else []) + \
        [Layer("flag", {**given(opts), "run_dir": run_dir})]
    resolved = resolve(ReportConfig, layers, "report")
    if print_config:
        print_settings(resolved)
        return
    cfg = resolved.config
    path = write_report(cfg.run_dir, out=cfg.out, cam_images=cfg.cam_images, top_losses=cfg.top_losses,
                        max_examples=cfg.max_examples, sentences=cfg.sentences, ngram_filters=cfg.ngram_filters)
    click.echo(str(path))
