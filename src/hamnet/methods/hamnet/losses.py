"""Multiple-instance pooling and the six HAM-Net losses (reference §4).

Every function casts its scores to fp32 at entry (bf16 autocast cannot change a top-k
choice or a log-softmax), honours an optional validity ``mask [B, T]`` (bool; padded
snippets never enter a pool or a mean), and returns one value per video (``[B]``);
:func:`hamnet_losses` averages over the batch and combines the enabled terms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from hamnet.errors import ConfigError
from hamnet.methods.hamnet.attention import apply_attention, hybrid_attentions
from hamnet.methods.layers import lengths, masked_mean_of_extremes, topk_pool

LOSS_TERMS = ("bcl", "sal", "hal", "ssal", "sparse", "guide")
# Each attention loss is paired with a base loss it shares a weight with (drop_prob split).
_PAIRS = (("bcl", "hal"), ("sal", "ssal"))


@dataclass
class LossConfig:
    """The ``loss`` section of a config: which terms, and the keyword arguments of
    :func:`hamnet_losses`. Every method's config carries it (the baselines read
    ``losses`` and ``topk_ratio_inv``), so old configs of every method load."""

    losses: list[str] = field(default_factory=lambda: list(LOSS_TERMS))
    lm_1: float = 1.0
    lm_2: float = 1.0
    alpha: float = 0.8
    beta: float = 0.8
    drop_thres: float = 0.2
    drop_prob: float = 0.2
    topk_ratio_inv: int = 10
    min_percent: float = 1.0

    def __post_init__(self) -> None:
        # which names are losses depends on the method: checked by Config
        if self.topk_ratio_inv < 1:
            raise ConfigError("loss.topk_ratio_inv must be >= 1")


def mil_loss(
    cas: Tensor,
    labels: Tensor,
    background: float,
    ratio_inv: int,
    mask: Tensor | None = None,
) -> Tensor:
    """Per-video MIL loss ``[B]`` of a T-CAS ``cas [B, T, C + 1]`` against ``labels [B, C]``.

    Target ``[y, background]`` normalised by ``sum + 1e-4``; loss
    ``-sum_c target_c * log_softmax(topk_pool(cas))_c``.
    """
    cas = cas.float()
    if labels.shape[-1] != cas.shape[-1] - 1:
        raise ValueError(
            f"labels have {labels.shape[-1]} classes but the T-CAS has {cas.shape[-1]} columns"
        )
    labels = labels.to(device=cas.device, dtype=torch.float32)
    target = torch.cat([labels, torch.full_like(labels[:, :1], float(background))], dim=1)
    target = target / (target.sum(dim=1, keepdim=True) + 1e-4)
    logits = topk_pool(cas, ratio_inv, mask)
    return -(target * torch.log_softmax(logits, dim=1)).sum(dim=1)


def sparsity_loss(
    attention: Tensor, mask: Tensor | None = None, min_percent: float = 1.0
) -> Tensor:
    """Per-video ``[B]`` mean of the lowest ``min_percent`` fraction of ``attention [B, T]``.

    At least one value is kept; ``min_percent = 1`` is the plain mean over valid snippets.
    """
    if not 0.0 < min_percent <= 1.0:
        raise ValueError(f"min_percent must be in (0, 1], got {min_percent}")
    a = attention.float()
    k_max = max(1, int(a.shape[1] * min_percent))
    if mask is None:
        return a.topk(k_max, dim=1, largest=False).values.mean(dim=1)
    # float64 so that floor matches Python's int(T * min_percent) on the unpadded path
    counts = torch.floor(lengths(a, mask).double() * min_percent).long().clamp(min=1)
    return masked_mean_of_extremes(a[..., None], counts, k_max, mask, largest=False)[:, 0]


def guide_loss(cas: Tensor, attention: Tensor, mask: Tensor | None = None) -> Tensor:
    """Per-video ``[B]`` mean over snippets of ``|1 - a[t] - softmax(S[t])_background|``."""
    background = torch.softmax(cas.float(), dim=-1)[..., -1]
    gap = (1.0 - attention.float() - background).abs()
    return _time_mean(gap, mask)


def loss_weights(
    losses: Sequence[str], *, lm_1: float, lm_2: float, alpha: float, beta: float, drop_prob: float
) -> dict[str, float]:
    """The weight of each enabled term in the total.

    ``loss_1 = (1-p) L_BCL + p L_HAL`` and ``loss_2 = (1-p) L_SAL + p L_SSAL`` split
    with p = ``drop_prob`` only when both partners are enabled; a partner alone takes
    the whole ``lm_1`` (resp. ``lm_2``). ``sparse`` gets alpha, ``guide`` beta.
    """
    enabled = set(losses)
    unknown = sorted(enabled - set(LOSS_TERMS))
    if unknown:
        raise ValueError(f"unknown loss {unknown} (known: {list(LOSS_TERMS)})")
    weights: dict[str, float] = {}
    for (base, dropped), scale in zip(_PAIRS, (lm_1, lm_2), strict=True):
        if base in enabled and dropped in enabled:
            weights.update({base: scale * (1.0 - drop_prob), dropped: scale * drop_prob})
        else:
            weights.update({name: scale for name in (base, dropped) if name in enabled})
    weights.update({name: w for name, w in (("sparse", alpha), ("guide", beta)) if name in enabled})
    return {name: weights[name] for name in LOSS_TERMS if name in weights}


def hamnet_losses(
    cas: Tensor,
    attention: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    losses: Sequence[str],
    lm_1: float,
    lm_2: float,
    alpha: float,
    beta: float,
    drop_thres: float,
    drop_prob: float,
    topk_ratio_inv: int,
    min_percent: float = 1.0,
) -> dict[str, Tensor]:
    """Training losses of ``cas [B, T, C + 1]``, ``attention [B, T]``, ``labels [B, C]``.

    Returns each enabled term (scalar batch mean, fp32) under its name (bcl, sal, hal,
    ssal, sparse, guide) and ``"total"``, the sum weighted by :func:`loss_weights`.
    """
    weights = loss_weights(
        losses, lm_1=lm_1, lm_2=lm_2, alpha=alpha, beta=beta, drop_prob=drop_prob
    )
    cas, attention = cas.float(), attention.float()
    soft, semi, hard = hybrid_attentions(attention, drop_thres, training=True, mask=mask)

    def mil(scores: Tensor, background: float) -> Tensor:
        return mil_loss(scores, labels, background, topk_ratio_inv, mask)

    terms = {
        "bcl": lambda: mil(cas, 1.0),
        "sal": lambda: mil(apply_attention(cas, soft, shift=False), 0.0),
        "hal": lambda: mil(apply_attention(cas, hard, shift=True), 1.0),
        "ssal": lambda: mil(apply_attention(cas, semi, shift=True), 0.0),
        "sparse": lambda: sparsity_loss(soft, mask, min_percent),
        "guide": lambda: guide_loss(cas, soft, mask),
    }
    out = {name: terms[name]().mean() for name in weights}
    out["total"] = sum((w * out[name] for name, w in weights.items()), cas.new_zeros(()))
    return out


def _time_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    """Per-video mean ``[B]`` of ``values [B, T]`` over valid snippets."""
    if mask is None:
        return values.mean(dim=1)
    valid = mask.to(device=values.device, dtype=torch.bool)
    total = torch.where(valid, values, torch.zeros_like(values)).sum(dim=1)
    return total / valid.sum(dim=1).to(values.dtype)
