"""DDP under torchrun (gloo, 2 CPU processes) matches one process on the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from hamnet.engine.checkpoint import load_checkpoint
from hamnet.engine.distributed import DistInfo, shard
from hamnet.engine.trainer import train

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
