"""Build a C++ kernel file against the installed torch with the host compiler, once per machine.

The library goes to ``cache_dir()/kernels/<name>-<key>.so``, where the key hashes the source,
the compiler command and torch's version, so a new torch, a changed file or another CPU kind
builds again. It is loaded with ``torch.ops.load_library`` (the file registers its ops with
``TORCH_LIBRARY``), so it needs no Python bindings and no ninja: one ``c++`` call, about 8 s on
2 cores.

Instruction set: the kernels are compiled for the ISA that torch's own CPU kernels use here
(``torch.backends.cpu.get_cpu_capability()``), so ``ATEN_CPU_CAPABILITY=avx2`` simulates an
AVX2-only machine for them too (issue 8).

Anything that goes wrong (no compiler, a compile error, a library that will not load) leaves the
kernel unavailable, with the reason, and cnnlab runs PyTorch's own ops instead.
``CNNLAB_KERNELS=0`` turns the kernels off.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import os
import platform
import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cnnlab.cache import cache_dir

OPT_OUT = "CNNLAB_KERNELS"  # "0": never build or use them
SOURCE_DIR = Path(__file__).parent

# torch's CPU capability -> the x86-64 level with the same vector instructions (gcc and clang).
MARCH = {"AVX512": "x86-64-v4", "AVX2": "x86-64-v3"}


_IN_USE = contextvars.ContextVar("cnnlab_kernels_in_use", default=True)


@contextlib.contextmanager
def kernels_off():
    """Run PyTorch's own ops inside this block (to compare with the kernels in one process)."""
    token = _IN_USE.set(False)
    try:
        yield
    finally:
        _IN_USE.reset(token)


def kernels_on() -> bool:
    """False inside ``kernels_off()`` or with CNNLAB_KERNELS=0."""
    return _IN_USE.get() and os.environ.get(OPT_OUT) != "0"


@dataclass(frozen=True)
class Kernel:
    """A built kernel library: ``path`` when it loaded, else ``reason`` says why not."""

    name: str
    path: Path | None
    reason: str = ""

    @property
    def available(self) -> bool:
        return self.path is not None


def compile_command(source: Path, output: Path) -> list[str]:
    """The compiler call that builds ``source`` into the shared library ``output``."""
    import torch

    torch_dir = Path(torch.__file__).parent
    cxx = os.environ.get("CXX", "c++")
    flags = ["-O3", "-std=c++20", "-fPIC", "-shared", "-fopenmp", "-DNDEBUG",
             f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}"]
    if platform.machine().lower() in ("x86_64", "amd64"):
        march = MARCH.get(torch.backends.cpu.get_cpu_capability())
        flags += [f"-march={march}", "-mtune=native"] if march else []
    includes = [f"-I{torch_dir / 'include'}", f"-I{torch_dir / 'include' / 'torch' / 'csrc' / 'api' / 'include'}"]
    # libgomp is torch's own (torch/lib comes first): the kernels share torch's OpenMP threads.
    libs = [f"-L{torch_dir / 'lib'}", "-lc10", "-ltorch_cpu", f"-Wl,-rpath,{torch_dir / 'lib'}"]
    return [*shlex.split(cxx), *flags, *includes, str(source), "-o", str(output), *libs]


def library_path(name: str) -> Path:
    """Where the library built from ``<name>.cpp`` for this torch and compiler call lives."""
    import torch

    source = SOURCE_DIR / f"{name}.cpp"
    command = " ".join(compile_command(source, Path("OUT")))
    key = hashlib.sha256(source.read_bytes() + command.encode() + torch.__version__.encode()).hexdigest()[:16]
    return cache_dir() / "kernels" / f"{name}-{key}.so"


def _build(name: str, target: Path) -> str:
    """Compile into a temporary file and move it into place (two processes may race: the last
    complete file wins). Returns the compiler's complaint, or "" on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}-", suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        done = subprocess.run(compile_command(SOURCE_DIR / f"{name}.cpp", Path(tmp)), capture_output=True, text=True)
    except OSError as err:  # no compiler
        Path(tmp).unlink(missing_ok=True)
        return f"cannot run the C++ compiler ({err.strerror}); set CXX"
    if done.returncode != 0:
        Path(tmp).unlink(missing_ok=True)
        errors = [line for line in done.stderr.splitlines() if "error" in line]
        return f"the C++ compiler failed: {(errors or done.stderr.splitlines() or ['no output'])[0].strip()}"
    os.replace(tmp, target)
    return ""


@functools.cache
def load_kernel(name: str) -> Kernel:
    """Build (if needed) and load ``<name>.cpp``; never raises for a missing or failing compiler."""
    if os.environ.get(OPT_OUT) == "0":
        return Kernel(name, None, f"{OPT_OUT}=0")
    import torch

    try:
        target = library_path(name)
        if not target.exists():
            reason = _build(name, target)
            if reason:
                return Kernel(name, None, reason)
        torch.ops.load_library(str(target))
    except (OSError, RuntimeError) as err:
        return Kernel(name, None, f"cannot load the {name} kernels: {str(err).splitlines()[0]}")
    return Kernel(name, target)
