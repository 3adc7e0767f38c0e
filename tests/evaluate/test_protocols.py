"""Hand-worked AP cases for the three protocols."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from hamnet.errors import EvaluationInputError
from hamnet.evaluate.detection_map import evaluate_detections

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers import dets, make_gt  # noqa: E402

TWO = make_gt({"a": [("X", 0.0, 10.0), ("X", 20.0, 30.0)]})


def ap(gt, detections, protocol, tiou=(0.5,), **kw) -> list[float]:
    result = evaluate_detections(gt, detections, tiou=list(tiou), protocol=protocol, **kw)
    return [round(v, 12) for v in result.mAP]  # the kit's 11-point sum is 1 + 2e-16


@pytest.mark.parametrize("protocol", ["anet", "thumos14", "wtalc"])
def test_second_detection_on_one_gt_is_false_positive(protocol):
    gt = make_gt({"a": [("X", 0.0, 6.4)]})
    found = dets(("a", "X", 0.9, 0.0, 6.4), ("a", "X", 0.8, 0.0, 6.4))
    # one TP then one FP: precision 1 at recall 1 for every AP flavour
    assert ap(gt, found, protocol) == [pytest.approx(1.0)]
    flipped = dets(("a", "X", 0.9, 50.0, 60.0), ("a", "X", 0.8, 0.0, 6.4))
    assert ap(gt, flipped, protocol) == [0.5]


def test_interpolation_differs_between_protocols():
    # FP, TP, TP on two ground truths: precision 0, 1/2, 2/3 at recall 0, 1/2, 1
    found = dets(
        ("a", "X", 0.9, 40.0, 50.0), ("a", "X", 0.8, 0.0, 10.0), ("a", "X", 0.7, 20.0, 30.0)
    )
    assert ap(TWO, found, "anet")[0] == pytest.approx(2 / 3)  # envelope 2/3 everywhere
    assert ap(TWO, found, "wtalc")[0] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert ap(TWO, found, "thumos14")[0] == pytest.approx(2 / 3)  # 11 points, all 2/3


def test_tp_fp_tp_values():
    found = dets(
        ("a", "X", 0.9, 0.0, 10.0), ("a", "X", 0.8, 40.0, 50.0), ("a", "X", 0.7, 20.0, 30.0)
    )
    assert ap(TWO, found, "anet")[0] == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert ap(TWO, found, "thumos14")[0] == pytest.approx((6 + 5 * 2 / 3) / 11)
    assert ap(TWO, found, "wtalc")[0] == pytest.approx((1 + 2 / 3) / 2)


def test_gt_matched_at_one_threshold_not_another():
    gt = make_gt({"a": [("X", 0.0, 10.0)]})
    half = dets(("a", "X", 0.9, 0.0, 5.0))  # IoU exactly 0.5
    assert ap(gt, half, "anet", tiou=(0.4, 0.5, 0.6)) == [1.0, 1.0, 0.0]
    # the kit needs overlap strictly greater than the threshold
    assert ap(gt, half, "thumos14", tiou=(0.4, 0.5, 0.6)) == pytest.approx([1.0, 0.0, 0.0])


def test_anet_takes_best_iou_wtalc_takes_first_gt():
    gt = make_gt({"a": [("X", 0.0, 6.4), ("X", 0.64, 6.4)]})  # snippets 0-9 and 1-9
    found = dets(("a", "X", 0.9, 0.64, 6.4), ("a", "X", 0.8, 0.0, 3.2))
    assert ap(gt, found, "anet", tiou=(0.45,)) == [
        1.0
    ]  # first takes the 2nd GT (IoU 1), second the 1st
    # W-TALC: the first takes GT 1 (IoU 0.9, first in order); the second only sees GT 2
    # (IoU 4/10) -> FP; AP = precision at the TP / 2 ground truths
    assert ap(gt, found, "wtalc", tiou=(0.45,)) == [0.5]


def test_anet_score_ties_follow_reversed_argsort():
    gt = make_gt({"a": [("X", 0.0, 10.0)]})
    found = dets(("a", "X", 0.5, 50.0, 60.0), ("a", "X", 0.5, 0.0, 10.0))
    first = int(np.argsort(np.array([0.5, 0.5]))[::-1][0])
    expected = 1.0 if first == 1 else 0.5
    assert ap(gt, found, "anet") == [expected]


def test_thumos14_ties_put_true_positive_first():
    gt = make_gt({"a": [("X", 0.0, 10.0)]})
    found = dets(("a", "X", 0.5, 50.0, 60.0), ("a", "X", 0.5, 0.0, 10.0))
    assert ap(gt, found, "thumos14") == [pytest.approx(1.0)]


def test_ambiguous_overlap():
    gt = make_gt({"a": [("X", 0.0, 10.0)]})
    amb = {"a": [(50.0, 55.0)]}
    found = dets(("a", "X", 0.9, 52.0, 58.0), ("a", "X", 0.8, 0.0, 10.0))
    assert ap(gt, found, "anet", ambiguous=amb) == [0.5]  # anet ignores ambiguous spans
    assert ap(gt, found, "thumos14", ambiguous=amb) == [pytest.approx(1.0)]  # the FP is dropped
    assert ap(gt, found, "wtalc", ambiguous=amb) == [1.0]
    assert ap(gt, found, "thumos14", ambiguous={}) == [0.5]
    # W-TALC also drops a true positive overlapping an ambiguous span; the kit keeps it
    on_gt = {"a": [(8.0, 9.0)]}
    assert ap(gt, found, "wtalc", ambiguous=on_gt) == [0.0]
    assert ap(gt, found, "thumos14", ambiguous=on_gt) == [0.5]


def test_detections_in_videos_without_gt():
    gt = make_gt({"a": [("X", 0.0, 10.0)], "b": [("Y", 0.0, 10.0)]})
    found = dets(
        ("c", "X", 0.9, 0.0, 10.0), ("b", "X", 0.95, 0.0, 10.0), ("a", "X", 0.8, 0.0, 10.0)
    )
    # anet and the kit: false positives; W-TALC: ignored only when the video has no GT
    assert evaluate_detections(gt, found, tiou=[0.5]).per_class["X"] == [1 / 3]
    wtalc = evaluate_detections(gt, found, tiou=[0.5], protocol="wtalc").per_class["X"]
    assert wtalc == [0.5]  # the one in "b" (has GT, of another class) still counts
    assert evaluate_detections(gt, found, tiou=[0.5]).per_class["Y"] == [0.0]


def test_mean_over_classes_with_ground_truth_only():
    gt = make_gt({"a": [("X", 0.0, 10.0)]}, classes=["X", "Y", "Z"])
    result = evaluate_detections(
        gt, dets(("a", "X", 0.9, 0.0, 10.0), ("a", "Z", 0.9, 0.0, 1.0)), tiou=[0.5, 0.7]
    )
    assert result.mAP == [1.0, 1.0] and list(result.per_class) == ["X"]
    assert result.to_dict()["average_mAP"] == 1.0


def test_subset_and_label_errors():
    gt = make_gt({"a": [("X", 0.0, 10.0)]})
    with pytest.raises(EvaluationInputError, match=r"subset 'val'.*\['test'\]"):
        evaluate_detections(gt, [], tiou=[0.5], subset="val")
    with pytest.raises(EvaluationInputError, match=r"video 'a'.*'Q'"):
        evaluate_detections(gt, dets(("a", "Q", 0.9, 0.0, 1.0)), tiou=[0.5])
    with pytest.raises(EvaluationInputError, match="unknown protocol"):
        evaluate_detections(gt, [], tiou=[0.5], protocol="voc")


def test_no_detections_gives_zero():
    result = evaluate_detections(TWO, [], tiou=[0.3, 0.5], protocol="thumos14")
    assert result.mAP == [0.0, 0.0] and result.average_mAP == 0.0
