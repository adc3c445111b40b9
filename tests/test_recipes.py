"""--recipe NAME: the papers' recipes as a layer of settings; the schedules and optimizers they need."""
import json
import math

import pytest
from click.testing import CliRunner

import kerascnn
from kerascnn.cli import main
from kerascnn.config import TrainConfig, override
from kerascnn.errors import SettingError
from kerascnn.recipes import RECIPES

# a model each recipe fits (the Inception v3 recipe's auxiliary classifier needs an Inception)
MODEL = {"alexnet2012": "alexnet", "vgg2014": "vgg16", "resnet_cifar": "resnet20", "inception_v3": "inception_v3",
         "kim2014": "kim_cnn"}


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_resolves_and_each_of_its_values_says_where_it_came_from(name, tmp_path):
    data = {}
    if kerascnn.get_spec(MODEL[name]).inputs == "text":  # a text model needs text data
        (tmp_path / "t.tsv").write_text("1\t1.0\ta good film\n2\t-1.0\ta bad film\n")
        data = {"data": f"tsv:{tmp_path / 't.tsv'}"}
    r = kerascnn.resolve_fit(MODEL[name], recipe=name, **data)
    expected = {("augment." if k in ("crop", "hflip", "pca_jitter", "translate") else
                 "data." if k == "val_split" else "") + k: v for k, v in RECIPES[name].settings.items()}
    for key, value in expected.items():
        got = r.config
        for part in key.split("."):
            got = getattr(got, part)
        assert got == value, key
        assert r.sources[key] == f"recipe {name}", key
    assert r.config.recipe == name


def test_flags_and_files_override_a_recipe_and_a_recipe_overrides_the_apps_defaults(tmp_path):
    from kerascnn.apps.transfer_learning import resolve as resolve_finetune

    r = kerascnn.resolve_fit("resnet20", recipe="resnet_cifar", lr=0.05)
    assert r.config.lr == 0.05 and r.sources["lr"] == "argument"
    assert r.config.optimizer == "sgd" and r.sources["optimizer"] == "recipe resnet_cifar"
    f = tmp_path / "s.toml"
    f.write_text("batch_size = 64\n")
    r = kerascnn.resolve_fit("resnet20", recipe="resnet_cifar", config_file=f)
    assert r.config.batch_size == 64 and r.sources["batch_size"] == f"file {f}"
    r = resolve_finetune({"model": "resnet20", "weights": "none", "recipe": "resnet_cifar"})
    assert r.config.batch_size == 128 and r.sources["batch_size"] == "recipe resnet_cifar"  # finetune: 32
    assert r.sources["epochs"] == "recipe resnet_cifar"


def test_an_unknown_recipe_is_a_setting_error_with_suggestions():
    with pytest.raises(SettingError) as e:
        kerascnn.resolve_fit("alexnet", recipe="alexnet")
    assert e.value.param == "recipe" and "alexnet2012" in str(e.value)


def test_multistep_divides_by_ten_at_the_milestones():
    from kerascnn.training.optim import make_schedule

    cfg = override(TrainConfig(), lr=0.1, schedule="multistep", milestones=(0.5, 0.75), epochs=10)
    s = make_schedule(cfg, steps_per_epoch=10)  # 100 steps: /10 from step 50 and from step 75
    got = [float(s(step)) for step in (0, 49, 50, 74, 75, 99)]
    assert got == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


def test_exponential_decays_every_decay_epochs():
    from kerascnn.training.optim import make_schedule

    cfg = override(TrainConfig(), lr=0.045, schedule="exponential", decay_rate=0.94, decay_epochs=2.0)
    s = make_schedule(cfg, steps_per_epoch=5)  # a decay every 10 steps
    for step in (0, 9, 10, 19, 20, 55):
        assert float(s(step)) == pytest.approx(0.045 * 0.94 ** math.floor(step / 10))


def test_rmsprop_with_the_inception_v3_settings():
    from kerascnn.training.optim import make_optimizer

    cfg = kerascnn.resolve_fit("inception_v3", recipe="inception_v3").config
    opt = make_optimizer(cfg, steps_per_epoch=10)
    assert type(opt).__name__ == "RMSprop"
    assert (opt.rho, opt.epsilon, opt.global_clipnorm) == (0.9, 1.0, 2.0)


def test_recipes_command_lists_them_with_their_papers():
    r = CliRunner().invoke(main, ["recipes"])
    assert r.exit_code == 0, r.output
    for name, recipe in RECIPES.items():
        assert f"{name}  ({recipe.paper})" in r.output
    data = json.loads(CliRunner().invoke(main, ["recipes", "--format", "json"]).output)
    assert data["resnet_cifar"]["settings"]["milestones"] == [0.5, 0.75]


def test_milestones_flag_and_its_checks():
    r = CliRunner().invoke(main, ["fit", "--schedule", "multistep", "--milestones", "0.3,0.6", "--print-config"])
    assert r.exit_code == 0 and "milestones = [0.3, 0.6]" in r.output
    r = CliRunner().invoke(main, ["fit", "--milestones", "0.5,1.5"])
    assert r.exit_code == 2 and "--milestones" in r.output


@pytest.mark.parametrize("name, model, side", [("alexnet2012", "resnet20", 32), ("vgg2014", "resnet20", 32),
                                               ("resnet_cifar", "resnet20", 32), ("inception_v3", "googlenet", 65)])
def test_every_recipe_trains_a_few_steps(name, model, side, tmp_path):
    """Optimizer, schedule, augmentation (and for Inception v3 the auxiliary loss and clipping) built
    and run: one epoch of two steps on a small folder of photos-to-be."""
    import data_helpers as h
    from kerascnn.training import fit

    data = h.class_folder(str(tmp_path / "data"), {"a": 5, "b": 5}, size=(side, side))
    r = kerascnn.resolve_fit(model, recipe=name, epochs=1, batch_size=4, val_split=0.2, data=data,
                             input_shape=(side, side, 3), precision="float32", out=str(tmp_path / "run"))
    result = fit(r, verbose=0)
    assert len(result.history) == 1 and math.isfinite(float(result.history[0]["loss"]))
    assert json.loads((tmp_path / "run" / "settings.json").read_text())["sources"]["optimizer"] == f"recipe {name}"


def test_the_kim2014_recipe_trains_a_text_model_a_few_steps(tmp_path):
    """Adadelta, batch 50, early stopping on the held-out 10%: one epoch on a small rated TSV."""
    from kerascnn.training import fit

    lines = [f"{i}\t{1.5 if i % 2 else -1.5}\t{'a fine warm film' if i % 2 else 'a dull cold mess'} {i}"
             for i in range(120)]
    (tmp_path / "rated.tsv").write_text("\n".join(lines) + "\n")
    r = kerascnn.resolve_fit("kim_cnn", recipe="kim2014", epochs=1, data=f"tsv:{tmp_path / 'rated.tsv'}",
                             label_threshold=0.0, precision="float32", out=str(tmp_path / "run"))
    assert (r.config.optimizer, r.config.batch_size, r.config.data.val_split) == ("adadelta", 50, 0.1)
    result = fit(r, verbose=0)
    assert len(result.history) == 1 and math.isfinite(float(result.history[0]["loss"]))
    assert result.class_names == ["negative", "positive"]

