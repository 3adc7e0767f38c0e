"""Straightforward per-detection loops following the official evaluators line by line.

Slow on purpose: an independent oracle for the vectorised protocols (tests) and the
baseline of ``benchmarks/bench_eval.py``. Inputs: ``gt`` and ``dets`` as lists of tuples
``(video, label, start, end)`` and ``(video, label, score, start, end)`` in file order.
"""

from __future__ import annotations

import numpy as np


def anet_class_ap(gt: list, dets: list, thresholds: list[float]) -> np.ndarray:
    """One class, the official ``compute_average_precision_detection`` loop."""
    ap = np.zeros(len(thresholds))
    if not dets:
        return ap
    scores = np.array([d[2] for d in dets])
    ranked = [dets[i] for i in scores.argsort()[::-1]]
    by_video: dict[str, list[int]] = {}
    for j, g in enumerate(gt):
        by_video.setdefault(g[0], []).append(j)
    lock = -np.ones((len(thresholds), len(gt)))
    tp = np.zeros((len(thresholds), len(ranked)))
    fp = np.zeros((len(thresholds), len(ranked)))
    for idx, det in enumerate(ranked):
        members = by_video.get(det[0])
        if members is None:
            fp[:, idx] = 1
            continue
        seg = np.array([[gt[j][2], gt[j][3]] for j in members])
        start = np.maximum(det[3], seg[:, 0])
        end = np.minimum(det[4], seg[:, 1])
        inter = (end - start).clip(0)
        iou = inter / ((seg[:, 1] - seg[:, 0]) + (det[4] - det[3]) - inter)
        for t, thr in enumerate(thresholds):
            for j in iou.argsort()[::-1]:
                if iou[j] < thr:
                    fp[t, idx] = 1
                    break
                if lock[t, members[j]] >= 0:
                    continue
                tp[t, idx] = 1
                lock[t, members[j]] = idx
                break
            if fp[t, idx] == 0 and tp[t, idx] == 0:
                fp[t, idx] = 1
    tpc, fpc = np.cumsum(tp, axis=1), np.cumsum(fp, axis=1)
    rec, prec = tpc / len(gt), tpc / (tpc + fpc)
    for t in range(len(thresholds)):
        mprec = np.hstack([[0], prec[t], [0]])
        mrec = np.hstack([[0], rec[t], [1]])
        for i in range(len(mprec) - 1)[::-1]:
            mprec[i] = max(mprec[i], mprec[i + 1])
        k = np.where(mrec[1:] != mrec[:-1])[0] + 1
        ap[t] = np.sum((mrec[k] - mrec[k - 1]) * mprec[k])
    return ap


def thumos_class_ap(gt: list, dets: list, ambiguous: dict, thr: float) -> float:
    """One class and threshold, the kit's ``TH14eventdetpr`` loop."""
    videos = sorted({g[0] for g in gt} | {d[0] for d in dets})
    tpconf, fpconf = [], []
    for video in videos:
        vgt = [g for g in gt if g[0] == video]
        vdet = [d for d in dets if d[0] == video]
        if not vdet:
            continue
        vdet = [vdet[i] for i in np.argsort([-d[2] for d in vdet], kind="stable")]
        free = [True] * len(vdet)
        for g in vgt:
            best, best_j = None, None
            for j, d in enumerate(vdet):
                if free[j]:
                    ov = _kit_overlap((g[2], g[3]), (d[3], d[4]))
                    if best is None or ov > best:
                        best, best_j = ov, j
            if best is not None and best > thr:
                free[best_j] = False
        for j, d in enumerate(vdet):
            amb = any(_kit_overlap(span, (d[3], d[4])) > 0 for span in ambiguous.get(video, []))
            if not free[j]:
                tpconf.append(d[2])
            elif not amb:
                fpconf.append(d[2])
    if not tpconf:
        return 0.0
    conf = np.array(tpconf + fpconf)
    flag = np.array([1] * len(tpconf) + [2] * len(fpconf))
    order = np.argsort(-conf, kind="stable")
    tp = np.cumsum(flag[order] == 1)
    fp = np.cumsum(flag[order] == 2)
    rec, prec = tp / len(gt), tp / (fp + tp)
    ap = 0.0
    for r in np.arange(11) * 0.1:
        p = prec[rec >= r]
        ap += (p.max() if p.size else 0.0) / 11
    return ap


def _kit_overlap(a: tuple, b: tuple) -> float:
    width = min(a[1], b[1]) - max(a[0], b[0])
    return width / (max(a[1], b[1]) - min(a[0], b[0])) if width > 0 else 0.0


def protocol_map(protocol: str, gt: list, dets: list, thresholds: list, ambiguous=None):
    """mAP per threshold over the classes with ground truth (first-appearance order)."""
    classes = list(dict.fromkeys(g[1] for g in gt))
    aps = []
    for c in classes:
        cgt = [g for g in gt if g[1] == c]
        cdet = [d for d in dets if d[1] == c]
        if protocol == "anet":
            aps.append(anet_class_ap(cgt, cdet, thresholds))
        else:
            aps.append([thumos_class_ap(cgt, cdet, ambiguous or {}, t) for t in thresholds])
    return np.mean(np.array(aps), axis=0)
