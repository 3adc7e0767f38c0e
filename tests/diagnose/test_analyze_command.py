"""``hamnet analyze`` end to end: JSON with every number, every chart as PNG and SVG."""

from __future__ import annotations

import json

from hamnet.cli import main
from hamnet.data.annotations import AnnotationSet, save_gt_json
from hamnet.localize.detections import save_detections

from .test_analysis import ERROR_CASE, ERROR_CASE_GT


def test_analyze_files_writes_json_and_charts(tmp_path, capsys):
    save_gt_json(ERROR_CASE_GT, tmp_path / "gt.json")
    save_detections(tmp_path / "det.json", ERROR_CASE)
    out = tmp_path / "diag"
    code = main(
        [
            "analyze",
            "--gt",
            str(tmp_path / "gt.json"),
            "--pred",
            str(tmp_path / "det.json"),
            "--out",
            str(out),
            "--bins",
            "thumos14",
        ]
    )
    assert code == 0
    data = json.loads((out / "diagnosis.json").read_text())
    assert data["tiou"] == [0.5] and data["bins"] == "thumos14"  # DETAD's THUMOS14 default
    assert data["subset"] == "test"  # the subset of the detected videos
    assert data["false_positive"]["counts"]["0.5"]["background"] == 3
    for stem in ("false_positives", "false_negatives", "sensitivity"):
        assert (out / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
        assert "<svg" in (out / f"{stem}.svg").read_text()
    printed = capsys.readouterr().out
    assert str(out / "diagnosis.json") in printed


def test_activitynet_default_thresholds(tmp_path):
    save_gt_json(ERROR_CASE_GT, tmp_path / "gt.json")
    save_detections(tmp_path / "det.json", ERROR_CASE)
    argv = ["analyze", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "det.json")]
    assert main([*argv, "--out", str(tmp_path / "d")]) == 0
    data = json.loads((tmp_path / "d" / "diagnosis.json").read_text())
    assert data["bins"] == "activitynet" and len(data["tiou"]) == 10


def test_missing_inputs_are_one_line_errors(tmp_path, capsys):
    assert main(["analyze", "--out", str(tmp_path)]) == 2
    assert "--pred" in capsys.readouterr().err
    save_gt_json(AnnotationSet(["A"], []), tmp_path / "empty.json")
    save_detections(tmp_path / "det.json", [])
    argv = ["analyze", "--gt", str(tmp_path / "empty.json"), "--pred", str(tmp_path / "det.json")]
    assert main([*argv, "--out", str(tmp_path / "d")]) == 2
    assert "no ground-truth instance" in capsys.readouterr().err
