"""The released W-TALC annotation layout: ``<Name>-Annotations/*.npy``.

Several of these files are numpy object arrays (pickles); they are read with the
restricted unpickler of :mod:`hamnet.data.safe_npy`, which admits only numpy arrays,
lists, strings and numbers and refuses anything that could run code.

Quirks of the real files handled here: strings are ``bytes`` except ``labels_all`` of
ActivityNet-1.2 (``str``); THUMOS14's ``duration`` has shape [N, 1]; segments are lists of
``[start, end]`` lists (ints in a few ActivityNet entries); one THUMOS14 video
(``video_test_0000270``) has an empty ``labels_all``; segment labels may differ from
``labels_all``. The video-level labels are ``labels_all``, as in the reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hamnet.data.annotations import AnnotationSet, Segment, Video, read_ambiguous, validate
from hamnet.data.safe_npy import load_npy
from hamnet.errors import DataError
from hamnet.io import atomic_path

PER_VIDEO_FILES = ("videoname", "subset", "segments", "labels", "labels_all", "duration")
AMBIGUOUS_FILE = "Ambiguous_test.txt"


def load_released_annotations(folder: Path) -> AnnotationSet:
    """Read a ``<Name>-Annotations`` folder into a validated :class:`AnnotationSet`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: annotation folder not found")
    arrays = {name: _load_npy(folder / f"{name}.npy") for name in PER_VIDEO_FILES}
    classlist = _load_npy(folder / "classlist.npy").reshape(-1)
    count = len(arrays["videoname"])
    for name, array in arrays.items():
        if len(array) != count:
            raise DataError(
                f"{folder / (name + '.npy')}: {len(array)} entries but videoname.npy has {count}"
            )
    durations = _durations(folder / "duration.npy", arrays["duration"])
    try:
        classes = [_text(c) for c in classlist]
        videos = [_video(folder, arrays, durations, i) for i in range(count)]
    except (UnicodeDecodeError, TypeError, ValueError) as error:
        # a backstop for entries of unexpected types that the checks below do not name
        raise DataError(f"{folder}: malformed annotation entry ({error})") from None
    ambiguous_path = folder / AMBIGUOUS_FILE
    ambiguous = read_ambiguous(ambiguous_path) if ambiguous_path.is_file() else {}
    return validate(AnnotationSet(classes, videos, ambiguous=ambiguous, source=str(folder)))


def save_released_annotations(
    annotations: AnnotationSet, folder: Path, duration_2d: bool = False
) -> None:
    """Write the released layout (bytes strings, object arrays), each file atomically.

    ``duration_2d`` writes ``duration.npy`` with shape [N, 1] as THUMOS14 does.
    """
    folder = Path(folder)
    videos = annotations.videos
    durations = np.array([v.duration for v in videos], dtype=np.float64)
    arrays = {
        "videoname": _bytes_array([v.name for v in videos]),
        "subset": _bytes_array([v.subset for v in videos]),
        "classlist": _bytes_array(annotations.classes),
        "segments": _object_array([[[s.start, s.end] for s in v.segments] for v in videos]),
        "labels": _object_array([[s.label.encode() for s in v.segments] for v in videos]),
        "labels_all": _object_array([[x.encode() for x in v.labels] for v in videos]),
        "duration": durations.reshape(-1, 1) if duration_2d else durations,
    }
    for name, array in arrays.items():
        with atomic_path(folder / f"{name}.npy") as tmp, open(tmp, "wb") as handle:
            np.save(handle, array, allow_pickle=array.dtype == object)
    if annotations.ambiguous:
        lines = [
            f"{name}  {start!r} {end!r}\n"
            for name, spans in annotations.ambiguous.items()
            for start, end in spans
        ]
        with atomic_path(folder / AMBIGUOUS_FILE) as tmp:
            tmp.write_text("".join(lines), encoding="utf-8")


def _load_npy(path: Path) -> np.ndarray:
    """One annotation array (restricted unpickler), checked to be a 1-D or [N, 1] array."""
    if not path.is_file():
        raise DataError(f"{path}: file not found (a released annotation folder needs it)")
    array = load_npy(path)
    if array.ndim not in (1, 2):
        raise DataError(f"{path}: expected one entry per video, got shape {list(array.shape)}")
    return array


def _text(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _durations(path: Path, array: np.ndarray) -> np.ndarray:
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise DataError(f"{path}: expected shape [N] or [N, 1], got {list(array.shape)}")
    try:
        return array.astype(np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{path}: durations are not numbers") from None


def _video(folder: Path, arrays: dict, durations: np.ndarray, i: int) -> Video:
    name = _text(arrays["videoname"][i])
    where = f"{folder}: video {name!r}"
    spans = _entry_list(folder / "segments.npy", name, arrays["segments"][i])
    labels = _entry_list(folder / "labels.npy", name, arrays["labels"][i])
    if len(spans) != len(labels):
        raise DataError(f"{where}: {len(spans)} segments but {len(labels)} segment labels")
    segments = []
    for span, label in zip(spans, labels, strict=True):
        try:
            start, end = (float(t) for t in span)
        except (TypeError, ValueError):
            raise DataError(f"{where}: segment {span!r} is not a [start, end] pair") from None
        segments.append(Segment(start, end, _text(label)))
    all_labels = _entry_list(folder / "labels_all.npy", name, arrays["labels_all"][i])
    video_labels = tuple(_text(x) for x in all_labels)
    subset = _text(arrays["subset"][i])
    return Video(name, subset, float(durations[i]), video_labels, tuple(segments))


def _entry_list(path: Path, video: str, entry: object) -> list:
    """A per-video entry that must be a list (of spans or labels), as the files hold."""
    if isinstance(entry, (str, bytes)) or not hasattr(entry, "__iter__"):
        raise DataError(f"{path}: video {video!r}: entry {entry!r} is not a list")
    return list(entry)


def _bytes_array(texts: list[str]) -> np.ndarray:
    encoded = [t.encode("utf-8") for t in texts]
    return np.array(encoded) if encoded else np.array([], dtype="S1")


def _object_array(items: list) -> np.ndarray:
    """A 1-D object array of Python lists (np.array would build a 2-D array instead)."""
    array = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        array[i] = item
    return array
