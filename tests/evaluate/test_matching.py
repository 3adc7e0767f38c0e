"""The greedy matching's shortcuts (detections below the lowest threshold left out,
one-instance groups matched without the step loop) against a plain per-threshold loop."""

from __future__ import annotations

import numpy as np
import pytest

from hamnet.evaluate.ap_primitives import match_ids, sorted_unique
from hamnet.evaluate.protocols.anet import segment_iou

THRESHOLDS = np.array([0.5, 0.7])


def _ids(det_group, det_segment, gt_group, gt_segment, thresholds=THRESHOLDS, rule="best"):
    det_group, gt_group = np.asarray(det_group), np.asarray(gt_group)
    rank = np.arange(det_group.size)  # file order is rank order here
    segments = np.asarray(det_segment, dtype=float), np.asarray(gt_segment, dtype=float)
    return match_ids(det_group, rank, segments[0], gt_group, segments[1], thresholds,
                     segment_iou, rule)  # fmt: skip


def test_one_instance_group_goes_to_the_first_detection_reaching_each_threshold():
    # IoU with [0, 10]: 0.4 (below both), 0.6, 0.8, 1.0
    got = _ids([0, 0, 0, 0], [[0, 4], [0, 6], [0, 8], [0, 10]], [0], [[0, 10]])
    assert got.tolist() == [[-1, -1], [0, -1], [-1, 0], [-1, -1]]


def test_groups_of_one_and_of_two_instances_side_by_side():
    det = [[20, 29], [0, 10], [0, 9], [21, 30], [100, 110]]
    got = _ids([1, 0, 0, 1, 0], det, [1, 0, 1], [[20, 30], [0, 10], [0, 9.5]])
    # group 1 holds instances 0 and 2: [20, 29] takes 0; [21, 30] finds it taken, and
    # [0, 9.5] of its group does not overlap it. Group 0 holds instance 1 only.
    assert got.tolist() == [[0, 0], [1, 1], [-1, -1], [-1, -1], [-1, -1]]


def _plain_loop(det_group, rank, det_segment, gt_group, gt_segment, thresholds):
    """Each threshold on its own: detections in rank order take the free instance of their
    group with the highest IoU (no ties in these random cases)."""
    out = np.full((det_group.size, thresholds.size), -1)
    for t, threshold in enumerate(thresholds):
        free = set(range(gt_group.size))
        for d in np.lexsort((rank, det_group)):
            mine = [g for g in sorted(free) if gt_group[g] == det_group[d]]
            if not mine:
                continue
            iou = segment_iou(det_segment[d : d + 1], gt_segment[mine][None])[0]
            best = int(np.argmax(np.where(np.isnan(iou), -np.inf, iou)))
            if iou[best] >= threshold:
                out[d, t] = mine[best]
                free.discard(mine[best])
    return out


@pytest.mark.parametrize("seed", range(30))
def test_random_groups_equal_the_plain_loop(seed):
    rng = np.random.default_rng(seed)
    gt_group = rng.integers(0, 6, int(rng.integers(1, 12)))
    gt_start = rng.uniform(0, 50, gt_group.size)
    gt_segment = np.stack([gt_start, gt_start + rng.uniform(0, 20, gt_group.size)], axis=1)
    gt_segment[rng.random(gt_group.size) < 0.1, 1] = gt_segment[:, 0][0]  # a few empty ones
    gt_segment[:, 1] = np.maximum(gt_segment[:, 1], gt_segment[:, 0])
    det_group = rng.choice(gt_group, int(rng.integers(1, 40)))
    det_start = rng.uniform(0, 50, det_group.size)
    det_segment = np.stack([det_start, det_start + rng.uniform(0, 20, det_group.size)], axis=1)
    rank = rng.permutation(det_group.size)
    thresholds = np.sort(rng.uniform(0.05, 0.95, 3))
    args = (det_group, rank, det_segment, gt_group, gt_segment, thresholds)
    assert np.array_equal(match_ids(*args, segment_iou, "best"), _plain_loop(*args))


def test_sorted_unique_is_numpys_unique():
    rng = np.random.default_rng(0)
    for size in (0, 1, 7, 300):
        keys = rng.integers(-1, 20, size)
        assert np.array_equal(sorted_unique(keys), np.unique(keys))
