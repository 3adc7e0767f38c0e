"""The training loop: plain PyTorch, one path with or without torchrun, exact resume.

A run folder holds ``config.yaml`` (resolved), ``metrics.jsonl`` / ``metrics.csv`` (one
row per epoch), ``last.pt`` (after every epoch) and ``best.pt`` (highest average mAP of
the evaluations made). Every epoch's sampling and shuffling is keyed by (seed, epoch)
and the torch RNG state is checkpointed, so ``resume=True`` continues exactly.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from hamnet.config import Config, config_from_dict, save_config
from hamnet.data.dataset import VideoDataset, collate_videos
from hamnet.data.layout import open_dataset
from hamnet.engine import distributed as dist_utils
from hamnet.engine.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from hamnet.engine.inference import autocast, evaluate_model
from hamnet.engine.settings import inference_settings
from hamnet.errors import CheckpointError
from hamnet.io import atomic_write_text
from hamnet.methods import make_method
from hamnet.methods.base import Method
from hamnet.weights import load_weights_strict

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
    method: Method
    records: list[dict] = field(default_factory=list)
    start_epoch: int = 0
    best: float = float("-inf")

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
    """Train ``config.method`` on ``data_root`` (a dataset root, see hamnet.data.layout)."""
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
        for epoch in range(session.start_epoch, config.train.epochs):
            _run_epoch(session, epoch, progress)
        best = session.best if session.best > float("-inf") else None
        final = session.records[-1] if session.records else {}
        return TrainResult(session.run_dir, config.train.epochs, final, best)
    finally:
        dist_utils.shutdown(info)


def _open_session(
    config: Config, data_root: Path, run_dir: Path, device: torch.device, info
) -> Session:
    annotations, store, _ = open_dataset(
        data_root,
        allow_pickle=config.data.allow_pickle,
        feature_dim=config.data.feature_dim,
        name=config.data.name,
        snippet_seconds=config.data.snippet_seconds,
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
    method = make_method(config)
    model = method.build_network(annotations.num_classes).to(device)
    optimizer = make_optimizer(model, config.train.lr, config.train.weight_decay)
    if info.enabled:
        ids = [device.index] if device.type == "cuda" else None
        model = DistributedDataParallel(model, device_ids=ids)
    run_dir.mkdir(parents=True, exist_ok=True)
    return Session(
        config, run_dir, annotations, store, train_set, model, optimizer, device, info, method
    )


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
    load_weights_strict(session.net, record["model"], str(path))
    session.optimizer.load_state_dict(record["optimizer"])
    restore_rng(record["rng"])
    session.start_epoch = int(record["epoch"])
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
    a, b = saved.to_dict(), current.to_dict()
    a["train"].pop("epochs"), b["train"].pop("epochs")
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
    session.train_set.set_epoch(epoch)
    session.model.train()
    batches = global_batches(
        len(session.train_set), config.train.batch_size, config.train.seed, epoch
    )
    totals: dict[str, float] = {}
    bar = tqdm(
        zip(batches, _loader(session, batches), strict=True),
        total=len(batches),
        desc=f"epoch {epoch + 1}/{config.train.epochs}",
        unit="batch",
        disable=not (progress and info.is_main),
        leave=False,
    )
    for batch_indices, batch in bar:
        terms = _train_step(session, batch, len(batch_indices))
        for key, value in terms.items():
            totals[key] = totals.get(key, 0.0) + value / len(batches)
        bar.set_postfix({k: f"{v:.3f}" for k, v in terms.items()})
    return {f"loss_{k}": round(dist_utils.all_reduce_mean(v, info), 6) for k, v in totals.items()}


def _loader(session: Session, batches: list[list[int]]) -> DataLoader:
    """This rank's shares of the global batches, read by ``train.num_workers`` processes."""
    shares = [dist_utils.shard(indices, session.dist) for indices in batches]
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


def _train_step(session: Session, batch, global_size: int) -> dict[str, float]:
    """One optimizer step on this rank's share (``batch``) of a global batch."""
    device = session.device
    features, labels = batch.features.to(device), batch.labels.to(device)
    terms = loss_terms(session, features, labels, batch.mask.to(device))
    # DDP averages gradients over ranks; weight by this rank's share of the global batch
    # so that uneven shards still give the gradient of the global mean.
    share = len(batch.names) * session.dist.world_size / global_size
    session.optimizer.zero_grad(set_to_none=True)
    (terms["total"] * share).backward()
    session.optimizer.step()
    return {key: float(value.detach()) for key, value in terms.items()}


def loss_terms(session: Session, features, labels, mask) -> dict[str, torch.Tensor]:
    """The method's loss terms (and ``total``) of one batch of device tensors."""
    with autocast(session.device, session.config.train.precision):
        outputs = session.method.forward(session.model, features, mask)
    return session.method.losses(outputs, labels, mask)


def _evaluate(session: Session) -> dict:
    config = session.config
    evaluation = evaluate_model(
        session.net,
        session.annotations,
        session.store,
        subset=config.data.test_subset,
        device=session.device,
        settings=inference_settings(config),
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
    _write_metrics(session.run_dir, session.records)
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
    if "average_mAP" in record and record["average_mAP"] > session.best:
        session.best = payload["best"] = record["average_mAP"]
        save_checkpoint(session.run_dir / "best.pt", payload)
    save_checkpoint(session.run_dir / "last.pt", payload)


def _write_metrics(run_dir: Path, records: list[dict]) -> None:
    atomic_write_text(run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    columns = list(dict.fromkeys(k for r in records for k in r if not isinstance(r[k], list)))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(records)
    atomic_write_text(run_dir / "metrics.csv", buffer.getvalue())
