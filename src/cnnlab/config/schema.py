"""The recipe schema: one dataclass per section, every default with its reason beside it.

A recipe (YAML under ``recipes/``) sets any of these keys; ``cnnlab.config.load_recipe``
validates it against the dataclasses below, and the resolved result is saved as the run's
``config.yaml``. Sections map one-to-one to the pipeline: data -> model -> optim/schedule/loss
-> train -> run directory (and the trackers of ``log``).

Every check the loader makes is written here, beside its field: a ``Literal`` lists the valid
names, ``Annotated[int, Range(ge=1)]`` bounds a number, ``Annotated[str, Matches(...)]`` a
string. The loader reads them, so a bad value fails before anything trains.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal


@dataclass(frozen=True)
class Range:
    """Bounds of a number: ``ge``/``gt`` below, ``le``/``lt`` above (None = unbounded)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def allows(self, x: float) -> bool:
        return ((self.ge is None or x >= self.ge) and (self.gt is None or x > self.gt)
                and (self.le is None or x <= self.le) and (self.lt is None or x < self.lt))

    def __str__(self) -> str:  # ">= 1", "> 0", "in [0, 1)"
        low = f"[{self.ge}" if self.ge is not None else f"({self.gt}" if self.gt is not None else None
        high = f"{self.le}]" if self.le is not None else f"{self.lt})" if self.lt is not None else None
        if low and high:
            return f"in {low}, {high}"
        if low:
            return f"{'>=' if low[0] == '[' else '>'} {low[1:]}"
        return f"{'<=' if high[-1] == ']' else '<'} {high[:-1]}"


@dataclass(frozen=True)
class Matches:
    """A string that matches ``pattern`` as a whole; ``valid`` says in words what matches."""

    pattern: str
    valid: str

    def allows(self, text: str) -> bool:
        return re.fullmatch(self.pattern, text) is not None

    def __str__(self) -> str:
        return self.valid


Count = Annotated[int, Range(ge=1)]  # sizes and counts: at least one
Seed = Annotated[int, Range(ge=0, le=2**32 - 1)]  # numpy's generators take seeds in [0, 2**32)
Rate = Annotated[float, Range(ge=0, lt=1)]  # a probability or decay that must stay below 1
Fraction = Annotated[float, Range(ge=0, le=1)]  # a share of the lr or of training, ends included
NonNegative = Annotated[float, Range(ge=0)]
Positive = Annotated[float, Range(gt=0)]

# The engine's registries hold these names (engine.optim.OPTIMIZERS, engine.schedule.SCHEDULES,
# engine.losses.LOSSES); config sits below the engine, so they are repeated here and
# tests/config/test_schema.py checks that each Literal equals its registry.
OptimizerName = Literal["sgd", "adam", "adamw", "rmsprop", "adagrad"]
ScheduleName = Literal["constant", "step", "exponential", "cosine", "onecycle"]
LossName = Literal["cross_entropy", "bce", "hinge"]
# cnnlab.data.normalize.SCHEMES holds these; tests/config/test_schema.py checks they agree
NormalizeName = Literal["none", "channel", "pixel", "zca", "imagenet", "fixed"]

Device = Annotated[str, Matches(r"auto|cpu|cuda(:\d+)?", "auto, cpu, cuda or cuda:N")]


@dataclass
class DataConfig:
    # a registered dataset (cnnlab.data.DATASETS, an open registry checked on load); the main job's data
    name: str = "fashion_mnist"
    root: str | None = None  # the one folder to read; None searches $CNNLAB_DATA, ./data, then system copies
    options: dict[str, Any] = field(default_factory=dict)  # the dataset loader's keyword arguments; its defaults
    # held out of train (a count, or a fraction if < 1); never taken from test, and never empty: the
    # best checkpoint and early stopping are chosen on it
    val_size: Positive = 5000  # Fashion-MNIST's 60k train -> 55k / 5k, the usual MNIST-style split
    split_seed: Seed = 0  # seeds the stratified train/val split, separately from the run seed; fixed, so repeatable
    classes: list[int] | None = None  # keep only these labels, renumbered 0..K-1 in this order; None keeps all
    train_limit: Count | None = None  # stratified subsample of the train split (few-shot, fine-tuning); None: all
    # none | channel (per-channel standardization) | pixel (mean and std image, practical work Q19-20) |
    # zca (whitening, Q21) | imagenet | fixed (normalize_mean / normalize_std); fit on the train split only.
    # Per-channel by default: zero-mean inputs train faster. true/false mean channel/none.
    normalize: NormalizeName | bool = "channel"
    zca_epsilon: Positive = 0.1  # zca: added to the eigenvalues; small values amplify pixel noise
    normalize_mean: list[Fraction] | None = None  # fixed: per-channel mean in [0, 1] pixel units
    normalize_std: list[Positive] | None = None  # fixed: per-channel std in [0, 1] pixel units
    # resize every image (any dataset) to [H, W]; None keeps the dataset's size. imagefolder needs it
    # when its images differ in size
    image_size: tuple[Count, Count] | None = None
    resize: Literal["resize", "stretch"] = "resize"  # resize: shorter side, then centre crop; stretch: both sides
    channels: Literal[1, 3] | None = None  # 1 grayscale or 3 RGB (ITU-R 601-2 luma); None keeps the dataset's
    skip_bad_files: bool = False  # imagefolder: skip unreadable images (counted in data.json) instead of stopping
    # [{name: random_crop, padding: 4}, ...]; none by default, as what helps depends on the data
    augment: list[dict[str, Any]] = field(default_factory=list)
    batch_size: Count = 128  # practical work 1cd's baseline
    eval_batch_size: Count = 1024  # no gradients at evaluation, so larger batches are cheap


@dataclass
class ModelConfig:
    name: str = "simple_nn"  # a registered model (open registry, checked when built); ECE 661's small, quick net
    options: dict[str, Any] = field(default_factory=dict)  # the builder's keyword arguments (checked there); its own


Beta = Annotated[float, Range(ge=0, lt=1)]  # Adam's moment decay: 1 would never forget the first gradient


@dataclass
class OptimConfig:
    """Keys left at None take the chosen optimizer's own default (torch's); setting a key the
    optimizer does not take (say ``nesterov`` with adam) is an error that lists the valid ones."""

    name: OptimizerName = "sgd"  # plain SGD: the labs' baseline optimizer
    lr: Positive = 0.01  # ECE 661's best-of-sweep learning rate for SimpleNN
    weight_decay: NonNegative = 0.0  # L2 through the optimizer (decoupled for adamw); off unless asked for
    l1: NonNegative = 0.0  # adds l1 * sum(|w|) over weight matrices and kernels to the loss; off unless asked for
    # weight decay on biases and batch-norm scales too, as torch.optim does by default; false decays only
    # conv and linear weights (timm's filter_bias_and_bn, airbench)
    decay_bias_and_norm: bool = True
    momentum: Rate | None = None  # sgd, rmsprop (default 0); 1 or more never decays the velocity
    nesterov: bool | None = None  # sgd (default false)
    betas: tuple[Beta, Beta] | None = None  # adam, adamw (default 0.9, 0.999: Kingma & Ba 2015)
    alpha: Rate | None = None  # rmsprop smoothing constant (default 0.99)
    eps: Positive | None = None  # adam, adamw, rmsprop, adagrad; it keeps a division away from zero


@dataclass
class ScheduleConfig:
    """Per-batch lr schedule. Keys left at None take the schedule's default; a key the chosen
    schedule does not read is an error."""

    name: ScheduleName = "constant"  # the lr as given: nothing to tune beyond optim.lr
    warmup_epochs: NonNegative = 0.0  # linear warmup from warmup_start * lr, in (fractional) epochs; off by default
    warmup_start: Fraction = 0.0  # fraction of lr the warmup starts at: from zero
    step_size: Count | None = None  # step: epochs between decays (default 10)
    gamma: Annotated[float, Range(gt=0, le=1)] | None = None  # step: decay factor (0.1); exponential: per epoch (0.95)
    min_lr: Fraction | None = None  # cosine / onecycle: fraction of lr reached at the end (0)
    pct_start: Fraction | None = None  # onecycle: fraction of training spent rising to lr (0.25)
    div_factor: Annotated[float, Range(ge=1)] | None = None  # onecycle: start at lr / div_factor (25, Smith & Topin)


@dataclass
class LossConfig:
    # bce, and hinge on two classes, use one logit
    name: LossName = "cross_entropy"  # the standard classification loss, ln(C) at an untrained start
    label_smoothing: Rate | None = None  # cross_entropy only (Szegedy et al. 2016; default 0)
    margin: Positive | None = None  # hinge only (default 1)


@dataclass
class EarlyStopConfig:
    patience: Count | None = None  # stop after this many epochs without improvement; None disables
    min_delta: NonNegative = 0.0  # smallest change of the monitored metric that counts as improvement; any by default


@dataclass
class EmaConfig:
    # weight of the old average per update (timm's ModelEmaV3 uses 0.9998 per step on ImageNet); None: off
    decay: Rate | None = None
    every: Count = 1  # steps between updates: a larger gap averages over longer with the same decay
    # decay min(decay, (1 + n) / (10 + n)) at update n, as TensorFlow's ExponentialMovingAverage with
    # num_updates: early updates, when the weights move most, are not held back by the random start
    warmup: bool = True


@dataclass
class TrainConfig:
    epochs: Count = 10  # enough for the small nets of the labs to level off on Fashion-MNIST
    monitor: Literal["val_acc", "val_loss", "val_top5"] = "val_acc"  # best checkpoint, early stopping; val_* only
    early_stopping: EarlyStopConfig = field(default_factory=EarlyStopConfig)
    device: Device = "auto"  # the GPU where there is one, else the CPU
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"  # auto = the faster of fp32 and native bf16
    # auto = measured: a few training steps of each candidate, the fastest kept and cached per machine
    channels_last: Literal["auto"] | bool = "auto"
    compile: Literal["auto"] | bool = False  # torch.compile the model; auto = timed on CUDA (slower on CPUs, issue 8)
    # seconds for the epochs (training, validation, checkpoints): the schedule is laid out over the steps that
    # fit, from the measured step time, and re-planned once after epoch 1; train.epochs is then the most it
    # may plan. None: train.epochs, however long they take
    time_budget_s: Positive | None = None
    threads: Count | None = None  # torch intra-op threads; None keeps torch's default (all cores)
    eval_test: bool = True  # evaluate the test split once at the end, with the best checkpoint: the reported result
    # validation and test also on a left-right flipped copy, averaging the logits (airbench's test-time
    # augmentation); none by default, as a flip changes the meaning of some images (digits, text)
    tta: Literal["none", "flip"] = "none"
    ema: EmaConfig = field(default_factory=EmaConfig)  # evaluate an average of the weights; off by default


@dataclass
class FinetuneConfig:
    # a cnnlab run dir, a .safetensors checkpoint, or torchvision:NAME; spelt "from" in YAML
    source: str | None = field(default=None, metadata={"key": "from"})  # None: train from scratch
    freeze: list[str] = field(default_factory=list)  # parameter-name patterns kept fixed, e.g. features.*; none
    new_head: bool = True  # replace the classifier for the new number of classes: the old one predicts old classes


# MLflow's tracking URIs have a scheme (sqlite:///, postgresql://, http(s)://, databricks://) or are the bare
# word databricks; a plain path would be MLflow's file store, which MLflow 3.17 refuses (maintenance mode).
TrackingUri = Annotated[str, Matches(r"[A-Za-z][A-Za-z0-9+.-]*:.+|databricks",
                                     "true or a tracking URI such as sqlite:///runs/mlflow.db or http://localhost:5000")]


@dataclass
class LogConfig:
    """Trackers people already use, beside the run folder (which stays the record): each logs the
    resolved config, every epoch's metrics row and the summary; each needs its optional package."""

    tensorboard: bool = False  # event files in <run folder>/tensorboard/ (pip install tensorboard); an extra: off
    # an MLflow tracking store (pip install mlflow): a URI as MLflow takes it (sqlite:///runs/mlflow.db,
    # http://localhost:5000, postgresql://...), or true for sqlite:///<output_dir>/mlflow.db: one SQLite file
    # beside the run folders, the backend MLflow 3 itself defaults to; None or false: off
    mlflow: bool | TrackingUri | None = None
    experiment: str | None = None  # MLflow experiment; None: the run's name (a sweep names its own, for its trials)


# The run folder is output_dir/<name>-<time>/: a name with a path separator, or . and .., would
# put it elsewhere; a leading '-' would read as an option in shell commands.
RunName = Annotated[str, Matches(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", "made of letters, digits, '.', '_' and '-' "
                                 "(at most 100, the first a letter or digit)")]


@dataclass
class RunConfig:
    name: RunName = "run"  # run folder prefix: runs/<name>-<time>/; recipes name their own
    seed: Seed = 0  # seeds torch, numpy and random, and the engine's generators; fixed, so runs repeat
    output_dir: str = "runs"  # run folders go here, relative to the working directory
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    log: LogConfig = field(default_factory=LogConfig)  # TensorBoard and MLflow: both off
