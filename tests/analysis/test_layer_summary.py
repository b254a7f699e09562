"""``summarize`` and ``cnnlab summary`` against the reports' hand counts and torchvision's metadata."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision

from cnnlab.analysis.summary import summarize, table
from cnnlab.cli.main import main
from cnnlab.errors import CnnlabError
from cnnlab.models import build_model, count_parameters


def test_convnet_rows_are_the_reports_table():
    """Practical Work 1cd, question 10: output sizes and weights per layer."""
    summary = summarize(build_model("convnet"), (3, 32, 32))
    rows = {row.name.split(".")[-1]: row for row in summary.rows}
    report = {  # layer: (output C, H, W or F, weights)
        "conv1": ((32, 32, 32), 2_432), "pool1": ((32, 16, 16), 0),
        "conv2": ((64, 16, 16), 51_264), "pool2": ((64, 8, 8), 0),
        "conv3": ((64, 8, 8), 102_464), "pool3": ((64, 4, 4), 0),
        "fc4": ((1000,), 1_025_000), "fc5": ((10,), 10_010),
    }
    for name, (shape, weights) in report.items():
        assert (rows[name].output_shape, rows[name].params) == (shape, weights), name
    assert [r.params for r in summary.rows if r.params] == [2_432, 51_264, 102_464, 1_025_000, 10_010]
    assert summary.params == summary.trainable == 1_191_170


def test_simple_nn_rows_are_the_homeworks_table():
    summary = summarize(build_model("simple_nn"), (3, 32, 32))
    assert [r.params for r in summary.rows if r.params] == [608, 1_168, 69_240, 10_164, 850]
    assert summary.params == 82_030


def test_resnet20_total():
    assert summarize(build_model("resnet20"), (3, 32, 32)).params == 272_474


def test_macs_by_hand_for_convnet():
    macs = {r.name.split(".")[-1]: r.macs for r in summarize(build_model("convnet"), (3, 32, 32)).rows}
    assert macs["conv1"] == 32 * 32 * 32 * 3 * 5 * 5
    assert macs["conv2"] == 64 * 16 * 16 * 32 * 5 * 5
    assert macs["conv3"] == 64 * 8 * 8 * 64 * 5 * 5
    assert macs["fc4"] == 1024 * 1000 and macs["fc5"] == 1000 * 10
    assert macs["pool1"] == macs["act1"] == 0


@pytest.mark.parametrize("name", ["alexnet", "vgg16", "resnet18"])
def test_torchvision_nets_match_torchvisions_metadata(name):
    """torchvision lists each net's parameters and GFLOPS (multiply-adds) at 224x224."""
    meta = torchvision.models.get_model_weights(name).DEFAULT.meta
    summary = summarize(build_model(f"tv_{name}"), (3, 224, 224))
    assert summary.params == meta["num_params"]
    assert round(summary.macs / 1e9, 3) == meta["_ops"]


def test_frozen_layers_are_not_trainable():
    model = build_model("convnet")
    model.features.requires_grad_(False)
    summary = summarize(model, (3, 32, 32))
    assert summary.trainable == count_parameters(model, trainable_only=True) == 1_025_000 + 10_010
    assert [r.trainable for r in summary.rows if r.params] == [0, 0, 0, 1_025_000, 10_010]


def test_disabled_layers_are_not_listed_and_in_place_outputs_not_double_counted():
    summary = summarize(build_model("convnet"), (3, 32, 32))
    assert not any(r.type == "Identity" for r in summary.rows)  # bn1.. and drop4.. are Identity here
    # Distinct outputs: conv1 (32x32x32) ... ; the in-place ReLUs share their conv's storage.
    conv_pool_fc = [r for r in summary.rows if r.type != "ReLU"]
    assert summary.activation_bytes == 4 * sum(torch.Size(r.output_shape).numel() for r in conv_pool_fc)


def test_summary_leaves_the_model_as_it_was():
    model = build_model("convnet_bn").train()
    model.features.bn2.eval()  # as fine-tuning does with frozen BatchNorm
    summarize(model, (3, 32, 32))
    assert model.training and model.features.bn1.training and not model.features.bn2.training
    assert model.features.bn1.num_batches_tracked == 0


def test_an_input_the_net_was_not_built_for_is_not_called_too_small():
    with pytest.raises(CnnlabError, match=r"input 3x64x64 does not fit this net: layer 'classifier.fc4' fails \("):
        summarize(build_model("convnet"), (3, 64, 64))


def test_cli_table(capsys):
    assert main(["summary", "convnet"]) == 0
    out = capsys.readouterr().out
    assert "features.conv1" in out and "2,432" in out and "Total params: 1,191,170" in out
    headers, _ = table(summarize(build_model("convnet"), (3, 32, 32)))
    assert all(h in out for h in headers)


def test_cli_json_with_options(capsys):
    argv = ["summary", "mlp", "hidden=[64,32]", "dropout=0.1", "--input", "1x8x8", "--classes", "3", "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["options"] == {"hidden": [64, 32], "dropout": 0.1}
    assert data["params"] == (64 * 64 + 64) + (64 * 32 + 32) + (32 * 3 + 3)
    assert data["output_shape"] == [3]
    assert data["rows"][0]["field"] == {"size": [8, 8], "jump": [1, 1], "start": [4.0, 4.0]}


def test_cli_fully_conv_shows_the_score_map(capsys):
    assert main(["summary", "convnet", "--fully-conv", "--input", "3x64x64"]) == 0
    out = capsys.readouterr().out
    assert "Output: 10x5x5" in out and "10x5x5 class-score map" in out


@pytest.mark.parametrize("argv, message", [
    (["summary", "convnet", "--input", "3x4x4"], "the output of layer 'features.pool3' would be empty"),
    (["summary", "convnet", "--fully-conv", "--input", "3x16x16"],
     "the output of layer 'classifier.fc4' would be empty"),
    (["summary", "convnt"], "unknown model 'convnt'; did you mean 'convnet'? (valid: alexnet_small, "),
    (["summary", "convnet", "dropout"], "model options are key=value words"),
    (["summary", "convnet", "widht=2"], "no option 'widht'; did you mean 'width'?"),
    (["summary", "convnet", "--input", "3x32"], "input shape must be CxHxW"),
    (["summary", "resnet20", "--fully-conv"], "has no 'features' + 'classifier' split"),
])
def test_cli_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cnnlab: error: ") and message in err
