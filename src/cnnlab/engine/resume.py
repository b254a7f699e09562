"""What a checkpoint must hold for an exact resume, and resuming a run folder.

Resuming rebuilds the session from the run's own config.yaml (seeded exactly as the first
start was), then loads the newest committed checkpoint: weights, optimizer, schedule, every
RNG state and the monitor, all from one file and so all of one epoch. Metrics rows after that
epoch (written before a kill could commit their checkpoint) are dropped and trained again.
"""

from __future__ import annotations

from typing import Any

from cnnlab.data.normalize import upgraded_record
from cnnlab.engine.budget import Plan
from cnnlab.engine.distributed import gather
from cnnlab.engine.schedule import retarget
from cnnlab.engine.seed import capture_rng_state, restore_rng_state
from cnnlab.engine.session import Session
from cnnlab.errors import CnnlabError
from cnnlab.run import DataRecord, MetricsRow, RunDir
from cnnlab.run.normalization import stored_normalization
from cnnlab.run.record import FINAL_STATUSES


def data_record(session: Session, normalization: dict[str, Any]) -> DataRecord:
    """The data.json of a run: enough to rebuild its split; ``normalization`` is the entry
    ``cnnlab.run.normalization.stored_normalization`` gives for the session's."""
    config, splits = session.config, session.splits
    return DataRecord(
        dataset=config.data.name, source=splits.source, options=config.data.options,
        classes=list(splits.classes), class_ids=config.data.classes,
        image_shape=list(splits.train_images.shape[1:]),
        sizes={"train": int(splits.train_labels.size), "val": int(splits.val_labels.size),
               "test": int(splits.test_labels.size)},
        split_seed=config.data.split_seed, val_indices=splits.val_indices.tolist(),
        normalization=normalization, num_outputs=session.loss_fn.num_outputs,
        notes=splits.notes)


def trainer_state(session: Session) -> dict[str, Any]:
    """Everything besides the weights that the next epoch depends on."""
    return {
        "optimizer": session.optimizer.state_dict(),
        "scheduler": session.scheduler.state_dict(),
        "rng": capture_rng_state(session.generator),
        # under torchrun: every rank's states, in rank order (a collective: every rank calls this)
        "world_size": session.world.size,
        "rng_ranks": gather(capture_rng_state(session.generator), session.world) if session.world.active else None,
        "monitor": session.monitor.state_dict(),
        "first_loss": session.first_loss,
        "last_finite_loss": session.check.last_finite,
        "scaler": session.scaler.state_dict() if session.scaler else None,
        "plan": session.plan.to_dict() if session.plan else None,
        # with a weight average the checkpoint's weights are the average; the trained ones go here
        "ema": session.ema.state_dict() if session.ema else None,
        "train_weights": session.model.state_dict() if session.ema else None,
    }


def load_trainer_state(session: Session, weights: dict, state: dict[str, Any]) -> None:
    if session.ema and state.get("ema"):
        session.model.load_state_dict(state["train_weights"])
        session.ema.load_state_dict(weights, state["ema"])
    else:
        session.model.load_state_dict(weights)
    session.optimizer.load_state_dict(state["optimizer"])
    session.scheduler.load_state_dict(state["scheduler"])
    session.monitor.load_state_dict(state["monitor"])
    if session.scaler and state.get("scaler"):
        session.scaler.load_state_dict(state["scaler"])
    size, world = state.get("world_size", 1), session.world
    if size != world.size:
        raise CnnlabError(f"the run was trained by {size} process(es) and is resumed by {world.size}: resume it "
                          f"with the same count (torchrun --nproc-per-node={size}, or plain cnnlab train for 1)")
    restore_rng_state(state["rng_ranks"][world.rank] if world.active else state["rng"], session.generator)
    session.first_loss = state["first_loss"]
    session.check.last_finite = state["last_finite_loss"]
    if state.get("plan"):  # the time budget's plan as it stood: the run finishes that plan
        session.plan = Plan.from_dict(state["plan"])
        retarget(session.scheduler, session.schedule(session.plan.total_steps))


def check_resumable(path: str) -> RunDir:
    """The run folder ``path``, if it can be resumed; a run that completed, stopped early or
    diverged is refused in one line (before anything is built)."""
    run = RunDir.open(path)
    previous = run.summary()
    if previous is None or previous.status not in FINAL_STATUSES:
        return run
    if previous.status == "diverged":
        raise CnnlabError(f"run {run.path} diverged in epoch {previous.divergence.epoch}; resuming would repeat "
                          "it, so there is nothing to resume (start a new run with a lower optim.lr)")
    raise CnnlabError(f"run {run.path} has {previous.status.replace('_', ' ')} after {previous.epochs_run} epochs; "
                      "there is nothing to resume (start a new run to train more)")


def resume_run(session: Session, path: str) -> tuple[RunDir, list[MetricsRow]]:
    """Open the killed run ``path``, load its newest checkpoint into ``session``; returns the run
    and the metrics rows up to that checkpoint. Finished and diverged runs are refused."""
    run = check_resumable(path)
    rows, epoch = run.metrics(), run.checkpoints.latest()
    if epoch is None and (run.checkpoints.folder / "last_state.pt").is_file():
        raise CnnlabError(f"run {run.path} was written by an older cnnlab (last_state.pt); it can be "
                          "reported and evaluated, not resumed")
    recorded, rebuilt = run.data_record(), data_record(session, stored_normalization(session.stats).record)
    if (recorded.val_indices, upgraded_record(recorded.normalization), recorded.image_shape) != \
            (rebuilt.val_indices, rebuilt.normalization, rebuilt.image_shape):
        raise CnnlabError(f"the {recorded.dataset} data differs from what run {run.path} started with "
                          f"(source: {recorded.source or 'unrecorded'}); it cannot be resumed exactly")
    if session.world.is_main:
        run.clean()
    if epoch is None:
        rows = []  # killed before its first checkpoint: the fresh session is where it started
    else:
        checkpoint = run.checkpoints.load(epoch)
        if [r.epoch for r in rows[:epoch]] != list(range(1, epoch + 1)):
            raise CnnlabError(f"{run.path / 'metrics.jsonl'} lacks rows of epochs 1..{epoch}, "
                              f"which checkpoint {epoch} has; the run folder was changed by hand")
        load_trainer_state(session, checkpoint.weights, checkpoint.state)
        rows = rows[:epoch]
        if session.world.is_main:
            run.checkpoints.prune({epoch, session.monitor.best_epoch})
    if session.world.is_main:
        run.write_metrics(rows)
    return run, rows
