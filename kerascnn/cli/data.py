"""`kerascnn audit`: what is in an image folder or in text data, before training on it."""
from __future__ import annotations

import os

import click

from kerascnn.cli import main, needs_tensorflow
from kerascnn.cli.options import parse_shape, settings_options
from kerascnn.config import DataConfig


@main.command()
@click.argument("data", metavar="FOLDER|SPEC")
@click.option("--model", "-m", default=None, metavar="NAME",
              help="The network the folder is for: its input size decides which images are far too small. "
                   "[default: finetune's model, mobilenet_v2]")
@click.option("--input-shape", callback=parse_shape, default=None, metavar="H,W,C",
              help="The input size instead of a model's.")
@settings_options(DataConfig, ["text_column", "label_column", "label_threshold"])
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@needs_tensorflow
def audit(data, model, input_shape, text_column, label_column, label_threshold, as_json):
    """Image folders: class counts, unusable files, duplicate images (also across train/ val/ test/),
    images far smaller than the model's input, and class imbalance with the class weights it calls for.
    Text data (tsv:FILE, csv:FILE, a folder of .txt class folders, imdb, tfds:imdb_reviews): class
    counts, words a text, duplicate texts (also across splits), lines not UTF-8, empty texts."""
    import json

    from kerascnn.data.kinds import spec_kind

    if spec_kind(data) == "text":
        from kerascnn.data.text_audit import audit_text

        cfg = DataConfig(spec=data, val_split=0.0, text_column=text_column, label_column=label_column,
                         label_threshold=label_threshold)
        report = audit_text(cfg)
    else:
        if not os.path.isdir(os.path.expanduser(data)):
            raise click.BadParameter(f"{data} is not a folder (nor text data: tsv:FILE, csv:FILE, imdb, "
                                     f"tfds:imdb_reviews).", param_hint="FOLDER|SPEC")
        from kerascnn.data.audit import audit_folder

        if input_shape is None:
            from kerascnn.apps.transfer_learning import FINETUNE_DEFAULTS
            from kerascnn.models.transfer import input_shape_for

            input_shape = input_shape_for(model or FINETUNE_DEFAULTS["model"])
        report = audit_folder(os.path.expanduser(data), input_shape)
    click.echo(json.dumps(report.to_json(), indent=1, ensure_ascii=False) if as_json else report.format(), nl=as_json)
