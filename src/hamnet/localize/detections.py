"""Detections: the record, and the ActivityNet-style results file that holds them.

File layout: ``{"version": "hamnet", "results": {video: [{"label", "score",
"segment": [start_s, end_s]}, ...]}, ...extra}``. Reading keeps file order (videos,
then each video's list): the ActivityNet evaluator breaks score ties by it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hamnet.errors import EvaluationInputError
from hamnet.io import atomic_write_text, read_json


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


def detections_json(
    detections: Iterable[Detection], extra: dict | None = None, where: str = "detections"
) -> str:
    """The detections file's text (the one writer: ``hamnet test``, ``predict``, ...);
    ``extra`` keys (e.g. protocol, config) are added."""
    out: dict = {"version": "hamnet", "results": detections_to_results(detections)}
    for key, value in (extra or {}).items():
        if key in out:
            raise EvaluationInputError(f"{where}: extra key {key!r} would overwrite {key!r}")
        out[key] = value
    return json.dumps(out) + "\n"


def save_detections(
    path: str | Path, detections: list[Detection], extra: dict | None = None
) -> None:
    """Write the results file atomically (:func:`detections_json`)."""
    atomic_write_text(path, detections_json(detections, extra, str(path)))


def load_detections(path: str | Path, classes: list[str] | None = None) -> list[Detection]:
    """Read and validate a results file; every problem names the file, video and field.

    ``classes``: when given, a label outside it is an error.
    """
    path = Path(path)
    raw = read_json(path, EvaluationInputError)
    results = raw.get("results") if isinstance(raw, dict) else None
    if not isinstance(results, dict):
        raise EvaluationInputError(f"{path}: not a detections file (no 'results' object)")
    known = set(classes) if classes is not None else None
    detections = []
    for video, entries in results.items():
        if not isinstance(entries, list):
            raise EvaluationInputError(f"{path}: video {video!r}: results are not a list")
        for i, entry in enumerate(entries):
            detections.append(_parse_entry(f"{path}: video {video!r}, detection {i}", video, entry))
            if known is not None and detections[-1].label not in known:
                raise EvaluationInputError(
                    f"{path}: video {video!r}, detection {i}: field 'label': "
                    f"{detections[-1].label!r} is not in the class list"
                )
    return detections


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
    number = float(value)
    if not math.isfinite(number):
        raise EvaluationInputError(f"{where}: field {field!r} is not finite ({value!r})")
    return number
