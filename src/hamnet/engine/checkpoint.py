"""Checkpoints: written atomically, read with ``weights_only=True`` only.

A checkpoint holds the model and optimizer states, the RNG states, the resolved config,
the class list, the completed epoch count and the package version: everything needed to
resume exactly or to test without the training data at hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from hamnet import __version__
from hamnet.errors import CheckpointError
from hamnet.io import atomic_path
from hamnet.weights import read_weight_file

FORMAT = "hamnet-checkpoint"
REQUIRED = ("model", "config", "classes", "epoch")


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` (tensors, dicts, lists, numbers, strings only) atomically."""
    record = {"format": FORMAT, "hamnet_version": __version__, **payload}
    with atomic_path(path) as tmp:
        torch.save(record, tmp)


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
    return record


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
