"""The Python API: one call per command, with the command's settings as plain keyword arguments.

    import kerascnn
    result = kerascnn.fit("lenet5", data="fashion_mnist", epochs=10, hflip=True)
    # the same run as: kerascnn fit --model lenet5 --data fashion_mnist --epochs 10 --hflip

Keywords are the command's setting names (the flags without the dashes: `batch_size`, `hflip`,
`val_split`, `data`, ...); settings resolve exactly as on the command line (`kerascnn.settings`):
the model's recipe fills what you leave out, `config_file=` is the `--config FILE` layer, and every
value is checked before any data or model is loaded (`kerascnn.errors.SettingError`, naming the
keyword). `kerascnn.evaluate` and `kerascnn.predict` are `kerascnn.inference.apply`'s functions, already
plain keyword functions; `kerascnn.finetune` is the transfer-learning app's.
"""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Union

from kerascnn.config import TrainConfig
from kerascnn.errors import SettingError
from kerascnn.settings import Resolved, settings_of


def resolve_fit(model: Union[str, TrainConfig, None] = None, *, config_file: Optional[os.PathLike] = None,
                **settings: Any) -> Resolved:
    """The settings `fit(model, **settings)` would train with, each with its source (`--print-config`)."""
    from kerascnn.training.configure import resolve_train

    if isinstance(model, TrainConfig):
        # A hand-built TrainConfig: the fields that differ from the defaults are the user's choices,
        # and the model's recipe fills the rest, exactly as for the same flags on the command line.
        settings = {**settings_of(model), **settings}
    elif model is not None:
        settings = {**settings, "model": model}
    return resolve_train(settings, config_file=config_file, source="argument")


def check_resume(settings: dict, config_file: Optional[os.PathLike] = None, *, flags: bool = False) -> None:
    """The one resume rule of every training command: a resumed run keeps its own settings, and only
    `epochs` may change (to train an ended run further). Anything else given with it is refused,
    never silently dropped. `flags=True` names them as the command line does (--lr, --config)."""
    extra = sorted(k for k, v in settings.items() if v is not None and k != "epochs")
    extra += ["config" if flags else "config_file"] if config_file is not None else []
    if extra:
        names = ", ".join(("--" + k.replace("_", "-")) if flags else k for k in extra)
        raise SettingError("resume", f"{'--resume' if flags else 'resume'} takes the run's own settings; drop "
                                     f"{names} (only {'--epochs' if flags else 'epochs'} may change).")


def train(cfg=None, *, resume: Optional[os.PathLike] = None, epochs: Optional[int] = None,
          callbacks: Sequence[Any] = (), verbose="auto"):
    """The training harness with the run's report.html as its last step: what `fit`, `finetune` and
    their commands run, once the settings are resolved (`cfg`) or a run folder is resumed."""
    from kerascnn.analysis.report import write_run_report
    from kerascnn.training import fit as harness

    if resume is not None:
        return harness(resume=resume, epochs=epochs, callbacks=callbacks, verbose=verbose,
                       finishers=(write_run_report,))
    return harness(cfg, callbacks=callbacks, verbose=verbose, finishers=(write_run_report,))


def fit(model: Union[str, TrainConfig, None] = None, *, config_file: Optional[os.PathLike] = None,
        resume: Optional[os.PathLike] = None, callbacks: Sequence[Any] = (), verbose="auto", **settings: Any):
    """Train a model and write a run folder: `kerascnn fit` from Python.

    Args:
        model: a registered model name (default lenet5), or a TrainConfig whose non-default fields
            are taken as settings.
        config_file: a TOML/JSON settings file (applied under the keywords).
        resume: a run folder to continue (only `epochs` may be given with it; anything else is refused).
        callbacks: extra Keras callbacks.
        verbose: Keras's verbosity.
        **settings: any `kerascnn fit` setting by name (epochs=10, data="mnist", hflip=True, ...).

    Returns:
        kerascnn.training.FitResult (run_dir, model, history, class_names ...).
    """
    if resume is not None:
        check_resume({**settings, "model": model}, config_file)
        return train(resume=resume, epochs=settings.get("epochs"), callbacks=callbacks, verbose=verbose)
    return train(resolve_fit(model, config_file=config_file, **settings), callbacks=callbacks, verbose=verbose)


__all__ = ["check_resume", "fit", "resolve_fit", "train"]
