"""The seeded synthetic case the FuSTAL student's parity fixtures were recorded on
(tools/reference/record_student.py runs the official code on it; tests/methods/
test_student.py regenerates it and compares)."""

from __future__ import annotations

import numpy as np

SEED = 1234567891  # config.py init_rand_seed
SHAPE = dict(
    input_dim=64, num_classes=20, max_seq_len=320, embd_dim=64, sgp_mlp_dim=96, head_dim=64,
    k=5.0, sgp_win_size=1, num_bins=16, input_noise=0.0005, droppath=0.1,
)  # fmt: skip
LENGTHS = (300, 257)
LR, WEIGHT_DECAY, WARMUP_STEPS, STEPS = 1e-4, 0.05, 4, 3


def case() -> dict:
    """Two videos: features [T, 64], pseudo segments on the feature grid, their labels,
    the videos' multi-hot labels."""
    rng = np.random.default_rng(23)
    videos = []
    for length in LENGTHS:
        feats = rng.normal(size=(length, SHAPE["input_dim"])).astype(np.float32)
        count = 4
        starts = rng.uniform(0, length - 70, size=count)
        spans = rng.choice([3.0, 7.5, 12.0, 30.0, 64.0], size=count)
        segments = np.stack([starts, starts + spans], axis=1).astype(np.float32)
        labels = rng.integers(0, SHAPE["num_classes"], size=count).astype(np.int64)
        video_labels = np.zeros(SHAPE["num_classes"], dtype=np.float32)
        video_labels[labels] = 1.0
        videos.append(dict(feats=feats, segments=segments, labels=labels, video=video_labels))
    return {"videos": videos}


def perturbation(index: int, shape) -> np.ndarray:
    """The seeded offset added to the ``index``-th official weight (so no weight is the
    trivial zero / constant of the initialisation)."""
    return np.asarray(0.05 * np.random.default_rng([7, index]).normal(size=shape), np.float32)


def sample_positions(size: int, count: int = 32) -> np.ndarray:
    """The flat positions of a tensor of ``size`` elements whose values are recorded."""
    return np.sort(np.random.default_rng([11, size]).choice(size, min(size, count), replace=False))


# truncate_feats cases: (length, max_seq_len, crop_ratio, the draws of random.randint,
# segments on the grid): a long video cut to max_seq_len (the second start keeps one),
# a short one cropped to a drawn length, one kept whole
CROPS = [
    (400, 128, None, [250, 20], [[10.0, 40.0], [100.0, 160.0], [390.0, 399.0]]),
    (100, 2304, [0.9, 1.0], [93, 4], [[0.0, 5.0], [50.0, 98.5], [95.0, 99.0]]),
    (100, 2304, [0.9, 1.0], [100], [[1.0, 2.0]]),
]
