"""apps.transfer_learning and `kerascnn finetune`: the backbone stays as loaded, the classifier learns."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from kerascnn.apps.transfer_learning import finetune
from kerascnn.cli import main
from kerascnn.inference import load_model

DIGITS = {"data.spec": "digits", "data.val_split": 0.2}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """Our own small "pretrained" network: LeNet-5 after one epoch on the digits."""
    import kerascnn

    out = tmp_path_factory.mktemp("pre") / "run"
    kerascnn.fit(kerascnn.make_config("lenet5", epochs=1, out=str(out), **DIGITS), verbose=0)
    return out / "model.keras"


def test_finetune_freezes_the_backbone_and_trains_the_classifier(pretrained, tmp_path):
    source = load_model(pretrained)
    result = finetune("lenet5", weights=str(pretrained), epochs=1, out=str(tmp_path / "ft"), verbose=0, **DIGITS)
    tuned = result.model
    for name in ("conv1", "conv2", "fc1", "fc2"):
        for a, b in zip(source.get_layer(name).get_weights(), tuned.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    assert not np.allclose(source.get_layer("logits").get_weights()[0], tuned.get_layer("logits").get_weights()[0])
    assert [w.name for w in tuned.trainable_weights] == ["kernel", "bias"]


def test_finetune_cli_needs_weights_and_runs(pretrained, tmp_path):
    r = CliRunner().invoke(main, ["finetune", "--model", "lenet5", "--data", "digits"])
    assert r.exit_code == 2 and "--weights" in r.output
    r = CliRunner().invoke(main, ["finetune", "--model", "lenet5", "--weights", str(pretrained), "--epochs", "1",
                                  "--out", str(tmp_path / "cli")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "cli" / "model.keras").is_file()
    assert '"freeze": "backbone"' in (tmp_path / "cli" / "config.json").read_text()


def test_finetune_weights_none_is_the_random_init_baseline(tmp_path):
    r = CliRunner().invoke(main, ["finetune", "--model", "lenet5", "--weights", "none", "--epochs", "1",
                                  "--data", "digits", "--out", str(tmp_path / "base")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    config = json.loads((tmp_path / "base" / "config.json").read_text())
    assert config["weights"] is None and config["freeze"] == "none" and config["epochs"] == 1
    assert config["batch_size"] == 32  # the app's default, as for the pretrained run
    settings = json.loads((tmp_path / "base" / "settings.json").read_text())
    assert settings["command"] == "finetune" and settings["sources"]["batch_size"] == "app finetune"
