"""Localize actions in the features of new videos, without ground truth."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hamnet.data.features import open_feature_store
from hamnet.engine.distributed import pick_device
from hamnet.engine.inference import detect, forward_video, localize_kwargs, make_output
from hamnet.engine.model_io import load_trained, localization_source
from hamnet.errors import DataError
from hamnet.io import atomic_write_text
from hamnet.localize.detections import Detection


@dataclass
class ArrayFileStore:
    """One video's features in one plain ``[T, D]`` ``.npy`` file, named by its stem."""

    path: Path

    def __post_init__(self) -> None:
        try:
            self._array = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except ValueError:
            raise DataError(
                f"{self.path}: holds pickled objects (the released multi-video format?); "
                "run 'hamnet convert' first, or pass the dataset root"
            ) from None
        if self._array.ndim != 2:
            raise DataError(f"{self.path}: expected a [T, D] array, got shape {self._array.shape}")
        self.names = [self.path.stem]
        self.dim = int(self._array.shape[1])

    def read(self, name: str) -> np.ndarray:
        features = np.array(self._array, dtype=np.float32)  # a writable copy
        if features.shape[0] == 0:
            raise DataError(f"{self.path}: video {name!r} is empty (0 snippets)")
        if not np.isfinite(features).all():
            raise DataError(f"{self.path}: video {name!r} has NaN or infinite features")
        return features


def open_any_features(path: Path, allow_pickle: bool = False):
    if not path.exists():
        raise DataError(f"{path}: features not found")
    if path.is_file() and path.suffix == ".npy":
        return ArrayFileStore(path)
    return open_feature_store(path, allow_pickle=allow_pickle)


def predict(
    checkpoint: Path,
    feature_paths: list[Path],
    *,
    min_score: float = 0.0,
    top_k: int | None = None,
    device: str = "auto",
    allow_pickle: bool = False,
    progress: bool = True,
) -> list[Detection]:
    """Detections for every video in every given feature source."""
    torch_device = pick_device(device)
    trained = load_trained(checkpoint, torch_device)
    config, source = trained.config, localization_source(trained.config)
    localize = localize_kwargs(config)
    detections: list[Detection] = []
    for path in feature_paths:
        store = open_any_features(Path(path), allow_pickle)
        if store.dim != config.data.feature_dim:
            raise DataError(
                f"{path}: features have width {store.dim}, but {checkpoint} was trained "
                f"on width {config.data.feature_dim}"
            )
        for name in tqdm(store.names, desc=str(path), disable=not progress, leave=False):
            cas, attention = forward_video(
                trained.model, store.read(name), torch_device, config.train.precision
            )
            output = make_output(name, cas, attention, source, config.loss.topk_ratio_inv)
            found = [d for d in detect(output, trained.classes, localize) if d.score >= min_score]
            found.sort(key=lambda d: -d.score)
            detections.extend(found[:top_k] if top_k else found)
    return detections


def detections_to_csv(detections: list[Detection]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["video", "label", "start", "end", "score"])
    for d in detections:
        writer.writerow([d.video, d.label, f"{d.start:.3f}", f"{d.end:.3f}", f"{d.score:.6f}"])
    return buffer.getvalue()


def detections_to_json(detections: list[Detection]) -> str:
    results: dict[str, list] = {}
    for d in detections:
        results.setdefault(d.video, []).append(
            {"label": d.label, "score": d.score, "segment": [d.start, d.end]}
        )
    return json.dumps({"version": "hamnet", "results": results}, indent=1) + "\n"


def write_detections(detections: list[Detection], out: Path | None, fmt: str) -> str:
    text = detections_to_csv(detections) if fmt == "csv" else detections_to_json(detections)
    if out is not None:
        atomic_write_text(out, text)
    return text
