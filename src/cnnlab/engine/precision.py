"""Device, numeric precision, memory format and compilation of a run.

A recipe sets each of ``train.precision`` (fp32, bf16, fp16 on CUDA), ``train.channels_last``
and ``train.compile`` or leaves it at ``auto``. What is asked for explicitly is used as it
is. What is left at ``auto`` is *measured*, not assumed: ``cnnlab.engine.autotune`` times a
few training steps of every setting the machine offers and keeps the fastest, as
``torch.backends.cudnn.benchmark`` does for kernels. Why measured: on this project's AMD
Zen 4 CPU bf16 with channels_last trained a VGG-style net 2.4x faster than fp32 NCHW; on an
AVX2-only CPU bf16 is emulated and about 6x slower, and there fp32 channels_last beat NCHW by
1.23-1.35x, while ``torch.compile`` was slower than eager on both (issue 8).

The CPU's own features are read as PyTorch and oneDNN will use them: the environment
variables ``ATEN_CPU_CAPABILITY`` and ``ONEDNN_MAX_CPU_ISA`` lower them (``avx2`` /
``AVX2`` make an AVX-512 machine behave as an AVX2 one), so bf16 counts as native only where
both allow it.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from cnnlab.errors import CnnlabError

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# oneDNN's ISA names (ONEDNN_MAX_CPU_ISA) that include bf16 dot products, from oneDNN's
# dnnl_cpu_isa_t: AVX512_CORE_BF16 and everything above it.
ONEDNN_BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512", "AVX512_CORE_AMX", "AVX10_1_512_AMX",
                    "AVX512_CORE_AMX_FP16", "AVX10_1_512_AMX_FP16", "AVX10_2_512", "AVX10_2_512_AMX_2", "ALL",
                    "DEFAULT")


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith(("flags", "Features"))), "")
    return set(line.partition(":")[2].split())


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 in hardware (AVX-512 BF16 or AMX tiles) *and* PyTorch and
    oneDNN may use it: ``ATEN_CPU_CAPABILITY`` below avx512 or ``ONEDNN_MAX_CPU_ISA`` below
    AVX512_CORE_BF16 turn it off, as on an AVX2-only machine."""
    cpu = getattr(torch, "cpu", None)
    probes = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if any(p is not None for p in probes):
        hardware = any(p is not None and p() for p in probes)
    else:  # older torch: read the flags
        hardware = bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
    capability = torch.backends.cpu.get_cpu_capability()  # honours ATEN_CPU_CAPABILITY
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").strip().upper()
    return hardware and capability.startswith("AVX512") and isa in ONEDNN_BF16_ISAS


def native_bf16(device: torch.device) -> bool:
    return torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_native_bf16()


@dataclass(frozen=True)
class Precision:
    """How the engine runs the model: device, autocast dtype (None = fp32), memory format and
    whether the model is compiled with ``torch.compile``."""

    device: torch.device
    dtype: torch.dtype | None
    channels_last: bool
    compile: bool = False

    @property
    def name(self) -> str:
        return {torch.bfloat16: "bf16", torch.float16: "fp16", None: "fp32"}[self.dtype]

    @property
    def label(self) -> str:
        """'bf16 channels_last compiled', 'fp32 NCHW'."""
        return f"{self.name} {'channels_last' if self.channels_last else 'NCHW'}" + (" compiled" if self.compile else "")

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def to_dict(self) -> dict:
        return {"precision": self.name, "channels_last": self.channels_last, "compile": self.compile}


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


def _flag(key: str, value: object) -> bool | None:
    """'auto' -> None, true/false (bool or text) -> the bool; anything else is an error."""
    word = str(value).lower()
    if word == "auto":
        return None
    if word in ("true", "false"):
        return word == "true"
    raise CnnlabError(f"train.{key} must be auto, true or false, got '{value}'")


def candidate_settings(device_name: str, precision: str, channels_last: object = "auto",
                       compile: object = False) -> list[Precision]:
    """Every setting the recipe allows on this machine, the recipe's first; one when nothing is auto.

    ``auto`` precision offers fp32 and bf16 (bf16 only where the hardware computes it: emulated
    bf16 ran 6x slower than fp32 here, so timing it would only cost seconds); ``auto``
    channels_last offers both layouts; ``auto`` compile offers compiled models on CUDA only,
    as on both CPU kinds measured compiling was slower than eager (issue 8).
    """
    device = resolve_device(device_name)
    if precision not in PRECISIONS:
        raise CnnlabError(f"train.precision must be one of {', '.join(PRECISIONS)}, got '{precision}'")
    if precision == "fp16" and device.type != "cuda":
        raise CnnlabError("train.precision=fp16 needs a CUDA device; on CPU use bf16 or fp32")
    layout, compiled = _flag("channels_last", channels_last), _flag("compile", compile)
    if precision == "auto":
        dtypes = [DTYPES["bf16"], None] if native_bf16(device) else [None]
    else:
        dtypes = [DTYPES.get(precision)]
    layouts = [True, False] if layout is None else [layout]
    compiles = ([False, True] if device.type == "cuda" else [False]) if compiled is None else [compiled]
    return [Precision(device, d, cl, c) for d in dtypes for cl in layouts for c in compiles]


def resolve_precision(device_name: str, precision: str, channels_last: object = "auto",
                      compile: object = False) -> Precision:
    """The setting the recipe asks for, without measuring: where something is ``auto``, the
    first candidate (bf16 channels_last where bf16 is native, else fp32 channels_last).
    Training measures instead (``cnnlab.engine.autotune``)."""
    return candidate_settings(device_name, precision, channels_last, compile)[0]
