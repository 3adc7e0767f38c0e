"""A teacher's detections as pseudo ground truth, and how good that ground truth is.

FuSTAL (fqhank/FuSTAL@3037b4e) trains its student on a weakly-supervised teacher's
detections, kept by two rules (``Student-Training/libs/datasets/thumos14.py:241-246``):
a detection's score must exceed 0.4, and the sum of its IoUs with the video's other
detections (of any class) must reach 0.2 (the "prior-based filtering": a classification
teacher fires densely around real actions). The result is an ActivityNet-style
ground-truth file (``hamnet eval`` reads it as ground truth) whose segments also keep
their teacher score, with the file's provenance and its own mAP against the real labels.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from hamnet.data.annotations import GT_VERSION, AnnotationSet, taxonomy
from hamnet.errors import ConfigError
from hamnet.localize.detections import Detection

PSEUDO_VERSION = "hamnet pseudo labels 1"


@dataclass(frozen=True)
class PseudoLabelRules:
    """Which detections become pseudo ground truth (FuSTAL's values)."""

    min_score: float = 0.4  # kept when score > min_score (thumos14.py:246)
    min_overlap_sum: float = 0.2  # kept when the IoU sum with the others >= this (:244)

    def __post_init__(self) -> None:
        for name in ("min_score", "min_overlap_sum"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and np.isfinite(value) and value >= 0):
                raise ConfigError(f"pseudo-label rule {name} must be a number >= 0, got {value!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def overlap_matrix(segments: np.ndarray) -> np.ndarray:
    """FuSTAL's IoU of every pair of ``segments`` [N, 2] (float32, as its torch code):
    the intersection over the span from the first start to the last end, plus 1e-9
    (``Student-Training/libs/utils/train_utils.py:818-827``; equal to the IoU wherever
    the two overlap)."""
    seg = np.asarray(segments, dtype=np.float32)
    starts, ends = seg[:, 0], seg[:, 1]
    inter = np.minimum(ends[:, None], ends[None, :]) - np.maximum(starts[:, None], starts[None, :])
    inter = np.maximum(inter, np.float32(0))
    span = np.maximum(ends[:, None], ends[None, :]) - np.minimum(starts[:, None], starts[None, :])
    return inter / (span + np.float32(1e-9))


def kept_mask(detections: Sequence[Detection], rules: PseudoLabelRules) -> np.ndarray:
    """[N] bool: which of one video's detections the rules keep."""
    segments = np.array([[d.start, d.end] for d in detections], dtype=np.float32)
    scores = np.array([d.score for d in detections], dtype=np.float32)
    return kept_rows(segments.reshape(-1, 2), scores, rules)


def kept_rows(segments: np.ndarray, scores: np.ndarray, rules: PseudoLabelRules) -> np.ndarray:
    """[N] bool for one video's ``segments`` [N, 2] and ``scores`` [N] (float32)."""
    if len(segments) == 0:
        return np.zeros(0, dtype=bool)
    overlaps = overlap_matrix(segments)
    np.fill_diagonal(overlaps, 0.0)
    dense = overlaps.sum(axis=1) >= np.float32(rules.min_overlap_sum)
    return dense & (np.asarray(scores, dtype=np.float32) > np.float32(rules.min_score))


def select_pseudo_labels(
    detections: Iterable[Detection], rules: PseudoLabelRules
) -> dict[str, list[Detection]]:
    """The detections each video keeps, by video (videos keeping none are present, empty)."""
    by_video: dict[str, list[Detection]] = {}
    for det in detections:
        by_video.setdefault(det.video, []).append(det)
    kept = {}
    for video, rows in by_video.items():
        mask = kept_mask(rows, rules)
        kept[video] = [row for row, keep in zip(rows, mask, strict=True) if keep]
    return kept


def pseudo_ground_truth(
    kept: dict[str, list[Detection]],
    annotations: AnnotationSet,
    subsets: Sequence[str],
    provenance: dict,
) -> dict:
    """The pseudo ground-truth document: every video of ``subsets`` (with the real
    video's subset and duration) and the detections it keeps as its annotations."""
    classes = set(annotations.classes)
    database = {}
    for video in annotations.videos:
        if video.subset not in subsets:
            continue
        rows = sorted(kept.get(video.name, []), key=lambda d: (d.start, d.end, d.label))
        unknown = sorted({d.label for d in rows} - classes)
        if unknown:
            raise ConfigError(f"video {video.name!r}: class {unknown[0]!r} is not the dataset's")
        database[video.name] = {
            "subset": video.subset,
            "duration": video.duration,
            "labels": sorted({d.label for d in rows}),
            "annotations": [_entry(d, video.duration) for d in rows],
        }
    return {
        "version": GT_VERSION,
        "pseudo_labels": PSEUDO_VERSION,
        "taxonomy": taxonomy(annotations.classes),
        "class-list": list(annotations.classes),
        "database": database,
        "provenance": provenance,
    }


def _entry(det: Detection, duration: float) -> dict:
    """One pseudo segment, clipped into its video (a detector's boundary may run past)."""
    start = min(max(det.start, 0.0), duration)
    end = min(max(det.end, start), duration)
    return {"segment": [start, end], "label": det.label, "score": det.score}


def as_detections(document: dict) -> list[Detection]:
    """A pseudo ground-truth document's segments as scored detections (for their mAP)."""
    return [
        Detection(video, a["label"], float(a.get("score", 1.0)), *map(float, a["segment"]))
        for video, entry in document["database"].items()
        for a in entry["annotations"]
    ]


def subsets_in(document: dict) -> list[str]:
    return sorted({entry["subset"] for entry in document["database"].values()})
