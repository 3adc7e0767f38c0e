"""Writing a run's state: last.pt on an adaptive or fixed cadence, best.pt on a better
selection value, the metrics files, the save on SIGINT/SIGTERM, timing.json.

Between writes of last.pt the last finished epoch is kept as a device copy
(``Session.snapshot``), which an interrupt or a non-finite loss saves."""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from pathlib import Path

import torch

from hamnet.errors import TrainingInterrupted
from hamnet.io import atomic_write_json, atomic_write_text
from hamnet.train import selection
from hamnet.train.session import Session
from hamnet.weights.checkpoint import capture_rng, save_checkpoint

log = logging.getLogger(__name__)


def write_epoch(session: Session, epoch: int, record: dict, replace_last: bool = False) -> None:
    """Record a finished epoch (``replace_last``: its row again, now with evaluations).

    last.pt is written on the cadence of :func:`checkpoint_due`; between writes the
    epoch's state is kept as a device copy, which SIGINT/SIGTERM save.
    """
    if replace_last:
        session.records[-1] = record
    else:
        session.records.append(record)
    due = not replace_last and checkpoint_due(session, epoch)
    if due or replace_last or _metrics_stale(session):
        write_metrics(session.run_dir, session.records)
        session.metrics_written = time.perf_counter()
    payload = {
        "model": session.net.state_dict(),
        "optimizer": session.optimizer.state_dict(),
        "rng": capture_rng(),
        "config": session.config.to_dict(),
        "classes": list(session.annotations.classes),
        "epoch": epoch,
        "best": session.best,
        "metrics": {k: v for k, v in record.items() if isinstance(v, (int, float, str))},
    }
    key = selection.selection_key(session.config.train.select_on)
    improved = key is not None and key in record and record[key] > session.best
    if improved:
        session.best = payload["best"] = record[key]
        described = selection.describe(session.config, session.heldout)
        chosen = {**described, "metric": key, "value": record[key], "epoch": epoch}
        _timed_save(session, session.run_dir / "best.pt", {**payload, "selection": chosen})
    if due or (replace_last and improved and session.saved_epoch == epoch):
        save_last(session, payload)  # again after an evaluation only to carry the new best
    elif not replace_last:
        session.snapshot = _cloned(payload)
    elif session.snapshot is not None and session.snapshot["epoch"] == epoch:
        session.snapshot.update(best=payload["best"], metrics=payload["metrics"])


def write_metrics(run_dir: Path, records: list[dict]) -> None:
    atomic_write_text(run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    columns = list(dict.fromkeys(k for r in records for k in r if not isinstance(r[k], list)))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(records)
    atomic_write_text(run_dir / "metrics.csv", buffer.getvalue())


def checkpoint_due(session: Session, epoch: int) -> bool:
    """Whether last.pt is written after ``epoch`` (1-based) finished."""
    config = session.config.train
    if epoch == config.epochs:
        return True
    if config.checkpoint_every > 0:
        return epoch % config.checkpoint_every == 0
    # adaptive: as often as keeps the writing under 5 % of the run's projected wall time,
    # leaving room for the write at the end
    per_write = session.checkpoint_seconds / max(session.checkpoint_writes, 1)
    if session.checkpoint_writes == 0:
        per_write = state_bytes(session) / WRITE_BYTES_PER_SECOND
    return session.checkpoint_seconds + 2 * per_write <= CHECKPOINT_SHARE * _projected_wall(
        session, epoch
    )


def _projected_wall(session: Session, epoch: int) -> float:
    """The run's whole wall time, projected after ``epoch`` finished: start-up plus the
    epochs at the rate so far."""
    now = time.perf_counter()
    loop_started = session.loop_started if session.loop_started is not None else now
    done = epoch - session.start_epoch
    remaining = session.config.train.epochs - session.start_epoch
    return (loop_started - session.started) + (now - loop_started) * remaining / done


CHECKPOINT_SHARE = 0.05


METRICS_EVERY_S = 5.0  # metrics files between checkpoints: two fsyncs, not every epoch


def _metrics_stale(session: Session) -> bool:
    return time.perf_counter() - session.metrics_written >= METRICS_EVERY_S


WRITE_BYTES_PER_SECOND = 0.3e9  # a first guess at serialising + writing, before measuring


def state_bytes(session: Session) -> int:
    # model + Adam's two moments
    return 3 * sum(p.numel() * p.element_size() for p in session.net.parameters())


def save_last(session: Session, payload: dict) -> None:
    _timed_save(session, session.run_dir / "last.pt", payload)
    session.saved_epoch = payload["epoch"]
    session.snapshot = None


def _timed_save(session: Session, path: Path, payload: dict) -> None:
    started = time.perf_counter()
    save_checkpoint(path, payload)
    session.checkpoint_seconds += time.perf_counter() - started
    session.checkpoint_writes += 1


def _cloned(value):
    """A deep copy of the tensors in ``value`` (dicts, lists), on their devices."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {key: _cloned(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cloned(item) for item in value)
    return value


def save_interrupted(session: Session, stop: TrainingInterrupted) -> TrainingInterrupted:
    """Write the last finished epoch to last.pt (if newer than it); the error to raise."""
    signal_name = str(stop)
    if session.dist.is_main and session.records:
        write_metrics(session.run_dir, session.records)
    if session.dist.is_main and session.snapshot is not None:
        save_last(session, session.snapshot)
    if session.saved_epoch:
        what = f"last.pt holds epoch {session.saved_epoch}; continue with --resume"
    else:
        what = "no epoch had finished, nothing saved"
    return TrainingInterrupted(
        f"interrupted by {signal_name} ({session.run_dir}): {what}", stop.signum
    )


def write_timing(session: Session) -> None:
    """timing.json: where the run's wall time went (benchmarks read it)."""
    if not session.dist.is_main or session.start_epoch >= session.config.train.epochs:
        return  # not the main rank, or a finished run reopened: nothing was timed
    wall = time.perf_counter() - session.started
    timing = {
        "wall_s": round(wall, 3),
        "checkpoint_s": round(session.checkpoint_seconds, 3),
        "checkpoint_share": round(session.checkpoint_seconds / wall, 4) if wall else 0.0,
        "checkpoint_writes": session.checkpoint_writes,
        "placement": session.placement,
        "device": str(session.device),
        "epochs_run": session.config.train.epochs - session.start_epoch,
    }
    if session.device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(session.device)
        timing["peak_gpu_memory_GiB"] = round(peak / 2**30, 3)
    atomic_write_json(session.run_dir / "timing.json", timing, indent=1)
    peak = timing.get("peak_gpu_memory_GiB")
    log.info(
        "%s: %.1f s, of which %.1f s (%.1f %%) writing %d checkpoint(s); placement %s%s",
        session.run_dir,
        wall,
        session.checkpoint_seconds,
        100 * timing["checkpoint_share"],
        session.checkpoint_writes,
        session.placement,
        f"; peak GPU memory {peak:.2f} GiB" if peak is not None else "",
    )
