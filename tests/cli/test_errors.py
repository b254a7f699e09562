"""Bad input: one line on stderr, exit status 2, no traceback (unless --debug)."""

import subprocess
import sys

import numpy as np
import pytest

from cnnlab.cli.main import main
from cnnlab.data.idx import write_idx

RECIPE = "recipes/fashion_mnist.yaml"


def cnnlab(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "cnnlab.cli.main", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("args, message", [
    ([RECIPE, "data.name=mnist"], "unknown dataset 'mnist'"),
    ([RECIPE, "model.name=resnet21"], "unknown model 'resnet21'; did you mean 'resnet20'?"),
    ([RECIPE, "optim.name=adamm"], "unknown optimizer 'adamm'; did you mean 'adam'?"),
    ([RECIPE, "optim.lrr=0.1"], "unknown key 'optim.lrr'"),
    ([RECIPE, "train.epochs=ten"], "'train.epochs' must be an integer"),
    (["recipes/nope.yaml"], "recipe recipes/nope.yaml not found"),
    ([RECIPE, "model.options={dropot: 0.5}"], "has no option 'dropot'; did you mean 'dropout'?"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = cnnlab("train", *args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert result.stderr.startswith("cnnlab: error: ") and "Traceback" not in result.stderr


def test_debug_shows_the_traceback():
    result = cnnlab("--debug", "train", RECIPE, "model.name=resnet21")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_corrupt_idx_file_is_named(tmp_path):
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    for name, array in [("train-images-idx3-ubyte.gz", np.zeros((3, 28, 28), np.uint8)),
                        ("train-labels-idx1-ubyte.gz", np.zeros(3, np.uint8)),
                        ("t10k-images-idx3-ubyte.gz", np.zeros((2, 28, 28), np.uint8)),
                        ("t10k-labels-idx1-ubyte.gz", np.zeros(2, np.uint8))]:
        write_idx(folder / name, array)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b" + b"garbage")
    result = cnnlab("train", RECIPE, f"data.root={tmp_path}")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "t10k-images-idx3-ubyte.gz" in result.stderr


def test_missing_data_says_how_to_get_it(tmp_path, monkeypatch, capsys):
    import cnnlab.data.datasets as datasets

    monkeypatch.setattr(datasets, "DEBIAN_FASHION_DIR", tmp_path / "nothing-here")
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    from pathlib import Path

    recipe = Path(__file__).parents[2] / RECIPE
    assert main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Fashion-MNIST not found" in err and "make data" in err


def test_argparse_errors_are_one_line_too():
    result = cnnlab("trian")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "invalid choice" in result.stderr
