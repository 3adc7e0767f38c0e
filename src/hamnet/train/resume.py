"""Exact resume: what may change between sessions, and reading back a run's state
(weights, optimizer, RNG, best value, metrics rows) from its folder."""

from __future__ import annotations

import logging
from pathlib import Path

from hamnet.config import Config, config_differences, config_from_dict, load_config
from hamnet.errors import CheckpointError, ConfigError, DataError
from hamnet.io import parse_json
from hamnet.provenance import file_fingerprint
from hamnet.train.session import Session
from hamnet.weights.checkpoint import load_checkpoint, restore_rng
from hamnet.weights.files import load_weights_strict

log = logging.getLogger(__name__)


def resume(session: Session, written_sha: str | None = None) -> None:
    """Continue the run in ``session.run_dir`` from its last.pt (``written_sha``: the
    SHA-256 of config.yaml as the latest session wrote it, see
    :func:`written_config_sha`)."""
    path = session.run_dir / "last.pt"  # present: _train_locked checked before opening
    record = load_checkpoint(path)
    saved = config_from_dict(record["config"])
    refuse_edited_config_file(session.run_dir / "config.yaml", saved, session.config, written_sha)
    if not same_run(saved, session.config):
        changed = "; ".join(config_differences(saved, session.config)[:4])
        raise CheckpointError(
            f"{path}: was trained with another config ({changed}; only train.epochs, "
            "num_workers, device and the eval / localize settings may change on resume); "
            "resume with the run's config.yaml"
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


def written_config_sha(info: dict | None) -> str | None:
    """The SHA-256 of config.yaml as the latest session wrote it (run.json), if recorded."""
    sessions = (info or {}).get("sessions")
    if not isinstance(sessions, list) or not sessions or not isinstance(sessions[-1], dict):
        return None
    found = sessions[-1].get("config_sha256")
    return found if isinstance(found, str) else None


def refuse_edited_config_file(
    path: Path, saved: Config, current: Config, written_sha: str | None
) -> None:
    """An edit of config.yaml after the run started is neither dropped nor applied silently:
    it applies when the resume reads that file (--config), else it stops the resume.
    Edited: its SHA-256 is not the one run.json recorded (older runs: it differs from
    last.pt's config)."""
    if not path.is_file():
        return
    if written_sha is not None and file_fingerprint(path)["sha256"] == written_sha:
        return
    edited = load_config(path)
    changes = config_differences(saved, edited) or config_differences(current, edited)
    if not changes or not config_differences(edited, current):
        return
    raise ConfigError(
        f"{path}: edited since the run last started ({'; '.join(changes[:4])}); to resume "
        f"with the edit pass --config {path}, else undo it"
    )


# settings that change neither the weights nor the training data: free to change on resume
RESUME_FREE = {
    "train": ("epochs", "iterations", "num_workers", "device", "checkpoint_every"),
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
        except (KeyError, TypeError, ValueError, OverflowError, RecursionError):
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
