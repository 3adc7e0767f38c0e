"""A 3C-Net saved model (main.py: ``torch.save(model.state_dict())``) as a hamnet
checkpoint: the parameter names are the same; the width and the class count come from the
shapes. The saved model holds no class centers (CenterLoss is not saved): they are zero in
the import, which changes no test output (centers only enter the training loss)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from hamnet.errors import CheckpointError
from hamnet.weights.authors_co2net import load_official


def threecnet_shape(state: dict[str, Tensor], path: Path) -> dict[str, int]:
    """``feature_dim``, ``num_classes`` and ``activitynet`` (its temporal conv)."""
    for key in ("fc_f.weight", "classifier_f.weight", "classifier_r.weight", "mul_f"):
        if key not in state or state[key].dim() not in (1, 2):
            raise CheckpointError(f"{path}: no 2-D or 1-D {key!r}: not a 3C-Net state_dict")
    half = state["fc_f.weight"].shape[1]
    classes = state["classifier_f.weight"].shape[0]
    activitynet = int("conv.weight" in state)
    return {"feature_dim": 2 * half, "num_classes": classes, "activitynet": activitynet}


def load_threecnet(network, state: dict[str, Tensor], path: Path) -> None:
    """Load ``state`` into ``network`` (every parameter present, every shape equal)."""
    filled = dict(state)
    for name in ("centers_f", "centers_r"):
        filled.setdefault(name, torch.zeros_like(network.state_dict()[name]))
    load_official(network, filled, path)
