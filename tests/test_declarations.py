"""Every default and list of choices is declared once: the settings, the library and the CLI agree."""
import dataclasses

from click.testing import CliRunner

from kerascnn.config import (CACHE_MODES, EXPORT_FORMATS, OPTIMIZER_DEFAULT_LR, OPTIMIZER_DEFAULT_WEIGHT_DECAY,
                             TTA_MODES, DataConfig, EvaluateConfig, TrainConfig, fields_of)


def _choices(cls, key):
    return dict(fields_of(cls))[key].metadata["choices"]


def test_the_stylize_loss_weights_are_the_objectives_defaults():
    from kerascnn.apps.fast_style import FastStyleConfig
    from kerascnn.apps.style_transfer import StylizeConfig
    from kerascnn.synthesis.stylization import StyleObjective, Weights

    import inspect

    default = inspect.signature(StyleObjective).parameters["weights"].default
    assert default == Weights()
    for cls in (StylizeConfig, FastStyleConfig):
        cfg = cls()
        assert Weights(cfg.content_weight, cfg.style_weight, cfg.tv_weight) == Weights(), cls.__name__
    assert dataclasses.astuple(Weights()) == (1.0, 10.0, 1.0)


def test_tta_modes_export_formats_and_cache_modes_are_one_tuple_each():
    from kerascnn.data import build
    from kerascnn.inference import export, tta

    assert tta.TTA_MODES is TTA_MODES and _choices(EvaluateConfig, "tta") is TTA_MODES
    assert export.FORMATS is EXPORT_FORMATS
    assert build.CACHE_MODES is CACHE_MODES and _choices(DataConfig, "cache") is CACHE_MODES


def test_the_export_command_offers_the_libraries_formats():
    from kerascnn.cli import main

    r = CliRunner().invoke(main, ["export", "m.keras", "--format", "nope", "-o", "x"])
    assert r.exit_code == 2
    for fmt in EXPORT_FORMATS:
        assert fmt in r.output


def test_help_texts_state_the_per_optimizer_defaults_from_their_tables():
    helps = {key: f.metadata["help"] for key, f in fields_of(TrainConfig)}
    for name, lr in OPTIMIZER_DEFAULT_LR.items():
        assert f"{name} {lr:g}" in helps["lr"]
    for name, wd in OPTIMIZER_DEFAULT_WEIGHT_DECAY.items():
        assert f"{name} {wd:g}" in helps["weight_decay"]
