"""The training loop: plain PyTorch, one path with or without torchrun, exact resume.

A run folder holds ``config.yaml`` (resolved), ``metrics.jsonl`` / ``metrics.csv`` (one
row per epoch; rewritten with each checkpoint and evaluation, on an interrupt, and
otherwise at most every few seconds), ``last.pt`` (every ``train.checkpoint_every``
epochs, at the end, and when SIGINT/SIGTERM stops the run), ``best.pt`` (highest average
mAP of the evaluations made) and ``timing.json`` (wall time, checkpoint-writing time,
data placement, peak GPU memory). Every epoch's sampling and shuffling is keyed by (seed,
epoch) and the torch RNG state is checkpointed, so ``resume=True`` continues exactly.

Features come from the store batch by batch (``stream``) or from device tensors
(``device``, :mod:`hamnet.data.resident`); both give the same batches. Loss values stay on
the device during an epoch and are read once at its end (:func:`read_losses`).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from hamnet.config import Config, config_from_dict, save_config
from hamnet.data import resident as resident_data
from hamnet.data.dataset import VideoDataset, collate_videos
from hamnet.data.layout import open_dataset
from hamnet.engine import distributed as dist_utils
from hamnet.engine.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from hamnet.engine.inference import autocast, evaluate_model, localize_kwargs
from hamnet.engine.interrupt import stop_on_signals
from hamnet.engine.model_io import build_model, localization_source
from hamnet.errors import CheckpointError, TrainingInterrupted
from hamnet.io import atomic_path, atomic_write_json, atomic_write_text
from hamnet.model.losses import hamnet_losses

log = logging.getLogger(__name__)


@dataclass
class Session:
    """Everything one training run holds while it runs."""

    config: Config
    run_dir: Path
    annotations: object
    store: object
    train_set: VideoDataset
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    dist: dist_utils.DistInfo
    records: list[dict] = field(default_factory=list)
    start_epoch: int = 0
    best: float = float("-inf")
    placement: str = "stream"
    resident: resident_data.ResidentTrainSet | None = None  # placement "device"
    test_features: resident_data.ResidentFeatures | None = None
    started: float = field(default_factory=time.perf_counter)
    checkpoint_seconds: float = 0.0
    checkpoint_writes: int = 0
    saved_epoch: int = 0  # the epoch last.pt holds
    snapshot: dict | None = None  # the last finished epoch's state when last.pt is older
    metrics_written: float = float("-inf")  # when metrics.jsonl/.csv were last written
    loop_started: float | None = None  # when the first epoch of this process began

    @property
    def net(self) -> torch.nn.Module:
        """The bare network (DDP unwrapped)."""
        return getattr(self.model, "module", self.model)


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
    """Train HAM-Net on ``data_root`` (a dataset root in the released layout)."""
    device = dist_utils.pick_device(config.train.device)
    info = dist_utils.init_distributed(device)
    device = dist_utils.pick_device(config.train.device, info)
    try:
        session = _open_session(config, Path(data_root), Path(run_dir), device, info)
        if resume:
            _resume(session)
        else:
            _refuse_overwrite(session.run_dir)
            if info.is_main:
                save_config(config, session.run_dir / "config.yaml")
        with stop_on_signals():
            try:
                session.loop_started = time.perf_counter()
                for epoch in range(session.start_epoch, config.train.epochs):
                    _run_epoch(session, epoch, progress)
            except TrainingInterrupted as stop:
                raise _save_interrupted(session, stop) from None
        _write_timing(session)
        best = session.best if session.best > float("-inf") else None
        final = session.records[-1] if session.records else {}
        return TrainResult(session.run_dir, config.train.epochs, final, best)
    finally:
        dist_utils.shutdown(info)


def _open_session(
    config: Config, data_root: Path, run_dir: Path, device: torch.device, info
) -> Session:
    annotations, store, _ = open_dataset(
        data_root, allow_pickle=config.data.allow_pickle, feature_dim=config.data.feature_dim
    )
    train_set = VideoDataset(
        annotations,
        store,
        config.data.train_subset,
        num_segments=config.data.num_segments,
        sampling=config.data.sampling,
        seed=config.train.seed,
    )
    torch.manual_seed(config.train.seed)
    model = build_model(config, annotations.num_classes).to(device)
    optimizer = make_optimizer(model, config.train.lr, config.train.weight_decay)
    if info.enabled:
        ids = [device.index] if device.type == "cuda" else None
        model = DistributedDataParallel(model, device_ids=ids)
    run_dir.mkdir(parents=True, exist_ok=True)
    session = Session(
        config, run_dir, annotations, store, train_set, model, optimizer, device, info
    )
    _place_features(session)
    return session


def _place_features(session: Session) -> None:
    """Load the training and test features onto the device when the placement says so."""
    config, store = session.config, session.store
    test_names = [v.name for v in session.annotations.subset(config.data.test_subset) if v.labels]
    names = [v.name for v in session.train_set.videos] + test_names
    plan = resident_data.plan_placement(
        config.data.placement, config.data.resident_dtype, store, names, session.device
    )
    if session.dist.is_main:
        log.info(plan.message)
    session.placement = plan.mode
    if plan.mode == "device":
        features = resident_data.ResidentFeatures(store, names, session.device, plan.dtype)
        session.resident = resident_data.ResidentTrainSet(session.train_set, features)
        session.test_features = features


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.Adam:
    """Adam; the fused kernel where this torch has it (3-5x faster steps on the CPU)."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError):  # torch < 2.4 has no fused Adam on the CPU
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)


def _resume(session: Session) -> None:
    path = session.run_dir / "last.pt"
    if not path.is_file():
        raise CheckpointError(f"{path}: nothing to resume (no checkpoint in the run folder)")
    record = load_checkpoint(path)
    if not _same_run(config_from_dict(record["config"]), session.config):
        raise CheckpointError(
            f"{path}: was trained with another config (only train.epochs may change on "
            "resume); resume with the run's config.yaml"
        )
    session.net.load_state_dict(record["model"])
    session.optimizer.load_state_dict(record["optimizer"])
    restore_rng(record["rng"])
    session.start_epoch = session.saved_epoch = int(record["epoch"])
    session.best = float(record.get("best", float("-inf")))
    session.records = _read_records(session.run_dir / "metrics.jsonl", session.start_epoch)
    log.info("resumed %s after epoch %d", session.run_dir, session.start_epoch)


def _refuse_overwrite(run_dir: Path) -> None:
    """A finished or interrupted run is the user's work: never train over it silently."""
    if (run_dir / "last.pt").exists():
        raise CheckpointError(
            f"{run_dir}: already holds a run (last.pt); pass --resume to continue it, "
            "or choose another --run-dir"
        )


def _same_run(saved: Config, current: Config) -> bool:
    """Equal configs, up to what changes no trained number: the schedule's length, the
    checkpoint cadence and where the features are held."""
    a, b = saved.to_dict(), current.to_dict()
    for tree in (a, b):
        tree["train"].pop("epochs"), tree["train"].pop("checkpoint_every")
        tree["data"].pop("placement")
    return a == b


def _read_records(path: Path, epochs: int) -> list[dict]:
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [row for row in rows if row["epoch"] <= epochs]


def _run_epoch(session: Session, epoch: int, progress: bool) -> None:
    started = time.perf_counter()
    losses = _train_epoch(session, epoch, progress)
    record = {"epoch": epoch + 1, **losses, "seconds": round(time.perf_counter() - started, 3)}
    if _should_evaluate(session.config, epoch) and session.dist.is_main:
        record.update(_evaluate(session))
    record = dist_utils.broadcast_object(record, session.dist)
    if session.dist.is_main:
        _write_epoch(session, epoch + 1, record)
    else:
        session.records.append(record)
    dist_utils.barrier(session.dist)


def _should_evaluate(config: Config, epoch: int) -> bool:
    every = config.train.eval_every
    last = epoch + 1 == config.train.epochs
    return last or (every > 0 and (epoch + 1) % every == 0)


def global_batches(num_videos: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The shuffled global batches of one epoch, the same on every rank."""
    order = np.random.default_rng([seed, epoch, 7]).permutation(num_videos).tolist()
    return [order[i : i + batch_size] for i in range(0, num_videos, batch_size)]


def _train_epoch(session: Session, epoch: int, progress: bool) -> dict[str, float]:
    config, info = session.config, session.dist
    session.model.train()
    batches = global_batches(
        len(session.train_set), config.train.batch_size, config.train.seed, epoch
    )
    shares = [dist_utils.shard(indices, info) for indices in batches]
    bar = tqdm(
        zip(batches, shares, _epoch_batches(session, epoch, shares), strict=True),
        total=len(batches),
        desc=f"epoch {epoch + 1}/{config.train.epochs}",
        unit="batch",
        disable=not (progress and info.is_main),
        leave=False,
    )
    totals = None
    for indices, share, batch in bar:
        terms = _train_step(session, batch, len(share), len(indices))
        totals = accumulate_losses(totals, terms, len(batches))
    losses = read_losses(totals)
    return {f"loss_{k}": round(dist_utils.all_reduce_mean(v, info), 6) for k, v in losses.items()}


def accumulate_losses(totals, terms: dict[str, torch.Tensor], num_batches: int):
    """Running epoch means of the loss terms, kept on the device (no host sync per step).

    float64, divided per step as the per-step float reads once were: the epoch means
    are the same numbers to the last bit.
    """
    values = torch.stack([value.detach().float() for value in terms.values()]).double()
    step = values / num_batches
    if totals is None:
        return list(terms), step
    names, running = totals
    return names, running + step


def read_losses(totals) -> dict[str, float]:
    """The one place where loss values come to the host (once per epoch): checks and
    logging of losses belong here."""
    if totals is None:
        return {}
    names, running = totals
    return dict(zip(names, running.tolist(), strict=True))


def _epoch_batches(session: Session, epoch: int, shares: list[list[int]]) -> Iterator:
    """This rank's batches of the epoch, on the device: ``features``, ``labels``, ``mask``."""
    if session.resident is not None:
        return session.resident.epoch_batches(epoch, shares)
    session.train_set.set_epoch(epoch)
    non_blocking = session.device.type == "cuda"
    return (batch.to(session.device, non_blocking) for batch in _loader(session, shares))


def _loader(session: Session, shares: list[list[int]]) -> DataLoader:
    """This rank's shares of the global batches, read by ``train.num_workers`` processes."""
    return DataLoader(
        session.train_set,
        batch_sampler=shares,
        collate_fn=collate_videos,
        num_workers=session.config.train.num_workers,
        pin_memory=session.device.type == "cuda",
        # its own generator: creating the iterator draws a seed, which must not advance
        # the global RNG that dropout uses (results then do not depend on the loader)
        generator=torch.Generator().manual_seed(session.config.train.seed),
    )


def loss_terms(
    session: Session, features: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Forward pass and loss terms of one batch of device tensors (``"total"`` included).

    Every training item has exactly ``data.num_segments`` rows, so the network needs no
    mask (an all-true one is the same computation, plus a host sync to find that out).
    """
    with autocast(session.device, session.config.train.precision):
        cas, attention = session.model(features)
    # LossConfig holds exactly the keyword arguments of hamnet_losses
    return hamnet_losses(cas, attention, labels, mask, **dataclasses.asdict(session.config.loss))


def _train_step(session: Session, batch, share_size: int, global_size: int) -> dict:
    """One optimizer step on this rank's share (``batch``) of a global batch."""
    terms = loss_terms(session, batch.features, batch.labels, batch.mask)
    # DDP averages gradients over ranks; weight by this rank's share of the global batch
    # so that uneven shards still give the gradient of the global mean.
    share = share_size * session.dist.world_size / global_size
    session.optimizer.zero_grad(set_to_none=True)
    (terms["total"] * share).backward()
    session.optimizer.step()
    return {key: value.detach() for key, value in terms.items()}


def _evaluate(session: Session) -> dict:
    config = session.config
    evaluation = evaluate_model(
        session.net,
        session.annotations,
        session.store,
        subset=config.data.test_subset,
        device=session.device,
        precision=config.train.precision,
        source=localization_source(config),
        topk_ratio_inv=config.loss.topk_ratio_inv,
        localize=localize_kwargs(config),
        tiou=config.eval.tiou,
        protocol=config.eval.protocol,
        resident=session.test_features,
    )
    result = evaluation.result
    return {
        "protocol": result.protocol,
        "average_mAP": result.average_mAP,
        "mAP": result.mAP,
        "tiou": result.tiou,
        "classification_mAP": evaluation.classification_map,
        "localization_source": evaluation.source,
    }


def _write_epoch(session: Session, epoch: int, record: dict) -> None:
    session.records.append(record)
    due = _checkpoint_due(session, epoch)
    if due or "average_mAP" in record or _metrics_stale(session):
        _write_metrics(session.run_dir, session.records)
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
    improved = "average_mAP" in record and record["average_mAP"] > session.best
    if improved:
        session.best = payload["best"] = record["average_mAP"]
    if due:
        _save_last(session, payload)
        if improved:
            _link_or_copy(session.run_dir / "last.pt", session.run_dir / "best.pt")
    else:
        # kept on the device: what SIGINT/SIGTERM would save (a device copy is cheap)
        session.snapshot = _cloned(payload)
        if improved:
            _timed_save(session, session.run_dir / "best.pt", payload)


def _checkpoint_due(session: Session, epoch: int) -> bool:
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
        per_write = _state_bytes(session) / WRITE_BYTES_PER_SECOND
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


def _state_bytes(session: Session) -> int:
    # model + Adam's two moments
    return 3 * sum(p.numel() * p.element_size() for p in session.net.parameters())


def _save_last(session: Session, payload: dict) -> None:
    _timed_save(session, session.run_dir / "last.pt", payload)
    session.saved_epoch = payload["epoch"]
    session.snapshot = None


def _timed_save(session: Session, path: Path, payload: dict) -> None:
    started = time.perf_counter()
    save_checkpoint(path, payload)
    session.checkpoint_seconds += time.perf_counter() - started
    session.checkpoint_writes += 1


def _link_or_copy(source: Path, target: Path) -> None:
    """``target`` with the content of ``source``, atomically: a hard link where the file
    system has them (last.pt is later replaced by rename, so the link keeps this content)."""
    with atomic_path(target) as tmp:
        tmp.unlink(missing_ok=True)
        try:
            os.link(source, tmp)
        except OSError:
            tmp.write_bytes(source.read_bytes())


def _cloned(value):
    """A deep copy of the tensors in ``value`` (dicts, lists), on their devices."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {key: _cloned(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cloned(item) for item in value)
    return value


def _save_interrupted(session: Session, stop: TrainingInterrupted) -> TrainingInterrupted:
    """Write the last finished epoch to last.pt (if newer than it); the error to raise."""
    signal_name = str(stop)
    if session.dist.is_main and session.records:
        _write_metrics(session.run_dir, session.records)
    if session.dist.is_main and session.snapshot is not None:
        _save_last(session, session.snapshot)
    if session.saved_epoch:
        what = f"last.pt holds epoch {session.saved_epoch}; continue with --resume"
    else:
        what = "no epoch had finished, nothing saved"
    return TrainingInterrupted(
        f"interrupted by {signal_name} ({session.run_dir}): {what}", stop.signum
    )


def _write_timing(session: Session) -> None:
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


def _write_metrics(run_dir: Path, records: list[dict]) -> None:
    atomic_write_text(run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    columns = list(dict.fromkeys(k for r in records for k in r if not isinstance(r[k], list)))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(records)
    atomic_write_text(run_dir / "metrics.csv", buffer.getvalue())
