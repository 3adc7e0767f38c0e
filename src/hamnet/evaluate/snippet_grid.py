"""The ground truth rounded to the snippet grid (``eval.snippet_grid_gt``), as CO2-Net's
and DELU's evaluator rounds it before matching (off by default: hamnet's protocols score
the annotations as released)."""

from __future__ import annotations

import dataclasses

from hamnet.data.annotations import AnnotationSet


def ground_truth_on_snippet_grid(annotations: AnnotationSet, snippet_seconds: float):
    """The annotations with every segment's ends rounded to the snippet grid, as the
    official evaluator does (eval/eval_detection.py:172-173: ``round(t * 25 / 16)``,
    Python's round, then back to seconds)."""
    scale = 25 / 16 if snippet_seconds == 0.64 else 1.0 / snippet_seconds

    def snapped(t: float) -> float:
        return round(t * scale) * snippet_seconds

    videos = [
        dataclasses.replace(
            v,
            segments=tuple(
                dataclasses.replace(s, start=snapped(s.start), end=snapped(s.end))
                for s in v.segments
            ),
        )
        for v in annotations.videos
    ]
    return dataclasses.replace(annotations, videos=videos)


def in_snippet_units(annotations: AnnotationSet, detections: list, snippet_seconds: float):
    """Ground truth on the snippet grid and detections, both counted in snippets.

    The official evaluator matches integer snippet indices; matching the same segments in
    seconds can put an exact tIoU of 0.5 a float's width below it ((0, 3) against (1, 4)
    snippets: 0.4999999999999999 in seconds). Detection ends are rounded to 1e-6 snippet,
    which makes the official rules' grid-aligned ends whole numbers again and moves any
    other end by less than a microsecond of snippet."""
    truth = ground_truth_on_snippet_grid(annotations, snippet_seconds)

    def count(t: float) -> float:
        return round(t / snippet_seconds, 6)

    videos = [
        dataclasses.replace(
            v,
            duration=v.duration / snippet_seconds,
            segments=tuple(
                dataclasses.replace(s, start=count(s.start), end=count(s.end)) for s in v.segments
            ),
        )
        for v in truth.videos
    ]
    ambiguous = {
        name: [(count(a), count(b)) for a, b in spans]
        for name, spans in annotations.ambiguous.items()
    }
    counted = [dataclasses.replace(d, start=count(d.start), end=count(d.end)) for d in detections]
    return dataclasses.replace(truth, videos=videos, ambiguous=ambiguous), counted
