"""Bad input: one line on stderr, exit status 2, no traceback (unless --debug)."""

import gzip
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cnnlab.cli.main import main
from cnnlab.data.idx import write_idx

RECIPE = "recipes/fashion_mnist.yaml"


def cnnlab(*args, cwd=None, timeout=None):
    return subprocess.run([sys.executable, "-m", "cnnlab.cli.main", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


@pytest.mark.parametrize("args, message", [
    ([RECIPE, "data.name=mnist"], "unknown dataset 'mnist'"),
    ([RECIPE, "model.name=resnet21"], "unknown model 'resnet21'; did you mean 'resnet20'?"),
    ([RECIPE, "optim.name=adamm"], "unknown optim.name 'adamm'; did you mean 'adam'?"),
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
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "unknown command 'trian'; did you mean 'train'?" in result.stderr


# --- the user study's defects: each one line and exit 2 before anything trains -----------------

REPO = Path(__file__).parents[2]
FASHION = str(REPO / RECIPE)
FASHION_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"]


def fashion_files(folder: Path, test_hw=(28, 28), skip=()) -> Path:
    folder.mkdir(parents=True)
    arrays = [np.zeros((20, 28, 28), np.uint8), np.arange(20, dtype=np.uint8) % 10,
              np.zeros((10, *test_hw), np.uint8), np.arange(10, dtype=np.uint8) % 10]
    for stem, array in zip(FASHION_FILES, arrays):
        if stem not in skip:
            write_idx(folder / f"{stem}.gz", array)
    return folder


def corrupt_deflate(folder: Path) -> Path:
    """Fashion files whose train images hold a broken deflate stream (zlib.error, not a bad CRC)."""
    fashion_files(folder)
    path = folder / "train-images-idx3-ubyte.gz"
    write_idx(path, np.random.default_rng(0).integers(0, 4, (20, 28, 28)).astype(np.uint8))
    body = bytearray(path.read_bytes())
    body[len(body) // 2 : len(body) // 2 + 4] = bytes(b ^ 0xFF for b in body[len(body) // 2 : len(body) // 2 + 4])
    path.write_bytes(bytes(body))
    with pytest.raises(Exception, match="invalid"):
        gzip.decompress(bytes(body))
    return folder


def make_dir(folder: Path) -> Path:
    folder.mkdir()
    return folder


def write_recipe(tmp: Path, name: str, text: str) -> str:
    (tmp / name).write_text(text)
    return str(tmp / name)


# (recipe, override word(s), words of the error); a recipe or override may be built in tmp_path
DEFECTS = {
    "batch_size 0": (FASHION, "data.batch_size=0", "'data.batch_size' must be >= 1, got 0"),
    "batch_size -5": (FASHION, "data.batch_size=-5", "'data.batch_size' must be >= 1, got -5"),
    "lr -1": (FASHION, "optim.lr=-1", "'optim.lr' must be > 0, got -1"),
    "epochs 0": (FASHION, "train.epochs=0", "'train.epochs' must be >= 1, got 0"),
    "name ../x": (FASHION, "name=../x", "'name' must be made of letters, digits, '.', '_' and '-'"),
    "name a/b/c": (FASHION, "name=a/b/c", "'name' must be made of letters, digits, '.', '_' and '-'"),
    "name ..": (FASHION, "name=..", "'name' must be made of letters, digits, '.', '_' and '-'"),
    "channels_last maybe": (FASHION, "train.channels_last=maybe", "must be one of auto, true, false, got 'maybe'"),
    "precision": (FASHION, "train.precision=bf61", "unknown train.precision 'bf61'; did you mean 'bf16'?"),
    "device": (FASHION, "train.device=gpu", "'train.device' must be auto, cpu, cuda or cuda:N, got 'gpu'"),
    "label smoothing": (FASHION, "loss.label_smoothing=1", "'loss.label_smoothing' must be in [0, 1), got 1"),
    "model dropout": (FASHION, "model.options={dropout: 1.5}", "option 'dropout' must be in [0, 1), got 1.5"),
    "empty recipe": (lambda t: write_recipe(t, "empty.yaml", ""), "seed=0",
                     "has no keys (it is empty or only comments)"),
    "comments only": (lambda t: write_recipe(t, "c.yaml", "# nothing yet\n"), "seed=0", "has no keys"),
    "root missing": (FASHION, lambda t: f"data.root={t / 'some/missing/folder'}", "missing/folder is not a folder"),
    "root lacks a file": (FASHION, lambda t: f"data.root={fashion_files(t / 'fm', skip=['t10k-images-idx3-ubyte'])}",
                          "holds no complete Fashion-MNIST: "),
    "cifar root lacks": (str(REPO / "recipes/quick_test.yaml"),
                         lambda t: ["data.name=cifar10", "data.options={}", f"data.root={make_dir(t / 'empty')}"],
                         "holds no complete CIFAR-10: "),
    "corrupt deflate": (FASHION, lambda t: f"data.root={corrupt_deflate(t / 'fm')}",
                        "cannot read IDX file "),
    "budget below an epoch": (FASHION, "train.time_budget_s=1",
                              "train.time_budget_s=1 is too short for one epoch: here one epoch (215 steps of "),
    "budget 0": (FASHION, "train.time_budget_s=0", "'train.time_budget_s' must be > 0, got 0"),
    "compile maybe": (FASHION, "train.compile=maybe", "must be one of auto, true, false, got 'maybe'"),
    "shapes differ": (FASHION, lambda t: f"data.root={fashion_files(t / 'fm', test_hw=(32, 32))}",
                      "train images are 1x28x28 but test images are 1x32x32"),
}


@pytest.mark.parametrize("case", DEFECTS, ids=list(DEFECTS))
def test_each_defect_is_one_line_exit_2_and_no_run_folder(tmp_path, case):
    recipe, override, message = DEFECTS[case]
    recipe = recipe(tmp_path) if callable(recipe) else recipe
    words = override(tmp_path) if callable(override) else override
    words = [words] if isinstance(words, str) else words
    before = sorted(tmp_path.rglob("*"))
    start = time.perf_counter()
    result = cnnlab("train", recipe, *words, cwd=tmp_path, timeout=60)  # a regression would train for minutes
    seconds = time.perf_counter() - start
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("cnnlab: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr and message in result.stderr
    assert sorted(tmp_path.rglob("*")) == before  # no run folder, in runs/ or anywhere else
    assert seconds < 30, f"took {seconds:.1f}s: a check that late runs after something heavy"


def test_channels_last_true_as_the_readme_writes_it_trains(tmp_path):
    quick = str(REPO / "recipes/quick_test.yaml")
    result = cnnlab("train", quick, "train.channels_last=true", "--print-config", cwd=tmp_path)
    assert result.returncode == 0 and "channels_last: true" in result.stdout, result.stderr
    result = cnnlab("train", quick, "train.channels_last=true", "train.epochs=1", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [p.name.startswith("quick-") for p in (tmp_path / "runs").iterdir()] == [True]
