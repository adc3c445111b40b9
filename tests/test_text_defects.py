"""Three defects around the text model kim_cnn (issue 22): `kerascnn summary` counts it for a given
vocabulary and vector size and speaks of sentences, not images; top-5 accuracy is neither logged nor
reported for 5 classes or fewer (always 100% there); `lr-find` on text data leaks no Keras warning."""
import csv
import json
import warnings

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from kerascnn.cli import main
from kerascnn.config import TrainConfig, override

V, D, L = 18767, 300, 64  # MR's vocabulary with "" and "[UNK]", word2vec's 300-d, the default sequence_length


def by_hand(variant, v=V, d=D, length=L, widths=(3, 4, 5), filters=100, classes=2):
    """(params, trainable params, multiply-adds for one sentence) of Kim's CNN, from the paper's shapes."""
    channels = 2 if variant == "multichannel" else 1  # two embeddings side by side: convs see 2D inputs
    embeddings = channels * v * d
    convs = sum(w * channels * d * filters + filters for w in widths)
    logits = len(widths) * filters * classes + classes
    frozen = v * d if variant in ("static", "multichannel") else 0
    macs = sum((length - w + 1) * filters * w * channels * d for w in widths) + len(widths) * filters * classes
    return embeddings + convs + logits, embeddings + convs + logits - frozen, macs


def summary(*args):
    return CliRunner().invoke(main, ["summary", "--model", "kim_cnn", "--model-arg", f"vocabulary_size={V}",
                                     "--model-arg", f"embedding_dim={D}", *args])


@pytest.mark.parametrize("variant", ["rand", "static", "multichannel"])
def test_summary_counts_kim_cnn_for_a_given_vocabulary_and_vector_size(variant):
    r = summary("--model-arg", f"variant={variant}", "--format", "json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    params, trainable, macs = by_hand(variant)
    assert (data["totals"]["params"], data["totals"]["trainable_params"], data["totals"]["macs"]) == \
        (params, trainable, macs)
    assert data["example"] == f"sentence of {L} tokens"
    rows = {row["name"]: row for row in data["rows"]}
    for w in (3, 4, 5):  # a width-w convolution sees a w-gram: its receptive field counts tokens
        assert rows[f"conv{w}"]["rf"] == [w] and rows[f"conv{w}"]["output_shape"] == [L - w + 1, 100]


def test_summary_table_of_a_text_model_speaks_of_sentences_not_images():
    r = summary()
    assert r.exit_code == 0, r.output
    params, _, macs = by_hand("rand")
    assert r.stdout.startswith(f"kim_cnn (input: one sentence of {L} tokens)")
    assert f"Total params: {params:,}" in r.stdout
    assert f"Total multiply-adds: {macs:,} ({macs / 1e6:.1f} M) per sentence of {L} tokens" in r.stdout
    assert "image" not in r.stdout and "RF and Jump count tokens" in r.stdout
    # image models keep their wording
    r = CliRunner().invoke(main, ["summary", "--model", "lenet5"])
    assert "per image" in r.stdout and "tokens" not in r.stdout


def test_summary_model_args_are_checked_and_only_for_models():
    r = summary("--model-arg", "embeding_dim=3")
    assert r.exit_code == 2 and "takes no builder argument 'embeding_dim'" in r.output
    assert "Traceback" not in r.output
    r = CliRunner().invoke(main, ["summary", "--block", "inception-naive", "--model-arg", "filters=3"])
    assert r.exit_code == 2 and "--model-arg" in r.output


def test_models_lists_kim_cnn_as_a_text_model_with_its_placeholder_vocabulary():
    r = CliRunner().invoke(main, ["models", "--family", "kim"])
    assert r.exit_code == 0, r.output
    row = next(line for line in r.stdout.splitlines() if line.startswith("kim_cnn "))
    assert row.split()[4] == "text"  # model family params classes input
    assert "placeholder vocabulary of 20,000 tokens" in r.stdout and "vocabulary_size=V" in r.stdout


# --- top-5 only past 5 classes ------------------------------------------------------------------


@pytest.mark.parametrize("classes", [2, 5, 7])
def test_training_logs_top5_only_past_5_classes(classes):
    from kerascnn.training.loop import compile_model

    rng = np.random.default_rng(classes)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, classes, 64), classes)
    inputs = keras.Input((6,))
    model = keras.Model(inputs, keras.layers.Dense(classes, activation="softmax", name="predictions")(inputs))
    compile_model(model, TrainConfig(), keras.optimizers.SGD(0.0))
    scores = model.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    if classes <= 5:
        assert "top5" not in scores and "accuracy" in scores
    else:
        p = model.predict(x, verbose=0)
        top5 = np.argsort(-p, axis=1)[:, :5]
        assert scores["top5"] == pytest.approx(np.mean([t in row for t, row in zip(y.argmax(1), top5)]))


@pytest.mark.parametrize("classes", [3, 7])
def test_evaluate_scores_top5_only_past_5_classes(classes):
    from kerascnn.inference.apply import _Tally

    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(classes), size=200)
    y = rng.integers(0, classes, 200)
    tally = _Tally(classes)
    tally.add(p[:120], y[:120])
    tally.add(p[120:], y[120:])
    _, _, top1, top5 = tally.result()
    assert top1 == pytest.approx(np.mean(p.argmax(1) == y))
    if classes <= 5:
        assert top5 is None
    else:
        assert top5 == pytest.approx(np.mean([t in row for t, row in zip(y, np.argsort(-p, axis=1)[:, :5])]))


def _write_tsv(path, n=48):
    lines = [f"{1.5 if i % 2 else -1.5}\t{'a fine warm film' if i % 2 else 'a dull cold mess'} {i}" for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return f"tsv:{path}"


def _tiny_text_config(tmp_path):
    return override(TrainConfig(), model="kim_cnn", epochs=1, batch_size=16, precision="float32",
                    schedule="constant", steps_per_execution=1, out=str(tmp_path / "run"),
                    model_args={"sequence_length": 8, "filters": 4, "embedding_dim": 8},
                    **{"data.spec": _write_tsv(tmp_path / "rated.tsv"), "data.label_threshold": 0.0})


def test_a_two_class_run_logs_and_reports_no_top5(tmp_path):
    from kerascnn.inference.apply import evaluate
    from kerascnn.training import fit

    run = fit(_tiny_text_config(tmp_path), verbose=0).run_dir
    with open(run / "history.csv", newline="") as f:
        columns = set(csv.DictReader(f).fieldnames)
    assert {"accuracy", "val_accuracy", "loss"} <= columns and not {"top5", "val_top5"} & columns
    r = evaluate(run / "model.keras", plot=False)
    assert r.top5 is None and r.to_json()["top5"] is None and 0 <= r.top1 <= 1
    out = CliRunner().invoke(main, ["evaluate", str(run / "model.keras")])
    assert out.exit_code == 0, out.output
    assert "top-1" in out.output and "top-5" not in out.output


def test_lr_find_on_text_data_leaks_no_keras_shuffle_warning(tmp_path):
    import kerascnn
    from kerascnn.training.lr_find import lr_find

    settings = kerascnn.resolve_fit(_tiny_text_config(tmp_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = lr_find(settings, steps=10, out=str(tmp_path / "lrf"))
    assert len(r.losses) == 10
    assert not [w for w in caught if "shuffle" in str(w.message)], [str(w.message) for w in caught]
