"""The student's pseudo labels: the teacher's file, its per-video filter, the feature grid
and the training crop (Student-Training/libs/datasets @ 3037b4e)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hamnet.errors import DataError
from hamnet.io import read_json
from hamnet.localize.pseudo_labels import PseudoLabelRules, selected_rows


@dataclass(frozen=True)
class PseudoVideo:
    """One video's pseudo segments (seconds [N, 2]), class indices [N] and scores [N]."""

    segments: np.ndarray
    labels: np.ndarray
    scores: np.ndarray


def read_pseudo_labels(path: Path, annotations) -> tuple[dict[str, PseudoVideo], bool]:
    """``{"database": {video: {"annotations": [{"segment", "label", "score"}]}}}``:
    every video must be one of the dataset's, every label one of its classes, every
    segment a finite span inside the video (1 s of slack, as other readers allow). Also
    whether the file records a selection already made (``provenance.rules``, as
    ``hamnet pseudo-label`` and ``--pseudo-labels`` / ``--teacher`` write)."""
    raw = read_json(path, DataError)
    database = _database(path, raw)
    provenance = raw.get("provenance") if isinstance(raw, dict) else None
    selected = isinstance(provenance, dict) and bool(provenance.get("rules"))
    known = {video.name: video for video in annotations.videos}
    classes = {name: i for i, name in enumerate(annotations.classes)}
    out = {}
    for name, entry in database.items():
        if name not in known:
            raise DataError(
                f"{path}: pseudo labels for {name!r}, a video the dataset does not have"
            )
        rows = entry.get("annotations") if isinstance(entry, dict) else None
        if not isinstance(rows, list):
            raise DataError(f"{path}: {name}: no 'annotations' list")
        out[name] = _video(path, name, rows, known[name].duration, classes)
    return out, selected


def _database(path: Path, raw) -> dict:
    """The videos' entries: a ground-truth file's ``database``, or a detections file's
    ``results`` (``{video: [rows]}``, as ``--teacher`` writes) as the same entries."""
    if isinstance(raw, dict) and isinstance(raw.get("database"), dict) and raw["database"]:
        return raw["database"]
    if isinstance(raw, dict) and isinstance(raw.get("results"), dict) and raw["results"]:
        return {name: {"annotations": rows} for name, rows in raw["results"].items()}
    raise DataError(f"{path}: no pseudo labels (expected a 'database' object of videos)")


def _video(path: Path, name: str, rows: list, duration: float, classes: dict) -> PseudoVideo:
    segments, labels, scores = [], [], []
    for row in rows:
        segment = row.get("segment") if isinstance(row, dict) else None
        if not (isinstance(segment, list) and len(segment) == 2):
            raise DataError(f"{path}: {name}: a pseudo label without a [start, end] 'segment'")
        try:
            start, end = float(segment[0]), float(segment[1])
            score = float(row.get("score", 1.0))
        except (TypeError, ValueError):
            raise DataError(f"{path}: {name}: segment {segment} is not numbers") from None
        if not (math.isfinite(start) and math.isfinite(end) and 0 <= start <= end):
            raise DataError(f"{path}: {name}: segment {segment} is not a span of seconds")
        if end > duration + 1.0:
            raise DataError(
                f"{path}: {name}: segment {segment} ends after the video ({duration:g} s)"
            )
        if not math.isfinite(score):
            raise DataError(f"{path}: {name}: score {row.get('score')!r} is not a number")
        label = row.get("label")
        if label not in classes:
            raise DataError(f"{path}: {name}: label {label!r} is not a class of the dataset")
        segments.append([start, end])
        labels.append(classes[label])
        scores.append(score)
    return PseudoVideo(
        np.asarray(segments, dtype=np.float32).reshape(-1, 2),
        np.asarray(labels, dtype=np.int64),
        np.asarray(scores, dtype=np.float32),
    )


def filter_pseudo(video: PseudoVideo, rules: PseudoLabelRules) -> PseudoVideo:
    """thumos14.py get_data: keep the segments whose hull overlaps with the others sum
    to >= ``rules.min_overlap_sum`` and whose score is > ``rules.min_score``; with
    ``nms_iou`` CoLA's per-class NMS first, with ``merge_iou`` merge_box after (both off
    at 0; see :class:`hamnet.localize.pseudo_labels.PseudoLabelRules`)."""
    if len(video.segments) == 0:
        return video
    chosen = selected_rows(video.segments, video.scores, video.labels.tolist(), rules)
    rows = np.array([i for i, _, _ in chosen], dtype=int)
    segments = np.array([[s, e] for _, s, e in chosen], dtype=np.float32).reshape(-1, 2)
    return PseudoVideo(segments, video.labels[rows], video.scores[rows])


def to_grid(seconds: np.ndarray, rate: float) -> np.ndarray:
    """Seconds -> feature-grid positions: ``(t x fps - 0.5 x num_frames) / feat_stride``;
    on hamnet's snippet grid fps / feat_stride = snippets per second and num_frames =
    feat_stride, so ``t x rate - 0.5`` (a snippet's centre is its position)."""
    return (np.asarray(seconds, dtype=np.float64) * rate - 0.5).astype(np.float32)


def to_seconds(grid: np.ndarray, rate: float) -> np.ndarray:
    """postprocessing's ``(g x feat_stride + 0.5 x num_frames) / fps`` on the snippet grid."""
    return (np.asarray(grid, dtype=np.float64) + 0.5) / rate


def crop_window(
    length: int, segments: np.ndarray, max_len: int, thresh: float, crop, rng
) -> tuple[int, int]:
    """data_utils.py truncate_feats' window [start, end): a video up to ``max_len`` keeps
    everything unless ``crop`` = (low, high) draws a shorter length; then up to 200 draws
    of a start until a segment keeps >= ``thresh`` of itself (else the last draw)."""
    if length <= max_len:
        if crop is None:
            return 0, length
        max_len = int(
            rng.integers(max(round(crop[0] * length), 1), min(round(crop[1] * length), length) + 1)
        )
        if max_len == length:
            return 0, length
    start = 0
    for _ in range(200):
        start = int(rng.integers(0, length - max_len + 1))
        if kept_segments(segments, start, start + max_len, thresh)[0].any():
            break
    return start, start + max_len


def kept_segments(segments: np.ndarray, start: int, end: int, thresh: float):
    """The segments a window keeps (>= ``thresh`` of their length inside) and their
    clipped spans, in float32 as the reference computes them."""
    seg = np.asarray(segments, dtype=np.float32).reshape(-1, 2)
    left = np.maximum(np.float32(start), seg[:, 0])
    right = np.minimum(np.float32(end), seg[:, 1])
    inter = np.clip(right - left, 0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = inter / np.abs(seg[:, 1] - seg[:, 0])
    keep = ratio >= thresh
    return keep, np.stack([left, right], axis=1)


def cropped_targets(segments, labels, start: int, end: int, length: int, thresh: float):
    """The targets in the window's frame: unchanged for the whole video, else the kept
    segments clipped to the window and shifted by its start."""
    if start == 0 and end == length:
        return segments, labels
    keep, clipped = kept_segments(segments, start, end, thresh)
    return clipped[keep] - np.float32(start), labels[keep]
