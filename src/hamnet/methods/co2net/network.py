"""CO2-Net's network and loss terms (Hong et al., ACM MM 2021), shared with DELU.

Parameter names and shapes are the official code's (model.py @ e879687), so an official
``state_dict`` loads after dropping the unused ``feat_encoder.*``. Features are
``[RGB | flow]``, each half ``D / 2`` wide (1024 in the official code, hard-coded there).

Per modality m with the other modality n (the cross-modal consensus module,
``BWA_fusion_dropout_feat_v2``): ``g = channel_conv(mean_t x_m)`` (a k=3 conv on a
length-1 input: only its middle tap acts), ``b = bit_wise_attn(x_n)``,
``x'_m = sigmoid(b * g) * x_m`` and the attention ``a_m = attention(x'_m)`` (its last
dropout comes before the sigmoid, as in the official code). Then
``a = (a_rgb + a_flow) / 2``, ``e = fusion([x'_rgb | x'_flow])`` and the T-CAS
``s = classifier(e)`` with C + 1 columns (the last background).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hamnet.methods.layers import padding_mask, run_branch


def official_init(module: nn.Module) -> None:
    """Kaiming-uniform weights (PyTorch's defaults: a=0, fan_in) and zero biases."""
    if isinstance(module, (nn.Conv1d, nn.Linear)):
        nn.init.kaiming_uniform_(module.weight)
        if module.bias is not None:
            module.bias.data.fill_(0)


class ConsensusAttention(nn.Module):
    """One modality's cross-modal consensus module (official ``BWA_fusion_dropout_feat_v2``)."""

    def __init__(self, width: int, attention_dim: int) -> None:
        super().__init__()
        self.bit_wise_attn = nn.Sequential(
            nn.Conv1d(width, width, 3, padding=1), nn.LeakyReLU(0.2), nn.Dropout(0.5)
        )
        self.channel_conv = nn.Sequential(
            nn.Conv1d(width, width, 3, padding=1), nn.LeakyReLU(0.2), nn.Dropout(0.5)
        )
        self.attention = nn.Sequential(
            nn.Conv1d(width, attention_dim, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Dropout(0.5),
            nn.Conv1d(attention_dim, attention_dim, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv1d(attention_dim, 1, 1),
            nn.Dropout(0.5),
            nn.Sigmoid(),
        )

    def forward(self, own: Tensor, other: Tensor, pad: Tensor | None) -> tuple[Tensor, Tensor]:
        if pad is None:
            channel = own.mean(dim=2, keepdim=True)
        else:  # the mean over the video's own snippets, as when it runs alone
            keep = (~pad).to(own.dtype)
            channel = (own * keep).sum(dim=2, keepdim=True) / keep.sum(dim=2, keepdim=True)
        gate = self.channel_conv(channel)
        bitwise = run_branch(self.bit_wise_attn, other, pad)
        filtered = torch.sigmoid(bitwise * gate) * own
        if pad is not None:
            filtered = filtered.masked_fill(pad, 0.0)
        return run_branch(self.attention, filtered, pad), filtered


class Co2Network(nn.Module):
    """CO2-Net / DELU: two consensus modules, fusion, classifier (C + 1 columns).

    ``pool_kernel`` > 1: ActivityNet's AvgPool1d(k, 1, k // 2, count_include_pad) over the
    T-CAS and the three attentions (official ``ANT_CO2`` / ``DELU_ACT``).
    """

    def __init__(
        self,
        feature_dim: int,
        num_classes: int,
        *,
        attention_dim: int = 512,
        dropout: float = 0.7,
        pool_kernel: int = 0,
    ) -> None:
        super().__init__()
        half = feature_dim // 2
        self.feature_dim = feature_dim
        self.vAttn = ConsensusAttention(half, attention_dim)
        self.fAttn = ConsensusAttention(half, attention_dim)
        # unused in forward; built (and initialised) only to draw the official code's
        # random numbers in its order, so that a seed gives the official initial weights
        self.feat_encoder = nn.Sequential(nn.Conv1d(feature_dim, feature_dim, 3, padding=1))
        self.fusion = nn.Sequential(
            nn.Conv1d(feature_dim, feature_dim, 1), nn.LeakyReLU(0.2), nn.Dropout(dropout)
        )
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Conv1d(feature_dim, feature_dim, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Dropout(0.7),
            nn.Conv1d(feature_dim, num_classes + 1, 1),
        )
        self.pool_kernel = pool_kernel
        self.apply(official_init)
        del self.feat_encoder

    def _pool(self, x: Tensor, pad: Tensor | None) -> Tensor:
        if self.pool_kernel <= 1:
            return x
        if pad is not None:
            x = x.masked_fill(pad, 0.0)
        k = self.pool_kernel
        pooled = F.avg_pool1d(x, k, 1, padding=k // 2, count_include_pad=True)
        return pooled if pad is None else pooled.masked_fill(pad, 0.0)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> dict[str, Tensor]:
        pad = padding_mask(mask, x.device)
        feat = x.transpose(1, 2)
        half = self.feature_dim // 2
        rgb, flow = feat[:, :half], feat[:, half:]
        v_atn, vfeat = self.vAttn(rgb, flow, pad)
        f_atn, ffeat = self.fAttn(flow, rgb, pad)
        x_atn = (f_atn + v_atn) / 2
        fused = run_branch(self.fusion, torch.cat((vfeat, ffeat), 1), pad)
        cas = run_branch(self.classifier, fused, pad)
        return {
            "feat": fused.transpose(1, 2),
            "cas": self._pool(cas, pad).transpose(1, 2),
            "attn": self._pool(x_atn, pad)[:, 0],
            "v_atn": self._pool(v_atn, pad)[:, 0],
            "f_atn": self._pool(f_atn, pad)[:, 0],
        }


# ---- loss terms (official CO2.criterion, model.py:104-215) --------------------------


def suppressed_cas(cas: Tensor, attention: Tensor) -> Tensor:
    """``a (s - min_c s) + min_c s``: the minimum is over the classes of each snippet."""
    low = cas.min(dim=-1, keepdim=True).values
    return attention[..., None] * (cas - low) + low


def topk_mil(cas: Tensor, labels: Tensor, background: float, ratio: float) -> Tensor:
    """Batch mean of ``-Σ y'_c log softmax(mean of the T // ratio largest s)_c``, with
    ``y' = [y, background] / (Σ + 1e-4)``."""
    k = max(1, int(cas.shape[-2] // ratio))
    logits = torch.topk(cas, k=k, dim=-2).values.mean(dim=-2)
    target = torch.cat((labels, torch.full_like(labels[:, :1], background)), dim=-1)
    target = target / (target.sum(dim=1, keepdim=True) + 1e-4)
    return -(target * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def co_activity(feat: Tensor, cas_supp: Tensor, labels: Tensor, pairs: int = 3) -> Tensor:
    """The co-activity term over the pairs (0, 1), (2, 3), (4, 5) of the batch (the
    official sampler puts the class-paired videos first); 0 when they share no class."""
    target = torch.cat((labels, torch.zeros_like(labels[:, :1])), dim=-1)
    n = max(cas_supp.shape[1] - 1, 1)
    total, shared = cas_supp.new_zeros(()), cas_supp.new_zeros(())
    for i in range(0, min(2 * pairs, feat.shape[0] - 1), 2):
        atn1, atn2 = F.softmax(cas_supp[i], dim=0), F.softmax(cas_supp[i + 1], dim=0)
        high1, high2 = feat[i].t() @ atn1, feat[i + 1].t() @ atn2
        low1, low2 = feat[i].t() @ ((1 - atn1) / n), feat[i + 1].t() @ ((1 - atn2) / n)
        d1, d2, d3 = _distance(high1, high2), _distance(high1, low2), _distance(high2, low1)
        both = target[i] * target[i + 1]
        total = total + 0.5 * (F.relu(d1 - d2 + 0.5) * both).sum()
        total = total + 0.5 * (F.relu(d1 - d3 + 0.5) * both).sum()
        shared = shared + both.sum()
    # the official code divides by the count even when it is 0 (NaN); hamnet gives 0
    return total / shared if bool(shared > 0) else total


def _distance(a: Tensor, b: Tensor) -> Tensor:
    return 1 - (a * b).sum(dim=0) / (a.norm(2, dim=0) * b.norm(2, dim=0))


def mutual(v_atn: Tensor, f_atn: Tensor) -> Tensor:
    return 0.5 * F.mse_loss(v_atn, f_atn.detach()) + 0.5 * F.mse_loss(f_atn, v_atn.detach())


def attention_norm(outputs: dict[str, Tensor]) -> Tensor:
    return sum(outputs[key].mean() for key in ("attn", "v_atn", "f_atn")) / 3


def guide_maps(outputs: dict[str, Tensor]) -> Tensor:
    """``[B, T]``: the mean over the three attentions of ``|1 - a - p_background|``."""
    background = outputs["cas"].softmax(-1)[..., -1]
    maps = [(1 - outputs[key] - background).abs() for key in ("attn", "v_atn", "f_atn")]
    return sum(maps) / 3


def co2_terms(outputs: dict[str, Tensor], labels: Tensor, ratio: float) -> dict:
    """The unweighted CO2-Net terms as zero-argument functions (computed when enabled)."""
    cas, atn = outputs["cas"].float(), outputs["attn"].float()
    labels = labels.float().to(cas.device)
    supp = suppressed_cas(cas, atn)
    return {
        "mil_base": lambda: topk_mil(cas, labels, 1.0, ratio),
        "mil_supp": lambda: topk_mil(supp, labels, 0.0, ratio),
        "coactivity": lambda: co_activity(outputs["feat"].float(), supp, labels),
        "mutual": lambda: mutual(outputs["v_atn"].float(), outputs["f_atn"].float()),
        "norm": lambda: attention_norm(outputs),
        "guide": lambda: guide_maps(outputs).mean(),
    }
