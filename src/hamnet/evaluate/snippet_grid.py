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
