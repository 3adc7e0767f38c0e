"""The HTML report's content, read back from the page's inlined JSON."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from hamnet.cli import main


def page_data(path) -> dict:
    text = path.read_text(encoding="utf-8")
    match = re.search(
        r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S
    )
    assert match, "the page holds its data"
    return json.loads(match.group(1))


def test_report_is_self_contained(tiny_report):
    text = tiny_report.read_text(encoding="utf-8")
    # nothing is fetched: no external script, style, image or font
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', text)
    assert "<script src" not in text and "<link" not in text
    assert text.count("data:image/svg+xml;base64,") >= 1  # diagnosis charts inlined


def test_report_data_matches_the_run(tiny_run, tiny_report):
    data = page_data(tiny_report)
    result = json.loads((tiny_run / "test" / "result.json").read_text())
    assert data["protocol"] == result["protocol"] and data["protocol_title"]
    assert data["result"]["mAP"] == result["mAP"]
    epochs = [json.loads(line)["epoch"] for line in (tiny_run / "metrics.jsonl").open()]
    assert [row["epoch"] for row in data["metrics"]] == epochs
    assert any(key.startswith("loss_") for key in data["metrics"][0])
    assert data["diagnosis"]["summary"]["false_positive"]["counts"]
    videos = data["videos"]
    assert len(videos) == data["diagnosis"]["summary"]["ground_truth"]["videos"]
    assert all(len(v["ap"]) == len(data["tiou"]) for v in videos)


def test_ap_shares_of_all_videos_add_up_to_the_map(tiny_report):
    """The shares decompose the (ActivityNet-protocol) mAP exactly."""
    data = page_data(tiny_report)
    assert data["protocol"] == "anet"
    shares = np.array([v["ap"] for v in data["videos"]]).sum(axis=0)
    assert shares == pytest.approx(data["result"]["mAP"], abs=1e-4)


def test_signals_decode_to_the_video_length(tiny_run, tiny_report):
    import base64

    from hamnet.viz.outputs import load_cas_npz

    data = page_data(tiny_report)
    video = next(v for v in data["videos"] if "a" in v)
    outputs = load_cas_npz(tiny_run / "test" / "cas" / f"{video['n']}.npz")
    attention = np.frombuffer(base64.b64decode(video["a"]), dtype=np.uint8) / 255
    assert attention == pytest.approx(outputs.attention, abs=0.5 / 255 + 1e-6)


def test_report_without_test_outputs_or_data_is_one_line(tmp_path, capsys):
    (tmp_path / "last.pt").write_bytes(b"")
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--data" in err


def test_analyze_on_a_run_folder_uses_its_test_outputs(tiny_run, tiny_report, tmp_path, capsys):
    out = tmp_path / "diag"
    assert main(["analyze", str(tiny_run), "--out", str(out)]) == 0
    data = json.loads((out / "diagnosis.json").read_text())
    assert data["subset"] == "test" and data["detections_file"].endswith("detections.json")
    # the run was evaluated at 0.1:0.7: its thresholds, and THUMOS14's bins (issue 18)
    assert data["bins"] == "thumos14" and data["tiou"] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    assert data["ground_truth"]["videos"] == len(page_data(tiny_report)["videos"])
