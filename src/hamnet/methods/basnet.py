"""BaS-Net (Lee, Uh, Byun, AAAI 2020): background suppression with a filtering module.

A filtering module gives per snippet a foreground weight ``w_t = sigmoid(Conv1x1(
LeakyReLU(Conv1x1(x_t))))``. One classifier (two Conv1d k=3 layers, dropout, Conv1d 1x1
to C + 1 columns, the last background) runs twice, weights shared: on ``x`` (base
branch) and on ``w_t x_t`` (suppression branch). Video scores: softmax over C + 1 of
the mean of the k = max(1, floor(T / topk_ratio_inv)) largest T-CAS values per column.
Losses (docs/methods.md):

- ``base``: binary cross-entropy of the base scores against ``[y, 1] / Σ`` (background
  present in every untrimmed video);
- ``supp``: the same for the suppression scores against ``[y, 0] / Σ``;
- ``norm``: mean over videos of ``Σ_t |w_t|``; total ``base + supp + norm_weight * norm``.

At test time the suppression branch is used: per class, its softmax T-CAS is both what
is thresholded and what the outer-inner contrast averages.
"""

from __future__ import annotations

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
from hamnet.methods.layers import padding_mask, run_branch, topk_pool

LOSS_TERMS = ("base", "supp", "norm")

# Values merged over the dataset preset (``--preset thumos14 --method basnet``): "*" for
# every dataset, then the preset's name. Sources and choices: docs/methods.md.
PRESETS: dict[str, dict] = {
    "*": {
        "model": {"attention_dim": 512, "dropout": 0.7},
        "loss": {"topk_ratio_inv": 8},
        "method_options": {"norm_weight": 1e-4},
        "localize": {
            "class_thresh": 0.25,
            # numpy.arange(0, 0.25, 0.025), the released code's thresholds
            "thresholds": [float(x) for x in np.arange(0.0, 0.25, 0.025)],
            "nms": "hard",
            "nms_iou": 0.7,
        },
    },
    "thumos14": {
        "data": {"num_segments": 750},
        "train": {"lr": 1e-4, "weight_decay": 5e-4, "batch_size": 16, "epochs": 120},
    },
    "activitynet12": {
        **BASELINE_ACTIVITYNET,
        "train": {"lr": 1e-4, "weight_decay": 5e-4, "batch_size": 16},
    },
    "demo": {"model": {"attention_dim": 32}},
}


@dataclass
class BasNetOptions:
    norm_weight: float = 1e-4  # α of the paper


class BasNetNetwork(nn.Module):
    def __init__(
        self,
        feature_dim: int,
        num_classes: int,
        *,
        hidden_dim: int,
        filter_dim: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.filter = nn.Sequential(
            nn.Conv1d(feature_dim, filter_dim, 1),
            nn.LeakyReLU(),
            nn.Conv1d(filter_dim, 1, 1),
            nn.Sigmoid(),
        )
        self.classifier = nn.Sequential(
            nn.Conv1d(feature_dim, hidden_dim, 3, padding=1),
            nn.LeakyReLU(),
            nn.Conv1d(hidden_dim, hidden_dim, 3, padding=1),
            nn.LeakyReLU(),
            nn.Dropout(dropout),
            nn.Conv1d(hidden_dim, num_classes + 1, 1, bias=False),
        )

    def forward(self, x: Tensor, mask: Tensor | None = None) -> dict[str, Tensor]:
        pad = padding_mask(mask, x.device)
        h = x.transpose(1, 2)
        weights = run_branch(self.filter, h, pad)  # [B, 1, T]
        cas_base = run_branch(self.classifier, h, pad)
        cas_supp = run_branch(self.classifier, h * weights, pad)
        return {
            "cas_base": cas_base.transpose(1, 2),
            "cas_supp": cas_supp.transpose(1, 2),
            "foreground": weights[:, 0, :],
        }


def basnet_losses(
    outputs: dict[str, Tensor],
    labels: Tensor,
    mask: Tensor | None,
    *,
    losses: tuple[str, ...] | list[str],
    topk_ratio_inv: int,
    norm_weight: float,
) -> dict[str, Tensor]:
    labels = labels.float().to(outputs["cas_base"].device)

    def branch(cas: Tensor, background: float) -> Tensor:
        scores = torch.softmax(topk_pool(cas, topk_ratio_inv, mask), dim=1)
        target = torch.cat([labels, torch.full_like(labels[:, :1], background)], dim=1)
        target = target / target.sum(dim=1, keepdim=True).clamp(min=1e-8)
        return F.binary_cross_entropy(scores, target)

    terms = {
        "base": lambda: branch(outputs["cas_base"], 1.0),
        "supp": lambda: branch(outputs["cas_supp"], 0.0),
        "norm": lambda: outputs["foreground"].float().abs().sum(dim=1).mean(),
    }
    weights = {"base": 1.0, "supp": 1.0, "norm": norm_weight}
    return enabled_terms(terms, weights, LOSS_TERMS, losses, labels.new_zeros(()))


class BasNetMethod(Method):
    name = "basnet"
    label = "BaS-Net"
    loss_terms = LOSS_TERMS
    options_type = BasNetOptions

    def build_network(self, num_classes: int) -> BasNetNetwork:
        config = self.config
        return BasNetNetwork(
            config.data.feature_dim,
            num_classes,
            hidden_dim=self.hidden_width(),
            filter_dim=config.model.attention_dim,
            dropout=config.model.dropout,
        )

    def losses(self, outputs: dict, labels: Tensor, mask: Tensor | None) -> dict[str, Tensor]:
        return basnet_losses(
            outputs,
            labels,
            mask,
            losses=self.config.loss.losses,
            topk_ratio_inv=self.config.loss.topk_ratio_inv,
            norm_weight=self.options.norm_weight,
        )

    def localization_source(self) -> str:
        return "suppression-cas"

    def video_output(self, name: str, outputs: dict[str, np.ndarray]) -> VideoOutput:
        cas = outputs["cas_supp"]
        count = max(1, cas.shape[0] // self.config.loss.topk_ratio_inv)
        scores = softmax(topk_video_scores(cas, count))[:-1]
        probabilities = softmax(cas.astype(np.float64), axis=1)[:, :-1].astype(np.float32)
        foreground = outputs["foreground"].astype(np.float32)
        return VideoOutput(
            name,
            cas,
            foreground,
            foreground,
            scores,
            self.localization_source(),
            attended=probabilities,
            class_actionness=probabilities,
        )
