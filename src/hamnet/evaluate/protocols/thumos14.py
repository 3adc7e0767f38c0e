"""The official THUMOS 2014 protocol (MATLAB kit ``TH14evaldet`` / ``TH14eventdetpr``).

Per class, video and threshold: the video's detections sorted by descending confidence
(stable); each ground truth in file order takes the free detection of largest overlap
(the first on a tie), a true positive if the overlap is strictly greater than the
threshold. Other detections are false positives unless they overlap an ambiguous span.
Ranking: stable by descending confidence over [true positives, false positives], so a
true positive precedes a false positive of equal confidence. AP: 11-point.
"""

from __future__ import annotations

import numpy as np

from hamnet.evaluate.ap_primitives import (
    group_keys,
    lookup,
    pad,
    slots,
    sorted_unique,
    steps,
)
from hamnet.evaluate.inputs import EvalInput

# Octave's range 0:0.1:1 is base + i * increment (0.30000000000000004, ...).
RECALL_POINTS = np.arange(11) * 0.1


def overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The kit's ``intervalsingleoverlapvalseconds`` of a [n, 2] with b [n, M, 2] -> [n, M].

    Intersection over the hull (equal to IoU whenever they intersect), 0 if disjoint.
    """
    width = np.minimum(a[:, None, 1], b[..., 1]) - np.maximum(a[:, None, 0], b[..., 0])
    hull = np.maximum(a[:, None, 1], b[..., 1]) - np.minimum(a[:, None, 0], b[..., 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(width > 0, width / hull, 0.0)


def match_ground_truth(data: EvalInput, thresholds: np.ndarray) -> np.ndarray:
    """True-positive flags [N, T] of every detection (ground-truth-side greedy matching)."""
    num_videos = len(data.videos)
    gt_keys = group_keys(data.gt_video, data.gt_class, num_videos)
    table = sorted_unique(gt_keys)
    gt_group = lookup(gt_keys, table)
    det_group = lookup(group_keys(data.det_video, data.det_class, num_videos), table)
    tp = np.zeros((data.det_score.shape[0], thresholds.shape[0]), dtype=bool)
    matched = np.flatnonzero(det_group >= 0)
    if matched.size == 0:
        return tp
    groups = det_group[matched]
    det_slot, det_counts = slots(groups, -data.det_score[matched], table.size)
    width = int(det_counts.max())
    det_pad = pad(groups, det_slot, data.det_segment[matched], (table.size, width), np.nan)
    free = np.ones((table.size, thresholds.shape[0], width), dtype=bool)
    gt_slot, _ = slots(gt_group, np.arange(gt_group.shape[0]), table.size)
    for idx in steps(gt_slot):
        g = gt_group[idx]
        ov = overlap(data.gt_segment[idx], det_pad[g])
        ov = np.where(np.arange(width) < det_counts[g][:, None], ov, -np.inf)
        masked = np.where(free[g], ov[:, None, :], -np.inf)
        choice = masked.argmax(axis=2)
        best = np.take_along_axis(masked, choice[..., None], axis=2)[..., 0]
        rows, cols = np.nonzero(best > thresholds[None, :])
        free[g[rows], cols, choice[rows, cols]] = False
    tp[matched] = ~free[groups, :, det_slot]
    return tp


def ambiguous_flags(data: EvalInput) -> np.ndarray:
    """[N] True where a detection overlaps (positive width) an ambiguous span of its video."""
    flags = np.zeros(data.det_score.shape[0], dtype=bool)
    for video, spans in data.ambiguous.items():
        members = np.flatnonzero(data.det_video == video)
        if members.size and spans.size:
            seg = data.det_segment[members]
            width = np.minimum(seg[:, None, 1], spans[None, :, 1]) - np.maximum(
                seg[:, None, 0], spans[None, :, 0]
            )
            flags[members] = (width > 0).any(axis=1)
    return flags


def eleven_point_ap(flags: np.ndarray, conf: np.ndarray, npos: int) -> float:
    """AP of true/false-positive ``flags`` [n] with confidences [n] (TP first on ties)."""
    if not flags.any():
        return 0.0
    order = np.lexsort((~flags, -conf))
    tp = np.cumsum(flags[order], dtype=np.float64)
    fp = np.cumsum(~flags[order], dtype=np.float64)
    recall, precision = tp / npos, tp / (tp + fp)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    first = np.searchsorted(recall, RECALL_POINTS, side="left")
    reached = first < recall.shape[0]
    values = np.where(reached, envelope[np.minimum(first, recall.shape[0] - 1)], 0.0)
    return float(sum(v / RECALL_POINTS.shape[0] for v in values))


def average_precision(data: EvalInput, thresholds: np.ndarray) -> np.ndarray:
    """AP [T, K] for the K evaluated classes."""
    tp = match_ground_truth(data, thresholds)
    ambiguous = ambiguous_flags(data)
    npos = np.bincount(data.gt_class, minlength=len(data.classes))
    ap = np.zeros((thresholds.shape[0], len(data.classes)))
    for c in range(len(data.classes)):
        members = np.flatnonzero(data.det_class == c)
        for t in range(thresholds.shape[0]):
            keep = tp[members, t] | ~ambiguous[members]
            chosen = members[keep]
            ap[t, c] = eleven_point_ap(tp[chosen, t], data.det_score[chosen], int(npos[c]))
    return ap
