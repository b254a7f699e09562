"""Seeding and the random state a run owns.

All randomness of a run flows from its seed: torch, numpy and Python's ``random`` are seeded
for code that uses the global generators (model initialisation, dropout), and the data order
and augmentation draw from a ``torch.Generator`` the engine creates and can save.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def make_generator(seed: int, device: torch.device) -> torch.Generator:
    """A generator on ``device`` for shuffling and augmentation, independent of the global one."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed + 1_000_003)  # offset: differ from the global stream of the same seed
    return generator


def capture_rng_state(generator: torch.Generator | None = None) -> dict:
    """Every RNG state of the process as tensors and plain values (safe for weights-only loading)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state = {
        "python": list(py_internal),
        "python_version": py_version,
        "python_gauss": py_gauss,
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        state["generator"] = generator.get_state()
    return state


def restore_rng_state(state: dict, generator: torch.Generator | None = None) -> None:
    random.setstate((state["python_version"], tuple(state["python"]), state["python_gauss"]))
    np_state = state["numpy"]
    np.random.set_state(("MT19937", np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if generator is not None and "generator" in state:
        generator.set_state(state["generator"])
