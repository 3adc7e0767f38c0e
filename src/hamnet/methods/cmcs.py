"""CMCS (Liu, Jiang, Wang, CVPR 2019): completeness modeling and context separation.

Each stream (RGB: the first half of each feature, flow: the second, "both": the whole
feature, the official early fusion) is the official BackboneNet: channel dropout on the
input, a 1x1 conv embedding, several classification branches (a conv and a linear head
each, averaged into the T-CAS) and an attention whose softmax over time pools the T-CAS
into the video score. Losses: cross-entropy of the video score against one label (a
multi-label video is one item per label, weighted 1 / its label count), the diversity
loss between branches and the norm regularisation, both weighted ``diversity_weight``.
The background class (C + 1) is trained on "static clips": the snippets of low optical
flow of each training video (``static_clips.npz`` beside the annotations; see
docs/methods.md). The three streams train side by side, one Adam each; the test rule
thresholds the interpolated per-frame T-CAS as detect.py does. Every rule follows the
official code (github:Finspire13/CMCS-Temporal-Action-Localization @ d03f480),
listed with file:line in docs/methods.md.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hamnet.errors import DataError
from hamnet.localize.detections import Detection
from hamnet.localize.proposals import find_runs
from hamnet.methods.base import (
    Method,
    OptimizerSet,
    StepContext,
    TrainItem,
    VideoOutput,
    adam,
    enabled_terms,
    softmax,
)

log = logging.getLogger(__name__)

LOSS_TERMS = ("cls", "div", "norm")
STREAMS = ("rgb", "flow", "both")
# method_options.test_stream: what detect.py localizes on (test.py:73-102)
TEST_STREAMS = ("late-fusion", "both", "rgb", "flow")
STATIC_CLIPS = "static_clips.npz"

# configs/thumos-I3D.json and configs/anet12-local-I3D.json (the README's settings rows 2
# and 4); iterations: the saved check point (max_step_num runs 5 steps past it)
PRESETS: dict[str, dict] = {
    "*": {
        "model": {"dropout": 0.5},
        # cpu_threads 1: a step is thousands of tiny per-video ops; on a shared CPU a
        # second thread makes each wait (7x slower at load 90 on 2 cores, docs/benchmarks.md)
        "train": {"lr": 1e-4, "weight_decay": 1e-3, "batch_size": 24, "cpu_threads": 1},
    },
    # detect.py:453-478: the THUMOS14 kit (TH14evalDet) at tIoU 0.1..0.9, on the file
    # output_detections_thumos14 writes (utils.py:756: 2 decimals of seconds, 4 of score)
    "thumos14": {
        "train": {"iterations": 15000},
        "eval": {"protocol": "thumos14", "tiou": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]},
        "method_options": {"round_output": 1},
    },
    "activitynet12": {
        "train": {"lr": 1e-3, "weight_decay": 1e-4, "batch_size": 32, "iterations": 20000},
        "method_options": {
            "base_width": 256,
            "cls_width": 128,
            "att_width": 128,
            "mean_ratio": 1e-7,
            "lr_decay_step": 10002,
        },
    },
    "demo": {"train": {"batch_size": 10}},
}


@dataclass
class CmcsOptions:
    """Defaults: configs/thumos-I3D.json."""

    branches: int = 4  # cls_branch_num
    base_width: int = 32  # base_layer_params [[32, 1]]
    cls_width: int = 16  # cls_layer_params [[16, 3]]
    cls_kernel: int = 3
    att_width: int = 16  # att_layer_params [[16, 1]]
    diversity_weight: float = 0.2  # weight of the diversity loss and the norm term
    with_bg: int = 1  # a background class (C + 1 outputs) trained on static clips
    bg_ratio_min: float = 0.05  # static frames kept only between these shares of a video
    bg_ratio_max: float = 0.30
    frames_per_snippet: int = 16  # sample_rate: frames between two snippets
    lr_decay_step: int = 0  # learning_rate_decay: lr x 0.1 from this step (0: never)
    test_stream: int = 0  # index into TEST_STREAMS (0: late fusion of rgb and flow)
    class_thresh: float = 0.1  # global_score_thrh (softmax video score, strictly above)
    mean_ratio: float = 1.0  # thrh_value: frames above ratio x the mean of the metric
    dilation_seconds: float = 1.25  # proc_value: dilation of the mask, x sample_rate frames
    inner_weight: float = 1.0  # weight_inner
    outer_penalty: float = 1.0  # -weight_outter (options are >= 0)
    global_weight: float = 0.25  # weight_global
    # 1: seconds to 2 decimals and scores to 4, as the THUMOS14 detection file is written
    round_output: int = 0


def _conv_relu(in_width: int, width: int, kernel: int, prefix: str) -> nn.Sequential:
    """The official ``_get_module_list`` for one layer: names ``{prefix}_conv_0``."""
    layers = OrderedDict(
        [
            (f"{prefix}_conv_0", nn.Conv1d(in_width, width, kernel, padding=kernel // 2)),
            (f"{prefix}_relu_0", nn.ReLU()),
        ]
    )
    return nn.Sequential(layers)


class CmcsStream(nn.Module):
    """model.py BackboneNet with one layer per module (both official configs), its
    parameter names and construction order (so a seed gives the official weights)."""

    def __init__(self, in_width: int, outputs: int, dropout: float, options: CmcsOptions):
        super().__init__()
        self.dropout = nn.Dropout2d(p=dropout)
        self.base = _conv_relu(in_width, options.base_width, 1, "base")
        width = options.base_width
        self.cls_bottoms = nn.ModuleList(
            _conv_relu(width, options.cls_width, options.cls_kernel, f"cls_b{i}")
            for i in range(options.branches)
        )
        self.cls_heads = nn.ModuleList(
            nn.Linear(options.cls_width, outputs) for _ in range(options.branches)
        )
        self.att_bottom = _conv_relu(width, options.att_width, 1, "att")
        self.att_head = nn.Linear(options.att_width, 1)

    def forward(self, x: Tensor, valid: Tensor) -> dict[str, Tensor]:
        """``x`` [B, T, D], ``valid`` [B, T, 1] (1 on real snippets): padded snippets are
        zero before every temporal conv and outside the attention's softmax."""
        x = self.dropout(x.transpose(1, 2).unsqueeze(3)).squeeze(3)
        base = self.base(x) * valid.transpose(1, 2)
        branches = torch.stack(
            [
                head(bottom(base).transpose(1, 2))
                for bottom, head in zip(self.cls_bottoms, self.cls_heads, strict=True)
            ],
            dim=2,
        )  # [B, T, K, C + 1]
        cas = branches.mean(dim=2)
        logits = self.att_head(self.att_bottom(base).transpose(1, 2))
        logits = logits.masked_fill(valid == 0, float("-inf"))
        attention = torch.softmax(logits, dim=1)
        return {
            "cas": cas,
            "attention": attention[..., 0],
            "global": (cas * attention).sum(dim=1),
            "branches": branches,
        }


class CmcsNetwork(nn.Module):
    """The three official models (train.py:400-405 trains rgb, flow, both in turn):
    RGB reads features[:, :D/2], flow features[:, D/2:], both all of it."""

    def __init__(self, feature_dim: int, outputs: int, dropout: float, options: CmcsOptions):
        super().__init__()
        half = feature_dim // 2
        self.rgb = CmcsStream(half, outputs, dropout, options)
        self.flow = CmcsStream(half, outputs, dropout, options)
        self.both = CmcsStream(feature_dim, outputs, dropout, options)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> dict[str, Tensor]:
        """``<stream>_cas`` [B, T, C'], ``_attention`` [B, T], ``_branches`` [B, T, K, C'],
        ``_global`` [B, C'] (per video; an owning method is tested one video at a time)."""
        half = x.shape[-1] // 2
        if mask is None:
            valid = x.new_ones(x.shape[0], x.shape[1], 1)
        else:
            valid = mask.to(x.device, x.dtype)[..., None]
        inputs = {"rgb": x[..., :half], "flow": x[..., half:], "both": x}
        outputs = {}
        for stream in STREAMS:
            found = getattr(self, stream)(inputs[stream], valid)
            outputs.update({f"{stream}_{key}": value for key, value in found.items()})
        return outputs


# ---- losses (train.py:22-60, 246-263) ----


def diversity_loss(branches: Tensor) -> Tensor:
    """get_diversity_loss of one video's branches [K, T, C']: per class, the cosine
    similarity over time of each pair of branches' softmax scores (norms + 1e-6),
    relu(R - I) summed over the K(K - 1) ordered pairs, mean over the classes."""
    count = branches.shape[0]
    scores = torch.softmax(branches, dim=2).permute(2, 0, 1)  # [C', K, T]
    norms = scores.norm(p=2, dim=2, keepdim=True)
    similarity = scores @ scores.transpose(1, 2) / (norms @ norms.transpose(1, 2) + 1e-6)
    eye = torch.eye(count, device=branches.device, dtype=branches.dtype)
    return (F.relu(similarity - eye).sum(dim=(1, 2)) / (count * (count - 1))).mean()


def norm_regularization(branches: Tensor) -> Tensor:
    """get_norm_regularization of one video's branches [K, T, C']: each branch's L1 norm
    over time / T, its absolute deviation from the branches' mean, mean over classes and
    branches."""
    norms = branches.abs().sum(dim=1) / branches.shape[1]  # [K, C']
    return (norms - norms.mean(dim=0, keepdim=True)).abs().mean()


def stream_terms(outputs: dict, stream: str, targets: Tensor, lengths: list[int]) -> dict:
    """cls, div, norm of one stream summed over the batch's items: each item is one
    official single-label video, ``targets`` [B, C'] its one-hot label x its weight
    (train.py:248-255: every term x weight; the gradients of a batch add up)."""
    weights = targets.sum(dim=1)
    log_p = F.log_softmax(outputs[f"{stream}_global"], dim=1)
    cls = -(targets * log_p).sum()
    div = norm = targets.new_zeros(())
    # unbind, not branches[row]: each row's select would, in backward, write a zero
    # tensor of the whole padded batch (the same gradient, one stack instead)
    videos = outputs[f"{stream}_branches"].unbind(0)
    for row, length in enumerate(lengths):
        if weights[row] == 0:
            continue
        video = videos[row][:length].transpose(0, 1)  # [K, T, C']
        div = div + diversity_loss(video) * weights[row]
        norm = norm + norm_regularization(video) * weights[row]
    return {"cls": cls, "div": div, "norm": norm}


def item_targets(labels: Tensor, items: list, outputs: int) -> Tensor:
    """[B, C'] the weighted one-hot label of each item: tag c < C: class c, weight
    1 / the video's label count (utils.py:530-550); tag C: its static clips, the
    background class, weight 1 (utils.py:457-458)."""
    targets = labels.new_zeros(labels.shape[0], outputs)
    for row, item in enumerate(items):
        if item.tag >= labels.shape[1]:
            targets[row, item.tag] = 1.0
        else:
            targets[row, item.tag] = 1.0 / labels[row].sum()
    return targets


def house_targets(labels: Tensor, outputs: int) -> Tensor:
    """A whole multi-label video as the sum of its single-label items: labels / count
    (the same loss, the items seeing the same rows); no background column."""
    targets = labels.new_zeros(labels.shape[0], outputs)
    counts = labels.sum(dim=1, keepdim=True).clamp(min=1.0)
    targets[:, : labels.shape[1]] = labels / counts
    return targets


# ---- the test rule (detect.py:287-404, utils.py:573-739) ----


def dilate(mask: np.ndarray, size: int) -> np.ndarray:
    """skimage dilation by a column of ``size`` ones (utils.py:733): True at i covers
    i - size // 2 .. i + size - 1 - size // 2 (an even column is padded by a leading
    zero; the same in skimage 0.13 and 0.26)."""
    left, right = size // 2, size - 1 - size // 2
    counts = np.concatenate(([0], np.cumsum(mask.astype(np.int64))))
    index = np.arange(mask.size)
    low = np.clip(index - right, 0, mask.size)
    high = np.clip(index + left + 1, 0, mask.size)
    return counts[high] - counts[low] > 0


def frame_metric(column: np.ndarray, stride: int) -> np.ndarray:
    """normalize (x - min, / max, float32, in place as utils.py:573-576), then linear
    interpolation from snippet starts 0, stride, ... to every frame (utils.py:592-631)."""
    metric = np.array(column, dtype=np.float32)
    metric -= metric.min()
    with np.errstate(invalid="ignore", divide="ignore"):
        metric /= metric.max()
    ticks = np.arange(metric.size) * stride
    return np.interp(np.arange(ticks[-1] + 1), ticks, metric.astype(np.float64))


def run_scores(metric: np.ndarray, runs: np.ndarray, options: CmcsOptions) -> list[float]:
    """mask_to_detections (utils.py:678-711): inner mean x weight_inner + outer mean x
    weight_outter (-1: ``outer_penalty``); the outer context is ``int(start - L/4)``
    (at most start - 1) .. ``int(end + L/4)`` (at least end + 1), sliced as Python does:
    a negative start wraps to an empty slice, so a run whose context would cross frame
    0 has none on the left."""
    scores = []
    for start, last in runs.tolist():
        end = last + 1
        length = end - start
        left = min(int(start - length * 0.25), start - 1)
        right = max(int(end + length * 0.25), end + 1)
        outer = np.concatenate((metric[left:start], metric[end:right]))
        score = metric[start:end].mean() * options.inner_weight
        if outer.size:
            score -= outer.mean() * options.outer_penalty
        scores.append(float(score))
    return scores


def cmcs_rule(
    video: str,
    cas: np.ndarray,
    global_score: np.ndarray,
    classes: list[str],
    snippet_seconds: float,
    options: CmcsOptions,
) -> list[Detection]:
    """detect.py's ``detect`` with metric_type "score" (both official configs): classes
    whose softmax video score is above ``class_thresh`` (background never); per class the
    softmax T-CAS column, min-max normalised, interpolated to frames, thresholded above
    ``mean_ratio`` x its mean, dilated by int(dilation_seconds x stride) frames; each run
    scored by run_scores + video score x ``global_weight``; frames / fps seconds
    (fps = stride / snippet_seconds), rounded as the THUMOS14 file when ``round_output``;
    no NMS. A one-snippet video gives none (the official interp1d fails on it)."""
    stride = options.frames_per_snippet
    if cas.shape[0] < 2:
        return []
    scores = _torch_softmax(global_score, 0)
    probs = _torch_softmax(cas, 1)
    size = int(options.dilation_seconds * stride)
    frame_seconds = snippet_seconds / stride
    detections = []
    for c in range(len(classes)):
        if scores[c] <= options.class_thresh:
            continue
        metric = frame_metric(probs[:, c], stride)
        with np.errstate(invalid="ignore"):
            mask = metric > options.mean_ratio * metric.mean()
        runs = find_runs(dilate(mask, size))
        for (start, last), score in zip(
            runs.tolist(), run_scores(metric, runs, options), strict=True
        ):
            score += float(scores[c]) * options.global_weight
            seconds = (start * frame_seconds, (last + 1) * frame_seconds)
            if options.round_output:
                score, seconds = round(score, 4), (round(seconds[0], 2), round(seconds[1], 2))
            detections.append(Detection(video, classes[c], score, *seconds))
    return detections


def _torch_softmax(values: np.ndarray, dim: int) -> np.ndarray:
    """detect.py:223-225: torch's softmax of the saved float32 array."""
    tensor = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))
    return torch.softmax(tensor, dim=dim).numpy()


def fused_outputs(outputs: dict[str, np.ndarray], stream: str) -> dict[str, np.ndarray]:
    """One video's cas, attention, global score of ``stream``; late fusion averages rgb's
    and flow's (test.py:83-102)."""
    keys = ("cas", "attention", "global")
    if stream != "late-fusion":
        return {key: outputs[f"{stream}_{key}"] for key in keys}
    return {key: (outputs[f"rgb_{key}"] + outputs[f"flow_{key}"]) / 2 for key in keys}


class CmcsMethod(Method):
    name = "cmcs"
    label = "CMCS"
    loss_terms = LOSS_TERMS
    options_type = CmcsOptions
    owns_training_data = True

    def __init__(self, config) -> None:
        super().__init__(config)
        self.train_names: list[str] = []
        self.static_rows: dict[str, np.ndarray] = {}
        self.num_classes = 0

    def outputs(self, num_classes: int) -> int:
        return num_classes + int(bool(self.options.with_bg))

    def build_network(self, num_classes: int) -> CmcsNetwork:
        self.num_classes = num_classes
        width = self.config.data.feature_dim
        return CmcsNetwork(
            width, self.outputs(num_classes), self.config.model.dropout, self.options
        )

    def make_optimizer(self, network: CmcsNetwork) -> OptimizerSet:
        """One Adam per stream, as the three official runs (train.py:203-205)."""
        train = self.config.train
        return OptimizerSet(
            **{
                s: adam(getattr(network, s).parameters(), train.lr, train.weight_decay)
                for s in STREAMS
            }
        )

    # ---- training data: single-label items and static clips (utils.py:400-550) ----

    def bind_inputs(self, inputs, annotations) -> None:
        self.num_classes = annotations.num_classes
        try:
            self.train_names = [v.name for v in annotations.subset(self.config.data.train_subset)]
        except DataError:  # a test-only dataset
            self.train_names = []
        self.static_rows = {}
        if self.options.with_bg:
            path = static_clips_path(annotations.source)
            if path is not None and path.is_file():
                self.static_rows = read_static_clips(path, self.options)
            else:
                log.info(
                    "cmcs: no %s beside %s: no static-clip background videos",
                    STATIC_CLIPS,
                    annotations.source,
                )

    def epoch_batches(self, labels, epoch, seed, batch_size):
        """Every (video, label) item and every static-clip item, shuffled each epoch
        (DataLoader shuffle=True), cut into batches of ``batch_size`` (train.py:271)."""
        items = [
            TrainItem(int(v), tag=int(c))
            for v in range(labels.shape[0])
            for c in np.flatnonzero(labels[v])
        ]
        background = labels.shape[1]
        items += [
            TrainItem(v, tag=background)
            for v, name in enumerate(self.train_names)
            if name in self.static_rows and v < labels.shape[0]
        ]
        order = np.random.default_rng([seed, epoch, 11]).permutation(len(items))
        shuffled = [items[i] for i in order]
        return [shuffled[i : i + batch_size] for i in range(0, len(shuffled), batch_size)]

    def training_rows(self, length, item, rng, step):
        """The whole video (training_max_len is null), or its static snippets."""
        if item.tag < self.num_classes or not self.train_names:
            return np.arange(length)
        rows = self.static_rows[self.train_names[item.index]]
        return rows[rows < length]

    # ---- losses and the step ----

    def losses(self, outputs: dict, labels: Tensor, mask: Tensor | None) -> dict[str, Tensor]:
        width = outputs["rgb_global"].shape[1]
        if labels.shape[1] == width and labels.shape[1] != self.num_classes:
            targets = labels  # already the items' weighted one-hot labels
        else:
            targets = house_targets(labels.float(), width)
        return self.item_losses(outputs, targets, mask)

    def item_losses(self, outputs: dict, targets: Tensor, mask: Tensor | None) -> dict:
        batch, steps = outputs["rgb_cas"].shape[:2]
        lengths = [steps] * batch if mask is None else mask.sum(dim=1).tolist()
        sums = {name: targets.new_zeros(()) for name in LOSS_TERMS}
        for stream in STREAMS:
            for name, value in stream_terms(outputs, stream, targets, lengths).items():
                sums[name] = sums[name] + value
        weight = self.options.diversity_weight
        weights = {"cls": 1.0, "div": weight, "norm": weight}
        terms = {name: (lambda v=value: v) for name, value in sums.items()}
        return enabled_terms(terms, weights, LOSS_TERMS, self.config.loss.losses, sums["cls"] * 0)

    def train_step(self, batch, context: StepContext) -> dict[str, Tensor]:
        """One official update of each stream: the batch's losses summed (its videos'
        gradients accumulate, train.py:268), Adam; lr x 0.1 from ``lr_decay_step``."""
        width = self.outputs(batch.labels.shape[1])
        targets = item_targets(batch.labels.float(), batch.items, width)
        with context.autocast():
            outputs = context.network(batch.features, batch.mask)
        terms = self.item_losses(outputs, targets.to(batch.features.device), batch.mask)
        self.set_learning_rate(context.optimizer, context.step)
        context.optimizer.zero_grad(set_to_none=True)
        (terms["total"] * context.scale).backward()
        context.optimizer.step()
        return {key: value.detach() for key, value in terms.items()}

    def set_learning_rate(self, optimizer: OptimizerSet, step: int) -> None:
        """MultiStepLR(milestones=[max_step_num // 2], gamma 0.1) (train.py:207-209)."""
        decay = self.options.lr_decay_step
        factor = 0.1 if decay and step >= decay else 1.0
        for group in optimizer.param_groups:
            group["lr"] = self.config.train.lr * factor

    # ---- test ----

    def test_stream(self) -> str:
        return TEST_STREAMS[self.options.test_stream]

    def reference_detections(self, output: VideoOutput, classes: list[str], settings) -> list:
        return cmcs_rule(
            output.name,
            output.cas,
            output.extras["global"],
            classes,
            settings.snippet_seconds,
            self.options,
        )

    def video_output(self, name: str, outputs: dict[str, np.ndarray]) -> VideoOutput:
        """The test stream's T-CAS (background last) and attention; the video scores are
        the softmax of its attention-pooled score, background dropped."""
        fused = fused_outputs(outputs, self.test_stream())
        cas, attention = fused["cas"], fused["attention"]
        classes = cas.shape[1] - int(bool(self.options.with_bg))
        actionness = attention / max(float(attention.max()), 1e-12)
        probs = softmax(cas.astype(np.float64), axis=1)[:, :classes]
        return VideoOutput(
            name,
            cas,
            attention,
            actionness,
            softmax(fused["global"].astype(np.float64))[:classes],
            self.localization_source(),
            attended=probs,
            extras={"global": fused["global"]},
            # train.py:147-156: the raw pooled scores, background dropped
            classification_scores=fused["global"][:classes],
        )


def static_clips_path(source: str) -> Path | None:
    """``static_clips.npz`` in the annotations' folder (or beside their file)."""
    if source.startswith("<"):
        return None
    where = Path(source)
    return (where if where.is_dir() else where.parent) / STATIC_CLIPS


def read_static_clips(path: Path, options: CmcsOptions) -> dict[str, np.ndarray]:
    """Per video, the snippets of its static clips: the official per-frame masks (the
    ``mask`` of tools/get_flow_intensity_anet.py, one array per video name) kept when
    between ``bg_ratio_min`` and ``bg_ratio_max`` of the frames, then every
    ``frames_per_snippet``-th frame (utils.py:400-465)."""
    try:
        with np.load(path, allow_pickle=False) as content:
            masks = {name: np.asarray(content[name]) for name in content.files}
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: not a readable npz of static-clip masks ({error})") from None
    rows = {}
    for name, mask in masks.items():
        if mask.ndim != 1 or mask.size == 0:
            raise DataError(f"{path}: mask of video {name!r} is not a non-empty 1-D array")
        ratio = float(np.count_nonzero(mask)) / mask.size
        if not options.bg_ratio_min <= ratio <= options.bg_ratio_max:
            continue
        found = np.flatnonzero(mask[:: options.frames_per_snippet].astype(bool))
        if found.size:
            rows[name] = found
    return rows
