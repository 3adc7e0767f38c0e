"""STPN (Nguyen, Liu, Prasad, Han, CVPR 2018): sparse temporal pooling.

Per snippet an attention weight ``a_t = sigmoid(FC(ReLU(FC(x_t))))``; the video feature
is the attention-weighted temporal pooling ``x̄ = (1/T) Σ_t a_t x_t``; a linear
classifier on ``x̄`` gives the video logits and, applied to each snippet, the T-CAS
``s_t``. Losses: multi-label binary cross-entropy of the video logits plus
``sparsity_weight * Σ_t a_t`` (L1 of the attention). Localization thresholds, per class,
the weighted T-CAS ``ψ_t^c = a_t · sigmoid(s_t^c)`` (docs/methods.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch.nn.functional as F
from torch import Tensor, nn

from hamnet.methods.base import BASELINE_ACTIVITYNET, Method, VideoOutput, enabled_terms, sigmoid

LOSS_TERMS = ("cls", "sparse")

# Values merged over the dataset preset (``--preset thumos14 --method stpn``): "*" for
# every dataset, then the preset's name. Sources and choices: docs/methods.md.
PRESETS: dict[str, dict] = {
    "*": {
        "model": {"attention_dim": 256},
        "method_options": {"sparsity_weight": 1e-4},
        "localize": {"class_thresh": 0.1},
    },
    "thumos14": {"data": {"num_segments": 400}, "train": {"lr": 1e-4}},
    "activitynet12": {**BASELINE_ACTIVITYNET, "train": {"lr": 1e-4}},
    "demo": {"model": {"attention_dim": 32}},
}


@dataclass
class StpnOptions:
    sparsity_weight: float = 1e-4  # β of the paper


class StpnNetwork(nn.Module):
    """Attention module (two FC layers) and one linear classifier, per snippet."""

    def __init__(self, feature_dim: int, num_classes: int, attention_dim: int) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.attention = nn.Sequential(
            nn.Linear(feature_dim, attention_dim),
            nn.ReLU(),
            nn.Linear(attention_dim, 1),
            nn.Sigmoid(),
        )
        self.classifier = nn.Linear(feature_dim, num_classes)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> dict[str, Tensor]:
        valid = _valid(x, mask)
        attention = self.attention(x)[..., 0] * valid
        pooled = (attention[..., None] * x).sum(dim=1) / valid.sum(dim=1, keepdim=True)
        cas = self.classifier(x) * valid[..., None]
        return {"cas": cas, "attention": attention, "video_logits": self.classifier(pooled)}


def _valid(x: Tensor, mask: Tensor | None) -> Tensor:
    """[B, T] float: 1 at real snippets, 0 at padding."""
    if mask is None:
        return x.new_ones(x.shape[:2])
    return mask.to(device=x.device, dtype=x.dtype)


def stpn_losses(
    outputs: dict[str, Tensor],
    labels: Tensor,
    *,
    losses: tuple[str, ...] | list[str],
    sparsity_weight: float,
) -> dict[str, Tensor]:
    """``cls``: mean over videos and classes of the binary cross-entropy of
    ``sigmoid(video_logits)`` against the labels; ``sparse``: mean over videos of
    ``Σ_t a_t``; total ``cls + sparsity_weight * sparse``."""
    logits = outputs["video_logits"].float()
    terms = {
        "cls": lambda: F.binary_cross_entropy_with_logits(logits, labels.float().to(logits)),
        "sparse": lambda: outputs["attention"].float().sum(dim=1).mean(),
    }
    weights = {"cls": 1.0, "sparse": sparsity_weight}
    return enabled_terms(terms, weights, LOSS_TERMS, losses, logits.new_zeros(()))


class StpnMethod(Method):
    name = "stpn"
    label = "STPN"
    loss_terms = LOSS_TERMS
    options_type = StpnOptions

    def build_network(self, num_classes: int) -> StpnNetwork:
        model = self.config.model
        return StpnNetwork(self.config.data.feature_dim, num_classes, model.attention_dim)

    def losses(self, outputs: dict, labels: Tensor, mask: Tensor | None) -> dict[str, Tensor]:
        return stpn_losses(
            outputs,
            labels,
            losses=self.config.loss.losses,
            sparsity_weight=self.options.sparsity_weight,
        )

    def video_output(self, name: str, outputs: dict[str, np.ndarray]) -> VideoOutput:
        cas, attention = outputs["cas"], outputs["attention"].astype(np.float32)
        weighted = (attention[:, None] * sigmoid(cas)).astype(np.float32)
        scores = sigmoid(outputs["video_logits"])
        return VideoOutput(
            name,
            cas,
            attention,
            attention,
            scores,
            self.localization_source(),
            attended=weighted,
            class_actionness=weighted,
        )
