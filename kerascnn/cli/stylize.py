"""`kerascnn stylize`: style transfer by optimisation (kerascnn.apps.style_transfer), every
StylizeConfig setting a flag; `kerascnn stylize train` / `apply`: the fast multi-style network
(kerascnn.apps.fast_style)."""
from __future__ import annotations

import click

from kerascnn.cli import inputs_first, main, needs_tensorflow, resolve_flags
from kerascnn.cli.options import config_options, imagenet_preflight, settings_options


def _config_class():
    from kerascnn.apps.style_transfer import StylizeConfig

    return StylizeConfig


_HINTS = {"content": "CONTENT", "style": "STYLE", "out": "-o/--out"}


@main.command()
@click.argument("content", required=False, type=click.Path(dir_okay=False), metavar="CONTENT")
@click.argument("style", nargs=-1, type=click.Path(dir_okay=False), metavar="STYLE [STYLE ...]")
@click.option("-o", "--out", type=click.Path(dir_okay=False), default=None, metavar="OUT.jpg",
              help="The picture (.jpg/.png); OUT.json beside it records every setting and the quality figures.")
@settings_options(_config_class())
@config_options
@needs_tensorflow(preflight=inputs_first(
    imagenet_preflight(_config_class), "give CONTENT, at least one STYLE and -o OUT.jpg (or --print-config).",
    lambda content=None, style=(), out=None, **_: content is not None and style and out is not None,
    _HINTS, images=("content", "style")))
def stylize(content, style, out, config_file, print_config, **opts):
    """Paint CONTENT in the style of STYLE (Gatys et al. 2016); several styles blend (--style-blend).

    L-BFGS on VGG19 features by default, coarse to fine from --start-size up to --size, in tiles
    beyond --tile pixels (any size runs). --preserve-colors keeps the photo's colours. The quality
    figures (style and content distance, next to the photo's own) are printed and saved in OUT.json.
    Offline: --model vgg16 --weights vgg16_notop.weights.h5.  Redo a picture: --config OUT.json.

    The fast network: `kerascnn stylize train --help`, `kerascnn stylize apply --help`.
    """
    from kerascnn.apps import style_transfer

    resolved = resolve_flags(style_transfer.resolve, opts, config_file, print_config, _HINTS)
    if resolved is None:
        return
    written, record = style_transfer.stylize_file(content, style, out, resolved=resolved)
    click.echo(f"Stylized: {written}  ({record['seconds']:.0f} s, {record['precision']}; settings and figures: "
               f"{written.with_suffix('.json')})")
    click.echo(style_transfer.summary(record["figures"]))


def _train_class():
    from kerascnn.apps.fast_style import FastStyleConfig

    return FastStyleConfig


def _apply_class():
    from kerascnn.apps.fast_style import ApplyConfig

    return ApplyConfig


_TRAIN_HINTS = {"styles": "--styles", "content_dir": "--content-dir", "out": "-o/--out"}


@main.command("stylize-train")
@click.argument("styles", nargs=-1, type=click.Path(dir_okay=False), metavar="[--styles] STYLE...")
@click.option("--styles", "styles_flag", is_flag=True, default=False,
              help="Marks the style images that follow (optional: they may also come last).")
@click.option("--content-dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="A folder of your photos (any layout, any image format) to train on.")
@click.option("-o", "--out", type=click.Path(dir_okay=False), default=None, metavar="STYLES.keras",
              help="The trained network; OUT.json beside it records settings and losses, OUT.run/ its checkpoints.")
@settings_options(_train_class(), app="stylize-train")
@config_options
@needs_tensorflow(preflight=inputs_first(
    imagenet_preflight(_train_class),
    "give --styles STYLE..., --content-dir DIR and -o OUT.keras (or --print-config).",
    lambda styles=(), content_dir=None, out=None, **_: styles and content_dir is not None and out is not None,
    _TRAIN_HINTS, images=("styles",), folders=("content_dir",)))
def stylize_train(styles, styles_flag, content_dir, out, config_file, print_config, **opts):
    """Train one fast network for several styles (Dumoulin et al. 2017): `kerascnn stylize train
    --styles a.jpg b.jpg --content-dir photos/ -o styles.keras`.

    Conditional instance normalisation: every style shares the network and has its own
    normalisation parameters, so styles blend. Checkpoints every --checkpoint-every steps; run the
    same command again after an interruption and it resumes. Offline: --model vgg16 --weights
    vgg16_notop.weights.h5.  Then: kerascnn stylize apply styles.keras photo.jpg --style NAME.
    """
    from kerascnn.apps import fast_style

    resolved = resolve_flags(fast_style.resolve, opts, config_file, print_config, _TRAIN_HINTS)
    if resolved is None:
        return
    record = fast_style.train(styles, content_dir, out, resolved=resolved)
    last = record["history"][-1] if record["history"] else {}
    click.echo(f"Trained: {out}  ({len(record['styles'])} styles: {', '.join(record['styles'])}; "
               f"{record['steps']} steps, {record['seconds']:.0f} s"
               + (f"; loss {last['loss']:.3f}: content {last['content']:.3f}, style {last['style']:.3f}" if last
                  else "") + ")")


@main.command("stylize-apply")
@click.argument("model", type=click.Path(dir_okay=False), metavar="STYLES.keras")
@click.argument("photo", required=False, type=click.Path(), metavar="PHOTO|DIR")
@click.option("-o", "--out", type=click.Path(), default=None, metavar="OUT.jpg|DIR",
              help="The painted photo, or a folder for a folder of photos.")
@click.option("--list-styles", is_flag=True, default=False, help="List the network's styles and exit.")
@settings_options(_apply_class(), app="stylize-apply")
@config_options
@needs_tensorflow()
def stylize_apply(model, photo, out, list_styles, config_file, print_config, **opts):
    """Paint PHOTO (or every photo in DIR) with a network from `kerascnn stylize train`, in one pass.

    --style NAME|INDEX, or --blend 3:0.5,7:0.5 to mix styles; --preserve-colors; any size.
    """
    from kerascnn.apps import fast_style

    resolved = resolve_flags(fast_style.resolve_apply, opts, config_file, print_config,
                             {"model": "STYLES.keras", "photo": "PHOTO", "out": "-o/--out"})
    if resolved is None:
        return
    painter = fast_style.Stylizer(model)
    if list_styles:
        for i, name in enumerate(painter.names):
            click.echo(f"{i:3d}  {name}")
        return
    if photo is None or out is None:
        raise click.UsageError("give PHOTO (or a folder) and -o OUT.jpg (or a folder), or --list-styles.")
    written = fast_style.apply_files(painter, photo, out, resolved=resolved)
    click.echo(f"Stylized: {written[0]}" if len(written) == 1 else f"Stylized {len(written)} photos into {out}")
