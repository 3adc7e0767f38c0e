"""DDP under torchrun (gloo, 2 CPU processes) matches one process on the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from hamnet.train import distributed as dist_module
from hamnet.train.distributed import DistInfo, shard
from hamnet.train.trainer import train
from hamnet.weights.checkpoint import load_checkpoint

# Dropout is off so that both runs draw no per-rank randomness; gradients then differ only
# by the order of floating-point sums (all-reduce), hence the tolerance.
EXTRA = ["model.dropout=0.0", "train.epochs=2"]
TOLERANCE = 1e-5


def test_shard_splits_a_global_batch_without_loss_or_overlap():
    batch = list(range(7))
    parts = [shard(batch, DistInfo(rank=r, world_size=3)) for r in range(3)]
    assert parts == [[0, 1, 2], [3, 4], [5, 6]]


@pytest.mark.parametrize("method", ["hamnet", "basnet"])
def test_two_gloo_processes_match_one_process(
    method, tiny_root, tiny_config, tiny_overrides, tmp_path
):
    extra = [*EXTRA, f"method={method}"]
    train(tiny_config("all", *extra), tiny_root, tmp_path / "single", progress=False)
    sets = [arg for item in [*tiny_overrides, *extra] for arg in ("--set", item)]
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "hamnet.cli",
        "train",
        "--preset",
        "demo",
        "--data",
        str(tiny_root),
        "--run-dir",
        str(tmp_path / "ddp"),
        *sets,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    single = load_checkpoint(tmp_path / "single/last.pt")["model"]
    ddp = load_checkpoint(tmp_path / "ddp/last.pt")["model"]
    for key in single:
        assert torch.allclose(single[key], ddp[key], atol=TOLERANCE, rtol=0), key
    assert not (tmp_path / "ddp" / "seed0").exists()


class _FakeProcessGroup:
    """Stands in for torch.distributed and torch.cuda where no GPU is present."""

    def __init__(self, monkeypatch):
        self.calls = []
        self.initialized = False
        monkeypatch.setattr(
            torch.cuda, "set_device", lambda index: self.calls.append(("set_device", index))
        )
        monkeypatch.setattr(dist_module.dist, "is_initialized", lambda: self.initialized)
        monkeypatch.setattr(dist_module.dist, "init_process_group", self.init)
        monkeypatch.setattr(dist_module.dist, "all_reduce", self.all_reduce)
        monkeypatch.setattr(
            dist_module.dist, "barrier", lambda **kw: self.calls.append(("barrier", kw))
        )
        # a CUDA tensor cannot be made here: record the device asked for, reduce on the CPU
        real = dist_module.scalar_tensor

        def scalar(value, device):
            self.calls.append(("tensor", device))
            return real(value, torch.device("cpu"))

        monkeypatch.setattr(dist_module, "scalar_tensor", scalar)

    def init(self, backend):
        # NCCL binds the current device: set_device must come first
        self.calls.append(("init", backend))
        self.initialized = True

    def all_reduce(self, tensor):
        self.calls.append(("all_reduce", tensor.dtype))
        tensor *= 2  # two ranks holding the same value


def test_cuda_ranks_bind_their_gpu_before_nccl_and_reduce_there(monkeypatch):
    fake = _FakeProcessGroup(monkeypatch)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("MASTER_ADDR", "localhost")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    info = dist_module.init_distributed(torch.device("cuda", 1))
    assert (info.rank, info.world_size, info.local_rank, info.backend) == (3, 4, 1, "nccl")
    assert fake.calls == [("set_device", 1), ("init", "nccl")]
    assert info.device == torch.device("cuda", 1)
    assert dist_module.all_reduce_mean(0.25, info) == pytest.approx(0.125)  # 2 x 0.25 / 4
    assert fake.calls[2:] == [("tensor", torch.device("cuda", 1)), ("all_reduce", torch.float64)]
    dist_module.barrier(info)
    assert fake.calls[-1] == ("barrier", {"device_ids": [1]})


def test_cpu_ranks_use_gloo_and_cpu_tensors(monkeypatch):
    fake = _FakeProcessGroup(monkeypatch)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("MASTER_ADDR", "localhost")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    info = dist_module.init_distributed(torch.device("cpu"))
    assert fake.calls == [("init", "gloo")] and info.device == torch.device("cpu")
    assert dist_module.all_reduce_mean(1.5, info) == pytest.approx(1.5)
    assert fake.calls[1] == ("tensor", torch.device("cpu"))
    dist_module.barrier(info)
    assert fake.calls[-1] == ("barrier", {})


def test_one_process_starts_no_group(monkeypatch):
    fake = _FakeProcessGroup(monkeypatch)
    monkeypatch.delenv("RANK", raising=False)
    info = dist_module.init_distributed(torch.device("cuda", 0))
    assert not info.enabled and fake.calls == [] and info.backend == "none"
    assert dist_module.all_reduce_mean(0.7, info) == 0.7


def test_torchrun_with_one_gpu_starts_nccl_but_runs_no_collective(monkeypatch):
    fake = _FakeProcessGroup(monkeypatch)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("MASTER_ADDR", "localhost")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("LOCAL_RANK", "0")
    info = dist_module.init_distributed(torch.device("cuda", 0))
    assert fake.calls == [("set_device", 0), ("init", "nccl")] and not info.enabled
    assert dist_module.all_reduce_mean(0.5, info) == 0.5
    dist_module.barrier(info)
    assert len(fake.calls) == 2  # no tensor, no reduction, no barrier
    destroyed = []
    monkeypatch.setattr(dist_module.dist, "destroy_process_group", lambda: destroyed.append(1))
    dist_module.shutdown(info)
    assert destroyed == [1]
