"""Figures from tiny synthetic outputs: valid PNG/SVG, right classes, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure

from hamnet.data.annotations import Segment
from hamnet.errors import ConfigError, DataError
from hamnet.viz import (
    SavedVideoOutputs as VideoOutputs,
)
from hamnet.viz import (
    load_cas_npz,
    load_result_json,
    plot_map_vs_tiou,
    plot_video,
    select_classes,
)

CLASSES = ("BaseballPitch", "HighJump", "LongJump", "Diving")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class FakeDetection:
    video: str
    label: str
    score: float
    start: float
    end: float


@pytest.fixture
def outputs() -> VideoOutputs:
    """60 snippets; LongJump (ground truth) peaks at 10-20 s but has a low video score."""
    rng = np.random.default_rng(7)
    cas = rng.normal(size=(60, len(CLASSES) + 1)).astype(np.float32)
    cas[16:31, 2] += 5.0
    attention = (1.0 / (1.0 + np.exp(-cas[:, 2]))).astype(np.float32)
    return VideoOutputs(
        cas=cas,
        attention=attention,
        actionness=(0.9 * attention).astype(np.float32),
        video_scores=np.array([0.2, 0.8, 0.1, 0.05], dtype=np.float32),
        classes=CLASSES,
        snippet_seconds=16 / 25,
        source="attention",
    )


GT = (Segment(10.24, 19.84, "LongJump"),)


def _svg_text(path: Path) -> str:
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    return " ".join(node.text or "" for node in root.iter())


def test_select_classes_puts_ground_truth_first_then_top_scores(outputs):
    assert select_classes(outputs, GT, max_classes=2) == ["LongJump", "HighJump"]
    assert select_classes(outputs, GT, max_classes=3) == ["LongJump", "HighJump", "BaseballPitch"]
    # Ground truth is kept even when it alone exceeds max_classes.
    assert select_classes(outputs, GT, max_classes=0) == ["LongJump"]
    assert select_classes(outputs, (), max_classes=1) == ["HighJump"]
    assert select_classes(outputs, GT, classes_to_show=["Diving"]) == ["Diving"]


def test_select_classes_rejects_unknown_names(outputs):
    with pytest.raises(DataError, match="'Surfing'"):
        select_classes(outputs, (Segment(1.0, 2.0, "Surfing"),))
    with pytest.raises(DataError, match="'Surfing'"):
        select_classes(outputs, (), classes_to_show=["Surfing"])


def test_class_probabilities_are_a_softmax(outputs):
    probs = outputs.class_probabilities()
    assert probs.shape == (60, 5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    row = outputs.cas[0].astype(np.float64)
    np.testing.assert_allclose(probs[0], np.exp(row) / np.exp(row).sum(), rtol=1e-9)


def test_plot_video_writes_valid_png_and_svg_in_one_call(outputs, tmp_path):
    detections = [
        FakeDetection("v", "LongJump", 0.9, 9.5, 20.0),
        {"label": "BaseballPitch", "score": 0.4, "segment": [25.0, 30.0]},
    ]
    png, svg = tmp_path / "fig" / "v.png", tmp_path / "fig" / "v.svg"
    written = plot_video(
        outputs,
        [png, svg],
        title="video_test_0001",
        ground_truth=GT,
        detections=detections,
        max_classes=2,
    )
    assert written == [png, svg]
    assert sorted(p.name for p in png.parent.iterdir()) == ["v.png", "v.svg"]  # no temp left
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5_000
    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 600
    assert svg.stat().st_size > 5_000
    text = _svg_text(svg)
    for expected in (
        "video_test_0001",
        "LongJump",
        "HighJump",
        "BaseballPitch",
        "0.90",
        "time (s)",
    ):
        assert expected in text
    assert "Diving" not in text  # neither ground truth, detected nor among the top scores


def test_min_score_and_max_detections_drop_detections(outputs, tmp_path):
    detections = [
        {"label": "Diving", "score": 0.05, "segment": [1.0, 3.0]},
        {"label": "HighJump", "score": 0.7, "segment": [5.0, 8.0]},
        {"label": "LongJump", "score": 0.6, "start": 10.0, "end": 12.0},
    ]
    svg = tmp_path / "v.svg"
    plot_video(
        outputs,
        svg,
        title="t",
        detections=detections,
        max_classes=1,
        min_score=0.1,
        max_detections=1,
    )
    text = _svg_text(svg)
    assert "0.70" in text and "0.60" not in text and "Diving" not in text


def test_plot_video_without_ground_truth_or_detections(outputs, tmp_path):
    same = VideoOutputs(**{**outputs.__dict__, "actionness": outputs.attention})
    svg = tmp_path / "v.svg"
    plot_video(same, svg, title="bare")
    text = _svg_text(svg)
    assert "ground" not in text and "detections" not in text and "actionness" not in text
    assert "HighJump" in text


def test_bad_detection_and_bad_suffix_are_clear_errors(outputs, tmp_path):
    with pytest.raises(DataError, match="detection #0"):
        plot_video(outputs, tmp_path / "v.png", title="t", detections=[{"label": "x"}])
    with pytest.raises(ConfigError, match="'.jpeg'"):
        plot_video(outputs, [tmp_path / "v.png", tmp_path / "v.jpeg"], title="t")
    assert list(tmp_path.iterdir()) == []  # checked before anything was written


def test_failed_save_keeps_old_file_and_leaves_no_temp(outputs, tmp_path, monkeypatch):
    target = tmp_path / "v.png"
    target.write_bytes(b"old figure")

    def broken_savefig(self, *args, **kwargs):
        Path(args[0]).write_bytes(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError):
        plot_video(outputs, target, title="t")
    assert target.read_bytes() == b"old figure"
    assert list(tmp_path.iterdir()) == [target]


def test_svg_output_is_reproducible(outputs, tmp_path):
    first, second = tmp_path / "a.svg", tmp_path / "b.svg"
    plot_video(outputs, first, title="t", ground_truth=GT)
    plot_video(outputs, second, title="t", ground_truth=GT)
    assert first.read_bytes() == second.read_bytes()


def _arrays(outputs: VideoOutputs) -> dict:
    return {
        "cas": outputs.cas,
        "attention": outputs.attention,
        "actionness": outputs.actionness,
        "video_scores": outputs.video_scores,
        "classes": np.array(CLASSES),
        "snippet_seconds": np.array(0.64),
        "source": np.array("attention"),
    }


def test_npz_round_trip(outputs, tmp_path):
    """The layout ``hamnet test --save-cas`` writes (compressed, str classes, 0-d scalars)."""
    path = tmp_path / "v.npz"
    np.savez_compressed(path, **_arrays(outputs))
    loaded = load_cas_npz(path)
    np.testing.assert_array_equal(loaded.cas, outputs.cas)
    np.testing.assert_array_equal(loaded.actionness, outputs.actionness)
    assert loaded.classes == CLASSES and loaded.source == "attention"
    assert loaded.snippet_seconds == pytest.approx(0.64) and loaded.origin == str(path)
    assert loaded.duration == pytest.approx(60 * 0.64)


def test_viz_imports_neither_torch_nor_pyplot():
    code = (
        "import sys, hamnet.viz; print('torch' in sys.modules, 'matplotlib.pyplot' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["False", "False"], result.stderr


def _write_missing_key(path, outputs):
    arrays = _arrays(outputs)
    del arrays["source"]
    np.savez(path, **arrays)


def _write_truncated(path, outputs):
    np.savez(path, **_arrays(outputs))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _write_pickled(path, outputs):
    np.savez(path, **{**_arrays(outputs), "classes": np.array(CLASSES, dtype=object)})


def _write_wrong_shape(path, outputs):
    np.savez(path, **{**_arrays(outputs), "attention": outputs.attention[:-1]})


def _write_not_npz(path, outputs):
    path.write_text("hello")


@pytest.mark.parametrize(
    ("writer", "message"),
    [
        (_write_missing_key, "missing array.*'source'"),
        (_write_truncated, "not a readable .npz"),
        (_write_pickled, "not a readable .npz"),
        (_write_wrong_shape, "'attention' has shape"),
        (_write_not_npz, "not a readable .npz"),
    ],
)
def test_bad_npz_raises_data_error_naming_the_file(outputs, tmp_path, writer, message):
    path = tmp_path / "broken.npz"
    writer(path, outputs)
    with pytest.raises(DataError, match=message) as caught:
        load_cas_npz(path)
    assert str(path) in str(caught.value)


def test_missing_npz_names_the_file(tmp_path):
    with pytest.raises(DataError, match="absent.npz: file not found"):
        load_cas_npz(tmp_path / "absent.npz")


def test_plot_map_vs_tiou_png_and_svg(tmp_path):
    tious = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    runs = {
        "HAM-Net": (tious, [0.65, 0.59, 0.52, 0.43, 0.34, 0.24, 0.14]),
        "no hard attention": (tious, [0.62, 0.56, 0.49, 0.40, 0.31, 0.21, 0.12]),
    }
    png, svg = tmp_path / "map.png", tmp_path / "map.svg"
    assert plot_map_vs_tiou(runs, [png, svg], protocol="thumos14") == [png, svg]
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5_000
    assert matplotlib.image.imread(png).ndim == 3
    text = _svg_text(svg)
    assert "HAM-Net" in text and "no hard attention" in text and "thumos14" in text
    assert svg.stat().st_size > 5_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.png", "map.svg"]


def test_plot_map_vs_tiou_checks_units_and_lengths(tmp_path):
    with pytest.raises(DataError, match="fractions"):
        plot_map_vs_tiou({"r": ([0.5], [43.0])}, tmp_path / "m.png", protocol="anet")
    plot_map_vs_tiou(
        {"r": ([0.5], [43.0])}, tmp_path / "m.png", protocol="anet", values_in_percent=True
    )
    with pytest.raises(DataError, match="same non-zero length"):
        plot_map_vs_tiou({"r": ([0.5, 0.6], [0.4])}, tmp_path / "m.png", protocol="anet")


def test_load_result_json(tmp_path):
    path = tmp_path / "result.json"
    path.write_text(
        json.dumps(
            {
                "tiou": [0.1, 0.5],
                "mAP": [0.6, 0.3],
                "average_mAP": 0.45,
                "protocol": "wtalc",
                "per_class": {"HighJump": [0.5, 0.2]},
            }
        )
    )
    assert load_result_json(path) == ([0.1, 0.5], [0.6, 0.3], "wtalc")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "malformed JSON"),
        ("[1, 2]", "not an object"),
        ('{"mAP": [0.5], "protocol": "anet"}', "'tiou' is missing"),
        ('{"tiou": [0.5], "mAP": ["x"], "protocol": "anet"}', "non-number"),
        ('{"tiou": [0.5], "mAP": [NaN], "protocol": "anet"}', "non-finite"),
        ('{"tiou": [0.5, 0.6], "mAP": [0.5], "protocol": "anet"}', "has 2 values"),
        ('{"tiou": [0.5], "mAP": [0.5]}', "'protocol'"),
    ],
)
def test_malformed_result_json_is_a_data_error(tmp_path, content, message):
    path = tmp_path / "result.json"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as caught:
        load_result_json(path)
    assert str(path) in str(caught.value)


def test_negative_detection_scores_can_be_shown(outputs, tmp_path):
    detections = [
        {"label": "HighJump", "score": -0.25, "segment": [5.0, 8.0]},
        {"label": "HighJump", "score": -1.5, "segment": [20.0, 25.0]},
    ]
    svg = tmp_path / "v.svg"
    plot_video(outputs, svg, title="t", detections=detections, min_score=float("-inf"))
    text = _svg_text(svg)
    assert "-0.25" in text and "-1.50" in text
