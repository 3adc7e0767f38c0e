"""An official CO2-Net or DELU saved model (``torch.save(model.state_dict())``, CUDA
tensors; both codes share one layout) as a hamnet checkpoint: the parameter names are the
same; the widths and the class count come from the shapes; the unused ``feat_encoder.*``
is dropped."""

from __future__ import annotations

import logging
from pathlib import Path

from torch import Tensor

from hamnet.errors import CheckpointError

log = logging.getLogger(__name__)

OFFICIAL_METHODS = ("co2net", "delu")  # the methods whose saved models have this layout
UNUSED_PREFIXES = ("feat_encoder.", "feature_encoder.")


def _shape(state: dict[str, Tensor], key: str, dims: int, path: Path) -> tuple[int, ...]:
    if key not in state:
        raise CheckpointError(f"{path}: no {key!r}: not a CO2-Net / DELU state_dict")
    shape = tuple(state[key].shape)
    if len(shape) != dims:
        raise CheckpointError(f"{path}: {key} has shape {list(shape)}, expected {dims} axes")
    return shape


def official_shape(state: dict[str, Tensor], path: Path) -> dict[str, int]:
    """``feature_dim``, ``num_classes``, ``attention_dim`` of an official state dict."""
    width = _shape(state, "fusion.0.weight", 3, path)[0]
    classes = _shape(state, "classifier.4.weight", 3, path)[0] - 1
    attention, half, _ = _shape(state, "vAttn.attention.0.weight", 3, path)
    if 2 * half != width:
        raise CheckpointError(
            f"{path}: vAttn.attention.0.weight reads {half} features, fusion.0.weight "
            f"{width}: the RGB half should be {width // 2}"
        )
    return {"feature_dim": width, "num_classes": classes, "attention_dim": attention}


def official_weights(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The state dict without the unused encoder, on the CPU, as float32."""
    dropped = sorted(k for k in state if k.startswith(UNUSED_PREFIXES))
    if dropped:
        log.info("dropped %d unused parameter(s) (%s...)", len(dropped), dropped[0])
    return {
        k: v.detach().cpu().float() for k, v in state.items() if not k.startswith(UNUSED_PREFIXES)
    }


def load_official(network, state: dict[str, Tensor], path: Path) -> None:
    """Load ``state`` into ``network`` (every parameter present, every shape equal)."""
    weights = official_weights(state)
    own = network.state_dict()
    missing = sorted(set(own) - set(weights))
    extra = sorted(set(weights) - set(own))
    if missing or extra:
        raise CheckpointError(
            f"{path}: does not fit the network (missing: {missing[:3]}, unexpected: {extra[:3]})"
        )
    bad = next((k for k in own if own[k].shape != weights[k].shape), None)
    if bad is not None:
        raise CheckpointError(
            f"{path}: {bad} has shape {list(weights[bad].shape)}, the network "
            f"{list(own[bad].shape)}"
        )
    network.load_state_dict(weights)
