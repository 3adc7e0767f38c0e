"""Several trainings at once on one machine: one process per run.

Each run is a child process (``python -m hamnet.experiments.concurrent``) with its own run
folder and its log in ``<run folder>/train.log``; it trains exactly as it would alone (its
own seed, its own RNG, the same code path), and its final evaluation is read back from
its ``metrics.jsonl``. ``--jobs`` sets how many run at once; by default, on a GPU as many
as fit in its free memory (at most ``MAX_GPU_JOBS``), on the CPU one (in this process:
training already uses every core). SIGINT/SIGTERM are passed on to the children, which
save their last finished epoch (see :mod:`hamnet.train.interrupt`).
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from hamnet.config import Config, load_config, save_config
from hamnet.errors import RESUME_HINT, DataError, HamnetError, TrainingInterrupted
from hamnet.io import parse_json
from hamnet.train.distributed import pick_device
from hamnet.train.interrupt import stop_on_signals

log = logging.getLogger(__name__)

MAX_GPU_JOBS = 8
GPU_RESERVE_BYTES = 4 * 2**30  # left free for the driver and other users of the GPU
CONTEXT_BYTES = 2**30  # CUDA context and allocator slack of one process
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class TrainJob:
    config: Config
    data_root: Path
    run_dir: Path
    resume: bool = False


def run_trainings(jobs: list[TrainJob], concurrency: int | None, progress: bool) -> list[dict]:
    """Each job's final record (as ``TrainResult.final``), in the order of ``jobs``."""
    if concurrency is None or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # under torchrun the ranks of one training share the GPUs: runs go one by one
        concurrency = default_concurrency(jobs)
    if concurrency <= 1 or len(jobs) <= 1:
        return [_train_here(job, progress) for job in jobs]
    log.info("training %d runs, %d at a time (one process each)", len(jobs), concurrency)
    with tempfile.TemporaryDirectory(prefix="hamnet-jobs-") as scratch:
        return _run_children(jobs, min(concurrency, len(jobs)), Path(scratch))


def _train_here(job: TrainJob, progress: bool) -> dict:
    from hamnet.train.trainer import train

    return train(job.config, job.data_root, job.run_dir, resume=job.resume, progress=progress).final


def default_concurrency(jobs: list[TrainJob]) -> int:
    """What fits: on a GPU by memory, on the CPU 1; 1 under torchrun."""
    if len(jobs) <= 1 or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return 1
    device = pick_device(jobs[0].config.train.device)
    if device.type != "cuda":
        return 1
    free, _ = torch.cuda.mem_get_info(device)
    per_run = max(estimate_run_bytes(job.config, job.data_root) for job in jobs)
    return int(max(1, min(len(jobs), MAX_GPU_JOBS, (free - GPU_RESERVE_BYTES) // per_run)))


def estimate_run_bytes(config: Config, data_root: Path) -> int:
    """GPU memory of one run: resident features, weights with gradients and Adam moments,
    the activations of a training batch, and a process's context."""
    from hamnet.data import resident
    from hamnet.data.layout import open_dataset

    annotations, store, _ = open_dataset(data_root, feature_dim=config.data.feature_dim)
    names = [
        v.name
        for subset in (config.data.train_subset, config.data.test_subset)
        for v in annotations.subset(subset)
        if v.name in store
    ]
    dtype = resident.resident_dtype(store, config.data.resident_dtype)
    features = (
        resident.resident_bytes(store, names, dtype) if config.data.placement != "stream" else 0
    )
    dim = config.data.feature_dim
    hidden = config.model.hidden_dim or dim
    params = 3 * dim * hidden + 3 * hidden * hidden + 3 * dim * config.model.attention_dim
    # per snippet: the input, ~8 hidden-wide and ~6 attention-wide fp32 buffers kept for backward
    per_snippet = 4 * (dim + 8 * hidden + 6 * config.model.attention_dim)
    activations = config.train.batch_size * config.data.num_segments * per_snippet
    return int(features + 16 * params + activations + CONTEXT_BYTES)


def _run_children(jobs: list[TrainJob], concurrency: int, scratch: Path) -> list[dict]:
    waiting = list(enumerate(jobs))
    running: dict[int, subprocess.Popen] = {}
    failures: list[str] = []
    try:
        with stop_on_signals():
            while waiting or running:
                while waiting and len(running) < concurrency and not failures:
                    index, job = waiting.pop(0)
                    running[index] = _start_child(job, scratch / f"job{index}.yaml")
                for index, child in list(running.items()):
                    if child.poll() is not None:
                        del running[index]
                        if child.returncode != 0:
                            failures.append(_failure(jobs[index], child.returncode))
                if failures and not running:
                    break
                time.sleep(POLL_SECONDS)
    except TrainingInterrupted as stop:
        for child in running.values():
            child.send_signal(stop.signum)
        for child in running.values():
            child.wait()
        raise TrainingInterrupted(
            f"interrupted by {stop}: each run saved its last finished epoch; {RESUME_HINT}",
            stop.signum,
        ) from None
    if failures:
        raise HamnetError("; ".join(failures))
    return [final_record(job.run_dir) for job in jobs]


def _start_child(job: TrainJob, config_path: Path) -> subprocess.Popen:
    save_config(job.config, config_path)
    job.run_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "hamnet.experiments.concurrent",
        "--config",
        str(config_path),
        "--data",
        str(job.data_root),
        "--run-dir",
        str(job.run_dir),
    ]
    if job.resume:
        command.append("--resume")
    with open(job.run_dir / "train.log", "ab") as log_file:
        # its own session: a Ctrl-C reaches the parent only, which passes it on once
        return subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )


def _failure(job: TrainJob, status: int) -> str:
    lines = (job.run_dir / "train.log").read_text(errors="replace").strip().splitlines()
    last = lines[-1] if lines else "no output"
    return f"{job.run_dir}: training failed (exit status {status}): {last} (see train.log)"


def final_record(run_dir: Path) -> dict:
    """The last row of a finished run's metrics.jsonl (what ``train`` returns as final)."""
    path = run_dir / "metrics.jsonl"
    rows = [line for line in path.read_text().splitlines() if line.strip()]
    return parse_json(rows[-1], f"{path}: line {len(rows)}", DataError) if rows else {}


def _child_main(argv: list[str] | None = None) -> int:
    """One training, run by :func:`_run_children`; exit status as the ``hamnet`` command."""
    from hamnet.train.trainer import train

    parser = argparse.ArgumentParser(prog="python -m hamnet.experiments.concurrent")
    parser.add_argument("--config", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    try:
        config = load_config(args.config)
        train(config, Path(args.data), Path(args.run_dir), resume=args.resume, progress=False)
    except HamnetError as error:
        print(f"hamnet: error: {error}", file=sys.stderr)
        return 2
    except TrainingInterrupted as stop:
        print(f"hamnet: {stop}", file=sys.stderr)
        return stop.exit_status
    print("hamnet: training finished", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
