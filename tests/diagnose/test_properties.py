"""Invariants of the diagnosis on random ground truth and detections (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hamnet.data.annotations import AnnotationSet, Segment, Video
from hamnet.diagnose.analysis import ERROR_TYPES, diagnose
from hamnet.localize.detections import Detection

CLASSES = ["A", "B", "C"]
span = st.tuples(st.floats(0, 90), st.floats(0.5, 30)).map(lambda p: (p[0], min(p[0] + p[1], 100)))


@st.composite
def cases(draw):
    videos, detections = [], []
    for v in range(draw(st.integers(1, 5))):
        segs = [
            Segment(*draw(span), draw(st.sampled_from(CLASSES)))
            for _ in range(draw(st.integers(0, 4)))
        ]
        videos.append(Video(f"v{v}", "test", 100.0, tuple({s.label for s in segs}), tuple(segs)))
        for _ in range(draw(st.integers(0, 8))):
            start, end = draw(span)
            label = draw(st.sampled_from(CLASSES))
            detections.append(Detection(f"v{v}", label, draw(st.floats(0, 1)), start, end))
    return AnnotationSet(CLASSES, videos), detections


@settings(max_examples=60, deadline=None)
@given(cases())
def test_shares_sum_to_one_and_removing_errors_never_hurts(case):
    truth, detections = case
    if not any(v.segments for v in truth.videos):
        return
    result = diagnose(truth, detections, tiou=[0.3, 0.7], bin_set="activitynet")
    fp = result.false_positive
    for key in ("0.3", "0.7"):
        assert sum(fp["counts"][key].values()) == fp["detections"]
        if fp["detections"]:
            assert sum(fp["fractions"][key].values()) == pytest.approx(1.0)
    # a stricter threshold never makes more true positives
    assert fp["counts"]["0.7"]["true_positive"] <= fp["counts"]["0.3"]["true_positive"]
    assert set(fp["average_mAP_N_gain"]) == set(ERROR_TYPES) - {"true_positive"}
    assert all(gain >= -1e-12 for gain in fp["average_mAP_N_gain"].values())
    kept = result.ground_truth["instances_kept"]
    for name in ("length", "coverage", "num_instances"):
        assert sum(row["instances"] for row in result.false_negative[name]) == kept
        for row in result.false_negative[name]:
            assert row["missed_fraction"] is None or 0.0 <= row["missed_fraction"] <= 1.0
    assert 0.0 <= result.sensitivity["average_mAP_N"] <= 1.0
