"""Localize actions in the features of new videos, without ground truth."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from tqdm import tqdm

from hamnet import argcheck
from hamnet.data.features import open_feature_store
from hamnet.devices import resolve_device
from hamnet.errors import ConfigError, DataError
from hamnet.infer.inference import detect, infer_video
from hamnet.infer.settings import inference_settings, with_inference_overrides
from hamnet.io import atomic_write_text
from hamnet.localize.detections import Detection, detections_json
from hamnet.weights.trained import load_trained


def predict(
    checkpoint: Path,
    feature_paths: list[Path],
    *,
    min_score: float = 0.0,
    top_k: int | None = None,
    device: str = "auto",
    overrides: list[str] | None = None,
    progress: bool = True,
) -> list[Detection]:
    """Detections for every video in every given feature source (``overrides``: e.g.
    ``localize.class_thresh=0.1``, replacing the checkpoint config's settings)."""
    argcheck.check_path(checkpoint, "checkpoint")
    argcheck.check_paths(feature_paths, "feature_paths")
    argcheck.check_overrides(overrides)
    check_filters(min_score, top_k)
    torch_device = resolve_device(device)
    trained = load_trained(checkpoint, torch_device)
    config = with_inference_overrides(trained.config, overrides or [])
    settings = inference_settings(config)
    detections: list[Detection] = []
    for path, store in _open_sources(feature_paths):
        if store.dim != config.data.feature_dim:
            raise DataError(
                f"{path}: features have width {store.dim}, but {checkpoint} was trained "
                f"on width {config.data.feature_dim}"
            )
        for name in tqdm(store.names, desc=str(path), disable=not progress, leave=False):
            output = infer_video(trained.model, store.read(name), name, torch_device, settings)
            found = [d for d in detect(output, trained.classes, settings) if d.score >= min_score]
            found.sort(key=lambda d: -d.score)
            detections.extend(found if top_k is None else found[:top_k])
    return detections


def _open_sources(feature_paths: list[Path]) -> list[tuple[Path, object]]:
    """Every source opened; a video named in two of them is refused (the detections of
    one would be listed under the other's name)."""
    sources, owner = [], {}
    for path in feature_paths:
        store = open_feature_store(Path(path))
        clashes = sorted(name for name in store.names if name in owner)
        if clashes:
            shown = ", ".join(repr(n) for n in clashes[:5]) + (" ..." if len(clashes) > 5 else "")
            raise DataError(
                f"{path}: {len(clashes)} video name(s) also in {owner[clashes[0]]}: {shown}; "
                f"give each video once"
            )
        owner.update(dict.fromkeys(store.names, path))
        sources.append((Path(path), store))
    return sources


def check_filters(min_score: float, top_k: int | None) -> None:
    """ConfigError for a filter that would silently drop detections (NaN, K < 1)."""
    argcheck.check_number(min_score, "min_score", finite=False)
    argcheck.check_int(top_k, "top_k", minimum=-(2**63), optional=True)
    if not math.isfinite(min_score):
        raise ConfigError(f"--min-score {min_score}: must be a finite number")
    if top_k is not None and top_k < 1:
        raise ConfigError(f"--top-k {top_k}: must be at least 1 (leave it out for no limit)")


def detections_to_csv(detections: list[Detection]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["video", "label", "start", "end", "score"])
    for d in detections:
        writer.writerow([d.video, d.label, f"{d.start:.3f}", f"{d.end:.3f}", f"{d.score:.6f}"])
    return buffer.getvalue()


def write_detections(detections: list[Detection], out: Path | None, fmt: str) -> str:
    text = detections_to_csv(detections) if fmt == "csv" else detections_json(detections)
    if out is not None:
        atomic_write_text(out, text)
    return text
