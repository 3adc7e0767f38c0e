"""Ground truth in memory: videos, their labels and segments, the class list.

Readers and writers for the ActivityNet-style ground-truth JSON live here; the released
W-TALC ``.npy`` layout is read by :mod:`hamnet.data.released`. This module imports no
torch, so the evaluator can use it alone.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hamnet.errors import DataError
from hamnet.io import atomic_write_json, read_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Segment:
    """One annotated action instance, in seconds."""

    start: float
    end: float
    label: str


@dataclass(frozen=True)
class Video:
    """One video: its subset, duration (s), video-level labels and segments."""

    name: str
    subset: str
    duration: float
    labels: tuple[str, ...]
    segments: tuple[Segment, ...] = ()


@dataclass
class AnnotationSet:
    """All videos of a dataset with its class list (order defines class indices)."""

    classes: list[str]
    videos: list[Video]
    ambiguous: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    source: str = "<memory>"

    def __post_init__(self) -> None:
        self._by_name = {video.name: video for video in self.videos}
        self._class_index = {name: i for i, name in enumerate(self.classes)}

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def video(self, name: str) -> Video:
        try:
            return self._by_name[name]
        except KeyError:
            raise DataError(f"{self.source}: no video named {name!r}") from None

    def subset(self, subset: str) -> list[Video]:
        """Videos of one subset, in file order; an unknown subset is an error."""
        chosen = [video for video in self.videos if video.subset == subset]
        if not chosen:
            known = sorted({video.subset for video in self.videos})
            raise DataError(f"{self.source}: no video in subset {subset!r} (subsets: {known})")
        return chosen

    def class_index(self, label: str) -> int:
        try:
            return self._class_index[label]
        except KeyError:
            raise DataError(f"{self.source}: label {label!r} is not in the class list") from None

    def label_vector(self, video: Video) -> np.ndarray:
        """Multi-hot float32 vector over the classes of the video-level labels."""
        vector = np.zeros(self.num_classes, dtype=np.float32)
        for label in video.labels:
            vector[self.class_index(label)] = 1.0
        return vector


GT_VERSION = "hamnet-gt 1"


def check_video_name(name: object, source: str) -> None:
    """A video name becomes a file name (``--save-cas``, feature files): refuse any that
    could leave its folder (``../x``, ``/abs/x``, ``a/b``) or is empty or not text."""
    if not isinstance(name, str) or not name.strip():
        raise DataError(f"{source}: video name {name!r} is empty or not text")
    if "/" in name or "\\" in name or "\0" in name or name in (".", ".."):
        raise DataError(
            f"{source}: video name {name!r} contains a path separator or is '.'/'..' "
            f"(refused: it would be used as a file name)"
        )


def check_video(video: Video, classes: set[str], source: str) -> int:
    """Raise on an impossible video; return how many segments run past its duration.

    Segments past the end are real (the released THUMOS14 and ActivityNet-1.2 files hold
    30 and 185 of them: their durations come from another decoder), so they are counted
    and logged by the caller, never altered: the evaluator must see the official ground truth.
    """
    check_video_name(video.name, source)
    where = f"{source}: video {video.name!r}"
    if not math.isfinite(video.duration) or video.duration <= 0:
        raise DataError(f"{where}: duration {video.duration!r} is not a positive number")
    for label in video.labels:
        if label not in classes:
            raise DataError(f"{where}: label {label!r} is not in the class list")
    past_end = 0
    for seg in video.segments:
        if seg.label not in classes:
            raise DataError(f"{where}: segment label {seg.label!r} is not in the class list")
        if not (math.isfinite(seg.start) and math.isfinite(seg.end)):
            raise DataError(f"{where}: segment [{seg.start}, {seg.end}] is not finite")
        if seg.start < 0 or seg.end < seg.start:
            raise DataError(
                f"{where}: segment [{seg.start}, {seg.end}] has end < start or a negative time"
            )
        if seg.start >= video.duration or seg.end > video.duration + 1.0:
            past_end += 1
    return past_end


def validate(annotations: AnnotationSet) -> AnnotationSet:
    """Check every video; log (once) how many segments lie past their video's end."""
    classes = set(annotations.classes)
    if len(classes) != len(annotations.classes):
        raise DataError(f"{annotations.source}: the class list has duplicate names")
    seen: set[str] = set()
    past_end = 0
    for video in annotations.videos:
        if video.name in seen:
            raise DataError(f"{annotations.source}: video {video.name!r} appears twice")
        seen.add(video.name)
        past_end += check_video(video, classes, annotations.source)
    if past_end:
        log.warning(
            "%s: %d segment(s) extend past their video's duration; kept unchanged",
            annotations.source,
            past_end,
        )
    return annotations


def to_gt_dict(annotations: AnnotationSet) -> dict:
    """The ActivityNet-style ground-truth dictionary (plus the class list).

    ``version``, ``taxonomy`` and ``database`` are the fields the official ActivityNet
    evaluator requires; ``taxonomy`` lists the classes as leaf nodes of one root.
    """
    database = {}
    for video in annotations.videos:
        database[video.name] = {
            "subset": video.subset,
            "duration": video.duration,
            "labels": list(video.labels),
            "annotations": [
                {"segment": [seg.start, seg.end], "label": seg.label} for seg in video.segments
            ],
        }
    out = {
        "version": GT_VERSION,
        "taxonomy": taxonomy(annotations.classes),
        "database": database,
        "class-list": list(annotations.classes),
    }
    if annotations.ambiguous:
        out["ambiguous"] = {
            name: [list(span) for span in spans] for name, spans in annotations.ambiguous.items()
        }
    return out


def taxonomy(classes: list[str]) -> list[dict]:
    """ActivityNet's taxonomy node list: every class a child of one root node."""
    nodes = [{"nodeId": 0, "nodeName": "Root", "parentId": None, "parentName": None}]
    for i, name in enumerate(classes, start=1):
        nodes.append({"nodeId": i, "nodeName": name, "parentId": 0, "parentName": "Root"})
    return nodes


def save_gt_json(annotations: AnnotationSet, path: str | Path) -> None:
    atomic_write_json(path, to_gt_dict(annotations))


def load_gt_json(path: str | Path) -> AnnotationSet:
    """Read ground truth written by :func:`save_gt_json` or ActivityNet's own files.

    Video-level labels default to the labels of the video's segments; the class list
    defaults to the sorted set of all labels when the file has no ``class-list``.
    """
    path = Path(path)
    raw = read_json(path, DataError)
    database = raw.get("database") if isinstance(raw, dict) else None
    if not isinstance(database, dict):
        raise DataError(f"{path}: not a ground-truth file (no 'database' object)")
    videos = [_video_from_json(path, name, entry) for name, entry in database.items()]
    classes = _class_list(path, raw.get("class-list"), videos)
    ambiguous = _ambiguous_from_json(path, raw.get("ambiguous"))
    annotations = AnnotationSet(
        [str(c) for c in classes], videos, ambiguous=ambiguous, source=str(path)
    )
    return validate(annotations)


def _class_list(path: Path, raw: object, videos: list[Video]) -> list[str]:
    """A list, or an object keyed by class index (``{"0": name}``, as some tools write)."""
    if raw is None:
        return sorted({seg.label for video in videos for seg in video.segments})
    if isinstance(raw, dict):
        try:
            return [raw[key] for key in sorted(raw, key=int)]
        except ValueError:
            raise DataError(f"{path}: 'class-list' keys must be class indices") from None
    if not isinstance(raw, list):
        raise DataError(f"{path}: 'class-list' must be a list of class names")
    if not all(isinstance(name, str) for name in raw):
        raise DataError(f"{path}: 'class-list' must be a list of class names (strings)")
    return raw


def _ambiguous_from_json(path: Path, raw: object) -> dict[str, list[tuple[float, float]]]:
    """``{"video": [[start, end], ...]}``; anything else is one DataError."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise DataError(f"{path}: 'ambiguous' must map video names to [start, end] lists")
    spans: dict[str, list[tuple[float, float]]] = {}
    for name, entries in raw.items():
        try:
            spans[name] = [(_number(s), _number(e)) for s, e in entries]
        except (TypeError, ValueError):
            raise DataError(
                f"{path}: 'ambiguous' of video {name!r} is not a list of [start, end] "
                f"number pairs ({entries!r:.60})"
            ) from None
        if any(not (math.isfinite(s) and math.isfinite(e)) or e < s for s, e in spans[name]):
            raise DataError(f"{path}: 'ambiguous' of video {name!r} holds a bad span")
    return spans


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(value)
    return float(value)


def _video_from_json(path: Path, name: str, entry: object) -> Video:
    where = f"{path}: video {name!r}"
    if not isinstance(entry, dict):
        raise DataError(f"{where}: entry is not an object")
    try:
        segments = tuple(
            Segment(float(a["segment"][0]), float(a["segment"][1]), str(a["label"]))
            for a in entry.get("annotations", [])
        )
        duration = float(entry["duration"])
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise DataError(f"{where}: malformed field ({error!r})") from None
    labels = entry.get("labels")
    if labels is None:
        labels = list(dict.fromkeys(seg.label for seg in segments))
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise DataError(f"{where}: field 'labels' is not a list of class names ({labels!r:.60})")
    subset = str(entry.get("subset", ""))
    return Video(name, subset, duration, tuple(str(x) for x in labels), segments)


def read_ambiguous(
    path: str | Path, error: type[Exception] = DataError
) -> dict[str, list[tuple[float, float]]]:
    """THUMOS14's ``Ambiguous_test.txt``: ``video start end`` per line (the real file).

    The four-field form ``video Ambiguous start end`` is accepted too; blank lines skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: ambiguous-segments file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise error(f"{path}: not a text file (expected 'video start end' lines)") from None
    if "\0" in text:
        raise error(f"{path}: not a text file (it holds NUL bytes)")
    spans: dict[str, list[tuple[float, float]]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) not in (3, 4):
            raise error(f"{path}: line {number}: expected 'video start end', got {line!r}")
        try:
            start, end = float(fields[-2]), float(fields[-1])
        except ValueError:
            raise error(f"{path}: line {number}: start/end are not numbers in {line!r}") from None
        if not (math.isfinite(start) and math.isfinite(end)) or end < start:
            raise error(f"{path}: line {number}: bad span [{start}, {end}]")
        spans.setdefault(fields[0], []).append((start, end))
    return spans
