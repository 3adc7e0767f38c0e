"""A reader that touches exactly the fields the official ActivityNet evaluator reads.

Written from the behaviour of ``Evaluation/eval_detection.py`` (ActivityNet): the ground
truth must hold ``database``, ``taxonomy`` and ``version``; each video of the chosen
subset its ``subset`` and ``annotations`` (``segment`` [start, end], ``label``). The
detections must hold ``results``, ``version`` and ``external_data``; each entry
``label`` (one of the ground truth's labels in that subset), ``segment`` and ``score``.
A missing field raises KeyError, as the official code fails.
"""

from __future__ import annotations

import json
from pathlib import Path

GT_FIELDS = ("database", "taxonomy", "version")
PREDICTION_FIELDS = ("results", "version", "external_data")


def _require(data: dict, fields: tuple[str, ...], path: Path) -> None:
    for name in fields:
        if name not in data:
            raise KeyError(f"{path}: the official evaluator requires field {name!r}")


def read_official_ground_truth(path: Path, subset: str) -> list[tuple]:
    """(video, label, start, end) rows of ``subset``; the label index is their order."""
    data = json.loads(Path(path).read_text())
    _require(data, GT_FIELDS, path)
    rows = []
    for video, entry in data["database"].items():
        if entry["subset"] != subset:
            continue
        for annotation in entry["annotations"]:
            start, end = float(annotation["segment"][0]), float(annotation["segment"][1])
            rows.append((video, annotation["label"], start, end))
    return rows


def read_official_detections(path: Path, ground_truth: list[tuple]) -> list[tuple]:
    """(video, label index, start, end, score) rows; an unknown label is a KeyError."""
    data = json.loads(Path(path).read_text())
    _require(data, PREDICTION_FIELDS, path)
    activity_index: dict[str, int] = {}
    for _, label, _, _ in ground_truth:
        activity_index.setdefault(label, len(activity_index))
    rows = []
    for video, entries in data["results"].items():
        for result in entries:
            label = activity_index[result["label"]]
            start, end = float(result["segment"][0]), float(result["segment"][1])
            rows.append((video, label, start, end, float(result["score"])))
    return rows
