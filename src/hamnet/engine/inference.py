"""Run a trained network over videos: T-CAS, attention, video scores, detections, mAP."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hamnet.data.annotations import AnnotationSet
from hamnet.engine.settings import InferenceSettings
from hamnet.evaluate.classification import classification_map
from hamnet.evaluate.detection_map import DetectionResult, evaluate_detections
from hamnet.io import atomic_path
from hamnet.localize.detections import Detection
from hamnet.localize.proposals import localize_video
from hamnet.methods.base import Method, VideoOutput

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    result: DetectionResult
    classification_map: float
    detections: list[Detection]
    num_videos: int
    source: str  # what localization thresholded: attention or foreground probability
    selected_on: str = "none"  # how the tested checkpoint was chosen (engine.selection)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


@torch.no_grad()
def forward_video(
    model: torch.nn.Module,
    features: np.ndarray,
    device: torch.device,
    precision: str,
    method: Method,
) -> dict[str, np.ndarray]:
    """Full-length forward pass of one video [T, D] -> its named outputs (batch axis off)."""
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).to(device)
    with autocast(device, precision):
        outputs = method.forward(model, x.unsqueeze(0), None)
    return {key: value[0].float().cpu().numpy() for key, value in outputs.items()}


def make_output(method: Method, name: str, outputs: dict[str, np.ndarray]) -> VideoOutput:
    """Network outputs -> actionness, attended scores and video scores (the method's rule)."""
    return method.video_output(name, outputs)


def infer_videos(
    model: torch.nn.Module,
    store,
    names: Iterable[str],
    *,
    device: torch.device,
    settings: InferenceSettings,
    progress: bool = False,
) -> Iterator[VideoOutput]:
    model.eval()
    names = list(names)
    method = settings.method
    for name in tqdm(names, desc="test", unit="video", disable=not progress, leave=False):
        outputs = forward_video(model, store.read(name), device, settings.precision, method)
        yield make_output(method, name, outputs)


def detect(
    output: VideoOutput,
    classes: list[str],
    settings: InferenceSettings,
    ambiguous: dict[str, list] | None = None,
) -> list[Detection]:
    """The video's detections: the method's own rule where it has one (CO2-Net, DELU:
    ``reference_detect``; ``ambiguous``: spans per video, None when not known), else
    hamnet's shared rule."""
    own_rule = getattr(settings.method, "reference_detect", None)
    if own_rule is not None:
        spans = None if ambiguous is None else ambiguous.get(output.name, [])
        return own_rule(output, classes, settings, spans)
    return localize_video(
        output.name,
        output.attended,
        output.localization_signal,
        output.video_scores,
        classes,
        snippet_seconds=settings.snippet_seconds,
        **settings.localize,
    )


def save_outputs_npz(
    output: VideoOutput, classes: list[str], folder: Path, snippet_seconds: float
) -> Path:
    path = folder / f"{output.name}.npz"
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(
            handle,
            cas=output.cas.astype(np.float32),
            attention=output.attention.astype(np.float32),
            actionness=output.actionness,
            video_scores=output.video_scores.astype(np.float32),
            classes=np.asarray(classes, dtype=str),
            snippet_seconds=np.float64(snippet_seconds),
            source=np.asarray(output.source),
        )
    return path


def evaluate_model(
    model: torch.nn.Module,
    annotations: AnnotationSet,
    store,
    *,
    subset: str,
    device: torch.device,
    settings: InferenceSettings,
    save_cas_dir: Path | None = None,
    progress: bool = False,
    resident=None,
) -> Evaluation:
    """Test-time pipeline of §6–§7 over one subset (videos without labels are skipped).

    ``resident`` (a :class:`hamnet.data.resident.ResidentFeatures` holding the subset):
    inference in padded batches on its device instead of video by video from ``store``.
    """
    everything = annotations.subset(subset)
    videos = [video for video in everything if video.labels]
    skipped = len(everything) - len(videos)
    if skipped:
        log.info(
            "skipped %d unlabelled video(s) of subset %r, as the reference does", skipped, subset
        )
    detections, scores = [], []
    names = [v.name for v in videos]
    if resident is not None:
        from hamnet.engine.batched_inference import infer_resident

        outputs = infer_resident(model, resident, names, settings=settings)
    else:
        outputs = infer_videos(
            model, store, names, device=device, settings=settings, progress=progress
        )
    if not annotations.ambiguous and hasattr(settings.method, "warn_without_ambiguous"):
        settings.method.warn_without_ambiguous()
    for output in outputs:
        detections.extend(detect(output, annotations.classes, settings, annotations.ambiguous))
        scores.append(output.video_scores)
        if save_cas_dir is not None:
            save_outputs_npz(output, annotations.classes, save_cas_dir, settings.snippet_seconds)
    labels = np.stack([annotations.label_vector(video) for video in videos])
    truth = annotations
    if settings.snippet_grid_gt:
        from hamnet.methods.reference_rule import ground_truth_on_snippet_grid

        truth = ground_truth_on_snippet_grid(annotations, settings.snippet_seconds)
    result = evaluate_detections(
        truth,
        detections,
        tiou=list(settings.tiou),
        protocol=settings.protocol,
        subset=subset,
        ambiguous=annotations.ambiguous or None,
        snippet_seconds=settings.snippet_seconds,
    )
    cmap = classification_map(np.stack(scores), labels)
    return Evaluation(result, cmap, detections, len(videos), settings.source)
