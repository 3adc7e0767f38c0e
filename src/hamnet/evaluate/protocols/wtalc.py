"""The W-TALC protocol (``detectionMAP.py``, reused by CO2-Net, DELU and others).

Works on snippet index sets: a span [s, e] seconds covers range(round(s f), round(e f)),
f = 1 / snippet seconds (25/16 for the released features), rounding half to even as
Python's ``round``. Only videos with ground truth take part; a detection overlapping an
ambiguous span of its video is dropped. Per class, detections by descending score
(stable) each take the first remaining ground truth of their video (annotation order)
with IoU >= the threshold. AP = sum of the precision at each true positive / number of
ground truths.
"""

from __future__ import annotations

import numpy as np

from hamnet.evaluate.ap_primitives import (
    group_keys,
    lookup,
    match_detections,
    sort_flags_ap,
    sorted_unique,
)
from hamnet.evaluate.inputs import EvalInput
from hamnet.timing import RELEASED_SNIPPET_SECONDS, snippets_per_second


def to_snippets(segments: np.ndarray, rate: float) -> np.ndarray:
    """Seconds [..., 2] -> half-open snippet index bounds [..., 2] (round half to even);
    ``rate``: snippets per second."""
    return np.round(segments * rate)


def set_iou(det: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU of index ranges: det [n, 2] with gt [n, M, 2] (half-open bounds) -> [n, M]."""
    det_len = np.maximum(det[:, None, 1] - det[:, None, 0], 0)
    gt_len = np.maximum(gt[..., 1] - gt[..., 0], 0)
    inter = np.maximum(
        np.minimum(det[:, None, 1], gt[..., 1]) - np.maximum(det[:, None, 0], gt[..., 0]), 0
    )
    inter = np.minimum(inter, np.minimum(det_len, gt_len))
    union = det_len + gt_len - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def kept_detections(data: EvalInput, rate: float) -> np.ndarray:
    """Indices of detections that take part: evaluated class, video with ground truth,
    no positive IoU with an ambiguous span of the video."""
    with_gt = np.zeros(len(data.videos), dtype=bool)
    with_gt[data.gt_video] = True
    ok = (data.det_class >= 0) & (data.det_video >= 0)
    ok[ok] = with_gt[data.det_video[ok]]
    det_idx = to_snippets(data.det_segment, rate)
    for video, spans in data.ambiguous.items():
        members = np.flatnonzero(ok & (data.det_video == video))
        if members.size and spans.size:
            amb = np.broadcast_to(to_snippets(spans, rate), (members.size, *spans.shape))
            ok[members] &= ~(set_iou(det_idx[members], amb) > 0).any(axis=1)
    return np.flatnonzero(ok)


def average_precision(
    data: EvalInput, thresholds: np.ndarray, snippet_seconds: float = RELEASED_SNIPPET_SECONDS
) -> np.ndarray:
    """AP [T, K] for the K evaluated classes."""
    rate = snippets_per_second(snippet_seconds)
    kept = kept_detections(data, rate)
    order = kept[np.argsort(-data.det_score[kept], kind="stable")]
    rank = np.empty(data.det_score.shape[0], dtype=np.int64)
    rank[order] = np.arange(order.shape[0])
    num_videos = len(data.videos)
    gt_keys = group_keys(data.gt_video, data.gt_class, num_videos)
    table = sorted_unique(gt_keys)
    det_group = lookup(group_keys(data.det_video[order], data.det_class[order], num_videos), table)
    tp = np.zeros((order.shape[0], thresholds.shape[0]), dtype=bool)
    matched = np.flatnonzero(det_group >= 0)
    tp[matched] = match_detections(
        det_group[matched],
        rank[order[matched]],
        to_snippets(data.det_segment[order[matched]], rate),
        lookup(gt_keys, table),
        to_snippets(data.gt_segment, rate),
        thresholds,
        set_iou,
        rule="first",
    )
    npos = np.bincount(data.gt_class, minlength=len(data.classes))
    ap = np.zeros((thresholds.shape[0], len(data.classes)))
    for c in range(len(data.classes)):
        flags = tp[data.det_class[order] == c]
        if flags.any():
            _, precision = sort_flags_ap(flags, int(npos[c]))
            ap[:, c] = (precision * flags).sum(axis=0) / npos[c]
    return ap
