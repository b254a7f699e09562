"""Compare runs: a row per run, repeats over seeds grouped, the best recipe, a sweep's importances.

``compare(["runs/sweep-lr", "runs/resnet20-20261122-153000"])`` -> ``Comparison``. Each argument
is a run folder (it has config.yaml), a sweep folder (sweep.json; its trials are run folders
below it) or any folder of run folders (one level deep). What the runs vary is found by diffing
their resolved configs, flattened to dotted keys (``optim.lr``); ``seed`` is left out of that
diff because it is what tells repeats apart, and runs that differ in nothing else are grouped
into mean ± sample std. Everything is read from the run folders (and a sweep's Optuna study),
never from the process that trained them.
"""

from __future__ import annotations

import json
import math
import statistics
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cnnlab.errors import CnnlabError, first_line, unknown_name
from cnnlab.run import MetricsRow, RunDir, Summary
from cnnlab.run.sweep_record import SWEEP_FILE, connect_args, read_sweep_record, redact, study_url

METRICS = {  # --metric: (the RunRow field sorted on, whether larger is better)
    "val_acc": ("best_val_acc", True),
    "test_acc": ("test_acc", True),
    "train_time": ("train_time_s", False),
}
IGNORED_KEYS = ("name", "output_dir", "seed")  # a run's label, where it was written, and what groups repeats
GOOD = ("completed", "early_stopped")  # statuses a best run may have
LAST = ("failed", "diverged")  # sorted after every other status: their numbers are missing or meaningless
CHANCE_MARGIN = 0.02  # best val acc within 2 points of 1/C (or 3 binomial std of it): nothing was learned
MIN_TRIALS = 4  # complete trials before importances mean anything; fewer is noise
MIN_PARAMS = 2  # importances rank parameters against each other: one alone is always 1.0
TRIAL_DEPTH = 3  # how deep below a sweep folder its trial run folders are looked for


@dataclass(frozen=True)
class RunRow:
    """One run as the table shows it; a number is None where the run has none (killed, diverged, no eval)."""

    path: Path
    values: dict[str, Any]  # the varied keys' values, in the order of Comparison.varied (missing: absent)
    seed: int
    best_val_acc: float | None
    best_epoch: int | None
    final_train_acc: float | None
    test_acc: float | None  # summary.json's: evaluated once, with the best checkpoint
    train_time_s: float | None
    images_per_s: float | None  # inference throughput measured by cnnlab eval (test split, else val)
    parameters: int | None
    status: str  # summary.status, a sweep trial's state, at_chance, or incomplete (no summary.json)
    reason: str  # why, for any status but completed ("" then)
    rows: list[MetricsRow] = field(default_factory=list, repr=False, compare=False)  # the curves


@dataclass(frozen=True)
class Stat:
    mean: float
    std: float | None  # sample standard deviation (n - 1); None for a single value
    n: int  # runs that have the value


@dataclass(frozen=True)
class GroupRow:
    """Runs with the same varied values (repeats over seeds), best first."""

    values: dict[str, Any]
    runs: list[RunRow]

    @property
    def seeds(self) -> list[int]:
        return sorted(r.seed for r in self.runs)

    @property
    def status(self) -> str:
        counts = Counter(r.status for r in self.runs)
        return self.runs[0].status if len(counts) == 1 else ", ".join(f"{s} {n}" for s, n in counts.most_common())

    def stat(self, name: str) -> Stat | None:
        """Mean and sample std of RunRow field ``name`` over the runs that have it; None when none do."""
        values = [getattr(r, name) for r in self.runs if getattr(r, name) is not None]
        if not values:
            return None
        return Stat(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None, len(values))


@dataclass(frozen=True)
class Importances:
    """Optuna's parameter importances of one sweep's study, or why there are none."""

    sweep: Path
    study: str
    values: dict[str, float] | None  # parameter -> importance, summing to 1, largest first
    note: str


@dataclass(frozen=True)
class Comparison:
    metric: str  # a key of METRICS
    varied: list[str]  # dotted config keys whose values differ between the runs
    runs: list[RunRow]  # sorted by the metric, failed and diverged last
    groups: list[GroupRow]  # the same, one row per set of varied values
    best: RunRow | None  # the best run of the best group, among completed runs
    best_recipe: str | None  # its config as YAML that cnnlab train reads (no output_dir); None without one
    importances: list[Importances]  # one per sweep given
    sources: list[Path]  # the folders given
    sweeps: list[Path]
    notes: list[str]  # runs left out, and why


def compare(paths: Iterable[str | Path], metric: str | None = None) -> Comparison:
    """Read, group and sort the runs named by ``paths``; ``metric`` defaults to a single sweep's
    own metric, else val_acc."""
    sources = [Path(p) for p in paths]
    if not sources:
        raise CnnlabError("nothing to compare: give run folders, sweep folders or folders of runs")
    folders, sweeps = find_runs(sources)
    metric = metric or _sweep_metric(sweeps) or "val_acc"
    if metric not in METRICS:
        raise unknown_name("metric", metric, METRICS)
    configs, skipped = {}, []
    for folder in folders:
        data = RunDir.open(folder).config_dict()
        if data.get("kind") == "scratch":  # a NumPy run of cnnlab.scratch: another config and record
            skipped.append(folder.name)
        else:
            configs[folder] = flatten(data)
    if not configs:
        raise CnnlabError(f"no runs of cnnlab train in {', '.join(map(str, sources))} (only cnnlab.scratch runs)")
    varied = varied_keys(configs.values())
    runs = sort_runs([read_run(f, {k: c[k] for k in varied if k in c}) for f, c in configs.items()], metric)
    groups = group_runs(runs, varied, metric)
    best = best_run(groups, metric)
    notes = [f"left out {len(skipped)} cnnlab.scratch run(s): {', '.join(skipped)}"] if skipped else []
    return Comparison(metric=metric, varied=varied, runs=runs, groups=groups, best=best,
                      best_recipe=best and best_recipe(best, metric, len(runs)),
                      importances=[sweep_importances(s) for s in sweeps], sources=sources, sweeps=sweeps, notes=notes)


# --- finding the runs --------------------------------------------------------------------------


def find_runs(paths: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """(run folders, sweep folders) named by ``paths``, each run once; anything else is refused."""
    runs, sweeps = {}, []
    for path in paths:
        if (path / "config.yaml").is_file():
            found = [path]
        elif (path / SWEEP_FILE).is_file():
            sweeps.append(path)
            found = sorted({p.parent for depth in range(1, TRIAL_DEPTH + 1)
                            for p in path.glob("/".join(["*"] * depth) + "/config.yaml")})
            if not found:
                raise CnnlabError(f"{path} is a sweep with no trial runs yet; start them with cnnlab sweep")
        elif path.is_dir():
            found = sorted(p for p in path.iterdir() if (p / "config.yaml").is_file())
            if not found:
                raise CnnlabError(f"{path} is not a run folder and holds none (no config.yaml in it or in its "
                                  "subfolders); give run folders, a sweep folder or a folder of runs")
        elif path.exists():
            raise CnnlabError(f"{path} is a file; give run folders, a sweep folder or a folder of runs")
        else:
            raise CnnlabError(f"{path}: no such folder")
        for run in found:
            runs.setdefault(run.resolve(), run)
    return list(runs.values()), sweeps


def flatten(data: Mapping, prefix: str = "") -> dict[str, Any]:
    """{'optim': {'lr': 0.1}} -> {'optim.lr': 0.1}; lists stay whole values, empty mappings vanish."""
    out = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten(value, dotted))
        else:
            out[dotted] = value
    return out


def _same(value: Any) -> str:
    """A comparable form: YAML writes lr: 1 and lr: 1.0 for the same float field."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = float(value)
    return json.dumps(value, sort_keys=True, default=str)


def varied_keys(configs: Iterable[Mapping[str, Any]]) -> list[str]:
    """The flattened keys whose values differ between ``configs`` (a key missing in some counts as
    differing), in the order they first appear; name, output_dir and seed are left out."""
    configs = list(configs)
    keys = list(dict.fromkeys(k for c in configs for k in c))
    return [k for k in keys if k not in IGNORED_KEYS
            and len({_same(c[k]) if k in c else "<missing>" for c in configs}) > 1]


# --- one run -----------------------------------------------------------------------------------


def read_run(path: Path, values: dict[str, Any]) -> RunRow:
    """One run's row from its folder alone; a killed run (no summary.json) reads its metrics rows."""
    run = RunDir.open(path)
    summary, rows = run.summary(), run.metrics()
    best = summary.best if summary else max(rows, key=lambda r: r.val_acc, default=None)
    final = summary.final if summary else (rows[-1] if rows else None)
    config = run.config_dict()
    status, reason = _status(run, summary, best and best.val_acc)
    return RunRow(
        path=path, values=values, seed=summary.seed if summary else config.get("seed", 0),
        best_val_acc=best and best.val_acc, best_epoch=best and best.epoch,
        final_train_acc=final and final.train_acc, test_acc=summary and summary.test and summary.test.acc,
        train_time_s=summary and summary.time.get("train_wall_s"), images_per_s=inference_throughput(run),
        parameters=summary and summary.model.get("parameters"), status=status, reason=reason, rows=rows)


def _status(run: RunDir, summary: Summary | None, best_val_acc: float | None) -> tuple[str, str]:
    """(status, why): the summary's, overridden by a sweep trial's state, then flagged at chance."""
    if summary is None:
        status, reason = "incomplete", "no summary.json: killed, or still running (cnnlab train --resume)"
    else:
        d = summary.divergence
        status, reason = summary.status, summary.failure or (d and d.describe()) or ""
    trial = run.record("trial.json")
    if isinstance(trial, dict) and trial.get("state") not in (None, "complete"):
        status, reason = str(trial["state"]), str(trial.get("reason") or reason)
    if status in GOOD and best_val_acc is not None:
        data = run.data_record()
        at_chance = chance_reason(best_val_acc, len(data.classes), data.sizes.get("val", 0))
        if at_chance:
            status, reason = "at_chance", at_chance
    return status, reason


def chance_reason(best_val_acc: float, classes: int, val_images: int) -> str | None:
    """Why a run with this best validation accuracy learned nothing, or None when it learned."""
    if classes and best_val_acc <= chance_level(classes, val_images):
        return f"best val accuracy {best_val_acc:.4f} is at chance (1/{classes} = {1 / classes:.4f})"
    return None


def chance_level(classes: int, val_images: int) -> float:
    """The best val accuracy at or below which a run learned nothing: 1/C plus CHANCE_MARGIN, or
    three binomial standard deviations of a guesser's accuracy where the validation split is small
    (100 images, C = 10: 9 points)."""
    p = 1 / classes
    noise = 3 * math.sqrt(p * (1 - p) / val_images) if val_images else 0.0
    return p + max(CHANCE_MARGIN, noise)


def inference_throughput(run: RunDir) -> float | None:
    """Images/s of cnnlab eval's throughput measurement (test split first); None without one."""
    evaluations = run.evaluations()
    for split in ("test", "val"):
        timing = evaluations.get(split, {}).get("timing")
        if timing:
            return timing["throughput"]["images_per_s"]
    return None


# --- grouping, sorting, the best ---------------------------------------------------------------


def _order(value: float | None, last: bool, metric: str) -> tuple:
    larger = METRICS[metric][1]
    if value is None:
        return (last, 1, 0.0)
    return (last, 0, -value if larger else value)


def sort_runs(runs: list[RunRow], metric: str) -> list[RunRow]:
    """Best first by ``metric``; runs without it after those with it; failed and diverged last."""
    name = METRICS[metric][0]
    return sorted(runs, key=lambda r: _order(getattr(r, name), r.status in LAST, metric))


def group_runs(runs: list[RunRow], varied: list[str], metric: str) -> list[GroupRow]:
    """Runs whose varied values are equal, as one row each; sorted by the mean of ``metric``. A
    group goes last only when all its runs failed or diverged."""
    groups: dict[tuple, list[RunRow]] = {}
    for run in runs:
        groups.setdefault(tuple(_same(run.values.get(k)) for k in varied), []).append(run)
    rows = [GroupRow(members[0].values, members) for members in groups.values()]
    name = METRICS[metric][0]

    def order(group: GroupRow) -> tuple:
        stat = group.stat(name)
        return _order(stat and stat.mean, all(r.status in LAST for r in group.runs), metric)

    return sorted(rows, key=order)


def best_run(groups: list[GroupRow], metric: str) -> RunRow | None:
    """The best completed run of the best group: a lucky seed of a worse setting does not win
    over a setting that is better on average."""
    name = METRICS[metric][0]
    for group in groups:
        done = [r for r in group.runs if r.status in GOOD and getattr(r, name) is not None]
        if done:
            return done[0]  # group.runs keeps the sorted order
    return None


def best_recipe(run: RunRow, metric: str, count: int) -> str:
    """The run's resolved config without output_dir, as a recipe for ``cnnlab train``."""
    data = RunDir.open(run.path).config_dict()
    data.pop("output_dir", None)  # trains into ./runs, not into the compared run's folder
    value = getattr(run, METRICS[metric][0])
    return (f"# the best of {count} runs by {metric} ({value:.4g}): {run.path.resolve()}\n"
            f"# train it again with: cnnlab train best_recipe.yaml\n"
            + yaml.safe_dump(data, sort_keys=False, default_flow_style=False))


# --- sweeps --------------------------------------------------------------------------------------


def _sweep_metric(sweeps: list[Path]) -> str | None:
    """The metric of the one sweep given, when compare knows it."""
    if len(sweeps) != 1:
        return None
    metric = read_sweep_record(sweeps[0]).get("metric")
    return metric if metric in METRICS else None


def sweep_importances(sweep: Path) -> Importances:
    """Optuna's parameter importances (``get_param_importances``: PED-ANOVA) over the study's
    complete trials, when it has at least MIN_TRIALS of them varying at least MIN_PARAMS parameters."""
    record = read_sweep_record(sweep)
    name, url = record.get("study"), record.get("storage")
    if not name or not url:
        return Importances(sweep, str(name), None, f"{sweep / SWEEP_FILE} names no study and storage")
    if "***" in url:  # cnnlab sweep keeps a server's password out of sweep.json
        return Importances(sweep, name, None, f"the study's storage {url} needs its password, which sweep.json "
                           "does not keep")
    storage = study_url(url, sweep)
    if storage is None:
        return Importances(sweep, name, None, f"the study database {url.removeprefix('sqlite:///')} is gone")
    import optuna
    from optuna.storages import RDBStorage
    from optuna.trial import TrialState

    try:  # a server that does not answer is a note in seconds, not a hang
        study = optuna.load_study(study_name=name,
                                  storage=RDBStorage(storage, engine_kwargs={"connect_args": connect_args(storage)}))
    except Exception as err:  # SQLAlchemy's errors, a missing driver, a study not there (KeyError)
        return Importances(sweep, name, None, f"cannot open study '{name}' at {redact(storage)}: {first_line(err)}")
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    params = dict.fromkeys(p for t in complete for p in t.params)
    varied = [p for p in params if len({_same(t.params[p]) for t in complete if p in t.params}) > 1]
    if len(complete) < MIN_TRIALS:
        return Importances(sweep, name, None, f"{len(complete)} complete trial(s); importances need {MIN_TRIALS}")
    if len(varied) < MIN_PARAMS:
        return Importances(sweep, name, None, f"the complete trials vary {', '.join(varied) or 'no parameter'}; "
                           f"importances need {MIN_PARAMS} varied parameters")
    with warnings.catch_warnings():  # PED-ANOVA warns about small regimes: the note below says how many trials
        warnings.simplefilter("ignore")
        values = optuna.importance.get_param_importances(study)
    return Importances(sweep, name, dict(values),
                       f"Optuna's get_param_importances (PED-ANOVA) over {len(complete)} complete trials")


__all__ = ["METRICS", "Comparison", "GroupRow", "Importances", "RunRow", "Stat", "compare", "find_runs",
           "flatten", "varied_keys", "read_run", "chance_level", "chance_reason", "sort_runs", "group_runs",
           "best_run", "best_recipe", "sweep_importances"]
