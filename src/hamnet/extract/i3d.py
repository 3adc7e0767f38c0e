"""Inception-v1 I3D (Carreira & Zisserman, 2017) in plain PyTorch, as a feature extractor.

The module names match the widely used PyTorch port of the TensorFlow release, so its weight
files (``rgb_imagenet.pt``, ``flow_imagenet.pt``) load directly: keys such as
``Conv3d_1a_7x7.conv3d.weight``, ``Mixed_3b.b1b.bn.running_mean``, ``logits.conv3d.bias``.
Padding follows TensorFlow's "SAME" rule computed from each input's size, so the network
accepts any clip size and reproduces the TensorFlow outputs.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from hamnet.errors import CheckpointError
from hamnet.weights.files import load_weights_strict, read_weight_file

FEATURE_DIM = 1024
BN_EPS = 1e-3
# Kinetics-trained files carry a 400-way classifier; only its shape is read, never used.
DEFAULT_NUM_CLASSES = 400
_BN_COUNTER = "num_batches_tracked"

# Inception branch widths per block: 1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 | pool -> 1x1.
_MIXED: dict[str, tuple[int, int, int, int, int, int]] = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}

ENDPOINTS = (
    "Conv3d_1a_7x7",
    "MaxPool3d_2a_3x3",
    "Conv3d_2b_1x1",
    "Conv3d_2c_3x3",
    "MaxPool3d_3a_3x3",
    "Mixed_3b",
    "Mixed_3c",
    "MaxPool3d_4a_3x3",
    "Mixed_4b",
    "Mixed_4c",
    "Mixed_4d",
    "Mixed_4e",
    "Mixed_4f",
    "MaxPool3d_5a_2x2",
    "Mixed_5b",
    "Mixed_5c",
)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME": output ceil(size / stride); the odd pixel of padding goes after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel, stride, value: float) -> torch.Tensor:
    """Pad a [B, C, T, H, W] tensor so that a (kernel, stride) window gives "SAME" output."""
    pads: list[int] = []
    for axis in (4, 3, 2):  # F.pad lists the last axis first
        pads.extend(same_padding(x.shape[axis], kernel[axis - 2], stride[axis - 2]))
    return F.pad(x, pads, value=value) if any(pads) else x


class Unit3D(nn.Module):
    """Conv3d (SAME padding) -> BatchNorm (eps 1e-3) -> ReLU; the logits unit has bias only."""

    def __init__(self, cin: int, cout: int, kernel=(1, 1, 1), stride=(1, 1, 1), head=False):
        super().__init__()
        self.kernel, self.stride, self.head = tuple(kernel), tuple(stride), head
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, self.stride, bias=head)
        if not head:
            self.bn = nn.BatchNorm3d(cout, eps=BN_EPS, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(_pad_same(x, self.kernel, self.stride, 0.0))
        return x if self.head else F.relu(self.bn(x))


class MaxPool3dSame(nn.Module):
    """Max pooling with TensorFlow "SAME" padding (padded cells never win: -inf)."""

    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _pad_same(x, self.kernel, self.stride, float("-inf"))
        return F.max_pool3d(x, self.kernel, self.stride)


class InceptionBlock(nn.Module):
    """Four parallel branches concatenated on channels (branch names as in the weight files)."""

    def __init__(self, cin: int, widths: tuple[int, int, int, int, int, int]):
        super().__init__()
        w0, w1a, w1b, w2a, w2b, w3 = widths
        self.b0 = Unit3D(cin, w0)
        self.b1a = Unit3D(cin, w1a)
        self.b1b = Unit3D(w1a, w1b, kernel=(3, 3, 3))
        self.b2a = Unit3D(cin, w2a)
        self.b2b = Unit3D(w2a, w2b, kernel=(3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(cin, w3)
        self.out_channels = w0 + w1b + w2b + w3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x)))
        return torch.cat(branches, dim=1)


def _stem(in_channels: int) -> OrderedDict[str, nn.Module]:
    return OrderedDict(
        Conv3d_1a_7x7=Unit3D(in_channels, 64, (7, 7, 7), (2, 2, 2)),
        MaxPool3d_2a_3x3=MaxPool3dSame((1, 3, 3), (1, 2, 2)),
        Conv3d_2b_1x1=Unit3D(64, 64),
        Conv3d_2c_3x3=Unit3D(64, 192, (3, 3, 3)),
        MaxPool3d_3a_3x3=MaxPool3dSame((1, 3, 3), (1, 2, 2)),
    )


_POOLS = {
    "MaxPool3d_4a_3x3": ((3, 3, 3), (2, 2, 2)),
    "MaxPool3d_5a_2x2": ((2, 2, 2), (2, 2, 2)),
}


class InceptionI3d(nn.Module):
    """I3D backbone. ``forward`` maps a clip [B, C, T, H, W] to features [B, 1024].

    The features are Mixed_5c ([B, 1024, T/8, H/32, W/32]) averaged over time and space.
    RGB clips have C = 3 with values in [-1, 1]; flow clips have C = 2 (dx, dy) in [-1, 1].
    """

    def __init__(self, in_channels: int = 3, num_classes: int = DEFAULT_NUM_CLASSES):
        super().__init__()
        self.in_channels = in_channels
        layers = _stem(in_channels)
        channels = 192
        for name in ENDPOINTS[5:]:
            if name in _POOLS:
                layers[name] = MaxPool3dSame(*_POOLS[name])
            else:
                layers[name] = InceptionBlock(channels, _MIXED[name])
                channels = layers[name].out_channels
        for name, layer in layers.items():
            self.add_module(name, layer)
        # Kept only so the released files load strictly; features never pass through it.
        self.logits = Unit3D(channels, num_classes, head=True)

    def endpoints(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every endpoint's output for a clip [B, C, T, H, W], in network order."""
        outputs = {}
        for name in ENDPOINTS:
            x = getattr(self, name)(x)
            outputs[name] = x
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in ENDPOINTS:
            x = getattr(self, name)(x)
        return x.mean(dim=(2, 3, 4))


def _expected_keys(model: nn.Module) -> dict[str, torch.Size]:
    return {k: v.shape for k, v in model.state_dict().items() if not k.endswith(_BN_COUNTER)}


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Raise CheckpointError naming the first key that is missing, unexpected or misshapen."""
    expected = _expected_keys(model)
    given = {k: v for k, v in state.items() if not k.endswith(_BN_COUNTER)}
    for key, shape in expected.items():
        if key not in given:
            raise CheckpointError(f"{source}: not an I3D weight file: key {key!r} is missing")
        if tuple(given[key].shape) != tuple(shape):
            raise CheckpointError(
                f"{source}: key {key!r} has shape {tuple(given[key].shape)}, "
                f"the network needs {tuple(shape)}"
            )
    for key in given:
        if key not in expected:
            raise CheckpointError(f"{source}: not an I3D weight file: unexpected key {key!r}")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a weight file (tensors only; ``module.`` prefixes from DataParallel removed)."""
    path = Path(path)
    state = read_weight_file(path, what="I3D weight file")
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_i3d(path: Path, in_channels: int) -> InceptionI3d:
    """Build I3D from a weight file, checking its layout; returns the network in eval mode.

    ``in_channels`` is 3 for the RGB stream, 2 for the flow stream.
    """
    state = read_state_dict(path)
    first = state.get("Conv3d_1a_7x7.conv3d.weight")
    if first is not None and first.ndim == 5 and first.shape[1] != in_channels:
        stream = "rgb" if in_channels == 3 else "flow"
        raise CheckpointError(
            f"{path}: weights take {first.shape[1]} input channels, "
            f"the {stream} stream needs {in_channels} (rgb and flow files swapped?)"
        )
    head = state.get("logits.conv3d.weight")
    num_classes = int(head.shape[0]) if head is not None else DEFAULT_NUM_CLASSES
    model = InceptionI3d(in_channels, num_classes)
    check_state_dict(model, state, str(path))
    # only the BN counters may be absent (old-format files)
    load_weights_strict(model, state, str(path), optional=lambda key: key.endswith(_BN_COUNTER))
    return model.eval()


def random_i3d_state_dict(in_channels: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict in the published layout with random values (tests; meaningless features).

    Old-format files lack BN counters, so they are left out here too.
    """
    torch.manual_seed(seed)
    model = InceptionI3d(in_channels)
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("running_var"):
                buf.uniform_(0.5, 1.5)
            elif name.endswith("running_mean"):
                buf.normal_(0.0, 0.1)
    state = model.state_dict()
    return OrderedDict((k, v) for k, v in state.items() if not k.endswith(_BN_COUNTER))


def write_random_i3d_weights(path: Path, in_channels: int, seed: int = 0) -> Path:
    """Save :func:`random_i3d_state_dict` to ``path`` (for tests of the extract command)."""
    torch.save(random_i3d_state_dict(in_channels, seed), Path(path))
    return Path(path)
