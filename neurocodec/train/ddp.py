"""Multi-process data-parallel training under ``torchrun`` (one process per device).

``torchrun`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; without them the trainer runs
as a single process and nothing here talks to a process group.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

# Rank 0 validates and writes checkpoints while the others wait in the next all-reduce.
TIMEOUT = timedelta(hours=1)


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # setup() made the process group, so teardown() ends it

    @property
    def main(self) -> bool:
        """The one process that writes logs and checkpoints."""
        return self.rank == 0


def setup(device: str = "auto") -> Dist:
    """Join the process group when launched by torchrun; pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    dev = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(dev)
    owns = world > 1 and not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if cuda else "gloo", timeout=TIMEOUT)
    return Dist(rank=rank, world=world, device=dev, owns_group=owns)


def teardown(d: Dist) -> None:
    if d.owns_group and dist.is_initialized():
        # Leave together: a rank that tears gloo down while rank 0 still writes the final
        # checkpoint can make the other side abort on a closed connection.
        dist.barrier()
        dist.destroy_process_group()


def wrap(model: nn.Module, d: Dist, ignore: list[str], find_unused: bool = False) -> nn.Module:
    """DistributedDataParallel around ``model`` (unchanged in a single process).

    ``ignore``: parameter names DDP must not synchronise — the factorized priors' quantiles,
    which the forward pass never uses (DDP would wait for their gradients) and which the aux
    loss moves identically on every rank anyway (it depends on parameters, not on data)."""
    if d.world == 1:
        return model
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, ignore)
    ids = [d.device.index] if d.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def from_main(value: float, d: Dist) -> float:
    """Rank 0's ``value`` on every rank (e.g. elapsed time, so all ranks agree on the lr
    schedule and on when a time budget is spent)."""
    if d.world == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=d.device)
    dist.broadcast(t, 0)
    return float(t.item())


def everywhere(ok: torch.Tensor) -> bool:
    """Whether the boolean ``ok`` is true on every rank (one all-reduce under DDP), so that all
    ranks stop together rather than one stopping while the others wait for it."""
    if dist.is_available() and dist.is_initialized():
        ok = ok.to(torch.int32)
        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    return bool(ok.item())


def state_digest(model: nn.Module) -> str:
    """sha256 of every parameter and buffer, in name order."""
    h = hashlib.sha256()
    for k, v in sorted(unwrap(model).state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def rank_digests(model: nn.Module, d: Dist) -> list[str]:
    """Every rank's :func:`state_digest` (on every rank); they differ only if ranks diverged."""
    own = state_digest(model)
    if d.world == 1:
        return [own]
    out: list = [None] * d.world
    dist.all_gather_object(out, own)
    return out
