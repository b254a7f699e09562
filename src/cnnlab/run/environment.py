"""Where and with what a run ran: versions, device name, git commit."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import torch


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit(cwd: str | Path = ".") -> dict:
    """The commit of the repository holding ``cwd``, and whether it has uncommitted changes."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return {"commit": None, "dirty": None}
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                                capture_output=True, text=True, timeout=5)
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def describe_environment(device: torch.device) -> dict:
    import numpy
    import torchvision

    import cnnlab

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return {
        "device_name": name,
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": {"cnnlab": cnnlab.__version__, "torch": torch.__version__,
                     "torchvision": torchvision.__version__, "numpy": numpy.__version__},
        "git": git_commit(),
    }
