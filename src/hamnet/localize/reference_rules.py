"""The detection rules of the baselines' public reference codes (``localize.rules=reference``).

Each rule turns one video's network outputs into detections exactly as its reference
code does (docs/methods.md, "Reference rules", gives repo@commit and file:line for each
step). They are plain numpy functions of the outputs, so a method's
``reference_detections`` only picks its outputs and calls one of them.

- :func:`wtalc_rule`: W-TALC (sujoyp/wtalc-pytorch, detectionMAP.py).
- :func:`basnet_rule`: BaS-Net (Pilhyeon/BaSNet-pytorch, test.py and utils.py).
- :func:`stpn_rule`: STPN (bellos1203/STPN, code/test.py and code/utils.py), one stream.

Times: a snippet index i of a video sampled from ``length`` snippets to N and upsampled
by ``scale`` starts at ``i * snippet_seconds * length / (scale * N)`` seconds.
"""

from __future__ import annotations

import numpy as np

from hamnet.localize.detections import Detection
from hamnet.localize.proposals import find_runs

WTALC_SCORE_WEIGHT = 0.7  # detectionMAP.py: run max + 0.7 * class score
BASNET_CLASS_THRESH = 0.25  # options.py --class_th
BASNET_THRESHOLDS = np.arange(0.0, 0.25, 0.025)  # config.py act_thresh
BASNET_NMS_IOU = 0.7  # test.py
BASNET_SCORE_BONUS = 0.2  # utils.py get_proposal_oic gamma (times the 0/1 class score)
BASNET_OUTER_RATIO = 0.25  # utils.py get_proposal_oic lambda_
STPN_CLASS_THRESH = 0.1  # utils.py --class_th
STPN_ACTIVATION_THRESH = 0.05  # utils.py interpolated_wtCAM
UPSAMPLE_SCALE = 24  # BaS-Net config.py scale, STPN utils.py --scale


def uniform_sample_indices(length: int, count: int) -> np.ndarray:
    """Snippet indices floor(i * length / count), i < count (both references' test sampling)."""
    if length == count:
        return np.arange(count)
    return np.floor(np.arange(count) * length / count).astype(np.int64)


def upsample_linear(values: np.ndarray, scale: int) -> np.ndarray:
    """Linear interpolation of ``values`` [N, ...] at ``arange(0, N, 1/scale)``, the last
    segment's line extended past N - 1 (scipy's interp1d, kind linear, extrapolate)."""
    values = np.asarray(values)
    n = values.shape[0]
    if n < 2:
        return np.repeat(values, scale, axis=0).astype(np.float64)
    x_new = np.arange(0, n, 1 / scale)
    hi = np.clip(np.searchsorted(np.arange(n), x_new), 1, n - 1)
    lo = hi - 1
    shape = (-1,) + (1,) * (values.ndim - 1)
    slope = (values[hi] - values[lo]) / (hi - lo).reshape(shape)
    return slope * (x_new - lo).reshape(shape) + values[lo]


def runs_of_positions(mask: np.ndarray) -> np.ndarray:
    """Inclusive runs of ``mask``; none when its only True snippet is index 0 (both
    references test ``positions.any()``, which is False for the positions [0])."""
    if not mask.any() or (mask[0] and mask.sum() == 1):
        return np.zeros((0, 2), dtype=np.int64)
    return find_runs(mask)


def wtalc_rule(
    video: str, cas: np.ndarray, classes: list[str], snippet_seconds: float
) -> list[Detection]:
    """W-TALC: classes whose mean of the int(T/8) largest raw T-CAS values is > 0; per
    class, runs where the raw T-CAS > max - 0.5 (max - min), of at least 2 snippets,
    scored run max + 0.7 * class score; [s, e) in snippets; no NMS."""
    cas = np.asarray(cas, dtype=np.float32)
    count = cas.shape[0] // 8
    if count == 0:  # the reference's mean over no values is NaN: no class is kept
        return []
    class_score = (-np.sort(-cas, axis=0))[:count].mean(axis=0)
    detections = []
    for c in np.flatnonzero(class_score > 0.0):
        column = cas[:, c]
        high, low = np.max(column), np.min(column)
        threshold = high - (high - low) * np.float32(0.5)
        for s, last in find_runs(column > threshold).tolist():
            if last + 1 - s < 2:
                continue
            score = float(np.max(column[s : last + 1])) + WTALC_SCORE_WEIGHT * float(class_score[c])
            seconds = (s * snippet_seconds, (last + 1) * snippet_seconds)
            detections.append(Detection(video, classes[c], score, *seconds))
    return detections


def minmax_normalise(cas: np.ndarray) -> np.ndarray:
    """Per column (cas - relu(min)) / (relu(max) - relu(min)), a span <= 0 counted 1 (float32)."""
    cas = np.asarray(cas, dtype=np.float32)
    high, low = np.maximum(cas.max(axis=0), 0), np.maximum(cas.min(axis=0), 0)
    span = high - low
    span[span <= 0] = 1
    return (cas - low) / span


def outer_inner(values: np.ndarray, s: int, e: int, ratio: float) -> float:
    """inner mean - outer mean on inclusive run [s, e], as get_proposal_oic computes it."""
    length = e - s + 1
    outer_s = max(0, int(s - ratio * length))
    outer_e = min(values.shape[0] - 1, int(e + ratio * length))
    outer = list(range(outer_s, s)) + list(range(e + 1, outer_e + 1))
    outer_score = np.mean(values[outer]) if outer else 0
    return float(np.mean(values[s : e + 1]) - outer_score)


def basnet_rule(
    video: str,
    cas: np.ndarray,
    video_scores: np.ndarray,
    classes: list[str],
    *,
    length: int,
    snippet_seconds: float,
) -> list[Detection]:
    """BaS-Net on the suppression T-CAS [N, C+1] of the uniformly sampled video."""
    predicted = np.flatnonzero(np.asarray(video_scores) >= BASNET_CLASS_THRESH)
    if not predicted.any():  # test.py's pred.any(): the classes [0] count as none
        return []
    signal = upsample_linear(minmax_normalise(cas)[:, predicted], UPSAMPLE_SCALE)
    factor = snippet_seconds * length / (UPSAMPLE_SCALE * cas.shape[0])
    proposals: dict[int, list[tuple[float, float, float]]] = {}
    for threshold in BASNET_THRESHOLDS:
        kept = np.where(signal < threshold, 0.0, signal)
        for i, c in enumerate(predicted.tolist()):
            for s, e in runs_of_positions(kept[:, i] > 0).tolist():
                score = outer_inner(kept[:, i], s, e, BASNET_OUTER_RATIO) + BASNET_SCORE_BONUS
                proposals.setdefault(c, []).append((score, s * factor, (e + 1) * factor))
    detections = []
    for c, found in proposals.items():
        rows = np.asarray(found, dtype=np.float64)
        for score, start, end in rows[plus_one_nms(rows, BASNET_NMS_IOU)].tolist():
            detections.append(Detection(video, classes[c], score, start, end))
    return detections


def plus_one_nms(rows: np.ndarray, iou: float) -> np.ndarray:
    """Hard NMS on rows (score, start, end) with lengths end - start + 1 (BaS-Net's
    utils.nms): kept indices, highest score first; a row goes at IoU >= ``iou``."""
    start, end, scores = rows[:, 1], rows[:, 2], rows[:, 0]
    areas = end - start + 1
    order = scores.argsort()[::-1]
    keep = []
    while order.size > 0:
        top, rest = order[0], order[1:]
        keep.append(top)
        overlap_end = np.minimum(end[top], end[rest])
        inter = np.maximum(0.0, overlap_end - np.maximum(start[top], start[rest]) + 1)
        overlap = inter / (areas[top] + areas[rest] - inter)
        order = rest[overlap < iou]
    return np.asarray(keep, dtype=np.int64)


def stpn_rule(
    video: str,
    cas: np.ndarray,
    attention: np.ndarray,
    video_scores: np.ndarray,
    classes: list[str],
    *,
    length: int,
    snippet_seconds: float,
) -> list[Detection]:
    """STPN, one stream: classes with sigmoid score > 0.1; a * sigmoid(T-CAS) upsampled
    x24, kept where >= 0.05; each run scored by the mean of the upsampled a * T-CAS."""
    predicted = np.flatnonzero(np.asarray(video_scores) > STPN_CLASS_THRESH)
    if not predicted.any():  # test.py's class_prediction.any()
        return []
    cas = np.asarray(cas, dtype=np.float32)[:, predicted]
    attention = np.asarray(attention, dtype=np.float32).reshape(-1, 1)
    signal = attention / (np.float32(1) + np.exp(-cas))
    both = upsample_linear(np.stack([signal, attention * cas], axis=2), UPSAMPLE_SCALE)
    both[both[:, :, 0] < STPN_ACTIVATION_THRESH] = 0
    factor = snippet_seconds * length / (UPSAMPLE_SCALE * cas.shape[0])
    detections = []
    for i, c in enumerate(predicted.tolist()):
        for s, e in runs_of_positions(both[:, i, 0] > 0).tolist():
            score = float(np.mean(both[s : e + 1, i, 1]))
            detections.append(Detection(video, classes[c], score, s * factor, (e + 1) * factor))
    return detections


# CO2-Net's test rule and the second stages built on its code (P-MIL) share these two
def soft_nms(dets: list[list[float]], sigma: float = 0.3) -> list[list[float]]:
    """Gaussian soft-NMS over ``[class, score, start, end]`` rows, +1 length convention."""
    dets = np.array(dets, dtype=np.float64)
    areas = dets[:, 3] - dets[:, 2] + 1
    dets = np.concatenate((dets, areas[:, None]), axis=1)
    kept = []
    while dets.size > 0:
        top = np.argmax(dets[:, 1], axis=0)
        dets[[0, top], :] = dets[[top, 0], :]
        kept.append(dets[0, :-1].tolist())
        inter = np.maximum(
            np.minimum(dets[0, 3], dets[1:, 3]) - np.maximum(dets[0, 2], dets[1:, 2]) + 1, 0.0
        )
        iou = inter / (dets[0, -1] + dets[1:, -1] - inter)
        dets[1:, 1] *= np.exp(-(iou * iou) / sigma)
        dets = dets[1:, :]
    return kept


def overlaps_ambiguous(start: float, end: float, spans, snippets_per_second: float) -> bool:
    """Whether snippets ``int(start)..int(end) - 1`` meet an ambiguous span's rounded
    snippets (official filter_segments: IoU > 0 of the two integer ranges)."""
    own = set(range(int(start), int(end)))
    for a, b in spans:
        other = set(range(int(round(a * snippets_per_second)), int(round(b * snippets_per_second))))
        if own & other:
            return True
    return False
