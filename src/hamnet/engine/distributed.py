"""One training path with and without ``torchrun``: the environment decides.

Under torchrun (``RANK`` set) the process group is started with NCCL on CUDA and gloo on
the CPU; each rank takes its slice of every global batch, gradients are all-reduced by
DDP, and only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from hamnet.devices import resolve_device


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group when launched by torchrun; a no-op otherwise."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return DistInfo()
    info = DistInfo(
        rank=int(os.environ["RANK"]),
        world_size=int(os.environ["WORLD_SIZE"]),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return info


def shard(indices: list[int], info: DistInfo) -> list[int]:
    """This rank's contiguous share of one global batch (sizes differ by at most one)."""
    per_rank, extra = divmod(len(indices), info.world_size)
    start = info.rank * per_rank + min(info.rank, extra)
    return indices[start : start + per_rank + (1 if info.rank < extra else 0)]


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_reduce_mean(value: float, info: DistInfo) -> float:
    if not info.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(tensor)
    return float(tensor.item()) / info.world_size


def broadcast_object(value, info: DistInfo):
    """Rank 0's ``value`` on every rank (e.g. the evaluation only rank 0 computed)."""
    if not info.enabled:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def is_main_process() -> bool:
    """True outside torchrun and on its rank 0: the process that prints and writes."""
    return int(os.environ.get("RANK", "0")) == 0


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def pick_device(name: str, info: DistInfo | None = None) -> torch.device:
    """``auto`` takes CUDA when present (one GPU per local rank), else the CPU.

    A wrong name, missing CUDA or an index past the last GPU is one ConfigError line.
    """
    return resolve_device(name, info.local_rank if info else None)
