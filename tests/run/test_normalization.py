"""A run's normalization on disk: the zca arrays file that data.json names, its sha256, and every
reader (restore, predict, resume) getting back what training used."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlab.analysis.evaluation import evaluate_run
from cnnlab.analysis.predict import Predictor
from cnnlab.config import load_recipe
from cnnlab.data.normalize import ChannelStats, fit_zca
from cnnlab.engine.fit import fit
from cnnlab.engine.progress import Progress
from cnnlab.engine.session import setup
from cnnlab.errors import CnnlabError
from cnnlab.run.normalization import pack_arrays, read_normalization
from cnnlab.run.restore import restore_model, restore_normalization, restore_splits
from tests.conftest import fit_killed_after, with_overrides

QUIET = Progress(quiet=True)


def zca_config(out, epochs=1):
    """The MLP on synthetic 1x8x8 images (64 values to whiten), ZCA with epsilon 0.01: seconds."""
    return load_recipe(None, [
        f"output_dir={out}", "data.name=synthetic", "data.val_size=50",
        "data.options={shape: [1, 8, 8], train_size: 300, test_size: 40, noise: 0.4}",
        "data.normalize=zca", "data.zca_epsilon=0.01", "model.name=mlp", "optim.lr=0.05",
        f"train.epochs={epochs}", "train.precision=fp32"])


@pytest.fixture(scope="module")
def zca_run(tmp_path_factory):
    return Path(fit(zca_config(tmp_path_factory.mktemp("runs")), progress=QUIET).run_dir)


def copy_of(run, tmp_path):
    return Path(shutil.copytree(run, tmp_path / "copy"))


def test_a_zca_run_keeps_its_matrix_in_the_file_data_json_names(zca_run):
    record = json.loads((zca_run / "data.json").read_text())["normalization"]
    blob = (zca_run / "normalization.npz").read_bytes()
    assert record == {"scheme": "zca", "epsilon": 0.01, "shape": [1, 8, 8], "file": "normalization.npz",
                      "sha256": hashlib.sha256(blob).hexdigest()}
    with np.load(zca_run / "normalization.npz") as arrays:  # numpy reads it as any .npz
        assert arrays["matrix"].shape == (64, 64) and arrays["matrix"].dtype == np.float32
        assert arrays["mean"].shape == (1, 8, 8) and arrays["eigenvalues"].shape == (64,)


def test_restore_and_predict_read_back_the_fit_of_the_train_split(zca_run):
    splits, stats = restore_splits(zca_run)
    refit = fit_zca(splits.train_images, 0.01)  # the same train split, fit again here
    for got in (stats, restore_normalization(zca_run), Predictor.from_run(zca_run).stats):
        np.testing.assert_array_equal(got.matrix, refit.matrix)
        np.testing.assert_array_equal(got.mean, refit.mean)
    with np.load(zca_run / "normalization.npz") as arrays:  # by hand: x / 255, centred, times the matrix
        images = splits.test_images[:8]
        x = (images.reshape(8, 64) / 255.0 - arrays["mean"].reshape(64)) @ arrays["matrix"]
    with torch.inference_mode():
        expected = torch.softmax(restore_model(zca_run)(torch.tensor(x, dtype=torch.float32).view(8, 1, 8, 8)), 1)
    got = np.stack([p.probs for p in Predictor.from_run(zca_run)(list(images))])
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-6)


def test_a_damaged_or_missing_arrays_file_is_one_line(zca_run, tmp_path):
    run = copy_of(zca_run, tmp_path)
    blob = bytearray((run / "normalization.npz").read_bytes())
    blob[-100] ^= 1  # one bit of the matrix
    (run / "normalization.npz").write_bytes(bytes(blob))
    with pytest.raises(CnnlabError, match=r"normalization.npz is damaged or was replaced: its sha256 is not the one "
                                          "data.json records for the zca normalization$"):
        restore_normalization(run)
    (run / "normalization.npz").unlink()
    with pytest.raises(CnnlabError, match=r"normalization.npz is missing: it holds the run's zca normalization "
                                          r"\(copy the whole run folder\)$"):
        Predictor.from_run(run)


def test_a_file_name_outside_the_run_folder_is_refused(zca_run, tmp_path):
    record = {**json.loads((zca_run / "data.json").read_text())["normalization"], "file": "../normalization.npz"}
    with pytest.raises(CnnlabError, match="is not a file name in the run folder; data.json is damaged"):
        read_normalization(zca_run, record)


def test_data_json_from_before_the_schemes_reads_as_channel(zca_run, tmp_path):
    run = copy_of(zca_run, tmp_path)
    data = json.loads((run / "data.json").read_text())
    data["normalization"] = {"mean": [0.3], "std": [0.2]}  # what every run recorded before the schemes
    (run / "data.json").write_text(json.dumps(data))
    assert restore_normalization(run) == ChannelStats((0.3,), (0.2,), "channel")


def test_the_arrays_file_has_the_same_bytes_for_the_same_arrays():
    arrays = {"b": np.arange(6.0).reshape(2, 3), "a": np.ones(4, np.float32)}
    assert pack_arrays(arrays) == pack_arrays(dict(reversed(arrays.items())))
    assert b"b.npy" in pack_arrays(arrays) and pack_arrays(arrays) != pack_arrays({**arrays, "a": np.zeros(4)})


def test_a_killed_zca_run_resumes(tmp_path):
    """Resuming fits the train split again and compares it with the record, sha256 included."""
    config = zca_config(tmp_path / "runs", epochs=2)
    killed = fit_killed_after(config, 1)
    summary = fit(config, progress=QUIET, resume=str(killed))
    assert summary.status == "completed" and summary.epochs_run == 2


def test_flip_tta_is_refused_where_mirroring_does_not_commute_with_normalization(zca_run, tmp_path):
    splits, stats = restore_splits(zca_run)
    x = torch.as_tensor(splits.test_images[:4])
    assert not torch.allclose(stats.normalize(x).flip(3), stats.normalize(x.flip(3)), atol=1e-3)  # hence
    with pytest.raises(CnnlabError, match="tta flip mirrors normalized images, .* this data.normalize is zca: use "
                                          "tta none"):
        evaluate_run(zca_run, tta="flip", timing=False)
    config = with_overrides(zca_config(tmp_path / "runs"), "data.normalize=pixel", "train.tta=flip")
    with pytest.raises(CnnlabError, match="this data.normalize is pixel"):
        setup(config)
    assert not (tmp_path / "runs").exists()  # refused before any run folder
