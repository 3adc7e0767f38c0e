"""From one video's attended T-CAS and actionness to scored detections (reference §6).

Pipeline per predicted class: threshold the actionness at each threshold, group the
snippets above it into runs, score each run by outer-inner contrast, convert to
seconds, then soft-NMS (or hard NMS, or none) over all thresholds' runs together.
Everything is vectorised over snippets and runs; only classes and thresholds loop.
"""

from __future__ import annotations

import numpy as np

from hamnet.localize.detections import Detection
from hamnet.localize.nms import nms as hard_nms
from hamnet.localize.nms import soft_nms_order
from hamnet.timing import RELEASED_SNIPPET_SECONDS

DEFAULT_THRESHOLDS = np.linspace(0.1, 0.9, 10)


def video_scores(cas_attended: np.ndarray, topk_ratio_inv: int) -> np.ndarray:
    """Video-level class scores [C] from the attended T-CAS [T, C+1].

    Mean of the k = max(1, floor(T / r)) largest values per column, softmax over all
    C+1 columns, background (last) dropped.
    """
    cas = np.asarray(cas_attended, dtype=np.float64)
    k = max(1, cas.shape[0] // int(topk_ratio_inv))
    pooled = np.sort(cas, axis=0)[-k:].mean(axis=0)
    shifted = np.exp(pooled - pooled.max())
    return (shifted / shifted.sum())[:-1]


def find_runs(mask: np.ndarray) -> np.ndarray:
    """Inclusive (start, end) [R, 2] of each run of consecutive True in ``mask`` [T]."""
    padded = np.concatenate(([0], np.asarray(mask, dtype=np.int8).reshape(-1), [0]))
    steps = np.diff(padded)
    starts = np.flatnonzero(steps == 1)
    ends = np.flatnonzero(steps == -1) - 1
    return np.stack([starts, ends], axis=1)


def outer_inner_contrast(
    class_cas: np.ndarray, runs: np.ndarray, outer_ratio: float = 0.25
) -> np.ndarray:
    """inner - outer mean of ``class_cas`` [T] for each inclusive run [R, 2] -> [R].

    Outer region: [max(0, int(s - r L)), s) and (e, min(T-1, int(e + r L))], L = e - s + 1,
    ``int`` truncating toward zero as the reference does; an empty outer region counts 0.
    """
    values = np.asarray(class_cas, dtype=np.float64)
    total = np.concatenate(([0.0], np.cumsum(values)))
    s, e = runs[:, 0], runs[:, 1]
    length = e - s + 1
    inner = (total[e + 1] - total[s]) / length
    outer_s = np.maximum(0, np.trunc(s - outer_ratio * length).astype(np.int64))
    outer_e = np.minimum(values.shape[0] - 1, np.trunc(e + outer_ratio * length).astype(np.int64))
    after = np.maximum(outer_e - e, 0)
    outer_sum = (total[s] - total[outer_s]) + np.where(
        after > 0, total[np.maximum(outer_e, e) + 1] - total[e + 1], 0.0
    )
    count = (s - outer_s) + after
    outer = np.where(count > 0, outer_sum / np.maximum(count, 1), 0.0)
    return inner - outer


def above_thresholds(values: np.ndarray, thresholds, *, numpy1: bool) -> np.ndarray:
    """[len(thresholds), T] masks ``values > threshold``, compared as the reference codes'
    line ``values > threshold`` (a float64 scalar) computes: under numpy 1 (their pinned
    numpy) value-based casting turns the threshold into the float array's own type
    (float32), under numpy 2 the comparison is in float64. A value equal to a threshold's
    float32 rounding is above it only in float64."""
    values = np.asarray(values).reshape(1, -1)
    bounds = np.asarray(thresholds, dtype=np.float64).reshape(-1, 1)
    if numpy1 and values.dtype.kind == "f":
        bounds = bounds.astype(values.dtype)
    return values > bounds  # arrays of two float types: compared in the wider one


def class_proposals(
    class_cas: np.ndarray,
    actionness: np.ndarray,
    thresholds: np.ndarray,
    outer_ratio: float,
    bonus: float,
    reference_quirks: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Runs of every threshold for one class -> (runs [R, 2] inclusive, scores [R]).

    Order: threshold by threshold (ascending as given), runs in time order within one,
    which is the order the reference feeds them to soft-NMS. ``bonus`` is added to each
    score (the weighted video-level score). Quirks (``reference_quirks``): a threshold
    whose only snippet above it is index 0 yields nothing; the thresholds are compared as
    the reference's pinned numpy 1 does (:func:`above_thresholds`).
    """
    above = above_thresholds(actionness, thresholds, numpy1=reference_quirks)
    all_runs = []
    for mask in above:
        if reference_quirks and mask[0] and mask.sum() == 1:
            continue
        all_runs.append(find_runs(mask))
    runs = np.concatenate(all_runs) if all_runs else np.zeros((0, 2), dtype=np.int64)
    if runs.shape[0] == 0:
        return runs, np.zeros(0)
    return runs, outer_inner_contrast(class_cas, runs, outer_ratio) + bonus


def suppress(
    segments: np.ndarray, scores: np.ndarray, method: str, sigma: float, iou: float, quirks: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Apply soft / hard / no NMS -> (indices into the input, scores) in output order."""
    if method == "soft":
        return soft_nms_order(segments, scores, sigma, plus_one_iou=quirks)
    if method == "hard":
        keep = hard_nms(segments, scores, iou)
        return keep, scores[keep]
    if method == "none":
        return np.arange(scores.shape[0]), scores
    raise ValueError(f"nms must be 'soft', 'hard' or 'none', got {method!r}")


def localize_video(
    video: str,
    cas_attended: np.ndarray,
    actionness: np.ndarray,
    scores: np.ndarray,
    class_names: list[str],
    *,
    class_thresh: float = 0.2,
    thresholds: np.ndarray | list[float] = DEFAULT_THRESHOLDS,
    outer_ratio: float = 0.25,
    video_score_weight: float = 0.2,
    snippet_seconds: float = RELEASED_SNIPPET_SECONDS,
    nms: str = "soft",
    sigma: float = 0.3,
    nms_iou: float = 0.5,
    max_detections: int | None = None,
    reference_quirks: bool = True,
) -> list[Detection]:
    """Detections of one video from S_a [T, C+1], actionness [T] and video scores [C].

    ``actionness`` may be [T, C], one signal per class (methods that localize on their
    class activation maps); S_a may then have C columns.

    Classes with score >= ``class_thresh`` are predicted, in class-index order; each
    class's output is in NMS selection order. ``max_detections`` then keeps the
    highest-scored ones of the whole video (output order on ties).
    """
    cas = np.asarray(cas_attended, dtype=np.float64)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    detections: list[Detection] = []
    per_class = np.ndim(actionness) == 2
    for c in np.flatnonzero(np.asarray(scores) >= class_thresh):
        bonus = video_score_weight * float(scores[c])
        signal = actionness[:, c] if per_class else actionness
        runs, run_scores = class_proposals(
            cas[:, c], signal, thresholds, outer_ratio, bonus, reference_quirks
        )
        if runs.shape[0] == 0:
            continue
        seconds = np.stack([runs[:, 0], runs[:, 1] + 1], axis=1) * snippet_seconds
        order, kept_scores = suppress(seconds, run_scores, nms, sigma, nms_iou, reference_quirks)
        name = class_names[c]
        detections.extend(
            Detection(video, name, float(sc), float(seconds[i, 0]), float(seconds[i, 1]))
            for i, sc in zip(order.tolist(), kept_scores.tolist(), strict=True)
        )
    if max_detections is not None and len(detections) > max_detections:
        ranked = np.argsort(-np.array([d.score for d in detections]), kind="stable")
        detections = [detections[i] for i in ranked[:max_detections]]
    return detections
