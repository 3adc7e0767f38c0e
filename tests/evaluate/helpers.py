"""Small builders for evaluator tests."""

from __future__ import annotations

from hamnet.data.annotations import AnnotationSet, Segment, Video
from hamnet.localize.detections import Detection


def make_gt(segments: dict[str, list[tuple[str, float, float]]], classes=None, subset="test"):
    """``{video: [(label, start, end), ...]}`` -> AnnotationSet (duration 1000 s)."""
    videos = []
    for name, segs in segments.items():
        records = tuple(Segment(s, e, label) for label, s, e in segs)
        labels = tuple(dict.fromkeys(label for label, _, _ in segs))
        videos.append(Video(name, subset, 1000.0, labels, records))
    names = classes or sorted({label for segs in segments.values() for label, _, _ in segs})
    return AnnotationSet(list(names), videos)


def dets(*rows: tuple) -> list[Detection]:
    """``(video, label, score, start, end)`` rows -> detections."""
    return [Detection(*row) for row in rows]
