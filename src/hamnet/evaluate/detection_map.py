"""Detection mAP: the result record, input checks, and dispatch to the three protocols.

Every protocol evaluates the classes that have ground truth in the chosen videos (the
ActivityNet evaluator's ``activity_index``, the THUMOS kit's ``npos > 0``, W-TALC's
``templabelcategories``); mAP is the mean over them and average mAP the mean over tIoU.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hamnet.argcheck import check_snippet_seconds
from hamnet.data.annotations import AnnotationSet, read_ambiguous
from hamnet.errors import EvaluationInputError
from hamnet.evaluate.inputs import EvalInput
from hamnet.evaluate.protocols import PROTOCOLS, REGISTRY
from hamnet.evaluate.scope import describe_scope
from hamnet.localize.detections import Detection, DetectionColumns
from hamnet.timing import RELEASED_SNIPPET_SECONDS

log = logging.getLogger(__name__)


MAX_THRESHOLDS = 100  # more tIoU thresholds than this is a typo (0.1:0.7:1e-10), not a plan


MAP_UNIT = "fraction (tables and printouts show percent: x100)"


@dataclass
class DetectionResult:
    """mAP per tIoU (fractions), their mean, and per-class AP lists (one value per tIoU).

    ``scope``: what was scored (subset, counts of videos, GT instances and detections,
    unknown videos); ``inputs``: fingerprints of the files (set by :func:`evaluate_files`).
    """

    protocol: str
    tiou: list[float]
    mAP: list[float]
    average_mAP: float
    per_class: dict[str, list[float]] = field(default_factory=dict)
    scope: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)

    @property
    def mAP_percent(self) -> list[float]:
        """``mAP`` in percent, the unit of every table and printout."""
        return [100 * value for value in self.mAP]

    @property
    def average_mAP_percent(self) -> float:
        return 100 * self.average_mAP

    def __repr__(self) -> str:  # what a Python session shows: the unit named
        cells = ", ".join(
            f"{t:g}: {v:.2f}" for t, v in zip(self.tiou, self.mAP_percent, strict=True)
        )
        return (
            f"DetectionResult(protocol={self.protocol!r}, mAP_percent={{{cells}}}, "
            f"average_mAP_percent={self.average_mAP_percent:.2f}; fields mAP, average_mAP "
            "are fractions)"
        )

    def to_dict(self) -> dict:
        out = {
            "mAP_unit": MAP_UNIT,
            "protocol": self.protocol,
            "tiou": list(self.tiou),
            "mAP": list(self.mAP),
            "average_mAP": self.average_mAP,
            "per_class": {name: list(aps) for name, aps in self.per_class.items()},
        }
        if self.scope:
            out["scope"] = dict(self.scope)
        if self.inputs:
            out["inputs"] = dict(self.inputs)
        return out


def evaluate_detections(
    ground_truth: AnnotationSet,
    detections: Sequence[Detection] | DetectionColumns,
    *,
    tiou: Sequence[float],
    protocol: str = "anet",
    subset: str | None = None,
    ambiguous: dict[str, list[tuple[float, float]]] | None = None,
    unknown_videos: str = "error",
    snippet_seconds: float = RELEASED_SNIPPET_SECONDS,
) -> DetectionResult:
    """Detection mAP of ``detections`` against ``ground_truth`` under one protocol.

    ``subset``: evaluate only the ground-truth videos of that subset; None infers it
    (see :func:`hamnet.evaluate.scope.choose_subset`). ``unknown_videos``: ``"error"``
    stops when more than half of the detections' videos are not in the ground truth;
    ``"count"`` only counts them. ``ambiguous`` (thumos14, wtalc): spans per video;
    defaults to the ground truth's own. ``snippet_seconds``: the feature stride the
    ``wtalc`` protocol counts in.
    """
    check_snippet_seconds(snippet_seconds)
    if protocol not in REGISTRY:
        raise EvaluationInputError(f"unknown protocol {protocol!r} (known: {list(PROTOCOLS)})")
    check_thresholds(tiou)
    columns = (
        detections
        if isinstance(detections, DetectionColumns)
        else DetectionColumns.from_detections(detections)
    )
    scope = describe_scope(ground_truth, columns, subset, unknown_videos == "error")
    spans = ground_truth.ambiguous if ambiguous is None else ambiguous
    data = prepare(ground_truth, columns, scope.subset, spans)
    thresholds = np.asarray(tiou, dtype=np.float64)
    evaluator = REGISTRY[protocol].average_precision
    ap = evaluator(data, thresholds, snippet_seconds) if data.classes else np.zeros((len(tiou), 0))
    result = make_result(protocol, [float(t) for t in tiou], ap, data.classes)
    result.scope = scope.record(data)
    if REGISTRY[protocol].ambiguous:  # the protocol ignores detections in such spans
        scored = set(data.videos)
        result.scope["ambiguous_spans"] = sum(
            len(s) for v, s in (spans or {}).items() if v in scored
        )
    return result


def check_thresholds(tiou: Sequence[float]) -> None:
    if not len(tiou):
        raise EvaluationInputError("no tIoU threshold given")
    if len(tiou) > MAX_THRESHOLDS:
        raise EvaluationInputError(
            f"{len(tiou)} tIoU thresholds: at most {MAX_THRESHOLDS} are allowed"
        )
    if not all(isinstance(t, (int, float)) and 0 < t <= 1 for t in tiou):
        raise EvaluationInputError(f"tIoU thresholds must lie in (0, 1], got {list(tiou)[:5]}")


def make_result(
    protocol: str, tiou: list[float], ap: np.ndarray, classes: list[str]
) -> DetectionResult:
    """``ap`` [T, K] -> the result; mAP = mean over the K classes (0 when K = 0)."""
    mean_ap = ap.mean(axis=1) if ap.shape[1] else np.zeros(len(tiou))
    per_class = {name: [float(v) for v in ap[:, k]] for k, name in enumerate(classes)}
    return DetectionResult(
        protocol, tiou, [float(v) for v in mean_ap], float(np.mean(mean_ap)), per_class
    )


def prepare(
    ground_truth: AnnotationSet,
    columns: DetectionColumns,
    subset: str | None,
    ambiguous: dict[str, list[tuple[float, float]]],
) -> EvalInput:
    """Check labels, choose the videos and classes, and lay everything out as arrays."""
    videos = select_videos(ground_truth, subset)
    video_index = {video.name: i for i, video in enumerate(videos)}
    known = set(ground_truth.classes)
    gt_rows = [
        (i, seg.label, seg.start, seg.end)
        for i, video in enumerate(videos)
        for seg in video.segments
    ]
    present = {row[1] for row in gt_rows}
    classes = [name for name in ground_truth.classes if name in present]
    class_index = {name: k for k, name in enumerate(classes)}
    for k, label in enumerate(columns.labels):
        if label not in known:
            first = int(np.flatnonzero(columns.label == k)[0])
            raise EvaluationInputError(
                f"video {columns.videos[columns.video[first]]!r}: detection label {label!r} "
                f"is not a class of the ground truth ({ground_truth.source})"
            )
    per_video = np.array([video_index.get(name, -1) for name in columns.videos], dtype=np.int64)
    per_label = np.array([class_index.get(name, -1) for name in columns.labels], dtype=np.int64)
    return EvalInput(
        videos=[video.name for video in videos],
        classes=classes,
        gt_video=np.array([row[0] for row in gt_rows], dtype=np.int64),
        gt_class=np.array([class_index[row[1]] for row in gt_rows], dtype=np.int64),
        gt_segment=np.array([row[2:] for row in gt_rows], dtype=np.float64).reshape(-1, 2),
        det_video=per_video[columns.video],
        det_class=per_label[columns.label],
        det_segment=columns.segment,
        det_score=columns.score,
        ambiguous={
            video_index[name]: np.asarray(spans, dtype=np.float64).reshape(-1, 2)
            for name, spans in ambiguous.items()
            if name in video_index
        },
    )


def select_videos(ground_truth: AnnotationSet, subset: str | None) -> list:
    """The ground-truth videos of ``subset`` (all when None); an unknown subset is an error."""
    if subset is None:
        return list(ground_truth.videos)
    chosen = [video for video in ground_truth.videos if video.subset == subset]
    if not chosen:
        known = sorted({video.subset for video in ground_truth.videos})
        raise EvaluationInputError(
            f"{ground_truth.source}: no video in subset {subset!r} (subsets: {known})"
        )
    return chosen


def load_ambiguous(path: str | Path) -> dict[str, list[tuple[float, float]]]:
    """THUMOS14's ``Ambiguous_test.txt`` (see :func:`hamnet.data.annotations.read_ambiguous`)."""
    return read_ambiguous(path, EvaluationInputError)
