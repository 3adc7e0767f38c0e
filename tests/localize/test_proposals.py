"""Proposal scoring (reference §6) on hand-worked arrays."""

from __future__ import annotations

import numpy as np
import pytest

from hamnet.localize.proposals import (
    class_proposals,
    find_runs,
    localize_video,
    outer_inner_contrast,
    video_scores,
)


def test_find_runs():
    mask = np.array([1, 1, 0, 0, 1, 0, 1, 1, 1], dtype=bool)
    assert find_runs(mask).tolist() == [[0, 1], [4, 4], [6, 8]]
    assert find_runs(np.zeros(4, bool)).shape == (0, 2)
    assert find_runs(np.ones(3, bool)).tolist() == [[0, 2]]


def test_video_scores_topk_softmax():
    cas = np.array([[1.0, 0.0, 0.0], [3.0, 0.0, 1.0], [2.0, 2.0, 0.0], [0.0, 4.0, 0.0]])
    # T=4, r=2 -> k=2: pooled [2.5, 3.0, 0.5]; softmax, background dropped
    pooled = np.array([2.5, 3.0, 0.5])
    expected = np.exp(pooled) / np.exp(pooled).sum()
    np.testing.assert_allclose(video_scores(cas, 2), expected[:2])
    # k = max(1, floor(T / r)): r larger than T still pools the maximum
    np.testing.assert_allclose(
        video_scores(cas, 10)[0], np.exp(3) / (np.exp(3) + np.exp(4) + np.exp(1))
    )


def test_outer_inner_contrast_hand_worked():
    cas = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    runs = np.array([[4, 7], [0, 1], [8, 9], [5, 5]])
    # [4,7]: L=4, outer [3,4) and (7,8] -> mean(3, 8) = 5.5; inner mean(4..7) = 5.5
    # [0,1]: L=2, outer_s = max(0, int(-0.5)) = 0: nothing before; (1, int(1.5)=1] empty -> 0
    # [8,9]: before [int(7.5)=7, 8) -> 7; after (9, min(9, ...)] empty -> outer 7
    # [5,5]: L=1, int(4.75)=4 -> [4,5) = 4 and (5, int(5.25)=5] empty -> outer 4
    np.testing.assert_allclose(outer_inner_contrast(cas, runs), [0.0, 0.5, 1.5, 1.0])


def test_class_proposals_order_and_quirk():
    actionness = np.array([0.95, 0.2, 0.6, 0.7, 0.1])
    cas = np.arange(5.0)
    runs, scores = class_proposals(cas, actionness, np.array([0.5, 0.9]), 0.25, 0.1, True)
    # threshold 0.5: runs [0,0] and [2,3]; threshold 0.9: only snippet 0 -> quirk drops it
    assert runs.tolist() == [[0, 0], [2, 3]]
    # [0,0]: inner 0, outer (0, int(0.25)=0] empty -> 0; [2,3]: inner 2.5, outer [int(1.5)=1,2)
    # and (3, int(3.5)=3] -> mean(1) = 1
    np.testing.assert_allclose(scores, [0.1, 1.6])
    runs, _ = class_proposals(cas, actionness, np.array([0.5, 0.9]), 0.25, 0.1, False)
    assert runs.tolist() == [[0, 0], [2, 3], [0, 0]]


def test_quirks_compare_float32_actionness_with_float32_thresholds():
    """The reference's numpy 1 casts the float64 threshold to float32; numpy 2 (and hamnet
    without quirks) compare in float64: float32(0.52105263...) = 0.52105266 > 0.52105263."""
    threshold = np.linspace(0.1, 0.9, 20)[10]
    actionness = np.array([0.1, np.float32(threshold), 0.1], dtype=np.float32)
    cas = np.zeros(3)
    runs, _ = class_proposals(cas, actionness, np.array([threshold]), 0.25, 0.0, True)
    assert runs.tolist() == []
    runs, _ = class_proposals(cas, actionness, np.array([threshold]), 0.25, 0.0, False)
    assert runs.tolist() == [[1, 1]]
    # float64 actionness is compared in float64 either way
    runs, _ = class_proposals(cas, actionness.astype(np.float64), [threshold], 0.25, 0.0, True)
    assert runs.tolist() == [[1, 1]]


def test_localize_video_seconds_classes_and_nms():
    T = 20
    actionness = np.zeros(T)
    actionness[5:10] = 0.8
    cas = np.zeros((T, 3))
    cas[5:10, 0] = 1.0
    scores = np.array([0.7, 0.1])
    found = localize_video("v", cas, actionness, scores, ["A", "B"], nms="none")
    # 8 of 10 thresholds (0.1 .. 0.7667) are below 0.8: the same run [5, 9] each time
    assert len(found) == 8 and {d.label for d in found} == {"A"}
    assert found[0].start == pytest.approx(5 * 0.64) and found[0].end == pytest.approx(10 * 0.64)
    assert found[0].score == pytest.approx(1.0 - 0.0 + 0.2 * 0.7)
    soft = localize_video("v", cas, actionness, scores, ["A", "B"])
    assert len(soft) == 8 and soft[0].score == pytest.approx(1.14)
    assert soft[1].score == pytest.approx(1.14 * np.exp(-1 / 0.3))
    hard = localize_video("v", cas, actionness, scores, ["A", "B"], nms="hard")
    assert len(hard) == 1
    capped = localize_video("v", cas, actionness, scores, ["A", "B"], max_detections=3)
    assert [d.score for d in capped] == sorted((d.score for d in soft), reverse=True)[:3]
    assert localize_video("v", cas, actionness, np.array([0.1, 0.1]), ["A", "B"]) == []
