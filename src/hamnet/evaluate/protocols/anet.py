"""The ActivityNet protocol (official ``Evaluation/eval_detection.py``), vectorised.

Per class: detections ranked by numpy's default ``argsort`` of their scores (in input
order), reversed; each takes the free ground truth of its video with the highest IoU
if that IoU >= the threshold (candidates in reversed ``argsort`` order of IoU), else it
is a false positive, as is every detection in a video without ground truth of its
class. AP: area under the interpolated precision envelope. The same float operations
as the official code are used, so ties and threshold comparisons fall the same way.
"""

from __future__ import annotations

import numpy as np

from hamnet.evaluate.ap_primitives import (
    group_keys,
    interpolated_ap,
    lookup,
    match_detections,
    sort_flags_ap,
    sorted_unique,
)
from hamnet.evaluate.inputs import EvalInput


def segment_iou(det: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU of detections [n, 2] with their groups' ground truth [n, M, 2] -> [n, M].

    The official expression order (union = gt length + detection length - intersection).
    """
    start = np.maximum(det[:, None, 0], gt[..., 0])
    end = np.minimum(det[:, None, 1], gt[..., 1])
    inter = (end - start).clip(0)
    union = (gt[..., 1] - gt[..., 0]) + (det[:, None, 1] - det[:, None, 0]) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / union


def class_rankings(data: EvalInput) -> list[np.ndarray]:
    """Per class, its detections' indices best first (official tie order)."""
    rankings = []
    for c in range(len(data.classes)):
        members = np.flatnonzero(data.det_class == c)
        rankings.append(members[data.det_score[members].argsort()[::-1]])
    return rankings


def average_precision(data: EvalInput, thresholds: np.ndarray) -> np.ndarray:
    """AP [T, K] for the K evaluated classes."""
    rankings = class_rankings(data)
    rank = np.zeros(data.det_score.shape[0], dtype=np.int64)
    for members in rankings:
        rank[members] = np.arange(members.shape[0])
    num_videos = len(data.videos)
    table = sorted_unique(group_keys(data.gt_video, data.gt_class, num_videos))
    det_group = lookup(group_keys(data.det_video, data.det_class, num_videos), table)
    matched = np.flatnonzero(det_group >= 0)
    tp = np.zeros((data.det_score.shape[0], thresholds.shape[0]), dtype=bool)
    tp[matched] = match_detections(
        det_group[matched],
        rank[matched],
        data.det_segment[matched],
        lookup(group_keys(data.gt_video, data.gt_class, num_videos), table),
        data.gt_segment,
        thresholds,
        segment_iou,
        rule="best",
    )
    npos = np.bincount(data.gt_class, minlength=len(data.classes))
    ap = np.zeros((thresholds.shape[0], len(data.classes)))
    for c, members in enumerate(rankings):
        if members.size:
            recall, precision = sort_flags_ap(tp[members], int(npos[c]))
            ap[:, c] = interpolated_ap(recall, precision)
    return ap
