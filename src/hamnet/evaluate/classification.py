"""Video-level classification mAP (reference §7): non-interpolated AP per class, mean."""

from __future__ import annotations

import numpy as np

from hamnet.errors import EvaluationInputError


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """Non-interpolated AP of one class: mean precision at each positive, ranked by score.

    ``scores`` [N], ``positive`` [N] bool with at least one True; ties in score keep
    input order (stable sort).
    """
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    hits = np.asarray(positive, dtype=bool)[order]
    precision = np.cumsum(hits) / np.arange(1, hits.shape[0] + 1)
    return float(precision[hits].sum() / hits.sum())


def classification_map(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean AP over the classes with at least one positive: scores, labels [N, C] -> fraction.

    ``labels``: multi-hot (nonzero = positive). Classes without a positive are left out
    (their AP is undefined); with no positive at all the result is 0.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.ndim != 2 or scores.shape != labels.shape:
        raise EvaluationInputError(
            f"classification scores {scores.shape} and labels {labels.shape} must be equal [N, C]"
        )
    if not np.isfinite(scores).all():
        raise EvaluationInputError("classification scores contain NaN or infinity")
    positive = labels != 0
    aps = [
        average_precision(scores[:, c], positive[:, c])
        for c in range(scores.shape[1])
        if positive[:, c].any()
    ]
    return float(np.mean(aps)) if aps else 0.0
