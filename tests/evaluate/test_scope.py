"""``hamnet eval`` names what it scored: subset inference, unknown videos, provenance."""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from pathlib import Path

import pytest

from hamnet.cli import main
from hamnet.data.annotations import AnnotationSet, Segment, Video, save_gt_json
from hamnet.errors import EvaluationInputError
from hamnet.evaluate.files import evaluate_files
from hamnet.localize.detections import Detection, save_detections

sys.path.insert(0, str(Path(__file__).resolve().parent))
from official_fields import read_official_detections, read_official_ground_truth  # noqa: E402


def two_subset_gt() -> AnnotationSet:
    """Four test and four validation videos; one instance of X or Y each."""
    videos = []
    for subset in ("test", "validation"):
        for i in range(4):
            label = "X" if i % 2 == 0 else "Y"
            seg = Segment(10.0, 20.0, label)
            videos.append(Video(f"{subset}_{i}", subset, 100.0, (label,), (seg,)))
    return AnnotationSet(["X", "Y"], videos)


def perfect(subset: str, prefix: str = "") -> list[Detection]:
    return [
        Detection(f"{prefix}{subset}_{i}", "X" if i % 2 == 0 else "Y", 0.9, 10.0, 20.0)
        for i in range(4)
    ]


@pytest.fixture
def files(tmp_path):
    gt = tmp_path / "gt.json"
    save_gt_json(two_subset_gt(), gt)
    return gt, tmp_path


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("hamnet: error:")]
    assert len(lines) == 1 and len(err.strip().splitlines()) == 1, err
    return lines[0]


def test_subset_inferred_from_the_detections(files, capsys) -> None:
    gt, folder = files
    save_detections(folder / "pred.json", perfect("test"))
    code, out, _ = run(capsys, "eval", "--gt", gt, "--pred", folder / "pred.json",
                       "--json", folder / "r.json", "--tiou", "0.5")  # fmt: skip
    assert code == 0
    assert "subset 'test' (inferred from the detections): 4 videos" in out
    result = json.loads((folder / "r.json").read_text())
    # all-subset scoring would give recall 1/2 and mAP 0.5; the test subset alone is perfect
    assert result["average_mAP"] == 1.0
    scope = result["scope"]
    assert scope["subset"] == "test" and scope["subset_inferred"] is True
    assert (scope["videos"], scope["gt_instances"], scope["detections"]) == (4, 4, 4)
    assert scope["detections_used"] == 4 and scope["unknown_videos"] == 0


def test_detections_in_two_subsets_ask_for_subset(files, capsys) -> None:
    gt, folder = files
    save_detections(folder / "pred.json", perfect("test") + perfect("validation")[:1])
    code, _, err = run(capsys, "eval", "--gt", gt, "--pred", folder / "pred.json")
    assert code == 2
    line = error_line(err)
    assert "several subsets" in line and "'test': 4 video(s)" in line
    assert "'validation': 1 video(s)" in line and "--subset" in line
    code, out, _ = run(capsys, "eval", "--gt", gt, "--pred", folder / "pred.json",
                       "--subset", "test", "--tiou", "0.5")  # fmt: skip
    assert code == 0 and "subset 'test': 4 videos" in out


def test_v_prefix_named(files, capsys) -> None:
    gt, folder = files
    save_detections(folder / "pred.json", perfect("test", prefix="v_"))
    code, _, err = run(capsys, "eval", "--gt", gt, "--pred", folder / "pred.json")
    assert code == 2
    line = error_line(err)
    assert "4 of the 4 videos with detections are not in the ground truth" in line
    assert "'v_test_0'" in line and "'test_0'" in line
    assert "'v_' prefix that the ground truth's lack" in line


def test_prefix_on_the_ground_truth_side(tmp_path, capsys) -> None:
    gt = two_subset_gt()
    renamed = [Video(f"v_{v.name}", v.subset, v.duration, v.labels, v.segments) for v in gt.videos]
    save_gt_json(AnnotationSet(gt.classes, renamed), tmp_path / "gt.json")
    save_detections(tmp_path / "pred.json", perfect("test"))
    code, _, err = run(capsys, "eval", "--gt", tmp_path / "gt.json", "--pred",
                       tmp_path / "pred.json")  # fmt: skip
    assert code == 2 and "ground truth's ids carry a 'v_' prefix" in error_line(err)


def test_some_unknown_videos_counted_and_warned(files, capsys, caplog) -> None:
    gt, folder = files
    stray = [Detection("elsewhere", "X", 0.95, 10.0, 20.0)]
    save_detections(folder / "pred.json", perfect("test") + stray)
    with caplog.at_level(logging.WARNING):
        code, out, _ = run(capsys, "eval", "--gt", gt, "--pred", folder / "pred.json",
                           "--json", folder / "r.json", "--tiou", "0.5")  # fmt: skip
    assert code == 0
    assert "1 detection(s) in 1 video(s) unknown to the ground truth (e.g. 'elsewhere')" in (
        caplog.text
    )
    assert "1 detection video(s) unknown to the ground truth" in out
    scope = json.loads((folder / "r.json").read_text())["scope"]
    assert scope["unknown_videos"] == 1 and scope["unknown_video_detections"] == 1
    assert scope["unknown_video_examples"] == ["elsewhere"]
    assert scope["detections"] == 5 and scope["detections_used"] == 4


def test_subset_without_any_detection_is_an_error(files, capsys) -> None:
    gt, folder = files
    save_detections(folder / "pred.json", perfect("test"))
    code, _, err = run(capsys, "eval", "--gt", gt, "--pred", folder / "pred.json",
                       "--subset", "validation")  # fmt: skip
    assert code == 2
    assert "none of the detections' videos is in subset 'validation'" in error_line(err)


def test_result_records_its_inputs(files, capsys) -> None:
    gt, folder = files
    save_detections(folder / "pred.json", perfect("test"))
    code, _, _ = run(capsys, "eval", "--gt", gt, "--pred", folder / "pred.json",
                     "--json", folder / "r.json", "--protocol", "thumos14")  # fmt: skip
    assert code == 0
    result = json.loads((folder / "r.json").read_text())
    inputs = result["inputs"]
    for key, path in (("ground_truth", gt), ("detections", folder / "pred.json")):
        assert inputs[key]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert inputs[key]["bytes"] == path.stat().st_size
        assert inputs[key]["path"] == str(path.resolve())
    assert result["protocol"] == "thumos14" and inputs["software"]["hamnet"]


def test_input_record_is_made_again_when_the_background_one_fails(files, monkeypatch, capsys):
    """The record is made in a thread while the files are parsed; a failure there is
    silent and the record is made again in the caller."""
    import threading

    import hamnet.evaluate.files as module

    made, calls = module.input_record, []

    def flaky(*paths):
        calls.append(threading.current_thread() is threading.main_thread())
        if not calls[-1]:
            raise OSError("file busy")
        return made(*paths)

    monkeypatch.setattr(module, "input_record", flaky)
    gt, folder = files
    save_detections(folder / "pred.json", perfect("test"))
    result = evaluate_files(gt, folder / "pred.json", tiou=[0.5])
    assert calls == [False, True]
    digest = hashlib.sha256((folder / "pred.json").read_bytes()).hexdigest()
    assert result.inputs["detections"]["sha256"] == digest
    assert capsys.readouterr().err == ""


def test_python_api_follows_the_same_rules(files) -> None:
    gt, folder = files
    save_detections(folder / "pred.json", perfect("test"))
    result = evaluate_files(gt, folder / "pred.json", tiou=[0.5])
    assert result.scope["subset"] == "test" and result.average_mAP == 1.0
    save_detections(folder / "both.json", perfect("test") + perfect("validation"))
    with pytest.raises(EvaluationInputError, match="several subsets"):
        evaluate_files(gt, folder / "both.json", tiou=[0.5])
    save_detections(folder / "v.json", perfect("test", prefix="v_"))
    with pytest.raises(EvaluationInputError, match="'v_' prefix"):
        evaluate_files(gt, folder / "v.json", tiou=[0.5])


@pytest.mark.parametrize("tiou", ["0.1:0.7:1e-10", "0.01:1:0.001", ",".join(["0.5"] * 101)])
def test_too_many_thresholds_is_one_line(files, capsys, tiou) -> None:
    gt, folder = files
    save_detections(folder / "pred.json", perfect("test"))
    code, _, err = run(capsys, "eval", "--gt", gt, "--pred", folder / "pred.json",
                       "--tiou", tiou)  # fmt: skip
    assert code == 2 and "at most 100" in error_line(err)


def test_written_files_pass_the_official_field_checks(files, tiny_root) -> None:
    gt, folder = files
    save_detections(folder / "pred.json", perfect("test"))
    ground_truth = read_official_ground_truth(gt, "test")
    assert len(ground_truth) == 4
    assert len(read_official_detections(folder / "pred.json", ground_truth)) == 4
    # the GT JSON that synth/convert write is accepted too
    assert read_official_ground_truth(tiny_root / "Synthetic-gt.json", "test")


def test_official_field_checks_refuse_the_old_files(tmp_path) -> None:
    """The reader is not vacuous: files without the required fields are refused."""
    (tmp_path / "gt.json").write_text(json.dumps({"database": {}}))
    with pytest.raises(KeyError, match="taxonomy"):
        read_official_ground_truth(tmp_path / "gt.json", "test")
    (tmp_path / "pred.json").write_text(json.dumps({"version": "x", "results": {}}))
    with pytest.raises(KeyError, match="external_data"):
        read_official_detections(tmp_path / "pred.json", [])


@pytest.mark.parametrize(
    "which, content, message",
    [
        ("gt", "[" * 100000 + "]" * 100000, "nested too deeply"),
        ("pred", '{"results": {"a": ' + "[" * 100000 + "]" * 100000 + "}}", "nested too deeply"),
        ("gt", None, "is a folder, not a JSON file"),
        ("pred", None, "is a folder, not a detections file"),
        ("gt", b"\x8c\xff\x00", "malformed JSON"),
    ],
)
def test_hostile_inputs_are_one_line(files, capsys, which, content, message) -> None:
    gt, folder = files
    save_detections(folder / "pred.json", perfect("test"))
    paths = {"gt": gt, "pred": folder / "pred.json"}
    bad = folder / f"bad_{which}"
    if content is None:
        bad.mkdir()
    elif isinstance(content, bytes):
        bad.write_bytes(content)
    else:
        bad.write_text(content)
    paths[which] = bad
    code, _, err = run(capsys, "eval", "--gt", paths["gt"], "--pred", paths["pred"])
    assert code == 2 and message in error_line(err)


def test_unwritable_result_is_one_line(files, capsys) -> None:
    gt, folder = files
    save_detections(folder / "pred.json", perfect("test"))
    (folder / "blocker").write_text("a file where a folder should be")
    code, out, err = run(capsys, "eval", "--gt", gt, "--pred", folder / "pred.json",
                         "--json", folder / "blocker" / "r.json")  # fmt: skip
    assert code == 2 and "cannot write the result" in err.strip().splitlines()[-1]


def test_empty_inputs(files, capsys) -> None:
    gt, folder = files
    empty = {"version": "x", "results": {}, "external_data": {}}
    (folder / "none.json").write_text(json.dumps(empty))
    code, _, err = run(capsys, "eval", "--gt", gt, "--pred", folder / "none.json")
    assert code == 2 and "the subset cannot be inferred; pass --subset" in error_line(err)
    code, out, _ = run(capsys, "eval", "--gt", gt, "--pred", folder / "none.json",
                       "--subset", "test", "--tiou", "0.5")  # fmt: skip
    assert code == 0 and "0 of 0 detections" in out and "0.00" in out
    raw = json.loads(gt.read_text())
    raw["database"] = {}
    (folder / "nogt.json").write_text(json.dumps(raw))
    save_detections(folder / "pred.json", perfect("test"))
    code, _, err = run(capsys, "eval", "--gt", folder / "nogt.json", "--pred",
                       folder / "pred.json")  # fmt: skip
    assert code == 2 and "4 of the 4 videos with detections are not in" in error_line(err)
