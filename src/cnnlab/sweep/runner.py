"""Running a sweep's trials: each an ordinary cnnlab run folder inside the sweep folder.

``start_sweep`` makes the sweep folder (``sweep.json``: the spec, the storage URL, the study
name) and the study; ``work`` is one worker: it takes trials until none is left (a grid) or the
study has its ``trials`` (a search). ``run_workers`` starts N worker processes on this machine
and gives each its share of the cores (``train.threads``); other machines run
``cnnlab sweep --resume SWEEP_DIR --storage URL`` against the same storage.

A trial's outcome is recorded in its run folder's ``trial.json`` and in the study, never as a
success when it is not one: a diverged run (non-finite loss) fails the trial with that reason,
a run whose best validation accuracy stays at chance (``chance_level``: 1/C + 2 points, or three
binomial standard deviations on a small validation split; the reports' lr = 1.0 run ended at
0.1028) is marked at chance, a pruned one pruned.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

from cnnlab.analysis.compare import chance_reason
from cnnlab.atomic import atomic_write_json
from cnnlab.errors import CnnlabError
from cnnlab.run.sweep_record import SWEEP_FILE, read_sweep_record, redact, study_url
from cnnlab.sweep import study as studies
from cnnlab.sweep.spec import Dist, SweepSpec, override, parse_value

def start_sweep(spec: SweepSpec, root: str | Path, *, storage: str | None, name: str) -> Path:
    """Create SWEEP_DIR (root/<name>-<time>), its sweep.json and its study; enqueue a grid."""
    sweep_dir = Path(root) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    sweep_dir.mkdir(parents=True, exist_ok=False)
    url = storage or studies.default_storage(sweep_dir)
    try:
        study = studies.create_study(studies.open_storage(url), sweep_dir.name, mode=spec.mode, seed=0,
                                     prune=spec.prune, direction=direction(spec))
    except BaseException:
        sweep_dir.rmdir() if not any(sweep_dir.iterdir()) else None  # a refused storage leaves no folder
        raise
    if spec.mode == "grid":
        studies.enqueue_grid(study, [{k: encode(v) for k, v in p.items()} for p in spec.grid_points()])
    atomic_write_json(sweep_dir / SWEEP_FILE, {"study": sweep_dir.name, "storage": redact(url),
                                               "metric": spec.metric, "direction": direction(spec),
                                               "spec": spec.to_dict()})
    return sweep_dir


def direction(spec: SweepSpec) -> str:
    return "minimize" if spec.metric == "val_loss" else "maximize"


def encode(value):
    """Optuna stores scalars only: lists and mappings travel as their YAML text."""
    return value if value is None or isinstance(value, (bool, int, float, str)) else override("v", value)[2:]


def read_sweep(sweep_dir: str | Path, storage: str | None = None) -> tuple[SweepSpec, str, str]:
    """The spec, storage URL and study name of an existing sweep folder."""
    record = read_sweep_record(sweep_dir)
    data = dict(record["spec"])
    data["search"] = {k: Dist(**{**v, "choices": tuple(v["choices"])}) for k, v in data["search"].items()}
    url = storage or record["storage"]
    if "***" in url:
        raise CnnlabError(f"the sweep's storage needs its password: give --storage {url.replace('***', 'PASSWORD')}")
    found = study_url(url, sweep_dir)
    if found is None:
        raise CnnlabError(f"the sweep's study database {url.removeprefix('sqlite:///')} is gone; give --storage URL "
                          "where it is now")
    return SweepSpec(**data), found, record["study"]


def work(sweep_dir: str | Path, *, storage: str | None = None, threads: int | None = None, quiet: bool = True) -> int:
    """One worker: run trials of the sweep until its study is done; returns the trials it ran."""
    sweep_dir = Path(sweep_dir)
    spec, url, name = read_sweep(sweep_dir, storage)
    study = studies.load_study(studies.open_storage(url), name, mode=spec.mode, seed=os.getpid(), prune=spec.prune)
    ran = 0
    while True:
        if spec.mode == "grid":
            trial = studies.next_grid_trial(study, url)
            if trial is None:
                return ran
            with studies.Heartbeat(study, trial):
                state, value = run_trial(spec, sweep_dir, trial, threads=threads, quiet=quiet)
            tell(study, trial, state, value)
        else:
            from optuna.trial import TrialState

            with studies.claiming(url):  # the count and the new trial together: no worker overshoots --trials
                done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                                      TrialState.FAIL, TrialState.RUNNING)))
                if done >= spec.trials:
                    return ran
                studies.fail_stale(study)
                with warnings.catch_warnings():  # heartbeats outside Study.optimize: this loop beats itself
                    warnings.simplefilter("ignore", UserWarning)
                    trial = study.ask()
            with studies.Heartbeat(study, trial):
                state, value = run_trial(spec, sweep_dir, trial, threads=threads, quiet=quiet)
            tell(study, trial, state, value)
        ran += 1


def tell(study, trial, state: str, value: float | None) -> None:
    from optuna.trial import TrialState

    if study._storage.get_trial(trial._trial_id).state.is_finished():  # noqa: SLF001
        # another worker took this one for dead (its heartbeat came late), failed it and queued it again
        print(f"cnnlab: warning: trial {trial.number} was marked failed by another worker while it ran (no "
              f"heartbeat for {studies.GRACE_S} s) and is queued again; its run folder stays", file=sys.stderr)
        return
    if state == "pruned":
        study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
    elif value is None:  # diverged or crashed: a failure, with its reason in the trial's attributes
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
    else:
        study.tell(trial, value, skip_if_finished=True)


def unless_finished(write, *args) -> None:
    """One write to the study about a running trial, skipped when another worker has meanwhile
    failed the trial (``tell`` then says so): the run itself goes on and keeps its folder."""
    from optuna.exceptions import UpdateFinishedTrialError

    try:
        write(*args)
    except UpdateFinishedTrialError:
        pass


def trial_params(spec: SweepSpec, trial) -> dict:
    """The trial's values: the grid point it was given, or TPE's suggestions (recorded in the study)."""
    params = {}
    if spec.mode == "grid":  # the enqueued point comes back from suggest_categorical (Optuna's fixed params)
        for key, values in {**spec.grid, "seed": list(range(spec.seeds))}.items():
            params[key] = trial.suggest_categorical(key, [encode(v) for v in values])
        return params
    for key, dist in spec.search.items():
        if dist.kind == "choice":
            params[key] = trial.suggest_categorical(key, [encode(v) for v in dist.choices])
        elif dist.kind == "int":
            params[key] = trial.suggest_int(key, int(dist.low), int(dist.high))
        else:
            params[key] = trial.suggest_float(key, dist.low, dist.high, log=dist.kind == "loguniform")
    return params


def run_trial(spec: SweepSpec, sweep_dir: Path, trial, *, threads: int | None, quiet: bool) -> tuple[str, float | None]:
    """Train the trial's run(s) (one per seed for a search) and record the outcome; (state, value)."""
    params = trial_params(spec, trial)
    seeds = [params.pop("seed")] if "seed" in params else list(range(spec.seeds))
    values, state, reason = [], "complete", ""
    for seed in seeds:
        outcome = train_one(spec, sweep_dir, trial, params, seed, threads=threads, quiet=quiet)
        state, reason = outcome["state"], outcome["reason"]
        if outcome["value"] is None:
            break
        values.append(outcome["value"])
        if state != "complete":
            break
    unless_finished(trial.set_user_attr, "state", state)
    unless_finished(trial.set_user_attr, "reason", reason)
    value = sum(values) / len(values) if values and state in ("complete", "at_chance") else None
    return state, value


def train_one(spec: SweepSpec, sweep_dir: Path, trial, params: dict, seed: int, *, threads: int | None,
              quiet: bool) -> dict:
    """One run of the trial; writes its trial.json; the outcome {state, reason, value}."""
    import optuna

    from cnnlab.config import load_recipe
    from cnnlab.config.recipes import find_recipe
    from cnnlab.engine.fit import fit
    from cnnlab.engine.progress import Progress

    words = [*spec.overrides, *(override(k, decode(v)) for k, v in params.items()), f"seed={seed}",
             f"output_dir={sweep_dir}", f"name=trial-{trial.number:04d}",
             f"log.experiment={sweep_dir.name}"]  # with log.mlflow: the sweep's trials in one MLflow experiment
    if threads:
        words.append(f"train.threads={threads}")
    config = load_recipe(find_recipe(spec.recipe), words)
    reports = []

    def report(row) -> None:  # the pruning hook: fit calls it after each committed epoch
        value = row.val_acc if spec.metric == "val_acc" else row.val_loss
        reports.append(value)
        unless_finished(trial.report, value, row.epoch)
        if spec.prune and trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {row.epoch}: {spec.metric} {value:.4f} is below the "
                                     "median of the earlier trials at that epoch")

    record = {"number": trial.number, "params": {k: decode(v) for k, v in params.items()}, "seed": seed}
    try:
        summary = fit(config, callbacks=[report], progress=Progress(quiet=quiet))
    except optuna.TrialPruned as pruned:
        outcome = {"state": "pruned", "reason": str(pruned), "value": None}
        write_trial(sweep_dir, trial.number, seed, {**record, **outcome})
        return outcome
    except CnnlabError as err:  # a config the engine refused: the trial failed, the sweep goes on
        outcome = {"state": "failed", "reason": str(err), "value": None}
        write_trial(sweep_dir, trial.number, seed, {**record, **outcome})
        return outcome
    outcome = judge(summary, spec.metric)
    write_trial(sweep_dir, trial.number, seed, {**record, **outcome}, Path(summary.run_dir))
    return outcome


def decode(value):
    return parse_value(value) if isinstance(value, str) else value


def judge(summary, metric: str) -> dict:
    """completed, diverged or at chance, with the reason and the trial's value."""
    if summary.status == "diverged":
        return {"state": "diverged", "value": None, "reason": summary.divergence.describe()}
    best = summary.best
    value = best.val_acc if metric == "val_acc" else best.val_loss
    at_chance = chance_reason(best.val_acc, summary.dataset.get("classes") or 0, summary.dataset.get("val") or 0)
    if at_chance:
        return {"state": "at_chance", "value": value, "reason": at_chance}
    return {"state": "complete", "value": value, "reason": ""}


def write_trial(sweep_dir: Path, number: int, seed: int, record: dict, run_dir: Path | None = None) -> None:
    """trial.json in the trial's run folder (the newest one of that trial when fit failed before naming it)."""
    if run_dir is None:
        found = sorted(sweep_dir.glob(f"trial-{number:04d}-*"))
        if not found:
            return
        run_dir = found[-1]
    atomic_write_json(run_dir / "trial.json", record)


def run_workers(sweep_dir: Path, workers: int, *, storage: str | None) -> list[int]:
    """N worker processes on this machine, each with cores/N torch threads; their exit codes.

    The workers are forked after torch, optuna and the engine are imported (no tensor op has run,
    so no OpenMP pool exists to be copied), which saves each the 2-4 s of importing them again; each
    opens its own connection to the storage. Where fork is missing, each starts as
    ``python -m cnnlab sweep --worker``."""
    import multiprocessing

    threads = max(1, len(available_cores()) // workers)
    if "fork" not in multiprocessing.get_all_start_methods():
        command = [sys.executable, "-m", "cnnlab", "sweep", "--worker", str(sweep_dir), "--threads", str(threads),
                   *(["--storage", storage] if storage else [])]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        return [p.wait() for p in [subprocess.Popen(command, env=env) for _ in range(workers)]]
    import optuna  # noqa: F401 - imported once here, shared by the forked workers
    import torch  # noqa: F401

    import cnnlab.engine.fit  # noqa: F401

    prepare_trackers(sweep_dir, storage)  # one process creates the MLflow store; workers racing to do it fail
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_worker_main, args=(str(sweep_dir), storage, threads, cpus))
                 for cpus in core_groups(workers, threads)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    return [process.exitcode for process in processes]


def prepare_trackers(sweep_dir: Path, storage: str | None) -> None:
    """Open the trials' MLflow store once (creating its tables) when their recipe logs to MLflow."""
    from cnnlab.config import load_recipe
    from cnnlab.config.recipes import find_recipe
    from cnnlab.engine.trackers import connect

    spec, _, _ = read_sweep(sweep_dir, storage)
    config = load_recipe(find_recipe(spec.recipe), [*spec.overrides, f"output_dir={sweep_dir}"])
    if config.log.mlflow:
        connect(config.log, output_dir=sweep_dir, name=sweep_dir.name).close()


def available_cores() -> list[int]:
    """The cores this process may run on (its affinity, as a container or taskset limits it)."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))


def core_groups(workers: int, threads: int) -> list[set[int] | None]:
    """The cores each worker is pinned to: its own ``threads`` of this process's cores, as
    ``numactl``/``taskset`` would give them (two 1-thread trainings on a 2-core VM ran 12% faster
    pinned than left to the scheduler); None for all when there are fewer cores than that asks, or
    the system cannot pin."""
    cores = available_cores()
    if workers * threads > len(cores) or not hasattr(os, "sched_setaffinity"):
        return [None] * workers
    return [set(cores[i * threads:(i + 1) * threads]) for i in range(workers)]


def _worker_main(sweep_dir: str, storage: str | None, threads: int, cpus: set[int] | None = None) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if cpus:
        os.sched_setaffinity(0, cpus)
    try:
        work(sweep_dir, storage=storage, threads=threads, quiet=True)
    except CnnlabError as err:
        print(f"cnnlab sweep worker {os.getpid()}: error: {err}", file=sys.stderr)
        sys.exit(2)
