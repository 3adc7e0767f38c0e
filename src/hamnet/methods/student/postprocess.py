"""The test-time rule of FuSTAL's student (TriDet), and its EMA-distillation targets.

One video's head outputs -> candidates (sigmoid x mask, pre-NMS threshold, top-k, the
point/class split of the flat index, the Trident decode, the duration filter) ->
batched 1D NMS (hard or Gaussian soft-NMS, per class or class-agnostic with score
voting) -> seconds, clamped to [0, duration]. Pure torch/numpy on the CPU: the NMS
loops replay the official C++ kernel (float32 arithmetic, the same visiting and
swapping order), so ties and near-ties resolve as there.

Source: github:fqhank/FuSTAL@3037b4e, Student-Training/libs/modeling/meta_archs.py
(inference_single_video, postprocessing), libs/utils/nms.py, libs/utils/csrc/nms_cpu.cpp,
libs/utils/train_utils.py (train_one_epoch's EMA targets); lines in docs/methods.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from hamnet.errors import ConfigError
from hamnet.localize.detections import Detection
from hamnet.methods.student.decode import decode_video_level

NMS_METHODS = ("soft", "hard", "none")
AREA_EPS = 1e-6  # nms_cpu.cpp: areas = x2 - x1 + 1e-6 (seg_voting's IoU has none)

# train_utils.py train_one_epoch: EMA detections kept as targets, and the hard-coded
# THUMOS14 I3D grid (16 frames per feature, stride 4) used to go back from seconds
EMA_SCORE_THRESHOLD = 0.4
EMA_NUM_FRAMES = 16
EMA_FEAT_STRIDE = 4


@dataclass(frozen=True)
class InferenceSettings:
    """test_cfg as configs/thumos_i3d.yaml sets it over libs/core/config.py's defaults
    (the yaml sets voting_thresh, pre_nms_topk, max_seg_num, min_score, multiclass_nms;
    the rest are the defaults). With multiclass_nms, voting_thresh is never used."""

    pre_nms_thresh: float = 0.001
    pre_nms_topk: int = 2000  # per FPN level
    iou_threshold: float = 0.1  # hard NMS only (the Gaussian ignores it)
    min_score: float = 0.001
    max_seg_num: int = 2000
    nms_method: str = "soft"
    nms_sigma: float = 0.5
    duration_thresh: float = 0.05  # grid units
    multiclass_nms: bool = True
    voting_thresh: float = 0.7  # class-agnostic NMS only; <= 0 disables

    def __post_init__(self):
        if self.nms_method not in NMS_METHODS:
            raise ConfigError(
                f"student test nms_method must be one of {NMS_METHODS}, not {self.nms_method!r}"
            )
        if self.pre_nms_topk < 1 or self.max_seg_num < 1:
            raise ConfigError("student test pre_nms_topk and max_seg_num must be >= 1")
        if self.nms_sigma <= 0:
            raise ConfigError(f"student test nms_sigma must be > 0, not {self.nms_sigma}")

    @classmethod
    def library_defaults(cls) -> InferenceSettings:
        """libs/core/config.py's test_cfg alone (no dataset yaml)."""
        return cls(pre_nms_topk=5000, min_score=0.01, max_seg_num=1000, voting_thresh=0.75)


@dataclass
class VideoDetections:
    """``segments`` [N, 2] float32 (grid units or seconds), ``scores`` [N], ``labels`` [N]
    int64 class indices; sorted by score, best first, once NMS has run."""

    segments: Tensor
    scores: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def video_detections(
    points: list[Tensor],
    fpn_masks: list[Tensor],
    cls_logits: list[Tensor],
    offsets: list[Tensor],
    start_logits: list[Tensor],
    end_logits: list[Tensor],
    settings: InferenceSettings = InferenceSettings(),
) -> VideoDetections:
    """One video's detections in feature-grid units (candidates, then batched NMS unless
    ``nms_method == "none"``). Per FPN level ``i`` (lists as the network returns them,
    indexed at the video): ``points`` [T_i, 4] (time, regression range lo/hi, stride),
    ``fpn_masks`` [T_i] bool, ``cls_logits`` [T_i, C], ``offsets`` [T_i, 2 (num_bins+1)],
    ``start_logits`` / ``end_logits`` [C, T_i]."""
    found = candidates(points, fpn_masks, cls_logits, offsets, start_logits, end_logits, settings)
    if settings.nms_method == "none":
        return found
    return batched_nms(found.segments, found.scores, found.labels, settings)


def candidates(
    points,
    fpn_masks,
    cls_logits,
    offsets,
    start_logits,
    end_logits,
    settings: InferenceSettings = InferenceSettings(),
) -> VideoDetections:
    """inference_single_video: the filtered candidates of every level, concatenated
    (level order, each level by descending score), before NMS; shapes as in
    :func:`video_detections`."""
    levels = [
        _level_candidates(*level, settings)
        for level in zip(
            points, fpn_masks, cls_logits, offsets, start_logits, end_logits, strict=True
        )
    ]
    return VideoDetections(*(torch.cat(parts) for parts in zip(*levels, strict=True)))


def _level_candidates(points, mask, cls_logits, offsets, start_logits, end_logits, settings):
    num_classes = cls_logits.shape[-1]
    num_bins = offsets.shape[-1] // 2 - 1
    prob = (cls_logits.sigmoid() * mask.unsqueeze(-1)).flatten()
    above = prob > settings.pre_nms_thresh
    prob, flat = prob[above], above.nonzero(as_tuple=True)[0]
    prob, order = prob.sort(descending=True)
    top = min(settings.pre_nms_topk, flat.shape[0])
    prob, flat = prob[:top], flat[order[:top]]
    point = torch.div(flat, num_classes, rounding_mode="floor")
    label = torch.fmod(flat, num_classes)
    distances = decode_video_level(offsets, start_logits, end_logits, num_bins)[label, point]
    centre, stride = points[point, 0], points[point, 3]
    left = centre - distances[:, 0] * stride
    right = centre + distances[:, 1] * stride
    keep = (right - left) > settings.duration_thresh
    return torch.stack((left, right), -1)[keep], prob[keep], label[keep]


def batched_nms(
    segments: Tensor,
    scores: Tensor,
    labels: Tensor,
    settings: InferenceSettings = InferenceSettings(),
) -> VideoDetections:
    """nms.py batched_nms: per class (``multiclass_nms``) or over all classes followed by
    score voting; then sorted by score and cut to ``max_seg_num``."""
    if segments.shape[0] == 0:
        return VideoDetections(
            torch.zeros([0, 2]), torch.zeros([0]), torch.zeros([0], dtype=labels.dtype)
        )
    if settings.multiclass_nms:
        parts = []
        for label in torch.unique(labels):
            idx = torch.where(labels == label)[0]
            parts.append(_nms_op(segments[idx], scores[idx], labels[idx], settings))
        kept_segs, kept_scores, kept_labels = (torch.cat(p) for p in zip(*parts, strict=True))
    else:
        kept_segs, kept_scores, kept_labels = _nms_op(segments, scores, labels, settings)
        if settings.voting_thresh > 0:
            kept_segs = seg_voting(kept_segs, segments, scores, settings.voting_thresh)
    _, order = kept_scores.sort(descending=True)
    order = order[: min(settings.max_seg_num, kept_segs.shape[0])]
    return VideoDetections(kept_segs[order], kept_scores[order], kept_labels[order])


def _nms_op(segments, scores, labels, settings):
    if settings.nms_method == "soft":
        return _soft_nms_op(segments, scores, labels, settings)
    return _hard_nms_op(segments, scores, labels, settings)


def _hard_nms_op(segments, scores, labels, settings):
    """NMSop: drop scores <= min_score first (hard NMS never changes a score)."""
    if settings.min_score > 0:
        valid = scores > settings.min_score
        segments, scores, labels = segments[valid], scores[valid], labels[valid]
    kept = hard_nms_indices(segments, scores, settings.iou_threshold)[: settings.max_seg_num]
    return segments[kept].clone(), scores[kept].clone(), labels[kept].clone()


def _soft_nms_op(segments, scores, labels, settings):
    """SoftNMSop with the Gaussian (method 2), cut to max_seg_num."""
    dets, kept = soft_nms(segments, scores, settings.nms_sigma, settings.min_score)
    count = min(len(kept), settings.max_seg_num)
    return dets[:count, :2].clone(), dets[:count, 2].clone(), labels[kept][:count].clone()


def hard_nms_indices(segments: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """nms_1d_cpu: indices of the kept segments, best first. Visits segments by
    descending score; each kept one suppresses every later one with IoU >= the
    threshold (IoU with +1e-6 on each length, float32 throughout)."""
    if segments.numel() == 0:
        return torch.zeros([0], dtype=torch.long)
    segments = segments.detach().cpu().float()
    order = scores.detach().cpu().sort(0, descending=True)[1]
    x1 = segments[:, 0].numpy()[order.numpy()]
    x2 = segments[:, 1].numpy()[order.numpy()]
    areas = (segments[:, 1] - segments[:, 0] + AREA_EPS).numpy()[order.numpy()]
    threshold = np.float32(iou_threshold)
    select = np.ones(len(x1), dtype=bool)
    for i in range(len(x1)):
        if not select[i]:
            continue
        later = slice(i + 1, None)
        overlap = _iou_f32(x1[i], x2[i], areas[i], x1[later], x2[later], areas[later])
        select[later] &= ~(overlap >= threshold)
    return order[torch.from_numpy(select)]


def soft_nms(segments: Tensor, scores: Tensor, sigma: float, min_score: float):
    """softnms_1d_cpu, Gaussian: -> (dets [K, 3] float32 rows start, end, decayed score
    in the order picked, input indices [K]). Each step picks the first highest score
    among the live segments, swaps it to the front, multiplies every later live score by
    exp(-IoU^2 / sigma) and removes those below min_score by moving the last live one
    into their place (the kernel's order, reproduced). The picked score itself is never
    compared with min_score."""
    n = int(segments.shape[0])
    dets = np.zeros((n, 3), dtype=np.float32)
    if n == 0:
        return torch.from_numpy(dets), torch.zeros([0], dtype=torch.long)
    segments = segments.detach().cpu().float()
    x1, x2 = segments[:, 0].numpy().copy(), segments[:, 1].numpy().copy()
    areas = (segments[:, 1] - segments[:, 0] + AREA_EPS).numpy()
    score = scores.detach().cpu().float().numpy().copy()
    arrays = [x1, x2, score, areas, np.arange(n, dtype=np.int64)]
    live, i = n, 0
    sigma32, floor = np.float32(sigma), np.float32(min_score)
    while i < live:
        best = i + int(np.argmax(arrays[2][i:live]))
        for a in arrays:
            a[i], a[best] = a[best], a[i]
        dets[i] = (x1[i], x2[i], arrays[2][i])
        live = _decay_and_compact(arrays, i, live, sigma32, floor)
        i += 1
    return torch.from_numpy(dets[:live]), torch.from_numpy(arrays[4][:live].copy())


def _decay_and_compact(arrays, i, live, sigma, floor):
    x1, x2, sc, areas, _ = arrays
    rest = slice(i + 1, live)
    overlap = _iou_f32(x1[i], x2[i], areas[i], x1[rest], x2[rest], areas[rest])
    exponent = -(overlap * overlap) / sigma  # float32, as the kernel
    sc[rest] = sc[rest] * np.exp(exponent.astype(np.float64)).astype(np.float32)
    alive = ~(sc[rest] < floor)
    keep = int(alive.sum())
    perm = np.arange(keep)
    perm[np.flatnonzero(~alive[:keep])] = np.flatnonzero(alive[keep:])[::-1] + keep
    for a in arrays:
        a[i + 1 : i + 1 + keep] = a[rest][perm]
    return i + 1 + keep


def _iou_f32(ix1, ix2, iarea, x1, x2, areas):
    inter = np.maximum(np.float32(0), np.minimum(ix2, x2) - np.maximum(ix1, x1))
    return inter / (iarea + areas - inter)


def seg_voting(kept: Tensor, segments: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """nms.py seg_voting: each kept segment becomes the score-weighted mean of all input
    segments with IoU >= the threshold with it (plain IoU, no +1e-6)."""
    left = torch.maximum(kept[:, None, 0], segments[None, :, 0])
    right = torch.minimum(kept[:, None, 1], segments[None, :, 1])
    inter = (right - left).clamp(min=0)
    kept_len = (kept[:, 1] - kept[:, 0])[:, None]
    all_len = (segments[:, 1] - segments[:, 0])[None, :]
    iou = inter / (kept_len + all_len - inter)
    weights = (iou >= iou_threshold).to(scores.dtype) * scores[None, :]
    weights /= torch.sum(weights, dim=1, keepdim=True)
    return weights @ segments


def to_seconds(
    found: VideoDetections, fps: float, duration: float, feat_stride: float, num_frames: float
) -> VideoDetections:
    """postprocessing step 3: ``(seg * feat_stride + 0.5 * num_frames) / fps``, then
    boundaries <= 0 become 0 and those >= duration become duration."""
    segs = found.segments
    if segs.shape[0] > 0:
        segs = (segs * feat_stride + 0.5 * num_frames) / fps
        segs = torch.where(segs <= 0.0, segs * 0.0, segs)
        segs = torch.where(segs >= duration, segs * 0.0 + duration, segs)
    return VideoDetections(segs, found.scores, found.labels)


def to_detections(found: VideoDetections, video: str, class_names: list[str]) -> list[Detection]:
    """train_utils.py valid_one_epoch + result2json: every detection (seconds), in the
    rule's order, named by its class index; no class selection, no score fusion."""
    return [
        Detection(video, class_names[int(label)], float(score), float(seg[0]), float(seg[1]))
        for seg, score, label in zip(
            found.segments.tolist(), found.scores.tolist(), found.labels.tolist(), strict=True
        )
    ]


def ema_targets(found: VideoDetections, fps: float) -> VideoDetections | None:
    """train_one_epoch's targets from the EMA model's detections of one video (in
    seconds, as the full test rule returns them): those scoring > 0.4, else the single
    best one; back to the grid with the hard-coded 16 frames and stride 4, negatives set
    to 0 (no upper clamp). None when the EMA model found nothing: the official loop
    then skips the whole batch (no step, no EMA update)."""
    if len(found) == 0:
        return None
    mask = found.scores > EMA_SCORE_THRESHOLD
    if mask.sum() == 0:
        mask[torch.argmax(found.scores)] = True
    segs = (found.segments[mask] * fps - 0.5 * EMA_NUM_FRAMES) / EMA_FEAT_STRIDE
    segs = torch.where(segs < 0, torch.zeros_like(segs), segs)
    return VideoDetections(segs, found.scores[mask], found.labels[mask])


def settings_from(options) -> InferenceSettings:
    """InferenceSettings from any object carrying some of its field names (the method's
    options); missing ones keep the thumos_i3d defaults."""
    values = {}
    for name in InferenceSettings.__dataclass_fields__:
        if hasattr(options, name):
            values[name] = getattr(options, name)
    if "multiclass_nms" in values:
        values["multiclass_nms"] = bool(values["multiclass_nms"])
    return InferenceSettings(**values)


def detect_video(levels: dict[str, Tensor], options, rate: float, duration: float) -> dict:
    """The whole test rule on hamnet's snippet grid, for the method: ``levels`` holds,
    per level ``l``, ``cls_l`` / ``start_l`` / ``end_l`` [1, T_l, C], ``offsets_l``
    [1, T_l, 2 (num_bins + 1)], ``mask_l`` [1, T_l] and optionally ``points_l`` [T_l, 4]
    (else TriDet's: time ``t x 2^l``, stride ``2^l``). Seconds as postprocessing with
    fps = ``rate`` snippets per second, feat_stride = num_frames = 1 (a snippet's centre
    is its position). -> numpy ``segments`` [N, 2], ``scores`` [N], ``labels`` [N]."""
    count = sum(1 for key in levels if key.startswith("cls_"))
    parts = {key: [] for key in ("points", "masks", "cls", "offsets", "start", "end")}
    levels = {key: torch.as_tensor(value).detach().cpu() for key, value in levels.items()}
    for level in range(count):
        cls = levels[f"cls_{level}"][0].float()
        parts["cls"].append(cls)
        parts["masks"].append(levels[f"mask_{level}"][0].bool())
        parts["offsets"].append(levels[f"offsets_{level}"][0].float())
        parts["start"].append(levels[f"start_{level}"][0].float().transpose(0, 1))
        parts["end"].append(levels[f"end_{level}"][0].float().transpose(0, 1))
        parts["points"].append(levels.get(f"points_{level}", _tridet_points(cls.shape[0], level)))
    found = video_detections(
        parts["points"],
        parts["masks"],
        parts["cls"],
        parts["offsets"],
        parts["start"],
        parts["end"],
        settings_from(options),
    )
    found = to_seconds(found, fps=rate, duration=duration, feat_stride=1, num_frames=1)
    return {
        "segments": found.segments.numpy(),
        "scores": found.scores.numpy(),
        "labels": found.labels.numpy(),
    }


def _tridet_points(length: int, level: int) -> Tensor:
    stride = 2.0**level
    times = torch.arange(length, dtype=torch.float32) * stride
    return torch.stack(
        [times, torch.zeros(length), torch.zeros(length), torch.full((length,), stride)], 1
    )
