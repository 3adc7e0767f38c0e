"""Run a trained network over videos: T-CAS, attention, video scores, detections, mAP.

Two ways through the network, the same numbers: video by video from a feature store
(:func:`infer_videos`), or in padded batches over device-resident features
(:func:`infer_resident`). Videos are sorted by length and packed into batches of at most
``max_snippets`` padded snippets; the network's validity mask makes every video's outputs
those of running it alone (padded positions are zeroed before each layer that mixes
time). One host copy per batch brings the outputs back, in the order of ``names``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hamnet.data.annotations import AnnotationSet
from hamnet.data.resident import ResidentFeatures
from hamnet.evaluate.classification import classification_map
from hamnet.evaluate.detection_map import DetectionResult, evaluate_detections
from hamnet.evaluate.snippet_grid import in_snippet_units
from hamnet.infer.settings import InferenceSettings
from hamnet.io import atomic_path
from hamnet.localize.detections import Detection
from hamnet.localize.reference_rules import uniform_sample_indices
from hamnet.methods.base import Method, VideoOutput
from hamnet.precision import autocast

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    result: DetectionResult
    classification_map: float
    detections: list[Detection]
    num_videos: int
    source: str  # what localization thresholded: attention or foreground probability
    selected_on: str = "none"  # how the tested checkpoint was chosen (hamnet.train.selection)
    trained_on_test: bool = False  # the checkpoint was trained on the subset tested
    epochs: tuple[int, int] | None = None  # (trained, planned) of the tested checkpoint
    rules: str = "reference"  # localize.rules the detections were made under


@torch.no_grad()
def forward_video(
    model: torch.nn.Module,
    features: np.ndarray,
    device: torch.device,
    precision: str,
    method: Method,
    name: str | None = None,
) -> dict[str, np.ndarray]:
    """Full-length forward pass of one video [T, D] -> its named outputs (batch axis off);
    ``name``: whose ``Method.test_inputs`` the method's ``forward_test`` is given."""
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).to(device)
    inputs = method.test_inputs(name) if name is not None else {}
    targets = {key: torch.as_tensor(value).to(device) for key, value in inputs.items()}
    with autocast(device, precision):
        outputs = method.forward_test(model, x.unsqueeze(0), targets)
    return {key: value[0].float().cpu().numpy() for key, value in outputs.items()}


def infer_video(model, features: np.ndarray, name: str, device, settings) -> VideoOutput:
    """One video's outputs, after the test-time sampling of ``settings`` (if any)."""
    count, length = settings.test_snippets, int(features.shape[0])
    if count is not None:
        features = features[uniform_sample_indices(length, count)]
    outputs = forward_video(model, features, device, settings.precision, settings.method, name)
    output = settings.method.video_output(name, outputs)
    output.source_length = length
    return output


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
    for name in tqdm(names, desc="test", unit="video", disable=not progress, leave=False):
        yield infer_video(model, store.read(name), name, device, settings)


# padded snippets per batch: about 3 GiB of activations at D = 2048 on a GPU. On the CPU
# one video per batch: oneDNN's sums depend on the batch shape in the last bits, and one
# at a time keeps the outputs bit-identical to the streaming path (the CPU is
# compute-bound, so batching gains little there).
GPU_MAX_SNIPPETS = 65536
CPU_MAX_SNIPPETS = 1


def length_batches(lengths: list[int], max_snippets: int) -> list[list[int]]:
    """Positions into ``lengths`` grouped longest first, each group's ``len * longest``
    at most ``max_snippets`` (a longer video goes alone)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    groups: list[list[int]] = []
    for position in order:
        if groups and (len(groups[-1]) + 1) * lengths[groups[-1][0]] <= max_snippets:
            groups[-1].append(position)
        else:
            groups.append([position])
    return groups


@torch.no_grad()
def infer_resident(
    model: torch.nn.Module,
    features: ResidentFeatures,
    names: list[str],
    *,
    settings: InferenceSettings,
    max_snippets: int | None = None,
) -> Iterator[VideoOutput]:
    model.eval()
    device = features.device
    if max_snippets is None:
        max_snippets = GPU_MAX_SNIPPETS if device.type == "cuda" else CPU_MAX_SNIPPETS
    lengths = [features.length[name] for name in names]
    outputs: dict[int, VideoOutput] = {}
    for group in length_batches(lengths, max_snippets):
        batch = [names[i] for i in group]
        named = _forward_padded(model, features, batch, settings.precision, settings.method)
        for row, position in enumerate(group):
            size = lengths[position]
            video = {key: _unpad(value, row, size) for key, value in named.items()}
            outputs[position] = settings.method.video_output(names[position], video)
    for position in range(len(names)):
        yield outputs.pop(position)


def _unpad(value: np.ndarray, row: int, size: int) -> np.ndarray:
    """One video's part of a batched output: [B, T, ...] -> [size, ...]; [B] -> a scalar."""
    return value[row, :size] if value.ndim >= 2 else value[row]


def _forward_padded(
    model: torch.nn.Module,
    features: ResidentFeatures,
    names: list[str],
    precision: str,
    method: Method,
) -> dict[str, np.ndarray]:
    """The method's named outputs ([B, T, ...] or [B]) for the padded batch of ``names``."""
    lengths = np.array([features.length[name] for name in names], dtype=np.int64)
    starts = np.array([features.offset[name] for name in names], dtype=np.int64)
    steps = np.arange(int(lengths.max()), dtype=np.int64)
    # past a video's end, repeat its last row: the mask zeroes those positions anyway
    index = starts[:, None] + np.minimum(steps[None, :], lengths[:, None] - 1)
    device = features.device
    x = features.rows[torch.from_numpy(index).to(device)].float()
    mask = torch.from_numpy(steps[None, :] < lengths[:, None]).to(device)
    with autocast(device, precision):
        outputs = method.forward(model, x, mask)
    return {key: value.float().cpu().numpy() for key, value in outputs.items()}


def detect(output: VideoOutput, classes: list[str], settings: InferenceSettings) -> list[Detection]:
    """The method's detections under ``settings.rules`` (reference or shared)."""
    return settings.method.detections(output, classes, settings)


def save_outputs_npz(
    output: VideoOutput, classes: list[str], folder: Path, snippet_seconds: float
) -> Path:
    path = folder / f"{output.name}.npz"
    if output.length != output.cas.shape[0]:  # sampled at test time: each row spans more
        snippet_seconds = snippet_seconds * output.length / output.cas.shape[0]
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
    videos = _test_videos(annotations, subset, settings)
    settings = _with_ambiguous(settings, annotations)
    detections, scores = [], []
    names = [v.name for v in videos]
    batched = settings.test_snippets is None and not settings.method.owns_training_data
    if resident is not None and batched:
        outputs = infer_resident(model, resident, names, settings=settings)
    else:
        outputs = infer_videos(
            model, store, names, device=device, settings=settings, progress=progress
        )
    labels = []
    for video, output in zip(videos, outputs, strict=True):
        if save_cas_dir is not None:
            save_outputs_npz(output, annotations.classes, save_cas_dir, settings.snippet_seconds)
        if settings.rules == "reference" and not settings.method.reference_tests(output):
            continue  # dropped by the reference test (its ground truth still counts)
        detections.extend(detect(output, annotations.classes, settings))
        scores.append(classification_score(output, settings))
        labels.append(annotations.label_vector(video))
    truth, scored, unit = annotations, detections, settings.snippet_seconds
    if settings.snippet_grid_gt:  # matched in whole snippets, as the official evaluator
        truth, scored = in_snippet_units(annotations, detections, settings.snippet_seconds)
        unit = 1.0
    result = evaluate_detections(
        truth,
        scored,
        tiou=list(settings.tiou),
        protocol=settings.protocol,
        subset=subset,
        ambiguous=truth.ambiguous or None,
        snippet_seconds=unit,
    )
    cmap = classification_map(np.stack(scores), np.stack(labels)) if scores else 0.0
    tested = len(labels)
    return Evaluation(result, cmap, detections, tested, settings.source, rules=settings.rules)


def classification_score(output: VideoOutput, settings: InferenceSettings) -> np.ndarray:
    """What classification mAP ranks: the method's reference score under
    ``localize.rules=reference`` where it has its own, else the detection video score."""
    own = output.classification_scores
    return own if settings.rules == "reference" and own is not None else output.video_scores


def _test_videos(annotations: AnnotationSet, subset: str, settings: InferenceSettings) -> list:
    """The subset's videos the test scores: those with labels, or every one where the
    method's reference test scores unlabelled videos too (W-TALC)."""
    everything = annotations.subset(subset)
    keep_all = settings.rules == "reference" and settings.method.reference_scores_unlabelled
    videos = [video for video in everything if video.labels or keep_all]
    skipped = len(everything) - len(videos)
    if skipped:
        log.info(
            "skipped %d unlabelled video(s) of subset %r, as the reference does", skipped, subset
        )
    return videos


def _with_ambiguous(settings: InferenceSettings, annotations: AnnotationSet) -> InferenceSettings:
    """``settings`` holding the dataset's Ambiguous spans, which a reference rule may read
    (CO2-Net's and DELU's test removes detections on them)."""
    if settings.rules == "reference":
        settings.method.before_reference_test(annotations.ambiguous)
    return dataclasses.replace(settings, ambiguous=annotations.ambiguous)
