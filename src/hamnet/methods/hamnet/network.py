"""The HAM-Net network: a classification branch (T-CAS) and an attention branch.

Both branches are temporal Conv1d stacks over snippet features (reference §2). The
submodules keep the authors' ``nn.Sequential`` indices (classifier 0, 2, 5; attention
0, 2, 4; the optional smoothing layer at index 6 of both), so their checkpoints map
one to one (see :mod:`hamnet.weights.authors_hamnet`).

Layout: features arrive as ``[B, T, D]`` and are copied once to ``[B, D, T]`` for the
convolutions (oneDNN's Conv1d runs at matmul speed; see docs/model.md).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hamnet.methods.layers import padding_mask, run_branch


def smoothing_kernel_for(num_segments: int) -> int:
    """Width of the ActivityNet smoothing window: odd, about a fifth of the sequence (17 for 80)."""
    return (num_segments // 5) // 2 * 2 + 1


class HamNet(nn.Module):
    """Two Conv1d branches over snippet features.

    Args:
        feature_dim: D, the width of a snippet feature.
        num_classes: C action classes; the T-CAS has C + 1 columns (last: background).
        hidden_dim: width of the classifier's hidden layers (default: D, as in the paper).
        attention_dim: width of the attention branch's hidden layers.
        dropout: dropout before the classifier's last (1x1) convolution.
        smoothing_kernel: K > 0 appends AvgPool1d(K, 1, K // 2, count_include_pad=True)
            to both branches (ActivityNet); 0 turns smoothing off.
    """

    def __init__(
        self,
        feature_dim: int,
        num_classes: int,
        *,
        hidden_dim: int | None = None,
        attention_dim: int = 512,
        dropout: float = 0.7,
        smoothing_kernel: int = 0,
    ) -> None:
        super().__init__()
        if smoothing_kernel < 0 or (smoothing_kernel and smoothing_kernel % 2 == 0):
            raise ValueError(f"smoothing_kernel must be 0 or odd, got {smoothing_kernel}")
        hidden = feature_dim if hidden_dim is None else hidden_dim
        self.feature_dim = feature_dim
        self.num_classes = num_classes
        self.hidden_dim = hidden
        self.attention_dim = attention_dim
        self.smoothing_kernel = smoothing_kernel
        self.classifier = nn.Sequential(
            nn.Conv1d(feature_dim, hidden, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv1d(hidden, hidden, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Dropout(dropout),
            nn.Conv1d(hidden, num_classes + 1, 1),
        )
        self.attention = nn.Sequential(
            nn.Conv1d(feature_dim, attention_dim, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv1d(attention_dim, attention_dim, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv1d(attention_dim, 1, 1),
            nn.Sigmoid(),
        )
        if smoothing_kernel:
            for branch in (self.classifier, self.attention):
                branch.append(_smoothing(smoothing_kernel))
        self.apply(_init_weights)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Features ``x [B, T, D]`` and an optional validity ``mask [B, T]`` (bool).

        Returns ``(cas [B, T, C + 1], attention [B, T])``. With a mask, every video's
        outputs equal those of running it alone, and padded positions are 0.
        """
        if x.dim() != 3 or x.shape[-1] != self.feature_dim:
            raise ValueError(f"features must be [B, T, {self.feature_dim}], got {list(x.shape)}")
        pad = padding_mask(mask, x.device)
        # One copy to [B, D, T] in the compute dtype, shared by both branches: otherwise
        # each first conv casts (autocast) and makes its input contiguous itself, in the
        # forward and again in the backward.
        h = x.transpose(1, 2).to(_compute_dtype(x), memory_format=torch.contiguous_format)
        cas = run_branch(self.classifier, h, pad)
        attention = run_branch(self.attention, h, pad)
        return cas.transpose(1, 2).contiguous(), attention[:, 0, :]


def _compute_dtype(x: Tensor) -> torch.dtype:
    """The dtype the convolutions will run in: autocast's, if it is on for ``x``'s device."""
    device = x.device.type
    try:
        enabled = torch.is_autocast_enabled(device)
    except TypeError:  # torch < 2.4 takes no device argument
        return x.dtype
    castable = x.dtype in (torch.float32, torch.float16, torch.bfloat16)  # autocast skips fp64
    return torch.get_autocast_dtype(device) if enabled and castable else x.dtype


def _smoothing(kernel: int) -> nn.AvgPool1d:
    return nn.AvgPool1d(kernel, 1, padding=kernel // 2, count_include_pad=True)


def _init_weights(module: nn.Module) -> None:
    """Kaiming-uniform (fan_in, leaky_relu) weights and zero biases, as the authors do."""
    if isinstance(module, (nn.Conv1d, nn.Linear)):
        nn.init.kaiming_uniform_(module.weight, mode="fan_in", nonlinearity="leaky_relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)
