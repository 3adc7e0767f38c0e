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
from hamnet.evaluate.detection_map import select_videos
from hamnet.localize.detections import Detection


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

    @classmethod
    def build(
        cls,
        ground_truth: AnnotationSet,
        detections: Sequence[Detection],
        subset: str | None,
        *,
        drop_like_detad: bool = True,
    ) -> GroundTruthTable:
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
        video_index = {video.name: v for v, video in enumerate(videos)}
        chosen = [i for i, d in enumerate(detections) if d.label in class_index]
        for d in detections:
            if d.label not in ground_truth.classes:
                raise EvaluationInputError(
                    f"video {d.video!r}: detection label {d.label!r} is not a class of the "
                    f"ground truth ({ground_truth.source})"
                )
        picked = [detections[i] for i in chosen]
        return cls(
            classes=classes,
            videos=[video.name for video in videos],
            gt_video=gt[:, 0].astype(np.int64),
            gt_class=gt[:, 1].astype(np.int64),
            gt_segment=gt[:, 2:4].copy(),
            gt_duration=gt[:, 4].copy(),
            gt_video_count=gt[:, 5].astype(np.int64),
            det_video=np.array([video_index.get(d.video, -1) for d in picked], dtype=np.int64),
            det_class=np.array([class_index[d.label] for d in picked], dtype=np.int64),
            det_segment=np.array([(d.start, d.end) for d in picked], dtype=np.float64).reshape(
                -1, 2
            ),
            det_score=np.array([d.score for d in picked], dtype=np.float64),
            det_source=np.array(chosen, dtype=np.int64),
            instances_total=len(rows),
            dropped_detections=len(detections) - len(chosen),
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


def class_rankings(table: GroundTruthTable) -> list[np.ndarray]:
    """Per class, its detections best first (the official evaluator's tie order)."""
    rankings = []
    for c in range(len(table.classes)):
        members = np.flatnonzero(table.det_class == c)
        rankings.append(members[table.det_score[members].argsort()[::-1]])
    return rankings


def match_by_class(table: GroundTruthTable, thresholds: np.ndarray) -> np.ndarray:
    """Index of the instance each detection takes at each threshold [N, T] (-1: none).

    Groups (class, video) are independent, so each is matched alone: its detections in
    the class's rank order, tIoU and candidate order computed once per group with numpy,
    the greedy choice in plain Python over the few instances of the group.
    """
    matched = np.full((table.det_class.size, thresholds.size), -1, dtype=np.int64)
    groups = _instances_by_video_class(table)
    limits = thresholds.tolist()
    for c, ranked in enumerate(class_rankings(table)):
        by_video: dict[int, list[int]] = {}
        for i in ranked.tolist():
            by_video.setdefault(int(table.det_video[i]), []).append(i)
        for video, dets in by_video.items():
            members = groups.get((video, c))
            if members is not None:
                matched[dets] = _match_group(table, np.array(dets), members, limits)
    return matched


def _match_group(table: GroundTruthTable, dets: np.ndarray, members: np.ndarray, limits):
    """Greedy matching inside one (class, video) group -> instance ids [D, T] (-1: none)."""
    det, gt = table.det_segment[dets], table.gt_segment[members]
    inter = np.minimum(det[:, None, 1], gt[None, :, 1]) - np.maximum(
        det[:, None, 0], gt[None, :, 0]
    )
    inter = inter.clip(0)
    union = (gt[None, :, 1] - gt[None, :, 0]) + (det[:, None, 1] - det[:, None, 0]) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        overlap = np.nan_to_num(inter / union, nan=-1.0)  # 0/0 (empty segments): no match
    # candidates by decreasing tIoU, ties in the official evaluator's order
    orders = np.argsort(overlap, axis=1)[:, ::-1].tolist()
    overlap_rows = overlap.tolist()
    ids = members.tolist()
    out = [[-1] * len(limits) for _ in range(dets.size)]
    locked = [[False] * len(ids) for _ in limits]
    for d, (row, order) in enumerate(zip(overlap_rows, orders, strict=True)):
        for t, limit in enumerate(limits):
            for j in order:
                if row[j] < limit:
                    break
                if locked[t][j]:
                    continue
                locked[t][j] = True
                out[d][t] = ids[j]
                break
    return np.array(out, dtype=np.int64).reshape(dets.size, len(limits))


def _instances_by_video_class(table: GroundTruthTable) -> dict[tuple[int, int], np.ndarray]:
    groups: dict[tuple[int, int], list[int]] = {}
    for g, (v, c) in enumerate(zip(table.gt_video.tolist(), table.gt_class.tolist(), strict=True)):
        groups.setdefault((v, c), []).append(g)
    return {key: np.array(value, dtype=np.int64) for key, value in groups.items()}
