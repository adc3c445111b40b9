"""Library calls leave the caller's global state alone: matplotlib's backend and pyplot, the random
seeds, and Keras's session (a notebook calling kerascnn keeps its own figures, seeds and models)."""
import subprocess
import sys

import numpy as np


def test_plots_use_no_pyplot_and_keep_the_callers_backend(tmp_path):
    code = f"""
import sys, matplotlib
matplotlib.use("svg")
import numpy as np
from kerascnn.runtime.plots import plot_confusion, plot_curves
from kerascnn.analysis.figures import plot_image_grid, save_figure
rows = [{{"epoch": 1, "loss": 1.0, "val_loss": 1.2, "accuracy": 0.5}}, {{"epoch": 2, "loss": 0.5, "accuracy": 0.8}}]
plot_curves(rows, r"{tmp_path}/curves.png", title="t")
plot_confusion(np.array([[3, 1], [0, 4]]), ["a", "b"], r"{tmp_path}/cm.png")
save_figure(plot_image_grid([np.zeros((8, 8, 3), np.uint8)] * 2, ["x", "y"]), r"{tmp_path}/grid.png")
assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
assert "matplotlib.pyplot" not in sys.modules
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("curves.png", "cm.png", "grid.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_building_models_seeds_nothing_unless_asked(monkeypatch):
    import keras

    from kerascnn.models import create_model
    from kerascnn.models.networks import network

    seeded = []
    real = keras.utils.set_random_seed
    monkeypatch.setattr(keras.utils, "set_random_seed", lambda s: (seeded.append(s), real(s)))
    np.random.seed(7)
    expected = np.random.rand()
    np.random.seed(7)
    create_model("lenet5")
    network("resnet20", "none")
    # (Keras's own initialisers draw their default seeds from Python's `random`; numpy's stream and
    # the global seeds are kerascnn's to leave alone.)
    assert seeded == [] and np.random.rand() == expected
    # A seed the caller asks for is applied: random weights that repeat.
    a = network("resnet20", "none", seed=3).get_layer("conv1_conv").get_weights()[0]
    b = network("resnet20", "none", seed=3).get_layer("conv1_conv").get_weights()[0]
    assert seeded == [3, 3]
    np.testing.assert_array_equal(a, b)


def test_the_catalog_does_not_clear_the_callers_keras_session(monkeypatch, tmp_path):
    import keras

    from kerascnn.models.catalog import catalog

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # no cached counts: the model is built
    first = keras.layers.Dense(1)
    rows = catalog(["lenet5"])
    second = keras.layers.Dense(1)
    assert rows[0].params == 61706  # LeNet-5 with 10 classes (LeCun et al. 1998's C1-F6 plus the output)
    # A cleared session would restart Keras's name counters and give the second layer the first's name.
    assert first.name != second.name
