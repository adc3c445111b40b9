"""`kerascnn vqa ask`: ask a saved image+question model questions about an image."""
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
