"""W-TALC (Paul, Roy, Roy-Chowdhury, ECCV 2018): MIL loss plus co-activity similarity.

Method ``w-talc`` (not the ``wtalc`` evaluation protocol). Network, per snippet:
``e_t = Dropout(ReLU(FC(x_t)))`` and the T-CAS ``s_t = FC(e_t)`` (C columns, no
background). Losses (docs/methods.md):

- ``mil``: k-max MIL: video logits = mean of the k = ceil(T / topk_ratio_inv) largest
  T-CAS values per class, softmax cross-entropy against the labels normalised to sum 1;
- ``casl``: co-activity similarity: per video and class, the temporal softmax
  ``λ = softmax_t(s_t^c)`` gives a high-attention feature ``H = Σ_t λ_t e_t`` and a
  low-attention one ``L = Σ_t (1 - λ_t) e_t / (T - 1)``; for two videos m, n sharing
  class c, with d = 1 - cosine similarity,
  ``0.5 max(0, d(Hm, Hn) - d(Hm, Ln) + δ) + 0.5 max(0, d(Hm, Hn) - d(Lm, Hn) + δ)``,
  on the pairs (0, 1), (2, 3), ... of the first ``2 * similar_pairs`` videos (the batch
  is class-paired, :mod:`hamnet.data.class_pairs`), summed over (pair, shared class) and
  divided by their number, as the reference code does (``all_pairs_casl=1``: every pair
  of the batch, averaged per pair, hamnet's earlier variant).

Init: xavier-uniform weights, zero biases (``torch_init=1``: PyTorch's default).
Detections under ``localize.rules=reference``: W-TALC's detectionMAP.py rule
(:func:`hamnet.localize.reference_rules.wtalc_rule`).

Total ``mil_weight * mil + (1 - mil_weight) * casl`` (λ = 0.5 in the paper).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hamnet.errors import ConfigError
from hamnet.localize.reference_rules import wtalc_rule
from hamnet.methods.base import (
    BASELINE_ACTIVITYNET,
    ClassPairs,
    Method,
    VideoOutput,
    enabled_terms,
    parse_options,
    softmax,
    topk_video_scores,
)
from hamnet.methods.layers import xavier_init

LOSS_TERMS = ("mil", "casl")

# Values merged over the dataset preset (``--preset thumos14 --method w-talc``): "*" for
# every dataset, then the preset's name. Sources and choices: docs/methods.md.
PRESETS: dict[str, dict] = {
    "*": {
        "model": {"dropout": 0.7},
        "loss": {"topk_ratio_inv": 8},
        "method_options": {"mil_weight": 0.5, "margin": 0.5},
        "localize": {
            "thresholds": [0.5],
            "outer_ratio": 0.0,
            "video_score_weight": 0.0,
            "nms": "none",
        },
    },
    "thumos14": {
        "data": {"num_segments": 750},
        "train": {"lr": 1e-4, "weight_decay": 5e-4, "batch_size": 10},
    },
    "activitynet12": {
        **BASELINE_ACTIVITYNET,
        "train": {"lr": 1e-4, "weight_decay": 5e-4, "batch_size": 10},
    },
    "demo": {},
}


@dataclass
class WtalcOptions:
    """Defaults are the reference code's (docs/methods.md); the 1-valued switches bring
    back hamnet's earlier variants."""

    mil_weight: float = 0.5  # λ; casl gets 1 - λ
    margin: float = 0.5  # δ
    similar_pairs: int = 3  # n_similar: class-paired pairs per batch, read by casl
    all_pairs_casl: int = 0  # 1: casl over every pair sharing a class, mean per pair
    shuffled_batches: int = 0  # 1: the engine's shuffled batches, not class-paired ones
    torch_init: int = 0  # 1: PyTorch's default init, not xavier-uniform with zero bias


class WtalcNetwork(nn.Module):
    def __init__(
        self,
        feature_dim: int,
        num_classes: int,
        hidden_dim: int,
        dropout: float,
        xavier: bool = True,
    ):
        super().__init__()
        self.feature_dim = feature_dim
        self.embed = nn.Sequential(
            nn.Linear(feature_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout)
        )
        self.classifier = nn.Linear(hidden_dim, num_classes)
        if xavier:
            xavier_init(self)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> dict[str, Tensor]:
        embedding = self.embed(x)
        cas = self.classifier(embedding)
        if mask is not None:
            keep = mask.to(device=x.device, dtype=torch.bool)[..., None]
            embedding, cas = embedding * keep, cas * keep
        return {"cas": cas, "embedding": embedding}


def topk_count(length: int | Tensor, ratio_inv: int):
    """k = ceil(T / ratio_inv), as W-TALC pools (at least 1)."""
    if isinstance(length, Tensor):
        return torch.clamp((length + ratio_inv - 1) // ratio_inv, min=1)
    return max(1, math.ceil(length / ratio_inv))


def mil_loss(cas: Tensor, labels: Tensor, ratio_inv: int, mask: Tensor | None) -> Tensor:
    """Batch mean of ``-Σ_c y_c / Σy · log_softmax(k-max pooled T-CAS)_c``."""
    cas = cas.float()
    lengths = _lengths(cas, mask)
    counts = topk_count(lengths, ratio_inv)
    k_max = topk_count(cas.shape[1], ratio_inv)
    valid = _valid_mask(cas, mask)
    top = cas.masked_fill(~valid[..., None], float("-inf")).topk(k_max, dim=1).values
    rank = torch.arange(k_max, device=cas.device)[None, :, None]
    top = torch.where(rank < counts[:, None, None], top, torch.zeros_like(top))
    logits = top.sum(dim=1) / counts[:, None].float()
    labels = labels.float().to(cas.device)
    target = labels / labels.sum(dim=1, keepdim=True).clamp(min=1e-8)
    return -(target * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()


def co_activity_loss(
    cas: Tensor, embedding: Tensor, labels: Tensor, margin: float, mask: Tensor | None
) -> Tensor:
    """The co-activity similarity loss over all pairs of the batch that share a class
    (0 when no pair does)."""
    cas, embedding = cas.float(), embedding.float()
    valid = _valid_mask(cas, mask)
    weights = torch.softmax(cas.masked_fill(~valid[..., None], float("-inf")), dim=1)
    lengths = _lengths(cas, mask).float()
    high = torch.einsum("btc,bth->bch", weights, embedding)
    rest = (1.0 - weights) * valid[..., None]
    low = torch.einsum("btc,bth->bch", rest, embedding) / (lengths - 1).clamp(min=1)[:, None, None]
    labels = labels.float().to(cas.device)
    first, second = torch.triu_indices(len(labels), len(labels), offset=1, device=cas.device)
    shared = labels[first] * labels[second]  # [P, C]
    if not bool((shared.sum(dim=1) > 0).any()):
        return cas.new_zeros(())

    def distance(a: Tensor, b: Tensor) -> Tensor:
        return 1.0 - F.cosine_similarity(a, b, dim=-1)

    d_hh = distance(high[first], high[second])
    d_hl = distance(high[first], low[second])
    d_lh = distance(low[first], high[second])
    per_class = 0.5 * F.relu(d_hh - d_hl + margin) + 0.5 * F.relu(d_hh - d_lh + margin)
    pairs = shared.sum(dim=1) > 0
    per_pair = (per_class * shared).sum(dim=1)[pairs] / shared.sum(dim=1)[pairs]
    return per_pair.mean()


def paired_co_activity_loss(
    cas: Tensor,
    embedding: Tensor,
    labels: Tensor,
    margin: float,
    mask: Tensor | None,
    pairs: int,
) -> Tensor:
    """The reference's CASL (train.py): pairs (0, 1), (2, 3), ... of the first
    ``2 * pairs`` videos; the hinge terms summed over (pair, shared class) and divided by
    the number of shared (pair, class) (0 when there is none)."""
    cas, embedding = cas.float(), embedding.float()
    count = int(min(pairs, len(labels) // 2))
    if count == 0:
        return cas.new_zeros(())
    valid = _valid_mask(cas, mask)
    weights = torch.softmax(cas.masked_fill(~valid[..., None], float("-inf")), dim=1)
    lengths = _lengths(cas, mask).float()
    rest = (1.0 - weights) / (lengths - 1).clamp(min=1)[:, None, None] * valid[..., None]
    high = torch.einsum("btc,bth->bch", weights, embedding)
    low = torch.einsum("btc,bth->bch", rest, embedding)
    first = torch.arange(0, 2 * count, 2, device=cas.device)
    second = first + 1
    labels = labels.float().to(cas.device)
    shared = labels[first] * labels[second]  # [P, C]
    if not bool((shared > 0).any()):
        return cas.new_zeros(())
    d_hh = _cosine_distance(high[first], high[second])
    d_hl = _cosine_distance(high[first], low[second])
    d_lh = _cosine_distance(high[second], low[first])
    hinge = 0.5 * F.relu(d_hh - d_hl + margin) + 0.5 * F.relu(d_hh - d_lh + margin)
    return (hinge * shared).sum() / shared.sum()


def _cosine_distance(a: Tensor, b: Tensor) -> Tensor:
    """1 - a.b / (|a| |b|) over the last axis, written as the reference writes it."""
    return 1 - (a * b).sum(dim=-1) / (a.norm(p=2, dim=-1) * b.norm(p=2, dim=-1))


def _valid_mask(cas: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return torch.ones(cas.shape[:2], dtype=torch.bool, device=cas.device)
    return mask.to(device=cas.device, dtype=torch.bool)


def _lengths(cas: Tensor, mask: Tensor | None) -> Tensor:
    return _valid_mask(cas, mask).sum(dim=1)


class WtalcMethod(Method):
    name = "w-talc"
    label = "W-TALC"
    loss_terms = LOSS_TERMS
    options_type = WtalcOptions

    @classmethod
    def check(cls, config) -> None:
        super().check(config)
        options = parse_options(cls.options_type, config.method_options, cls.name)
        if not options.shuffled_batches and config.train.batch_size < 2 * options.similar_pairs:
            raise ConfigError(
                f"train.batch_size {config.train.batch_size}: W-TALC's class-paired batches "
                f"hold {options.similar_pairs} pairs (method_options.similar_pairs); use at "
                f"least {2 * options.similar_pairs} or method_options.shuffled_batches=1"
            )

    def build_network(self, num_classes: int) -> WtalcNetwork:
        config = self.config
        return WtalcNetwork(
            config.data.feature_dim,
            num_classes,
            self.hidden_width(),
            config.model.dropout,
            xavier=not self.options.torch_init,
        )

    def class_pairs(self) -> ClassPairs | None:
        """Class-paired batches (video_dataset.py load_data), unless shuffled_batches."""
        return None if self.options.shuffled_batches else ClassPairs(self.options.similar_pairs)

    def losses(self, outputs: dict, labels: Tensor, mask: Tensor | None) -> dict[str, Tensor]:
        ratio = self.config.loss.topk_ratio_inv
        weight, enabled = self.options.mil_weight, self.config.loss.losses
        options = self.options

        def casl() -> Tensor:
            cas, embedding = outputs["cas"], outputs["embedding"]
            if options.all_pairs_casl:
                return co_activity_loss(cas, embedding, labels, options.margin, mask)
            return paired_co_activity_loss(
                cas, embedding, labels, options.margin, mask, options.similar_pairs
            )

        terms = {"mil": lambda: mil_loss(outputs["cas"], labels, ratio, mask), "casl": casl}
        weights = {"mil": weight, "casl": 1.0 - weight}
        zero = outputs["cas"].new_zeros((), dtype=torch.float32)
        return enabled_terms(terms, weights, LOSS_TERMS, enabled, zero)

    def localization_source(self) -> str:
        return "cas"

    reference_scores_unlabelled = True  # test.py scores every test video

    def reference_detections(self, output: VideoOutput, classes: list[str], settings) -> list:
        """detectionMAP.py's rule on the full-length raw T-CAS."""
        return wtalc_rule(output.name, output.cas, classes, settings.snippet_seconds)

    def video_output(self, name: str, outputs: dict[str, np.ndarray]) -> VideoOutput:
        """Video scores: softmax of the k-max pooled T-CAS; per class, localization
        thresholds the T-CAS rescaled to [0, 1] over the video (W-TALC's threshold is
        half-way between the class's minimum and maximum)."""
        cas = outputs["cas"].astype(np.float64)
        pooled = topk_video_scores(cas, topk_count(cas.shape[0], self.config.loss.topk_ratio_inv))
        low, high = cas.min(axis=0), cas.max(axis=0)
        scaled = ((cas - low) / np.maximum(high - low, 1e-12)).astype(np.float32)
        foreground = scaled.max(axis=1)
        return VideoOutput(
            name,
            outputs["cas"],
            foreground,
            foreground,
            softmax(pooled),
            self.localization_source(),
            attended=outputs["cas"],
            class_actionness=scaled,
        )
