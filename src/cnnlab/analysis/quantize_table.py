"""``cnnlab quantize``: int8 against fp32 (and bf16 where the CPU computes it), each run the same way.

For each precision the table gives the model file's size, batch-1 latency and batch-256
throughput eager, batch-256 throughput compiled (``torch.compile`` with Inductor's freezing,
compiled against compiled), and validation and test top-1. fp32 and bf16 run the run's own
model in the channels_last layout (faster than NCHW on both CPU kinds of issue 8); bf16 is
autocast, as training runs it. int8 eager is the oneDNN-lowered graph (``lower_to_x86``), int8
compiled is Inductor on the converted graph, as torchao's docs do it.

File sizes are of the weights in the same safetensors format: fp32 as the run's checkpoints
store them, bf16 the same weights cast, int8 the file ``cnnlab quantize`` saves. Calibration
uses training images only; the test figures are a separate evaluation, as ``cnnlab eval``'s,
and ``summary.json``'s once-evaluated test result is left as it was.
"""

from __future__ import annotations

import platform
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnnlab.analysis.predict import probabilities
from cnnlab.analysis.quantize import FILE, Int8Model, layer_report, lower_to_x86, quantize_model, save_quantized
from cnnlab.analysis.timing import THROUGHPUT_BATCH, latency, throughput
from cnnlab.engine.loop import eval_logits
from cnnlab.engine.precision import DTYPES, Precision, native_bf16
from cnnlab.errors import CnnlabError
from cnnlab.run import RunDir
from cnnlab.run.restore import restore_model, restore_splits

CALIBRATION_BATCHES = 16  # x 128 training images: PyTorch's PT2E tutorial calibrates on a few hundred to
CALIBRATION_BATCH = 128  # a few thousand images; more moved convnet's test accuracy by < 0.05 points
EVAL_BATCH = 500


@dataclass
class Row:
    """One precision's figures (None where not measured)."""

    precision: str
    file_bytes: int
    latency_ms: float | None
    latency_p95_ms: float | None
    eager_images_per_s: float | None
    compiled_images_per_s: float | None
    val_top1: float
    test_top1: float


def calibration_batches(images: np.ndarray, stats, *, batches: int, batch_size: int, seed: int) -> list[torch.Tensor]:
    """``batches`` normalized (B, C, H, W) fp32 batches of training images drawn without replacement."""
    order = np.random.default_rng(seed).permutation(len(images))[:batches * batch_size]
    return [stats.normalize(torch.as_tensor(images[np.sort(order[i:i + batch_size])]))
            for i in range(0, len(order), batch_size)]


@torch.inference_mode()
def top1(model: nn.Module, images: np.ndarray, labels: np.ndarray, stats, precision: Precision, tta: str,
         num_outputs: int) -> float:
    """Top-1 accuracy over uint8 (N, C, H, W) ``images`` in ``precision``."""
    correct = 0
    layout = torch.channels_last if precision.channels_last else torch.contiguous_format
    for i in range(0, len(images), EVAL_BATCH):
        x = stats.normalize(torch.as_tensor(images[i:i + EVAL_BATCH])).contiguous(memory_format=layout)
        predicted = probabilities(eval_logits(model, x, precision, tta), num_outputs).argmax(dim=1)
        correct += int((predicted.numpy() == labels[i:i + EVAL_BATCH]).sum())
    return correct / len(images)


def measure(module: nn.Module, source: nn.Module, precision: Precision, batch: torch.Tensor, *,
            compile: bool) -> dict:
    """Eager latency (batch 1) and throughput (batch 256) of ``module``, and batch-256 throughput of
    ``source`` compiled by Inductor with freezing."""
    lat = latency(module, batch[:1], precision)
    result = {"latency_ms": lat["median_ms"], "latency_p95_ms": lat["p95_ms"],
              "eager_images_per_s": throughput(module, batch, precision)["images_per_s"],
              "compiled_images_per_s": None}
    if compile:
        import torch._inductor.config as inductor

        # Freezing (weights as constants, as int8 needs) for the first compile and for any recompile
        # that throughput's own grad mode may trigger.
        with inductor.patch(freezing=True), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Inductor's int8 lowering warns about its own use of torch.tensor
            fast = torch.compile(source, dynamic=False)
            with torch.inference_mode(), precision.autocast():
                fast(batch)  # compiled here, outside the timed windows
            result["compiled_images_per_s"] = throughput(fast, batch, precision)["images_per_s"]
    return result


def weights_bytes(model: nn.Module, dtype: torch.dtype | None) -> int:
    """Size of the model's weights as one safetensors file (floats cast to ``dtype``)."""
    from safetensors.torch import save

    state = {k: (v.to(dtype) if dtype and v.is_floating_point() else v).contiguous()
             for k, v in model.state_dict().items()}
    return len(save(state))


def quantize_run(run_path: str | Path, *, checkpoint: str = "best", calibration: int = CALIBRATION_BATCHES,
                 compile: bool = True, seed: int = 0) -> tuple[dict, bytes]:
    """The quantize.json record and the int8 weights file's bytes; nothing is written here."""
    if checkpoint not in ("best", "last"):
        raise CnnlabError(f"unknown checkpoint '{checkpoint}' (valid: best, last)")
    if calibration < 1:
        raise CnnlabError(f"--calibration-batches must be at least 1, got {calibration}")
    if platform.machine().lower() not in ("x86_64", "amd64"):
        raise CnnlabError(f"int8 through the X86 Inductor quantizer needs an x86 CPU (this one: {platform.machine()})")
    run = RunDir.open(run_path)
    config, data = run.config(), run.data_record()
    model = restore_model(run.path, checkpoint).cpu()
    epoch = run.checkpoints.resolve(checkpoint)
    splits, stats = restore_splits(run.path)
    num_outputs, tta = data.num_outputs or len(data.classes), config.train.tta
    example = stats.normalize(torch.as_tensor(splits.train_images[:2]))  # (2, C, H, W)
    start = time.perf_counter()
    graph = quantize_model(model, example, calibration_batches(
        splits.train_images, stats, batches=calibration, batch_size=CALIBRATION_BATCH, seed=seed))
    int8 = Int8Model(lower_to_x86(graph, example))
    quantize_seconds = time.perf_counter() - start
    meta = {"checkpoint": checkpoint, "epoch": epoch, "torch": torch.__version__,
            "calibration_images": min(calibration * CALIBRATION_BATCH, len(splits.train_images))}
    blob = save_quantized(graph, meta)

    repeats = -(-THROUGHPUT_BATCH // len(splits.test_images))
    batch = stats.normalize(torch.as_tensor(splits.test_images[:THROUGHPUT_BATCH])).repeat(repeats, 1, 1, 1)
    batch = batch[:THROUGHPUT_BATCH].contiguous(memory_format=torch.channels_last)  # (256, C, H, W)
    cpu = torch.device("cpu")
    fp32 = Precision(cpu, None, channels_last=True)
    model = model.to(memory_format=torch.channels_last)
    variants = [("fp32", model, model, fp32, weights_bytes(model, None))]  # (name, eager, compiled from, ...)
    if native_bf16(cpu):  # emulated bf16 is slower than fp32 (issue 8): not a deployment choice there
        variants.append(("bf16", model, model, Precision(cpu, DTYPES["bf16"], True),
                         weights_bytes(model, torch.bfloat16)))
    variants.append(("int8", int8, Int8Model(graph), fp32, len(blob)))
    rows = []
    for name, module, source, precision, size in variants:
        accuracy = {f"{split}_top1": top1(module, images, labels, stats, precision, tta, num_outputs)
                    for split, images, labels in (("val", splits.val_images, splits.val_labels),
                                                  ("test", splits.test_images, splits.test_labels))}
        rows.append(Row(name, size, **measure(module, source, precision, batch, compile=compile), **accuracy))
    record = {"run": str(run.path), "checkpoint": checkpoint, "epoch": epoch, "tta": tta,
              "model": config.model.name, "file": FILE, "method": "torchao PT2E, X86InductorQuantizer "
              "(static: per-channel int8 weights, per-tensor uint8 activations)",
              "calibration_images": meta["calibration_images"], "quantize_seconds": quantize_seconds,
              "layers": layer_report(graph), "threads": torch.get_num_threads(),
              "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
              "rows": [vars(r) for r in rows], "ratios": ratios(rows),
              "note": "test accuracy is a separate evaluation; summary.json's test result stays the one "
                      "evaluated once after training",
              "quantized_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    return record, blob


def ratios(rows: list[Row]) -> dict:
    """int8 (and bf16) against fp32: size, speed-ups and accuracy difference in points."""
    base = rows[0]
    out = {}
    for row in rows[1:]:
        def speedup(field: str) -> float | None:
            a, b = getattr(row, field), getattr(base, field)
            return None if a is None or b is None else a / b

        out[row.precision] = {"size": row.file_bytes / base.file_bytes,
                              "eager_throughput": speedup("eager_images_per_s"),
                              "compiled_throughput": speedup("compiled_images_per_s"),
                              "latency": None if row.latency_ms is None else base.latency_ms / row.latency_ms,
                              "test_points": 100 * (row.test_top1 - base.test_top1),
                              "val_points": 100 * (row.val_top1 - base.val_top1)}
    return out


def write_quantized(run_path: str | Path, record: dict, blob: bytes) -> tuple[Path, Path]:
    """The int8 weights file, then quantize.json (last: its presence means the weights are there)."""
    run = RunDir.open(run_path)
    weights = run.write_file(FILE, blob)
    return weights, run.write_json("quantize.json", record)
