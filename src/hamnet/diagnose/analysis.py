"""DETAD's three analyses on one set of ground truth and detections.

* false positives: the top ``10 G`` detections of each class (G = its ground-truth
  instances) typed per tIoU as true positive, double detection, wrong label,
  localization, confusion or background error; their share per rank slice
  [(k-1) G, k G); the average-mAP_N gain from removing each error type.
* false negatives: the fraction of ground-truth instances missed (after dropping
  detections whose normalized precision is <= 0.05), per characteristic bin.
* sensitivity: the average-mAP_N of each characteristic bin.

mAP_N is the normalized mAP: precision = R N / (R N + FP) with N the average number of
ground-truth instances per class (kept instances / number of classes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hamnet.data.annotations import AnnotationSet
from hamnet.diagnose.characteristics import BIN_SETS, CHARACTERISTICS, bin_index
from hamnet.diagnose.detection_matching import GroundTruthTable, class_rankings, match_by_class
from hamnet.errors import EvaluationInputError
from hamnet.evaluate.ap_primitives import interpolated_ap
from hamnet.localize.detections import Detection, DetectionColumns

ERROR_TYPES = (
    "true_positive",
    "double_detection",
    "wrong_label",
    "localization",
    "confusion",
    "background",
)
TP, DOUBLE, WRONG_LABEL, LOCALIZATION, CONFUSION, BACKGROUND = range(6)
LIMIT_FACTOR = 10  # DETAD: the top 10 G detections of each class
MIN_TIOU = 0.1  # DETAD: below this overlap a detection is background
FN_MIN_NORMALIZED_PRECISION = 0.05  # DETAD's false-negative analysis drops detections below


@dataclass
class Diagnosis:
    """Everything ``hamnet analyze`` writes (see :meth:`to_dict`)."""

    bin_set: str
    tiou: list[float]
    ground_truth: dict
    detections: dict
    false_positive: dict
    false_negative: dict
    sensitivity: dict

    def to_dict(self) -> dict:
        return {
            "definitions": "DETAD (Alwassel et al., ECCV 2018); see docs/diagnosis.md",
            "bins": self.bin_set,
            "tiou": self.tiou,
            "ground_truth": self.ground_truth,
            "detections": self.detections,
            "false_positive": self.false_positive,
            "false_negative": self.false_negative,
            "sensitivity": self.sensitivity,
        }


def diagnose(
    ground_truth: AnnotationSet,
    detections: Sequence[Detection] | DetectionColumns,
    *,
    tiou: Sequence[float],
    bin_set: str = "activitynet",
    subset: str | None = None,
) -> Diagnosis:
    """All three analyses; ``bin_set`` is "thumos14" or "activitynet" (DETAD's bins)."""
    if bin_set not in BIN_SETS:
        raise EvaluationInputError(f"unknown bins {bin_set!r} (known: {sorted(BIN_SETS)})")
    if not len(tiou):
        raise EvaluationInputError("no tIoU threshold given")
    thresholds = np.asarray(sorted(float(t) for t in tiou))
    table = GroundTruthTable.build(ground_truth, detections, subset)
    if not table.classes:
        raise EvaluationInputError(f"{ground_truth.source}: no ground-truth instance to analyze")
    matched = match_by_class(table, thresholds)
    keys = [f"{t:g}" for t in thresholds]
    return Diagnosis(
        bin_set=bin_set,
        tiou=[float(t) for t in thresholds],
        ground_truth=table.summary(),
        detections={
            "total": len(detections),
            "analyzed": int(table.det_class.size),
            "of_classes_without_ground_truth": table.dropped_detections,
        },
        false_positive=false_positive_analysis(table, matched, thresholds, keys),
        false_negative=false_negative_analysis(table, matched, keys, bin_set),
        sensitivity=sensitivity_analysis(table, matched, keys, bin_set),
    )


# --- precision, recall and AP ----------------------------------------------------------------


def normalized_ap(tp: np.ndarray, npos: int, nbar: float | None) -> np.ndarray:
    """Interpolated AP per column of ranked true-positive flags [n, T].

    ``nbar`` None: the usual precision TP / (TP + FP); else DETAD's normalized precision
    R N / (R N + FP). A class without positives has no AP (NaN).
    """
    if npos == 0:
        return np.full(tp.shape[1], np.nan)
    if tp.shape[0] == 0:
        return np.zeros(tp.shape[1])
    recall, precision = _curves(tp, npos, nbar)
    return interpolated_ap(recall, precision)


def _curves(tp: np.ndarray, npos: int, nbar: float | None) -> tuple[np.ndarray, np.ndarray]:
    tp_sum = np.cumsum(tp, axis=0, dtype=np.float64)
    fp_sum = np.cumsum(~tp, axis=0, dtype=np.float64)
    recall = tp_sum / npos
    scale = npos if nbar is None else nbar
    precision = recall * scale / (recall * scale + fp_sum)
    return recall, precision


def ap_without(hits: np.ndarray, kept: np.ndarray, npos, nbar: float) -> np.ndarray:
    """Normalized AP per column of ranked flags [n, C] counting only the ``kept`` rows of
    each column (as if the others were not there); ``npos`` per column or one number.

    A left-out row adds neither a true nor a false positive: its recall is the previous
    row's and its precision 0, so it changes neither the envelope at the kept rows nor
    the area (the recall does not move there).
    """
    tp_sum = np.cumsum(hits & kept, axis=0, dtype=np.float64)
    fp_sum = np.cumsum(~hits & kept, axis=0, dtype=np.float64)
    recall = tp_sum / npos
    with np.errstate(invalid="ignore"):  # 0/0 before the first kept row
        precision = np.where(kept, recall * nbar / (recall * nbar + fp_sum), 0.0)
    return interpolated_ap(recall, precision)


def _per_threshold(per_class: list[np.ndarray], keys: list[str]) -> dict[str, float | None]:
    """mAP_N at each threshold: the mean over classes (those without positives left out)."""
    stacked = np.array(per_class, dtype=np.float64).reshape(len(per_class), len(keys))
    out: dict[str, float | None] = {}
    for t, key in enumerate(keys):
        column = stacked[:, t]
        out[key] = float(np.nanmean(column)) if np.isfinite(column).any() else None
    return out


def _mean_ap(per_class: list[np.ndarray]) -> float:
    """Mean over classes and thresholds, classes without positives left out."""
    stacked = np.array(per_class, dtype=np.float64)
    return float(np.nanmean(stacked)) if np.isfinite(stacked).any() else 0.0


# --- false positives -------------------------------------------------------------------------


def error_types(
    table: GroundTruthTable, matched: np.ndarray, thresholds: np.ndarray, members: np.ndarray
):
    """Type [N, T] of the detections ``members`` at every threshold (``ERROR_TYPES``
    codes; other rows stay background).

    An unmatched detection is compared with the ground-truth instance of its video (any
    class) that it overlaps most; a video without ground truth makes it background.
    """
    types = np.full(matched.shape, BACKGROUND, dtype=np.int64)
    types[matched >= 0] = TP
    rows = members[(matched[members] < 0).any(axis=1)]
    top, best = table.best_overlap(rows)
    same = np.zeros(rows.size, dtype=bool)
    found = best >= 0
    same[found] = table.gt_class[best[found]] == table.det_class[rows[found]]
    top, same = top[:, None], same[:, None]
    above = top >= thresholds[None, :]
    near = ~above & (top >= MIN_TIOU)
    code = np.where(above, np.where(same, DOUBLE, WRONG_LABEL), BACKGROUND)
    code = np.where(near, np.where(same, LOCALIZATION, CONFUSION), code)
    types[rows] = np.where(matched[rows] >= 0, TP, code)
    return types


def false_positive_analysis(
    table: GroundTruthTable, matched: np.ndarray, thresholds: np.ndarray, keys: list[str]
) -> dict:
    rankings = class_rankings(table)
    npos = table.positives()
    limited = [r[: LIMIT_FACTOR * npos[c]] for c, r in enumerate(rankings)]
    kept = np.concatenate([*limited, np.zeros(0, dtype=np.int64)])
    types = error_types(table, matched, thresholds, kept)
    counts = {key: _type_counts(types[kept, t]) for t, key in enumerate(keys)}
    fractions = _fractions(types, kept, keys)
    base, gains = _gains_by_removal(table, matched, types, limited, npos)
    nbar = table.average_instances_per_class
    top = [normalized_ap(matched[r] >= 0, npos[c], nbar) for c, r in enumerate(limited)]
    mAP_N = _per_threshold(top, keys)  # noqa: N806 - the metric's name
    return {
        "limit_factor": LIMIT_FACTOR,
        "min_tiou": MIN_TIOU,
        "detections": int(kept.size),
        "counts": counts,
        "fractions": fractions,
        "by_rank": _rank_slices(types, limited, npos, keys),
        "average_mAP_N": base,
        "average_mAP_N_gain": gains,
        "mAP_N": mAP_N,
    }


def _type_counts(codes: np.ndarray) -> dict[str, int]:
    counted = np.bincount(codes, minlength=len(ERROR_TYPES))
    return {name: int(counted[code]) for code, name in enumerate(ERROR_TYPES)}


def _fractions(types: np.ndarray, members: np.ndarray, keys: list[str]) -> dict:
    """Share of each type per threshold and their mean over thresholds ("avg")."""
    out = {}
    for t, key in enumerate(keys):
        counts = np.bincount(types[members, t], minlength=len(ERROR_TYPES))
        share = counts / members.size if members.size else np.zeros(len(ERROR_TYPES))
        out[key] = dict(zip(ERROR_TYPES, (float(v) for v in share), strict=True))
    out["avg"] = {name: float(np.mean([out[k][name] for k in keys])) for name in ERROR_TYPES}
    return out


def _rank_slices(types, limited, npos, keys) -> list[dict]:
    """Slice k: ranks [(k-1) G, k G) of every class, pooled (not cumulative)."""
    slices = []
    for k in range(1, LIMIT_FACTOR + 1):
        parts = [r[(k - 1) * npos[c] : k * npos[c]] for c, r in enumerate(limited)]
        members = np.concatenate([*parts, np.zeros(0, dtype=np.int64)])
        entry = {"slice": f"{k}G", "detections": int(members.size)}
        # a slice no class reaches holds no detections: no shares (null), not zeros
        entry["fractions"] = _fractions(types, members, keys)["avg"] if members.size else None
        slices.append(entry)
    return slices


def _gains_by_removal(table, matched, types, limited, npos) -> tuple[float, dict[str, float]]:
    """Average-mAP_N of the top-10G detections, and its change without each error type."""
    nbar = table.average_instances_per_class
    hits = matched >= 0
    base = _mean_ap([normalized_ap(hits[r], npos[c], nbar) for c, r in enumerate(limited)])
    codes = np.array([code for code in range(len(ERROR_TYPES)) if code != TP])
    per_class = np.full((len(limited), hits.shape[1], codes.size), np.nan)
    for c, ranked in enumerate(limited):
        if npos[c] == 0:
            continue
        shape = (ranked.size, hits.shape[1] * codes.size)
        flags = np.repeat(hits[ranked][:, :, None], codes.size, axis=2).reshape(shape)
        kept = (types[ranked][:, :, None] != codes).reshape(shape)
        per_class[c] = ap_without(flags, kept, npos[c], nbar).reshape(-1, codes.size)
    gains = {
        ERROR_TYPES[code]: _mean_ap(list(per_class[:, :, k])) - base for k, code in enumerate(codes)
    }
    return base, gains


# --- false negatives and sensitivity ---------------------------------------------------------


def false_negative_analysis(
    table: GroundTruthTable, matched: np.ndarray, keys: list[str], bin_set: str
) -> dict:
    kept = _drop_low_precision(table, matched, FN_MIN_NORMALIZED_PRECISION)
    found = np.zeros((table.gt_class.size, len(keys)), dtype=bool)
    for t in range(len(keys)):
        ids = kept[:, t][kept[:, t] >= 0]
        found[ids, t] = True
    out: dict = {"min_normalized_precision": FN_MIN_NORMALIZED_PRECISION}
    overall = (~found).mean(axis=0) if found.shape[0] else np.zeros(len(keys))
    out["missed_fraction"] = float(overall.mean())
    for name in CHARACTERISTICS:
        bins = BIN_SETS[bin_set][name]
        index = bin_index(table.characteristic(name), bins)
        rows = []
        for b, (label, span) in enumerate(zip(bins.names, bins.ranges(), strict=True)):
            inside = index == b
            missed = (~found[inside]).mean(axis=0) if inside.any() else None
            rows.append(
                {
                    "bin": label,
                    "range": span,
                    "instances": int(inside.sum()),
                    "missed_fraction": None if missed is None else float(missed.mean()),
                    "missed_fraction_per_tiou": None
                    if missed is None
                    else dict(zip(keys, (float(v) for v in missed), strict=True)),
                }
            )
        out[name] = rows
    return out


def _drop_low_precision(table, matched: np.ndarray, minimum: float) -> np.ndarray:
    """Matches left after unmatching detections whose normalized precision is <= minimum
    (only a match can be unmatched, so only the rows matched somewhere are looked at)."""
    kept = matched.copy()
    npos, nbar = table.positives(), table.average_instances_per_class
    for c, (position, ids) in enumerate(_matched_rows(table, matched)):
        if position.size == 0 or npos[c] == 0:
            continue
        tp_sum = np.cumsum(ids >= 0, axis=0, dtype=np.float64)
        fp_sum = (position[:, None] + 1.0) - tp_sum  # the false positives so far, exactly
        recall = tp_sum / npos[c]
        precision = recall * nbar / (recall * nbar + fp_sum)
        rows, cols = np.nonzero(precision <= minimum)
        kept[class_rankings(table)[c][position[rows]], cols] = -1
    return kept


def _matched_rows(table, matched: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per class: the ranks of its detections matched at some threshold, and their
    matches [m, T] (every other detection is a false positive at every threshold)."""
    anywhere = (matched >= 0).any(axis=1)
    out = []
    for ranked in class_rankings(table):
        position = np.flatnonzero(anywhere[ranked])
        out.append((position, matched[ranked[position]]))
    return out


def sensitivity_analysis(
    table: GroundTruthTable, matched: np.ndarray, keys: list[str], bin_set: str
) -> dict:
    nbar, npos = table.average_instances_per_class, table.positives()
    rows_matched = _matched_rows(table, matched)
    per_class = [
        sparse_ap(ids >= 0, np.ones(ids.shape, bool), position, npos[c], nbar)
        if npos[c]
        else np.full(len(keys), np.nan)
        for c, (position, ids) in enumerate(rows_matched)
    ]
    base = _mean_ap(per_class)
    out: dict = {"average_mAP_N": base, "mAP_N": _per_threshold(per_class, keys)}
    for name in CHARACTERISTICS:
        bins = BIN_SETS[bin_set][name]
        index = bin_index(table.characteristic(name), bins)
        aps, counts = _bin_aps(table, rows_matched, index, len(bins.names), len(keys))
        rows = []
        for b, (label, span) in enumerate(zip(bins.names, bins.ranges(), strict=True)):
            value = _bin_summary(aps[counts[:, b] > 0, b], keys)
            rows.append(
                {"bin": label, "range": span, "instances": int((index == b).sum()), **value}
            )
        out[name] = rows
    out["summary"] = {name: _spread(out[name], base) for name in CHARACTERISTICS}
    return out


def _spread(rows: list[dict], base: float) -> dict:
    """DETAD's right panel: per characteristic, the lowest and highest bin average-mAP_N
    against the overall one (bins without instances of any class left out)."""
    found = [r for r in rows if r["average_mAP_N"] is not None]
    if not found:
        return {"base": base, "min": None, "max": None, "min_bin": None, "max_bin": None}
    low = min(found, key=lambda r: r["average_mAP_N"])
    high = max(found, key=lambda r: r["average_mAP_N"])
    return {
        "base": base,
        "min": low["average_mAP_N"],
        "max": high["average_mAP_N"],
        "min_bin": low["bin"],
        "max_bin": high["bin"],
        "max_minus_base": high["average_mAP_N"] - base,
        "base_minus_min": base - low["average_mAP_N"],
    }


def _bin_aps(table, rows_matched, index: np.ndarray, bins: int, thresholds: int):
    """AP_N [C, B, T] of every class in every bin, with only the bin's instances as ground
    truth, and the class's instances per bin [C, B] (AP NaN where 0).

    Detections matched to an instance outside the bin (at any threshold) are left out;
    unmatched ones stay (they are false positives either way). Only the detections
    matched at some threshold (``rows_matched``, :func:`_matched_rows`) enter the arrays
    (:func:`sparse_ap`).
    """
    nbar = table.average_instances_per_class
    counts = np.zeros((len(rows_matched), bins), dtype=np.int64)
    inside = index >= 0
    np.add.at(counts, (table.gt_class[inside], index[inside]), 1)
    aps = np.full((len(rows_matched), bins, thresholds), np.nan)
    for c, (position, ids) in enumerate(rows_matched):
        matched_bin = np.where(ids >= 0, index[np.maximum(ids, 0)], -2)
        in_bin = matched_bin[:, None, :] == np.arange(bins)[:, None]
        kept = ((ids[:, None, :] < 0) | in_bin).all(axis=2)
        shape = (position.size, bins * thresholds)
        hits = np.broadcast_to((ids >= 0)[:, None, :], (position.size, bins, thresholds))
        rows = np.broadcast_to(kept[:, :, None], hits.shape).reshape(shape)
        npos = np.repeat(np.maximum(counts[c], 1), thresholds)
        ap = sparse_ap(hits.reshape(shape), rows, position, npos, nbar)
        aps[c] = ap.reshape(bins, thresholds)
        aps[c][counts[c] == 0] = np.nan
    return aps, counts


def sparse_ap(hits, kept, position, npos, nbar: float) -> np.ndarray:
    """:func:`ap_without` given only some rows of the ranking: ``position`` [m] (their
    ranks, increasing) holds every row that is a hit or left out somewhere; every other
    row is a kept false positive in every column.

    Only the hits carry a precision (the rest 0): a false positive's precision is below
    the last hit's before it (same recall, more false positives), so it never raises the
    envelope at a hit, and recall moves only at hits. The counts at the hits, and so the
    AP, are those of the full arrays.
    """
    hit = hits & kept
    tp_sum = np.cumsum(hit, axis=0, dtype=np.float64)
    left_out = np.cumsum(~kept, axis=0, dtype=np.float64)
    fp_sum = (position[:, None] + 1.0) - left_out - tp_sum
    recall = tp_sum / npos
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(hit, recall * nbar / (recall * nbar + fp_sum), 0.0)
    return interpolated_ap(recall, precision)


def _bin_summary(per_class: np.ndarray, keys: list[str]) -> dict:
    """Average-mAP_N and mAP_N per threshold of one bin over the classes it holds."""
    if not len(per_class):
        return {"average_mAP_N": None, "mAP_N": dict.fromkeys(keys), "classes": 0}
    return {
        "average_mAP_N": _mean_ap(list(per_class)),
        "mAP_N": _per_threshold(list(per_class), keys),
        "classes": len(per_class),
    }
