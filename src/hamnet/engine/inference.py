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
from hamnet.evaluate.classification import classification_map
from hamnet.evaluate.detection_map import DetectionResult, evaluate_detections
from hamnet.io import atomic_path
from hamnet.localize.detections import Detection
from hamnet.localize.proposals import SNIPPET_SECONDS, localize_video, video_scores

log = logging.getLogger(__name__)


@dataclass
class VideoOutput:
    """One video's network outputs; ``actionness`` is what localization thresholds."""

    name: str
    cas: np.ndarray  # [T, C+1] raw T-CAS
    attention: np.ndarray  # [T]
    actionness: np.ndarray  # [T]
    video_scores: np.ndarray  # [C]
    source: str


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
    model: torch.nn.Module, features: np.ndarray, device: torch.device, precision: str = "fp32"
) -> tuple[np.ndarray, np.ndarray]:
    """Full-length forward pass of one video [T, D] -> (cas [T, C+1], attention [T])."""
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).to(device)
    with autocast(device, precision):
        cas, attention = model(x.unsqueeze(0))
    return cas[0].float().cpu().numpy(), attention[0].float().cpu().numpy()


def make_output(
    name: str, cas: np.ndarray, attention: np.ndarray, source: str, topk_ratio_inv: int
) -> VideoOutput:
    if source == "attention":
        actionness = attention
    else:
        shifted = np.exp(cas - cas.max(axis=1, keepdims=True))
        actionness = 1.0 - shifted[:, -1] / shifted.sum(axis=1)
    actionness = actionness.astype(np.float32)
    scores = video_scores(cas * actionness[:, None], topk_ratio_inv)
    return VideoOutput(name, cas, attention, actionness, scores, source)


def infer_videos(
    model: torch.nn.Module,
    store,
    names: Iterable[str],
    *,
    device: torch.device,
    precision: str,
    source: str,
    topk_ratio_inv: int,
    progress: bool = False,
) -> Iterator[VideoOutput]:
    model.eval()
    names = list(names)
    for name in tqdm(names, desc="test", unit="video", disable=not progress, leave=False):
        cas, attention = forward_video(model, store.read(name), device, precision)
        yield make_output(name, cas, attention, source, topk_ratio_inv)


def detect(output: VideoOutput, classes: list[str], localize: dict) -> list[Detection]:
    return localize_video(
        output.name,
        output.cas * output.actionness[:, None],
        output.actionness,
        output.video_scores,
        classes,
        snippet_seconds=SNIPPET_SECONDS,
        **localize,
    )


def localize_kwargs(config) -> dict:
    """The localization settings of a config as plain keyword arguments."""
    cfg = config.localize
    return {
        "class_thresh": cfg.class_thresh,
        "thresholds": np.asarray(cfg.thresholds, dtype=np.float64),
        "outer_ratio": cfg.outer_ratio,
        "video_score_weight": cfg.video_score_weight,
        "nms": cfg.nms,
        "sigma": cfg.sigma,
        "nms_iou": cfg.nms_iou,
        "max_detections": cfg.max_detections,
        "reference_quirks": cfg.reference_quirks,
    }


def save_outputs_npz(output: VideoOutput, classes: list[str], folder: Path) -> Path:
    path = folder / f"{output.name}.npz"
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(
            handle,
            cas=output.cas.astype(np.float32),
            attention=output.attention.astype(np.float32),
            actionness=output.actionness,
            video_scores=output.video_scores.astype(np.float32),
            classes=np.asarray(classes, dtype=str),
            snippet_seconds=np.float64(SNIPPET_SECONDS),
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
    precision: str,
    source: str,
    topk_ratio_inv: int,
    localize: dict,
    tiou: list[float],
    protocol: str,
    save_cas_dir: Path | None = None,
    progress: bool = False,
) -> Evaluation:
    """Test-time pipeline of §6–§7 over one subset (videos without labels are skipped)."""
    everything = annotations.subset(subset)
    videos = [video for video in everything if video.labels]
    skipped = len(everything) - len(videos)
    if skipped:
        log.info(
            "skipped %d unlabelled video(s) of subset %r, as the reference does", skipped, subset
        )
    detections, scores = [], []
    outputs = infer_videos(
        model,
        store,
        [v.name for v in videos],
        device=device,
        precision=precision,
        source=source,
        topk_ratio_inv=topk_ratio_inv,
        progress=progress,
    )
    for output in outputs:
        detections.extend(detect(output, annotations.classes, localize))
        scores.append(output.video_scores)
        if save_cas_dir is not None:
            save_outputs_npz(output, annotations.classes, save_cas_dir)
    labels = np.stack([annotations.label_vector(video) for video in videos])
    result = evaluate_detections(
        annotations,
        detections,
        tiou=list(tiou),
        protocol=protocol,
        subset=subset,
        ambiguous=annotations.ambiguous or None,
    )
    cmap = classification_map(np.stack(scores), labels)
    return Evaluation(result, cmap, detections, len(videos), source)
