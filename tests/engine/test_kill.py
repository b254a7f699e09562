"""The kill test: SIGKILL a short run at 20 seeded moments, then resume it; every resumed run must
end bit-identical to an uninterrupted one, in checkpoint files and per-epoch metrics.

The moments are events of the run itself, so they land where timers would rarely hit: the start
of every file write, the middle of its bytes (a partial temporary file), before and after its
fsync and rename, the deletion of an older checkpoint, and every batch of training, validation
and test. Each run is a child of a fork server that imported torch once (no 2 s import per run);
a child counts the events through a thin wrapper over the ``os`` functions that
``cnnlab.atomic`` calls and over the data loader, and kills itself at its chosen one.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pathlib
import random
import signal
from pathlib import Path

import pytest

from cnnlab.config import load_recipe
from cnnlab.errors import CnnlabError
from cnnlab.run import RunDir

MOMENTS = 20
SEED = 20261124  # which events are chosen; fixed so a failure can be replayed
CONTEXT = multiprocessing.get_context("forkserver")
CONTEXT.set_forkserver_preload(["cnnlab.engine.fit"])

RECIPE = [  # BN, dropout, augmentation, Adam, one-cycle, label smoothing: every piece of state a resume restores
    "name=kill", "data.name=synthetic", "data.options={shape: [1, 12, 12], train_size: 400, test_size: 100}",
    "data.val_size=100", "data.batch_size=60", "data.augment=[{name: random_crop, padding: 2}, {name: flip_lr}]",
    "model.name=simple_nn", "model.options={batchnorm: true, dropout: 0.2}", "optim.name=adam", "optim.lr=0.01",
    "schedule.name=onecycle", "loss.label_smoothing=0.1", "train.epochs=4", "train.precision=fp32",
    "train.threads=1",
]


class Events:
    """Counts the run's events; kills the process at event ``kill_at`` (or records them all)."""

    def __init__(self, kill_at: int | None) -> None:
        self.kill_at, self.count, self.trace = kill_at, 0, []

    def __call__(self, kind: str, path: str = "") -> None:
        self.count += 1
        self.trace.append((kind, _category(path)))
        if self.count == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


def _category(path: str) -> str:
    name = Path(str(path)).name.lstrip(".")
    return "checkpoint" if name.startswith("epoch-") else name.split(".")[0] if name else ""


class CountingOS:
    """The ``os`` that ``cnnlab.atomic`` sees: the real one, with an event before each step of a write."""

    def __init__(self, events: Events) -> None:
        self.events, self.paths = events, {}

    def __getattr__(self, name):
        return getattr(os, name)

    def open(self, path, flags, *args):
        fd = os.open(path, flags, *args)
        self.paths[fd] = str(path)
        return fd

    def write(self, fd, data):
        path = self.paths.get(fd, "")
        if len(data) > 1:  # a partial file on disk first: the kill may land in the middle of the bytes
            os.write(fd, bytes(data[: len(data) // 2]))
            self.events("mid-write", path)
            return len(data) // 2
        return os.write(fd, data)

    def fsync(self, fd):
        self.events("fsync", self.paths.get(fd, ""))
        return os.fsync(fd)

    def replace(self, src, dst):
        self.events("rename", dst)
        os.replace(src, dst)
        self.events("renamed", dst)


def _child(config_args: list[str], resume: str | None, kill_at: int | None, trace_file: str | None) -> None:
    import cnnlab.atomic
    from cnnlab.data.loader import DeviceLoader
    from cnnlab.engine.fit import fit
    from cnnlab.engine.progress import Progress

    events = Events(kill_at)
    if kill_at is not None or trace_file:
        cnnlab.atomic.os = CountingOS(events)
        transform, unlink = DeviceLoader.transform, pathlib.Path.unlink
        DeviceLoader.transform = lambda self, batch: (events("batch"), transform(self, batch))[1]
        pathlib.Path.unlink = lambda self, *a, **k: (events("unlink", str(self)), unlink(self, *a, **k))[1]
    try:
        fit(load_recipe(None, config_args), progress=Progress(quiet=True), resume=resume)
    except CnnlabError as err:
        Path(trace_file or os.devnull).write_text(json.dumps({"error": str(err)}))
        raise SystemExit(2) from None
    if trace_file:
        Path(trace_file).write_text(json.dumps({"trace": events.trace}))


def _run(config_args, *, resume=None, kill_at=None, trace_file=None) -> int:
    process = CONTEXT.Process(target=_child, args=(config_args, resume, kill_at, trace_file))
    process.start()
    process.join(120)
    return process.exitcode


def _choose_moments(trace: list[tuple[str, str]]) -> list[int]:
    """20 event numbers (1-based): one inside the bytes of every kind of file written, one at a
    checkpoint deletion, the rest anywhere in the run."""
    rng = random.Random(SEED)
    chosen = set()
    for target in sorted({(k, c) for k, c in trace if k in ("mid-write", "unlink")}):
        chosen.add(rng.choice([i for i, e in enumerate(trace, 1) if e == target]))
    while len(chosen) < MOMENTS:
        chosen.add(rng.randint(1, len(trace)))
    return sorted(chosen)


def _state(run: Path) -> dict:
    """What must be identical between an uninterrupted run and a killed-and-resumed one."""
    r = RunDir(run)
    summary = r.summary()
    return {"metrics": [row.without_times() for row in r.metrics()],
            "checkpoints": {p.name: p.read_bytes() for p in sorted(r.checkpoints.folder.iterdir())},
            "status": summary.status, "test": summary.test, "confusion": r.confusion(), "data": r.data_record(),
            "config": {k: v for k, v in r.config_dict().items() if k != "output_dir"}}


def test_sigkill_at_20_moments_then_resume_is_bit_identical(tmp_path):
    # channels_last is auto: the first run measures it and caches the choice (a write outside the run);
    # every run after takes it from the cache, so all of them count the same events.
    assert _run(RECIPE + [f"output_dir={tmp_path / 'measuring'}"]) == 0
    reference_args = RECIPE + [f"output_dir={tmp_path / 'reference'}"]
    trace_file = tmp_path / "trace.json"
    assert _run(reference_args, trace_file=str(trace_file)) == 0
    trace = [tuple(e) for e in json.loads(trace_file.read_text())["trace"]]
    (reference,) = (tmp_path / "reference").iterdir()
    expected = _state(reference)
    assert len(expected["checkpoints"]) >= 1 and len(expected["metrics"]) == 4
    kinds = {c for k, c in trace if k == "mid-write"}
    assert {"data", "model", "config", "metrics", "checkpoint", "confusion", "summary"} <= kinds

    moments = _choose_moments(trace)
    assert len(moments) == MOMENTS
    outcomes = []
    for n, moment in enumerate(moments):
        out = tmp_path / f"killed-{n}"
        args = RECIPE + [f"output_dir={out}"]
        assert _run(args, kill_at=moment) == -signal.SIGKILL, f"event {moment} {trace[moment - 1]} did not kill"
        (run,) = out.iterdir()
        if not (run / "config.yaml").is_file():  # killed before the run record was whole: nothing to resume
            result = tmp_path / f"resume-{n}.json"
            assert _run(args, resume=str(run), trace_file=str(result)) == 2
            assert "killed before it started" in json.loads(result.read_text())["error"]
            outcomes.append("restart")
            continue
        finished = RunDir(run).summary() is not None and RunDir(run).summary().status == "completed"
        code = _run(args, resume=str(run), trace_file=str(tmp_path / f"resume-{n}.json"))
        assert code == (2 if finished else 0), f"resume after event {moment} {trace[moment - 1]}"
        outcomes.append("finished" if finished else "resumed")
        assert not [p for p in run.rglob("*") if p.name.endswith(".tmp")], "stray temporary files"
        assert _state(run) == expected, f"after a kill at event {moment} {trace[moment - 1]}"
    print({kind: outcomes.count(kind) for kind in ("resumed", "finished", "restart")})
    assert outcomes.count("resumed") >= MOMENTS // 2  # most moments fall inside training, not before or after it
