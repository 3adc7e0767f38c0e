"""One training process per run folder, the clean-up of what a killed one left, and no
training over a finished run or over the data's own files.

``train`` holds an exclusive ``flock`` on ``RUN/.lock`` for the run's life. The kernel
drops the lock when the holder dies (kill -9 included), so a stale lock file from a
killed run never blocks ``--resume``; the pid written inside only names the holder.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

from hamnet.errors import CheckpointError, TrainingError
from hamnet.io import input_files, refuse_overwriting_inputs

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"
# hamnet.io.atomic_path names its temporary files ".<target>.<random>.tmp"
TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp$")


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run folder's lock; TrainingError (one line) when another process has it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    handle = open(path, "a+")  # noqa: SIM115 - held open for the run's life
    try:
        _acquire(handle, path)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        _remove_own(handle, path)  # a finished run folder keeps no .lock
        handle.close()  # closing releases the lock


def _remove_own(handle, path: Path) -> None:
    """Unlink the lock file while still holding it, when it is still the one we hold."""
    with contextlib.suppress(OSError, ValueError):
        if _same_file(handle, path):
            path.unlink()


def _same_file(handle, path: Path) -> bool:
    held, named = os.fstat(handle.fileno()), os.stat(path)
    return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)


def _acquire(handle, path: Path) -> None:
    try:
        import fcntl
    except ImportError:  # no flock (Windows): run unlocked rather than not at all
        log.warning("%s: file locking is not available here; not locked", path)
        return
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        if not _same_file(handle, path):  # the holder removed it as we opened it: retry
            raise OSError("lock file replaced")
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise TrainingError(
            f"{path.parent}: another hamnet process (pid {holder}) is training in this run "
            "folder; wait for it or choose another --run-dir"
        ) from None


def remove_stale_temporaries(run_dir: Path) -> list[Path]:
    """Delete the half-written temporary files a killed run left (call under the lock)."""
    removed = []
    for path in run_dir.iterdir():
        if path.is_file() and TEMPORARY.match(path.name):
            path.unlink(missing_ok=True)
            removed.append(path)
    if removed:
        log.info(
            "%s: removed %d temporary file(s) left by an interrupted run", run_dir, len(removed)
        )
    return removed


# what train writes into the run folder (compared with the data's files before it starts)
RUN_OUTPUTS = (
    "config.yaml",
    "last.pt",
    "best.pt",
    "metrics.jsonl",
    "metrics.csv",
    "run.json",
    "timing.json",
)


def refuse_overwrite(run_dir: Path, data_root: Path, resume: bool) -> None:
    """Training never replaces what a user made: none of its run files may be one of the
    data's files (same file, through links too), and a finished or interrupted run is
    continued only with ``resume``."""
    written = [run_dir / name for name in RUN_OUTPUTS]
    refuse_overwriting_inputs(written, input_files(data_root))
    if not resume and (run_dir / "last.pt").exists():
        raise CheckpointError(
            f"{run_dir}: already holds a run (last.pt); pass --resume to continue it, "
            "or choose another --run-dir"
        )
