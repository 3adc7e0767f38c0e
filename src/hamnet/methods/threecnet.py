"""3C-Net (Narayan, Cholakkal, Khan, Shao, ICCV 2019): category count and center loss.

Two streams (RGB: the first half of each feature, flow: the second), each two FC+ReLU
layers and a linear classifier; the T-CAS is ``cls_r * mul_r + cls_f * mul_f`` with a
learnt multiplier per class (ActivityNet: then a depthwise temporal conv and a ReLU).
Losses: the top-k MIL classification loss of each stream and of the T-CAS, a center loss
on each stream's attention-pooled features (its centers trained by their own SGD), and,
every second iteration, a counting loss on the attention-weighted T-CAS against the
number of ground-truth instances of each class. Every rule follows the official code
(github:naraysa/3c-net @ 8b1d4a9), listed with file:line in docs/methods.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

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
    topk_video_scores,
)
from hamnet.methods.layers import xavier_init

LOSS_TERMS = ("cls", "center", "count")

# main.py:22-26 (crop lengths), main.py:45 (Adam, weight decay 5e-4), options.py (lr 1e-4,
# batch 32, 50000 iterations); the README's commands set only the dataset
PRESETS: dict[str, dict] = {
    "*": {
        "model": {"dropout": 0.7},
        "loss": {"topk_ratio_inv": 8},
        "train": {"lr": 1e-4, "weight_decay": 5e-4, "batch_size": 32},
        "localize": {
            "thresholds": [0.5],
            "outer_ratio": 0.0,
            "video_score_weight": 0.0,
            "nms": "none",
        },
    },
    "thumos14": {"train": {"iterations": 50000}},
    "activitynet12": {
        "train": {"iterations": 50000},
        "method_options": {
            "crop": 200,
            "count_crop": 400,
            "count_weight": 0.1,
            "activitynet": 1,
        },
    },
    "demo": {"method_options": {"crop": 64, "count_crop": 128}},
}


@dataclass
class ThreeCOptions:
    """Defaults are the official code's THUMOS14 values (docs/methods.md)."""

    crop: int = 750  # t_max: training crop of odd iterations (and of iteration 0)
    count_crop: int = 2800  # t_max_ctc: crop of even iterations, where counting trains
    count_weight: float = 1.0  # countloss_mult (0.1 on ActivityNet)
    count_negative_weight: float = 0.001  # absent classes' |predicted count|
    center_weight: float = 0.001  # centerloss_alpha
    center_lr: float = 0.1  # SGD of the centers (their gradient is divided by the weight)
    center_single_label_until: int = 5000  # itr_th: before it, single-label videos only
    min_length: int = 5  # CLSLOSS skips videos of fewer snippets
    # 1: the official --activity-net run (100 classes): the depthwise Conv1d(13, dilation
    # 2) + ReLU on the T-CAS (model.py:29-31, 58-59) and ActivityNet's detection rule
    activitynet: int = 0


class ThreeCNetwork(nn.Module):
    """The official Model with the two streams' class centers beside it (main.py draws
    them right after the model; keeping them here saves them in checkpoints)."""

    def __init__(
        self, feature_dim: int, num_classes: int, dropout: float, temporal_conv: bool
    ) -> None:
        super().__init__()
        half = feature_dim // 2
        self.fc_f, self.fc1_f = nn.Linear(half, half), nn.Linear(half, half)
        self.fc_r, self.fc1_r = nn.Linear(half, half), nn.Linear(half, half)
        self.classifier_f = nn.Linear(half, num_classes)
        self.classifier_r = nn.Linear(half, num_classes)
        self.conv = None
        if temporal_conv:
            self.conv = nn.Conv1d(
                num_classes, num_classes, 13, padding=12, dilation=2, bias=False, groups=num_classes
            )
        xavier_init(self)
        self.mul_r = nn.Parameter(torch.ones(num_classes))
        self.mul_f = nn.Parameter(torch.ones(num_classes))
        self.dropout_f, self.dropout_r = nn.Dropout(dropout), nn.Dropout(dropout)
        # CenterLoss(num_classes, 1024): torch.randn, flow's first (main.py:43-46)
        self.centers_f = nn.Parameter(torch.randn(num_classes, half))
        self.centers_r = nn.Parameter(torch.randn(num_classes, half))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> dict[str, Tensor]:
        half = x.shape[-1] // 2
        lengths = snippet_counts(x, mask)
        x_f = F.relu(self.fc1_f(F.relu(self.fc_f(x[..., half:]))))
        x_r = F.relu(self.fc1_r(F.relu(self.fc_r(x[..., :half]))))
        x_f, x_r = self.dropout_f(x_f), self.dropout_r(x_r)  # identities in eval mode
        logits_f, logits_r = self.classifier_f(x_f), self.classifier_r(x_r)
        tcam = logits_r * self.mul_r + logits_f * self.mul_f
        if self.conv is not None:
            tcam = F.relu(self.conv(tcam.transpose(1, 2))).transpose(1, 2)
        outputs = {"cas": tcam, "logits_f": logits_f, "logits_r": logits_r}
        if self.training:
            outputs.update(
                features_f=x_f,
                features_r=x_r,
                count_feat=tcam * attention_within(tcam, lengths),
                lengths=lengths,
            )
        return outputs

    def model_parameters(self) -> list[nn.Parameter]:
        """What the official Adam trains: everything but the centers."""
        return [p for name, p in self.named_parameters() if not name.startswith("centers_")]


def snippet_counts(x: Tensor, mask: Tensor | None) -> Tensor:
    """[B]: rows whose features are not all zero (train.py:108, test.py:27 count them
    so; the zero-padded batch makes that the length), within ``mask`` when given."""
    nonzero = x.abs().amax(dim=-1) > 0
    if mask is not None:
        nonzero = nonzero & mask.to(nonzero.device)
    return nonzero.sum(dim=1)


def attention_within(tcam: Tensor, lengths: Tensor) -> Tensor:
    """Softmax over time of each video's first ``length`` rows; the raw T-CAS after them
    (model.py:62-71)."""
    steps = torch.arange(tcam.shape[1], device=tcam.device)
    valid = (steps[None, :] < lengths[:, None])[..., None]
    weights = torch.softmax(tcam.masked_fill(~valid, float("-inf")), dim=1)
    return torch.where(valid, weights, tcam)


def mil_loss(logits: Tensor, lengths: np.ndarray, labels: Tensor, min_length: int) -> Tensor:
    """CLSLOSS (train.py:14-31): cross-entropy of the softmax of the mean of the
    ceil(T/8) largest logits against the labels normalised to sum 1; videos shorter than
    ``min_length`` or unlabelled are left out (none left: NaN, as the official mean)."""
    target = labels / (labels.sum(dim=1, keepdim=True) + 1e-10)
    pooled, kept = [], []
    for i, length in enumerate(lengths.tolist()):
        if length < min_length or labels[i].sum() == 0:
            continue
        k = math.ceil(length / 8)
        pooled.append(torch.topk(logits[i, :length], k, dim=0)[0].mean(dim=0))
        kept.append(i)
    if not pooled:
        return logits.new_full((), float("nan"))
    log_p = F.log_softmax(torch.stack(pooled), dim=1)
    return -(target[kept] * log_p).sum(dim=1).mean()


def center_loss(
    features: Tensor,
    logits: Tensor,
    labels: Tensor,
    lengths: np.ndarray,
    centers: Tensor,
    single_label_only: bool,
) -> Tensor:
    """CENTERLOSS (train.py:55-84) with CenterLoss.forward (center_loss.py:25-49): per
    labelled class of a video, its features pooled by the class's softmax-over-time
    attention with values under their mean zeroed; squared distance to the class
    center, multiplied by the class index as center_loss.py:43 does, clamped, mean,
    divided by the number of pooled features."""
    pooled, classes = [], []
    for i, length in enumerate(lengths.tolist()):
        present = torch.nonzero(labels[i] > 0).flatten()
        if present.numel() == 0 or (present.numel() != 1 and single_label_only):
            continue
        attention = torch.softmax(logits[i, :length], dim=0)[:, present]
        for column, label in enumerate(present.tolist()):
            weights = attention[:, column : column + 1]
            weights = torch.where(weights < weights.mean(), torch.zeros_like(weights), weights)
            total = weights.sum()
            if total > 0:
                pooled.append((features[i, :length] * weights).sum(dim=0) / total)
                classes.append(label)
    if not pooled:
        return features.new_zeros(())
    feat = torch.stack(pooled)
    index = torch.tensor(classes, device=feat.device)
    squares = feat.pow(2).sum(dim=1, keepdim=True) + centers.pow(2).sum(dim=1)[None, :]
    distances = torch.addmm(squares, feat, centers.t(), beta=1, alpha=-2)
    value = distances[torch.arange(len(classes)), index] * index.to(feat.dtype)
    return value.clamp(min=1e-12, max=1e12).mean() / len(classes)


def count_loss(
    count_feat: Tensor, counts: Tensor, lengths: np.ndarray, negative_weight: float
) -> Tensor:
    """COUNTINGLOSS (train.py:34-52): relative L1 between the summed attention-weighted
    T-CAS and the instance count of each present class (count below the length), plus
    ``negative_weight`` x |sum| for the others; mean over the batch."""
    inverse = (counts > 0).to(count_feat.dtype) / (counts + 1e-10)
    total = count_feat.new_zeros(())
    for i, length in enumerate(lengths.tolist()):
        present = (counts[i] < length) & (counts[i] > 0)
        predicted = count_feat[i, :length].sum(dim=0)
        error = (predicted[present] - counts[i][present]) * inverse[i][present]
        total = total + error.abs().sum() + negative_weight * predicted[~present].abs().sum()
    return total / count_feat.shape[0]


def threecnet_rule(
    video: str, cas: np.ndarray, classes: list[str], snippet_seconds: float, activitynet: bool
) -> list[Detection]:
    """detectionMAP.py getLocMAP (lines 96-127): class score = mean of the int(T/8)
    (at least 1) largest T-CAS values; THUMOS14 keeps classes scoring above half the
    best and above 0 (ActivityNet: above 0); per kept class, runs where the T-CAS is
    above max - 0.5 (max - min) (ActivityNet: above 0), of at least 2 snippets, scored
    run max + class score; [s, e) in snippets, no NMS."""
    cas = np.asarray(cas, dtype=np.float32)
    count = max(1, cas.shape[0] // 8)
    class_score = (-np.sort(-cas, axis=0))[:count].mean(axis=0)
    kept = class_score > 0
    if not activitynet:
        kept &= class_score > np.max(class_score) / np.float32(2)
    detections = []
    for c in np.flatnonzero(kept):
        column = cas[:, c]
        threshold = np.float32(0.0)
        if not activitynet:
            threshold = np.max(column) - (np.max(column) - np.min(column)) * np.float32(0.5)
        for s, last in find_runs(column > threshold).tolist():
            if last + 1 - s < 2:
                continue
            score = float(np.max(column[s : last + 1]) + class_score[c])
            seconds = (s * snippet_seconds, (last + 1) * snippet_seconds)
            detections.append(Detection(video, classes[c], score, *seconds))
    return detections


def pooled_softmax(logits: np.ndarray) -> np.ndarray:
    """softmax of the mean of the ceil(T/8) largest values per column (float32)."""
    count = math.ceil(logits.shape[0] / 8)
    top = (-np.sort(-logits.astype(np.float32), axis=0))[:count]
    return softmax(top.mean(axis=0, dtype=np.float32))


class ThreeCNetMethod(Method):
    name = "3cnet"
    label = "3C-Net"
    loss_terms = LOSS_TERMS
    options_type = ThreeCOptions
    owns_training_data = True
    reference_scores_unlabelled = True  # test.py tests every video that is not training

    def __init__(self, config) -> None:
        super().__init__(config)
        self.step = 0
        self.class_index: dict[str, int] = {}

    def build_network(self, num_classes: int) -> ThreeCNetwork:
        return ThreeCNetwork(
            self.config.data.feature_dim,
            num_classes,
            self.config.model.dropout,
            bool(self.options.activitynet),
        )

    def make_optimizer(self, network: ThreeCNetwork) -> OptimizerSet:
        train = self.config.train
        centers = [network.centers_f, network.centers_r]
        return OptimizerSet(
            model=adam(network.model_parameters(), train.lr, train.weight_decay),
            centers=torch.optim.SGD(centers, lr=self.options.center_lr),
        )

    def set_progress(self, step: int, total: int) -> None:
        self.step = step

    def bind_inputs(self, inputs, annotations) -> None:
        self.class_index = {name: i for i, name in enumerate(annotations.classes)}

    # ---- sampling (video_dataset.py load_data, utils.py process_feat, main.py:66-69) ----

    def epoch_batches(self, labels, epoch, seed, batch_size):
        """Each step draws ``batch_size`` training videos with replacement; an epoch is
        ceil(N / batch) steps. The tag (position in the epoch) keys each item's crop."""
        count = labels.shape[0]
        rng = np.random.default_rng([seed, epoch, 3])
        steps = -(-count // batch_size)
        draws = rng.integers(0, count, size=(steps, batch_size))
        return [
            [
                TrainItem(int(video), tag=step * batch_size + position)
                for position, video in enumerate(row)
            ]
            for step, row in enumerate(draws)
        ]

    def crop_length(self, step: int) -> int:
        """t_max: the counting crop on even iterations after the first (main.py:67-69)."""
        long_step = step % 2 == 0 and step > 0
        return self.options.count_crop if long_step else self.options.crop

    def training_rows(self, length, item, rng, step):
        """A random window of t_max rows (start drawn below length - t_max, as
        np.random.randint does), or the whole video when shorter."""
        crop = self.crop_length(step)
        if length <= crop:
            return np.arange(length)
        start = int(rng.integers(0, length - crop))
        return np.arange(start, start + crop)

    def video_targets(self, video, rows, length, item):
        """The number of ground-truth instances of each class in the whole video
        (video_dataset.py get_count)."""
        counts = np.zeros(len(self.class_index), dtype=np.float32)
        for segment in video.segments:
            counts[self.class_index[segment.label]] += 1
        return {"count": counts}

    # ---- losses and the step (train.py:87-140) ----

    def losses(self, outputs: dict, labels: Tensor, mask: Tensor | None) -> dict[str, Tensor]:
        return self.step_losses(outputs, labels, None, self.step)

    def step_losses(self, outputs, labels, counts, step) -> dict[str, Tensor]:
        """The enabled terms at iteration ``step``: center from the second iteration on
        (when the centers are given), count on even iterations after the first (when
        the counts are given) and only when positive; zero where inactive."""
        lengths = outputs["lengths"].cpu().numpy()
        options, labels = self.options, labels.float()
        zero = outputs["cas"].new_zeros((), dtype=torch.float32)

        def cls() -> Tensor:
            keys = ("logits_f", "logits_r", "cas")
            return sum(mil_loss(outputs[k], lengths, labels, options.min_length) for k in keys)

        def center() -> Tensor:
            if step == 0 or "centers" not in outputs:
                return zero
            single = step < options.center_single_label_until
            return sum(
                center_loss(
                    outputs[f"features_{s}"], outputs[f"logits_{s}"], labels, lengths, c, single
                )
                for s, c in zip("fr", outputs["centers"], strict=True)
            )

        def count() -> Tensor:
            if step % 2 or step == 0 or counts is None:
                return zero
            loss = count_loss(outputs["count_feat"], counts, lengths, options.count_negative_weight)
            return loss if loss.item() > 0 else zero

        terms = {"cls": cls, "center": center, "count": count}
        weights = {"cls": 1.0, "center": options.center_weight, "count": options.count_weight}
        return enabled_terms(terms, weights, LOSS_TERMS, self.config.loss.losses, zero)

    def train_step(self, batch, context: StepContext) -> dict[str, Tensor]:
        """One official iteration: the model's Adam steps only when the total is > 0;
        the centers' SGD steps from the second iteration on, its gradient divided by the
        center weight first."""
        network = getattr(context.network, "module", context.network)
        with context.autocast():
            outputs = context.network(batch.features, batch.mask)
        outputs["centers"] = (network.centers_f, network.centers_r)
        counts = torch.stack([row["count"] for row in batch.targets]).to(batch.features.device)
        terms = self.step_losses(outputs, batch.labels, counts, context.step)
        context.optimizer.zero_grad(set_to_none=True)
        total = terms["total"]
        stepped = bool(total > 0)
        if stepped:
            (total * context.scale).backward()
        if context.step > 0:
            for center in (network.centers_f, network.centers_r):
                if center.grad is not None:
                    center.grad.mul_(1.0 / self.options.center_weight)
            context.optimizer["centers"].step()
        if stepped:
            context.optimizer["model"].step()
        return {key: value.detach() for key, value in terms.items()}

    # ---- test (test.py:18-33, detectionMAP.py) ----

    def localization_source(self) -> str:
        return "cas"

    def reference_detections(self, output: VideoOutput, classes: list[str], settings) -> list:
        activitynet = bool(self.options.activitynet)
        return threecnet_rule(
            output.name, output.cas, classes, settings.snippet_seconds, activitynet
        )

    def video_output(self, name: str, outputs: dict[str, np.ndarray]) -> VideoOutput:
        """Classification ranks the sum of the three streams' pooled softmaxes (test.py:
        29-31); the detection video score and the shared rule's per-class signal are
        the T-CAS's, as for W-TALC."""
        cas = outputs["cas"]
        pooled = topk_video_scores(cas, math.ceil(cas.shape[0] / 8))
        low, high = cas.min(axis=0), cas.max(axis=0)
        scaled = ((cas - low) / np.maximum(high - low, 1e-12)).astype(np.float32)
        foreground = scaled.max(axis=1)
        ranked = sum(pooled_softmax(outputs[key]) for key in ("logits_f", "logits_r", "cas"))
        return VideoOutput(
            name,
            cas,
            foreground,
            foreground,
            softmax(pooled),
            self.localization_source(),
            attended=cas,
            class_actionness=scaled,
            classification_scores=ranked,
        )
