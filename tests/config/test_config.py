from pathlib import Path

import pytest
import yaml

from cnnlab.config import config_from_dict, config_to_dict, dump_yaml, load_recipe
from cnnlab.errors import CnnlabError

RECIPES = sorted(Path(__file__).parents[2].joinpath("recipes").glob("*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.stem for r in RECIPES])
def test_every_shipped_recipe_is_valid_and_roundtrips(recipe):
    config = load_recipe(recipe)
    assert config_from_dict(yaml.safe_load(dump_yaml(config))) == config


def test_overrides_are_parsed_as_yaml():
    config = load_recipe(None, ["optim.lr=1e-3", "model.options.hidden=[64, 32]", "data.classes=[0,1]",
                                "finetune.from=torchvision:alexnet", "train.early_stopping.patience=3"])
    assert config.optim.lr == 0.001 and config.model.options == {"hidden": [64, 32]}
    assert config.data.classes == [0, 1] and config.finetune.source == "torchvision:alexnet"
    assert config_to_dict(config)["finetune"]["from"] == "torchvision:alexnet"
    assert config.train.early_stopping.patience == 3


@pytest.mark.parametrize("words, message", [
    (["optim.lrr=0.1"], "unknown key 'optim.lrr' in override 'optim.lrr=0.1'; did you mean 'optim.lr'?"),
    (["optim.lr=fast"], "'optim.lr' must be a number, got 'fast'"),
    (["train.epochs=2.5"], "'train.epochs' must be an integer, got 2.5"),
    (["data.normalize=yes please"], "'data.normalize' must be one of none, channel, pixel, zca, imagenet, fixed, true, false, got 'yes please'"),
    (["optim.lr.x=1"], "'optim.lr' in override 'optim.lr.x=1' is a value, not a section"),
    (["epochs=3"], "unknown key 'epochs'"),
    (["lr"], "bad override 'lr': write key=value"),
    (["optim.betas=[0.9]"], "'optim.betas' must be a list of 2 values"),
    (["data.augment=[{name: flip_lr}, 3]"], "'data.augment[1]' must be a mapping"),
])
def test_bad_overrides_say_what_is_wrong(words, message):
    with pytest.raises(CnnlabError) as err:
        load_recipe(None, words)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_recipe_files(tmp_path):
    (tmp_path / "a.yaml").write_text("optim:\n  lr: 0.1\n  momentun: 0.9\n")
    with pytest.raises(CnnlabError, match="unknown key 'optim.momentun' in .*a.yaml; did you mean 'optim.momentum'"):
        load_recipe(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text("optim: [1, 2\n")
    with pytest.raises(CnnlabError, match="b.yaml is not valid YAML at line"):
        load_recipe(tmp_path / "b.yaml")
    with pytest.raises(CnnlabError, match="recipe .*missing.yaml not found"):
        load_recipe(tmp_path / "missing.yaml")
