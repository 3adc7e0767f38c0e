"""HAM-Net (Islam, Long, Radke, AAAI 2021) as a method: the reference implementation.

Network :class:`~hamnet.methods.hamnet.network.HamNet`, losses
:func:`~hamnet.methods.hamnet.losses.hamnet_losses` (weights and switches in the ``loss``
section), localization on the attention (or, for
the ablation rows that never train it, on the foreground probability).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from torch import Tensor, nn

from hamnet.localize.proposals import video_scores
from hamnet.methods.base import Method, VideoOutput
from hamnet.methods.hamnet.losses import LOSS_TERMS, hamnet_losses
from hamnet.methods.hamnet.network import HamNet, smoothing_kernel_for

# HAM-Net's values are the dataset presets themselves (hamnet.config.PRESETS)
PRESETS: dict[str, dict] = {}

# The rows of the paper's ablation (THUMOS14 average mAP 24.6, 30.8, 28.9, 30.9, 34.8, 39.8).
VARIANTS: dict[str, list[str]] = {
    "bcl": ["bcl"],
    "bcl+sal": ["bcl", "sal"],
    "bcl+hal": ["bcl", "hal"],
    "bcl+sal+hal+ssal+guide": ["bcl", "sal", "hal", "ssal", "guide"],
    "bcl+sal+hal+ssal+sparse": ["bcl", "sal", "hal", "ssal", "sparse"],
    "all": list(LOSS_TERMS),
}

# the losses that send gradient into the attention branch
ATTENTION_LOSSES = {"sal", "ssal", "sparse", "guide"}


class HamNetMethod(Method):
    name = "hamnet"
    label = "HAM-Net"
    loss_terms = LOSS_TERMS
    variants = VARIANTS

    @classmethod
    def check(cls, config) -> None:
        super().check(config)
        if "bcl" not in config.loss.losses:
            from hamnet.errors import ConfigError

            raise ConfigError("loss.losses must include bcl, the base loss")

    def build_network(self, num_classes: int) -> HamNet:
        config = self.config
        kernel = smoothing_kernel_for(config.data.num_segments) if config.model.smoothing else 0
        return HamNet(
            config.data.feature_dim,
            num_classes,
            hidden_dim=config.model.hidden_dim,
            attention_dim=config.model.attention_dim,
            dropout=config.model.dropout,
            smoothing_kernel=kernel,
        )

    def forward(self, network: nn.Module, features: Tensor, mask: Tensor | None) -> dict:
        cas, attention = network(features, mask)
        return {"cas": cas, "attention": attention}

    def losses(self, outputs: dict, labels: Tensor, mask: Tensor | None) -> dict[str, Tensor]:
        # LossConfig holds exactly the keyword arguments of hamnet_losses
        loss = dataclasses.asdict(self.config.loss)
        return hamnet_losses(outputs["cas"], outputs["attention"], labels, mask, **loss)

    def localization_source(self) -> str:
        """``attention`` unless no loss trains the attention branch (BCL / HAL-only rows).

        L_HAL sees the attention only through a hard threshold, so it sends no gradient
        there; an untrained branch localizes noise, and the classifier's foreground
        probability (1 - background) is used instead.
        """
        chosen = self.config.localize.source
        if chosen != "auto":
            return chosen
        return "attention" if ATTENTION_LOSSES & set(self.config.loss.losses) else "foreground"

    def video_output(self, name: str, outputs: dict[str, np.ndarray]) -> VideoOutput:
        return hamnet_video_output(
            name,
            outputs["cas"],
            outputs["attention"],
            self.localization_source(),
            self.config.loss.topk_ratio_inv,
        )


def hamnet_video_output(
    name: str, cas: np.ndarray, attention: np.ndarray, source: str, topk_ratio_inv: int
) -> VideoOutput:
    """Reference §6: actionness is the attention (or 1 - background probability), the
    attended T-CAS ``S * actionness`` gives the OIC scores and the video scores."""
    if source == "attention":
        actionness = attention
    else:
        shifted = np.exp(cas - cas.max(axis=1, keepdims=True))
        actionness = 1.0 - shifted[:, -1] / shifted.sum(axis=1)
    actionness = actionness.astype(np.float32)
    attended = cas * actionness[:, None]
    scores = video_scores(attended, topk_ratio_inv)
    return VideoOutput(name, cas, attention, actionness, scores, source, attended=attended)
