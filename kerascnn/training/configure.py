"""Resolving a run's configuration: dataclass defaults <- the model's recipe <- the user's changes.

The one override path (`kerascnn.config.override`) applied twice: first the registry's training
recipe for the chosen model (e.g. LeNet-5's small batches), then whatever the user set. The result
is what `fit` writes into config.json.
"""
from __future__ import annotations

from typing import Any

from kerascnn.config import TrainConfig, override
from kerascnn.models.registry import get_spec


def make_config(model: str = TrainConfig.model, **changes: Any) -> TrainConfig:
    """`make_config("lenet5", epochs=10, **{"data.spec": "mnist"})`; None values keep the default."""
    base = override(TrainConfig(), model=model)
    return override(override(base, **get_spec(model).recipe), **changes)
