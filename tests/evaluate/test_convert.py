"""``hamnet convert-detections --format pmil``: an excerpt of P-MIL's shipped CO2-Net
proposals (RenHuan1999/CVPR2023_P-MIL@855e683, ``proposals/detection_result_base_test.json``,
4 test videos, 61 records copied verbatim) converted and scored, and the bad inputs.

Expected numbers (fractions of the AP table, per class FrisbeeCatch / LongJump / Shotput;
FrisbeeCatch has ground truth in video 672 but only SoccerPenalty detections there: AP 0):
- ``anet``: the official ActivityNet AP code fed seconds gives the same, to 1e-16.
- P-MIL's own evaluator (its ``eval_detection.py``, GT ``round(s * 25/16)`` snippets,
  detections ``round(s * 25/16, 2)``, ``filter_segments`` for the ambiguous spans), run on
  this excerpt: equal to ``anet`` except at tIoU 0.7, where Shotput is 1/11, not 1/7. By
  hand: GT [45.8, 49.5] s; the 7th-ranked detection [45.44, 50.56] s has IoU 3.7 / 5.12 =
  0.723 in seconds, but in snippets GT [72, 77] and detection [71, 79] give 5 / 8 = 0.625;
  the 11th, [46.08, 50.56] s = [72, 79], gives 5 / 7 = 0.714.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hamnet.cli import main
from hamnet.data.annotations import AnnotationSet, load_gt_json
from hamnet.data.released import save_released_annotations
from hamnet.evaluate.detection_map import evaluate_detections
from hamnet.evaluate.files import THUMOS_TIOU, evaluate_files
from hamnet.localize.detections import load_detections

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loop_reference import protocol_map  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXCERPT, EXCERPT_GT = FIXTURES / "pmil_excerpt.json", FIXTURES / "pmil_excerpt_gt.json"
SNIPPETS_PER_SECOND = 25.0 / 16.0


def per_threshold(*aps: tuple[float, float, float]) -> list[float]:
    return [sum(row) / 3 for row in aps]


ANET = per_threshold(*[(0, 1, 1)] * 3, (0, 0.45, 1), *[(0, 0.45, 1 / 7)] * 3)
PMIL_OFFICIAL = ANET[:6] + per_threshold((0, 0.45, 1 / 11))
EXPECTED = {
    "anet": ANET,
    "thumos14": per_threshold(*[(0, 5 / 11, 1 / 7)] * 7),  # 11-point AP, kit matching
    "wtalc": PMIL_OFFICIAL,  # snippet index sets, as P-MIL's evaluator counts
}


@pytest.fixture
def converted(tmp_path: Path) -> Path:
    out = tmp_path / "converted.json"
    assert main(["convert-detections", str(EXCERPT), str(out), "--format", "pmil",
                 "--gt", str(EXCERPT_GT)]) == 0  # fmt: skip
    return out


def test_conversion_keeps_every_record_in_order(converted: Path) -> None:
    source = json.loads(EXCERPT.read_text())
    written = json.loads(converted.read_text())
    assert written["version"] == "hamnet"
    assert written["external_data"]["used"] is True
    assert written["converted_from"] == {
        "format": "pmil",
        "file": "pmil_excerpt.json",
        "version": "Thumos14reduced",
    }
    assert list(written["results"]) == list(source["results"])
    for video, records in source["results"].items():
        assert written["results"][video] == [
            {"label": r["label"], "score": r["score"], "segment": r["segment"]} for r in records
        ]
    assert sum(map(len, written["results"].values())) == 61


@pytest.mark.parametrize("protocol", sorted(EXPECTED))
def test_excerpt_scores(converted: Path, protocol: str) -> None:
    result = evaluate_files(EXCERPT_GT, converted, protocol=protocol)
    assert result.scope["gt_instances"] == 7 and result.scope["detections_used"] == 61
    np.testing.assert_allclose(result.mAP, EXPECTED[protocol], rtol=0, atol=1e-12)


def test_thumos14_numbers_equal_the_kit_loop(converted: Path) -> None:
    truth = load_gt_json(EXCERPT_GT)
    rows = [(v.name, s.label, s.start, s.end) for v in truth.videos for s in v.segments]
    dets = load_detections(converted, truth.classes)
    det_rows = [(d.video, d.label, d.score, d.start, d.end) for d in dets]
    loop = protocol_map("thumos14", rows, det_rows, list(THUMOS_TIOU), truth.ambiguous)
    np.testing.assert_allclose(loop, EXPECTED["thumos14"], rtol=0, atol=1e-12)


def test_pmil_evaluator_is_anet_on_snippet_units(converted: Path) -> None:
    """Why P-MIL's numbers differ from ``anet``: it scores GT rounded to whole snippets
    (its filter of ambiguous spans drops none of these detections)."""
    truth = load_gt_json(EXCERPT_GT)
    rounded = [
        replace(v, segments=tuple(replace(s, start=snippet(s.start), end=snippet(s.end))
                                  for s in v.segments))
        for v in truth.videos
    ]  # fmt: skip
    dets = [
        replace(d, start=round(d.start * SNIPPETS_PER_SECOND, 2),
                end=round(d.end * SNIPPETS_PER_SECOND, 2))
        for d in load_detections(converted, truth.classes)
    ]  # fmt: skip
    result = evaluate_detections(
        AnnotationSet(truth.classes, rounded), dets, tiou=THUMOS_TIOU, protocol="anet"
    )
    np.testing.assert_allclose(result.mAP, PMIL_OFFICIAL, rtol=0, atol=1e-12)


def snippet(seconds: float) -> float:
    return float(round(seconds * SNIPPETS_PER_SECOND))


@pytest.mark.parametrize("where", ["root", "folder"])
def test_data_option_reads_released_annotations(tmp_path, converted, capsys, where) -> None:
    """--data: a dataset root (features not needed) or the annotation folder itself."""
    folder = tmp_path / "Thumos14reduced-Annotations"
    save_released_annotations(load_gt_json(EXCERPT_GT), folder, duration_2d=True)
    out = tmp_path / "out.json"
    data = tmp_path if where == "root" else folder
    argv = ["convert-detections", EXCERPT, out, "--format", "pmil", "--data", data]
    assert main([str(a) for a in argv]) == 0
    assert "61 detections in 4 videos" in capsys.readouterr().out
    assert out.read_bytes() == converted.read_bytes()


def excerpt_with(change) -> dict:
    document = json.loads(EXCERPT.read_text())
    change(document["results"])
    return document


def first(results: dict) -> dict:
    return results["video_test_0000062"][0]


BAD_INPUTS = [
    ("empty", b"", "empty file"),
    ("blank", b"  \n", "empty file"),
    ("not json", b"video_test_0000062 LongJump 0.5", "malformed JSON"),
    ("a list", b"[1, 2]", "not a P-MIL detections file"),
    ("no results", b'{"version": "Thumos14reduced"}', "not a P-MIL detections file"),
    ("no detections", b'{"version": "x", "results": {"video_test_0000062": []}}', "no detections"),
    ("version", b'{"version": 3, "results": {}}', "'version' is not a string"),
    ("unknown video", lambda r: r.update(video_test_9999999=[first(r)]), "'video_test_9999999'"),
    ("unknown class", lambda r: first(r).update(label="Juggling"), "'Juggling' is not in"),
    ("class index", lambda r: first(r).update(label=9), "'label' is not a string"),
    ("past the end", lambda r: first(r).update(segment=[14.08, 16.0]), "outside the video"),
    ("starts after", lambda r: first(r).update(segment=[15.2, 15.3]), "outside the video"),
    ("negative", lambda r: first(r).update(segment=[-0.64, 1.0]), "negative time"),
    ("reversed", lambda r: first(r).update(segment=[3.84, 2.56]), "end < start"),
    ("nan score", b'{"results": {"video_test_0000062": [{"score": NaN, '
     b'"segment": [1, 2], "label": "LongJump"}]}}', "'score' is not finite"),
    ("inf segment", b'{"results": {"video_test_0000062": [{"score": 0.5, '
     b'"segment": [1, Infinity], "label": "LongJump"}]}}', "'segment' is not finite"),
    ("missing field", lambda r: first(r).pop("score"), "missing field 'score'"),
]  # fmt: skip


@pytest.mark.parametrize("content, message", [case[1:] for case in BAD_INPUTS],
                         ids=[case[0] for case in BAD_INPUTS])  # fmt: skip
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, cli_line, content, message) -> None:
    source = tmp_path / "in.json"
    if callable(content):
        source.write_text(json.dumps(excerpt_with(content)))
    else:
        source.write_bytes(content)
    out = tmp_path / "out.json"
    code, line = cli_line("convert-detections", source, out, "--format", "pmil", "--gt", EXCERPT_GT)
    assert code == 2
    assert line.startswith(f"hamnet: error: {source}") and message in line, line
    assert not out.exists() and list(tmp_path.iterdir()) == [source]


def test_an_existing_output_survives_a_bad_input(tmp_path, cli_line) -> None:
    source, out = tmp_path / "in.json", tmp_path / "out.json"
    source.write_text(json.dumps(excerpt_with(lambda r: first(r).update(label="Juggling"))))
    out.write_text("old\n")
    code, _ = cli_line("convert-detections", source, out, "--format", "pmil", "--gt", EXCERPT_GT)
    assert code == 2 and out.read_text() == "old\n"


def test_output_may_not_be_the_input(tmp_path, cli_line) -> None:
    source = tmp_path / "in.json"
    source.write_bytes(EXCERPT.read_bytes())
    code, line = cli_line("convert-detections", source, source, "--format", "pmil",
                          "--gt", EXCERPT_GT)  # fmt: skip
    assert code == 2 and "refusing to overwrite an input" in line
    assert source.read_bytes() == EXCERPT.read_bytes()


@pytest.mark.parametrize("end, accepted", [(15.68, True), (15.69, False)])
def test_a_detection_may_end_one_snippet_past_the_duration(tmp_path, end, accepted) -> None:
    """video_test_0000062 lasts 15.0433 s; its last snippet may end up to 0.64 s later."""
    source, out = tmp_path / "in.json", tmp_path / "out.json"
    source.write_text(json.dumps(excerpt_with(lambda r: first(r).update(segment=[14.4, end]))))
    code = main(["convert-detections", str(source), str(out), "--format", "pmil",
                 "--gt", str(EXCERPT_GT)])  # fmt: skip
    assert (code == 0) is accepted and out.exists() is accepted


def test_excerpt_ground_truth_is_the_real_one(thumos_annotations_dir: Path) -> None:
    """The fixture's ground truth is the shared THUMOS14 annotations of its 4 videos."""
    from hamnet.data.released import load_released_annotations

    real = load_released_annotations(thumos_annotations_dir)
    excerpt = load_gt_json(EXCERPT_GT)
    assert excerpt.classes == real.classes
    assert excerpt.videos == [real.video(v.name) for v in excerpt.videos]
    assert excerpt.ambiguous == {v.name: real.ambiguous[v.name] for v in excerpt.videos
                                 if v.name in real.ambiguous}  # fmt: skip
