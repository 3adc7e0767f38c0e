"""The Trident-head decode of FuSTAL's student (TriDet), as the official code does it.

Each point predicts, for each side, a distribution over ``num_bins + 1`` distances
(0 .. num_bins grid steps): the softmax of the class's boundary logits at the
neighbouring points plus the point's own centre-offset logits. The offset of that side
is the expectation of the distance. Source: Student-Training/libs/modeling/meta_archs.py
(TriDet.decode_offset 405-447, the neighbours of inference_single_video 879-895 and of
losses 699-714) at github:fqhank/FuSTAL@3037b4e.

Shapes: boundary logits are class-major, ``[..., C, T]`` (as the boundary heads return
them, not permuted); centre offsets are ``[..., T, 2 * (num_bins + 1)]``, the first half
for the start side, the second for the end side.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def boundary_neighbours(logits: Tensor, num_bins: int, side: str) -> Tensor:
    """``[..., T]`` -> ``[..., T, num_bins + 1]``: the logits at each point's neighbours.

    ``side="start"``: entry ``k`` is the logit at ``t - num_bins + k`` (so the last entry
    is the point itself); ``side="end"``: entry ``k`` is the logit at ``t + k``. Points
    outside the sequence read 0 (the official zero padding before ``as_strided``).
    """
    if side == "start":
        padded = F.pad(logits, (num_bins, 0), value=0.0)
    elif side == "end":
        padded = F.pad(logits, (0, num_bins), value=0.0)
    else:
        raise ValueError(f"side must be 'start' or 'end', not {side!r}")
    return padded.unfold(-1, num_bins + 1, 1)


def expected_distances(start_logits: Tensor, end_logits: Tensor) -> Tensor:
    """``[..., num_bins + 1]`` twice (neighbour + centre logits already summed) ->
    ``[..., 2]``: the expected start and end distances, in grid steps of the level.

    The start side counts its bins backwards (entry ``k`` is ``num_bins - k`` steps
    away). As in the official code both sides are zeroed where the END distribution is
    NaN (the start side's own NaNs are left as they are).
    """
    start_dist = torch.softmax(start_logits, dim=-1)
    end_dist = torch.softmax(end_logits, dim=-1)
    bins = start_dist.shape[-1]
    backward = torch.arange(bins - 1, -1, -1, dtype=torch.float, device=start_dist.device)
    forward = torch.arange(bins, dtype=torch.float, device=end_dist.device)
    end_nan = torch.isnan(end_dist)
    start_dist = start_dist.masked_fill(end_nan, 0)
    end_dist = end_dist.masked_fill(end_nan, 0)
    start = torch.matmul(start_dist, backward.unsqueeze(-1))
    end = torch.matmul(end_dist, forward.unsqueeze(-1))
    return torch.cat([start, end], dim=-1)


def decode_video_level(
    offsets: Tensor, start_logits: Tensor, end_logits: Tensor, num_bins: int
) -> Tensor:
    """Test layout, one video and one FPN level: offsets ``[T, 2 * (num_bins + 1)]``,
    boundary logits ``[C, T]`` -> ``[C, T, 2]`` distances (start, end) in grid steps."""
    centre = offsets.reshape(offsets.shape[0], 2, -1)
    start = boundary_neighbours(start_logits, num_bins, "start") + centre[None, :, 0, :]
    end = boundary_neighbours(end_logits, num_bins, "end") + centre[None, :, 1, :]
    return expected_distances(start, end)


def decode_batch(
    offsets: list[Tensor], start_logits: list[Tensor], end_logits: list[Tensor], num_bins: int
) -> Tensor:
    """Training layout, per-level lists: offsets ``[B, T_i, 2 * (num_bins + 1)]``,
    boundary logits ``[B, C, T_i]`` -> ``[B, sum T_i, C, 2]`` distances (start, end), the
    levels concatenated in order along time."""
    centre = torch.cat(offsets, dim=1)
    centre = centre.reshape(centre.shape[:2] + (2, -1))
    start_nb = torch.cat(
        [boundary_neighbours(x, num_bins, "start").permute(0, 2, 1, 3) for x in start_logits], 1
    )
    end_nb = torch.cat(
        [boundary_neighbours(x, num_bins, "end").permute(0, 2, 1, 3) for x in end_logits], 1
    )
    return expected_distances(start_nb + centre[:, :, :1, :], end_nb + centre[:, :, 1:, :])
