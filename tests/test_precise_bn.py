"""PreciseBN: the BatchNorm statistics recomputed from training batches (kerascnn.training.callbacks)."""
import json

import keras
import numpy as np

import kerascnn
from kerascnn.training.callbacks import batch_norm_layers, recompute_batch_norm


def _nested_model():
    """conv -> BN -> ReLU inside a nested "backbone" model, then conv -> BN -> a frozen BN -> head."""
    inner_in = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="c1")(inner_in)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    backbone = keras.Model(inner_in, keras.layers.ReLU()(x), name="backbone")
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(5, 3, padding="same", name="c2")(backbone(inputs))
    x = keras.layers.BatchNormalization(name="bn2")(x)
    frozen = keras.layers.BatchNormalization(name="frozen")
    frozen.trainable = False
    x = frozen(x)
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))


def test_statistics_are_the_mean_over_the_batches_in_training_mode():
    keras.utils.set_random_seed(0)
    model = _nested_model()
    bn1, bn2, frozen = model.get_layer("backbone").get_layer("bn1"), model.get_layer("bn2"), model.get_layer("frozen")
    assert {b.name for b in batch_norm_layers(model)} == {"bn1", "bn2", "frozen"}
    rng = np.random.default_rng(1)
    batches = [(rng.normal(3.0, 2.0, (6, 8, 8, 3)).astype("float32"), np.zeros(6)) for _ in range(4)]
    # The reference, in numpy: bn1's input is c1's output; bn2's input is c2 over ReLU(bn1) normalised
    # with each batch's own statistics, as training mode does.
    c1, c2 = (np.asarray(model.get_layer("backbone").get_layer("c1").kernel),
              np.asarray(model.get_layer("c2").kernel))

    def conv(x, k):  # "same" 3x3, stride 1; the biases start at 0
        p = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        return sum(p[:, i:i + 8, j:j + 8, :] @ k[i, j] for i in range(3) for j in range(3))

    stats1, stats2 = [], []
    for x, _ in batches:
        h = conv(x.astype("float64"), c1)
        m, v = h.mean((0, 1, 2)), h.var((0, 1, 2))
        stats1.append((m, v))
        h = conv(np.maximum((h - m) / np.sqrt(v + bn1.epsilon), 0), c2)
        stats2.append((h.mean((0, 1, 2)), h.var((0, 1, 2))))
    weights = [np.asarray(w).copy() for w in model.trainable_weights]
    frozen_mean = np.asarray(frozen.moving_mean).copy()

    assert recompute_batch_norm(model, batches) == 4
    for bn, stats in ((bn1, stats1), (bn2, stats2)):
        np.testing.assert_allclose(np.asarray(bn.moving_mean), np.mean([m for m, _ in stats], 0), rtol=1e-4,
                                   atol=1e-5)
        np.testing.assert_allclose(np.asarray(bn.moving_variance), np.mean([v for _, v in stats], 0), rtol=1e-4)
        assert bn.momentum == 0.99  # put back
    np.testing.assert_array_equal(np.asarray(frozen.moving_mean), frozen_mean)  # frozen: its own statistics
    for before, w in zip(weights, model.trainable_weights):
        np.testing.assert_array_equal(before, np.asarray(w))  # no training


def test_fit_saves_the_statistics_of_the_training_split(tmp_path):
    """`precise_bn` reaches fit, and the saved model carries statistics of the whole training split;
    Keras's average after fourteen steps at 0.99 would still be ~13% of the way from its start at 0."""
    from kerascnn.config import DataConfig
    from kerascnn.data.build import build_datasets
    from kerascnn.models.loading import load_model

    result = kerascnn.fit("resnet20", data="digits", input_shape=(16, 16, 1), epochs=1, batch_size=128,
                          precise_bn=100, out=str(tmp_path / "run"), verbose=0)
    saved = load_model(result.run_dir / "model.keras")
    run = json.loads((result.run_dir / "config.json").read_text())
    assert run["precise_bn"] == 100
    bundle = build_datasets(DataConfig(**run["data"]), (16, 16, 1), 128, splits=("train",))
    reference = load_model(result.run_dir / "model.keras")
    recompute_batch_norm(reference, bundle.train)  # every batch, in the split's order
    for bn in batch_norm_layers(saved)[:3]:
        got, want = np.asarray(bn.moving_mean), np.asarray(reference.get_layer(bn.name).moving_mean)
        np.testing.assert_allclose(got, want, atol=0.03 * np.abs(want).max() + 1e-4)
        np.testing.assert_allclose(np.asarray(bn.moving_variance),
                                   np.asarray(reference.get_layer(bn.name).moving_variance), rtol=0.1)
