"""``cnnlab bench train``: FLOPs per image against the lab report's hand count, and the MFU arithmetic."""

from __future__ import annotations

import json

import pytest
import torch

from cnnlab.bench.train import bench_train_model, matmul_peak, step_flops
from cnnlab.cli.main import main
from cnnlab.engine.autotune import training_step
from cnnlab.engine.precision import Precision
from cnnlab.models import build_model

# Practical work 1cd's ConvNet at 3x32x32, multiply-adds per image, layer by layer (H x W x k*k*Cin x Cout):
CONVNET_MACS = {
    "conv1": 32 * 32 * (5 * 5 * 3) * 32,  # 2,457,600
    "conv2": 16 * 16 * (5 * 5 * 32) * 64,  # 13,107,200
    "conv3": 8 * 8 * (5 * 5 * 64) * 64,  # 6,553,600
    "fc4": 64 * 4 * 4 * 1000,  # 1,024,000
    "fc5": 1000 * 10,  # 10,000
}


def test_a_training_step_counts_forward_and_backward_flops_as_by_hand():
    forward = sum(CONVNET_MACS.values())  # 23,152,400
    # backward: a weight gradient for every layer, an input gradient for all but conv1 (the image needs none)
    backward = 2 * forward - CONVNET_MACS["conv1"]
    model = build_model("convnet")
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    step = training_step(model, Precision(torch.device("cpu"), None, False), torch.nn.functional.cross_entropy,
                         lambda params: torch.optim.SGD(params, lr=0.01), x, y)
    assert step_flops(step) == 4 * 2 * (forward + backward)  # 2 FLOPs per multiply-add: 134.0 MFLOP an image


def test_the_matmul_peak_is_a_rate_of_real_products():
    peak = matmul_peak("fp32", n=256, seconds=0.05, repeats=1)
    assert 1e8 < peak < 1e14  # 0.1 GFLOP/s to 100 TFLOP/s: a 2-core CPU is near 1e11


def test_mfu_is_achieved_flops_over_the_peak_of_the_same_dtype():
    peaks = {}
    r = bench_train_model("convnet", batch=8, peaks=peaks, repeats=1, min_seconds=0.05)
    assert r["train_flops_per_image"] == 2 * (3 * sum(CONVNET_MACS.values()) - CONVNET_MACS["conv1"])
    assert r["achieved_flops"] == pytest.approx(r["images_per_s"] * r["train_flops_per_image"])
    assert r["mfu"] == pytest.approx(r["achieved_flops"] / peaks[r["dtype"]]) and 0 < r["mfu"]
    assert r["chosen_by"] in ("measured", "cache") and r["dtype"] in r["setting"]
    assert r["kernel_speedup"] == pytest.approx(r["images_per_s"] / r["images_per_s_without_kernels"])


def test_the_command_prints_the_table(capsys):
    assert main(["bench", "train", "simple_nn", "--batch", "8", "--repeats", "1", "--min-seconds", "0.05",
                 "--no-curve", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in report["results"]] == ["simple_nn"] and set(report["peaks"]) == {
        report["results"][0]["dtype"]}
    assert main(["bench", "train", "simple_nn", "--batch", "8", "--repeats", "1", "--min-seconds", "0.05",
                 "--no-curve"]) == 0
    out = capsys.readouterr().out
    assert "MFU" in out and "simple_nn" in out and "GFLOP/s" in out and "kernels off" in out
    assert "C++ kernels: built" in out
