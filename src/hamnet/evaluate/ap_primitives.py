"""Vectorised greedy matching of detections to ground truth, shared by the protocols.

Matching is sequential only inside one (class, video) group: a ground truth taken by
one detection is unavailable to the next. Groups are independent, so the loop runs over
the *position within a group* (step k handles the k-th item of every group at once),
vectorised over groups, thresholds and the other side's items.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Overlap = Callable[[np.ndarray, np.ndarray], np.ndarray]


def group_keys(video: np.ndarray, cls: np.ndarray, num_videos: int) -> np.ndarray:
    """One integer per (class, video) pair; -1 where either index is -1."""
    key = cls.astype(np.int64) * max(num_videos, 1) + video
    return np.where((video >= 0) & (cls >= 0), key, -1)


def sorted_unique(keys: np.ndarray) -> np.ndarray:
    """``np.unique`` of an integer array (the same values): numpy 2's ``unique`` imports
    ``numpy.ma`` on first use, a tenth of the import time of ``hamnet eval``."""
    ordered = np.sort(keys)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if ordered.size else ordered


def lookup(keys: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Position of each key in the sorted unique ``table``, -1 where absent."""
    if table.size == 0:
        return np.full(keys.shape, -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(table, keys), table.size - 1)
    return np.where(table[pos] == keys, pos, -1)


def slots(group: np.ndarray, rank: np.ndarray, num_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Position of each item within its group when ordered by ``rank`` -> (slot [N], counts [G])."""
    order = np.lexsort((rank, group))
    counts = np.bincount(group, minlength=num_groups)
    first = np.cumsum(counts) - counts
    slot = np.empty(group.shape[0], dtype=np.int64)
    slot[order] = np.arange(group.shape[0]) - first[group[order]]
    return slot, counts


def pad(group: np.ndarray, slot: np.ndarray, values: np.ndarray, shape: tuple, fill: float):
    """Scatter per-item ``values`` [N, ...] into a [G, M, ...] array filled with ``fill``."""
    out = np.full(shape + values.shape[1:], fill, dtype=np.float64)
    out[group, slot] = values
    return out


def steps(slot: np.ndarray) -> list[np.ndarray]:
    """Item indices of each step k (all items whose slot is k)."""
    if slot.size == 0:
        return []
    order = np.argsort(slot, kind="stable")
    bounds = np.cumsum(np.bincount(slot))
    return np.split(order, bounds[:-1])


def match_detections(
    det_group: np.ndarray,
    det_rank: np.ndarray,
    det_segment: np.ndarray,
    gt_group: np.ndarray,
    gt_segment: np.ndarray,
    thresholds: np.ndarray,
    overlap: Overlap,
    rule: str,
) -> np.ndarray:
    """Greedy detection-side matching -> true-positive flags [N, T] (see :func:`match_ids`)."""
    args = (det_group, det_rank, det_segment, gt_group, gt_segment, thresholds, overlap, rule)
    return _greedy(*args, want_ids=False)


def match_ids(
    det_group: np.ndarray,
    det_rank: np.ndarray,
    det_segment: np.ndarray,
    gt_group: np.ndarray,
    gt_segment: np.ndarray,
    thresholds: np.ndarray,
    overlap: Overlap,
    rule: str,
) -> np.ndarray:
    """Greedy detection-side matching -> index of the ground truth (a row of ``gt_group``)
    each detection takes at each threshold [N, T], -1 for none.

    Detections of a group are taken in ``det_rank`` order; each takes, among the free
    ground truths (file order within the group) whose overlap is >= the threshold,
    ``rule`` = "first": the first; "best": the highest overlap, ties broken as the
    ActivityNet evaluator does (reversed ``argsort`` of the unpadded overlap row).
    ``overlap(det [n, 2], gt [n, M, 2]) -> [n, M]``.
    """
    args = (det_group, det_rank, det_segment, gt_group, gt_segment, thresholds, overlap, rule)
    return _greedy(*args, want_ids=True)


def _greedy(
    det_group,
    det_rank,
    det_segment,
    gt_group,
    gt_segment,
    thresholds,
    overlap,
    rule,
    *,
    want_ids: bool,
):
    """The matching: instance indices [N, T] (-1: none) or true-positive flags.

    Only detections that reach the lowest threshold with some ground truth of their group
    can take one, and the others lock nothing, so they are left out. In a group with one
    ground truth "first" and "best" agree: at each threshold the best-ranked detection
    reaching it takes it (no loop). The other groups run the step loop.
    """
    num_groups = int(max(det_group.max(initial=-1), gt_group.max(initial=-1)) + 1)
    shape = (det_group.shape[0], thresholds.shape[0])
    out = np.full(shape, -1, dtype=np.int64) if want_ids else np.zeros(shape, dtype=bool)
    if det_group.size == 0:
        return out
    gt_slot, gt_counts = slots(gt_group, np.arange(gt_group.shape[0]), num_groups)
    width = int(gt_counts.max(initial=0))
    gt_pad = pad(gt_group, gt_slot, gt_segment, (num_groups, width), np.nan)
    gt_index = np.full((num_groups, width), -1, dtype=np.int64)
    gt_index[gt_group, gt_slot] = np.arange(gt_group.shape[0])
    ov = overlap(det_segment, gt_pad[det_group])
    ov = np.where(np.arange(width) < gt_counts[det_group][:, None], ov, -np.inf)
    reach = (ov >= thresholds.min()).any(axis=1)
    single = reach & (gt_counts[det_group] == 1)
    first = _first_reaching(det_group[single], det_rank[single], ov[single, 0], thresholds)
    if want_ids:
        rows, cols = np.nonzero(first)
        out[np.flatnonzero(single)[rows], cols] = gt_index[det_group[single][rows], 0]
    else:
        out[single] = first
    loop = np.flatnonzero(reach & ~single)
    found = _step_loop(det_group[loop], det_rank[loop], ov[loop], gt_counts, thresholds, rule)
    if want_ids:
        rows, cols, taken = found
        out[loop[rows], cols] = gt_index[det_group[loop][rows], taken]
    else:
        out[loop[found[0]], found[1]] = True
    return out


def _first_reaching(group, rank, ov, thresholds) -> np.ndarray:
    """Groups of one ground truth: [n, T] flags, True for the best-ranked detection of
    its group whose overlap ``ov`` [n] is >= each threshold."""
    if group.size == 0:
        return np.zeros((0, thresholds.shape[0]), dtype=bool)
    order = np.lexsort((rank, group))
    ok = ov[order, None] >= thresholds[None, :]
    before = np.cumsum(ok, axis=0) - ok  # reaching detections ahead in the whole order
    starts = np.flatnonzero(np.r_[True, group[order][1:] != group[order][:-1]])
    ahead = before - np.repeat(before[starts], np.diff(np.r_[starts, order.size]), axis=0)
    first = np.empty_like(ok)
    first[order] = ok & (ahead == 0)
    return first


def _step_loop(group, rank, ov, gt_counts, thresholds, rule):
    """The sequential matching, one step per position within a group, vectorised over
    groups: (detection rows, threshold columns, slot of the ground truth taken)."""
    num_groups, width = gt_counts.shape[0], ov.shape[1]
    locked = np.zeros((num_groups, thresholds.shape[0], width), dtype=bool)
    det_slot, _ = slots(group, rank, num_groups)
    found = []
    for idx in steps(det_slot):
        g = group[idx]
        ok = (ov[idx, None, :] >= thresholds[None, :, None]) & ~locked[g]
        choice = ok.argmax(axis=2) if rule == "first" else _best(ov[idx], ok, gt_counts[g])
        rows, cols = np.nonzero(ok.any(axis=2))
        taken = choice[rows, cols]
        locked[g[rows], cols, taken] = True
        found.append((idx[rows], cols, taken))
    if not found:
        return np.zeros((3, 0), dtype=np.int64)
    return tuple(np.concatenate(parts) for parts in zip(*found, strict=True))


def _best(ov: np.ndarray, ok: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Highest eligible overlap per (detection, threshold); exact ties resolved officially."""
    masked = np.where(ok, ov[:, None, :], -np.inf)
    choice = masked.argmax(axis=2)
    top = np.take_along_axis(masked, choice[..., None], axis=2)
    tied = ((masked == top) & ok).sum(axis=2) > 1
    for row, col in zip(*np.nonzero(tied), strict=True):
        preference = np.argsort(ov[row, : counts[row]])[::-1]
        choice[row, col] = next(j for j in preference if ok[row, col, j])
    return choice


def sort_flags_ap(flags_sorted: np.ndarray, npos: int) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative (recall, precision) [n, T] of true-positive flags in ranked order [n, T]."""
    # counted in integers (half the time of a float cumsum of booleans); tp + fp, the
    # number of detections so far, is the row number: the same floats as summing both
    tp = np.cumsum(flags_sorted, axis=0, dtype=np.int64).astype(np.float64)
    seen = np.arange(1, flags_sorted.shape[0] + 1, dtype=np.float64)[:, None]
    return tp / npos, tp / seen


def interpolated_ap(recall: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """VOC-2011 AP per column of [n, T] curves: area under the precision envelope -> [T]."""
    count = recall.shape[1]
    mprec = np.vstack([np.zeros(count), precision, np.zeros(count)])
    mrec = np.vstack([np.zeros(count), recall, np.ones(count)])
    envelope = np.maximum.accumulate(mprec[::-1], axis=0)[::-1]
    return np.sum((mrec[1:] - mrec[:-1]) * envelope[1:], axis=0)
