"""`kerascnn audit`: what is in an image folder, before training on it."""
from __future__ import annotations

import click

from kerascnn.cli import main, needs_tensorflow
from kerascnn.cli.options import parse_shape


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False), metavar="FOLDER")
@click.option("--model", "-m", default=None, metavar="NAME",
              help="The network the folder is for: its input size decides which images are far too small. "
                   "[default: finetune's model, mobilenet_v2]")
@click.option("--input-shape", callback=parse_shape, default=None, metavar="H,W,C",
              help="The input size instead of a model's.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@needs_tensorflow
def audit(folder, model, input_shape, as_json):
    """Class counts, unusable files, duplicate images (also across train/ val/ test/), images far
    smaller than the model's input, and class imbalance with the class weights it calls for."""
    import json

    from kerascnn.data.audit import audit_folder

    if input_shape is None:
        from kerascnn.apps.transfer_learning import FINETUNE_DEFAULTS
        from kerascnn.models.transfer import input_shape_for

        input_shape = input_shape_for(model or FINETUNE_DEFAULTS["model"])
    report = audit_folder(folder, input_shape)
    click.echo(json.dumps(report.to_json(), indent=1, ensure_ascii=False) if as_json else report.format(), nl=as_json)
