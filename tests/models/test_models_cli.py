"""``cnnlab models`` and ``cnnlab bench models``."""

from __future__ import annotations

import json

from cnnlab.bench.models import fitting_batch
from cnnlab.cli.main import main
from cnnlab.models import MODELS


def test_models_lists_every_model_with_its_count(capsys):
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["Model", "Params", "Input", "Classes"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert sorted(rows) == MODELS.names()
    assert rows["simple_nn"][1:4] == ["82,030", "3x32x32", "10"]
    assert rows["convnet"][1] == "1,191,170" and rows["resnet20"][1] == "272,474"
    assert rows["simplenet"][2:4] == ["1x64x64", "15"]


def test_models_pattern_and_options(capsys):
    assert main(["models", "resnet*", "--options"]) == 0
    lines = capsys.readouterr().out.splitlines()[2:]
    assert [line.split()[0] for line in lines] == ["resnet110", "resnet20", "resnet32", "resnet44", "resnet56"]
    assert "width=1.0 activation=relu shortcut=conv dropout=0.0" in lines[1]


def test_models_unknown_pattern(capsys):
    assert main(["models", "transformer*"]) == 2
    assert "no model matches 'transformer*'" in capsys.readouterr().err


def test_bench_runs_and_reports_both_precisions(capsys):
    argv = ["bench", "models", "simple_nn", "--batch", "8", "--warmup", "0", "--steps", "1",
            "--min-seconds", "0", "--repeats", "1", "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)["results"][0]
    assert result["model"] == "simple_nn" and result["batch"] == 8
    assert result["fp32"] > 0 and result["bf16_cl"] > 0
    assert result["ratio"] == result["bf16_cl"] / result["fp32"]


def test_batch_is_halved_until_the_step_fits():
    assert fitting_batch(activation_bytes=2**20, param_bytes=0, batch=128, max_bytes=2**30) == 128
    # 3 x 60 MiB per image (tv_vgg16 at 224x224) within 6 GiB, less 3 x 553 MB of weights: 16
    assert fitting_batch(activation_bytes=60 * 2**20, param_bytes=553_430_176, batch=128, max_bytes=6 * 2**30) == 16
