"""Detection mAP: the result record, input checks, and dispatch to the three protocols.

Every protocol evaluates the classes that have ground truth in the chosen videos (the
ActivityNet evaluator's ``activity_index``, the THUMOS kit's ``npos > 0``, W-TALC's
``templabelcategories``); mAP is the mean over them and average mAP the mean over tIoU.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hamnet.data.annotations import AnnotationSet, read_ambiguous
from hamnet.errors import EvaluationInputError
from hamnet.evaluate import anet, thumos14, wtalc
from hamnet.evaluate.inputs import PROTOCOLS, EvalInput
from hamnet.localize.detections import Detection
from hamnet.timing import RELEASED_SNIPPET_SECONDS

log = logging.getLogger(__name__)


@dataclass
class DetectionResult:
    """mAP per tIoU (fractions), their mean, and per-class AP lists (one value per tIoU)."""

    protocol: str
    tiou: list[float]
    mAP: list[float]
    average_mAP: float
    per_class: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "protocol": self.protocol,
            "tiou": list(self.tiou),
            "mAP": list(self.mAP),
            "average_mAP": self.average_mAP,
            "per_class": {name: list(aps) for name, aps in self.per_class.items()},
        }


def evaluate_detections(
    ground_truth: AnnotationSet,
    detections: Sequence[Detection],
    *,
    tiou: Sequence[float],
    protocol: str = "anet",
    subset: str | None = None,
    ambiguous: dict[str, list[tuple[float, float]]] | None = None,
    snippet_seconds: float = RELEASED_SNIPPET_SECONDS,
) -> DetectionResult:
    """Detection mAP of ``detections`` against ``ground_truth`` under one protocol.

    ``subset``: evaluate only the ground-truth videos of that subset. ``ambiguous``
    (thumos14, wtalc): spans per video; defaults to the ground truth's own.
    ``snippet_seconds``: the feature stride the ``wtalc`` protocol counts in.
    """
    runners = {"anet": anet.average_precision, "thumos14": thumos14.average_precision}
    runners["wtalc"] = functools.partial(wtalc.average_precision, snippet_seconds=snippet_seconds)
    if protocol not in runners:
        raise EvaluationInputError(f"unknown protocol {protocol!r} (known: {list(PROTOCOLS)})")
    if not len(tiou):
        raise EvaluationInputError("no tIoU threshold given")
    spans = ground_truth.ambiguous if ambiguous is None else ambiguous
    data = prepare(ground_truth, detections, subset, spans)
    thresholds = np.asarray(tiou, dtype=np.float64)
    ap = runners[protocol](data, thresholds) if data.classes else np.zeros((len(tiou), 0))
    return make_result(protocol, [float(t) for t in tiou], ap, data.classes)


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
    detections: Sequence[Detection],
    subset: str | None,
    ambiguous: dict[str, list[tuple[float, float]]],
) -> EvalInput:
    """Check labels, choose the videos and classes, and lay everything out as arrays."""
    videos = _select_videos(ground_truth, subset)
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
    for det in detections:
        if det.label not in known:
            raise EvaluationInputError(
                f"video {det.video!r}: detection label {det.label!r} is not a class of the "
                f"ground truth ({ground_truth.source})"
            )
    det_video = np.array([video_index.get(d.video, -1) for d in detections], dtype=np.int64)
    outside = int(np.count_nonzero(det_video < 0))
    if outside:
        log.info("%d detection(s) lie in videos without ground truth in the evaluated set", outside)
    return EvalInput(
        videos=[video.name for video in videos],
        classes=classes,
        gt_video=np.array([row[0] for row in gt_rows], dtype=np.int64),
        gt_class=np.array([class_index[row[1]] for row in gt_rows], dtype=np.int64),
        gt_segment=np.array([row[2:] for row in gt_rows], dtype=np.float64).reshape(-1, 2),
        det_video=det_video,
        det_class=np.array([class_index.get(d.label, -1) for d in detections], dtype=np.int64),
        det_segment=np.array([(d.start, d.end) for d in detections], dtype=np.float64).reshape(
            -1, 2
        ),
        det_score=np.array([d.score for d in detections], dtype=np.float64),
        ambiguous={
            video_index[name]: np.asarray(spans, dtype=np.float64).reshape(-1, 2)
            for name, spans in ambiguous.items()
            if name in video_index
        },
    )


def _select_videos(ground_truth: AnnotationSet, subset: str | None) -> list:
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
