"""Detections written by other toolkits -> hamnet's detections file.

``pmil``: the proposal files of P-MIL (Ren et al., CVPR 2023), e.g. CO2-Net's
``proposals/detection_result_base_{train,test}.json``:
``{"version": str, "results": {video: [{"score": float, "segment": [start_s, end_s],
"label": class name}, ...]}, "external_data": ... (optional)}``. Times are seconds (P-MIL's
``dataset.py`` multiplies them by 25/16 to get snippets); labels are class names of the
dataset's class list. That is the structure of hamnet's own file, so converting means
checking every entry against the dataset (known video and class, finite numbers, inside the
video) and writing it with hamnet's ``version`` and ``external_data``, file order kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hamnet.data.annotations import AnnotationSet, load_gt_json
from hamnet.errors import ConfigError, EvaluationInputError
from hamnet.io import parse_json
from hamnet.localize.detections import DetectionColumns, read_detection_columns, save_detections
from hamnet.timing import RELEASED_SNIPPET_SECONDS

FORMATS = ("pmil",)
PMIL_LAYOUT = (
    '{"version": ..., "results": {video: [{"segment": [start_s, end_s], "label": class name, '
    '"score": number}, ...]}}'
)
# a detection's last snippet may end past the duration, which comes from another decoder
END_SLACK_SECONDS = RELEASED_SNIPPET_SECONDS


@dataclass(frozen=True)
class Conversion:
    """What was converted: counts, and where the file's version string came from."""

    detections: int
    videos: int
    source_version: str | None


def convert_detections(
    in_path: str | Path, out_path: str | Path, ground_truth: AnnotationSet, fmt: str = "pmil"
) -> Conversion:
    """Check ``in_path`` (format ``fmt``) against ``ground_truth`` and write hamnet's
    detections file at ``out_path`` atomically; nothing is written when a check fails."""
    if fmt not in FORMATS:
        raise EvaluationInputError(f"unknown detections format {fmt!r} (known: {list(FORMATS)})")
    in_path = Path(in_path)
    version, external = read_pmil_header(in_path)
    columns = read_detection_columns(in_path, classes=ground_truth.classes)
    check_against_dataset(in_path, columns, ground_truth)
    origin = {"format": fmt, "file": in_path.name, "version": version}
    if external is not None:
        origin["external_data"] = external
    save_detections(out_path, columns.to_detections(), extra={"converted_from": origin})
    return Conversion(len(columns), len(columns.videos), version)


def load_ground_truth(data: Path | None = None, gt: Path | None = None) -> AnnotationSet:
    """Annotations from ``gt`` (a ground-truth JSON) or ``data``: a dataset root (any
    layout; features not needed) or an annotation folder itself (``videoname.npy`` in it)."""
    if (data is None) == (gt is None):
        raise ConfigError("name the ground truth: --gt GT.json or --data DATASET_ROOT")
    if gt is not None:
        return load_gt_json(gt)
    from hamnet.data.layout import find_dataset, load_annotations
    from hamnet.data.released import load_released_annotations

    if (Path(data) / "videoname.npy").is_file():
        return load_released_annotations(Path(data))
    return load_annotations(find_dataset(Path(data)))


def read_pmil_header(path: Path) -> tuple[str | None, object]:
    """The file's ``version`` and ``external_data``; one error line when the file is
    empty, not JSON, or not laid out as P-MIL's (see :data:`PMIL_LAYOUT`)."""
    if path.is_dir():
        raise EvaluationInputError(f"{path}: is a folder, not a detections file")
    if not path.is_file():
        raise EvaluationInputError(f"{path}: file not found")
    data = path.read_bytes()
    if not data.strip():
        raise EvaluationInputError(f"{path}: empty file (expected P-MIL detections {PMIL_LAYOUT})")
    raw = parse_json(data, str(path), EvaluationInputError)
    results = raw.get("results") if isinstance(raw, dict) else None
    if not isinstance(results, dict):
        raise EvaluationInputError(
            f"{path}: not a P-MIL detections file (no 'results' object; expected {PMIL_LAYOUT})"
        )
    version = raw.get("version")
    if version is not None and not isinstance(version, str):
        raise EvaluationInputError(f"{path}: 'version' is not a string ({version!r:.40})")
    if not any(isinstance(entries, list) and entries for entries in results.values()):
        raise EvaluationInputError(f"{path}: holds no detections ('results' has none)")
    return version, raw.get("external_data")


def check_against_dataset(path: Path, columns: DetectionColumns, truth: AnnotationSet) -> None:
    """Every video known to the ground truth, every segment inside its video."""
    known = {video.name: video for video in truth.videos}
    unknown = [name for name in columns.videos if name not in known]
    if unknown:
        raise EvaluationInputError(
            f"{path}: video {unknown[0]!r} is not in the ground truth {truth.source} "
            f"({len(unknown)} of {len(columns.videos)} videos unknown)"
        )
    durations = np.array([known[name].duration for name in columns.videos])[columns.video]
    start, end = columns.segment[:, 0], columns.segment[:, 1]
    outside = np.flatnonzero((start >= durations) | (end > durations + END_SLACK_SECONDS))
    if outside.size:
        first = int(outside[0])
        video = columns.videos[int(columns.video[first])]
        index = first - int(np.searchsorted(columns.video, columns.video[first]))
        raise EvaluationInputError(
            f"{path}: video {video!r}, detection {index}: segment [{start[first]}, "
            f"{end[first]}] lies outside the video (duration {known[video].duration} s; "
            f"{outside.size} such detection(s))"
        )
