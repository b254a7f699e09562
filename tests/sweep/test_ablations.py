"""The ablation sweep files of recipes/ablations/: each parses, passes the sweep check, says which
report settings it stands for, and every one of its trials builds (loss, model, optimizer, schedule,
augmentations) on Fashion-MNIST's and CIFAR-10's image shapes, so a sweep cannot fail at trial 5 on
a key the config check does not see (model options, an optimizer key, a binary loss on 10 classes).
No data is read and nothing trains: the models are built on the meta device."""

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from cnnlab.config import load_recipe
from cnnlab.config.recipes import RECIPES_DIR, describe, find_recipe
from cnnlab.data.augment import build_augmentations
from cnnlab.engine.losses import build_loss
from cnnlab.engine.model_setup import create_model
from cnnlab.engine.session import lr_factor, make_optimizer_factory
from cnnlab.sweep.spec import check_spec, is_sweep_file, override, read_sweep_file

ABLATIONS = RECIPES_DIR / "ablations"
SWEEPS = sorted(p for p in ABLATIONS.glob("*.yaml") if is_sweep_file(p))
# Issue 11, item 4: one sweep per ablation the reports ran.
ISSUE_11 = {"lr_weight_scale", "lr_sweep", "lr_batchnorm", "l2", "relu_swish", "batch_size", "optimizers",
            "bce_hinge", "dropout", "augmentation"}
SHAPES = {"fashion_mnist": (1, 28, 28), "cifar10": (3, 32, 32)}  # the default data and the reports' own
FULL_TRAIN = {"fashion_mnist": 60_000, "cifar10": 50_000}  # training images before the validation split
# Training images a sweep may show its trials in all, epochs and seeds counted: 1.5M is about 5 minutes
# of SimpleNN on a 2-core CPU, the ~10 minutes a sweep should take with slower nets and small batches.
MAX_IMAGES = 1_500_000
SEED_FILE = re.compile(r"seeds/\d{3}_[0-9a-f]{16}\.txt")  # a report in the project's seed folder


def trial_configs(path: Path, dataset: str = "fashion_mnist"):
    """The resolved config of every grid point of the sweep file at ``path`` (seeds left out)."""
    spec = read_sweep_file(path)
    recipe = find_recipe(spec.recipe)
    return [load_recipe(recipe, [*spec.overrides, f"data.name={dataset}",
                                 *(override(k, v) for k, v in point.items() if k != "seed")])
            for point in spec.grid_points() if point["seed"] == 0]


def test_every_ablation_of_the_issue_has_its_sweep_file():
    assert {p.stem for p in SWEEPS} == ISSUE_11
    recipes = {Path(read_sweep_file(p).recipe).resolve() for p in SWEEPS}
    others = {p.resolve() for p in ABLATIONS.glob("*.y*ml")} - {p.resolve() for p in SWEEPS}
    assert others <= recipes, f"{sorted(p.name for p in others - recipes)}: neither a sweep nor its recipe"


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_sweep_file_passes_the_check_and_says_what_it_stands_for(path):
    spec = check_spec(read_sweep_file(path))
    assert spec.mode == "grid" and spec.grid
    for key, values in spec.grid.items():
        assert len(values) >= 2, f"{key}: an ablation compares at least two values"
        assert len({repr(v) for v in values}) == len(values), f"{key}: a value is repeated"
    assert SEED_FILE.search(spec.note), "the note names the report it comes from (seeds/NNN_<hash>.txt)"
    assert len(spec.note.split()) >= 20, "the note gives the report's own settings and what it found"
    assert describe(path), "a leading comment: cnnlab recipes shows its first sentence"


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
@pytest.mark.parametrize("dataset", list(SHAPES))
def test_every_trial_builds_on_the_default_data_and_on_cifar10(path, dataset):
    C, H, W = SHAPES[dataset]
    for config in trial_configs(path, dataset):
        classes = len(config.data.classes) if config.data.classes else 10
        loss = build_loss(config.loss.name, classes, label_smoothing=config.loss.label_smoothing,
                          margin=config.loss.margin)
        with torch.device("meta"):  # shapes and options are checked; no memory, no init
            model = create_model(config.model.name, config.model.options, finetune=config.finetune, in_chans=C,
                                 num_outputs=loss.num_outputs, input_size=(H, W))
            assert model(torch.empty(2, C, H, W)).shape == (2, loss.num_outputs)
        make_optimizer_factory(config)([nn.Parameter(torch.zeros(2, 2))])
        lr_factor(config, total_steps=10, steps_per_epoch=5)
        build_augmentations(config.data.augment)


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_sweep_fits_a_small_cpu_with_explicit_epochs(path):
    spec = read_sweep_file(path)
    images = 0
    for config in trial_configs(path):
        assert config.train.time_budget_s is None, "a time budget would give each trial different epochs"
        d = config.data
        available = FULL_TRAIN[d.name] * (len(d.classes) / 10 if d.classes else 1)
        train = available - (d.val_size if d.val_size >= 1 else d.val_size * available)
        images += config.train.epochs * min(train, d.train_limit or train) * spec.seeds
    assert images <= MAX_IMAGES
