"""The checkpoint cadence: backups and best.keras within a time budget, nothing lost at the end."""
import math

import keras
import numpy as np
import pytest

from kerascnn.training import callbacks as cb


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def harness(tmp_path, monkeypatch):
    """A Checkpoints callback on a one-weight model, a fake clock, and saves that cost 0.5 s each."""
    clock, saved = FakeClock(), []
    real_save = cb.atomic_save

    def slow_save(target, write):
        clock.now += 0.5
        saved.append(target.name)
        real_save(target, write)

    monkeypatch.setattr(cb, "atomic_save", slow_save)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False, name="w")])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.optimizer.build(model.trainable_variables)

    def make(epochs, **kw):
        ck = cb.Checkpoints(tmp_path / "backup", tmp_path / "best.keras", clock=clock, **kw)
        ck.set_model(model)
        ck.set_params({"epochs": epochs})
        ck.on_train_begin()
        return ck

    def epoch(ck, n, val_accuracy):
        """Epoch n (1-based) takes 1 s and leaves the weight equal to n."""
        ck.on_epoch_begin(n - 1)
        model.get_layer("w").kernel.assign([[float(n)]])
        clock.now += 1.0
        ck.on_epoch_end(n - 1, {"val_accuracy": val_accuracy})

    return make, epoch, saved, tmp_path


def _backups(folder):
    return sorted(p.name for p in (folder / "backup").iterdir())


def _best_weight(folder):
    return float(keras.saving.load_model(folder / "best.keras").get_layer("w").kernel.numpy()[0, 0])


def test_short_epochs_are_checkpointed_within_the_budget_and_the_best_epoch_is_kept(harness):
    make, epoch, saved, folder = harness
    ck = make(epochs=12, budget=0.1)
    accuracies = [0.1, 0.2, 0.3, 0.4, 0.9, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]  # epoch 5 is the best
    written_after = {}
    for n, acc in enumerate(accuracies, 1):
        epoch(ck, n, acc)
        written_after[n] = ck.writes
    # epochs 1 and 2 write (the 2nd, backup + best, takes 1 s: the next write is due 1 s / 0.1 = 10 s
    # later), epoch 12 is the first 10 s on
    assert [n for n in written_after if written_after[n] > written_after.get(n - 1, 0)] == [1, 2, 12]
    assert saved == ["epoch-0001.weights.h5", "best.keras", "epoch-0002.weights.h5", "best.keras",
                     "epoch-0012.weights.h5", "best.keras"]
    # best.keras holds epoch 5's weights, kept in memory until epoch 12's write
    assert _best_weight(folder) == 5.0
    assert _backups(folder) == ["epoch-0012.weights.h5"]


def test_epochs_long_enough_for_the_budget_are_all_checkpointed(harness):
    make, epoch, saved, _ = harness
    ck = make(epochs=30, budget=0.5)  # a 0.5 s backup is 50% of a 1 s epoch: within the budget
    for n in range(1, 7):
        epoch(ck, n, 0.5)
    assert ck.writes == 6
    assert saved.count("best.keras") == 1  # val accuracy never improved after epoch 1


def test_budget_zero_writes_every_epoch(harness):
    make, epoch, saved, _ = harness
    ck = make(epochs=4, budget=0.0)
    for n in range(1, 5):
        epoch(ck, n, 0.1 * n)
    assert ck.writes == 4
    assert saved.count("best.keras") == 4


def test_early_stop_writes_the_last_finished_epoch_and_the_kept_best(harness):
    make, epoch, saved, folder = harness
    ck = make(epochs=30, budget=0.1)
    for n, acc in enumerate([0.1, 0.2, 0.9, 0.5], 1):
        epoch(ck, n, acc)
    assert ck.writes == 2 and _best_weight(folder) == 2.0  # epochs 3-4 not written yet
    ck.on_train_end()  # e.g. EarlyStopping after epoch 4
    assert _backups(folder) == ["epoch-0004.weights.h5"]
    assert _best_weight(folder) == 3.0


def test_stop_inside_an_epoch_writes_no_backup_of_its_weights(harness):
    make, epoch, saved, folder = harness
    ck = make(epochs=30, budget=0.1)
    epoch(ck, 1, 0.1)
    epoch(ck, 2, 0.2)
    epoch(ck, 3, 0.8)  # better, kept in memory
    ck.on_epoch_begin(3)
    # TerminateOnNaN stops here: the weights are NaN
    ck.model.get_layer("w").kernel.assign([[math.nan]])
    ck.on_train_end()
    assert _backups(folder) == ["epoch-0002.weights.h5"]
    assert _best_weight(folder) == 3.0


def test_a_resumed_run_keeps_its_best_model_when_later_epochs_are_worse(harness):
    make, epoch, saved, folder = harness
    first = make(epochs=2, budget=0.0)
    epoch(first, 1, 0.3)
    epoch(first, 2, 0.9)
    resumed = make(epochs=4, budget=0.0, best=0.9)  # what fit passes from the history
    epoch(resumed, 3, 0.6)
    epoch(resumed, 4, 0.7)
    assert _best_weight(folder) == 2.0


def test_several_workers_checkpoint_every_epoch():
    import tensorflow as tf

    from kerascnn.training.distribute import Distribution

    def dist(workers):
        return Distribution(tf.distribute.get_strategy(), "multiworker" if workers > 1 else "default",
                            num_replicas=workers, num_workers=workers, worker_index=0, chief=True, global_batch=8)

    assert dist(2).checkpoint_budget(0.01) == 0.0
    assert dist(1).checkpoint_budget(0.01) == 0.01


def test_exports_of_a_float32_run_do_not_follow_later_training():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False, name="w")])
    export = cb.Exporter()
    assert export(model) is model, "float32: the trained model is exported as it is"
    kept = export.weights(model)
    model.get_layer("w").kernel.assign([[7.0]])
    copy = export(model, kept)
    assert copy is not model
    np.testing.assert_array_equal(copy.get_weights()[0], kept[0])
    assert export(model).get_weights()[0][0, 0] == 7.0
