"""``cnnlab scratch train``: train a scratch model on a real dataset and write a run directory
with the same files as the torch runs (config.yaml, data.json, metrics.jsonl, summary.json,
confusion.json, checkpoints/, curves.png, confusion.png, report.html).

Data as in the torch engine: the validation split is held out of the official training part
(stratified, seeded), per-channel mean and std are fit on the training split alone, and the
test set is evaluated once, at the end, with the best-on-validation parameters.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import yaml

from cnnlab.data.datasets import load_dataset
from cnnlab.data.normalize import fit_channel_stats
from cnnlab.data.splits import make_splits
from cnnlab.errors import CnnlabError, unknown_name
from cnnlab.run import Confusion, DataRecord, Divergence, MetricsRow, RunDir, Summary, TestResult
from cnnlab.run.environment import describe_environment
from cnnlab.run.record import Status
from cnnlab.scratch.base import ScratchModel, resolve_dtype
from cnnlab.scratch.cnn import ThreeLayerConvNet
from cnnlab.scratch.config import MODELS, ScratchTrainConfig
from cnnlab.scratch.fc_net import FullyConnectedNet
from cnnlab.scratch.optim import hyperparameters
from cnnlab.scratch.solver import Solver, evaluate
from cnnlab.scratch.threads import blas_threads

def validate(config: ScratchTrainConfig) -> None:
    """Refuse bad settings before any data is read."""
    if config.model not in MODELS:
        raise unknown_name("scratch model", config.model, MODELS)
    if config.model == "cnn" and len(config.hidden) != 1:
        raise CnnlabError(f"--model cnn takes one --hidden width (its hidden affine), got {list(config.hidden)}")
    if config.epochs < 1 or config.batch_size < 1:
        raise CnnlabError(f"need --epochs >= 1 and --batch-size >= 1, got {config.epochs} and {config.batch_size}")
    if config.threads < 0:
        raise CnnlabError(f"--threads must be 0 (NumPy's default) or more, got {config.threads}")
    resolve_dtype(config.dtype)
    hyperparameters(config.update, {"lr": config.lr})  # an unknown rule fails here, before any work


@dataclass(frozen=True)
class PreparedData:
    """Standardized float images (N, C, H, W) and int64 labels for each split."""

    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    classes: tuple[str, ...]
    val_indices: np.ndarray
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str | None  # the folder or file the dataset was read from


def standardize(images: np.ndarray, mean, std, dtype) -> np.ndarray:
    """uint8 (N, C, H, W) -> (x / 255 - mean[c]) / std[c] in ``dtype``."""
    mean = np.asarray(mean, dtype)[None, :, None, None]
    std = np.asarray(std, dtype)[None, :, None, None]
    return (images.astype(dtype) / dtype(255) - mean) / std


def prepare_data(dataset: str, *, val_size: float, seed: int, train_limit: int | None, dtype) -> PreparedData:
    """Load, split (val from train, seeded), fit channel statistics on train, standardize."""
    splits = make_splits(load_dataset(dataset), val_size=val_size, seed=seed, train_limit=train_limit)
    stats = fit_channel_stats(splits.train_images)
    prep = lambda images: standardize(images, stats.mean, stats.std, dtype)  # noqa: E731
    return PreparedData((prep(splits.train_images), splits.train_labels), (prep(splits.val_images), splits.val_labels),
                        (prep(splits.test_images), splits.test_labels), splits.classes, splits.val_indices,
                        stats.mean, stats.std, splits.source)


def build_model(config: ScratchTrainConfig, image_shape: tuple[int, int, int], num_classes: int) -> ScratchModel:
    common = dict(num_classes=num_classes, normalization=config.norm, dropout=config.dropout, reg=config.reg,
                  weight_scale=config.weight_scale, dtype=resolve_dtype(config.dtype), seed=config.seed)
    if config.model == "fc":
        return FullyConnectedNet(config.hidden, input_dim=int(np.prod(image_shape)), **common)
    return ThreeLayerConvNet(image_shape, num_filters=config.filters, filter_size=config.filter_size,
                             hidden_dim=config.hidden[0], **common)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) counts: row = true class, column = predicted class."""
    return np.bincount(labels * num_classes + predictions, minlength=num_classes**2).reshape(num_classes, num_classes)


def train_scratch(config: ScratchTrainConfig, log: Callable[[str], None] = print) -> Summary:
    """Train one run end to end; returns its summary (also written to summary.json)."""
    validate(config)
    wall_start = time.perf_counter()
    dtype = resolve_dtype(config.dtype)
    data = prepare_data(config.dataset, val_size=config.val_size, seed=config.seed,
                        train_limit=config.train_limit, dtype=dtype)
    image_shape = data.train[0].shape[1:]
    model = build_model(config, image_shape, len(data.classes))
    run = start_run(config, data, model)
    solver = Solver(model, data.train, data.val, update_rule=config.update, optim_config={"lr": config.lr},
                    lr_decay=config.lr_decay, batch_size=config.batch_size, num_epochs=config.epochs,
                    seed=config.seed)
    log(f"run {run.path}")
    log(f"data {config.dataset}: train {len(data.train[1])} / val {len(data.val[1])} / test {len(data.test[1])} "
        f"images of {'x'.join(map(str, image_shape))}; model {type(model).__name__}, {model.num_parameters:,} "
        f"parameters, {config.dtype}")
    rows: list[MetricsRow] = []

    def on_epoch_end(values: dict[str, Any]) -> None:
        """Metrics row first, then the checkpoint commit (as the torch engine does)."""
        row = MetricsRow(**values)
        rows.append(row)
        run.write_metrics(rows)
        run.checkpoints.commit(row.epoch, model.state_dict(), solver.trainer_state(),
                               {"best_epoch": solver.best_epoch, "monitor": "val_acc", "best": solver.best_val_acc},
                               keep={solver.best_epoch})
        log(f"epoch {row.epoch:>3}/{config.epochs}  loss {row.train_loss:.4f}  train acc {row.train_acc:.4f}  "
            f"val loss {row.val_loss:.4f}  val acc {row.val_acc:.4f}  {row.epoch_time:.1f}s "
            f"({row.images_per_s:.0f} img/s)")

    def summary(status: Status, test: dict[str, Any] | None = None, **outcome) -> Summary:
        result = build_summary(config, run, solver, model, data, rows, test, status=status,
                               wall=time.perf_counter() - wall_start, **outcome)
        run.write_summary(result)
        return result

    with blas_threads(config.threads):
        try:
            solver.train(on_epoch_end)  # ends with the best-on-validation parameters loaded
        except BaseException as err:  # a killed run still says what happened, as the torch runs do
            interrupted = isinstance(err, KeyboardInterrupt)
            summary("interrupted" if interrupted else "failed", failure=None if interrupted else str(err))
            raise
        if solver.divergence is not None:
            d = Divergence(**solver.divergence, what="train loss")
            log(f"training diverged at epoch {d.epoch}, step {d.step} (lr {d.lr:.3g}); the test set was not evaluated")
            return summary("diverged", divergence=d)
        test = evaluate(model, *data.test)
    confusion = confusion_matrix(data.test[1], test["predictions"], len(data.classes))
    checkpoint = f"best (epoch {solver.best_epoch}, by val_acc)"
    run.write_confusion(Confusion(split="test", classes=list(data.classes), matrix=confusion.tolist(),
                                  checkpoint=checkpoint))
    result = summary("completed", test)
    log(f"best val acc {solver.best_val_acc:.4f} at epoch {solver.best_epoch}; test, evaluated once with those "
        f"parameters: acc {test['acc']:.4f} loss {test['loss']:.4f}; training took {result.time['train_wall_s']:.1f}s")
    return result


# --- the run directory: the same record as the torch runs -----------------------------------------


def start_run(config: ScratchTrainConfig, data: PreparedData, model: ScratchModel) -> RunDir:
    """Create the run folder and write what rebuilding the run needs: data.json, model.txt, config.yaml."""
    run = RunDir.create(config.output_dir, config.name or f"scratch-{config.model}")
    shapes = "\n".join(f"  {name}: {tuple(p.shape)}" for name, p in model.params.items())
    record = DataRecord(
        dataset=config.dataset, source=data.source, options={}, classes=list(data.classes), class_ids=None,
        image_shape=list(data.train[0].shape[1:]),
        sizes={"train": len(data.train[1]), "val": len(data.val[1]), "test": len(data.test[1])},
        split_seed=config.seed, val_indices=data.val_indices.tolist(),
        normalization={"mean": list(data.mean), "std": list(data.std)})
    run.write_record(record, yaml.safe_dump(config_dict(config), sort_keys=False),
                     f"{type(model).__name__} (cnnlab.scratch, NumPy)\n{shapes}\n")
    return run


def config_dict(config: ScratchTrainConfig) -> dict[str, Any]:
    values = dataclasses.asdict(config)
    values["hidden"] = list(config.hidden)
    return {"kind": "scratch", **values}


def build_summary(config: ScratchTrainConfig, run: RunDir, solver: Solver, model: ScratchModel, data: PreparedData,
                  rows: list[MetricsRow], test: dict[str, Any] | None, *, status: Status, wall: float,
                  divergence: Divergence | None = None, failure: str | None = None) -> Summary:
    """The torch engine's summary, filled in for a NumPy run."""
    best = next((r for r in rows if r.epoch == solver.best_epoch), None)
    test_record = None if test is None else TestResult(
        test["loss"], test["acc"], test["top5"], len(data.test[1]), f"best (epoch {solver.best_epoch}, by val_acc)")
    return Summary(
        status=status,
        run_dir=str(run.path),
        name=run.path.name,
        seed=config.seed,
        dataset={"name": config.dataset, "classes": len(data.classes), "image_shape": list(data.train[0].shape[1:]),
                 "train": len(data.train[1]), "val": len(data.val[1]), "test": len(data.test[1])},
        model={"name": f"scratch_{config.model}", "parameters": model.num_parameters,
               "trainable_parameters": model.num_parameters},
        epochs_run=len(rows),
        monitor="val_acc",
        best=best,
        final=rows[-1] if rows else None,
        test=test_record,
        first_batch_loss=solver.loss_history[0] if solver.loss_history else None,
        expected_initial_loss=float(np.log(len(data.classes))),
        time={"train_wall_s": sum(r.epoch_time + r.val_time for r in rows), "total_wall_s": wall,
              "epoch_mean_s": float(np.mean([r.epoch_time for r in rows])) if rows else None,
              "train_images_per_s": rows[-1].images_per_s if rows else None},
        device={"type": "cpu", "precision": config.dtype, "channels_last": False, "threads": config.threads},
        environment=describe_environment(torch.device("cpu")),
        divergence=divergence,
        failure=failure,
    )
