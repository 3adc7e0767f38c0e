"""Seeded synthetic head outputs of one video for the student's test-rule parity cases
(shared by tests/methods/test_student_post.py and tools/reference/record_student_post.py)."""

from __future__ import annotations

import numpy as np
import torch

NUM_CLASSES = 20
NUM_BINS = 16
LEVEL_LENGTHS = (32, 16, 8, 4, 2, 1)  # six FPN levels, strides 1, 2, 4, ... 32
VALID = (29, 15, 8, 4, 1, 1)  # unmasked points per level (the video ends before the pad)
META = {"fps": 30.0, "duration": 3.9, "feat_stride": 4, "feat_num_frames": 16}

# name -> (seed, test_cfg overrides of the thumos_i3d settings)
CASES: dict[str, tuple[int, dict]] = {
    "soft_multiclass": (0, {}),
    "hard_multiclass": (1, {"nms_method": "hard"}),
    "soft_agnostic_voting": (2, {"multiclass_nms": False}),
    "hard_agnostic_voting": (
        3,
        {"nms_method": "hard", "multiclass_nms": False, "iou_threshold": 0.3},
    ),
    "soft_agnostic_no_voting": (4, {"multiclass_nms": False, "voting_thresh": 0.0}),
    "hard_capped": (
        5,
        {
            "nms_method": "hard",
            "pre_nms_topk": 60,
            "max_seg_num": 40,
            "min_score": 0.05,
            "iou_threshold": 0.5,
        },
    ),
    "soft_capped": (
        6,
        {"pre_nms_topk": 80, "max_seg_num": 50, "min_score": 0.02, "nms_sigma": 0.3},
    ),
    "library_defaults": (
        7,
        {"pre_nms_topk": 5000, "min_score": 0.01, "max_seg_num": 1000, "voting_thresh": 0.75},
    ),
}


def head_outputs(seed: int) -> dict[str, list[torch.Tensor]]:
    """One video's per-level outputs, shaped as TriDet hands them to
    inference_single_video: points [T, 4], masks [T] bool, cls [T, C], offsets
    [T, 2 (bins + 1)] (>= 0, after the official ReLU), start / end [C, T]."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[torch.Tensor]] = {
        k: [] for k in ("points", "masks", "cls", "offsets", "start", "end")
    }
    for level, (length, valid) in enumerate(zip(LEVEL_LENGTHS, VALID, strict=True)):
        stride = 2.0**level
        times = np.arange(length, dtype=np.float32) * stride
        points = np.stack(
            [times, np.zeros(length), np.full(length, 1e4), np.full(length, stride)], 1
        ).astype(np.float32)
        offsets = np.maximum(rng.normal(0.0, 2.0, (length, 2 * (NUM_BINS + 1))), 0.0)
        out["points"].append(torch.from_numpy(points))
        out["masks"].append(torch.arange(length) < valid)
        out["cls"].append(_f32(rng.normal(-5.5, 2.0, (length, NUM_CLASSES))))
        out["offsets"].append(_f32(offsets))
        out["start"].append(_f32(rng.normal(0.0, 3.0, (NUM_CLASSES, length))))
        out["end"].append(_f32(rng.normal(0.0, 3.0, (NUM_CLASSES, length))))
    return out


def _f32(values: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(values.astype(np.float32))
