"""cnnlab compare on real runs: two lrs x two seeds, one at chance, one diverged, one killed, and a
sweep with a real Optuna study. The numbers are checked against summary.json and eval-test.json read
here with json, numpy's mean and sample std, Optuna's own importances, and load_recipe; compare.html
against table.csv in headless Chromium."""

import contextlib
import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml

from cnnlab.analysis.compare import chance_level, compare, flatten, varied_keys
from cnnlab.analysis.evaluation import evaluate_run, write_evaluation
from cnnlab.cli.main import main
from cnnlab.config import config_to_dict, load_recipe
from cnnlab.engine.fit import fit
from cnnlab.engine.progress import Progress
from tests.conftest import fit_killed_after, need
from tests.report.chromium import probe_page, render

BASE = ["data.name=synthetic", "data.val_size=100", "data.batch_size=64", "model.name=simple_nn",
        "data.options={shape: [1, 12, 12], train_size: 600, test_size: 100, noise: 0.1}",
        "optim.momentum=0.9", "train.epochs=3", "train.precision=fp32",
        "train.channels_last=false"]  # fixed settings: nothing to measure before the first epoch


def train(out: Path, *overrides: str) -> Path:
    """A run of under a second: 12x12 synthetic images, simple_nn, three epochs."""
    return Path(fit(load_recipe(None, [f"output_dir={out}", *BASE, *overrides]), progress=Progress(quiet=True)).run_dir)


def summary_of(run: str | Path) -> dict:
    return json.loads((Path(run) / "summary.json").read_text())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """runs/: lr 0.1 and 0.03 with seeds 0 and 1, lr 1e-4 (with weight decay: at chance) and lr 1e6
    (diverged); killed/: lr 0.05 killed after its first epoch. The first run is evaluated (timing)."""
    root = tmp_path_factory.mktemp("compare")
    runs = {(lr, seed): train(root / "runs", f"optim.lr={lr}", f"seed={seed}")
            for lr in ("0.1", "0.03") for seed in (0, 1)}
    runs["chance"] = train(root / "runs", "optim.lr=0.0001", "optim.weight_decay=0.001")
    runs["diverged"] = train(root / "runs", "optim.lr=1.0e+6")
    killed = load_recipe(None, [f"output_dir={root / 'killed'}", *BASE, "optim.lr=0.05"])
    runs["killed"] = fit_killed_after(killed, 1)
    (runs["killed"] / "summary.json").unlink()  # as SIGKILL leaves it: a crash still writes a 'failed' summary
    evaluation, _ = evaluate_run(runs["0.1", 0])
    write_evaluation(runs["0.1", 0], evaluation)
    return root, runs


@pytest.fixture(scope="module")
def compared(trained, tmp_path_factory):
    """``cnnlab compare runs/ killed/ --out OUT``: (its exit status, its output, OUT)."""
    root, _ = trained
    out = tmp_path_factory.mktemp("out")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(["compare", str(root / "runs"), str(root / "killed"), "--out", str(out)])
    return status, printed.getvalue(), out


def test_the_varied_keys_are_those_the_runs_varied(trained):
    root, _ = trained
    comparison = compare([root / "runs", root / "killed"])
    assert comparison.varied == ["optim.lr", "optim.weight_decay"]  # not seed, name or output_dir
    assert varied_keys([flatten({"seed": 1, "model": {"options": {}}}),
                        flatten({"seed": 2, "model": {"options": {"dropout": 0.5}}, "optim": {"lr": 1}}),
                        flatten({"seed": 3, "model": {"options": {}}, "optim": {"lr": 1.0}})]) == \
        ["model.options.dropout", "optim.lr"]  # missing in some; 1 and 1.0 are one float, missing is not


def test_chance_is_two_points_or_three_binomial_std_above_one_in_c():
    assert chance_level(10, 100) == pytest.approx(0.1 + 3 * 0.03)  # sqrt(0.1 * 0.9 / 100) = 0.03
    assert chance_level(10, 5000) == pytest.approx(0.12)  # 3 std = 0.0127: the 2 points are larger
    assert chance_level(2, 0) == pytest.approx(0.52)


def test_seed_groups_are_mean_and_sample_std_of_the_summaries(trained):
    root, runs = trained
    groups = {g.values["optim.lr"]: g for g in compare([root / "runs"]).groups}
    for lr in ("0.1", "0.03"):
        group = groups[float(lr)]
        summaries = [summary_of(runs[lr, seed]) for seed in (0, 1)]
        assert group.seeds == [0, 1]
        for field, values in [("best_val_acc", [s["best"]["val_acc"] for s in summaries]),
                              ("test_acc", [s["test"]["acc"] for s in summaries]),
                              ("final_train_acc", [s["final"]["train_acc"] for s in summaries]),
                              ("train_time_s", [s["time"]["train_wall_s"] for s in summaries])]:
            stat = group.stat(field)
            assert stat.n == 2
            assert stat.mean == pytest.approx(np.mean(values), abs=1e-12)
            assert stat.std == pytest.approx(np.std(values, ddof=1), abs=1e-12)


def test_groups_sort_by_the_metric_and_the_diverged_run_goes_last(trained):
    root, runs = trained
    assert summary_of(runs["diverged"])["status"] == "diverged"  # the engine's verdict, read back here
    comparison = compare([root / "runs", root / "killed"])
    statuses = [g.status for g in comparison.groups]
    assert statuses[-1] == "diverged" and comparison.runs[-1].status == "diverged"
    assert statuses.count("at_chance") == 1 and statuses.count("incomplete") == 1
    chance = next(r for r in comparison.runs if r.status == "at_chance")
    assert chance.path == runs["chance"] and "is at chance (1/10 = 0.1000)" in chance.reason
    assert summary_of(runs["chance"])["best"]["val_acc"] <= 0.1 + 0.02  # at chance by any margin
    killed = next(r for r in comparison.runs if r.status == "incomplete")
    rows = [json.loads(line) for line in (runs["killed"] / "metrics.jsonl").read_text().splitlines()]
    assert killed.best_val_acc == max(r["val_acc"] for r in rows) and killed.test_acc is None

    def means(value, paths):  # each group's mean of value(path), the groups told apart by their lr
        by_group = {}
        for path in paths:
            lr = yaml.safe_load((path / "config.yaml").read_text())["optim"]["lr"]
            by_group.setdefault(lr, []).append(value(path))
        return {lr: np.mean(v) for lr, v in by_group.items()}

    finished = [p for k, p in runs.items() if k not in ("diverged", "killed")]
    val = means(lambda p: summary_of(p)["best"]["val_acc"], finished)
    val[0.05] = killed.best_val_acc
    assert [g.values["optim.lr"] for g in comparison.groups[:-1]] == sorted(val, key=val.get, reverse=True)
    by_test = compare([root / "runs"], metric="test_acc")
    test = means(lambda p: summary_of(p)["test"]["acc"], finished)
    assert [g.values["optim.lr"] for g in by_test.groups[:-1]] == sorted(test, key=test.get, reverse=True)
    fastest = compare([root / "runs"], metric="train_time").runs
    times = [r.train_time_s for r in fastest if r.status != "diverged"]
    assert times == sorted(times)


def test_cnnlab_compare_prints_the_table_and_writes_the_csv_of_every_run(trained, compared):
    _, runs = trained
    status, printed, out = compared
    assert status == 0
    assert "7 runs in 5 groups, by val_acc (best first); varied: optim.lr, optim.weight_decay" in printed
    assert f"wrote {out / 'compare.html'}" in printed
    with open(out / "table.csv", newline="") as file:
        table = list(csv.DictReader(file))
    assert len(table) == 7 and table[-1]["status"] == "diverged"
    evaluated = json.loads((runs["0.1", 0] / "eval-test.json").read_text())
    for row in table:
        path = Path(row["run"])
        if not (path / "summary.json").is_file():
            assert path == runs["killed"] and row["status"] == "incomplete" and row["test_acc"] == ""
            continue
        summary = summary_of(path)
        assert int(row["seed"]) == summary["seed"] and int(row["parameters"]) == summary["model"]["parameters"]
        assert float(row["train_time_s"]) == summary["time"]["train_wall_s"]
        if summary["status"] == "diverged":
            assert row["best_val_acc"] == row["test_acc"] == ""
            continue
        assert float(row["best_val_acc"]) == summary["best"]["val_acc"]
        assert int(row["best_epoch"]) == summary["best"]["epoch"]
        assert float(row["final_train_acc"]) == summary["final"]["train_acc"]
        assert float(row["test_acc"]) == summary["test"]["acc"]
        throughput = evaluated["timing"]["throughput"]["images_per_s"] if path == runs["0.1", 0] else None
        assert (float(row["images_per_s"]) if row["images_per_s"] else None) == throughput


def test_the_best_recipe_is_the_best_runs_config_without_output_dir(trained, compared):
    _, runs = trained
    _, _, out = compared
    best_lr = max(("0.1", "0.03"), key=lambda lr: np.mean([summary_of(runs[lr, s])["best"]["val_acc"] for s in (0, 1)]))
    best = max((runs[best_lr, s] for s in (0, 1)), key=lambda p: summary_of(p)["best"]["val_acc"])
    recipe = load_recipe(out / "best_recipe.yaml")
    expected = yaml.safe_load((best / "config.yaml").read_text())
    assert expected.pop("output_dir") == str(best.parent)
    got = config_to_dict(recipe)
    assert got.pop("output_dir") == "runs"  # the default: a new run goes to ./runs, not into the compared folder
    assert got == expected
    assert str(best) in (out / "best_recipe.yaml").read_text().splitlines()[0]


def make_study(storage: str, name: str, trials: list[dict]) -> optuna.Study:
    """A study holding finished trials: params {key: value} and 'value' (the objective)."""
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    spaces = {"optim.lr": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True),
              "optim.weight_decay": optuna.distributions.FloatDistribution(0.0, 0.01),
              "optim.momentum": optuna.distributions.CategoricalDistribution([0.0, 0.9])}
    for trial in trials:
        params = {k: v for k, v in trial.items() if k != "value"}
        study.add_trial(optuna.trial.create_trial(params=params, value=trial["value"],
                                                  distributions={k: spaces[k] for k in params}))
    return study


def make_sweep(folder: Path, runs: list[Path], trials: list[dict], metric: str = "val_acc",
               states: tuple[str, ...] = ()) -> Path:
    """A sweep folder as cnnlab sweep leaves it: sweep.json, study.db, trials/<run>/ with trial.json
    (its state from ``states``, complete past their end)."""
    folder.mkdir()
    storage = f"sqlite:///{folder.resolve() / 'study.db'}"
    make_study(storage, "lr-sweep", trials)
    (folder / "sweep.json").write_text(json.dumps({"study": "lr-sweep", "storage": storage, "metric": metric,
                                                   "direction": "maximize"}))
    for number, run in enumerate(runs):
        copy = shutil.copytree(run, folder / "trials" / f"trial-{number:04d}" / run.name)
        state = states[number] if number < len(states) else "complete"
        reason = {"pruned": "below the median at epoch 1", "failed": "out of memory"}.get(state, "")
        (copy / "trial.json").write_text(json.dumps({"number": number, "state": state, "reason": reason,
                                                     "params": {}}))
    return folder


TRIALS = [{"optim.lr": lr, "optim.weight_decay": wd, "optim.momentum": m, "value": v}
          for lr, wd, m, v in [(0.1, 0.001, 0.9, 0.80), (0.01, 0.002, 0.0, 0.55), (0.3, 0.0, 0.9, 0.78),
                               (0.001, 0.005, 0.0, 0.20), (0.05, 0.008, 0.9, 0.74), (0.0003, 0.0001, 0.0, 0.12)]]


def test_a_sweep_gives_its_trials_and_optunas_importances(trained, tmp_path):
    _, runs = trained
    trial_runs = [runs["0.1", 0], runs["0.03", 0], runs["0.1", 1]]
    sweep = make_sweep(tmp_path / "sweep", trial_runs, TRIALS, metric="test_acc",
                       states=("failed", "complete", "pruned"))
    comparison = compare([sweep])
    assert comparison.metric == "test_acc"  # the sweep's own
    by_test = sorted(trial_runs[1:], key=lambda p: summary_of(p)["test"]["acc"], reverse=True)
    assert [r.path.name for r in comparison.runs] == [p.name for p in [*by_test, trial_runs[0]]]  # failed last
    failed = comparison.runs[-1]  # though its test accuracy is the highest of the three
    assert failed.path.name == runs["0.1", 0].name and failed.reason == "out of memory"
    assert failed.test_acc == max(summary_of(p)["test"]["acc"] for p in trial_runs)
    pruned = next(r for r in comparison.runs if r.status == "pruned")
    assert pruned.path.name == runs["0.1", 1].name and pruned.reason == "below the median at epoch 1"
    assert comparison.best.path.name == runs["0.03", 0].name  # the one completed trial
    [found] = comparison.importances
    study = optuna.load_study(study_name="lr-sweep", storage=f"sqlite:///{sweep.resolve() / 'study.db'}")
    expected = optuna.importance.get_param_importances(study)
    assert set(expected) == {"optim.lr", "optim.weight_decay", "optim.momentum"}
    assert list(found.values) == list(expected)  # the same order: most important first
    assert list(found.values.values()) == pytest.approx(list(expected.values()))
    assert main(["compare", str(sweep)]) == 0  # default output: compare/ inside the sweep
    assert (sweep / "compare" / "compare.html").is_file() and (sweep / "compare" / "table.csv").is_file()
    assert len(compare([sweep]).runs) == 3  # its own compare/ folder is not taken for a run


@pytest.mark.parametrize("trials, note", [
    (TRIALS[:3], "3 complete trial(s); importances need 4"),
    ([{"optim.lr": t["optim.lr"], "value": t["value"]} for t in TRIALS], "vary optim.lr; importances need 2"),
])
def test_a_study_too_small_for_importances_says_why(trained, tmp_path, trials, note):
    _, runs = trained
    [found] = compare([make_sweep(tmp_path / "sweep", [runs["0.1", 0]], trials)]).importances
    assert found.values is None and note in found.note


def test_a_moved_or_missing_study_database(trained, tmp_path):
    _, runs = trained
    sweep = make_sweep(tmp_path / "sweep", [runs["0.1", 0]], TRIALS)
    moved = shutil.move(sweep, tmp_path / "moved")  # sweep.json still names the old path
    assert compare([moved]).importances[0].values is not None  # study.db found beside sweep.json
    (Path(moved) / "study.db").unlink()
    found = compare([moved]).importances[0]
    assert found.values is None and "is gone" in found.note
    assert not (Path(moved) / "study.db").exists() and not (sweep / "study.db").exists()  # none created


@pytest.mark.parametrize("make, message", [
    (lambda p: p.mkdir(), "is not a run folder and holds none"),
    (lambda p: (p / "notes").mkdir(parents=True), "is not a run folder and holds none"),
    (lambda p: p.write_text("x"), "is a file"),
    (lambda p: None, "no such folder"),
    (lambda p: (p.mkdir(), (p / "sweep.json").write_text("{}")), "is a sweep with no trial runs yet"),
])
def test_folders_that_are_not_runs_are_one_line_and_exit_2(tmp_path, capsys, make, message):
    path = tmp_path / "given"
    make(path)
    assert main(["compare", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"cnnlab: error: {path}") and message in err


def test_an_unknown_metric_is_one_line(trained, capsys):
    root, _ = trained
    assert main(["compare", str(root / "runs"), "--metric", "val_accc"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown metric 'val_accc'; did you mean 'val_acc'?" in err


# Reads the grouped table and the images of compare.html.
PROBE = probe_page("compare.html", """{
  images: imgs.length, decoded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
  rows: [...doc.querySelectorAll('#groups tr')].map(r => [...r.children].map(c => c.textContent)),
  headings: [...doc.querySelectorAll('h2')].map(h => h.textContent)}""")


def test_the_page_shows_the_groups_of_table_csv(compared):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    need(chromium is not None, "chromium is not installed (make test-deps installs it)")
    _, _, out = compared
    seen, log = render(out, chromium, PROBE)
    console = [line for line in log.splitlines() if "CONSOLE" in line]
    assert not console, console
    assert seen["images"] == 1 and seen["decoded"] == 1  # the overlaid curves
    assert seen["headings"][:3] == ["Runs", "Learning curves", "Best recipe"]
    with open(out / "table.csv", newline="") as file:
        table = list(csv.DictReader(file))
    head, *rows = seen["rows"]
    assert head[:4] == ["optim.lr", "optim.weight_decay", "n", "seeds"] and len(rows) == 5
    groups = {}
    for row in table:
        groups.setdefault((float(row["optim.lr"]), float(row["optim.weight_decay"])), []).append(row)

    def shown(key: str, fmt: str, members: list[dict]) -> str:
        values = [float(m[key]) for m in members if m[key]]
        if not values:
            return "-"
        text = f"{np.mean(values):{fmt}}" if len(values) == 1 else \
            f"{np.mean(values):{fmt}} ± {np.std(values, ddof=1):{fmt}}"
        return text + (f" (n={len(values)})" if len(values) < len(members) else "")

    for row in rows:
        members = groups.pop((float(row[0]), float(row[1])))
        assert row[2:4] == [str(len(members)), ", ".join(sorted(m["seed"] for m in members))]
        assert row[4] == shown("best_val_acc", ".4f", members)
        assert row[6] == shown("final_train_acc", ".4f", members)
        assert row[7] == shown("test_acc", ".4f", members)
        assert row[8] == shown("train_time_s", ".1f", members)
        assert row[10] == (f"{int(members[0]['parameters']):,}" if members[0]["parameters"] else "-")
        assert row[11] == members[0]["status"]
    assert not groups
