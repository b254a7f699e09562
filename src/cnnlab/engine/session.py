"""A run's working set: every piece built from its config before any file is written."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from cnnlab.config import RunConfig
from cnnlab.data.loader import DeviceLoader
from cnnlab.data.normalize import Normalization
from cnnlab.data.prepare import prepare_splits
from cnnlab.data.splits import Splits
from cnnlab.engine.autotune import Choice, TuneCache, choose, training_step, workload_key
from cnnlab.engine.losses import Loss, build_loss
from cnnlab.engine.loop import FiniteCheck, check_tta
from cnnlab.engine.model_setup import create_model, fit_model_to_data, parameter_groups
from cnnlab.engine.monitor import Monitor
from cnnlab.engine.optim import build_optimizer
from cnnlab.engine.precision import Precision, candidate_settings, resolve_device
from cnnlab.engine.run_data import make_loaders
from cnnlab.engine.budget import Plan, first_plan
from cnnlab.engine.distributed import (World, broadcast, rank_batch, start, sum_over_ranks, world_from_env,
                                      wrap)
from cnnlab.engine.ema import Ema
from cnnlab.engine.schedule import Factor, retarget, schedule_factor
from cnnlab.engine.seed import make_generator, seed_everything
from cnnlab.allocator import keep_freed_memory


RANK_SEED_STEP = 7919  # rank r's shuffling and augmentation seed is seed + 7919 r (rank 0's is the run's own)


@dataclass
class Session:
    """Everything a run trains with, built from its config before any file is written."""

    config: RunConfig
    choice: Choice  # the precision, layout and compilation, and how they were chosen
    splits: Splits
    stats: Normalization  # data.normalize, fit on the train split (any scheme: channel, pixel, zca, ...)
    loss_fn: Loss
    model: torch.nn.Module  # the weights that are saved
    runner: torch.nn.Module  # what runs them: the model, or torch.compile of it
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    generator: torch.Generator
    loaders: dict[str, DeviceLoader]
    monitor: Monitor
    scaler: torch.amp.GradScaler | None
    check: FiniteCheck
    world: World = World()  # this process's rank among torchrun's (rank 0 of 1 without torchrun)
    ema: Ema | None = None  # the weight average evaluated in place of the model (train.ema)
    plan: Plan | None = None  # the steps a time budget holds (train.time_budget_s); None: train.epochs
    first_loss: float | None = None  # loss of the very first batch, beside its expected value

    @property
    def precision(self) -> Precision:
        return self.choice.precision

    @property
    def evaluated(self) -> torch.nn.Module:
        """What validation, the checkpoints' weights and the test use: the weight average, or the model."""
        if self.ema:
            return self.ema.module
        return self.model if self.world.active else self.runner  # rank 0 evaluates alone: no DDP collectives

    @property
    def epochs(self) -> int:
        """Epochs to train: the plan's where there is a time budget, else train.epochs."""
        return self.plan.epochs if self.plan else self.config.train.epochs

    def schedule(self, total_steps: int) -> Factor:
        """The recipe's lr schedule laid out over ``total_steps`` training steps."""
        return lr_factor(self.config, total_steps=total_steps, steps_per_epoch=len(self.loaders["train"]))


def mean_over_ranks(world: World, device: torch.device):
    """Under torchrun, losses averaged over the ranks (a NaN on one rank is then a NaN on all)."""
    if not world.active:
        return None
    return lambda values: torch.tensor(sum_over_ranks(values.tolist(), world, device)) / world.size


def make_optimizer_factory(config: RunConfig):
    o = config.optim
    return functools.partial(build_optimizer, o.name, lr=o.lr, weight_decay=o.weight_decay, momentum=o.momentum,
                             nesterov=o.nesterov, betas=o.betas, alpha=o.alpha, eps=o.eps)


def choose_settings(config: RunConfig, model: torch.nn.Module, splits: Splits, stats: Normalization,
                    loss_fn: Loss, *, recorded: dict | None, measure_single: bool,
                    cache: TuneCache | None, batch: int) -> Choice:
    """The run's precision, layout and compilation: those ``recorded`` in a resumed run's
    settings.json, else the recipe's, with what it leaves at ``auto`` measured on this model
    and batch (or found in ``cache``)."""
    t = config.train
    candidates = candidate_settings(t.device, t.precision, t.channels_last, t.compile)
    if recorded is not None:  # a resumed run keeps what it started with
        candidates = candidate_settings(t.device, recorded["precision"], recorded["channels_last"],
                                        recorded["compile"])
        choice = Choice.recorded(recorded, candidates[0])
        if choice.step_s is not None or not measure_single:
            return choice
    batch = min(batch, len(splits.train_labels))
    images = splits.train_images[:batch]  # (B, C, H, W) uint8: a real batch, unaugmented
    x = stats.normalize(torch.as_tensor(images))
    y = torch.as_tensor(splits.train_labels[:batch], dtype=torch.int64)
    build_step = functools.partial(training_step, model, loss_fn=loss_fn,
                                   make_optimizer=make_optimizer_factory(config), images=x, labels=y)
    key = workload_key(model, model_name=config.model.name, input_shape=tuple(images.shape[1:]), batch=batch,
                       optimizer=config.optim.name, candidates=candidates)
    return choose(candidates, build_step, batch=batch, key=key, cache=cache, measure_single=measure_single)


def lr_factor(config: RunConfig, *, total_steps: int, steps_per_epoch: int) -> Factor:
    """The recipe's lr schedule laid out over ``total_steps`` training steps."""
    s = config.schedule
    return schedule_factor(s.name, total_steps=total_steps, steps_per_epoch=steps_per_epoch,
                           warmup_epochs=s.warmup_epochs, warmup_start=s.warmup_start, step_size=s.step_size,
                           gamma=s.gamma, min_lr=s.min_lr, pct_start=s.pct_start, div_factor=s.div_factor)


def setup(config: RunConfig, *, recorded_settings: dict | None = None, cache: TuneCache | None = None) -> Session:
    """Validate and build every piece; a bad name or option fails here, before a run folder exists.

    ``recorded_settings`` (a resumed run's ``settings.json``) replaces measuring ``auto``.
    """
    seed_everything(config.seed)
    keep_freed_memory()  # no page faults for each step's activations, whatever ran before (cnnlab.allocator)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    t = config.train
    lr_factor(config, total_steps=1, steps_per_epoch=1)  # a bad schedule fails before seconds of measuring
    world = world_from_env()
    if world.active and resolve_device(t.device).type == "cuda":
        torch.cuda.set_device(world.local_rank)  # "cuda" is then this rank's own GPU
    device = candidate_settings(t.device, t.precision, t.channels_last, t.compile)[0].device  # checks them all
    rank_batch(config.data.batch_size, world)  # the global batch must divide among the ranks
    start(world, device)
    splits, stats = prepare_splits(config.data)
    check_tta(t.tta, stats)
    loss_fn = build_loss(config.loss.name, splits.num_classes,
                         label_smoothing=config.loss.label_smoothing, margin=config.loss.margin)
    C, H, W = splits.train_images.shape[1:]
    model = create_model(config.model.name, config.model.options, finetune=config.finetune,
                         in_chans=C, num_outputs=loss_fn.num_outputs, input_size=(H, W)).to(device)
    fit_model_to_data(model, splits.train_images, stats, device)
    choice = None
    if world.is_main:  # rank 0 measures; every rank trains with its choice
        choice = choose_settings(config, model, splits, stats, loss_fn, recorded=recorded_settings,
                                 measure_single=t.time_budget_s is not None, cache=cache or TuneCache(),
                                 batch=rank_batch(config.data.batch_size, world))
    choice = broadcast(choice, world)
    precision = choice.precision
    if precision.channels_last:
        model = model.to(memory_format=torch.channels_last)
    runner = wrap(model, world, precision.device)
    runner = torch.compile(runner) if precision.compile else runner
    optimizer = make_optimizer_factory(config)(parameter_groups(model, decay_bias_and_norm=config.optim.decay_bias_and_norm))
    generator = make_generator(config.seed + RANK_SEED_STEP * world.rank, precision.device)  # shards draw apart
    loaders = make_loaders(splits, stats, config.data, precision, generator, world)
    steps_per_epoch = len(loaders["train"])
    plan = None
    if t.time_budget_s is not None:
        plan = first_plan(t.time_budget_s, step_s=choice.step_s, steps_per_epoch=steps_per_epoch,
                          batch=loaders["train"].batch_size, val_images=len(splits.val_labels), max_epochs=t.epochs)
    stop = config.train.early_stopping
    monitor = Monitor(config.train.monitor, stop.patience, stop.min_delta)
    scaler = torch.amp.GradScaler("cuda") if precision.name == "fp16" else None
    # the schedule's factor is set below, once the session can lay it out over the planned steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    session = Session(config=config, choice=choice, splits=splits, stats=stats, loss_fn=loss_fn, model=model,
                      runner=runner, optimizer=optimizer, scheduler=scheduler, generator=generator, loaders=loaders,
                      monitor=monitor, scaler=scaler, plan=plan, world=world,
                      check=FiniteCheck(precision.device, reduce=mean_over_ranks(world, precision.device)),
                      ema=(Ema(model, decay=t.ema.decay, every=t.ema.every, warmup=t.ema.warmup)
                           if t.ema.decay is not None else None))
    total = plan.total_steps if plan else t.epochs * steps_per_epoch
    retarget(scheduler, session.schedule(total))
    return session


def all_finite(model: torch.nn.Module) -> bool:
    return bool(torch.stack([torch.isfinite(p).all() for p in model.parameters()]).all())
