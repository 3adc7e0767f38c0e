"""Import checkpoints of the authors' released HAM-Net code (PyTorch Lightning).

Their ``state_dict`` holds ``net.classifier.{0,2,5}.{weight,bias}`` and
``net.attention.{0,2,4}.{weight,bias}`` in both the THUMOS14 and the ActivityNet
layouts (the ActivityNet smoothing layer has no parameters, so the file cannot tell
the two apart: the caller chooses ``smoothing_kernel``). Keys without the ``net.``
prefix (a bare network state dict) are accepted too.

Files are read with ``torch.load(weights_only=True)`` only: nothing is unpickled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from hamnet.errors import CheckpointError
from hamnet.methods.hamnet.network import HamNet
from hamnet.weights.files import load_weights_strict, read_weight_file

PREFIX = "net."
_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def read_authors_checkpoint(path: str | Path) -> dict[str, Tensor]:
    """The ``state_dict`` of a Lightning checkpoint (or a bare state dict) at ``path``."""
    path = Path(path)
    content = read_weight_file(path, what="checkpoint file", refused=_refused_message)
    return _state_dict_of(content, path)


def _refused_message(path: Path, error: str) -> str:
    match = _GLOBAL.search(error)
    if match is None:
        return f"{path}: not a readable PyTorch checkpoint"
    return _unsafe_globals_message(path, match.group(1))


def infer_model_shape(state_dict: Mapping[str, Tensor]) -> dict[str, int]:
    """``feature_dim``, ``num_classes``, ``hidden_dim``, ``attention_dim`` of a checkpoint."""
    params = _strip_prefix(state_dict, "checkpoint")
    first = _weight(params, "classifier.0.weight")
    last = _weight(params, "classifier.5.weight")
    attention = _weight(params, "attention.0.weight")
    if attention.shape[1] != first.shape[1]:
        raise CheckpointError(
            f"checkpoint: attention.0.weight reads {attention.shape[1]} features but "
            f"classifier.0.weight reads {first.shape[1]}"
        )
    return {
        "feature_dim": int(first.shape[1]),
        "num_classes": int(last.shape[0]) - 1,
        "hidden_dim": int(first.shape[0]),
        "attention_dim": int(attention.shape[0]),
    }


def load_authors_state_dict(
    state_dict: Mapping[str, Tensor], model: HamNet, *, source: str = "checkpoint"
) -> None:
    """Copy an authors' ``state_dict`` into ``model``; ``source`` names it in errors.

    Raises CheckpointError naming the key (and both shapes) on a missing key, an
    unexpected key or a shape mismatch; the model is left untouched then.
    """
    params = _strip_prefix(state_dict, source)
    expected = model.state_dict()
    for key, target in expected.items():
        if key not in params:
            raise CheckpointError(
                f"{source}: missing {PREFIX}{key} (the network needs shape {list(target.shape)})"
            )
        if tuple(params[key].shape) != tuple(target.shape):
            raise CheckpointError(
                f"{source}: {PREFIX}{key} has shape {list(params[key].shape)} in the "
                f"checkpoint but {list(target.shape)} in the network"
            )
    for key in params:
        if key not in expected:
            raise CheckpointError(
                f"{source}: unexpected key {PREFIX}{key} with shape {list(params[key].shape)}; "
                "the network has no such parameter"
            )
    load_weights_strict(model, {key: params[key] for key in expected}, source)


def _state_dict_of(content: object, path: Path) -> dict[str, Tensor]:
    """A Lightning checkpoint's ``state_dict`` entry, or the file itself if it is one."""
    if isinstance(content, Mapping) and isinstance(content.get("state_dict"), Mapping):
        state = content["state_dict"]
        bad = next((k for k, v in state.items() if not isinstance(v, Tensor)), None)
        if bad is not None:
            raise CheckpointError(f"{path}: state_dict entry {bad!r} is not a tensor")
        return dict(state)
    if isinstance(content, Mapping) and content:
        if all(isinstance(v, Tensor) for v in content.values()):
            return dict(content)
        keys = ", ".join(sorted(map(str, content))[:8])
        raise CheckpointError(f"{path}: no state_dict in the checkpoint (top-level keys: {keys})")
    raise CheckpointError(f"{path}: no state_dict in the checkpoint")


def _strip_prefix(state_dict: Mapping[str, Tensor], source: str) -> dict[str, Tensor]:
    """Network keys without the Lightning ``net.`` prefix (bare keys pass unchanged)."""
    params: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        name = key[len(PREFIX) :] if key.startswith(PREFIX) else key
        if name in params:
            raise CheckpointError(f"{source}: {name} appears both with and without '{PREFIX}'")
        if not isinstance(value, Tensor):
            raise CheckpointError(f"{source}: {key} is not a tensor")
        params[name] = value
    return params


def _weight(params: Mapping[str, Tensor], key: str) -> Tensor:
    if key not in params:
        raise CheckpointError(f"checkpoint: missing {PREFIX}{key}")
    weight = params[key]
    if weight.dim() != 3:
        raise CheckpointError(
            f"checkpoint: {PREFIX}{key} has shape {list(weight.shape)}, "
            "expected a Conv1d weight [out, in, k]"
        )
    return weight


def _unsafe_globals_message(path: Path, first: str) -> str:
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path) or [first]
    except Exception:  # the listing is a courtesy; the first name is already known
        names = [first]
    return (
        f"{path}: the checkpoint holds Python objects ({', '.join(sorted(names))}) that a "
        "weights-only load does not allow; re-save just its state_dict, e.g. "
        "torch.save(torch.load(path, weights_only=False)['state_dict'], new_path), "
        "in an environment where you trust the file"
    )
