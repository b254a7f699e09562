"""cnnlab quantize: PT2E int8 of a run's model, against torchao's own lowering and the fp32 model."""

import hashlib
import json

import numpy as np
import pytest
import torch
from torch import nn

from cnnlab.analysis.evaluation import evaluate_run
from cnnlab.analysis.predict import Predictor
from cnnlab.analysis.quantize import FILE, load_quantized, lower_to_x86, quantize_model
from cnnlab.analysis.quantize_table import quantize_run, write_quantized
from cnnlab.cli.main import main
from cnnlab.errors import CnnlabError
from cnnlab.run.restore import restore_model, restore_splits
from tests.conftest import synthetic_run


@pytest.fixture(scope="module")
def convnet_run(tmp_path_factory):
    # 1x16x16 convnet: conv1-3 then fc4 (256 -> 1000) and fc5, 421,570 parameters, mostly in fc4
    return synthetic_run(tmp_path_factory.mktemp("runs"), model="convnet", noise=0.5, epochs=2)


@pytest.fixture(scope="module")
def quantized(convnet_run):
    record, blob = quantize_run(convnet_run, calibration=2, compile=False)
    write_quantized(convnet_run, record, blob)
    return record


def folder_state(run_dir) -> dict:
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*")) if p.is_file()}


def normalized_test_images(run_dir, count=64):
    splits, stats = restore_splits(run_dir)
    return stats.normalize(torch.as_tensor(splits.test_images[:count]))  # (count, 1, 16, 16)


def test_table_sizes_layers_and_accuracy(convnet_run, quantized):
    rows = {r["precision"]: r for r in quantized["rows"]}
    assert rows["fp32"]["file_bytes"] > 4 * 421_570  # the fp32 weights of every layer
    assert quantized["ratios"]["int8"]["size"] < 0.3  # int8 weights, fp32 biases and scales
    assert quantized["layers"] == {"int8": ["features.conv1", "features.conv2", "features.conv3",
                                            "classifier.fc4", "classifier.fc5"], "fp32": []}
    summary = json.loads((convnet_run / "summary.json").read_text())
    assert rows["fp32"]["test_top1"] == pytest.approx(summary["test"]["acc"], abs=1e-9)  # same images, same model
    assert abs(quantized["ratios"]["int8"]["test_points"]) <= 2.0  # 200 test images: one image is 0.5 points
    for row in rows.values():
        assert row["eager_images_per_s"] > 0 and row["latency_ms"] > 0 and row["compiled_images_per_s"] is None
    saved = json.loads((convnet_run / "quantize.json").read_text())
    assert saved["rows"] == quantized["rows"] and (convnet_run / FILE).stat().st_size == rows["int8"]["file_bytes"]


def test_lowering_equals_torchaos_own_and_the_reference_graph(convnet_run):
    from torchao.quantization.pt2e.lowering import lower_pt2e_quantized_to_x86

    model = restore_model(convnet_run)
    x = normalized_test_images(convnet_run)
    graph = quantize_model(model, x[:2], [x])
    ours = lower_to_x86(graph, x[:2])
    theirs = lower_pt2e_quantized_to_x86(graph, (x,))  # torchao's lowering, fixed to this batch of 64
    for node in theirs.graph.nodes:  # its flatten is a view, which oneDNN's channels_last output refuses
        if node.target == torch.ops.aten.view.default:
            node.target = torch.ops.aten.reshape.default
    theirs.recompile()
    with torch.inference_mode():
        reference = graph(x)  # torchao's quantize/dequantize graph, run op by op in fp32
        assert torch.equal(ours(x), theirs(x))  # the uint8 pooling and reshapes are exact
        assert (ours(x) - reference).abs().max() < 1e-3
        assert (ours(x[:1]) - reference[:1]).abs().max() < 1e-3  # any batch size
        fp32 = model(x)
    agree = (ours(x).argmax(1) == fp32.argmax(1)).float().mean()
    assert agree >= 0.9 and (ours(x) - fp32).abs().max() < 0.2 * fp32.abs().max()


def test_saved_int8_model_is_what_was_measured(convnet_run, quantized):
    int8 = load_quantized(convnet_run)
    assert int8.meta["checkpoint"] == "best" and int8.meta["format"] == "cnnlab-pt2e-int8"
    x = normalized_test_images(convnet_run, 200)
    splits, _ = restore_splits(convnet_run)
    with torch.inference_mode():
        top1 = float((int8.module(x).argmax(1).numpy() == splits.test_labels[:200]).mean())
    assert top1 == pytest.approx(next(r for r in quantized["rows"] if r["precision"] == "int8")["test_top1"])


def test_eval_and_predict_use_the_int8_model(convnet_run, quantized, tmp_path, capsys):
    from PIL import Image

    int8 = next(r for r in quantized["rows"] if r["precision"] == "int8")
    evaluation, _ = evaluate_run(convnet_run, timing=False, int8=True)
    assert evaluation.int8 and evaluation.top1 == pytest.approx(int8["test_top1"])
    assert main(["eval", str(convnet_run), "--int8", "--no-timing"]) == 0
    assert "int8 model of the best checkpoint" in capsys.readouterr().out
    assert json.loads((convnet_run / "eval-test-int8.json").read_text())["int8"] is True
    assert not (convnet_run / "eval-test.json").exists()  # the fp32 evaluation's file is another one
    splits, _ = restore_splits(convnet_run)
    Image.fromarray(splits.test_images[0, 0]).save(tmp_path / "a.png")
    probs = Predictor.from_run(convnet_run, int8=True)([tmp_path / "a.png"])[0].probs
    with torch.inference_mode():
        expected = torch.softmax(load_quantized(convnet_run).module(normalized_test_images(convnet_run, 1)), 1)[0]
    np.testing.assert_allclose(probs, expected.numpy(), atol=1e-6)


def test_quantize_command_prints_the_table(convnet_run, capsys):
    before = folder_state(convnet_run)
    assert main(["quantize", str(convnet_run), "--no-compile", "--calibration-batches", "1"]) == 0
    out = capsys.readouterr().out
    assert "precision" in out and "int8" in out and "fp32" in out and "int8 against fp32: size 0.2" in out
    assert "wrote" in out and (convnet_run / "quantize.json").is_file()
    assert set(folder_state(convnet_run)) == set(before)  # the same files, written again


class ValueGate(nn.Module):
    def forward(self, x):
        return x if x.sum() > 0 else -x  # Python control flow on a tensor's value


def test_a_layer_torch_export_cannot_capture_is_named():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), ValueGate(), nn.Flatten(), nn.Linear(4 * 14 * 14, 10)).eval()
    x = torch.randn(2, 1, 16, 16)
    with pytest.raises(CnnlabError, match=r"cannot quantize layer '1' \(ValueGate\).*control flow"):
        quantize_model(model, x, [x])


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_eval_without_a_readable_int8_model_is_one_line(tmp_path_factory, damage, capsys):
    run = synthetic_run(tmp_path_factory.mktemp("runs"), epochs=1)
    if damage == "corrupt":
        (run / FILE).parent.mkdir()
        (run / FILE).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    before = folder_state(run)
    assert main(["eval", str(run), "--int8"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert ("cnnlab quantize" in err) and (("no int8 model" in err) if damage == "missing" else "not a readable" in err)
    assert folder_state(run) == before


def test_not_a_run_is_one_line(tmp_path, capsys):
    assert main(["quantize", str(tmp_path)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
