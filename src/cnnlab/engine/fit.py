"""``fit(config) -> summary``: one training run, from recipe to finished run directory.

The order is the data flow of the whole package: data (split, train-only normalization) ->
model -> loss, optimizer, schedule -> epochs (train, validate, checkpoint, early stop) -> one
test evaluation with the best-on-validation checkpoint -> summary, plots and report. Nothing is
global: the per-epoch ``callbacks`` receive each metrics row (sweeps prune and log there), and
``resume`` continues a killed run exactly where its last checkpoint left it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from cnnlab.config import RunConfig, dump_yaml
from cnnlab.data.loader import DeviceLoader
from cnnlab.data.normalize import ChannelStats
from cnnlab.data.splits import Splits
from cnnlab.engine.checkpoint import load_train_state, save_train_state, save_weights
from cnnlab.engine.losses import Loss, build_loss
from cnnlab.engine.loop import evaluate, is_finite, train_one_epoch
from cnnlab.engine.model_setup import create_model, trainable_parameters
from cnnlab.engine.monitor import Monitor
from cnnlab.engine.optim import build_optimizer
from cnnlab.engine.precision import Precision, resolve_precision
from cnnlab.engine.progress import Progress
from cnnlab.data.prepare import prepare_splits
from cnnlab.engine.run_data import make_loaders
from cnnlab.engine.schedule import build_schedule
from cnnlab.engine.seed import capture_rng_state, make_generator, restore_rng_state, seed_everything
from cnnlab.engine.summary import build_summary, metric_row
from cnnlab.models import count_parameters, read_state_dict
from cnnlab.run import RunDir

EpochCallback = Callable[[dict[str, Any]], None]


@dataclass
class Session:
    """Everything a run trains with, built from its config before any file is written."""

    config: RunConfig
    precision: Precision
    splits: Splits
    stats: ChannelStats
    loss_fn: Loss
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    generator: torch.Generator
    loaders: dict[str, DeviceLoader]
    monitor: Monitor
    scaler: torch.amp.GradScaler | None
    first_loss: float | None = None  # loss of the very first batch, beside its expected value


def setup(config: RunConfig) -> Session:
    """Validate and build every piece; a bad name or option fails here, before a run folder exists."""
    seed_everything(config.seed)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    precision = resolve_precision(config.train.device, config.train.precision, config.train.channels_last)
    splits, stats = prepare_splits(config.data)
    loss_fn = build_loss(config.loss.name, splits.num_classes,
                         label_smoothing=config.loss.label_smoothing, margin=config.loss.margin)
    C, H, W = splits.train_images.shape[1:]
    model = create_model(config.model.name, config.model.options, finetune=config.finetune,
                         in_chans=C, num_outputs=loss_fn.num_outputs, input_size=(H, W))
    layout = torch.channels_last if precision.channels_last else torch.preserve_format
    model = model.to(precision.device, memory_format=layout)
    o = config.optim
    optimizer = build_optimizer(o.name, trainable_parameters(model), lr=o.lr, weight_decay=o.weight_decay,
                                momentum=o.momentum, nesterov=o.nesterov, betas=o.betas, alpha=o.alpha, eps=o.eps)
    generator = make_generator(config.seed, precision.device)
    loaders = make_loaders(splits, stats, config.data, precision, generator)
    s = config.schedule
    scheduler = build_schedule(s.name, optimizer, epochs=config.train.epochs, steps_per_epoch=len(loaders["train"]),
                               warmup_epochs=s.warmup_epochs, warmup_start=s.warmup_start, step_size=s.step_size,
                               gamma=s.gamma, min_lr=s.min_lr, pct_start=s.pct_start, div_factor=s.div_factor)
    stop = config.train.early_stopping
    monitor = Monitor(config.train.monitor, stop.patience, stop.min_delta)
    scaler = torch.amp.GradScaler("cuda") if precision.name == "fp16" else None
    return Session(config, precision, splits, stats, loss_fn, model, optimizer, scheduler, generator, loaders,
                   monitor, scaler)


def save_epoch(session: Session, run: RunDir, row: dict[str, Any], improved: bool) -> None:
    """Last and best weights, then the trainer state that makes the run resumable from here."""
    save_weights(run.checkpoints / "last.safetensors", session.model, {"epoch": row["epoch"]})
    if improved:
        key = session.monitor.key
        save_weights(run.checkpoints / "best.safetensors", session.model, {"epoch": row["epoch"], key: row[key]})
    save_train_state(run.checkpoints / "last_state.pt", {
        "epoch": row["epoch"], "optimizer": session.optimizer.state_dict(),
        "scheduler": session.scheduler.state_dict(), "rng": capture_rng_state(session.generator),
        "monitor": session.monitor.state_dict(), "first_loss": session.first_loss,
        "scaler": session.scaler.state_dict() if session.scaler else None,
    })


def restore_epoch(session: Session, run: RunDir) -> int:
    """Load the last checkpoint of ``run`` into ``session``; returns the epoch it ended."""
    state = load_train_state(run.checkpoints / "last_state.pt")
    session.model.load_state_dict(read_state_dict(run.checkpoints / "last.safetensors"))
    session.optimizer.load_state_dict(state["optimizer"])
    session.scheduler.load_state_dict(state["scheduler"])
    session.monitor.load_state_dict(state["monitor"])
    if session.scaler and state.get("scaler"):
        session.scaler.load_state_dict(state["scaler"])
    restore_rng_state(state["rng"], session.generator)
    session.first_loss = state["first_loss"]
    run.keep_metrics(state["epoch"])
    return state["epoch"]


def run_epochs(session: Session, run: RunDir, first_epoch: int, progress: Progress,
               callbacks: Sequence[EpochCallback], state: dict) -> None:
    """Train and validate epoch by epoch, checkpointing each; sets ``state['status']``."""
    epochs, monitor, K = session.config.train.epochs, session.monitor, session.splits.num_classes
    for epoch in range(first_epoch, epochs + 1):
        progress.start_epoch(epoch, epochs, len(session.loaders["train"]))
        lr = session.optimizer.param_groups[0]["lr"]
        train = train_one_epoch(session.model, session.loaders["train"], session.loss_fn, session.optimizer,
                                session.scheduler, session.precision, num_classes=K, l1=session.config.optim.l1,
                                scaler=session.scaler, on_batch=progress.advance)
        if epoch == 1:
            session.first_loss = train.first_loss
            progress.log(f"first batch loss {train.first_loss:.4f} "
                         f"(expected {session.loss_fn.initial:.4f} at an untrained start)")
        val = evaluate(session.model, session.loaders["val"], session.loss_fn, session.precision, num_classes=K)
        row = metric_row(epoch, lr, train, val)
        run.append_metrics(row)
        state["epochs_run"] = epoch
        progress.end_epoch(row, epochs)
        save_epoch(session, run, row, improved=monitor.update(row))
        for callback in callbacks:
            callback(row)
        if not is_finite(train.loss):
            state["status"] = "diverged"
            progress.log(f"training diverged at epoch {epoch} (train loss {train.loss}); stopping")
            return
        if monitor.should_stop:
            state["status"] = "early_stopped"
            progress.log(f"early stopping: {monitor.key} has not improved for {monitor.patience} epochs")
            return
    state["status"] = "completed"


def final_test(session: Session, run: RunDir, progress: Progress) -> dict | None:
    """Evaluate the test split once, with the best-on-validation weights."""
    monitor = session.monitor
    if not session.config.train.eval_test or not monitor.best_epoch:
        return None
    session.model.load_state_dict(read_state_dict(run.checkpoints / "best.safetensors"))
    result = evaluate(session.model, session.loaders["test"], session.loss_fn, session.precision,
                      num_classes=session.splits.num_classes)
    checkpoint = f"best (epoch {monitor.best_epoch}, by {monitor.key})"
    run.write_json("confusion.json", {"split": "test", "checkpoint": checkpoint,
                                      "classes": list(session.splits.classes), "matrix": result.confusion.tolist()})
    progress.log(f"best {monitor.key} {monitor.best:.4f} at epoch {monitor.best_epoch}; "
                 f"test, evaluated once with that checkpoint: acc {result.top1:.2%} loss {result.loss:.4f}")
    return {"loss": result.loss, "acc": result.top1, "top5": result.top5, "images": result.images,
            "checkpoint": checkpoint}


def fit(config: RunConfig, *, callbacks: Sequence[EpochCallback] = (), progress: Progress | None = None,
        resume: str | None = None) -> dict:
    """Train one run end to end (or resume the run folder ``resume``); returns the summary."""
    progress = progress or Progress()
    wall_start = time.perf_counter()
    session = setup(config)
    run = RunDir.open(resume) if resume else RunDir.create(config.output_dir, config.name)
    first_epoch = restore_epoch(session, run) + 1 if resume else 1
    if not resume:
        write_run_record(session, run)
    log_start(session, run, progress, first_epoch)
    state = {"status": "running", "epochs_run": first_epoch - 1}
    train_start = time.perf_counter()
    try:
        run_epochs(session, run, first_epoch, progress, callbacks, state)
    except BaseException as err:
        state["status"] = "interrupted" if isinstance(err, KeyboardInterrupt) else f"failed: {err}"
        run.write_summary(build_summary(session, run, state, train_wall=time.perf_counter() - train_start,
                                        wall=time.perf_counter() - wall_start, test=None))
        progress.close()
        raise
    train_wall = time.perf_counter() - train_start
    progress.close()
    test = final_test(session, run, progress)
    summary = build_summary(session, run, state, train_wall=train_wall, wall=time.perf_counter() - wall_start,
                            test=test)
    run.write_summary(summary)
    from cnnlab.report import write_report

    report = write_report(run.path)
    progress.log(f"training took {train_wall:.1f}s; report: {report}")
    return summary


def write_run_record(session: Session, run: RunDir) -> None:
    """What rebuilding the run needs, written before the first epoch."""
    config, splits = session.config, session.splits
    run.write_config(dump_yaml(config))
    run.write_json("data.json", {
        "dataset": config.data.name, "options": config.data.options, "classes": list(splits.classes),
        "class_ids": config.data.classes, "image_shape": list(splits.train_images.shape[1:]),
        "sizes": {"train": int(splits.train_labels.size), "val": int(splits.val_labels.size),
                  "test": int(splits.test_labels.size)},
        "split_seed": config.data.split_seed, "val_indices": splits.val_indices.tolist(),
        "normalization": session.stats.to_dict(), "num_outputs": session.loss_fn.num_outputs,
    })
    run.write_text("model.txt", repr(session.model) + "\n")


def log_start(session: Session, run: RunDir, progress: Progress, first_epoch: int) -> None:
    splits, model, precision = session.splits, session.model, session.precision
    C, H, W = splits.train_images.shape[1:]
    progress.log(f"run {run.path}" + (f" (resuming at epoch {first_epoch})" if first_epoch > 1 else ""))
    progress.log(f"data {session.config.data.name}: train {splits.train_labels.size} / val {splits.val_labels.size}"
                 f" / test {splits.test_labels.size} images of {C}x{H}x{W}, {splits.num_classes} classes")
    progress.log(f"model {session.config.model.name}: {count_parameters(model):,} parameters "
                 f"({count_parameters(model, trainable_only=True):,} trainable); {precision.name}"
                 f"{' channels_last' if precision.channels_last else ''} on {precision.device} "
                 f"({torch.get_num_threads()} threads)")


__all__ = ["fit", "setup", "Session"]
