"""``cnnlab scratch gradcheck | bench | train`` end to end, and their one-line errors."""

from __future__ import annotations

import json

import pytest

from cnnlab.run import RunDir

from cnnlab.cli.main import main


def test_gradcheck_prints_the_table_and_passes(capsys):
    assert main(["scratch", "gradcheck", "--only", "layers"]) == 0
    out = capsys.readouterr().out
    assert "batchnorm (closed form)" in out and "FAIL" not in out
    assert "gradients within 1e-07" in out


def test_bench_quick_prints_every_op(capsys):
    assert main(["scratch", "bench", "--quick", "--repeats", "2", "--naive-repeats", "1"]) == 0
    out = capsys.readouterr().out
    for op in ("conv forward", "conv backward", "max pool forward", "max pool backward"):
        assert op in out
    assert "speedup" in out and "fast/torch" in out


@pytest.mark.parametrize("model, extra", [
    ("fc", ["--hidden", "32", "--norm", "batchnorm", "--dropout", "0.25"]),
    ("cnn", ["--hidden", "32", "--filters", "8", "--filter-size", "3", "--lr", "1e-2"]),
])
def test_train_on_digits_writes_the_run_directory(tmp_path, capsys, model, extra):
    code = main(["scratch", "train", "--model", model, "--dataset", "digits", "--epochs", "2", "--val-size", "200",
                 "--lr", "3e-3", "--output-dir", str(tmp_path), "--json", *extra])
    assert code == 0
    printed = capsys.readouterr().out
    assert json.loads(printed)["status"] == "completed"  # --json: stdout holds the summary alone
    (run,) = tmp_path.iterdir()
    assert run.name.startswith(f"scratch-{model}-")
    for name in ("config.yaml", "data.json", "metrics.jsonl", "summary.json", "confusion.json", "curves.png",
                 "confusion.png", "report.html", "model.txt"):
        assert (run / name).is_file(), name
    best = RunDir(run).checkpoints.load(2).meta["best_epoch"]
    assert RunDir(run).checkpoints.epochs() == sorted({best, 2})  # the last and the best epoch stay
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["test"]["acc"] > 0.5
    data = json.loads((run / "data.json").read_text())
    assert data["sizes"]["val"] == 200 and len(data["val_indices"]) == 200
    confusion = json.loads((run / "confusion.json").read_text())
    assert sum(map(sum, confusion["matrix"])) == summary["dataset"]["test"]


@pytest.mark.parametrize("argv, message", [
    (["scratch", "train", "--update", "adamw"], "unknown update rule 'adamw'; did you mean 'adam'?"),
    (["scratch", "train", "--model", "cnn", "--hidden", "64,32"], "--model cnn takes one --hidden width"),
    (["scratch", "train", "--dataset", "mnits"], "unknown dataset 'mnits'"),
    (["scratch", "gradcheck", "--only", "modles"], "unknown gradcheck group 'modles'; did you mean 'models'?"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_an_interrupted_run_still_writes_its_summary(tmp_path, monkeypatch):
    from cnnlab.scratch.solver import Solver

    def interrupt(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(Solver, "train_one_epoch", interrupt)
    code = main(["scratch", "train", "--dataset", "digits", "--val-size", "200", "--output-dir", str(tmp_path),
                 "--quiet"])
    assert code == 130
    (run,) = tmp_path.iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["test"] is None and summary["epochs_run"] == 0
