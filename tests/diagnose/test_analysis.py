"""DETAD's definitions on hand-made cases with hand-worked numbers."""

from __future__ import annotations

import numpy as np
import pytest

from hamnet.data.annotations import AnnotationSet, Segment, Video
from hamnet.diagnose.analysis import diagnose, normalized_ap
from hamnet.diagnose.characteristics import BIN_SETS, bin_index
from hamnet.errors import EvaluationInputError
from hamnet.evaluate.detection_map import evaluate_detections
from hamnet.localize.detections import Detection


def video(name, duration, *segments, subset="test"):
    segs = tuple(Segment(s, e, label) for label, s, e in segments)
    return Video(name, subset, duration, tuple(dict.fromkeys(s.label for s in segs)), segs)


def det(video_name, label, score, start, end):
    return Detection(video_name, label, score, start, end)


# v1 holds A [10, 20] and B [50, 60]; v2 has no ground truth at all.
ERROR_CASE_GT = AnnotationSet(
    ["A", "B"], [video("v1", 100, ("A", 10, 20), ("B", 50, 60)), video("v2", 100)]
)
ERROR_CASE = [
    det("v1", "A", 0.95, 10, 14),  # tIoU 0.4 with A: localization at 0.5, true positive at 0.3
    det("v1", "A", 0.90, 10, 20),  # true positive at 0.5; double detection at 0.3
    det("v1", "A", 0.80, 10, 19),  # double detection (A taken)
    det("v1", "B", 0.90, 10, 20),  # overlaps A fully: wrong label
    det("v1", "B", 0.85, 12, 14),  # tIoU 0.2 with A: confusion
    det("v1", "A", 0.50, 80, 90),  # overlaps nothing: background
    det("v2", "A", 0.60, 0, 10),  # video without ground truth: background ...
    det("v2", "A", 0.55, 20, 30),  # ... every one of them (DETAD's code gets this wrong)
    det("v1", "B", 0.99, 50, 60),  # true positive
]


def test_every_error_type_at_two_thresholds():
    result = diagnose(ERROR_CASE_GT, ERROR_CASE, tiou=[0.3, 0.5], bin_set="thumos14")
    counts = result.false_positive["counts"]
    assert counts["0.5"] == {
        "true_positive": 2,
        "double_detection": 1,
        "wrong_label": 1,
        "localization": 1,
        "confusion": 1,
        "background": 3,
    }
    # at 0.3 the 0.95 detection takes A; the exact one becomes a double detection
    assert counts["0.3"] == {
        "true_positive": 2,
        "double_detection": 2,
        "wrong_label": 1,
        "localization": 0,
        "confusion": 1,
        "background": 3,
    }
    assert result.false_positive["fractions"]["avg"]["double_detection"] == pytest.approx(1.5 / 9)


def test_videos_without_ground_truth_give_only_background():
    only_v2 = [d for d in ERROR_CASE if d.video == "v2"] + [det("v2", "B", 0.7, 40, 60)]
    result = diagnose(ERROR_CASE_GT, only_v2, tiou=[0.5], bin_set="thumos14")
    assert result.false_positive["counts"]["0.5"]["background"] == 3
    assert sum(result.false_positive["counts"]["0.5"].values()) == 3


def test_rank_slices_are_separate_not_cumulative():
    # G = 1 for A and B: slice k pools the k-th ranked detection of each class
    result = diagnose(ERROR_CASE_GT, ERROR_CASE, tiou=[0.5], bin_set="thumos14")
    slices = {s["slice"]: s for s in result.false_positive["by_rank"]}
    assert [slices[f"{k}G"]["detections"] for k in range(1, 11)] == [2, 2, 2, 1, 1, 1, 0, 0, 0, 0]
    # 1G: A's localization error (0.95) and B's true positive (0.99)
    assert slices["1G"]["fractions"]["localization"] == 0.5
    assert slices["1G"]["fractions"]["true_positive"] == 0.5
    # 2G: A's true positive (0.90), B's wrong label (0.90); 3G: double, confusion
    assert slices["2G"]["fractions"]["wrong_label"] == 0.5
    assert slices["3G"]["fractions"]["double_detection"] == 0.5
    assert slices["3G"]["fractions"]["confusion"] == 0.5
    assert slices["4G"]["fractions"]["background"] == 1.0


def test_top_10g_limit_per_class():
    many = [det("v1", "A", 1.0 - i / 100, 30 + i, 31 + i) for i in range(15)]
    result = diagnose(ERROR_CASE_GT, many, tiou=[0.5], bin_set="thumos14")
    assert result.false_positive["detections"] == 10  # G = 1 for class A


def test_map_gain_from_removing_each_error_type():
    # A ranks [loc, TP, double, bg, bg, bg] with N-bar = 2 instances / 2 classes = 1:
    # AP_N(A) = 0.5, AP_N(B) = 1 (its TP ranks first); without localization AP_N(A) = 1.
    result = diagnose(ERROR_CASE_GT, ERROR_CASE, tiou=[0.5], bin_set="thumos14")
    fp = result.false_positive
    assert fp["average_mAP_N"] == pytest.approx(0.75)
    assert fp["average_mAP_N_gain"]["localization"] == pytest.approx(0.25)
    for name in ("double_detection", "wrong_label", "confusion", "background"):
        assert fp["average_mAP_N_gain"][name] == pytest.approx(0.0)


def test_normalized_precision_uses_n_bar():
    flags = np.array([[True], [False], [True]])
    # recall .5 .5 1, FP 0 1 1; N = 4: precision 1, 2/3, 4/5 -> AP .5 + .5 * .8
    assert normalized_ap(flags, 2, 4.0)[0] == pytest.approx(0.9)
    # the usual precision 1, 1/2, 2/3 -> .5 + .5 * 2/3
    assert normalized_ap(flags, 2, None)[0] == pytest.approx(0.5 + 1 / 3)


@pytest.mark.parametrize(
    ("bin_set", "name", "values", "expected"),
    [
        ("thumos14", "length", [0, 3, 3.01, 6, 12, 18, 18.5, 1e9], [0, 0, 1, 1, 2, 3, 4, 4]),
        ("thumos14", "coverage", [0.0, 0.02, 0.021, 0.08, 0.5, 1.0, 1.01], [0, 0, 1, 3, 4, 4, -1]),
        ("thumos14", "num_instances", [1, 2, 40, 41, 80, 81], [0, 1, 1, 2, 2, 3]),
        ("activitynet", "length", [0, 30, 31, 60, 120, 180, 181], [0, 0, 1, 1, 2, 3, 4]),
        ("activitynet", "coverage", [0.0, 0.2, 0.21, 0.4, 0.8, 0.81, 1.0], [0, 0, 1, 1, 3, 4, 4]),
        ("activitynet", "num_instances", [1, 2, 4, 5, 8, 9], [0, 1, 1, 2, 2, 3]),
    ],
)
def test_bins_are_right_closed_with_the_lowest_edge_included(bin_set, name, values, expected):
    assert bin_index(np.array(values), BIN_SETS[bin_set][name]).tolist() == expected


def _fn_case(noise: int):
    gt = AnnotationSet(["A"], [video("v1", 100, ("A", 0, 2), ("A", 10, 15), ("A", 20, 30))])
    dets = [det("v1", "A", 0.9, 10, 15), det("v1", "A", 0.8, 20, 30)]
    dets += [det("v1", "A", 0.95, 40 + i, 40.5 + i) for i in range(noise)]
    return diagnose(gt, dets, tiou=[0.5], bin_set="thumos14").false_negative


def test_false_negatives_by_length_coverage_and_instances():
    fn = _fn_case(noise=0)
    length = {row["bin"]: row for row in fn["length"]}
    assert length["XS"]["missed_fraction"] == 1.0 and length["XS"]["instances"] == 1
    assert length["S"]["missed_fraction"] == 0.0
    assert length["M"]["missed_fraction"] == 0.0
    assert length["L"]["missed_fraction"] is None and length["L"]["instances"] == 0
    coverage = {row["bin"]: row["instances"] for row in fn["coverage"]}
    assert coverage == {"XS": 1, "S": 0, "M": 1, "L": 0, "XL": 1}  # 0.02, 0.05, 0.1
    instances = {row["bin"]: row["instances"] for row in fn["num_instances"]}
    assert instances == {"XS": 0, "S": 3, "M": 0, "L": 0}
    assert fn["missed_fraction"] == pytest.approx(1 / 3)


def test_false_negatives_drop_detections_of_low_normalized_precision():
    # 20 false positives first: N-bar = 3, the 0.9 hit has precision 1 / (1 + 20) <= 0.05
    # and is dropped; the 0.8 hit has 2 / (2 + 20) > 0.05 and stays.
    fn = _fn_case(noise=20)
    length = {row["bin"]: row for row in fn["length"]}
    assert length["S"]["missed_fraction"] == 1.0
    assert length["M"]["missed_fraction"] == 0.0


def test_sensitivity_per_bin():
    gt = AnnotationSet(["A"], [video("v1", 100, ("A", 10, 15), ("A", 20, 30))])
    dets = [det("v1", "A", 0.9, 20, 30), det("v1", "A", 0.8, 50, 55), det("v1", "A", 0.7, 10, 15)]
    sens = diagnose(gt, dets, tiou=[0.5], bin_set="thumos14").sensitivity
    # N-bar = 2: all instances [TP, FP, TP] -> precision 1, 1/2, 2/3 -> AP .5 + .5 * 2/3
    assert sens["average_mAP_N"] == pytest.approx(0.5 + 1 / 3)
    length = {row["bin"]: row for row in sens["length"]}
    # S keeps [10, 15]: [FP, TP] -> recall 0, 1; precision 0, 2/3
    assert length["S"]["average_mAP_N"] == pytest.approx(2 / 3)
    # M keeps [20, 30]: [TP, FP] -> precision 1 at recall 1
    assert length["M"]["average_mAP_N"] == pytest.approx(1.0)
    assert length["XS"]["average_mAP_N"] is None


def test_instances_longer_than_their_video_are_left_out():
    # coverage 12 / 10 > 1 (DETAD drops these); [5, 11] runs past the end but stays
    gt = AnnotationSet(["A"], [video("v1", 10, ("A", 2, 4), ("A", 0, 12), ("A", 5, 11))])
    result = diagnose(gt, [det("v1", "A", 0.9, 2, 4)], tiou=[0.5], bin_set="activitynet")
    assert result.ground_truth["instances"] == 3
    assert result.ground_truth["instances_kept"] == 2
    assert result.ground_truth["average_instances_per_class"] == 2.0


def test_unknown_label_is_one_clear_error():
    with pytest.raises(EvaluationInputError, match="'Z' is not a class"):
        diagnose(ERROR_CASE_GT, [det("v1", "Z", 0.5, 0, 1)], tiou=[0.5])


def test_plain_ap_agrees_with_the_activitynet_evaluator():
    """Same matching as the evaluator: the un-normalized AP is the official one."""
    from hamnet.diagnose.detection_matching import GroundTruthTable, class_rankings, match_by_class

    rng = np.random.default_rng(3)
    videos, dets = [], []
    for v in range(12):
        starts = rng.uniform(0, 80, size=rng.integers(0, 4))
        segs = [(("A", "B", "C")[i % 3], s, s + rng.uniform(1, 15)) for i, s in enumerate(starts)]
        videos.append(video(f"v{v}", 100, *segs))
        for _ in range(rng.integers(0, 8)):
            s = rng.uniform(0, 90)
            dets.append(det(f"v{v}", ("A", "B", "C")[rng.integers(3)], rng.uniform(), s, s + 8))
    gt = AnnotationSet(["A", "B", "C"], videos)
    thresholds = np.array([0.1, 0.3, 0.5, 0.7])
    table = GroundTruthTable.build(gt, dets, None)
    matched = match_by_class(table, thresholds)
    npos = table.positives()
    aps = [
        normalized_ap(matched[r] >= 0, npos[c], None) for c, r in enumerate(class_rankings(table))
    ]
    expected = evaluate_detections(gt, dets, tiou=thresholds, protocol="anet")
    assert np.mean(aps, axis=0) == pytest.approx(expected.mAP)
