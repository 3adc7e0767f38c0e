"""Exact resume: what may change between sessions, and reading back a run's state
(weights, optimizer, RNG, best value, metrics rows) from its folder."""

from __future__ import annotations

import logging
from pathlib import Path

from hamnet.config import Config, config_from_dict
from hamnet.errors import CheckpointError, DataError
from hamnet.io import parse_json
from hamnet.train.session import Session
from hamnet.weights.checkpoint import load_checkpoint, restore_rng
from hamnet.weights.files import load_weights_strict

log = logging.getLogger(__name__)


def resume(session: Session) -> None:
    path = session.run_dir / "last.pt"  # present: _train_locked checked before opening
    record = load_checkpoint(path)
    if not same_run(config_from_dict(record["config"]), session.config):
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
    session.records = read_records(session.run_dir / "metrics.jsonl", session.start_epoch)
    log.info("resumed %s after epoch %d", session.run_dir, session.start_epoch)


# settings that change neither the weights nor the training data: free to change on resume
RESUME_FREE = {
    "train": ("epochs", "num_workers", "device", "checkpoint_every"),
    "data": ("test_subset", "placement"),
}


RESUME_FREE_SECTIONS = ("eval", "localize")


def same_run(saved: Config, current: Config) -> bool:
    a, b = saved.to_dict(), current.to_dict()
    for tree in (a, b):
        for section, keys in RESUME_FREE.items():
            for key in keys:
                tree[section].pop(key)
        for section in RESUME_FREE_SECTIONS:
            tree.pop(section)
    return a == b


def read_records(path: Path, epochs: int) -> list[dict]:
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
