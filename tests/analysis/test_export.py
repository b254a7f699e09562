"""export_run and cnnlab export: the files run in onnxruntime and torch.export.load as the eager model does."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from torch import nn

import cnnlab.analysis.export as export
from cnnlab.analysis.export import export_run
from cnnlab.cli.main import main
from cnnlab.config import load_recipe
from cnnlab.engine.fit import fit
from cnnlab.engine.progress import Progress
from cnnlab.errors import CnnlabError
from cnnlab.run.restore import restore_model, restore_splits
from tests.cli.test_cli import heavy_imports
from tests.conftest import synthetic_run


@pytest.fixture(scope="module")
def conv_run(tmp_path_factory):
    """convnet on synthetic 3x16x16 images, one epoch."""
    return synthetic_run(tmp_path_factory.mktemp("runs"), shape=(3, 16, 16), train_size=300, test_size=100,
                         val_size=50, model="convnet", epochs=1)


@pytest.fixture(scope="module")
def exports(conv_run):
    """The convnet exported to ONNX, then to pt2 (the second must leave the first)."""
    return export_run(conv_run, fmt="onnx"), export_run(conv_run, fmt="pt2")


@pytest.fixture(scope="module")
def binary_mlp_run(tmp_path_factory):
    """The MLP on two synthetic classes with BCE: one logit per image."""
    config = load_recipe(None, [
        f"output_dir={tmp_path_factory.mktemp('runs')}", "data.name=synthetic", "data.val_size=50",
        "data.options={shape: [1, 12, 12], num_classes: 2, train_size: 200, test_size: 60, noise: 0.6}",
        "model.name=mlp", "loss.name=bce", "optim.lr=0.05", "train.epochs=1", "train.precision=fp32"])
    return Path(fit(config, progress=Progress(quiet=True)).run_dir)


def by_hand(run, pixels):
    """The bare model on pixels normalized here from the recorded stats, in float64 then float32."""
    stats = json.loads((Path(run) / "data.json").read_text())["normalization"]
    mean = np.array(stats["mean"]).reshape(1, -1, 1, 1)
    std = np.array(stats["std"]).reshape(1, -1, 1, 1)
    x = ((pixels / 255.0 - mean) / std).astype(np.float32)
    with torch.inference_mode():
        return restore_model(run)(torch.from_numpy(x)).numpy(), x


@pytest.fixture(scope="module", params=["pixel", "zca"])
def whitened_run(request, tmp_path_factory):
    """The MLP on synthetic 3x6x6 images normalized per pixel or with ZCA (108 values whitened)."""
    config = load_recipe(None, [
        f"output_dir={tmp_path_factory.mktemp('runs')}", "data.name=synthetic", "data.val_size=50",
        "data.options={shape: [3, 6, 6], train_size: 300, test_size: 40, noise: 0.4}",
        f"data.normalize={request.param}", "data.zca_epsilon=0.01", "model.name=mlp", "optim.lr=0.05",
        "train.epochs=1", "train.precision=fp32"])
    return Path(fit(config, progress=Progress(quiet=True)).run_dir)


def listing(folder):
    """Every file under ``folder`` with its size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def test_onnx_file_runs_in_onnxruntime_with_pixels_and_any_batch(conv_run, exports):
    result = exports[0]
    assert result.path == conv_run / "export" / "model.onnx" and result.max_abs_diff <= 1e-4
    graph = onnx.load(str(result.path)).graph
    assert graph.input[0].name == "images" and graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    images = restore_splits(conv_run)[0].test_images  # (100, 3, 16, 16) uint8
    for n in (1, 5, 100):
        expected, _ = by_hand(conv_run, images[:n])
        got = session.run(None, {"images": images[:n]})[0]
        assert got.shape == (n, 10)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    assert result.images_checked == 100 and result.checked_on == "test split" and 1 in result.batch_sizes


def test_pt2_file_loads_with_torch_export_and_the_onnx_file_stays(conv_run, exports):
    onnx_result, pt2_result = exports
    program = torch.export.load(pt2_result.path).module()
    images = restore_splits(conv_run)[0].test_images
    for n in (1, 7):
        expected, _ = by_hand(conv_run, images[:n])
        with torch.inference_mode():
            got = program(torch.as_tensor(images[:n])).numpy()
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    records = json.loads((conv_run / "export" / "export.json").read_text())
    assert set(records) == {"model.onnx", "model.pt2"}
    assert records["model.onnx"]["opset"] >= 18 and records["model.pt2"]["opset"] is None
    for result in exports:
        data = result.path.read_bytes()
        assert records[result.path.name]["format"] == result.format and records[result.path.name]["bytes"] == len(data)
        assert records[result.path.name]["sha256"] == hashlib.sha256(data).hexdigest()
    recipe = json.loads((conv_run / "export" / "preprocessing.json").read_text())
    recorded = json.loads((conv_run / "data.json").read_text())
    assert recipe["normalize"]["mean"] == recorded["normalization"]["mean"]
    assert recipe["image"] == {**recipe["image"], "channels": 3, "height": 16, "width": 16, "dtype": "uint8"}
    assert set(recipe["models"]) == {"model.onnx", "model.pt2"} and "softmax" in recipe["output"]["probabilities"]


def test_unfolded_binary_mlp_takes_normalized_floats_and_gives_one_logit(binary_mlp_run, tmp_path):
    result = export_run(binary_mlp_run, fmt="onnx", output=tmp_path / "mlp.onnx", fold_preprocessing=False)
    images = restore_splits(binary_mlp_run)[0].test_images[:9]
    expected, normalized = by_hand(binary_mlp_run, images)
    session = onnxruntime.InferenceSession(str(tmp_path / "mlp.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"images": normalized})[0]
    assert got.shape == (9, 1) and result.input_dtype == "float32"
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    recipe = json.loads((tmp_path / "preprocessing.json").read_text())
    assert recipe["output"]["shape"] == ["N", 1]
    assert "p(class1) = 1 / (1 + exp(-z))" in recipe["output"]["probabilities"]
    assert recipe["models"]["mlp.onnx"]["input"]["dtype"] == "float32"
    records = json.loads((binary_mlp_run / "export" / "export.json").read_text())  # the record stays in the run
    assert records[str(tmp_path / "mlp.onnx")]["input_dtype"] == "float32"


class ValueGate(nn.Module):
    """Python control flow on a tensor's value: torch.export traces shapes, not values."""

    def forward(self, x):
        return x.relu() if x.mean() > 0 else x


class CumMax(nn.Module):
    """aten.cummax: torch.export takes it, onnxscript has no ONNX function for it."""

    def forward(self, x):
        return torch.cummax(x, dim=1).values


class CallCounter(nn.Module):
    """Adds how often it was called: export bakes in 1, eager goes on counting, so they disagree."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x + self.calls


@pytest.mark.parametrize("layer, fmt, message", [
    (ValueGate(), "pt2", "cannot export layer 'features.act2' (ValueGate) to pt2: its Python control flow "
                         "depends on tensor values"),
    (CumMax(), "onnx", "cannot export layer 'features.act2' (CumMax) to onnx: aten.cummax has no ONNX translation"),
    (CallCounter(), "pt2", "the exported pt2 file disagrees with PyTorch by up to"),
])
def test_a_layer_the_exporter_cannot_handle_is_named_and_nothing_is_written(conv_run, exports, monkeypatch,
                                                                             layer, fmt, message):
    def restore_with_layer(path, checkpoint="best"):
        model = restore_model(path, checkpoint)
        model.features.act2 = layer  # a ReLU before: same shapes
        return model

    monkeypatch.setattr(export, "restore_model", restore_with_layer)
    before = listing(conv_run)
    with pytest.raises(CnnlabError) as failed:
        export_run(conv_run, fmt=fmt)
    assert message in str(failed.value) and "\n" not in str(failed.value)
    assert listing(conv_run) == before


def test_bad_runs_fail_in_one_line_and_leave_the_run_as_it_was(conv_run, tmp_path, capsys):
    run = shutil.copytree(conv_run, tmp_path / "run")
    checkpoint = sorted((run / "checkpoints").glob("*.safetensors"))[-1]
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])  # a copy cut short
    cases = [
        (["export", str(tmp_path / "missing"), "--format", "pt2"], "is not a cnnlab run directory"),
        (["export", str(run / "checkpoints"), "--format", "onnx"], "is not a cnnlab run directory (no config.yaml)"),
        (["export", str(run), "--format", "tflite"], "unknown --format 'tflite' (valid: onnx, pt2)"),
        (["export", str(run), "--format", "onx"], "did you mean 'onnx'?"),
        (["export", str(run), "--format", "pt2", "--output", str(tmp_path / "m.onnx")], "should end in .pt2"),
        (["export", str(run), "--format", "pt2"], f"checkpoint {checkpoint} is not a readable safetensors file"),
    ]
    before = listing(run)
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("cnnlab: error: ") and message in err, err
    assert listing(run) == before


def test_split_not_readable_checks_on_random_pixels(binary_mlp_run, tmp_path, monkeypatch):
    def unreadable(path):
        raise CnnlabError("no dataset here")

    monkeypatch.setattr(export, "restore_splits", unreadable)
    result = export_run(binary_mlp_run, fmt="pt2", output=tmp_path)
    assert result.path == tmp_path / "model.pt2" and result.images_checked == 256
    assert result.checked_on.startswith("random") and "no dataset here" in result.checked_on


def test_cli_prints_the_file_the_check_and_how_to_run_it(conv_run, tmp_path, capsys):
    assert main(["export", str(conv_run), "--format", "pt2", "--checkpoint", "last",
                 "--output", str(tmp_path / "convnet.pt2")]) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'convnet.pt2'} (" in out and "uint8 (N, 3, 16, 16) -> logits (N, 10)" in out
    assert "checked 100 images (test split) in batches of 1, 3, 36, 64:" in out
    assert "max |torch.export.load - PyTorch| = " in out and "run it: torch.export.load(" in out
    assert (tmp_path / "preprocessing.json").is_file() and (tmp_path / "convnet.pt2").is_file()


def test_export_help_imports_no_torch():
    assert heavy_imports(["export", "--help"]) == ("0", [])


def test_missing_onnxruntime_is_one_line_that_says_how_to_install_it(conv_run, monkeypatch):
    real = export.importlib.util.find_spec
    monkeypatch.setattr(export.importlib.util, "find_spec", lambda name: None if name == "onnxruntime" else real(name))
    with pytest.raises(CnnlabError, match=r"exporting to ONNX needs onnxruntime, .*: pip install onnxruntime$"):
        export_run(conv_run, fmt="onnx")


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_pixel_and_zca_normalization_is_folded_into_the_graph(whitened_run, fmt, tmp_path):
    result = export_run(whitened_run, fmt=fmt, output=tmp_path / f"model.{fmt}")
    images = restore_splits(whitened_run)[0].test_images[:9]  # (9, 3, 6, 6) uint8
    with np.load(whitened_run / "normalization.npz") as arrays:  # by hand, from the run's own file
        x = images / 255.0 - arrays["mean"]
        x = x / arrays["std"] if "std" in arrays else (x.reshape(9, -1) @ arrays["matrix"]).reshape(x.shape)
    with torch.inference_mode():
        expected = restore_model(whitened_run)(torch.tensor(x, dtype=torch.float32)).numpy()
    if fmt == "onnx":
        session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
        got = session.run(None, {"images": images})[0]
    else:
        with torch.inference_mode():
            got = torch.export.load(result.path).module()(torch.as_tensor(images)).numpy()
    assert result.max_abs_diff <= 1e-4 and result.checked_on == "test split"
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    recipe = json.loads((tmp_path / "preprocessing.json").read_text())
    scheme = json.loads((whitened_run / "data.json").read_text())["normalization"]["scheme"]
    assert recipe["normalize"]["scheme"] == scheme and recipe["normalize"]["file"] == "normalization.npz"
    assert (tmp_path / "normalization.npz").read_bytes() == (whitened_run / "normalization.npz").read_bytes()
