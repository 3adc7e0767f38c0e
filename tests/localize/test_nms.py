"""Soft-NMS and NMS on hand-worked segments, quirk on and off."""

from __future__ import annotations

import numpy as np
import pytest

from hamnet.localize.nms import nms, segment_iou, soft_nms_order


def test_segment_iou_plain_and_plus_one():
    a = np.array([0.0, 1.0])
    b = np.array([[0.5, 1.5], [2.0, 3.0], [0.0, 1.0]])
    np.testing.assert_allclose(segment_iou(a, b), [1 / 3, 0.0, 1.0])
    # "+1": inter 1.5, lengths 2 and 2 -> 1.5 / 2.5; disjoint by 1 s: inter max(0, 0) = 0
    np.testing.assert_allclose(segment_iou(a, b, plus_one=True), [0.6, 0.0, 1.0])
    np.testing.assert_allclose(segment_iou(a, np.array([[1.5, 2.0]]), plus_one=True), [0.5 / 3.0])


@pytest.mark.parametrize("plus_one, iou", [(True, 0.6), (False, 1 / 3)])
def test_soft_nms_decay(plus_one, iou):
    segs = np.array([[0.5, 1.5], [0.0, 1.0], [10.0, 11.0]])
    order, out_scores = soft_nms_order(segs, np.array([0.8, 0.9, 0.1]), 0.3, plus_one)
    out_segs = segs[order]
    assert out_segs.tolist() == [[0.0, 1.0], [0.5, 1.5], [10.0, 11.0]]
    np.testing.assert_allclose(out_scores, [0.9, 0.8 * np.exp(-(iou**2) / 0.3), 0.1])


def test_soft_nms_tie_order_follows_reference_swaps():
    segs = np.array([[0.0, 1.0], [10.0, 11.0], [20.0, 21.0]])
    order, scores = soft_nms_order(segs, np.array([0.8, 0.8, 0.9]))
    # step 1 takes index 2 and swaps it with index 0: remaining order [1, 0]
    assert order.tolist() == [2, 1, 0]
    np.testing.assert_allclose(scores, [0.9, 0.8, 0.8])


def test_soft_nms_keeps_every_proposal_and_empty_input():
    rng = np.random.default_rng(0)
    starts = rng.uniform(0, 50, 30)
    segs = np.stack([starts, starts + rng.uniform(0.5, 10, 30)], axis=1)
    order, scores = soft_nms_order(segs, rng.random(30))
    assert sorted(order.tolist()) == list(range(30))
    order, out_scores = soft_nms_order(np.zeros((0, 2)), np.zeros(0))
    assert order.shape == (0,) and out_scores.shape == (0,)


def test_hard_nms():
    segs = np.array([[0.0, 10.0], [1.0, 10.0], [20.0, 30.0], [0.0, 4.0]])
    keep = nms(segs, np.array([0.9, 0.8, 0.7, 0.6]), 0.5)
    assert keep.tolist() == [0, 2, 3]  # IoU(0, 1) = 0.9 suppressed; IoU(0, 3) = 0.4 kept
    assert nms(np.zeros((0, 2)), np.zeros(0), 0.5).shape == (0,)
