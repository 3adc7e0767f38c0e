"""The training loop: plain PyTorch, one path with or without torchrun, exact resume.

A run folder holds ``config.yaml`` (resolved), ``run.json`` (provenance), ``metrics.jsonl``
/ ``metrics.csv`` (one row per epoch; rewritten with each checkpoint and evaluation, on an
interrupt, and otherwise at most every few seconds), ``last.pt`` (every
``train.checkpoint_every`` epochs, at the end, and when SIGINT/SIGTERM stops the run;
written before that epoch's evaluation), with ``train.select_on`` heldout or test
``best.pt`` (see :mod:`hamnet.engine.selection`), and ``timing.json`` (wall time,
checkpoint-writing time, data placement, peak GPU memory). Every epoch's sampling and
shuffling is keyed by (seed, epoch) and the torch RNG state is checkpointed, so
``resume=True`` continues exactly. One process at a time trains in a run folder
(:mod:`hamnet.engine.runlock`).

Features come from the store batch by batch (``stream``) or from device tensors
(``device``, :mod:`hamnet.data.resident`); both give the same batches. Loss values stay on
the device during an epoch and are read once at its end (:func:`read_losses`, which also
stops at a non-finite loss).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import math
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
from hamnet.engine import preflight, runinfo, runlock, selection
from hamnet.engine.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from hamnet.engine.inference import autocast, evaluate_model
from hamnet.engine.interrupt import stop_on_signals
from hamnet.engine.settings import inference_settings
from hamnet.engine.tensorboard_log import TrainingLog, open_training_log
from hamnet.errors import CheckpointError, DataError, TrainingError, TrainingInterrupted
from hamnet.io import (
    atomic_write_json,
    atomic_write_text,
    input_files,
    parse_json,
    refuse_overwriting_inputs,
)
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
    tensorboard: TrainingLog = field(default_factory=TrainingLog)
    heldout: list[str] = field(default_factory=list)  # videos kept out for select_on=heldout
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


RUN_OUTPUTS = ("config.yaml", "last.pt", "best.pt", "metrics.jsonl", "metrics.csv", "run.json")


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
    written = [run_dir / name for name in RUN_OUTPUTS]
    refuse_overwriting_inputs(written, input_files(Path(data_root)))
    try:
        with _run_folder(run_dir, info):
            return _train_locked(config, Path(data_root), run_dir, device, info, resume, progress)
    finally:
        dist_utils.shutdown(info)


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
    session.tensorboard = _open_tensorboard(session)
    try:
        _run_epochs(session, progress)
        _complete_final_evaluation(session)
        final = _final_result(session)
        _write_timing(session)
    except BaseException as error:
        if info.is_main:
            _record_failure(record, error, _epochs_done(session))
        raise
    finally:
        session.tensorboard.close()
    if info.is_main:
        record.finish("finished", _epochs_done(session), {"result": _plain(final)})
    best = session.best if session.best > float("-inf") else None
    return TrainResult(session.run_dir, config.train.epochs, final, best)


def _run_epochs(session: Session, progress: bool) -> None:
    """The remaining epochs; SIGINT/SIGTERM save the last finished one and stop."""
    with stop_on_signals():
        try:
            session.loop_started = time.perf_counter()
            for epoch in range(session.start_epoch, session.config.train.epochs):
                _run_epoch(session, epoch, progress)
        except TrainingInterrupted as stop:
            raise _save_interrupted(session, stop) from None
        except TrainingError:
            # a non-finite loss: last.pt gets the last good epoch, if the cadence skipped it
            if session.dist.is_main and session.snapshot is not None:
                _save_last(session, session.snapshot)
            raise


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
    _place_features(session)
    return session


def _place_features(session: Session) -> None:
    """Load the training and test features onto the device when the placement says so."""
    config, store = session.config, session.store
    try:
        test = session.annotations.subset(config.data.test_subset)
    except DataError:
        test = []  # a wrong test subset: the checks before training say so in one line
    test_names = [v.name for v in test if v.labels]
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
    path = session.run_dir / "last.pt"  # present: _train_locked checked before opening
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


# settings that change neither the weights nor the training data: free to change on resume
RESUME_FREE = {
    "train": ("epochs", "num_workers", "device", "checkpoint_every"),
    "data": ("test_subset", "placement"),
}
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
            row = parse_json(line, f"{path}: line {number}", ValueError)
            epoch = int(row["epoch"])
        except (KeyError, TypeError, ValueError):
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
        session.tensorboard.end_epoch(record, epoch + 1, session.optimizer)
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
    totals = EpochLosses()
    for indices, share, batch in bar:
        terms = _train_step(session, batch, len(share), len(indices))
        totals.add(terms, len(batches), share)
    losses = read_losses(totals, epoch + 1, session.train_set)
    session.tensorboard.steps_losses(totals.names, totals.step_values)
    return {f"loss_{k}": round(dist_utils.all_reduce_mean(v, info), 6) for k, v in losses.items()}


@dataclass
class EpochLosses:
    """Running epoch means of the loss terms, kept on the device (no host sync per step),
    and each step's total (to name the batch of a non-finite loss once it is read).

    float64, divided per step as the per-step float reads once were: the epoch means
    are the same numbers to the last bit.
    """

    names: list[str] = field(default_factory=list)
    running: torch.Tensor | None = None
    step_totals: list[torch.Tensor] = field(default_factory=list)
    step_items: list[list[int]] = field(default_factory=list)
    step_values: list[torch.Tensor] = field(default_factory=list)  # for TensorBoard

    def add(self, terms: dict[str, torch.Tensor], num_batches: int, items: list[int]) -> None:
        values = torch.stack([value.detach().float() for value in terms.values()]).double()
        step = values / num_batches
        self.names = list(terms)
        self.running = step if self.running is None else self.running + step
        self.step_totals.append(terms["total"].detach())
        self.step_items.append(items)
        self.step_values.append(values)


def read_losses(totals: EpochLosses, epoch: int, dataset: VideoDataset) -> dict[str, float]:
    """The one place where loss values come to the host (once per epoch); a non-finite
    loss stops the run here, naming the first batch that had one."""
    if totals.running is None:
        return {}
    means = dict(zip(totals.names, totals.running.tolist(), strict=True))
    if not math.isfinite(means["total"]):
        steps = torch.stack(totals.step_totals).tolist()
        first = next(i for i, value in enumerate(steps) if not math.isfinite(value))
        names = [dataset.videos[i].name for i in totals.step_items[first]]
        preflight.check_finite_loss(steps[first], epoch, names)
    return means


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


def loss_terms(session: Session, features, labels, mask) -> dict[str, torch.Tensor]:
    """The method's loss terms (and ``total``) of one batch of device tensors.

    Every training item has exactly ``data.num_segments`` rows, so the network needs no
    mask (an all-true one is the same computation, plus a host sync to find that out).
    """
    with autocast(session.device, session.config.train.precision):
        outputs = session.method.forward(session.model, features, None)
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
        # resident features hold the training and test videos (held-out ones stream)
        resident=session.test_features if subset is None else None,
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
    """Record a finished epoch (``replace_last``: its row again, now with evaluations).

    last.pt is written on the cadence of :func:`_checkpoint_due`; between writes the
    epoch's state is kept as a device copy, which SIGINT/SIGTERM save.
    """
    if replace_last:
        session.records[-1] = record
    else:
        session.records.append(record)
    due = not replace_last and _checkpoint_due(session, epoch)
    if due or replace_last or _metrics_stale(session):
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
    key = selection.selection_key(session.config.train.select_on)
    improved = key is not None and key in record and record[key] > session.best
    if improved:
        session.best = payload["best"] = record[key]
        described = selection.describe(session.config, session.heldout)
        chosen = {**described, "metric": key, "value": record[key], "epoch": epoch}
        _timed_save(session, session.run_dir / "best.pt", {**payload, "selection": chosen})
    if due or (replace_last and improved and session.saved_epoch == epoch):
        _save_last(session, payload)  # again after an evaluation only to carry the new best
    elif not replace_last:
        session.snapshot = _cloned(payload)
    elif session.snapshot is not None and session.snapshot["epoch"] == epoch:
        session.snapshot.update(best=payload["best"], metrics=payload["metrics"])


def _write_metrics(run_dir: Path, records: list[dict]) -> None:
    atomic_write_text(run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    columns = list(dict.fromkeys(k for r in records for k in r if not isinstance(r[k], list)))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(records)
    atomic_write_text(run_dir / "metrics.csv", buffer.getvalue())


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
