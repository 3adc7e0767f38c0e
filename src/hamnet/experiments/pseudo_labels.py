"""Pseudo ground truth from a teacher: a trained run's detections (or a detections file)
on chosen subsets, kept by :class:`hamnet.localize.pseudo_labels.PseudoLabelRules`, with
where they came from and their own mAP against the real labels.

Pseudo labels of the test subset are made only when asked (``hamnet pseudo-label
--subset train,test``); a student trains on them only with ``train.allow_test_subset``,
and its results then say so (:func:`includes_test_subset`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from hamnet.config import Config
from hamnet.data.annotations import AnnotationSet
from hamnet.data.layout import find_dataset, load_annotations
from hamnet.errors import ConfigError, DataError
from hamnet.evaluate.detection_map import evaluate_detections
from hamnet.io import read_json
from hamnet.localize.detections import Detection, load_detections
from hamnet.localize.pseudo_labels import (
    PseudoLabelRules,
    as_detections,
    pseudo_ground_truth,
    select_pseudo_labels,
)
from hamnet.provenance import file_fingerprint, now_iso

log = logging.getLogger(__name__)

SUBSET_ROLES = ("train", "test")


def subset_names(requested: Sequence[str], config: Config) -> list[str]:
    """``train`` / ``test`` (the run's ``data.train_subset`` / ``data.test_subset``) or
    subset names as the annotations spell them; each once, in the order given."""
    roles = {"train": config.data.train_subset, "test": config.data.test_subset}
    names = []
    for item in requested:
        name = roles.get(item.strip().lower(), item.strip())
        if not name:
            raise ConfigError("--subset: an empty subset name")
        if name not in names:
            names.append(name)
    return names


def checkpoint_of(run: Path) -> Path:
    found = next((p for p in (run / "last.pt", run / "best.pt") if p.is_file()), None)
    if found is None:
        raise ConfigError(f"{run}: no last.pt or best.pt (not a trained run folder)")
    return found


def data_root_of(run: Path) -> Path:
    """The dataset root the run was trained on (its run.json)."""
    record = read_json(run / "run.json", ConfigError) if (run / "run.json").is_file() else {}
    root = (record.get("data") or {}).get("root") if isinstance(record, dict) else None
    if not root:
        raise ConfigError(f"{run}: run.json names no dataset root; give it with --data")
    return Path(root)


def run_detections(run: Path, data_root: Path, subsets: Sequence[str], work: Path) -> Path:
    """The run's checkpoint tested on each of ``subsets``; one detections file of all."""
    from hamnet.infer.tester import evaluate_checkpoint
    from hamnet.localize.detections import save_detections

    checkpoint = checkpoint_of(run)
    found: list[Detection] = []
    work.mkdir(parents=True, exist_ok=True)
    for subset in subsets:
        out = work / f"{run.name}-{subset}.json"
        evaluate_checkpoint(checkpoint, data_root, out, subset=subset, progress=False)
        found.extend(load_detections(out))
    merged = work / f"{run.name}-detections.json"
    save_detections(merged, found)
    return merged


def make_pseudo_labels(
    detections_file: Path,
    annotations: AnnotationSet,
    subsets: Sequence[str],
    rules: PseudoLabelRules,
    config: Config,
    teacher: dict,
) -> dict:
    """The pseudo ground-truth document of ``subsets`` with its provenance and quality."""
    known = {video.subset for video in annotations.videos}
    missing = [s for s in subsets if s not in known]
    if missing:
        raise ConfigError(f"subset {missing[0]!r} is not in the annotations ({sorted(known)})")
    wanted = {v.name for v in annotations.videos if v.subset in subsets}
    every = load_detections(detections_file, annotations.classes)
    detections = [d for d in every if d.video in wanted]
    kept = select_pseudo_labels(detections, rules)
    provenance = {
        "made": now_iso(),
        "teacher": teacher,
        "detections": str(detections_file),
        "subsets": list(subsets),
        "includes_test_subset": config.data.test_subset in subsets,
        "rules": {"name": "FuSTAL", **rules.to_dict()},
        "detections_in": len(detections),
        "kept": sum(len(rows) for rows in kept.values()),
    }
    document = pseudo_ground_truth(kept, annotations, subsets, provenance)
    document["quality"] = quality(document, annotations, subsets, config)
    return document


def quality(document: dict, annotations: AnnotationSet, subsets, config: Config) -> dict:
    """The pseudo labels' own detection mAP against the real labels, per subset."""
    scored = as_detections(document)
    out = {}
    for subset in subsets:
        result = evaluate_detections(
            annotations,
            scored,
            tiou=config.eval.tiou,
            protocol=config.eval.protocol,
            subset=subset,
            unknown_videos="count",
            snippet_seconds=config.data.snippet_seconds,
        )
        out[subset] = {
            "protocol": config.eval.protocol,
            "tiou": list(config.eval.tiou),
            "mAP": [round(v, 4) for v in result.mAP_percent],
            "average": round(result.average_mAP_percent, 4),
            "videos": sum(1 for v in annotations.videos if v.subset == subset),
        }
    return out


def pseudo_labels_from_run(
    run: Path,
    subsets: Sequence[str],
    rules: PseudoLabelRules,
    work: Path,
    data_root: Path | None = None,
) -> dict:
    """``hamnet pseudo-label RUN``: the run's detections on ``subsets`` as pseudo labels."""
    from hamnet.weights.trained import load_trained

    run = Path(run).resolve()
    if not run.is_dir():
        raise ConfigError(f"{run}: no such run folder")
    checkpoint = checkpoint_of(run)
    config = load_trained(checkpoint).config
    root = Path(data_root) if data_root is not None else data_root_of(run)
    names = subset_names(subsets, config)
    annotations = load_annotations(find_dataset(root))
    found = run_detections(run, root, names, work)
    teacher = {
        "run": str(run),
        "method": config.method,
        "checkpoint": str(checkpoint),
        "checkpoint_sha256": file_fingerprint(checkpoint)["sha256"],
        "data": str(root),
    }
    return make_pseudo_labels(found, annotations, names, rules, config, teacher)


def is_pseudo_labels(path: Path) -> bool:
    """A ground-truth style file (``hamnet pseudo-label``'s, or one made elsewhere with a
    ``database`` of videos): taken as it is; anything else is read as detections."""
    raw = read_json(path, DataError)
    return isinstance(raw, dict) and isinstance(raw.get("database"), dict)


def includes_test_subset(document: dict) -> bool:
    return bool((document.get("provenance") or {}).get("includes_test_subset"))


def summary_lines(document: dict) -> list[str]:
    """What results.md says of a run's pseudo labels: teacher, rules, counts, mAP."""
    provenance = document.get("provenance") or {}
    teacher = provenance.get("teacher") or {}
    rules = provenance.get("rules") or {}
    lines = [
        f"pseudo labels: {provenance.get('kept', '?')} of {provenance.get('detections_in', '?')} "
        f"teacher detections kept ({rules.get('name', '?')} rules: {_rules_text(rules)})",
        f"teacher: {teacher.get('method', '?')} ({teacher.get('run') or teacher.get('file', '?')})",
    ]
    for subset, q in (document.get("quality") or {}).items():
        shown = " / ".join(f"{v:.1f}" for v in q["mAP"])
        lines.append(
            f"pseudo labels vs the real labels, {subset} ({q['protocol']} protocol, tIoU "
            f"{q['tiou'][0]}-{q['tiou'][-1]}): mAP {shown}, average {q['average']:.2f}"
        )
    if includes_test_subset(document):
        lines.append(
            "these pseudo labels include the test subset: a student trains on them only with "
            "train.allow_test_subset=true, and is then labelled"
        )
    return lines


def _rules_text(rules: dict) -> str:
    """The rules in words, in the order applied (the optional ones only when on)."""
    parts = [f"per-class NMS at IoU {rules['nms_iou']}"] if rules.get("nms_iou") else []
    parts.append(
        f"score > {rules.get('min_score')}, IoU sum with the others >= "
        f"{rules.get('min_overlap_sum')}"
    )
    if rules.get("merge_iou"):
        parts.append(f"merged where hull IoU > {rules['merge_iou']}")
    return "; ".join(parts)
