"""The figure fixes: stable colours, TP/FP marks, score colour bar, threshold lines,
no overlapping labels, diagnosis charts, ``plot map --labels``."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from hamnet.data.annotations import Segment
from hamnet.viz.colours import class_colour
from hamnet.viz.outputs import SavedVideoOutputs as VideoOutputs
from hamnet.viz.plots import _Bar, _class_colours, _mark_hits, _pack_rows, plot_video

CLASSES = ("BaseballPitch", "HighJump", "LongJump", "Diving")


@pytest.fixture
def outputs() -> VideoOutputs:
    rng = np.random.default_rng(7)
    cas = rng.normal(size=(60, len(CLASSES) + 1)).astype(np.float32)
    attention = (1.0 / (1.0 + np.exp(-cas[:, 2]))).astype(np.float32)
    return VideoOutputs(
        cas=cas,
        attention=attention,
        actionness=attention,
        video_scores=np.array([0.2, 0.8, 0.1, 0.05], dtype=np.float32),
        classes=CLASSES,
        snippet_seconds=16 / 25,
        source="attention",
    )


def det(label, score, start, end):
    return {"label": label, "score": score, "segment": [start, end]}


def fills(path) -> set[str]:
    text = path.read_text()
    return set(re.findall(r"fill:\s*(#[0-9a-f]{6})", text))


def test_a_class_keeps_its_colour_with_and_without_ground_truth(outputs, tmp_path):
    with_gt, without = tmp_path / "gt.svg", tmp_path / "nogt.svg"
    dets = [det("Diving", 0.9, 5, 9)]
    plot_video(
        outputs, with_gt, title="v", ground_truth=[Segment(1, 3, "LongJump")], detections=dets
    )
    plot_video(outputs, without, title="v", detections=dets)
    diving = class_colour(CLASSES.index("Diving"))
    assert diving in fills(with_gt) and diving in fills(without)
    # the colour is the class's index in the class list, whatever else is drawn
    assert (
        _class_colours(CLASSES, ["Diving"])["Diving"]
        == _class_colours(CLASSES, ["LongJump", "HighJump", "Diving"])["Diving"]
    )


def test_hits_follow_the_activitynet_rule():
    truth = [Segment(10, 20, "A"), Segment(30, 40, "A")]
    bars = [
        _Bar("A", 0.5, 10, 20),  # exact, but ranked after the 0.9 one that takes [10, 20]
        _Bar("A", 0.9, 11, 20),  # tIoU 0.9
        _Bar("A", 0.8, 30, 34),  # tIoU 0.4 < 0.5
        _Bar("B", 0.7, 30, 40),  # other class
    ]
    assert [b.hit for b in _mark_hits(bars, truth, 0.5)] == [False, True, False, False]
    assert [b.hit for b in _mark_hits(bars, truth, 0.3)] == [False, True, True, False]


def test_overlapping_detections_get_their_own_rows():
    bars = [
        _Bar("A", 0.9, 0, 10),
        _Bar("A", 0.8, 5, 15),
        _Bar("A", 0.7, 10, 20),
        _Bar("B", 1, 0, 9),
    ]
    rows = _pack_rows(bars)
    assert [(label, [b.score for b in members]) for label, members in rows] == [
        ("A", [0.9, 0.7]),
        ("A", [0.8]),
        ("B", [1]),
    ]


def test_marks_colour_bar_and_threshold_lines_in_the_figure(outputs, tmp_path):
    out = tmp_path / "v.svg"
    dets = [det("LongJump", 2.0, 10, 20), det("LongJump", -1.0, 30, 35)]
    plot_video(
        outputs,
        out,
        title="v",
        ground_truth=[Segment(10, 20, "LongJump")],
        detections=dets,
        tiou=0.7,
        thresholds=[0.25, 0.5],
    )
    text = " ".join(node.text or "" for node in ET.parse(out).getroot().iter())
    assert "true positive (tIoU 0.7)" in text and "false positive" in text
    assert "detection score (bar opacity)" in text
    assert "localization thresholds (2)" in text


def test_plot_map_labels(tmp_path, capsys):
    from hamnet.cli import main

    paths = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"protocol": "anet", "tiou": [0.3, 0.5], "mAP": [0.4, 0.2]}))
        paths.append(str(path))
    out = tmp_path / "map.svg"
    assert main(["plot", "map", *paths, "--labels", "HAM-Net,BCL only", "--out", str(out)]) == 0
    text = out.read_text()
    assert "HAM-Net" in text and "BCL only" in text
    assert main(["plot", "map", *paths, "--labels", "one", "--out", str(out)]) == 2
    assert "--labels" in capsys.readouterr().err
