"""`kerascnn vqa ask`: ask a saved image+question model questions about an image; `kerascnn vqa scene`:
a Sort-of-CLEVR scene to ask about, with its questions and their true answers."""
from __future__ import annotations

import click

from kerascnn.cli import main, needs_tensorflow


@main.group()
def vqa():
    """Visual question answering with image+question models (vqa_cnn_rn, vqa_cnn_mlp; docs/vqa.md)."""


@vqa.command()
@click.argument("model", type=click.Path(dir_okay=False), metavar="MODEL.keras")
@click.argument("image", type=click.Path(dir_okay=False), metavar="IMAGE")
@click.argument("question", required=False, metavar="QUESTION")
@click.option("--question", "-q", "more", multiple=True, metavar="TEXT", help="Another question (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of {question, answer, probability}.")
@needs_tensorflow
def ask(model, image, question, more, as_json):
    """Answer QUESTION (and each --question) about IMAGE with MODEL: the answer and its probability.

    \b
    kerascnn vqa ask runs/vqa_cnn_rn/model.keras scene.png "What is the shape of the red object?"
    """
    import json

    from kerascnn.inference.ask import ask as run_ask

    answers = run_ask(model, image, ([question] if question is not None else []) + list(more))
    if as_json:
        click.echo(json.dumps([a.to_json() for a in answers], indent=1, ensure_ascii=False))
        return
    for a in answers:
        click.echo(f"{a.question} -> {a.answer} ({a.probability:.1%})")


@vqa.command()
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), metavar="SCENE.png",
              help="Where to write the 75x75 scene: a .png (JPEG would blur its exact colours).")
@click.option("--seed", type=click.IntRange(min=0), default=7, show_default=True,
              help="Which scene (the same seed, the same scene). The data's own seeds are 0 (train and "
                   "validation) and 1 (test): others give scenes no model trained on.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of {question, type, relational, answer}.")
def scene(out, seed, as_json):
    """Write a Sort-of-CLEVR scene, generated as `--data sort_of_clevr` generates its images, and print
    its 20 questions with their true answers: what to try `vqa ask` and `visualize vqa` on.

    \b
    kerascnn vqa scene -o scene.png
    kerascnn vqa ask saved_models/vqa_cnn_rn_sort_of_clevr/model.keras scene.png \\
        "What is the shape of the object closest to the red object?"
    """
    import json
    from pathlib import Path

    from kerascnn.data import sort_of_clevr
    from kerascnn.data.imageio import save_image

    if Path(out).suffix.lower() != ".png":
        raise click.BadParameter(f"{out}: write the scene as a .png (a JPEG blurs the colours the questions name).",
                                 param_hint="'-o' / '--out'")
    data = sort_of_clevr.generate(1, seed=seed)
    save_image(out, data.images[0])
    questions = data.questions(0)
    if as_json:
        click.echo(json.dumps([{"question": q.text, "type": q.type, "relational": q.relational, "answer": q.answer}
                               for q in questions], indent=1))
        return
    click.echo(f"wrote {out} (Sort-of-CLEVR, seed {seed}); its questions and their true answers:")
    for q in questions:
        click.echo(f"{q.text} -> {q.answer}")
