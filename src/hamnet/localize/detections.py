"""Detections: the record, and the ActivityNet-style results file that holds them.

File layout: ``{"version": "hamnet", "results": {video: [{"label", "score",
"segment": [start_s, end_s]}, ...]}, "external_data": {"used", "details"}, ...extra}``
(``version``, ``results`` and ``external_data`` are what the official ActivityNet
evaluator requires). Reading keeps file order (videos, then each video's list): the
ActivityNet evaluator breaks score ties by it.

Files are read column-wise (:func:`read_detection_columns`): fields are gathered into
lists and checked with set-of-types and array operations; only a file that fails a
check is walked entry by entry, to name the first bad entry.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hamnet.errors import EvaluationInputError
from hamnet.io import atomic_write_text, no_cycle_collection, parse_json
from hamnet.localize.json_numbers import json_floats

try:  # optional: about 3x faster JSON decoding of large detection files
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None

# hamnet's detections come from I3D features pre-trained on Kinetics-400.
EXTERNAL_DATA = {"used": True, "details": "I3D snippet features pre-trained on Kinetics-400"}
NUMBER_TYPES = frozenset({int, float})


@dataclass(frozen=True)
class Detection:
    """One scored temporal detection of one class in one video (times in seconds)."""

    video: str
    label: str
    score: float
    start: float
    end: float


def detections_to_results(detections: Iterable[Detection]) -> dict[str, list[dict]]:
    """Group detections by video (first-appearance order), as the results file holds them."""
    results: dict[str, list[dict]] = {}
    for det in detections:
        results.setdefault(det.video, []).append(
            {"label": det.label, "score": float(det.score), "segment": [det.start, det.end]}
        )
    return results


def results_document(detections: Iterable[Detection], extra: dict | None = None) -> dict:
    """The results file's content: ``version``, ``results``, ``external_data`` + ``extra``.

    ``extra`` may replace ``external_data`` (e.g. features from another backbone) but
    not ``version`` or ``results``.
    """
    out: dict = {
        "version": "hamnet",
        "results": detections_to_results(detections),
        "external_data": dict(EXTERNAL_DATA),
    }
    for key, value in (extra or {}).items():
        if key in ("version", "results"):
            raise EvaluationInputError(f"extra key {key!r} would overwrite {key!r}")
        out[key] = value
    return out


def save_detections(
    path: str | Path, detections: list[Detection], extra: dict | None = None
) -> None:
    """Write the results file atomically (:func:`detections_json`, the one writer)."""
    atomic_write_text(path, detections_json(detections, extra, str(path)))


def detections_json(
    detections: Iterable[Detection], extra: dict | None = None, where: str = "detections"
) -> str:
    """The results file's text (:func:`results_document`): every writer of detections
    JSON (``hamnet test``, ``hamnet predict``) goes through here."""
    try:
        document = results_document(detections, extra)
    except EvaluationInputError as error:
        raise EvaluationInputError(f"{where}: {error}") from None
    return json.dumps(document) + "\n"


@dataclass
class DetectionColumns:
    """Detections as arrays, file order kept: ``video``/``label`` index ``videos``/``labels``
    (distinct values in order of first appearance), ``score`` [N], ``segment`` [N, 2]."""

    videos: list[str]
    labels: list[str]
    video: np.ndarray
    label: np.ndarray
    score: np.ndarray
    segment: np.ndarray
    source: str = "<memory>"

    def __len__(self) -> int:
        return int(self.score.shape[0])

    def to_detections(self) -> list[Detection]:
        names = [self.videos[i] for i in self.video.tolist()]
        labels = [self.labels[i] for i in self.label.tolist()]
        starts, ends = self.segment[:, 0].tolist(), self.segment[:, 1].tolist()
        rows = zip(names, labels, self.score.tolist(), starts, ends, strict=True)
        return [Detection(*row) for row in rows]

    @classmethod
    def from_detections(cls, detections: Sequence[Detection]) -> DetectionColumns:
        videos = list(dict.fromkeys(d.video for d in detections))
        labels = list(dict.fromkeys(d.label for d in detections))
        video_index = {name: i for i, name in enumerate(videos)}
        label_index = {name: i for i, name in enumerate(labels)}
        return cls(
            videos,
            labels,
            np.array([video_index[d.video] for d in detections], dtype=np.int64),
            np.array([label_index[d.label] for d in detections], dtype=np.int64),
            np.array([d.score for d in detections], dtype=np.float64),
            np.array([(d.start, d.end) for d in detections], dtype=np.float64).reshape(-1, 2),
        )


def load_detections(path: str | Path, classes: list[str] | None = None) -> list[Detection]:
    """Read and validate a results file; every problem names the file, video and field.

    ``classes``: when given, a label outside it is an error.
    """
    return read_detection_columns(path, classes).to_detections()


def read_detection_columns(
    path: str | Path, classes: Sequence[str] | None = None
) -> DetectionColumns:
    """Read and validate a results file column-wise (see the module docstring)."""
    path = Path(path)
    data = _file_bytes(path)
    with no_cycle_collection():  # the split's million-item list, traversed at every pass
        fast = _regular_columns(path, data, classes)
    if fast is not None:
        return fast
    results = _results_object(path, data)
    videos, counts, labels, scores, segments = [], [], [], [], []
    for video, entries in results.items():
        if not isinstance(entries, list):
            raise EvaluationInputError(f"{path}: video {video!r}: results are not a list")
        try:
            labels += [entry["label"] for entry in entries]
            scores += [entry["score"] for entry in entries]
            segments += [entry["segment"] for entry in entries]
        except (KeyError, TypeError):
            _explain_first_problem(path, results, classes)
        videos.append(video)
        counts.append(len(entries))
    columns = _list_columns(path, videos, counts, labels, scores, segments)
    if columns is None:
        _explain_first_problem(path, results, classes)
    if classes is not None and not set(columns.labels) <= set(classes):
        _explain_first_problem(path, results, classes)
    return columns


def _file_bytes(path: Path) -> bytes:
    if path.is_dir():
        raise EvaluationInputError(f"{path}: is a folder, not a detections file")
    if not path.is_file():
        raise EvaluationInputError(f"{path}: file not found")
    return path.read_bytes()


def _results_object(path: Path, data: bytes) -> dict:
    raw = decode_json(data)
    if raw is None or not _keys_all_counted(data, raw):
        raw = parse_json(data, str(path), EvaluationInputError)
    results = raw.get("results") if isinstance(raw, dict) else None
    if not isinstance(results, dict):
        raise EvaluationInputError(f"{path}: not a detections file (no 'results' object)")
    return results


def decode_json(data: bytes) -> object | None:
    """A fast parse that keeps the last of a key given twice (checked afterwards by
    ``_keys_all_counted``): orjson's when it is installed, else the standard parser's
    without the duplicate-key hook (a Python call per object, half the time of a large
    file); None when it refuses the text, which the strict parser then explains.

    orjson refuses NaN/Infinity literals and integers past 64 bits, which the standard
    parser accepts; those files take the standard path so that the error names the field.
    """
    try:
        if orjson is not None:
            return orjson.loads(data)
        return json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):  # orjson's error is a ValueError
        return None


# One entry as hamnet writes it (any JSON whitespace): keys in this order, a label
# without escapes, numbers as runs of the characters of JSON numbers (their syntax is
# checked by json_floats: faster than by the pattern). Groups: label, score, start, end.
# Possessive quantifiers (*+, ++) match exactly what the greedy ones would here (each is
# followed by a character it cannot take) and save the regex engine its backtracking
# bookkeeping: a third of the split's time on a large file.
_WS = rb"[ \t\n\r]*+"
_NUMBER = rb"([-+.eE0-9]++)"
_LABEL = rb'"([^"\\\x00-\x1f]*+)"'
_ENTRY = re.compile(
    _WS.join(
        [rb"\{", rb'"label"', rb":", _LABEL, rb",", rb'"score"', rb":", _NUMBER]
        + [rb",", rb'"segment"', rb":", rb"\[", _NUMBER, rb",", _NUMBER, rb"\]", rb"\}"]
    )
)
# The same entry with json.dumps's spacing (", " and ": "), as hamnet writes it: literal
# text, which the regex engine matches in 0.7 of the time of the whitespace runs above.
_DUMPS_ENTRY = re.compile(
    b"".join([rb'\{"label": ', _LABEL, rb', "score": ', _NUMBER, rb', "segment": \['])
    + b"".join([_NUMBER, rb", ", _NUMBER, rb"\]\}"])
)
_MARK = "#"  # what each entry becomes in the skeleton: the string "#" (see _cut_entries)
_MARK_TEXT = b'"#"'


def _regular_columns(
    path: Path, data: bytes, classes: Sequence[str] | None
) -> DetectionColumns | None:
    """The fast path for files of regular entries, or None (the general path decides).

    Each entry matching ``_DUMPS_ENTRY`` (or else ``_ENTRY``) is cut out and replaced by
    the string "#"; the remaining skeleton goes through the strict parser. The cut is
    exact when the skeleton's results lists hold nothing but those marks, one per cut
    entry, and the skeleton holds the text ``"#"`` only where a mark is and no \\u escape
    (see :func:`_cut_entries`): then no mark can come from the file, and a cut that began
    inside a string leaves the mark's ``#`` outside one (a syntax error). Numbers convert
    as ``float`` does (:func:`json_floats`), as the json module reads them; anything
    unusual (a non-finite value, a negative zero, a label outside ``classes``) takes the
    general path.
    """
    cut = _cut_entries(path, data)
    if cut is None:
        return None
    parts, results = cut
    raw_labels = parts[1::5]
    try:
        names = list(dict.fromkeys(raw_labels))
        labels = [name.decode("utf-8") for name in names]
    except UnicodeDecodeError:
        return None
    if classes is not None and not set(labels) <= set(classes):
        return None
    numbers = _numbers(parts)
    if numbers is None or not _plain_values(*numbers):
        return None
    score, segment = numbers
    index = {name: i for i, name in enumerate(names)}
    codes = np.fromiter(map(index.__getitem__, raw_labels), dtype=np.int64, count=len(score))
    counts = list(map(len, results.values()))
    return DetectionColumns(
        videos=list(results),
        labels=labels,
        video=np.repeat(np.arange(len(results), dtype=np.int64), counts),
        label=codes,
        score=score,
        segment=segment,
        source=str(path),
    )


def _cut_entries(path: Path, data: bytes) -> tuple[list, dict] | None:
    """The parts of the entry pattern's split (5 per entry: the text before it, label,
    score, start, end; then the rest) and the skeleton's results object, or None when the
    cut is not exact (see :func:`_regular_columns`)."""
    for pattern in (_DUMPS_ENTRY, _ENTRY):
        parts = pattern.split(data)
        count = len(parts) // 5
        skeleton = _MARK_TEXT.join(parts[::5])
        # The string "#" can only be written "#" or with a \u escape; cut entries hold no
        # backslash and a mark begins and ends with a quote, so no \u forms at a seam and
        # the file's own escapes are all in the skeleton. Occurrences of "#" in valid JSON
        # never overlap (they would put a # outside a string), so counting them is exact.
        if skeleton.count(_MARK_TEXT) != count or b"\\u" in skeleton:
            return None
        if pattern is _DUMPS_ENTRY and b'"label"' in skeleton:
            continue  # entries spaced otherwise were left: cut again with any whitespace
        try:
            raw = parse_json(skeleton, str(path), EvaluationInputError)
        except EvaluationInputError:
            return None
        results = raw.get("results") if isinstance(raw, dict) else None
        if not isinstance(results, dict) or not _all_marks(results, count):
            return None
        return parts, results
    return None


def _numbers(parts: list) -> tuple[np.ndarray, np.ndarray] | None:
    """Scores [N] and segments [N, 2] of the cut entries, or None when a number is not
    in JSON syntax (the general path explains)."""
    count = len(parts) // 5
    score, start, end = (json_floats(parts[k::5]) for k in (2, 3, 4))
    if score is None or start is None or end is None:
        return None
    segment = np.empty((count, 2), dtype=np.float64)
    segment[:, 0], segment[:, 1] = start, end
    return score, segment


def _plain_values(score: np.ndarray, segment: np.ndarray) -> bool:
    """Finite, start >= 0, end >= start, and no -0.0 (the json module reads "-0" as 0)."""
    start, end = segment[:, 0], segment[:, 1]
    good = np.isfinite(score) & np.isfinite(start) & np.isfinite(end)
    good &= (start >= 0) & (end >= start)
    return bool(good.all()) and not _negative_zero(score) and not _negative_zero(segment)


def _all_marks(results: dict, entries: int) -> bool:
    """Whether every results value is a list of marks, ``entries`` in all."""
    lists = results.values()
    if not all(isinstance(v, list) and v.count(_MARK) == len(v) for v in lists):
        return False
    return sum(map(len, lists)) == entries


def _negative_zero(values: np.ndarray) -> bool:
    """Whether any value is -0.0 (the json module reads the integer "-0" as 0)."""
    return bool((np.signbit(values) & (values == 0)).any())


def _list_columns(path, videos, counts, labels, scores, segments) -> DetectionColumns | None:
    """Columns from the lists gathered from parsed entries, or None when any is malformed."""
    if not set(map(type, segments)) <= {list} or not set(map(len, segments)) <= {2}:
        return None
    starts, ends = [seg[0] for seg in segments], [seg[1] for seg in segments]
    return _columns(path, videos, counts, labels, scores, starts, ends)


def _columns(path, videos, counts, labels, scores, starts, ends) -> DetectionColumns | None:
    """Columns from the gathered fields, or None when any value is malformed."""
    if not set(map(type, scores)) <= NUMBER_TYPES or not set(map(type, labels)) <= {str}:
        return None
    if not (set(map(type, starts)) | set(map(type, ends))) <= NUMBER_TYPES:
        return None
    try:
        score = np.array(scores, dtype=np.float64)
        segment = np.array([starts, ends], dtype=np.float64).T.reshape(-1, 2)
    except OverflowError:  # an integer too large for a float
        return None
    start, end = segment[:, 0], segment[:, 1]
    good = np.isfinite(score) & np.isfinite(start) & np.isfinite(end) & (start >= 0)
    if not (good & (end >= start)).all():
        return None
    distinct = list(dict.fromkeys(labels))
    index = {name: i for i, name in enumerate(distinct)}
    return DetectionColumns(
        videos=videos,
        labels=distinct,
        video=np.repeat(np.arange(len(videos), dtype=np.int64), counts),
        label=np.fromiter(map(index.__getitem__, labels), dtype=np.int64, count=len(labels)),
        score=score,
        segment=np.ascontiguousarray(segment),
        source=str(path),
    )


def _explain_first_problem(path: Path, results: dict, classes: Sequence[str] | None) -> None:
    """Walk the entries one by one and raise for the first bad one (the slow path)."""
    known = set(classes) if classes is not None else None
    for video, entries in results.items():
        if not isinstance(entries, list):
            raise EvaluationInputError(f"{path}: video {video!r}: results are not a list")
        for i, entry in enumerate(entries):
            where = f"{path}: video {video!r}, detection {i}"
            detection = _parse_entry(where, video, entry)
            if known is not None and detection.label not in known:
                raise EvaluationInputError(
                    f"{where}: field 'label': {detection.label!r} is not in the class list"
                )
    raise EvaluationInputError(f"{path}: malformed detections")  # not reached in practice


def _parse_entry(where: str, video: str, entry: object) -> Detection:
    if not isinstance(entry, dict):
        raise EvaluationInputError(f"{where}: not an object")
    for key in ("label", "score", "segment"):
        if key not in entry:
            raise EvaluationInputError(f"{where}: missing field {key!r}")
    label = entry["label"]
    if not isinstance(label, str):
        raise EvaluationInputError(f"{where}: field 'label' is not a string ({label!r})")
    score = _finite(where, "score", entry["score"])
    segment = entry["segment"]
    if not isinstance(segment, (list, tuple)) or len(segment) != 2:
        raise EvaluationInputError(f"{where}: field 'segment' is not [start, end] ({segment!r})")
    start = _finite(where, "segment", segment[0])
    end = _finite(where, "segment", segment[1])
    if start < 0 or end < start:
        raise EvaluationInputError(
            f"{where}: field 'segment' [{start}, {end}] has end < start or a negative time"
        )
    return Detection(str(video), label, score, start, end)


def _finite(where: str, field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EvaluationInputError(f"{where}: field {field!r} is not a number ({value!r})")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise EvaluationInputError(f"{where}: field {field!r} is not finite ({value!r})")
    return number


def _keys_all_counted(data: bytes, raw: object) -> bool:
    """Whether the fast parse can have dropped nothing: orjson keeps the last of a key
    given twice, so each entry key must occur in the text once per parsed entry (else
    the strict parser decides; it also takes any text with a \\u escape)."""
    if b"\\u" in data or not isinstance(raw, dict) or data.count(b'"results"') != 1:
        return False
    results = raw.get("results")
    if not isinstance(results, dict):
        return True  # refused below anyway
    entries = sum(len(v) for v in results.values() if isinstance(v, list))
    return all(data.count(key) == entries for key in (b'"label"', b'"score"', b'"segment"'))
