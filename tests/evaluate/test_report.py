"""File-level evaluation, the table, tIoU parsing, classification mAP, bad inputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from hamnet.data.annotations import save_gt_json
from hamnet.errors import ConfigError, EvaluationInputError
from hamnet.evaluate.classification import classification_map
from hamnet.evaluate.detection_map import DetectionResult, load_ambiguous
from hamnet.evaluate.files import evaluate_files, format_table, parse_tiou
from hamnet.localize.detections import save_detections

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers import dets, make_gt  # noqa: E402


def test_parse_tiou():
    assert parse_tiou("0.1:0.7:0.1") == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    assert parse_tiou("0.5:0.95:0.05") == [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
    assert parse_tiou("0.3, 0.5") == [0.3, 0.5]
    for bad in ["0.1:0.7", "a,b", "0:0.5:0.1", "0.5:0.1:0.1", "1.5"]:
        with pytest.raises(ConfigError, match="tIoU"):
            parse_tiou(bad)


def test_format_table():
    result = DetectionResult("thumos14", [0.3, 0.5], [0.5, 0.25], 0.375, {"X": [0.5, 0.25]})
    text = format_table(result, per_class=True)
    lines = text.splitlines()
    assert "thumos14" in lines[0]
    assert lines[1].split() == ["tIoU", "0.30", "0.50", "avg"]
    assert lines[2].split() == ["mAP", "50.00", "25.00", "37.50"]
    assert lines[-1].split() == ["X", "50.00", "25.00", "37.50"]
    assert "X" not in format_table(result)


def test_evaluate_files_uses_ambiguous_of_gt_file(tmp_path):
    gt = make_gt({"a": [("X", 0.0, 10.0)]})
    gt.ambiguous = {"a": [(50.0, 55.0)]}
    save_gt_json(gt, tmp_path / "gt.json")
    save_detections(
        tmp_path / "pred.json", dets(("a", "X", 0.9, 52.0, 58.0), ("a", "X", 0.8, 0.0, 10.0))
    )
    kit = evaluate_files(
        tmp_path / "gt.json", tmp_path / "pred.json", tiou=[0.5], protocol="thumos14"
    )
    assert kit.mAP == [pytest.approx(1.0)]
    anet = evaluate_files(tmp_path / "gt.json", tmp_path / "pred.json", tiou=[0.5])
    assert anet.mAP == [0.5]
    (tmp_path / "amb.txt").write_text("a  90.0 95.0\n\n")
    other = evaluate_files(
        tmp_path / "gt.json",
        tmp_path / "pred.json",
        tiou=[0.5],
        protocol="thumos14",
        ambiguous_path=tmp_path / "amb.txt",
    )
    assert other.mAP == [pytest.approx(0.5)]


def test_evaluate_files_label_not_in_classes(tmp_path):
    save_gt_json(make_gt({"a": [("X", 0.0, 10.0)]}), tmp_path / "gt.json")
    save_detections(tmp_path / "pred.json", dets(("a", "Nope", 0.9, 0.0, 1.0)))
    with pytest.raises(EvaluationInputError, match=r"pred.json: video 'a'.*'label'.*'Nope'"):
        evaluate_files(tmp_path / "gt.json", tmp_path / "pred.json")


def test_load_ambiguous_errors(tmp_path):
    path = tmp_path / "amb.txt"
    path.write_text("v1 Ambiguous 1.0 2.0\nv1 3 4\n")
    assert load_ambiguous(path) == {"v1": [(1.0, 2.0), (3.0, 4.0)]}
    path.write_text("v1 5.0\n")
    with pytest.raises(EvaluationInputError, match="line 1"):
        load_ambiguous(path)
    path.write_text("v1 5.0 4.0\n")
    with pytest.raises(EvaluationInputError, match="bad span"):
        load_ambiguous(path)


def test_classification_map_hand_worked():
    scores = np.array([[0.9, 0.1], [0.8, 0.7], [0.7, 0.2]])
    labels = np.array([[1, 0], [0, 0], [1, 0]])
    # class 0: positives at ranks 1 and 3 -> (1 + 2/3) / 2; class 1 has no positive
    assert classification_map(scores, labels) == pytest.approx((1 + 2 / 3) / 2)
    labels[1, 1] = 1  # class 1: its positive ranks first
    assert classification_map(scores, labels) == pytest.approx(((1 + 2 / 3) / 2 + 1) / 2)
    with pytest.raises(EvaluationInputError):
        classification_map(scores, labels[:, :1])
    with pytest.raises(EvaluationInputError, match="NaN"):
        classification_map(np.full((3, 2), np.nan), labels)


def test_result_to_dict_roundtrips_json():
    result = DetectionResult("anet", [0.5], [0.25], 0.25, {"X": [0.25]})
    assert json.loads(json.dumps(result.to_dict())) == {
        "protocol": "anet",
        "tiou": [0.5],
        "mAP": [0.25],
        "average_mAP": 0.25,
        "per_class": {"X": [0.25]},
    }
