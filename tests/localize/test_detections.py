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


def _general_columns(path, classes, monkeypatch):
    import hamnet.localize.detections as module

    with monkeypatch.context() as patch:
        patch.setattr(module, "_regular_columns", lambda *args: None)
        patch.setattr(module, "orjson", None)
        return module.read_detection_columns(path, classes)


def _same_columns(fast, general):
    assert fast.videos == general.videos and fast.labels == general.labels
    for field in ("video", "label", "score", "segment"):
        a, b = getattr(fast, field), getattr(general, field)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()  # same bits, -0.0 included


REGULAR = (
    '{"version": "x", "results": {"b": [{"label": "X", "score": 0.5, "segment": [1, 2.5]},'
    ' {"label": "Y", "score": -0.25, "segment": [0, 1e-3]}],\n "a": [\n  {\n   "label": "X",'
    '\n   "score": 1E2,\n   "segment": [\n    0.1,\n    0.30000000000000004\n   ]\n  }\n ], '
    '"c": []}, "external_data": {"used": false}}'
)


def test_regular_entries_take_the_fast_path_with_the_general_result(tmp_path, monkeypatch):
    import hamnet.localize.detections as module

    path = _write(tmp_path, REGULAR)
    fast = module._regular_columns(path, path.read_bytes(), ["X", "Y"])
    assert fast is not None and fast.videos == ["b", "a", "c"]
    assert fast.score.tolist() == [0.5, -0.25, 100.0]
    assert fast.segment.tolist() == [[1.0, 2.5], [0.0, 0.001], [0.1, 0.30000000000000004]]
    _same_columns(fast, _general_columns(path, ["X", "Y"], monkeypatch))


@pytest.mark.parametrize(
    "entry",
    [
        '{"label": "X\\u00e9", "score": 1, "segment": [0, 1]}',  # an escape
        '{"score": 1, "label": "X", "segment": [0, 1]}',  # another key order
        '{"label": "X", "score": -0, "segment": [0, 1]}',  # the integer -0 is read as 0
        '{"label": "X", "score": 1, "segment": [-0, 1]}',
        '{"label": "X", "score": 1, "segment": [0, 1], "extra": 2}',
    ],
)
def test_other_entries_give_the_general_result(tmp_path, monkeypatch, entry):
    path = _write(tmp_path, '{"results": {"v": [' + entry + "]}}")
    general = _general_columns(path, None, monkeypatch)
    _same_columns(load_columns(path), general)  # bit for bit: "-0" gives 0.0, not -0.0


def _random_detections(seed: int, count: int) -> list[Detection]:
    rng = np.random.default_rng(seed)
    starts = rng.uniform(0, 200, count)
    ends = starts + rng.exponential(5, count)
    scores = np.where(rng.random(count) < 0.1, -rng.random(count), rng.random(count))
    return [
        Detection(f"v{i % 37}", f"c{i % 5}", float(s), float(a), float(b))
        for i, (s, a, b) in enumerate(zip(scores, starts, ends, strict=True))
    ]


NEVER = rb"(?!)(a)(b)(c)(d)"  # an entry pattern that cuts nothing


@pytest.mark.parametrize("indent, unused", [(None, "_ENTRY"), (1, "_DUMPS_ENTRY")])
def test_each_spacing_is_cut_by_its_pattern(tmp_path, monkeypatch, indent, unused):
    """hamnet's own files (json.dumps spacing) need only the literal pattern; indented
    ones the pattern with any whitespace; both give the general path's columns."""
    import re

    import hamnet.localize.detections as module

    document = module.results_document(_random_detections(0, 3000))
    path = _write(tmp_path, json.dumps(document, indent=indent))
    monkeypatch.setattr(module, unused, re.compile(NEVER))
    fast = module._regular_columns(path, path.read_bytes(), [f"c{k}" for k in range(5)])
    assert fast is not None and len(fast) == 3000
    _same_columns(fast, _general_columns(path, None, monkeypatch))


@pytest.mark.parametrize("name", ["caf\u00e9", "#"])
def test_an_escape_or_the_mark_as_a_name_takes_the_general_path(name, tmp_path, monkeypatch):
    """A \\u escape anywhere, or the skeleton's own mark "#" as a video name: the fast
    path declines and the general reader gives every column."""
    import hamnet.localize.detections as module

    document = module.results_document(_random_detections(1, 200))
    document["results"][name] = document["results"].pop("v3")
    path = _write(tmp_path, json.dumps(document))
    assert module._regular_columns(path, path.read_bytes(), None) is None
    columns = load_columns(path)
    assert name in columns.videos
    _same_columns(columns, _general_columns(path, None, monkeypatch))


def load_columns(path, classes=None):
    from hamnet.localize.detections import read_detection_columns

    return read_detection_columns(path, classes)


@pytest.mark.parametrize(
    "text, message",
    [
        # an entry inside a string: cutting it out must not turn the file valid
        ('{"results": {"v": ["a{"label": "X", "score": 1, "segment": [0, 1]}"]}}', "malformed"),
        ('{"results": {"v": [{"label": "X", "score": 01, "segment": [0, 1]}]}}', "malformed"),
        ('{"results": {"v": [{"label": "X", "score": 1, "segment": [0, 1]}], "v": []}}', "twice"),
        ('{"results": {"v": [{"label": "X", "score": 1, "segment": [0, 1]}, 3]}}', "not an obj"),
        # the mark itself in the file, beside a cut entry, plain or escaped
        ('{"results": {"v": ["#", {"label": "X", "score": 1, "segment": [0, 1]}]}}', "not an"),
        ('{"results": {"v": ["\\u0023", {"label": "X", "score": 1, "segment": [0, 1]}]}}', "not"),
        ('{"results": {"v": [{"label": "X", "score": 1, "segment": [0, 1]}], "#": "#"}}', "not a"),
        ('{"results": {"v": [{"label": "X", "score": 1e400, "segment": [0, 1]}]}}', "finite"),
        ('{"results": {"v": [{"label": "Z", "score": 1, "segment": [0, 1]}]}}', "class list"),
        ('{"results": {"v": [{"label": "X", "score": 1, "segment": [2, 1]}]}}', "end < start"),
    ],
)
def test_regular_looking_bad_files_are_refused(tmp_path, text, message):
    with pytest.raises(EvaluationInputError, match=message):
        load_columns(_write(tmp_path, text), ["X"])
