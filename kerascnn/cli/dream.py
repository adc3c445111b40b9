"""`kerascnn dream`: DeepDream on a photo (kerascnn.apps.deep_dream), every DreamConfig setting a flag."""
from __future__ import annotations

import click

from kerascnn.cli import inputs_first, main, needs_tensorflow, resolve_flags
from kerascnn.cli.options import config_options, imagenet_preflight, settings_options


def _config_class():
    from kerascnn.apps.deep_dream import DreamConfig

    return DreamConfig


# --class is spelt by hand: the field is `class_` (a Python keyword otherwise).
_FLAGS = ["model", "weights", "layers", "channels", "octaves", "octave_scale", "steps", "step_size", "tile",
          "jitter", "guide", "preserve_colors", "size", "seed"]
_HINTS = {"image": "IMAGE", "class_": "--class", "class": "--class", "out": "-o/--out"}
_USAGE = "give IMAGE and -o OUT.jpg (or --list-layers / --print-config)."


@main.command()
@click.argument("image", required=False, type=click.Path(dir_okay=False), metavar="IMAGE")
@click.option("-o", "--out", type=click.Path(dir_okay=False), default=None, metavar="OUT.jpg",
              help="The dreamed image (.jpg/.png); OUT.json beside it records every setting.")
@settings_options(_config_class(), _FLAGS)
@click.option("--class", "class_", default=None, metavar="N|NAME",
              help="Class visualisation: raise this ImageNet class's logit (index or name, e.g. 281 or tabby) "
                   "instead of layer activations.")
@click.option("--list-layers", is_flag=True, default=False,
              help="List the model's layers (names for --layers / --channels) and exit.")
@config_options
@needs_tensorflow(preflight=inputs_first(
    imagenet_preflight(lambda: _zoom_class()), _USAGE,  # either command's flags
    lambda image=None, out=None, list_layers=False, **_: list_layers or (image is not None and out is not None),
    _HINTS, images=("image",)))
def dream(image, out, list_layers, config_file, print_config, **opts):
    """DeepDream: make IMAGE excite chosen layers of a network, at several scales (octaves).

    Gradients are computed in randomly shifted tiles (--tile), so any image size runs in bounded
    memory without seams. --layers mixed3:1.0,mixed5:1.5 picks layers and weights (default: the
    model's dream layers), --channels LAYER:12,40 or LAYER:strongest:8 single channels, --guide
    GUIDE.jpg dreams towards another image's features, --class tabby paints an ImageNet class.
    Offline: --model vgg16 --weights vgg16_notop.weights.h5.  Redo a picture: --config OUT.json.
    """
    from kerascnn.apps import deep_dream

    resolved = resolve_flags(deep_dream.resolve, opts, config_file, print_config, _HINTS)
    if resolved is None:
        return
    if list_layers:
        _list_layers(resolved.config)
        return
    written = deep_dream.dream_file(image, out, resolved=resolved)
    click.echo(f"Dream: {written}  (settings: {deep_dream.settings_path(written)})")


def _list_layers(cfg) -> None:
    from kerascnn.apps.deep_dream import build_model
    from kerascnn.models.features import list_layers

    model = build_model(cfg)
    for row in list_layers(model):
        shape = "x".join("?" if s is None else str(s) for s in row.output_shape[1:]) \
            if row.output_shape and not isinstance(row.output_shape[0], tuple) else "(several)"
        click.echo(f"{row.name:40s} {row.class_name:24s} {shape}")


def _zoom_class():
    from kerascnn.apps.deep_dream_zoom import ZoomConfig

    return ZoomConfig


def _zoom_defaults():
    from kerascnn.apps.deep_dream_zoom import ZOOM_DEFAULTS

    return ZOOM_DEFAULTS


@main.command("dream-zoom")
@click.argument("image", type=click.Path(dir_okay=False), metavar="IMAGE")
@click.option("-o", "--out", type=click.Path(dir_okay=False), default=None, metavar="ZOOM.gif",
              help="The animation (GIF); ZOOM.json beside it records every setting.")
@click.option("--frames-dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Also (or instead) write the frames as DIR/frame_0000.jpg ...")
@settings_options(_zoom_class(), _FLAGS + ["frames", "zoom", "blend", "duration"], app="dream-zoom",
                  app_defaults=_zoom_defaults())
@click.option("--class", "class_", default=None, metavar="N|NAME",
              help="Class visualisation: raise this ImageNet class's logit instead of layer activations.")
@config_options
@needs_tensorflow(preflight=inputs_first(imagenet_preflight(lambda: _zoom_class()), "", lambda **_: True, _HINTS,
                                          images=("image",)))  # IMAGE is required: click checks it is given
def dream_zoom(image, out, frames_dir, config_file, print_config, **opts):
    """A DeepDream zoom animation: dream IMAGE, zoom in a little, dream again, --frames times.

    Takes every `kerascnn dream` flag (defaults here: --octaves 2 --steps 8 per frame).
    Example: kerascnn dream-zoom photo.jpg --frames 30 -o zoom.gif
    """
    from kerascnn.apps.deep_dream_zoom import resolve_zoom, zoom_file

    resolved = resolve_flags(resolve_zoom, opts, config_file, print_config, _HINTS)
    if resolved is None:
        return
    written = zoom_file(image, out, frames_dir=frames_dir, resolved=resolved)
    click.echo(f"Zoom: {written[0]}" + (f" (+ {len(written) - 1} frames)" if len(written) > 1 else ""))
