"""cnnlab data stats / preview / export, through main() as a user runs them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.cli.main import main
from cnnlab.config import load_recipe
from cnnlab.data.augment import build_augmentations
from cnnlab.data.overview import augmented_sample, class_balance
from cnnlab.data.prepare import load_splits

DATA = ["data.name=synthetic", "data.options={shape: [3, 16, 16], train_size: 300, test_size: 100, num_classes: 4}",
        "data.val_size=40"]
AUGMENT = "data.augment=[{name: random_crop, padding: 2}, {name: flip_lr}, {name: color_jitter, brightness: 0.4}]"


def test_stats_prints_the_splits_the_classes_and_the_normalization(capsys):
    assert main(["data", "stats", "quick_test", *DATA]) == 0
    out = capsys.readouterr().out
    splits = load_splits(load_recipe(None, DATA).data)
    assert "synthetic (generated): 3x16x16, 4 classes" in out
    for part, n in (("train", 260), ("val", 40), ("test", 100)):
        assert any(line.split() == [part, str(n)] for line in out.splitlines())
    counts = {part: np.bincount(getattr(splits, f"{part}_labels"), minlength=4) for part in ("train", "val", "test")}
    for k in range(4):  # one row per class: its images in train, val and test, counted by numpy
        assert [f"class{k}", *(str(counts[p][k]) for p in ("train", "val", "test"))] in [l.split() for l in out.splitlines()]
    assert [r.counts["train"] for r in class_balance(splits)] == counts["train"].tolist()
    assert "normalization, fitted on the train split only: channel" in out


def test_preview_writes_a_grid_of_the_seeded_augmented_sample(tmp_path, capsys):
    out = tmp_path / "look.png"
    assert main(["data", "preview", "quick_test", *DATA, AUGMENT, "--count", "12", "--columns", "4",
                 "--output", str(out)]) == 0
    assert capsys.readouterr().out.strip() == (f"wrote {out}: 12 augmented training images of synthetic "
                                               "(random_crop, flip_lr, color_jitter), 4 per row")
    with Image.open(out) as image:
        assert image.format == "PNG" and image.width > image.height > 200  # 4 columns, 3 rows of titled images
    data = load_recipe(None, [*DATA, AUGMENT]).data
    splits = load_splits(data)
    images, labels = augmented_sample(splits, data.augment, 12, seed=0)
    again, _ = augmented_sample(splits, data.augment, 12, seed=0)
    other, _ = augmented_sample(splits, data.augment, 12, seed=1)
    assert np.array_equal(images, again) and not np.array_equal(images, other)
    # the sample is the seeded draw of training images, augmented by the recipe's ops in order
    generator = torch.Generator().manual_seed(0)
    picked = torch.randperm(len(splits.train_labels), generator=generator)[:12].sort().values.numpy()
    batch = torch.from_numpy(splits.train_images[picked])
    for op in build_augmentations(data.augment):
        batch = op(batch, generator)
    assert np.array_equal(images, batch.numpy()) and np.array_equal(labels, splits.train_labels[picked])


@pytest.mark.parametrize("argv, message", [
    (["data", "preview", "quick_test", "--count", "0"], "--count and --columns must be at least 1, got 0 and 8"),
    (["data", "preview", "quick_test", "data.augment=[{name: rotat}]"], "unknown augmentation 'rotat'"),
    (["data", "stats", "no_such_recipe"], "no recipe file or packaged recipe named 'no_such_recipe'"),
    (["data", "stats", "ablations/lr_sweep"], "ablations/lr_sweep is a sweep file (recipe and grid or search): run it "
                                              "with 'cnnlab sweep ablations/lr_sweep', or give the recipe it names"),
])
def test_bad_data_commands_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_export_writes_png_class_folders_that_train_reads_back_exactly(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CNNLAB_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "synth-png"
    assert main(["data", "export", "synthetic", str(out), "--format", "imagefolder", "shape=[3,12,12]",
                 "train_size=50", "test_size=20", "num_classes=3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"wrote 70 PNG files (train 50, test 20) of synthetic to {out} in ")
    assert lines[0].endswith(" s: 3 class folders in each part, " + lines[0].rsplit(", ", 1)[1])
    assert lines[1] == f"train on it: cnnlab train RECIPE data.name=imagefolder data.root={out}"
    assert sorted(p.name for p in (out / "train").iterdir()) == ["0_class0", "1_class1", "2_class2"]
    from cnnlab.data import load_dataset

    original = load_dataset("synthetic", shape=(3, 12, 12), train_size=50, test_size=20, num_classes=3)
    folder = load_dataset("imagefolder", out)
    for part in ("train", "test"):  # by class, then in the dataset's order: a stable sort of the labels
        labels = getattr(original, f"{part}_labels")
        order = np.argsort(labels, kind="stable")
        assert np.array_equal(getattr(folder, f"{part}_images"), getattr(original, f"{part}_images")[order])
        assert np.array_equal(getattr(folder, f"{part}_labels"), labels[order])
    # the bench's round-trip check agrees, and refuses one changed pixel or the dataset's own class names
    from dataclasses import replace

    from cnnlab.bench.data import same_as_idx

    assert same_as_idx(folder, original)
    changed = folder.test_images.copy()
    changed[0, 0, 0, 0] ^= 1
    assert not same_as_idx(replace(folder, test_images=changed), original)
    assert not same_as_idx(replace(folder, classes=original.classes), original)
    assert main(["data", "export", "synthetic", str(out), "--format", "imagefolder"]) == 2  # not empty: refused
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(out) in err
