"""P-MIL (Ren et al., CVPR 2023): proposal-based multiple-instance learning, a second stage.

A teacher's proposals (``RUN/inputs/proposals.json``, P-MIL's JSON) are the instances:
each proposal, extended by a quarter of its length on both sides, is RoI-aligned to 12
rows per stream; its surrounding-contrastive feature (inner max minus the max of each
outer sixth, beside the inner max) goes through a fusion layer and three 1x1 heads
(classes + background, attention, completeness), per stream. Losses: top-k MIL of the
proposal scores (with and without the background), instance-level rank consistency
between the streams, and completeness against NMS-selected pseudo instances. Every rule
follows github:RenHuan1999/CVPR2023_P-MIL @ 855e683 (docs/methods.md, file:line).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hamnet.errors import DataError
from hamnet.io import read_json
from hamnet.localize.detections import Detection
from hamnet.localize.reference_rules import overlaps_ambiguous, soft_nms
from hamnet.methods.base import Method, StepContext, TrainItem, VideoOutput, enabled_terms
from hamnet.timing import snippets_per_second

LOSS_TERMS = ("mil_orig", "mil_supp", "irc", "comp")
log = logging.getLogger(__name__)

# options.py defaults (its README trains THUMOS14 with them): lr 5e-5, weight decay 1e-3,
# batch 10, 200 epochs
PRESETS: dict[str, dict] = {
    "*": {"train": {"lr": 5e-5, "weight_decay": 1e-3, "batch_size": 10}},
    "thumos14": {"train": {"epochs": 200}},
    # the official code ships no ActivityNet script or options: hamnet's choice, the same
    # values (docs/methods.md, P-MIL)
    "activitynet12": {"train": {"epochs": 200}},
    "demo": {},
}


@dataclass
class PmilOptions:
    roi_size: int = 12
    max_proposal: int = 1000  # proposals of one training video (sampled beyond)
    dropout: float = 0.5
    topk: float = 8.0  # k: the top M // k proposals pool a video score
    gamma: float = 0.8  # pseudo instances: attention above gamma x the maximum
    weight_mil_orig: float = 2.0
    weight_mil_supp: float = 1.0
    weight_irc: float = 2.0
    weight_comp: float = 20.0
    rampup_length: int = 30  # epochs of the exponential ramp-up of irc and comp
    threshold_cls: float = 0.2
    gamma_vid: float = 0.2  # the video score's share of a proposal's score
    # 1: a class whose video has no proposal above its mean attention (one proposal, or
    # equal attentions) adds 0 to IRC; the official mean over none is NaN (model.py:317-318)
    irc_skip_empty: int = 0


# ---- the network (model.py:10-150) --------------------------------------------------


class ProposalBackbone(nn.Module):
    """One stream: fusion of the three RoI parts, then class, attention, completeness."""

    def __init__(self, dim: int, num_classes: int, dropout: float, roi_size: int) -> None:
        super().__init__()
        half = dim // 2
        self.roi_size = roi_size
        self.prop_fusion = nn.Sequential(nn.Linear(dim * 3, dim), nn.ReLU(), nn.Dropout(dropout))
        self.prop_classifier = _head(dim, half, num_classes + 1)
        self.prop_attention = _head(dim, half, 1)
        self.prop_completeness = _head(dim, half, 1)

    def forward(self, feat: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """[B, M, roi, D] -> cas [B, M, C+1], attention and completeness logits [B, M, 1]."""
        sixth = self.roi_size // 6
        outer_start = feat[:, :, :sixth].max(2)[0]
        inner = feat[:, :, sixth : sixth * 5].max(2)[0]
        outer_end = feat[:, :, sixth * 5 :].max(2)[0]
        fused = self.prop_fusion(torch.cat((inner - outer_start, inner, inner - outer_end), dim=2))
        fused = fused.transpose(-1, -2)
        heads = (self.prop_classifier, self.prop_attention, self.prop_completeness)
        return tuple(head(fused).transpose(-1, -2) for head in heads)


def _head(dim: int, half: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(dim, half, 1), nn.ReLU(), nn.Conv1d(half, out, 1))


class PmilNetwork(nn.Module):
    """Two streams (RGB = first half of the features, flow = second), PyTorch's init."""

    def __init__(self, feature_dim: int, num_classes: int, options: PmilOptions) -> None:
        super().__init__()
        half = feature_dim // 2
        self.roi_size, self.max_proposal = options.roi_size, options.max_proposal
        self.prop_v_backbone = ProposalBackbone(
            half, num_classes, options.dropout, options.roi_size
        )
        self.prop_f_backbone = ProposalBackbone(
            half, num_classes, options.dropout, options.roi_size
        )

    def forward(self, x: Tensor, lengths: Tensor, proposals: list[Tensor]) -> dict[str, Tensor]:
        """``x`` [B, T, D] padded, ``lengths`` [B], ``proposals``: per video [M, 2] snippets."""
        feat, mask = self.roi_features(x, lengths, proposals)
        half = x.shape[-1] // 2
        v_cas, v_attn, v_iou = self.prop_v_backbone(feat[..., :half])
        f_cas, f_attn, f_iou = self.prop_f_backbone(feat[..., half:])
        return {
            "prop_v_cas": v_cas,
            "prop_f_cas": f_cas,
            "prop_v_attn": v_attn,
            "prop_f_attn": f_attn,
            "prop_v_iou": v_iou,
            "prop_f_iou": f_iou,
            "prop_mask": mask,
        }

    def roi_features(self, x, lengths, proposals) -> tuple[Tensor, Tensor]:
        """model.py:77-125: [B, M, roi, D] and the proposal mask [B, M]; in training a
        video with more than ``max_proposal`` proposals keeps a random subset."""
        counts = [len(p) for p in proposals]
        most = max(counts)
        if self.training:
            most = min(most, self.max_proposal)
        out = x.new_zeros((len(proposals), most, self.roi_size, x.shape[-1]))
        mask = x.new_zeros((len(proposals), most))
        for i, proposal in enumerate(proposals):
            if counts[i] > most:
                proposal = proposal[torch.randperm(counts[i])[:most]]
            out[i, : len(proposal)] = roi_align(x[i, : int(lengths[i])], proposal, self.roi_size)
            mask[i, : len(proposal)] = 1
        return out, mask


def roi_align(feature: Tensor, proposal: Tensor, size: int) -> Tensor:
    """torchvision.ops.roi_align (aligned=False, sampling_ratio -1) of each proposal,
    extended by 25 % on both sides, over ``feature`` [T, D] padded with zero rows as
    model.py:103-113 pads it -> [M, size, D]. A bin averages ceil(h / size) linear
    interpolations, h = max(extended length, 1)."""
    start, end = proposal[:, 0], proposal[:, 1]
    length = end - start
    fill = int(torch.ceil(0.25 * length.max()).item()) + 1
    blank = feature.new_zeros((fill, feature.shape[1]))
    padded = torch.cat([blank, feature, blank], dim=0)
    low = start - 0.25 * length + fill - 0.5
    high = end + 0.25 * length + fill - 0.5
    height = torch.clamp(high - low, min=1.0)
    bin_size = height / size
    grid = torch.ceil(height / size).long()  # samples per bin
    weights = _interpolation_weights(low, bin_size, grid, size, padded.shape[0])
    return (weights @ padded).reshape(len(proposal), size, -1)


def _interpolation_weights(low, bin_size, grid, size, rows) -> Tensor:
    """[M * size, rows]: each bin's mean of its samples' linear interpolation weights."""
    count = int(grid.max().item())
    sample = torch.arange(count, device=low.device)
    bins = torch.arange(size, device=low.device)
    # y of sample iy in bin ph: low + ph * bin + (iy + 0.5) * bin / grid
    y = (
        low[:, None, None]
        + bins[None, :, None] * bin_size[:, None, None]
        + (sample[None, None, :] + 0.5) * bin_size[:, None, None] / grid[:, None, None]
    )
    used = (sample[None, None, :] < grid[:, None, None]).expand_as(y)
    inside = used & (y >= -1.0) & (y <= rows)
    y = torch.clamp(y, min=0.0)
    y_low = torch.floor(y).long()
    top = y_low >= rows - 1
    y_low = torch.where(top, torch.full_like(y_low, rows - 1), y_low)
    y = torch.where(top, y_low.to(y.dtype), y)
    y_high = torch.where(top, y_low, y_low + 1)
    frac = y - y_low.to(y.dtype)
    scale = inside.to(y.dtype) / grid[:, None, None].to(y.dtype)
    weights = low.new_zeros((low.shape[0], size, rows))
    weights.scatter_add_(2, y_low, (1 - frac) * scale)
    weights.scatter_add_(2, y_high, frac * scale)
    return weights.reshape(-1, rows)


# ---- losses (model.py:186-375) --------------------------------------------------------


def segments_iou(a: Tensor, b: Tensor) -> Tensor:
    """[Ma, Mb] tIoU of [start, end] rows; negative values 0 (model.py:165-184)."""
    a, b = a.unsqueeze(1), b.unsqueeze(0)
    inter = torch.minimum(a[..., 1], b[..., 1]) - torch.maximum(a[..., 0], b[..., 0])
    union = (a[..., 1] - a[..., 0]) + (b[..., 1] - b[..., 0]) - inter
    iou = inter / (union + 1e-6)
    return torch.where(iou > 0, iou, torch.zeros_like(iou))


def topk_mil_loss(cas, labels, valid, with_background: bool, k: float) -> Tensor:
    """prop_topk_loss: per video, the mean of the top max(1, int(M // k)) proposal
    scores, cross-entropy against the labels (+ background 1 or 0) normalised (+1e-4)."""
    back = torch.ones_like(labels[:, :1]) if with_background else torch.zeros_like(labels[:, :1])
    target = torch.cat((labels, back), dim=-1)
    target = target / (target.sum(dim=-1, keepdim=True) + 1e-4)
    loss = 0
    for b in range(cas.shape[0]):
        rows = cas[b][valid[b]]
        top = torch.topk(rows, k=max(1, int(rows.shape[0] // k)), dim=0)[0]
        loss = loss - (target[b] * F.log_softmax(top.mean(dim=0), dim=-1)).sum()
    return loss / cas.shape[0]


def rank_consistency_loss(
    student, teacher, attention, labels, valid, proposals, skip_empty: bool = False
) -> Tensor:
    """prop_irc_loss: per labelled class, KL between the teacher's and the student's
    softmax over the proposals overlapping each proposal, on proposals whose (teacher
    stream's) attention is above its mean; mean over classes, then videos. With no such
    proposal the official mean is NaN; ``skip_empty`` counts it 0 instead."""
    loss = 0
    for b, proposal in enumerate(proposals):
        attn = attention[b][valid[b]][:, 0]
        stu, tea = student[b][valid[b]], teacher[b][valid[b]]
        overlap = segments_iou(proposal, proposal)
        offset = torch.where(overlap > 0, torch.zeros_like(overlap), torch.full_like(overlap, -1e3))
        per_video = 0
        for c in torch.where(labels[b])[0]:
            p_tea = F.softmax(offset + tea[:, c].unsqueeze(0), dim=1)
            log_stu = F.log_softmax(offset + stu[:, c].unsqueeze(0), dim=1)
            kl = F.kl_div(log_stu, p_tea.detach(), reduction="none").sum(-1)
            retained = attn > attn.mean()
            if skip_empty and not bool(retained.any()):
                continue
            per_video = per_video + kl[retained].mean()
        loss = loss + per_video / labels[b].sum()
    return loss / len(proposals)


def completeness_loss(pred_iou, attention, valid, proposals, gamma: float) -> Tensor:
    """prop_comp_loss: pseudo instances by NMS over the proposals of attention above
    gamma x the maximum (an overlap removes); MSE of the predicted completeness against
    each proposal's best tIoU with them."""
    loss = 0
    for b, proposal in enumerate(proposals):
        attn = attention[b][valid[b]][:, 0]
        predicted = pred_iou[b][valid[b]][:, 0]
        overlapping = segments_iou(proposal, proposal) > 0
        chosen = []
        retained = attn > gamma * torch.max(attn)
        while retained.sum() > 0:
            best = torch.where(retained)[0][torch.max(attn[retained], dim=0)[1]]
            retained[overlapping[best]] = False
            chosen.append(best)
        pseudo = proposal[torch.stack(chosen)]
        target = segments_iou(proposal, pseudo).max(dim=1)[0]
        loss = loss + F.mse_loss(predicted, target)
    return loss / len(proposals)


def rampup(epoch: int, length: int) -> float:
    """get_consistency_weight: exp(-5 (1 - e / L)^2), e clipped to [0, L]."""
    if length == 0:
        return 1.0
    phase = 1.0 - float(np.clip(epoch, 0.0, length)) / length
    return float(np.exp(-5.0 * phase * phase))


# ---- proposals files (dataset.py:36-88) ----------------------------------------------


def read_proposals(path: Path, annotations, snippet_seconds: float) -> dict[str, np.ndarray]:
    """Each video's proposals in snippets (``round(t * 25 / 16, 2)``; none: one [0, 0])
    from a P-MIL JSON (``{"results": {video: [{"segment": [s, e], ...}]}}``); every
    video of the dataset must be there, every segment a finite span inside its video."""
    raw = read_json(path, DataError)
    results = raw.get("results") if isinstance(raw, dict) else None
    if not isinstance(results, dict) or not results:
        raise DataError(f"{path}: no proposals (expected a 'results' object of videos)")
    known = {video.name: video for video in annotations.videos}
    unknown = sorted(set(results) - set(known))
    if unknown:
        raise DataError(f"{path}: proposals for {unknown[0]!r}, a video the dataset does not have")
    rate = snippets_per_second(snippet_seconds)
    classes = set(annotations.classes)
    return {
        name: _video_proposals(path, name, results.get(name), known[name], rate, classes)
        for name in known
    }


def _video_proposals(path: Path, name: str, rows, video, rate: float, classes) -> np.ndarray:
    if not isinstance(rows, list):
        raise DataError(f"{path}: no proposals for video {name!r} (a list is needed, [] for none)")
    spans = []
    for row in rows:
        segment = row.get("segment") if isinstance(row, dict) else None
        if not (isinstance(segment, list) and len(segment) == 2):
            raise DataError(f"{path}: {name}: a proposal without a [start, end] 'segment'")
        # the official reader uses the spans only; a label from another dataset's
        # classes says the file was made for other data
        label = row.get("label")
        if label is not None and label not in classes:
            raise DataError(f"{path}: {name}: class {label!r} is not one of the dataset's classes")
        start, end = (float(v) for v in segment)
        if not (math.isfinite(start) and math.isfinite(end) and 0 <= start <= end):
            raise DataError(f"{path}: {name}: segment {segment} is not a span of seconds")
        if end > video.duration + 1.0:
            raise DataError(
                f"{path}: {name}: segment {segment} ends after the video ({video.duration:g} s)"
            )
        spans.append([round(start * rate, 2), round(end * rate, 2)])
    return np.array(spans or [[0.0, 0.0]], dtype=np.float64)


# ---- the method --------------------------------------------------------------------


class PmilMethod(Method):
    name = "pmil"
    label = "P-MIL"
    loss_terms = LOSS_TERMS
    options_type = PmilOptions
    owns_training_data = True
    stage_input = "proposals"

    def __init__(self, config) -> None:
        super().__init__(config)
        self.proposals: dict[str, np.ndarray] = {}
        self.steps_per_epoch = 1
        self.step = 0

    def build_network(self, num_classes: int) -> PmilNetwork:
        return PmilNetwork(self.config.data.feature_dim, num_classes, self.options)

    def bind_inputs(self, inputs, annotations) -> None:
        self.proposals = read_proposals(
            inputs["proposals"], annotations, self.config.data.snippet_seconds
        )
        self._warn_single_proposals(annotations)

    def _warn_single_proposals(self, annotations) -> None:
        if self.options.irc_skip_empty:
            return
        training = annotations.subset(self.config.data.train_subset)
        single = [v.name for v in training if len(self.proposals.get(v.name, ())) < 2]
        if single:
            log.warning(
                "P-MIL: %d training video(s) have fewer than 2 proposals (first: %s); the "
                "official IRC loss is NaN on such a video; method_options.irc_skip_empty=1 "
                "counts it 0 instead",
                len(single),
                single[0],
            )

    def set_progress(self, step: int, total: int) -> None:
        self.step = step

    def epoch_batches(self, labels, epoch, seed, batch_size):
        """main.py:24-35: the training videos shuffled, batches of 10, the last partial
        one dropped."""
        order = np.random.default_rng([seed, epoch, 26]).permutation(labels.shape[0])
        whole = len(order) // batch_size
        self.steps_per_epoch = max(1, whole)
        return [
            [TrainItem(int(i)) for i in order[b * batch_size : (b + 1) * batch_size]]
            for b in range(whole)
        ]

    def training_rows(self, length, item, rng, step):
        return np.arange(length)  # whole videos

    def video_targets(self, video, rows, length, item):
        if video.name not in self.proposals:
            raise DataError(f"no proposals for video {video.name!r} (RUN/inputs/proposals.json)")
        return {"proposals": self.proposals[video.name].astype(np.float32)}

    def forward(self, network, features, mask):
        raise NotImplementedError("P-MIL needs each video's proposals: see forward_test")

    def forward_test(self, network, features, targets):
        lengths = torch.tensor([features.shape[1]])
        proposals = torch.as_tensor(targets["proposals"], device=features.device)
        outputs = network(features, lengths, [proposals.float()])
        outputs["length"] = lengths  # the video's snippets, for its per-snippet view
        return outputs

    def losses(self, outputs: dict, labels: Tensor, mask: Tensor | None) -> dict[str, Tensor]:
        raise NotImplementedError("P-MIL's losses need the proposals: see step_losses")

    def step_losses(self, outputs, labels, proposals, epoch: int) -> dict[str, Tensor]:
        """model.py:186-248 at 1-based ``epoch`` (the ramp-up's)."""
        o, labels = self.options, labels.float()
        valid = outputs["prop_mask"].bool()
        v_cas, f_cas = outputs["prop_v_cas"], outputs["prop_f_cas"]
        v_attn, f_attn = (
            torch.sigmoid(outputs["prop_v_attn"]),
            torch.sigmoid(outputs["prop_f_attn"]),
        )
        v_iou, f_iou = torch.sigmoid(outputs["prop_v_iou"]), torch.sigmoid(outputs["prop_f_iou"])
        ramp = rampup(epoch, o.rampup_length)

        def mil(supp: bool) -> Tensor:
            v, f = (v_cas * v_attn, f_cas * f_attn) if supp else (v_cas, f_cas)
            both = [topk_mil_loss(s, labels, valid, not supp, o.topk) for s in (v, f)]
            return (both[0] + both[1]) / 2

        def irc() -> Tensor:
            skip = bool(o.irc_skip_empty)
            a = rank_consistency_loss(v_cas, f_cas, f_attn, labels, valid, proposals, skip)
            b = rank_consistency_loss(f_cas, v_cas, v_attn, labels, valid, proposals, skip)
            return (a + b) / 2 * ramp

        def comp() -> Tensor:
            a = completeness_loss(v_iou, f_attn, valid, proposals, o.gamma)
            b = completeness_loss(f_iou, v_attn, valid, proposals, o.gamma)
            return (a + b) / 2 * ramp

        terms = {
            "mil_orig": lambda: mil(False),
            "mil_supp": lambda: mil(True),
            "irc": irc,
            "comp": comp,
        }
        weights = {
            "mil_orig": o.weight_mil_orig,
            "mil_supp": o.weight_mil_supp,
            "irc": o.weight_irc,
            "comp": o.weight_comp,
        }
        zero = v_cas.new_zeros((), dtype=torch.float32)
        return enabled_terms(terms, weights, LOSS_TERMS, self.config.loss.losses, zero)

    def train_step(self, batch, context: StepContext) -> dict[str, Tensor]:
        proposals = [row["proposals"].to(batch.features.device) for row in batch.targets]
        lengths = batch.mask.sum(dim=1)
        with context.autocast():
            outputs = context.network(batch.features, lengths, proposals)
        epoch = context.step // self.steps_per_epoch + 1
        terms = self.step_losses(outputs, batch.labels, proposals, epoch)
        context.optimizer.zero_grad(set_to_none=True)
        (terms["total"] * context.scale).backward()
        context.optimizer.step()
        return {key: value.detach() for key, value in terms.items()}

    # ---- test (utils.py:118-189) ----

    def test_inputs(self, name: str) -> dict[str, np.ndarray]:
        if name not in self.proposals:
            raise DataError(f"no proposals for video {name!r} (RUN/inputs/proposals.json)")
        return {"proposals": self.proposals[name].astype(np.float32)}

    def localization_source(self) -> str:
        return "proposals"

    def video_output(self, name: str, outputs: dict[str, np.ndarray]) -> VideoOutput:
        """Proposal scores ``cas x attention x completeness`` (streams averaged after
        softmax / sigmoid) and the video score ``Σ cas x attn / Σ attn`` (background
        dropped); per snippet, the best score of the proposals covering it (figures)."""
        scores, video_score = proposal_scores(outputs)
        proposals = self.proposals[name]
        length = int(outputs["length"]) if "length" in outputs else 0
        length = max(length, int(math.ceil(proposals[:, 1].max())), 1)
        cas = np.zeros((length, scores.shape[1] - 1), dtype=np.float32)
        for (start, end), row in zip(proposals, scores, strict=True):
            span = slice(int(start), max(int(start) + 1, int(math.ceil(end))))
            cas[span] = np.maximum(cas[span], row[:-1])
        actionness = cas.max(axis=1)
        return VideoOutput(
            name,
            cas,
            actionness,
            actionness,
            video_score.astype(np.float64),
            self.localization_source(),
            extras={"proposals": proposals, "proposal_scores": scores},
        )

    def reference_detections(self, output: VideoOutput, classes: list[str], settings) -> list:
        spans = (settings.ambiguous or {}).get(output.name, [])
        return pmil_rule(
            output.name,
            output.extras["proposals"],
            output.extras["proposal_scores"],
            output.video_scores,
            classes,
            threshold_cls=self.options.threshold_cls,
            gamma_vid=self.options.gamma_vid,
            snippet_seconds=settings.snippet_seconds,
            ambiguous=spans,
        )

    def detections(self, output: VideoOutput, classes: list[str], settings) -> list:
        return self.reference_detections(output, classes, settings)


def proposal_scores(outputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """([M, C+1] proposal scores, [C] video score) of one video (float32, torch ops)."""
    t = {
        k: torch.from_numpy(np.asarray(v, dtype=np.float32))
        for k, v in outputs.items()
        if k != "length"
    }
    valid = t["prop_mask"] > 0
    cas = 0.5 * F.softmax(t["prop_v_cas"][valid], dim=1) + 0.5 * F.softmax(
        t["prop_f_cas"][valid], dim=1
    )
    attn = 0.5 * torch.sigmoid(t["prop_v_attn"][valid]) + 0.5 * torch.sigmoid(
        t["prop_f_attn"][valid]
    )
    iou = 0.5 * torch.sigmoid(t["prop_v_iou"][valid]) + 0.5 * torch.sigmoid(t["prop_f_iou"][valid])
    video = ((cas * attn).sum(0) / (attn.sum(0) + 1e-6))[:-1]
    return (cas * attn * iou).numpy(), video.numpy()


def pmil_rule(
    video: str,
    proposals: np.ndarray,
    scores: np.ndarray,
    video_score: np.ndarray,
    classes: list[str],
    *,
    threshold_cls: float,
    gamma_vid: float,
    snippet_seconds: float,
    ambiguous=(),
) -> list[Detection]:
    """get_prediction: classes with video score >= threshold (none: the best); every
    proposal of a kept class scored ``score + gamma_vid x video score``; Gaussian
    soft-NMS per class (sigma 0.3, +1 lengths); the Ambiguous spans' overlaps removed;
    snippets x the stride -> seconds."""
    kept = np.where(video_score >= threshold_cls)[0]
    if len(kept) == 0:
        kept = np.array([np.argmax(video_score)])
    rate = snippets_per_second(snippet_seconds)
    found = []
    for c in kept:
        rows = [
            [c, float(scores[i, c] + gamma_vid * video_score[c]), *proposals[i]]
            for i in range(len(proposals))
        ]
        for _, score, start, end in soft_nms(rows):
            if overlaps_ambiguous(start, end, ambiguous, rate):
                continue
            seconds = (start * snippet_seconds, end * snippet_seconds)
            found.append(Detection(video, classes[int(c)], score, *seconds))
    return found
