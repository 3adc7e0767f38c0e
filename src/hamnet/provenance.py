"""Where a number came from: file fingerprints and the software that produced it.

Every run folder (``run.json``) and every result JSON records these, so a table can be
traced back to its inputs and a resumed run can tell that its data changed.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
from pathlib import Path

import hamnet

CHUNK = 1 << 20


def file_fingerprint(path: str | Path) -> dict:
    """Path, size and SHA-256 of one file (read in chunks: fine for small metadata files)."""
    path = Path(path)
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return {"path": str(path.resolve()), "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def software_versions() -> dict:
    """hamnet (and its git commit when run from a checkout), Python, torch, numpy, CUDA."""
    import numpy
    import torch

    versions = {
        "hamnet": hamnet.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "cuda": torch.version.cuda,
    }
    commit = git_commit()
    if commit:
        versions["git_commit"] = commit
    return versions


def git_commit() -> str | None:
    """The commit of the checkout hamnet is imported from, or None when not in one."""
    source = Path(hamnet.__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and len(commit) == 40 else None


def command_line() -> list[str]:
    return list(sys.argv)
