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
from hamnet.localize.detections import Detection

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
    detections: Sequence[Detection],
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
    for i in members[(matched[members] < 0).any(axis=1)]:
        members = table.gt_of_video(int(table.det_video[i]))
        if members.size == 0:
            continue  # no ground truth in this video: background at every threshold
        overlap = table.iou(i, members)
        best = int(np.argmax(overlap))
        top, same = overlap[best], table.gt_class[members[best]] == table.det_class[i]
        for t, threshold in enumerate(thresholds):
            if matched[i, t] >= 0:
                continue
            if top >= threshold:
                types[i, t] = DOUBLE if same else WRONG_LABEL
            elif top >= MIN_TIOU:
                types[i, t] = LOCALIZATION if same else CONFUSION
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
    return {
        "limit_factor": LIMIT_FACTOR,
        "min_tiou": MIN_TIOU,
        "detections": int(kept.size),
        "counts": counts,
        "fractions": fractions,
        "by_rank": _rank_slices(types, limited, npos, keys),
        "average_mAP_N": base,
        "average_mAP_N_gain": gains,
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
        entry["fractions"] = _fractions(types, members, keys)["avg"]
        slices.append(entry)
    return slices


def _gains_by_removal(table, matched, types, limited, npos) -> tuple[float, dict[str, float]]:
    """Average-mAP_N of the top-10G detections, and its change without each error type."""
    nbar = table.average_instances_per_class
    hits = matched >= 0
    base = _mean_ap([normalized_ap(hits[r], npos[c], nbar) for c, r in enumerate(limited)])
    gains = {}
    for code, name in enumerate(ERROR_TYPES):
        if code == TP:
            continue
        per_class = []
        for c, ranked in enumerate(limited):
            aps = [
                normalized_ap(hits[ranked, t][types[ranked, t] != code][:, None], npos[c], nbar)[0]
                for t in range(hits.shape[1])
            ]
            per_class.append(aps)
        gains[name] = _mean_ap(per_class) - base
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
    """Matches left after unmatching detections whose normalized precision is <= minimum."""
    kept = matched.copy()
    npos, nbar = table.positives(), table.average_instances_per_class
    for c, ranked in enumerate(class_rankings(table)):
        if ranked.size == 0 or npos[c] == 0:
            continue
        _, precision = _curves(matched[ranked] >= 0, npos[c], nbar)
        rows, cols = np.nonzero(precision <= minimum)
        kept[ranked[rows], cols] = -1
    return kept


def sensitivity_analysis(
    table: GroundTruthTable, matched: np.ndarray, keys: list[str], bin_set: str
) -> dict:
    nbar, npos = table.average_instances_per_class, table.positives()
    rankings = class_rankings(table)
    base = _mean_ap([normalized_ap(matched[r] >= 0, npos[c], nbar) for c, r in enumerate(rankings)])
    out: dict = {"average_mAP_N": base}
    for name in CHARACTERISTICS:
        bins = BIN_SETS[bin_set][name]
        index = bin_index(table.characteristic(name), bins)
        rows = []
        for b, (label, span) in enumerate(zip(bins.names, bins.ranges(), strict=True)):
            value = _bin_map_n(table, matched, rankings, index == b, nbar)
            rows.append(
                {"bin": label, "range": span, "instances": int((index == b).sum()), **value}
            )
        out[name] = rows
    return out


def _bin_map_n(table, matched, rankings, in_bin: np.ndarray, nbar: float) -> dict:
    """Average-mAP_N with only the bin's instances as ground truth.

    Detections matched to an instance outside the bin (at any threshold) are left out;
    unmatched ones stay (they are false positives either way). Classes without an
    instance in the bin are skipped.
    """
    per_class = []
    for c, ranked in enumerate(rankings):
        npos = int(np.count_nonzero(in_bin & (table.gt_class == c)))
        if npos == 0:
            continue
        ids = matched[ranked]
        keep = np.all((ids < 0) | in_bin[np.maximum(ids, 0)], axis=1)
        per_class.append(normalized_ap(ids[keep] >= 0, npos, nbar))
    if not per_class:
        return {"average_mAP_N": None, "classes": 0}
    return {"average_mAP_N": _mean_ap(per_class), "classes": len(per_class)}
