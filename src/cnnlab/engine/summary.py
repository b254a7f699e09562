"""The per-epoch metrics row and the run's summary.json."""

from __future__ import annotations

from typing import Any

import torch

from cnnlab.config import config_to_dict
from cnnlab.run.environment import describe_environment
from cnnlab.engine.loop import EpochResult
from cnnlab.models import count_parameters


def metric_row(epoch: int, lr: float, train: EpochResult, val: EpochResult) -> dict[str, Any]:
    """One line of metrics.jsonl; accuracies are fractions, times seconds."""
    return {
        "epoch": epoch, "lr": lr,
        "train_loss": train.loss, "train_acc": train.top1, "train_top5": train.top5,
        "val_loss": val.loss, "val_acc": val.top1, "val_top5": val.top5,
        "epoch_time": train.seconds, "val_time": val.seconds, "images_per_s": train.images_per_s,
    }


def build_summary(session, run, state: dict, *, train_wall: float, wall: float, test: dict | None) -> dict:
    """Best and final metrics, the test result, times, sizes, device and versions of a run."""
    config, splits, model, precision = session.config, session.splits, session.model, session.precision
    rows = run.metrics
    best = next((r for r in rows if r["epoch"] == session.monitor.best_epoch), None)
    epoch_times = [r["epoch_time"] for r in rows]
    return {
        "status": state["status"],
        "run_dir": str(run.path),
        "name": config.name,
        "seed": config.seed,
        "dataset": {"name": config.data.name, "classes": splits.num_classes,
                    "image_shape": list(splits.train_images.shape[1:]), "train": int(splits.train_labels.size),
                    "val": int(splits.val_labels.size), "test": int(splits.test_labels.size)},
        "model": {"name": config.model.name, "parameters": count_parameters(model),
                  "trainable_parameters": count_parameters(model, trainable_only=True)},
        "epochs_run": state["epochs_run"],
        "monitor": session.monitor.key,
        "best": best,
        "final": rows[-1] if rows else None,
        "test": test,
        "first_batch_loss": session.first_loss,
        "expected_initial_loss": session.loss_fn.initial,
        "time": {"train_wall_s": train_wall, "total_wall_s": wall,
                 "epoch_mean_s": sum(epoch_times) / len(epoch_times) if epoch_times else None,
                 "train_images_per_s": rows[-1]["images_per_s"] if rows else None},
        "device": {"type": precision.device.type, "precision": precision.name,
                   "channels_last": precision.channels_last, "threads": torch.get_num_threads()},
        "environment": describe_environment(precision.device),
        "config": config_to_dict(config),
    }
