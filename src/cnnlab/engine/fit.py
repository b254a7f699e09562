"""``fit(config) -> Summary``: one training run, from recipe to finished run directory.

The order is the data flow of the whole package: data (split, train-only normalization) ->
model -> loss, optimizer, schedule -> epochs (train, validate, commit a checkpoint, early
stop) -> one test evaluation with the best-on-validation checkpoint -> summary. Nothing is
global: the per-epoch ``callbacks`` receive each ``MetricsRow`` (sweeps prune and log there),
and ``resume`` continues a killed run exactly where its last committed checkpoint left it. The
trackers of ``log`` (TensorBoard, MLflow; ``engine.trackers``) get the config, each committed
row and the summary, on rank 0 only.

A non-finite loss stops training before anything of that epoch is saved: the last finite
checkpoint stays, the run is marked ``diverged`` with where it happened, and the test set is
not evaluated.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence

import torch

from cnnlab.config import RunConfig, config_to_dict, dump_yaml
from cnnlab.engine.distributed import barrier, broadcast, stop, sum_over_ranks, world_from_env
from cnnlab.engine.loop import EpochResult, NonFiniteLoss, evaluate, train_one_epoch
from cnnlab.engine.progress import Progress
from cnnlab.engine.resume import check_resumable, data_record, resume_run, trainer_state
from cnnlab.engine.schedule import retarget
from cnnlab.engine.session import Session, all_finite, setup
from cnnlab.engine.summary import build_summary, metric_row, train_wall_seconds
from cnnlab.engine.trackers import Trackers, connect, flat_params, record_files
from cnnlab.models import count_parameters
from cnnlab.run import Confusion, Divergence, MetricsRow, RunDir, Summary, TestResult
from cnnlab.run.normalization import stored_normalization
from cnnlab.run.record import Status

EpochCallback = Callable[[MetricsRow], None]


def train_epoch(session: Session, epoch: int, progress: Progress) -> MetricsRow | Divergence:
    """Train and validate one epoch; a Divergence instead of a row when something went non-finite."""
    start, K = time.perf_counter(), session.splits.num_classes
    steps = session.plan.steps_in(epoch) if session.plan else len(session.loaders["train"])
    progress.start_epoch(epoch, session.epochs, steps)
    lr = session.optimizer.param_groups[0]["lr"]
    try:
        train = train_one_epoch(session.runner, session.loaders["train"], session.loss_fn, session.optimizer,
                                session.scheduler, session.precision, num_classes=K, l1=session.config.optim.l1,
                                scaler=session.scaler, on_batch=progress.advance, check=session.check,
                                max_steps=steps, ema=session.ema)
    except NonFiniteLoss as bad:
        return Divergence(epoch, bad.step, bad.lr, bad.last_finite_loss, "train loss")
    train = over_ranks(train, session)
    if epoch == 1:
        session.first_loss = train.first_loss
        progress.log(f"first batch loss {train.first_loss:.4f} "
                     f"(expected {session.loss_fn.initial:.4f} at an untrained start)")
    result = None
    if session.world.is_main:  # under torchrun rank 0 validates, and every rank follows its row
        val = evaluate(session.evaluated, session.loaders["val"], session.loss_fn, session.precision,
                       num_classes=K, tta=session.config.train.tta)
        if not math.isfinite(val.loss) or not all_finite(session.model):
            what = "val loss" if not math.isfinite(val.loss) else "weights"
            result = Divergence(epoch, None, lr, session.check.last_finite, what)
        else:
            result = metric_row(epoch, lr, train, val, wall_time=time.perf_counter() - start)
    return broadcast(result, session.world)


def over_ranks(train: EpochResult, session: Session) -> EpochResult:
    """Under torchrun, the training metrics of every rank's shard together (rank 0's times)."""
    if not session.world.active:
        return train
    top5 = train.top5 if train.top5 is not None else 0.0
    loss, top1, top5, images = sum_over_ranks([train.loss * train.images, train.top1 * train.images,
                                               top5 * train.images, float(train.images)],
                                              session.world, session.precision.device)
    return dataclasses.replace(train, loss=loss / images, top1=top1 / images,
                               top5=top5 / images if train.top5 is not None else None, images=int(images))


def keep_to_budget(session: Session, rows: list[MetricsRow], elapsed_s: float, progress: Progress) -> None:
    """After an epoch of a time-budgeted run (``rows`` so far, the last one just trained): after
    epoch 1 plan the steps again from what it took; after a later one, only when the plan would
    overrun the budget. The schedule is laid over the new count before the checkpoint, which then
    holds the new plan."""
    plan, epoch = session.plan, len(rows)
    before = plan.total_steps
    train_s, wall_s = sum(r.epoch_time for r in rows), train_wall_seconds(rows)
    if epoch == 1 and not plan.replanned:
        plan.replan(elapsed_s=elapsed_s, train_s=train_s, wall_s=wall_s, steps_done=plan.steps_in(1))
        session.plan = plan = broadcast(plan, session.world)  # rank 0's clock decides for every rank
        why = f"epoch 1 took {elapsed_s:.1f}s"
    elif epoch > 1 and epoch < plan.epochs and plan.overruns(elapsed_s=wall_s, train_s=train_s, wall_s=wall_s,
                                                              epochs_done=epoch):
        # From the rows, which every rank has from rank 0: the ranks decide alike without a message.
        plan.replan(elapsed_s=wall_s, train_s=train_s, wall_s=wall_s, steps_done=plan.steps_through(epoch),
                    epochs_done=epoch)
        why = f"epochs 1-{epoch} took {wall_s:.1f}s, more than planned"
    else:
        return
    retarget(session.scheduler, session.schedule(plan.total_steps))
    progress.log(f"time budget {plan.budget_s:g}s: {why}; planned {plan.total_steps} steps "
                 f"({plan.total_steps / plan.steps_per_epoch:.2f} epochs; {before} before)")


def run_epochs(session: Session, run: RunDir, rows: list[MetricsRow], progress: Progress,
               callbacks: Sequence[EpochCallback]) -> tuple[Status, Divergence | None]:
    """Epochs after ``rows`` until the last, early stopping or divergence; each commits a checkpoint.

    The row goes to metrics.jsonl before the checkpoint commits, so after a kill the newest
    checkpoint names the epoch to resume from and any later row is dropped.
    """
    monitor, start = session.monitor, time.perf_counter()
    epoch = len(rows) + 1
    while epoch <= session.epochs:  # a time budget may re-plan the count after an epoch
        if monitor.should_stop:  # a run resumed after the epoch that stopped it
            break
        result = train_epoch(session, epoch, progress)
        if isinstance(result, Divergence):
            progress.end_epoch(None, session.epochs)
            return "diverged", result
        improved = monitor.update(result)
        rows.append(result)
        if session.plan:
            keep_to_budget(session, rows, time.perf_counter() - start, progress)
        state = trainer_state(session)  # under torchrun this gathers every rank's RNG states
        if session.world.is_main:
            run.write_metrics(rows)
            run.checkpoints.commit(epoch, session.evaluated.state_dict(), state,
                                   {"best_epoch": monitor.best_epoch, "monitor": monitor.key, "best": monitor.best},
                                   keep={monitor.best_epoch})
        progress.end_epoch(result, session.epochs, improved=improved)
        for callback in callbacks:
            callback(result)
        epoch += 1
    if monitor.should_stop:
        progress.log(f"early stopping: {monitor.key} has not improved for {monitor.patience} epochs")
        return "early_stopped", None
    return "completed", None


def final_test(session: Session, run: RunDir, progress: Progress) -> TestResult | None:
    """Evaluate the test split once, with the best-on-validation weights."""
    monitor = session.monitor
    if not session.config.train.eval_test or not monitor.best_epoch or not session.world.is_main:
        return None
    session.evaluated.load_state_dict(run.checkpoints.weights(monitor.best_epoch))
    result = evaluate(session.evaluated, session.loaders["test"], session.loss_fn, session.precision,
                      num_classes=session.splits.num_classes, tta=session.config.train.tta)
    checkpoint = f"best (epoch {monitor.best_epoch}, by {monitor.key})"
    run.write_confusion(Confusion(split="test", classes=list(session.splits.classes),
                                  matrix=result.confusion.tolist(), checkpoint=checkpoint))
    progress.log(f"best {monitor.key} {monitor.best:.4f} at epoch {monitor.best_epoch}; "
                 f"test, evaluated once with that checkpoint: acc {result.top1:.2%} loss {result.loss:.4f}")
    return TestResult(result.loss, result.top1, result.top5, result.images, checkpoint)


def fit(config: RunConfig, *, callbacks: Sequence[EpochCallback] = (), progress: Progress | None = None,
        resume: str | None = None) -> Summary:
    """Train one run end to end (or resume the run folder ``resume``); returns its summary."""
    progress = progress or Progress()
    wall_start = time.perf_counter()
    recorded = check_resumable(resume).settings() if resume else None  # a finished run is refused at once
    # The trackers (log.*) are checked before anything is built: a missing package or a store that does not
    # open is one line, and no run folder is made. Only rank 0 logs.
    trackers = connect(config.log, output_dir=config.output_dir, name=config.name, resume=resume,
                       warn=progress.log) if world_from_env().is_main else Trackers()
    session = setup(config, recorded_settings=recorded)
    world = session.world
    if resume:
        run, rows = resume_run(session, resume)
    else:
        run, rows = None, []
        if world.is_main:  # under torchrun rank 0 alone writes the run directory
            run = RunDir.create(config.output_dir, config.name)
            stored = stored_normalization(session.stats)  # data.json's entry; pixel and zca: their arrays file
            run.write_record(data_record(session, stored.record), dump_yaml(config), repr(session.model) + "\n",
                             settings=session.choice.to_dict(), files=stored.files)
        run = RunDir(broadcast(str(run.path) if run else None, world))
    log_start(session, run, progress, len(rows) + 1)
    trackers.start(run.path, flat_params(config_to_dict(config)), rows)

    def summary(status: Status, **outcome) -> Summary:
        result = build_summary(session, str(run.path), rows, status=status,
                               wall=time.perf_counter() - wall_start, **outcome)
        if world.is_main:
            run.write_summary(result)
            trackers.finish(result, record_files(run.path))
        return result

    try:  # the trackers end however the run does; one that summary() did not finish ends as failed
        try:
            # the trackers first: an epoch is logged once committed, before a callback may stop the run
            status, divergence = run_epochs(session, run, rows, progress, [trackers.epoch, *callbacks])
        except BaseException as err:
            progress.close()
            interrupted = isinstance(err, KeyboardInterrupt)
            try:
                summary("interrupted" if interrupted else "failed", failure=None if interrupted else str(err))
            except OSError:  # a full disk may refuse the summary too: the error to report is the first
                pass
            raise
        progress.close()
        if divergence is not None:
            log_divergence(divergence, run, progress)
            return summary("diverged", divergence=divergence)
        result = summary(status, test=final_test(session, run, progress))
        progress.log(f"training took {result.time['train_wall_s']:.1f}s")
        barrier(world)  # every rank ends once rank 0 has written the last file
        stop(world)
        return result
    finally:
        trackers.close()


def log_start(session: Session, run: RunDir, progress: Progress, first_epoch: int) -> None:
    splits, model, precision = session.splits, session.model, session.precision
    C, H, W = splits.train_images.shape[1:]
    progress.log(f"run {run.path}" + (f" (resuming at epoch {first_epoch})" if first_epoch > 1 else ""))
    progress.log(f"data {session.config.data.name}: train {splits.train_labels.size} / val {splits.val_labels.size}"
                 f" / test {splits.test_labels.size} images of {C}x{H}x{W}, {splits.num_classes} classes")
    progress.log(f"model {session.config.model.name}: {count_parameters(model):,} parameters "
                 f"({count_parameters(model, trainable_only=True):,} trainable) on {precision.device} "
                 f"({torch.get_num_threads()} threads)")
    progress.log(f"settings {session.choice.describe()}")
    if session.world.active:
        train = session.loaders["train"]
        progress.log(f"data-parallel: {session.world.size} processes ({torch.distributed.get_backend()}), each "
                     f"training {train.num_images} images in batches of {train.batch_size}")
    if session.plan:
        plan = session.plan
        progress.log(f"time budget {plan.budget_s:g}s: {plan.total_steps} steps planned "
                     f"({plan.total_steps / plan.steps_per_epoch:.2f} epochs of {plan.steps_per_epoch} steps)")


def log_divergence(d: Divergence, run: RunDir, progress: Progress) -> None:
    at = f"epoch {d.epoch}" + (f", step {d.step}" if d.step else "")
    last = f"; last finite loss {d.last_finite_loss:.4g}" if d.last_finite_loss is not None else ""
    kept = run.checkpoints.latest()
    progress.log(f"training diverged at {at} (lr {d.lr:.3g}): the {d.what} is not finite{last}; "
                 + (f"kept the checkpoint of epoch {kept}" if kept else "no checkpoint was saved")
                 + "; the test set was not evaluated")


__all__ = ["fit", "setup", "Session"]
