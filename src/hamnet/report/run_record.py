"""What made a run and how far it got, for the report's title and header.

From the run folder's ``run.json`` (command, commit, status), ``config.yaml`` (method,
planned epochs, localization thresholds) and the tested checkpoint's epoch (recorded in
the test result). Missing files leave their fields empty: older runs have no run.json.
"""

from __future__ import annotations

import logging
import shlex
from pathlib import Path

from hamnet.errors import DataError, HamnetError
from hamnet.io import read_json
from hamnet.methods import method_label

log = logging.getLogger(__name__)


def run_summary(run_dir: Path, result: dict) -> dict:
    """Method label, epochs planned and reached, status, command, commit, thresholds."""
    config = _config(run_dir / "config.yaml")
    record = _run_json(run_dir / "run.json")
    software = record.get("software") if isinstance(record.get("software"), dict) else {}
    return {
        "method": method_label(config.method) if config else None,
        "epochs": config.train.epochs if config else None,
        "epochs_done": _tested_epoch(result, record),
        "status": _text(record.get("status")),
        "command": _command(record.get("command")),
        "commit": _text(software.get("git_commit")),
        "thresholds": [float(t) for t in config.localize.thresholds] if config else [],
    }


def page_title(payload: dict) -> str:
    """``hamnet report: RUN, METHOD, N epochs`` (``unfinished, N of M epochs`` when so)."""
    summary = payload.get("run_summary") or {}
    parts = [str(payload.get("run", ""))]
    if summary.get("method"):
        parts.append(str(summary["method"]))
    parts.append(epochs_phrase(summary.get("epochs_done"), summary.get("epochs")))
    return "hamnet report: " + ", ".join(part for part in parts if part)


def epochs_phrase(done: int | None, planned: int | None) -> str:
    if done is not None and planned is not None and done < planned:
        return f"unfinished, {done} of {planned} epochs"
    reached = done if done is not None else planned
    return "" if reached is None else f"{reached} epoch{'' if reached == 1 else 's'}"


def _config(path: Path):
    if not path.is_file():
        return None
    from hamnet.config import load_config

    try:
        return load_config(path)
    except HamnetError as error:  # the page still shows the numbers, without these fields
        log.warning("%s; method and epochs left out of the report's title", error)
        return None


def _run_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    record = read_json(path, DataError)
    return record if isinstance(record, dict) else {}


def _tested_epoch(result: dict, record: dict) -> int | None:
    """The epoch of the checkpoint the page's numbers are from (else run.json's last)."""
    checkpoint = (result.get("provenance") or {}).get("checkpoint")
    epoch = checkpoint.get("epoch") if isinstance(checkpoint, dict) else None
    if epoch is None and isinstance(record.get("sessions"), list) and record["sessions"]:
        last = record["sessions"][-1]
        epoch = last.get("to_epoch") if isinstance(last, dict) else None
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None


def _command(value) -> str | None:
    if isinstance(value, list):
        return shlex.join(str(part) for part in value)
    return _text(value)


def _text(value) -> str | None:
    return None if value is None else str(value)
