"""Each baseline's reference detection rule on hand-made T-CAS, detections worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from hamnet.localize.reference_rules import (
    basnet_rule,
    minmax_normalise,
    plus_one_nms,
    stpn_rule,
    uniform_sample_indices,
    upsample_linear,
    wtalc_rule,
)

CLASSES = ["a", "b"]


def _rows(detections):
    return [(d.label, d.start, d.end, d.score) for d in detections]


def test_uniform_sampling_floors_i_times_length_over_count():
    assert uniform_sample_indices(10, 4).tolist() == [0, 2, 5, 7]
    assert uniform_sample_indices(3, 5).tolist() == [0, 0, 1, 1, 2]
    assert uniform_sample_indices(6, 6).tolist() == list(range(6))


def test_upsampling_is_linear_and_extends_the_last_segment():
    up = upsample_linear(np.array([[0.0], [1.0], [1.0], [0.0]]), 2)[:, 0]
    assert up.tolist() == [0.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.0, -0.5]


def test_wtalc_keeps_positive_classes_runs_of_two_and_scores_max_plus_07_class_score():
    cas = np.zeros((16, 2), dtype=np.float32)
    cas[[2, 3, 7, 10], 0] = [4.0, 5.0, 4.5, 1.0]  # top-2 mean 4.75 > 0: kept
    cas[:, 1] = -1.0
    cas[0, 1] = 0.5  # top-2 mean -0.25: not kept
    # threshold 5 - 0.5 * 5 = 2.5: runs [2, 3] (kept) and [7] (one snippet: dropped)
    found = _rows(wtalc_rule("v", cas, CLASSES, 0.64))
    assert found == [("a", 2 * 0.64, 4 * 0.64, pytest.approx(5.0 + 0.7 * 4.75))]


def test_wtalc_keeps_nothing_below_eight_snippets():
    assert wtalc_rule("v", np.ones((7, 2), dtype=np.float32), CLASSES, 0.64) == []


def test_basnet_minmax_clamps_at_zero_and_treats_a_flat_column_as_span_one():
    out = minmax_normalise(np.array([[-2.0, 2.0], [1.0, 2.0], [3.0, 2.0]]))
    assert out[:, 0].tolist() == pytest.approx([-2 / 3, 1 / 3, 1.0])
    assert out[:, 1].tolist() == [0.0, 0.0, 0.0]


def _basnet_cas() -> np.ndarray:
    cas = np.zeros((4, 3), dtype=np.float32)  # C = 2 plus background
    cas[:, 1] = [0.0, 1.0, 1.0, 0.0]
    return cas


def test_basnet_hand_worked_video():
    # class b: x24 gives v_j = j/24, 1, (72 - j)/24 on j < 72, <= 0 after. The best run is
    # threshold 0.225's, [6, 66]: inner mean (285/24 + 23 + 285/24) / 61, outer 0 (its
    # snippets are below 0.225, zeroed), bonus 0.2 x 1. Every other threshold's run holds
    # it (IoU >= 0.7 with +1 lengths): suppressed.
    factor = 0.64 * 4 / (24 * 4)
    found = _rows(
        basnet_rule(
            "v", _basnet_cas(), np.array([0.1, 0.3]), CLASSES, length=4, snippet_seconds=0.64
        )
    )
    assert found == [
        (
            "b",
            pytest.approx(6 * factor),
            pytest.approx(67 * factor),
            pytest.approx(46.75 / 61 + 0.2),
        )
    ]


def test_basnet_class_zero_alone_gives_nothing():
    """test.py's ``pred.any()``: the predicted classes [0] count as none."""
    cas = _basnet_cas()[:, [1, 0, 2]]
    scores = np.array([0.9, 0.1])
    assert basnet_rule("v", cas, scores, CLASSES, length=4, snippet_seconds=0.64) == []


def test_basnet_nms_adds_one_to_lengths_in_seconds():
    rows = np.array([[0.9, 0.0, 0.1], [0.8, 0.15, 0.25]])
    # disjoint, yet inter = 0.1 - 0.15 + 1 = 0.95 over 1.1 + 1.1 - 0.95: IoU 0.76 >= 0.7
    assert plus_one_nms(rows, 0.7).tolist() == [0]
    assert plus_one_nms(rows, 0.8).tolist() == [0, 1]


def test_stpn_hand_worked_video():
    # attention [1, 0], T-CAS [2, 2]: signal s0 (1 - j/24), s0 = sigmoid(2), >= 0.05 for
    # j <= 22; score: mean of 2 (1 - j/24) over j = 0..22 = 2 x 13/24
    cas = np.full((2, 2), 2.0, dtype=np.float32)
    found = _rows(
        stpn_rule(
            "v",
            cas,
            np.array([1.0, 0.0]),
            np.array([0.1, 0.5]),
            CLASSES,
            length=2,
            snippet_seconds=0.64,
        )
    )
    factor = 0.64 * 2 / (24 * 2)
    assert found == [("b", 0.0, pytest.approx(23 * factor), pytest.approx(2 * 13 / 24, rel=1e-6))]


def test_stpn_run_of_only_the_first_snippet_gives_nothing():
    """utils.py's ``temp_list.any()``: the positions [0] count as none."""
    logit = np.log(0.051 / 0.949)  # sigmoid 0.051: index 0 above 0.05, index 1 below
    cas = np.full((2, 2), logit, dtype=np.float32)
    scores = np.array([0.0, 0.5])
    args = ("v", cas, np.array([1.0, 0.0]), scores, CLASSES)
    assert stpn_rule(*args, length=2, snippet_seconds=0.64) == []
    assert (
        stpn_rule(
            "v",
            cas,
            np.array([1.0, 0.0]),
            np.array([0.9, 0.0]),
            CLASSES,
            length=2,
            snippet_seconds=0.64,
        )
        == []
    )  # class 0 alone: pred.any()
