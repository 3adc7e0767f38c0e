"""A teacher's detections as pseudo ground truth, and how good that ground truth is.

FuSTAL (fqhank/FuSTAL@3037b4e) trains its student on a weakly-supervised teacher's
detections, kept by two rules (``Student-Training/libs/datasets/thumos14.py:241-246``):
a detection's score must exceed 0.4, and the sum of its IoUs with the video's other
detections (of any class) must reach 0.2 (the "prior-based filtering": a classification
teacher fires densely around real actions). Two more detection-level rules of its code
are options, off unless asked for: the per-class NMS its generator ends with
(``CrossVideo-Generator/core/utils.py:167-190``, applied before the selection) and
``merge_box`` (``Student-Training/libs/utils/train_utils.py:829-850``, which no script
calls; applied after it). The result is an ActivityNet-style ground-truth file
(``hamnet eval`` reads it as ground truth) whose segments also keep their teacher score,
with the file's provenance and its own mAP against the real labels.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from hamnet.data.annotations import GT_VERSION, AnnotationSet, taxonomy
from hamnet.errors import ConfigError
from hamnet.localize.detections import Detection

PSEUDO_VERSION = "hamnet pseudo labels 1"


@dataclass(frozen=True)
class PseudoLabelRules:
    """Which detections become pseudo ground truth, in the order applied: ``nms_iou``,
    then ``min_score`` with ``min_overlap_sum``, then ``merge_iou`` (FuSTAL's values;
    the two optional rules are off at 0)."""

    min_score: float = 0.4  # kept when score > min_score (thumos14.py:246)
    min_overlap_sum: float = 0.2  # kept when the IoU sum with the others >= this (:244)
    # CoLA's per-class NMS, its +1 in the lengths included (core/utils.py:167-190); FuSTAL's
    # generator runs it at 0.5 to make its detections; 0: off
    nms_iou: float = 0.0
    # merge_box: the best segment takes in every one with hull IoU > this (train_utils.py:
    # 829-850; FuSTAL's value 0.1, never called there); 0: off
    merge_iou: float = 0.0

    def __post_init__(self) -> None:
        for name in ("min_score", "min_overlap_sum", "nms_iou", "merge_iou"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and np.isfinite(value) and value >= 0):
                raise ConfigError(f"pseudo-label rule {name} must be a number >= 0, got {value!r}")
        for name in OPTIONAL_RULES:
            value = getattr(self, name)
            if value > 1:
                raise ConfigError(f"pseudo-label rule {name} is an IoU, at most 1, got {value!r}")

    def to_dict(self) -> dict:
        """The rules as provenance records them: an optional rule only when on (so a
        file made with the defaults reads as before these rules existed)."""
        out = dataclasses.asdict(self)
        return {k: v for k, v in out.items() if k not in OPTIONAL_RULES or v > 0}

    @classmethod
    def from_options(cls, options: Mapping) -> PseudoLabelRules:
        """The rules from the student's ``method_options`` (``pseudo_min_score``,
        ``pseudo_min_overlap``, ``pseudo_nms_iou``, ``pseudo_merge_iou``; absent: the
        defaults)."""
        fields = {
            "min_score": "pseudo_min_score",
            "min_overlap_sum": "pseudo_min_overlap",
            "nms_iou": "pseudo_nms_iou",
            "merge_iou": "pseudo_merge_iou",
        }
        return cls(**{f: float(options[k]) for f, k in fields.items() if k in options})


OPTIONAL_RULES = ("nms_iou", "merge_iou")


def _hull_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """FuSTAL's IoU of segments ``a`` [..., 2] and ``b`` [..., 2] (broadcast, float32)."""
    inter = np.minimum(a[..., 1], b[..., 1]) - np.maximum(a[..., 0], b[..., 0])
    inter = np.maximum(inter, np.float32(0))
    span = np.maximum(a[..., 1], b[..., 1]) - np.minimum(a[..., 0], b[..., 0])
    return inter / (span + np.float32(1e-9))


def overlap_matrix(segments: np.ndarray) -> np.ndarray:
    """FuSTAL's IoU of every pair of ``segments`` [N, 2] (float32, as its torch code):
    the intersection over the span from the first start to the last end, plus 1e-9
    (``Student-Training/libs/utils/train_utils.py:818-827``; equal to the IoU wherever
    the two overlap)."""
    seg = np.asarray(segments, dtype=np.float32)
    return _hull_overlap(seg[:, None, :], seg[None, :, :])


def kept_mask(detections: Sequence[Detection], rules: PseudoLabelRules) -> np.ndarray:
    """[N] bool: which of one video's detections the score and overlap rules keep."""
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


def cola_nms(segments: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """CoLA's NMS of one class (``CrossVideo-Generator/core/utils.py:167-190``, float64):
    by descending score (numpy's default argsort, reversed), each kept segment removes
    the later ones whose IoU with it is >= ``iou``; lengths and intersections count
    +1 (a frame-count habit, here on seconds). The kept indices, in that order."""
    seg = np.asarray(segments, dtype=np.float64)
    starts, ends = seg[:, 0], seg[:, 1]
    lengths = ends - starts + 1.0
    order = np.argsort(np.asarray(scores, dtype=np.float64))[::-1]
    kept = []
    while order.size:
        best, rest = order[0], order[1:]
        kept.append(int(best))
        inter = np.minimum(ends[best], ends[rest]) - np.maximum(starts[best], starts[rest])
        inter = np.maximum(0.0, inter + 1.0)
        overlap = inter / (lengths[best] + lengths[rest] - inter)
        order = rest[overlap < iou]
    return kept


def class_wise_nms(
    segments: np.ndarray, scores: np.ndarray, labels: Sequence, iou: float
) -> list[int]:
    """:func:`cola_nms` per class (classes in order of first appearance, as the
    generator's proposal dictionary): the kept indices into the video's rows."""
    labels = list(labels)
    kept = []
    for label in dict.fromkeys(labels):
        rows = np.array([i for i, name in enumerate(labels) if name == label])
        kept.extend(int(rows[i]) for i in cola_nms(segments[rows], scores[rows], iou))
    return kept


def merge_groups(segments: np.ndarray, scores: np.ndarray, iou: float) -> list[tuple]:
    """``merge_box`` (``Student-Training/libs/utils/train_utils.py:829-850``), over all
    classes: zero-length segments dropped; then repeatedly the highest score (the first
    of equals, float32) takes in every live segment whose hull IoU with it is > ``iou``
    (and itself, always: merge_box raises where its own IoU fails the bar) as one
    segment from their first start to their last end.
    ``(index of the best, start, end)`` per merged segment, in that order."""
    seg32 = np.asarray(segments, dtype=np.float32)
    score32 = np.asarray(scores, dtype=np.float32)
    live = np.flatnonzero(seg32[:, 1] != seg32[:, 0])
    groups = []
    while live.size:
        at = int(np.argmax(score32[live]))
        best = live[at]
        taken = _hull_overlap(seg32[best], seg32[live]) > np.float32(iou)
        taken[at] = True  # its own IoU is 1 - 1e-9 / length: a bar near 1 would miss it
        members = live[taken]
        groups.append((int(best), segments[members, 0].min(), segments[members, 1].max()))
        live = live[~taken]
    return groups


def selected_rows(
    segments: np.ndarray, scores: np.ndarray, labels: Sequence, rules: PseudoLabelRules
) -> list[tuple]:
    """One video's pseudo labels under ``rules``: ``(source row, start, end)`` each (the
    row gives the label and score). NMS, then the score and overlap rules, then the
    merge: FuSTAL's order (its generator's NMS makes the detections the student's
    loader selects from); the merge, never called there, comes last so that the
    density the overlap rule reads is the teacher's own."""
    seg = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
    score = np.asarray(scores, dtype=np.float64).reshape(-1)
    rows = np.arange(len(seg))
    if rules.nms_iou > 0 and len(rows):
        rows = np.array(class_wise_nms(seg, score, labels, rules.nms_iou), dtype=int)
    rows = rows[kept_rows(seg[rows].astype(np.float32), score[rows].astype(np.float32), rules)]
    if rules.merge_iou > 0:
        merged = merge_groups(seg[rows], score[rows], rules.merge_iou)
        return [(int(rows[i]), start, end) for i, start, end in merged]
    return [(int(i), seg[i, 0], seg[i, 1]) for i in rows]


def select_pseudo_labels(
    detections: Iterable[Detection], rules: PseudoLabelRules
) -> dict[str, list[Detection]]:
    """The pseudo labels of each video (videos keeping none are present, empty)."""
    by_video: dict[str, list[Detection]] = {}
    for det in detections:
        by_video.setdefault(det.video, []).append(det)
    return {video: _selected(rows, rules) for video, rows in by_video.items()}


def _selected(rows: list[Detection], rules: PseudoLabelRules) -> list[Detection]:
    segments = np.array([[d.start, d.end] for d in rows], dtype=np.float64).reshape(-1, 2)
    scores = np.array([d.score for d in rows], dtype=np.float64)
    chosen = selected_rows(segments, scores, [d.label for d in rows], rules)
    if rules.merge_iou <= 0:
        return [rows[i] for i, _, _ in chosen]  # the teacher's own objects, unchanged
    return [dataclasses.replace(rows[i], start=float(s), end=float(e)) for i, s, e in chosen]


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
