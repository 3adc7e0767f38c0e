"""Ground truth and detections as arrays, and ActivityNet matching that keeps the match.

The evaluator (:mod:`hamnet.evaluate.protocols.anet`) needs only true-positive flags; the
diagnosis also needs *which* instance each detection took, so it matches again here with
the same rule: per class, detections best first, each takes the free instance of its
video with the highest tIoU if that tIoU >= the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hamnet.data.annotations import AnnotationSet
from hamnet.errors import EvaluationInputError
from hamnet.evaluate.ap_primitives import group_keys, lookup, match_ids
from hamnet.evaluate.detection_map import select_videos
from hamnet.evaluate.protocols.anet import segment_iou
from hamnet.localize.detections import Detection, DetectionColumns


@dataclass
class GroundTruthTable:
    """Kept ground-truth instances and the analyzed detections, as index arrays.

    Instances of length <= 0 or covering more than their video (coverage > 1) are left
    out, as DETAD does (``drop_like_detad``; the report keeps them all). ``classes``: the
    classes with an instance in the chosen videos.
    """

    classes: list[str]
    videos: list[str]
    gt_video: np.ndarray
    gt_class: np.ndarray
    gt_segment: np.ndarray
    gt_duration: np.ndarray  # the instance's video duration
    gt_video_count: np.ndarray  # annotations of the instance's video (all of them)
    det_video: np.ndarray  # -1: a video that is not among ``videos``
    det_class: np.ndarray
    det_segment: np.ndarray
    det_score: np.ndarray
    det_source: np.ndarray  # index of each analyzed detection in the input list
    instances_total: int = 0
    dropped_detections: int = 0
    _by_video: dict[int, np.ndarray] = field(default_factory=dict)
    _rankings: list[np.ndarray] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        ground_truth: AnnotationSet,
        detections: Sequence[Detection] | DetectionColumns,
        subset: str | None,
        *,
        drop_like_detad: bool = True,
    ) -> GroundTruthTable:
        """``detections``: a list of records or the columns of a file (the same table)."""
        videos = select_videos(ground_truth, subset)
        present = {seg.label for video in videos for seg in video.segments}
        classes = [name for name in ground_truth.classes if name in present]
        class_index = {name: k for k, name in enumerate(classes)}
        rows = [
            (v, class_index[s.label], s.start, s.end, video.duration, len(video.segments))
            for v, video in enumerate(videos)
            for s in video.segments
        ]
        gt = np.array(rows, dtype=np.float64).reshape(-1, 6)
        length, coverage = gt[:, 3] - gt[:, 2], (gt[:, 3] - gt[:, 2]) / gt[:, 4]
        keep = (length > 0) & (coverage <= 1.0) if drop_like_detad else np.ones(len(gt), bool)
        gt = gt[keep]
        columns = _as_columns(detections)
        _refuse_unknown_labels(columns, ground_truth)
        video_index = {video.name: v for v, video in enumerate(videos)}
        per_video = [video_index.get(name, -1) for name in columns.videos]
        per_label = [class_index.get(name, -1) for name in columns.labels]
        det_class = np.array(per_label, dtype=np.int64)[columns.label]
        chosen = np.flatnonzero(det_class >= 0)
        return cls(
            classes=classes,
            videos=[video.name for video in videos],
            gt_video=gt[:, 0].astype(np.int64),
            gt_class=gt[:, 1].astype(np.int64),
            gt_segment=gt[:, 2:4].copy(),
            gt_duration=gt[:, 4].copy(),
            gt_video_count=gt[:, 5].astype(np.int64),
            det_video=np.array(per_video, dtype=np.int64)[columns.video[chosen]],
            det_class=det_class[chosen],
            det_segment=columns.segment[chosen].reshape(-1, 2),
            det_score=columns.score[chosen],
            det_source=chosen.astype(np.int64),
            instances_total=len(rows),
            dropped_detections=len(columns) - chosen.size,
        )

    @property
    def average_instances_per_class(self) -> float:
        """DETAD's N-bar: kept instances / number of classes."""
        return self.gt_class.size / len(self.classes)

    def positives(self) -> np.ndarray:
        return np.bincount(self.gt_class, minlength=len(self.classes))

    def gt_of_video(self, video: int) -> np.ndarray:
        """Kept instances (any class) of one video; none for video -1."""
        if not self._by_video:
            order = np.argsort(self.gt_video, kind="stable")
            splits = np.split(order, np.cumsum(np.bincount(self.gt_video))[:-1])
            self._by_video = {v: part for v, part in enumerate(splits) if part.size}
        return self._by_video.get(video, np.zeros(0, dtype=np.int64))

    def iou(self, det: int, members: np.ndarray) -> np.ndarray:
        """tIoU of detection ``det`` with the instances ``members`` (ActivityNet's formula)."""
        start, end = self.det_segment[det]
        gt = self.gt_segment[members]
        inter = (np.minimum(end, gt[:, 1]) - np.maximum(start, gt[:, 0])).clip(0)
        union = (gt[:, 1] - gt[:, 0]) + (end - start) - inter
        with np.errstate(divide="ignore", invalid="ignore"):
            return inter / union

    def best_overlap(self, dets: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """For each detection in ``dets``: the highest tIoU with a kept instance (any class)
        of its video (-inf when it has none) and that instance (the first of equal ones)."""
        count = np.bincount(self.gt_video, minlength=len(self.videos))
        slot = np.arange(self.gt_video.size) - (np.cumsum(count) - count)[self.gt_video]
        width = max(int(count.max(initial=0)), 1)
        padded = np.full((len(self.videos) + 1, width, 2), np.nan)  # the last row: video -1
        padded[self.gt_video, slot] = self.gt_segment
        index = np.full((len(self.videos) + 1, width), -1, dtype=np.int64)
        index[self.gt_video, slot] = np.arange(self.gt_video.size)
        top = np.full(dets.size, -np.inf)
        best = np.full(dets.size, -1, dtype=np.int64)
        for lo in range(0, dets.size, chunk):
            part = dets[lo : lo + chunk]
            video = self.det_video[part]
            overlap = segment_iou(self.det_segment[part], padded[video])
            overlap[index[video] < 0] = -np.inf
            choice = np.argmax(overlap, axis=1)
            top[lo : lo + chunk] = overlap[np.arange(part.size), choice]
            best[lo : lo + chunk] = index[video, choice]
        return top, best

    def characteristic(self, name: str) -> np.ndarray:
        length = self.gt_segment[:, 1] - self.gt_segment[:, 0]
        if name == "length":
            return length
        if name == "coverage":
            return length / self.gt_duration
        if name == "num_instances":
            return self.gt_video_count.astype(np.float64)
        raise KeyError(name)

    def summary(self) -> dict:
        kept = int(self.gt_class.size)
        return {
            "videos": len(self.videos),
            "classes": len(self.classes),
            "instances": self.instances_total,
            "instances_kept": kept,
            "instances_dropped": self.instances_total - kept,
            "average_instances_per_class": self.average_instances_per_class,
        }


def _as_columns(detections: Sequence[Detection] | DetectionColumns) -> DetectionColumns:
    if isinstance(detections, DetectionColumns):
        return detections
    return DetectionColumns.from_detections(detections)


def _refuse_unknown_labels(columns: DetectionColumns, ground_truth: AnnotationSet) -> None:
    """One error naming the first detection (file order) of a class the ground truth lacks."""
    known = set(ground_truth.classes)
    for k, label in enumerate(columns.labels):  # first-appearance order
        if label not in known:
            first = int(np.flatnonzero(columns.label == k)[0])
            raise EvaluationInputError(
                f"video {columns.videos[columns.video[first]]!r}: detection label {label!r} "
                f"is not a class of the ground truth ({ground_truth.source})"
            )


def class_rankings(table: GroundTruthTable) -> list[np.ndarray]:
    """Per class, its detections best first (the official evaluator's tie order)."""
    if not table._rankings:
        order = np.argsort(table.det_class, kind="stable")
        bounds = np.cumsum(np.bincount(table.det_class, minlength=len(table.classes)))
        for members in np.split(order, bounds[:-1]):
            table._rankings.append(members[table.det_score[members].argsort()[::-1]])
    return table._rankings


def match_by_class(table: GroundTruthTable, thresholds: np.ndarray) -> np.ndarray:
    """Index of the instance each detection takes at each threshold [N, T] (-1: none).

    The evaluator's vectorised greedy matching (:func:`hamnet.evaluate.ap_primitives.match_ids`):
    per (class, video) group, detections in the class's rank order, each taking the free
    instance with the highest tIoU (ties in the official order) if it is >= the threshold.
    """
    rank = np.zeros(table.det_class.size, dtype=np.int64)
    for members in class_rankings(table):
        rank[members] = np.arange(members.size)
    count = len(table.videos)
    gt_keys = group_keys(table.gt_video, table.gt_class, count)
    keys = np.unique(gt_keys)
    det_group = lookup(group_keys(table.det_video, table.det_class, count), keys)
    grouped = np.flatnonzero(det_group >= 0)
    matched = np.full((table.det_class.size, thresholds.size), -1, dtype=np.int64)
    matched[grouped] = match_ids(
        det_group[grouped],
        rank[grouped],
        table.det_segment[grouped],
        lookup(gt_keys, keys),
        table.gt_segment,
        np.asarray(thresholds, dtype=np.float64),
        _overlap_or_none,
        rule="best",
    )
    return matched


def _overlap_or_none(det: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """tIoU [n, M]; 0/0 (an empty detection on an empty instance) is -1: never a match."""
    return np.nan_to_num(segment_iou(det, gt), nan=-1.0)
