"""CO2-Net's and DELU's test-time rule (their proposal_methods.py, utils/wsad_utils.py),
as a plain function of numpy arrays: outputs of one video -> detections in snippets.

File:line references (CO2-Net @ e879687; DELU @ a60e46d has the same lines, shifted)
are in docs/methods.md. Reproduced as written, including ``temp_list.any()``, which
skips a threshold whose only snippet above it is snippet 0.

The arithmetic is the official code's bit for bit: the video scores by the same torch
float32 calls, and the numpy promotions of its pinned numpy 1.21.6 (``numpy_rules=1``) or of
numpy >= 2 (``numpy_rules=2``), whatever numpy is installed. Under numpy 1 the official
code compares the float32 attention with a threshold rounded to float32 and sums the
OIC score in float64; under numpy 2 (NEP 50) it compares in float64 and sums in float32.
A snippet whose attention equals a threshold's float32 rounding changes the runs.
"""

from __future__ import annotations

import numpy as np
import torch

from hamnet.localize.proposals import above_thresholds
from hamnet.localize.reference_rules import overlaps_ambiguous, soft_nms

NUMPY_RULES = (1, 2)  # numpy's promotion rules the official arithmetic follows


def video_scores(cas: np.ndarray, attention: np.ndarray, ratio: int = 10) -> np.ndarray:
    """[C] float32: softmax over C + 1 of the mean of the T // ratio largest
    ``cas x attention`` (get_cls_score with rat=10: torch.topk, mean, softmax)."""
    product = torch.from_numpy(_product(cas, attention))[None]
    k = max(1, int(product.shape[-2] // ratio))
    top = torch.topk(product, k=k, dim=-2)[0]
    return torch.softmax(torch.mean(top, dim=-2), dim=-1)[0, :-1].numpy()


def classification_scores(cas: np.ndarray) -> np.ndarray:
    """[C]: what test.py ranks for classification mAP (CO2-Net test.py:63, DELU
    test.py:48): softmax over C + 1 of the mean of the top ``ceil(len(features) / 8)``
    T-CAS rows, where ``features`` is already [1, T, D] (unsqueezed on the line before the
    forward pass), so k = ceil(1 / 8) = 1: the per-class maximum over time, float32."""
    top = torch.from_numpy(cas.astype(np.float32)).max(dim=0).values
    return torch.softmax(top, dim=0)[:-1].numpy()


def _product(cas: np.ndarray, attention: np.ndarray) -> np.ndarray:
    # float32, as the official code multiplies torch tensors
    return cas.astype(np.float32) * attention.astype(np.float32)[:, None]


def _groups(indices: np.ndarray) -> list[np.ndarray]:
    return np.split(indices, np.where(np.diff(indices) != 1)[0] + 1)


def oic_score(inner, outer, score, gamma: float, numpy_rules: int = 1) -> float:
    """``inner - outer + gamma * score`` of float32 scalars (``outer`` the int 0 for an
    empty ring) as numpy 1 computes it (the sum in float64; ``inner - 0`` is float64
    too) or numpy 2 (every step in float32)."""
    if numpy_rules == 1:
        return np.float64(inner - outer) + gamma * np.float64(score)
    return np.float32(inner - outer) + np.float32(gamma) * np.float32(score)


def oic_proposals(
    segment: np.ndarray,
    wtcam: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    outer_ratio: float = 0.25,
    gamma: float = 0.2,
    numpy_rules: int = 1,
) -> list[list[list[float]]]:
    """Per kept class, ``[class, inner - outer + gamma * score, start, end + 1]`` of each
    run of ``segment`` (get_proposal_oic_2); the outer ring by integer truncation; the
    score in the arithmetic of ``numpy_rules`` (:func:`oic_score`)."""
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
            score = oic_score(inner, outer, scores[c], gamma, numpy_rules)
            found.append([c, score, run[0], run[-1] + 1])
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
    numpy_rules: int = 1,
) -> list[tuple[int, float, float, float]]:
    """One video's detections ``(class, score, start, end)`` in snippets, in the official
    order. ``cas`` [T, C+1] (raw, last column background), ``attention`` [T] (fused).
    ``min_snippets``: DELU keeps ``end - start > 1`` (pass 1); CO2-Net keeps all (0).
    ``numpy_rules``: the promotion rules of the official arithmetic (1: its pinned numpy)."""
    attention = np.asarray(attention, dtype=np.float32)  # the official outputs' type
    scores = video_scores(cas, attention)
    kept = np.where(scores >= class_thresh)[0]
    if len(kept) == 0:
        kept = np.array([np.argmax(scores)])
    wtcam = _product(cas, attention)[:, :-1][:, kept]
    by_class: dict[int, list] = {}
    for mask in above_thresholds(attention, thresholds, numpy1=numpy_rules == 1):
        segment = np.flatnonzero(mask)
        for found in oic_proposals(segment, wtcam, scores, kept, outer_ratio, gamma, numpy_rules):
            by_class.setdefault(int(found[0][0]), []).extend(found)
    out = []
    for rows in by_class.values():
        for c, score, start, end in soft_nms(rows, sigma):
            if ambiguous and overlaps_ambiguous(start, end, ambiguous, snippets_per_second):
                continue
            if end - start > min_snippets:
                out.append((int(c), float(score), float(start), float(end)))
    return out
