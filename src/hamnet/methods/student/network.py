"""The TriDet detector FuSTAL's student trains (Student-Training/libs/modeling @ 3037b4e).

SGP backbone (masked conv embedding, SGP stem, SGP branch with max-pool downsampling),
identity FPN neck (one LayerNorm per level), classification head with the prior-probability
bias, trident start/end boundary heads (on detached features) and a centre-offset head
with ``num_bins + 1`` bins per side behind a learnable scale per level. Modules are
created in the reference's order with the same initialisers, so one torch seed gives the
reference's initial weights. :func:`reference_key` maps the official state_dict's keys.

Inputs are hamnet's ``[B, T, D]`` features and ``[B, T]`` mask; :func:`pad_inputs` pads
them as the reference's ``preprocessing`` does (training: to ``max_seq_len``, with the
Gaussian input noise; test: to ``max_seq_len`` or the next multiple of the largest stride).
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class TriDetShape:
    """What the network is built from (config.py defaults + configs/thumos_i3d.yaml)."""

    input_dim: int
    num_classes: int
    max_seq_len: int = 2304
    arch: tuple[int, int, int] = (2, 2, 5)
    embd_dim: int = 512
    embd_kernel_size: int = 3
    sgp_mlp_dim: int = 768
    sgp_win_size: int = 1
    k: float = 5.0
    init_conv_vars: float = 0.0
    head_dim: int = 512
    head_kernel_size: int = 3
    boundary_kernel_size: int = 3
    head_num_layers: int = 3
    num_bins: int = 16
    cls_prior_prob: float = 0.01
    droppath: float = 0.1
    input_noise: float = 0.0005
    max_buffer_len_factor: float = 6.0
    regression_range: tuple[tuple[float, float], ...] = (
        (0, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 10000),
    )  # fmt: skip

    @property
    def strides(self) -> list[int]:
        return [2**i for i in range(self.arch[2] + 1)]

    @property
    def max_div_factor(self) -> int:
        w = self.sgp_win_size
        return max([1] + [s * w if w > 1 else s for s in self.strides])


class ChannelNorm(nn.Module):
    """blocks.py LayerNorm: normalisation over C of [B, C, T], affine (1, C, 1)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(1, channels, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        centred = x - x.mean(dim=1, keepdim=True)
        var = (centred**2).mean(dim=1, keepdim=True)
        return centred / torch.sqrt(var + self.eps) * self.weight + self.bias


class MaskedConv(nn.Module):
    """blocks.py MaskedConv1D (stride 1): a same-padded conv whose output is zeroed
    outside the mask; its bias (if any) starts at 0."""

    def __init__(self, cin: int, cout: int, kernel: int, bias: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, kernel, padding=kernel // 2, bias=bias)
        if bias:
            nn.init.constant_(self.conv.bias, 0.0)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return self.conv(x) * mask.to(x.dtype)


def drop_path(x: Tensor, prob: float, training: bool) -> Tensor:
    """Stochastic depth per sample (blocks.py drop_path): one torch.rand draw [B, 1, 1]."""
    if prob == 0.0 or not training:
        return x
    keep = 1 - prob
    mask = keep + torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device)
    return x.div(keep) * mask.floor_()


class ScaledDropPath(nn.Module):
    """blocks.py AffineDropPath: a per-channel scale (1e-4 at start), then drop path."""

    def __init__(self, channels: int, prob: float) -> None:
        super().__init__()
        self.scale = nn.Parameter(1e-4 * torch.ones((1, channels, 1)))
        self.prob = prob

    def forward(self, x: Tensor) -> Tensor:
        return drop_path(self.scale * x, self.prob, self.training)


class SgpLayer(nn.Module):
    """blocks.py SGPBlock: instant-level (fc x global gate) and window-level
    ((conv_w + conv_kw) x psi) branches on the LayerNorm'd input, residual, then a
    GroupNorm'd MLP; ``stride`` 2 max-pools first (kernel 3, padding 1)."""

    def __init__(self, dim: int, kernel: int, stride: int, shape: TriDetShape, drop: float):
        super().__init__()
        self.stride = stride
        self.norm = ChannelNorm(dim)
        self.group_norm = nn.GroupNorm(16, dim)
        wide = round((kernel + 1) * shape.k)
        wide = wide + 1 if wide % 2 == 0 else wide
        self.psi = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.fc = nn.Conv1d(dim, dim, 1, groups=dim)
        self.conv_w = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.conv_kw = nn.Conv1d(dim, dim, wide, padding=wide // 2, groups=dim)
        self.global_fc = nn.Conv1d(dim, dim, 1, groups=dim)
        self.pool = nn.MaxPool1d(stride + 1, stride, (stride + 1) // 2) if stride > 1 else None
        self.mlp_in = nn.Conv1d(dim, shape.sgp_mlp_dim, 1)
        self.act = nn.GELU()
        self.mlp_out = nn.Conv1d(shape.sgp_mlp_dim, dim, 1)
        has_drop = drop > 0.0
        self.out_path = ScaledDropPath(dim, drop) if has_drop else nn.Identity()
        self.mlp_path = ScaledDropPath(dim, drop) if has_drop else nn.Identity()
        for conv in (self.psi, self.fc, self.conv_w, self.conv_kw, self.global_fc):
            nn.init.normal_(conv.weight, 0, shape.init_conv_vars)
        for conv in (self.psi, self.fc, self.conv_w, self.conv_kw, self.global_fc):
            nn.init.constant_(conv.bias, 0)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        length = x.shape[-1]
        if self.pool is not None:
            x = self.pool(x)
        mask = F.interpolate(mask.to(x.dtype), size=length // self.stride, mode="nearest")
        out = self.norm(x)
        gate = torch.relu(self.global_fc(out.mean(dim=-1, keepdim=True)))
        window = (self.conv_w(out) + self.conv_kw(out)) * self.psi(out)
        out = self.fc(out) * gate + window + out
        out = x * mask + self.out_path(out)
        out = out + self.mlp_path(self.mlp_out(self.act(self.mlp_in(self.group_norm(out)))))
        return out, mask.bool()


class SgpBackbone(nn.Module):
    """backbones.py SGPBackbone: ``arch[0]`` masked convs + LayerNorm + ReLU, ``arch[1]``
    SGP layers at full rate, ``arch[2]`` SGP layers each halving the rate (drop path)."""

    def __init__(self, shape: TriDetShape) -> None:
        super().__init__()
        dim, ks = shape.embd_dim, shape.embd_kernel_size
        self.embed = nn.ModuleList()
        self.embed_norms = nn.ModuleList()
        for i in range(shape.arch[0]):
            cin = shape.input_dim if i == 0 else dim
            self.embed.append(MaskedConv(cin, dim, ks, bias=False))
            self.embed_norms.append(ChannelNorm(dim))
        self.stem = nn.ModuleList(SgpLayer(dim, 1, 1, shape, 0.0) for _ in range(shape.arch[1]))
        self.pyramid = nn.ModuleList(
            SgpLayer(dim, shape.sgp_win_size, 2, shape, shape.droppath)
            for _ in range(shape.arch[2])
        )
        for module in self.modules():  # backbone's __init_weights__: conv biases 0
            if isinstance(module, (nn.Linear, nn.Conv1d)) and module.bias is not None:
                nn.init.constant_(module.bias, 0.0)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        for conv, norm in zip(self.embed, self.embed_norms, strict=True):
            x = torch.relu(norm(conv(x, mask)))
        for layer in self.stem:
            x, mask = layer(x, mask)
        feats, masks = [x], [mask]
        for layer in self.pyramid:
            x, mask = layer(x, mask)
            feats.append(x)
            masks.append(mask)
        return feats, masks


class ConvHead(nn.Module):
    """meta_archs.py ClsHead / RegHead: (masked conv + LayerNorm + ReLU) x (layers - 1)
    and a masked output conv, shared over the levels."""

    def __init__(self, shape: TriDetShape, out: int, kernel: int) -> None:
        super().__init__()
        dim = shape.head_dim
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for i in range(shape.head_num_layers - 1):
            self.convs.append(MaskedConv(shape.embd_dim if i == 0 else dim, dim, kernel, False))
            self.norms.append(ChannelNorm(dim))
        self.out = MaskedConv(dim, out, kernel)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = torch.relu(norm(conv(x, mask)))
        return self.out(x, mask)


def class_head(shape: TriDetShape, kernel: int) -> ConvHead:
    head = ConvHead(shape, shape.num_classes, kernel)
    prior = shape.cls_prior_prob
    nn.init.constant_(head.out.conv.bias, -math.log((1 - prior) / prior))
    return head


class Scale(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.0, dtype=torch.float32))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale


def level_points(shape: TriDetShape) -> list[Tensor]:
    """loc_generators.py PointGenerator: per level [T_l, 4] rows (t, range low, range
    high, stride) for ``max_seq_len x max_buffer_len_factor`` positions."""
    span = shape.max_seq_len * shape.max_buffer_len_factor
    out = []
    for stride, reg in zip(shape.strides, shape.regression_range, strict=True):
        t = torch.arange(0, span, stride)[:, None]
        rest = torch.tensor([float(reg[0]), float(reg[1]), float(stride)])[None]
        out.append(torch.cat((t, rest.repeat(t.shape[0], 1)), dim=1))
    return out


class TriDetNet(nn.Module):
    """One TriDet: backbone, identity neck, heads. ``forward`` on padded [B, D, T]
    inputs and [B, 1, T] masks -> per level lists of cls / start / end logits
    [B, T_l, C], offsets [B, T_l, 2 (num_bins + 1)] and masks [B, T_l]."""

    def __init__(self, shape: TriDetShape) -> None:
        super().__init__()
        self.shape = shape
        self.backbone = SgpBackbone(shape)
        self.fpn_norms = nn.ModuleList(ChannelNorm(shape.embd_dim) for _ in shape.strides)
        self.cls_head = class_head(shape, shape.head_kernel_size)
        self.start_head = class_head(shape, shape.boundary_kernel_size)
        self.end_head = class_head(shape, shape.boundary_kernel_size)
        self.reg_head = ConvHead(shape, 2 * (shape.num_bins + 1), shape.head_kernel_size)
        self.scales = nn.ModuleList(Scale() for _ in shape.strides)

    def forward(self, x: Tensor, mask: Tensor) -> dict[str, list[Tensor]]:
        feats, masks = self.backbone(x, mask)
        feats = [norm(f) for norm, f in zip(self.fpn_norms, feats, strict=True)]
        out: dict[str, list[Tensor]] = {k: [] for k in ("cls", "start", "end", "offsets", "mask")}
        for level, (feat, m) in enumerate(zip(feats, masks, strict=True)):
            out["cls"].append(self.cls_head(feat, m).permute(0, 2, 1))
            out["start"].append(self.start_head(feat.detach(), m).permute(0, 2, 1))
            out["end"].append(self.end_head(feat.detach(), m).permute(0, 2, 1))
            offsets = F.relu(self.scales[level](self.reg_head(feat, m)))
            out["offsets"].append(offsets.permute(0, 2, 1))
            out["mask"].append(m.squeeze(1))
        return out


class StudentNetwork(nn.Module):
    """The student (trained) and its EMA copy (``ema``, decay 0.999, not trained: the
    reference's ModelEMA, kept here so checkpoints carry it) and the loss normaliser
    (``loss_norm``, the reference's ``loss_normalizer``) and the optimizer steps taken
    (``updates``, the schedule's position): buffers, so checkpoints and resume carry them."""

    def __init__(self, shape: TriDetShape, init_loss_norm: float) -> None:
        super().__init__()
        self.shape = shape
        self.student = TriDetNet(shape)
        self.ema = copy.deepcopy(self.student)
        self.ema.requires_grad_(False)
        self.register_buffer("loss_norm", torch.tensor(float(init_loss_norm), dtype=torch.float64))
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))  # optimizer steps
        for i, points in enumerate(level_points(shape)):
            self.register_buffer(f"points_{i}", points, persistent=False)

    def points(self, lengths: list[int]) -> list[Tensor]:
        return [getattr(self, f"points_{i}")[:n] for i, n in enumerate(lengths)]

    def train(self, mode: bool = True) -> StudentNetwork:
        super().train(mode)
        self.ema.eval()  # the reference's EMA model is always in eval mode
        return self

    def forward(self, features: Tensor, mask: Tensor, use_ema: bool = False) -> dict:
        """``features`` [B, T, D], ``mask`` [B, T] -> the heads' outputs (see TriDetNet)
        plus ``points`` (per level [T_l, 4]); the student in training mode pads and adds
        noise as the reference's training preprocessing does."""
        net = self.ema if use_ema else self.student
        x, m = pad_inputs(features, mask, self.shape, net.training)
        out = net(x, m)
        out["points"] = self.points([t.shape[1] for t in out["cls"]])
        return out

    @torch.no_grad()
    def update_ema(self, decay: float = 0.999) -> None:
        """ModelEMA.update: ema = decay x ema + (1 - decay) x student, every entry of
        the state_dict (parameters; there are no other persistent buffers)."""
        ema_state, state = self.ema.state_dict(), self.student.state_dict()
        for key, value in ema_state.items():
            value.copy_(decay * value + (1.0 - decay) * state[key])


def pad_inputs(features: Tensor, mask: Tensor, shape: TriDetShape, training: bool):
    """meta_archs.py preprocessing: [B, T, D] -> [B, D, L] zero-padded and [B, 1, L]
    mask from the lengths; training L = max_seq_len (+ noise x input_noise on all of
    it); test L = max_seq_len, or the next multiple of the largest stride if longer."""
    lengths = mask.sum(dim=1).long()
    longest = int(lengths.max())
    if training:
        if longest > shape.max_seq_len:
            raise ValueError(f"a training video of {longest} rows > max_seq_len")
        size = shape.max_seq_len
    elif longest <= shape.max_seq_len:
        size = shape.max_seq_len
    else:
        div = shape.max_div_factor
        size = (longest + div - 1) // div * div
    x = features.new_zeros((features.shape[0], features.shape[2], size))
    for b in range(features.shape[0]):
        x[b, :, : lengths[b]] = features[b, : lengths[b]].t()
    if training and shape.input_noise > 0:
        x = x + torch.randn_like(x) * shape.input_noise
    m = torch.arange(size, device=features.device)[None, :] < lengths[:, None]
    return x, m.unsqueeze(1)


# ---- the official state_dict's names (DataParallel's "module." prefix dropped) ----

_REFERENCE_NAMES = [
    (r"^backbone\.embd\.(\d+)\.conv\.", r"backbone.embed.\1.conv."),
    (r"^backbone\.embd_norm\.", "backbone.embed_norms."),
    (r"^backbone\.branch\.", "backbone.pyramid."),
    (r"\.ln\.", ".norm."),
    (r"\.gn\.", ".group_norm."),
    (r"\.convw\.", ".conv_w."),
    (r"\.convkw\.", ".conv_kw."),
    (r"\.mlp\.0\.", ".mlp_in."),
    (r"\.mlp\.2\.", ".mlp_out."),
    (r"\.drop_path_out\.", ".out_path."),
    (r"\.drop_path_mlp\.", ".mlp_path."),
    (r"^neck\.fpn_norms\.", "fpn_norms."),
    (r"^(cls|start|end|reg)_head\.head\.", r"\1_head.convs."),
    (r"^(cls|start|end|reg)_head\.norm\.", r"\1_head.norms."),
    (r"^(cls|start|end)_head\.cls_head\.", r"\1_head.out."),
    (r"^reg_head\.offset_head\.", "reg_head.out."),
    (r"^reg_head\.scale\.(\d+)\.scale$", r"scales.\1.scale"),
]


def reference_key(name: str) -> str:
    """The TriDetNet key of an official TriDet state_dict key."""
    name = name.removeprefix("module.")
    for pattern, repl in _REFERENCE_NAMES:
        name = re.sub(pattern, repl, name)
    return name


def from_reference(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """An official TriDet (or ModelEMA.module) state_dict as TriDetNet's."""
    return {reference_key(k): v for k, v in state.items()}
