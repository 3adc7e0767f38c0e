"""What figures read: a video's saved network outputs (``.npz``) and result JSONs.

Both files come from the pipeline (``hamnet test --save-cas`` / ``--json``); every problem
is a DataError naming the file. No torch, no pickle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hamnet.data.safe_npy import load_npz
from hamnet.errors import DataError
from hamnet.io import read_json
from hamnet.timing import snippet_seconds_problem

NPZ_KEYS = (
    "cas",
    "attention",
    "actionness",
    "video_scores",
    "classes",
    "snippet_seconds",
    "source",
)


@dataclass(frozen=True)
class SavedVideoOutputs:
    """One video's outputs as saved by `hamnet test --save-cas` (T snippets, C classes);
    :class:`hamnet.methods.base.VideoOutput` is what a method makes of them in memory.

    cas: [T, C+1] raw T-CAS logits, last column background ([T, C] for methods without
    one); attention: [T] in [0, 1]; actionness: [T], the signal localization thresholds;
    video_scores: [C]; classes: C names; snippet_seconds: length of one snippet;
    source: what actionness is (e.g. "attention", "foreground"); origin: where the
    arrays came from (for messages).
    """

    cas: np.ndarray
    attention: np.ndarray
    actionness: np.ndarray
    video_scores: np.ndarray
    classes: tuple[str, ...]
    snippet_seconds: float
    source: str
    origin: str = "<memory>"

    def __post_init__(self) -> None:
        where, num_classes = self.origin, len(self.classes)
        # methods with a background class (HAM-Net, BaS-Net) have C + 1 columns, others C
        columns = (num_classes, num_classes + 1)
        if self.cas.ndim != 2 or self.cas.shape[0] < 1 or self.cas.shape[1] not in columns:
            raise DataError(
                f"{where}: 'cas' has shape {self.cas.shape}, expected [T>=1, {num_classes + 1}]"
                f" for {num_classes} classes plus background (or {num_classes} without)"
            )
        num_snippets = self.cas.shape[0]
        expected = {"attention": num_snippets, "actionness": num_snippets}
        for name, length in {**expected, "video_scores": num_classes}.items():
            if getattr(self, name).shape != (length,):
                shape = getattr(self, name).shape
                raise DataError(f"{where}: {name!r} has shape {shape}, expected [{length}]")
        for name in ("cas", "attention", "actionness", "video_scores"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise DataError(f"{where}: {name!r} holds NaN or infinite values")
        if snippet_seconds_problem(self.snippet_seconds):
            raise DataError(
                f"{where}: snippet_seconds {snippet_seconds_problem(self.snippet_seconds)}"
            )

    @property
    def num_snippets(self) -> int:
        return int(self.cas.shape[0])

    @property
    def duration(self) -> float:
        """Seconds covered by the snippets."""
        return self.num_snippets * self.snippet_seconds

    def class_probabilities(self) -> np.ndarray:
        """[T, C+1] (or [T, C]) softmax of the T-CAS over the columns, per snippet."""
        shifted = self.cas.astype(np.float64) - self.cas.max(axis=1, keepdims=True)
        weights = np.exp(shifted)
        return weights / weights.sum(axis=1, keepdims=True)


def load_cas_npz(path: str | Path) -> SavedVideoOutputs:
    """Read one video's outputs saved by ``hamnet test --save-cas`` (no pickle)."""
    path = Path(path)
    arrays = load_npz(path)
    missing = [key for key in NPZ_KEYS if key not in arrays]
    if missing:
        raise DataError(f"{path}: missing array(s) {missing} (has {sorted(arrays)})")
    return _outputs_from_arrays(arrays, str(path))


def _outputs_from_arrays(arrays: dict[str, np.ndarray], where: str) -> SavedVideoOutputs:
    numeric = {}
    for key in ("cas", "attention", "actionness", "video_scores"):
        if arrays[key].dtype.kind not in "fiu":
            raise DataError(f"{where}: {key!r} has dtype {arrays[key].dtype}, expected numbers")
        numeric[key] = arrays[key].astype(np.float32)
    classes = arrays["classes"]
    if classes.dtype.kind not in "US" or classes.ndim != 1:
        raise DataError(f"{where}: 'classes' must be a 1-D array of strings")
    seconds, source = arrays["snippet_seconds"], arrays["source"]
    if seconds.size != 1 or seconds.dtype.kind not in "fiu":
        raise DataError(f"{where}: 'snippet_seconds' must be one number")
    if source.size != 1 or source.dtype.kind not in "US":
        raise DataError(f"{where}: 'source' must be one string")
    return SavedVideoOutputs(
        classes=tuple(_as_str(name) for name in classes),
        snippet_seconds=float(seconds.reshape(())),
        source=_as_str(source.reshape(())[()]),
        origin=where,
        **numeric,
    )


def _as_str(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def load_result_json(path: str | Path) -> tuple[list[float], list[float], str]:
    """(tIoU thresholds, mAP per threshold, protocol) from an evaluation result JSON."""
    path = Path(path)
    raw = read_json(path, DataError)
    if not isinstance(raw, dict):
        raise DataError(f"{path}: not an evaluation result (top level is not an object)")
    tious = _number_list(path, raw, "tiou")
    maps = _number_list(path, raw, "mAP")
    if len(tious) != len(maps):
        raise DataError(f"{path}: 'tiou' has {len(tious)} values but 'mAP' has {len(maps)}")
    protocol = raw.get("protocol")
    if not isinstance(protocol, str) or not protocol:
        raise DataError(f"{path}: field 'protocol' is missing or not a string")
    return tious, maps, protocol


def _number_list(path: Path, raw: dict, key: str) -> list[float]:
    values = raw.get(key)
    if not isinstance(values, list) or not values:
        raise DataError(f"{path}: field {key!r} is missing or not a non-empty list")
    numbers = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DataError(f"{path}: field {key!r} holds a non-number {value!r}")
        if not math.isfinite(value):
            raise DataError(f"{path}: field {key!r} holds a non-finite value {value!r}")
        numbers.append(float(value))
    return numbers
