"""What a detection evaluation scores: the subset, and the detections it cannot place.

Two ways an evaluation silently misleads: scoring detections of one split against the
ground truth of every split (no subset given), and detections whose video ids the
ground truth does not know (e.g. ActivityNet's ``v_`` prefix on one side only), which
score 0. Here the subset is inferred from the detections or asked for, and unknown
videos are counted, reported, and an error when they are more than half.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from hamnet.data.annotations import AnnotationSet
from hamnet.errors import EvaluationInputError
from hamnet.evaluate.inputs import EvalInput
from hamnet.localize.detections import DetectionColumns

log = logging.getLogger(__name__)

EXAMPLES = 3


@dataclass
class Scope:
    """The chosen subset and the detections outside it."""

    subset: str
    inferred: bool
    detections: int
    unknown_videos: list[str] = field(default_factory=list)
    unknown_detections: int = 0
    other_subset_videos: int = 0
    other_subset_detections: int = 0

    def record(self, data: EvalInput) -> dict:
        """The result JSON's ``scope``: what was scored, with counts."""
        return {
            "subset": self.subset,
            "subset_inferred": self.inferred,
            "videos": len(data.videos),
            "gt_instances": int(data.gt_video.shape[0]),
            "detections": self.detections,
            "detections_used": int(np.count_nonzero(data.det_video >= 0)),
            "unknown_videos": len(self.unknown_videos),
            "unknown_video_detections": self.unknown_detections,
            "unknown_video_examples": self.unknown_videos[:EXAMPLES],
            "other_subset_videos": self.other_subset_videos,
            "other_subset_detections": self.other_subset_detections,
        }


def describe_scope(
    ground_truth: AnnotationSet, columns: DetectionColumns, subset: str | None, strict: bool
) -> Scope:
    """Choose the subset (given or inferred) and count the detections outside it.

    ``strict``: more than half of the detections' videos unknown is an error, and so is
    a subset that holds none of the detections' videos.
    """
    subset_of = {video.name: video.subset for video in ground_truth.videos}
    per_video = np.bincount(columns.video, minlength=len(columns.videos))
    unknown = [name for name in columns.videos if name not in subset_of]
    if strict and 2 * len(unknown) > len(columns.videos):
        raise EvaluationInputError(_unknown_message(ground_truth, columns, unknown))
    known_subsets = Counter(subset_of[name] for name in columns.videos if name in subset_of)
    subsets = sorted(set(subset_of.values()))
    inferred = subset is None
    if subset is None:
        subset = _infer_subset(ground_truth, columns, subsets, known_subsets)
    elif subset not in subsets:
        raise EvaluationInputError(
            f"{ground_truth.source}: no video in subset {subset!r} (subsets: {subsets})"
        )
    counts = dict(zip(columns.videos, per_video.tolist(), strict=True))
    outside = [name for name in columns.videos if subset_of.get(name, subset) != subset]
    scope = Scope(
        subset=subset,
        inferred=inferred and len(subsets) > 1,
        detections=len(columns),
        unknown_videos=unknown,
        unknown_detections=sum(counts[name] for name in unknown),
        other_subset_videos=len(outside),
        other_subset_detections=sum(counts[name] for name in outside),
    )
    if strict and known_subsets and subset not in known_subsets:
        raise EvaluationInputError(
            f"{columns.source}: none of the detections' videos is in subset {subset!r} of "
            f"{ground_truth.source} (they are in {_listed(known_subsets)})"
        )
    _warn(scope, columns, ground_truth)
    return scope


def _infer_subset(
    ground_truth: AnnotationSet,
    columns: DetectionColumns,
    subsets: list[str],
    known_subsets: Counter,
) -> str:
    if len(subsets) == 1:
        return subsets[0]
    if len(known_subsets) == 1:
        subset = next(iter(known_subsets))
        log.info(
            "evaluating subset %r of %s: every detection's video belongs to it",
            subset,
            ground_truth.source,
        )
        return subset
    if not known_subsets:
        raise EvaluationInputError(
            f"{columns.source}: no detection lies in a video of {ground_truth.source}, so "
            f"the subset cannot be inferred; pass --subset (subsets: {subsets})"
        )
    raise EvaluationInputError(
        f"{columns.source}: the detections' videos lie in several subsets of "
        f"{ground_truth.source} ({_listed(known_subsets)}); pass --subset to choose one"
    )


def _listed(counts: Counter) -> str:
    return ", ".join(f"{name!r}: {n} video(s)" for name, n in sorted(counts.items()))


def _unknown_message(
    ground_truth: AnnotationSet, columns: DetectionColumns, unknown: list[str]
) -> str:
    known = [video.name for video in ground_truth.videos[:EXAMPLES]]
    message = (
        f"{columns.source}: {len(unknown)} of the {len(columns.videos)} videos with "
        f"detections are not in the ground truth {ground_truth.source} (detections: "
        f"{unknown[:EXAMPLES]}; ground truth: {known})"
    )
    return message + _prefix_hint(ground_truth, unknown)


def _prefix_hint(ground_truth: AnnotationSet, unknown: list[str]) -> str:
    """Name ActivityNet's ``v_`` prefix when it is on one side only."""
    names = {video.name for video in ground_truth.videos}
    stripped = sum(name.startswith("v_") and name[2:] in names for name in unknown)
    added = sum(f"v_{name}" in names for name in unknown)
    if 2 * stripped > len(unknown):
        return "; the detections' ids carry a 'v_' prefix that the ground truth's lack"
    if 2 * added > len(unknown):
        return "; the ground truth's ids carry a 'v_' prefix that the detections' lack"
    return ""


def _warn(scope: Scope, columns: DetectionColumns, ground_truth: AnnotationSet) -> None:
    if scope.unknown_videos:
        log.warning(
            "%s: %d detection(s) in %d video(s) unknown to the ground truth (e.g. %r)%s; "
            "they count as false positives (anet, thumos14) or are ignored (wtalc)",
            columns.source,
            scope.unknown_detections,
            len(scope.unknown_videos),
            scope.unknown_videos[0],
            _prefix_hint(ground_truth, scope.unknown_videos),
        )
    if scope.other_subset_videos:
        log.warning(
            "%s: %d detection(s) in %d video(s) of other subsets than %r; they count as "
            "false positives (anet, thumos14) or are ignored (wtalc)",
            columns.source,
            scope.other_subset_detections,
            scope.other_subset_videos,
            scope.subset,
        )
