"""Straightforward (slow) versions of the diagnosis steps that hamnet vectorises, kept as
the yardstick of tests/diagnose/test_fast_path.py: per-group greedy matching in plain
Python, per-detection error typing, AP recomputed on the compacted rows per
(class, threshold, error type) and per (class, bin)."""

from __future__ import annotations

import numpy as np

from hamnet.diagnose.analysis import (
    BACKGROUND,
    CONFUSION,
    DOUBLE,
    LOCALIZATION,
    MIN_TIOU,
    TP,
    WRONG_LABEL,
    normalized_ap,
)


def rankings(table) -> list[np.ndarray]:
    """Per class, its detections by decreasing score (reversed default argsort)."""
    out = []
    for c in range(len(table.classes)):
        members = np.flatnonzero(table.det_class == c)
        out.append(members[table.det_score[members].argsort()[::-1]])
    return out


def iou(table, det: int, members: np.ndarray) -> np.ndarray:
    start, end = table.det_segment[det]
    gt = table.gt_segment[members]
    inter = (np.minimum(end, gt[:, 1]) - np.maximum(start, gt[:, 0])).clip(0)
    union = (gt[:, 1] - gt[:, 0]) + (end - start) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / union


def match(table, thresholds: np.ndarray) -> np.ndarray:
    """Per class, detections best first; each takes, at each threshold, the free instance
    of its video and class with the highest tIoU (reversed argsort order) if >= it."""
    matched = np.full((table.det_class.size, thresholds.size), -1, dtype=np.int64)
    for c, ranked in enumerate(rankings(table)):
        locked: set[tuple[int, int]] = set()
        for i in ranked.tolist():
            members = np.flatnonzero((table.gt_video == table.det_video[i]) & (table.gt_class == c))
            if table.det_video[i] < 0 or members.size == 0:
                continue
            overlap = np.nan_to_num(iou(table, i, members), nan=-1.0)
            order = np.argsort(overlap)[::-1]
            for t, limit in enumerate(thresholds):
                for j in order:
                    if overlap[j] < limit:
                        break
                    if (t, int(members[j])) in locked:
                        continue
                    locked.add((t, int(members[j])))
                    matched[i, t] = members[j]
                    break
    return matched


def error_types(table, matched, thresholds, members) -> np.ndarray:
    types = np.full(matched.shape, BACKGROUND, dtype=np.int64)
    types[matched >= 0] = TP
    for i in members.tolist():
        gt = np.flatnonzero(table.gt_video == table.det_video[i])
        if table.det_video[i] < 0 or gt.size == 0:
            continue
        overlap = iou(table, i, gt)
        best = int(np.argmax(overlap))
        top, same = overlap[best], table.gt_class[gt[best]] == table.det_class[i]
        for t, threshold in enumerate(thresholds):
            if matched[i, t] >= 0:
                continue
            if top >= threshold:
                types[i, t] = DOUBLE if same else WRONG_LABEL
            elif top >= MIN_TIOU:
                types[i, t] = LOCALIZATION if same else CONFUSION
    return types


def ap_without_type(table, matched, types, ranked, npos, code) -> list[float]:
    """AP_N per threshold of one class's ranked detections without those typed ``code``."""
    nbar = table.average_instances_per_class
    hits = matched[ranked] >= 0
    return [
        normalized_ap(hits[:, t][types[ranked, t] != code][:, None], npos, nbar)[0]
        for t in range(hits.shape[1])
    ]


def bin_ap(table, matched, ranked, in_bin: np.ndarray, c: int) -> np.ndarray | None:
    """AP_N per threshold of class c with only the bin's instances (None: none in it)."""
    npos = int(np.count_nonzero(in_bin & (table.gt_class == c)))
    if npos == 0:
        return None
    ids = matched[ranked]
    keep = np.all((ids < 0) | in_bin[np.maximum(ids, 0)], axis=1)
    return normalized_ap(ids[keep] >= 0, npos, table.average_instances_per_class)


def drop_low_precision(table, matched, minimum: float) -> np.ndarray:
    """Unmatch the detections whose normalized precision (all rows counted) is <= minimum."""
    kept = matched.copy()
    npos, nbar = table.positives(), table.average_instances_per_class
    for c, ranked in enumerate(rankings(table)):
        if ranked.size == 0 or npos[c] == 0:
            continue
        hits = matched[ranked] >= 0
        tp = np.cumsum(hits, axis=0, dtype=np.float64)
        fp = np.cumsum(~hits, axis=0, dtype=np.float64)
        recall = tp / npos[c]
        precision = recall * nbar / (recall * nbar + fp)
        rows, cols = np.nonzero(precision <= minimum)
        kept[ranked[rows], cols] = -1
    return kept
