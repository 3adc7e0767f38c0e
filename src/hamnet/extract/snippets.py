"""Cutting a frame stream into 16-frame snippets and running them through I3D.

Snippet i holds frames [16 i, 16 i + 16); a trailing partial snippet is dropped, so at
25 fps row i covers [0.64 i, 0.64 (i + 1)) seconds. Its flow stack holds the 16 fields
``flow(frame k, frame k + 1)`` for k in the snippet; only when the video ends exactly at a
snippet boundary is the missing last field replaced by a copy of the one before it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from hamnet.extract.flow import FlowEstimator, scale_flow
from hamnet.extract.video import center_crop
from hamnet.precision import autocast

SNIPPET_FRAMES = 16


@dataclass
class Snippet:
    """rgb: [16, S, S, 3] uint8; flow: [16, S, S, 2] float32 in [-1, 1], or None."""

    rgb: np.ndarray
    flow: np.ndarray | None


def iter_snippets(
    frames: Iterable[np.ndarray], crop: int, flow: FlowEstimator | None
) -> Iterator[Snippet]:
    """Group resized frames [H, W, 3] into snippets, cropping each to [crop, crop].

    Flow is computed on the whole resized frame and cropped afterwards (as the recipe
    orders: flow between resized frames, then the centre crop).
    """
    rgb_buf: list[np.ndarray] = []
    flow_buf: list[np.ndarray] = []
    prev_gray = None
    for frame in frames:
        if flow is not None:
            gray = flow.gray(frame)
            if prev_gray is not None:
                flow_buf.append(scale_flow(center_crop(flow(prev_gray, gray), crop)))
            prev_gray = gray
        if len(rgb_buf) == SNIPPET_FRAMES and (flow is None or len(flow_buf) == SNIPPET_FRAMES):
            yield _snippet(rgb_buf, flow_buf if flow is not None else None)
            rgb_buf, flow_buf = [], []
        rgb_buf.append(np.ascontiguousarray(center_crop(frame, crop)))
    if len(rgb_buf) == SNIPPET_FRAMES:
        if flow is not None:
            flow_buf.append(flow_buf[-1])  # the video ended exactly on a snippet boundary
        yield _snippet(rgb_buf, flow_buf if flow is not None else None)


def _snippet(rgb: list[np.ndarray], flow: list[np.ndarray] | None) -> Snippet:
    return Snippet(np.stack(rgb), None if flow is None else np.stack(flow))


def rgb_clips(snippets: list[Snippet]) -> torch.Tensor:
    """[B, 3, 16, S, S] float32 with pixel values x / 127.5 - 1 in [-1, 1]."""
    rgb = torch.from_numpy(np.stack([s.rgb for s in snippets]))
    return (rgb.permute(0, 4, 1, 2, 3).float() / 127.5) - 1.0


def flow_clips(snippets: list[Snippet]) -> torch.Tensor:
    """[B, 2, 16, S, S] float32 (dx, dy), already clipped and scaled to [-1, 1]."""
    return torch.from_numpy(np.stack([s.flow for s in snippets])).permute(0, 4, 1, 2, 3)


@torch.no_grad()
def encode(model: torch.nn.Module, clips: torch.Tensor, device: str, precision: str) -> np.ndarray:
    """Run I3D on clips [B, C, 16, S, S]: features [B, 1024] float32 (numpy)."""
    with autocast(torch.device(device), precision):
        features = model(clips.to(device, non_blocking=True))
    return features.float().cpu().numpy()
