"""The training loop: plain PyTorch, one path with or without torchrun, exact resume.

A run folder holds ``config.yaml`` (resolved), ``run.json`` (provenance), ``metrics.jsonl``
/ ``metrics.csv`` (one row per epoch), ``last.pt`` (after every epoch, written before that
epoch's evaluation) and, with ``train.select_on`` heldout or test, ``best.pt`` (see
:mod:`hamnet.engine.selection`). Every epoch's sampling and shuffling is keyed by
(seed, epoch) and the torch RNG state is checkpointed, so ``resume=True`` continues
exactly. One process at a time trains in a run folder (:mod:`hamnet.engine.runlock`).
"""

from __future__ import annotations

import contextlib
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
from hamnet.engine import preflight, runinfo, runlock, selection
from hamnet.engine.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from hamnet.engine.inference import autocast, evaluate_model
from hamnet.engine.settings import inference_settings
from hamnet.errors import CheckpointError, DataError
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
    heldout: list[str] = field(default_factory=list)  # videos kept out for select_on=heldout

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
    run_dir = Path(run_dir)
    try:
        with _run_folder(run_dir, info):
            return _train_locked(config, Path(data_root), run_dir, device, info, resume, progress)
    finally:
        dist_utils.shutdown(info)


def _run_folder(run_dir: Path, info):
    """The run folder's lock on the writing rank; other ranks only read."""
    if not info.is_main:
        return contextlib.nullcontext()
    return runlock.run_lock(run_dir)


def _train_locked(config, data_root, run_dir, device, info, resume, progress) -> TrainResult:
    if resume and not (run_dir / "last.pt").is_file():
        raise CheckpointError(
            f"{run_dir / 'last.pt'}: nothing to resume (no checkpoint in the run folder)"
        )
    if info.is_main:
        runlock.remove_stale_temporaries(run_dir)
    session = _open_session(config, data_root, run_dir, device, info)
    saved = runinfo.read_run_info(run_dir) if resume else None
    data = runinfo.data_record(data_root)
    if resume:
        runinfo.check_same_data(run_dir, saved, data)
        _resume(session)
    else:
        _refuse_overwrite(session.run_dir)
    preflight.check_before_training(
        session.config, session.annotations, session.store, check_features=info.is_main
    )
    record = runinfo.RunInfo(run_dir, data, device, saved)
    if info.is_main:
        save_config(config, session.run_dir / "config.yaml")
        record.start(session.start_epoch, selection.describe(config, session.heldout))
    try:
        for epoch in range(session.start_epoch, config.train.epochs):
            _run_epoch(session, epoch, progress)
        _complete_final_evaluation(session)
        final = _final_result(session)
    except BaseException as error:
        if info.is_main:
            _record_failure(record, error, _epochs_done(session))
        raise
    if info.is_main:
        record.finish("finished", _epochs_done(session), {"result": _plain(final)})
    best = session.best if session.best > float("-inf") else None
    return TrainResult(session.run_dir, config.train.epochs, final, best)


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
    heldout: list[str] = []
    if config.train.select_on == "heldout":
        annotations, heldout = selection.split_heldout(
            annotations, config.data.train_subset, config.train.heldout_fraction
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
    session = Session(
        config, run_dir, annotations, store, train_set, model, optimizer, device, info, method
    )
    session.heldout = heldout
    return session


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
            f"{path}: was trained with another config (only train.epochs, num_workers, device "
            "and the eval / localize settings may change on resume); resume with the run's "
            "config.yaml"
        )
    classes = [str(c) for c in record["classes"]]
    if classes != list(session.annotations.classes):
        raise DataError(
            f"{path}: was trained on {len(classes)} classes, the data have "
            f"{session.annotations.num_classes} (or another class list); resume on the run's data"
        )
    load_weights_strict(session.net, record["model"], str(path))
    try:
        session.optimizer.load_state_dict(record["optimizer"])
    except (RuntimeError, ValueError, KeyError) as error:
        first = str(error).strip().splitlines()[0]
        raise CheckpointError(f"{path}: does not fit this network ({first})") from None
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


# settings that change neither the weights nor the training data: free to change on resume
RESUME_FREE = {"train": ("epochs", "num_workers", "device"), "data": ("test_subset",)}
RESUME_FREE_SECTIONS = ("eval", "localize")


def _same_run(saved: Config, current: Config) -> bool:
    a, b = saved.to_dict(), current.to_dict()
    for tree in (a, b):
        for section, keys in RESUME_FREE.items():
            for key in keys:
                tree[section].pop(key)
        for section in RESUME_FREE_SECTIONS:
            tree.pop(section)
    return a == b


def _read_records(path: Path, epochs: int) -> list[dict]:
    """The rows of epochs 1..``epochs``; a malformed row is an error, lost rows a warning."""
    if not path.is_file():
        if epochs:
            log.warning("%s: missing; the history of epochs 1-%d is lost", path, epochs)
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: not UTF-8 text (corrupt); move it away to resume") from None
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            epoch = int(row["epoch"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise CheckpointError(
                f"{path}: line {number} is not a metrics row (corrupt); fix or remove it to resume"
            ) from None
        if epoch <= epochs:
            rows.append(row)
    _warn_gaps(path, [int(row["epoch"]) for row in rows], epochs)
    return rows


def _warn_gaps(path: Path, found: list[int], epochs: int) -> None:
    lost = sorted(set(range(1, epochs + 1)) - set(found))
    if lost:
        shown = ", ".join(map(str, lost[:10])) + (" ..." if len(lost) > 10 else "")
        log.warning(
            "%s: rows of epoch(s) %s are missing (truncated?); their history is lost", path, shown
        )


def _run_epoch(session: Session, epoch: int, progress: bool) -> None:
    started = time.perf_counter()
    losses = _train_epoch(session, epoch, progress)
    record = {"epoch": epoch + 1, **losses, "seconds": round(time.perf_counter() - started, 3)}
    evaluate = _should_evaluate(session.config, epoch)
    if session.dist.is_main:
        # saved before evaluating: a failing or killed evaluation never loses the epoch
        _write_epoch(session, epoch + 1, record)
        if evaluate:
            record = {**record, **_evaluations(session, epoch + 1 == session.config.train.epochs)}
    record = dist_utils.broadcast_object(record, session.dist)
    if session.dist.is_main:
        if evaluate:
            _write_epoch(session, epoch + 1, record, replace_last=True)
    else:
        session.records.append(record)
    dist_utils.barrier(session.dist)


def _evaluations(session: Session, final: bool) -> dict:
    """Test metrics (the final epoch, or monitoring / select_on=test) and held-out ones."""
    found = {}
    select_on = session.config.train.select_on
    if select_on == "heldout":
        held = _evaluate(session, selection.heldout_subset(session.config.data.train_subset))
        found.update({f"heldout_{k}": v for k, v in held.items() if k in HELDOUT_KEYS})
    if final or select_on != "heldout":
        found.update(_evaluate(session))
    return found


HELDOUT_KEYS = ("average_mAP", "mAP", "classification_mAP")


def _complete_final_evaluation(session: Session) -> None:
    """Evaluate the last epoch when a kill or error came between saving and evaluating it."""
    last = session.records[-1] if session.records else None
    if not session.dist.is_main or last is None or "average_mAP" in last:
        return
    if int(last["epoch"]) != session.config.train.epochs:
        return
    log.info(
        "%s: evaluating epoch %d (its evaluation did not finish)", session.run_dir, last["epoch"]
    )
    record = {**last, **_evaluations(session, final=True)}
    _write_epoch(session, int(last["epoch"]), record, replace_last=True)


def _final_result(session: Session) -> dict:
    """The record of the model the run yields, saying how it was chosen."""
    config = session.config
    select_on = config.train.select_on
    last = dict(session.records[-1]) if session.records else {}
    note = {"selected_on": select_on, "selection": selection.NOTES[select_on]}
    key = selection.selection_key(select_on)
    best_path = session.run_dir / "best.pt"
    if key is None or not session.dist.is_main or not best_path.is_file():
        return {**last, **note, "model": "last.pt"}
    chosen = load_checkpoint(best_path)
    epoch = int(chosen["epoch"])
    note.update(model="best.pt", selection_epoch=epoch, selection_value=chosen.get("best"))
    if select_on == "test":
        row = next((r for r in session.records if r["epoch"] == epoch), last)
        return {**row, **note}
    if epoch == last.get("epoch"):
        return {**last, **note}
    # held-out selection: the reported test number is the selected checkpoint's
    current = {k: v.clone() for k, v in session.net.state_dict().items()}
    session.net.load_state_dict(chosen["model"])
    try:
        tested = _evaluate(session)
    finally:
        session.net.load_state_dict(current)
    return {**last, **tested, **note, "epoch": epoch}


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
        preflight.check_finite_loss(terms["total"], epoch + 1, list(batch.names))
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


def _evaluate(session: Session, subset: str | None = None) -> dict:
    config = session.config
    evaluation = evaluate_model(
        session.net,
        session.annotations,
        session.store,
        subset=subset or config.data.test_subset,
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


def _write_epoch(session: Session, epoch: int, record: dict, replace_last: bool = False) -> None:
    if replace_last:
        session.records[-1] = record
    else:
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
    key = selection.selection_key(session.config.train.select_on)
    if key is not None and key in record and record[key] > session.best:
        session.best = payload["best"] = record[key]
        described = selection.describe(session.config, session.heldout)
        chosen = {**described, "metric": key, "value": record[key], "epoch": epoch}
        save_checkpoint(session.run_dir / "best.pt", {**payload, "selection": chosen})
    save_checkpoint(session.run_dir / "last.pt", payload)


def _write_metrics(run_dir: Path, records: list[dict]) -> None:
    atomic_write_text(run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    columns = list(dict.fromkeys(k for r in records for k in r if not isinstance(r[k], list)))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(records)
    atomic_write_text(run_dir / "metrics.csv", buffer.getvalue())
