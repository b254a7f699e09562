"""``fit(config) -> summary``: one training run, from recipe to finished run directory.

The order is the data flow of the whole package: data (split, train-only normalization) ->
model -> loss, optimizer, schedule -> epochs (train, validate, checkpoint, early stop) -> one
test evaluation with the best-on-validation checkpoint -> summary, plots and report. Nothing is
global: the per-epoch ``callbacks`` receive each metrics row (sweeps prune and log there).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import torch

from cnnlab.config import RunConfig, config_to_dict, dump_yaml
from cnnlab.data import load_dataset
from cnnlab.data.augment import build_augmentations
from cnnlab.data.loader import DeviceLoader
from cnnlab.data.normalize import ChannelStats, fit_channel_stats
from cnnlab.data.splits import Splits, make_splits
from cnnlab.engine.checkpoint import load_weights, save_train_state, save_weights
from cnnlab.engine.environment import describe_environment
from cnnlab.engine.losses import build_loss
from cnnlab.engine.loop import EpochResult, evaluate, is_finite, train_one_epoch
from cnnlab.engine.model_setup import create_model, trainable_parameters
from cnnlab.engine.optim import build_optimizer
from cnnlab.engine.precision import Precision, resolve_precision
from cnnlab.engine.progress import Progress
from cnnlab.engine.schedule import build_schedule
from cnnlab.engine.seed import capture_rng_state, make_generator, seed_everything
from cnnlab.errors import CnnlabError
from cnnlab.models import count_parameters
from cnnlab.run import RunDir

EpochCallback = Callable[[dict[str, Any]], None]


def prepare_splits(config: RunConfig) -> tuple[Splits, ChannelStats]:
    """Load the dataset, split it, and fit normalization on the train split only."""
    data = config.data
    dataset = load_dataset(data.name, data.root, **data.options)
    splits = make_splits(dataset, val_size=data.val_size, seed=data.split_seed,
                         classes=data.classes, train_limit=data.train_limit)
    C = splits.train_images.shape[1]
    stats = fit_channel_stats(splits.train_images) if data.normalize else ChannelStats.identity(C)
    return splits, stats


def make_loaders(splits: Splits, stats: ChannelStats, config: RunConfig, precision: Precision,
                 generator: torch.Generator) -> dict[str, DeviceLoader]:
    common = dict(stats=stats, device=precision.device, channels_last=precision.channels_last)
    evaluation = dict(batch_size=config.data.eval_batch_size, **common)
    return {
        "train": DeviceLoader(splits.train_images, splits.train_labels, batch_size=config.data.batch_size,
                              augment=build_augmentations(config.data.augment), shuffle=True,
                              generator=generator, **common),
        "val": DeviceLoader(splits.val_images, splits.val_labels, **evaluation),
        "test": DeviceLoader(splits.test_images, splits.test_labels, **evaluation),
    }


def metric_row(epoch: int, lr: float, train: EpochResult, val: EpochResult) -> dict[str, Any]:
    return {
        "epoch": epoch, "lr": lr,
        "train_loss": train.loss, "train_acc": train.top1, "train_top5": train.top5,
        "val_loss": val.loss, "val_acc": val.top1, "val_top5": val.top5,
        "epoch_time": train.seconds, "val_time": val.seconds, "images_per_s": train.images_per_s,
    }


class Monitor:
    """Tracks the monitored val metric for best checkpoints and early stopping."""

    def __init__(self, key: str, patience: int | None, min_delta: float) -> None:
        if not key.startswith("val_"):
            raise CnnlabError(f"train.monitor must be a validation metric (val_acc, val_loss, val_top5), got '{key}'")
        self.key, self.patience, self.min_delta = key, patience, min_delta
        self.sign = -1.0 if key.endswith("loss") else 1.0  # losses improve downwards
        self.best: float | None = None
        self.best_epoch = 0
        self.stale = 0

    def update(self, row: dict[str, Any]) -> bool:
        """Record this epoch; True when it is the best so far."""
        value = row.get(self.key)
        if value is None or not math.isfinite(value):
            self.stale += 1
            return False
        if self.best is None or self.sign * (value - self.best) > self.min_delta:
            self.best, self.best_epoch, self.stale = value, row["epoch"], 0
            return True
        self.stale += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.stale >= self.patience


def fit(config: RunConfig, *, callbacks: Sequence[EpochCallback] = (), progress: Progress | None = None) -> dict:
    """Train one run end to end and return its summary (also written to summary.json)."""
    progress = progress or Progress()
    wall_start = time.perf_counter()
    seed_everything(config.seed)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    precision = resolve_precision(config.train.device, config.train.precision, config.train.channels_last)
    splits, stats = prepare_splits(config)
    loss_fn = build_loss(config.loss.name, splits.num_classes,
                         label_smoothing=config.loss.label_smoothing, margin=config.loss.margin)
    C, H, W = splits.train_images.shape[1:]
    model = create_model(config.model.name, config.model.options, finetune=config.finetune,
                         in_chans=C, num_outputs=loss_fn.num_outputs, input_size=(H, W))
    model = model.to(precision.device, memory_format=torch.channels_last if precision.channels_last else torch.preserve_format)
    optimizer = build_optimizer(config.optim.name, trainable_parameters(model), lr=config.optim.lr,
                                weight_decay=config.optim.weight_decay, momentum=config.optim.momentum,
                                nesterov=config.optim.nesterov, betas=config.optim.betas,
                                alpha=config.optim.alpha, eps=config.optim.eps)
    generator = make_generator(config.seed, precision.device)
    loaders = make_loaders(splits, stats, config, precision, generator)
    schedule = config.schedule
    scheduler = build_schedule(schedule.name, optimizer, epochs=config.train.epochs,
                               steps_per_epoch=len(loaders["train"]), warmup_epochs=schedule.warmup_epochs,
                               warmup_start=schedule.warmup_start, step_size=schedule.step_size,
                               gamma=schedule.gamma, min_lr=schedule.min_lr, pct_start=schedule.pct_start,
                               div_factor=schedule.div_factor)
    monitor = Monitor(config.train.monitor, config.train.early_stopping.patience,
                      config.train.early_stopping.min_delta)
    scaler = torch.amp.GradScaler("cuda") if precision.name == "fp16" else None

    run = RunDir.create(config.output_dir, config.name)
    write_run_record(run, config, splits, stats, model, precision)
    progress.log(f"run {run.path}")
    progress.log(f"data {config.data.name}: train {splits.train_labels.size} / val {splits.val_labels.size} / "
                 f"test {splits.test_labels.size} images of {C}x{H}x{W}, {splits.num_classes} classes")
    progress.log(f"model {config.model.name}: {count_parameters(model):,} parameters "
                 f"({count_parameters(model, trainable_only=True):,} trainable); {precision.name}"
                 f"{' channels_last' if precision.channels_last else ''} on {precision.device} "
                 f"({torch.get_num_threads()} threads)")

    state = {"status": "running", "first_loss": None, "epochs_run": 0}
    train_start = time.perf_counter()
    try:
        for epoch in range(1, config.train.epochs + 1):
            progress.start_epoch(epoch, config.train.epochs, len(loaders["train"]))
            lr = optimizer.param_groups[0]["lr"]
            train = train_one_epoch(model, loaders["train"], loss_fn, optimizer, scheduler, precision,
                                    num_classes=splits.num_classes, l1=config.optim.l1, scaler=scaler,
                                    on_batch=progress.advance)
            if epoch == 1:
                state["first_loss"] = train.first_loss
                progress.log(f"first batch loss {train.first_loss:.4f} "
                             f"(expected {loss_fn.initial:.4f} at an untrained start)")
            val = evaluate(model, loaders["val"], loss_fn, precision, num_classes=splits.num_classes)
            row = metric_row(epoch, lr, train, val)
            run.append_metrics(row)
            state["epochs_run"] = epoch
            progress.end_epoch(row, config.train.epochs)
            improved = monitor.update(row)
            save_weights(run.checkpoints / "last.safetensors", model, {"epoch": epoch})
            if improved:
                save_weights(run.checkpoints / "best.safetensors", model, {"epoch": epoch, monitor.key: row[monitor.key]})
            save_train_state(run.checkpoints / "last_state.pt", {
                "epoch": epoch, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": capture_rng_state(generator), "best": monitor.best, "best_epoch": monitor.best_epoch,
            })
            for callback in callbacks:
                callback(row)
            if not is_finite(train.loss):
                state["status"] = "diverged"
                progress.log(f"training diverged at epoch {epoch} (loss {train.loss}); stopping")
                break
            if monitor.should_stop:
                state["status"] = "early_stopped"
                progress.log(f"early stopping: {monitor.key} has not improved for {monitor.patience} epochs")
                break
        else:
            state["status"] = "completed"
    except BaseException as err:
        state["status"] = "interrupted" if isinstance(err, KeyboardInterrupt) else f"failed: {err}"
        run.write_summary(build_summary(config, run, state, monitor, splits, model, precision, loss_fn,
                                        train_wall=time.perf_counter() - train_start,
                                        wall=time.perf_counter() - wall_start, test=None))
        progress.close()
        raise
    train_wall = time.perf_counter() - train_start
    progress.close()

    test = None
    if config.train.eval_test and monitor.best_epoch:
        model.load_state_dict(load_weights(run.checkpoints / "best.safetensors"))
        result = evaluate(model, loaders["test"], loss_fn, precision, num_classes=splits.num_classes)
        test = {"loss": result.loss, "acc": result.top1, "top5": result.top5, "images": result.images,
                "checkpoint": f"best (epoch {monitor.best_epoch}, by {monitor.key})"}
        run.write_json("confusion.json", {"split": "test", "checkpoint": test["checkpoint"],
                                          "classes": list(splits.classes), "matrix": result.confusion.tolist()})
        progress.log(f"best {monitor.key} {monitor.best:.4f} at epoch {monitor.best_epoch}; "
                     f"test, evaluated once with that checkpoint: acc {result.top1:.2%} loss {result.loss:.4f}")
    summary = build_summary(config, run, state, monitor, splits, model, precision, loss_fn,
                            train_wall=train_wall, wall=time.perf_counter() - wall_start, test=test)
    run.write_summary(summary)
    from cnnlab.report import write_report

    report = write_report(run.path)
    progress.log(f"training took {train_wall:.1f}s; report: {report}")
    return summary


def write_run_record(run: RunDir, config: RunConfig, splits: Splits, stats: ChannelStats,
                     model: torch.nn.Module, precision: Precision) -> None:
    """What rebuilding the run needs, written before the first epoch."""
    run.write_config(dump_yaml(config))
    run.write_json("data.json", {
        "dataset": config.data.name, "options": config.data.options, "classes": list(splits.classes),
        "class_ids": config.data.classes, "image_shape": list(splits.train_images.shape[1:]),
        "sizes": {"train": int(splits.train_labels.size), "val": int(splits.val_labels.size),
                  "test": int(splits.test_labels.size)},
        "split_seed": config.data.split_seed, "val_indices": splits.val_indices.tolist(),
        "normalization": stats.to_dict(),
    })
    (run.path / "model.txt").write_text(repr(model) + "\n")


def build_summary(config: RunConfig, run: RunDir, state: dict, monitor: Monitor, splits: Splits,
                  model: torch.nn.Module, precision: Precision, loss_fn, *, train_wall: float, wall: float,
                  test: dict | None) -> dict:
    rows = run.metrics
    best = next((r for r in rows if r["epoch"] == monitor.best_epoch), None)
    epoch_times = [r["epoch_time"] for r in rows]
    return {
        "status": state["status"],
        "run_dir": str(run.path),
        "name": config.name,
        "seed": config.seed,
        "dataset": {"name": config.data.name, "classes": splits.num_classes,
                    "image_shape": list(splits.train_images.shape[1:]),
                    "train": int(splits.train_labels.size), "val": int(splits.val_labels.size),
                    "test": int(splits.test_labels.size)},
        "model": {"name": config.model.name, "parameters": count_parameters(model),
                  "trainable_parameters": count_parameters(model, trainable_only=True)},
        "epochs_run": state["epochs_run"],
        "monitor": monitor.key,
        "best": best,
        "final": rows[-1] if rows else None,
        "test": test,
        "first_batch_loss": state["first_loss"],
        "expected_initial_loss": loss_fn.initial,
        "time": {"train_wall_s": train_wall, "total_wall_s": wall,
                 "epoch_mean_s": sum(epoch_times) / len(epoch_times) if epoch_times else None,
                 "train_images_per_s": rows[-1]["images_per_s"] if rows else None},
        "device": {"type": precision.device.type, "precision": precision.name,
                   "channels_last": precision.channels_last, "threads": torch.get_num_threads()},
        "environment": describe_environment(precision.device),
        "config": config_to_dict(config),
    }
