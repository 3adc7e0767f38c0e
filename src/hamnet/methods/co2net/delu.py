"""DELU (Chen et al., ECCV 2022), equal to its official code (MengyuanChen21/ECCV2022-DELU
@ a60e46d): CO2-Net's network and terms plus the evidential (EDL) loss on the video
logits and the uncertainty-guided guide term, whose curve runs over the iteration count.

- ``edl`` (model.py:218-257): the suppressed T-CAS at the T // rat_atn snippets of
  largest fused attention, background dropped, averaged -> video logits; evidence
  exp(clamp(., -10, 10)) + 1 = α (THUMOS14) and the "log" loss
  ``Σ_c g_c (log S - log α_c)``, ``g = (1 - C / S) |y| (y / α) / Σ (y / α)`` (C / S
  detached); ActivityNet (``edl_mse=1``, model.py:532-533): relu evidence and
  ``Σ_c (y_c - α_c / S)²``. Batch mean.
- ``uct_guide`` (model.py:184-216, 259-266): snippet uncertainty ``C / Σ_{C+1} α`` of the
  suppressed T-CAS (exp evidence); the curve ``amplitude tanh(θ δ) + 1`` with
  ``θ_j = 2 (j + 0.5) / T - 1``, ``δ = 1 - 2 itr / max_iter``; snippet j weighs its guide
  map by ``curve[argsort(uncertainty)[j]]`` (the official gather, reproduced as is).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from hamnet.methods.co2net.method import LOSS_TERMS as CO2_TERMS
from hamnet.methods.co2net.method import Co2NetMethod, official_presets
from hamnet.methods.co2net.network import guide_maps, suppressed_cas

LOSS_TERMS = (*CO2_TERMS, "edl", "uct_guide")
# numpy.linspace(0.1, 0.9, 20): DELU proposal_methods.py:114
DELU_THRESHOLDS = [float(x) for x in np.linspace(0.1, 0.9, 20)]


@dataclass
class DeluOptions:
    alpha1: float = 0.8
    alpha2: float = 0.4
    alpha3: float = 1.0
    alpha4: float = 1.0
    edl_weight: float = 1.3
    uct_guide_weight: float = 0.4
    amplitude: float = 0.7
    rat_atn: int = 9
    edl_mse: int = 0  # 0: exp evidence, log loss (THUMOS14); 1: relu evidence, mse (ANet)
    pool_kernel: int = 0
    short_video: int = 0  # ActivityNet: 10 (see Co2Options)
    numpy_rules: int = 1  # see Co2Options


PRESETS = official_presets(DELU_THRESHOLDS, DeluOptions())
PRESETS["thumos14"]["data"] = {"num_segments": 320}
PRESETS["activitynet12"]["method_options"] = {
    "alpha2": 0.8,
    "edl_weight": 1.2,
    "uct_guide_weight": 0.2,
    "amplitude": 0.2,
    "rat_atn": 5,
    "edl_mse": 1,
    "pool_kernel": 13,
    "short_video": 10,
}


def edl_video_logits(cas_supp: Tensor, attention: Tensor, rat_atn: float) -> Tensor:
    """[B, C]: the suppressed T-CAS (no background) averaged over the top-attention snippets."""
    k = max(1, int(cas_supp.shape[-2] // rat_atn))
    index = torch.topk(attention, k=k, dim=1).indices  # [B, k]
    picked = torch.gather(cas_supp, 1, index[..., None].expand(-1, -1, cas_supp.shape[-1]))
    return picked[:, :, :-1].mean(dim=1)


def edl_loss(video_logits: Tensor, labels: Tensor, mse: bool) -> Tensor:
    if mse:
        alpha = torch.relu(video_logits) + 1
        strength = alpha.sum(dim=1, keepdim=True)
        return ((labels - alpha / strength) ** 2).sum(dim=1).mean()
    alpha = torch.exp(torch.clamp(video_logits, -10, 10)) + 1
    strength = alpha.sum(dim=1, keepdim=True)
    uncertainty = labels.shape[1] / strength
    inverse = labels / alpha
    g = (1 - uncertainty.detach()) * labels.sum(dim=1, keepdim=True)
    g = g * inverse / inverse.sum(dim=1, keepdim=True)
    return (g * (torch.log(strength) - torch.log(alpha))).sum(dim=1).mean()


def course_curve(iteration: int, total: int, length: int, amplitude: float) -> Tensor:
    theta = 2 * (torch.arange(length, dtype=torch.float32) + 0.5) / length - 1
    delta = -2 * iteration / total + 1
    return amplitude * torch.tanh(theta * delta) + 1


def uct_guide_loss(outputs: dict, cas_supp: Tensor, num_classes: int, curve: Tensor) -> Tensor:
    alpha = torch.exp(torch.clamp(cas_supp, -10, 10)) + 1
    uncertainty = num_classes / alpha.sum(dim=-1)  # [B, T]
    order = torch.sort(uncertainty, dim=1).indices
    # the official gather: curve.repeat(10, 1) (batch 10 hard-coded); here the batch size
    weights = torch.gather(curve.to(cas_supp.device).repeat(len(cas_supp), 1), 1, order)
    return (weights * guide_maps(outputs)).mean()


class DeluMethod(Co2NetMethod):
    name = "delu"
    label = "DELU"
    loss_terms = LOSS_TERMS
    options_type = DeluOptions
    min_snippets = 1

    def __init__(self, config) -> None:
        super().__init__(config)
        self.iteration, self.total_iterations = 0, config.train.iterations or 1

    def set_progress(self, iteration: int, total: int) -> None:
        """The trainer's step (0-based) and the run's steps: DELU's curve runs over them."""
        self.iteration, self.total_iterations = iteration, total

    def weights(self) -> dict[str, float]:
        o = self.options
        return {**super().weights(), "edl": o.edl_weight, "uct_guide": o.uct_guide_weight}

    def terms(self, outputs: dict, labels: Tensor) -> dict:
        terms = super().terms(outputs, labels)
        cas, atn = outputs["cas"].float(), outputs["attn"].float()
        labels = labels.float().to(cas.device)
        supp = suppressed_cas(cas, atn)
        o = self.options

        def uct() -> Tensor:
            curve = course_curve(self.iteration, self.total_iterations, cas.shape[1], o.amplitude)
            return uct_guide_loss(outputs, supp, labels.shape[1], curve)

        terms["edl"] = lambda: edl_loss(
            edl_video_logits(supp, atn, o.rat_atn), labels, bool(o.edl_mse)
        )
        terms["uct_guide"] = uct
        return terms
