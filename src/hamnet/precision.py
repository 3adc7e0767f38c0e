"""The compute precisions of training, inference and feature extraction (one list), and
the context that applies one.

``fp32``: everything in float32; ``bf16``: autocast to bfloat16 (losses, pooling and
evaluation stay in float32).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported by the callers; the list alone needs no torch
    import torch

PRECISIONS = ("fp32", "bf16")


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast context of ``precision`` on ``device`` (a no-op for fp32)."""
    if precision != "bf16":
        return contextlib.nullcontext()
    import torch

    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
