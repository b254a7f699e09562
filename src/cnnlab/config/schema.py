"""The recipe schema: one dataclass per section, every default with its reason beside it.

A recipe (YAML under ``recipes/``) sets any of these keys; ``cnnlab.config.load_recipe``
validates it against the dataclasses below, and the resolved result is saved as the run's
``config.yaml``. Sections map one-to-one to the pipeline: data -> model -> optim/schedule/loss
-> train -> run directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class DataConfig:
    name: str = "fashion_mnist"  # a registered dataset (cnnlab.data.DATASETS)
    root: str | None = None  # extra folder to look in before $CNNLAB_DATA and ./data
    options: dict[str, Any] = field(default_factory=dict)  # the dataset loader's keyword arguments
    val_size: float = 5000  # held out of train (a count, or a fraction if < 1); never taken from test
    split_seed: int = 0  # seeds the stratified train/val split, separately from the run seed
    classes: list[int] | None = None  # keep only these labels, renumbered 0..K-1 in this order
    train_limit: int | None = None  # stratified subsample of the train split (few-shot, fine-tuning)
    normalize: bool = True  # per-channel standardization fit on the train split only
    augment: list[dict[str, Any]] = field(default_factory=list)  # [{name: random_crop, padding: 4}, ...]
    batch_size: int = 128  # practical work 1cd's baseline
    eval_batch_size: int = 1024  # no gradients at evaluation, so larger batches are cheap


@dataclass
class ModelConfig:
    name: str = "simple_nn"  # a registered model (cnnlab models)
    options: dict[str, Any] = field(default_factory=dict)  # the builder's keyword arguments


@dataclass
class OptimConfig:
    """Keys left at None take the chosen optimizer's own default (torch's); setting a key the
    optimizer does not take (say ``nesterov`` with adam) is an error that lists the valid ones."""

    name: str = "sgd"  # sgd | adam | adamw | rmsprop | adagrad
    lr: float = 0.01  # ECE 661's best-of-sweep learning rate for SimpleNN
    weight_decay: float = 0.0  # L2 through the optimizer (decoupled for adamw)
    l1: float = 0.0  # adds l1 * sum(|w|) over weight matrices and kernels to the loss
    momentum: float | None = None  # sgd, rmsprop (default 0)
    nesterov: bool | None = None  # sgd
    betas: tuple[float, float] | None = None  # adam, adamw (default 0.9, 0.999: Kingma & Ba 2015)
    alpha: float | None = None  # rmsprop smoothing constant (default 0.99)
    eps: float | None = None  # adam, adamw, rmsprop, adagrad


@dataclass
class ScheduleConfig:
    """Per-batch lr schedule. Keys left at None take the schedule's default; a key the chosen
    schedule does not read is an error."""

    name: str = "constant"  # constant | step | exponential | cosine | onecycle
    warmup_epochs: float = 0.0  # linear warmup from warmup_start * lr, in (fractional) epochs
    warmup_start: float = 0.0  # fraction of lr the warmup starts at
    step_size: int | None = None  # step: epochs between decays (default 10)
    gamma: float | None = None  # step: decay factor (0.1); exponential: factor per epoch (0.95)
    min_lr: float | None = None  # cosine / onecycle: fraction of lr reached at the end (0)
    pct_start: float | None = None  # onecycle: fraction of training spent rising to lr (0.25)
    div_factor: float | None = None  # onecycle: start at lr / div_factor (25, Smith & Topin 2019)


@dataclass
class LossConfig:
    name: str = "cross_entropy"  # cross_entropy | bce | hinge (bce, and hinge on two classes, use one logit)
    label_smoothing: float | None = None  # cross_entropy only (Szegedy et al. 2016; default 0)
    margin: float | None = None  # hinge only (default 1)


@dataclass
class EarlyStopConfig:
    patience: int | None = None  # stop after this many epochs without improvement; None disables
    min_delta: float = 0.0  # smallest change of the monitored metric that counts as improvement


@dataclass
class TrainConfig:
    epochs: int = 10
    monitor: str = "val_acc"  # picks the best checkpoint and drives early stopping (val_* only)
    early_stopping: EarlyStopConfig = field(default_factory=EarlyStopConfig)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto | bf16 | fp16 | fp32; auto = bf16 where the hardware has it natively
    channels_last: str = "auto"  # auto | true | false; auto = with bf16 (faster convs on CPU and GPU)
    threads: int | None = None  # torch intra-op threads; None keeps torch's default (all cores)
    eval_test: bool = True  # evaluate the test split once at the end, with the best checkpoint


@dataclass
class FinetuneConfig:
    # a cnnlab run dir, a .safetensors checkpoint, or torchvision:NAME; spelt "from" in YAML
    source: str | None = field(default=None, metadata={"key": "from"})
    freeze: list[str] = field(default_factory=list)  # parameter-name patterns kept fixed, e.g. features.*
    new_head: bool = True  # replace the classifier for the new number of classes


@dataclass
class RunConfig:
    name: str = "run"  # run folder prefix: runs/<name>-<time>/
    seed: int = 0  # seeds torch, numpy and random, and the engine's generators
    output_dir: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)

