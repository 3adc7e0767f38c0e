"""The student's training losses (Student-Training/libs/modeling @ 3037b4e).

Label assignment (meta_archs.py label_points_single_video: centre sampling within
``radius`` x stride, the level's regression range, the shortest segment wins, ties of
1e-3 share), sigmoid focal loss on every valid point weighted by the trident decode's
IoU ** ``iou_weight_power`` at the positives, DIoU regression on the positives, both
divided by the momentum-0.9 normaliser of positive points; and FuSTAL's video-level
ActionLoss on level 0 (dropout 0.7, top ``n // 5`` per class, softmax, BCE against the
normalised video labels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def assign_targets(
    points: Tensor, segments: Tensor, labels: Tensor, num_classes: int, radius: float = 1.5
) -> tuple[Tensor, Tensor]:
    """One video: ``points`` [P, 4] of all levels, ``segments`` [N, 2] on the feature
    grid, ``labels`` [N] -> class targets [P, C] (0/1) and offsets [P, 2] / stride."""
    num_pts, num_gts = points.shape[0], segments.shape[0]
    if num_gts == 0:
        return segments.new_zeros((num_pts, num_classes)), segments.new_zeros((num_pts, 2))
    t, low, high, stride = (points[:, i, None] for i in range(4))
    starts, ends = segments[None, :, 0], segments[None, :, 1]
    lengths = (segments[:, 1] - segments[:, 0])[None, :].repeat(num_pts, 1)
    offsets = torch.stack((t - starts, ends - t), dim=-1)  # [P, N, 2]
    centres = 0.5 * (starts + ends)
    if radius is None:
        inside = offsets.min(-1)[0] > 0
    else:
        left = t - torch.maximum(centres - stride * radius, starts)
        right = torch.minimum(centres + stride * radius, ends) - t
        inside = torch.stack((left, right), -1).min(-1)[0] > 0
    reach = offsets.max(-1)[0]
    in_range = torch.logical_and(reach >= low, reach <= high)
    lengths.masked_fill_(inside == 0, float("inf"))
    lengths.masked_fill_(in_range == 0, float("inf"))
    shortest, which = lengths.min(dim=1)
    chosen = torch.logical_and(lengths <= shortest[:, None] + 1e-3, lengths < float("inf"))
    one_hot = F.one_hot(labels.long(), num_classes).to(offsets.dtype)
    cls_targets = (chosen.to(offsets.dtype) @ one_hot).clamp_(min=0.0, max=1.0)
    reg_targets = offsets[torch.arange(num_pts, device=which.device), which] / stride
    return cls_targets, reg_targets


def sigmoid_focal_loss(logits: Tensor, targets: Tensor, alpha=0.25, gamma=2.0) -> Tensor:
    """fvcore's focal loss, elementwise."""
    logits, targets = logits.float(), targets.float()
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * ((1 - p_t) ** gamma)
    return (alpha * targets + (1 - alpha) * (1 - targets)) * loss


def _iou_parts(pred: Tensor, target: Tensor, eps: float):
    pred, target = pred.float(), target.float()
    lp, rp, lg, rg = pred[:, 0], pred[:, 1], target[:, 0], target[:, 1]
    inter = torch.min(rp, rg) + torch.min(lp, lg)
    union = (lp + rp) + (lg + rg) - inter
    return inter / union.clamp(min=eps), (lp, rp, lg, rg)


def iou_loss_1d(pred: Tensor, target: Tensor, eps: float = 1e-8) -> Tensor:
    """losses.py ctr_giou_loss_1d (GIoU reduces to 1 - IoU for centred offsets)."""
    return 1.0 - _iou_parts(pred, target, eps)[0]


def diou_loss_1d(pred: Tensor, target: Tensor, eps: float = 1e-8) -> Tensor:
    """losses.py ctr_diou_loss_1d: 1 - IoU + (centre distance / enclosing length)^2."""
    iou, (lp, rp, lg, rg) = _iou_parts(pred, target, eps)
    enclosing = torch.max(lp, lg) + torch.max(rp, rg)
    rho = 0.5 * (rp - lp - rg + lg)
    return 1.0 - iou + torch.square(rho / enclosing.clamp(min=eps))


def boundary_windows(logits: Tensor, num_bins: int, side: str) -> Tensor:
    """[B, T, C] boundary logits -> [B, T, C, num_bins + 1]: bin j of point t is the
    logit at t - num_bins + j (start) or t + j (end), 0 beyond the level's ends."""
    x = logits.transpose(1, 2)
    pad = (num_bins, 0) if side == "start" else (0, num_bins)
    x = F.pad(x, pad, mode="constant", value=0)
    return x.unfold(-1, num_bins + 1, 1).permute(0, 2, 1, 3)


def trident_offsets(offsets: Tensor, start_win: Tensor, end_win: Tensor) -> Tensor:
    """Training-time trident decode (meta_archs.py decode_offset): ``offsets``
    [B, P, 2 (num_bins + 1)], windows [B, P, C, num_bins + 1] -> expected distances
    [B, P, C, 2] (softmax over the bins of boundary + centre-offset logits)."""
    offsets = offsets.view(offsets.shape[:2] + (2, -1))
    left = torch.softmax(start_win + offsets[:, :, :1, :], dim=-1)
    right = torch.softmax(end_win + offsets[:, :, 1:, :], dim=-1)
    bins = left.shape[-1]
    left_idx = torch.arange(bins - 1, -1, -1, device=left.device, dtype=torch.float)[:, None]
    right_idx = torch.arange(bins, device=left.device, dtype=torch.float)[:, None]
    left = left.masked_fill(torch.isnan(right), 0)  # the reference masks by right's NaNs
    right = right.masked_fill(torch.isnan(right), 0)
    return torch.cat([torch.matmul(left, left_idx), torch.matmul(right, right_idx)], dim=-1)


def detection_losses(
    out: dict,
    cls_targets: list[Tensor],
    reg_targets: list[Tensor],
    previous: float,
    num_bins: int,
    iou_weight_power: float,
) -> tuple[dict[str, Tensor], float]:
    """meta_archs.py losses: {'cls_loss', 'reg_loss'} and the updated normaliser
    (``previous`` moved towards this batch's positive points, then divided by)."""
    valid = torch.cat(out["mask"], dim=1)
    gt_cls = torch.stack(cls_targets)
    pos = torch.logical_and(gt_cls.sum(-1) > 0, valid)
    start = torch.cat([boundary_windows(x, num_bins, "start") for x in out["start"]], dim=1)
    end = torch.cat([boundary_windows(x, num_bins, "end") for x in out["end"]], dim=1)
    decoded = trident_offsets(torch.cat(out["offsets"], dim=1), start, end)[pos]
    pos_cls = gt_cls[pos]
    pred = decoded[pos_cls.bool()]
    gt_off = torch.stack(reg_targets)[pos][torch.where(pos_cls)[0]]
    num_pos = int(pos.sum().item())
    normaliser = next_normaliser(previous, num_pos)
    target = gt_cls[valid]
    cls_loss = sigmoid_focal_loss(torch.cat(out["cls"], dim=1)[valid], target)
    weight = torch.ones_like(cls_loss)
    weight[target > 0] = (1 - iou_loss_1d(pred, gt_off)) ** iou_weight_power
    cls_loss = (cls_loss * weight).sum() / normaliser
    reg_loss = diou_loss_1d(pred, gt_off).sum() / normaliser if num_pos else 0 * pred.sum()
    return {"cls_loss": cls_loss, "reg_loss": reg_loss}, normaliser


def next_normaliser(previous: float, num_pos: int, momentum: float = 0.9) -> float:
    """The normaliser's EMA of positive points per batch."""
    return momentum * previous + (1 - momentum) * max(num_pos, 1)


def action_loss(level0_logits: Tensor, level0_mask: Tensor, labels: Tensor, p: float = 0.7):
    """FuSTAL's ActionLoss: dropout(p) on the level-0 logits [B, T, C]; k = (valid
    points of the whole batch) // 5; per video and class the mean of its k largest
    (padded points included, the reference sorts all T); softmax over the classes; BCE
    against labels / their sum."""
    logits = F.dropout(level0_logits, p=p, training=True)
    k = level0_mask.sum() // 5
    top = logits.sort(descending=True, dim=1)[0][:, :k, :]
    scores = torch.softmax(top.mean(1), dim=1)
    target = labels / torch.sum(labels, dim=1, keepdim=True)
    return F.binary_cross_entropy(scores, target)
