"""A run's working set: every piece built from its config before any file is written."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cnnlab.config import RunConfig
from cnnlab.data.loader import DeviceLoader
from cnnlab.data.normalize import ChannelStats
from cnnlab.data.prepare import prepare_splits
from cnnlab.data.splits import Splits
from cnnlab.engine.losses import Loss, build_loss
from cnnlab.engine.loop import FiniteCheck
from cnnlab.engine.model_setup import create_model, trainable_parameters
from cnnlab.engine.monitor import Monitor
from cnnlab.engine.optim import build_optimizer
from cnnlab.engine.precision import Precision, resolve_precision
from cnnlab.engine.run_data import make_loaders
from cnnlab.engine.schedule import build_schedule
from cnnlab.engine.seed import make_generator, seed_everything


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
    check: FiniteCheck
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
    return Session(config=config, precision=precision, splits=splits, stats=stats, loss_fn=loss_fn, model=model,
                   optimizer=optimizer, scheduler=scheduler, generator=generator, loaders=loaders, monitor=monitor,
                   scaler=scaler, check=FiniteCheck(precision.device))


def all_finite(model: torch.nn.Module) -> bool:
    return bool(torch.stack([torch.isfinite(p).all() for p in model.parameters()]).all())
