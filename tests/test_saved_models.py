"""The models in saved_models/ still load safely and still score what saved_models/README.md says."""
import json
from pathlib import Path

import pytest

from kerascnn.inference import evaluate, load_model

SAVED = Path(__file__).resolve().parent.parent / "saved_models"


@pytest.mark.parametrize("folder", sorted(p.name for p in SAVED.iterdir() if (p / "model.keras").is_file()))
def test_saved_model_loads_with_safe_mode_and_its_run_files(folder):
    run = SAVED / folder
    model = load_model(run / "model.keras")
    classes = json.loads((run / "classes.json").read_text())
    assert model.output_shape[-1] == len(classes)
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == model.name


def test_lenet5_digits_scores_what_the_readme_says():
    r = evaluate(SAVED / "lenet5_digits" / "model.keras", "digits", plot=False)
    assert r.count == 179
    assert r.top1 >= 0.99
    assert "99.44%" in (SAVED / "README.md").read_text()
    assert f"{r.top1:.2%}" == "99.44%"


def test_kim_cnn_movie_reviews_reads_raw_sentences_as_the_readme_shows():
    import numpy as np

    run = SAVED / "kim_cnn_movie_reviews"
    model = load_model(run / "model.keras")
    assert json.loads((run / "classes.json").read_text()) == ["negative", "positive"]
    config = json.loads((run / "config.json").read_text())
    assert config["embeddings"] == "glove.6B.50d" and config["recipe"] == "kim2014"
    # multichannel: the GloVe vectors twice, one copy frozen, one tuned
    assert not model.get_layer("embedding_static").trainable and model.get_layer("embedding_tuned").trainable
    texts = np.asarray(["a gorgeous, witty, seductive movie.", "the plot is a dull, tedious mess"], dtype=object)
    probs = model.predict(texts, verbose=0)
    assert probs.argmax(axis=1).tolist() == [1, 0] and probs.max(axis=1).min() > 0.9
    for channel in ("embedding_static", "embedding_tuned"):  # padding and [UNK] add nothing
        assert not model.get_layer(channel).get_weights()[0][:2].any()
    readme = (SAVED / "README.md").read_text()
    history = (run / "history.csv").read_text().splitlines()
    best = max(float(row.split(",")[history[0].split(",").index("val_accuracy")]) for row in history[1:])
    assert f"{best:.2%}" in readme  # the val top-1 the README quotes is the epoch the model holds


def test_the_fashion_model_refuses_the_digits():
    from kerascnn.errors import SettingError

    with pytest.raises(SettingError, match=r"\[0, 1, 2, .*\[T-shirt/top, Trouser, ") as e:
        evaluate(SAVED / "lenet5_fashion_mnist" / "model.keras", "digits", plot=False)
    assert e.value.param == "data"


FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.slow
@pytest.mark.skipif(not (FASHION / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason="apt-get install dataset-fashion-mnist")
def test_lenet5_fashion_mnist_scores_what_the_readme_says_on_the_test_images():
    r = evaluate(SAVED / "lenet5_fashion_mnist" / "model.keras", plot=False)  # its run's data: idx:FASHION
    assert (r.data, r.split, r.count) == (f"idx:{FASHION}", "test", 10_000)
    assert f"{r.top1:.2%} top-1" in (SAVED / "README.md").read_text()


@pytest.mark.slow
@pytest.mark.skipif(not (FASHION / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason="apt-get install dataset-fashion-mnist")
def test_resnet20_recipe_model_scores_what_the_readme_says_on_the_test_images():
    r = evaluate(SAVED / "resnet20_fashion_mnist" / "model.keras", plot=False)  # its config's data: idx:FASHION
    assert (r.data, r.split, r.count) == (f"idx:{FASHION}", "test", 10_000)
    assert r.top1 >= 0.935  # issue 14's goal for --recipe resnet_cifar
    assert f"{r.top1:.2%} top-1" in (SAVED / "README.md").read_text()


def test_cin_styles_loads_safely_knows_its_styles_and_paints_them_differently():
    import numpy as np

    from kerascnn.apps.fast_style import Stylizer

    painter = Stylizer(SAVED / "cin_styles" / "styles.keras")  # kerascnn.models.loading.load_model: safe_mode on
    record = json.loads((SAVED / "cin_styles" / "styles.json").read_text())
    assert painter.names == record["styles"] == ["elephants", "hubble", "dune"]
    y, x = np.mgrid[0:42, 0:50]
    photo = np.stack([128 + 90 * np.sin(x / 4.0), 128 + 90 * np.cos(y / 5.0), 100 + 0 * x], -1).astype("float32")
    outs = [painter(photo, painter.vector(i)) for i in range(3)]
    assert all(o.shape == photo.shape for o in outs)
    for i in range(3):
        for j in range(i):
            assert np.mean(np.abs(outs[i] - outs[j])) > 5.0  # three styles, three different paintings


@pytest.mark.parametrize("config", sorted(SAVED.glob("*/config.json")), ids=lambda p: p.parent.name)
def test_no_saved_config_names_a_temporary_folder(config):
    """A run's data and folder as a user can make them again (saved_models/README.md's commands), not
    the scratch folder the run was first written to."""
    text = config.read_text()
    assert "/tmp" not in text
    data = json.loads(text)["data"]["spec"]
    if not (data in ("digits",) or data.startswith("idx:/usr/share/datasets/")):
        assert f"--data {data} " in (SAVED / "README.md").read_text()  # made by the README's own command
