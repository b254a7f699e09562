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

from cnnlab.errors import CnnlabError, unknown_name
from cnnlab.scratch.base import ScratchModel, resolve_dtype
from cnnlab.scratch.cnn import ThreeLayerConvNet
from cnnlab.scratch.fc_net import FullyConnectedNet
from cnnlab.scratch.optim import hyperparameters
from cnnlab.scratch.solver import Solver, evaluate
from cnnlab.scratch.threads import blas_threads

MODELS = ("fc", "cnn")


@dataclass
class ScratchTrainConfig:
    model: str = "fc"  # fc: FullyConnectedNet, cnn: ThreeLayerConvNet
    dataset: str = "fashion_mnist"
    hidden: tuple[int, ...] = (256, 128)  # fc: hidden widths; cnn: one number, the hidden affine's width
    norm: str | None = None  # None, batchnorm or layernorm (cnn: None or batchnorm, spatial)
    dropout: float = 0.0  # probability of dropping a hidden unit, torch's p
    filters: int = 32  # cnn: number of conv filters
    filter_size: int = 5  # cnn: odd; the conv pads to keep the size
    update: str = "adam"
    lr: float = 1e-3
    lr_decay: float = 1.0  # lr multiplier after each epoch
    epochs: int = 10
    batch_size: int = 128
    reg: float = 0.0  # L2 strength, 0.5 * reg * sum W^2
    weight_scale: float | str = "he"  # std of the initial weights, or 'he': sqrt(2 / fan_in)
    val_size: float = 5000  # held out of the training part: a count, or a fraction below 1
    train_limit: int | None = None  # use only this many training images (quick runs, tests)
    seed: int = 0  # split, initial weights, dropout masks and shuffling
    dtype: str = "float32"
    threads: int = 1  # BLAS threads; 0 leaves NumPy's default (threads.py says why 1)
    output_dir: str = "runs"
    name: str | None = None  # run folder prefix; default scratch-<model>

    def validate(self) -> None:
        if self.model not in MODELS:
            raise unknown_name("scratch model", self.model, MODELS)
        if self.model == "cnn" and len(self.hidden) != 1:
            raise CnnlabError(f"--model cnn takes one --hidden width (its hidden affine), got {list(self.hidden)}")
        if self.epochs < 1 or self.batch_size < 1:
            raise CnnlabError(f"need --epochs >= 1 and --batch-size >= 1, got {self.epochs} and {self.batch_size}")
        if self.threads < 0:
            raise CnnlabError(f"--threads must be 0 (NumPy's default) or more, got {self.threads}")
        resolve_dtype(self.dtype)
        hyperparameters(self.update, {"lr": self.lr})  # an unknown rule fails here, before any work


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


def standardize(images: np.ndarray, mean, std, dtype) -> np.ndarray:
    """uint8 (N, C, H, W) -> (x / 255 - mean[c]) / std[c] in ``dtype``."""
    mean = np.asarray(mean, dtype)[None, :, None, None]
    std = np.asarray(std, dtype)[None, :, None, None]
    return (images.astype(dtype) / dtype(255) - mean) / std


def prepare_data(dataset: str, *, val_size: float, seed: int, train_limit: int | None, dtype) -> PreparedData:
    """Load, split (val from train, seeded), fit channel statistics on train, standardize."""
    from cnnlab.data import load_dataset
    from cnnlab.data.normalize import fit_channel_stats
    from cnnlab.data.splits import make_splits

    splits = make_splits(load_dataset(dataset), val_size=val_size, seed=seed, train_limit=train_limit)
    stats = fit_channel_stats(splits.train_images)
    prep = lambda images: standardize(images, stats.mean, stats.std, dtype)  # noqa: E731
    return PreparedData((prep(splits.train_images), splits.train_labels), (prep(splits.val_images), splits.val_labels),
                        (prep(splits.test_images), splits.test_labels), splits.classes, splits.val_indices,
                        stats.mean, stats.std)


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


def train_scratch(config: ScratchTrainConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train one run end to end; returns its summary (also written to summary.json)."""
    config.validate()
    wall_start = time.perf_counter()
    dtype = resolve_dtype(config.dtype)
    data = prepare_data(config.dataset, val_size=config.val_size, seed=config.seed,
                        train_limit=config.train_limit, dtype=dtype)
    image_shape = data.train[0].shape[1:]
    model = build_model(config, image_shape, len(data.classes))
    run = start_run(config, data, model)
    solver = Solver(model, data.train, data.val, update_rule=config.update, optim_config={"lr": config.lr},
                    lr_decay=config.lr_decay, batch_size=config.batch_size, num_epochs=config.epochs,
                    seed=config.seed, checkpoint_dir=run.checkpoints)
    log(f"run {run.path}")
    log(f"data {config.dataset}: train {len(data.train[1])} / val {len(data.val[1])} / test {len(data.test[1])} "
        f"images of {'x'.join(map(str, image_shape))}; model {type(model).__name__}, {model.num_parameters:,} "
        f"parameters, {config.dtype}")

    def on_epoch_end(row: dict[str, Any]) -> None:
        run.append_metrics(row)
        log(f"epoch {row['epoch']:>3}/{config.epochs}  loss {row['train_loss']:.4f}  train acc {row['train_acc']:.4f}  "
            f"val loss {row['val_loss']:.4f}  val acc {row['val_acc']:.4f}  {row['epoch_time']:.1f}s "
            f"({row['images_per_s']:.0f} img/s)")

    train_start = time.perf_counter()
    with blas_threads(config.threads):
        try:
            solver.train(on_epoch_end)  # ends with the best-on-validation parameters loaded
        except BaseException as err:  # a killed run still says what happened, as the torch runs do
            status = "interrupted" if isinstance(err, KeyboardInterrupt) else f"failed: {err}"
            run.write_summary(build_summary(config, run, solver, model, data, None, status=status,
                                            train_wall=time.perf_counter() - train_start,
                                            wall=time.perf_counter() - wall_start))
            raise
        train_wall = time.perf_counter() - train_start
        test = evaluate(model, *data.test)
    confusion = confusion_matrix(data.test[1], test["predictions"], len(data.classes))
    log(f"best val acc {solver.best_val_acc:.4f} at epoch {solver.best_epoch}; test, evaluated once with those "
        f"parameters: acc {test['acc']:.4f} loss {test['loss']:.4f}; training took {train_wall:.1f}s")
    summary = build_summary(config, run, solver, model, data, test, train_wall=train_wall,
                            wall=time.perf_counter() - wall_start)
    finish_run(run, summary, confusion, data.classes)
    return summary


# --- the run directory: the only place that knows the foundation's RunDir and report API -------


def start_run(config: ScratchTrainConfig, data: PreparedData, model: ScratchModel):
    """Create the run folder and write what rebuilding the run needs: config.yaml, data.json, model.txt."""
    from cnnlab.run import RunDir

    run = RunDir.create(config.output_dir, config.name or f"scratch-{config.model}")
    run.write_config(config_dict(config))
    run.write_json("data.json", {
        "dataset": config.dataset, "classes": list(data.classes), "image_shape": list(data.train[0].shape[1:]),
        "sizes": {"train": len(data.train[1]), "val": len(data.val[1]), "test": len(data.test[1])},
        "split_seed": config.seed, "val_indices": data.val_indices.tolist(),
        "normalization": {"mean": list(data.mean), "std": list(data.std)},
    })
    shapes = "\n".join(f"  {name}: {tuple(p.shape)}" for name, p in model.params.items())
    run.write_text("model.txt", f"{type(model).__name__} (cnnlab.scratch, NumPy)\n{shapes}\n")
    return run


def finish_run(run, summary: dict[str, Any], confusion: np.ndarray, classes: tuple[str, ...]) -> None:
    """summary.json, then confusion.json, curves.png, confusion.png and report.html."""
    from cnnlab.report import write_report

    run.write_summary(summary)
    write_report(run.path, confusion=confusion, classes=list(classes))


def config_dict(config: ScratchTrainConfig) -> dict[str, Any]:
    values = dataclasses.asdict(config)
    values["hidden"] = list(config.hidden)
    return {"kind": "scratch", **values}


def build_summary(config: ScratchTrainConfig, run, solver: Solver, model: ScratchModel, data: PreparedData,
                  test: dict[str, Any] | None, *, train_wall: float, wall: float,
                  status: str | None = None) -> dict[str, Any]:
    """The torch engine's summary.json keys, filled in for a NumPy run."""
    import torch

    from cnnlab.run.environment import describe_environment

    rows = solver.rows
    best = next((r for r in rows if r["epoch"] == solver.best_epoch), None)
    finite = bool(rows) and all(np.isfinite(r["train_loss"]) for r in rows)
    test_record = None if test is None else {
        "loss": test["loss"], "acc": test["acc"], "top5": test["top5"], "images": len(data.test[1]),
        "checkpoint": f"best (epoch {solver.best_epoch}, by val_acc)"}
    return {
        "status": status or ("completed" if finite else "diverged"),
        "run_dir": str(run.path),
        "name": run.path.name,
        "seed": config.seed,
        "dataset": {"name": config.dataset, "classes": len(data.classes), "image_shape": list(data.train[0].shape[1:]),
                    "train": len(data.train[1]), "val": len(data.val[1]), "test": len(data.test[1])},
        "model": {"name": f"scratch_{config.model}", "parameters": model.num_parameters,
                  "trainable_parameters": model.num_parameters},
        "epochs_run": len(rows),
        "monitor": "val_acc",
        "best": best,
        "final": rows[-1] if rows else None,
        "test": test_record,
        "first_batch_loss": solver.loss_history[0] if solver.loss_history else None,
        "expected_initial_loss": float(np.log(len(data.classes))),
        "time": {"train_wall_s": train_wall, "total_wall_s": wall,
                 "epoch_mean_s": float(np.mean([r["epoch_time"] for r in rows])) if rows else None,
                 "train_images_per_s": rows[-1]["images_per_s"] if rows else None},
        "device": {"type": "cpu", "precision": config.dtype, "channels_last": False, "threads": config.threads},
        "environment": describe_environment(torch.device("cpu")),
        "config": config_dict(config),
    }
