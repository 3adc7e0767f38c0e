"""``run.json``: where a run's numbers came from, and a guard against resuming on other data.

Written at the start of every training session and rewritten at its end: the command
line, software versions, device, data root and its fingerprint (see
:func:`hamnet.provenance.dataset_fingerprint`), model selection, start/end times and
wall time. Each ``--resume`` appends a session; the data fingerprint must not change.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import torch

from hamnet.devices import device_record
from hamnet.errors import CheckpointError
from hamnet.io import atomic_write_json, parse_json
from hamnet.provenance import (
    command_line,
    first_difference,
    now_iso,
    software_versions,
    without_paths,
)

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
FORMAT = "hamnet-run"


def read_run_info(run_dir: Path) -> dict | None:
    """The run folder's run.json (None when there is none: runs from before it existed)."""
    path = run_dir / RUN_FILE
    if not path.is_file():
        return None
    try:
        info = parse_json(path.read_bytes(), str(path), ValueError)
    except ValueError as error:
        raise CheckpointError(f"{error}; move it away to resume without the data check") from None
    except RecursionError:
        raise CheckpointError(
            f"{path}: malformed (nested too deeply); move it away to resume without the data check"
        ) from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a hamnet run.json")
    return info


def check_same_data(run_dir: Path, saved: dict | None, data: dict) -> None:
    """CheckpointError when resuming on data other than the run was started on."""
    if saved is None or "data" not in saved:
        log.warning("%s: no %s from the run's start; data not compared", run_dir, RUN_FILE)
        return
    before = without_paths(saved["data"].get("fingerprint", {}))
    differs = first_difference(before, without_paths(data["fingerprint"]))
    if differs:
        raise CheckpointError(
            f"{run_dir}: the data differ from the run's start ({differs} changed; started on "
            f"{saved['data'].get('root')}); resume with the same data or start a new run"
        )


class RunInfo:
    """The run.json of one training session: ``start`` writes it, ``finish`` completes it."""

    def __init__(self, run_dir: Path, data: dict, device: torch.device, saved: dict | None):
        self.path = run_dir / RUN_FILE
        self.clock = time.monotonic()
        self.session = {
            "command": command_line(),
            "cwd": os.getcwd(),
            "started": now_iso(),
            "ended": None,
            "wall_seconds": None,
            "status": "running",
            "software": software_versions(),
            **device_record(device),
        }
        self.info = saved or {"format": FORMAT, "started": self.session["started"], "data": data}
        for earlier in self.info.get("sessions", []):
            if earlier.get("status") == "running":  # that process died without a word
                earlier["status"] = "killed (no end recorded)"
        self.info.setdefault("sessions", []).append(self.session)

    def start(self, from_epoch: int, selection: dict) -> None:
        self.session["from_epoch"] = from_epoch
        self.info["selection"] = selection
        self._write()

    def finish(self, status: str, to_epoch: int, extra: dict | None = None) -> None:
        self.session.update(
            ended=now_iso(),
            wall_seconds=round(time.monotonic() - self.clock, 3),
            status=status,
            to_epoch=to_epoch,
        )
        self.info.update(extra or {})
        self._write()

    def _write(self) -> None:
        sessions = self.info["sessions"]
        latest = sessions[-1]
        # the top level answers "what made this run" for the latest session at a glance
        self.info.update(
            command=latest["command"],
            software=latest["software"],
            device=latest["device"],
            device_name=latest["device_name"],
            ended=latest["ended"],
            status=latest["status"],
            wall_seconds=round(sum(s.get("wall_seconds") or 0.0 for s in sessions), 3),
        )
        atomic_write_json(self.path, self.info, indent=1)
