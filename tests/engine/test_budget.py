"""A time budget: the steps that fit, the re-plan after epoch 1, the record, and an exact resume."""

import math

import pytest

from cnnlab.engine.budget import MARGIN, Plan, first_plan, steps_that_fit
from cnnlab.engine.fit import fit
from cnnlab.engine.progress import Progress
from cnnlab.engine.schedule import onecycle
from cnnlab.errors import CnnlabError
from cnnlab.run import RunDir
from tests.conftest import fit_killed_after, with_overrides

QUIET = Progress(quiet=True)


def test_steps_that_fit_count_whole_epochs_then_a_partial_one():
    # Epochs of 10 steps at 1 s plus 2 s of validation take 12 s: 30 s hold 2 of them (24 s),
    # and the 6 s left hold 4 more steps before their 2 s of validation.
    assert steps_that_fit(30, step_s=1.0, overhead_s=2.0, steps_per_epoch=10) == 24
    assert steps_that_fit(24, step_s=1.0, overhead_s=2.0, steps_per_epoch=10) == 20
    assert steps_that_fit(11.5, step_s=1.0, overhead_s=2.0, steps_per_epoch=10) == 9
    assert steps_that_fit(2.5, step_s=1.0, overhead_s=2.0, steps_per_epoch=10) == 0
    assert steps_that_fit(1000, step_s=1.0, overhead_s=2.0, steps_per_epoch=10) == 832  # 83 x 12 s = 996 s, then 2 steps and 2 s of validation


def test_a_plan_counts_epochs_and_steps_and_is_capped_by_train_epochs():
    plan = first_plan(100, step_s=0.5, steps_per_epoch=20, batch=100, val_images=600, max_epochs=50)
    # validation: 6 batches at a third of a 0.5 s step = 1 s, so an epoch is 11 s of the 97 s kept:
    # 8 epochs (88 s), then 16 steps (8 s) and validation (1 s)
    assert plan.history[0]["overhead_s"] == pytest.approx(1.0)
    assert plan.total_steps == steps_that_fit(100 * (1 - MARGIN), step_s=0.5, overhead_s=1.0, steps_per_epoch=20)
    assert plan.total_steps == 8 * 20 + 16 and plan.epochs == 9
    assert [plan.steps_in(e) for e in (1, 8, 9, 10)] == [20, 20, 16, 0] and plan.steps_through(9) == 176
    # After epoch 1 took 15 s (12 s of steps, 3 s of the rest): 82 s left hold 5 epochs of 15 s and 6 steps.
    plan.replan(elapsed_s=15, train_s=12, wall_s=15, steps_done=20)
    assert plan.replanned and plan.history[1]["step_s"] == pytest.approx(0.6)
    assert plan.total_steps == 20 + 5 * 20 + 6
    assert Plan.from_dict(plan.to_dict()) == plan
    fast = first_plan(100, step_s=0.001, steps_per_epoch=20, batch=100, val_images=600, max_epochs=3)
    assert fast.total_steps == 60  # a fast machine stops at train.epochs


def test_a_later_epoch_re_plans_only_when_the_plan_would_overrun():
    plan = first_plan(100, step_s=0.5, steps_per_epoch=20, batch=100, val_images=600, max_epochs=50)
    plan.replan(elapsed_s=11, train_s=10, wall_s=11, steps_done=20)  # epoch 1 as estimated: 8 epochs + 16 steps
    assert plan.total_steps == 176 and plan.epochs == 9
    # Three epochs at 11 s each: 33 s, and 116 steps at 0.5 s plus 6 validations of 1 s is 97 s in all:
    # inside the budget less its guard (98.5 s).
    assert not plan.overruns(elapsed_s=33, train_s=30, wall_s=33, epochs_done=3)
    # The machine slowed: 3 epochs took 36 s (33 of steps: 0.55 s a step, 1 s of validation each), and the
    # rest would take 116 x 0.55 + 6 = 69.8 s: 105.8 s, past the budget.
    assert plan.overruns(elapsed_s=36, train_s=33, wall_s=36, epochs_done=3)
    plan.replan(elapsed_s=36, train_s=33, wall_s=36, steps_done=60, epochs_done=3)
    assert plan.history[-1] == {"after_epoch": 3, "step_s": pytest.approx(0.55), "overhead_s": pytest.approx(1.0),
                                "total_steps": 60 + steps_that_fit(97 - 36, step_s=0.55, overhead_s=1.0,
                                                                   steps_per_epoch=20)}
    assert plan.total_steps == 60 + 5 * 20  # the 61 s left hold 5 epochs of 12 s; the last second, no step and validation
    assert not plan.overruns(elapsed_s=36, train_s=33, wall_s=36, epochs_done=3)


def test_a_budget_too_small_for_one_epoch_says_how_long_one_takes():
    with pytest.raises(CnnlabError, match=r"train.time_budget_s=5 is too short for one epoch: here one epoch "
                                          r"\(20 steps of 0.5s, then validation\) takes about 11s; set "
                                          r"train.time_budget_s to at least 12"):
        first_plan(5, step_s=0.5, steps_per_epoch=20, batch=100, val_images=600, max_epochs=50)


def test_a_budgeted_run_follows_its_plan_and_records_it(tiny_config):
    config = with_overrides(tiny_config, "train.time_budget_s=60", "train.epochs=5", "schedule.name=onecycle")
    summary = fit(config, progress=QUIET)
    budget = summary.budget
    spe = budget["steps_per_epoch"]
    assert budget["budget_s"] == 60 and len(budget["plans"]) == 2  # before epoch 1, and after it
    assert budget["planned_steps"] == budget["actual_steps"] == budget["plans"][1]["total_steps"]
    assert summary.epochs_run == math.ceil(budget["planned_steps"] / spe)
    assert budget["train_wall_s"] == summary.time["train_wall_s"]
    chosen = next(t for t in summary.settings["timings"] if t["channels_last"] == summary.settings["channels_last"])
    assert chosen["step_s"] == budget["plans"][0]["step_s"]  # the plan starts from the chosen setting's step
    # The one-cycle schedule was laid over the planned steps: each epoch started at its lr for that count.
    factor = onecycle(total_steps=budget["planned_steps"], steps_per_epoch=spe)
    for row in RunDir(summary.run_dir).metrics():
        assert row.lr == pytest.approx(config.optim.lr * factor((row.epoch - 1) * spe))


def test_a_partial_last_epoch_trains_only_its_steps(tiny_config, monkeypatch):
    # A machine on which the budget holds 2 epochs and 3 steps (the estimates are replaced; what is
    # checked is that the run trains exactly what the plan says and records it).
    monkeypatch.setattr("cnnlab.engine.budget.steps_that_fit", lambda seconds, *, step_s, overhead_s,
                        steps_per_epoch: 2 * steps_per_epoch + 3)
    summary = fit(with_overrides(tiny_config, "train.time_budget_s=60", "train.epochs=20"), progress=QUIET)
    spe = summary.budget["steps_per_epoch"]
    assert summary.budget["planned_steps"] == spe + 2 * spe + 3  # epoch 1, then what fits after it
    assert summary.epochs_run == 4 and summary.budget["actual_steps"] == 3 * spe + 3
    last = RunDir(summary.run_dir).metrics()[-1]
    assert last.images_per_s * last.epoch_time == pytest.approx(3 * tiny_config.data.batch_size, rel=1e-6)


def test_a_re_plan_after_a_later_epoch_shrinks_the_run_and_its_schedule(tiny_config, monkeypatch):
    # After epoch 2 the plan is found to overrun (as on a machine that slowed down); the run re-plans from
    # its epochs so far and trains, records and schedules the new count.
    monkeypatch.setattr("cnnlab.engine.budget.Plan.overruns", lambda self, *, epochs_done, **times: epochs_done == 2)
    fits = iter([(3, 1), (2, 1), (0, 1)])  # (epochs, steps) that fit: before epoch 1, after it, after epoch 2
    monkeypatch.setattr("cnnlab.engine.budget.steps_that_fit", lambda seconds, *, step_s, overhead_s,
                        steps_per_epoch: (lambda e, k: e * steps_per_epoch + k)(*next(fits)))
    config = with_overrides(tiny_config, "train.time_budget_s=60", "train.epochs=20", "schedule.name=onecycle")
    summary = fit(config, progress=QUIET)
    plans, spe = summary.budget["plans"], summary.budget["steps_per_epoch"]
    assert [p["after_epoch"] for p in plans] == [0, 1, 2]
    assert [p["total_steps"] for p in plans] == [3 * spe + 1, spe + 2 * spe + 1, 2 * spe + 1]
    assert summary.epochs_run == 3 and summary.budget["actual_steps"] == 2 * spe + 1
    rows = RunDir(summary.run_dir).metrics()
    # Epochs 1 and 2 followed the plan made after epoch 1, epoch 3 on the one made after epoch 2.
    after_1, after_2 = (onecycle(total_steps=p["total_steps"], steps_per_epoch=spe) for p in plans[1:])
    assert rows[2].lr == pytest.approx(config.optim.lr * after_2(2 * spe))
    assert rows[1].lr == pytest.approx(config.optim.lr * after_1(spe))


def test_a_budgeted_run_resumes_its_plan_exactly(tiny_config):
    # A budget that holds more than train.epochs: both runs plan train.epochs, whatever the clock says.
    config = with_overrides(tiny_config, "train.time_budget_s=3600", "train.epochs=4", "schedule.name=onecycle")
    straight = fit(config, progress=QUIET)

    killed = fit_killed_after(config, 2)
    resumed = fit(config, progress=QUIET, resume=str(killed))
    assert [r.without_times() for r in RunDir(straight.run_dir).metrics()] == \
        [r.without_times() for r in RunDir(killed).metrics()]
    assert resumed.test == straight.test and resumed.budget["actual_steps"] == straight.budget["actual_steps"]
