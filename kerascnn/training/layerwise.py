"""Layer-wise (discriminative) learning rates: each variable's rate times a multiplier of its own.

Fine-tuning trains the new head at the full rate and each backbone block below it at `decay` times
the rate of the block above (Howard & Ruder 2018, ULMFiT's discriminative fine-tuning): the lower a
layer, the more general its features and the less they should move.

Keras 3 has one learning rate per optimizer. `with_lr_multipliers` returns the same optimizer (its
class, rebuilt from its config) with `update_step(gradient, variable, learning_rate)` scaling the
rate by the variable's multiplier before the optimizer's own update runs, so every optimizer, its
slots, schedules, gradient clipping and tf.distribute keep working unchanged. What it changes:

* the rate the update step sees, for the listed variables; a LearningRateSchedule is evaluated as
  usual and then scaled, as is Adam's bias-corrected step;
* nothing that is saved: the optimizer serializes as its base class ("Adam" from keras.optimizers),
  so a `.keras` file loads anywhere without registering anything, and its variables (slots,
  iterations) are those of the base class, so `save_weights` / `load_weights` round-trip them. The
  multipliers are a training-time detail; a resumed run calls `with_lr_multipliers` again.

Decoupled weight decay (AdamW, `weight_decay=`) is applied by Keras outside `update_step`, at the
unscaled rate: lower blocks decay at the head's rate. At fine-tuning rates (1e-4 x 1e-4 a step) the
difference is negligible; scaling it would mean overriding a private method.
"""
from __future__ import annotations

import functools
import math
from typing import Dict, Mapping, Sequence

import keras

from kerascnn.runtime import compat


def with_lr_multipliers(optimizer: keras.optimizers.Optimizer,
                        multipliers: Mapping[str, float]) -> keras.optimizers.Optimizer:
    """The same optimizer whose learning rate is multiplied, for each variable whose `variable.path`
    is a key, by its value (other variables: x1).

    Args:
        optimizer: an unbuilt Keras optimizer (SGD, Adam, AdamW, RMSprop, ...); it is rebuilt from its
            config, so build or compile with the returned one.
        multipliers: `{variable.path: factor}`, factors finite and >= 0 (`layer_multipliers`).

    Returns:
        A new optimizer of a subclass of `optimizer`'s class with the same config.
    """
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise TypeError(f"with_lr_multipliers needs a keras.optimizers.Optimizer. Received: {optimizer!r}")
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        # compile() wraps the optimizer itself under mixed_float16; wrap the inner one instead.
        raise TypeError("with_lr_multipliers takes the optimizer a LossScaleOptimizer would wrap, not the wrapper.")
    if optimizer.built:
        raise ValueError(f"with_lr_multipliers needs an optimizer that has not been built yet (its slots "
                         f"exist per variable). Received: a built {type(optimizer).__name__}")
    factors = {}
    for path, factor in multipliers.items():
        factor = float(factor)
        if not math.isfinite(factor) or factor < 0:
            raise ValueError(f"Learning-rate multipliers must be finite and >= 0. Received: {path}={factor}")
        factors[str(path)] = factor
    base = getattr(type(optimizer), "_layerwise_base", type(optimizer))
    new = _layerwise_class(base).from_config(optimizer.get_config())
    new.set_lr_multipliers(factors)
    return new


def layer_multipliers(model: keras.Model, groups: Sequence[Sequence[str]], decay: float) -> Dict[str, float]:
    """`{variable.path: decay**i}` for the trainable variables of the layers of `groups[i]`.

    Args:
        model: the model whose layers the groups name.
        groups: layer names, top group first, as `kerascnn.models.blocks.unfreeze` returns them (the
            head, then the top unfrozen block, ...).
        decay: each group's multiplier over the group above it, in (0, 1] (1: one rate for all).
    """
    if not 0 < decay <= 1:
        raise ValueError(f"decay must be in (0, 1]. Received: decay={decay}")
    factors: Dict[str, float] = {}
    for i, group in enumerate(groups):
        for name in group:
            for variable in model.get_layer(name).trainable_variables:
                factors[variable.path] = decay ** i
    return factors


@functools.lru_cache(maxsize=None)
def _layerwise_class(base: type) -> type:
    """`base` with per-variable learning-rate multipliers, one class per optimizer class."""

    class Layerwise(base):
        _layerwise_base = base

        def set_lr_multipliers(self, multipliers: Mapping[str, float]) -> None:
            # A tuple is kept as it is; a dict attribute would be wrapped for tracking.
            self._lr_multiplier_items = tuple(multipliers.items())
            self._lr_multiplier_list = ()

        def build(self, variables):
            super().build(variables)
            # One factor per variable, in the order of `variables`: the index the base class's own
            # update steps look slots up with.
            by_path = dict(getattr(self, "_lr_multiplier_items", ()))
            self._lr_multiplier_list = tuple(by_path.get(v.path, 1.0) for v in variables)

        def update_step(self, gradient, variable, learning_rate):
            # `_get_variable_index` is the documented way for a subclass's update_step to find its
            # variable (keras.optimizers.Optimizer's docstring example); `variable` here is the
            # backend variable (a replica's, under tf.distribute), which has no `.path` of its own.
            factor = self._lr_multiplier_list[self._get_variable_index(variable)]
            if factor != 1.0:
                dtype = keras.backend.standardize_dtype(variable.dtype)
                # convert_to_tensor, not cast: casting the Python float would round it to float32 first.
                learning_rate = keras.ops.multiply(keras.ops.cast(learning_rate, dtype),
                                                   keras.ops.convert_to_tensor(factor, dtype=dtype))
            return super().update_step(gradient, variable, learning_rate)

    # Saved as the base class, so loading a `.keras` file needs nothing from kerascnn (compat).
    return compat.serialize_as(Layerwise, base)
