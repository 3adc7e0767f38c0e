"""The plain dataset layout: ``ROOT/gt.json`` + ``ROOT/features/`` (+ ``ROOT/dataset.json``).

- ``gt.json``: ActivityNet-style ground truth (``database`` -> per video ``subset``,
  ``duration``, ``annotations``); the class list is its ``class-list`` or, without one,
  the sorted labels of its segments.
- ``features/``: one ``<video>.npy`` per video (float32 [T, D], read without pickle), or
  a packed store (``index.json`` + ``features.bin``).
- ``dataset.json`` (optional): ``{"name": ..., "feature_dim": D, "snippet_seconds": s}``;
  each given value must agree with the config (``data.name``, ``data.feature_dim``,
  ``data.snippet_seconds``).

This opens ActivityNet-1.3, HACS or one's own data without the released W-TALC files.
:func:`write_plain_dataset` writes the layout from any opened dataset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hamnet.data.annotations import AnnotationSet, save_gt_json
from hamnet.data.features import FeatureStore
from hamnet.errors import DataError
from hamnet.io import atomic_path, atomic_write_json, read_json
from hamnet.timing import snippet_seconds_problem

GT_FILE, FEATURES_DIR, INFO_FILE = "gt.json", "features", "dataset.json"


@dataclass(frozen=True)
class PlainInfo:
    """What ``dataset.json`` declares (None: not declared)."""

    name: str | None = None
    feature_dim: int | None = None
    snippet_seconds: float | None = None


def is_plain_root(root: Path) -> bool:
    return (root / GT_FILE).is_file() and (root / FEATURES_DIR).is_dir()


def read_info(root: Path) -> PlainInfo:
    """``ROOT/dataset.json``, checked; an empty PlainInfo when there is none."""
    path = root / INFO_FILE
    if not path.is_file():
        return PlainInfo()
    raw = read_json(path, DataError)
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected an object with name, feature_dim, snippet_seconds")
    unknown = sorted(set(raw) - {"name", "feature_dim", "snippet_seconds"})
    if unknown:
        raise DataError(f"{path}: unknown field {unknown[0]!r}")
    name, dim, seconds = raw.get("name"), raw.get("feature_dim"), raw.get("snippet_seconds")
    if name is not None and not isinstance(name, str):
        raise DataError(f"{path}: 'name' must be a string")
    if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0):
        raise DataError(f"{path}: 'feature_dim' must be a positive integer")
    stride_problem = None if seconds is None else snippet_seconds_problem(seconds)
    if stride_problem:
        raise DataError(f"{path}: 'snippet_seconds' {stride_problem}")
    return PlainInfo(name, dim, None if seconds is None else float(seconds))


def check_info(root: Path, info: PlainInfo, snippet_seconds: float | None) -> None:
    """DataError when the config's snippet stride differs from the one the data declares."""
    if snippet_seconds is None or info.snippet_seconds is None:
        return
    if not math.isclose(info.snippet_seconds, snippet_seconds, rel_tol=1e-9):
        raise DataError(
            f"{root / INFO_FILE}: features have one snippet per {info.snippet_seconds} s but "
            f"the config says {snippet_seconds} s (set data.snippet_seconds)"
        )


def write_plain_dataset(
    annotations: AnnotationSet,
    store: FeatureStore,
    out: Path,
    *,
    name: str | None = None,
    snippet_seconds: float | None = None,
    progress: bool = True,
) -> Path:
    """Write ``out/gt.json``, ``out/features/<video>.npy`` (float32) and ``out/dataset.json``."""
    out = Path(out)
    folder = out / FEATURES_DIR
    if folder.exists():
        raise DataError(f"{folder}: already exists; choose another output folder")
    folder.mkdir(parents=True)
    for video in tqdm(annotations.videos, desc="writing features", disable=not progress):
        array = np.ascontiguousarray(store.read(video.name), dtype=np.float32)
        with atomic_path(folder / f"{video.name}.npy") as tmp, open(tmp, "wb") as handle:
            np.save(handle, array, allow_pickle=False)
    save_gt_json(annotations, out / GT_FILE)
    info = {"name": name, "feature_dim": store.dim, "snippet_seconds": snippet_seconds}
    atomic_write_json(out / INFO_FILE, {k: v for k, v in info.items() if v is not None}, indent=1)
    return out
