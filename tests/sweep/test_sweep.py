"""cnnlab sweep: grids run each point once, searches sample, failures are recorded as failures, a
killed worker's trial is retried, and several workers share one study (SQLite and PostgreSQL)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from cnnlab.analysis.compare import chance_level
from cnnlab.cli.main import main
from cnnlab.sweep import runner, study as studies
from cnnlab.sweep.spec import SweepSpec, check_spec
from tests.conftest import need
from tests.sweep.postgres import Server, binaries

# quick_test: synthetic 3x32x32 images, simple_nn, Adam; one epoch of 600 images keeps a trial ~1 s
FAST = ["train.epochs=1", "data.options={shape: [1, 16, 16], train_size: 600, test_size: 100, noise: 1.0}",
        "data.val_size=100"]


def spec(extra=(), **fields) -> SweepSpec:
    return check_spec(SweepSpec(recipe="quick_test", overrides=[*FAST, *extra], **fields))


def trials_of(sweep_dir, url=None):
    s, url, name = runner.read_sweep(sweep_dir, url)
    return studies.load_study(studies.open_storage(url), name, mode=s.mode, seed=0, prune=False).get_trials()


def test_a_grid_runs_every_point_once_as_ordinary_run_folders(tmp_path):
    grid = spec(grid={"optim.lr": [0.003, 0.001]}, seeds=2)
    sweep_dir = runner.start_sweep(grid, tmp_path, storage=None, name="grid")
    assert runner.work(sweep_dir) == 4
    trials = trials_of(sweep_dir)
    assert sorted((t.params["optim.lr"], t.params["seed"]) for t in trials) == \
        [(0.001, 0), (0.001, 1), (0.003, 0), (0.003, 1)]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    runs = sorted(p for p in sweep_dir.iterdir() if (p / "config.yaml").is_file())
    assert len(runs) == 4
    for run in runs:
        record = json.loads((run / "trial.json").read_text())
        summary = json.loads((run / "summary.json").read_text())
        trial = next(t for t in trials if t.number == record["number"])
        assert trial.value == pytest.approx(summary["best"]["val_acc"])  # the study holds the run's own figure
        assert summary["seed"] == record["seed"] == trial.params["seed"]
        assert f"lr: {trial.params['optim.lr']}" in (run / "config.yaml").read_text()
    assert runner.work(sweep_dir) == 0  # nothing left: a second worker (or a resume) runs nothing again


def test_diverged_and_at_chance_trials_are_recorded_as_such(tmp_path):
    # lr 1e6 diverges; lr 1e-9 leaves the initial net, which answers one class for most images
    grid = spec(grid={"optim.lr": [1e6, 1e-9, 0.003]}, extra=["optim.name=sgd", "optim.momentum=0.0"])
    sweep_dir = runner.start_sweep(grid, tmp_path, storage=None, name="fail")
    runner.work(sweep_dir)
    by_lr = {t.params["optim.lr"]: t for t in trials_of(sweep_dir)}
    diverged = by_lr[1e6]
    assert diverged.state == TrialState.FAIL and diverged.user_attrs["state"] == "diverged"
    assert "not finite" in diverged.user_attrs["reason"] and diverged.value is None
    summaries = {json.loads((p / "trial.json").read_text())["params"]["optim.lr"]:
                 json.loads((p / "summary.json").read_text()) for p in sweep_dir.glob("trial-*")}
    assert summaries[1e6]["status"] == "diverged"
    still = by_lr[1e-9]
    chance = 0.1 + 3 * (0.1 * 0.9 / 100) ** 0.5  # 1/C and three binomial sigmas of 100 val images
    assert chance_level(10, 100) == pytest.approx(chance)
    assert summaries[1e-9]["best"]["val_acc"] <= chance  # read from the run itself
    assert still.user_attrs["state"] == "at_chance" and "at chance" in still.user_attrs["reason"]


def test_a_search_samples_within_its_bounds(tmp_path):
    from cnnlab.sweep.spec import parse_search

    search = spec(search=dict([parse_search("optim.lr=loguniform:1e-4:1e-2"),
                               parse_search("optim.name=choice:adam,sgd")]), trials=3)
    sweep_dir = runner.start_sweep(search, tmp_path, storage=None, name="tpe")
    runner.work(sweep_dir)
    trials = trials_of(sweep_dir)
    assert len(trials) == 3 and all(t.state == TrialState.COMPLETE for t in trials)
    assert all(1e-4 <= t.params["optim.lr"] <= 1e-2 and t.params["optim.name"] in ("adam", "sgd") for t in trials)


def test_a_killed_workers_trial_is_failed_and_retried_once(tmp_path, monkeypatch):
    monkeypatch.setattr(studies, "HEARTBEAT_S", 1)
    monkeypatch.setattr(studies, "GRACE_S", 2)
    sweep_dir = runner.start_sweep(spec(grid={"optim.lr": [0.003, 0.001]}), tmp_path, storage=None, name="kill")
    s, url, name = runner.read_sweep(sweep_dir)
    study = studies.load_study(studies.open_storage(url), name, mode="grid", seed=0, prune=False)
    taken = studies.next_grid_trial(study, url)  # a worker takes a trial, beats once, and dies
    study._storage.record_heartbeat(taken._trial_id)
    time.sleep(3)
    runner.work(sweep_dir)
    trials = trials_of(sweep_dir)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert [t.number for t in failed] == [taken.number]
    done = sorted(t.params["optim.lr"] for t in trials if t.state == TrialState.COMPLETE)
    assert done == [0.001, 0.003]  # the killed point ran again, once


def test_a_live_worker_taken_for_dead_warns_and_goes_on(tmp_path, capsys, monkeypatch):
    """A beat delayed past the grace on a loaded machine: another worker fails the trial while it
    runs; the owner's result is then refused by Optuna, and the owner says so and takes the next."""
    monkeypatch.setattr(studies, "GRACE_S", 1)
    sweep_dir = runner.start_sweep(spec(grid={"optim.lr": [0.003, 0.001]}), tmp_path, storage=None, name="late")
    s, url, name = runner.read_sweep(sweep_dir)
    study = studies.load_study(studies.open_storage(url), name, mode="grid", seed=0, prune=False)
    owner = studies.next_grid_trial(study, url)
    study._storage.record_heartbeat(owner._trial_id)  # one beat, then none for longer than the grace
    time.sleep(2.5)
    studies.fail_stale(study)  # what another worker does before it takes a trial
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        owner.report(0.5, 1)  # what the owner's epoch hook does next, unguarded
    runner.unless_finished(owner.report, 0.5, 1)
    runner.unless_finished(owner.set_user_attr, "state", "complete")
    runner.tell(study, owner, "complete", 0.5)
    assert "was marked failed by another worker while it ran" in capsys.readouterr().err
    assert runner.work(sweep_dir) == 2  # the other point and the re-queued copy of the owner's
    states = sorted(t.state.name for t in trials_of(sweep_dir))
    assert states == ["COMPLETE", "COMPLETE", "FAIL"]


def test_a_heartbeat_outlives_a_database_error(tmp_path, monkeypatch):
    monkeypatch.setattr(studies, "HEARTBEAT_S", 0.05)
    sweep_dir = runner.start_sweep(spec(grid={"optim.lr": [0.003, 0.001]}), tmp_path, storage=None, name="beat")
    s, url, name = runner.read_sweep(sweep_dir)
    study = studies.load_study(studies.open_storage(url), name, mode="grid", seed=0, prune=False)
    trial = studies.next_grid_trial(study, url)
    calls = []

    def flaky(trial_id):
        calls.append(trial_id)
        if len(calls) == 1:
            raise optuna.exceptions.StorageInternalError("database is locked")

    monkeypatch.setattr(study._storage, "record_heartbeat", flaky)
    with studies.Heartbeat(study, trial):
        time.sleep(0.5)
    assert len(calls) >= 3  # beating went on after the first write failed


# One worker: claim every waiting trial of the sweep without running it, print their numbers.
CLAIM = """
import json, sys
from cnnlab.sweep import runner, study as studies
spec, url, name = runner.read_sweep(sys.argv[1])
study = studies.load_study(studies.open_storage(url), name, mode="grid", seed=0, prune=False)
claimed = []
while (trial := studies.next_grid_trial(study, url)) is not None:
    claimed.append(trial.number)
print(json.dumps(claimed))
"""


def test_two_workers_never_claim_the_same_sqlite_trial(tmp_path):
    """SQLite has no row locks: without ``claiming``, two processes racing through 100 waiting
    trials claimed 3 or 4 of them twice."""
    grid = spec(grid={"optim.lr": [round(0.0001 * (i + 1), 4) for i in range(100)]})
    sweep_dir = runner.start_sweep(grid, tmp_path, storage=None, name="race")
    workers = [subprocess.Popen([sys.executable, "-c", CLAIM, str(sweep_dir)], stdout=subprocess.PIPE, text=True)
               for _ in range(2)]
    claimed = [json.loads(w.communicate(timeout=120)[0]) for w in workers]
    assert all(w.returncode == 0 for w in workers)
    assert sorted(claimed[0] + claimed[1]) == list(range(100))  # each once, none left waiting
    assert min(len(c) for c in claimed) > 10  # both workers really raced for them


def start_workers(sweep_dir, count, storage=None):
    command = [sys.executable, "-m", "cnnlab", "sweep", "--worker", str(sweep_dir), "--threads", "1"]
    return [subprocess.Popen(command + (["--storage", storage] if storage else []),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(count)]


def test_two_workers_share_a_sqlite_grid(tmp_path):
    sweep_dir = runner.start_sweep(spec(grid={"optim.lr": [0.003, 0.002, 0.001]}, seeds=2), tmp_path, storage=None,
                                   name="two")
    workers = start_workers(sweep_dir, 2)
    codes = [w.wait(timeout=300) for w in workers]
    for w in workers:
        print(w.stderr.read())  # shown in full when the assertion below fails
    assert codes == [0, 0]
    trials = trials_of(sweep_dir)
    assert len(trials) == 6 and all(t.state == TrialState.COMPLETE for t in trials)
    assert len({(t.params["optim.lr"], t.params["seed"]) for t in trials}) == 6


@pytest.fixture(scope="module")
def postgres():
    need(binaries() is not None, "PostgreSQL's server is not installed (make test-deps installs Debian's postgresql)")
    server = Server(binaries())
    yield server
    server.stop()


def test_postgresql_two_workers_run_a_six_point_grid_each_point_once(postgres, tmp_path):
    url = postgres.create_database("grid6")
    sweep_dir = runner.start_sweep(spec(grid={"optim.lr": [0.003, 0.002, 0.001]}, seeds=2), tmp_path, storage=url,
                                   name="pg")
    assert json.loads((sweep_dir / "sweep.json").read_text())["storage"] == url  # no password to hide
    assert not (sweep_dir / "study.db").exists()
    workers = start_workers(sweep_dir, 2, url)
    assert [w.wait(timeout=300) for w in workers] == [0, 0], [w.stderr.read() for w in workers]
    trials = trials_of(sweep_dir, url)
    assert len(trials) == 6 and all(t.state == TrialState.COMPLETE for t in trials)
    assert len({(t.params["optim.lr"], t.params["seed"]) for t in trials}) == 6


def test_postgresql_a_worker_killed_mid_trial_is_retried_and_the_study_completes(postgres, tmp_path, monkeypatch):
    url = postgres.create_database("killed")
    # trials of a few seconds, so that the kill lands inside one
    slow = spec(grid={"optim.lr": [0.003, 0.001]}, extra=["train.epochs=6"])
    sweep_dir = runner.start_sweep(slow, tmp_path, storage=url, name="pgkill")
    [victim] = start_workers(sweep_dir, 1, url)
    deadline = time.monotonic() + 120
    while not any(t.state == TrialState.RUNNING for t in trials_of(sweep_dir, url)):
        assert time.monotonic() < deadline and victim.poll() is None
        time.sleep(0.2)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    monkeypatch.setattr(studies, "GRACE_S", 2)  # the survivor sees the dead heartbeat after 2 s, not 20
    time.sleep(3)
    runner.work(sweep_dir, storage=url)
    trials = trials_of(sweep_dir, url)
    assert sum(t.state == TrialState.FAIL for t in trials) == 1
    assert sorted(t.params["optim.lr"] for t in trials if t.state == TrialState.COMPLETE) == [0.001, 0.003]


@pytest.mark.parametrize("words, message", [
    (["--grid", "optim.lr"], "bad grid 'optim.lr': write --grid key=v1,v2"),
    (["--search", "optim.lr=logu:1:2", "--trials", "2"], "bad search 'optim.lr=logu:1:2': write --search"),
    (["--search", "optim.lr=loguniform:1:0.1", "--trials", "2"], "bad search"),
    (["--grid", "optim.lrr=0.1,0.2"], "unknown key 'optim.lrr'"),
    (["--grid", "optim.lr=0.1", "--search", "optim.momentum=uniform:0:1", "--trials", "2"], "not both"),
    (["--search", "optim.lr=uniform:0:1"], "needs --trials"),
    ([], "nothing to sweep"),
    # what only the model, optimizer, augmentation and loss registries know, found before any trial
    (["--grid", "model.options.batchnrm=true,false"],
     "the point model.options.batchnrm=True cannot train: model 'simple_nn' has no option 'batchnrm'; "
     "did you mean 'batchnorm'?"),
    (["optim.name=adam", "--grid", "optim.nesterov=true,false"], "optimizer 'adam' has no option"),
    (["--search", "optim.name=choice:sgd,adam", "--search", "optim.momentum=uniform:0:0.9", "--trials", "2"],
     "the point optim.name=adam, optim.momentum=0.0 cannot train: optimizer 'adam' has no option 'momentum'"),
    (["--grid", "data.augment=[],[{name: flip}]"], "unknown augmentation 'flip'"),
    (["--grid", "loss.name=cross_entropy,bce"], "the point loss.name=bce cannot train: loss 'bce' is for two classes on one logit, but the data has 10"),
    (["--grid", "model.options.dropout=0.1,1.5"], "'dropout' must be in [0, 1)"),
])
def test_bad_sweeps_are_one_line_and_leave_nothing(tmp_path, capsys, words, message):
    assert main(["sweep", "quick_test", *words, "--out", str(tmp_path / "sweeps")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "sweeps").exists()


def test_an_unreachable_storage_fails_in_seconds(tmp_path, capsys):
    start = time.monotonic()
    assert main(["sweep", "quick_test", "--grid", "optim.lr=0.1,0.01", "--out", str(tmp_path),
                 "--storage", "postgresql+psycopg://u:secret@127.0.0.1:1/db"]) == 2
    err = capsys.readouterr().err.strip()
    assert time.monotonic() - start < 15 and "cannot open the study storage" in err and "secret" not in err
    assert len(err.splitlines()) == 1 and list(tmp_path.iterdir()) == []


def test_workers_are_pinned_to_cores_of_their_own(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {2, 3, 5, 7})
    assert runner.core_groups(2, 2) == [{2, 3}, {5, 7}]
    assert runner.core_groups(4, 1) == [{2}, {3}, {5}, {7}]
    assert runner.core_groups(3, 2) == [None, None, None]  # more threads than cores: the scheduler decides
