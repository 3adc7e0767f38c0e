"""Invariants of the detection evaluators on random inputs (hypothesis)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hamnet.evaluate.detection_map import evaluate_detections
from hamnet.localize.detections import Detection

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers import make_gt  # noqa: E402
from loop_reference import protocol_map  # noqa: E402

PROTOCOLS = ["anet", "thumos14", "wtalc"]
TIOU = [0.1, 0.3, 0.5, 0.7]


@st.composite
def problems(draw):
    """Random ground truth on 1-3 videos and 0-12 detections with distinct scores."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    gt = {}
    for v in range(int(rng.integers(1, 4))):
        spans = []
        for _ in range(int(rng.integers(1, 4))):
            start = float(np.round(rng.uniform(0, 50), 2))
            spans.append(
                (str(rng.choice(["X", "Y"])), start, start + float(np.round(rng.uniform(1, 20), 2)))
            )
        gt[f"v{v}"] = spans
    count = int(rng.integers(0, 13))
    scores = rng.permutation(count) / max(count, 1) + 0.01
    detections = []
    for i in range(count):
        start = float(rng.uniform(0, 50))
        detections.append(
            Detection(
                f"v{rng.integers(0, 4)}",
                str(rng.choice(["X", "Y"])),
                float(scores[i]),
                start,
                start + float(rng.uniform(0.5, 20)),
            )
        )
    return make_gt(gt, classes=["X", "Y"]), detections


def _map(gt, detections, protocol):
    return np.array(
        evaluate_detections(
            gt, detections, tiou=TIOU, protocol=protocol, unknown_videos="count"
        ).mAP
    )


@settings(max_examples=40, deadline=None)
@given(problems())
def test_perfect_predictions_score_one(problem):
    gt, _ = problem
    perfect = [
        Detection(v.name, s.label, 1.0 - 0.01 * i, s.start, s.end)
        for i, (v, s) in enumerate((v, s) for v in gt.videos for s in v.segments)
    ]
    for protocol in ["anet", "thumos14"]:
        np.testing.assert_allclose(_map(gt, perfect, protocol), 1.0, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(problems(), st.randoms(use_true_random=False))
def test_permutations_change_nothing(problem, random):
    gt, detections = problem
    shuffled = list(detections)
    random.shuffle(shuffled)
    videos = list(gt.videos)
    random.shuffle(videos)
    regrouped = make_gt(
        {v.name: [(s.label, s.start, s.end) for s in v.segments] for v in videos}, ["X", "Y"]
    )
    for protocol in PROTOCOLS:
        base = _map(gt, detections, protocol)
        np.testing.assert_allclose(_map(regrouped, shuffled, protocol), base, atol=1e-12)
        assert np.all(base >= 0) and np.all(base <= 1 + 1e-12)


@settings(max_examples=40, deadline=None)
@given(problems(), st.sampled_from(["X", "Y"]))
def test_lowest_scored_false_positive_never_raises_ap(problem, label):
    gt, detections = problem
    extra = Detection("elsewhere", label, 0.001, 0.0, 5.0)  # a video without ground truth
    for protocol in PROTOCOLS:
        before = _map(gt, detections, protocol)
        assert np.all(_map(gt, [*detections, extra], protocol) <= before + 1e-12)


@settings(max_examples=40, deadline=None)
@given(problems())
def test_vectorised_equals_official_loops(problem):
    gt, detections = problem
    rows = [(v.name, s.label, s.start, s.end) for v in gt.videos for s in v.segments]
    det_rows = [(d.video, d.label, d.score, d.start, d.end) for d in detections]
    for protocol in ["anet", "thumos14"]:
        loop = protocol_map(protocol, rows, det_rows, TIOU)
        np.testing.assert_allclose(_map(gt, detections, protocol), loop, atol=1e-12)
