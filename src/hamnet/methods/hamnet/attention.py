"""Hybrid attention (reference §3): soft, semi-soft and hard attention, and applying them.

All thresholds are computed in fp32: the inputs are cast with ``.float()`` at entry, so
bf16 autocast cannot move a snippet across the drop threshold.
"""

from __future__ import annotations

import torch
from torch import Tensor


def semi_soft_attention(attention: Tensor, drop_thres: float, mask: Tensor | None = None) -> Tensor:
    """Drop each video's most attended snippets: ``a[t]`` where ``a[t] < theta``, else 0.

    ``attention [B, T]`` in [0, 1]; ``theta = drop_thres * max_t a`` per video, the max
    taken over valid snippets only (``mask [B, T]``, bool). Padded positions are 0.
    Returns ``[B, T]`` fp32; the threshold itself carries no gradient.
    """
    a = attention.float()
    valid = _valid(a, mask)
    peak = a.masked_fill(~valid, float("-inf")).amax(dim=1, keepdim=True)
    theta = (drop_thres * peak).detach()
    keep = (a < theta) & valid
    return torch.where(keep, a, torch.zeros_like(a))


def hard_attention(semi_soft: Tensor) -> Tensor:
    """``[B, T]``: 1 where the semi-soft attention is positive, else 0 (no gradient)."""
    return (semi_soft > 0).float()


def apply_attention(cas: Tensor, weight: Tensor, shift: bool) -> Tensor:
    """Weight a T-CAS ``cas [B, T, K]`` by ``weight [B, T]``; returns ``[B, T, K]``.

    ``shift=False``: ``w[t] * S[t, c]``. ``shift=True``: with ``m[t] = min_c S[t, c]``
    (the minimum over the class axis), ``w[t] * (S[t, c] - m[t]) + m[t]``, so a snippet
    with weight 0 gets equal scores for every class rather than zeros.
    """
    w = weight[..., None]
    if not shift:
        return w * cas
    low = cas.amin(dim=-1, keepdim=True)
    return w * (cas - low) + low


def hybrid_attentions(
    attention: Tensor, drop_thres: float, training: bool, mask: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """``(soft, semi_soft, hard)``, each ``[B, T]`` fp32; at test time all three are soft."""
    soft = attention.float()
    if not training:
        return soft, soft, soft
    semi = semi_soft_attention(soft, drop_thres, mask)
    return soft, semi, hard_attention(semi)


def _valid(a: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return torch.ones_like(a, dtype=torch.bool)
    return mask.to(device=a.device, dtype=torch.bool)
