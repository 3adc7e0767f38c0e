"""Full-length inference in padded batches over device-resident features.

Videos are sorted by length and packed into batches of at most ``max_snippets`` padded
snippets; the network's validity mask makes every video's outputs those of running it
alone (padded positions are zeroed before each layer that mixes time). One host copy per
batch brings the outputs back; they are yielded in the order of ``names``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from hamnet.data.resident import ResidentFeatures
from hamnet.engine.inference import autocast, make_output
from hamnet.engine.settings import InferenceSettings
from hamnet.methods.base import Method, VideoOutput

# padded snippets per batch: about 3 GiB of activations at D = 2048 on a GPU. On the CPU
# one video per batch: oneDNN's sums depend on the batch shape in the last bits, and one
# at a time keeps the outputs bit-identical to the streaming path (the CPU is
# compute-bound, so batching gains little there).
GPU_MAX_SNIPPETS = 65536
CPU_MAX_SNIPPETS = 1


def length_batches(lengths: list[int], max_snippets: int) -> list[list[int]]:
    """Positions into ``lengths`` grouped longest first, each group's ``len * longest``
    at most ``max_snippets`` (a longer video goes alone)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    groups: list[list[int]] = []
    for position in order:
        if groups and (len(groups[-1]) + 1) * lengths[groups[-1][0]] <= max_snippets:
            groups[-1].append(position)
        else:
            groups.append([position])
    return groups


@torch.no_grad()
def infer_resident(
    model: torch.nn.Module,
    features: ResidentFeatures,
    names: list[str],
    *,
    settings: InferenceSettings,
    max_snippets: int | None = None,
) -> Iterator[VideoOutput]:
    model.eval()
    device = features.device
    if max_snippets is None:
        max_snippets = GPU_MAX_SNIPPETS if device.type == "cuda" else CPU_MAX_SNIPPETS
    lengths = [features.length[name] for name in names]
    outputs: dict[int, VideoOutput] = {}
    for group in length_batches(lengths, max_snippets):
        batch = [names[i] for i in group]
        named = _forward_padded(model, features, batch, settings.precision, settings.method)
        for row, position in enumerate(group):
            size = lengths[position]
            video = {key: _unpad(value, row, size) for key, value in named.items()}
            outputs[position] = make_output(settings.method, names[position], video)
    for position in range(len(names)):
        yield outputs.pop(position)


def _unpad(value: np.ndarray, row: int, size: int) -> np.ndarray:
    """One video's part of a batched output: [B, T, ...] -> [size, ...]; [B] -> a scalar."""
    return value[row, :size] if value.ndim >= 2 else value[row]


def _forward_padded(
    model: torch.nn.Module,
    features: ResidentFeatures,
    names: list[str],
    precision: str,
    method: Method,
) -> dict[str, np.ndarray]:
    """The method's named outputs ([B, T, ...] or [B]) for the padded batch of ``names``."""
    lengths = np.array([features.length[name] for name in names], dtype=np.int64)
    starts = np.array([features.offset[name] for name in names], dtype=np.int64)
    steps = np.arange(int(lengths.max()), dtype=np.int64)
    # past a video's end, repeat its last row: the mask zeroes those positions anyway
    index = starts[:, None] + np.minimum(steps[None, :], lengths[:, None] - 1)
    device = features.device
    x = features.rows[torch.from_numpy(index).to(device)].float()
    mask = torch.from_numpy(steps[None, :] < lengths[:, None]).to(device)
    with autocast(device, precision):
        outputs = method.forward(model, x, mask)
    return {key: value.float().cpu().numpy() for key, value in outputs.items()}
