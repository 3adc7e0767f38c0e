"""Checkpoints: written atomically, read with ``weights_only=True`` only, checksummed.

A checkpoint holds the model and optimizer states, the RNG states, the resolved config,
the class list, the completed epoch count and the package version: everything needed to
resume exactly or to test without the training data at hand.

Every checkpoint also stores a SHA-256 over its content (tensor bytes, dtypes and shapes,
every key and plain value), verified on load: flipped bits in a tensor would otherwise
load fine and quietly give other numbers. Checkpoints written before checksums still load.
"""

from __future__ import annotations

import errno
import hashlib
import logging
from pathlib import Path
from typing import Any

import torch

from hamnet import __version__
from hamnet.errors import CheckpointError
from hamnet.io import atomic_path
from hamnet.weights.files import read_weight_file

log = logging.getLogger(__name__)

FORMAT = "hamnet-checkpoint"
REQUIRED = ("model", "config", "classes", "epoch")
CHECKSUM_KEY = "checksum_sha256"


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` (tensors, dicts, lists, numbers, strings only) atomically."""
    record = {"format": FORMAT, "hamnet_version": __version__, **payload}
    record.pop(CHECKSUM_KEY, None)
    record[CHECKSUM_KEY] = content_digest(record)
    with atomic_path(path) as tmp:
        try:
            torch.save(record, tmp)
        except RuntimeError as error:  # torch reports a failed write (full disk) this way
            first = str(error).strip().splitlines()[0] if str(error).strip() else "write failed"
            raise OSError(
                errno.EIO, f"could not write the checkpoint ({first})", str(path)
            ) from None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a hamnet checkpoint; a missing, truncated or foreign file is a CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    record = read_tensor_file(path)
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: not a hamnet checkpoint (for the authors' checkpoints use "
            "'hamnet import-checkpoint')"
        )
    missing = [key for key in REQUIRED if key not in record]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing}")
    verify_checksum(path, record)
    return record


def verify_checksum(path: Path, record: dict[str, Any]) -> None:
    """CheckpointError when the stored checksum does not match the content read."""
    stored = record.pop(CHECKSUM_KEY, None)
    if stored is None:
        log.debug("%s: written before checkpoints carried checksums; not verified", path)
        return
    if stored != content_digest(record):
        raise CheckpointError(
            f"{path}: checksum mismatch, the file is corrupt (changed after it was written); "
            "use another checkpoint"
        )


def content_digest(value: Any) -> str:
    """SHA-256 over a checkpoint's content, independent of how torch.save lays it out."""
    digest = hashlib.sha256()
    _feed(digest, value)
    return digest.hexdigest()


def _feed(digest, value: Any) -> None:
    """Hash ``value`` with a type tag per node, so that e.g. 1 and "1" differ."""
    if isinstance(value, torch.Tensor):
        flat = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"T{value.dtype}{tuple(value.shape)}:".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}:".encode())
        for key in sorted(value, key=repr):
            _feed(digest, key)
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):  # torch.load may turn one into the other
        digest.update(f"L{len(value)}:".encode())
        for item in value:
            _feed(digest, item)
    else:
        digest.update(f"{type(value).__name__}:{value!r};".encode())


def read_tensor_file(path: Path) -> Any:
    """``torch.load`` with ``weights_only=True``, every failure turned into one message."""
    return read_weight_file(path)


def capture_rng() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
