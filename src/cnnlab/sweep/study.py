"""The Optuna study a sweep lives in: RDB storage, the grid as a queue, heartbeats and retries.

The study is kept in an Optuna RDB storage: SQLite inside the sweep folder by default, or any
SQLAlchemy URL (``postgresql://...``) that several machines reach. A grid is enqueued once,
when the sweep is created; each worker then takes the next waiting trial with the storage's
own compare-and-set (``set_trial_state_values`` to RUNNING, made atomic for SQLite by
``claiming``), so every grid point runs exactly once however many workers share the study. (Optuna's
``GridSampler`` may hand the same point to two workers at once, as its docs say.) A search is
sampled by TPE, seeded.

A running trial records a heartbeat; a worker that finds a trial whose heartbeat stopped (its
worker was killed) marks it failed, and ``RetryHeartbeatStaleTrialCallback`` puts one copy of it back
in the queue.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

from cnnlab.errors import CnnlabError, first_line
from cnnlab.run.sweep_record import connect_args, redact

HEARTBEAT_S = 5  # a running trial's heartbeat; after GRACE_S without one a worker counts as dead
# A loaded machine can delay a beat by many seconds (a busy SQLite lock waits up to SQLITE_BUSY_S): a live
# worker taken for dead would have its finished trial refused and run again, so the grace is long.
GRACE_S = 60
MAX_RETRY = 1  # a killed trial is run again once


def default_storage(sweep_dir: Path) -> str:
    return f"sqlite:///{(sweep_dir / 'study.db').resolve()}"


def open_storage(url: str):
    """An ``RDBStorage`` for ``url`` with heartbeats and one retry of a killed trial."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # cnnlab prints its own lines
    if "://" not in url:
        raise CnnlabError(f"bad storage URL '{url}': write sqlite:///PATH/study.db or "
                          "postgresql://USER:PASSWORD@HOST:PORT/DATABASE")
    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5 and say so on every open
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(url, engine_kwargs={"connect_args": connect_args(url)}, heartbeat_interval=HEARTBEAT_S,
                              grace_period=GRACE_S,
                              heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY))
    except Exception as err:  # SQLAlchemy's ArgumentError, OperationalError, a missing driver ...
        raise CnnlabError(f"cannot open the study storage {redact(url)}: {first_line(err)}") from err


def create_study(storage, name: str, *, mode: str, seed: int, prune: bool, direction: str):
    """A new study (or the existing one of that name: another machine may have made it)."""
    import optuna

    sampler = optuna.samplers.TPESampler(seed=seed) if mode == "search" else None
    return optuna.create_study(study_name=name, storage=storage, direction=direction, load_if_exists=True,
                               sampler=sampler, pruner=pruner(prune))


def load_study(storage, name: str, *, mode: str, seed: int, prune: bool):
    import optuna

    sampler = optuna.samplers.TPESampler(seed=seed) if mode == "search" else None
    try:
        return optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner(prune))
    except KeyError as err:
        raise CnnlabError(f"no study '{name}' in the storage; start the sweep with its recipe first") from err


def pruner(prune: bool):
    import optuna

    # MedianPruner's defaults, but at least 2 finished trials and 1 epoch before it judges.
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1) if prune else optuna.pruners.NopPruner()


def enqueue_grid(study, points: list[dict]) -> int:
    """Put every grid point in the queue once (a second machine's call adds nothing); returns how many."""
    added = 0
    for point in points:
        if not study._should_skip_enqueue(point):  # noqa: SLF001 - Optuna's own duplicate test
            study.enqueue_trial(point)
            added += 1
    return added


@contextlib.contextmanager
def claiming(url: str) -> Iterator[None]:
    """Make the workers of one SQLite study take trials one at a time.

    Optuna's claim of a waiting trial reads its state, then writes RUNNING. PostgreSQL locks the
    row in between (SELECT ... FOR UPDATE); SQLite has no row locks, and Python's sqlite3 starts
    the write transaction only at the UPDATE, so two workers could both read WAITING and both run
    the trial (2 processes claiming 100 points: 3 and 4 points claimed twice). An exclusive
    ``flock`` on a file beside the database closes that window; a server needs none."""
    path = sqlite_file(url)
    if path is None:
        yield
        return
    import fcntl

    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def sqlite_file(url: str) -> Path | None:
    """The database file of a ``sqlite:///PATH`` URL; None for a server or an in-memory database."""
    path = url.removeprefix("sqlite:///").partition("?")[0] if url.startswith("sqlite:///") else ""
    return Path(path) if path and path != ":memory:" else None


def next_grid_trial(study, url: str):
    """The next waiting grid trial, RUNNING and this process's, or None when the queue is empty.

    Stale trials (a killed worker's) are failed first, which re-queues them once. ``url``: the
    study's storage, whose claims ``claiming`` makes atomic."""
    import optuna
    from optuna.trial import TrialState

    with claiming(url):
        fail_stale(study)
        storage = study._storage  # noqa: SLF001 - the storage the study was opened with
        for frozen in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            try:
                if not storage.set_trial_state_values(frozen._trial_id, state=TrialState.RUNNING):  # noqa: SLF001
                    continue  # another worker took it first
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
            return optuna.trial.Trial(study, frozen._trial_id)  # noqa: SLF001
    return None


def fail_stale(study) -> None:
    """Fail the running trials whose heartbeat stopped (their callback re-queues each once)."""
    import optuna

    with warnings.catch_warnings():  # "experimental" since Optuna 2.9
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


class Heartbeat:
    """Records a running trial's heartbeat every HEARTBEAT_S seconds in a daemon thread."""

    def __init__(self, study, trial) -> None:
        self.storage, self.trial_id = study._storage, trial._trial_id  # noqa: SLF001
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while not self.stopped.is_set():
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception:  # noqa: BLE001 - a locked or lost database: beat again next time, never stop
                pass
            self.stopped.wait(HEARTBEAT_S)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join()
