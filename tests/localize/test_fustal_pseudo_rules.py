"""FuSTAL's detection-level pseudo-label rules against its official code (the fixture
of tools/reference/record_fustal_pseudo.py: CoLA's NMS, the student loader's selection,
merge_box, on seeded synthetic detections), on hand-worked cases, and the student
reading them from its options."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hamnet.errors import ConfigError
from hamnet.localize.detections import Detection
from hamnet.localize.pseudo_labels import (
    PseudoLabelRules,
    class_wise_nms,
    kept_rows,
    merge_groups,
    select_pseudo_labels,
)
from hamnet.methods.student import pseudo

OFFICIAL = json.loads(
    (Path(__file__).parent / "fixtures" / "fustal_pseudo_official.json").read_text()
)


def arrays(rows):
    """[class, score, start, end] rows as (segments [N, 2], scores [N], labels [N])."""
    segments = np.array([[r[2], r[3]] for r in rows], dtype=np.float64).reshape(-1, 2)
    return segments, np.array([r[1] for r in rows], dtype=np.float64), [r[0] for r in rows]


def assert_same_rows(expected, found):
    """Both ways: every (label, score, start, end) of one list has its own partner in the
    other, segments within 1e-4 s and scores within 1e-4 relative."""
    assert len(expected) == len(found)

    def partners(rows, others):
        free = list(range(len(others)))
        for label, score, start, end in rows:
            match = next(
                (
                    j
                    for j in free
                    if others[j][0] == label
                    and abs(others[j][2] - start) <= 1e-4
                    and abs(others[j][3] - end) <= 1e-4
                    and abs(others[j][1] - score) <= 1e-4 * max(abs(score), 1e-12)
                ),
                None,
            )
            assert match is not None, (label, score, start, end)
            free.remove(match)

    partners(expected, found)
    partners(found, expected)


@pytest.mark.parametrize("case", OFFICIAL["nms"], ids=lambda c: f"seed{c['seed']}-iou{c['iou']}")
def test_cola_nms_keeps_what_the_generator_keeps_in_its_order(case):
    segments, scores, labels = arrays(case["rows"])
    kept = class_wise_nms(segments, scores, labels, case["iou"])
    found = [case["rows"][i] for i in kept]
    assert_same_rows(case["kept"], found)
    assert [r[1] for r in found] == pytest.approx([r[1] for r in case["kept"]], rel=1e-12)
    assert len(kept) < len(case["rows"])  # the case suppresses something


@pytest.mark.parametrize("case", OFFICIAL["select"], ids=lambda c: f"seed{c['seed']}")
def test_the_score_and_overlap_rules_keep_what_the_student_loader_keeps(case):
    segments, scores, labels = arrays(case["rows"])
    keep = kept_rows(segments.astype(np.float32), scores.astype(np.float32), PseudoLabelRules())
    found = [case["rows"][i] for i in np.flatnonzero(keep)]
    # get_data returns segments and labels only: the scores are left out on both sides
    official = case["kept"]
    pairs = zip(official["labels"], official["segments"], strict=True)
    expected = [[c, 1.0, s, e] for c, (s, e) in pairs]
    assert_same_rows(expected, [[c, 1.0, s, e] for c, _, s, e in found])
    confident = int((scores.astype(np.float32) > np.float32(0.4)).sum())
    assert 0 < len(found) < confident  # the overlap rule removes some confident ones


@pytest.mark.parametrize("case", OFFICIAL["merge"], ids=lambda c: f"seed{c['seed']}")
def test_the_merge_gives_merge_box_segments_and_scores(case):
    segments, scores, labels = arrays(case["rows"])
    groups = merge_groups(segments, scores, 0.1)
    found = [[labels[i], scores[i], start, end] for i, start, end in groups]
    assert len(found) == len(case["segments"])  # in merge_box's order
    np.testing.assert_allclose([g[2:] for g in found], case["segments"], rtol=0, atol=1e-4)
    np.testing.assert_allclose([g[1] for g in found], case["scores"], rtol=1e-4)
    if case["labels_comparable"]:
        official = [
            [label, score, *segment]
            for label, score, segment in zip(
                case["labels"], case["scores"], case["segments"], strict=True
            )
        ]
        assert_same_rows(official, found)
    assert len(groups) < len(case["rows"]) / 2


def det(start, end, score, label="A", video="v"):
    return Detection(video, label, score, start, end)


def test_cola_nms_counts_one_extra_second_so_near_segments_of_a_class_collide():
    # [0, 0.5] and [0.7, 1.2] do not overlap; with +1: 0.8 / (1.5 + 1.5 - 0.8) = 0.364
    rows = [det(0.0, 0.5, 0.9), det(0.7, 1.2, 0.8), det(0.7, 1.2, 0.7, label="B")]
    segments = np.array([[d.start, d.end] for d in rows])
    scores = np.array([d.score for d in rows])
    labels = [d.label for d in rows]
    assert class_wise_nms(segments, scores, labels, 0.3) == [0, 2]  # B is its own class
    assert class_wise_nms(segments, scores, labels, 0.4) == [0, 1, 2]


def test_the_merge_joins_a_cluster_into_its_hull_with_the_best_score_and_label():
    rows = [
        det(2.0, 12.0, 0.5, label="B"),
        det(0.0, 10.0, 0.9),  # the best: takes in the first (hull IoU 8 / 12)
        det(5.0, 5.0, 0.99),  # zero length: dropped before anything
        det(30.0, 31.0, 0.6),  # alone
        det(9.9, 20.0, 0.7),  # hull IoU with the best 0.1 / 20: not taken in
    ]
    rules = PseudoLabelRules(min_score=0.0, min_overlap_sum=0.0, merge_iou=0.1)
    found = select_pseudo_labels(rows, rules)["v"]
    assert [(d.label, d.score, d.start, d.end) for d in found] == [
        ("A", 0.9, 0.0, 12.0),
        ("A", 0.7, 9.9, 20.0),
        ("A", 0.6, 30.0, 31.0),
    ]
    # at a bar of 1 nothing else is taken in, and each segment still ends its own group
    alone = select_pseudo_labels(rows, PseudoLabelRules(0.0, 0.0, merge_iou=1.0))["v"]
    assert len(alone) == 4


def test_the_rules_apply_nms_then_the_selection_then_the_merge():
    # three copies of one action: NMS leaves one, which then has no dense neighbour
    rows = [det(0.0, 4.0, 0.9), det(0.2, 4.2, 0.8), det(0.1, 4.1, 0.7)]
    assert len(select_pseudo_labels(rows, PseudoLabelRules())["v"]) == 3
    assert select_pseudo_labels(rows, PseudoLabelRules(nms_iou=0.5))["v"] == []
    merged = select_pseudo_labels(rows, PseudoLabelRules(merge_iou=0.1))["v"]
    assert [(d.score, d.start, d.end) for d in merged] == [(0.9, 0.0, 4.2)]


def test_optional_rules_are_recorded_only_when_on_and_checked():
    assert PseudoLabelRules().to_dict() == {"min_score": 0.4, "min_overlap_sum": 0.2}
    on = PseudoLabelRules(nms_iou=0.5, merge_iou=0.1).to_dict()
    assert on == {"min_score": 0.4, "min_overlap_sum": 0.2, "nms_iou": 0.5, "merge_iou": 0.1}
    with pytest.raises(ConfigError, match="nms_iou is an IoU"):
        PseudoLabelRules(nms_iou=1.5)
    with pytest.raises(ConfigError, match="merge_iou must be a number >= 0"):
        PseudoLabelRules(merge_iou=-0.1)


def test_the_student_options_name_the_same_rules():
    options = {"pseudo_min_score": 0.3, "pseudo_nms_iou": 0.5, "lr": 1e-4}
    assert PseudoLabelRules.from_options(options) == PseudoLabelRules(0.3, 0.2, 0.5, 0.0)
    assert PseudoLabelRules.from_options({}) == PseudoLabelRules()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 40), st.floats(0.1, 10), st.floats(0, 1), st.sampled_from("AB")),
        max_size=14,
    ),
    st.sampled_from([0.0, 0.5]),
    st.sampled_from([0.0, 0.1]),
)
def test_the_student_filter_and_the_pseudo_label_step_agree(rows, nms_iou, merge_iou):
    detections = [det(s, s + length, p, label) for s, length, p, label in rows]
    # the student holds float32 seconds and scores: give both sides the same values
    detections = [
        det(float(np.float32(d.start)), float(np.float32(d.end)), float(np.float32(d.score)),
            d.label)
        for d in detections
    ]  # fmt: skip
    rules = PseudoLabelRules(nms_iou=nms_iou, merge_iou=merge_iou)
    step = select_pseudo_labels(detections, rules).get("v", [])
    video = pseudo.PseudoVideo(
        np.array([[d.start, d.end] for d in detections], dtype=np.float32).reshape(-1, 2),
        np.array([ord(d.label) for d in detections], dtype=np.int64),
        np.array([d.score for d in detections], dtype=np.float32),
    )
    student = pseudo.filter_pseudo(video, rules)
    assert student.segments.tolist() == [[d.start, d.end] for d in step]
    assert [chr(i) for i in student.labels.tolist()] == [d.label for d in step]
