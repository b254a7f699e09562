"""The per-epoch metrics row and the run's summary, as the run record's types."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from cnnlab.engine.loop import EpochResult
from cnnlab.models import count_parameters
from cnnlab.allocator import keep_freed_memory
from cnnlab.run.environment import describe_environment
from cnnlab.run.record import Divergence, MetricsRow, Status, Summary, TestResult


def metric_row(epoch: int, lr: float, train: EpochResult, val: EpochResult, wall_time: float) -> MetricsRow:
    """One line of metrics.jsonl; accuracies are fractions, times seconds."""
    return MetricsRow(epoch=epoch, lr=lr, train_loss=train.loss, train_acc=train.top1, train_top5=train.top5,
                      val_loss=val.loss, val_acc=val.top1, val_top5=val.top5, epoch_time=train.seconds,
                      val_time=val.seconds, images_per_s=train.images_per_s, wall_time=wall_time)


def train_wall_seconds(rows: Sequence[MetricsRow]) -> float:
    """Training time of the run's epochs, across every process that trained some of them."""
    return sum(r.wall_time if r.wall_time is not None else r.epoch_time + r.val_time for r in rows)


def build_summary(session, run_path: str, rows: Sequence[MetricsRow], *, status: Status, wall: float,
                  test: TestResult | None = None, divergence: Divergence | None = None,
                  failure: str | None = None) -> Summary:
    """Best and final metrics, the test result, times, sizes, device and versions of a run.

    ``wall`` is this process's time from set-up to the end (a resumed run counts its last part).
    """
    config, splits, model, precision = session.config, session.splits, session.model, session.precision
    best = next((r for r in rows if r.epoch == session.monitor.best_epoch), None)
    return Summary(
        status=status,
        run_dir=str(run_path),
        name=config.name,
        seed=config.seed,
        dataset={"name": config.data.name, "classes": splits.num_classes,
                 "image_shape": list(splits.train_images.shape[1:]), "train": int(splits.train_labels.size),
                 "val": int(splits.val_labels.size), "test": int(splits.test_labels.size)},
        model={"name": config.model.name, "parameters": count_parameters(model),
               "trainable_parameters": count_parameters(model, trainable_only=True)},
        epochs_run=len(rows),
        monitor=session.monitor.key,
        best=best,
        final=rows[-1] if rows else None,
        test=test,
        first_batch_loss=session.first_loss,
        expected_initial_loss=session.loss_fn.initial,
        time={"train_wall_s": train_wall_seconds(rows), "total_wall_s": wall,
              "epoch_mean_s": sum(r.epoch_time for r in rows) / len(rows) if rows else None,
              "train_images_per_s": rows[-1].images_per_s if rows else None},
        device={"type": precision.device.type, "precision": precision.name,
                "channels_last": precision.channels_last, "threads": torch.get_num_threads(),
                "malloc_keeps_freed_memory": keep_freed_memory()},
        environment=describe_environment(precision.device),
        divergence=divergence,
        failure=failure,
        settings=session.choice.to_dict(),
        budget=budget_record(session.plan, len(rows), train_wall_seconds(rows)) if session.plan else None,
    )


def budget_record(plan, epochs_run: int, train_wall_s: float) -> dict:
    """What a time budget planned and what the run did: steps, epochs and seconds."""
    return {"budget_s": plan.budget_s, "planned_steps": plan.total_steps, "actual_steps": plan.steps_through(epochs_run),
            "steps_per_epoch": plan.steps_per_epoch, "planned_epochs": round(plan.total_steps / plan.steps_per_epoch, 3),
            "train_wall_s": train_wall_s, "plans": plan.history}
