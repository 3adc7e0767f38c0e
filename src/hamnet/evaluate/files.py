"""File-level evaluation, the printed table, and tIoU-list parsing (for the CLI)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from hamnet import argcheck
from hamnet.data.annotations import AnnotationSet, load_gt_json
from hamnet.errors import ConfigError, EvaluationInputError
from hamnet.evaluate.detection_map import (
    MAX_THRESHOLDS,
    DetectionResult,
    evaluate_detections,
    load_ambiguous,
)
from hamnet.evaluate.protocols import protocol_title
from hamnet.localize.detections import DetectionColumns, read_detection_columns
from hamnet.timing import RELEASED_SNIPPET_SECONDS

THUMOS_TIOU = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def evaluate_files(
    gt_path: str | Path,
    pred_path: str | Path,
    *,
    subset: str | None = None,
    tiou: Sequence[float] = THUMOS_TIOU,
    protocol: str = "anet",
    ambiguous_path: str | Path | None = None,
    snippet_seconds: float = RELEASED_SNIPPET_SECONDS,
) -> DetectionResult:
    """Evaluate a detections file against a ground-truth JSON file.

    ``subset`` None: inferred when every detection's video lies in one subset, else an
    error; more than half of the detections' videos unknown to the ground truth is an
    error (see :mod:`hamnet.evaluate.scope`). The result records what was scored
    (``scope``) and the files (``inputs``: path, size and SHA-256 of each, and the
    software). Ambiguous spans (thumos14, wtalc only): ``ambiguous_path`` if given, else
    the ground truth's own ``"ambiguous"`` key, else none.
    """
    argcheck.check_path(gt_path, "gt_path")
    argcheck.check_path(pred_path, "pred_path")
    argcheck.check_path(ambiguous_path, "ambiguous_path", optional=True)
    argcheck.check_text(subset, "subset", optional=True)
    argcheck.check_numbers(tiou, "tiou")
    argcheck.check_snippet_seconds(snippet_seconds)
    record = RecordInBackground(gt_path, pred_path, ambiguous_path)
    ground_truth, detections = read_eval_files(gt_path, pred_path)
    ambiguous = load_ambiguous(ambiguous_path) if ambiguous_path is not None else None
    if ambiguous:
        check_ambiguous_belongs(ambiguous_path, ambiguous, ground_truth)
    result = evaluate_detections(
        ground_truth,
        detections,
        tiou=tiou,
        protocol=protocol,
        subset=subset,
        ambiguous=ambiguous,
        snippet_seconds=snippet_seconds,
    )
    result.inputs = record.result()
    return result


class RecordInBackground:
    """:func:`input_record` made in a thread while the files are parsed: reading and
    hashing (25 MB of detections: 20 ms) release the GIL, and so does waiting for git, so
    on a free second core the record costs no wall time. Any failure there is left to
    :meth:`result`, which makes the record again in the caller (whose error is reported)."""

    def __init__(self, *paths) -> None:
        import threading

        import hamnet.provenance  # noqa: F401  (imported before the thread starts)

        self._paths = paths
        self._record: dict | None = None
        self._thread = threading.Thread(target=self._make, daemon=True)
        self._thread.start()

    def _make(self) -> None:
        try:
            self._record = input_record(*self._paths)
        except Exception:  # redone in result(), whose error is the one reported
            self._record = None

    def result(self) -> dict:
        self._thread.join()
        return self._record if self._record is not None else input_record(*self._paths)


def check_ambiguous_belongs(path, ambiguous: dict, ground_truth: AnnotationSet) -> None:
    """An ambiguous-spans file naming none of the GT's videos belongs to another dataset
    (its spans would silently do nothing)."""
    known = {video.name for video in ground_truth.videos}
    if known.isdisjoint(ambiguous):
        theirs = ", ".join(sorted(ambiguous)[:3])
        ours = ", ".join(sorted(known)[:3])
        raise EvaluationInputError(
            f"{path}: names none of the ground truth's videos (it names {theirs} ...; the "
            f"ground truth holds {ours} ...); is it the file of another dataset?"
        )


def read_eval_files(
    gt_path: str | Path, pred_path: str | Path
) -> tuple[AnnotationSet, DetectionColumns]:
    """Ground truth and detections (column-wise, labels checked against the classes)."""
    ground_truth = load_gt_json(gt_path)
    return ground_truth, read_detection_columns(pred_path, classes=ground_truth.classes)


def input_record(
    gt_path: str | Path, pred_path: str | Path, ambiguous_path: str | Path | None = None
) -> dict:
    """The files an evaluation read and the software that scored them (no torch import:
    ``hamnet eval`` stays a light process)."""
    import platform

    import numpy

    from hamnet import __version__
    from hamnet.provenance import file_fingerprint, git_commit

    record = {"ground_truth": file_fingerprint(gt_path), "detections": file_fingerprint(pred_path)}
    if ambiguous_path is not None:
        record["ambiguous"] = file_fingerprint(ambiguous_path)
    software = {"hamnet": __version__, "python": platform.python_version()}
    software["numpy"] = numpy.__version__
    commit = git_commit()
    if commit:
        software["git_commit"] = commit
    record["software"] = software
    return record


def format_table(result: DetectionResult, per_class: bool = False) -> str:
    """Plain-text table: mAP (%) per tIoU and their mean; optionally one row per class."""
    title = protocol_title(result.protocol)
    label_width = max([8, *(len(name) for name in result.per_class)]) if per_class else 8
    header = f"{'tIoU':<{label_width}}" + "".join(f"{t:>8.2f}" for t in result.tiou) + f"{'avg':>8}"
    lines = [f"Detection mAP (%), protocol {result.protocol}: {title}"]
    if result.scope:
        lines.append(scope_line(result.scope))
    lines.append(header)
    lines.append(_row("mAP", result.mAP, label_width))
    if per_class:
        lines.append("-" * len(header))
        lines.extend(_row(name, aps, label_width) for name, aps in result.per_class.items())
    return "\n".join(lines)


def scope_line(scope: dict) -> str:
    """One line saying what was scored: subset, videos, GT instances, detections."""
    how = " (inferred from the detections)" if scope.get("subset_inferred") else ""
    line = (
        f"subset {scope['subset']!r}{how}: {scope['videos']} videos, "
        f"{scope['gt_instances']} ground-truth instances, {scope['detections_used']} of "
        f"{scope['detections']} detections in these videos"
    )
    if scope.get("unknown_videos"):
        line += f"; {scope['unknown_videos']} detection video(s) unknown to the ground truth"
    if "ambiguous_spans" in scope:
        spans = scope["ambiguous_spans"]
        line += f"; {spans} ambiguous span(s) ignored" if spans else "; no ambiguous spans given"
    return line


def _row(label: str, values: Sequence[float], width: int) -> str:
    mean = sum(values) / len(values) if values else 0.0
    cells = "".join(f"{100 * v:>8.2f}" for v in values)
    return f"{label:<{width}}{cells}{100 * mean:>8.2f}"


def parse_tiou(text: str) -> list[float]:
    """``"0.1:0.7:0.1"`` (start:stop:step, stop included) or ``"0.3,0.5"`` -> thresholds.

    Values are rounded to 10 decimals so a range yields 0.3, not 0.30000000000000004.
    """
    text = text.strip()
    try:
        if ":" in text:
            start, stop, step = (float(part) for part in text.split(":"))
            if not step > 0 or stop < start:
                raise ValueError
            count = int(math.floor((stop - start) / step + 1e-9)) + 1
            if count > MAX_THRESHOLDS:
                raise ConfigError(
                    f"tIoU {text!r}: {count} thresholds; at most {MAX_THRESHOLDS} are allowed"
                )
            values = [round(start + i * step, 10) for i in range(count)]
        else:
            values = [float(part) for part in text.split(",") if part.strip()]
    except (ValueError, OverflowError):
        raise ConfigError(
            f"tIoU {text!r}: expected start:stop:step (e.g. 0.1:0.7:0.1) or a list (0.3,0.5)"
        ) from None
    if not values or not all(0 < v <= 1 for v in values):
        raise ConfigError(f"tIoU {text!r}: thresholds must lie in (0, 1]")
    if len(values) > MAX_THRESHOLDS:
        raise ConfigError(f"tIoU {text!r}: at most {MAX_THRESHOLDS} thresholds are allowed")
    return values
