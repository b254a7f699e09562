"""Measured ``auto`` settings: time a few training steps of each candidate, keep the fastest.

For every setting the recipe leaves open (``cnnlab.engine.precision.candidate_settings``)
a copy of the run's model takes real training steps (forward, loss, backward, the run's own
optimizer) on a real batch of the training split at the run's batch size. The first steps
build kernels and grow the allocator, so ``WARMUP`` steps go unclocked; then the candidates
take clocked steps in turns until each has ``MIN_STEPS`` and ``MIN_SECONDS``, and the median
step counts. A candidate whose median already takes ``GIVE_UP`` times the best is dropped at
once, so a slow candidate costs a few steps, not a window.

The choice is cached per machine, workload and batch (``TuneCache``), so the next run of the
same recipe starts at once. The machine part of the key holds the CPU's name and flags, the
ISA limits of the environment and the torch version (the thread count is part of the
workload): a choice measured anywhere else is measured again, never trusted. The measuring runs under its own RNG state
(``torch.random.fork_rng``) on copies, so the run's random stream and weights are the same
whether the choice came from the cache or from the clock.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from cnnlab.allocator import keep_freed_memory
from cnnlab.cache import cache_dir
from cnnlab.atomic import atomic_write_json
from cnnlab.engine.precision import Precision, cpu_flags
from cnnlab.kernels.build import kernels_on
from cnnlab.run.environment import cpu_name

WARMUP = 2  # oneDNN creates its kernels in the first step; the second still runs ~1.5x slow here
MIN_STEPS = 3
MIN_SECONDS = 0.3  # per candidate: the gaps to tell apart are 1.2x (layouts) to 2.4x (dtypes)
MAX_STEPS = 30
GIVE_UP = 2.0  # a candidate this many times slower than the best so far is not worth the clock
CACHE_SCHEMA = 1
#: The flags that change which kernels run (x86 and ARM); the rest of /proc/cpuinfo does not.
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx512_fp16", "amx_bf16", "amx_tile",
             "amx_int8", "avx_vnni", "asimd", "bf16", "sve", "sve2")

Source = Literal["recipe", "measured", "cache"]


@dataclass(frozen=True)
class Timing:
    """One candidate's measured training step; ``step_s`` None when it was given up as too slow."""

    precision: str
    channels_last: bool
    compile: bool
    step_s: float | None
    images_per_s: float | None

    @property
    def label(self) -> str:
        return f"{self.precision} {'channels_last' if self.channels_last else 'NCHW'}" + \
            (" compiled" if self.compile else "")


@dataclass(frozen=True)
class Choice:
    """The settings a run trains with, where they came from, and the figures behind them."""

    precision: Precision
    source: Source
    timings: list[Timing] = field(default_factory=list)
    batch: int | None = None
    seconds: float = 0.0  # spent measuring (0 for the cache and for explicit settings)
    cache_note: str | None = None  # why the cache was not used, or where the choice was cached

    @property
    def step_s(self) -> float | None:
        """The chosen setting's measured seconds per training step, when it was measured."""
        chosen = self.precision.to_dict()
        return next((t.step_s for t in self.timings
                     if {"precision": t.precision, "channels_last": t.channels_last, "compile": t.compile} == chosen),
                    None)

    def describe(self) -> str:
        """One line for the log: the choice and, when measured, the figures behind it."""
        if self.source == "recipe" and not self.timings:
            return f"{self.precision.label} (set in the recipe)"
        figures = ", ".join(f"{t.label} {t.images_per_s:,.0f}" if t.images_per_s else f"{t.label} given up (slow)"
                            for t in self.timings)
        how = {"measured": f"measured in {self.seconds:.1f}s", "cache": "cached", "recipe": "set in the recipe"}
        note = f"; {self.cache_note}" if self.cache_note else ""
        return f"{self.precision.label} ({how[self.source]}: images/s at batch {self.batch}: {figures}{note})"

    @classmethod
    def recorded(cls, data: dict[str, Any], precision: Precision) -> Choice:
        """The choice a run recorded in settings.json, for ``precision`` rebuilt from it."""
        return cls(precision, data.get("source", "recipe"), [Timing(**t) for t in data.get("timings", [])],
                   data.get("batch"), data.get("measure_seconds", 0.0), data.get("cache_note"))

    def to_dict(self) -> dict[str, Any]:
        return {**self.precision.to_dict(), "source": self.source, "batch": self.batch,
                "measure_seconds": round(self.seconds, 3), "cache_note": self.cache_note,
                "timings": [asdict(t) for t in self.timings]}


def clocked(step: Callable[[], None], device: torch.device) -> float:
    """Seconds of one call of ``step``, to the end of its GPU work."""
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def training_step(model: torch.nn.Module, setting: Precision, loss_fn: Callable, make_optimizer: Callable,
                  images: torch.Tensor, labels: torch.Tensor) -> Callable[[], None]:
    """One training step of a copy of ``model`` under ``setting`` on the batch (images, labels).

    images: (B, C, H, W) float, normalized; labels: (B,). The copy and its optimizer are the
    run's own kinds, so the step costs what the run's steps will cost.
    """
    layout = torch.channels_last if setting.channels_last else torch.contiguous_format
    net = copy.deepcopy(model).to(setting.device, memory_format=layout)
    runner = torch.compile(net) if setting.compile else net
    optimizer = make_optimizer([p for p in net.parameters() if p.requires_grad])
    # Exactly the layout's strides, as the loader makes its batches: for one channel, .contiguous() keeps
    # either layout's strides (both count as contiguous), and a conv reading channels-last strides runs
    # channels-last kernels, so "NCHW" would have been timed as channels_last.
    x = torch.empty(images.shape, dtype=images.dtype, device=setting.device, memory_format=layout)  # (B, C, H, W)
    x.copy_(images)
    y = labels.to(setting.device)
    net.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with setting.autocast():
            out = runner(x)
        loss_fn(out, y).backward()
        optimizer.step()

    return step


def measure(candidates: list[Precision], build_step: Callable[[Precision], Callable[[], None]],
            batch: int) -> list[Timing]:
    """Time the candidates in turns, one step each a round; the RNG streams are left as they were.

    Taking turns, rather than one candidate's window after another's, puts the process's own
    warming (the allocator's first pages, the first kernels of their kind) and any drift of a
    shared machine on all candidates alike: measured one after another, the first candidate's
    steps on a 2-core VM ran 1.2-1.5x slower than the same candidate's measured second.
    """
    device = candidates[0].device
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        steps = [build_step(setting) for setting in candidates]
        times: list[list[float]] = [[] for _ in candidates]
        live = list(range(len(candidates)))
        for _ in range(WARMUP):
            warm = {i: clocked(steps[i], device) for i in live}
        best_warm = min(warm.values())
        live = [i for i in live if warm[i] <= 20 * best_warm]  # a step 20x the best even warm: not a contender
        rounds = 0
        while True:
            for i in live:
                times[i].append(clocked(steps[i], device))
            rounds += 1
            best = min(statistics.median(times[i]) for i in live)
            # one slow step may be another process; two in the median are the setting
            live = [i for i in live if rounds < 2 or statistics.median(times[i]) <= GIVE_UP * best]
            if rounds >= MAX_STEPS or (rounds >= MIN_STEPS and all(sum(times[i]) >= MIN_SECONDS for i in live)):
                break
    timings = []
    for i, setting in enumerate(candidates):
        step_s = statistics.median(times[i]) if i in live else None
        timings.append(Timing(setting.name, setting.channels_last, setting.compile, step_s,
                              batch / step_s if step_s else None))
    return timings


def fastest(candidates: list[Precision], timings: list[Timing]) -> Precision:
    measured = [(t.step_s, i) for i, t in enumerate(timings) if t.step_s is not None]
    return candidates[min(measured)[1]]


# --- the cache -------------------------------------------------------------------------------


def default_cache_path() -> Path:
    """autotune.json in cnnlab's cache folder (``cnnlab.cache.cache_dir``)."""
    return cache_dir() / "autotune.json"


def machine_fingerprint(device: torch.device) -> dict[str, Any]:
    """What a measured choice holds only for: the processor, its usable ISA, torch, malloc's mode and
    whether cnnlab's C++ kernels are on.

    Steps timed while glibc gave freed memory back (``cnnlab.allocator``) paid page faults that the
    larger-activation candidates paid more of, so such timings are not trusted either.
    """
    fingerprint = {
        "cpu": cpu_name(),
        "cpu_flags": sorted(set(ISA_FLAGS) & cpu_flags()),
        "aten_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL"),
        "torch": torch.__version__,
        "malloc_keeps_freed_memory": keep_freed_memory(),
        "cpp_kernels": kernels_on(),  # CNNLAB_KERNELS=0 changes what channels_last costs
    }
    if device.type == "cuda":
        fingerprint["gpu"] = torch.cuda.get_device_name(device)
    return fingerprint


def workload_key(model: torch.nn.Module, *, model_name: str, input_shape: tuple[int, ...], batch: int,
                 optimizer: str, candidates: list[Precision]) -> str:
    """The model (its printed architecture and which parameters train), input, batch, optimizer,
    torch threads and the candidates on offer, as one readable-then-hashed key."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    offer = ";".join(c.label for c in candidates)
    digest = hashlib.sha256(f"{model!r}|{trainable}|{offer}".encode()).hexdigest()[:16]
    shape = "x".join(map(str, input_shape))
    threads = torch.get_num_threads()
    return f"{candidates[0].device.type}/{model_name}/{shape}/batch{batch}/{optimizer}/threads{threads}/{digest}"


def _differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    changed = [f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in new if old.get(k) != new.get(k)]
    return ", ".join(changed)


class TuneCache:
    """autotune.json: {workload key: {machine fingerprint, choice, timings}}; unreadable = empty."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else default_cache_path()

    def _entries(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("schema") != CACHE_SCHEMA:
            return {}
        entries = data.get("entries")
        return entries if isinstance(entries, dict) else {}

    def lookup(self, key: str, machine: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        """(entry, None) when cached for this machine; (None, why not) when it must be measured."""
        entry = self._entries().get(key)
        if not isinstance(entry, dict):
            return None, None
        if entry.get("machine") != machine:
            return None, f"re-measured: the cached choice was measured with {_differences(entry.get('machine') or {}, machine)}"
        return entry, None

    def store(self, key: str, machine: dict[str, Any], choice: Choice) -> str:
        """Save the choice; a cache that cannot be written only costs the next run a measurement."""
        entries = self._entries()
        entries[key] = {"machine": machine, "choice": choice.precision.to_dict(), "batch": choice.batch,
                        "timings": [asdict(t) for t in choice.timings],
                        "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}
        try:
            atomic_write_json(self.path, {"schema": CACHE_SCHEMA, "entries": entries})
        except OSError as err:
            return f"not cached ({self.path}: {err.strerror or err})"
        return f"cached in {self.path}"


def choose(candidates: list[Precision], build_step: Callable[[Precision], Callable[[], None]], *, batch: int,
           key: str, cache: TuneCache | None, measure_single: bool = False) -> Choice:
    """The fastest of ``candidates``: from ``cache`` when it holds this key for this machine,
    else measured (and cached). A single candidate is the recipe's own setting; it is timed only
    when ``measure_single`` (a time budget needs its step time)."""
    if len(candidates) == 1 and not measure_single:
        return Choice(candidates[0], "recipe", batch=batch)
    machine = machine_fingerprint(candidates[0].device)
    note = None
    if cache is not None and len(candidates) > 1:
        entry, note = cache.lookup(key, machine)
        if entry is not None:
            chosen = next((c for c in candidates if c.to_dict() == entry.get("choice")), None)
            if chosen is not None:
                timings = [Timing(**t) for t in entry.get("timings", [])]
                return Choice(chosen, "cache", timings, batch, cache_note=f"measured {entry.get('measured')}")
    start = time.perf_counter()
    timings = measure(candidates, build_step, batch)
    chosen = fastest(candidates, timings)
    seconds = time.perf_counter() - start
    if len(candidates) == 1:
        return Choice(chosen, "recipe", timings, batch, seconds)
    choice = Choice(chosen, "measured", timings, batch, seconds, note)
    if cache is not None:
        stored = cache.store(key, machine, choice)
        choice = Choice(chosen, "measured", timings, batch, seconds, f"{note}; {stored}" if note else stored)
    return choice
