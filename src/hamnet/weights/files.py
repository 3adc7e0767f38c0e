"""One reader for weight files and one strict loader for state dicts.

Used for hamnet checkpoints, the authors' HAM-Net checkpoints and the I3D weights: files
are read with ``torch.load(weights_only=True)`` only (nothing else is unpickled), and a
state dict goes into a network only when its keys and shapes are exactly the network's;
every failure is one CheckpointError line naming the file.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hamnet.errors import CheckpointError


def read_weight_file(
    path: str | Path,
    *,
    what: str = "checkpoint",
    refused: Callable[[Path, str], str] | None = None,
) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; ``what`` names the file in
    messages; ``refused(path, first line)`` may word the message for a refused pickle."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: {what} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "Unsupported global" not in str(error):  # not a refusal: bytes that are no pickle
            raise CheckpointError(
                f"{path}: truncated or corrupt file (not a PyTorch {what})"
            ) from None
        first = str(error).strip().splitlines()[0]
        if refused is not None:
            raise CheckpointError(refused(path, str(error))) from None
        raise CheckpointError(
            f"{path}: refused to load objects other than tensors and plain data ({first})"
        ) from None
    except (EOFError, OSError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"{path}: truncated or corrupt file ({error})") from None
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as error:
        # a flipped byte in the zip or pickle structure surfaces as any of these
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path}: truncated or corrupt file ({detail})") from None


def load_weights_strict(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    source: str,
    *,
    optional: Callable[[str], bool] = lambda key: False,
) -> None:
    """Load ``state`` into ``model`` when its keys and shapes are exactly the model's
    (keys for which ``optional`` is true may be absent); else one CheckpointError."""
    expected = model.state_dict()
    for key, value in expected.items():
        if key not in state:
            if optional(key):
                continue
            raise CheckpointError(f"{source}: weights do not fit the network (missing {key!r})")
        if tuple(state[key].shape) != tuple(value.shape):
            raise CheckpointError(
                f"{source}: weights do not fit the network ({key!r} has shape "
                f"{list(state[key].shape)}, the network {list(value.shape)})"
            )
    unexpected = [key for key in state if key not in expected]
    if unexpected:
        raise CheckpointError(
            f"{source}: weights do not fit the network (unexpected {unexpected[0]!r})"
        )
    model.load_state_dict(dict(state), strict=not any(optional(k) for k in expected))
