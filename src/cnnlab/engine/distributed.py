"""Data-parallel training under torchrun: one process per rank, gloo on CPUs, NCCL on GPUs.

``torchrun --nproc-per-node=N -m cnnlab train RECIPE`` starts N copies of ``cnnlab train``;
torchrun sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` (and the rendezvous), which is all
cnnlab reads. Teams outgrow one machine through torchrun's own options (``--nnodes``,
``--rdzv-backend``, ``--rdzv-endpoint``), never through a launcher of ours.

What each rank does:

- **Data.** Every rank builds the same split, then keeps its shard of the training images,
  ``rank::world`` (the remainder of ``N mod world`` images is left out so every rank takes the
  same number of steps), resident on its device. ``data.batch_size`` stays the *global* batch:
  each rank trains on ``batch_size / world`` images a step, and DistributedDataParallel averages
  the gradients, so a step equals one process's step on the whole batch (the test checks this
  to 1e-5). Validation and test run on rank 0's weights, which every rank holds.
- **Agreement.** Every decision that steers the loop comes from rank 0 (``broadcast``): the
  measured ``auto`` settings, the time budget's plan, each epoch's metrics row (so early
  stopping and the best checkpoint agree), and a non-finite loss on any rank stops all of them
  at the same step. Batch-norm statistics are rank 0's: DDP broadcasts them before every
  forward, and rank 0's weights are the ones evaluated and saved.
- **Files.** Only rank 0 writes the run directory. A checkpoint holds every rank's RNG states,
  so ``--resume`` under the same torchrun command continues each rank exactly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from cnnlab.errors import CnnlabError

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place among the ranks of a torchrun job (rank 0 of 1 without torchrun)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


def world_from_env() -> World:
    """The ranks torchrun set up (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``); one rank without them."""
    try:
        return World(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                     int(os.environ.get("LOCAL_RANK", 0)))
    except ValueError as err:
        raise CnnlabError(f"RANK, WORLD_SIZE and LOCAL_RANK must be integers (set by torchrun): {err}") from err


def start(world: World, device: torch.device) -> None:
    """Join the process group: NCCL between GPUs, gloo between CPU processes."""
    if world.active and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")


def stop(world: World) -> None:
    if world.active and dist.is_initialized():
        dist.destroy_process_group()


def device_for(world: World, device: torch.device) -> torch.device:
    """Each rank's own GPU (its local rank); CPU ranks share the CPU."""
    if world.active and device.type == "cuda":
        return torch.device("cuda", world.local_rank)
    return device


def rank_batch(batch_size: int, world: World) -> int:
    """The images each rank trains on per step; the global batch must divide among the ranks."""
    if batch_size % world.size:
        lower = batch_size - batch_size % world.size
        works = " or ".join(str(b) for b in (lower, lower + world.size) if b > 0)
        raise CnnlabError(f"data.batch_size={batch_size} does not divide among {world.size} processes "
                          f"(torchrun --nproc-per-node): use a multiple of {world.size}, such as {works}")
    return batch_size // world.size


def shard(images: Any, labels: Any, world: World) -> tuple[Any, Any]:
    """Rank ``rank``'s share of the training split: every ``size``-th image, equal counts."""
    if not world.active:
        return images, labels
    n = len(labels) - len(labels) % world.size
    return images[world.rank : n : world.size], labels[world.rank : n : world.size]


def wrap(model: nn.Module, world: World, device: torch.device) -> nn.Module:
    """DistributedDataParallel around ``model`` (its gradients are averaged across ranks)."""
    if not world.active:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def broadcast(value: T, world: World) -> T:
    """Rank 0's ``value``, on every rank (any picklable object)."""
    if not world.active:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(value: T, world: World) -> list[T]:
    """Every rank's ``value``, in rank order, on every rank."""
    if not world.active:
        return [value]
    values: list[Any] = [None] * world.size
    dist.all_gather_object(values, value)
    return values


def sum_over_ranks(values: list[float], world: World, device: torch.device) -> list[float]:
    if not world.active:
        return values
    total = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return total.tolist()


def any_rank(flag: torch.Tensor, world: World) -> torch.Tensor:
    """``flag`` (a 0-d tensor) summed over the ranks: non-zero where any rank raised it."""
    if world.active:
        flag = flag.clone()
        dist.all_reduce(flag)
    return flag


def barrier(world: World) -> None:
    if world.active:
        dist.barrier()
