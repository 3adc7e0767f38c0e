"""Results-file round trip and validation messages."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hamnet.errors import EvaluationInputError
from hamnet.localize.detections import Detection, load_detections, save_detections


def test_round_trip_keeps_order_and_extra(tmp_path):
    found = [
        Detection("b", "X", 0.5, 1.0, 2.0),
        Detection("a", "Y", 0.9, 0.0, 3.5),
        Detection("b", "Y", 0.1, 4.0, 4.0),
    ]
    save_detections(tmp_path / "r.json", found, extra={"protocol": "anet"})
    raw = json.loads((tmp_path / "r.json").read_text())
    assert (
        raw["version"] == "hamnet"
        and raw["protocol"] == "anet"
        and list(raw["results"]) == ["b", "a"]
    )
    assert raw["results"]["a"] == [{"label": "Y", "score": 0.9, "segment": [0.0, 3.5]}]
    assert load_detections(tmp_path / "r.json", ["X", "Y"]) == [found[0], found[2], found[1]]


def _write(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"label": "X", "score": 0.5}, "missing field 'segment'"),
        ({"label": "X", "score": float("nan"), "segment": [0, 1]}, "field 'score' is not finite"),
        ({"label": "X", "score": "high", "segment": [0, 1]}, "field 'score' is not a number"),
        ({"label": "X", "score": 0.5, "segment": [2, 1]}, "end < start"),
        ({"label": "X", "score": 0.5, "segment": [-1, 1]}, "negative time"),
        ({"label": "X", "score": 0.5, "segment": [1]}, "field 'segment' is not"),
        (
            {"label": "Z", "score": 0.5, "segment": [0, 1]},
            "field 'label': 'Z' is not in the class list",
        ),
    ],
)
def test_bad_entries_name_file_video_field(tmp_path, entry, message):
    path = _write(tmp_path, json.dumps({"results": {"vid7": [entry]}}))
    with pytest.raises(EvaluationInputError) as error:
        load_detections(path, ["X", "Y"])
    assert (
        str(path) in str(error.value)
        and "'vid7'" in str(error.value)
        and message in str(error.value)
    )


def test_malformed_files(tmp_path):
    with pytest.raises(EvaluationInputError, match="malformed JSON"):
        load_detections(_write(tmp_path, "{not json"))
    with pytest.raises(EvaluationInputError, match="no 'results'"):
        load_detections(_write(tmp_path, "[]"))
    with pytest.raises(EvaluationInputError, match="not found"):
        load_detections(tmp_path / "missing.json")


def test_columns_identical_with_and_without_orjson(tmp_path, monkeypatch):
    import hamnet.localize.detections as module

    found = [
        Detection("b", "X", 0.5, 1.0, 2.0),
        Detection("a", "Y", 0.9, 0.0, 3.5),
        Detection("b", "Y", 1, 4, 4.25),
    ]
    save_detections(tmp_path / "r.json", found)
    with_default = module.read_detection_columns(tmp_path / "r.json", ["X", "Y"])
    monkeypatch.setattr(module, "orjson", None)
    with_json = module.read_detection_columns(tmp_path / "r.json", ["X", "Y"])
    assert with_default.videos == with_json.videos == ["b", "a"]
    assert with_default.labels == with_json.labels == ["X", "Y"]
    for field in ("video", "label", "score", "segment"):
        assert np.array_equal(getattr(with_default, field), getattr(with_json, field))
    assert with_json.to_detections() == [found[0], found[2], found[1]]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "1e400", "1" + "0" * 400])
def test_non_standard_numbers_name_the_field(tmp_path, literal):
    path = tmp_path / "r.json"
    entry = '{"label": "X", "score": ' + literal + ', "segment": [0, 1]}'
    path.write_text('{"results": {"v": [' + entry + "]}}")
    with pytest.raises(EvaluationInputError, match=r"video 'v', detection 0: field 'score'"):
        load_detections(path, ["X"])


def test_columns_checks_match_the_entry_walk(tmp_path):
    """Each kind of bad value found by the array checks is named like the entry walk does."""
    good = {"label": "X", "score": 0.5, "segment": [0, 1]}
    cases = {
        "bool score": ({**good, "score": True}, "field 'score' is not a number"),
        "tuple-less segment": ({**good, "segment": "0-1"}, "field 'segment' is not"),
        "3 numbers": ({**good, "segment": [0, 1, 2]}, "field 'segment' is not"),
        "string start": ({**good, "segment": ["0", 1]}, "field 'segment' is not a number"),
        "label number": ({**good, "label": 3}, "field 'label' is not a string"),
        "entry list": ([1, 2], "not an object"),
    }
    for name, (entry, message) in cases.items():
        path = tmp_path / "r.json"
        path.write_text(json.dumps({"results": {"v": [good] * 3 + [entry]}}))
        with pytest.raises(EvaluationInputError, match=r"video 'v', detection 3: ") as error:
            load_detections(path, ["X"])
        assert message in str(error.value), name
