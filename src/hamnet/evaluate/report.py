"""File-level evaluation, the printed table, and tIoU-list parsing (for the CLI)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from hamnet.data.annotations import load_gt_json
from hamnet.errors import ConfigError
from hamnet.evaluate.detection_map import DetectionResult, evaluate_detections, load_ambiguous
from hamnet.localize.detections import load_detections
from hamnet.timing import RELEASED_SNIPPET_SECONDS

THUMOS_TIOU = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
PROTOCOL_TITLES = {
    "anet": "ActivityNet protocol (official eval_detection.py rules)",
    "thumos14": "THUMOS14 protocol (official TH14evaldet rules, ambiguous applied)",
    "wtalc": "W-TALC protocol (detectionMAP.py rules)",
}


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

    Ambiguous spans (thumos14, wtalc only): ``ambiguous_path`` if given, else the ground
    truth's own ``"ambiguous"`` key, else none.
    """
    ground_truth = load_gt_json(gt_path)
    detections = load_detections(pred_path, classes=ground_truth.classes)
    ambiguous = load_ambiguous(ambiguous_path) if ambiguous_path is not None else None
    return evaluate_detections(
        ground_truth,
        detections,
        tiou=tiou,
        protocol=protocol,
        subset=subset,
        ambiguous=ambiguous,
        snippet_seconds=snippet_seconds,
    )


def format_table(result: DetectionResult, per_class: bool = False) -> str:
    """Plain-text table: mAP (%) per tIoU and their mean; optionally one row per class."""
    title = PROTOCOL_TITLES.get(result.protocol, result.protocol)
    label_width = max([8, *(len(name) for name in result.per_class)]) if per_class else 8
    header = f"{'tIoU':<{label_width}}" + "".join(f"{t:>8.2f}" for t in result.tiou) + f"{'avg':>8}"
    lines = [f"Detection mAP (%), protocol {result.protocol}: {title}", header]
    lines.append(_row("mAP", result.mAP, label_width))
    if per_class:
        lines.append("-" * len(header))
        lines.extend(_row(name, aps, label_width) for name, aps in result.per_class.items())
    return "\n".join(lines)


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
            values = [round(start + i * step, 10) for i in range(count)]
        else:
            values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(
            f"tIoU {text!r}: expected start:stop:step (e.g. 0.1:0.7:0.1) or a list (0.3,0.5)"
        ) from None
    if not values or not all(0 < v <= 1 for v in values):
        raise ConfigError(f"tIoU {text!r}: thresholds must lie in (0, 1]")
    return values
