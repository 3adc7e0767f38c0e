"""CO2-Net's and DELU's test-time rule (their proposal_methods.py, utils/wsad_utils.py),
as a pure numpy function: outputs of one video -> detections in snippet units.

File:line references (CO2-Net @ e879687; DELU @ a60e46d has the same lines, shifted)
are in docs/methods.md. Reproduced as written, including ``temp_list.any()``, which
skips a threshold whose only snippet above it is snippet 0.
"""

from __future__ import annotations

import numpy as np

from hamnet.localize.reference_rules import overlaps_ambiguous, soft_nms
from hamnet.methods.base import softmax


def video_scores(cas: np.ndarray, attention: np.ndarray, ratio: int = 10) -> np.ndarray:
    """[C]: softmax over C + 1 of the mean of the T // ratio largest ``cas x attention``
    (get_cls_score with rat=10)."""
    product = _product(cas, attention)
    k = max(1, product.shape[0] // ratio)
    return softmax(np.sort(product, axis=0)[-k:].mean(axis=0))[:-1]


def classification_scores(cas: np.ndarray) -> np.ndarray:
    """[C]: what test.py ranks for classification mAP (CO2-Net test.py:63, DELU
    test.py:48): softmax over C + 1 of the mean of the top ``ceil(len(features) / 8)``
    T-CAS rows, where ``features`` is already [1, T, D] (unsqueezed on the line before the
    forward pass), so k = ceil(1 / 8) = 1: the per-class maximum over time, float32."""
    top = cas.astype(np.float32).max(axis=0)
    return softmax(top)[:-1]


def _product(cas: np.ndarray, attention: np.ndarray) -> np.ndarray:
    # float32, as the official code multiplies torch tensors
    return cas.astype(np.float32) * attention.astype(np.float32)[:, None]


def _groups(indices: np.ndarray) -> list[np.ndarray]:
    return np.split(indices, np.where(np.diff(indices) != 1)[0] + 1)


def oic_proposals(
    segment: np.ndarray,
    wtcam: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    outer_ratio: float = 0.25,
    gamma: float = 0.2,
) -> list[list[list[float]]]:
    """Per kept class, ``[class, inner - outer + gamma * score, start, end + 1]`` of each
    run of ``segment`` (get_proposal_oic_2); the outer ring by integer truncation."""
    out = []
    if not segment.any():
        return out
    length = wtcam.shape[0]
    for i, c in enumerate(classes):
        found = []
        for run in _groups(segment):
            inner = np.mean(wtcam[run, i])
            size = len(run)
            outer_s = max(0, int(run[0] - outer_ratio * size))
            outer_e = min(int(length - 1), int(run[-1] + outer_ratio * size))
            ring = list(range(outer_s, int(run[0]))) + list(range(int(run[-1] + 1), outer_e + 1))
            outer = 0 if len(ring) == 0 else np.mean(wtcam[ring, i])
            found.append([c, inner - outer + gamma * scores[c], run[0], run[-1] + 1])
        out.append(found)
    return out


def reference_detections(
    cas: np.ndarray,
    attention: np.ndarray,
    *,
    thresholds: np.ndarray,
    class_thresh: float = 0.2,
    outer_ratio: float = 0.25,
    gamma: float = 0.2,
    sigma: float = 0.3,
    ambiguous: list[tuple[float, float]] = (),
    snippets_per_second: float = 25 / 16,
    min_snippets: int = 0,
) -> list[tuple[int, float, float, float]]:
    """One video's detections ``(class, score, start, end)`` in snippets, in the official
    order. ``cas`` [T, C+1] (raw, last column background), ``attention`` [T] (fused).
    ``min_snippets``: DELU keeps ``end - start > 1`` (pass 1); CO2-Net keeps all (0)."""
    scores = video_scores(cas, attention)
    kept = np.where(scores >= class_thresh)[0]
    if len(kept) == 0:
        kept = np.array([np.argmax(scores)])
    wtcam = _product(cas, attention)[:, :-1][:, kept]
    by_class: dict[int, list] = {}
    for threshold in thresholds:
        segment = np.where(attention > threshold)[0]
        for found in oic_proposals(segment, wtcam, scores, kept, outer_ratio, gamma):
            by_class.setdefault(int(found[0][0]), []).extend(found)
    out = []
    for rows in by_class.values():
        for c, score, start, end in soft_nms(rows, sigma):
            if ambiguous and overlaps_ambiguous(start, end, ambiguous, snippets_per_second):
                continue
            if end - start > min_snippets:
                out.append((int(c), float(score), float(start), float(end)))
    return out
