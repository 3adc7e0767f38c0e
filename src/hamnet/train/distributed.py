"""One training path with and without ``torchrun``: the environment decides.

Under torchrun (``RANK`` set) the process group is started with NCCL on CUDA and gloo on
the CPU; each rank takes its slice of every global batch, gradients are all-reduced by
DDP, and only rank 0 writes files. On CUDA each rank binds its GPU (``LOCAL_RANK``) with
``torch.cuda.set_device`` before NCCL starts, and every collective of ours runs on that
GPU: NCCL reduces only CUDA tensors, and broadcasts objects through the current device.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from hamnet.devices import resolve_device

CPU = torch.device("cpu")


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = "none"  # nccl, gloo, none (one process)

    @property
    def device(self) -> torch.device:
        """Where this rank's collectives put their tensors."""
        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else CPU

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group when launched by torchrun; a no-op otherwise.

    Under torchrun the group starts even for one process (``--nproc-per-node 1``), so
    that one GPU exercises the NCCL start-up; collectives only run for two or more.
    """
    if "RANK" not in os.environ or "MASTER_ADDR" not in os.environ:
        return DistInfo()
    info = DistInfo(
        rank=int(os.environ["RANK"]),
        world_size=int(os.environ["WORLD_SIZE"]),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        backend="nccl" if device.type == "cuda" else "gloo",
    )
    if info.backend == "nccl":
        # before the process group: NCCL binds its communicator to the current device
        torch.cuda.set_device(info.local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=info.backend)
    return info


def shard(indices: list[int], info: DistInfo) -> list[int]:
    """This rank's contiguous share of one global batch (sizes differ by at most one)."""
    per_rank, extra = divmod(len(indices), info.world_size)
    start = info.rank * per_rank + min(info.rank, extra)
    return indices[start : start + per_rank + (1 if info.rank < extra else 0)]


def barrier(info: DistInfo) -> None:
    if not info.enabled:
        return
    if info.backend == "nccl":
        dist.barrier(device_ids=[info.local_rank])
    else:
        dist.barrier()


def all_reduce_mean(value: float, info: DistInfo) -> float:
    if not info.enabled:
        return value
    tensor = scalar_tensor(value, info.device)
    dist.all_reduce(tensor)
    return float(tensor.item()) / info.world_size


def scalar_tensor(value: float, device: torch.device) -> torch.Tensor:
    """``[value]`` as float64 on ``device`` (the tensor a reduction sends)."""
    return torch.tensor([value], dtype=torch.float64, device=device)


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
    if info.backend != "none" and dist.is_initialized():
        dist.destroy_process_group()


def pick_device(name: str, info: DistInfo | None = None) -> torch.device:
    """``auto`` takes CUDA when present (one GPU per local rank), else the CPU.

    A wrong name, missing CUDA or an index past the last GPU is one ConfigError line.
    """
    return resolve_device(name, info.local_rank if info else None)
