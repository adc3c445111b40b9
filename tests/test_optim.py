"""Optimizers and learning-rate schedules: the weight decay as set, warm-up in front of every schedule."""
import math

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn.config import TrainConfig, override
from kerascnn.errors import SettingError
from kerascnn.training.optim import Warmup, make_optimizer, make_schedule


def _lrs(cfg, steps_per_epoch, steps):
    s = make_schedule(cfg, steps_per_epoch)
    return [float(s(step)) if callable(s) else float(s) for step in steps]


# ------------------------------------------------------------------------------------------------
# weight decay: an explicit 0 is 0; unset is the optimizer's default


def _one_step_with_zero_gradient(opt) -> float:
    """The weight after one update with a zero gradient: only the decoupled decay moves it."""
    w = keras.Variable(np.ones((3,), "float32"))
    opt.apply_gradients([(keras.ops.zeros((3,)), w)])
    return float(keras.ops.convert_to_numpy(w)[0])


def test_adamw_with_weight_decay_zero_does_not_decay():
    opt = make_optimizer(override(TrainConfig(), optimizer="adamw", weight_decay=0.0, lr=0.1), steps_per_epoch=10)
    assert float(opt.weight_decay) == 0.0
    assert _one_step_with_zero_gradient(opt) == 1.0


def test_an_unset_weight_decay_is_the_optimizers_default():
    adamw = make_optimizer(override(TrainConfig(), optimizer="adamw", lr=0.1, schedule="constant"), 10)
    assert float(adamw.weight_decay) == pytest.approx(1e-4)
    assert _one_step_with_zero_gradient(adamw) == pytest.approx(1.0 - 0.1 * 1e-4)
    assert make_optimizer(override(TrainConfig(), optimizer="sgd"), 10).weight_decay is None
    assert make_optimizer(override(TrainConfig(), optimizer="adam", weight_decay=0.0), 10).weight_decay is None
    sgd = make_optimizer(override(TrainConfig(), optimizer="sgd", weight_decay=5e-4), 10)
    assert float(sgd.weight_decay) == pytest.approx(5e-4)


def test_weight_decay_zero_from_the_command_line_resolves_to_zero():
    cfg = kerascnn.resolve_fit("lenet5", optimizer="adamw", weight_decay=0.0).config
    assert cfg.weight_decay == 0.0
    assert float(make_optimizer(cfg, 10).weight_decay) == 0.0


# ------------------------------------------------------------------------------------------------
# warm-up: linear from 0 to the schedule's value, for every schedule


def test_warmup_in_front_of_multistep_by_hand():
    # 10 epochs of 10 steps, lr 0.1, /10 from steps 50 and 75; warm-up over the first 20 steps
    cfg = override(TrainConfig(), lr=0.1, schedule="multistep", milestones=(0.5, 0.75), epochs=10,
                   warmup_epochs=2.0)
    steps = (0, 5, 10, 19, 20, 49, 50, 74, 75, 99)
    expected = [0.0, 0.1 * 5 / 20, 0.1 * 10 / 20, 0.1 * 19 / 20, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    assert _lrs(cfg, 10, steps) == pytest.approx(expected, rel=1e-5, abs=1e-7)


def test_warmup_in_front_of_step_constant_and_exponential_by_hand():
    step = override(TrainConfig(), epochs=7, lr=0.1, schedule="step", step_epochs=3, warmup_epochs=1.0)
    assert _lrs(step, 5, (0, 2, 4, 5, 14, 15, 30)) == pytest.approx([0.0, 0.04, 0.08, 0.1, 0.1, 0.01, 0.001])
    const = override(TrainConfig(), optimizer="adam", schedule="constant", warmup_epochs=0.5)  # lr unset: 1e-3
    assert _lrs(const, 4, (0, 1, 2, 50)) == pytest.approx([0.0, 0.0005, 0.001, 0.001])
    expo = override(TrainConfig(), lr=0.045, schedule="exponential", decay_rate=0.94, decay_epochs=2.0,
                    warmup_epochs=3.0)  # a decay every 10 steps, warm-up over 15
    expected = [0.0, 0.045 * 6 / 15, 0.045 * 0.94 * 12 / 15, 0.045 * 0.94, 0.045 * 0.94 ** 5]
    assert _lrs(expo, 5, (0, 6, 12, 15, 55)) == pytest.approx(expected, rel=1e-5)


def test_no_warmup_leaves_the_schedules_as_they_were():
    cfg = override(TrainConfig(), lr=0.1, schedule="multistep", milestones=(0.5, 0.75), epochs=10)
    assert not isinstance(make_schedule(cfg, 10), Warmup)
    assert make_schedule(override(cfg, schedule="constant"), 10) == 0.1


def test_cosine_unchanged_with_and_without_warmup_by_hand():
    total, lr = 100, 0.1
    plain = override(TrainConfig(), epochs=10, lr=lr, schedule="cosine")
    steps = (0, 10, 25, 50, 99)
    assert _lrs(plain, 10, steps) == pytest.approx([lr * 0.5 * (1 + math.cos(math.pi * s / total)) for s in steps],
                                                   rel=1e-5, abs=1e-7)
    warm = override(plain, warmup_epochs=2.0)  # 20 warm-up steps, then a cosine over the other 80
    steps = (0, 5, 19, 20, 40, 60, 99)
    expected = [lr * s / 20 if s < 20 else lr * 0.5 * (1 + math.cos(math.pi * (s - 20) / 80)) for s in steps]
    assert _lrs(warm, 10, steps) == pytest.approx(expected, rel=1e-5, abs=1e-7)


def test_the_resnet_cifar_recipe_warms_up():
    cfg = kerascnn.resolve_fit("resnet20", recipe="resnet_cifar", warmup_epochs=1.0, epochs=4).config
    assert cfg.schedule == "multistep"
    # 4 epochs of 10 steps: warm-up over 10, lr 0.1 until step 20, /10 from 20 and 30
    assert _lrs(cfg, 10, (0, 5, 10, 19, 20, 30)) == pytest.approx([0.0, 0.05, 0.1, 0.1, 0.01, 0.001], rel=1e-5)


def test_warmup_with_plateau_is_a_setting_error_before_any_work():
    with pytest.raises(SettingError) as e:
        kerascnn.resolve_fit("lenet5", schedule="plateau", warmup_epochs=1.0)
    assert e.value.param == "warmup_epochs"


def test_a_warmed_up_optimizer_round_trips_through_its_config():
    cfg = override(TrainConfig(), optimizer="sgd", lr=0.1, schedule="step", step_epochs=2, epochs=4,
                   warmup_epochs=1.0)
    opt = make_optimizer(cfg, 10)
    again = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    for step in (0, 3, 10, 25):
        assert float(again._learning_rate(step)) == pytest.approx(float(opt._learning_rate(step)))
