"""The training loop: plain PyTorch, one path with or without torchrun, exact resume.

A run folder holds ``config.yaml`` (resolved), ``run.json`` (provenance), ``metrics.jsonl``
/ ``metrics.csv`` (one row per epoch; rewritten with each checkpoint and evaluation, on an
interrupt, and otherwise at most every few seconds), ``last.pt`` (every
``train.checkpoint_every`` epochs, at the end, and when SIGINT/SIGTERM stops the run;
written before that epoch's evaluation), with ``train.select_on`` heldout or test
``best.pt`` (see :mod:`hamnet.train.selection`), and ``timing.json`` (wall time,
checkpoint-writing time, data placement, peak GPU memory). Every epoch's sampling and
shuffling is keyed by (seed, epoch) and the torch RNG state is checkpointed, so
``resume=True`` continues exactly. One process at a time trains in a run folder
(:mod:`hamnet.train.run_safety`).

Features come from the store batch by batch (``stream``) or from device tensors
(``device``, :mod:`hamnet.data.resident`); both give the same batches. Loss values stay on
the device during an epoch and are read once at its end
(:func:`hamnet.train.step.read_losses`, which also stops at a non-finite loss).
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from hamnet import argcheck
from hamnet.config import Config, checked_config, save_config
from hamnet.devices import cpu_threads
from hamnet.errors import CheckpointError, TrainingError, TrainingInterrupted
from hamnet.provenance import data_record, file_fingerprint
from hamnet.train import checkpointing, evaluation, preflight, run_safety, runinfo, selection
from hamnet.train import distributed as dist_utils
from hamnet.train.hooks import HookBase, default_hooks
from hamnet.train.interrupt import stop_on_signals
from hamnet.train.resume import resume as resume_session
from hamnet.train.resume import written_config_sha
from hamnet.train.session import Session, open_session
from hamnet.train.step import train_epoch
from hamnet.train.tensorboard import TrainingLog, open_training_log

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_dir: Path
    epochs: int
    final: dict
    best_average_mAP: float | None


def train(
    config: Config,
    data_root: str | Path,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train ``config.method`` on ``data_root`` (a dataset root, see hamnet.data.layout)."""
    config = _checked_arguments(config, data_root, run_dir, resume, progress)
    device = dist_utils.pick_device(config.train.device)
    info = dist_utils.init_distributed(device)
    device = dist_utils.pick_device(config.train.device, info)
    run_dir = Path(run_dir)
    try:
        with _run_folder(run_dir, info), cpu_threads(config.train.cpu_threads):
            return _train_locked(config, Path(data_root), run_dir, device, info, resume, progress)
    finally:
        dist_utils.shutdown(info)


def _checked_arguments(config, data_root, run_dir, resume, progress) -> Config:
    """The Python API's arguments: the config validated again (a field set after it was
    built, e.g. ``config.train.epochs = -1``), paths and flags of the right types."""
    argcheck.check_path(data_root, "data_root")
    argcheck.check_path(run_dir, "run_dir")
    argcheck.check_bool(resume, "resume")
    argcheck.check_bool(progress, "progress")
    return checked_config(config)


def _open_tensorboard(session: Session) -> TrainingLog:
    steps = -(-len(session.train_set) // session.config.train.batch_size)
    return open_training_log(
        session.config.train.tensorboard,
        session.run_dir,
        is_main=session.dist.is_main,
        steps_per_epoch=steps,
        start_epoch=session.start_epoch,
    )


def _run_folder(run_dir: Path, info):
    """The run folder's lock on the writing rank; other ranks only read."""
    if not info.is_main:
        return contextlib.nullcontext()
    return run_safety.run_lock(run_dir)


def _train_locked(config, data_root, run_dir, device, info, resume, progress) -> TrainResult:
    if resume and not (run_dir / "last.pt").is_file():
        raise CheckpointError(
            f"{run_dir / 'last.pt'}: nothing to resume (no checkpoint in the run folder)"
        )
    if info.is_main:
        run_safety.remove_stale_temporaries(run_dir)
    session = open_session(config, data_root, run_dir, device, info)
    saved = runinfo.read_run_info(run_dir) if resume else None
    data = data_record(data_root)
    run_safety.refuse_overwrite(session.run_dir, data_root, resume)
    if resume:
        runinfo.check_same_data(run_dir, saved, data)
        resume_session(session, written_config_sha(saved))
    preflight.check_before_training(
        session.config, session.annotations, session.store, check_features=info.is_main
    )
    record = runinfo.RunInfo(run_dir, data, device, saved)
    if info.is_main:
        save_config(config, session.run_dir / "config.yaml")
        # what this session wrote: a later resume tells an edit of the file from it
        written = file_fingerprint(session.run_dir / "config.yaml")["sha256"]
        record.session["config_sha256"] = written
        record.start(session.start_epoch, selection.describe(config, session.heldout))
    session.tensorboard = _open_tensorboard(session)
    hooks = default_hooks()
    try:
        _run_epochs(session, hooks, progress)
        evaluation.complete_final_evaluation(session)
        final = evaluation.final_result(session)
        checkpointing.write_timing(session)
    except BaseException as error:
        if info.is_main:
            _record_failure(record, error, _epochs_done(session))
        raise
    finally:
        session.tensorboard.close()
    if info.is_main:
        record.finish("finished", _epochs_done(session), {"result": _plain(final)})
    best = session.best if session.best > float("-inf") else None
    return TrainResult(session.run_dir, session.config.train.epochs, final, best)


def _run_epochs(session: Session, hooks: list[HookBase], progress: bool) -> None:
    """The remaining epochs; SIGINT/SIGTERM or a non-finite loss: the hooks save what the
    run has, then the error goes on."""
    with stop_on_signals():
        try:
            session.loop_started = time.perf_counter()
            for epoch in range(session.start_epoch, session.config.train.epochs):
                _run_epoch(session, hooks, epoch, progress)
        except TrainingInterrupted as stop:
            for hook in hooks:
                stop = hook.on_interrupt(session, stop)
            raise stop from None
        except TrainingError:
            for hook in hooks:
                hook.on_failure(session)
            raise


def _run_epoch(session: Session, hooks: list[HookBase], epoch: int, progress: bool) -> None:
    """One epoch of steps, then the hooks: on the writing rank before the record is
    shared (they may add to it), then on every rank after."""
    started = time.perf_counter()
    losses = train_epoch(session, epoch, progress)
    record = {"epoch": epoch + 1, **losses, "seconds": round(time.perf_counter() - started, 3)}
    if session.dist.is_main:
        for hook in hooks:
            record = hook.after_epoch(session, epoch + 1, record)
    record = dist_utils.broadcast_object(record, session.dist)
    if session.dist.is_main:
        for hook in hooks:
            hook.after_shared(session, epoch + 1, record)
    else:
        session.records.append(record)
    dist_utils.barrier(session.dist)


def _record_failure(record: runinfo.RunInfo, error: BaseException, epochs: int) -> None:
    """Say in run.json how the session ended, without hiding the error itself."""
    if isinstance(error, KeyboardInterrupt):
        status = "interrupted"
    else:
        status = f"failed: {type(error).__name__}: {error}"
    try:
        record.finish(status, epochs)
    except OSError as problem:  # e.g. the disk that made training fail is still full
        log.warning("%s: could not record the failure (%s)", record.path, problem)


def _epochs_done(session: Session) -> int:
    return int(session.records[-1]["epoch"]) if session.records else session.start_epoch


def _plain(record: dict) -> dict:
    return {k: v for k, v in record.items() if isinstance(v, (int, float, str, list))}
