"""Device, numeric precision and memory format for a run.

``auto`` precision trains in bfloat16 autocast where the hardware computes it natively (CUDA
GPUs with bf16, CPUs with AVX-512 BF16 or AMX) and in float32 elsewhere. On this project's
AMD Zen 4 CPU, bf16 autocast with channels-last trained a VGG-style net 2.4x faster than fp32
NCHW. ``fp32`` switches it off; ``fp16`` (CUDA only) adds a gradient scaler.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import torch

from cnnlab.errors import CnnlabError

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 in hardware (AVX-512 BF16 or AMX tiles)."""
    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        fn = getattr(cpu, probe, None)
        if fn is not None and fn():
            return True
    try:  # older torch: read the flags
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


@dataclass(frozen=True)
class Precision:
    """How the engine runs the model: device, autocast dtype (None = fp32) and memory format."""

    device: torch.device
    dtype: torch.dtype | None
    channels_last: bool

    @property
    def name(self) -> str:
        return {torch.bfloat16: "bf16", torch.float16: "fp16", None: "fp32"}[self.dtype]

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise CnnlabError(f"train.device: unknown device '{name}' (valid: auto, cpu, cuda, cuda:N)") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CnnlabError("train.device is cuda but no CUDA GPU is visible; use train.device=cpu or auto")
    return device


def resolve_precision(device_name: str, precision: str, channels_last: str) -> Precision:
    """Turn the recipe's ``train.device/precision/channels_last`` into a ``Precision``."""
    device = resolve_device(device_name)
    if precision not in PRECISIONS:
        raise CnnlabError(f"train.precision must be one of {', '.join(PRECISIONS)}, got '{precision}'")
    if precision == "auto":
        native = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_native_bf16()
        precision = "bf16" if native else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise CnnlabError("train.precision=fp16 needs a CUDA device; on CPU use bf16 or fp32")
    dtype = DTYPES.get(precision)
    if str(channels_last).lower() == "auto":
        layout = dtype is not None
    elif str(channels_last).lower() in ("true", "false"):
        layout = str(channels_last).lower() == "true"
    else:
        raise CnnlabError(f"train.channels_last must be auto, true or false, got '{channels_last}'")
    return Precision(device, dtype, layout)
