"""Non-maximum suppression for 1-D segments: Gaussian soft-NMS (the reference's) and hard NMS."""

from __future__ import annotations

import numpy as np


def segment_iou(a: np.ndarray, b: np.ndarray, plus_one: bool = False) -> np.ndarray:
    """IoU of one segment ``a`` [2] with each row of ``b`` [N, 2] -> [N].

    ``plus_one``: the reference soft-NMS's lengths ``end - start + 1`` and intersection
    ``min_end - max_start + 1`` (meant for frame indices, applied there to seconds).
    A zero union gives IoU 0.
    """
    b = np.asarray(b, dtype=np.float64).reshape(-1, 2)
    one = 1.0 if plus_one else 0.0
    inter = np.maximum(np.minimum(a[1], b[:, 1]) - np.maximum(a[0], b[:, 0]) + one, 0.0)
    union = (a[1] - a[0] + one) + (b[:, 1] - b[:, 0] + one) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / union
    return np.where(union > 0, iou, 0.0)


def soft_nms_order(
    segments: np.ndarray, scores: np.ndarray, sigma: float = 0.3, plus_one_iou: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian soft-NMS keeping every proposal -> (input indices [N] in selection order,
    decayed scores [N]).

    Greedy: take the proposal with the highest current score, multiply every other
    remaining score by ``exp(-iou^2 / sigma)``, repeat. Ties fall as in the reference:
    ``argmax`` (first maximum) over the remaining proposals, whose order is the input
    order changed by one swap per step (the chosen row trades places with the first
    remaining row).
    """
    segments = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
    current = np.array(scores, dtype=np.float64).reshape(-1)
    n = current.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64), current
    position = np.arange(n)
    starts, ends = segments[:, 0].copy(), segments[:, 1].copy()
    one = 1.0 if plus_one_iou else 0.0
    lengths = ends - starts + one
    for i in range(n - 1):
        best = i + int(np.argmax(current[i:]))
        if best != i:  # the reference swaps the chosen row with the first remaining one
            for array in (position, current, starts, ends, lengths):
                array[i], array[best] = array[best], array[i]
        inter = np.minimum(ends[i], ends[i + 1 :]) - np.maximum(starts[i], starts[i + 1 :])
        inter = np.maximum(inter + one, 0.0)
        union = lengths[i] + lengths[i + 1 :] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        current[i + 1 :] *= np.exp(-(iou * iou) / sigma)
    return position, current


def nms(segments: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Hard NMS -> indices kept [K], by descending score (input order on ties).

    A proposal is dropped when its IoU with a kept, higher-scored one exceeds the threshold.
    """
    segments = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if scores.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    remaining = np.argsort(-scores, kind="stable")
    kept = []
    while remaining.size:
        top = remaining[0]
        kept.append(top)
        rest = remaining[1:]
        remaining = rest[segment_iou(segments[top], segments[rest]) <= iou_threshold]
    return np.asarray(kept, dtype=np.int64)
