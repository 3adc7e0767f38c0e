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
  averaged over the shared classes of a pair, then over the pairs of the batch.

Total ``mil_weight * mil + (1 - mil_weight) * casl`` (λ = 0.5 in the paper).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hamnet.methods.base import (
    BASELINE_ACTIVITYNET,
    Method,
    VideoOutput,
    enabled_terms,
    softmax,
    topk_video_scores,
)

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
    mil_weight: float = 0.5  # λ; casl gets 1 - λ
    margin: float = 0.5  # δ


class WtalcNetwork(nn.Module):
    def __init__(self, feature_dim: int, num_classes: int, hidden_dim: int, dropout: float):
        super().__init__()
        self.feature_dim = feature_dim
        self.embed = nn.Sequential(
            nn.Linear(feature_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout)
        )
        self.classifier = nn.Linear(hidden_dim, num_classes)

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

    def build_network(self, num_classes: int) -> WtalcNetwork:
        config = self.config
        return WtalcNetwork(
            config.data.feature_dim, num_classes, self.hidden_width(), config.model.dropout
        )

    def losses(self, outputs: dict, labels: Tensor, mask: Tensor | None) -> dict[str, Tensor]:
        ratio = self.config.loss.topk_ratio_inv
        weight, enabled = self.options.mil_weight, self.config.loss.losses
        terms = {
            "mil": lambda: mil_loss(outputs["cas"], labels, ratio, mask),
            "casl": lambda: co_activity_loss(
                outputs["cas"], outputs["embedding"], labels, self.options.margin, mask
            ),
        }
        weights = {"mil": weight, "casl": 1.0 - weight}
        zero = outputs["cas"].new_zeros((), dtype=torch.float32)
        return enabled_terms(terms, weights, LOSS_TERMS, enabled, zero)

    def localization_source(self) -> str:
        return "cas"

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
