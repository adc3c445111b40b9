"""The visualisation commands as library calls: resolved settings in, PNG files in a job folder out.

`kerascnn visualize filters|activations|gradcam|maximize|tokens|ngrams|vqa` (tokens: an HTML snippet;
ngrams: a JSON file; vqa: a PNG and a JSON file) each parse their flags and call one of these; a script can call them too, with keyword arguments named as the flags:

    from kerascnn.analysis.commands import visualize
    job, files = visualize("gradcam", model="vgg16", weights="imagenet", images=("cat.jpg",))

Files are named after what they show ("filters_block1_conv1.png", "gradcam_cat.png") and written
atomically into a `kerascnn.JobDir` with the resolved settings beside them (settings.json).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from kerascnn.analysis import configs
from kerascnn.errors import ModelError, SettingError, UnknownNameError

COMMANDS = {"filters": configs.FiltersConfig, "activations": configs.ActivationsConfig,
            "gradcam": configs.GradcamConfig, "maximize": configs.MaximizeConfig, "tokens": configs.TokensConfig,
            "ngrams": configs.NgramsConfig, "vqa": configs.VqaConfig}


def resolve_settings(command: str, settings: dict, config_file: Optional[os.PathLike] = None,
                     source: str = "argument"):
    """The command's `Resolved` settings: defaults < the settings file < `settings`."""
    from kerascnn.settings import resolve_settings as resolve

    return resolve(COMMANDS[command], settings, config_file=config_file, source=source, command=f"visualize {command}")


def visualize(command: str, *, config_file: Optional[os.PathLike] = None, **settings: Any):
    """Run `kerascnn visualize COMMAND` from Python; returns (JobDir, [written PNG paths])."""
    if command not in COMMANDS:
        raise UnknownNameError("command", f"Unknown visualize command {command!r}; one of {', '.join(COMMANDS)}.")
    return run(resolve_settings(command, settings, config_file))


def run(resolved) -> Tuple[Any, List[Path]]:
    """Make a resolved command's pictures; returns (JobDir, [written PNG paths])."""
    from kerascnn.analysis.visualize import resolve_model
    from kerascnn.runtime.jobs import JobDir, slug

    cfg = resolved.config
    command = resolved.command.split()[-1]
    if not cfg.model:
        raise SettingError("model", "No model given: pass a registry name or a .keras file.")
    if command == "tokens":
        job, files, _ = explain_tokens(resolved)
        return job, files
    if command == "ngrams":
        job, files, _ = find_ngrams(resolved)
        return job, files
    if command == "vqa":
        from kerascnn.analysis.vqa_explain import explain_command

        job, files, _ = explain_command(resolved)
        return job, files
    # Feature visualisation runs at --size (a registry network is built at that input; a file keeps its own).
    model = resolve_model(cfg.model, cfg.weights, size=cfg.size if command == "maximize" else None)
    draw = {"filters": _filters, "activations": _activations, "gradcam": _gradcam, "maximize": _maximize}[command]
    files: List[Tuple[str, Any]] = draw(model, cfg)  # checked (and computed) before the folder exists
    job = JobDir.create("visualize", f"{command}-{slug(cfg.model)}", cfg.out)
    job.write_settings(resolved)
    from kerascnn.analysis.figures import save_figure

    return job, [save_figure(fig, (job, name)) for name, fig in files]


def _name(text: str) -> str:
    from kerascnn.runtime.jobs import slug

    return slug(text.replace("/", "_"))  # "backbone/c2" -> "backbone_c2" (slug keeps a basename only)


def _filters(model, cfg) -> list:
    from kerascnn.analysis.figures import plot_filters
    from kerascnn.analysis.visualize import filter_grid, filters

    kernels, path = filters(model, cfg.layer)
    grid = filter_grid(kernels, cfg.normalize, max_filters=cfg.max_filters)
    kh, kw, cin, cout = kernels.shape
    shown = f", first {cfg.max_filters}" if cout > cfg.max_filters else ""
    how = "RGB" if cin == 3 else "per input channel, gray"
    title = (f"{model.name} {path}: {cout} filters {kh}x{kw}x{cin}{shown} ({how}; "
             f"{cfg.normalize} scale, zero = grey)")
    return [(f"filters_{_name(path)}.png", plot_filters(grid, title))]


def _activations(model, cfg) -> list:
    from kerascnn.analysis.figures import plot_activations
    from kerascnn.analysis.visualize import activations
    from kerascnn.data.imageio import load_image

    names = [n.strip() for n in cfg.layers.split(",") if n.strip()]
    if not names:
        raise SettingError("layers", "No layers given: pass --layers L1,L2 (see `kerascnn summary MODEL`).")
    if not cfg.image:
        raise SettingError("image", "No image given.")
    channels = int(model.input_shape[-1] or 3)
    maps = activations(model, load_image(cfg.image, channels=channels, max_side=512), names)
    stem = _name(Path(cfg.image).stem)
    return [(f"activations_{stem}_{_name(p)}.png", plot_activations(a, f"{model.name} {p}", cfg.max_channels))
            for p, a in maps.items()]


def class_names_of(model, model_arg: str) -> Optional[List[str]]:
    """A model's class names: classes.json beside a .keras file, ImageNet's for 1000 outputs, else None."""
    from kerascnn.models.refs import is_model_file
    from kerascnn.runtime import run_dir as rd

    if is_model_file(model_arg):
        names = rd.read_classes(model_arg)
        if names:
            return list(names)
    if model.output_shape[-1] == 1000:
        from kerascnn.data.imageio import imagenet_classes

        return [n.split(",")[0] for n in imagenet_classes()]
    return None


def class_index(target: Optional[str], names: Optional[Sequence[str]], n_classes: int) -> Optional[int]:
    """--class N|NAME as an index (None: each image's predicted class)."""
    if target is None or str(target) == "":
        return None
    text = str(target).strip()
    if text.isdigit():
        index = int(text)
    elif n_classes == 1000 and names is not None:
        from kerascnn.data.imageio import imagenet_class_index

        try:
            index = imagenet_class_index(text)
        except UnknownNameError as e:
            raise UnknownNameError("target_class", str(e)) from None
    else:
        lowered = [str(n).lower() for n in (names or [])]
        if text.lower() not in lowered:
            raise UnknownNameError("target_class", f"Unknown class {text!r}; the model's classes: "
                                                   f"{', '.join(map(str, names or [])) or 'unnamed (pass an index)'}.")
        index = lowered.index(text.lower())
    if not 0 <= index < n_classes:
        raise SettingError("target_class", f"Class {index} is out of range; the model has {n_classes} classes.")
    return index


def _gradcam(model, cfg) -> list:
    from kerascnn.analysis.figures import plot_gradcam
    from kerascnn.analysis.visualize import _gradcam, cam_model, input_size, prepare_images
    from kerascnn.data.imageio import load_image

    if not cfg.images:
        raise SettingError("images", "No images given.")
    names = class_names_of(model, cfg.model)
    target = class_index(cfg.target_class, names, int(model.output_shape[-1]))
    cam = cam_model(model, cfg.layer)
    shape = input_size(model)
    out = []
    for path in cfg.images:
        batch = prepare_images(load_image(path, channels=shape[2]), shape)
        heat, probs = _gradcam(cam, batch, target, "gradcam")
        heat_pp, _ = _gradcam(cam, batch, target, "gradcam++")
        fig = plot_gradcam(batch[0], [heat[0], heat_pp[0]], ["Grad-CAM", "Grad-CAM++"], probs[0], names, target,
                           title=f"{model.name}, layer {cam.layer_name}")
        out.append((f"gradcam_{_name(Path(path).stem)}.png", fig))
    return out


def _text_model(cfg):
    """The text model `cfg.model` names (a .keras file or a registry name), checked to be one."""
    from kerascnn.analysis.tokens import text_parts
    from kerascnn.analysis.visualize import resolve_model

    if not cfg.model:
        raise SettingError("model", "No model given: pass a .keras file or a registry name.")
    model = resolve_model(cfg.model, cfg.weights)
    try:
        text_parts(model)
    except ModelError as e:  # named as the argument it is about
        raise SettingError("model", str(e) if cfg.model == model.name else f"{cfg.model}: {e}") from None
    return model


def explain_tokens(resolved):
    """`visualize tokens`: (JobDir, [the HTML file], (tokens, scores, probabilities, class index, class
    names or None)); the HTML snippet shows the text's tokens coloured by gradient x input."""
    from kerascnn.analysis.tokens import html_snippet, token_saliency
    from kerascnn.runtime.jobs import JobDir, slug

    cfg = resolved.config
    model = _text_model(cfg)
    if not cfg.text.strip():
        raise SettingError("text", "No text given: pass the text to explain.")
    names = class_names_of(model, cfg.model)
    target = class_index(cfg.target_class, names, int(model.output_shape[-1]))
    tokens, scores, probs = token_saliency(model, cfg.text, target)
    target = int(np.argmax(probs)) if target is None else target
    label = names[target] if names and target < len(names) else f"class {target}"
    title = f"{model.name}: gradient x input for {label} (p = {probs[target]:.3f}); red for, blue against"
    job = JobDir.create("visualize", f"tokens-{slug(cfg.model)}", cfg.out)
    job.write_settings(resolved)
    path = job.write_text("tokens.html", html_snippet(tokens, scores, title))
    return job, [path], (tokens, scores, probs, target, names)


def find_ngrams(resolved):
    """`visualize ngrams`: (JobDir, [ngrams.json], (the FilterNgrams found, class names or None)): the
    n-grams that excite the model's strongest filters most on a split of --data (unset: the run's)."""
    import json

    from kerascnn.analysis.ngrams import filter_ngrams, to_json
    from kerascnn.runtime.jobs import JobDir, slug

    cfg = resolved.config
    model = _text_model(cfg)
    texts, spec = _split_texts(cfg)
    names = class_names_of(model, cfg.model)
    found = filter_ngrams(model, texts, filters=cfg.filters, top=cfg.top)
    job = JobDir.create("visualize", f"ngrams-{slug(cfg.model)}", cfg.out)
    job.write_settings(resolved)
    record = {"model": cfg.model, "data": spec, "split": cfg.split, "sentences": len(texts),
              "filters": to_json(found, names)}
    path = job.write_text("ngrams.json", json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return job, [path], (found, names, record)


def _split_texts(cfg) -> Tuple[List[str], str]:
    """(up to cfg.max_examples texts of cfg.split of the data, its spec): --data over the model's run's
    data settings (config.json beside a .keras file), the text column flags over both."""
    from kerascnn.config import DataConfig, override
    from kerascnn.data.kinds import check_data_for
    from kerascnn.models.refs import is_model_file
    from kerascnn.runtime import run_dir as rd

    run_cfg = None
    if is_model_file(cfg.model) and (Path(cfg.model).parent / rd.CONFIG).is_file():
        run_cfg = rd.read_config(Path(cfg.model).parent)
    if cfg.data is None and run_cfg is None:
        raise SettingError("data", "No sentences: pass --data (the model has no run config.json beside it).")
    data = override(run_cfg.data if run_cfg is not None else DataConfig(), spec=cfg.data,
                    text_column=cfg.text_column, label_column=cfg.label_column, label_threshold=cfg.label_threshold)
    kind = check_data_for(cfg.model, "text", data.spec)  # the model takes strings (text_parts said so)
    bundle = kind.build(data, None, 256, splits=(cfg.split,))
    dataset = getattr(bundle, cfg.split, None)
    if dataset is None:
        raise SettingError("split", f"--data {data.spec} has no {cfg.split} split; pick another with --split.")
    texts: List[str] = []
    for x, _ in dataset:
        texts += [t.decode("utf-8", "replace") for t in np.asarray(x).tolist()]
        if len(texts) >= cfg.max_examples:
            break
    return texts[:cfg.max_examples], data.spec


def _maximize(model, cfg) -> list:
    from kerascnn.analysis.figures import plot_image_grid
    from kerascnn.analysis.visualize import layer_path, maximize, parse_channels

    if not cfg.layer:
        raise SettingError("layer", "No layer given: pass --layer (see `kerascnn summary MODEL`).")
    path = layer_path(model, cfg.layer)
    chans = parse_channels(cfg.channels)
    images = maximize(model, path, chans, size=cfg.size, steps=cfg.steps, lr=cfg.lr, jitter=cfg.jitter,
                      blur_sigma=cfg.blur_sigma, blur_every=cfg.blur_every, seed=cfg.seed)
    images = _stretch(images)
    fig = plot_image_grid(list(images), [f"#{c}" for c in chans], cols=min(4, len(chans)),
                          title=f"{model.name} {path}: images that excite each channel ({cfg.steps} steps)")
    return [(f"maximize_{_name(path)}.png", fig)]


def _stretch(images: np.ndarray) -> np.ndarray:
    """Each image's values stretched to [0, 255] around mid-grey, so faint patterns show (display only)."""
    centred = images - images.mean(axis=(1, 2, 3), keepdims=True)
    scale = np.maximum(np.abs(centred).max(axis=(1, 2, 3), keepdims=True), 1e-6)
    return (127.5 + 127.5 * centred / scale).astype(np.float32)
