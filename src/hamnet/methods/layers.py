"""Building blocks that several methods share: padding-aware temporal Conv1d stacks and
top-k multiple-instance pooling over videos of different true lengths.

Shapes: ``B`` videos, ``T`` snippets, ``K`` columns (classes); an optional validity
``mask [B, T]`` (bool) marks real snippets.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def topk_pool(scores: Tensor, ratio_inv: int, mask: Tensor | None = None) -> Tensor:
    """Video logits ``[B, K]``: per column, the mean of the k largest of ``scores [B, T, K]``.

    k = max(1, floor(T' / ratio_inv)) with T' the video's true length (``mask``).
    """
    scores = scores.float()
    k_max = max(1, scores.shape[1] // ratio_inv)
    if mask is None:
        return scores.topk(k_max, dim=1).values.mean(dim=1)
    counts = torch.clamp(lengths(scores, mask) // ratio_inv, min=1)
    return masked_mean_of_extremes(scores, counts, k_max, mask, largest=True)


def lengths(values: Tensor, mask: Tensor) -> Tensor:
    """True lengths ``[B]`` (long) of the videos in ``values [B, T, ...]``."""
    return mask.to(device=values.device, dtype=torch.bool).sum(dim=1)


def masked_mean_of_extremes(
    values: Tensor, counts: Tensor, k_max: int, mask: Tensor, *, largest: bool
) -> Tensor:
    """``[B, K]``: per column of ``values [B, T, K]``, the mean of the ``counts[b]`` largest
    (or smallest) valid values; ``k_max >= counts.max()`` (known from T, so no device sync).
    """
    fill = float("-inf") if largest else float("inf")
    values = values.masked_fill(~mask.to(values.device, torch.bool)[..., None], fill)
    top = values.topk(k_max, dim=1, largest=largest).values
    rank = torch.arange(k_max, device=values.device)[None, :, None]
    top = torch.where(rank < counts[:, None, None], top, torch.zeros_like(top))
    return top.sum(dim=1) / counts[:, None].to(top.dtype)


def padding_mask(mask: Tensor | None, device: torch.device) -> Tensor | None:
    """``[B, 1, T]``, True at padded snippets; None when there are none."""
    if mask is None:
        return None
    mask = mask.to(device=device, dtype=torch.bool)
    return None if bool(mask.all()) else ~mask[:, None, :]


def mixes_time(layer: nn.Module) -> bool:
    """True for layers whose output at t reads inputs at other times (k > 1)."""
    if isinstance(layer, nn.Conv1d):
        return layer.kernel_size[0] > 1
    return isinstance(layer, nn.AvgPool1d)


def run_branch(branch: nn.Sequential, h: Tensor, pad: Tensor | None) -> Tensor:
    """Apply ``branch`` to ``h [B, Cin, T]``; ``pad [B, 1, T]`` marks padded snippets.

    Padded positions are zeroed before each layer that mixes time, which is exactly
    the zero padding a video run alone sees past its end (the smoothing's
    count_include_pad divisor then matches too).
    """
    for layer in branch:
        if pad is not None and mixes_time(layer):
            h = h.masked_fill(pad, 0.0)
        h = layer(h)
    return h if pad is None else h.masked_fill(pad, 0.0)
